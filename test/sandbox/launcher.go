package sandbox

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// LauncherImage is the image the simulated virt-controller puts in launcher
// pods. No kubelet runs them: the real kube-scheduler binds them, and the
// VMI follows the binding.
const LauncherImage = "quay.io/kubevirt/virt-launcher:v1.9.0"

// Labels KubeVirt's virt-controller puts on a launcher pod
// (pkg/virt-controller/services/template.go): kubevirt.io=virt-launcher,
// kubevirt.io/created-by=<VMI UID>, kubevirt.io/domain=<VMI name>, plus the
// VMI's own labels (so a VMI's pod anti-affinity, written against VMI
// labels, selects the pods of other VMIs).
const (
	labelKubeVirt  = "kubevirt.io"
	labelCreatedBy = "kubevirt.io/created-by"
	labelDomain    = "kubevirt.io/domain"
)

// launcherPod returns the VMI's virt-launcher pod, creating it the way
// virt-controller does when there is none: generateName
// virt-launcher-<vmi>-, controlled by the VMI, with the VMI's node
// selector (plus kubevirt.io/schedulable=true, which virt-handler sets on
// nodes it manages), affinity, tolerations and scheduler name, and the
// compute container's requests: guest memory plus KubeVirt's overhead, and
// 1/10 of a CPU per vCPU (KubeVirt's default cpuAllocationRatio 10) unless
// the VMI asks for CPU itself.
func (r *kubevirtSim) launcherPod(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.live.List(ctx, pods, client.InNamespace(vmi.Namespace), client.MatchingLabels{labelCreatedBy: string(vmi.UID)}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i], nil
		}
	}
	pod, err := r.newLauncherPod(ctx, vmi)
	if err != nil {
		return nil, err
	}
	if err := controllerutil.SetControllerReference(vmi, pod, r.c.Scheme()); err != nil {
		return nil, err
	}
	if err := r.c.Create(ctx, pod); err != nil {
		if !isAPIStatus(err) || apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating launcher pod: %w", err)
		}
		return nil, &podCreateError{err: err}
	}
	log.FromContext(ctx).Info("created launcher pod", "pod", pod.Name)
	return pod, nil
}

// newLauncherPod is buildLauncherPod with the device-plugin resources of
// the VMI's networks (networkResources) as requests and limits.
func (r *kubevirtSim) newLauncherPod(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (*corev1.Pod, error) {
	netResources, err := r.networkResources(ctx, vmi)
	if err != nil {
		return nil, err
	}
	pod := buildLauncherPod(vmi)
	c := &pod.Spec.Containers[0]
	if c.Resources.Limits, err = r.autoLimits(ctx, vmi, c.Resources.Requests); err != nil {
		return nil, err
	}
	for name, n := range netResources {
		c.Resources.Requests[name] = *resource.NewQuantity(n, resource.DecimalSI)
		c.Resources.Limits[name] = *resource.NewQuantity(n, resource.DecimalSI)
	}
	if len(c.Resources.Limits) == 0 {
		c.Resources.Limits = nil
	}
	return pod, nil
}

// autoLimits are the limits virt-controller gives the compute container
// when a ResourceQuota of the VMI's namespace has limits.memory or
// limits.cpu and the VMI sets none (doesVMIRequireAutoResourceLimits in
// pkg/virt-controller/services/template.go, v1.9.0): memory twice the
// request (DefaultMemoryLimitOverheadRatio, or the namespace's
// alpha.kubevirt.io/auto-memory-limits-ratio label; WithAutoMemoryLimits in
// renderresources.go), one CPU per vCPU (WithoutDedicatedCPU with CPU
// limits). Without such a quota the pod has no limits, so a LimitRange's
// default limit applies to it. (Limits the VMI itself sets are not played:
// Wukong sets none.)
func (r *kubevirtSim) autoLimits(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, requests corev1.ResourceList) (corev1.ResourceList, error) {
	quotas := &corev1.ResourceQuotaList{}
	if err := r.live.List(ctx, quotas, client.InNamespace(vmi.Namespace)); err != nil {
		return nil, err
	}
	limits := corev1.ResourceList{}
	for _, q := range quotas.Items {
		if _, ok := q.Spec.Hard["limits.memory"]; ok && limits.Memory().IsZero() {
			ratio := 2.0
			ns := &corev1.Namespace{}
			if err := r.live.Get(ctx, client.ObjectKey{Name: vmi.Namespace}, ns); err != nil {
				return nil, err
			}
			if f, err := strconv.ParseFloat(ns.Labels[kubevirtv1.AutoMemoryLimitsRatioLabel], 64); err == nil && f >= 1 {
				ratio = f
			}
			mem := requests[corev1.ResourceMemory]
			limits[corev1.ResourceMemory] = *resource.NewQuantity(int64(float64(mem.Value())*ratio), mem.Format)
		}
		if _, ok := q.Spec.Hard["limits.cpu"]; ok && limits.Cpu().IsZero() {
			limits[corev1.ResourceCPU] = *resource.NewQuantity(vcpus(vmi), resource.DecimalSI)
		}
	}
	return limits, nil
}

// MacvtapResourcePrefix is the resource namespace of macvtap-cni's device
// plugin (kubevirt/macvtap-cni: macvtap.network.kubevirt.io/<lower device>).
const MacvtapResourcePrefix = "macvtap.network.kubevirt.io/"

// networkResources are the device-plugin resources the VMI's Multus
// networks ask for, as virt-controller renders them into the launcher pod:
// for each network whose NetworkAttachmentDefinition carries the
// k8s.v1.cni.cncf.io/resourceName annotation, one of that resource as
// request and limit of the compute container (KubeVirt
// GetNetworkToResourceMap and the resource renderer's WithNetworkResources,
// pkg/virt-controller/services). The scheduler then places the pod only on
// nodes whose device plugins offer it (SR-IOV VFs, macvtap lower devices,
// bridge-marker bridges). A missing NAD adds nothing: the pod's sandbox
// then fails as Multus fails it (failures.go).
func (r *kubevirtSim) networkResources(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (map[corev1.ResourceName]int64, error) {
	out := map[corev1.ResourceName]int64{}
	for _, n := range vmi.Spec.Networks {
		if n.Multus == nil {
			continue
		}
		ns, name := vmi.Namespace, n.Multus.NetworkName
		if i := strings.Index(name, "/"); i >= 0 {
			ns, name = name[:i], name[i+1:]
		}
		nad := &nadv1.NetworkAttachmentDefinition{}
		if err := r.live.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, nad); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		if rn := nad.Annotations["k8s.v1.cni.cncf.io/resourceName"]; rn != "" {
			out[corev1.ResourceName(rn)]++
		}
	}
	return out, nil
}

func buildLauncherPod(vmi *kubevirtv1.VirtualMachineInstance) *corev1.Pod {
	labels := map[string]string{}
	for k, v := range vmi.Labels {
		labels[k] = v
	}
	labels[labelKubeVirt] = "virt-launcher"
	labels[labelCreatedBy] = string(vmi.UID)
	labels[labelDomain] = vmi.Name
	selector := map[string]string{"kubevirt.io/schedulable": "true"}
	for k, v := range vmi.Spec.NodeSelector {
		selector[k] = v
	}
	spec := vmi.Spec
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "virt-launcher-" + vmi.Name + "-",
			Namespace:    vmi.Namespace,
			Labels:       labels,
			Annotations:  map[string]string{SimulatedAnnotation: "true", "kubevirt.io/domain": vmi.Name},
		},
		Spec: corev1.PodSpec{
			SchedulerName:                 spec.SchedulerName,
			NodeSelector:                  selector,
			Affinity:                      spec.Affinity.DeepCopy(),
			Tolerations:                   append([]corev1.Toleration(nil), spec.Tolerations...),
			TopologySpreadConstraints:     append([]corev1.TopologySpreadConstraint(nil), spec.TopologySpreadConstraints...),
			PriorityClassName:             spec.PriorityClassName,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: spec.TerminationGracePeriodSeconds,
			// KubeVirt's default non-root launcher (computePodSecurityContext
			// in pkg/virt-controller/services/template.go, securityContext
			// and requiredCapabilities in rendercontainer.go, v1.9.0): user
			// 107, NET_BIND_SERVICE only, no seccomp profile unless the
			// KubeVirt CR configures one. Pod Security "baseline" admits it,
			// "restricted" refuses it (seccompProfile).
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: ptr.To(launcherUID), RunAsGroup: ptr.To(launcherUID), RunAsNonRoot: ptr.To(true), FSGroup: ptr.To(launcherUID),
			},
			Containers: []corev1.Container{{
				Name:      "compute",
				Image:     LauncherImage,
				Resources: corev1.ResourceRequirements{Requests: launcherRequests(vmi)},
				SecurityContext: &corev1.SecurityContext{
					RunAsUser: ptr.To(launcherUID), RunAsGroup: ptr.To(launcherUID), RunAsNonRoot: ptr.To(true),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	return pod
}

// launcherUID is KubeVirt's non-root user (util.NonRootUID).
const launcherUID = int64(107)

// vcpus is the VMI's vCPU count: cores × sockets × threads, at least 1.
func vcpus(vmi *kubevirtv1.VirtualMachineInstance) int64 {
	c := vmi.Spec.Domain.CPU
	if c == nil {
		return 1
	}
	return max(int64(c.Cores), 1) * max(int64(c.Sockets), 1) * max(int64(c.Threads), 1)
}

// launcherRequests follows KubeVirt's renderresources.go (WithMemoryOverhead):
// memory is the guest's (spec.domain.memory.guest, else
// resources.requests.memory) plus an approximation of the overhead
// CalculateMemoryOverhead (pkg/virt-controller/services/template.go)
// computes: page tables (1/512 of guest memory), the
// fixed overheads of virt-launcher-monitor (25Mi), virt-launcher (100Mi),
// virtlogd (25Mi), virtqemud (40Mi) and qemu (30Mi), 8Mi per vCPU, and 32Mi
// of video RAM unless autoattachGraphicsDevice is false. The constants are
// KubeVirt v1.x's; the function itself cannot be called here without
// building kubevirt.io/kubevirt.
func launcherRequests(vmi *kubevirtv1.VirtualMachineInstance) corev1.ResourceList {
	d := vmi.Spec.Domain
	guest := resource.Quantity{}
	switch {
	case d.Memory != nil && d.Memory.Guest != nil:
		guest = d.Memory.Guest.DeepCopy()
	default:
		if q, ok := d.Resources.Requests[corev1.ResourceMemory]; ok {
			guest = q.DeepCopy()
		}
	}
	vcpus := vcpus(vmi)
	mi := func(n int64) *resource.Quantity { return resource.NewQuantity(n*1024*1024, resource.BinarySI) }
	memory := guest.DeepCopy()
	memory.Add(*resource.NewQuantity(guest.Value()/512, resource.BinarySI))
	for _, fixed := range []int64{25, 100, 25, 40, 30} {
		memory.Add(*mi(fixed))
	}
	memory.Add(*mi(8 * vcpus))
	if d.Devices.AutoattachGraphicsDevice == nil || *d.Devices.AutoattachGraphicsDevice {
		memory.Add(*mi(32))
	}
	cpu := *resource.NewMilliQuantity(100*vcpus, resource.DecimalSI)
	if q, ok := d.Resources.Requests[corev1.ResourceCPU]; ok {
		cpu = q.DeepCopy()
	}
	return corev1.ResourceList{corev1.ResourceMemory: memory, corev1.ResourceCPU: cpu}
}

// podScheduled is the launcher pod's PodScheduled condition, nil before
// the scheduler looked at it.
func podScheduled(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodScheduled {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// kubeletSim plays the one part of the kubelet the sandbox needs: a bound
// launcher pod being deleted (by virt-controller, by the garbage
// collector after its VMI, by an eviction) is confirmed gone at once, as a
// kubelet does once its containers exited; not on a node LoseNode stopped. Without it a bound pod stays Terminating forever
// and the scheduler keeps counting it on its node.
type kubeletSim struct{ c client.Client }

func (r *kubeletSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-kubelet").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetLabels()[labelKubeVirt] == "virt-launcher"
		}))).
		Complete(r)
}

func (r *kubeletSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := r.c.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pod.DeletionTimestamp == nil {
		return ctrl.Result{}, nil
	}
	if pod.Spec.NodeName != "" {
		// No kubelet confirms a pod's end on a lost node (LoseNode): it
		// stays Terminating until force-deleted or the node comes back.
		node := &corev1.Node{}
		if err := r.c.Get(ctx, client.ObjectKey{Name: pod.Spec.NodeName}, node); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		} else if err == nil && nodeLost(node) {
			return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
		}
	}
	uid := pod.UID
	err := r.c.Delete(ctx, pod, client.GracePeriodSeconds(0), client.Preconditions{UID: &uid})
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// unpullableContainerDisk returns the kubelet's pull error for the first
// container disk of vmi that cannot be pulled, or "": a reference the
// container runtime cannot parse (a scheme such as docker:// or https://,
// upper case; reason InvalidImageName), or a registry that cannot be
// reached (host ending in ".invalid" or containing "unreachable").
func unpullableContainerDisk(vmi *kubevirtv1.VirtualMachineInstance) string {
	for _, v := range vmi.Spec.Volumes {
		if v.ContainerDisk == nil {
			continue
		}
		image := v.ContainerDisk.Image
		named, err := reference.ParseNormalizedNamed(image)
		if err != nil {
			return fmt.Sprintf("InvalidImageName: Failed to apply default image tag %q: couldn't parse image name %q: %v", image, image, err)
		}
		host := reference.Domain(named)
		if strings.HasSuffix(host, ".invalid") || strings.Contains(host, "unreachable") {
			return fmt.Sprintf("ErrImagePull: failed to pull and unpack image %q: failed to resolve reference %q: dial tcp: lookup %s: no such host",
				named.String(), named.String(), host)
		}
	}
	return ""
}

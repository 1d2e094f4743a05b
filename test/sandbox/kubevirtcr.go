package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The KubeVirt CR the sandbox creates, as a KubeVirt install has one.
const (
	KubeVirtNamespace = "kubevirt"
	KubeVirtName      = "kubevirt"
	// MacvtapBinding is the network binding plugin the CR registers, the
	// way KubeVirt's user guide registers it: spec.configuration.network.
	// binding.macvtap with domainAttachmentType tap
	// (https://kubevirt.io/user-guide/network/net_binding_plugins/macvtap/).
	MacvtapBinding = "macvtap"
)

// createKubeVirtCR creates namespace kubevirt and the KubeVirt CR
// (kubevirt.io/v1 KubeVirt) registering the macvtap binding plugin and
// allowing LiveMigrate workload updates (CPU and memory hotplug), with
// status phase Deployed and defaultArchitecture amd64, as virt-operator
// reports them. vmRolloutStrategy and the feature gates are left unset:
// KubeVirt v1.9's defaults are LiveUpdate (virt-config
// IsVMRolloutStrategyLiveUpdate) and DeclarativeHotplugVolumes on (Beta),
// so volume and interface hotplug (hotplug.go) pass KubeVirt's real
// admission as on a default install.
func (s *Sandbox) createKubeVirtCR(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: simulatedMeta(KubeVirtNamespace, "")}
	if err := client.IgnoreAlreadyExists(s.Client.Create(ctx, ns)); err != nil {
		return fmt.Errorf("creating namespace %s: %w", KubeVirtNamespace, err)
	}
	kv := &kubevirtv1.KubeVirt{ObjectMeta: simulatedMeta(KubeVirtName, KubeVirtNamespace)}
	kv.Spec.Configuration.NetworkConfiguration = &kubevirtv1.NetworkConfiguration{
		Binding: map[string]kubevirtv1.InterfaceBindingPlugin{
			MacvtapBinding: {DomainAttachmentType: kubevirtv1.Tap},
		},
	}
	// CPU and memory hotplug go through a live migration the workload
	// updater starts only with LiveMigrate listed (KubeVirt user guide,
	// "CPU Hotplug"; an empty list means no automated workload updates).
	kv.Spec.WorkloadUpdateStrategy.WorkloadUpdateMethods = []kubevirtv1.WorkloadUpdateMethod{kubevirtv1.WorkloadUpdateMethodLiveMigrate}
	if err := s.Client.Create(ctx, kv); err != nil {
		return fmt.Errorf("creating the KubeVirt CR: %w", err)
	}
	kv.Status.Phase = kubevirtv1.KubeVirtPhaseDeployed
	// virt-operator reports the architecture VMs default to
	// (pkg/virt-operator/util/config.go SetDefaultArchitecture: the spec's,
	// else its own, amd64 like the nodes here); KubeVirt's VM and VMI
	// mutators default spec.architecture from it, and its VMI admitter
	// refuses a VMI without one.
	kv.Status.DefaultArchitecture = "amd64"
	if err := s.Client.Status().Update(ctx, kv); err != nil {
		return fmt.Errorf("setting the KubeVirt CR Deployed: %w", err)
	}
	return nil
}

// missingBinding returns virt-controller's error for the first interface of
// vmi whose network binding plugin no KubeVirt CR registers, or "". Real
// KubeVirt accepts such a VMI but cannot render its launcher pod
// (pkg/network/multus: "unable to find the network binding plugin '<name>'
// in Kubevirt configuration"), so the VMI never starts.
func (r *kubevirtSim) missingBinding(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (string, error) {
	var registered []string
	list := &kubevirtv1.KubeVirtList{}
	if err := r.c.List(ctx, list); err != nil {
		return "", err
	}
	for _, kv := range list.Items {
		if nc := kv.Spec.Configuration.NetworkConfiguration; nc != nil {
			for name := range nc.Binding {
				registered = append(registered, name)
			}
		}
	}
	for _, iface := range vmi.Spec.Domain.Devices.Interfaces {
		if iface.Binding != nil && !slices.Contains(registered, iface.Binding.Name) {
			return fmt.Sprintf("failed to render launch manifest: unable to find the network binding plugin '%s' in Kubevirt configuration", iface.Binding.Name), nil
		}
	}
	return "", nil
}

// kubevirtCRChanged: a KubeVirt CR change may unblock (or block) any VM
// that is not running yet, in any namespace.
func (r *kubevirtSim) kubevirtCRChanged(ctx context.Context, _ client.Object) []reconcile.Request {
	vms := &kubevirtv1.VirtualMachineList{}
	if err := r.c.List(ctx, vms); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range vms.Items {
		if vms.Items[i].Status.PrintableStatus != kubevirtv1.VirtualMachineStatusRunning {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&vms.Items[i])})
		}
	}
	return reqs
}

// failedCreate records a launcher pod that cannot be rendered: the VMI stays
// Pending with Synchronized=False (reason FailedCreate), as virt-controller
// reports it.
func failedCreate(vmi *kubevirtv1.VirtualMachineInstance, msg string) {
	vmi.Status.Phase = kubevirtv1.Pending
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized, corev1.ConditionFalse, reasonFailedCreate, msg)
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, reasonFailedCreate, msg)
}

// reasonFailedCreate is virt-controller's reason for a pod it could not create.
const reasonFailedCreate = "FailedCreate"

// podCreateError is the API server's answer to the launcher pod's create
// (a ResourceQuota, LimitRanger or PodSecurity admission refusing it, or
// any other status but AlreadyExists).
type podCreateError struct{ err error }

func (e *podCreateError) Error() string { return e.err.Error() }
func (e *podCreateError) Unwrap() error { return e.err }

func isAPIStatus(err error) bool {
	var s apierrors.APIStatus
	return errors.As(err, &s)
}

// launcherRetry is how often the VMI controller retries a launcher pod the
// API server refused. Real virt-controller returns the sync error and is
// requeued by its rate limiter (exponential, up to 1000s; nothing watches
// quotas or LimitRanges); the sandbox retries every launcherRetry, so a
// test sees a fixed policy pass soon.
const launcherRetry = 2 * time.Second

// refuseLauncher plays virt-controller when the API server refuses the
// launcher pod (pkg/virt-controller/watch/vmi/lifecycle.go sync, v1.9.0):
// a Warning Event FailedCreate on the VMI ("Error creating pod: <err>", or
// for Pod Security "failed to render launch manifest: failed to create pod
// for vmi <ns>/<name>, it needs a privileged namespace to run: <err>") and
// Synchronized=False with reason FailedCreate and "failed to create virtual
// machine pod: <err>" (the Pod Security text for Pod Security). As
// CheckFailure (pkg/controller/conditions.go) does, a condition already
// False with that reason is left as it is, message included, and so is
// the Event (the real recorder aggregates repeats into a count).
func (r *kubevirtSim) refuseLauncher(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, err error, before *kubevirtv1.VirtualMachineInstanceStatus) error {
	cond, event := "failed to create virtual machine pod: "+err.Error(), "Error creating pod: "+err.Error()
	if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "violates PodSecurity") {
		cond = fmt.Sprintf("failed to create pod for vmi %s/%s, it needs a privileged namespace to run: %v", vmi.Namespace, vmi.Name, err)
		event = "failed to render launch manifest: " + cond
	}
	for _, c := range before.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceSynchronized && c.Status == corev1.ConditionFalse && c.Reason == reasonFailedCreate {
			vmi.Status = *before.DeepCopy()
			return nil
		}
	}
	failedCreate(vmi, cond)
	if err := r.recordWarning(ctx, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", reasonFailedCreate, event, "virtualmachine-controller", ""); err != nil {
		return err
	}
	log.FromContext(ctx).Info("virt-controller: launcher pod refused", "error", err.Error())
	return r.updateVMIStatus(ctx, vmi, before)
}

package sandbox

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Live changes of volumes and interfaces, played as KubeVirt v1.9.0 carries
// them out on a running VMI (issue #34):
//
//   - Volumes (DeclarativeHotplugVolumes, Beta, on by default): the VM
//     controller patches the hotpluggable DataVolume/PVC volumes of the VM
//     template, with their disks, into the VMI spec and drops the ones the
//     template no longer has (pkg/storage/hotplug/hotplug.go
//     HandleDeclarativeVolumes, called from
//     pkg/virt-controller/watch/vm/vm.go handleDeclarativeVolumeHotplug).
//     The VMI controller then makes an attachment pod hp-volume-<random>
//     (label kubevirt.io=hotplug-disk, controlled by the virt-launcher pod,
//     required node affinity to its node, the claim as a volume:
//     pkg/virt-controller/services/template.go
//     RenderHotplugAttachmentPodTemplate) and reports the volume in
//     status.volumeStatus with hotplugVolume.attachPodName/attachPodUID and
//     phase AttachedToNode ("Created hotplug attachment pod <pod>, for
//     volume <v>", reason SuccessfulCreate, and a Normal Event: updateVolumeStatus
//     / processHotplugVolumeStatus in pkg/virt-controller/watch/vmi/storage.go).
//     virt-handler mounts it into the launcher pod (MountedToPod, "Volume
//     <v> has been mounted in virt-launcher pod", VolumeMountedToPod) and
//     attaches it to the domain (Ready with a target, "Successfully attach
//     hotplugged volume <v> to VM", VolumeReady: pkg/virt-handler/vm.go
//     updateHotplugVolumeStatus). A volume dropped from the VMI spec is
//     detached and unmounted (UnMountedFromPod, VolumeUnMountedFromPod),
//     its attachment pod deleted (Detaching, "Deleted hotplug attachment pod
//     <pod>, for volume <v>", SuccessfulDelete), and its status entry goes
//     with the pod (Event VolumeUnplugged "Volume <v> has been unplugged").
//     KubeVirt keeps one attachment pod for all of a VMI's hotplugged
//     volumes and replaces it when the set changes
//     (getActiveAndOldAttachmentPods); the sandbox keeps one per volume,
//     which shows the same phases. No kubelet runs the pod: it counts as
//     ready once the real kube-scheduler bound it to the VMI's node.
//   - Interfaces: the VM controller adds a template interface the VMI lacks
//     (bridge or SR-IOV binding, state not absent) with its network to the
//     VMI spec, copies a changed state (absent) onto the VMI's interface,
//     drops from the VMI spec an absent interface the status no longer
//     lists, and drops from the VM template an absent interface the VMI
//     has neither in spec nor status (pkg/network/controllers/vm.go Sync:
//     applyDynamicIfaceRequestOnVMI, clearDetachedIfacesFromVMI,
//     clearDetachedIfacesFromVM). The pod gets the network through Multus'
//     dynamic networks controller and virt-handler plugs the NIC into the
//     domain: the VMI's status.interfaces gains it with infoSource
//     "domain, multus-status" (plus guest-agent when the agent runs: the
//     agent reports the guest's name for it, but no address, since
//     cloud-init configured only the NICs there were at first boot). An
//     absent interface is unplugged: its status entry goes. (Without the
//     dynamic networks controller KubeVirt migrates the VMI instead,
//     condition MigrationRequired, pkg/network/migration/evaluator.go; not
//     played.)

// hotplugStep is how soon the sandbox moves a hotplug on by one phase, as
// virt-controller and virt-handler do on their next sync.
const hotplugStep = 300 * time.Millisecond

// Labels and reasons of the hotplug play.
const (
	// labelHotplugDisk is KubeVirt's app label value on attachment pods
	// (v1.AppLabel "kubevirt.io": "hotplug-disk").
	labelHotplugDisk = "hotplug-disk"
	// labelHotplugVolume names the volume a sandbox attachment pod carries
	// (the sandbox's own: one pod per volume).
	labelHotplugVolume = "sandbox.wukong.dev/hotplug-volume"
)

func isHotplugVolume(v *kubevirtv1.Volume) bool {
	return (v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.Hotpluggable) ||
		(v.DataVolume != nil && v.DataVolume.Hotpluggable)
}

func claimOf(v *kubevirtv1.Volume) string {
	switch {
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ClaimName
	case v.DataVolume != nil:
		return v.DataVolume.Name
	}
	return ""
}

// syncHotplug plays the VM controller, the VMI controller and virt-handler
// on the running vmi of vm (see above). It returns how soon to look again
// (0 when nothing is in progress).
func (r *kubevirtSim) syncHotplug(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) (time.Duration, error) {
	if vm.Spec.Template == nil || vmi.DeletionTimestamp != nil {
		return 0, nil
	}
	cfg, err := readClusterConfig(ctx, r.c)
	if err != nil {
		return 0, err
	}
	// The VM controller: spec of the VMI, then of the VM.
	spec := vmi.Spec.DeepCopy()
	if cfg.declarativeHotplug() {
		spec.Volumes, spec.Domain.Devices.Disks = hotplugVolumes(vm, vmi)
	}
	spec.Domain.Devices.Interfaces, spec.Networks = syncInterfaces(vm, vmi, spec)
	if !equality.Semantic.DeepEqual(spec, &vmi.Spec) {
		vmi.Spec = *spec
		status := vmi.Status
		if err := r.c.Update(ctx, vmi); err != nil {
			return 0, fmt.Errorf("patching the VMI's hotplug volumes and interfaces: %w", err)
		}
		vmi.Status = status
		log.FromContext(ctx).Info("virt-controller: hotplug changes patched into the VMI")
	}
	if ifaces, nets := clearDetachedFromVM(vm, vmi); len(ifaces) != len(vm.Spec.Template.Spec.Domain.Devices.Interfaces) {
		vm.Spec.Template.Spec.Domain.Devices.Interfaces, vm.Spec.Template.Spec.Networks = ifaces, nets
		status := vm.Status
		if err := r.c.Update(ctx, vm); err != nil {
			return 0, fmt.Errorf("dropping unplugged interfaces from the VM: %w", err)
		}
		vm.Status = status
	}
	// The VMI controller and virt-handler: status.
	before := vmi.Status.DeepCopy()
	busy, err := r.hotplugVolumeStatus(ctx, vmi)
	if err != nil {
		return 0, err
	}
	ifBusy, err := r.hotplugInterfaceStatus(ctx, vmi)
	if err != nil {
		return 0, err
	}
	if err := r.updateVMIStatus(ctx, vmi, before); err != nil {
		return 0, err
	}
	if busy || ifBusy {
		return hotplugStep, nil
	}
	return 0, nil
}

// declarativeHotplug is virt-config's DeclarativeHotplugVolumesEnabled
// without HotplugVolumesEnabled (vm.go handleDeclarativeVolumeHotplug):
// the Beta gate is on unless disabled; the sandbox's KubeVirt CR may list
// gates (featureGates, disabledFeatureGates).
func (c clusterConfig) declarativeHotplug() bool {
	for _, g := range c.gates {
		if g == "HotplugVolumes" {
			return false
		}
	}
	for _, g := range c.gates {
		if g == "DeclarativeHotplugVolumes" {
			return true
		}
	}
	for _, g := range c.disabledGates {
		if g == "DeclarativeHotplugVolumes" {
			return false
		}
	}
	return true
}

// hotplugVolumes is patchHotplugVolumes' new VMI volumes and disks
// (pkg/storage/hotplug/hotplug.go): the VMI's, without hotpluggable ones
// the template lost (or changed), plus the template's hotpluggable ones
// the VMI has neither in spec nor (still unplugging) in status.
func hotplugVolumes(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) ([]kubevirtv1.Volume, []kubevirtv1.Disk) {
	tmpl := &vm.Spec.Template.Spec
	tmplVols := map[string]kubevirtv1.Volume{}
	for _, v := range tmpl.Volumes {
		tmplVols[v.Name] = v
	}
	inStatus := map[string]bool{}
	for _, s := range vmi.Status.VolumeStatus {
		inStatus[s.Name] = true
	}
	var vols []kubevirtv1.Volume
	kept := map[string]bool{}
	for _, v := range vmi.Spec.Volumes {
		if isHotplugVolume(&v) {
			tv, ok := tmplVols[v.Name]
			if !ok || (isHotplugVolume(&tv) && !equality.Semantic.DeepEqual(tv, v)) {
				continue
			}
		}
		vols = append(vols, v)
		kept[v.Name] = true
	}
	added := map[string]bool{}
	for _, v := range tmpl.Volumes {
		if isHotplugVolume(&v) && !kept[v.Name] && !inStatus[v.Name] {
			vols = append(vols, v)
			added[v.Name] = true
			kept[v.Name] = true
		}
	}
	var disks []kubevirtv1.Disk
	has := map[string]bool{}
	for _, d := range vmi.Spec.Domain.Devices.Disks {
		if kept[d.Name] && !added[d.Name] {
			disks = append(disks, d)
			has[d.Name] = true
		}
	}
	for _, d := range tmpl.Domain.Devices.Disks {
		if added[d.Name] && !has[d.Name] {
			disks = append(disks, d)
		}
	}
	return vols, disks
}

// syncInterfaces is syncVMIInterfaces (pkg/network/controllers/vm.go):
// the template's new bridge or SR-IOV interfaces added with their
// networks, absent states copied, absent interfaces the status no longer
// lists dropped.
func syncInterfaces(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, spec *kubevirtv1.VirtualMachineInstanceSpec) ([]kubevirtv1.Interface, []kubevirtv1.Network) {
	tmpl := &vm.Spec.Template.Spec
	ifaces := append([]kubevirtv1.Interface(nil), spec.Domain.Devices.Interfaces...)
	nets := append([]kubevirtv1.Network(nil), spec.Networks...)
	index := map[string]int{}
	for i, f := range ifaces {
		index[f.Name] = i
	}
	tmplNets := map[string]kubevirtv1.Network{}
	for _, n := range tmpl.Networks {
		tmplNets[n.Name] = n
	}
	for _, f := range tmpl.Domain.Devices.Interfaces {
		i, ok := index[f.Name]
		switch {
		case !ok && f.State != kubevirtv1.InterfaceStateAbsent && (f.Bridge != nil || f.SRIOV != nil):
			ifaces = append(ifaces, f)
			nets = append(nets, tmplNets[f.Name])
		case ok && f.State != ifaces[i].State && ifaces[i].State != kubevirtv1.InterfaceStateAbsent:
			ifaces[i].State = f.State
		}
	}
	inStatus := map[string]bool{}
	for _, s := range vmi.Status.Interfaces {
		inStatus[s.Name] = true
	}
	var keptIfaces []kubevirtv1.Interface
	keep := map[string]bool{}
	for _, f := range ifaces {
		if f.State != kubevirtv1.InterfaceStateAbsent || inStatus[f.Name] {
			keptIfaces = append(keptIfaces, f)
			keep[f.Name] = true
		}
	}
	var keptNets []kubevirtv1.Network
	for _, n := range nets {
		if keep[n.Name] {
			keptNets = append(keptNets, n)
		}
	}
	return keptIfaces, keptNets
}

// clearDetachedFromVM is clearDetachedIfacesFromVM: the template without
// the absent interfaces the VMI has neither in spec nor in status.
func clearDetachedFromVM(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) ([]kubevirtv1.Interface, []kubevirtv1.Network) {
	tmpl := &vm.Spec.Template.Spec
	onVMI := map[string]bool{}
	for _, f := range vmi.Spec.Domain.Devices.Interfaces {
		onVMI[f.Name] = true
	}
	for _, s := range vmi.Status.Interfaces {
		onVMI[s.Name] = true
	}
	var ifaces []kubevirtv1.Interface
	keep := map[string]bool{}
	for _, f := range tmpl.Domain.Devices.Interfaces {
		if f.State != kubevirtv1.InterfaceStateAbsent || onVMI[f.Name] {
			ifaces = append(ifaces, f)
			keep[f.Name] = true
		}
	}
	var nets []kubevirtv1.Network
	for _, n := range tmpl.Networks {
		if keep[n.Name] {
			nets = append(nets, n)
		}
	}
	return ifaces, nets
}

// withHotplugStatus completes the claim volume status entries vs (the
// sandbox's updateVolumeStatus) with the hotplug fields the previous
// status had: a hotpluggable volume of the VMI spec keeps (or starts, in
// phase Bound: getVolumePhaseMessageReason) its hotplugVolume entry, and
// an unplugged volume keeps its entry while its attachment pod exists
// (hotplugVolumeStatus drops it). Sorted by name, as updateVolumeStatus
// sorts.
func withHotplugStatus(vmi *kubevirtv1.VirtualMachineInstance, vs []kubevirtv1.VolumeStatus) []kubevirtv1.VolumeStatus {
	old := map[string]kubevirtv1.VolumeStatus{}
	for _, s := range vmi.Status.VolumeStatus {
		old[s.Name] = s
	}
	hot := map[string]bool{}
	inSpec := map[string]bool{}
	for _, v := range vmi.Spec.Volumes {
		inSpec[v.Name] = true
		if isHotplugVolume(&v) {
			hot[v.Name] = true
		}
	}
	seen := map[string]bool{}
	for i := range vs {
		seen[vs[i].Name] = true
		if !hot[vs[i].Name] {
			continue
		}
		if o, ok := old[vs[i].Name]; ok && o.HotplugVolume != nil {
			vs[i].HotplugVolume, vs[i].Phase, vs[i].Reason, vs[i].Message, vs[i].Target = o.HotplugVolume, o.Phase, o.Reason, o.Message, o.Target
			continue
		}
		vs[i].HotplugVolume = &kubevirtv1.HotplugVolumeStatus{}
		vs[i].Phase, vs[i].Reason, vs[i].Message = kubevirtv1.VolumeBound, "PVCNotReady", "PVC is in phase Bound"
	}
	for _, s := range vmi.Status.VolumeStatus {
		if !seen[s.Name] && !inSpec[s.Name] && s.HotplugVolume != nil {
			vs = append(vs, s)
		}
	}
	sortVolumeStatus(vs)
	return vs
}

func sortVolumeStatus(vs []kubevirtv1.VolumeStatus) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && vs[j].Name < vs[j-1].Name; j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}

// hotplugVolumeStatus moves each hotplugged volume of vmi on by one phase
// (see the top of this file) and reports whether one is still moving.
func (r *kubevirtSim) hotplugVolumeStatus(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (bool, error) {
	inSpec := map[string]*kubevirtv1.Volume{}
	for i := range vmi.Spec.Volumes {
		inSpec[vmi.Spec.Volumes[i].Name] = &vmi.Spec.Volumes[i]
	}
	vmi.Status.VolumeStatus = withHotplugStatus(vmi, vmi.Status.VolumeStatus)
	busy := false
	var out []kubevirtv1.VolumeStatus
	for _, s := range vmi.Status.VolumeStatus {
		if s.HotplugVolume == nil {
			out = append(out, s)
			continue
		}
		v, present := inSpec[s.Name]
		pod, err := r.attachmentPod(ctx, vmi, s.Name)
		if err != nil {
			return false, err
		}
		event := func(reason, msg string) error {
			s.Reason, s.Message = reason, msg
			return recordEvent(ctx, r.c, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", corev1.EventTypeNormal, reason, msg, "virtualmachine-controller", "")
		}
		switch {
		case present && (s.Phase == kubevirtv1.VolumeBound || s.Phase == kubevirtv1.VolumePending || s.Phase == ""):
			busy = true
			if pod == nil {
				if pod, err = r.createAttachmentPod(ctx, vmi, v); err != nil || pod == nil {
					break
				}
			}
			s.HotplugVolume.AttachPodName = pod.Name
			if pod.Spec.NodeName == "" {
				break // the scheduler has not bound it yet
			}
			s.HotplugVolume.AttachPodUID = pod.UID
			s.Phase = kubevirtv1.HotplugVolumeAttachedToNode
			err = event("SuccessfulCreate", fmt.Sprintf("Created hotplug attachment pod %s, for volume %s", pod.Name, s.Name))
		case present && s.Phase == kubevirtv1.HotplugVolumeAttachedToNode:
			busy = true
			s.Phase = kubevirtv1.HotplugVolumeMounted
			err = event("VolumeMountedToPod", fmt.Sprintf("Volume %s has been mounted in virt-launcher pod", s.Name))
		case present && s.Phase == kubevirtv1.HotplugVolumeMounted:
			s.Phase, s.Target = kubevirtv1.VolumeReady, nextTarget(vmi)
			err = event("VolumeReady", fmt.Sprintf("Successfully attach hotplugged volume %s to VM", s.Name))
		case !present && (s.Phase == kubevirtv1.VolumeReady || s.Phase == kubevirtv1.HotplugVolumeMounted):
			busy = true
			s.Phase, s.Target = kubevirtv1.HotplugVolumeUnMounted, ""
			err = event("VolumeUnMountedFromPod", fmt.Sprintf("Volume %s has been unmounted from virt-launcher pod", s.Name))
		case !present && pod != nil:
			busy = true
			if err = r.c.Delete(ctx, pod, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
				return false, err
			}
			s.Phase = kubevirtv1.HotplugVolumeDetaching
			err = event("SuccessfulDelete", fmt.Sprintf("Deleted hotplug attachment pod %s, for volume %s", pod.Name, s.Name))
		case !present:
			// Pod gone: the status entry goes (virt-handler's Event).
			if err := recordEvent(ctx, r.c, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", corev1.EventTypeNormal,
				"VolumeUnplugged", fmt.Sprintf("Volume %s has been unplugged", s.Name), "virt-handler", vmi.Status.NodeName); err != nil {
				return false, err
			}
			continue
		}
		if err != nil {
			return false, err
		}
		out = append(out, s)
	}
	vmi.Status.VolumeStatus = out
	return busy, nil
}

// nextTarget is the guest device of a newly attached virtio disk: the
// first vdX no disk of vmi has (virtio disks are vda, vdb, ... in order).
func nextTarget(vmi *kubevirtv1.VirtualMachineInstance) string {
	used := map[string]bool{}
	for _, s := range vmi.Status.VolumeStatus {
		used[s.Target] = true
	}
	n := len(vmi.Spec.Domain.Devices.Disks)
	for i := 0; i < 26; i++ {
		t := fmt.Sprintf("vd%c", 'a'+i)
		if i >= n-1 && !used[t] {
			return t
		}
	}
	return ""
}

// attachmentPod is the sandbox's attachment pod of volume in vmi's
// namespace (nil when none).
func (r *kubevirtSim) attachmentPod(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, volume string) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.live.List(ctx, pods, client.InNamespace(vmi.Namespace),
		client.MatchingLabels{labelKubeVirt: labelHotplugDisk, labelHotplugVolume: volume, labelDomain: vmi.Name}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i], nil
		}
	}
	return nil, nil
}

// createAttachmentPod makes the attachment pod of volume v as
// RenderHotplugAttachmentPodTemplate does: hp-volume-<random>, controlled
// by the launcher pod, required node affinity to its node, the launcher's
// tolerations, the claim as a volume, KubeVirt's restricted security
// context and small requests (hotplugContainerResourceRequirementsForVMI:
// 10m CPU, 2M memory by default). Nil when the launcher pod is gone.
func (r *kubevirtSim) createAttachmentPod(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, v *kubevirtv1.Volume) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.live.List(ctx, pods, client.InNamespace(vmi.Namespace), client.MatchingLabels{labelCreatedBy: string(vmi.UID)}); err != nil {
		return nil, err
	}
	var launcher *corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil && pods.Items[i].Spec.NodeName != "" {
			launcher = &pods.Items[i]
		}
	}
	if launcher == nil {
		return nil, nil
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    "hp-volume-",
			Namespace:       vmi.Namespace,
			Labels:          map[string]string{labelKubeVirt: labelHotplugDisk, labelHotplugVolume: v.Name, labelDomain: vmi.Name},
			Annotations:     map[string]string{SimulatedAnnotation: "true"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(launcher, corev1.SchemeGroupVersion.WithKind("Pod"))},
		},
		Spec: corev1.PodSpec{
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{launcher.Spec.NodeName}}},
				}}},
			}},
			Tolerations:                   append([]corev1.Toleration(nil), launcher.Spec.Tolerations...),
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To(int64(0)),
			Containers: []corev1.Container{{
				Name:    labelHotplugDisk,
				Image:   LauncherImage,
				Command: []string{"/bin/sh", "-c", "/usr/bin/container-disk --copy-path /path/hp"},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("2M")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("80M")},
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false), RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(launcherUID),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: v.Name, MountPath: "/path/" + v.Name}},
			}},
			Volumes: []corev1.Volume{{Name: v.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimOf(v)},
			}}},
		},
	}
	if err := r.c.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("creating the hotplug attachment pod of volume %s: %w", v.Name, err)
	}
	log.FromContext(ctx).Info("virt-controller: created hotplug attachment pod", "pod", pod.Name, "volume", v.Name)
	return pod, nil
}

// hotplugInterfaceStatus gives the VMI's status.interfaces an entry for each
// interface of the spec that has none (hot-plugged: infoSource domain and
// multus-status, guest-agent when the agent runs, no address) and drops the
// entry of an absent one (unplugged). It reports whether it changed
// something (the VM controller then finishes on the next look).
func (r *kubevirtSim) hotplugInterfaceStatus(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (bool, error) {
	has := map[string]bool{}
	for _, s := range vmi.Status.Interfaces {
		has[s.Name] = true
	}
	absent := map[string]bool{}
	var missing []string
	for _, f := range vmi.Spec.Domain.Devices.Interfaces {
		switch {
		case f.State == kubevirtv1.InterfaceStateAbsent:
			absent[f.Name] = true
		case !has[f.Name]:
			missing = append(missing, f.Name)
		}
	}
	changed := false
	if len(missing) > 0 {
		node := &corev1.Node{}
		if err := r.live.Get(ctx, types.NamespacedName{Name: vmi.Status.NodeName}, node); err != nil {
			return false, err
		}
		all, err := r.interfaces(ctx, vmi, node)
		if err != nil {
			return false, err
		}
		for _, name := range missing {
			for _, s := range all {
				if s.Name == name {
					// The guest did not configure a NIC it did not have at
					// first boot: no address until it runs DHCP on it.
					s.IP, s.IPs = "", nil
					vmi.Status.Interfaces = append(vmi.Status.Interfaces, s)
					changed = true
					log.FromContext(ctx).Info("virt-handler: interface hot-plugged", "interface", name)
				}
			}
		}
	}
	var kept []kubevirtv1.VirtualMachineInstanceNetworkInterface
	for _, s := range vmi.Status.Interfaces {
		if absent[s.Name] {
			changed = true
			log.FromContext(ctx).Info("virt-handler: interface unplugged", "interface", s.Name)
			continue
		}
		kept = append(kept, s)
	}
	vmi.Status.Interfaces = kept
	pendingSpec := false
	for _, f := range vmi.Spec.Domain.Devices.Interfaces {
		if f.State == kubevirtv1.InterfaceStateAbsent {
			pendingSpec = true // the VM controller drops it from the spec next
		}
	}
	return changed || pendingSpec, nil
}

// devicesNeedRestart is the part of the VM controller's syncRestartRequired
// (pkg/virt-controller/watch/vm/vm.go, v1.9.0) about volumes and
// interfaces, with the running VMI's spec standing in for the spec the VMI
// started from: a volume the template adds that is not hotpluggable, or
// one the VMI had from its start that the template dropped
// (validLiveUpdateVolumes); an interface or network the VMI has that the
// template dropped (without the absent state's unplug flow), or a pod
// network the template adds (pkg/network/vmliveupdate/restart.go
// IsRestartRequired). Volumes and interfaces are compared by name: the
// VMI's copies carry the mutating webhook's defaults.
func devicesNeedRestart(tmpl, running *kubevirtv1.VirtualMachineInstanceSpec) bool {
	runVols := map[string]kubevirtv1.Volume{}
	for _, v := range running.Volumes {
		runVols[v.Name] = v
	}
	tmplVols := map[string]bool{}
	for _, v := range tmpl.Volumes {
		tmplVols[v.Name] = true
		if _, ok := runVols[v.Name]; !ok && !isHotplugVolume(&v) {
			return true
		}
	}
	for _, v := range running.Volumes {
		if !tmplVols[v.Name] && !isHotplugVolume(&v) {
			return true
		}
	}
	tmplIfaces := map[string]bool{}
	for _, f := range tmpl.Domain.Devices.Interfaces {
		tmplIfaces[f.Name] = true
	}
	for _, f := range running.Domain.Devices.Interfaces {
		if !tmplIfaces[f.Name] {
			return true
		}
	}
	tmplNets := map[string]bool{}
	tmplPod := false
	for _, n := range tmpl.Networks {
		tmplNets[n.Name] = true
		tmplPod = tmplPod || n.Pod != nil
	}
	runPod := false
	for _, n := range running.Networks {
		runPod = runPod || n.Pod != nil
		if !tmplNets[n.Name] {
			return true
		}
	}
	return tmplPod && !runPod
}

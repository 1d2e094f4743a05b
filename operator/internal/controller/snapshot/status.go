package snapshot

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/novasphere/wukong/lib/conditions"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// computeSnapshotStatus sets the WukongSnapshot's status (observedGeneration
// included) from the scope and returns the requeue its state needs. It
// reads nothing but the scope.
//
// Conditions: Ready True (ReadyToUse) once KubeVirt reports the snapshot
// ready to use; otherwise False with, in order: a name conflict, a missing
// Wukong (WukongNotFound), a disk KubeVirt cannot snapshot
// (SnapshotNotSupported), both Stalled; a VM not there or not reported yet
// (WaitingForVirtualMachine), a disk whose claim is not bound
// (WaitingForDisks) or KubeVirt at work (InProgress), all Reconciling; a
// failed snapshot (SnapshotFailed, Stalled).
func computeSnapshotStatus(s *snapScope) ctrl.Result {
	snap := s.snap
	st := &snap.Status
	st.ObservedGeneration = snap.Generation
	mirrorVMSnapshot(st, s.vms)
	if s.content != nil {
		st.Disks, st.Size = snapshotDisks(s.content, st.WukongSpec, s.restoreSizes)
	}
	const ready = v1alpha1.ReadyCondition
	stalled := func(reason, format string, args ...any) { markNotReady(snap, true, reason, format, args...) }
	progressing := func(reason, format string, args ...any) { markNotReady(snap, false, reason, format, args...) }
	switch {
	case s.conflict:
		stalled(v1alpha1.ReasonNameConflict, "VirtualMachineSnapshot %s exists and is not this WukongSnapshot's: remove it or rename this WukongSnapshot", snap.Name)
		return ctrl.Result{}
	case s.vms == nil && snap.Status.VirtualMachineSnapshotName != "":
		stalled(v1alpha1.ReasonSnapshotFailed, "VirtualMachineSnapshot %s was deleted: the snapshot is gone; delete this WukongSnapshot", snap.Status.VirtualMachineSnapshotName)
		return ctrl.Result{}
	case s.vms == nil && s.wukongMissing:
		// The same words whether or not a Wukong of this name exists in
		// another namespace: only this namespace is ever read.
		stalled(v1alpha1.ReasonWukongNotFound, "spec.wukongName: no Wukong %q in this namespace", snap.Spec.WukongName)
		return ctrl.Result{}
	case s.vms == nil && s.vm == nil:
		progressing(v1alpha1.ReasonWaitingForVM, "waiting for Wukong %s's VirtualMachine to be created", snap.Spec.WukongName)
		return ctrl.Result{}
	case s.vms == nil && len(s.unsupported) > 0:
		stalled(v1alpha1.ReasonSnapshotNotSupported, "%s", unsupportedMessage(snap.Spec.WukongName, s.unsupported))
		return ctrl.Result{}
	case s.vms == nil && len(s.unbound) > 0:
		// The Wukong's status changes when a claim binds (watched).
		progressing(v1alpha1.ReasonWaitingForDisks, "nothing to snapshot yet: the claims of disk(s) %s of Wukong %s are not bound (a WaitForFirstConsumer class binds them when the Wukong first starts); the snapshot is taken once every disk is bound",
			strings.Join(s.unbound, ", "), snap.Spec.WukongName)
		return ctrl.Result{}
	case s.vms == nil:
		progressing(v1alpha1.ReasonWaitingForVM, "waiting for KubeVirt to report which volumes of VirtualMachine %s can be snapshotted (status.volumeSnapshotStatuses)", snap.Spec.WukongName)
		return ctrl.Result{RequeueAfter: pollInProgress}
	case st.Phase == v1alpha1.SnapshotFailed:
		msg := "KubeVirt reports the VirtualMachineSnapshot failed"
		if s.vms.Status != nil && s.vms.Status.Error != nil && s.vms.Status.Error.Message != nil {
			msg += ": " + *s.vms.Status.Error.Message
		}
		stalled(v1alpha1.ReasonSnapshotFailed, "%s", msg)
		return ctrl.Result{}
	case ptr.Deref(st.ReadyToUse, false):
		conditions.MarkTrue(snap, ready, v1alpha1.ReasonReadyToUse, "%d disk(s), %s, %s", len(st.Disks), sizeString(st.Size), consistencyMessage(st.Consistency))
		conditions.ClearProgress(snap)
		return ctrl.Result{}
	}
	phase := string(st.Phase)
	if phase == "" {
		phase = "not reported yet"
	}
	progressing(v1alpha1.ReasonSnapshotInProgress, "KubeVirt is taking VirtualMachineSnapshot %s (phase %s)", s.vms.Name, phase)
	return ctrl.Result{RequeueAfter: pollInProgress}
}

// markNotReady sets Ready False with reason and message on obj, and the
// progress condition that goes with it, of the same reason and message:
// Stalled when stall (the controller cannot get further alone), else
// Reconciling (it works on it).
func markNotReady(obj conditions.Setter, stall bool, reason, format string, args ...any) {
	conditions.MarkFalse(obj, v1alpha1.ReadyCondition, reason, format, args...)
	msg := conditions.GetMessage(obj, v1alpha1.ReadyCondition)
	if stall {
		conditions.MarkStalled(obj, reason, "%s", msg)
	} else {
		conditions.MarkReconciling(obj, reason, "%s", msg)
	}
}

// mirrorVMSnapshot copies KubeVirt's status: phase, readyToUse, creation
// time, content name, indications and what they say about consistency.
func mirrorVMSnapshot(st *v1alpha1.WukongSnapshotStatus, vms *snapshotv1.VirtualMachineSnapshot) {
	if vms == nil || vms.Status == nil {
		return
	}
	vs := vms.Status
	st.Phase = v1alpha1.SnapshotPhase(vs.Phase)
	st.ReadyToUse = vs.ReadyToUse
	st.CreationTime = vs.CreationTime
	st.VirtualMachineSnapshotContentName = ptr.Deref(vs.VirtualMachineSnapshotContentName, "")
	st.Indications = indicationsOf(vs)
	if vs.Phase == snapshotv1.Succeeded {
		frozen, consistency := Consistency(st.Indications)
		st.Frozen, st.Consistency = &frozen, consistency
	} else {
		st.Frozen, st.Consistency = nil, ""
	}
}

// indicationsOf is the union of KubeVirt's deprecated status.indications
// and status.sourceIndications (virt-controller v1.9 writes both), sorted.
func indicationsOf(vs *snapshotv1.VirtualMachineSnapshotStatus) []v1alpha1.SnapshotIndication {
	var out []v1alpha1.SnapshotIndication
	add := func(i snapshotv1.Indication) {
		if !slices.Contains(out, v1alpha1.SnapshotIndication(i)) {
			out = append(out, v1alpha1.SnapshotIndication(i))
		}
	}
	for _, i := range vs.Indications { //nolint:staticcheck // deprecated in favour of sourceIndications, but virt-controller v1.9 still writes it and older ones only it
		add(i)
	}
	for _, i := range vs.SourceIndications {
		add(i.Indication)
	}
	slices.Sort(out)
	return out
}

// Consistency answers "was the guest frozen" from KubeVirt's indications,
// by the rule of virt-controller's updateSnapshotSourceIndications
// (kubevirt.io/kubevirt v1.9.0 pkg/storage/snapshot/snapshot.go): no
// Online indication means the VM did not run (Offline, nothing wrote to
// the disks); Online with GuestAgent (set only when the VMI's
// AgentConnected condition is true and the VM is not Paused) means the
// guest's filesystems were frozen through the agent for the snapshots,
// unless QuiesceTimeout says the freeze window ran out first; Online
// otherwise (NoGuestAgent, Paused) is crash-consistent.
func Consistency(ind []v1alpha1.SnapshotIndication) (frozen bool, c v1alpha1.SnapshotConsistency) {
	switch {
	case !slices.Contains(ind, v1alpha1.IndicationOnline):
		return false, v1alpha1.ConsistencyOffline
	case slices.Contains(ind, v1alpha1.IndicationGuestAgent) && !slices.Contains(ind, v1alpha1.IndicationQuiesceTimeout):
		return true, v1alpha1.ConsistencyFrozen
	}
	return false, v1alpha1.ConsistencyCrash
}

// snapshotDisks lists the content's volume backups under their spec.disks
// names (spec: the Wukong's spec captured at snapshot time; the cloud-init
// volume is never backed up, KubeVirt snapshots PVC and DataVolume volumes
// only), each with its VolumeSnapshot's readiness and restore size, and the
// sum of the sizes.
func snapshotDisks(content *snapshotv1.VirtualMachineSnapshotContent, spec *v1alpha1.WukongSpec, sizes map[string]resource.Quantity) ([]v1alpha1.SnapshotDisk, *resource.Quantity) {
	ready := map[string]*bool{}
	if content.Status != nil {
		for _, vs := range content.Status.VolumeSnapshotStatus {
			ready[vs.VolumeSnapshotName] = vs.ReadyToUse
		}
	}
	var disks []v1alpha1.SnapshotDisk
	total := resource.Quantity{}
	for _, vb := range content.Spec.VolumeBackups {
		name := vb.VolumeName
		if spec != nil {
			if i, ok := mapping.DiskOfVolume(spec.Disks, vb.VolumeName); ok {
				name = spec.Disks[i].Name
			}
		}
		d := v1alpha1.SnapshotDisk{Name: name, ClaimName: vb.PersistentVolumeClaim.Name}
		if vb.VolumeSnapshotName != nil {
			d.VolumeSnapshotName = *vb.VolumeSnapshotName
			d.ReadyToUse = ready[d.VolumeSnapshotName]
		}
		if q, ok := sizes[d.VolumeSnapshotName]; ok {
			d.RestoreSize = ptr.To(q.DeepCopy())
		} else if q, ok := vb.PersistentVolumeClaim.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			d.RestoreSize = ptr.To(q.DeepCopy())
		}
		if d.RestoreSize != nil {
			total.Add(*d.RestoreSize)
		}
		disks = append(disks, d)
	}
	slices.SortFunc(disks, func(a, b v1alpha1.SnapshotDisk) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	if len(disks) == 0 {
		return nil, nil
	}
	return disks, &total
}

// unsupportedMessage names each disk KubeVirt cannot snapshot by its
// Wukong field, with KubeVirt's reason.
func unsupportedMessage(wukong string, disks []unsupportedDisk) string {
	msg := ""
	for i, d := range disks {
		if i > 0 {
			msg += "; "
		}
		class := fmt.Sprintf("StorageClass %q", d.class)
		if d.class == "" {
			class = "the default StorageClass"
		}
		msg += fmt.Sprintf("spec.disks[%d].storageClassName of Wukong %s (disk %s): %s cannot be snapshotted (KubeVirt: %s)", d.index, wukong, d.name, class, d.reason)
	}
	return msg + ": an administrator adds a VolumeSnapshotClass for the class's CSI driver, or the disk is moved to a class that has one"
}

func sizeString(q *resource.Quantity) string {
	if q == nil {
		return "size not reported"
	}
	return "size " + q.String()
}

func consistencyMessage(c v1alpha1.SnapshotConsistency) string {
	switch c {
	case v1alpha1.ConsistencyFrozen:
		return "guest frozen through the guest agent"
	case v1alpha1.ConsistencyOffline:
		return "taken while the VM was stopped"
	case v1alpha1.ConsistencyCrash:
		return "crash-consistent (the guest was not frozen)"
	}
	return "consistency not reported"
}

package snapshot

import (
	"slices"
	"strings"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/novasphere/wukong/lib/conditions"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// computeRestoreStatus sets the WukongRestore's status (observedGeneration
// included) from the scope and returns the requeue its state needs. It
// reads nothing but the scope.
//
// Phase and conditions: Succeeded (Ready True, Restored) once KubeVirt
// completed and the run strategy was given back; Failed (Stalled,
// RestoreFailed) when KubeVirt reports a failure; InProgress (Reconciling,
// Restoring) while KubeVirt works; otherwise Pending with Ready False:
// Stalled for a name conflict, a missing Wukong or snapshot, or a snapshot
// of another Wukong; Reconciling while the snapshot is not ready, the VM
// not created, or the Wukong runs (TargetRunning: "stop the Wukong
// first"), or another restore of it runs.
func computeRestoreStatus(s *restoreScope) ctrl.Result {
	rst := s.rst
	st := &rst.Status
	st.ObservedGeneration = rst.Generation
	if s.vmr != nil && s.vmr.Status != nil {
		st.Complete = s.vmr.Status.Complete
		st.RestoreTime = s.vmr.Status.RestoreTime
		st.Disks = restoredDisks(s)
	}
	const ready = v1alpha1.ReadyCondition
	pending := func(stall bool, reason, format string, args ...any) ctrl.Result {
		st.Phase = v1alpha1.RestorePending
		markNotReady(rst, stall, reason, format, args...)
		return ctrl.Result{}
	}
	if failed, msg := restoreFailure(s.vmr); failed {
		st.Phase = v1alpha1.RestoreFailed
		markNotReady(rst, true, v1alpha1.ReasonRestoreFailed, "KubeVirt reports VirtualMachineRestore %s failed: %s", s.vmr.Name, msg)
		return ctrl.Result{}
	}
	if s.vmr != nil {
		if s.restarted {
			st.Phase = v1alpha1.RestoreSucceeded
			conditions.MarkTrue(rst, ready, v1alpha1.ReasonRestored, "%d disk(s) restored in place from WukongSnapshot %s; the Wukong runs per its run strategy", len(st.Disks), rst.Spec.SnapshotName)
			conditions.ClearProgress(rst)
			return ctrl.Result{}
		}
		st.Phase = v1alpha1.RestoreInProgress
		msg := "KubeVirt is restoring the disks in place (VirtualMachineRestore " + s.vmr.Name + ")"
		if s.running {
			msg += "; KubeVirt stops the Wukong first (targetReadinessPolicy StopTarget)"
		}
		markNotReady(rst, false, v1alpha1.ReasonRestoring, "%s", msg)
		return ctrl.Result{RequeueAfter: pollInProgress}
	}
	switch {
	case s.conflict:
		return pending(true, v1alpha1.ReasonNameConflict, "VirtualMachineRestore %s exists and is not this WukongRestore's: remove it or rename this WukongRestore", rst.Name)
	case s.wukongMissing:
		return pending(true, v1alpha1.ReasonWukongNotFound, "spec.wukongName: no Wukong %q in this namespace", rst.Spec.WukongName)
	case s.snapMissing:
		return pending(true, v1alpha1.ReasonSnapshotNotFound, "spec.snapshotName: no WukongSnapshot %q in this namespace", rst.Spec.SnapshotName)
	case !snapshotOf(s.snap, s.wukong):
		return pending(true, v1alpha1.ReasonSnapshotOfOtherWukong, "spec.snapshotName: WukongSnapshot %s is not of Wukong %s (restore in place needs a snapshot of the same Wukong)", rst.Spec.SnapshotName, rst.Spec.WukongName)
	case !ptr.Deref(s.snap.Status.ReadyToUse, false) || s.snap.Status.VirtualMachineSnapshotName == "":
		return pending(false, v1alpha1.ReasonSnapshotNotReady, "waiting for WukongSnapshot %s to be ready to use", rst.Spec.SnapshotName)
	case s.vm == nil:
		return pending(false, v1alpha1.ReasonWaitingForVM, "waiting for Wukong %s's VirtualMachine", rst.Spec.WukongName)
	case otherRestore(s) != "":
		return pending(false, v1alpha1.ReasonRestoreInProgressElsewhere, "VirtualMachineRestore %s of the Wukong is in progress; this one waits", otherRestore(s))
	case s.running:
		return pending(false, v1alpha1.ReasonTargetRunning,
			"Wukong %s is running: stop the Wukong first (virtctl stop %s, or spec.startStrategy.runStrategy: Halted), then the restore starts; or create the WukongRestore with targetReadinessPolicy: StopTarget to have KubeVirt stop it",
			rst.Spec.WukongName, rst.Spec.WukongName)
	}
	return pending(false, v1alpha1.ReasonRestoring, "creating the VirtualMachineRestore")
}

// restoredDisks lists KubeVirt's status.restores under spec.disks names
// (the Wukong's current spec, else the snapshot's captured one).
func restoredDisks(s *restoreScope) []v1alpha1.RestoredDisk {
	var specs [][]v1alpha1.DiskSpec
	if s.wukong != nil {
		specs = append(specs, s.wukong.Spec.Disks)
	}
	if s.snap != nil && s.snap.Status.WukongSpec != nil {
		specs = append(specs, s.snap.Status.WukongSpec.Disks)
	}
	var out []v1alpha1.RestoredDisk
	for _, vr := range s.vmr.Status.Restores {
		name := vr.VolumeName
		for _, disks := range specs {
			if i, ok := mapping.DiskOfVolume(disks, vr.VolumeName); ok {
				name = disks[i].Name
				break
			}
		}
		out = append(out, v1alpha1.RestoredDisk{Name: name, ClaimName: vr.PersistentVolumeClaimName, VolumeSnapshotName: vr.VolumeSnapshotName})
	}
	slices.SortFunc(out, func(a, b v1alpha1.RestoredDisk) int { return strings.Compare(a.Name, b.Name) })
	return out
}

package snapshot

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
	"github.com/novasphere/wukong/operator/internal/statuspass"
)

// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=wukongrestores,verbs=get;list;watch;update;patch,namespace=watched
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=wukongrestores/status,verbs=get;update;patch,namespace=watched
// +kubebuilder:rbac:groups=snapshot.kubevirt.io,resources=virtualmachinerestores,verbs=get;list;watch;create;delete,namespace=watched

const (
	errCreateVMR = "cannot create the VirtualMachineRestore"
	errStartVM   = "cannot give the Wukong's VirtualMachine its run strategy back"
)

// RestoreReconciler turns each WukongRestore into one KubeVirt
// VirtualMachineRestore (volumeRestorePolicy InPlace) of the Wukong's
// VirtualMachine from the WukongSnapshot's VirtualMachineSnapshot, and, once
// KubeVirt completed it, gives the VM the run strategy the Wukong asks for.
//
// What KubeVirt does (kubevirt.io/kubevirt v1.9.0
// pkg/storage/snapshot/restore.go): it waits until no VMI exists
// (vmRestoreTarget.Ready; StopTarget stops the VM first), sets the VM's
// status.restoreInProgress, and for each volume backup (InPlace: the same
// claim name, restorePVCName) deletes the claim. A claim controlled by a
// DataVolume, as every Wukong disk's is, first gets its DataVolume marked
// cdi.kubevirt.io/storage.prePopulated (prepopulateDataVolume), so CDI
// neither recreates nor re-imports it; the new claim, made from the
// VolumeSnapshot (CreateRestorePVCDef: dataSource VolumeSnapshot, the old
// claim's labels and size), carries cdi.kubevirt.io/storage.populatedFor:
// <DataVolume>, so CDI makes the DataVolume its owner again. Then it
// replaces the VM's spec with the snapshot's (generateRestoredVMSpec; the
// run strategy stays what it was, Halted after a stop; a dataVolume volume
// that is no dataVolumeTemplate becomes a persistentVolumeClaim volume of
// the same claim) and clears status.restoreInProgress.
//
// What Wukong does around it: while status.restoreInProgress is set the
// Wukong controller leaves the VM and disks alone (phase Restoring); after
// it, it accepts a persistentVolumeClaim volume of a disk's own claim in
// place of its dataVolume volume (the same claim), so it undoes nothing,
// and re-applies the rest of the VM from the Wukong's spec. The Wukong's
// DataVolumes are left with KubeVirt's prePopulated mark: CDI treats them
// as populated, which they are.
type RestoreReconciler struct {
	Client client.Client
}

// restoreScope is what one pass observed.
type restoreScope struct {
	rst           *v1alpha1.WukongRestore
	wukong        *v1alpha1.Wukong
	wukongMissing bool
	snap          *v1alpha1.WukongSnapshot
	snapMissing   bool
	vm            *kubevirtv1.VirtualMachine
	// running: a VMI of the VM exists (KubeVirt's "target not ready").
	running bool
	vmr     *snapshotv1.VirtualMachineRestore
	// conflict: a VirtualMachineRestore of the restore's name exists and
	// is not controlled by it.
	conflict bool
	// restarted: this pass gave the VM its run strategy back.
	restarted bool
}

// Reconcile observes (observeRestoreInputs, reconcileVMRestore,
// reconcileRestart), computes the status (computeRestoreStatus) and writes
// it in one patch when it changed. A Succeeded or Failed restore is final.
func (r *RestoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return statuspass.Pass[*v1alpha1.WukongRestore, *restoreScope]{
		Final: func(rst *v1alpha1.WukongRestore) bool {
			return rst.Status.Phase == v1alpha1.RestoreSucceeded || rst.Status.Phase == v1alpha1.RestoreFailed
		},
		Scope:   func(rst *v1alpha1.WukongRestore) *restoreScope { return &restoreScope{rst: rst} },
		Steps:   []func(context.Context, *restoreScope) error{r.observeRestoreInputs, r.reconcileVMRestore, r.reconcileRestart},
		Compute: computeRestoreStatus,
		Status:  func(rst *v1alpha1.WukongRestore) any { return rst.Status },
	}.Run(ctx, r.Client, req.NamespacedName, &v1alpha1.WukongRestore{})
}

// observeRestoreInputs reads the Wukong and the WukongSnapshot of this
// namespace (only this one: a name of another namespace's object gives
// the same answer as a missing one), the VM and whether it runs.
func (r *RestoreReconciler) observeRestoreInputs(ctx context.Context, s *restoreScope) error {
	ns := s.rst.Namespace
	w := &v1alpha1.Wukong{}
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: s.rst.Spec.WukongName}, w); {
	case kerrors.IsNotFound(err):
		s.wukongMissing = true
	case err != nil:
		return fmt.Errorf("%s: %w", errGetWukong, err)
	default:
		s.wukong = w
	}
	snap := &v1alpha1.WukongSnapshot{}
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: s.rst.Spec.SnapshotName}, snap); {
	case kerrors.IsNotFound(err):
		s.snapMissing = true
	case err != nil:
		return err
	default:
		s.snap = snap
	}
	if s.wukong == nil {
		return nil
	}
	vm, err := wukongVM(ctx, r.Client, s.wukong)
	if err != nil || vm == nil {
		return err
	}
	s.vm = vm
	vmi := &kubevirtv1.VirtualMachineInstance{}
	switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(vm), vmi); {
	case err == nil:
		s.running = true
	case !kerrors.IsNotFound(err):
		return err
	}
	return nil
}

// usable says whether the inputs allow creating the VirtualMachineRestore:
// the Wukong, its VM and a ready snapshot of this very Wukong (same UID).
func (s *restoreScope) usable() bool {
	return s.wukong != nil && s.vm != nil && s.snap != nil && snapshotOf(s.snap, s.wukong) &&
		ptr.Deref(s.snap.Status.ReadyToUse, false) && s.snap.Status.VirtualMachineSnapshotName != ""
}

// snapshotOf: the snapshot was taken of this Wukong (not of a deleted one
// of the same name).
func snapshotOf(snap *v1alpha1.WukongSnapshot, w *v1alpha1.Wukong) bool {
	return snap.Spec.WukongName == w.Name && (snap.Status.WukongUID == "" || snap.Status.WukongUID == w.UID)
}

// reconcileVMRestore reads the VirtualMachineRestore named like the
// WukongRestore, or creates it once the inputs are usable and the VM is
// stopped (or the policy is StopTarget, which KubeVirt carries out) and no
// other restore of the VM is in progress.
func (r *RestoreReconciler) reconcileVMRestore(ctx context.Context, s *restoreScope) error {
	vmr := &snapshotv1.VirtualMachineRestore{}
	found, absent, err := readOwned(ctx, r.Client, s.rst, vmr, &s.conflict)
	if found {
		s.vmr = vmr
	}
	if err != nil || !absent {
		return err
	}
	if s.rst.Status.VirtualMachineRestoreName != "" || !s.usable() {
		return nil
	}
	stopTarget := s.rst.Spec.TargetReadinessPolicy == v1alpha1.RestoreStopTarget
	if (s.running && !stopTarget) || otherRestore(s) != "" {
		return nil
	}
	policy := snapshotv1.VirtualMachineRestoreWaitEventually
	if stopTarget {
		policy = snapshotv1.VirtualMachineRestoreStopTarget
	}
	vmr = &snapshotv1.VirtualMachineRestore{
		ObjectMeta: ownedMeta(s.rst, s.wukong.Name),
		Spec: snapshotv1.VirtualMachineRestoreSpec{
			Target:                     vmRef(s.vm.Name),
			VirtualMachineSnapshotName: s.snap.Status.VirtualMachineSnapshotName,
			TargetReadinessPolicy:      &policy,
			VolumeRestorePolicy:        ptr.To(snapshotv1.VolumeRestorePolicyInPlace),
			// A restored claim that no DataVolume owns (a claim the user
			// brought) must not become the VM's: it would be deleted with
			// the VM, hence with the Wukong (createRestorePVC: target.Own
			// unless None). A DataVolume's claim goes back to its
			// DataVolume either way (populatedFor).
			VolumeOwnershipPolicy: ptr.To(snapshotv1.VolumeOwnershipPolicyNone),
		},
	}
	if created, err := createOwned(ctx, r.Client, s.rst, vmr, errCreateVMR); !created {
		return err
	}
	s.vmr = vmr
	s.rst.Status.VirtualMachineRestoreName = vmr.Name
	return nil
}

// otherRestore is the name of another restore KubeVirt runs on the VM
// (status.restoreInProgress), or "".
func otherRestore(s *restoreScope) string {
	if s.vm == nil || s.vm.Status.RestoreInProgress == nil || *s.vm.Status.RestoreInProgress == s.rst.Name {
		return ""
	}
	return *s.vm.Status.RestoreInProgress
}

// reconcileRestart, once KubeVirt reports the restore complete and the VM
// no longer restoring, sets the VM's spec.runStrategy to the one the
// Wukong asks for (the strategy Wukong last applied, kept in the VM's
// applied-run-strategy annotation; lib/kubevirt RunStrategyToApply): a
// Wukong stopped for the restore (virtctl stop, or KubeVirt's StopTarget,
// both set Halted) starts again unless its own strategy is Halted. Done
// once: the restore then is Succeeded and never looked at again, so a
// later power action stays the user's.
func (r *RestoreReconciler) reconcileRestart(ctx context.Context, s *restoreScope) error {
	if s.vmr == nil || s.vm == nil || !restoreComplete(s.vmr) || s.vm.Status.RestoreInProgress != nil {
		return nil
	}
	want := kubevirtv1.VirtualMachineRunStrategy(s.vm.Annotations[identity.Wukong.Key(kubevirt.KeyAppliedRunStrategy)])
	if want == "" {
		want = kubevirtv1.RunStrategyAlways
	}
	if s.vm.Spec.RunStrategy == nil || *s.vm.Spec.RunStrategy != want {
		patch := client.MergeFrom(s.vm.DeepCopy())
		s.vm.Spec.RunStrategy = &want
		if err := r.Client.Patch(ctx, s.vm, patch); err != nil {
			return fmt.Errorf("%s: %w", errStartVM, err)
		}
	}
	s.restarted = true
	return nil
}

// restoreComplete: KubeVirt's status.complete.
func restoreComplete(vmr *snapshotv1.VirtualMachineRestore) bool {
	return vmr.Status != nil && ptr.Deref(vmr.Status.Complete, false)
}

// restoreFailure is KubeVirt's Failure condition message when it is True
// (doUpdateErrorWithFailure), or "".
func restoreFailure(vmr *snapshotv1.VirtualMachineRestore) (bool, string) {
	if vmr == nil || vmr.Status == nil {
		return false, ""
	}
	for _, c := range vmr.Status.Conditions {
		if c.Type == snapshotv1.ConditionFailure && c.Status == corev1.ConditionTrue {
			return true, c.Reason
		}
	}
	return false, ""
}

// SetupWithManager registers the controller: WukongRestores, the
// VirtualMachineRestores they own, and the Wukongs' VMs and VMIs (a
// stopped VM lets a waiting restore go ahead; a cleared
// restoreInProgress lets it finish).
func (r *RestoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("wukongrestore").
		For(&v1alpha1.WukongRestore{}).
		Owns(&snapshotv1.VirtualMachineRestore{}).
		Watches(&kubevirtv1.VirtualMachine{}, handler.EnqueueRequestsFromMapFunc(r.restoresOf)).
		Watches(&kubevirtv1.VirtualMachineInstance{}, handler.EnqueueRequestsFromMapFunc(r.restoresOf)).
		Watches(&v1alpha1.WukongSnapshot{}, handler.EnqueueRequestsFromMapFunc(r.restoresOfSnapshot)).
		Complete(r)
}

// restoresOf: the unfinished WukongRestores of the namespace naming the
// Wukong (its VM and VMI are named like it).
func (r *RestoreReconciler) restoresOf(ctx context.Context, o client.Object) []reconcile.Request {
	return r.pending(ctx, o.GetNamespace(), func(rst *v1alpha1.WukongRestore) bool { return rst.Spec.WukongName == o.GetName() })
}

// restoresOfSnapshot: the unfinished WukongRestores naming the snapshot.
func (r *RestoreReconciler) restoresOfSnapshot(ctx context.Context, o client.Object) []reconcile.Request {
	return r.pending(ctx, o.GetNamespace(), func(rst *v1alpha1.WukongRestore) bool { return rst.Spec.SnapshotName == o.GetName() })
}

func (r *RestoreReconciler) pending(ctx context.Context, ns string, match func(*v1alpha1.WukongRestore) bool) []reconcile.Request {
	list := &v1alpha1.WukongRestoreList{}
	if err := r.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		rst := &list.Items[i]
		if match(rst) && rst.Status.Phase != v1alpha1.RestoreSucceeded && rst.Status.Phase != v1alpha1.RestoreFailed {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(rst)})
		}
	}
	return out
}

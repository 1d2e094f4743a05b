// Package snapshot holds the WukongSnapshot and WukongRestore controllers.
// Both compose KubeVirt's snapshot API (snapshot.kubevirt.io/v1beta1)
// instead of re-implementing it: a WukongSnapshot owns one
// VirtualMachineSnapshot of its Wukong's VirtualMachine and mirrors what
// KubeVirt and the CSI snapshotter report; a WukongRestore owns one
// VirtualMachineRestore with volumeRestorePolicy InPlace. Each has the
// Wukong controller's shape: observe into a scope, compute the status from
// it with plain functions (status.go, table-tested), write it in one patch.
package snapshot

import (
	"context"
	"fmt"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/statuspass"
)

// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=wukongsnapshots,verbs=get;list;watch;update;patch,namespace=watched
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=wukongsnapshots/status,verbs=get;update;patch,namespace=watched
// +kubebuilder:rbac:groups=snapshot.kubevirt.io,resources=virtualmachinesnapshots,verbs=get;list;watch;create;delete,namespace=watched
// +kubebuilder:rbac:groups=snapshot.kubevirt.io,resources=virtualmachinesnapshotcontents,verbs=get;list;watch,namespace=watched
// Each disk's restoreSize (VolumeSnapshot status.restoreSize), read one by one.
// +kubebuilder:rbac:groups=snapshot.storage.k8s.io,resources=volumesnapshots,verbs=get,namespace=watched

// GVKVirtualMachineSnapshot is KubeVirt's snapshot kind; the controllers
// are set up only where it is served.
var GVKVirtualMachineSnapshot = snapshotv1.SchemeGroupVersion.WithKind("VirtualMachineSnapshot")

// gvkVolumeSnapshot is the CSI VolumeSnapshot, read as unstructured (only
// status.restoreSize and readyToUse are needed; no Go module for it).
var gvkVolumeSnapshot = schema.GroupVersionKind{Group: "snapshot.storage.k8s.io", Version: "v1", Kind: "VolumeSnapshot"}

// pollInProgress: a VolumeSnapshot's restoreSize is not watched; while
// KubeVirt works, look again after this.
const pollInProgress = 5 * time.Second

// Errors prefixes.
const (
	errGetWukong   = "cannot read the Wukong"
	errGetVM       = "cannot read the Wukong's VirtualMachine"
	errCreateVMS   = "cannot create the VirtualMachineSnapshot"
	errGetContent  = "cannot read the VirtualMachineSnapshotContent"
	errOwnerUpdate = "cannot update the owner reference to the Wukong"
)

// SnapshotReconciler turns each WukongSnapshot into one KubeVirt
// VirtualMachineSnapshot of its Wukong's VirtualMachine and mirrors what
// KubeVirt reports into its status.
type SnapshotReconciler struct {
	Client client.Client
}

// snapScope is what one pass observed; computeSnapshotStatus reads only it.
type snapScope struct {
	snap *v1alpha1.WukongSnapshot
	// wukong is the Wukong of spec.wukongName in the snapshot's namespace;
	// nil when there is none (wukongMissing).
	wukong        *v1alpha1.Wukong
	wukongMissing bool
	// vm is the Wukong's VirtualMachine (nil: not created yet).
	vm *kubevirtv1.VirtualMachine
	// unsupported: disks KubeVirt cannot snapshot (index in the Wukong's
	// spec.disks and KubeVirt's reason).
	unsupported []unsupportedDisk
	// snapshotStatusesMissing: KubeVirt has not yet reported which volumes
	// of the VM can be snapshotted.
	snapshotStatusesMissing bool
	// unbound: the Wukong's disks whose claim is not bound yet, with the
	// phase the Wukong reports (status.volumes).
	unbound []string
	// vms, content: KubeVirt's objects (nil until they exist).
	vms     *snapshotv1.VirtualMachineSnapshot
	content *snapshotv1.VirtualMachineSnapshotContent
	// restoreSizes by VolumeSnapshot name, as the CSI snapshotter reports.
	restoreSizes map[string]resource.Quantity
	// conflict: a VirtualMachineSnapshot of the snapshot's name exists and
	// is not controlled by it.
	conflict bool
}

// unsupportedDisk is a disk KubeVirt reports it cannot snapshot.
type unsupportedDisk struct {
	index  int
	name   string
	class  string
	reason string
}

// Reconcile: observe (observeWukong, reconcileOwner, reconcileVMSnapshot,
// observeContent), compute the status (computeSnapshotStatus) and write it
// in one patch when it changed.
func (r *SnapshotReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// A WukongSnapshot being deleted is left alone: its
	// VirtualMachineSnapshot goes by garbage collection.
	return statuspass.Pass[*v1alpha1.WukongSnapshot, *snapScope]{
		Scope:   func(snap *v1alpha1.WukongSnapshot) *snapScope { return &snapScope{snap: snap} },
		Steps:   []func(context.Context, *snapScope) error{r.observeWukong, r.reconcileOwner, r.reconcileVMSnapshot, r.observeContent},
		Compute: computeSnapshotStatus,
		Status:  func(snap *v1alpha1.WukongSnapshot) any { return snap.Status },
	}.Run(ctx, r.Client, req.NamespacedName, &v1alpha1.WukongSnapshot{})
}

// observeWukong reads the Wukong of spec.wukongName in the snapshot's own
// namespace (never another: the name is a name, not a reference), and its
// VirtualMachine. A missing Wukong is only a problem until the snapshot is
// taken; a taken snapshot (Retain) outlives it.
func (r *SnapshotReconciler) observeWukong(ctx context.Context, s *snapScope) error {
	w := &v1alpha1.Wukong{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.snap.Namespace, Name: s.snap.Spec.WukongName}, w)
	switch {
	case kerrors.IsNotFound(err):
		s.wukongMissing = true
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", errGetWukong, err)
	}
	if !w.DeletionTimestamp.IsZero() {
		s.wukongMissing = true
		return nil
	}
	s.wukong = w
	vm, err := wukongVM(ctx, r.Client, w)
	if err != nil || vm == nil {
		return err
	}
	s.vm = vm
	s.unsupported, s.snapshotStatusesMissing = unsupportedDisks(w, vm)
	s.unbound = unboundDisks(w)
	return nil
}

// unboundDisks lists the disks whose claim the Wukong reports not bound
// (status.volumes[].bound false), as "<disk> (<phase>)", in spec order. A
// VolumeSnapshot of an unbound claim waits for it (external-snapshotter),
// and KubeVirt's VirtualMachineSnapshot with it until its failureDeadline.
func unboundDisks(w *v1alpha1.Wukong) []string {
	var out []string
	for _, v := range w.Status.Volumes {
		if !v.Bound {
			out = append(out, fmt.Sprintf("%s (%s)", v.Name, v.Phase))
		}
	}
	return out
}

// unsupportedDisks reads the VM's status.volumeSnapshotStatuses, which
// KubeVirt's snapshot controller keeps for every VM
// (pkg/storage/snapshot/snapshot.go updateVolumeSnapshotStatuses and
// getVolumeSnapshotStatus: enabled false with "No VolumeSnapshotClass:
// Volume snapshots are not configured for this StorageClass [sc] [volume]"
// when no VolumeSnapshotClass has the class's provisioner as driver). It
// returns the Wukong's disks whose volume is not enabled, and whether a
// disk's volume is not reported at all yet.
func unsupportedDisks(w *v1alpha1.Wukong, vm *kubevirtv1.VirtualMachine) ([]unsupportedDisk, bool) {
	byVolume := map[string]kubevirtv1.VolumeSnapshotStatus{}
	for _, st := range vm.Status.VolumeSnapshotStatuses {
		byVolume[st.Name] = st
	}
	var out []unsupportedDisk
	missing := false
	for i, d := range w.Spec.Disks {
		st, ok := byVolume[d.Name] // a disk's volume is named like it (mapping.DiskOfVolume)
		switch {
		case !ok:
			missing = true
		case !st.Enabled:
			out = append(out, unsupportedDisk{index: i, name: d.Name, class: d.StorageClassName, reason: st.Reason})
		}
	}
	return out, missing
}

// reconcileOwner keeps the owner reference to the Wukong that
// spec.deletionPolicy asks for: with Delete, a non-controller reference
// (the garbage collector deletes the snapshot with the Wukong); with
// Retain, none. A reference to a deleted Wukong of the same name (another
// UID) is left: the garbage collector removes the snapshot for it.
func (r *SnapshotReconciler) reconcileOwner(ctx context.Context, s *snapScope) error {
	retain := s.snap.Spec.DeletionPolicy == v1alpha1.SnapshotRetainPolicy
	refs := s.snap.GetOwnerReferences()
	idx := -1
	for i, ref := range refs {
		if ref.Kind == "Wukong" && ref.APIVersion == v1alpha1.GroupVersion.String() && ref.Name == s.snap.Spec.WukongName {
			idx = i
		}
	}
	var want []metav1.OwnerReference
	switch {
	case retain && idx >= 0:
		want = append(append([]metav1.OwnerReference{}, refs[:idx]...), refs[idx+1:]...)
	case !retain && idx < 0 && s.wukong != nil && !s.taken():
		// Only before the snapshot is taken: a snapshot of a Wukong deleted
		// since, and of a new one of the same name, is not the new one's.
		want = append(append([]metav1.OwnerReference{}, refs...), metav1.OwnerReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "Wukong", Name: s.wukong.Name, UID: s.wukong.UID,
		})
	default:
		return nil
	}
	patch := client.MergeFromWithOptions(s.snap.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.snap.SetOwnerReferences(want)
	if err := r.Client.Patch(ctx, s.snap, patch); err != nil {
		return fmt.Errorf("%s: %w", errOwnerUpdate, err)
	}
	return nil
}

// taken: the VirtualMachineSnapshot was created (its name is in status).
func (s *snapScope) taken() bool { return s.snap.Status.VirtualMachineSnapshotName != "" }

// reconcileVMSnapshot reads the VirtualMachineSnapshot named like the
// WukongSnapshot; when it does not exist and the snapshot was not taken
// yet, it creates it, once the Wukong and its VM exist and KubeVirt can
// snapshot every disk, and captures the Wukong's spec (status.wukongSpec,
// once). A VirtualMachineSnapshot of that name not controlled by the
// WukongSnapshot is a name conflict: left untouched.
func (r *SnapshotReconciler) reconcileVMSnapshot(ctx context.Context, s *snapScope) error {
	vms := &snapshotv1.VirtualMachineSnapshot{}
	found, absent, err := readOwned(ctx, r.Client, s.snap, vms, &s.conflict)
	if found {
		s.vms = vms
		if s.snap.Status.WukongSpec == nil && s.wukong != nil {
			// The pass that created it did not get to write its status:
			// capture now (the VirtualMachineSnapshot was created moments
			// ago from this Wukong).
			s.capture(vms.Name)
		}
	}
	if err != nil || !absent {
		return err // KubeVirt not installed is neither: computeSnapshotStatus says so
	}
	if s.taken() || s.wukong == nil || s.vm == nil || len(s.unsupported) > 0 || s.snapshotStatusesMissing || len(s.unbound) > 0 {
		return nil
	}
	vms = &snapshotv1.VirtualMachineSnapshot{
		ObjectMeta: ownedMeta(s.snap, s.wukong.Name),
		Spec:       snapshotv1.VirtualMachineSnapshotSpec{Source: vmRef(s.vm.Name)},
	}
	if created, err := createOwned(ctx, r.Client, s.snap, vms, errCreateVMS); !created {
		return err // not created: the cache was behind; the next pass reads it
	}
	s.vms = vms
	s.capture(vms.Name)
	return nil
}

// capture records the VirtualMachineSnapshot's name and the Wukong (UID
// and spec) it was taken of, once.
func (s *snapScope) capture(vmsName string) {
	s.snap.Status.VirtualMachineSnapshotName = vmsName
	s.snap.Status.WukongUID = s.wukong.UID
	s.snap.Status.WukongSpec = s.wukong.Spec.DeepCopy()
}

// observeContent reads KubeVirt's VirtualMachineSnapshotContent and each
// disk's VolumeSnapshot restoreSize.
func (r *SnapshotReconciler) observeContent(ctx context.Context, s *snapScope) error {
	if s.vms == nil || s.vms.Status == nil || s.vms.Status.VirtualMachineSnapshotContentName == nil {
		return nil
	}
	content := &snapshotv1.VirtualMachineSnapshotContent{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.snap.Namespace, Name: *s.vms.Status.VirtualMachineSnapshotContentName}, content)
	switch {
	case kerrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", errGetContent, err)
	}
	s.content = content
	s.restoreSizes = map[string]resource.Quantity{}
	for _, vb := range content.Spec.VolumeBackups {
		if vb.VolumeSnapshotName == nil {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvkVolumeSnapshot)
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.snap.Namespace, Name: *vb.VolumeSnapshotName}, u); err != nil {
			if kerrors.IsNotFound(err) || meta.IsNoMatchError(err) || kerrors.IsForbidden(err) {
				continue
			}
			return err
		}
		if v, ok, _ := unstructured.NestedString(u.Object, "status", "restoreSize"); ok {
			if q, err := resource.ParseQuantity(v); err == nil {
				s.restoreSizes[*vb.VolumeSnapshotName] = q
			}
		}
	}
	return nil
}

// SetupWithManager registers the controller: WukongSnapshots, the
// VirtualMachineSnapshots they own, KubeVirt's contents (by the snapshot
// they name, which is named like the WukongSnapshot) and the Wukongs' VMs
// (KubeVirt's volumeSnapshotStatuses decide when a snapshot can start).
func (r *SnapshotReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("wukongsnapshot").
		For(&v1alpha1.WukongSnapshot{}).
		Owns(&snapshotv1.VirtualMachineSnapshot{}).
		Watches(&snapshotv1.VirtualMachineSnapshotContent{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			c, ok := o.(*snapshotv1.VirtualMachineSnapshotContent)
			if !ok || c.Spec.VirtualMachineSnapshotName == nil {
				return nil
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: c.Namespace, Name: *c.Spec.VirtualMachineSnapshotName}}}
		})).
		Watches(&kubevirtv1.VirtualMachine{}, handler.EnqueueRequestsFromMapFunc(r.snapshotsOfVM)).
		Watches(&v1alpha1.Wukong{}, handler.EnqueueRequestsFromMapFunc(r.snapshotsOfVM)).
		Complete(r)
}

// snapshotsOfVM: the WukongSnapshots of the namespace naming the Wukong
// (or its VM, named like it) that are not taken yet.
func (r *SnapshotReconciler) snapshotsOfVM(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.WukongSnapshotList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, s := range list.Items {
		if s.Spec.WukongName == o.GetName() && s.Status.ReadyToUse == nil {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
		}
	}
	return out
}

package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// Clones read the Wukongs and WukongSnapshots of the Wukong's own
// namespace (wukongs get;list;watch is above); their claims and instances
// with the rules above.
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=wukongsnapshots,verbs=get;list;watch,namespace=watched
// CDI's clone authorization (the creator of a clone DataVolume needs create
// on datavolumes/source in the source namespace: CDI user guide, "clone
// authorization") is skipped by CDI v1.65 when source and target share a
// namespace, as every Wukong clone does (CDI API
// pkg/apis/core/v1beta1/authorize_utils.go CanUserClonePVC,
// CanUserCloneSnapshot): the operator is granted nothing for it (least
// privilege; datavolumes/source is a SubjectAccessReview-only resource the
// API server does not serve).

// cloneRetry is how soon a clone waiting for its source (a snapshot not
// ready to use yet, a source disk not made yet) is looked at again when no
// watch reports the change.
const cloneRetry = 5 * time.Second

// cloneSources resolves spec.disks[i].cloneFrom of every disk (in the
// Wukong's namespace only), and spec.disks[i].clusterImage (catalogSource),
// into the lib/storage clone source, by disk name. A disk whose claim or DataVolume exists already was resolved when
// its DataVolume was written: its source is read back from the DataVolume,
// and nothing about the source is checked again (a DataVolume's spec never
// changes; the source may be gone). Otherwise:
//
//   - cloneFrom.wukong: the Wukong must exist in this namespace and have
//     the disk, else a problem CloneSourceNotFound naming
//     spec.disks[i].cloneFrom.wukong with one message whether or not a
//     Wukong of that name exists elsewhere (only this namespace is read);
//     its claim (status.volumes[].pvcName, else "<wukong>-<disk>") must
//     exist, else the disk waits. The disk's size must be at least the
//     source disk's spec size (CDI refuses a smaller target:
//     pkg/controller/clone/planner.go validateSourcePVC,
//     pkg/controller/common ValidateRequestedCloneSize), else a problem
//     DiskTooSmall naming spec.disks[i].size.
//   - cloneFrom.snapshot: the WukongSnapshot must exist in this namespace
//     and have captured the disk (same rule, naming
//     spec.disks[i].cloneFrom.snapshot); until it is readyToUse and names
//     the disk's VolumeSnapshot, the disk waits (not Stalled). The size
//     must be at least the disk's restoreSize (else its size in the
//     captured spec): CDI refuses a smaller request and a volume made
//     from a snapshot is at least as big as the snapshot (CSI spec,
//     CreateVolume with a snapshot content source).
//
// A disk that waits is in waits (by disk name) with the reason; a disk
// with a problem or a wait is not written. Nothing of the source is
// modified.
func (r *WukongReconciler) cloneSources(ctx context.Context, s *scope) (map[string]*storage.CloneSource, map[string]string, error) {
	var (
		out   map[string]*storage.CloneSource
		waits map[string]string
	)
	for i, d := range s.w.Spec.Disks {
		image, _ := mapping.ClusterImage(s.w, i)
		if d.CloneFrom == nil && image == "" {
			continue
		}
		if out == nil {
			out, waits = map[string]*storage.CloneSource{}, map[string]string{}
		}
		resolve := r.cloneSource
		if image != "" {
			resolve = r.catalogSource // catalog.go
		}
		src, wait, err := resolve(ctx, s, i)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case src != nil:
			out[d.Name] = src
		case wait != "":
			waits[d.Name] = wait
			s.requeue(cloneRetry)
		}
	}
	return out, waits, nil
}

// cloneSource resolves spec.disks[i].cloneFrom (see cloneSources): the
// source, or why the disk waits, or neither (a problem was recorded).
func (r *WukongReconciler) cloneSource(ctx context.Context, s *scope, i int) (*storage.CloneSource, string, error) {
	d := s.w.Spec.Disks[i]
	cf := d.CloneFrom
	if src, found, err := r.writtenCloneSource(ctx, s.w, d.Name); err != nil || found {
		return src, "", err
	}
	srcDisk := cf.SourceDisk(d.Name)
	if cf.Snapshot != "" {
		return r.snapshotCloneSource(ctx, s, i, srcDisk)
	}
	field := fmt.Sprintf("spec.disks[%d].cloneFrom.wukong", i)
	notFound := problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonCloneSourceNotFound, Field: field, External: true,
		Message: fmt.Sprintf("no Wukong %s with a disk %s in this namespace: a disk clones only a disk of a Wukong of its own namespace", cf.Wukong, srcDisk)}
	if cf.Wukong == s.w.Name {
		s.addProblem(problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonInvalidSpec, Field: field,
			Message: "a Wukong cannot clone its own disks: clone them into another Wukong"})
		return nil, "", nil
	}
	src := &v1alpha1.Wukong{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.w.Namespace, Name: cf.Wukong}, src); err != nil {
		if apierrors.IsNotFound(err) {
			s.addProblem(notFound)
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("cannot get Wukong %s to clone: %w", cf.Wukong, err)
	}
	var spec *v1alpha1.DiskSpec
	for j := range src.Spec.Disks {
		if src.Spec.Disks[j].Name == srcDisk {
			spec = &src.Spec.Disks[j]
		}
	}
	if spec == nil {
		s.addProblem(notFound)
		return nil, "", nil
	}
	if d.Size.Cmp(spec.Size) < 0 {
		s.addProblem(tooSmall(i, d.Size, spec.Size, fmt.Sprintf("disk %s of Wukong %s", srcDisk, cf.Wukong)))
		return nil, "", nil
	}
	claim := storage.ClaimName(src.Name, srcDisk)
	for _, v := range src.Status.Volumes {
		if v.Name == srcDisk && v.PVCName != "" {
			claim = v.PVCName
		}
	}
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.w.Namespace, Name: claim}, pvc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("disk %s waits for disk %s of Wukong %s to be made", d.Name, srcDisk, cf.Wukong), nil
		}
		return nil, "", fmt.Errorf("cannot get the claim of disk %s of Wukong %s: %w", srcDisk, cf.Wukong, err)
	}
	return &storage.CloneSource{ClaimName: claim}, "", nil
}

// snapshotCloneSource resolves cloneFrom.snapshot of spec.disks[i] (see
// cloneSources).
func (r *WukongReconciler) snapshotCloneSource(ctx context.Context, s *scope, i int, srcDisk string) (*storage.CloneSource, string, error) {
	d := s.w.Spec.Disks[i]
	name := d.CloneFrom.Snapshot
	notFound := problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonCloneSourceNotFound,
		Field: fmt.Sprintf("spec.disks[%d].cloneFrom.snapshot", i), External: true,
		Message: fmt.Sprintf("no WukongSnapshot %s with a disk %s in this namespace: a disk clones only a snapshot of its own namespace", name, srcDisk)}
	snap := &v1alpha1.WukongSnapshot{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.w.Namespace, Name: name}, snap); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			s.addProblem(notFound)
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("cannot get WukongSnapshot %s to clone: %w", name, err)
	}
	var disk *v1alpha1.SnapshotDisk
	for j := range snap.Status.Disks {
		if snap.Status.Disks[j].Name == srcDisk {
			disk = &snap.Status.Disks[j]
		}
	}
	ready := snap.Status.ReadyToUse != nil && *snap.Status.ReadyToUse
	if disk == nil {
		if ready || snap.Status.WukongSpec != nil && !capturedDisk(snap.Status.WukongSpec, srcDisk) {
			// Done, or its captured spec has no such disk: it never will.
			s.addProblem(notFound)
			return nil, "", nil
		}
		return nil, fmt.Sprintf("disk %s waits for WukongSnapshot %s to be ready to use", d.Name, name), nil
	}
	if size, ok := snapshotDiskSize(snap, disk); ok && d.Size.Cmp(size) < 0 {
		s.addProblem(tooSmall(i, d.Size, size, fmt.Sprintf("disk %s of WukongSnapshot %s", srcDisk, name)))
		return nil, "", nil
	}
	if !ready || disk.VolumeSnapshotName == "" {
		return nil, fmt.Sprintf("disk %s waits for WukongSnapshot %s to be ready to use", d.Name, name), nil
	}
	return &storage.CloneSource{SnapshotName: disk.VolumeSnapshotName}, "", nil
}

// capturedDisk reports whether a captured spec has a disk of that name.
func capturedDisk(spec *v1alpha1.WukongSpec, name string) bool {
	for _, d := range spec.Disks {
		if d.Name == name {
			return true
		}
	}
	return false
}

// snapshotDiskSize is the size a clone of a snapshot's disk needs: the
// disk's VolumeSnapshot restoreSize when known, which is what CDI compares
// the clone's request with (v1.65 pkg/controller/datavolume
// snapshot-clone-controller.go validateSnapshotClone, then
// common.ValidateRequestedCloneSize: "target resources requests storage
// size is smaller than the source"); it can exceed the size the snapshotted
// Wukong asked for, since CDI's claim of a Filesystem disk includes its file
// system overhead (a 3Gi disk's claim and restoreSize were 3414499001 on
// the local cluster). Else the disk's size in the captured spec.
func snapshotDiskSize(snap *v1alpha1.WukongSnapshot, disk *v1alpha1.SnapshotDisk) (resource.Quantity, bool) {
	if disk.RestoreSize != nil && disk.RestoreSize.Sign() > 0 {
		return *disk.RestoreSize, true
	}
	if spec := snap.Status.WukongSpec; spec != nil {
		for _, d := range spec.Disks {
			if d.Name == disk.Name {
				return d.Size, true
			}
		}
	}
	return resource.Quantity{}, false
}

// tooSmall is the problem of a clone smaller than its source.
func tooSmall(i int, size, need resource.Quantity, source string) problem {
	return problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonDiskTooSmall, Field: fmt.Sprintf("spec.disks[%d].size", i),
		Message: fmt.Sprintf("%s is smaller than its clone source, %s (%s): CDI clones only into a disk at least as big as its source; grow the size",
			size.String(), source, need.String())}
}

// writtenCloneSource reads back the source of a clone disk whose DataVolume
// was written (found), or reports found with a zero source when only its
// claim is left (CDI garbage-collected the finished DataVolume; lib/storage
// then writes no DataVolume again).
func (r *WukongReconciler) writtenCloneSource(ctx context.Context, w *v1alpha1.Wukong, disk string) (*storage.CloneSource, bool, error) {
	key := client.ObjectKey{Namespace: w.Namespace, Name: storage.ClaimName(w.Name, disk)}
	dv := &cdiv1.DataVolume{}
	err := r.Client.Get(ctx, key, dv)
	switch {
	case err == nil:
		if src := dv.Spec.Source; src != nil && src.PVC != nil {
			return &storage.CloneSource{ClaimName: src.PVC.Name}, true, nil
		} else if src != nil && src.Snapshot != nil {
			return &storage.CloneSource{SnapshotName: src.Snapshot.Name}, true, nil
		} else if ref := dv.Spec.SourceRef; ref != nil && ref.Kind == cdiv1.DataVolumeDataSource {
			ns := ""
			if ref.Namespace != nil {
				ns = *ref.Namespace
			}
			return &storage.CloneSource{DataSource: &storage.DataSourceRef{Namespace: ns, Name: ref.Name}}, true, nil
		}
		// Not a clone's (a name taken by another DataVolume): lib/storage
		// reports the conflict once it has a source to build with.
		return nil, false, nil
	case meta.IsNoMatchError(err):
		return nil, false, nil // lib/storage reports CDI missing
	case !apierrors.IsNotFound(err):
		return nil, false, fmt.Errorf("cannot get DataVolume %s: %w", key.Name, err)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Client.Get(ctx, key, pvc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("cannot get PersistentVolumeClaim %s: %w", key.Name, err)
	}
	// Any name does: a DataVolume is written again only when neither exists.
	return &storage.CloneSource{ClaimName: key.Name}, true, nil
}

// cloneSourcesInUse notes, for each disk cloned from a Wukong whose copy
// has not started (storage.Observation.CloneWaiting), whether the source
// Wukong's VM runs: CDI clones a claim only while no running pod uses it
// (pkg/controller/clone/common.go IsSourceClaimReady, before a CSI clone
// or a snapshot; pkg/controller/clone-controller.go, before the source pod
// of a host-assisted copy), recording Warning Events CloneSourceInUse
// ("pod <ns>/<pod> using PersistentVolumeClaim <claim>") on the target
// while it waits. The virt-launcher pod of a running VMI mounts its
// claims, so the running VMI is what holds the clone. The note goes in
// the disk's message and in Ready's while the VM waits for the disk.
func (r *WukongReconciler) cloneSourcesInUse(ctx context.Context, s *scope) error {
	for i := range s.vols {
		o := &s.vols[i]
		d := diskSpec(s.w, o.Name)
		if d == nil || d.CloneFrom == nil || d.CloneFrom.Wukong == "" || !o.CloneWaiting {
			continue
		}
		vmi := &kubevirtv1.VirtualMachineInstance{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.w.Namespace, Name: d.CloneFrom.Wukong}, vmi)
		switch {
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			continue
		case err != nil:
			return fmt.Errorf("cannot get the VirtualMachineInstance of Wukong %s: %w", d.CloneFrom.Wukong, err)
		case vmi.IsFinal():
			continue
		}
		o.Message = fmt.Sprintf("waiting for Wukong %s to stop: CDI clones disk %s only while no running VM uses it; stop %s or clone from a snapshot of it",
			d.CloneFrom.Wukong, d.CloneFrom.SourceDisk(d.Name), d.CloneFrom.Wukong)
		s.noteCloneWait(o.Name, o.Message)
	}
	return nil
}

// diskSpec is the spec.disks entry of a name, nil when none.
// isClone: the disk of that name is written once cloneSources resolved
// its source (cloneFrom, or a catalog image: mapping.ClusterImage).
func isClone(w *v1alpha1.Wukong, name string) bool {
	for i, d := range w.Spec.Disks {
		if d.Name == name {
			image, _ := mapping.ClusterImage(w, i)
			return d.CloneFrom != nil || image != ""
		}
	}
	return false
}

func diskSpec(w *v1alpha1.Wukong, name string) *v1alpha1.DiskSpec {
	for i := range w.Spec.Disks {
		if w.Spec.Disks[i].Name == name {
			return &w.Spec.Disks[i]
		}
	}
	return nil
}

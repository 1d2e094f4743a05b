package storage

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// annPopulatedFor is CDI's claim annotation naming the DataVolume the claim
// is populated for: CDI's DataVolume controller takes a claim carrying it
// back (sets its controller reference again) while that DataVolume exists
// (containerized-data-importer pkg/controller/common AnnPopulatedFor
// "cdi.kubevirt.io/storage.populatedFor"; pkg/controller/datavolume
// controller-base.go validatePVC and pvcIsPopulatedForDataVolume).
const annPopulatedFor = "cdi.kubevirt.io/storage.populatedFor"

// errRelease prefixes Release's errors.
const errRelease = "cannot release PersistentVolumeClaim"

// RetainedFromKey is the label Release puts on a released claim, holding
// the owner's name: id.Key("retained-from-<kind>"), the owner's kind in
// lower case (e.g. vm.novasphere.dev/retained-from-wukong).
func RetainedFromKey(id apply.Identity, ownerKind string) string {
	return id.Key("retained-from-" + strings.ToLower(ownerKind))
}

// ReleaseOutcome is what Release did with one disk's claim.
type ReleaseOutcome string

// Release outcomes.
const (
	// ReleaseDone: the claim was handed over to nobody now (or by an
	// earlier call for the same owner) and keeps its data.
	ReleaseDone ReleaseOutcome = "Released"
	// ReleaseGone: the disk has no claim (never made, or deleted): nothing
	// to keep.
	ReleaseGone ReleaseOutcome = "Gone"
	// ReleaseDeleting: the claim is being deleted already (a foreground
	// deletion of the owner, or someone deleted it): it cannot be kept.
	ReleaseDeleting ReleaseOutcome = "Deleting"
	// ReleaseNotOwned: a claim of that name exists but was not created for
	// this owner: it is left untouched.
	ReleaseNotOwned ReleaseOutcome = "NotOwned"
)

// Released is Release's account of one disk.
type Released struct {
	Disk      string
	ClaimName string
	Outcome   ReleaseOutcome
}

// Release hands the claims of owner's disks with Retain over to nobody, so
// they and their data outlive owner: the caller calls it while owner is
// being deleted and holds owner with a finalizer until it returns nil.
// Disks without Retain, and disks naming an existing claim (ClaimName: never
// the owner's), are skipped.
//
// Only a claim created for owner is touched: one controlled by owner (a
// plain claim), or by its DataVolume when owner controls that DataVolume
// (CDI makes a DataVolume's claim and controls it). Such a claim loses
// the owner references to owner and to that DataVolume (so the garbage
// collector deletes neither the claim with owner nor with the DataVolume;
// owner references someone else added stay), loses CDI's populatedFor
// annotation (else CDI's DataVolume controller would take it back), loses
// id's managed-by, owner and disk labels and id's annotations, and gets
// the labels RetainedFromKey(owner's kind) = owner's name and
// id.Key(KeyRetainedFromDisk) = disk, and the annotation
// id.Key(KeyRetainedFromUID) = owner's UID. Then the DataVolume, owner's
// own child, is deleted (with its UID as precondition). This is how CDI
// itself handed a claim over when it garbage-collected a completed
// DataVolume (containerized-data-importer up to v1.61,
// pkg/controller/datavolume/garbagecollect.go: detachPvcDeleteDv and
// updatePvcOwnerRefs drop the DataVolume's reference, delete
// AnnPopulatedFor, update the claim, then delete the DataVolume; CDI
// moved the DataVolume's owner references onto the claim, which Release
// does not, as the point is that nothing deletes it). The claim is
// patched with its resourceVersion as precondition, so a concurrent change
// makes the call fail (retry) instead of being overwritten.
//
// A claim being deleted already cannot be kept (ReleaseDeleting), a
// missing one has nothing to keep (ReleaseGone): neither is an error, so
// owner's deletion is never blocked by a claim that is gone. A second call
// finds the claims it released (by their labels and owner UID) and
// reports them ReleaseDone again. c's scheme must know core/v1; the
// DataVolume kind may be unserved (no CDI: plain claims only).
func Release(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, disks []Disk) ([]Released, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	owner, err := apply.OwnerWithKind(owner, c.Scheme())
	if err != nil {
		return nil, err
	}
	var out []Released
	for _, d := range disks {
		if !d.Retain || d.ClaimName != "" {
			continue
		}
		r, err := release(ctx, c, id, owner, d.Name)
		if err != nil {
			return out, fmt.Errorf("disk %q: %w", d.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func release(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, disk string) (Released, error) {
	key := client.ObjectKey{Namespace: owner.GetNamespace(), Name: ClaimName(owner.GetName(), disk)}
	r := Released{Disk: disk, ClaimName: key.Name}
	pvc, err := apply.GetOptional(ctx, c, key, &corev1.PersistentVolumeClaim{})
	if err != nil {
		return r, fmt.Errorf("%s: %w", errGetPVC, err)
	}
	dv, err := apply.GetOptional(ctx, c, key, &cdiv1.DataVolume{})
	if meta.IsNoMatchError(err) || runtime.IsNotRegisteredError(err) {
		dv, err = nil, nil
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w", errGetDataVolume, err)
	}
	if dv != nil && !controlledBy(dv, owner.GetUID()) {
		dv = nil // not owner's: never touched
	}
	fromKey := RetainedFromKey(id, owner.GetObjectKind().GroupVersionKind().Kind)
	switch {
	case pvc == nil:
		r.Outcome = ReleaseGone
		return r, nil
	case pvc.DeletionTimestamp != nil:
		r.Outcome = ReleaseDeleting
		return r, nil
	case controlledBy(pvc, owner.GetUID()) || (dv != nil && controlledBy(pvc, dv.UID)):
		if err := detach(ctx, c, id, owner, pvc, dv, fromKey, disk); err != nil {
			return r, err
		}
	case pvc.Labels[fromKey] == owner.GetName() && pvc.Annotations[id.Key(KeyRetainedFromUID)] == string(owner.GetUID()):
		// Released by an earlier call (whose DataVolume delete may not
		// have happened).
	default:
		r.Outcome = ReleaseNotOwned
		return r, nil
	}
	r.Outcome = ReleaseDone
	if dv != nil {
		uid := dv.UID
		if err := c.Delete(ctx, dv, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return r, fmt.Errorf("cannot delete DataVolume %s of the released claim: %w", key.Name, err)
		}
	}
	return r, nil
}

// detach patches pvc as Release describes.
func detach(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, pvc *corev1.PersistentVolumeClaim, dv *cdiv1.DataVolume, fromKey, disk string) error {
	base := pvc.DeepCopy()
	drop := map[types.UID]bool{owner.GetUID(): true}
	if dv != nil {
		drop[dv.UID] = true
	}
	var refs []metav1.OwnerReference
	for _, ref := range pvc.OwnerReferences {
		if !drop[ref.UID] {
			refs = append(refs, ref)
		}
	}
	pvc.OwnerReferences = refs
	labels := pvc.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	delete(labels, apply.LabelManagedBy)
	delete(labels, id.OwnerLabelKey())
	delete(labels, id.Key(KeyDisk))
	labels[fromKey] = owner.GetName()
	labels[id.Key(KeyRetainedFromDisk)] = disk
	pvc.Labels = labels
	annotations := pvc.Annotations
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, annPopulatedFor)
	delete(annotations, id.HashAnnotationKey())
	delete(annotations, id.Key(KeyDiskSize))
	annotations[id.Key(KeyRetainedFromUID)] = string(owner.GetUID())
	pvc.Annotations = annotations
	if err := c.Patch(ctx, pvc, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("%s %s: %w", errRelease, pvc.Name, err)
	}
	return nil
}

func controlledBy(obj client.Object, uid types.UID) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == uid
}

package sandbox

import (
	"context"
	"math"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// AnnDeleteAfterCompletion is the DataVolume annotation with which CDI
// before v1.62 marked a DataVolume for garbage collection once it
// succeeded (containerized-data-importer pkg/controller/common
// AnnDeleteAfterCompletion). CDI's DataVolume mutating webhook
// (pkg/apiserver/webhooks/datavolume-mutate.go) set it to "true" on every
// new DataVolume while CDIConfig spec.dataVolumeTTLSeconds was not negative
// (the default was 0, collection on, in v1.54 to v1.56, then -1), unless a
// user had set it to "false" (the per-DataVolume opt-out GitOps users
// take). The sandbox runs CDI v1.65's webhook, which no longer sets it: a
// test plays the old webhook by setting it.
const AnnDeleteAfterCompletion = "cdi.kubevirt.io/storage.deleteAfterCompletion"

// cdiConfig reads CDIConfig "config" (nil when absent).
func (r *cdiSim) cdiConfig(ctx context.Context) (*cdiv1.CDIConfig, error) {
	cfg := &cdiv1.CDIConfig{}
	if err := r.c.Get(ctx, types.NamespacedName{Name: cdiConfigName}, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return cfg, nil
}

// collect plays the garbage collection of a Succeeded DataVolume by CDI
// before v1.62 (pkg/controller/datavolume/garbagecollect.go, removed in
// v1.62): when CDIConfig spec.dataVolumeTTLSeconds is set and not negative
// (GetDataVolumeTTLSeconds) and the DataVolume is annotated
// AnnDeleteAfterCompletion "true" (isGarbageCollectionAllowed; the owner
// finalizer RBAC check passes here), once the TTL has passed since the
// Ready condition's transition (getDeltaTTL), detachPvcDeleteDv hands the
// claim over: the DataVolume's owner reference is removed from the claim,
// the DataVolume's own owner references added (updatePvcOwnerRefs), the
// annotation AnnPopulatedFor deleted, then the DataVolume is deleted. It
// returns how long until the TTL passes (0: nothing to wait for).
func (r *cdiSim) collect(ctx context.Context, dv *cdiv1.DataVolume, pvc *corev1.PersistentVolumeClaim) (requeueAfter int64, err error) {
	if dv.Status.Phase != cdiv1.Succeeded || dv.Annotations[AnnDeleteAfterCompletion] != "true" {
		return 0, nil
	}
	cfg, err := r.cdiConfig(ctx)
	if err != nil || cfg == nil || cfg.Spec.DataVolumeTTLSeconds == nil || *cfg.Spec.DataVolumeTTLSeconds < 0 {
		return 0, err
	}
	ttl := int64(*cfg.Spec.DataVolumeTTLSeconds)
	for _, c := range dv.Status.Conditions {
		if c.Type == cdiv1.DataVolumeReady {
			if left := ttl - int64(metav1.Now().Sub(c.LastTransitionTime.Time).Seconds()); left > 0 {
				return left, nil
			}
		}
	}
	refs := make([]metav1.OwnerReference, 0, len(pvc.OwnerReferences)+len(dv.OwnerReferences))
	for _, ref := range pvc.OwnerReferences {
		if ref.UID != dv.UID {
			refs = append(refs, ref)
		}
	}
	for _, ref := range dv.OwnerReferences {
		if !hasOwnerUID(refs, ref.UID) {
			refs = append(refs, ref)
		}
	}
	pvc.OwnerReferences = refs
	delete(pvc.Annotations, annPopulatedFor)
	if err := r.c.Update(ctx, pvc); err != nil {
		return 0, err
	}
	uid := dv.UID
	if err := r.c.Delete(ctx, dv, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	log.FromContext(ctx).Info("garbage-collected DataVolume: its claim is handed to its owner (CDI before v1.62, dataVolumeTTLSeconds)")
	return 0, nil
}

func hasOwnerUID(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

// alignBlockSize is CDI's pkg/util DefaultAlignBlockSize (1MiB).
const alignBlockSize = 1024 * 1024

// inflateForOverhead adds CDI's file system overhead to the request of a
// Filesystem claim made from a DataVolume's spec.storage, as CDI's
// renderPvcSpecVolumeSize does (pkg/controller/datavolume/util.go,
// v1.65.0): InflateSizeWithOverhead (pkg/controller/common/util.go) with
// the overhead GetFilesystemOverheadForStorageClass reads from CDIConfig
// "config" status.filesystemOverhead (the class's entry, else global; "0"
// when the status has none, as before CDI's config controller has run),
// and GetRequiredSpace (pkg/util/util.go): the size aligned up to 1MiB,
// times 1 + overhead, rounded up. A Block claim is not inflated. The
// sandbox's CDIConfig status is empty unless a test fills it, so claims
// keep their request unless it does.
func (r *cdiSim) inflateForOverhead(ctx context.Context, spec *corev1.PersistentVolumeClaimSpec) error {
	if spec.VolumeMode != nil && *spec.VolumeMode == corev1.PersistentVolumeBlock {
		return nil
	}
	req, ok := spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return nil
	}
	cfg, err := r.cdiConfig(ctx)
	if err != nil || cfg == nil || cfg.Status.FilesystemOverhead == nil {
		return err
	}
	overhead := cfg.Status.FilesystemOverhead.Global
	if spec.StorageClassName != nil {
		if o, ok := cfg.Status.FilesystemOverhead.StorageClass[*spec.StorageClassName]; ok {
			overhead = o
		}
	}
	f, err := strconv.ParseFloat(string(overhead), 64)
	if err != nil || f == 0 {
		return nil //nolint:nilerr // CDI's ParseFloat error is ignored too: no overhead
	}
	aligned := (req.Value() + alignBlockSize - 1) / alignBlockSize * alignBlockSize
	spec.Resources.Requests = spec.Resources.Requests.DeepCopy()
	spec.Resources.Requests[corev1.ResourceStorage] = *resource.NewScaledQuantity(int64(math.Ceil(float64(aligned)*(1+f))), 0)
	return nil
}

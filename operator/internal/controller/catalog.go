package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/catalog"
	"github.com/novasphere/wukong/operator/mapping"
)

// A disk naming a ClusterImage reads it (cluster-scoped, the
// administrator's) and its namespace's labels (namespaces get is in the
// cluster-wide rules already).
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=clusterimages,verbs=get;list;watch
// The disk's DataVolume clones the image's DataSource in the catalog
// namespace: CDI's DataVolume admission resolves the DataSource and asks,
// by a SubjectAccessReview, whether the writer may create
// datavolumes/source there (CDI API pkg/apis/core/v1beta1/authorize.go
// AuthorizeUser, authorize_utils.go CanUserClonePVC); granted in the
// catalog namespace only.
// +kubebuilder:rbac:groups=cdi.kubevirt.io,resources=datavolumes/source,verbs=create,namespace=catalog

// catalogSource resolves spec.disks[i].clusterImage (or spec.osClusterImage
// for the boot disk: mapping.ClusterImage) into a clone of the
// image's golden DataSource in r.CatalogNamespace, or why the disk waits,
// or neither (a problem was recorded):
//
//   - the ClusterImage must exist, not be being deleted, and select the
//     Wukong's namespace (catalog.NamespaceAllowed), else a problem
//     ClusterImageNotAllowed naming the field that named it, with one
//     message whichever it is (a tenant learns nothing of images not
//     declared for it);
//   - the disk's size must be at least the image's (CDI refuses a smaller
//     clone target: ValidateRequestedCloneSize), else DiskTooSmall naming
//     spec.disks[i].size;
//   - the golden copy is the one of the disk's StorageClass (the cluster
//     default when the disk names none), else the image's first; until it
//     is ready the disk waits (CDI's clone of a DataSource that is not
//     Ready waits too, but the operator's DataVolume would then sit
//     Pending with CDI's reason; a wait says what it waits for).
//
// A disk whose DataVolume or claim exists already was resolved when it was
// written (writtenCloneSource): nothing is checked again, so a disk keeps
// its data when the administrator later withdraws the image.
func (r *WukongReconciler) catalogSource(ctx context.Context, s *scope, i int) (*storage.CloneSource, string, error) {
	d := s.w.Spec.Disks[i]
	if src, found, err := r.writtenCloneSource(ctx, s.w, d.Name); err != nil || found {
		return src, "", err
	}
	name, field := mapping.ClusterImage(s.w, i)
	refused := problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonImageNotAllowed,
		Field: field, External: true, Message: catalog.RefusedMessage(name, s.w.Namespace)}
	img := &v1alpha1.ClusterImage{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, img); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			s.addProblem(refused)
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("cannot get ClusterImage %s: %w", name, err)
	}
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: s.w.Namespace}, ns); err != nil {
		return nil, "", fmt.Errorf("cannot get Namespace %s: %w", s.w.Namespace, err)
	}
	if !img.DeletionTimestamp.IsZero() || !catalog.NamespaceAllowed(img, ns) {
		s.addProblem(refused)
		return nil, "", nil
	}
	if d.Size.Cmp(img.Spec.Size) < 0 {
		s.addProblem(tooSmall(i, d.Size, img.Spec.Size, "ClusterImage "+img.Name))
		return nil, "", nil
	}
	class := d.StorageClassName
	if class == "" {
		// No default (ResolveClass's StorageClassNotFound) is no
		// failure here: the disk takes the image's first copy.
		sc, err := storage.ResolveClass(ctx, r.Client, "")
		if f, ok := apply.AsFailure(err); err != nil && (!ok || f.Reason != storage.ReasonStorageClassNotFound) {
			return nil, "", fmt.Errorf("cannot find the default StorageClass: %w", err)
		}
		if sc != nil {
			class = sc.Name
		}
	}
	cp := catalog.CopyFor(img, class)
	if cp == nil || !cp.Ready {
		return nil, fmt.Sprintf("disk %s waits for the golden copy of ClusterImage %s to be imported", d.Name, img.Name), nil
	}
	return &storage.CloneSource{DataSource: &storage.DataSourceRef{Namespace: r.CatalogNamespace, Name: cp.DataSourceName}}, "", nil
}

// catalogUsers maps a ClusterImage to the Wukongs with a disk cloned from
// it (mapping.ClusterImage)
// (read from the cache), so a Wukong waiting for the image, or refused it,
// is looked at again when the administrator declares it, allows the
// namespace or the golden copy becomes ready.
func (r *WukongReconciler) catalogUsers(ctx context.Context, o client.Object) []reconcile.Request {
	return r.wukongRequests(ctx, func(w *v1alpha1.Wukong) bool {
		for i := range w.Spec.Disks {
			if name, _ := mapping.ClusterImage(w, i); name == o.GetName() {
				return true
			}
		}
		return false
	})
}

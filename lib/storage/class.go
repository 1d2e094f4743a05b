package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"

	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// Default-class annotations, as Kubernetes reads them.
const (
	AnnotationDefaultClass     = "storageclass.kubernetes.io/is-default-class"
	AnnotationBetaDefaultClass = "storageclass.beta.kubernetes.io/is-default-class"
)

// ResolveClass returns the StorageClass called name or, when name is empty,
// the cluster default (annotation is-default-class "true"; with several
// defaults the newest, ties broken by name, as Kubernetes does). A missing
// class is a stalled *apply.Failure, reason ReasonStorageClassNotFound (as
// Reconcile reports a disk's), Subject name, wrapping *ClassNotFoundError,
// or ErrNoDefaultClass when name is empty and no class is the default;
// errors.Is / errors.As reach them. An API error is returned as it is, to
// be retried (as Reconcile's).
func ResolveClass(ctx context.Context, c client.Reader, name string) (*storagev1.StorageClass, error) {
	sc, err := resolveClass(ctx, c, name)
	if classMissing(err) {
		return nil, apply.Stalled(ReasonStorageClassNotFound, err).On(name, "")
	}
	return sc, err
}

// classMissing reports whether err (resolveClass's) says the class does
// not exist: *ClassNotFoundError or ErrNoDefaultClass.
func classMissing(err error) bool {
	var nf *ClassNotFoundError
	return errors.As(err, &nf) || errors.Is(err, ErrNoDefaultClass)
}

// resolveClass is ResolveClass with the missing class as its typed error
// (Reconcile reports it on the disk that names it).
func resolveClass(ctx context.Context, c client.Reader, name string) (*storagev1.StorageClass, error) {
	if name != "" {
		sc := &storagev1.StorageClass{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, sc); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &ClassNotFoundError{Name: name}
			}
			return nil, fmt.Errorf("%s: %w", errGetClass, err)
		}
		return sc, nil
	}
	list := &storagev1.StorageClassList{}
	if err := c.List(ctx, list); err != nil {
		return nil, fmt.Errorf("%s: %w", errListClasses, err)
	}
	if sc := DefaultClass(list.Items); sc != nil {
		return sc, nil
	}
	return nil, ErrNoDefaultClass
}

// DefaultClass picks the default among classes like Kubernetes'
// DefaultStorageClass admission: the newest marked default, then by name.
func DefaultClass(classes []storagev1.StorageClass) *storagev1.StorageClass {
	var defaults []*storagev1.StorageClass
	for i := range classes {
		if IsDefaultClass(&classes[i]) {
			defaults = append(defaults, &classes[i])
		}
	}
	if len(defaults) == 0 {
		return nil
	}
	sort.Slice(defaults, func(i, j int) bool {
		ti, tj := defaults[i].CreationTimestamp.UnixNano(), defaults[j].CreationTimestamp.UnixNano()
		if ti == tj {
			return defaults[i].Name < defaults[j].Name
		}
		return ti > tj
	})
	return defaults[0]
}

// IsDefaultClass reports whether a StorageClass (or its metadata) is
// marked default (either annotation "true").
func IsDefaultClass(sc metav1.Object) bool {
	a := sc.GetAnnotations()
	return a[AnnotationDefaultClass] == "true" || a[AnnotationBetaDefaultClass] == "true"
}

func isWFFC(sc *storagev1.StorageClass) bool {
	return sc != nil && sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

func expandable(sc *storagev1.StorageClass) bool {
	return sc != nil && sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
}

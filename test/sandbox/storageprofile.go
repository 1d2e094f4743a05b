package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CDI's StorageProfiles in the sandbox.
//
// CDI's own StorageProfile controller runs inside the cdi-admission process
// (hack/cdi-admission, controller.NewStorageProfileController of
// kubevirt.io/containerized-data-importer): it keeps one StorageProfile per
// StorageClass and fills status.claimPropertySets from the profile's spec or,
// when that is empty, from CDI's table of known provisioners
// (pkg/storagecapabilities). The sandbox's CSI driver (Provisioner) is not
// in that table, so, as an administrator of such a cluster does
// (https://github.com/kubevirt/containerized-data-importer/blob/main/doc/storageprofile.md),
// the fixtures set spec.claimPropertySets on the profiles of the sandbox's
// own classes. StorageClassUnknownProvisioner is left alone: its profile
// has no claim property sets, so a DataVolume using spec.storage without
// access modes cannot get a claim (see claimDefaults).

const (
	// StorageClassUnknownProvisioner names a provisioner neither CDI nor the
	// sandbox knows: its StorageProfile stays without claimPropertySets, a
	// DataVolume on it without access modes stays unset with
	// Bound=False reason ErrClaimNotValid (CDI's answer), and a PVC on it is
	// never provisioned.
	StorageClassUnknownProvisioner = "unknown-provisioner"
	// UnknownProvisioner is the provisioner of StorageClassUnknownProvisioner.
	UnknownProvisioner = "csi.unknown.example.com"
	// reasonClaimNotValid is the DataVolume condition reason CDI sets when
	// it cannot render the claim (pkg/controller/common ErrClaimNotValid).
	reasonClaimNotValid = "ErrClaimNotValid"
)

// profiledClasses are the sandbox classes whose profiles the fixtures
// complete, as an administrator would.
var profiledClasses = []string{StorageClassStandard, StorageClassWFFC, StorageClassFixed}

// ClaimPropertySets is what the fixtures write into the spec of those profiles.
func ClaimPropertySets() []cdiv1.ClaimPropertySet {
	return []cdiv1.ClaimPropertySet{{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		VolumeMode:  ptr.To(corev1.PersistentVolumeFilesystem),
	}}
}

// completeStorageProfiles writes spec.claimPropertySets into the profiles of
// the sandbox's own classes (creating a profile CDI's controller has not
// made yet; the controller adopts it by name). Without CDI's controller
// (cdi-admission unavailable) it also copies them into status, which is
// what that controller would do.
func (s *Sandbox) completeStorageProfiles(ctx context.Context, withController bool) error {
	for _, name := range profiledClasses {
		// CDI's controller may create the profile at the same moment:
		// retry on AlreadyExists and Conflict.
		err := retry.OnError(retry.DefaultRetry, func(err error) bool {
			return apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err)
		}, func() error {
			sp := &cdiv1.StorageProfile{ObjectMeta: simulatedMeta(name, "")}
			err := s.Client.Get(ctx, types.NamespacedName{Name: name}, sp)
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			sp.Spec.ClaimPropertySets = ClaimPropertySets()
			if apierrors.IsNotFound(err) {
				err = s.Client.Create(ctx, sp)
			} else {
				err = s.Client.Update(ctx, sp)
			}
			if err != nil || withController {
				return err
			}
			sp.Status.StorageClass, sp.Status.Provisioner = ptr.To(name), ptr.To(Provisioner)
			sp.Status.ClaimPropertySets = ClaimPropertySets()
			return s.Client.Status().Update(ctx, sp)
		})
		if err != nil {
			return fmt.Errorf("completing StorageProfile %s: %w", name, err)
		}
	}
	return nil
}

// waitForStorageProfiles waits until every StorageClass has a StorageProfile
// that reports its provisioner, and the sandbox's own classes report claim
// property sets. Without CDI's controller it checks only the latter.
func (s *Sandbox) waitForStorageProfiles(ctx context.Context, withController bool) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		classes := &storagev1.StorageClassList{}
		if err := s.Client.List(ctx, classes); err != nil {
			return false, err
		}
		for _, sc := range classes.Items {
			if !withController && sc.Provisioner != Provisioner {
				continue
			}
			sp := &cdiv1.StorageProfile{}
			if err := s.Client.Get(ctx, types.NamespacedName{Name: sc.Name}, sp); err != nil {
				last = fmt.Errorf("StorageProfile %s: %w", sc.Name, err)
				return false, nil
			}
			if sp.Status.Provisioner == nil {
				last = fmt.Errorf("StorageProfile %s has no status yet", sc.Name)
				return false, nil
			}
			if sc.Provisioner == Provisioner && len(sp.Status.ClaimPropertySets) == 0 {
				last = fmt.Errorf("StorageProfile %s reports no claimPropertySets", sc.Name)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		if last != nil {
			return fmt.Errorf("waiting for CDI's StorageProfiles: %w (last: %w)", err, last)
		}
		return fmt.Errorf("waiting for CDI's StorageProfiles: %w", err)
	}
	return nil
}

// errClaimNotValid is CDI's answer when it cannot render a DataVolume's
// claim; its text is CDI's.
type errClaimNotValid struct{ msg string }

func (e *errClaimNotValid) Error() string { return e.msg }

// claimDefaults fills a claim rendered from a DataVolume's spec.storage the
// way CDI's DataVolume controller does
// (pkg/controller/datavolume/util.go renderPvcSpecVolumeModeAndAccessModesAndStorageClass,
// v1.65.0): the class is the named one, else the default virt class, else
// the default class; with no class and no access modes it refuses
// (MessageErrStorageClassNotFound); with neither access modes nor volume
// mode it takes both from the first of the profile's status.claimPropertySets;
// with access modes missing, those of the first set of the claim's volume
// mode; with the volume mode missing, that of the first set sharing an
// access mode (else none: the Kubernetes default). Where access modes are
// missing and the profile has none, it refuses with "no accessMode specified
// in StorageProfile <name>".
// Refusals are *errClaimNotValid.
func claimDefaults(ctx context.Context, c client.Client, spec *corev1.PersistentVolumeClaimSpec) error {
	sc, err := cdiStorageClass(ctx, c, spec.StorageClassName)
	if err != nil {
		return err
	}
	if sc == nil {
		if len(spec.AccessModes) == 0 {
			return &errClaimNotValid{"PVC spec is missing accessMode and no storageClass to choose profile"}
		}
		return nil
	}
	spec.StorageClassName = ptr.To(sc.Name)
	if len(spec.AccessModes) > 0 && spec.VolumeMode != nil {
		return nil
	}
	sp := &cdiv1.StorageProfile{}
	if err := c.Get(ctx, types.NamespacedName{Name: sc.Name}, sp); err != nil {
		if apierrors.IsNotFound(err) {
			return &errClaimNotValid{"cannot get StorageProfile: " + err.Error()}
		}
		return err
	}
	sets := sp.Status.ClaimPropertySets
	switch {
	case len(spec.AccessModes) == 0 && spec.VolumeMode == nil:
		if len(sets) == 0 || len(sets[0].AccessModes) == 0 {
			return &errClaimNotValid{"no accessMode specified in StorageProfile " + sp.Name}
		}
		spec.AccessModes, spec.VolumeMode = append(spec.AccessModes, sets[0].AccessModes...), sets[0].VolumeMode
	case len(spec.AccessModes) == 0: // the first set of this volume mode
		for _, set := range sets {
			if set.VolumeMode != nil && *set.VolumeMode == *spec.VolumeMode && len(set.AccessModes) > 0 {
				spec.AccessModes = append(spec.AccessModes, set.AccessModes...)
				return nil
			}
		}
		return &errClaimNotValid{"no accessMode specified in StorageProfile " + sp.Name}
	default: // volume mode of the first set sharing an access mode, else the Kubernetes default
		for _, set := range sets {
			for _, have := range set.AccessModes {
				if slices.Contains(spec.AccessModes, have) {
					spec.VolumeMode = set.VolumeMode
					return nil
				}
			}
		}
	}
	return nil
}

// cdiStorageClass resolves a claim's class as CDI does
// (pkg/controller/common getStorageClassByName): the named class (nil when
// it does not exist), else the newest class annotated
// storageclass.kubevirt.io/is-default-virt-class, else the newest annotated
// storageclass.kubernetes.io/is-default-class, else nil.
func cdiStorageClass(ctx context.Context, c client.Client, name *string) (*storagev1.StorageClass, error) {
	if name != nil {
		sc := &storagev1.StorageClass{}
		if err := c.Get(ctx, types.NamespacedName{Name: *name}, sc); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("unable to retrieve storage class %s", *name)
		}
		return sc, nil
	}
	list := &storagev1.StorageClassList{}
	if err := c.List(ctx, list); err != nil {
		return nil, errors.New("unable to retrieve storage classes")
	}
	for _, ann := range []string{"storageclass.kubevirt.io/is-default-virt-class", "storageclass.kubernetes.io/is-default-class"} {
		var best *storagev1.StorageClass
		for i := range list.Items {
			sc := &list.Items[i]
			if sc.Annotations[ann] != "true" {
				continue
			}
			if best == nil || sc.CreationTimestamp.After(best.CreationTimestamp.Time) ||
				(sc.CreationTimestamp.Equal(&best.CreationTimestamp) && sc.Name < best.Name) {
				best = sc
			}
		}
		if best != nil {
			return best, nil
		}
	}
	return nil, nil
}

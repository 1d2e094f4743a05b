package storage

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// ClaimName is the name of the PVC and DataVolume of disk: "<owner>-<disk>".
func ClaimName(ownerName, disk string) string { return ownerName + "-" + disk }

// Validate checks the disk's name, size and source (for a disk naming an
// existing claim: the claim's name, no source, no class, a size that is not
// negative); errors wrap ErrInvalidDisk.
func (d Disk) Validate() error {
	_, err := d.validate()
	return err
}

// validate is Validate, also returning the kind of the disk's source, so
// Reconcile parses the source once.
func (d Disk) validate() (Kind, error) {
	if errs := validation.IsDNS1123Label(d.Name); len(errs) > 0 {
		return KindBlank, fmt.Errorf("%w: name %q is not a DNS-1123 label", ErrInvalidDisk, d.Name)
	}
	if d.ClaimName != "" {
		switch {
		case len(validation.IsDNS1123Subdomain(d.ClaimName)) > 0:
			return KindBlank, fmt.Errorf("%w: disk %q: claim name %q is not a DNS-1123 subdomain", ErrInvalidDisk, d.Name, d.ClaimName)
		case d.Source != "":
			return KindBlank, fmt.Errorf("%w: disk %q names an existing claim and a source: nothing is imported into an existing claim", ErrInvalidDisk, d.Name)
		case d.StorageClassName != "":
			return KindBlank, fmt.Errorf("%w: disk %q names an existing claim and a StorageClass: the claim keeps its own", ErrInvalidDisk, d.Name)
		case d.Size.Sign() < 0:
			return KindBlank, fmt.Errorf("%w: disk %q has a negative size", ErrInvalidDisk, d.Name)
		}
		return KindBlank, nil
	}
	if d.Size.Sign() <= 0 {
		return KindBlank, fmt.Errorf("%w: disk %q needs a positive size", ErrInvalidDisk, d.Name)
	}
	if d.Clone != nil {
		kind, err := d.Clone.kind(d)
		if err == nil {
			err = d.validateAccess(kind)
		}
		return kind, err
	}
	kind, err := SourceKind(d.Source)
	if err == nil {
		err = d.validateAccess(kind)
	}
	return kind, err
}

// kind checks a clone source: no Source beside it, exactly one of
// ClaimName, SnapshotName and DataSource, a DNS-1123 subdomain (what the
// three kinds' names are).
func (c *CloneSource) kind(d Disk) (Kind, error) {
	if d.Source != "" {
		return KindBlank, fmt.Errorf("%w: disk %q has both a source and a clone source", ErrInvalidDisk, d.Name)
	}
	name, kind, set := c.ClaimName, KindClone, 0
	for _, on := range []bool{c.ClaimName != "", c.SnapshotName != "", c.DataSource != nil} {
		if on {
			set++
		}
	}
	if set != 1 {
		return KindBlank, fmt.Errorf("%w: disk %q needs exactly one of a claim, a snapshot and a DataSource to clone", ErrInvalidDisk, d.Name)
	}
	switch {
	case c.SnapshotName != "":
		name, kind = c.SnapshotName, KindCloneSnapshot
	case c.DataSource != nil:
		name, kind = c.DataSource.Name, KindCloneDataSource
		if ns := c.DataSource.Namespace; ns != "" && len(validation.IsDNS1123Label(ns)) > 0 {
			return KindBlank, fmt.Errorf("%w: disk %q clones a DataSource of namespace %q, which is not a valid namespace name", ErrInvalidDisk, d.Name, ns)
		}
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return KindBlank, fmt.Errorf("%w: disk %q clones %q, which is not a valid object name", ErrInvalidDisk, d.Name, name)
	}
	return kind, nil
}

// Labels returns the labels written on a disk's objects: id's managed-by
// and owner labels, and id.Key(KeyDisk) = disk.
func Labels(id apply.Identity, ownerName, disk string) map[string]string {
	l := id.OwnerLabels(ownerName)
	l[id.Key(KeyDisk)] = disk
	return l
}

func objectMeta(id apply.Identity, owner client.Object, d Disk) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            ClaimName(owner.GetName(), d.Name),
		Namespace:       owner.GetNamespace(),
		Labels:          Labels(id, owner.GetName(), d.Name),
		OwnerReferences: []metav1.OwnerReference{apply.ControllerRef(owner)},
	}
}

func requests(d Disk) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceStorage: d.Size.DeepCopy()}
}

// BuildPVC returns the plain PersistentVolumeClaim of a blank disk:
// ReadWriteOnce, Filesystem, d.Size, d.StorageClassName (unset when empty,
// so the cluster default applies), labelled for id (Labels). Reconcile
// writes it only for a blank disk whose plain claim exists already (written
// before blank disks became DataVolumes) or when CDI is not installed (see
// Observation.PlainClaim). owner must carry its apiVersion and kind
// (TypeMeta).
func BuildPVC(id apply.Identity, owner client.Object, d Disk) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: objectMeta(id, owner, d),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			VolumeMode:  ptr(corev1.PersistentVolumeFilesystem),
			Resources:   corev1.VolumeResourceRequirements{Requests: requests(d)},
		},
	}
	if d.StorageClassName != "" {
		pvc.Spec.StorageClassName = ptr(d.StorageClassName)
	}
	return pvc
}

// BuildDataVolume returns the CDI DataVolume of a disk using spec.storage,
// so CDI fills access and volume modes from the StorageClass's
// StorageProfile (a ReadWriteMany class gives a claim a VM can
// live-migrate with), labelled for id (Labels): an http or registry source
// for an image disk, a pvc or snapshot source in the owner's namespace for
// a clone (d.Clone; spec.sourceRef for a DataSource), a blank source (CDI's DataVolumeBlankImage: an empty
// disk image, or an empty block device) for a disk without one. It fails
// (ErrInvalidDisk) for a bad source. owner must carry its apiVersion and
// kind (TypeMeta).
func BuildDataVolume(id apply.Identity, owner client.Object, d Disk) (*cdiv1.DataVolume, error) {
	kind, err := SourceKind(d.Source)
	if d.Clone != nil {
		kind, err = d.Clone.kind(d)
	}
	if err == nil {
		err = d.validateAccess(kind)
	}
	if err != nil {
		return nil, err
	}
	return buildDataVolume(id, owner, d, kind)
}

// buildDataVolume is BuildDataVolume for a disk whose source kind is
// already decided (Reconcile's validate).
func buildDataVolume(id apply.Identity, owner client.Object, d Disk, kind Kind) (*cdiv1.DataVolume, error) {
	src := &cdiv1.DataVolumeSource{}
	switch kind {
	case KindHTTP:
		src.HTTP = &cdiv1.DataVolumeSourceHTTP{URL: d.Source}
	case KindRegistry:
		src.Registry = &cdiv1.DataVolumeSourceRegistry{URL: ptr(RegistryURL(d.Source))}
	case KindBlank:
		src.Blank = &cdiv1.DataVolumeBlankImage{}
	case KindClone:
		src.PVC = &cdiv1.DataVolumeSourcePVC{Namespace: owner.GetNamespace(), Name: d.Clone.ClaimName}
	case KindCloneSnapshot:
		src.Snapshot = &cdiv1.DataVolumeSourceSnapshot{Namespace: owner.GetNamespace(), Name: d.Clone.SnapshotName}
	case KindCloneDataSource:
		src = nil // spec.sourceRef instead (CDI admission: exactly one of source and sourceRef)
	default:
		return nil, fmt.Errorf("%w: disk %q has an unknown source kind %q", ErrInvalidDisk, d.Name, kind)
	}
	dv := &cdiv1.DataVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume"},
		ObjectMeta: objectMeta(id, owner, d),
		Spec: cdiv1.DataVolumeSpec{
			Source: src,
			Storage: &cdiv1.StorageSpec{
				Resources: corev1.VolumeResourceRequirements{Requests: requests(d)},
			},
		},
	}
	if d.StorageClassName != "" {
		dv.Spec.Storage.StorageClassName = ptr(d.StorageClassName)
	}
	d.setAccess(src)
	// The disk's size, where CDI's claim inherits it: CDI copies every
	// annotation of a DataVolume onto the claim it creates
	// (containerized-data-importer pkg/controller/datavolume/
	// controller-base.go newPersistentVolumeClaim), whose request it
	// inflates by the file system overhead. Once CDI garbage-collects the
	// DataVolume, the claim still says what the disk's size is.
	dv.Annotations = map[string]string{id.Key(KeyDiskSize): d.Size.String()}
	if kind == KindCloneDataSource {
		ns := d.Clone.DataSource.Namespace
		if ns == "" {
			ns = owner.GetNamespace()
		}
		dv.Spec.SourceRef = &cdiv1.DataVolumeSourceRef{Kind: cdiv1.DataVolumeDataSource, Namespace: &ns, Name: d.Clone.DataSource.Name}
	}
	return dv, nil
}

func ptr[T any](v T) *T { return &v }

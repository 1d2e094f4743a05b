package storage

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/novasphere/wukong/lib/apply"
)

// Names of this package's own label and annotation keys, under the caller's
// domain: the key is id.Key(name) for the apply.Identity passed in, e.g.
// "example.com/disk". Every object also carries id.OwnerLabels(owner name).
const (
	// KeyDisk is the label carrying the disk's name.
	KeyDisk = "disk"
	// KeyDiskSize is the annotation on a DataVolume's PVC recording the disk
	// size last applied by growing the PVC (the DataVolume's own request
	// cannot change).
	KeyDiskSize = "disk-size"
	// KeyRetainedFromDisk is the label Release puts on a released claim:
	// the name of the disk it was. Its companion, the owner's name, is
	// RetainedFromKey.
	KeyRetainedFromDisk = "retained-from-disk"
	// KeyRetainedFromUID is the annotation Release puts on a released
	// claim: the UID of the owner it was released from (a later owner of
	// the same name has another).
	KeyRetainedFromUID = "retained-from-uid"
)

// Disk is one disk of a virtual machine.
type Disk struct {
	// Name of the disk, a DNS-1123 label; the claim is "<owner>-<Name>".
	Name string
	// Size requested. Growing it expands the PVC; shrinking is refused.
	Size resource.Quantity
	// StorageClassName; empty means the cluster's default class.
	StorageClassName string
	// Source is "" (blank disk), an http:// or https:// URL, or a container
	// image (docker://… or a bare reference like quay.io/containerdisks/fedora:40).
	// Empty when Clone is set.
	Source string
	// ClaimName, when set, names an existing PersistentVolumeClaim of the
	// owner's namespace used as the disk as it is (a DNS-1123 subdomain):
	// Reconcile only reads it, never creates, labels, resizes or deletes
	// it, and Release never touches it. Source and StorageClassName must
	// be empty; Size is optional, and when positive the least storage the
	// claim must request (ReasonClaimTooSmall otherwise). The claim must
	// exist (ReasonClaimNotFound) and have no controller (ReasonClaimInUse):
	// a claim some DataVolume or other owner controls is never taken.
	ClaimName string
	// Retain keeps the disk's claim when the owner is deleted: the caller
	// calls Release for it while the owner is being deleted (its
	// finalizer holds it). Reconcile ignores it.
	Retain bool
	// Clone makes the disk a CDI clone of a claim or a VolumeSnapshot of the
	// owner's namespace (KindClone, KindCloneSnapshot); nil for a blank or
	// image disk.
	Clone *CloneSource
	// CertConfigMap and SecretRef name a ConfigMap (CA certificates) and a
	// Secret (keys accessKeyId and secretKey) of the owner's namespace
	// that CDI's importer uses to fetch an http or registry Source: the
	// DataVolume source's certConfigMap and secretRef. While the import
	// has not succeeded Reconcile checks they are there
	// (ReasonImageAccessNotFound) and writes the DataVolume again when they
	// change; see access.go.
	CertConfigMap, SecretRef string
}

// CloneSource is what a disk is cloned from: exactly one of ClaimName and
// SnapshotName (in the owner's namespace) and DataSource. The DataVolume gets
// spec.source.pvc or spec.source.snapshot with the owner's namespace (CDI's
// DataVolume admission refuses a clone source without one:
// pkg/apiserver/webhooks/datavolume-validate.go). Same-namespace clones need
// no clone token and no SubjectAccessReview (CDI API
// pkg/apis/core/v1beta1/authorize_utils.go CanUserClonePVC,
// CanUserCloneSnapshot).
type CloneSource struct {
	// ClaimName is the PersistentVolumeClaim cloned.
	ClaimName string
	// SnapshotName is the VolumeSnapshot (snapshot.storage.k8s.io/v1) cloned.
	SnapshotName string
	// DataSource is a CDI DataSource cloned, possibly of another namespace
	// (KindCloneDataSource): the DataVolume gets spec.sourceRef and CDI
	// clones whatever the DataSource points at (a claim or a snapshot). A
	// DataSource of another namespace needs the writer's clone
	// authorization there (create on datavolumes/source: CDI API
	// authorize_utils.go CanUserClonePVC), which CDI's DataVolume admission
	// checks.
	DataSource *DataSourceRef
}

// DataSourceRef names a CDI DataSource (cdi.kubevirt.io/v1beta1).
type DataSourceRef struct {
	// Namespace of the DataSource; empty is the owner's.
	Namespace string
	// Name of the DataSource.
	Name string
}

// Phase is the state of a disk, summarised over its DataVolume and PVC.
type Phase string

// Phases of a disk.
const (
	// PhasePending: not bound and nothing in progress yet.
	PhasePending Phase = "Pending"
	// PhaseWaitForFirstConsumer: the StorageClass binds only once a pod uses
	// the claim, so the VM must be created for the disk to progress.
	PhaseWaitForFirstConsumer Phase = "WaitForFirstConsumer"
	// PhaseImporting: CDI is importing (or cloning, uploading, preparing) data.
	PhaseImporting Phase = "Importing"
	// PhaseBound: the PVC is bound and, for an image disk, the import succeeded.
	PhaseBound Phase = "Bound"
	// PhaseFailed: the import failed (DataVolume phase Failed, or its importer
	// reported an error; CDI retries, so this may recover) or the claim is Lost.
	PhaseFailed Phase = "Failed"
)

// Reasons this package sets in Observation.Reason for its own findings. Other
// reasons are copied from CDI's DataVolume conditions.
const (
	ReasonShrinkRefused        = "ShrinkRefused"
	ReasonExpansionNotAllowed  = "ExpansionNotAllowed"
	ReasonExpansionPendingBind = "ExpansionPendingBind"
	ReasonStorageClassNotFound = "StorageClassNotFound"
	ReasonCDINotInstalled      = "CDINotInstalled"
	ReasonInvalidDisk          = "InvalidDisk"
	ReasonImportFailed         = "ImportFailed"
	ReasonClaimLost            = "ClaimLost"
	// ReasonDiskTooSmall: CDI's importer found the image's virtual size
	// larger than the claim's space (CDI pkg/importer/data-processor.go:
	// "A larger PVC is required"); growing the disk lets the retry succeed.
	ReasonDiskTooSmall = "DiskTooSmall"
	// ReasonNameConflict: the claim or DataVolume name is taken by an object
	// not created for this owner (see lib/apply's ConflictError); it is left
	// untouched.
	ReasonNameConflict = apply.ReasonNameConflict
	// ReasonPredecessor: the claim or DataVolume still belongs to a deleted
	// owner of the same name and is being garbage-collected.
	ReasonPredecessor = apply.ReasonPredecessor
	// ReasonClaimNotFound: the claim a Disk.ClaimName names does not exist
	// in the owner's namespace, or is being deleted (*ClaimNotFoundError).
	ReasonClaimNotFound = "ClaimNotFound"
	// ReasonClaimInUse: the claim a Disk.ClaimName names is controlled by
	// another object, e.g. a DataVolume or another owner's disk
	// (*ClaimInUseError); it is left untouched.
	ReasonClaimInUse = "ClaimInUse"
	// ReasonClaimTooSmall: the claim a Disk.ClaimName names requests less
	// storage than Disk.Size (*ClaimTooSmallError); it is never resized.
	ReasonClaimTooSmall = "ClaimTooSmall"
)

// largerPVCRequired is the end of CDI's importer message for an image that
// does not fit its claim.
const largerPVCRequired = "A larger PVC is required"

// Error prefixes.
const (
	errApplyPVC        = "cannot apply PersistentVolumeClaim"
	errApplyDataVolume = "cannot apply DataVolume"
	errGetPVC          = "cannot get PersistentVolumeClaim"
	errGetDataVolume   = "cannot get DataVolume"
	errGetClass        = "cannot get StorageClass"
	errListClasses     = "cannot list StorageClasses"
	errOwner           = "cannot determine owner kind"
)

var (
	// ErrCDINotInstalled: the DataVolume kind is unknown to the API server,
	// so image disks cannot be created. Blank disks are written as plain
	// PVCs instead (Observation.PlainClaim, NoCDI).
	ErrCDINotInstalled = errors.New("CDI is not installed: the DataVolume kind (cdi.kubevirt.io/v1beta1) is not served")
	// ErrNoDefaultClass: a disk names no StorageClass and none is marked default.
	ErrNoDefaultClass = errors.New("no default StorageClass")
	// ErrInvalidDisk wraps every validation error of a Disk (bad source,
	// name or size).
	ErrInvalidDisk = errors.New("invalid disk")
)

// ClassNotFoundError: the named StorageClass does not exist.
type ClassNotFoundError struct{ Name string }

func (e *ClassNotFoundError) Error() string {
	return fmt.Sprintf("StorageClass %q not found", e.Name)
}

// ShrinkError: the requested size is smaller than the current one.
type ShrinkError struct {
	Disk     string
	From, To resource.Quantity
}

func (e *ShrinkError) Error() string {
	return fmt.Sprintf("disk %q cannot shrink from %s to %s", e.Disk, e.From.String(), e.To.String())
}

// NotExpandableError: the disk grew but its StorageClass does not allow
// volume expansion (StorageClass is empty for a claim without a class).
type NotExpandableError struct {
	Disk         string
	StorageClass string
}

func (e *NotExpandableError) Error() string {
	return fmt.Sprintf("disk %q cannot grow: StorageClass %q does not allow volume expansion", e.Disk, e.StorageClass)
}

// ClaimNotFoundError: the claim a Disk.ClaimName names does not exist in
// the owner's namespace, or is being deleted (Deleting).
type ClaimNotFoundError struct {
	Name     string
	Deleting bool
}

func (e *ClaimNotFoundError) Error() string {
	if e.Deleting {
		return fmt.Sprintf("PersistentVolumeClaim %s is being deleted", e.Name)
	}
	return fmt.Sprintf("PersistentVolumeClaim %s not found in this namespace", e.Name)
}

// ClaimInUseError: the claim a Disk.ClaimName names has a controller (an
// owner reference with controller true) of kind Kind named Controller, in
// the claim's own namespace (owner references never cross namespaces).
type ClaimInUseError struct {
	Name       string
	Kind       string
	Controller string
}

func (e *ClaimInUseError) Error() string {
	return fmt.Sprintf("PersistentVolumeClaim %s is controlled by %s %s: only a claim without a controller can be named; it is left untouched", e.Name, e.Kind, e.Controller)
}

// ClaimTooSmallError: the claim a Disk.ClaimName names requests Request,
// less than the disk's Size.
type ClaimTooSmallError struct {
	Name          string
	Request, Size resource.Quantity
}

func (e *ClaimTooSmallError) Error() string {
	return fmt.Sprintf("PersistentVolumeClaim %s requests %s, less than the disk's size %s: grow the claim (it is never resized for the disk) or lower the size", e.Name, e.Request.String(), e.Size.String())
}

// Observation is what the cluster says about one disk.
type Observation struct {
	// Name of the disk.
	Name string
	// ClaimName of the PVC (and DataVolume).
	ClaimName string
	// DataVolume: the disk is a CDI DataVolume (or was one, before CDI
	// garbage-collected it): every image disk, and a blank disk written as
	// one. False for a PlainClaim.
	DataVolume bool
	// PlainClaim: a blank disk backed by a plain PVC this package wrote
	// (BuildPVC: ReadWriteOnce, Filesystem), not a DataVolume, so its
	// access modes do not follow the StorageProfile: written by a version
	// before blank disks became DataVolumes (kept as it is, never
	// rewritten), or because CDI was not installed when the disk was made
	// (NoCDI).
	PlainClaim bool
	// NoCDI: a blank disk was written as a PlainClaim because the
	// DataVolume kind is not served (CDI not installed).
	NoCDI bool
	// Existing: the disk is the claim Disk.ClaimName names, read and never
	// written (DataVolume and PlainClaim are false).
	Existing bool
	// AccessModes are the PVC's spec.accessModes (what the VM's live
	// migration depends on: KubeVirt migrates only ReadWriteMany claims);
	// empty until the PVC exists.
	AccessModes []corev1.PersistentVolumeAccessMode
	// StorageClassName in effect (the PVC's, else the resolved one); empty
	// when unknown.
	StorageClassName string
	// WaitForFirstConsumerClass: the StorageClass has volumeBindingMode
	// WaitForFirstConsumer.
	WaitForFirstConsumerClass bool
	Phase                     Phase
	// Progress is CDI's import progress such as "45.50%"; empty for blank
	// disks and when CDI reports none.
	Progress string
	// CloneWaiting: the disk is a clone whose copy has not started (its
	// DataVolume has no phase yet, or Pending, CloneScheduled or
	// PendingPopulation): what CDI shows while it waits for the source
	// claim to be bound, populated and used by no running pod
	// (pkg/controller/clone/common.go IsSourceClaimReady).
	CloneWaiting bool
	// CloneType is the clone strategy CDI chose for a clone disk, from the
	// DataVolume's (else the claim's) annotation AnnCloneType: csi-clone,
	// snapshot or copy (host-assisted). Empty until chosen.
	CloneType string
	// Bound: the PVC's status.phase is Bound.
	Bound bool
	// Capacity is the PVC's actual capacity (status); zero until bound.
	Capacity resource.Quantity
	// Requested is the disk size in effect: the PVC request for a blank
	// disk, the logical disk size for an image disk (the PVC request of an
	// image disk includes CDI's file system overhead).
	Requested resource.Quantity
	// Reason and Message: this package's finding (Reason* constants) or what
	// CDI's DataVolume conditions say.
	Reason  string
	Message string
	// Resizing and FileSystemResizePending mirror the PVC conditions.
	Resizing                bool
	FileSystemResizePending bool
}

// Ready reports whether the disk is usable: bound, and imported if an image.
func (o Observation) Ready() bool { return o.Phase == PhaseBound }

// ConsumerCanStart reports whether the VM using this disk may be created now.
//
//   - Bound: yes.
//   - WaitForFirstConsumer: yes, and it must, since binding (and so the
//     import) waits for the VM's pod; waiting for Bound would deadlock.
//   - Importing on a WaitForFirstConsumer class: yes; the import started
//     because a consumer exists, and the gate must not close again.
//   - Importing on an immediate class, Pending, Failed: no; KubeVirt would
//     only wait, and a VM should not start before its data is in place.
func (o Observation) ConsumerCanStart() bool {
	switch o.Phase {
	case PhaseBound, PhaseWaitForFirstConsumer:
		return true
	case PhaseImporting:
		return o.WaitForFirstConsumerClass
	default:
		return false
	}
}

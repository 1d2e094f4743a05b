package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SnapshotDeletionPolicy says whether a WukongSnapshot goes with its Wukong.
// +kubebuilder:validation:Enum=Delete;Retain
type SnapshotDeletionPolicy string

// Snapshot deletion policies, in the terms of Kubernetes' and KubeVirt's own
// deletionPolicy fields (PersistentVolume reclaim policy, VolumeSnapshotClass
// and VirtualMachineSnapshot spec.deletionPolicy: Delete or Retain), and of
// spec.disks[i].deletionPolicy of a Wukong.
const (
	// SnapshotDeletePolicy (the default): the snapshot is deleted when its
	// Wukong is: the WukongSnapshot carries a (non-controller) owner
	// reference to the Wukong and Kubernetes' garbage collector deletes it,
	// then its VirtualMachineSnapshot, whose content and VolumeSnapshots
	// KubeVirt deletes with it. The default, as for disks, because the
	// issue asks for snapshots that outlive their Wukong "when asked": a
	// deleted Wukong frees all the storage it used unless told otherwise.
	SnapshotDeletePolicy SnapshotDeletionPolicy = "Delete"
	// SnapshotRetainPolicy: no owner reference to the Wukong; the snapshot,
	// its VirtualMachineSnapshot, content and VolumeSnapshots stay until the
	// WukongSnapshot itself is deleted, and can be restored into (or cloned
	// to) a new Wukong of the namespace.
	SnapshotRetainPolicy SnapshotDeletionPolicy = "Retain"
)

// WukongSnapshotSpec names the Wukong to snapshot.
type WukongSnapshotSpec struct {
	// WukongName is the Wukong of this namespace to snapshot: all its disks
	// (KubeVirt VirtualMachineSnapshot of its VirtualMachine, one CSI
	// VolumeSnapshot per disk) and its spec at that moment. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="wukongName is immutable: create another WukongSnapshot"
	WukongName string `json:"wukongName"`

	// DeletionPolicy is Delete (default: the snapshot is deleted with its
	// Wukong, by garbage collection) or Retain (it outlives the Wukong and
	// stays until deleted). It may be changed at any time; the operator
	// adds or removes the owner reference to the Wukong accordingly.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy SnapshotDeletionPolicy `json:"deletionPolicy,omitempty"`
}

// SnapshotPhase is KubeVirt's VirtualMachineSnapshot phase, mirrored
// (kubevirt.io/api snapshot/v1beta1 VirtualMachineSnapshotPhase).
// +kubebuilder:validation:Enum=InProgress;Succeeded;Failed;Deleting;Unknown
type SnapshotPhase string

// Snapshot phases (KubeVirt's).
const (
	SnapshotInProgress SnapshotPhase = "InProgress"
	SnapshotSucceeded  SnapshotPhase = "Succeeded"
	SnapshotFailed     SnapshotPhase = "Failed"
	SnapshotDeleting   SnapshotPhase = "Deleting"
	SnapshotUnknown    SnapshotPhase = "Unknown"
)

// SnapshotIndication is one of KubeVirt's VirtualMachineSnapshot
// status.indications (kubevirt.io/api snapshot/v1beta1 Indication): how the
// VM was when it was snapshotted.
// +kubebuilder:validation:Enum=Online;GuestAgent;NoGuestAgent;QuiesceTimeout;Paused;PartialSnapshot
type SnapshotIndication string

// Snapshot indications (KubeVirt's; set by virt-controller's
// updateSnapshotSourceIndications, pkg/storage/snapshot/snapshot.go).
const (
	// IndicationOnline: the VM ran when it was snapshotted.
	IndicationOnline SnapshotIndication = "Online"
	// IndicationGuestAgent: the guest agent was connected, so KubeVirt
	// froze the guest's filesystems (virt-handler fsfreeze) while the
	// volume snapshots were taken.
	IndicationGuestAgent SnapshotIndication = "GuestAgent"
	// IndicationNoGuestAgent: no guest agent: crash-consistent.
	IndicationNoGuestAgent SnapshotIndication = "NoGuestAgent"
	// IndicationQuiesceTimeout: the freeze window ran out before the
	// snapshots were taken: crash-consistent.
	IndicationQuiesceTimeout SnapshotIndication = "QuiesceTimeout"
	// IndicationPaused: the VM was paused: crash-consistent.
	IndicationPaused SnapshotIndication = "Paused"
	// IndicationPartialSnapshot: some volumes could not be snapshotted.
	IndicationPartialSnapshot SnapshotIndication = "PartialSnapshot"
)

// SnapshotConsistency is a plain answer to "how consistent are the disks of
// this snapshot", derived from the indications (see Frozen).
// +kubebuilder:validation:Enum=Offline;Frozen;CrashConsistent
type SnapshotConsistency string

// Snapshot consistencies.
const (
	// ConsistencyOffline: the VM was not running (no indications): nothing
	// wrote to the disks while they were snapshotted.
	ConsistencyOffline SnapshotConsistency = "Offline"
	// ConsistencyFrozen: the guest's filesystems were frozen by the guest
	// agent (Online and GuestAgent, no QuiesceTimeout).
	ConsistencyFrozen SnapshotConsistency = "Frozen"
	// ConsistencyCrash: the VM ran and was not frozen (NoGuestAgent,
	// Paused or QuiesceTimeout): as if the power had been cut.
	ConsistencyCrash SnapshotConsistency = "CrashConsistent"
)

// SnapshotDisk is one disk captured in a snapshot, from the
// VirtualMachineSnapshotContent's spec.volumeBackups and its VolumeSnapshot.
type SnapshotDisk struct {
	// Name is the disk's name in the Wukong's spec.disks.
	Name string `json:"name"`
	// ClaimName is the PersistentVolumeClaim that was snapshotted.
	// +optional
	ClaimName string `json:"claimName,omitempty"`
	// VolumeSnapshotName is the CSI VolumeSnapshot KubeVirt made of the
	// claim (snapshot.storage.k8s.io/v1).
	// +optional
	VolumeSnapshotName string `json:"volumeSnapshotName,omitempty"`
	// ReadyToUse mirrors the VolumeSnapshot's status.readyToUse (as KubeVirt
	// copies it into the content's status.volumeSnapshotStatus).
	// +optional
	ReadyToUse *bool `json:"readyToUse,omitempty"`
	// RestoreSize is the smallest claim the snapshot restores into
	// (VolumeSnapshot status.restoreSize), or the claim's request when the
	// CSI driver has not reported one yet.
	// +optional
	RestoreSize *resource.Quantity `json:"restoreSize,omitempty"`
}

// WukongSnapshotStatus is what the operator observed of the snapshot.
type WukongSnapshotStatus struct {
	// Phase mirrors the VirtualMachineSnapshot's: InProgress, Succeeded,
	// Failed, Deleting or Unknown. Empty before KubeVirt reports one.
	// +optional
	Phase SnapshotPhase `json:"phase,omitempty"`

	// ReadyToUse is true when KubeVirt reports the VirtualMachineSnapshot
	// ready to use: every VolumeSnapshot is ready.
	// +optional
	ReadyToUse *bool `json:"readyToUse,omitempty"`

	// CreationTime is when the snapshot was taken (KubeVirt's
	// status.creationTime: the point in time the disks hold).
	// +optional
	CreationTime *metav1.Time `json:"creationTime,omitempty"`

	// WukongUID is the UID of the Wukong that was snapshotted, so a Wukong
	// deleted and created again under the same name is told apart.
	// +optional
	WukongUID types.UID `json:"wukongUID,omitempty"`

	// VirtualMachineSnapshotName is the KubeVirt VirtualMachineSnapshot the
	// operator created (owned by this WukongSnapshot), in this namespace.
	// +optional
	VirtualMachineSnapshotName string `json:"virtualMachineSnapshotName,omitempty"`

	// VirtualMachineSnapshotContentName is KubeVirt's content object.
	// +optional
	VirtualMachineSnapshotContentName string `json:"virtualMachineSnapshotContentName,omitempty"`

	// Indications mirror KubeVirt's: Online, GuestAgent, NoGuestAgent,
	// QuiesceTimeout, Paused, PartialSnapshot. Empty for a stopped VM.
	// +listType=set
	// +optional
	Indications []SnapshotIndication `json:"indications,omitempty"`

	// Frozen answers "was the guest frozen": true when KubeVirt reports
	// Online and GuestAgent and not QuiesceTimeout, the rule of KubeVirt's
	// updateSnapshotSourceIndications (pkg/storage/snapshot/snapshot.go):
	// GuestAgent is set only when the VMI's AgentConnected condition is true
	// and the VM is not paused, and virt-controller then freezes the guest
	// before the volume snapshots are taken (QuiesceTimeout when the freeze
	// window ran out). Absent until KubeVirt reports the snapshot done.
	// +optional
	Frozen *bool `json:"frozen,omitempty"`

	// Consistency is Offline, Frozen or CrashConsistent (see the
	// constants); absent until KubeVirt reports the snapshot done.
	// +optional
	Consistency SnapshotConsistency `json:"consistency,omitempty"`

	// Disks are the disks captured, by spec.disks name.
	// +listType=map
	// +listMapKey=name
	// +optional
	Disks []SnapshotDisk `json:"disks,omitempty"`

	// Size is the sum of the disks' restoreSize.
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// WukongSpec is the Wukong's spec when the snapshot was taken, captured
	// once and never changed; a restore into a new Wukong starts from it.
	// +optional
	WukongSpec *WukongSpec `json:"wukongSpec,omitempty"`

	// Conditions: Ready (readyToUse), and the kstatus conditions
	// Reconciling and Stalled (present only while true).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// WukongSnapshot is a point-in-time copy of a Wukong of the same namespace:
// all its disks, consistent (KubeVirt's VirtualMachineSnapshot freezes the
// guest through the guest agent when the VM runs), and its spec. The
// operator composes KubeVirt's snapshot API: it creates one
// VirtualMachineSnapshot (snapshot.kubevirt.io/v1beta1) of the Wukong's
// VirtualMachine, owned by the WukongSnapshot, and reports what KubeVirt
// and the CSI snapshotter report, with disks under their spec.disks names.
// A Wukong of another namespace cannot be named: a missing Wukong and one
// that exists elsewhere give the same answer. A disk whose StorageClass has
// no VolumeSnapshotClass for its driver makes the snapshot Stalled naming
// the Wukong's spec.disks[i].storageClassName.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wks,categories=all
// +kubebuilder:printcolumn:name="Wukong",type=string,JSONPath=`.spec.wukongName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="ReadyToUse",type=boolean,JSONPath=`.status.readyToUse`
// +kubebuilder:printcolumn:name="Consistency",type=string,JSONPath=`.status.consistency`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Taken",type=date,JSONPath=`.status.creationTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.deletionPolicy`,priority=1
// +kubebuilder:printcolumn:name="VMSnapshot",type=string,JSONPath=`.status.virtualMachineSnapshotName`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
type WukongSnapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec WukongSnapshotSpec `json:"spec"`
	// +optional
	Status WukongSnapshotStatus `json:"status,omitempty"`
}

// WukongSnapshotList is a list of WukongSnapshots.
//
// +kubebuilder:object:root=true
type WukongSnapshotList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WukongSnapshot `json:"items"`
}

// GetConditions returns the snapshot's status conditions.
func (s *WukongSnapshot) GetConditions() []metav1.Condition { return s.Status.Conditions }

// SetConditions replaces the snapshot's status conditions.
func (s *WukongSnapshot) SetConditions(c []metav1.Condition) { s.Status.Conditions = c }

// GetObservedGeneration is the generation the snapshot's status describes.
func (s *WukongSnapshot) GetObservedGeneration() int64 { return s.Status.ObservedGeneration }

// Condition reasons of WukongSnapshot and WukongRestore (besides the shared
// ReasonNameConflict and ReasonKubeVirtMissing).
const (
	// ReasonWukongNotFound: spec.wukongName names no Wukong of this
	// namespace. The message is the same whether or not an object of that
	// name exists in another namespace.
	ReasonWukongNotFound = "WukongNotFound"
	// ReasonWaitingForVM: the Wukong's VirtualMachine does not exist yet, or
	// KubeVirt has not reported which of its volumes can be snapshotted.
	ReasonWaitingForVM = "WaitingForVirtualMachine"
	// ReasonWaitingForDisks: a disk's claim is not bound to a volume yet
	// (the Wukong's status.volumes[].bound false: a WaitForFirstConsumer
	// class binds it when the Wukong first starts). There is nothing to
	// snapshot, so no VirtualMachineSnapshot is made until every claim is
	// bound (KubeVirt's would wait, and fail at its failureDeadline).
	ReasonWaitingForDisks = "WaitingForDisks"
	// ReasonSnapshotNotSupported: a disk's StorageClass has no
	// VolumeSnapshotClass for its CSI driver (KubeVirt reports the volume
	// in the VM's status.volumeSnapshotStatuses with enabled false); the
	// message names the Wukong's spec.disks[i].storageClassName. No
	// snapshot is taken (KubeVirt would take a partial one).
	ReasonSnapshotNotSupported = "SnapshotNotSupported"
	// ReasonSnapshotInProgress: KubeVirt is taking the snapshot.
	ReasonSnapshotInProgress = "InProgress"
	// ReasonReadyToUse: every disk's VolumeSnapshot is ready to use.
	ReasonReadyToUse = "ReadyToUse"
	// ReasonSnapshotFailed: KubeVirt reports the snapshot failed; the
	// message is KubeVirt's.
	ReasonSnapshotFailed = "SnapshotFailed"
	// ReasonSnapshotNotFound: spec.snapshotName names no WukongSnapshot of
	// this namespace (the same message whether or not one exists
	// elsewhere).
	ReasonSnapshotNotFound = "SnapshotNotFound"
	// ReasonSnapshotOfOtherWukong: the snapshot is of another Wukong (or of
	// a deleted Wukong of the same name); in-place restore needs the same.
	ReasonSnapshotOfOtherWukong = "SnapshotOfOtherWukong"
	// ReasonSnapshotNotReady: the snapshot is not ready to use yet.
	ReasonSnapshotNotReady = "SnapshotNotReady"
	// ReasonTargetRunning: the Wukong runs; the restore waits until it is
	// stopped (targetReadinessPolicy WaitEventually).
	ReasonTargetRunning = "TargetRunning"
	// ReasonRestoring: KubeVirt is restoring the disks (also the Wukong's
	// Ready reason, phase Restoring, meanwhile).
	ReasonRestoring = "Restoring"
	// ReasonRestored: the restore completed and the Wukong's run strategy
	// was given back to it.
	ReasonRestored = "Restored"
	// ReasonRestoreFailed: KubeVirt reports the restore failed.
	ReasonRestoreFailed = "RestoreFailed"
	// ReasonRestoreInProgressElsewhere: another restore of the same
	// Wukong is in progress.
	ReasonRestoreInProgressElsewhere = "AnotherRestoreInProgress"
)

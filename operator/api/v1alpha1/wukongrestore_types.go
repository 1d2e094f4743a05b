package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RestoreRunningPolicy says what a WukongRestore does when its Wukong runs.
// +kubebuilder:validation:Enum=WaitEventually;StopTarget
type RestoreRunningPolicy string

// Restore policies for a running Wukong, named after KubeVirt's
// VirtualMachineRestore spec.targetReadinessPolicy values with the same
// meaning (kubevirt.io/api snapshot/v1beta1 TargetReadinessPolicy; KubeVirt
// calls a target "ready" when no VirtualMachineInstance exists,
// pkg/storage/snapshot/restore.go vmRestoreTarget.Ready).
const (
	// RestoreWaitEventually (the default): the restore waits, Ready False
	// with reason TargetRunning and a message saying to stop the Wukong
	// first; it goes ahead once the VM has stopped. Nothing is stopped
	// behind the user's back.
	RestoreWaitEventually RestoreRunningPolicy = "WaitEventually"
	// RestoreStopTarget: KubeVirt stops the VM (its stop subresource, which
	// sets the VM's runStrategy to Halted) and then restores.
	RestoreStopTarget RestoreRunningPolicy = "StopTarget"
)

// WukongRestoreSpec names a Wukong and one of its snapshots.
type WukongRestoreSpec struct {
	// WukongName is the Wukong of this namespace whose disks are restored
	// in place: the claims keep their names, their content becomes the
	// snapshot's. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="wukongName is immutable: create another WukongRestore"
	WukongName string `json:"wukongName"`

	// SnapshotName is a WukongSnapshot of this namespace, of this Wukong,
	// ready to use. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="snapshotName is immutable: create another WukongRestore"
	SnapshotName string `json:"snapshotName"`

	// TargetReadinessPolicy is what happens while the Wukong runs:
	// WaitEventually (default) waits until it is stopped, StopTarget has
	// KubeVirt stop it. Immutable.
	// +kubebuilder:default=WaitEventually
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="targetReadinessPolicy is immutable"
	// +optional
	TargetReadinessPolicy RestoreRunningPolicy `json:"targetReadinessPolicy,omitempty"`
}

// RestorePhase is a one-word summary of a WukongRestore.
// +kubebuilder:validation:Enum=Pending;InProgress;Succeeded;Failed
type RestorePhase string

// Restore phases.
const (
	// RestorePending: waiting (the Wukong runs, the snapshot is not ready,
	// or the Wukong or snapshot cannot be used: see conditions).
	RestorePending RestorePhase = "Pending"
	// RestoreInProgress: KubeVirt is restoring (VirtualMachineRestore
	// created, not complete).
	RestoreInProgress RestorePhase = "InProgress"
	// RestoreSucceeded: KubeVirt reports the VirtualMachineRestore complete.
	RestoreSucceeded RestorePhase = "Succeeded"
	// RestoreFailed: KubeVirt reports the restore failed.
	RestoreFailed RestorePhase = "Failed"
)

// RestoredDisk is one disk restored in place.
type RestoredDisk struct {
	// Name is the disk's name in the Wukong's spec.disks.
	Name string `json:"name"`
	// ClaimName is the claim restored: the same name as before.
	// +optional
	ClaimName string `json:"claimName,omitempty"`
	// VolumeSnapshotName is the VolumeSnapshot it was restored from.
	// +optional
	VolumeSnapshotName string `json:"volumeSnapshotName,omitempty"`
}

// WukongRestoreStatus is what the operator observed of the restore.
type WukongRestoreStatus struct {
	// Phase is Pending, InProgress, Succeeded or Failed.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`

	// VirtualMachineRestoreName is the KubeVirt VirtualMachineRestore the
	// operator created (owned by this WukongRestore).
	// +optional
	VirtualMachineRestoreName string `json:"virtualMachineRestoreName,omitempty"`

	// Complete mirrors the VirtualMachineRestore's status.complete.
	// +optional
	Complete *bool `json:"complete,omitempty"`

	// RestoreTime is when KubeVirt completed the restore.
	// +optional
	RestoreTime *metav1.Time `json:"restoreTime,omitempty"`

	// Disks are the disks restored, by spec.disks name.
	// +listType=map
	// +listMapKey=name
	// +optional
	Disks []RestoredDisk `json:"disks,omitempty"`

	// Conditions: Ready (the restore succeeded), and the kstatus conditions
	// Reconciling and Stalled (present only while true).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// WukongRestore restores a Wukong's disks in place from one of its
// WukongSnapshots: the Wukong must be stopped (or targetReadinessPolicy
// StopTarget), KubeVirt's VirtualMachineRestore (volumeRestorePolicy
// InPlace) replaces each claim by one of the same name made from the
// disk's VolumeSnapshot, and the Wukong starts again per its run strategy.
// While KubeVirt restores (the VM's status.restoreInProgress), the Wukong
// is Restoring and its operator does not touch the VM or the disks.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wkr,categories=all
// +kubebuilder:printcolumn:name="Wukong",type=string,JSONPath=`.spec.wukongName`
// +kubebuilder:printcolumn:name="Snapshot",type=string,JSONPath=`.spec.snapshotName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Restored",type=date,JSONPath=`.status.restoreTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
type WukongRestore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec WukongRestoreSpec `json:"spec"`
	// +optional
	Status WukongRestoreStatus `json:"status,omitempty"`
}

// WukongRestoreList is a list of WukongRestores.
//
// +kubebuilder:object:root=true
type WukongRestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WukongRestore `json:"items"`
}

// GetConditions returns the restore's status conditions.
func (r *WukongRestore) GetConditions() []metav1.Condition { return r.Status.Conditions }

// SetConditions replaces the restore's status conditions.
func (r *WukongRestore) SetConditions(c []metav1.Condition) { r.Status.Conditions = c }

// GetObservedGeneration is the generation the restore's status describes.
func (r *WukongRestore) GetObservedGeneration() int64 { return r.Status.ObservedGeneration }

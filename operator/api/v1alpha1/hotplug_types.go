package v1alpha1

// HotplugStatus is a disk's live attachment as KubeVirt reports it in the
// VirtualMachineInstance's status.volumeStatus (v1.9.0: virt-controller's
// updateVolumeStatus in pkg/virt-controller/watch/vmi/storage.go, and
// virt-handler's updateHotplugVolumeStatus in pkg/virt-handler/vm.go).
type HotplugStatus struct {
	// Phase is KubeVirt's volume phase: Pending or Bound (the claim),
	// AttachedToNode (the attachment pod runs on the machine's node),
	// MountedToPod, Ready (the guest has the disk); while being removed
	// UnMountedFromPod and Detaching, and Detached once the machine no
	// longer has it (Wukong's: the entry stays until the disk's
	// deletionPolicy has been carried out).
	Phase string `json:"phase"`
	// Message is KubeVirt's (or Wukong's, for Detached).
	// +optional
	Message string `json:"message,omitempty"`
}

// Values of HotplugStatus.Phase Wukong sets itself (the others are
// KubeVirt's kubevirtv1.VolumePhase values).
const (
	// HotplugPhaseDetached: the running machine no longer has the disk.
	HotplugPhaseDetached = "Detached"
)

// Event reasons of live changes.
const (
	// ReasonLiveAttach: Wukong asked KubeVirt to attach a disk or NIC to
	// the running machine (hotplug); status.volumes / status.networks show
	// it once attached.
	ReasonLiveAttach = "LiveAttach"
	// ReasonLiveDetach: Wukong asked KubeVirt to detach a disk or NIC
	// from the running machine.
	ReasonLiveDetach = "LiveDetach"
	// ReasonRemovedDiskDeleted: a disk removed from spec.disks with
	// deletionPolicy Delete had its claim (and DataVolume) deleted once
	// the machine no longer used it.
	ReasonRemovedDiskDeleted = "RemovedDiskDeleted"
	// ReasonRemovedDiskRetained: a disk removed from spec.disks with
	// deletionPolicy Retain had its claim released (kept, labelled as on a
	// Wukong's deletion).
	ReasonRemovedDiskRetained = "RemovedDiskRetained"
)

package v1alpha1

import "k8s.io/apimachinery/pkg/api/resource"

// ResourcesStatus is the CPU and memory the running guest has, as KubeVirt
// reports them on the VirtualMachineInstance, and how far each can grow
// without a restart (issue #34). A change of spec.cpu or spec.memory that
// KubeVirt applies live (through a live migration) shows here once the
// guest has it; one that waits for a restart is listed by the
// RestartRequired condition.
type ResourcesStatus struct {
	// CPU is the number of vCPUs the guest has (the VMI's
	// status.currentCPUTopology: sockets × cores × threads).
	// +optional
	CPU int32 `json:"cpu,omitempty"`

	// MaxCPU is how far spec.cpu can grow without a restart: the running
	// instance's maxSockets × cores × threads, fixed when it started
	// (KubeVirt derives it from the KubeVirt CR's
	// spec.configuration.liveUpdateConfiguration: maxCpuSockets, else
	// maxHotplugRatio × sockets, 4 by default). 0 when KubeVirt set up no
	// CPU hotplug for it.
	// +optional
	MaxCPU int32 `json:"maxCPU,omitempty"`

	// Memory is the guest memory the guest was given (the VMI's
	// status.memory.guestRequested).
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`

	// MaxMemory is how far spec.memory can grow without a restart: the
	// running instance's maxGuest, fixed when it started (the KubeVirt
	// CR's liveUpdateConfiguration.maxGuest, else maxHotplugRatio × the
	// guest memory). Absent when KubeVirt set up no memory hotplug for it
	// (it does for x86_64 guests of at least 1Gi).
	// +optional
	MaxMemory *resource.Quantity `json:"maxMemory,omitempty"`
}

// Reasons of the Events about CPU and memory changes (issue #34).
const (
	// ReasonResourcesUpdated: a Normal Event when the running guest got a
	// new cpu or memory without a restart (KubeVirt's hotplug, through a
	// live migration).
	ReasonResourcesUpdated = "ResourcesUpdatedLive"
)

package v1alpha1

import "k8s.io/apimachinery/pkg/api/resource"

// ResourcesStatus is the guest's resolved CPU and memory (issue #32: from
// the running VirtualMachineInstance, else the instance type or the spec)
// and, while it runs, how far each can grow without a restart (issue #34).
// A change of spec.cpu or spec.memory that KubeVirt applies live (through
// a live migration) shows here once the guest has it; one that waits for a
// restart is listed by the RestartRequired condition.
type ResourcesStatus struct {
	// CPU is the number of vCPUs (sockets × cores × threads): the running
	// guest's, else what the instance type or spec.cpu gives it.
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

	// Memory is the guest memory: the running guest's, else what the
	// instance type or spec.memory gives it.
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`

	// MaxMemory is how far spec.memory can grow without a restart: the
	// running instance's maxGuest, fixed when it started (the KubeVirt
	// CR's liveUpdateConfiguration.maxGuest, else maxHotplugRatio × the
	// guest memory). Absent when KubeVirt set up no memory hotplug for it
	// (it does for x86_64 guests of at least 1Gi).
	// +optional
	MaxMemory *resource.Quantity `json:"maxMemory,omitempty"`

	// Instancetype is the instance type the size comes from, if any.
	// +optional
	Instancetype *InstancetypeRef `json:"instancetype,omitempty"`

	// RevisionName is the ControllerRevision in which KubeVirt captured the
	// instance type for the VirtualMachine (its
	// status.instancetypeRef.controllerRevisionRef.name): edits of the
	// instance type after it do not change the VM.
	// +optional
	RevisionName string `json:"revisionName,omitempty"`

	// Source is where cpu and memory were read: Spec, Instancetype or
	// VirtualMachineInstance.
	// +optional
	Source ResourcesSource `json:"source,omitempty"`
}

// Reasons of the Events about CPU and memory changes (issue #34).
const (
	// ReasonResourcesUpdated: a Normal Event when the running guest got a
	// new cpu or memory without a restart (KubeVirt's hotplug, through a
	// live migration).
	ReasonResourcesUpdated = "ResourcesUpdatedLive"
)

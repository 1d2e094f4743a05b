package v1alpha1

// Kinds an InstancetypeRef and a PreferenceRef may name: KubeVirt's
// instancetype.kubevirt.io kinds (kubevirt.io/api instancetype/v1beta1).
const (
	KindClusterInstancetype = "VirtualMachineClusterInstancetype"
	KindInstancetype        = "VirtualMachineInstancetype"
	KindClusterPreference   = "VirtualMachineClusterPreference"
	KindPreference          = "VirtualMachinePreference"
)

// AnnotationAllowedClusterInstancetypes is the Namespace annotation an
// administrator sets to restrict which VirtualMachineClusterInstancetypes
// the Wukongs of that namespace may name: a comma-separated list of names
// ("u1.small,u1.medium"; empty allows none). Without the annotation every
// cluster instance type may be named, as KubeVirt itself allows. A Wukong
// naming another one is Stalled (InstancetypeNotAllowed) naming
// spec.instancetype.name, with the same message whether it exists or not.
// Namespaced VirtualMachineInstancetypes are the namespace's own and always
// allowed. Tenants cannot change a Namespace's annotations with the default
// admin and edit roles (Namespaces are cluster-scoped).
const AnnotationAllowedClusterInstancetypes = "vm.novasphere.dev/allowed-cluster-instancetypes"

// InstancetypeRef names a KubeVirt instance type, in the terms of KubeVirt's
// VirtualMachine spec.instancetype (core/v1 InstancetypeMatcher), which
// Wukong copies it to. KubeVirt stores a copy of the instance type in a
// ControllerRevision when the VM first sees it (status.instancetypeRef of
// the VirtualMachine), so later edits of the instance type do not change
// the VM.
type InstancetypeRef struct {
	// Kind is VirtualMachineClusterInstancetype (the default, as KubeVirt's
	// InstancetypeMatcher defaults an empty kind) or
	// VirtualMachineInstancetype, which is looked up in the Wukong's own
	// namespace only.
	// +kubebuilder:validation:Enum=VirtualMachineClusterInstancetype;VirtualMachineInstancetype
	// +kubebuilder:default=VirtualMachineClusterInstancetype
	// +optional
	Kind string `json:"kind,omitempty"`

	// Name of the instance type, e.g. u1.medium (KubeVirt's
	// common-instancetypes).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// PreferenceRef names a KubeVirt preference, copied to the VirtualMachine's
// spec.preference (core/v1 PreferenceMatcher): preferred devices, CPU
// topology, firmware and the like, which KubeVirt applies where the VM
// sets nothing itself.
type PreferenceRef struct {
	// Kind is VirtualMachineClusterPreference (the default, as KubeVirt's
	// PreferenceMatcher defaults an empty kind) or VirtualMachinePreference,
	// which is looked up in the Wukong's own namespace only.
	// +kubebuilder:validation:Enum=VirtualMachineClusterPreference;VirtualMachinePreference
	// +kubebuilder:default=VirtualMachineClusterPreference
	// +optional
	Kind string `json:"kind,omitempty"`

	// Name of the preference, e.g. fedora.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// ResourcesSource says where status.resources was read.
// +kubebuilder:validation:Enum=Spec;Instancetype;VirtualMachineInstance
type ResourcesSource string

// Values of ResourcesStatus.Source.
const (
	// ResourcesFromSpec: spec.cpu and spec.memory (1 and 1Gi when unset).
	ResourcesFromSpec ResourcesSource = "Spec"
	// ResourcesFromInstancetype: the instance type's spec.cpu.guest and
	// spec.memory.guest, the revision KubeVirt captured when it has one.
	ResourcesFromInstancetype ResourcesSource = "Instancetype"
	// ResourcesFromVirtualMachineInstance: the running instance's
	// spec.domain (cores x sockets x threads, memory.guest), what the guest
	// got.
	ResourcesFromVirtualMachineInstance ResourcesSource = "VirtualMachineInstance"
)

// Reasons of the Stalled condition for spec.instancetype and
// spec.preference (with Ready False).
const (
	// ReasonInstancetypeNotAllowed: spec.instancetype names a
	// VirtualMachineClusterInstancetype the namespace's
	// AnnotationAllowedClusterInstancetypes does not list. The message is
	// the same whether it exists or not.
	ReasonInstancetypeNotAllowed = "InstancetypeNotAllowed"
	// ReasonInstancetypeNotFound: the instance type spec.instancetype
	// names does not exist (a namespaced one: in the Wukong's namespace).
	ReasonInstancetypeNotFound = "InstancetypeNotFound"
	// ReasonPreferenceNotFound: the preference spec.preference names does
	// not exist.
	ReasonPreferenceNotFound = "PreferenceNotFound"
)

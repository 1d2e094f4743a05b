package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BridgeType is the kind of node-level network a NodeBridge declares: a
// bridge Wukong configures through NMState (linux-bridge, ovs-bridge, named
// as NMState names them), or node resources that exist already and are
// only granted (macvtap: a node interface macvtap devices are created on;
// sriov: an SR-IOV device plugin resource pool).
// +kubebuilder:validation:Enum=linux-bridge;ovs-bridge;macvtap;sriov
type BridgeType string

// Declaration types.
const (
	BridgeTypeLinux BridgeType = "linux-bridge"
	BridgeTypeOVS   BridgeType = "ovs-bridge"
	// BridgeTypeMacvtap grants the node interface named like the NodeBridge
	// as the lower device of macvtap NICs (Wukong NIC type macvlan, KubeVirt's
	// macvtap binding). Nothing is configured on the nodes.
	BridgeTypeMacvtap BridgeType = "macvtap"
	// BridgeTypeSRIOV grants the SR-IOV device plugin resource
	// spec.resourceName (Wukong NIC type sriov). Nothing is configured on
	// the nodes: the SR-IOV operator or device plugin owns the VFs.
	BridgeTypeSRIOV BridgeType = "sriov"
)

// DefaultNativeVLAN is the VLAN untagged NICs of a linux-bridge or
// ovs-bridge are put on when nativeVLAN is not set: 1, the Linux bridge's
// default PVID (bridge default_pvid), so existing untagged networks stay
// untagged on the wire.
const DefaultNativeVLAN = 1

// NodeBridgeSpec is an administrator's declaration of a bridge on the nodes
// and of who may attach virtual machines to it.
//
// The models are Harvester's ClusterNetwork/VlanConfig and OpenShift's split
// between a NodeNetworkConfigurationPolicy (node side, cluster admin) and
// NetworkAttachmentDefinitions (namespace side): the node side is decided
// here, once, by someone allowed to change nodes; a Wukong only refers to it
// by name (spec.networks[].bridgeName).
//
// +kubebuilder:validation:XValidation:rule="!has(self.uplinks) || size(self.uplinks) <= 1 || has(self.bond)",message="bond is required when there is more than one uplink (the uplinks are bonded, then the bond is the bridge's port)",fieldPath=".bond"
// +kubebuilder:validation:XValidation:rule="!has(self.bond) || (has(self.uplinks) && size(self.uplinks) >= 2)",message="bond needs at least two uplinks",fieldPath=".bond"
// +kubebuilder:validation:XValidation:rule="self.type in ['macvtap', 'sriov'] ? !has(self.uplinks) : (has(self.uplinks) && size(self.uplinks) >= 1)",message="uplinks are required for linux-bridge and ovs-bridge, and not used by macvtap (the NodeBridge's name is the node interface) or sriov (the device plugin owns the VFs)",fieldPath=".uplinks"
// +kubebuilder:validation:XValidation:rule="self.type == 'sriov' ? has(self.resourceName) : !has(self.resourceName)",message="resourceName is required for sriov and only used by sriov",fieldPath=".resourceName"
// +kubebuilder:validation:XValidation:rule="self.type != 'macvtap' || (!has(self.allowedVLANs) && !has(self.nativeVLAN))",message="a macvtap lower device cannot filter VLANs: declare a VLAN interface (or an access port) as the lower device instead",fieldPath=".allowedVLANs"
// +kubebuilder:validation:XValidation:rule="self.type in ['linux-bridge', 'ovs-bridge'] || (!has(self.bond) && !has(self.bridgeMarker))",message="bond and bridgeMarker apply to linux-bridge and ovs-bridge",fieldPath=".type"
type NodeBridgeSpec struct {
	// Type is linux-bridge (default) or ovs-bridge for a bridge Wukong
	// configures on the nodes; macvtap or sriov to grant node resources that
	// exist already. A Wukong NIC of type bridge attaches to a linux-bridge,
	// of type ovs to an ovs-bridge, of type macvlan to a macvtap declaration
	// named like its physicalInterface, of type sriov to an sriov
	// declaration of its resourceName.
	// +kubebuilder:default=linux-bridge
	// +optional
	Type BridgeType `json:"type,omitempty"`

	// Uplinks are the node interfaces enslaved to the bridge (e.g. eth1). One
	// interface is the bridge's port; several are bonded first (see bond).
	// Never name the node's primary interface: NMState rolls such a policy
	// back when the node loses its API server connectivity, and the bridge
	// is reported Degraded. Required for linux-bridge and ovs-bridge; not
	// used by macvtap and sriov.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z0-9][-a-zA-Z0-9_.]*$`
	// +listType=set
	// +optional
	Uplinks []string `json:"uplinks,omitempty"`

	// ResourceName is the SR-IOV device plugin resource the declaration
	// grants (type sriov only), e.g. intel.com/sriov_netdevice: a Wukong NIC
	// of type sriov naming it in spec.networks[].resourceName may use it.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?/[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$`
	// +optional
	ResourceName string `json:"resourceName,omitempty"`

	// NativeVLAN is the VLAN a NIC without vlanId is put on, as an access
	// port: the guest cannot send tagged frames onto other VLANs. On a
	// linux-bridge or ovs-bridge the uplink carries it untagged (NMState
	// port vlan enable-native with this tag); default 1. On sriov the VF is
	// put on it (sriov-cni "vlan", the PF tags it on the wire); when unset,
	// an untagged sriov NIC is refused, since a VF without a VLAN lets the
	// guest tag any VLAN the switch trunks to the PF.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4094
	// +optional
	NativeVLAN *int32 `json:"nativeVLAN,omitempty"`

	// Bond bonds several uplinks into one port.
	// +optional
	Bond *BondSpec `json:"bond,omitempty"`

	// NodeSelector selects the nodes that get the bridge (NMState's
	// spec.nodeSelector), or for macvtap and sriov the nodes where the
	// interface or resource may be used; empty means every node. VMs with a
	// NIC on the declaration are placed only on these nodes: on a key both
	// name, this selector wins over the Wukong's
	// spec.highAvailability.nodeSelector. At most 64 entries; keys at most
	// 317 characters and values at most 63 (a label key and value).
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && size(self[k]) <= 63)",message="nodeSelector keys are label keys (at most 317 characters) and values label values (at most 63)"
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// AllowedVLANs are the VLAN IDs tenants may tag their NICs with
	// (spec.networks[].vlanId). Empty: only untagged NICs (on nativeVLAN).
	// On a linux-bridge or ovs-bridge the uplink becomes a trunk carrying
	// exactly these VLANs (NMState trunk-tags) plus nativeVLAN untagged; on
	// sriov they are the VF VLANs tenants may ask for.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	AllowedVLANs []VLANRange `json:"allowedVLANs,omitempty"`

	// NamespaceSelector selects the namespaces whose Wukongs may attach to
	// the bridge. Omitted: no namespace may (the bridge is configured on the
	// nodes but unused); {} selects every namespace. At most 64 matchLabels
	// (keys at most 317 characters, values at most 63) and 32
	// matchExpressions of at most 64 values each (a value's length is
	// checked as a label value when the operator reads the selector).
	// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || (size(self.matchLabels) <= 64 && self.matchLabels.all(k, size(k) <= 317 && size(self.matchLabels[k]) <= 63))",message="namespaceSelector.matchLabels has at most 64 entries, keys of at most 317 characters and values of at most 63",fieldPath=".matchLabels"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || (size(self.matchExpressions) <= 32 && self.matchExpressions.all(e, size(e.key) <= 317 && (!has(e.values) || size(e.values) <= 64)))",message="namespaceSelector.matchExpressions has at most 32 entries, keys of at most 317 characters and at most 64 values each",fieldPath=".matchExpressions"
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// BridgeMarker marks the NetworkAttachmentDefinitions Wukong creates for
	// this bridge with KubeVirt's bridge-marker resource
	// (k8s.v1.cni.cncf.io/resourceName: bridge.network.kubevirt.io/<name>),
	// so the scheduler also checks the bridge exists on the node. Set it only
	// where bridge-marker runs (cluster-network-addons-operator deploys it):
	// without it the pods stay Pending. Wukong always adds nodeSelector to
	// the VM, which needs no extra component.
	// +optional
	BridgeMarker bool `json:"bridgeMarker,omitempty"`
}

// BondSpec is an NMState bond of the uplinks.
type BondSpec struct {
	// Name is the bond interface on the nodes, e.g. bond1.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][-a-zA-Z0-9_.]*$`
	Name string `json:"name"`
	// Mode is the bonding mode (NMState link-aggregation mode).
	// +kubebuilder:validation:Enum=active-backup;"802.3ad";balance-xor;balance-tlb;balance-alb;balance-rr;broadcast
	// +kubebuilder:default=active-backup
	// +optional
	Mode string `json:"mode,omitempty"`
}

// VLANRange is an inclusive range of VLAN IDs.
//
// +kubebuilder:validation:XValidation:rule="!has(self.max) || self.max >= self.min",message="max must be at least min",fieldPath=".max"
type VLANRange struct {
	// Min is the first VLAN ID.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4094
	Min int32 `json:"min"`
	// Max is the last VLAN ID; omitted means min (a single VLAN).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4094
	// +optional
	Max int32 `json:"max,omitempty"`
}

// Contains reports whether id lies in the range.
func (r VLANRange) Contains(id int32) bool {
	hi := r.Max
	if hi == 0 {
		hi = r.Min
	}
	return id >= r.Min && id <= hi
}

// NodeBridgeStatus is what the operator observed of the bridge's
// NodeNetworkConfigurationPolicy.
type NodeBridgeStatus struct {
	// PolicyName is the NodeNetworkConfigurationPolicy the operator writes
	// for this bridge.
	// +optional
	PolicyName string `json:"policyName,omitempty"`

	// Conditions: Ready (the policy is Available on every selected node),
	// Degraded (NMState failed or rolled the policy back), and the kstatus
	// conditions Reconciling and Stalled (present only while true).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// NodeBridge declares node-level network reach that tenants' Wukongs may
// use: a bridge on the nodes (linux-bridge, ovs-bridge), a node interface
// for macvtap NICs, or an SR-IOV resource pool. It is cluster-scoped and
// meant for cluster administrators. For a bridge the operator writes one
// NodeNetworkConfigurationPolicy per NodeBridge (and none for anything
// else); macvtap and sriov declarations configure nothing on the nodes. A
// Wukong NIC of any type that needs node-level reach and names something not
// declared, or declared for other namespaces, is refused, with the same
// message either way. Deleting a NodeBridge waits until no Wukong uses it,
// then removes the bridge from the nodes (NMState state: absent) before
// deleting the policy.
//
// The object's name is the bridge's (or, for macvtap, the lower device's)
// interface name on the nodes (at most 15 characters).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=nbr
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Uplinks",type=string,JSONPath=`.spec.uplinks`
// +kubebuilder:printcolumn:name="Resource",type=string,JSONPath=`.spec.resourceName`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.status.policyName`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 15 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name is the bridge's interface name on the nodes: at most 15 lowercase letters, digits and '-'"
type NodeBridge struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec NodeBridgeSpec `json:"spec"`
	// +optional
	Status NodeBridgeStatus `json:"status,omitempty"`
}

// NodeBridgeList is a list of NodeBridges.
//
// +kubebuilder:object:root=true
type NodeBridgeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeBridge `json:"items"`
}

package network

import (
	"errors"
	"fmt"
)

// Type is the CNI plugin a NIC is attached with.
type Type string

// Supported attachment types.
const (
	TypeBridge  Type = "bridge"
	TypeMacvlan Type = "macvlan"
	TypeSRIOV   Type = "sriov"
	TypeOVS     Type = "ovs"
)

// DefaultSRIOVResourceName is the SR-IOV device-plugin resource requested
// when an sriov Attachment leaves ResourceName empty.
const DefaultSRIOVResourceName = "intel.com/sriov_netdevice"

// CNIVersion is the cniVersion written into every NAD config.
const CNIVersion = "1.0.0"

// FieldManager is the Server-Side Apply field manager of every write.
const FieldManager = "wukong"

// Labels and annotations written by the lib.
const (
	// LabelManagedBy marks every object the lib creates (value ManagedByValue).
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "wukong"
	// LabelOwner holds the owner's name on NADs.
	LabelOwner = "vm.novasphere.dev/wukong"
	// LabelNIC holds the NIC name on NADs.
	LabelNIC = "vm.novasphere.dev/nic"
	// LabelBridge holds the (sanitised) bridge name on policies.
	LabelBridge = "vm.novasphere.dev/bridge"
	// AnnotationHolders lists, comma separated and sorted, the
	// `namespace/name` of every owner holding a policy.
	AnnotationHolders = "vm.novasphere.dev/holders"
	// AnnotationUplink records the physical interface enslaved by a policy.
	AnnotationUplink = "vm.novasphere.dev/uplink"
	// AnnotationBridgeType records linux-bridge or ovs-bridge.
	AnnotationBridgeType = "vm.novasphere.dev/bridge-type"
	// AnnotationTrunk is "true" when the uplink port is a VLAN trunk.
	AnnotationTrunk = "vm.novasphere.dev/trunk"
	// AnnotationResourceName is the Multus annotation requesting an SR-IOV
	// device-plugin resource.
	AnnotationResourceName = "k8s.v1.cni.cncf.io/resourceName"
)

// Reasons reported in observations.
const (
	ReasonInvalidAttachment   = "InvalidAttachment"
	ReasonNADNotFound         = "NADNotFound"
	ReasonMultusNotInstalled  = "MultusNotInstalled"
	ReasonNMStateNotInstalled = "NMStateNotInstalled"
	ReasonForeignPolicy       = "ForeignPolicy"
	ReasonBridgeConflict      = "BridgeConflict"
	ReasonApplyFailed         = "ApplyFailed"
	ReasonPolicyPending       = "PolicyPending"
)

// Error prefixes.
const (
	errApplyNAD     = "cannot apply NetworkAttachmentDefinition"
	errGetNAD       = "cannot get NetworkAttachmentDefinition"
	errApplyPolicy  = "cannot apply NodeNetworkConfigurationPolicy"
	errListPolicies = "cannot list NodeNetworkConfigurationPolicies"
	errReleasePol   = "cannot release NodeNetworkConfigurationPolicy"
	errOwnerKind    = "cannot determine the owner's apiVersion/kind"
)

// Attachment is one secondary NIC of a VM.
type Attachment struct {
	// Name is the NIC (KubeVirt network) name; a DNS label.
	Name string
	// Type is the CNI plugin.
	Type Type
	// NADName names an existing NAD ("name" or "namespace/name"); empty
	// means the lib creates `<owner>-<Name>`.
	NADName string
	// Bridge is the node bridge (bridge and ovs types).
	Bridge string
	// VLAN is the VLAN ID, 0 for none.
	VLAN int
	// PhysicalInterface is the uplink enslaved to Bridge through NMState
	// (bridge, ovs) or the macvlan master.
	PhysicalInterface string
	// BridgeNodeSelector limits the bridge policy to matching nodes.
	BridgeNodeSelector map[string]string
	// ResourceName is the SR-IOV device-plugin resource; default
	// DefaultSRIOVResourceName.
	ResourceName string
	// MTU is the interface MTU, 0 for the plugin default. Ignored for sriov
	// (a VF's MTU is set on its PF).
	MTU int
}

// ErrNMStateNotInstalled: a NIC needs a node bridge policy but the
// NodeNetworkConfigurationPolicy CRD (kubernetes-nmstate) is not installed.
var ErrNMStateNotInstalled = errors.New("kubernetes-nmstate is not installed: NodeNetworkConfigurationPolicy (nmstate.io/v1) is not served")

// ErrMultusNotInstalled: the NetworkAttachmentDefinition CRD is not installed.
var ErrMultusNotInstalled = errors.New("multus is not installed: NetworkAttachmentDefinition (k8s.cni.cncf.io/v1) is not served")

// ErrUserNAD is returned by BuildNAD for an Attachment naming its own NAD.
var ErrUserNAD = errors.New("attachment names a user NetworkAttachmentDefinition; nothing to build")

// InvalidAttachmentError: a required input is missing or out of range.
type InvalidAttachmentError struct {
	NIC    string
	Field  string
	Reason string
}

func (e *InvalidAttachmentError) Error() string {
	return fmt.Sprintf("NIC %q: field %s: %s", e.NIC, e.Field, e.Reason)
}

// NADNotFoundError: a user-named NAD does not exist.
type NADNotFoundError struct {
	NIC       string
	Namespace string
	Name      string
}

func (e *NADNotFoundError) Error() string {
	return fmt.Sprintf("NIC %q: NetworkAttachmentDefinition %s/%s not found", e.NIC, e.Namespace, e.Name)
}

// ForeignPolicyError: a policy with the lib's name exists but was not created
// by the lib (no managed-by label); it is left untouched.
type ForeignPolicyError struct {
	Name string
}

func (e *ForeignPolicyError) Error() string {
	return fmt.Sprintf("NodeNetworkConfigurationPolicy %s exists and is not managed by wukong; refusing to take it over", e.Name)
}

// BridgeConflictError: the bridge's policy is held by another owner (or
// another NIC) with a different Field value.
type BridgeConflictError struct {
	Bridge string
	Policy string
	Field  string
	Have   string
	Want   string
}

func (e *BridgeConflictError) Error() string {
	return fmt.Sprintf("bridge %q (policy %s) is already held with %s %q; this NIC asks for %q",
		e.Bridge, e.Policy, e.Field, e.Have, e.Want)
}

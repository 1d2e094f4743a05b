package network

import (
	"errors"
	"fmt"

	"github.com/novasphere/wukong/lib/apply"
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

// Names of the lib's own label and annotation keys, under the caller's
// domain: the key is id.Key(name) for the apply.Identity passed in, e.g.
// "example.com/nic". Every object also carries id's managed-by label, and a
// NAD id's owner label (id.OwnerLabels).
const (
	// KeyNIC is the label holding the NIC name on NADs.
	KeyNIC = "nic"
	// KeyBridge is the label holding the (sanitised) bridge name on policies.
	KeyBridge = "bridge"
	// KeyBridgeState is the annotation that is "up" on a policy that
	// configures its bridge, "absent" on one that is removing it from the
	// nodes.
	KeyBridgeState = "bridge-state"
)

// Multus' annotations.
const (
	// AnnotationResourceName is the Multus annotation requesting an SR-IOV
	// device-plugin resource.
	AnnotationResourceName = "k8s.v1.cni.cncf.io/resourceName"
)

// Reasons reported in observations, in each NIC's *apply.Failure and in
// the *apply.Failure of ReconcilePolicy and RemovePolicy.
// ReasonApplyFailed (an API error) is transient; ReasonPredecessor waits
// (apply.Waiting: the garbage collector resolves it); the others are
// stalled: someone must act. ReasonPolicyPending is an observation of a
// NodeNetworkConfigurationPolicy, never a failure. ReasonNMStateNotInstalled
// and ReasonInvalidBridge are a bridge's (ReconcilePolicy), never a NIC's.
const (
	ReasonInvalidAttachment   = "InvalidAttachment"
	ReasonNADNotFound         = "NADNotFound"
	ReasonMultusNotInstalled  = "MultusNotInstalled"
	ReasonNameConflict        = apply.ReasonNameConflict
	ReasonPredecessor         = apply.ReasonPredecessor
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	ReasonApplyFailed         = "ApplyFailed"
	ReasonPolicyPending       = "PolicyPending"
	// ReasonNMStateNotInstalled: the NodeNetworkConfigurationPolicy kind
	// is not served (ErrNMStateNotInstalled).
	ReasonNMStateNotInstalled = "NMStateNotInstalled"
	// ReasonInvalidBridge: the Bridge fails Bridge.Validate.
	ReasonInvalidBridge = "InvalidBridge"
)

// Error prefixes.
const (
	errApplyNAD       = "cannot apply NetworkAttachmentDefinition"
	errGetNAD         = "cannot get NetworkAttachmentDefinition"
	errApplyPolicy    = "cannot apply NodeNetworkConfigurationPolicy"
	errGetPolicy      = "cannot get NodeNetworkConfigurationPolicy"
	errDeletePolicy   = "cannot delete NodeNetworkConfigurationPolicy"
	errListEnactments = "cannot list NodeNetworkConfigurationEnactments"
	errOwnerKind      = "cannot determine the owner's apiVersion/kind"
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
	// Bridge is the node bridge (bridge and ovs types). The lib does not
	// create it: node bridges are configured separately (ReconcilePolicy),
	// by whoever may change nodes.
	Bridge string
	// VLAN is the VLAN ID, 0 for none.
	VLAN int
	// PhysicalInterface is the macvlan master interface.
	PhysicalInterface string
	// ResourceName is the device-plugin resource the NAD asks for
	// (k8s.v1.cni.cncf.io/resourceName): the SR-IOV resource (default
	// DefaultSRIOVResourceName), or for a bridge KubeVirt's bridge-marker
	// resource bridge.network.kubevirt.io/<bridge> so pods land only on
	// nodes that have the bridge. Empty for bridge: none.
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

// NamespaceNotAllowedError: a user-named NAD lives in another namespace that
// is not among the allowed ones (WithGlobalNamespaces). The message is the
// same whether or not the NAD exists, so it reveals nothing about the other
// namespace.
type NamespaceNotAllowedError struct {
	NIC       string
	Namespace string
}

func (e *NamespaceNotAllowedError) Error() string {
	return fmt.Sprintf("NIC %q: NetworkAttachmentDefinitions in namespace %s may not be used from this namespace; use one in this namespace or ask an administrator to allow %s", e.NIC, e.Namespace, e.Namespace)
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

package network

import (
	"encoding/json"
	"fmt"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// Validate checks the inputs BuildNAD and the bridge policy need and returns
// an *InvalidAttachmentError naming the first bad field.
func (a Attachment) Validate() error {
	bad := func(field, reason string) error {
		return &InvalidAttachmentError{NIC: a.Name, Field: field, Reason: reason}
	}
	if errs := validation.IsDNS1123Label(a.Name); len(errs) > 0 {
		return bad("name", strings.Join(errs, "; "))
	}
	if a.VLAN < 0 || a.VLAN > 4094 {
		return bad("vlan", "must be between 0 (none) and 4094")
	}
	if a.MTU < 0 {
		return bad("mtu", "must not be negative")
	}
	if a.NADName != "" {
		ns, name := ResolveNAD("default", a.NADName)
		if strings.Count(a.NADName, "/") > 1 || ns == "" || name == "" {
			return bad("nadName", `must be "name" or "namespace/name"`)
		}
	}
	switch a.Type {
	case TypeBridge, TypeOVS:
		if a.Bridge == "" && (a.NADName == "" || a.PhysicalInterface != "") {
			return bad("bridge", fmt.Sprintf("required for type %s", a.Type))
		}
	case TypeMacvlan:
		if a.NADName == "" && a.PhysicalInterface == "" {
			return bad("physicalInterface", "required for type macvlan (the node interface the guest's macvtap device is created on)")
		}
		if a.VLAN != 0 {
			return bad("vlan", "not supported for type macvlan; use a VLAN interface as physicalInterface")
		}
	case TypeSRIOV:
	default:
		return bad("type", fmt.Sprintf("unknown type %q (want bridge, macvlan, sriov or ovs)", a.Type))
	}
	return nil
}

// NADName returns the name of the NAD the lib creates for nic of owner.
func NADName(owner, nic string) string { return owner + "-" + nic }

// ResolveNAD splits a user NAD reference ("name" or "namespace/name") into
// namespace and name; a bare name lives in ownerNamespace.
func ResolveNAD(ownerNamespace, nadName string) (ns, name string) {
	if i := strings.Index(nadName, "/"); i >= 0 {
		return nadName[:i], nadName[i+1:]
	}
	return ownerNamespace, nadName
}

// cniConfig is the single-plugin CNI configuration written into a NAD. Keys
// are the plugins' own: bridge (containernetworking/plugins
// plugins/main/bridge NetConf: bridge, vlan, preserveDefaultVlan,
// macspoofchk, mtu, ipam), ovs-cni (bridge, vlan, mtu), sriov-cni
// (k8snetworkplumbingwg/sriov-cni NetConf: vlan, spoofchk, trust) and
// macvtap-cni (mtu).
type cniConfig struct {
	CNIVersion          string    `json:"cniVersion"`
	Name                string    `json:"name"`
	Type                string    `json:"type"`
	Bridge              string    `json:"bridge,omitempty"`
	VLAN                int       `json:"vlan,omitempty"`
	PreserveDefaultVlan *bool     `json:"preserveDefaultVlan,omitempty"`
	MacSpoofChk         bool      `json:"macspoofchk,omitempty"`
	SpoofChk            string    `json:"spoofchk,omitempty"`
	Trust               string    `json:"trust,omitempty"`
	MTU                 int       `json:"mtu,omitempty"`
	IPAM                *struct{} `json:"ipam,omitempty"`
}

// CNIConfig returns the CNI configuration (cniVersion CNIVersion) for a,
// named name. The bridge plugin gets an empty ipam: with KubeVirt's bridge
// binding the guest owns its address, so the pod side must not assign one.
//
// Tenants sharing a node bridge or a PF cannot reach past their port:
//   - bridge: the port is an access port of a.VLAN (bridge CNI "vlan",
//     which turns on the bridge's VLAN filtering; preserveDefaultVlan false
//     keeps VLAN 1 off the port), so frames the guest tags itself are
//     dropped; and "macspoofchk" drops frames whose source MAC is not the
//     port's (the plugin installs nftables rules: the node needs nft).
//     Callers give untagged NICs the bridge's native VLAN as a.VLAN; with
//     a.VLAN 0 the port has no VLAN filtering (a guest can then tag).
//   - ovs: "vlan" makes the port an access port (ovs-cni: "trunk port if
//     not specified"), so again callers give untagged NICs the native VLAN.
//   - sriov: "spoofchk": "on" and "trust": "off" (sriov-cni), so the VF
//     cannot change its MAC or enter promiscuous mode; "vlan" is the VF's
//     VLAN, inserted by the PF.
//
// A macvlan attachment gets the macvtap plugin (see CNIMacvtap), whose
// config names no master: the device plugin resource BuildNAD requests
// picks the node interface.
func CNIConfig(name string, a Attachment) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	conf := cniConfig{CNIVersion: CNIVersion, Name: name, Type: CNITypeFor(a), MTU: a.MTU}
	switch a.Type {
	case TypeBridge:
		conf.Bridge = a.Bridge
		conf.IPAM = &struct{}{}
		conf.MacSpoofChk = true
		if a.VLAN != 0 {
			conf.VLAN = a.VLAN
			conf.PreserveDefaultVlan = ptr.To(false)
		}
	case TypeSRIOV:
		conf.VLAN = a.VLAN
		conf.MTU = 0
		conf.SpoofChk, conf.Trust = "on", "off"
	case TypeOVS:
		conf.Bridge = a.Bridge
		conf.VLAN = a.VLAN
	}
	return json.Marshal(conf)
}

// BuildNAD returns the NetworkAttachmentDefinition `<owner>-<nic>` in the
// owner's namespace for an Attachment without NADName (ErrUserNAD otherwise).
// A macvlan attachment's NAD requests the macvtap device plugin resource
// MacvtapResourcePrefix+PhysicalInterface unless ResourceName is set.
// owner must have its TypeMeta set: it is used for the controller owner
// reference. The NAD carries id.OwnerLabels(owner) and id.Key(KeyNIC) = NIC.
func BuildNAD(id apply.Identity, owner client.Object, a Attachment) (*nadv1.NetworkAttachmentDefinition, error) {
	if a.NADName != "" {
		return nil, ErrUserNAD
	}
	gvk := owner.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, fmt.Errorf("%s: owner %s has no TypeMeta", errOwnerKind, owner.GetName())
	}
	name := NADName(owner.GetName(), a.Name)
	config, err := CNIConfig(name, a)
	if err != nil {
		return nil, err
	}
	nad := &nadv1.NetworkAttachmentDefinition{
		TypeMeta: metav1.TypeMeta{APIVersion: nadv1.SchemeGroupVersion.String(), Kind: "NetworkAttachmentDefinition"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       owner.GetNamespace(),
			Labels:          nadLabels(id, owner.GetName(), a.Name),
			OwnerReferences: []metav1.OwnerReference{apply.ControllerRef(owner)},
		},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: string(config)},
	}
	rn := a.ResourceName
	if a.Type == TypeSRIOV && rn == "" {
		rn = DefaultSRIOVResourceName
	}
	if rn != "" {
		nad.Annotations = map[string]string{AnnotationResourceName: rn}
	}
	if a.Type == TypeMacvlan {
		rn := a.ResourceName
		if rn == "" {
			rn = MacvtapResourcePrefix + a.PhysicalInterface
		}
		nad.Annotations = map[string]string{AnnotationResourceName: rn}
	}
	return nad, nil
}

func nadLabels(id apply.Identity, owner, nic string) map[string]string {
	l := id.OwnerLabels(owner)
	l[id.Key(KeyNIC)] = nic
	return l
}

// MAC returns a stable MAC address for nic of owner in namespace: the first
// six bytes of a SHA-256 over the three names, marked locally administered
// and unicast. The same inputs always give the same address, so a restarted
// VM keeps its MAC.
func MAC(namespace, owner, nic string) string {
	return hashMAC(namespace, owner, nic)
}

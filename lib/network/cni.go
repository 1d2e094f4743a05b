package network

import (
	"encoding/json"
	"fmt"
	"strings"
)

// CNI plugin types the lib writes or recognises in a NAD's config.
const (
	// CNIMacvtap is kubevirt/macvtap-cni. The lib serves TypeMacvlan with it:
	// a NIC that wants its own MAC directly on a node interface is what
	// KubeVirt's macvtap network binding plugin provides, while a macvlan pod
	// interface cannot be used by KubeVirt's bridge binding (KubeVirt user
	// guide, "Interfaces and Networks", invalid CNIs for secondary networks;
	// https://kubevirt.io/user-guide/network/net_binding_plugins/macvtap/).
	// A VM uses such a NAD with interface `binding: {name: macvtap}`.
	CNIMacvtap = "macvtap"
	// CNIMacvlan and CNIIPvlan are the plugins KubeVirt cannot bind a VM
	// NIC to: the bridge binding enslaves the pod interface to an in-pod
	// bridge and hands its MAC to the guest, which a macvlan or ipvlan
	// interface does not allow (kubevirt/user-guide#528; kubevirt/kubevirt
	// issues 5483, 7001 and 12236), and the macvtap binding needs a macvtap
	// interface.
	CNIMacvlan = "macvlan"
	CNIIPvlan  = "ipvlan"
)

// MacvtapResourcePrefix is the resource namespace of the macvtap device
// plugin; with its default (empty) configuration it offers one resource per
// node link, named after the link (kubevirt/macvtap-cni,
// pkg/deviceplugin/lister.go). A macvtap NAD names it in
// AnnotationResourceName so Multus passes the allocated device to the CNI.
const MacvtapResourcePrefix = "macvtap.network.kubevirt.io/"

// ReasonUnsupportedCNI: a user-named NAD uses a CNI plugin KubeVirt cannot
// connect a VM to (UnsupportedCNIError).
const ReasonUnsupportedCNI = "UnsupportedCNI"

// UnsupportedCNIError: the user-named NAD Namespace/Name uses CNI plugin
// Type (macvlan or ipvlan), which no KubeVirt binding can use.
type UnsupportedCNIError struct {
	NIC       string
	Namespace string
	Name      string
	Type      string
}

func (e *UnsupportedCNIError) Error() string {
	return fmt.Sprintf("NIC %q: NetworkAttachmentDefinition %s/%s uses the %s CNI plugin, which KubeVirt cannot connect a VM to "+
		"(its bridge binding needs a pod interface it can enslave to a bridge and hand to the guest, which a %s interface is not); "+
		"use a NetworkAttachmentDefinition of type macvtap (KubeVirt's macvtap binding) or bridge",
		e.NIC, e.Namespace, e.Name, e.Type, e.Type)
}

// CNITypeFor is the CNI plugin type of the NAD BuildNAD writes for a:
// CNIMacvtap for TypeMacvlan, else the type's own name.
func CNITypeFor(a Attachment) string {
	if a.Type == TypeMacvlan {
		return CNIMacvtap
	}
	return string(a.Type)
}

// CNIType returns the main plugin type of a NAD's spec.config: "type" of a
// single-plugin config, or of the first entry of "plugins" in a plugin list
// (the interface-creating plugin; later ones such as tuning are chained).
// An empty config (Multus then reads the node's file of that name) gives "".
// Malformed JSON is an error.
func CNIType(config string) (string, error) {
	if strings.TrimSpace(config) == "" {
		return "", nil
	}
	var c struct {
		Type    string `json:"type"`
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		return "", fmt.Errorf("NetworkAttachmentDefinition config is not valid JSON: %w", err)
	}
	if c.Type == "" && len(c.Plugins) > 0 {
		return c.Plugins[0].Type, nil
	}
	return c.Type, nil
}

// observeUserCNI records the CNI type of the user-named NAD a NIC found and
// fails the NIC with *UnsupportedCNIError when it is macvlan or ipvlan. A
// config it cannot read leaves CNIType empty: Multus reports that itself.
func (n *NICObservation) observeUserCNI(config string) {
	t, err := CNIType(config)
	if err != nil {
		return
	}
	n.CNIType = t
	if t == CNIMacvlan || t == CNIIPvlan {
		err := &UnsupportedCNIError{NIC: n.Name, Namespace: n.NADNamespace, Name: n.NADName, Type: t}
		n.fail(ReasonUnsupportedCNI, err)
	}
}

// Package nodenet holds the rule by which a tenant's NIC may reach a node
// network: the administrator's NodeBridge declarations (a linux or OVS
// bridge, a macvtap lower device, an SR-IOV pool), which namespaces and
// VLANs each admits, and the Wukong field index that finds the Wukongs
// naming one. The Wukong controller grants NICs with it; the NodeBridge
// controller counts a declaration's users with the same rule. It is pure
// but for the index registration, and imports no controller.
package nodenet

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// Grant is what a NIC may use of a declaration (NodeBridge).
type Grant struct {
	// NIC is the index of the NIC in spec.networks.
	NIC  int
	Decl *v1alpha1.NodeBridge
	// VLAN is the VLAN the NIC's port is put on: its vlanId, or for an
	// untagged NIC the declaration's native VLAN (0: none, untagged sriov
	// is refused without one).
	VLAN int32
}

// SRIOVKeyPrefix marks an SR-IOV resource in the Wukong field index
// IndexField (a NodeBridge name cannot contain ':').
const SRIOVKeyPrefix = "sriov:"

// Ref is what a NIC needs an administrator to have declared: a NodeBridge
// of type Want named Key (bridge, ovs: the node bridge; macvlan: the node
// interface the macvtap devices are created on) or, for sriov, a NodeBridge
// of type sriov whose resourceName is Resource. Field is the NIC field that
// names it (for messages, e.g. "bridgeName"). Zero for NICs that name their
// own NAD (nadName): those reach only what the namespace's own NAD reaches.
type Ref struct {
	Want     v1alpha1.BridgeType
	Key      string
	Resource string
	Field    string
}

// None: the NIC needs no declaration.
func (d Ref) None() bool { return d.Key == "" && d.Resource == "" }

// IndexKey is the key of d in the Wukong field index IndexField.
func (d Ref) IndexKey() string {
	if d.Resource != "" {
		return SRIOVKeyPrefix + d.Resource
	}
	return d.Key
}

// RefOf is the declaration a NIC needs. A bridge NIC without
// bridgeName uses br-<network name> (the original design's habit); a
// macvlan NIC's node interface is physicalInterface, else bridgeName; an
// sriov NIC without resourceName uses network.DefaultSRIOVResourceName.
func RefOf(n v1alpha1.NetworkSpec) Ref {
	if n.NADName != "" {
		return Ref{}
	}
	switch mapping.NetworkType(n) {
	case v1alpha1.NetworkTypeBridge:
		if n.BridgeName == "" {
			return Ref{Want: v1alpha1.BridgeTypeLinux, Key: "br-" + n.Name, Field: "name"}
		}
		return Ref{Want: v1alpha1.BridgeTypeLinux, Key: n.BridgeName, Field: "bridgeName"}
	case v1alpha1.NetworkTypeOVS:
		return Ref{Want: v1alpha1.BridgeTypeOVS, Key: n.BridgeName, Field: "bridgeName"}
	case v1alpha1.NetworkTypeMacvlan:
		if n.PhysicalInterface != "" {
			return Ref{Want: v1alpha1.BridgeTypeMacvtap, Key: n.PhysicalInterface, Field: "physicalInterface"}
		}
		return Ref{Want: v1alpha1.BridgeTypeMacvtap, Key: n.BridgeName, Field: "bridgeName"}
	case v1alpha1.NetworkTypeSRIOV:
		rn := n.ResourceName
		if rn == "" {
			rn = network.DefaultSRIOVResourceName
		}
		return Ref{Want: v1alpha1.BridgeTypeSRIOV, Resource: rn, Field: "resourceName"}
	}
	return Ref{}
}

// Refusal is why a NIC may not use any declaration: the NIC field to
// change and the message.
type Refusal struct {
	Field, Message string
}

// Decide decides whether the NIC n of a Wukong in namespace ns may use one
// of decls (the NodeBridges its Ref found: the one of its name,
// or every sriov declaration of its resource, sorted by name). It is the
// one place the rule is written, used to reconcile Wukongs and to count a
// NodeBridge's users. The checks, in order:
//   - the declaration is of the NIC's kind and its namespaceSelector selects
//     ns; otherwise the message is the same whether the thing is not
//     declared at all, declared for other namespaces or of another type
//     (nothing about other tenants' declarations leaks);
//   - the NIC's vlanId is in allowedVLANs; an untagged NIC goes on the
//     nativeVLAN (bridges default to DefaultNativeVLAN; an untagged sriov
//     NIC needs one);
//   - physicalInterface, on a bridge NIC, is one of the uplinks;
//   - the declaration is not being deleted.
//
// A bridge NIC naming an ovs-bridge (or the reverse) is told the type, since
// the declaration is one this namespace may use.
func Decide(n v1alpha1.NetworkSpec, ref Ref, decls []*v1alpha1.NodeBridge, ns *corev1.Namespace) (Grant, *Refusal) {
	var usable []*v1alpha1.NodeBridge
	var otherType *v1alpha1.NodeBridge
	for _, d := range decls {
		if !NamespaceAllowed(d, ns) {
			continue
		}
		if Type(d) != ref.Want {
			otherType = d
			continue
		}
		usable = append(usable, d)
	}
	if len(usable) == 0 {
		if otherType != nil && ref.Want != v1alpha1.BridgeTypeMacvtap && Type(otherType) != v1alpha1.BridgeTypeMacvtap {
			return Grant{}, &Refusal{"type", fmt.Sprintf("node bridge %s is a %s; a NIC of type %s needs a %s", otherType.Name, Type(otherType), mapping.NetworkType(n), ref.Want)}
		}
		return Grant{}, notDeclared(ref, ns.Name)
	}
	var first *Refusal
	for _, d := range usable {
		g, r := decideOne(n, ref, d)
		if r == nil {
			return g, nil
		}
		if first == nil {
			first = r
		}
	}
	return Grant{}, first
}

func decideOne(n v1alpha1.NetworkSpec, ref Ref, d *v1alpha1.NodeBridge) (Grant, *Refusal) {
	g := Grant{Decl: d, VLAN: n.VLANID}
	what := "node bridge " + d.Name
	switch ref.Want {
	case v1alpha1.BridgeTypeSRIOV:
		what = fmt.Sprintf("SR-IOV resource %s (NodeBridge %s)", d.Spec.ResourceName, d.Name)
	case v1alpha1.BridgeTypeMacvtap:
		what = "node interface " + d.Name
	}
	switch {
	case n.VLANID != 0 && !vlanAllowed(d, n.VLANID):
		return g, &Refusal{"vlanId", fmt.Sprintf("VLAN %d is not allowed on %s (allowed: %s)", n.VLANID, what, vlanList(d))}
	case n.VLANID == 0 && ref.Want == v1alpha1.BridgeTypeSRIOV && d.Spec.NativeVLAN == nil:
		return g, &Refusal{"vlanId", fmt.Sprintf("%s allows only tagged NICs (allowed: %s): set vlanId; an untagged VF would let the guest tag any VLAN, so untagged NICs need the declaration's nativeVLAN", what, vlanList(d))}
	case n.VLANID == 0 && ref.Want != v1alpha1.BridgeTypeMacvtap:
		g.VLAN = NativeVLAN(d)
	}
	if ref.Want == v1alpha1.BridgeTypeLinux || ref.Want == v1alpha1.BridgeTypeOVS {
		if n.PhysicalInterface != "" && !slices.Contains(d.Spec.Uplinks, n.PhysicalInterface) {
			return g, &Refusal{"physicalInterface", fmt.Sprintf(
				"node bridge %s has uplinks %s, not %s: the administrator's NodeBridge decides the uplink; remove physicalInterface or match it",
				d.Name, strings.Join(d.Spec.Uplinks, ","), n.PhysicalInterface)}
		}
	}
	if !d.DeletionTimestamp.IsZero() {
		return g, &Refusal{ref.Field, fmt.Sprintf("%s is being removed by an administrator", what)}
	}
	return g, nil
}

// notDeclared is the one Refusal for something not declared for the
// namespace, whether it exists, is declared for others or not at all.
func notDeclared(ref Ref, ns string) *Refusal {
	switch ref.Want {
	case v1alpha1.BridgeTypeSRIOV:
		return &Refusal{ref.Field, fmt.Sprintf(
			"SR-IOV resource %q is not declared for namespace %s: SR-IOV pools and VLANs are declared by a cluster administrator (a NodeBridge of type sriov with resourceName %s and a namespaceSelector matching this namespace)",
			ref.Resource, ns, ref.Resource)}
	case v1alpha1.BridgeTypeMacvtap:
		return &Refusal{ref.Field, fmt.Sprintf(
			"node interface %q is not declared for macvtap NICs in namespace %s: node interfaces are declared by a cluster administrator (NodeBridge %s of type macvtap with a namespaceSelector matching this namespace)",
			ref.Key, ns, ref.Key)}
	}
	return &Refusal{ref.Field, fmt.Sprintf(
		"node bridge %q is not declared for namespace %s: node bridges are declared by a cluster administrator (NodeBridge %s with a namespaceSelector matching this namespace)",
		ref.Key, ns, ref.Key)}
}

// NativeVLAN is the VLAN untagged NICs go on: spec.nativeVLAN, for bridges
// DefaultNativeVLAN when unset, for sriov 0 (none) when unset.
func NativeVLAN(d *v1alpha1.NodeBridge) int32 {
	if d.Spec.NativeVLAN != nil {
		return *d.Spec.NativeVLAN
	}
	switch Type(d) {
	case v1alpha1.BridgeTypeLinux, v1alpha1.BridgeTypeOVS:
		return v1alpha1.DefaultNativeVLAN
	}
	return 0
}

// Type is the declaration's type, linux-bridge when unset (the CRD's
// default, for objects written before it applied).
func Type(d *v1alpha1.NodeBridge) v1alpha1.BridgeType {
	if d.Spec.Type == "" {
		return v1alpha1.BridgeTypeLinux
	}
	return d.Spec.Type
}

// NamespaceAllowed: the declaration's namespaceSelector selects ns; an
// omitted selector selects none (SelectsNamespace).
func NamespaceAllowed(d *v1alpha1.NodeBridge, ns *corev1.Namespace) bool {
	return SelectsNamespace(d.Spec.NamespaceSelector, ns)
}

// SelectsNamespace is the rule of an administrator's namespaceSelector
// (NodeBridge, ClusterImage): sel selects ns by its labels; a nil selector
// selects none, {} every namespace, one that does not parse none.
func SelectsNamespace(sel *metav1.LabelSelector, ns *corev1.Namespace) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(ns.Labels))
}

// vlanAllowed: id is in one of the declaration's allowedVLANs.
func vlanAllowed(d *v1alpha1.NodeBridge, id int32) bool {
	for _, r := range d.Spec.AllowedVLANs {
		if r.Contains(id) {
			return true
		}
	}
	return false
}

// vlanList writes allowedVLANs for messages, e.g. "100-199,300", or
// "untagged only".
func vlanList(d *v1alpha1.NodeBridge) string {
	if len(d.Spec.AllowedVLANs) == 0 {
		return "untagged only"
	}
	parts := make([]string, 0, len(d.Spec.AllowedVLANs))
	for _, r := range d.Spec.AllowedVLANs {
		if r.Max == 0 || r.Max == r.Min {
			parts = append(parts, fmt.Sprint(r.Min))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.Min, r.Max))
		}
	}
	return strings.Join(parts, ",")
}

// Ready reads a granted bridge's readiness from its NodeBridge status:
// ready, or why not. stalledReason is set when the NodeBridge cannot become
// ready without an administrator (Degraded: NMState failed or rolled the
// policy back; or Stalled: its policy's name is taken, NMState is missing):
// waiting would not help the Wukong.
func Ready(d *v1alpha1.NodeBridge) (ready bool, stalledReason, message string) {
	get := func(t string) *metav1.Condition { return meta.FindStatusCondition(d.Status.Conditions, t) }
	if c := get(v1alpha1.DegradedCondition); c != nil && c.Status == metav1.ConditionTrue {
		return false, v1alpha1.ReasonBridgeDegraded, c.Message
	}
	if c := get(v1alpha1.StalledCondition); c != nil && c.Status == metav1.ConditionTrue {
		return false, c.Reason, c.Message
	}
	c := get(v1alpha1.ReadyCondition)
	if c != nil && c.Status == metav1.ConditionTrue && d.Status.ObservedGeneration == d.Generation {
		return true, "", ""
	}
	if c != nil && c.Message != "" {
		return false, "", c.Message
	}
	return false, "", "the operator has not reported on it yet"
}

// ConfiguresNodes: the declaration is a bridge Wukong configures through an
// NMState policy (linux-bridge, ovs-bridge); macvtap and sriov
// declarations only grant what exists on the nodes.
func ConfiguresNodes(d *v1alpha1.NodeBridge) bool {
	t := Type(d)
	return t == v1alpha1.BridgeTypeLinux || t == v1alpha1.BridgeTypeOVS
}

// IndexField indexes Wukongs by the declarations their NICs need: the
// NodeBridge name (bridge, ovs, macvlan) or SRIOVKeyPrefix+resource (sriov).
const IndexField = "spec.networks.bridge"

// IndexWukong is the IndexField extractor: a Wukong's Ref.IndexKey()s.
func IndexWukong(o client.Object) []string {
	w, ok := o.(*v1alpha1.Wukong)
	if !ok {
		return nil
	}
	var out []string
	for _, n := range w.Spec.Networks {
		if ref := RefOf(n); !ref.None() {
			out = append(out, ref.IndexKey())
		}
	}
	return out
}

// Keys are the IndexField keys a NodeBridge answers to: its name, and for
// an sriov declaration SRIOVKeyPrefix+resourceName.
func Keys(o client.Object) []string {
	keys := []string{o.GetName()}
	if d, ok := o.(*v1alpha1.NodeBridge); ok && d.Spec.ResourceName != "" {
		keys = append(keys, SRIOVKeyPrefix+d.Spec.ResourceName)
	}
	return keys
}

// AddIndex registers IndexField on Wukongs, once per manager (the manager
// calls it before setting up the controllers that list by it).
func AddIndex(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &v1alpha1.Wukong{}, IndexField, IndexWukong)
}

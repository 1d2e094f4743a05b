package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/operator/mapping"
)

// bridgeMarkerResource is the extended resource KubeVirt's bridge-marker
// advertises on nodes that have a bridge (kubevirt/bridge-marker README:
// bridge.network.kubevirt.io/<bridge>); a NAD naming it in
// k8s.v1.cni.cncf.io/resourceName makes the VM's pod request it.
const bridgeMarkerResource = "bridge.network.kubevirt.io/"

// bridgeGrant is what a NIC may use of a declaration (NodeBridge).
type bridgeGrant struct {
	// nic is the index of the NIC in spec.networks.
	nic  int
	decl *v1alpha1.NodeBridge
	// vlan is the VLAN the NIC's port is put on: its vlanId, or for an
	// untagged NIC the declaration's native VLAN (0: none, untagged sriov
	// is refused without one).
	vlan int32
}

// sriovKeyPrefix marks an SR-IOV resource in the Wukong field index
// indexBridges (a NodeBridge name cannot contain ':').
const sriovKeyPrefix = "sriov:"

// declarationRef is what a NIC needs an administrator to have declared:
// a NodeBridge named key (bridge, ovs: the node bridge; macvlan: the node
// interface the macvtap devices are created on) or, for sriov, a NodeBridge
// of type sriov whose resourceName is resource. field is the NIC field
// that names it (for messages). Zero for NICs that name their own NAD
// (nadName): those reach only what the namespace's own NAD reaches.
type declarationRef struct {
	want     v1alpha1.BridgeType
	key      string
	resource string
	field    string
}

func (d declarationRef) none() bool { return d.key == "" && d.resource == "" }

// indexKey is the key of d in the Wukong field index indexBridges.
func (d declarationRef) indexKey() string {
	if d.resource != "" {
		return sriovKeyPrefix + d.resource
	}
	return d.key
}

// declarationOf is the declaration a NIC needs. A bridge NIC without
// bridgeName uses br-<network name> (the original design's habit); a
// macvlan NIC's node interface is physicalInterface, else bridgeName; an
// sriov NIC without resourceName uses network.DefaultSRIOVResourceName.
func declarationOf(n v1alpha1.NetworkSpec) declarationRef {
	if n.NADName != "" {
		return declarationRef{}
	}
	switch mapping.NetworkType(n) {
	case v1alpha1.NetworkTypeBridge:
		if n.BridgeName == "" {
			return declarationRef{want: v1alpha1.BridgeTypeLinux, key: "br-" + n.Name, field: "name"}
		}
		return declarationRef{want: v1alpha1.BridgeTypeLinux, key: n.BridgeName, field: "bridgeName"}
	case v1alpha1.NetworkTypeOVS:
		return declarationRef{want: v1alpha1.BridgeTypeOVS, key: n.BridgeName, field: "bridgeName"}
	case v1alpha1.NetworkTypeMacvlan:
		if n.PhysicalInterface != "" {
			return declarationRef{want: v1alpha1.BridgeTypeMacvtap, key: n.PhysicalInterface, field: "physicalInterface"}
		}
		return declarationRef{want: v1alpha1.BridgeTypeMacvtap, key: n.BridgeName, field: "bridgeName"}
	case v1alpha1.NetworkTypeSRIOV:
		rn := n.ResourceName
		if rn == "" {
			rn = network.DefaultSRIOVResourceName
		}
		return declarationRef{want: v1alpha1.BridgeTypeSRIOV, resource: rn, field: "resourceName"}
	}
	return declarationRef{}
}

// bridgeName is the NodeBridge a NIC names by name (bridge, ovs, macvlan);
// empty for sriov NICs and NICs with nadName.
func bridgeName(n v1alpha1.NetworkSpec) string { return declarationOf(n).key }

// refusal is why a NIC may not use any declaration: the NIC field to
// change and the message.
type refusal struct {
	field, message string
}

// grant decides whether the NIC n of a Wukong in namespace ns may use one
// of decls (the NodeBridges its declarationRef found: the one of its name,
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
func grant(n v1alpha1.NetworkSpec, ref declarationRef, decls []*v1alpha1.NodeBridge, ns *corev1.Namespace) (bridgeGrant, *refusal) {
	var usable []*v1alpha1.NodeBridge
	var otherType *v1alpha1.NodeBridge
	for _, d := range decls {
		if !namespaceAllowed(d, ns) {
			continue
		}
		if bridgeType(d) != ref.want {
			otherType = d
			continue
		}
		usable = append(usable, d)
	}
	if len(usable) == 0 {
		if otherType != nil && ref.want != v1alpha1.BridgeTypeMacvtap && bridgeType(otherType) != v1alpha1.BridgeTypeMacvtap {
			return bridgeGrant{}, &refusal{"type", fmt.Sprintf("node bridge %s is a %s; a NIC of type %s needs a %s", otherType.Name, bridgeType(otherType), mapping.NetworkType(n), ref.want)}
		}
		return bridgeGrant{}, notDeclared(ref, ns.Name)
	}
	var first *refusal
	for _, d := range usable {
		g, r := grantOne(n, ref, d)
		if r == nil {
			return g, nil
		}
		if first == nil {
			first = r
		}
	}
	return bridgeGrant{}, first
}

func grantOne(n v1alpha1.NetworkSpec, ref declarationRef, d *v1alpha1.NodeBridge) (bridgeGrant, *refusal) {
	g := bridgeGrant{decl: d, vlan: n.VLANID}
	what := "node bridge " + d.Name
	switch ref.want {
	case v1alpha1.BridgeTypeSRIOV:
		what = fmt.Sprintf("SR-IOV resource %s (NodeBridge %s)", d.Spec.ResourceName, d.Name)
	case v1alpha1.BridgeTypeMacvtap:
		what = "node interface " + d.Name
	}
	switch {
	case n.VLANID != 0 && !vlanAllowed(d, n.VLANID):
		return g, &refusal{"vlanId", fmt.Sprintf("VLAN %d is not allowed on %s (allowed: %s)", n.VLANID, what, vlanList(d))}
	case n.VLANID == 0 && ref.want == v1alpha1.BridgeTypeSRIOV && d.Spec.NativeVLAN == nil:
		return g, &refusal{"vlanId", fmt.Sprintf("%s allows only tagged NICs (allowed: %s): set vlanId; an untagged VF would let the guest tag any VLAN, so untagged NICs need the declaration's nativeVLAN", what, vlanList(d))}
	case n.VLANID == 0 && ref.want != v1alpha1.BridgeTypeMacvtap:
		g.vlan = nativeVLAN(d)
	}
	if ref.want == v1alpha1.BridgeTypeLinux || ref.want == v1alpha1.BridgeTypeOVS {
		if n.PhysicalInterface != "" && !slices.Contains(d.Spec.Uplinks, n.PhysicalInterface) {
			return g, &refusal{"physicalInterface", fmt.Sprintf(
				"node bridge %s has uplinks %s, not %s: the administrator's NodeBridge decides the uplink; remove physicalInterface or match it",
				d.Name, strings.Join(d.Spec.Uplinks, ","), n.PhysicalInterface)}
		}
	}
	if !d.DeletionTimestamp.IsZero() {
		return g, &refusal{ref.field, fmt.Sprintf("%s is being removed by an administrator", what)}
	}
	return g, nil
}

// notDeclared is the one refusal for something not declared for the
// namespace, whether it exists, is declared for others or not at all.
func notDeclared(ref declarationRef, ns string) *refusal {
	switch ref.want {
	case v1alpha1.BridgeTypeSRIOV:
		return &refusal{ref.field, fmt.Sprintf(
			"SR-IOV resource %q is not declared for namespace %s: SR-IOV pools and VLANs are declared by a cluster administrator (a NodeBridge of type sriov with resourceName %s and a namespaceSelector matching this namespace)",
			ref.resource, ns, ref.resource)}
	case v1alpha1.BridgeTypeMacvtap:
		return &refusal{ref.field, fmt.Sprintf(
			"node interface %q is not declared for macvtap NICs in namespace %s: node interfaces are declared by a cluster administrator (NodeBridge %s of type macvtap with a namespaceSelector matching this namespace)",
			ref.key, ns, ref.key)}
	}
	return &refusal{ref.field, fmt.Sprintf(
		"node bridge %q is not declared for namespace %s: node bridges are declared by a cluster administrator (NodeBridge %s with a namespaceSelector matching this namespace)",
		ref.key, ns, ref.key)}
}

// nativeVLAN is the VLAN untagged NICs go on: spec.nativeVLAN, for bridges
// DefaultNativeVLAN when unset, for sriov 0 (none) when unset.
func nativeVLAN(d *v1alpha1.NodeBridge) int32 {
	if d.Spec.NativeVLAN != nil {
		return *d.Spec.NativeVLAN
	}
	switch bridgeType(d) {
	case v1alpha1.BridgeTypeLinux, v1alpha1.BridgeTypeOVS:
		return v1alpha1.DefaultNativeVLAN
	}
	return 0
}

// declarationsFor reads the NodeBridges ref may use: the one named
// ref.key, or every sriov declaration of ref.resource (sorted by name).
func (r *WukongReconciler) declarationsFor(ctx context.Context, ref declarationRef) ([]*v1alpha1.NodeBridge, error) {
	if ref.resource == "" {
		d := &v1alpha1.NodeBridge{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: ref.key}, d); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("cannot get NodeBridge %s: %w", ref.key, err)
		}
		return []*v1alpha1.NodeBridge{d}, nil
	}
	list := &v1alpha1.NodeBridgeList{}
	if err := r.Client.List(ctx, list); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot list NodeBridges: %w", err)
	}
	var out []*v1alpha1.NodeBridge
	for i := range list.Items {
		if d := &list.Items[i]; bridgeType(d) == v1alpha1.BridgeTypeSRIOV && d.Spec.ResourceName == ref.resource {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *v1alpha1.NodeBridge) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// resolveBridges checks every NIC that needs node-level reach (bridge,
// ovs, macvlan, sriov without nadName) against the administrator's
// NodeBridge declarations (grant). A NIC that does not fit becomes a
// problem naming its field and is left out of the NADs, so nothing reaches
// the nodes. It fills s.bridges with the granted ones and
// s.bridgeNodeSelector with the union of their node selectors.
func (r *WukongReconciler) resolveBridges(ctx context.Context, s *scope) error {
	s.bridgeBlocked = map[int]bool{}
	var ns *corev1.Namespace
	for i, n := range s.w.Spec.Networks {
		ref := declarationOf(n)
		if ref.none() {
			continue
		}
		refuse := func(f *refusal) {
			s.bridgeBlocked[i] = true
			s.addProblem(problem{v1alpha1.NetworksConfiguredCondition, v1alpha1.ReasonBridgeNotAllowed,
				fmt.Sprintf("spec.networks[%d].%s", i, f.field), f.message, false})
		}
		decls, err := r.declarationsFor(ctx, ref)
		if err != nil {
			return err
		}
		if ns == nil {
			ns = &corev1.Namespace{}
			if err := r.Client.Get(ctx, client.ObjectKey{Name: s.w.Namespace}, ns); err != nil {
				return fmt.Errorf("cannot get Namespace %s: %w", s.w.Namespace, err)
			}
		}
		g, no := grant(n, ref, decls, ns)
		if no != nil {
			refuse(no)
			continue
		}
		decl := g.decl
		for k, v := range decl.Spec.NodeSelector {
			if have, ok := s.bridgeNodeSelector[k]; ok && have != v {
				refuse(&refusal{ref.field, fmt.Sprintf(
					"%s is only on nodes with %s=%s, another NIC's declaration only on nodes with %s=%s: no node has both", decl.Name, k, v, k, have)})
				break
			}
		}
		if s.bridgeBlocked[i] {
			continue
		}
		if s.bridgeNodeSelector == nil && len(decl.Spec.NodeSelector) > 0 {
			s.bridgeNodeSelector = map[string]string{}
		}
		maps.Copy(s.bridgeNodeSelector, decl.Spec.NodeSelector)
		g.nic = i
		s.bridges = append(s.bridges, g)
	}
	return nil
}

func bridgeType(d *v1alpha1.NodeBridge) v1alpha1.BridgeType {
	if d.Spec.Type == "" {
		return v1alpha1.BridgeTypeLinux
	}
	return d.Spec.Type
}

// namespaceAllowed: the declaration's namespaceSelector selects ns; an
// omitted selector selects none.
func namespaceAllowed(d *v1alpha1.NodeBridge, ns *corev1.Namespace) bool {
	if d.Spec.NamespaceSelector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.NamespaceSelector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(ns.Labels))
}

func vlanAllowed(d *v1alpha1.NodeBridge, id int32) bool {
	for _, r := range d.Spec.AllowedVLANs {
		if r.Contains(id) {
			return true
		}
	}
	return false
}

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

// bridgeReady reads a granted bridge's readiness from its NodeBridge status:
// ready, or why not. stalledReason is set when the NodeBridge cannot become
// ready without an administrator (Degraded: NMState failed or rolled the
// policy back; or Stalled: its policy's name is taken, NMState is missing):
// waiting would not help the Wukong.
func bridgeReady(d *v1alpha1.NodeBridge) (ready bool, stalledReason, message string) {
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

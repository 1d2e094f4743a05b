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
	"github.com/novasphere/wukong/operator/mapping"
)

// bridgeMarkerResource is the extended resource KubeVirt's bridge-marker
// advertises on nodes that have a bridge (kubevirt/bridge-marker README:
// bridge.network.kubevirt.io/<bridge>); a NAD naming it in
// k8s.v1.cni.cncf.io/resourceName makes the VM's pod request it.
const bridgeMarkerResource = "bridge.network.kubevirt.io/"

// bridgeGrant is what a NIC may use of a declared node bridge.
type bridgeGrant struct {
	// nic is the index of the NIC in spec.networks.
	nic  int
	decl *v1alpha1.NodeBridge
}

// bridgeName is the node bridge a NIC plugs into: bridgeName, or for a
// bridge NIC without one (the original design's habit) br-<network name>.
// Empty for NICs that need no node bridge (macvlan, sriov, or nadName).
func bridgeName(n v1alpha1.NetworkSpec) string {
	if n.NADName != "" {
		return ""
	}
	switch mapping.NetworkType(n) {
	case v1alpha1.NetworkTypeBridge:
		if n.BridgeName == "" {
			return "br-" + n.Name
		}
		return n.BridgeName
	case v1alpha1.NetworkTypeOVS:
		return n.BridgeName
	}
	return ""
}

// resolveBridges checks every NIC that plugs into a node bridge against the
// administrator's NodeBridge declarations: the bridge is declared, this
// namespace is selected, the NIC's type, VLAN and (if given)
// physicalInterface fit. A NIC that does not fit becomes a problem naming
// its field and is left out of the NADs, so nothing reaches the nodes. The
// message for an undeclared bridge and for a bridge declared only for other
// namespaces is the same. It fills s.bridges with the granted ones and
// s.bridgeNodeSelector with the union of their node selectors.
func (r *WukongReconciler) resolveBridges(ctx context.Context, s *scope) error {
	s.bridgeBlocked = map[int]bool{}
	var ns *corev1.Namespace
	for i, n := range s.w.Spec.Networks {
		name := bridgeName(n)
		if name == "" {
			continue
		}
		field := func(f string) string { return fmt.Sprintf("spec.networks[%d].%s", i, f) }
		refuse := func(f, reason, format string, args ...any) {
			s.bridgeBlocked[i] = true
			s.addProblem(problem{v1alpha1.NetworksConfiguredCondition, reason, field(f), fmt.Sprintf(format, args...), true})
		}
		notDeclared := func() {
			f := "bridgeName"
			if n.BridgeName == "" {
				f = "name" // the default bridge br-<name>
			}
			refuse(f, v1alpha1.ReasonBridgeNotAllowed,
				"node bridge %q is not declared for namespace %s: node bridges are declared by a cluster administrator (NodeBridge %s with a namespaceSelector matching this namespace)",
				name, s.w.Namespace, name)
		}
		decl := &v1alpha1.NodeBridge{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, decl); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				notDeclared()
				continue
			}
			return fmt.Errorf("cannot get NodeBridge %s: %w", name, err)
		}
		if ns == nil {
			ns = &corev1.Namespace{}
			if err := r.Client.Get(ctx, client.ObjectKey{Name: s.w.Namespace}, ns); err != nil {
				return fmt.Errorf("cannot get Namespace %s: %w", s.w.Namespace, err)
			}
		}
		if !namespaceAllowed(decl, ns) {
			notDeclared()
			continue
		}
		wantType := v1alpha1.BridgeTypeLinux
		if mapping.NetworkType(n) == v1alpha1.NetworkTypeOVS {
			wantType = v1alpha1.BridgeTypeOVS
		}
		if bridgeType(decl) != wantType {
			refuse("type", v1alpha1.ReasonBridgeNotAllowed, "node bridge %s is a %s; a NIC of type %s needs a %s", name, bridgeType(decl), mapping.NetworkType(n), wantType)
			continue
		}
		if n.VLANID != 0 && !vlanAllowed(decl, n.VLANID) {
			refuse("vlanId", v1alpha1.ReasonBridgeNotAllowed, "VLAN %d is not allowed on node bridge %s (allowed: %s)", n.VLANID, name, vlanList(decl))
			continue
		}
		if n.PhysicalInterface != "" && !slices.Contains(decl.Spec.Uplinks, n.PhysicalInterface) {
			refuse("physicalInterface", v1alpha1.ReasonBridgeNotAllowed,
				"node bridge %s has uplinks %s, not %s: the administrator's NodeBridge decides the uplink; remove physicalInterface or match it",
				name, strings.Join(decl.Spec.Uplinks, ","), n.PhysicalInterface)
			continue
		}
		if !decl.DeletionTimestamp.IsZero() {
			refuse("bridgeName", v1alpha1.ReasonBridgeNotAllowed, "node bridge %s is being removed by an administrator", name)
			continue
		}
		for k, v := range decl.Spec.NodeSelector {
			if have, ok := s.bridgeNodeSelector[k]; ok && have != v {
				refuse("bridgeName", v1alpha1.ReasonBridgeNotAllowed,
					"node bridge %s is only on nodes with %s=%s, another NIC's bridge only on nodes with %s=%s: no node has both", name, k, v, k, have)
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
		s.bridges = append(s.bridges, bridgeGrant{nic: i, decl: decl})
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

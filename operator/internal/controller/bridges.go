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
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/nodenet"
)

// bridgeMarkerResource is the extended resource KubeVirt's bridge-marker
// advertises on nodes that have a bridge (kubevirt/bridge-marker README:
// bridge.network.kubevirt.io/<bridge>); a NAD naming it in
// k8s.v1.cni.cncf.io/resourceName makes the VM's pod request it.
const bridgeMarkerResource = "bridge.network.kubevirt.io/"

// declarationsFor reads the NodeBridges ref may use: the one named
// ref.Key, or every sriov declaration of ref.Resource (sorted by name).
func (r *WukongReconciler) declarationsFor(ctx context.Context, ref nodenet.Ref) ([]*v1alpha1.NodeBridge, error) {
	if ref.Resource == "" {
		d := &v1alpha1.NodeBridge{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: ref.Key}, d); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("cannot get NodeBridge %s: %w", ref.Key, err)
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
		if d := &list.Items[i]; nodenet.Type(d) == v1alpha1.BridgeTypeSRIOV && d.Spec.ResourceName == ref.Resource {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *v1alpha1.NodeBridge) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// resolveBridges checks every NIC that needs node-level reach (bridge,
// ovs, macvlan, sriov without nadName) against the administrator's
// NodeBridge declarations (nodenet.Decide). A NIC that does not fit becomes a
// problem naming its field and is left out of the NADs, so nothing reaches
// the nodes. It fills s.bridges with the granted ones and
// s.bridgeNodeSelector with the union of their node selectors.
func (r *WukongReconciler) resolveBridges(ctx context.Context, s *scope) error {
	s.bridgeBlocked = map[int]bool{}
	var ns *corev1.Namespace
	for i, n := range s.w.Spec.Networks {
		ref := nodenet.RefOf(n)
		if ref.None() {
			continue
		}
		refuse := func(f *nodenet.Refusal) {
			s.bridgeBlocked[i] = true
			s.addProblem(problem{Condition: v1alpha1.NetworksConfiguredCondition, Reason: v1alpha1.ReasonBridgeNotAllowed,
				Field: fmt.Sprintf("spec.networks[%d].%s", i, f.Field), Message: f.Message})
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
		g, no := nodenet.Decide(n, ref, decls, ns)
		if no != nil {
			refuse(no)
			continue
		}
		decl := g.Decl
		for k, v := range decl.Spec.NodeSelector {
			if have, ok := s.bridgeNodeSelector[k]; ok && have != v {
				refuse(&nodenet.Refusal{Field: ref.Field, Message: fmt.Sprintf(
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
		g.NIC = i
		s.bridges = append(s.bridges, g)
	}
	return nil
}

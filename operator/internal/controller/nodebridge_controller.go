package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
)

// NodeBridgeFinalizer holds a NodeBridge until no Wukong uses it and NMState
// has removed the bridge from the nodes.
const NodeBridgeFinalizer = "vm.novasphere.dev/node-bridge"

// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=nodebridges,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=nodebridges/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=nodebridges/finalizers,verbs=update
// One policy per NodeBridge, applied, then set absent and deleted on removal.
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationpolicies,verbs=get;list;watch;create;patch;delete
// Enactments tell which policy generation each node applied.
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationenactments,verbs=get;list;watch

// NodeBridgeReconciler turns each NodeBridge (an administrator's
// declaration) into one NodeNetworkConfigurationPolicy and mirrors what
// NMState reports into the NodeBridge's status. The policy's life follows the
// declaration, never a tenant's Wukongs: tenants only attach to it.
type NodeBridgeReconciler struct {
	Client client.Client
}

// bridgeOf maps a NodeBridge to lib/network's Bridge.
func bridgeOf(d *v1alpha1.NodeBridge) network.Bridge {
	b := network.Bridge{
		Name:         d.Name,
		Uplinks:      d.Spec.Uplinks,
		OVS:          bridgeType(d) == v1alpha1.BridgeTypeOVS,
		NodeSelector: d.Spec.NodeSelector,
		NativeVLAN:   int(nativeVLAN(d)),
	}
	if d.Spec.Bond != nil {
		b.Bond = &network.Bond{Name: d.Spec.Bond.Name, Mode: d.Spec.Bond.Mode}
	}
	for _, r := range d.Spec.AllowedVLANs {
		hi := r.Max
		if hi == 0 {
			hi = r.Min
		}
		b.VLANs = append(b.VLANs, network.VLANRange{Min: int(r.Min), Max: int(hi)})
	}
	return b
}

type nodeBridgeConditions struct{ *v1alpha1.NodeBridge }

func (d nodeBridgeConditions) GetConditions() []metav1.Condition  { return d.Status.Conditions }
func (d nodeBridgeConditions) SetConditions(c []metav1.Condition) { d.Status.Conditions = c }
func (d nodeBridgeConditions) GetObservedGeneration() int64       { return d.Status.ObservedGeneration }

// Reconcile applies the NodeBridge's policy, or on deletion waits for its
// users to go, removes the bridge from the nodes and deletes the policy.
// Conditions: Ready (policy Available), Degraded (NMState failed or rolled
// back), Reconciling while converging, Stalled for a name conflict or a
// missing NMState.
func (r *NodeBridgeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	d := &v1alpha1.NodeBridge{}
	if err := r.Client.Get(ctx, req.NamespacedName, d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := d.DeepCopy()
	o := nodeBridgeConditions{d}
	d.Status.PolicyName = ""
	if configuresNodes(d) {
		d.Status.PolicyName = network.PolicyName(identity.Wukong, d.Name)
	}
	result, err := r.reconcile(ctx, d, o)
	if d.DeletionTimestamp.IsZero() || controllerutil.ContainsFinalizer(d, NodeBridgeFinalizer) {
		if err == nil {
			d.Status.ObservedGeneration = d.Generation
		}
		if !equality.Semantic.DeepEqual(base.Status, d.Status) {
			if perr := r.Client.Status().Patch(ctx, d, client.MergeFrom(base)); perr != nil && !apierrors.IsNotFound(perr) {
				err = errors.Join(err, perr)
			}
		}
	}
	return result, err
}

func (r *NodeBridgeReconciler) reconcile(ctx context.Context, d *v1alpha1.NodeBridge, o nodeBridgeConditions) (ctrl.Result, error) {
	if !d.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, d, o)
	}
	if !controllerutil.ContainsFinalizer(d, NodeBridgeFinalizer) {
		patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(d, NodeBridgeFinalizer)
		if err := r.Client.Patch(ctx, d, patch); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	if !configuresNodes(d) {
		conditions.MarkFalse(o, v1alpha1.DegradedCondition, v1alpha1.ReasonSucceeded, "nothing is configured on the nodes")
		conditions.MarkTrue(o, v1alpha1.ReadyCondition, v1alpha1.ReasonDeclared, "%s", declaredMessage(d))
		conditions.ClearProgress(o)
		return ctrl.Result{}, nil
	}
	obs, err := network.ReconcilePolicy(ctx, r.Client, identity.Wukong, d, bridgeOf(d))
	var conflict *apply.ConflictError
	switch {
	case errors.As(err, &conflict):
		conditions.MarkFalse(o, v1alpha1.ReadyCondition, v1alpha1.ReasonNameConflict, "%s: remove it or rename this NodeBridge", conflict.Error())
		conditions.MarkStalled(o, v1alpha1.ReasonNameConflict, "%s", conditions.GetMessage(o, v1alpha1.ReadyCondition))
		return ctrl.Result{RequeueAfter: externalRetry}, nil
	case network.IsNMStateMissing(err):
		conditions.MarkFalse(o, v1alpha1.ReadyCondition, v1alpha1.ReasonNMStateMissing, "kubernetes-nmstate is not installed: NodeNetworkConfigurationPolicy (nmstate.io/v1) is not served")
		conditions.MarkStalled(o, v1alpha1.ReasonNMStateMissing, "%s", conditions.GetMessage(o, v1alpha1.ReadyCondition))
		return ctrl.Result{RequeueAfter: externalRetry}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	setBridgeConditions(o, obs)
	return ctrl.Result{}, nil
}

// setBridgeConditions mirrors the policy's NMState conditions.
func setBridgeConditions(o nodeBridgeConditions, obs network.BridgeObservation) {
	if obs.Degraded {
		conditions.MarkTrue(o, v1alpha1.DegradedCondition, obs.Reason, "%s", obs.Message)
		conditions.MarkFalse(o, v1alpha1.ReadyCondition, v1alpha1.ReasonBridgeDegraded, "NodeNetworkConfigurationPolicy %s is Degraded: %s", obs.Policy, obs.Message)
		conditions.MarkStalled(o, v1alpha1.ReasonBridgeDegraded, "%s", conditions.GetMessage(o, v1alpha1.ReadyCondition))
		return
	}
	conditions.MarkFalse(o, v1alpha1.DegradedCondition, v1alpha1.ReasonSucceeded, "NMState reports no failure")
	if obs.Available {
		conditions.MarkTrue(o, v1alpha1.ReadyCondition, obs.Reason, "%s", obs.Message)
		conditions.ClearProgress(o)
		return
	}
	conditions.MarkFalse(o, v1alpha1.ReadyCondition, v1alpha1.ReasonBridgePending, "NodeNetworkConfigurationPolicy %s: %s", obs.Policy, obs.Message)
	conditions.MarkReconciling(o, v1alpha1.ReasonBridgePending, "%s", conditions.GetMessage(o, v1alpha1.ReadyCondition))
}

// inUseRetry is how often a NodeBridge waiting for its users looks again
// (Wukong changes also wake it).
const inUseRetry = 30 * time.Second

func (r *NodeBridgeReconciler) reconcileDelete(ctx context.Context, d *v1alpha1.NodeBridge, o nodeBridgeConditions) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(d, NodeBridgeFinalizer) {
		return ctrl.Result{}, nil
	}
	users, err := r.users(ctx, d)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(users) > 0 {
		shown := users
		if len(shown) > 5 {
			shown = append(slices.Clone(shown[:5]), fmt.Sprintf("and %d more", len(users)-5))
		}
		conditions.MarkFalse(o, v1alpha1.ReadyCondition, v1alpha1.ReasonInUse,
			"being deleted: waits until no Wukong uses it (%s); then the bridge is removed from the nodes", strings.Join(shown, ", "))
		conditions.MarkReconciling(o, v1alpha1.ReasonInUse, "%s", conditions.GetMessage(o, v1alpha1.ReadyCondition))
		return ctrl.Result{RequeueAfter: inUseRetry}, nil
	}
	done, obs, err := true, network.BridgeObservation{}, error(nil)
	if configuresNodes(d) {
		done, obs, err = network.RemovePolicy(ctx, r.Client, identity.Wukong, d, bridgeOf(d))
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if !done {
		reason, msg := v1alpha1.ReasonRemovingFromNodes, "removing the bridge from the nodes (NMState state: absent): "+obs.Message
		if obs.Degraded {
			reason, msg = v1alpha1.ReasonBridgeDegraded, "NMState failed to remove the bridge from some nodes: "+obs.Message
		}
		conditions.MarkFalse(o, v1alpha1.ReadyCondition, reason, "%s", msg)
		conditions.MarkReconciling(o, reason, "%s", msg)
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(d, NodeBridgeFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, d, patch))
}

// users lists the Wukongs (namespace/name, sorted) with a NIC the
// declaration grants (grant, the rule the Wukong controller applies): a
// NIC refused it (another namespace, a VLAN or uplink not allowed) is not
// a user, so it cannot hold up an administrator's deletion.
func (r *NodeBridgeReconciler) users(ctx context.Context, d *v1alpha1.NodeBridge) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	namespaces := map[string]*corev1.Namespace{}
	// A Wukong that used the declaration before its deletion began still
	// uses it (grant refuses new users of a declaration being deleted).
	live := d.DeepCopy()
	live.DeletionTimestamp = nil
	for _, key := range declarationKeys(d) {
		list := &v1alpha1.WukongList{}
		if err := r.Client.List(ctx, list, client.MatchingFields{indexBridges: key}); err != nil {
			return nil, fmt.Errorf("cannot list the Wukongs using NodeBridge %s: %w", d.Name, err)
		}
		for _, w := range list.Items {
			id := w.Namespace + "/" + w.Name
			if seen[id] || !w.DeletionTimestamp.IsZero() {
				continue
			}
			ns, ok := namespaces[w.Namespace]
			if !ok {
				ns = &corev1.Namespace{}
				if err := r.Client.Get(ctx, client.ObjectKey{Name: w.Namespace}, ns); err != nil {
					if !apierrors.IsNotFound(err) {
						return nil, err
					}
					ns.Name = w.Namespace
				}
				namespaces[w.Namespace] = ns
			}
			for _, n := range w.Spec.Networks {
				ref := declarationOf(n)
				if ref.indexKey() != key {
					continue
				}
				if _, no := grant(n, ref, []*v1alpha1.NodeBridge{live}, ns); no == nil {
					seen[id] = true
					out = append(out, id)
					break
				}
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// configuresNodes: the declaration is a bridge Wukong configures through an
// NMState policy (linux-bridge, ovs-bridge); macvtap and sriov
// declarations only grant what exists on the nodes.
func configuresNodes(d *v1alpha1.NodeBridge) bool {
	t := bridgeType(d)
	return t == v1alpha1.BridgeTypeLinux || t == v1alpha1.BridgeTypeOVS
}

// declaredMessage is the Ready message of a declaration that configures
// nothing on the nodes.
func declaredMessage(d *v1alpha1.NodeBridge) string {
	if bridgeType(d) == v1alpha1.BridgeTypeSRIOV {
		return fmt.Sprintf("SR-IOV resource %s is granted to the selected namespaces; the SR-IOV device plugin provides its VFs", d.Spec.ResourceName)
	}
	return fmt.Sprintf("node interface %s is granted to the selected namespaces as the lower device of macvtap NICs (resource %s%s of the macvtap device plugin)", d.Name, network.MacvtapResourcePrefix, d.Name)
}

// sriovDeclarations are the sriov NodeBridges of resource (to re-count
// their users when a Wukong changes).
func (r *NodeBridgeReconciler) sriovDeclarations(ctx context.Context, resource string) []reconcile.Request {
	list := &v1alpha1.NodeBridgeList{}
	if err := r.Client.List(ctx, list); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, d := range list.Items {
		if d.Spec.ResourceName == resource {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: d.Name}})
		}
	}
	return reqs
}

// SetupWithManager registers the NodeBridge controller: its own objects,
// its policies (when NMState is installed) and the Wukongs that name it.
// The Wukong field index is registered by WukongReconciler.SetupWithManager,
// which must run first.
func (r *NodeBridgeReconciler) SetupWithManager(mgr ctrl.Manager, installed func(schema.GroupVersionKind) bool) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("nodebridge").
		For(&v1alpha1.NodeBridge{}).
		Watches(&v1alpha1.Wukong{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var reqs []reconcile.Request
			for _, b := range bridgesOf(o) {
				if resource, ok := strings.CutPrefix(b, sriovKeyPrefix); ok {
					reqs = append(reqs, r.sriovDeclarations(ctx, resource)...)
					continue
				}
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: b}})
			}
			return reqs
		}))
	if installed == nil || installed(GVKNNCP) {
		b = b.Owns(&nmstatev1.NodeNetworkConfigurationPolicy{})
	}
	return b.Complete(r)
}

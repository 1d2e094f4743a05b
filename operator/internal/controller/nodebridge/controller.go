// Package nodebridge is the NodeBridge controller: it turns each
// administrator's declaration into at most one NMState
// NodeNetworkConfigurationPolicy and mirrors what NMState reports into the
// NodeBridge's status. It has the Wukong controller's shape: observe into a
// scope, compute the status from it with plain functions, write it in one
// patch. Which Wukongs use a declaration is decided by operator/internal/
// nodenet, the rule the Wukong controller grants NICs with.
package nodebridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	"github.com/novasphere/wukong/operator/internal/nodenet"
	"github.com/novasphere/wukong/operator/internal/statuspass"
)

// Finalizer holds a NodeBridge until no Wukong uses it and NMState has
// removed the bridge from the nodes.
const Finalizer = "vm.novasphere.dev/node-bridge"

// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=nodebridges,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=nodebridges/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=nodebridges/finalizers,verbs=update
// One policy per NodeBridge, applied, then set absent and deleted on removal.
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationpolicies,verbs=get;list;watch;create;patch;delete
// Enactments tell which policy generation each node applied.
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationenactments,verbs=get;list;watch

// Retries when nothing watched will send an event.
const (
	// externalRetry: a policy name taken by someone else, NMState missing.
	externalRetry = time.Minute
	// inUseRetry: a NodeBridge being deleted waits for its users (Wukong
	// changes also wake it).
	inUseRetry = 30 * time.Second
	// removeRetry: NMState removing the bridge from the nodes.
	removeRetry = 10 * time.Second
)

// Reconciler turns each NodeBridge (an administrator's declaration) into
// one NodeNetworkConfigurationPolicy (bridges only) and mirrors what NMState
// reports into the NodeBridge's status. The policy's life follows the
// declaration, never a tenant's Wukongs: tenants only attach to it.
type Reconciler struct {
	Client client.Client
}

// scope is what one pass observed; status is computed from it at the end.
type scope struct {
	d *v1alpha1.NodeBridge
	// users are the Wukongs (namespace/name) the declaration grants a NIC,
	// read only while it is being deleted.
	users []string
	// policy is what NMState reports of the bridge's policy (up, or absent
	// while being removed); removed: the bridge is gone from every node.
	policy  network.BridgeObservation
	removed bool
	// failure is ReconcilePolicy's stalled or waiting failure (classify):
	// the policy's name taken by an object Wukong did not create, or still
	// by a deleted NodeBridge's policy, the policy kind not served, an
	// invalid bridge.
	failure *apply.Failure
}

// bridgeOf maps a bridge NodeBridge to lib/network's Bridge.
func bridgeOf(d *v1alpha1.NodeBridge) network.Bridge {
	b := network.Bridge{
		Name:         d.Name,
		Uplinks:      d.Spec.Uplinks,
		OVS:          nodenet.Type(d) == v1alpha1.BridgeTypeOVS,
		NodeSelector: d.Spec.NodeSelector,
		NativeVLAN:   int(nodenet.NativeVLAN(d)),
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

// Reconcile observes (reconcileDelete or reconcilePolicy), computes the
// status (computeStatus) and writes it in one patch when it changed,
// stamping observedGeneration on a clean pass. Conditions: Ready (policy
// Available, or a macvtap/sriov declaration), Degraded (NMState failed or
// rolled back), Reconciling while converging (or waiting for a deleted
// NodeBridge's policy to go), Stalled for a name conflict, a missing
// NMState or a bridge lib/network refuses (policyFailures).
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	d := &v1alpha1.NodeBridge{}
	if err := r.Client.Get(ctx, req.NamespacedName, d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := d.DeepCopy()
	s := &scope{d: d}
	var err error
	if d.DeletionTimestamp.IsZero() {
		err = r.reconcilePolicy(ctx, s)
	} else {
		if !controllerutil.ContainsFinalizer(d, Finalizer) {
			return ctrl.Result{}, nil
		}
		err = r.reconcileDelete(ctx, s)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if s.removed {
		// The finalizer is gone: the object is deleted, no status to write.
		return ctrl.Result{}, nil
	}
	result := computeStatus(s)
	d.Status.ObservedGeneration = d.Generation
	if err := statuspass.PatchIfChanged(ctx, r.Client, base, d, base.Status, d.Status); err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

// reconcilePolicy adds the finalizer and, for a bridge, applies its policy
// and reads what NMState reports. A macvtap or sriov declaration writes
// nothing.
func (r *Reconciler) reconcilePolicy(ctx context.Context, s *scope) error {
	d := s.d
	if !controllerutil.ContainsFinalizer(d, Finalizer) {
		patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(d, Finalizer)
		if err := r.Client.Patch(ctx, d, patch); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	if !nodenet.ConfiguresNodes(d) {
		return nil
	}
	obs, err := network.ReconcilePolicy(ctx, r.Client, identity.Wukong, d, bridgeOf(d))
	s.policy = obs
	return s.classify(err)
}

// reconcileDelete lists the declaration's users; with none, it removes the
// bridge from the nodes (NMState state: absent), then the finalizer.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) error {
	d := s.d
	users, err := r.users(ctx, d)
	if err != nil {
		return err
	}
	if s.users = users; len(users) > 0 {
		return nil
	}
	done := true
	if nodenet.ConfiguresNodes(d) {
		var obs network.BridgeObservation
		done, obs, err = network.RemovePolicy(ctx, r.Client, identity.Wukong, d, bridgeOf(d))
		if err != nil {
			return err
		}
		s.policy = obs
	}
	if !done {
		return nil
	}
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(d, Finalizer)
	s.removed = true
	return client.IgnoreNotFound(r.Client.Patch(ctx, d, patch))
}

// classify records ReconcilePolicy's failure (an *apply.Failure) when it
// is stalled (someone must act) or waiting (RequeueAfter); the rest
// (transient failures, plain errors) is returned to be retried.
func (s *scope) classify(err error) error {
	if f, ok := apply.AsFailure(err); ok && (f.Stalled || f.RequeueAfter > 0) {
		s.failure = f
		return nil
	}
	return err
}

// policyFailure is how a stalled failure of lib/network's ReconcilePolicy
// shows on a NodeBridge: its reason and message.
type policyFailure struct {
	reason  string
	message func(f *apply.Failure) string
}

// policyFailures, keyed by lib/network reason, are the stalled failures
// ReconcilePolicy reports; one it does not list keeps the lib's reason
// and message (stalledStatus).
var policyFailures = map[string]policyFailure{
	network.ReasonNameConflict: {v1alpha1.ReasonNameConflict, func(f *apply.Failure) string {
		msg := f.Error()
		var conflict *apply.ConflictError
		if errors.As(f, &conflict) {
			msg = conflict.Error()
		}
		return msg + ": remove it or rename this NodeBridge"
	}},
	network.ReasonNMStateNotInstalled: {v1alpha1.ReasonNMStateMissing, func(*apply.Failure) string {
		return "kubernetes-nmstate is not installed: NodeNetworkConfigurationPolicy (nmstate.io/v1) is not served"
	}},
	network.ReasonInvalidBridge: {v1alpha1.ReasonInvalidSpec, func(f *apply.Failure) string { return f.Error() }},
}

// stalledStatus is the reason and message of a stalled failure on the
// NodeBridge (policyFailures).
func stalledStatus(f *apply.Failure) (reason, message string) {
	if row, ok := policyFailures[f.Reason]; ok {
		return row.reason, row.message(f)
	}
	return f.Reason, f.Error()
}

// computeStatus sets the NodeBridge's status from the scope and returns the
// requeue its state needs. It reads nothing but the scope.
func computeStatus(s *scope) ctrl.Result {
	d := s.d
	d.Status.PolicyName = ""
	if nodenet.ConfiguresNodes(d) {
		d.Status.PolicyName = network.PolicyName(identity.Wukong, d.Name)
	}
	if !d.DeletionTimestamp.IsZero() {
		return deletionStatus(d, s)
	}
	switch {
	case s.failure != nil && !s.failure.Stalled:
		// Waiting: the policy still belongs to a deleted NodeBridge of
		// this name; the garbage collector removes it.
		conditions.MarkFalse(d, v1alpha1.ReadyCondition, v1alpha1.ReasonWaitingForPredecessor, "waiting for a deleted NodeBridge's policy to go: %s", s.failure.Error())
		conditions.MarkReconciling(d, v1alpha1.ReasonWaitingForPredecessor, "%s", conditions.GetMessage(d, v1alpha1.ReadyCondition))
		return ctrl.Result{RequeueAfter: s.failure.RequeueAfter}
	case s.failure != nil:
		reason, msg := stalledStatus(s.failure)
		conditions.MarkFalse(d, v1alpha1.ReadyCondition, reason, "%s", msg)
		conditions.MarkStalled(d, reason, "%s", msg)
		return ctrl.Result{RequeueAfter: externalRetry}
	case !nodenet.ConfiguresNodes(d):
		conditions.MarkFalse(d, v1alpha1.DegradedCondition, v1alpha1.ReasonSucceeded, "nothing is configured on the nodes")
		conditions.MarkTrue(d, v1alpha1.ReadyCondition, v1alpha1.ReasonDeclared, "%s", declaredMessage(d))
		conditions.ClearProgress(d)
		return ctrl.Result{}
	}
	setPolicyConditions(d, s.policy)
	return ctrl.Result{}
}

// setPolicyConditions mirrors the policy's NMState conditions.
func setPolicyConditions(d *v1alpha1.NodeBridge, obs network.BridgeObservation) {
	if obs.Degraded {
		conditions.MarkTrue(d, v1alpha1.DegradedCondition, obs.Reason, "%s", obs.Message)
		conditions.MarkFalse(d, v1alpha1.ReadyCondition, v1alpha1.ReasonBridgeDegraded, "NodeNetworkConfigurationPolicy %s is Degraded: %s", obs.Policy, obs.Message)
		conditions.MarkStalled(d, v1alpha1.ReasonBridgeDegraded, "%s", conditions.GetMessage(d, v1alpha1.ReadyCondition))
		return
	}
	conditions.MarkFalse(d, v1alpha1.DegradedCondition, v1alpha1.ReasonSucceeded, "NMState reports no failure")
	if obs.Available {
		conditions.MarkTrue(d, v1alpha1.ReadyCondition, obs.Reason, "%s", obs.Message)
		conditions.ClearProgress(d)
		return
	}
	conditions.MarkFalse(d, v1alpha1.ReadyCondition, v1alpha1.ReasonBridgePending, "NodeNetworkConfigurationPolicy %s: %s", obs.Policy, obs.Message)
	conditions.MarkReconciling(d, v1alpha1.ReasonBridgePending, "%s", conditions.GetMessage(d, v1alpha1.ReadyCondition))
}

// deletionStatus: waiting for users (InUse), or for NMState to remove the
// bridge from the nodes (RemovingFromNodes, or Degraded when it failed).
func deletionStatus(d *v1alpha1.NodeBridge, s *scope) ctrl.Result {
	if len(s.users) > 0 {
		shown := s.users
		if len(shown) > 5 {
			shown = append(slices.Clone(shown[:5]), fmt.Sprintf("and %d more", len(s.users)-5))
		}
		conditions.MarkFalse(d, v1alpha1.ReadyCondition, v1alpha1.ReasonInUse,
			"being deleted: waits until no Wukong uses it (%s); then the bridge is removed from the nodes", strings.Join(shown, ", "))
		conditions.MarkReconciling(d, v1alpha1.ReasonInUse, "%s", conditions.GetMessage(d, v1alpha1.ReadyCondition))
		return ctrl.Result{RequeueAfter: inUseRetry}
	}
	reason, msg := v1alpha1.ReasonRemovingFromNodes, "removing the bridge from the nodes (NMState state: absent): "+s.policy.Message
	if s.policy.Degraded {
		reason, msg = v1alpha1.ReasonBridgeDegraded, "NMState failed to remove the bridge from some nodes: "+s.policy.Message
	}
	conditions.MarkFalse(d, v1alpha1.ReadyCondition, reason, "%s", msg)
	conditions.MarkReconciling(d, reason, "%s", msg)
	return ctrl.Result{RequeueAfter: removeRetry}
}

// users lists the Wukongs (namespace/name, sorted) with a NIC the
// declaration grants (nodenet.Decide, the rule the Wukong controller
// applies): a NIC refused it (another namespace, a VLAN or uplink not
// allowed) is not a user, so it cannot hold up an administrator's deletion.
func (r *Reconciler) users(ctx context.Context, d *v1alpha1.NodeBridge) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	namespaces := map[string]*corev1.Namespace{}
	// A Wukong that used the declaration before its deletion began still
	// uses it (Decide refuses new users of a declaration being deleted).
	live := d.DeepCopy()
	live.DeletionTimestamp = nil
	for _, key := range nodenet.Keys(d) {
		list := &v1alpha1.WukongList{}
		if err := r.Client.List(ctx, list, client.MatchingFields{nodenet.IndexField: key}); err != nil {
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
				ref := nodenet.RefOf(n)
				if ref.IndexKey() != key {
					continue
				}
				if _, no := nodenet.Decide(n, ref, []*v1alpha1.NodeBridge{live}, ns); no == nil {
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

// declaredMessage is the Ready message of a declaration that configures
// nothing on the nodes.
func declaredMessage(d *v1alpha1.NodeBridge) string {
	if nodenet.Type(d) == v1alpha1.BridgeTypeSRIOV {
		return fmt.Sprintf("SR-IOV resource %s is granted to the selected namespaces; the SR-IOV device plugin provides its VFs", d.Spec.ResourceName)
	}
	return fmt.Sprintf("node interface %s is granted to the selected namespaces as the lower device of macvtap NICs (resource %s%s of the macvtap device plugin)", d.Name, network.MacvtapResourcePrefix, d.Name)
}

// sriovDeclarations are the sriov NodeBridges of resource (to re-count
// their users when a Wukong changes).
func (r *Reconciler) sriovDeclarations(ctx context.Context, resource string) []reconcile.Request {
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
// It lists Wukongs by nodenet.IndexField, which the manager registers
// (nodenet.AddIndex) before setting up the controllers.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, installed func(schema.GroupVersionKind) bool) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("nodebridge").
		For(&v1alpha1.NodeBridge{}).
		Watches(&v1alpha1.Wukong{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var reqs []reconcile.Request
			for _, b := range nodenet.IndexWukong(o) {
				if resource, ok := strings.CutPrefix(b, nodenet.SRIOVKeyPrefix); ok {
					reqs = append(reqs, r.sriovDeclarations(ctx, resource)...)
					continue
				}
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: b}})
			}
			return reqs
		}))
	if installed == nil || installed(nmstatev1.GroupVersion.WithKind("NodeNetworkConfigurationPolicy")) {
		b = b.Owns(&nmstatev1.NodeNetworkConfigurationPolicy{})
	}
	return b.Complete(r)
}

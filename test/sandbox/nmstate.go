package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"
)

// AnnotationConfiguredGeneration records on a NodeNetworkConfigurationPolicy
// the generation the NMState simulator last configured, so a spec change runs
// through Progressing again.
const AnnotationConfiguredGeneration = "sandbox.novasphere.dev/configured-generation"

// PrimaryInterface is the simulated nodes' primary NIC, the one carrying
// their address and their connection to the API server.
const PrimaryInterface = "eth0"

// nmstateSim plays kubernetes-nmstate: a new or changed policy is first
// Progressing ("Policy is progressing 0/N nodes finished"), one interval
// later Available=True reason SuccessfullyConfigured with message
// "N/N nodes successfully configured" (N: nodes matching spec.nodeSelector;
// none: Available reason NoMatchingNode). Like kubernetes-nmstate it writes
// one NodeNetworkConfigurationEnactment per matching node
// (<node>.<policy>, label nmstate.io/policy, status.policyGeneration the
// generation it applied) and the policy's conditions after them.
//
// Each node's NodeNetworkState (nmstate.io/v1beta1, named after the node,
// owned by it) holds the node's interfaces: at the start PrimaryInterface
// (with the node's address), two more Ethernet NICs (SecondaryInterfaces)
// and lo. A successfully enacted policy changes them as nmstate applies a
// desired state: each interface it names is merged into the node's state
// (a new one added, an existing one's given keys replaced), one with
// state: absent is removed. Deleting a policy changes nothing on the nodes
// (kubernetes-nmstate user guide, "Policy removal": "deleting the policy
// does not revert the configuration"; only a policy setting the interface
// absent removes it).
//
// A policy that enslaves PrimaryInterface to a bridge or bond cuts the node
// off its API server: kubernetes-nmstate's probes then fail and it rolls
// the change back (user guide, "Automatic rollback"), so such a policy ends
// Degraded with reason FailedToConfigure and the enactments
// ConfigurationFailed. No interface is configured.
type nmstateSim struct {
	c        client.Client
	interval time.Duration
	pace     pacer
}

func (r *nmstateSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-nmstate").
		// Objects are independent here.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		For(&nmstatev1.NodeNetworkConfigurationPolicy{}).
		Complete(r)
}

func (r *nmstateSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *nmstateSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &nmstatev1.NodeNetworkConfigurationPolicy{}
	if err := r.c.Get(ctx, req.NamespacedName, p); err != nil {
		r.pace.forget(req.NamespacedName)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	generation := strconv.FormatInt(p.Generation, 10)
	if p.DeletionTimestamp != nil || p.Annotations[AnnotationConfiguredGeneration] == generation {
		return ctrl.Result{}, nil
	}
	nodes := &corev1.NodeList{}
	if err := r.c.List(ctx, nodes, client.MatchingLabels(p.Spec.NodeSelector)); err != nil {
		return ctrl.Result{}, err
	}
	n := len(nodes.Items)
	progressing := p.Status.Conditions.Find(shared.NodeNetworkConfigurationPolicyConditionProgressing)
	if progressing == nil || progressing.Status != corev1.ConditionTrue {
		msg := fmt.Sprintf("Policy is progressing 0/%d nodes finished", n)
		reason := shared.NodeNetworkConfigurationPolicyConditionConfigurationProgressing
		p.Status.Conditions.Set(shared.NodeNetworkConfigurationPolicyConditionProgressing, corev1.ConditionTrue, reason, msg)
		p.Status.Conditions.Set(shared.NodeNetworkConfigurationPolicyConditionAvailable, corev1.ConditionUnknown, reason, msg)
		p.Status.Conditions.Set(shared.NodeNetworkConfigurationPolicyConditionDegraded, corev1.ConditionUnknown, reason, msg)
		if err := r.c.Status().Update(ctx, p); err != nil {
			return ctrl.Result{}, err
		}
		log.FromContext(ctx).Info("policy progressing", "nodes", n)
		r.pace.forget(req.NamespacedName)
		r.pace.wait(req.NamespacedName, r.interval)
		return ctrl.Result{RequeueAfter: r.interval}, nil
	}
	if d := r.pace.wait(req.NamespacedName, r.interval); d > 0 {
		return ctrl.Result{RequeueAfter: d}, nil
	}
	failed := enslavesPrimary(p)
	for i := range nodes.Items {
		if !failed {
			if err := r.applyToNode(ctx, nodes.Items[i].Name, p.Spec.DesiredState); err != nil {
				return ctrl.Result{}, err
			}
		}
		if err := r.enact(ctx, p, nodes.Items[i].Name, failed); err != nil {
			return ctrl.Result{}, err
		}
	}
	reason := shared.NodeNetworkConfigurationPolicyConditionSuccessfullyConfigured
	msg := fmt.Sprintf("%d/%d nodes successfully configured", n, n)
	available, degraded := corev1.ConditionTrue, corev1.ConditionFalse
	switch {
	case n == 0:
		reason = shared.NodeNetworkConfigurationPolicyConditionConfigurationNoMatchingNode
		msg = "Policy does not match any node"
	case failed:
		reason = shared.NodeNetworkConfigurationPolicyConditionFailedToConfigure
		msg = fmt.Sprintf("%d/%d nodes failed to configure: rolling back desired state configuration: failed runnig probes after network changes: failed runnig probe 'api-server' with after network reconfiguration: %s is a port of the new bridge", n, n, PrimaryInterface)
		available, degraded = corev1.ConditionFalse, corev1.ConditionTrue
	}
	p.Status.Conditions.Set(shared.NodeNetworkConfigurationPolicyConditionAvailable, available, reason, msg)
	p.Status.Conditions.Set(shared.NodeNetworkConfigurationPolicyConditionProgressing, corev1.ConditionFalse, reason, msg)
	p.Status.Conditions.Set(shared.NodeNetworkConfigurationPolicyConditionDegraded, degraded, reason, msg)
	if err := r.c.Status().Update(ctx, p); err != nil {
		return ctrl.Result{}, err
	}
	patch := client.MergeFrom(p.DeepCopy())
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnotationConfiguredGeneration] = generation
	p.Annotations[SimulatedAnnotation] = "true"
	if err := r.c.Patch(ctx, p, patch); err != nil {
		return ctrl.Result{}, err
	}
	log.FromContext(ctx).Info("policy available", "message", msg)
	return ctrl.Result{}, nil
}

// SecondaryInterfaces are the simulated nodes' Ethernet NICs besides
// PrimaryInterface, free to be a bridge's uplinks.
var SecondaryInterfaces = []string{"eth1", "eth2"}

// nodeState is the part of an nmstate state the simulator changes.
type nodeState struct {
	Interfaces []map[string]any `json:"interfaces"`
	Rest       map[string]any   `json:"-"`
}

func parseState(s shared.State) (nodeState, error) {
	var st nodeState
	if len(s.Raw) == 0 {
		return st, nil
	}
	if err := yaml.Unmarshal(s.Raw, &st.Rest); err != nil {
		return st, err
	}
	if err := yaml.Unmarshal(s.Raw, &st); err != nil {
		return st, err
	}
	delete(st.Rest, "interfaces")
	return st, nil
}

func (st nodeState) raw() (shared.State, error) {
	m := map[string]any{}
	for k, v := range st.Rest {
		m[k] = v
	}
	m["interfaces"] = st.Interfaces
	b, err := yaml.Marshal(m)
	return shared.State{Raw: b}, err
}

// initialNodeState is a node's state before any policy: its NICs and lo.
func initialNodeState(address string) nodeState {
	ifaces := []map[string]any{{
		"name": PrimaryInterface, "type": "ethernet", "state": "up",
		"ipv4": map[string]any{"enabled": true, "dhcp": false,
			"address": []any{map[string]any{"ip": address, "prefix-length": 16}}},
	}}
	for _, n := range SecondaryInterfaces {
		ifaces = append(ifaces, map[string]any{"name": n, "type": "ethernet", "state": "up",
			"ipv4": map[string]any{"enabled": false}})
	}
	ifaces = append(ifaces, map[string]any{"name": "lo", "type": "loopback", "state": "up"})
	return nodeState{Interfaces: ifaces}
}

// createNodeState creates the node's NodeNetworkState, as
// kubernetes-nmstate's handler does when it starts on a node.
func createNodeState(ctx context.Context, c client.Client, node *corev1.Node) error {
	address := ""
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			address = a.Address
		}
	}
	state, err := initialNodeState(address).raw()
	if err != nil {
		return err
	}
	nns := &nmstatev1beta1.NodeNetworkState{ObjectMeta: simulatedMeta(node.Name, "")}
	nns.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
	if err := c.Create(ctx, nns); err != nil {
		return fmt.Errorf("creating NodeNetworkState %s: %w", node.Name, err)
	}
	now := metav1.Now()
	nns.Status.CurrentState = state
	nns.Status.LastSuccessfulUpdateTime = now
	nns.Status.Conditions = shared.ConditionList{{
		Type: shared.NodeNetworkStateConditionAvailable, Status: corev1.ConditionTrue,
		Reason: shared.NodeNetworkStateConditionSuccessfullyConfigured, LastHeartbeatTime: now, LastTransitionTime: now,
	}}
	if err := c.Status().Update(ctx, nns); err != nil {
		return fmt.Errorf("NodeNetworkState %s status: %w", node.Name, err)
	}
	return nil
}

// applyToNode merges desired into the node's NodeNetworkState.
func (r *nmstateSim) applyToNode(ctx context.Context, node string, desired shared.State) error {
	want, err := parseState(desired)
	if err != nil {
		return fmt.Errorf("desired state: %w", err)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		nns := &nmstatev1beta1.NodeNetworkState{}
		if err := r.c.Get(ctx, client.ObjectKey{Name: node}, nns); err != nil {
			return err
		}
		cur, err := parseState(nns.Status.CurrentState)
		if err != nil {
			return fmt.Errorf("NodeNetworkState %s: %w", node, err)
		}
		for _, w := range want.Interfaces {
			name, _ := w["name"].(string)
			i := slices.IndexFunc(cur.Interfaces, func(c map[string]any) bool { return c["name"] == name })
			switch {
			case w["state"] == "absent":
				if i >= 0 {
					cur.Interfaces = slices.Delete(cur.Interfaces, i, i+1)
				}
			case i >= 0:
				for k, v := range w {
					cur.Interfaces[i][k] = v
				}
			default:
				cur.Interfaces = append(cur.Interfaces, maps.Clone(w))
			}
		}
		if nns.Status.CurrentState, err = cur.raw(); err != nil {
			return err
		}
		nns.Status.LastSuccessfulUpdateTime = metav1.Now()
		return r.c.Status().Update(ctx, nns)
	})
}

// enact writes the node's enactment of p at p's generation.
func (r *nmstateSim) enact(ctx context.Context, p *nmstatev1.NodeNetworkConfigurationPolicy, node string, failed bool) error {
	e := &nmstatev1beta1.NodeNetworkConfigurationEnactment{ObjectMeta: metav1.ObjectMeta{
		Name:        node + "." + p.Name,
		Labels:      map[string]string{"nmstate.io/policy": p.Name, "nmstate.io/node": node},
		Annotations: map[string]string{SimulatedAnnotation: "true"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy",
			Name: p.Name, UID: p.UID}},
	}}
	if err := r.c.Create(ctx, e); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		if err := r.c.Get(ctx, client.ObjectKeyFromObject(e), e); err != nil {
			return err
		}
	}
	now := metav1.Now()
	typ, reason := shared.NodeNetworkConfigurationEnactmentConditionAvailable, shared.NodeNetworkConfigurationEnactmentConditionSuccessfullyConfigured
	if failed {
		typ, reason = shared.NodeNetworkConfigurationEnactmentConditionFailing, shared.NodeNetworkConfigurationEnactmentConditionFailedToConfigure
	}
	e.Status.PolicyGeneration = p.Generation
	e.Status.DesiredState = p.Spec.DesiredState
	e.Status.Conditions = shared.ConditionList{{Type: typ, Status: corev1.ConditionTrue, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}}
	return r.c.Status().Update(ctx, e)
}

// enslavesPrimary reports whether p's desired state makes PrimaryInterface
// a port of a bridge or a bond that is up.
func enslavesPrimary(p *nmstatev1.NodeNetworkConfigurationPolicy) bool {
	var state struct {
		Interfaces []struct {
			State  string `json:"state"`
			Bridge struct {
				Port []struct {
					Name string `json:"name"`
				} `json:"port"`
			} `json:"bridge"`
			LinkAggregation struct {
				Port []string `json:"port"`
			} `json:"link-aggregation"`
		} `json:"interfaces"`
	}
	raw, err := p.Spec.DesiredState.MarshalJSON()
	if err != nil || json.Unmarshal(raw, &state) != nil {
		return false
	}
	for _, i := range state.Interfaces {
		if i.State == "absent" {
			continue
		}
		for _, port := range i.Bridge.Port {
			if port.Name == PrimaryInterface {
				return true
			}
		}
		if slices.Contains(i.LinkAggregation.Port, PrimaryInterface) {
			return true
		}
	}
	return false
}

// NMStateOptions configure [SimulateNMState].
type NMStateOptions struct {
	// Interval is the time a policy stays Progressing before it is
	// Available (default 1s).
	Interval time.Duration
	// LogWriter receives the simulator's log lines (default: discarded).
	LogWriter io.Writer
}

// SimulateNMState plays kubernetes-nmstate (see nmstateSim) on an existing
// cluster whose nodes have no nmstate handler, such as make
// local-cluster-up's: it creates each node's NodeNetworkState when missing
// and answers NodeNetworkConfigurationPolicies, until ctx ends. It changes
// nothing on the nodes themselves: a policy's bridge is reported
// configured, its uplinks are not enslaved (the CNI bridge plugin creates a
// missing bridge when a pod first attaches to it). The cluster must serve
// the NMState CRDs (test/crds). cfg needs rights to read Nodes and to write
// the three nmstate.io kinds and their status.
//
// It returns the manager's error, or an error when the cluster lacks the
// CRDs or a NodeNetworkState cannot be created.
func SimulateNMState(ctx context.Context, cfg *rest.Config, opts NMStateOptions) error {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.LogWriter == nil {
		opts.LogWriter = io.Discard
	}
	logger := newLogger(opts.LogWriter)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 NewScheme(),
		Logger:                 logger,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("creating the NMState simulator's manager: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	nodes := &corev1.NodeList{}
	if err := c.List(ctx, nodes); err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	for i := range nodes.Items {
		node := &nodes.Items[i]
		err := c.Get(ctx, client.ObjectKey{Name: node.Name}, &nmstatev1beta1.NodeNetworkState{})
		if apierrors.IsNotFound(err) {
			err = createNodeState(ctx, c, node)
		}
		if err != nil {
			return fmt.Errorf("NodeNetworkState %s: %w", node.Name, err)
		}
	}
	if err := (&nmstateSim{interval: opts.Interval}).setup(mgr); err != nil {
		return err
	}
	logger.Info("NMState simulator running", "nodes", len(nodes.Items))
	return mgr.Start(ctx)
}

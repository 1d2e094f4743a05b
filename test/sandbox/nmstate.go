package sandbox

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// AnnotationConfiguredGeneration records on a NodeNetworkConfigurationPolicy
// the generation the NMState simulator last configured, so a spec change runs
// through Progressing again.
const AnnotationConfiguredGeneration = "sandbox.novasphere.dev/configured-generation"

// nmstateSim plays kubernetes-nmstate: a new or changed policy is first
// Progressing ("Policy is progressing 0/N nodes finished"), one interval
// later Available=True reason SuccessfullyConfigured with message
// "N/N nodes successfully configured" (N: nodes matching spec.nodeSelector;
// none: Available reason NoMatchingNode). No interface is configured.
type nmstateSim struct {
	c        client.Client
	interval time.Duration
	pace     pacer
}

func (r *nmstateSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-nmstate").
		// Objects are independent here; the KubeVirt simulator stays on one
		// worker so its scheduling decisions never race.
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
	progressing := findNNCPCondition(p, shared.NodeNetworkConfigurationPolicyConditionProgressing)
	if progressing == nil || progressing.Status != corev1.ConditionTrue {
		msg := fmt.Sprintf("Policy is progressing 0/%d nodes finished", n)
		reason := shared.NodeNetworkConfigurationPolicyConditionConfigurationProgressing
		setNNCPCondition(p, shared.NodeNetworkConfigurationPolicyConditionProgressing, corev1.ConditionTrue, reason, msg)
		setNNCPCondition(p, shared.NodeNetworkConfigurationPolicyConditionAvailable, corev1.ConditionUnknown, reason, msg)
		setNNCPCondition(p, shared.NodeNetworkConfigurationPolicyConditionDegraded, corev1.ConditionUnknown, reason, msg)
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
	reason := shared.NodeNetworkConfigurationPolicyConditionSuccessfullyConfigured
	msg := fmt.Sprintf("%d/%d nodes successfully configured", n, n)
	if n == 0 {
		reason = shared.NodeNetworkConfigurationPolicyConditionConfigurationNoMatchingNode
		msg = "Policy does not match any node"
	}
	setNNCPCondition(p, shared.NodeNetworkConfigurationPolicyConditionAvailable, corev1.ConditionTrue, reason, msg)
	setNNCPCondition(p, shared.NodeNetworkConfigurationPolicyConditionProgressing, corev1.ConditionFalse, reason, msg)
	setNNCPCondition(p, shared.NodeNetworkConfigurationPolicyConditionDegraded, corev1.ConditionFalse, reason, msg)
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

func findNNCPCondition(p *nmstatev1.NodeNetworkConfigurationPolicy, t shared.ConditionType) *shared.Condition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func setNNCPCondition(p *nmstatev1.NodeNetworkConfigurationPolicy, t shared.ConditionType, status corev1.ConditionStatus, reason shared.ConditionReason, msg string) {
	now := metav1.Now()
	if c := findNNCPCondition(p, t); c != nil {
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = status, reason, msg, now
		return
	}
	p.Status.Conditions = append(p.Status.Conditions, shared.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now,
	})
}

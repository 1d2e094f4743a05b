package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/conditions"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// nodeWithReady is node-a with its Ready condition status since the given
// time, as the node lifecycle controller writes it.
func nodeWithReady(status corev1.ConditionStatus, since time.Time) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
		{Type: corev1.NodeReady, Status: status, LastTransitionTime: metav1.NewTime(since)},
	}}}
}

// TestDecideNodeLoss: the policy as a function of the node's Ready
// condition, the clock and the policy.
func TestDecideNodeLoss(t *testing.T) {
	now := t0.Time
	five := NodeLossPolicy{After: 5 * time.Minute}
	tests := []struct {
		name   string
		node   *corev1.Node
		policy NodeLossPolicy
		want   nodeLoss
	}{
		{"ready node", nodeWithReady(corev1.ConditionTrue, now.Add(-time.Hour)), five, nodeLoss{Node: "node-a"}},
		{"no Ready condition yet", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, five, nodeLoss{Node: "node-a"}},
		{"Unknown for 2m under a 5m policy: wait 3m", nodeWithReady(corev1.ConditionUnknown, now.Add(-2*time.Minute)), five,
			nodeLoss{Node: "node-a", Lost: true, Since: now.Add(-2 * time.Minute), Wait: 3 * time.Minute}},
		{"False for exactly 5m: act", nodeWithReady(corev1.ConditionFalse, now.Add(-5*time.Minute)), five,
			nodeLoss{Node: "node-a", Lost: true, Since: now.Add(-5 * time.Minute), Act: true}},
		{"Unknown for an hour, no policy: lost, never acts", nodeWithReady(corev1.ConditionUnknown, now.Add(-time.Hour)), NodeLossPolicy{},
			nodeLoss{Node: "node-a", Lost: true, Since: now.Add(-time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, decideNodeLoss(tt.node, now, tt.policy))
		})
	}
}

// TestNodeLostStatus: the Wukong says the node is lost and what happens or
// what an administrator can do.
func TestNodeLostStatus(t *testing.T) {
	since := t0.Add(-10 * time.Minute)
	tests := []struct {
		name, reason, msgHas string
		d                    nodeLoss
		policy               NodeLossPolicy
	}{
		{"no policy: what an administrator can do", v1alpha1.ReasonNodeNotReady, "--force --grace-period=0",
			nodeLoss{Node: "node-a", Lost: true, Since: since}, NodeLossPolicy{}},
		{"policy waiting", v1alpha1.ReasonNodeLostWaiting, "once it has been so for 15m0s",
			nodeLoss{Node: "node-a", Lost: true, Since: since, Wait: 5 * time.Minute}, NodeLossPolicy{After: 15 * time.Minute}},
		{"policy acted", v1alpha1.ReasonNodeLostRestarting, "force-deleted so KubeVirt restarts the VM on another node",
			nodeLoss{Node: "node-a", Lost: true, Since: since, Act: true, Deleted: 1}, NodeLossPolicy{After: 5 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testWukong()
			s := runningScope(w, runningVMI("node-a"))
			s.maint.node, s.maint.policy = tt.d, tt.policy
			computeStatus(w, s)
			lost := mustCondition(t, w, v1alpha1.NodeLostCondition)
			assert.Equal(t, "True:"+tt.reason, string(lost.Status)+":"+lost.Reason)
			assert.Contains(t, lost.Message, tt.msgHas)
			assert.Contains(t, lost.Message, "node node-a has been NotReady since 2026-12-06T22:50:00Z")
			ready := mustCondition(t, w, v1alpha1.ReadyCondition)
			assert.Equal(t, "False:"+tt.reason, string(ready.Status)+":"+ready.Reason)
		})
	}
	// A Ready node: no NodeLost.
	w := testWukong()
	s := runningScope(w, runningVMI("node-a"))
	conditions.MarkTrue(w, v1alpha1.NodeLostCondition, v1alpha1.ReasonNodeNotReady, "old")
	computeStatus(w, s)
	assert.Nil(t, conditions.Get(w, v1alpha1.NodeLostCondition))
}

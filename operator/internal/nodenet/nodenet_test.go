package nodenet_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/nodenet"
)

func TestRefOfKey(t *testing.T) {
	for _, tc := range []struct {
		nic  v1alpha1.NetworkSpec
		want string
	}{
		{v1alpha1.NetworkSpec{Name: "lan", BridgeName: "br1"}, "br1"},
		{v1alpha1.NetworkSpec{Name: "lan"}, "br-lan"},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeBridge}, "br-lan"},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeOVS, BridgeName: "br-int"}, "br-int"},
		{v1alpha1.NetworkSpec{Name: "lan", NADName: "x"}, ""},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeMacvlan, BridgeName: "eth1"}, "eth1"},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeMacvlan, BridgeName: "eth1", PhysicalInterface: "eth2"}, "eth2"},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeSRIOV}, ""},
	} {
		assert.Equal(t, tc.want, nodenet.RefOf(tc.nic).Key, "%+v", tc.nic)
	}
}

func TestReady(t *testing.T) {
	d := &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	ready, stalled, msg := nodenet.Ready(d)
	assert.False(t, ready)
	assert.Empty(t, stalled)
	assert.Contains(t, msg, "not reported")

	d.Status.ObservedGeneration = 1
	d.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Message: "2/2 nodes"}}
	ready, _, _ = nodenet.Ready(d)
	assert.False(t, ready, "a Ready of an older generation does not count")

	d.Status.ObservedGeneration = 2
	ready, _, _ = nodenet.Ready(d)
	assert.True(t, ready)

	d.Status.Conditions = []metav1.Condition{{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonNameConflict, Message: "policy taken"}}
	ready, stalled, msg = nodenet.Ready(d)
	assert.False(t, ready)
	assert.Equal(t, v1alpha1.ReasonNameConflict, stalled)
	assert.Equal(t, "policy taken", msg)

	d.Status.Conditions = append(d.Status.Conditions, metav1.Condition{Type: v1alpha1.DegradedCondition, Status: metav1.ConditionTrue, Message: "rolled back"})
	ready, stalled, msg = nodenet.Ready(d)
	assert.False(t, ready)
	assert.Equal(t, v1alpha1.ReasonBridgeDegraded, stalled)
	assert.Equal(t, "rolled back", msg)
}

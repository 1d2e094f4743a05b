package nodebridge

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/nodenet"
)

func TestBridgeOf(t *testing.T) {
	d := &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: "br1"}, Spec: v1alpha1.NodeBridgeSpec{
		Type: v1alpha1.BridgeTypeOVS, Uplinks: []string{"eth1", "eth2"}, Bond: &v1alpha1.BondSpec{Name: "bond1", Mode: "802.3ad"},
		NodeSelector: map[string]string{"net": "a"},
		AllowedVLANs: []v1alpha1.VLANRange{{Min: 10, Max: 20}, {Min: 30}},
	}}
	assert.Equal(t, network.Bridge{Name: "br1", Uplinks: []string{"eth1", "eth2"}, Bond: &network.Bond{Name: "bond1", Mode: "802.3ad"},
		OVS: true, NodeSelector: map[string]string{"net": "a"}, VLANs: []network.VLANRange{{Min: 10, Max: 20}, {Min: 30, Max: 30}}, NativeVLAN: 1}, bridgeOf(d))
	d.Spec.NativeVLAN = ptr.To[int32](7)
	assert.Equal(t, 7, bridgeOf(d).NativeVLAN)
}

// TestNodeBridgeUsers: only NICs the declaration grants hold up its
// deletion; a tenant whose NIC was refused (another namespace, a VLAN not
// allowed) is not a user.
func TestNodeBridgeUsers(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	d := &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: "br1"}, Spec: v1alpha1.NodeBridgeSpec{
		Uplinks: []string{"eth1"}, AllowedVLANs: []v1alpha1.VLANRange{{Min: 100}},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "a"}},
	}}
	vf := &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: "vf"}, Spec: v1alpha1.NodeBridgeSpec{
		Type: v1alpha1.BridgeTypeSRIOV, ResourceName: "example.com/vf", AllowedVLANs: []v1alpha1.VLANRange{{Min: 7}},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "a"}},
	}}
	wk := func(ns, name string, n v1alpha1.NetworkSpec) *v1alpha1.Wukong {
		return &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.WukongSpec{Networks: []v1alpha1.NetworkSpec{n}}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithIndex(&v1alpha1.Wukong{}, nodenet.IndexField, nodenet.IndexWukong).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"tenant": "a"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b", Labels: map[string]string{"tenant": "b"}}},
		d, vf,
		wk("team-a", "granted", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1", VLANID: 100}),
		wk("team-a", "untagged", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1"}),
		wk("team-a", "wrong-vlan", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1", VLANID: 200}),
		wk("team-b", "other-ns", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1"}),
		wk("team-a", "vf-user", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/vf", VLANID: 7}),
		wk("team-a", "vf-wrong-vlan", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/vf", VLANID: 8}),
	).Build()
	r := &Reconciler{Client: c}
	users, err := r.users(context.Background(), d)
	require.NoError(t, err)
	assert.Equal(t, []string{"team-a/granted", "team-a/untagged"}, users)
	users, err = r.users(context.Background(), vf)
	require.NoError(t, err)
	assert.Equal(t, []string{"team-a/vf-user"}, users)
	// While the administrator deletes it, its users still hold it.
	now := metav1.Now()
	d.DeletionTimestamp = &now
	users, err = r.users(context.Background(), d)
	require.NoError(t, err)
	assert.Equal(t, []string{"team-a/granted", "team-a/untagged"}, users)
}

// TestPolicyFailureStatus: ReconcilePolicy's failures are sorted by their
// reason (classify, policyFailures): a stalled one sets Ready False and
// Stalled with the NodeBridge's reason and is looked at again after
// externalRetry; a waiting one (a deleted NodeBridge's policy) is
// Reconciling for the time it gives; a transient one is returned.
func TestPolicyFailureStatus(t *testing.T) {
	taken := &apply.ConflictError{Kind: "NodeNetworkConfigurationPolicy", Name: "wukong-br-br1"}
	gone := &apply.ConflictError{Kind: "NodeNetworkConfigurationPolicy", Name: "wukong-br-br1", Predecessor: true,
		Controller: &metav1.OwnerReference{Kind: "NodeBridge", Name: "br1", UID: "old"}}
	wrap := func(err error) error {
		return errors.Join(errors.New("cannot apply NodeNetworkConfigurationPolicy"), err)
	}
	tests := []struct {
		name        string
		err         error
		wantReason  string
		wantMessage string
		wantStalled bool
		wantResult  ctrl.Result
	}{
		{name: "name conflict", err: apply.ConflictFailure(wrap(taken)).On("br1", "name"),
			wantReason: v1alpha1.ReasonNameConflict, wantMessage: taken.Error() + ": remove it or rename this NodeBridge",
			wantStalled: true, wantResult: ctrl.Result{RequeueAfter: externalRetry}},
		{name: "nmstate missing", err: apply.Stalled(network.ReasonNMStateNotInstalled, network.ErrNMStateNotInstalled),
			wantReason: v1alpha1.ReasonNMStateMissing, wantMessage: "kubernetes-nmstate is not installed: NodeNetworkConfigurationPolicy (nmstate.io/v1) is not served",
			wantStalled: true, wantResult: ctrl.Result{RequeueAfter: externalRetry}},
		{name: "invalid bridge", err: apply.Stalled(network.ReasonInvalidBridge, errors.New("bridge br1: at least one uplink is required")),
			wantReason: v1alpha1.ReasonInvalidSpec, wantMessage: "bridge br1: at least one uplink is required",
			wantStalled: true, wantResult: ctrl.Result{RequeueAfter: externalRetry}},
		{name: "a reason not listed keeps the lib's", err: apply.Stalled("SomethingNew", errors.New("no")),
			wantReason: "SomethingNew", wantMessage: "no", wantStalled: true, wantResult: ctrl.Result{RequeueAfter: externalRetry}},
		{name: "predecessor waits", err: apply.ConflictFailure(gone),
			wantReason: v1alpha1.ReasonWaitingForPredecessor, wantMessage: "waiting for a deleted NodeBridge's policy to go: " + gone.Error(),
			wantResult: ctrl.Result{RequeueAfter: apply.PredecessorRetry}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: "br1"}, Spec: v1alpha1.NodeBridgeSpec{Uplinks: []string{"eth1"}}}
			s := &scope{d: d}
			require.NoError(t, s.classify(tt.err))
			assert.Equal(t, tt.wantResult, computeStatus(s))
			ready := conditions.Get(d, v1alpha1.ReadyCondition)
			require.NotNil(t, ready)
			assert.Equal(t, metav1.ConditionFalse, ready.Status)
			assert.Equal(t, tt.wantReason, ready.Reason)
			assert.Equal(t, tt.wantMessage, ready.Message)
			assert.Equal(t, tt.wantStalled, conditions.IsTrue(d, v1alpha1.StalledCondition))
			assert.Equal(t, !tt.wantStalled, conditions.IsTrue(d, v1alpha1.ReconcilingCondition))
		})
	}
	apiErr := errors.New("etcdserver: request timed out")
	for _, err := range []error{apiErr, apply.Transient(network.ReasonApplyFailed, apiErr)} {
		s := &scope{d: &v1alpha1.NodeBridge{}}
		assert.ErrorIs(t, s.classify(err), apiErr, "retried")
		assert.Nil(t, s.failure)
	}
}

package network_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/network"
)

// clusterOwner is a cluster-scoped owner for policies (a Namespace stands in
// for Wukong's NodeBridge).
func clusterOwner(t *testing.T, c client.Client) *corev1.Namespace {
	t.Helper()
	o := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("decl-%d", nsSeq.Add(1))}}
	require.NoError(t, c.Create(context.Background(), o))
	return o
}

func getPolicy(t *testing.T, c client.Client, bridge string) *nmstatev1.NodeNetworkConfigurationPolicy {
	t.Helper()
	p := &nmstatev1.NodeNetworkConfigurationPolicy{}
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Name: network.PolicyName(testID, bridge)}, p))
	return p
}

// enact plays kubernetes-nmstate on one node: an enactment for the policy at
// its current generation, Available, and the policy Available.
func enact(t *testing.T, c client.Client, p *nmstatev1.NodeNetworkConfigurationPolicy, node string, available bool) {
	t.Helper()
	ctx := context.Background()
	e := &nmstatev1beta1.NodeNetworkConfigurationEnactment{ObjectMeta: metav1.ObjectMeta{
		Name: node + "." + p.Name, Labels: map[string]string{network.LabelEnactmentPolicy: p.Name}}}
	if err := c.Create(ctx, e); err != nil {
		require.True(t, apierrors.IsAlreadyExists(err), err)
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(e), e))
	}
	status := corev1.ConditionFalse
	if available {
		status = corev1.ConditionTrue
	}
	e.Status.PolicyGeneration = p.Generation
	e.Status.Conditions = shared.ConditionList{{Type: shared.NodeNetworkConfigurationEnactmentConditionAvailable, Status: status}}
	require.NoError(t, c.Status().Update(ctx, e))
	p.Status.Conditions = shared.ConditionList{{Type: shared.NodeNetworkConfigurationPolicyConditionAvailable, Status: status,
		Reason: shared.NodeNetworkConfigurationPolicyConditionSuccessfullyConfigured, Message: "1/1 nodes successfully configured"}}
	require.NoError(t, c.Status().Update(ctx, p))
}

// TestPolicyLifecycle: applied once, written once; removal goes through
// state: absent and waits for every node's enactment of that generation
// before deleting the policy.
func TestPolicyLifecycle(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	owner := clusterOwner(t, c)
	b := network.Bridge{Name: "brlife", Uplinks: []string{"eth1"}, VLANs: []network.VLANRange{{Min: 10, Max: 20}}, NodeSelector: map[string]string{"net": "a"}}

	obs, err := network.ReconcilePolicy(ctx, c, testID, owner, b)
	require.NoError(t, err)
	assert.False(t, obs.Available)
	assert.Equal(t, network.ReasonPolicyPending, obs.Reason)
	p := getPolicy(t, c, "brlife")
	assert.Equal(t, map[string]string{"net": "a"}, p.Spec.NodeSelector)
	assert.Equal(t, owner.UID, p.OwnerReferences[0].UID)
	rv := p.ResourceVersion

	_, err = network.ReconcilePolicy(ctx, c, testID, owner, b)
	require.NoError(t, err)
	assert.Equal(t, rv, getPolicy(t, c, "brlife").ResourceVersion, "nothing written at rest")

	enact(t, c, p, "node-1", true)
	enact(t, c, p, "node-2", true)
	obs, err = network.ReconcilePolicy(ctx, c, testID, owner, b)
	require.NoError(t, err)
	assert.True(t, obs.Available)

	// Remove, step 1: the policy now sets the bridge absent; nothing deleted.
	done, obs, err := network.RemovePolicy(ctx, c, testID, owner, b)
	require.NoError(t, err)
	assert.False(t, done)
	assert.False(t, obs.Available)
	p = getPolicy(t, c, "brlife")
	assert.Equal(t, "absent", p.Annotations[testID.Key(network.KeyBridgeState)])
	raw, _ := p.Spec.DesiredState.MarshalJSON()
	assert.Contains(t, string(raw), `"state":"absent"`)

	// The enactments still report the old generation: keep waiting, even
	// though the policy's own (stale) condition says Available.
	done, _, err = network.RemovePolicy(ctx, c, testID, owner, b)
	require.NoError(t, err)
	assert.False(t, done, "enactments are behind")

	enact(t, c, p, "node-1", true)
	done, _, err = network.RemovePolicy(ctx, c, testID, owner, b)
	require.NoError(t, err)
	assert.False(t, done, "node-2 has not applied the absent state")

	enact(t, c, p, "node-2", true)
	done, _, err = network.RemovePolicy(ctx, c, testID, owner, b)
	require.NoError(t, err)
	assert.True(t, done)
	err = c.Get(ctx, client.ObjectKey{Name: p.Name}, &nmstatev1.NodeNetworkConfigurationPolicy{})
	assert.True(t, apierrors.IsNotFound(err), "policy deleted after the bridge left the nodes, got %v", err)
}

// TestForeignPolicy: a policy with the name that the owner does not control
// is never changed nor deleted.
func TestForeignPolicy(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	owner := clusterOwner(t, c)
	foreign := &nmstatev1.NodeNetworkConfigurationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: network.PolicyName(testID, "brforeign")},
		Spec:       shared.NodeNetworkConfigurationPolicySpec{DesiredState: shared.NewState(`{"interfaces":[]}`)},
	}
	require.NoError(t, c.Create(ctx, foreign))
	b := network.Bridge{Name: "brforeign", Uplinks: []string{"eth1"}}

	_, err := network.ReconcilePolicy(ctx, c, testID, owner, b)
	var conflict *apply.ConflictError
	require.ErrorAs(t, err, &conflict)
	f, ok := apply.AsFailure(err)
	require.True(t, ok, "an *apply.Failure")
	assert.Equal(t, &apply.Failure{Reason: network.ReasonNameConflict, Stalled: true, Subject: "brforeign", Field: "name", Err: f.Err}, f)
	done, _, err := network.RemovePolicy(ctx, c, testID, owner, b)
	require.NoError(t, err)
	assert.True(t, done, "not ours: nothing to remove")

	live := getPolicy(t, c, "brforeign")
	assert.Equal(t, foreign.ResourceVersion, live.ResourceVersion, "foreign policy untouched")
}

// TestInvalidBridgePolicy: a Bridge failing Validate is a stalled
// InvalidBridge failure, nothing written.
func TestInvalidBridgePolicy(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	owner := clusterOwner(t, c)
	b := network.Bridge{Name: "brinvalid"}
	_, err := network.ReconcilePolicy(ctx, c, testID, owner, b)
	f, ok := apply.AsFailure(err)
	require.True(t, ok, "an *apply.Failure: %v", err)
	assert.Equal(t, network.ReasonInvalidBridge, f.Reason)
	assert.True(t, f.Stalled)
	assert.Equal(t, "brinvalid", f.Subject)
	err = c.Get(ctx, client.ObjectKey{Name: network.PolicyName(testID, "brinvalid")}, &nmstatev1.NodeNetworkConfigurationPolicy{})
	assert.True(t, apierrors.IsNotFound(err), "nothing written, got %v", err)
}

package sandbox_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/novasphere/wukong/test/sandbox"
)

// interfaces returns the names of the interfaces in a node's
// NodeNetworkState.
func interfaces(t *testing.T, node string) []string {
	t.Helper()
	nns := &nmstatev1beta1.NodeNetworkState{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKey{Name: node}, nns))
	var st struct {
		Interfaces []struct {
			Name string `json:"name"`
		} `json:"interfaces"`
	}
	require.NoError(t, yaml.Unmarshal(nns.Status.CurrentState.Raw, &st))
	var names []string
	for _, i := range st.Interfaces {
		names = append(names, i.Name)
	}
	return names
}

// applyPolicy creates a policy for node-2 and waits until it is Available.
func applyPolicy(t *testing.T, name string, ifaces ...map[string]any) *nmstatev1.NodeNetworkConfigurationPolicy {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"interfaces": ifaces})
	require.NoError(t, err)
	p := &nmstatev1.NodeNetworkConfigurationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "node-2"}
	p.Spec.DesiredState = shared.State{Raw: raw}
	require.NoError(t, sb.Client.Create(ctx, p))
	eventually(t, p, func(p *nmstatev1.NodeNetworkConfigurationPolicy) bool {
		c := p.Status.Conditions.Find(shared.NodeNetworkConfigurationPolicyConditionAvailable)
		return c != nil && c.Status == corev1.ConditionTrue
	}, "policy "+name+" not Available")
	return p
}

// TestNMStateNodeState: each node's NodeNetworkState lists its NICs; a
// policy adds its bridge to the matching nodes only; deleting the policy
// leaves the bridge; a policy setting it absent removes it.
func TestNMStateNodeState(t *testing.T) {
	for _, node := range sb.Nodes {
		got := interfaces(t, node)
		for _, want := range append([]string{sandbox.PrimaryInterface, "lo"}, sandbox.SecondaryInterfaces...) {
			assert.Contains(t, got, want, node)
		}
	}
	up := applyPolicy(t, "nns-up", map[string]any{"name": "brnns", "type": "linux-bridge", "state": "up",
		"bridge": map[string]any{"port": []any{map[string]any{"name": "eth1"}}}})
	assert.Contains(t, interfaces(t, "node-2"), "brnns")
	assert.NotContains(t, interfaces(t, "node-1"), "brnns", "the policy selects node-2 only")

	require.NoError(t, sb.Client.Delete(ctx, up))
	gone(t, up)
	assert.Contains(t, interfaces(t, "node-2"), "brnns", "deleting a policy does not revert the node")

	absent := applyPolicy(t, "nns-absent", map[string]any{"name": "brnns", "type": "linux-bridge", "state": "absent"})
	t.Cleanup(func() { _ = sb.Client.Delete(ctx, absent) })
	got := interfaces(t, "node-2")
	assert.NotContains(t, got, "brnns", "state: absent removes the bridge")
	assert.True(t, slices.Contains(got, "eth1"), "the uplink stays")
}

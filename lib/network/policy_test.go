package network_test

import (
	"encoding/json"
	"testing"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/novasphere/wukong/lib/network"
)

func TestBuildPolicy(t *testing.T) {
	tests := []struct {
		name     string
		bridge   network.Bridge
		wantType string
		wantPort map[string]any
	}{
		{
			name:     "linux bridge, access uplink",
			bridge:   network.Bridge{Name: "br1", PhysicalInterface: "eth1"},
			wantType: "linux-bridge",
			wantPort: map[string]any{"name": "eth1"},
		},
		{
			name:     "linux bridge with VLAN NICs trunks the uplink",
			bridge:   network.Bridge{Name: "br1", PhysicalInterface: "eth1", Trunk: true},
			wantType: "linux-bridge",
			wantPort: map[string]any{"name": "eth1", "vlan": map[string]any{
				"mode": "trunk", "enable-native": true, "tag": float64(1),
				"trunk-tags": []any{map[string]any{"id-range": map[string]any{"min": float64(2), "max": float64(4094)}}},
			}},
		},
		{
			name:     "ovs bridge (ports trunk by default)",
			bridge:   network.Bridge{Name: "br-ex", PhysicalInterface: "eno2", OVS: true, Trunk: true},
			wantType: "ovs-bridge",
			wantPort: map[string]any{"name": "eno2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := network.BuildPolicy(tc.bridge)
			assert.Equal(t, "wukong-br-"+tc.bridge.Name, p.Name)
			assert.Empty(t, p.Namespace)
			assert.Equal(t, "wukong", p.Labels[network.LabelManagedBy])
			assert.True(t, network.PolicySelector().Matches(labels.Set(p.Labels)))

			var state struct {
				Interfaces []struct {
					Name   string `json:"name"`
					Type   string `json:"type"`
					State  string `json:"state"`
					Bridge struct {
						Options struct {
							STP struct {
								Enabled *bool `json:"enabled"`
							} `json:"stp"`
						} `json:"options"`
						Port []map[string]any `json:"port"`
					} `json:"bridge"`
				} `json:"interfaces"`
			}
			raw, err := p.Spec.DesiredState.MarshalJSON()
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, &state))
			require.Len(t, state.Interfaces, 1)
			i := state.Interfaces[0]
			assert.Equal(t, tc.bridge.Name, i.Name)
			assert.Equal(t, tc.wantType, i.Type)
			assert.Equal(t, "up", i.State)
			require.NotNil(t, i.Bridge.Options.STP.Enabled)
			assert.False(t, *i.Bridge.Options.STP.Enabled)
			assert.Equal(t, []map[string]any{tc.wantPort}, i.Bridge.Port)
		})
	}
}

func TestPolicyName(t *testing.T) {
	assert.Equal(t, "wukong-br-br1", network.PolicyName("br1"))
	odd := network.PolicyName("Br_1")
	assert.Regexp(t, `^wukong-br-br-1-[0-9a-f]{8}$`, odd)
	assert.NotEqual(t, odd, network.PolicyName("br-1"))
}

func TestObservePolicy(t *testing.T) {
	cond := func(typ shared.ConditionType, s corev1.ConditionStatus, reason, msg string) shared.Condition {
		return shared.Condition{Type: typ, Status: s, Reason: shared.ConditionReason(reason), Message: msg}
	}
	tests := []struct {
		name  string
		conds shared.ConditionList
		want  network.BridgeObservation
	}{
		{"no status yet", nil, network.BridgeObservation{Reason: network.ReasonPolicyPending, Message: "NMState has not reported on the policy yet"}},
		{"available", shared.ConditionList{
			cond("Available", "True", "SuccessfullyConfigured", "2/2 nodes"),
			cond("Progressing", "False", "", ""), cond("Degraded", "False", "", ""),
		}, network.BridgeObservation{Available: true, Reason: "SuccessfullyConfigured", Message: "2/2 nodes"}},
		{"progressing", shared.ConditionList{
			cond("Progressing", "True", "ConfigurationProgressing", "1/2"), cond("Available", "False", "", ""),
		}, network.BridgeObservation{Progressing: true, Reason: "ConfigurationProgressing", Message: "1/2"}},
		{"degraded wins", shared.ConditionList{
			cond("Available", "True", "SuccessfullyConfigured", ""), cond("Degraded", "True", "FailedToConfigure", "eth9 missing"),
		}, network.BridgeObservation{Available: true, Degraded: true, Reason: "FailedToConfigure", Message: "eth9 missing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &nmstatev1.NodeNetworkConfigurationPolicy{}
			p.Name = "wukong-br-br1"
			p.Status.Conditions = tc.conds
			got := network.ObservePolicy(p)
			tc.want.Policy = "wukong-br-br1"
			assert.Equal(t, tc.want, got)
		})
	}
}

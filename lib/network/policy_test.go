package network_test

import (
	"encoding/json"
	"testing"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/network"
)

func TestBuildPolicy(t *testing.T) {
	owner := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "decl", UID: "uid-1"}}
	tests := []struct {
		name       string
		bridge     network.Bridge
		absent     bool
		wantIfaces string
	}{
		{
			// Untagged only: the uplink is an access port of the native
			// VLAN, so the bridge filters VLANs and a guest's own tags go
			// nowhere.
			name:       "linux bridge, one uplink, no VLANs: access port of the native VLAN",
			bridge:     network.Bridge{Name: "br1", Uplinks: []string{"eth1"}},
			wantIfaces: `[{"bridge":{"options":{"stp":{"enabled":false}},"port":[{"name":"eth1","vlan":{"mode":"access","tag":1}}]},"ipv4":{"enabled":false},"ipv6":{"enabled":false},"name":"br1","state":"up","type":"linux-bridge"}]`,
		},
		{
			name:       "native VLAN other than 1",
			bridge:     network.Bridge{Name: "br1", Uplinks: []string{"eth1"}, NativeVLAN: 20, VLANs: []network.VLANRange{{Min: 30, Max: 30}}},
			wantIfaces: `[{"bridge":{"options":{"stp":{"enabled":false}},"port":[{"name":"eth1","vlan":{"enable-native":true,"mode":"trunk","tag":20,"trunk-tags":[{"id":30}]}}]},"ipv4":{"enabled":false},"ipv6":{"enabled":false},"name":"br1","state":"up","type":"linux-bridge"}]`,
		},
		{
			name:       "allowed VLANs trunk exactly those on the uplink",
			bridge:     network.Bridge{Name: "br1", Uplinks: []string{"eth1"}, VLANs: []network.VLANRange{{Min: 100, Max: 199}, {Min: 300, Max: 300}}},
			wantIfaces: `[{"bridge":{"options":{"stp":{"enabled":false}},"port":[{"name":"eth1","vlan":{"enable-native":true,"mode":"trunk","tag":1,"trunk-tags":[{"id-range":{"max":199,"min":100}},{"id":300}]}}]},"ipv4":{"enabled":false},"ipv6":{"enabled":false},"name":"br1","state":"up","type":"linux-bridge"}]`,
		},
		{
			name:       "two uplinks are bonded first",
			bridge:     network.Bridge{Name: "br2", Uplinks: []string{"eth1", "eth2"}, Bond: &network.Bond{Name: "bond1", Mode: "802.3ad"}},
			wantIfaces: `[{"ipv4":{"enabled":false},"ipv6":{"enabled":false},"link-aggregation":{"mode":"802.3ad","port":["eth1","eth2"]},"name":"bond1","state":"up","type":"bond"},{"bridge":{"options":{"stp":{"enabled":false}},"port":[{"name":"bond1","vlan":{"mode":"access","tag":1}}]},"ipv4":{"enabled":false},"ipv6":{"enabled":false},"name":"br2","state":"up","type":"linux-bridge"}]`,
		},
		{
			// An OVS port without vlan configuration trunks every VLAN:
			// the uplink trunks only the allowed ones plus the native VLAN.
			name:       "ovs bridge trunks only the allowed VLANs",
			bridge:     network.Bridge{Name: "br-ex", Uplinks: []string{"eno2"}, OVS: true, VLANs: []network.VLANRange{{Min: 5, Max: 6}}},
			wantIfaces: `[{"bridge":{"options":{"stp":{"enabled":false}},"port":[{"name":"eno2","vlan":{"enable-native":true,"mode":"trunk","tag":1,"trunk-tags":[{"id-range":{"max":6,"min":5}}]}}]},"name":"br-ex","state":"up","type":"ovs-bridge"}]`,
		},
		{
			name:       "absent removes the bridge and its bond",
			bridge:     network.Bridge{Name: "br2", Uplinks: []string{"eth1", "eth2"}, Bond: &network.Bond{Name: "bond1"}},
			absent:     true,
			wantIfaces: `[{"name":"br2","state":"absent","type":"linux-bridge"},{"name":"bond1","state":"absent","type":"bond"}]`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.bridge.Validate())
			p := network.BuildPolicy(testID, owner, tc.bridge, tc.absent)
			assert.Equal(t, "wukong-br-"+tc.bridge.Name, p.Name)
			assert.Empty(t, p.Namespace)
			assert.Equal(t, "wukong", p.Labels[apply.LabelManagedBy])
			assert.True(t, network.PolicySelector(testID).Matches(labels.Set(p.Labels)))
			require.Len(t, p.OwnerReferences, 1)
			assert.Equal(t, owner.UID, p.OwnerReferences[0].UID)
			assert.True(t, *p.OwnerReferences[0].Controller)
			state := map[string]any{"up": "up", "absent": "absent"}[map[bool]string{false: "up", true: "absent"}[tc.absent]]
			assert.Equal(t, state, p.Annotations[testID.Key(network.KeyBridgeState)])

			var got struct {
				Interfaces json.RawMessage `json:"interfaces"`
			}
			raw, err := p.Spec.DesiredState.MarshalJSON()
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, &got))
			assert.JSONEq(t, tc.wantIfaces, string(got.Interfaces))
		})
	}
}

func TestBridgeValidate(t *testing.T) {
	for name, b := range map[string]network.Bridge{
		"no name":             {Uplinks: []string{"eth1"}},
		"name too long":       {Name: "a-very-long-bridge", Uplinks: []string{"eth1"}},
		"no uplink":           {Name: "br1"},
		"two uplinks no bond": {Name: "br1", Uplinks: []string{"eth1", "eth2"}},
		"VLAN out of range":   {Name: "br1", Uplinks: []string{"eth1"}, VLANs: []network.VLANRange{{Min: 0, Max: 5000}}},
		"VLAN range reversed": {Name: "br1", Uplinks: []string{"eth1"}, VLANs: []network.VLANRange{{Min: 20, Max: 10}}},
	} {
		assert.Error(t, b.Validate(), name)
	}
}

func TestPolicyName(t *testing.T) {
	assert.Equal(t, "wukong-br-br1", network.PolicyName(testID, "br1"))
	odd := network.PolicyName(testID, "Br_1")
	assert.Regexp(t, `^wukong-br-br-1-[0-9a-f]{8}$`, odd)
	assert.NotEqual(t, odd, network.PolicyName(testID, "br-1"))
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

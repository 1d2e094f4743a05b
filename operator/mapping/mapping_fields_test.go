package mapping

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestSpecField(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{Networks: []v1alpha1.NetworkSpec{
		{Name: "plain"},
		{Name: "lan", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic}},
		{Name: "nocfg"},
		{Name: "stor", IPConfig: &v1alpha1.IPConfig{}},
	}}}
	tests := []struct{ lib, want string }{
		{"containerDiskImage", "spec.osImage"},
		{"cloudInit.networks[0].addresses[0]", "spec.networks[1].ipConfig.address"},
		{"cloudInit.networks[0].gateway", "spec.networks[1].ipConfig.gateway"},
		{"cloudInit.networks[1].dns[2]", "spec.networks[3].ipConfig.dnsServers[2]"},
		{"cloudInit.networks[1].mac", "spec.networks[3]"},
		{"cloudInit.networks[1].defaultRoute", "spec.networks[3].ipConfig.defaultRoute"},
		{"cloudInit.networks[7].gateway", "cloudInit.networks[7].gateway"}, // no such entry: left as is
		{"cloudInit.networks[x].gateway", "cloudInit.networks[x].gateway"},
		{"cloudInit.user.name", "cloudInit.user.name"},
	}
	for _, tt := range tests {
		t.Run(tt.lib, func(t *testing.T) {
			assert.Equal(t, tt.want, SpecField(w, tt.lib))
		})
	}
}

func TestMachineMapsDefaultRoute(t *testing.T) {
	w := &v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{Networks: []v1alpha1.NetworkSpec{
		{Name: "lan", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "10.0.0.5/24", Gateway: "10.0.0.1", DefaultRoute: true}},
		{Name: "stor", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeDHCP}},
	}}}
	m, err := Machine(w, nil, nil, nil)
	require.NoError(t, err)
	require.Len(t, m.CloudInit.Networks, 2)
	assert.True(t, m.CloudInit.Networks[0].DefaultRoute)
	assert.Equal(t, "10.0.0.1", m.CloudInit.Networks[0].Gateway)
	assert.False(t, m.CloudInit.Networks[1].DefaultRoute)
}

func TestMachineMapsGuestAgent(t *testing.T) {
	no, yes := false, true
	for _, tc := range []struct {
		name string
		ga   *v1alpha1.GuestAgent
		skip bool
	}{
		{"not set: installed", nil, false},
		{"install unset: installed", &v1alpha1.GuestAgent{}, false},
		{"install true", &v1alpha1.GuestAgent{Install: &yes}, false},
		{"install false: opted out", &v1alpha1.GuestAgent{Install: &no}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Machine(&v1alpha1.Wukong{Spec: v1alpha1.WukongSpec{OSImage: "quay.io/a/b:1", GuestAgent: tc.ga}}, nil, nil, nil)
			require.NoError(t, err)
			assert.Equal(t, tc.skip, m.CloudInit.SkipGuestAgent)
		})
	}
}

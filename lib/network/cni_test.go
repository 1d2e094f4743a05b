package network_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/novasphere/wukong/lib/network"
)

func TestCNIType(t *testing.T) {
	tests := []struct {
		name, config, want string
		wantErr            bool
	}{
		{name: "single plugin", config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br1"}`, want: "bridge"},
		{name: "macvtap as the KubeVirt guide writes it", config: `{"cniVersion":"0.3.1","name":"macvtapnetwork","type":"macvtap","mtu":1500}`, want: "macvtap"},
		{name: "macvlan", config: `{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","mode":"bridge"}`, want: "macvlan"},
		{name: "ipvlan in a plugin list with whereabouts", config: `{"cniVersion":"0.3.1","name":"n","plugins":[{"type":"ipvlan","mode":"l2","master":"ens6","ipam":{"type":"whereabouts"}}]}`, want: "ipvlan"},
		{name: "plugin list: the first plugin is the interface, tuning is chained", config: `{"cniVersion":"0.3.1","name":"n","plugins":[{"type":"macvlan","master":"eth1"},{"type":"tuning"}]}`, want: "macvlan"},
		{name: "empty config: Multus reads the node's file", config: "  ", want: ""},
		{name: "malformed", config: `{"type":`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := network.CNIType(tt.config)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCNITypeFor(t *testing.T) {
	for typ, want := range map[network.Type]string{
		network.TypeBridge:  "bridge",
		network.TypeMacvlan: network.CNIMacvtap,
		network.TypeSRIOV:   "sriov",
		network.TypeOVS:     "ovs",
	} {
		assert.Equal(t, want, network.CNITypeFor(network.Attachment{Type: typ}), typ)
	}
}

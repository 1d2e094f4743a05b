package network_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/containernetworking/cni/libcni"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/network"
)

// pluginFields are the plugin-specific keys of the configs, decoded after
// libcni accepted the config.
type pluginFields struct {
	Bridge              string          `json:"bridge"`
	Master              string          `json:"master"`
	Mode                string          `json:"mode"`
	VLAN                int             `json:"vlan"`
	PreserveDefaultVlan *bool           `json:"preserveDefaultVlan"`
	MacSpoofChk         bool            `json:"macspoofchk"`
	SpoofChk            string          `json:"spoofchk"`
	Trust               string          `json:"trust"`
	MTU                 int             `json:"mtu"`
	IPAM                json.RawMessage `json:"ipam"`
}

func owner() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "vm1", Namespace: "team-a", UID: "uid-1"},
	}
}

func falsePtr() *bool { f := false; return &f }

func TestBuildNADConfigs(t *testing.T) {
	tests := []struct {
		name     string
		att      network.Attachment
		wantType string
		want     pluginFields
		// wantIPAM: "" means no ipam key at all, "{}" an empty object.
		wantIPAM     string
		wantResource string
	}{
		{
			// A port without VLAN has no VLAN filtering (callers put
			// untagged NICs on the native VLAN); tenants sharing the
			// bridge still cannot take a neighbour's MAC.
			name:     "bridge without VLAN has empty ipam, no vlan keys, MAC spoof check",
			att:      network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "br1"},
			wantType: "bridge",
			want:     pluginFields{Bridge: "br1", MacSpoofChk: true},
			wantIPAM: "{}",
		},
		{
			name:     "bridge on the native VLAN 1 is an access port of VLAN 1",
			att:      network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "br1", VLAN: 1},
			wantType: "bridge",
			want:     pluginFields{Bridge: "br1", VLAN: 1, PreserveDefaultVlan: falsePtr(), MacSpoofChk: true},
			wantIPAM: "{}",
		},
		{
			name:     "bridge with VLAN and MTU drops the default VLAN",
			att:      network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "br1", VLAN: 100, MTU: 9000, PhysicalInterface: "eth1"},
			wantType: "bridge",
			want:     pluginFields{Bridge: "br1", VLAN: 100, MTU: 9000, PreserveDefaultVlan: falsePtr(), MacSpoofChk: true},
			wantIPAM: "{}",
		},
		{
			// KubeVirt cannot bind a macvlan pod interface; macvtap-cni gets the
			// node interface from the device plugin resource, not from master.
			name:         "macvlan becomes a macvtap NAD requesting the interface's macvtap resource",
			att:          network.Attachment{Name: "data", Type: network.TypeMacvlan, PhysicalInterface: "eth2", MTU: 1400},
			wantType:     "macvtap",
			want:         pluginFields{MTU: 1400},
			wantResource: "macvtap.network.kubevirt.io/eth2",
		},
		{
			name:         "macvlan with an explicit resource keeps it",
			att:          network.Attachment{Name: "data", Type: network.TypeMacvlan, PhysicalInterface: "bond0", ResourceName: "macvtap.network.kubevirt.io/dataplane"},
			wantType:     "macvtap",
			wantResource: "macvtap.network.kubevirt.io/dataplane",
		},
		{
			name:         "sriov with default resource",
			att:          network.Attachment{Name: "fast", Type: network.TypeSRIOV, VLAN: 7, MTU: 9000},
			wantType:     "sriov",
			want:         pluginFields{VLAN: 7, SpoofChk: "on", Trust: "off"},
			wantResource: network.DefaultSRIOVResourceName,
		},
		{
			name:         "sriov with explicit resource",
			att:          network.Attachment{Name: "fast", Type: network.TypeSRIOV, ResourceName: "nvidia.com/cx6"},
			wantType:     "sriov",
			want:         pluginFields{SpoofChk: "on", Trust: "off"},
			wantResource: "nvidia.com/cx6",
		},
		{
			name:     "ovs with VLAN",
			att:      network.Attachment{Name: "ovs", Type: network.TypeOVS, Bridge: "br-ex", VLAN: 42, MTU: 1450},
			wantType: "ovs",
			want:     pluginFields{Bridge: "br-ex", VLAN: 42, MTU: 1450},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nad, err := network.BuildNAD(testID, owner(), tc.att)
			require.NoError(t, err)

			assert.Equal(t, "vm1-"+tc.att.Name, nad.Name)
			assert.Equal(t, "team-a", nad.Namespace)
			assert.Equal(t, map[string]string{
				apply.LabelManagedBy: "wukong", testID.OwnerLabelKey(): "vm1", testID.Key(network.KeyNIC): tc.att.Name,
			}, nad.Labels)
			require.Len(t, nad.OwnerReferences, 1)
			ref := nad.OwnerReferences[0]
			assert.Equal(t, "ConfigMap", ref.Kind)
			assert.Equal(t, "v1", ref.APIVersion)
			assert.True(t, *ref.Controller)
			assert.Equal(t, tc.wantResource, nad.Annotations[network.AnnotationResourceName])

			conf, err := libcni.NetworkPluginConfFromBytes([]byte(nad.Spec.Config))
			require.NoError(t, err)
			assert.Equal(t, tc.wantType, conf.Network.Type)
			assert.Equal(t, network.CNIVersion, conf.Network.CNIVersion)
			assert.Equal(t, nad.Name, conf.Network.Name)
			assert.Empty(t, conf.Network.IPAM.Type, "the pod side must not assign addresses")
			supported, err := cniversion.GreaterThanOrEqualTo(conf.Network.CNIVersion, "1.0.0")
			require.NoError(t, err)
			assert.True(t, supported)

			// The same bytes as a one-plugin list must load too.
			list, err := libcni.ConfListFromBytes(fmt.Appendf(nil,
				`{"cniVersion":%q,"name":%q,"plugins":[%s]}`, network.CNIVersion, nad.Name, nad.Spec.Config))
			require.NoError(t, err)
			require.Len(t, list.Plugins, 1)
			assert.Equal(t, tc.wantType, list.Plugins[0].Network.Type)

			var got pluginFields
			require.NoError(t, json.Unmarshal(conf.Bytes, &got))
			assert.Equal(t, tc.wantIPAM, string(got.IPAM))
			got.IPAM = nil
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBuildNADInvalid(t *testing.T) {
	tests := []struct {
		name      string
		att       network.Attachment
		wantField string
	}{
		{"macvlan without master", network.Attachment{Name: "a", Type: network.TypeMacvlan}, "physicalInterface"},
		{"macvlan with vlan", network.Attachment{Name: "a", Type: network.TypeMacvlan, PhysicalInterface: "eth1", VLAN: 3}, "vlan"},
		{"bridge without bridge name", network.Attachment{Name: "a", Type: network.TypeBridge}, "bridge"},
		{"ovs without bridge name", network.Attachment{Name: "a", Type: network.TypeOVS, VLAN: 3}, "bridge"},
		{"vlan out of range", network.Attachment{Name: "a", Type: network.TypeBridge, Bridge: "br1", VLAN: 4095}, "vlan"},
		{"negative mtu", network.Attachment{Name: "a", Type: network.TypeBridge, Bridge: "br1", MTU: -1}, "mtu"},
		{"unknown type", network.Attachment{Name: "a", Type: "vxlan"}, "type"},
		{"bad NIC name", network.Attachment{Name: "Bad_Name", Type: network.TypeSRIOV}, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nad, err := network.BuildNAD(testID, owner(), tc.att)
			assert.Nil(t, nad)
			var invalid *network.InvalidAttachmentError
			require.ErrorAs(t, err, &invalid)
			assert.Equal(t, tc.wantField, invalid.Field)
			assert.Contains(t, err.Error(), tc.wantField)
		})
	}
}

func TestBuildNADRefusals(t *testing.T) {
	_, err := network.BuildNAD(testID, owner(), network.Attachment{Name: "a", Type: network.TypeBridge, NADName: "other/net"})
	assert.ErrorIs(t, err, network.ErrUserNAD)

	noType := owner()
	noType.TypeMeta = metav1.TypeMeta{}
	_, err = network.BuildNAD(testID, noType, network.Attachment{Name: "a", Type: network.TypeSRIOV})
	assert.ErrorContains(t, err, "TypeMeta")
}

func TestResolveNAD(t *testing.T) {
	tests := []struct{ name, ref, wantNS, wantName string }{
		{"bare name in owner namespace", "net", "team-a", "net"},
		{"namespaced", "infra/net", "infra", "net"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, name := network.ResolveNAD("team-a", tc.ref)
			assert.Equal(t, tc.wantNS, ns)
			assert.Equal(t, tc.wantName, name)
		})
	}
}

func TestMAC(t *testing.T) {
	first := network.MAC("ns", "vm", "nic0")
	assert.Equal(t, first, network.MAC("ns", "vm", "nic0"), "stable across calls")
	// Concatenation must not collide: ("ab","c") vs ("a","bc").
	assert.NotEqual(t, network.MAC("ns", "ab", "c"), network.MAC("ns", "a", "bc"))

	seen := map[string]bool{}
	for i := range 1000 {
		mac := network.MAC("ns", fmt.Sprintf("vm-%d", i/4), fmt.Sprintf("nic%d", i%4))
		require.False(t, seen[mac], "duplicate MAC %s", mac)
		seen[mac] = true
		var b [6]byte
		_, err := fmt.Sscanf(mac, "%02x:%02x:%02x:%02x:%02x:%02x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5])
		require.NoError(t, err)
		assert.Equal(t, byte(0x02), b[0]&0x02, "locally administered: %s", mac)
		assert.Equal(t, byte(0x00), b[0]&0x01, "unicast: %s", mac)
	}
	assert.Len(t, seen, 1000)
}

func TestValidateUserNAD(t *testing.T) {
	// A user NAD needs no bridge name unless a node bridge is asked for.
	require.NoError(t, network.Attachment{Name: "a", Type: network.TypeBridge, NADName: "net"}.Validate())
	err := network.Attachment{Name: "a", Type: network.TypeBridge, NADName: "a/b/c"}.Validate()
	var invalid *network.InvalidAttachmentError
	require.True(t, errors.As(err, &invalid))
	assert.Equal(t, "nadName", invalid.Field)
}

func BenchmarkBuildNAD(b *testing.B) {
	o := owner()
	a := network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "br1", VLAN: 100, MTU: 9000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := network.BuildNAD(testID, o, a); err != nil {
			b.Fatal(err)
		}
	}
}

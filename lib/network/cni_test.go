package network_test

import (
	"context"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// TestUserNADCNIType: a user-named NAD's CNI type is observed; macvlan and
// ipvlan ones (which KubeVirt cannot bind) fail the NIC with
// *UnsupportedCNIError and leave the networks unconfigured; macvtap and
// bridge ones are usable. A macvlan NIC without nadName gets a macvtap NAD.
func TestUserNADCNIType(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	o := newOwner(t, c, "vm")
	configs := map[string]string{
		"br":      `{"cniVersion":"0.3.1","type":"bridge","bridge":"br1"}`,
		"tap":     `{"cniVersion":"0.3.1","name":"tap","type":"macvtap","mtu":1500}`,
		"mv":      `{"cniVersion":"0.3.1","type":"macvlan","master":"eth1","mode":"bridge"}`,
		"ipv":     `{"cniVersion":"0.3.1","name":"ipv","plugins":[{"type":"ipvlan","mode":"l2","master":"ens6"}]}`,
		"on-node": "",
	}
	for name, config := range configs {
		require.NoError(t, c.Create(ctx, &nadv1.NetworkAttachmentDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace},
			Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
		}))
	}
	tests := []struct {
		att         network.Attachment
		wantCNI     string
		unsupported bool
	}{
		{network.Attachment{Name: "a", Type: network.TypeBridge, NADName: "br"}, "bridge", false},
		{network.Attachment{Name: "b", Type: network.TypeMacvlan, NADName: "tap"}, "macvtap", false},
		{network.Attachment{Name: "c", Type: network.TypeMacvlan, NADName: "mv"}, "macvlan", true},
		{network.Attachment{Name: "d", Type: network.TypeBridge, NADName: "ipv"}, "ipvlan", true},
		{network.Attachment{Name: "e", Type: network.TypeBridge, NADName: "on-node"}, "", false},
		{network.Attachment{Name: "f", Type: network.TypeMacvlan, PhysicalInterface: "eth3"}, "macvtap", false},
	}
	for _, tt := range tests {
		t.Run(tt.att.Name+"/"+tt.wantCNI, func(t *testing.T) {
			obs, err := network.Reconcile(ctx, c, testID, o, []network.Attachment{tt.att})
			require.Len(t, obs.NICs, 1)
			n := obs.NICs[0]
			assert.True(t, n.Found, "the NAD exists")
			assert.Equal(t, tt.wantCNI, n.CNIType)
			if !tt.unsupported {
				require.NoError(t, err)
				assert.True(t, obs.Configured())
				return
			}
			var unsupported *network.UnsupportedCNIError
			require.ErrorAs(t, err, &unsupported)
			require.ErrorAs(t, n.Error, &unsupported)
			assert.Equal(t, tt.wantCNI, unsupported.Type)
			assert.Equal(t, o.Namespace, unsupported.Namespace)
			assert.Equal(t, tt.att.NADName, unsupported.Name)
			assert.Equal(t, network.ReasonUnsupportedCNI, n.Reason)
			assert.Contains(t, n.Message, tt.wantCNI+" CNI plugin")
			assert.Contains(t, n.Message, "macvtap", "the message says what to use")
			assert.False(t, obs.Configured())
		})
	}

	// The macvtap NAD written for the macvlan NIC requests the interface's
	// macvtap device-plugin resource.
	nad := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, c.Get(ctx, key(&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: "vm-f"}}), nad))
	assert.Equal(t, "macvtap.network.kubevirt.io/eth3", nad.Annotations[network.AnnotationResourceName])
	typ, err := network.CNIType(nad.Spec.Config)
	require.NoError(t, err)
	assert.Equal(t, network.CNIMacvtap, typ)
}

package controller

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// TestResolveBridges: which NICs a namespace's Wukong may attach, and the
// field each refusal names.
func TestResolveBridges(t *testing.T) {
	scheme := testScheme(t, clientgoscheme.AddToScheme, v1alpha1.AddToScheme)
	ready := []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "SuccessfullyConfigured"}}
	decl := func(name string, spec v1alpha1.NodeBridgeSpec) *v1alpha1.NodeBridge {
		return &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec, Status: v1alpha1.NodeBridgeStatus{Conditions: ready}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"tenant": "a"}}},
		decl("br1", v1alpha1.NodeBridgeSpec{Uplinks: []string{"eth1"}, AllowedVLANs: []v1alpha1.VLANRange{{Min: 100, Max: 199}},
			NodeSelector: map[string]string{"net": "one"}, NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "a"}}}),
		decl("br-b", v1alpha1.NodeBridgeSpec{Uplinks: []string{"eth1"}, NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "b"}}}),
		decl("br-none", v1alpha1.NodeBridgeSpec{Uplinks: []string{"eth1"}}),
		decl("br-all", v1alpha1.NodeBridgeSpec{Uplinks: []string{"eth3"}, NamespaceSelector: &metav1.LabelSelector{}, NodeSelector: map[string]string{"net": "two"}}),
		decl("ovs1", v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeOVS, Uplinks: []string{"eth4"}, NamespaceSelector: &metav1.LabelSelector{}}),
		decl("eth5", v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeMacvtap, NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "a"}},
			NodeSelector: map[string]string{"net": "mv"}}),
		decl("eth6", v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeMacvtap, NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "b"}}}),
		decl("vf-a", v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeSRIOV, ResourceName: "example.com/vf", AllowedVLANs: []v1alpha1.VLANRange{{Min: 100, Max: 199}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "a"}}}),
		decl("vf-b", v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeSRIOV, ResourceName: "example.com/vf-b", AllowedVLANs: []v1alpha1.VLANRange{{Min: 1, Max: 4094}},
			NativeVLAN: ptr.To[int32](9), NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "b"}}}),
		decl("vf-native", v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeSRIOV, ResourceName: "example.com/vf-n", NativeVLAN: ptr.To[int32](30),
			NamespaceSelector: &metav1.LabelSelector{}}),
	).Build()
	r := &WukongReconciler{Client: c}

	tests := []struct {
		name      string
		nic       v1alpha1.NetworkSpec
		wantField string // "" = granted
		wantSel   map[string]string
	}{
		{"declared for this namespace", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1", VLANID: 150, PhysicalInterface: "eth1"}, "", map[string]string{"net": "one"}},
		{"untagged on a declared bridge", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1"}, "", map[string]string{"net": "one"}},
		{"undeclared", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br-x", PhysicalInterface: "eth0"}, "spec.networks[0].bridgeName", nil},
		{"undeclared default bridge br-<name>", v1alpha1.NetworkSpec{Name: "n"}, "spec.networks[0].name", nil},
		{"declared for another namespace", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br-b"}, "spec.networks[0].bridgeName", nil},
		{"declared for no namespace", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br-none"}, "spec.networks[0].bridgeName", nil},
		{"VLAN outside the range", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1", VLANID: 200}, "spec.networks[0].vlanId", nil},
		{"VLAN on an untagged-only bridge", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br-all", VLANID: 5}, "spec.networks[0].vlanId", nil},
		{"uplink mismatch", v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1", PhysicalInterface: "eth0"}, "spec.networks[0].physicalInterface", nil},
		{"ovs NIC on a linux bridge", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeOVS, BridgeName: "br1"}, "spec.networks[0].type", nil},
		{"ovs NIC on an ovs bridge", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeOVS, BridgeName: "ovs1"}, "", nil},
		{"nadName needs no bridge", v1alpha1.NetworkSpec{Name: "n", NADName: "x"}, "", nil},
		// macvtap: the guest sits on a node interface only an
		// administrator may hand out (macvtap-cni's device plugin offers
		// every link by default).
		{"macvlan on an undeclared interface", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: "eth0"}, "spec.networks[0].physicalInterface", nil},
		{"macvlan on an interface declared for another namespace", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: "eth6"}, "spec.networks[0].physicalInterface", nil},
		{"macvlan on a name declared as a bridge", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: "br1"}, "spec.networks[0].physicalInterface", nil},
		{"macvlan on a declared interface", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: "eth5"}, "", map[string]string{"net": "mv"}},
		{"macvlan naming its interface by bridgeName", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeMacvlan, BridgeName: "eth5"}, "", map[string]string{"net": "mv"}},
		// SR-IOV: the pool and the VLANs are the administrator's.
		{"sriov on an undeclared resource", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/other", VLANID: 150}, "spec.networks[0].resourceName", nil},
		{"sriov default resource undeclared", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, VLANID: 150}, "spec.networks[0].resourceName", nil},
		{"sriov on a resource declared for another namespace", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/vf-b", VLANID: 150}, "spec.networks[0].resourceName", nil},
		{"sriov on an allowed VLAN", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/vf", VLANID: 150}, "", nil},
		{"sriov on a VLAN not allowed", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/vf", VLANID: 50}, "spec.networks[0].vlanId", nil},
		{"sriov untagged without a native VLAN", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/vf"}, "spec.networks[0].vlanId", nil},
		{"sriov untagged with a native VLAN", v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/vf-n"}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "vm"}}
			w.Spec.Networks = []v1alpha1.NetworkSpec{tc.nic}
			s := &scope{w: w}
			require.NoError(t, r.resolveBridges(context.Background(), s))
			if tc.wantField == "" {
				assert.Empty(t, s.problems)
				assert.False(t, s.bridgeBlocked[0])
				assert.Equal(t, tc.wantSel, s.bridgeNodeSelector)
				return
			}
			require.Len(t, s.problems, 1)
			p := s.problems[0]
			assert.Equal(t, tc.wantField, p.Field)
			assert.Equal(t, v1alpha1.ReasonBridgeNotAllowed, p.Reason)
			assert.Equal(t, v1alpha1.NetworksConfiguredCondition, p.Condition)
			assert.True(t, s.bridgeBlocked[0])
			assert.Empty(t, s.bridges)
		})
	}

	t.Run("the port's VLAN: vlanId, else the native VLAN", func(t *testing.T) {
		for _, tc := range []struct {
			nic  v1alpha1.NetworkSpec
			want int32
		}{
			{v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1", VLANID: 150}, 150},
			{v1alpha1.NetworkSpec{Name: "n", BridgeName: "br1"}, v1alpha1.DefaultNativeVLAN},
			{v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeOVS, BridgeName: "ovs1"}, v1alpha1.DefaultNativeVLAN},
			{v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: "example.com/vf-n"}, 30},
			{v1alpha1.NetworkSpec{Name: "n", Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: "eth5"}, 0},
		} {
			w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "vm"}}
			w.Spec.Networks = []v1alpha1.NetworkSpec{tc.nic}
			s := &scope{w: w}
			require.NoError(t, r.resolveBridges(context.Background(), s))
			require.Empty(t, s.problems)
			require.Len(t, s.bridges, 1)
			assert.Equal(t, tc.want, s.bridges[0].VLAN, "%+v", tc.nic)
			a := network.Attachment{Name: "n", Type: network.Type(mapping.NetworkType(tc.nic))}
			applyGrant(&a, s.bridges[0])
			assert.Equal(t, int(tc.want), a.VLAN)
		}
	})

	t.Run("same message for an SR-IOV resource undeclared and declared elsewhere", func(t *testing.T) {
		msg := func(resource string) string {
			w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "vm"}}
			w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "n", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: resource, VLANID: 150}}
			s := &scope{w: w}
			require.NoError(t, r.resolveBridges(context.Background(), s))
			require.Len(t, s.problems, 1)
			return s.problems[0].Message
		}
		assert.Equal(t, msg("example.com/x"), strings.ReplaceAll(msg("example.com/vf-b"), "example.com/vf-b", "example.com/x"))
	})

	t.Run("two bridges on disjoint nodes", func(t *testing.T) {
		w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "vm"}}
		w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "a", BridgeName: "br1"}, {Name: "b", BridgeName: "br-all"}}
		s := &scope{w: w}
		require.NoError(t, r.resolveBridges(context.Background(), s))
		require.Len(t, s.problems, 1)
		assert.Equal(t, "spec.networks[1].bridgeName", s.problems[0].Field)
		assert.Contains(t, s.problems[0].Message, "no node has both")
	})

	t.Run("same message for undeclared and declared elsewhere", func(t *testing.T) {
		msg := func(bridge string) string {
			w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "vm"}}
			w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "n", BridgeName: bridge}}
			s := &scope{w: w}
			require.NoError(t, r.resolveBridges(context.Background(), s))
			require.Len(t, s.problems, 1)
			return s.problems[0].Message
		}
		assert.Equal(t, msg("br-x"), strings.ReplaceAll(msg("br-b"), "br-b", "br-x"))
	})
}

package controller

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

func TestBridgeName(t *testing.T) {
	for _, tc := range []struct {
		nic  v1alpha1.NetworkSpec
		want string
	}{
		{v1alpha1.NetworkSpec{Name: "lan", BridgeName: "br1"}, "br1"},
		{v1alpha1.NetworkSpec{Name: "lan"}, "br-lan"},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeBridge}, "br-lan"},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeOVS, BridgeName: "br-int"}, "br-int"},
		{v1alpha1.NetworkSpec{Name: "lan", NADName: "x"}, ""},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeMacvlan, BridgeName: "eth1"}, "eth1"},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeMacvlan, BridgeName: "eth1", PhysicalInterface: "eth2"}, "eth2"},
		{v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeSRIOV}, ""},
	} {
		assert.Equal(t, tc.want, bridgeName(tc.nic), "%+v", tc.nic)
	}
}

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
	assert.Equal(t, "10-20,30", vlanList(d))
	assert.True(t, vlanAllowed(d, 30))
	assert.True(t, vlanAllowed(d, 15))
	assert.False(t, vlanAllowed(d, 25))
}

// TestResolveBridges: which NICs a namespace's Wukong may attach, and the
// field each refusal names.
func TestResolveBridges(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, v1alpha1.AddToScheme(scheme))
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
			assert.Equal(t, tc.want, s.bridges[0].vlan, "%+v", tc.nic)
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

func TestBridgeReady(t *testing.T) {
	d := &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	ready, stalled, msg := bridgeReady(d)
	assert.False(t, ready)
	assert.Empty(t, stalled)
	assert.Contains(t, msg, "not reported")

	d.Status.ObservedGeneration = 1
	d.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Message: "2/2 nodes"}}
	ready, _, _ = bridgeReady(d)
	assert.False(t, ready, "a Ready of an older generation does not count")

	d.Status.ObservedGeneration = 2
	ready, _, _ = bridgeReady(d)
	assert.True(t, ready)

	d.Status.Conditions = []metav1.Condition{{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonNameConflict, Message: "policy taken"}}
	ready, stalled, msg = bridgeReady(d)
	assert.False(t, ready)
	assert.Equal(t, v1alpha1.ReasonNameConflict, stalled)
	assert.Equal(t, "policy taken", msg)

	d.Status.Conditions = append(d.Status.Conditions, metav1.Condition{Type: v1alpha1.DegradedCondition, Status: metav1.ConditionTrue, Message: "rolled back"})
	ready, stalled, msg = bridgeReady(d)
	assert.False(t, ready)
	assert.Equal(t, v1alpha1.ReasonBridgeDegraded, stalled)
	assert.Equal(t, "rolled back", msg)
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
	c := fake.NewClientBuilder().WithScheme(scheme).WithIndex(&v1alpha1.Wukong{}, indexBridges, bridgesOf).WithObjects(
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
	r := &NodeBridgeReconciler{Client: c}
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

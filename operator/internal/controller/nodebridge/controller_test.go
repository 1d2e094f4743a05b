package nodebridge

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/nodenet"
)

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
	c := fake.NewClientBuilder().WithScheme(scheme).WithIndex(&v1alpha1.Wukong{}, nodenet.IndexField, nodenet.IndexWukong).WithObjects(
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
	r := &Reconciler{Client: c}
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

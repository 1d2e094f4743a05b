package manager

import (
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/controller"
)

// TestClusterIdentity: the identity is kube-system's UID, which the API
// server made.
func TestClusterIdentity(t *testing.T) {
	env := startEnv(t)
	id, err := ClusterIdentity(t.Context(), env.Client)
	require.NoError(t, err)
	ns := &corev1.Namespace{}
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Name: "kube-system"}, ns))
	assert.Equal(t, string(ns.UID), id)
	assert.NotEmpty(t, id)
}

// TestExistingVMKeepsMAC (issue #33, item 7): a VirtualMachine written by
// an operator without a cluster identity (MACs from names alone) keeps its
// NIC's MAC when an operator with one reconciles it, in the VM and in the
// Wukong's status; a NIC added afterwards gets the cluster's MAC
// (network.ClusterMAC). Against a real API server with KubeVirt's CRDs.
func TestExistingVMKeepsMAC(t *testing.T) {
	env := startEnv(t)
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "macs-"}}
	require.NoError(t, env.Client.Create(ctx, ns))
	require.NoError(t, env.Client.Create(ctx, &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "lan-net"},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","name":"lan-net","type":"bridge","bridge":"br-user"}`}}))
	w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "vm"}, Spec: v1alpha1.WukongSpec{
		CPU: 1, Memory: resource.MustParse("1Gi"), OSImage: "quay.io/containerdisks/fedora:40",
		Networks: []v1alpha1.NetworkSpec{{Name: "lan", NADName: "lan-net"}},
	}}
	require.NoError(t, env.Client.Create(ctx, w))
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w)}
	macs := func() map[string]string {
		t.Helper()
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(t, env.Client.Get(ctx, req.NamespacedName, vm))
		out := map[string]string{}
		for _, i := range vm.Spec.Template.Spec.Domain.Devices.Interfaces {
			out[i.Name] = i.MacAddress
		}
		return out
	}
	pass := func(r *controller.WukongReconciler) {
		t.Helper()
		_, err := r.Reconcile(ctx, req)
		require.NoError(t, err)
	}

	old := &controller.WukongReconciler{Client: env.Client}
	pass(old)
	legacy := network.MAC(ns.Name, "vm", "lan")
	require.Equal(t, legacy, macs()["lan"], "the old operator's MAC, from names alone")

	upgraded := &controller.WukongReconciler{Client: env.Client, ClusterID: "cluster-b"}
	pass(upgraded)
	assert.Equal(t, legacy, macs()["lan"], "the existing NIC keeps its MAC after the upgrade")
	live := &v1alpha1.Wukong{}
	require.NoError(t, env.Client.Get(ctx, req.NamespacedName, live))
	for _, n := range live.Status.Networks {
		if n.Name == "lan" {
			assert.Equal(t, legacy, n.MACAddress, "status shows the MAC the VM has")
		}
	}

	live.Spec.Networks = append(live.Spec.Networks, v1alpha1.NetworkSpec{Name: "wan", NADName: "lan-net"})
	require.NoError(t, env.Client.Update(ctx, live))
	pass(upgraded)
	got := macs()
	assert.Equal(t, legacy, got["lan"], "still kept")
	assert.Equal(t, network.ClusterMAC("cluster-b", ns.Name, "vm", "wan"), got["wan"], "a new NIC gets the cluster's MAC")
	assert.NotEqual(t, network.MAC(ns.Name, "vm", "wan"), got["wan"])
}

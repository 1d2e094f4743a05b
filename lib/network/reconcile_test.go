package network_test

import (
	"context"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/testenv"
)

func key(o client.Object) types.NamespacedName { return client.ObjectKeyFromObject(o) }

func TestReconcileIdempotent(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	o := newOwner(t, c, "vm1")
	atts := []network.Attachment{
		{Name: "data", Type: network.TypeBridge, Bridge: "bridem", VLAN: 10, ResourceName: "bridge.network.kubevirt.io/bridem"},
		{Name: "mv", Type: network.TypeMacvlan, PhysicalInterface: "eth2"},
		{Name: "fast", Type: network.TypeSRIOV, VLAN: 5},
		{Name: "ovs", Type: network.TypeOVS, Bridge: "br-int"},
	}
	obs, err := network.Reconcile(ctx, c, testID, o, atts)
	require.NoError(t, err)
	require.Len(t, obs.NICs, 4)
	for _, n := range obs.NICs {
		assert.True(t, n.Found, n.Name)
		assert.False(t, n.UserProvided)
		assert.Equal(t, o.Namespace, n.NADNamespace)
		assert.Equal(t, "vm1-"+n.Name, n.NADName)
		assert.Equal(t, network.MAC(o.Namespace, "vm1", n.Name), n.MAC)
	}
	assert.True(t, obs.Configured())

	versions := map[string]string{}
	for _, n := range obs.NICs {
		nad := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: n.NADNamespace, Name: n.NADName}, nad))
		require.Len(t, nad.OwnerReferences, 1)
		assert.Equal(t, "ConfigMap", nad.OwnerReferences[0].Kind)
		assert.Equal(t, o.UID, nad.OwnerReferences[0].UID)
		versions[n.NADName] = nad.ResourceVersion
		if n.Name == "data" {
			assert.Equal(t, "bridge.network.kubevirt.io/bridem", nad.Annotations[network.AnnotationResourceName], "bridge-marker resource")
		}
	}

	// Second pass: nothing written.
	_, err = network.Reconcile(ctx, c, testID, o, atts)
	require.NoError(t, err)
	for name, rv := range versions {
		nad := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: name}, nad))
		assert.Equal(t, rv, nad.ResourceVersion, name)
	}
}

// TestNADNeverAdopted: a NAD named <owner>-<nic> that someone else created
// is left as it was, the NIC reports NameConflict; one left by a deleted
// owner of the same name reports WaitingForPredecessor.
func TestNADNeverAdopted(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	o := newOwner(t, c, "vm")
	foreign := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "vm-lan", Namespace: o.Namespace},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"bridge","bridge":"theirs"}`},
	}
	require.NoError(t, c.Create(ctx, foreign))
	old := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "vm-old", Namespace: o.Namespace, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: "vm", UID: "uid-of-a-deleted-vm", Controller: ptr.To(true)}}},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"bridge","bridge":"old"}`},
	}
	require.NoError(t, c.Create(ctx, old))

	obs, err := network.Reconcile(ctx, c, testID, o, []network.Attachment{
		{Name: "lan", Type: network.TypeBridge, Bridge: "mine"},
		{Name: "old", Type: network.TypeBridge, Bridge: "mine"},
		{Name: "ok", Type: network.TypeBridge, Bridge: "mine"},
	})
	var conflict *apply.ConflictError
	require.ErrorAs(t, err, &conflict)
	assert.Equal(t, network.ReasonNameConflict, obs.NICs[0].Reason)
	assert.False(t, obs.NICs[0].Found)
	assert.Equal(t, network.ReasonPredecessor, obs.NICs[1].Reason)
	assert.True(t, obs.NICs[2].Found)
	assert.False(t, obs.Configured())

	for _, want := range []*nadv1.NetworkAttachmentDefinition{foreign, old} {
		live := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(t, c.Get(ctx, key(want), live))
		assert.Equal(t, want.ResourceVersion, live.ResourceVersion, "untouched")
		assert.Equal(t, want.Spec.Config, live.Spec.Config)
		assert.Equal(t, want.OwnerReferences, live.OwnerReferences)
	}
}

// TestUserNAD: a user NAD in the owner's namespace is used as is; one in
// another namespace is refused with the same error whether or not it exists,
// unless that namespace is allowed.
func TestUserNAD(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	o := newOwner(t, c, "vm")
	other := "infra-" + o.Namespace
	require.NoError(t, c.Create(ctx, corev1Namespace{}.ns(other)))
	corp := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "corp", Namespace: other, Labels: map[string]string{"owner": "netops"}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"corp"}`},
	}
	require.NoError(t, c.Create(ctx, corp))
	local := userNAD(t, c, o.Namespace, "local", `{"cniVersion":"0.3.1","type":"bridge","bridge":"local"}`)

	atts := []network.Attachment{
		{Name: "local", Type: network.TypeBridge, NADName: "local"},
		{Name: "gone", Type: network.TypeBridge, NADName: "missing"},
		{Name: "corp", Type: network.TypeBridge, NADName: other + "/corp"},
		{Name: "probe", Type: network.TypeBridge, NADName: other + "/does-not-exist"},
	}
	obs, err := network.Reconcile(ctx, c, testID, o, atts)
	require.Error(t, err)
	assert.True(t, obs.NICs[0].Found)
	assert.Equal(t, o.Namespace+"/local", obs.NICs[0].NetworkName())
	assert.Equal(t, network.ReasonNADNotFound, obs.NICs[1].Reason)
	for _, n := range obs.NICs[2:] {
		assert.False(t, n.Found, n.Name)
		assert.Equal(t, network.ReasonNamespaceNotAllowed, n.Reason, n.Name)
		var notAllowed *network.NamespaceNotAllowedError
		require.ErrorAs(t, n.Error, &notAllowed)
	}
	// Identical answers for an existing and a missing NAD (up to the NIC name).
	assert.Equal(t, obs.NICs[2].Message[len(`NIC "corp"`):], obs.NICs[3].Message[len(`NIC "probe"`):])

	// Allowed as a global namespace: used as is.
	obs, err = network.Reconcile(ctx, c, testID, o, atts[2:3], network.WithGlobalNamespaces(other))
	require.NoError(t, err)
	assert.True(t, obs.NICs[0].Found)
	assert.Equal(t, other+"/corp", obs.NICs[0].NetworkName())

	// Nothing created for user NICs; the user NADs are untouched.
	list := &nadv1.NetworkAttachmentDefinitionList{}
	require.NoError(t, c.List(ctx, list, client.InNamespace(o.Namespace)))
	assert.Len(t, list.Items, 1)
	for _, want := range []*nadv1.NetworkAttachmentDefinition{corp, local} {
		live := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(t, c.Get(ctx, key(want), live))
		assert.Equal(t, want.ResourceVersion, live.ResourceVersion)
	}
}

// userNAD creates a NetworkAttachmentDefinition a user wrote (no labels of
// Wukong's) in namespace ns with CNI config and returns it as created.
func userNAD(t *testing.T, c client.Client, ns, name, config string) *nadv1.NetworkAttachmentDefinition {
	t.Helper()
	nad := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
	require.NoError(t, c.Create(context.Background(), nad))
	return nad
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
		userNAD(t, c, o.Namespace, name, config)
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

func TestMultusNotInstalled(t *testing.T) {
	ctx := context.Background()
	// A second API server without any network CRD.
	env2, err := testenv.Start(scheme, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = env2.Stop() })
	c := env2.Client

	o := newOwner(t, c, "vm")
	obs, err := network.Reconcile(ctx, c, testID, o, []network.Attachment{{Name: "mv", Type: network.TypeMacvlan, PhysicalInterface: "eth2"}})
	require.ErrorIs(t, err, network.ErrMultusNotInstalled)
	assert.Equal(t, network.ReasonMultusNotInstalled, obs.NICs[0].Reason)

	done, _, err := network.RemovePolicy(ctx, c, testID, o, network.Bridge{Name: "br1", Uplinks: []string{"eth1"}})
	require.NoError(t, err)
	assert.True(t, done, "nothing to remove without NMState")
	_, err = network.ReconcilePolicy(ctx, c, testID, o, network.Bridge{Name: "br1", Uplinks: []string{"eth1"}})
	require.ErrorIs(t, err, network.ErrNMStateNotInstalled)
	f, ok := apply.AsFailure(err)
	require.True(t, ok, "an *apply.Failure")
	assert.Equal(t, &apply.Failure{Reason: network.ReasonNMStateNotInstalled, Stalled: true, Subject: "br1", Err: f.Err}, f)
}

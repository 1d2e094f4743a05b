package network_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply/testenv"
	"github.com/novasphere/wukong/lib/network"
)

func getPolicy(t *testing.T, c client.Client, bridge string) *nmstatev1.NodeNetworkConfigurationPolicy {
	t.Helper()
	p := &nmstatev1.NodeNetworkConfigurationPolicy{}
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Name: network.PolicyName(bridge)}, p))
	return p
}

func key(o client.Object) types.NamespacedName { return client.ObjectKeyFromObject(o) }

func TestReconcileIdempotent(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	o := newOwner(t, c, "vm1")
	t.Cleanup(func() { _ = network.Release(ctx, c, o) })
	atts := []network.Attachment{
		{Name: "data", Type: network.TypeBridge, Bridge: "bridem", PhysicalInterface: "eth1", VLAN: 10},
		{Name: "mv", Type: network.TypeMacvlan, PhysicalInterface: "eth2"},
		{Name: "fast", Type: network.TypeSRIOV, VLAN: 5},
		{Name: "ovs", Type: network.TypeOVS, Bridge: "br-int"},
	}
	obs, err := network.Reconcile(ctx, c, o, atts)
	require.NoError(t, err)
	require.Len(t, obs.NICs, 4)
	for _, n := range obs.NICs {
		assert.True(t, n.Found, n.Name)
		assert.False(t, n.UserProvided)
		assert.Equal(t, o.Namespace, n.NADNamespace)
		assert.Equal(t, "vm1-"+n.Name, n.NADName)
		assert.Equal(t, network.MAC(o.Namespace, "vm1", n.Name), n.MAC)
	}
	require.Len(t, obs.Bridges, 1)
	assert.Equal(t, "bridem", obs.Bridges[0].Bridge)
	assert.Equal(t, []string{o.Namespace + "/vm1"}, obs.Bridges[0].Holders)
	assert.Equal(t, network.ReasonPolicyPending, obs.Bridges[0].Reason)
	assert.False(t, obs.Configured(), "policy not Available yet")

	versions := map[string]string{}
	for _, n := range obs.NICs {
		nad := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: n.NADNamespace, Name: n.NADName}, nad))
		require.Len(t, nad.OwnerReferences, 1)
		assert.Equal(t, "ConfigMap", nad.OwnerReferences[0].Kind)
		assert.Equal(t, o.UID, nad.OwnerReferences[0].UID)
		versions[n.NADName] = nad.ResourceVersion
	}
	policy := getPolicy(t, c, "bridem")
	assert.Equal(t, "true", policy.Annotations[network.AnnotationTrunk])

	// Second pass: nothing written.
	_, err = network.Reconcile(ctx, c, o, atts)
	require.NoError(t, err)
	for name, rv := range versions {
		nad := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: name}, nad))
		assert.Equal(t, rv, nad.ResourceVersion, name)
	}
	assert.Equal(t, policy.ResourceVersion, getPolicy(t, c, "bridem").ResourceVersion)

	// NMState reports Available: the observation follows.
	policy.Status.Conditions.Set("Available", "True", "SuccessfullyConfigured", "1/1 nodes successfully configured")
	require.NoError(t, c.Status().Update(ctx, policy))
	obs, err = network.Reconcile(ctx, c, o, atts)
	require.NoError(t, err)
	assert.True(t, obs.Bridges[0].Available)
	assert.Equal(t, "SuccessfullyConfigured", obs.Bridges[0].Reason)
	assert.True(t, obs.Configured())

	// Dropping the bridge NIC releases the policy (last holder: deleted).
	_, err = network.Reconcile(ctx, c, o, atts[1:2])
	require.NoError(t, err)
	err = c.Get(ctx, client.ObjectKey{Name: network.PolicyName("bridem")}, &nmstatev1.NodeNetworkConfigurationPolicy{})
	assert.True(t, apierrors.IsNotFound(err), "policy should be gone, got %v", err)
}

func TestSharedPolicy(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	a := newOwner(t, c, "a")
	b := newOwner(t, c, "b")
	nic := network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "brshared", PhysicalInterface: "eth1"}
	vlanNIC := nic
	vlanNIC.VLAN = 20

	_, err := network.Reconcile(ctx, c, a, []network.Attachment{nic})
	require.NoError(t, err)
	assert.Equal(t, "false", getPolicy(t, c, "brshared").Annotations[network.AnnotationTrunk])
	obs, err := network.Reconcile(ctx, c, b, []network.Attachment{vlanNIC})
	require.NoError(t, err)
	assert.Equal(t, []string{a.Namespace + "/a", b.Namespace + "/b"}, obs.Bridges[0].Holders)
	p := getPolicy(t, c, "brshared")
	assert.Equal(t, []types.NamespacedName{key(a), key(b)}, network.Holders(p))
	assert.Equal(t, "true", p.Annotations[network.AnnotationTrunk], "a VLAN holder makes the uplink a trunk")

	// a reconciles again without VLAN: the trunk stays for b.
	_, err = network.Reconcile(ctx, c, a, []network.Attachment{nic})
	require.NoError(t, err)
	assert.Equal(t, "true", getPolicy(t, c, "brshared").Annotations[network.AnnotationTrunk])

	// A third owner with another uplink conflicts and is not recorded.
	x := newOwner(t, c, "x")
	other := nic
	other.PhysicalInterface = "eth9"
	obs, err = network.Reconcile(ctx, c, x, []network.Attachment{other})
	var conflict *network.BridgeConflictError
	require.ErrorAs(t, err, &conflict)
	assert.Equal(t, "physicalInterface", conflict.Field)
	assert.Equal(t, "eth1", conflict.Have)
	assert.Equal(t, "eth9", conflict.Want)
	assert.Equal(t, network.ReasonBridgeConflict, obs.NICs[0].Reason)
	assert.True(t, obs.NICs[0].Found, "the NAD is still applied")
	assert.Len(t, network.Holders(getPolicy(t, c, "brshared")), 2)

	require.NoError(t, network.Release(ctx, c, a))
	assert.Equal(t, []types.NamespacedName{key(b)}, network.Holders(getPolicy(t, c, "brshared")))
	require.NoError(t, network.Release(ctx, c, a), "releasing twice is fine")
	require.NoError(t, network.Release(ctx, c, b))
	err = c.Get(ctx, client.ObjectKey{Name: network.PolicyName("brshared")}, &nmstatev1.NodeNetworkConfigurationPolicy{})
	assert.True(t, apierrors.IsNotFound(err), "policy should be gone, got %v", err)
}

func TestConcurrentHolders(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	const n = 6
	owners := make([]client.Object, n)
	for i := range owners {
		owners[i] = newOwner(t, c, fmt.Sprintf("c%d", i))
	}
	nic := network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "brrace", PhysicalInterface: "eth1"}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, o := range owners {
		wg.Go(func() { _, errs[i] = network.Reconcile(ctx, c, o, []network.Attachment{nic}) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, network.Holders(getPolicy(t, c, "brrace")), n)

	// Concurrent releases: the policy goes only once all are released.
	for _, o := range owners {
		wg.Go(func() { assert.NoError(t, network.Release(ctx, c, o)) })
	}
	wg.Wait()
	err := c.Get(ctx, client.ObjectKey{Name: network.PolicyName("brrace")}, &nmstatev1.NodeNetworkConfigurationPolicy{})
	assert.True(t, apierrors.IsNotFound(err), "policy should be gone, got %v", err)
}

func TestForeignPolicy(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	foreign := network.BuildPolicy(network.Bridge{Name: "brforeign", PhysicalInterface: "eth3"})
	foreign.Labels = map[string]string{"team": "infra"}
	foreign.Annotations = nil
	require.NoError(t, c.Create(ctx, foreign))
	rv := foreign.ResourceVersion

	o := newOwner(t, c, "vm")
	obs, err := network.Reconcile(ctx, c, o, []network.Attachment{
		{Name: "data", Type: network.TypeBridge, Bridge: "brforeign", PhysicalInterface: "eth3"},
		{Name: "mv", Type: network.TypeMacvlan, PhysicalInterface: "eth2"},
	})
	var fe *network.ForeignPolicyError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "wukong-br-brforeign", fe.Name)
	assert.Equal(t, network.ReasonForeignPolicy, obs.NICs[0].Reason)
	assert.Equal(t, network.ReasonForeignPolicy, obs.Bridges[0].Reason)
	assert.NoError(t, obs.NICs[1].Error)
	assert.True(t, obs.NICs[1].Found)

	require.NoError(t, network.Release(ctx, c, o))
	live := getPolicy(t, c, "brforeign")
	assert.Equal(t, rv, live.ResourceVersion, "foreign policy untouched")
	assert.Empty(t, live.Annotations[network.AnnotationHolders])
}

func TestUserNAD(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	o := newOwner(t, c, "vm")
	require.NoError(t, c.Create(ctx, corev1Namespace{}.ns("infra-"+o.Namespace)))
	user := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "corp", Namespace: "infra-" + o.Namespace, Labels: map[string]string{"owner": "netops"}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"corp"}`},
	}
	require.NoError(t, c.Create(ctx, user))
	rv := user.ResourceVersion

	atts := []network.Attachment{
		{Name: "corp", Type: network.TypeBridge, NADName: user.Namespace + "/corp"},
		{Name: "gone", Type: network.TypeBridge, NADName: "missing"},
	}
	obs, err := network.Reconcile(ctx, c, o, atts)
	var nf *network.NADNotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, network.NADNotFoundError{NIC: "gone", Namespace: o.Namespace, Name: "missing"}, *nf)

	assert.True(t, obs.NICs[0].UserProvided)
	assert.True(t, obs.NICs[0].Found)
	assert.NoError(t, obs.NICs[0].Error)
	assert.Equal(t, user.Namespace+"/corp", obs.NICs[0].NetworkName())
	assert.True(t, obs.NICs[1].UserProvided)
	assert.False(t, obs.NICs[1].Found)
	assert.Equal(t, network.ReasonNADNotFound, obs.NICs[1].Reason)
	assert.Contains(t, obs.NICs[1].Message, "missing")

	// Nothing created for user NICs, and the user NAD is untouched even after release.
	list := &nadv1.NetworkAttachmentDefinitionList{}
	require.NoError(t, c.List(ctx, list, client.InNamespace(o.Namespace)))
	assert.Empty(t, list.Items)
	require.NoError(t, network.Release(ctx, c, o))
	live := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, c.Get(ctx, key(user), live))
	assert.Equal(t, rv, live.ResourceVersion)
	assert.Equal(t, user.Spec.Config, live.Spec.Config)
}

func TestNMStateNotInstalled(t *testing.T) {
	ctx := context.Background()
	// A second API server with only the NAD CRD installed.
	dir := t.TempDir()
	crds, err := testenv.CRDs()
	require.NoError(t, err)
	copyFile(t, crds+"/k8s.cni.cncf.io_networkattachmentdefinitions.yaml", dir+"/nad.yaml")
	env2, err := testenv.Start(scheme, dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = env2.Stop() })
	c := env2.Client

	o := newOwner(t, c, "vm")
	obs, err := network.Reconcile(ctx, c, o, []network.Attachment{
		{Name: "data", Type: network.TypeBridge, Bridge: "br1", PhysicalInterface: "eth1"},
		{Name: "mv", Type: network.TypeMacvlan, PhysicalInterface: "eth2"},
		{Name: "plain", Type: network.TypeBridge, Bridge: "br0"},
	})
	require.ErrorIs(t, err, network.ErrNMStateNotInstalled)
	assert.Equal(t, network.ReasonNMStateNotInstalled, obs.NICs[0].Reason)
	assert.ErrorIs(t, obs.NICs[0].Error, network.ErrNMStateNotInstalled)
	assert.Equal(t, network.ReasonNMStateNotInstalled, obs.Bridges[0].Reason)
	for _, n := range obs.NICs[1:] {
		assert.NoError(t, n.Error, n.Name)
		assert.True(t, n.Found, n.Name)
	}
	nad := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: "vm-mv"}, nad))
	require.NoError(t, network.Release(ctx, c, o), "nothing to release without NMState")
	assert.False(t, errors.Is(network.Release(ctx, c, o), network.ErrNMStateNotInstalled))
}

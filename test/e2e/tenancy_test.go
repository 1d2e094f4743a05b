package e2e_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// tenant is a user who may edit objects in one namespace only: bound there
// to the standard `edit` ClusterRole plus a Role for Wukongs, as a platform
// team would set up a tenant. It returns a client impersonating that user.
func tenant(t *testing.T, ns, user string) client.Client {
	t.Helper()
	ctx := ctxT(t)
	require.NoError(t, k.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wukong-tenant"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"wukongs", "wukongs/status"}, Verbs: []string{"*"}}},
	}))
	for _, ref := range []rbacv1.RoleRef{
		{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "wukong-tenant"},
	} {
		require.NoError(t, k.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + strings.ToLower(ref.Kind)},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
			RoleRef:    ref,
		}))
	}
	cfg := rest.CopyConfig(restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)
	return c
}

// stalledMessage waits until the Wukong is Stalled for reason naming field
// and returns its Ready message.
func stalledMessage(t *testing.T, c client.Client, nn types.NamespacedName, field, reason string) string {
	t.Helper()
	var msg string
	eventually(t, 1, func(ct *assert.CollectT) {
		w := getWukong(ct, c, nn)
		stalled := cond(w, v1alpha1.StalledCondition)
		ready := cond(w, v1alpha1.ReadyCondition)
		if assert.NotNil(ct, stalled, "Stalled") && assert.NotNil(ct, ready, "Ready") {
			assert.Equal(ct, metav1.ConditionTrue, stalled.Status)
			assert.Equal(ct, reason, stalled.Reason)
			assert.Contains(ct, stalled.Message, field)
			assert.Equal(ct, v1alpha1.PhaseError, w.Status.Phase)
			msg = ready.Message
		}
	}, "%s to be Stalled (%s) naming %s", nn, reason, field)
	// No VirtualMachine was made for it (one of that name may be someone
	// else's, never this Wukong's).
	vm := &kubevirtv1.VirtualMachine{}
	if err := k.Get(ctxT(t), nn, vm); err == nil {
		ref := metav1.GetControllerOf(vm)
		assert.True(t, ref == nil || ref.Kind != "Wukong", "VirtualMachine %s must not be controlled by the Wukong", nn)
	} else {
		require.True(t, apierrors.IsNotFound(err), err)
	}
	return msg
}

func declareNodeBridge(t *testing.T, name string, spec v1alpha1.NodeBridgeSpec) *v1alpha1.NodeBridge {
	t.Helper()
	d := &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(t, d)
	t.Cleanup(func() { _ = k.Delete(context.Background(), d) })
	return d
}

// TestTenantNodeBridges: a tenant reaches only the node bridges an
// administrator declared for its namespace, within the declared VLANs and
// uplinks; everything else is Stalled naming the field, with no policy and
// no NetworkAttachmentDefinition written, and the same message whether the
// bridge is undeclared or declared for someone else.
func TestTenantNodeBridges(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD, kindNNCP)
	needSecondaryNICGuests(t)
	if skipBridges {
		t.Skip("E2E_SKIP_NODE_BRIDGES: this cluster's nodes cannot configure bridges")
	}
	t.Parallel()
	sfx := randSuffix()
	teamA, teamB := newNamespace(t), newNamespace(t)
	alice := tenant(t, teamA, "alice-"+sfx)
	bob := tenant(t, teamB, "bob-"+sfx)
	label := "tenant.e2e.novasphere.dev/" + sfx
	nsB := &corev1.Namespace{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: teamB}, nsB))
	nsB.Labels[label] = "b"
	require.NoError(t, k.Update(ctxT(t), nsB))

	// The tenant cannot declare node bridges itself.
	err := alice.Create(ctxT(t), &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: "evil" + sfx[:4]},
		Spec: v1alpha1.NodeBridgeSpec{Uplinks: []string{"eth0"}, NamespaceSelector: &metav1.LabelSelector{}}})
	require.True(t, apierrors.IsForbidden(err), "a tenant may not create a NodeBridge: %v", err)

	declared := "tb" + sfx
	declareNodeBridge(t, declared, v1alpha1.NodeBridgeSpec{
		Uplinks: []string{"eth1"}, AllowedVLANs: []v1alpha1.VLANRange{{Min: 100, Max: 199}},
		NodeSelector:      map[string]string{"kubernetes.io/os": "linux"},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: "b"}},
	})
	undeclared := "tu" + sfx

	nicWukong := func(ns, name string, n v1alpha1.NetworkSpec) *v1alpha1.Wukong {
		w := newWukong(ns, name)
		w.Spec.Networks = []v1alpha1.NetworkSpec{n}
		return w
	}
	// Team A asks for a bridge over the nodes' primary NIC, undeclared.
	take := nicWukong(teamA, "take", v1alpha1.NetworkSpec{Name: "wan", Type: v1alpha1.NetworkTypeBridge, BridgeName: undeclared, PhysicalInterface: "eth0"})
	require.NoError(t, alice.Create(ctxT(t), take))
	// Team A asks for team B's bridge.
	steal := nicWukong(teamA, "steal", v1alpha1.NetworkSpec{Name: "wan", Type: v1alpha1.NetworkTypeBridge, BridgeName: declared})
	require.NoError(t, alice.Create(ctxT(t), steal))
	// Team B, allowed, but outside the declaration.
	vlan := nicWukong(teamB, "vlan", v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeBridge, BridgeName: declared, VLANID: 300})
	require.NoError(t, bob.Create(ctxT(t), vlan))
	uplink := nicWukong(teamB, "uplink", v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeBridge, BridgeName: declared, PhysicalInterface: "eth0"})
	require.NoError(t, bob.Create(ctxT(t), uplink))
	ovs := nicWukong(teamB, "ovs", v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeOVS, BridgeName: declared})
	require.NoError(t, bob.Create(ctxT(t), ovs))
	// Team B, within the declaration.
	ok := nicWukong(teamB, "ok", v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeBridge, BridgeName: declared, PhysicalInterface: "eth1", VLANID: 150})
	require.NoError(t, bob.Create(ctxT(t), ok))

	msgTake := stalledMessage(t, alice, key(take), "spec.networks[0].bridgeName", v1alpha1.ReasonBridgeNotAllowed)
	msgSteal := stalledMessage(t, alice, key(steal), "spec.networks[0].bridgeName", v1alpha1.ReasonBridgeNotAllowed)
	assert.Equal(t, msgTake, strings.ReplaceAll(msgSteal, declared, undeclared),
		"an undeclared bridge and one declared for another namespace get the same answer")
	stalledMessage(t, bob, key(vlan), "spec.networks[0].vlanId", v1alpha1.ReasonBridgeNotAllowed)
	stalledMessage(t, bob, key(uplink), "spec.networks[0].physicalInterface", v1alpha1.ReasonBridgeNotAllowed)
	stalledMessage(t, bob, key(ovs), "spec.networks[0].type", v1alpha1.ReasonBridgeNotAllowed)

	w := waitRunning(t, key(ok))
	assert.Equal(t, metav1.ConditionTrue, condStatus(w, v1alpha1.NetworksConfiguredCondition))
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(ok), vm))
	assert.Equal(t, "linux", vm.Spec.Template.Spec.NodeSelector["kubernetes.io/os"], "the VM lands only where the bridge is")

	// Nothing reached the nodes but the administrator's declaration, and no
	// NAD exists for a refused NIC.
	policies := &nmstatev1.NodeNetworkConfigurationPolicyList{}
	require.NoError(t, k.List(ctxT(t), policies))
	for _, p := range policies.Items {
		assert.NotContains(t, p.Name, undeclared, "no policy for an undeclared bridge")
		raw, _ := p.Spec.DesiredState.MarshalJSON()
		if strings.Contains(string(raw), declared) {
			assert.Equal(t, "NodeBridge", metav1.GetControllerOf(&p).Kind)
		}
	}
	for _, nn := range []types.NamespacedName{
		{Namespace: teamA, Name: "take-wan"}, {Namespace: teamA, Name: "steal-wan"},
		{Namespace: teamB, Name: "vlan-lan"}, {Namespace: teamB, Name: "uplink-lan"}, {Namespace: teamB, Name: "ovs-lan"},
	} {
		assertGone(t, &nadv1.NetworkAttachmentDefinition{}, nn)
	}
}

// TestTenantCrossNamespaceNAD: a NAD in another namespace is refused with
// the same message whether or not it exists.
func TestTenantCrossNamespaceNAD(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD)
	t.Parallel()
	teamA, teamB := newNamespace(t), newNamespace(t)
	alice := tenant(t, teamA, "alice-"+randSuffix())
	create(t, userNAD(teamB, "payroll-net"))

	var msgs []string
	for _, ref := range []string{teamB + "/payroll-net", teamB + "/no-such-net"} {
		w := newWukong(teamA, "probe-"+randSuffix())
		w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "n", NADName: ref}}
		require.NoError(t, alice.Create(ctxT(t), w))
		msgs = append(msgs, stalledMessage(t, alice, key(w), "spec.networks[0].nadName", v1alpha1.ReasonNamespaceNotAllowed))
	}
	assert.Equal(t, msgs[0], msgs[1], "the answer does not reveal whether the other namespace's NAD exists")
	assert.Contains(t, msgs[0], teamB)
}

// TestTenantNeverAdopts: for every kind of child, an object someone else
// created under the child's name is left untouched (no owner reference, no
// label, no change), the Wukong is Stalled with NameConflict naming the
// field, and deleting the Wukong deletes nothing of it.
func TestTenantNeverAdopts(t *testing.T) {
	// It makes a NetworkAttachmentDefinition beforehand (nets-fast).
	requireKinds(t, kindVirtualMachine, kindDataVolume, kindNAD)
	t.Parallel()
	ns := newNamespace(t)
	alice := tenant(t, ns, "alice-"+randSuffix())
	ctx := ctxT(t)

	// Objects made earlier by someone else (the tenant, or an admin for the
	// kinds the tenant may not create).
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared-data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	require.NoError(t, alice.Create(ctx, pvc))
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notes-cloudinit"}, StringData: map[string]string{"userdata": "#cloud-config\n"}}
	require.NoError(t, alice.Create(ctx, secret))
	vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"},
		Spec: kubevirtv1.VirtualMachineSpec{RunStrategy: ptrTo(kubevirtv1.RunStrategyHalted),
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
				Domain: kubevirtv1.DomainSpec{Resources: kubevirtv1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}}}}}}
	create(t, vm)
	nad := userNAD(ns, "nets-fast")
	create(t, nad)
	dv := &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "img-root"},
		Spec: cdiv1.DataVolumeSpec{Source: &cdiv1.DataVolumeSource{Blank: &cdiv1.DataVolumeBlankImage{}},
			Storage: &cdiv1.StorageSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}
	create(t, dv)
	foreign := []client.Object{pvc, secret, vm, nad, dv}
	before := map[string]string{}
	for _, o := range foreign {
		require.NoError(t, k.Get(ctx, key(o), o))
		before[o.GetName()] = string(o.GetUID())
	}

	shared := newWukong(ns, "shared")
	shared.Spec.Disks = []v1alpha1.DiskSpec{{Name: "data", Size: resource.MustParse("5Gi")}}
	notes := newWukong(ns, "notes")
	legacy := newWukong(ns, "legacy")
	nets := newWukong(ns, "nets")
	nets.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "fast", Type: v1alpha1.NetworkTypeSRIOV, VLANID: 7}}
	vf := bridgeName("vf")
	declareNodeBridge(t, vf, v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeSRIOV, ResourceName: network.DefaultSRIOVResourceName,
		AllowedVLANs: []v1alpha1.VLANRange{{Min: 7}}, NamespaceSelector: bridgeTenant(t, ns, vf)})
	img := newWukong(ns, "img")
	img.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("5Gi"), Image: "https://images.example.org/guest.qcow2"}}
	cases := []struct {
		w     *v1alpha1.Wukong
		field string
	}{
		{shared, "spec.disks[0].name"},
		{notes, "metadata.name"},
		{legacy, "metadata.name"},
		{nets, "spec.networks[0].name"},
		{img, "spec.disks[0].name"},
	}
	for _, tc := range cases {
		require.NoError(t, alice.Create(ctx, tc.w))
	}
	for _, tc := range cases {
		stalledMessage(t, alice, key(tc.w), tc.field, v1alpha1.ReasonNameConflict)
	}

	assertUntouched := func(when string) {
		for _, o := range foreign {
			live := o.DeepCopyObject().(client.Object)
			require.NoError(t, k.Get(ctx, key(o), live), "%s: %T %s must still exist", when, o, o.GetName())
			assert.Equal(t, before[o.GetName()], string(live.GetUID()), "%s: %s is the same object", when, o.GetName())
			assert.Empty(t, live.GetOwnerReferences(), "%s: %s has no owner", when, o.GetName())
			assert.Empty(t, live.GetLabels()[labelWukong], "%s: %s carries no Wukong label", when, o.GetName())
		}
		live := &kubevirtv1.VirtualMachine{}
		require.NoError(t, k.Get(ctx, key(vm), live))
		assert.Equal(t, kubevirtv1.RunStrategyHalted, *live.Spec.RunStrategy, "%s: the hand-made VM was not started", when)
	}
	assertUntouched("while the Wukongs exist")

	for _, tc := range cases {
		require.NoError(t, alice.Delete(ctx, tc.w))
	}
	eventually(t, 1, func(c *assert.CollectT) {
		for _, tc := range cases {
			assertGone(c, &v1alpha1.Wukong{}, key(tc.w))
		}
	}, "the Wukongs to be gone")
	time.Sleep(3 * time.Second) // give the garbage collector time to act, were anything owned
	assertUntouched("after the Wukongs were deleted")
}

// TestRecreatedWukongWaitsForPredecessor: a Wukong deleted and created again
// at once does not adopt its predecessor's children while the garbage
// collector removes them; it creates its own.
func TestRecreatedWukongWaitsForPredecessor(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	ctx := ctxT(t)
	first := newWukong(ns, "again")
	create(t, first)
	waitRunning(t, key(first))
	oldPVC := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "again-root"}, oldPVC))

	require.NoError(t, k.Delete(ctx, first, client.PropagationPolicy(metav1.DeletePropagationBackground)))
	eventually(t, 1, func(c *assert.CollectT) { assertGone(c, &v1alpha1.Wukong{}, key(first)) }, "first Wukong gone")
	second := newWukong(ns, "again")
	create(t, second)

	w := waitRunning(t, key(second))
	require.NotEqual(t, first.UID, w.UID)
	newPVC := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "again-root"}, newPVC))
	assert.NotEqual(t, oldPVC.UID, newPVC.UID, "the predecessor's PVC was not adopted: a new one was made")
	// A blank disk is a DataVolume the Wukong owns (#30); CDI's claim is
	// the DataVolume's.
	newDV := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "again-root"}, newDV))
	assertOwnedChild(t, newDV, w)
	if ref := metav1.GetControllerOf(newPVC); assert.NotNil(t, ref, "the claim's controller") {
		assert.Equal(t, newDV.UID, ref.UID, "the claim is the new DataVolume's")
	}
	newVM := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctx, key(second), newVM))
	assertOwnedChild(t, newVM, w)
}

func ptrTo[T any](v T) *T { return &v }

// TestNodeBridgeDegraded: a bridge NMState fails or rolls back (here over
// the nodes' primary NIC) makes its NodeBridge Degraded and the Wukongs on
// it Stalled naming the bridge, not Reconciling forever.
func TestNodeBridgeDegraded(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD, kindNNCP)
	if !inSandbox {
		t.Skip("needs the sandbox's NMState, which rolls back a bridge over eth0; a real cluster would lose the node")
	}
	t.Parallel()
	ns := newNamespace(t)
	name := "dg" + randSuffix()
	d := declareNodeBridge(t, name, v1alpha1.NodeBridgeSpec{Uplinks: []string{"eth0"}, NamespaceSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}})
	eventually(t, 1, func(c *assert.CollectT) {
		live := &v1alpha1.NodeBridge{}
		require.NoError(c, k.Get(context.Background(), key(d), live))
		degraded := meta.FindStatusCondition(live.Status.Conditions, v1alpha1.DegradedCondition)
		stalled := meta.FindStatusCondition(live.Status.Conditions, v1alpha1.StalledCondition)
		if assert.NotNil(c, degraded) && assert.NotNil(c, stalled) {
			assert.Equal(c, metav1.ConditionTrue, degraded.Status)
			assert.Equal(c, metav1.ConditionTrue, stalled.Status)
			assert.Contains(c, stalled.Message, "eth0")
		}
	}, "NodeBridge %s Degraded", name)

	w := newWukong(ns, "on-degraded")
	w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", BridgeName: name}}
	create(t, w)
	msg := stalledMessage(t, k, key(w), "spec.networks[0].bridgeName", v1alpha1.ReasonBridgeDegraded)
	assert.Contains(t, msg, "NodeBridge "+name)
}

// TestTenantNodeNetworks: node-level reach is an administrator's decision
// for every NIC type, not only bridges. A tenant's macvtap NIC on a node
// interface and its SR-IOV NIC on a device pool or VLAN nobody declared for
// its namespace are Stalled naming the field, with nothing written; what
// is declared works, with the ports the declaration decides: access ports
// of the NIC's VLAN (the native VLAN when untagged) so the guest cannot tag
// its way onto other VLANs, MAC spoof checks, and the declaration's nodes
// winning over the tenant's nodeSelector.
func TestTenantNodeNetworks(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD)
	needSecondaryNICGuests(t) // its VMs have macvtap and SR-IOV NICs
	t.Parallel()
	sfx := randSuffix()
	teamA, teamB := newNamespace(t), newNamespace(t)
	alice := tenant(t, teamA, "alice-"+sfx)
	bob := tenant(t, teamB, "bob-"+sfx)

	// The administrator declares, for team B only: node interface
	// mv<sfx> for macvtap NICs, and an SR-IOV pool with VLANs 100-199.
	iface := bridgeName("mv")
	sel := bridgeTenant(t, teamB, iface)
	declareNodeBridge(t, iface, v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeMacvtap, NamespaceSelector: sel,
		NodeSelector: map[string]string{"kubernetes.io/os": "linux"}})
	pool := "e2e.novasphere.dev/vf-" + sfx
	declareNodeBridge(t, bridgeName("vf"), v1alpha1.NodeBridgeSpec{Type: v1alpha1.BridgeTypeSRIOV, ResourceName: pool,
		AllowedVLANs: []v1alpha1.VLANRange{{Min: 100, Max: 199}}, NamespaceSelector: sel})

	nicWukong := func(ns, name string, n v1alpha1.NetworkSpec) *v1alpha1.Wukong {
		w := newWukong(ns, name)
		w.Spec.Networks = []v1alpha1.NetworkSpec{n}
		return w
	}
	macvtap := func(ifc string) v1alpha1.NetworkSpec {
		return v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: ifc}
	}
	sriov := func(resource string, vlan int32) v1alpha1.NetworkSpec {
		return v1alpha1.NetworkSpec{Name: "fast", Type: v1alpha1.NetworkTypeSRIOV, ResourceName: resource, VLANID: vlan}
	}
	refused := []struct {
		c     client.Client
		w     *v1alpha1.Wukong
		field string
	}{
		// The node's primary interface: nobody declared it.
		{alice, nicWukong(teamA, "mgmt", macvtap("eth0")), "spec.networks[0].physicalInterface"},
		// Declared, for another namespace.
		{alice, nicWukong(teamA, "steal", macvtap(iface)), "spec.networks[0].physicalInterface"},
		// Any team's VFs, any VLAN: refused.
		{alice, nicWukong(teamA, "anyvf", sriov("intel.com/any_"+sfx, 300)), "spec.networks[0].resourceName"},
		{alice, nicWukong(teamA, "stealvf", sriov(pool, 150)), "spec.networks[0].resourceName"},
		// Team B's own pool, outside its VLANs, or untagged (a VF
		// without a VLAN lets the guest tag any VLAN).
		{bob, nicWukong(teamB, "vlan", sriov(pool, 300)), "spec.networks[0].vlanId"},
		{bob, nicWukong(teamB, "untagged", sriov(pool, 0)), "spec.networks[0].vlanId"},
	}
	for _, tc := range refused {
		require.NoError(t, tc.c.Create(ctxT(t), tc.w))
	}
	okMacvtap := nicWukong(teamB, "okmv", macvtap(iface))
	okMacvtap.Spec.HighAvailability = &v1alpha1.HighAvailability{NodeSelector: map[string]string{"kubernetes.io/os": "windows"}}
	require.NoError(t, bob.Create(ctxT(t), okMacvtap))
	okVF := nicWukong(teamB, "okvf", sriov(pool, 150))
	require.NoError(t, bob.Create(ctxT(t), okVF))

	msgs := map[string]string{}
	for _, tc := range refused {
		msgs[tc.w.Name] = stalledMessage(t, tc.c, key(tc.w), tc.field, v1alpha1.ReasonBridgeNotAllowed)
		// Nothing written for a refused NIC.
		assertGone(t, &nadv1.NetworkAttachmentDefinition{}, types.NamespacedName{Namespace: tc.w.Namespace, Name: tc.w.Name + "-" + tc.w.Spec.Networks[0].Name})
	}
	assert.Equal(t, msgs["mgmt"], strings.ReplaceAll(msgs["steal"], iface, "eth0"),
		"an undeclared interface and one declared for another namespace get the same answer")
	assert.Equal(t, msgs["anyvf"], strings.ReplaceAll(msgs["stealvf"], pool, "intel.com/any_"+sfx),
		"an undeclared pool and one declared for another namespace get the same answer")

	// Declared: the NADs carry what the declaration decides.
	nad := &nadv1.NetworkAttachmentDefinition{}
	eventually(t, 1, func(c *assert.CollectT) {
		require.NoError(c, k.Get(ctxT(t), types.NamespacedName{Namespace: teamB, Name: "okvf-fast"}, nad))
	}, "the SR-IOV NAD")
	assert.Equal(t, pool, nad.Annotations[network.AnnotationResourceName])
	assert.JSONEq(t, `{"cniVersion":"1.0.0","name":"okvf-fast","type":"sriov","vlan":150,"spoofchk":"on","trust":"off"}`, nad.Spec.Config,
		"sriov-cni: the VF on VLAN 150, no MAC changes, no trust")
	eventually(t, 1, func(c *assert.CollectT) {
		require.NoError(c, k.Get(ctxT(t), types.NamespacedName{Namespace: teamB, Name: "okmv-lan"}, nad))
	}, "the macvtap NAD")
	assert.Equal(t, network.MacvtapResourcePrefix+iface, nad.Annotations[network.AnnotationResourceName])
	// The launcher pod asks for one VF of the pool (virt-controller renders
	// the NAD's resourceName into it); no node here offers that pool, so
	// the scheduler's own cause is what the tenant reads.
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, k, key(okVF))
		ready := cond(w, v1alpha1.ReadyCondition)
		if assert.NotNil(c, ready) {
			assert.Equal(c, v1alpha1.ReasonUnschedulable, ready.Reason)
			assert.Contains(c, ready.Message, "Insufficient "+pool)
		}
	}, "the SR-IOV VM to wait for a node with the pool")
	// The declaration's node selector wins over the tenant's on the same key.
	eventually(t, 1, func(c *assert.CollectT) {
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(ctxT(t), key(okMacvtap), vm))
		assert.Equal(c, "linux", vm.Spec.Template.Spec.NodeSelector["kubernetes.io/os"], "the VM lands only where the interface is declared")
	}, "the macvtap VM")
}

// TestTenantBridgePorts: on a shared node bridge, a tenant's untagged NIC
// is an access port of the bridge's native VLAN with a MAC spoof check
// (bridge CNI: "vlan" turns on VLAN filtering, so frames the guest tags
// itself are dropped; "macspoofchk" drops frames from other MACs), on a
// linux-bridge and an ovs-bridge alike (ovs-cni: a port without "vlan" is a
// trunk of every VLAN); and the uplink carries only the declared VLANs.
func TestTenantBridgePorts(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD, kindNNCP)
	needNodeBridges(t)
	needSecondaryNICGuests(t) // its VM runs with bridge NICs
	t.Parallel()
	ns := newNamespace(t)
	bob := tenant(t, ns, "bob-"+randSuffix())
	lb := bridgeName("lb")
	declareBridge(t, lb, []string{"eth1"}, nil, bridgeTenant(t, ns, lb))
	ovs := bridgeName("ov")
	declareBridge(t, ovs, []string{"eth2"}, []v1alpha1.VLANRange{{Min: 100, Max: 101}}, bridgeTenant(t, ns, ovs), func(s *v1alpha1.NodeBridgeSpec) {
		s.Type = v1alpha1.BridgeTypeOVS
		s.NativeVLAN = ptrTo[int32](20)
	})
	w := newWukong(ns, "ports")
	w.Spec.Networks = []v1alpha1.NetworkSpec{
		{Name: "lan", Type: v1alpha1.NetworkTypeBridge, BridgeName: lb},
		{Name: "ovs", Type: v1alpha1.NetworkTypeOVS, BridgeName: ovs},
		{Name: "ovs100", Type: v1alpha1.NetworkTypeOVS, BridgeName: ovs, VLANID: 100},
	}
	require.NoError(t, bob.Create(ctxT(t), w))
	waitRunning(t, key(w))
	config := func(nic string) string {
		nad := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "ports-" + nic}, nad))
		return nad.Spec.Config
	}
	assert.JSONEq(t, `{"cniVersion":"1.0.0","name":"ports-lan","type":"bridge","bridge":"`+lb+`","vlan":1,"preserveDefaultVlan":false,"macspoofchk":true,"ipam":{}}`, config("lan"))
	assert.JSONEq(t, `{"cniVersion":"1.0.0","name":"ports-ovs","type":"ovs","bridge":"`+ovs+`","vlan":20}`, config("ovs"))
	assert.JSONEq(t, `{"cniVersion":"1.0.0","name":"ports-ovs100","type":"ovs","bridge":"`+ovs+`","vlan":100}`, config("ovs100"))

	// The uplinks: an access port of VLAN 1; a trunk of 100-101 with
	// native VLAN 20.
	for bridge, want := range map[string]string{
		lb:  `{"mode":"access","tag":1}`,
		ovs: `{"mode":"trunk","enable-native":true,"tag":20,"trunk-tags":[{"id-range":{"min":100,"max":101}}]}`,
	} {
		p := &nmstatev1.NodeNetworkConfigurationPolicy{}
		require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: "wukong-br-" + bridge}, p))
		var state struct {
			Interfaces []struct {
				Name   string `json:"name"`
				Bridge struct {
					Port []struct {
						VLAN json.RawMessage `json:"vlan"`
					} `json:"port"`
				} `json:"bridge"`
			} `json:"interfaces"`
		}
		raw, err := p.Spec.DesiredState.MarshalJSON()
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, &state))
		require.Len(t, state.Interfaces, 1)
		require.Len(t, state.Interfaces[0].Bridge.Port, 1)
		assert.JSONEq(t, want, string(state.Interfaces[0].Bridge.Port[0].VLAN), "uplink of %s", bridge)
	}
}

// TestTenantLabelledObjectsStayForeign: a tenant who puts Wukong's own
// labels (managed-by, vm.novasphere.dev/wukong) on its Secrets does not get
// them held in the manager's memory: the cache holds them as metadata stubs
// (operator/manager ChildTransform) and keeps whole only what the Wukongs
// control (their cloud-init Secret, the VirtualMachine's instance, the
// DataVolume's PVC, through the owner chain). The ownership check still
// sees a stub and refuses the name, and a labelled sshKeySecret is read
// whole from the API server: its keys reach the guest's cloud-init.
func TestTenantLabelledObjectsStayForeign(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	needInternet(t) // its Wukongs import testImage from quay.io
	t.Parallel()
	ns := newNamespace(t)
	alice := tenant(t, ns, "alice-"+randSuffix())
	ctx := ctxT(t)
	labels := func(w string) map[string]string { return map[string]string{labelManagedBy: "wukong", labelWukong: w} }
	const sshKey = e2eKey // a real key: only lines that parse as keys are copied
	taken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "memo-cloudinit", Labels: labels("memo")},
		StringData: map[string]string{"userdata": "#cloud-config\n"}}
	keyLabels := labels("keyed")
	keyLabels[v1alpha1.SSHAuthorizedKeysLabel] = "true" // the opt-in of an sshKeySecret
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-keys", Labels: keyLabels},
		StringData: map[string]string{"key": sshKey}}
	for _, s := range []*corev1.Secret{taken, keys} {
		require.NoError(t, alice.Create(ctx, s))
	}
	require.NoError(t, k.Get(ctx, key(taken), taken))

	memo := newWukong(ns, "memo")
	keyed := newWukong(ns, "keyed")
	keyed.Spec.SSHKeySecret = keys.Name
	keyed.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("1Gi"), Boot: true, Image: testImage}}
	require.NoError(t, alice.Create(ctx, memo))
	require.NoError(t, alice.Create(ctx, keyed))

	stalledMessage(t, alice, key(memo), "metadata.name", v1alpha1.ReasonNameConflict)
	w := waitRunning(t, key(keyed))
	cloudInit := &corev1.Secret{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "keyed-cloudinit"}, cloudInit))
	assertOwnedChild(t, cloudInit, w)
	assert.Contains(t, string(cloudInit.Data["userdata"]), strings.Fields(sshKey)[1], "the labelled sshKeySecret was read whole")

	live := &corev1.Secret{}
	require.NoError(t, k.Get(ctx, key(taken), live))
	assert.Equal(t, taken.UID, live.UID)
	assert.Empty(t, live.OwnerReferences, "the tenant's labelled Secret was not adopted")
	assert.Equal(t, "#cloud-config\n", string(live.Data["userdata"]), "nor written")

	if managerCache == nil {
		return // the manager runs in the cluster: its cache is not reachable here
	}
	eventually(t, 1, func(c *assert.CollectT) {
		for _, s := range []*corev1.Secret{taken, keys} {
			cached := &corev1.Secret{}
			if assert.NoError(c, managerCache.Get(ctx, key(s), cached)) {
				assert.Nil(c, cached.Data, "%s: the cache holds no data of a tenant's labelled Secret", s.Name)
				assert.Equal(c, s.GetUID(), cached.UID, "%s: but knows it exists", s.Name)
			}
		}
		own := &corev1.Secret{}
		if assert.NoError(c, managerCache.Get(ctx, key(cloudInit), own)) {
			assert.Equal(c, cloudInit.Data, own.Data, "the Wukong's own cloud-init Secret is held whole")
			assert.Nil(c, own.ManagedFields, "without managedFields")
		}
		vm := &kubevirtv1.VirtualMachine{}
		if assert.NoError(c, managerCache.Get(ctx, key(keyed), vm)) {
			assert.NotNil(c, vm.Spec.Template, "the Wukong's VirtualMachine is held whole")
		}
		dv := &cdiv1.DataVolume{}
		if assert.NoError(c, managerCache.Get(ctx, types.NamespacedName{Namespace: ns, Name: "keyed-root"}, dv)) {
			assert.NotNil(c, dv.Spec.Source, "the Wukong's DataVolume is held whole")
		}
		vmi := &kubevirtv1.VirtualMachineInstance{}
		if assert.NoError(c, managerCache.Get(ctx, key(keyed), vmi)) {
			assert.NotEmpty(c, vmi.Status.Phase, "the instance of the Wukong's VM is held whole")
		}
		pvc := &corev1.PersistentVolumeClaim{}
		if assert.NoError(c, managerCache.Get(ctx, types.NamespacedName{Namespace: ns, Name: "keyed-root"}, pvc)) {
			assert.NotEmpty(c, pvc.Spec.AccessModes, "CDI's PVC of the Wukong's DataVolume is held whole")
		}
	}, "the manager's cache")
}

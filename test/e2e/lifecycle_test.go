package e2e_test

import (
	"context"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestCreate: a Wukong with an image disk, a blank disk, a secondary NIC and
// a cloud-init user becomes Running with node, IP and MAC in status, and its
// children carry the labels and owner reference.
func TestCreate(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume, kindNAD, kindNNCP)
	needSecondaryNICGuests(t)
	needNodeBridges(t)
	t.Parallel()
	ns := newNamespace(t)
	bridge := tenantBridge(t, ns, "bc")
	w := newWukong(ns, "vm")
	w.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), Boot: true, Image: testImage},
		{Name: "data", Size: resource.MustParse("1Gi")},
	}
	w.Spec.Networks = []v1alpha1.NetworkSpec{bridgeNIC("lan", bridge, "")}
	w.Spec.CloudInitUser = &v1alpha1.CloudInitUser{Name: "ops", Sudo: "ALL=(ALL) NOPASSWD:ALL"}
	create(t, w)

	w = waitRunning(t, key(w))
	for _, name := range []string{"default", "lan"} {
		n := networkStatus(w, name)
		if assert.NotNil(t, n, "status.networks[%s]", name) {
			assert.NotEmpty(t, n.IPAddress, "NIC %s IP", name)
			assert.NotEmpty(t, n.MACAddress, "NIC %s MAC", name)
		}
	}
	assert.Equal(t, ns+"/vm-lan", networkStatus(w, "lan").NADName)
	for _, d := range []string{"root", "data"} {
		v := volumeStatus(w, d)
		if assert.NotNil(t, v, "status.volumes[%s]", d) {
			assert.True(t, v.Bound, "disk %s bound", d)
			assert.Equal(t, "vm-"+d, v.PVCName)
		}
	}
	assert.Equal(t, "vm", w.Status.VMName)

	ctx := ctxT(t)
	nad := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-lan"}, nad))
	assertOwnedChild(t, nad, w)
	assert.Contains(t, nad.Spec.Config, `"bridge":"`+bridge+`"`)

	dv := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-root"}, dv))
	assertOwnedChild(t, dv, w)
	rootPVC := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-root"}, rootPVC), "the DataVolume's PVC")

	// A blank disk is a DataVolume with a blank source too (#30): CDI makes
	// its claim from the StorageProfile.
	dataDV := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-data"}, dataDV))
	assertOwnedChild(t, dataDV, w)
	assert.NotNil(t, dataDV.Spec.Source.Blank, "blank source")
	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-data"}, pvc), "the blank DataVolume's PVC")
	assert.Equal(t, corev1.ClaimBound, pvc.Status.Phase)

	secret := &corev1.Secret{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-cloudinit"}, secret))
	assertOwnedChild(t, secret, w)
	assert.NotEmpty(t, secret.Data, "cloud-init Secret data")

	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm"}, vm))
	assertOwnedChild(t, vm, w)
	require.NotNil(t, vm.Spec.Template)
	ifaces := map[string]string{}
	for _, i := range vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		ifaces[i.Name] = strings.ToLower(i.MacAddress)
	}
	require.Contains(t, ifaces, "lan", "VM template has interface lan")
	for _, n := range w.Status.Networks {
		if mac, ok := ifaces[n.Name]; ok && mac != "" {
			assert.Equal(t, mac, strings.ToLower(n.MACAddress), "VM MAC of NIC %s equals status.networks[].macAddress", n.Name)
		}
	}
	assert.NotEmpty(t, ifaces["lan"], "the VM pins the MAC of NIC lan")

	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm"}, vmi))
	assert.Equal(t, w.Status.NodeName, vmi.Status.NodeName, "status.nodeName is the VMI's node")
}

// TestUpdateDiskGrow: a larger size raises the PVC request and the size in
// status.volumes.
func TestUpdateDiskGrow(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	if sc := defaultStorageClass(t); sc.AllowVolumeExpansion == nil || !*sc.AllowVolumeExpansion {
		t.Skipf("the default StorageClass %s does not allow volume expansion", sc.Name)
	}
	ns := newNamespace(t)
	w := newWukong(ns, "grow")
	create(t, w)
	w = waitRunning(t, key(w))
	before := volumeStatus(w, "root")
	require.NotNil(t, before)
	beforeSize := resource.MustParse(before.Size)

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = resource.MustParse("2Gi") })
	want := resource.MustParse("2Gi")
	eventually(t, 1, func(c *assert.CollectT) {
		pvc := &corev1.PersistentVolumeClaim{}
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "grow-root"}, pvc))
		req := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		assert.Equal(c, 0, req.Cmp(want), "PVC request %s, want %s", req.String(), want.String())

		w := getWukong(c, k, key(w))
		v := volumeStatus(w, "root")
		require.NotNil(c, v)
		got, err := resource.ParseQuantity(v.Size)
		require.NoError(c, err, "status.volumes[root].size %q", v.Size)
		assert.Equal(c, 1, got.Cmp(beforeSize), "size %s should grow beyond %s", v.Size, before.Size)
		assert.GreaterOrEqual(c, got.Cmp(want), 0, "size %s reaches %s", v.Size, want.String())
		assertRunning(c, w)
	}, "the disk to grow")
}

// TestUpdateNICAdded: a new NIC gets its NAD and a VM template interface,
// and KubeVirt hot-plugs the bridge-bound interface into the running guest
// (issue #34: pkg/network/controllers/vm.go applyDynamicIfaceRequestOnVMI):
// no RestartRequired, the same VMI gains it.
func TestUpdateNICAdded(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD, kindNNCP)
	needSecondaryNICGuests(t)
	needNodeBridges(t)
	t.Parallel()
	ns := newNamespace(t)
	bridge := tenantBridge(t, ns, "bx")
	w := newWukong(ns, "nic")
	create(t, w)
	w = waitRunning(t, key(w))
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctxT(t), key(w), vmi))

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) {
		w.Spec.Networks = append(w.Spec.Networks, bridgeNIC("extra", bridge, ""))
	})
	eventually(t, 1, func(c *assert.CollectT) {
		nad := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "nic-extra"}, nad), "new NAD")
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), key(w), vm))
		var names []string
		for _, i := range vm.Spec.Template.Spec.Domain.Devices.Interfaces {
			names = append(names, i.Name)
		}
		assert.Contains(c, names, "extra", "VM template interfaces")
		w := getWukong(c, k, key(w))
		assert.Equal(c, w.Generation, w.Status.ObservedGeneration)
		assert.NotEqual(c, metav1.ConditionTrue, condStatus(w, v1alpha1.RestartRequiredCondition), "no RestartRequired: hot-plugged")
		live := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(context.Background(), key(w), live))
		var onVMI []string
		for _, i := range live.Spec.Domain.Devices.Interfaces {
			onVMI = append(onVMI, i.Name)
		}
		assert.Contains(c, onVMI, "extra", "the running VMI's interfaces")
	}, "the NIC to be added")
	assertSameVMI(t, vmi)
}

// TestUpdateCPU: a cpu change updates the VM template and shows
// RestartRequired, because this VM cannot live-migrate (its disk is
// ReadWriteOnce) and KubeVirt hot-plugs CPUs through a live migration; the
// guest is not restarted. (A migratable VM grows live: hotplug_cpu_test.go.)
func TestUpdateCPU(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "cpu")
	create(t, w)
	w = waitRunning(t, key(w))
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctxT(t), key(w), vmi))

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.CPU = 2 })
	eventually(t, 1, func(c *assert.CollectT) {
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), key(w), vm))
		cpu := vm.Spec.Template.Spec.Domain.CPU
		require.NotNil(c, cpu)
		assert.Equal(c, uint32(2), cpu.Sockets, "VM template cpu sockets")
		w := getWukong(c, k, key(w))
		assert.Equal(c, w.Generation, w.Status.ObservedGeneration)
		rr := cond(w, v1alpha1.RestartRequiredCondition)
		if assert.NotNil(c, rr, "RestartRequired condition") {
			assert.Equal(c, metav1.ConditionTrue, rr.Status)
			assert.Equal(c, v1alpha1.ReasonRestartRequired, rr.Reason)
		}
		assert.Equal(c, v1alpha1.PhaseRunning, w.Status.Phase, "the guest keeps running")
	}, "the cpu change to show RestartRequired")
	assertSameVMI(t, vmi)
}

// assertSameVMI: the guest was not restarted (same VMI UID).
func assertSameVMI(t *testing.T, before *kubevirtv1.VirtualMachineInstance) {
	t.Helper()
	now := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctxT(t), key(before), now), "the VMI still exists")
	assert.Equal(t, before.UID, now.UID, "the VMI was not replaced (guest not restarted)")
	assert.Nil(t, now.DeletionTimestamp, "the VMI is not being deleted")
}

// TestHalted: runStrategy Halted -> phase Stopped, Ready True (Stopped), no VMI.
func TestHalted(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "halted")
	w.Spec.StartStrategy = &v1alpha1.StartStrategy{RunStrategy: "Halted"}
	create(t, w)
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, k, key(w))
		assert.Equal(c, v1alpha1.PhaseStopped, w.Status.Phase)
		ready := cond(w, v1alpha1.ReadyCondition)
		if assert.NotNil(c, ready) {
			assert.Equal(c, metav1.ConditionTrue, ready.Status)
			assert.Equal(c, v1alpha1.ReasonStopped, ready.Reason)
		}
		assert.Equal(c, w.Generation, w.Status.ObservedGeneration)
		assert.Nil(c, cond(w, v1alpha1.StalledCondition), "Stalled")
		assert.Nil(c, cond(w, v1alpha1.ReconcilingCondition), "Reconciling")
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), key(w), vm), "the VM exists")
		require.NotNil(c, vm.Spec.RunStrategy)
		assert.Equal(c, kubevirtv1.RunStrategyHalted, *vm.Spec.RunStrategy)
	}, "the halted Wukong to be Stopped")
	assertGone(t, &kubevirtv1.VirtualMachineInstance{}, key(w))
}

// TestUnschedulable: a nodeSelector no node matches -> Stalled, reason
// Unschedulable, phase Error.
func TestUnschedulable(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "nowhere")
	w.Spec.HighAvailability = &v1alpha1.HighAvailability{NodeSelector: map[string]string{"e2e.novasphere.dev/no-such-node": "true"}}
	create(t, w)
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, k, key(w))
		assert.Equal(c, v1alpha1.PhaseError, w.Status.Phase)
		stalled := cond(w, v1alpha1.StalledCondition)
		if assert.NotNil(c, stalled, "Stalled") {
			assert.Equal(c, metav1.ConditionTrue, stalled.Status)
			assert.Equal(c, "Unschedulable", stalled.Reason)
		}
		assert.Equal(c, metav1.ConditionFalse, condStatus(w, v1alpha1.ReadyCondition), "Ready")
		assert.Equal(c, w.Generation, w.Status.ObservedGeneration)
	}, "the Wukong to be Stalled as Unschedulable")
}

// TestDeleteReleasesEverything: deleting a Wukong removes every child it
// created and touches neither the user's NAD it referenced by nadName nor
// another Wukong. A Wukong without a Retain disk carries no finalizer: its
// children go by garbage collection (see retain_test.go for Retain).
func TestDeleteReleasesEverything(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume, kindNAD)
	needSecondaryNICGuests(t)
	t.Parallel()
	ns := newNamespace(t)
	ctx := ctxT(t)

	user := userNAD(ns, "user-net")
	create(t, user)
	userRV := user.ResourceVersion

	a := newWukong(ns, "a")
	a.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), Image: testImage},
		{Name: "data", Size: resource.MustParse("1Gi")},
	}
	a.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "user", NADName: "user-net"}}
	b := newWukong(ns, "b")
	create(t, a)
	create(t, b)
	a = waitRunning(t, key(a))
	bVMI := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctx, key(waitRunning(t, key(b))), bVMI))
	assert.Empty(t, a.Finalizers, "a Wukong without a Retain disk carries no finalizer")

	aChildren := []child{
		{func() client.Object { return &kubevirtv1.VirtualMachine{} }, "a"},
		{func() client.Object { return &kubevirtv1.VirtualMachineInstance{} }, "a"},
		{func() client.Object { return &cdiv1.DataVolume{} }, "a-root"},
		{func() client.Object { return &corev1.PersistentVolumeClaim{} }, "a-root"},
		{func() client.Object { return &corev1.PersistentVolumeClaim{} }, "a-data"},
		{func() client.Object { return &corev1.Secret{} }, "a-cloudinit"},
	}
	for _, ch := range aChildren {
		require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: ch.name}, ch.obj()), "%T %s before delete", ch.obj(), ch.name)
	}

	require.NoError(t, k.Delete(ctx, a))
	eventually(t, 1, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, key(a))
		for _, ch := range aChildren {
			assertGone(c, ch.obj(), types.NamespacedName{Namespace: ns, Name: ch.name})
		}
	}, "Wukong a and its children to be gone")

	kept := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, k.Get(ctx, key(user), kept), "the user's NAD survives")
	assert.Equal(t, userRV, kept.ResourceVersion, "the user's NAD is untouched")
	waitRunning(t, key(b))
	assertSameVMI(t, bVMI)

	require.NoError(t, k.Delete(ctx, b))
	eventually(t, 1, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, key(b))
		assertGone(c, &kubevirtv1.VirtualMachine{}, key(b))
	}, "Wukong b and its VM to be gone")
}

// child is an object a Wukong owns, found by name.
type child struct {
	obj  func() client.Object
	name string
}

// TestNodeBridgeLifecycle: an administrator declares node bridge br (eth1,
// VLANs 10-20, Linux nodes, this namespace); Wukongs a and b attach to it.
// The operator writes one NodeNetworkConfigurationPolicy for the bridge,
// controlled by the NodeBridge, whoever uses it; the VMs land only on the
// bridge's nodes. Deleting the NodeBridge waits while Wukongs use it
// (Ready False, reason InUse, naming them; the tenants are told; the guests
// keep running and the policy is untouched). Once a and b are deleted the
// policy removes the bridge from the nodes (state: absent), is deleted only
// after NMState applied that on every node, and the NodeBridge disappears.
func TestNodeBridgeLifecycle(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD, kindNNCP)
	needSecondaryNICGuests(t)
	needNodeBridges(t)
	t.Parallel()
	ns := newNamespace(t)
	ctx := ctxT(t)
	br := bridgeName("bl")
	policy := policyPrefix + br
	linux := map[string]string{corev1.LabelOSStable: "linux"}
	nb := declareBridge(t, br, []string{"eth1"}, []v1alpha1.VLANRange{{Min: 10, Max: 20}}, bridgeTenant(t, ns, br),
		func(s *v1alpha1.NodeBridgeSpec) { s.NodeSelector = linux })

	a := newWukong(ns, "a")
	lan := bridgeNIC("lan", br, "eth1")
	lan.VLANID = 10
	a.Spec.Networks = []v1alpha1.NetworkSpec{lan}
	b := newWukong(ns, "b")
	b.Spec.Networks = []v1alpha1.NetworkSpec{bridgeNIC("lan", br, "")}
	create(t, a)
	create(t, b)
	a = waitRunning(t, key(a))
	b = waitRunning(t, key(b))

	// The administrator's bridge is Ready, with one policy it controls.
	eventually(t, 1, func(c *assert.CollectT) {
		d := getNodeBridge(c, br)
		ready := nodeBridgeCond(d, v1alpha1.ReadyCondition)
		if assert.NotNil(c, ready, "NodeBridge Ready") {
			assert.Equal(c, metav1.ConditionTrue, ready.Status, "NodeBridge Ready: %s", ready.Message)
		}
		assert.Equal(c, d.Generation, d.Status.ObservedGeneration, "NodeBridge observedGeneration")
		assert.Equal(c, policy, d.Status.PolicyName, "NodeBridge status.policyName")
	}, "NodeBridge %s to be Ready", br)
	p := &nmstatev1.NodeNetworkConfigurationPolicy{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Name: policy}, p))
	ref := metav1.GetControllerOf(p)
	require.NotNil(t, ref, "the policy's controller")
	assert.Equal(t, "NodeBridge", ref.Kind)
	assert.Equal(t, v1alpha1.GroupVersion.String(), ref.APIVersion)
	assert.Equal(t, nb.UID, ref.UID, "the policy is controlled by the NodeBridge")
	assert.Equal(t, linux, p.Spec.NodeSelector, "the policy's nodeSelector is the NodeBridge's")
	assert.Equal(t, "up", p.Annotations[annotationBridgeState])
	assert.NotContains(t, p.Annotations, "vm.novasphere.dev/holders", "tenants' Wukongs are not recorded on the policy")
	ifaces := desiredInterfaces(t, p)
	if assert.Len(t, ifaces, 1, "the policy's interfaces: the bridge") {
		assert.Equal(t, br, ifaces[0].Name)
		assert.Equal(t, "linux-bridge", ifaces[0].Type)
		assert.Equal(t, "up", ifaces[0].State)
		if assert.Len(t, ifaces[0].Bridge.Port, 1, "the bridge's ports") {
			assert.Equal(t, "eth1", ifaces[0].Bridge.Port[0].Name, "the declared uplink")
		}
	}
	policies := &nmstatev1.NodeNetworkConfigurationPolicyList{}
	require.NoError(t, k.List(ctx, policies))
	n := 0
	for i := range policies.Items {
		if r := metav1.GetControllerOf(&policies.Items[i]); r != nil && r.UID == nb.UID {
			n++
		}
	}
	assert.Equal(t, 1, n, "policies for the NodeBridge, with two Wukongs using it")

	// The tenants' side: NADs on the bridge, VMs only where it exists, and
	// no finalizer on the Wukongs.
	for _, w := range []*v1alpha1.Wukong{a, b} {
		assert.Empty(t, w.Finalizers, "%s: a Wukong carries no finalizer", w.Name)
		nad := &nadv1.NetworkAttachmentDefinition{}
		require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: w.Name + "-lan"}, nad))
		assertOwnedChild(t, nad, w)
		assert.Contains(t, nad.Spec.Config, `"bridge":"`+br+`"`, "%s: the NAD attaches to the bridge", w.Name)
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(t, k.Get(ctx, key(w), vm))
		assert.Equal(t, "linux", vm.Spec.Template.Spec.NodeSelector[corev1.LabelOSStable], "%s: the VM lands only on the bridge's nodes", w.Name)
	}
	nad := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "a-lan"}, nad))
	assert.Contains(t, nad.Spec.Config, `"vlan":10`, "a's NIC is on VLAN 10")
	vmis := map[string]*kubevirtv1.VirtualMachineInstance{}
	for _, w := range []*v1alpha1.Wukong{a, b} {
		vmis[w.Name] = &kubevirtv1.VirtualMachineInstance{}
		require.NoError(t, k.Get(ctx, key(w), vmis[w.Name]))
	}

	// The administrator deletes the NodeBridge: it waits for its users.
	require.NoError(t, k.Delete(ctx, nb))
	inUse := func(c *assert.CollectT, users ...string) {
		d := getNodeBridge(c, br)
		assert.NotNil(c, d.DeletionTimestamp, "the NodeBridge is being deleted")
		ready := nodeBridgeCond(d, v1alpha1.ReadyCondition)
		if assert.NotNil(c, ready, "NodeBridge Ready") {
			assert.Equal(c, metav1.ConditionFalse, ready.Status, "NodeBridge Ready")
			assert.Equal(c, v1alpha1.ReasonInUse, ready.Reason, "NodeBridge Ready reason")
			for _, u := range users {
				assert.Contains(c, ready.Message, ns+"/"+u, "the message names the Wukongs using it")
			}
			if len(users) == 1 {
				assert.NotContains(c, ready.Message, ns+"/a", "a deleted Wukong no longer holds it")
			}
		}
		if rec := nodeBridgeCond(d, v1alpha1.ReconcilingCondition); assert.NotNil(c, rec, "NodeBridge Reconciling") {
			assert.Equal(c, v1alpha1.ReasonInUse, rec.Reason)
		}
		live := &nmstatev1.NodeNetworkConfigurationPolicy{}
		if assert.NoError(c, k.Get(context.Background(), types.NamespacedName{Name: policy}, live), "the policy stays while in use") {
			assert.Equal(c, "up", live.Annotations[annotationBridgeState], "the bridge stays on the nodes while in use")
			assert.Equal(c, p.Generation, live.Generation, "the policy is untouched while in use")
		}
	}
	eventually(t, 1, func(c *assert.CollectT) {
		inUse(c, "a", "b")
		// The tenants are told their bridge is going away.
		for _, w := range []*v1alpha1.Wukong{a, b} {
			w := getWukong(c, k, key(w))
			stalled := cond(w, v1alpha1.StalledCondition)
			if assert.NotNil(c, stalled, "%s: Stalled", w.Name) {
				assert.Equal(c, v1alpha1.ReasonBridgeNotAllowed, stalled.Reason, "%s: Stalled reason", w.Name)
				assert.Contains(c, stalled.Message, "spec.networks[0].bridgeName", "%s: Stalled names the field", w.Name)
				assert.Contains(c, stalled.Message, "being removed", "%s: Stalled message", w.Name)
			}
		}
	}, "NodeBridge %s to wait for a and b", br)
	for _, v := range vmis {
		assertSameVMI(t, v) // the guests keep running on the bridge
	}

	// a goes with every child; the bridge still waits for b.
	require.NoError(t, k.Delete(ctx, a))
	eventually(t, 1, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, key(a))
		for _, ch := range []child{
			{func() client.Object { return &kubevirtv1.VirtualMachine{} }, "a"},
			{func() client.Object { return &corev1.PersistentVolumeClaim{} }, "a-root"},
			{func() client.Object { return &nadv1.NetworkAttachmentDefinition{} }, "a-lan"},
			{func() client.Object { return &corev1.Secret{} }, "a-cloudinit"},
		} {
			assertGone(c, ch.obj(), types.NamespacedName{Namespace: ns, Name: ch.name})
		}
		inUse(c, "b")
	}, "Wukong a and its children to be gone, the NodeBridge waiting for b")

	// b goes: the bridge is removed from the nodes, then the policy and the
	// NodeBridge are deleted. Watch the policy and its enactments from now.
	// Enactments are nmstate.io/v1beta1 (the scheme of the suite may lack it).
	ws := runtime.NewScheme()
	require.NoError(t, nmstatev1.AddToScheme(ws))
	require.NoError(t, nmstatev1beta1.AddToScheme(ws))
	wc, err := client.NewWithWatch(restConfig, client.Options{Scheme: ws})
	require.NoError(t, err)
	wctx, stop := context.WithTimeout(ctx, scaled(3*timeout))
	defer stop()
	pw, err := wc.Watch(wctx, &nmstatev1.NodeNetworkConfigurationPolicyList{}, client.MatchingFields{"metadata.name": policy})
	require.NoError(t, err)
	defer pw.Stop()
	ew, err := wc.Watch(wctx, &nmstatev1beta1.NodeNetworkConfigurationEnactmentList{}, client.MatchingLabels{"nmstate.io/policy": policy})
	require.NoError(t, err)
	defer ew.Stop()
	require.NoError(t, k.Delete(ctx, b))

	var absentGen int64
	var last *nmstatev1.NodeNetworkConfigurationPolicy
	enacted := map[string]int64{} // node -> highest generation its enactment applied Available
	for deleted := false; !deleted; {
		select {
		case ev, ok := <-pw.ResultChan():
			require.True(t, ok, "the policy watch ended before the policy was deleted")
			live, isPolicy := ev.Object.(*nmstatev1.NodeNetworkConfigurationPolicy)
			require.True(t, isPolicy, "policy watch event %s: %v", ev.Type, ev.Object)
			if live.Annotations[annotationBridgeState] == "absent" && absentGen == 0 {
				absentGen = live.Generation
				for _, i := range desiredInterfaces(t, live) {
					assert.Equal(t, "absent", i.State, "the absent policy's interface %s", i.Name)
				}
			}
			last, deleted = live, ev.Type == watch.Deleted
		case ev, ok := <-ew.ResultChan():
			require.True(t, ok, "the enactment watch ended before the policy was deleted")
			if e, isEnactment := ev.Object.(*nmstatev1beta1.NodeNetworkConfigurationEnactment); isEnactment && ev.Type != watch.Deleted {
				if av := e.Status.Conditions.Find(shared.NodeNetworkConfigurationEnactmentConditionAvailable); av != nil && av.Status == corev1.ConditionTrue {
					node := e.Labels[network.LabelEnactmentNode]
					enacted[node] = max(enacted[node], e.Status.PolicyGeneration)
				}
			}
		case <-wctx.Done():
			t.Fatalf("the policy %s was not deleted after its last user went (last seen: %v)", policy, last)
		}
	}
	require.NotZero(t, absentGen, "the policy was deleted without first setting the bridge absent on the nodes")
	assert.Equal(t, "absent", last.Annotations[annotationBridgeState], "the policy's last state")
	av := last.Status.Conditions.Find(shared.NodeNetworkConfigurationPolicyConditionAvailable)
	assert.True(t, av != nil && av.Status == corev1.ConditionTrue, "the policy was Available (the bridge removed) when deleted: %v", last.Status.Conditions)
	assert.NotEmpty(t, enacted, "enactments of the policy")
	for node, gen := range enacted {
		// A node the parallel maintenance tests deleted keeps the enactment
		// it last applied (the policy owns it); NMState, and Wukong, wait
		// only for the nodes that exist.
		if err := k.Get(ctx, types.NamespacedName{Name: node}, &corev1.Node{}); apierrors.IsNotFound(err) {
			continue
		}
		assert.GreaterOrEqual(t, gen, absentGen, "node %s's enactment applied the absent state before the policy was deleted", node)
	}
	eventually(t, 1, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, key(b))
		assertGone(c, &nadv1.NetworkAttachmentDefinition{}, types.NamespacedName{Namespace: ns, Name: "b-lan"})
		assertGone(c, &v1alpha1.NodeBridge{}, types.NamespacedName{Name: br})
	}, "Wukong b and NodeBridge %s to be gone", br)

	// The nodes no longer have the bridge: NMState's NodeNetworkStates.
	states := &nmstatev1beta1.NodeNetworkStateList{}
	require.NoError(t, wc.List(ctx, states))
	require.NotEmpty(t, states.Items, "NodeNetworkStates")
	for _, s := range states.Items {
		var st struct {
			Interfaces []struct {
				Name string `json:"name"`
			} `json:"interfaces"`
		}
		if err := k.Get(ctx, types.NamespacedName{Name: s.Name}, &corev1.Node{}); apierrors.IsNotFound(err) {
			continue // the state of a deleted node, not yet collected
		}
		require.NoError(t, yaml.Unmarshal(s.Status.CurrentState.Raw, &st))
		for _, i := range st.Interfaces {
			assert.NotEqual(t, br, i.Name, "node %s still has the bridge", s.Name)
		}
	}
}

// nmstateInterface is the part of an NMState interface the tests read.
type nmstateInterface struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	State  string `json:"state"`
	Bridge struct {
		Port []struct {
			Name string `json:"name"`
		} `json:"port"`
	} `json:"bridge"`
}

// desiredInterfaces reads a policy's desired state (NMState YAML).
func desiredInterfaces(t *testing.T, p *nmstatev1.NodeNetworkConfigurationPolicy) []nmstateInterface {
	t.Helper()
	var state struct {
		Interfaces []nmstateInterface `json:"interfaces"`
	}
	require.NoError(t, yaml.Unmarshal(p.Spec.DesiredState.Raw, &state), "the desired state of %s", p.Name)
	require.NotEmpty(t, state.Interfaces, "the desired state of %s", p.Name)
	return state.Interfaces
}

func getNodeBridge(c require.TestingT, name string) *v1alpha1.NodeBridge {
	d := &v1alpha1.NodeBridge{}
	require.NoError(c, k.Get(context.Background(), types.NamespacedName{Name: name}, d), "NodeBridge %s", name)
	return d
}

func nodeBridgeCond(d *v1alpha1.NodeBridge, t string) *metav1.Condition {
	return meta.FindStatusCondition(d.Status.Conditions, t)
}

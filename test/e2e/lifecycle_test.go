package e2e_test

import (
	"context"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestCreate: a Wukong with an image disk, a blank disk, a secondary NIC and
// a cloud-init user becomes Running with node, IP and MAC in status, and its
// children carry the labels and owner reference.
func TestCreate(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "vm")
	w.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), Boot: true, Image: testImage},
		{Name: "data", Size: resource.MustParse("1Gi")},
	}
	w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br-create"}}
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
	assert.Contains(t, nad.Spec.Config, "br-create")

	dv := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-root"}, dv))
	assertOwnedChild(t, dv, w)
	rootPVC := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-root"}, rootPVC), "the DataVolume's PVC")

	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vm-data"}, pvc))
	assertOwnedChild(t, pvc, w)
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

// TestUpdateNICAdded: a new NIC gets its NAD and a VM template interface;
// the running guest needs a restart for it, shown as RestartRequired.
func TestUpdateNICAdded(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "nic")
	create(t, w)
	w = waitRunning(t, key(w))
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctxT(t), key(w), vmi))

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) {
		w.Spec.Networks = append(w.Spec.Networks, v1alpha1.NetworkSpec{Name: "extra", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br-extra"})
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
		assert.Equal(c, metav1.ConditionTrue, condStatus(w, v1alpha1.RestartRequiredCondition), "RestartRequired")
	}, "the NIC to be added")
	assertSameVMI(t, vmi)
}

// TestUpdateCPU: a cpu change updates the VM template and shows
// RestartRequired; the guest is not restarted.
func TestUpdateCPU(t *testing.T) {
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
		assert.Equal(c, uint32(2), cpu.Cores, "VM template cpu cores")
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

// TestDeleteReleasesEverything: two Wukongs share node bridge br-e2e (one
// NNCP, two holders); deleting one removes all its children and leaves the
// NNCP with the other holder; deleting the other removes the NNCP. A user NAD
// referenced by nadName is never touched.
func TestDeleteReleasesEverything(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := ctxT(t)
	policy := "wukong-br-br-e2e"

	user := userNAD(ns, "user-net")
	create(t, user)
	userRV := user.ResourceVersion

	a := newWukong(ns, "a")
	a.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), Image: testImage},
		{Name: "data", Size: resource.MustParse("1Gi")},
	}
	a.Spec.Networks = []v1alpha1.NetworkSpec{
		bridgeNIC("lan", "br-e2e", "eth1"),
		{Name: "user", NADName: "user-net"},
	}
	b := newWukong(ns, "b")
	b.Spec.Networks = []v1alpha1.NetworkSpec{bridgeNIC("lan", "br-e2e", "eth1")}
	create(t, a)
	create(t, b)
	a = waitRunning(t, key(a))
	waitRunning(t, key(b))

	holders := func(c assert.TestingT, want ...string) {
		p := &nmstatev1.NodeNetworkConfigurationPolicy{}
		if !assert.NoError(c, k.Get(context.Background(), types.NamespacedName{Name: policy}, p), "NNCP %s", policy) {
			return
		}
		assert.ElementsMatch(c, want, strings.Split(p.Annotations[annotationHolder], ","), "NNCP holders")
	}
	if !skipBridges {
		holders(t, ns+"/a", ns+"/b")
	}

	// Everything a owns, found by name.
	type child struct {
		obj  func() client.Object
		name string
	}
	aChildren := []child{
		{func() client.Object { return &kubevirtv1.VirtualMachine{} }, "a"},
		{func() client.Object { return &kubevirtv1.VirtualMachineInstance{} }, "a"},
		{func() client.Object { return &cdiv1.DataVolume{} }, "a-root"},
		{func() client.Object { return &corev1.PersistentVolumeClaim{} }, "a-root"},
		{func() client.Object { return &corev1.PersistentVolumeClaim{} }, "a-data"},
		{func() client.Object { return &nadv1.NetworkAttachmentDefinition{} }, "a-lan"},
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
		if !skipBridges {
			holders(c, ns+"/b")
		}
	}, "Wukong a and its children to be gone, the NNCP held by b only")

	kept := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, k.Get(ctx, key(user), kept), "the user's NAD survives")
	assert.Equal(t, userRV, kept.ResourceVersion, "the user's NAD is untouched")
	waitRunning(t, key(b))

	require.NoError(t, k.Delete(ctx, b))
	eventually(t, 1, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, key(b))
		assertGone(c, &kubevirtv1.VirtualMachine{}, key(b))
		if !skipBridges {
			assertGone(c, &nmstatev1.NodeNetworkConfigurationPolicy{}, types.NamespacedName{Name: policy})
		}
	}, "Wukong b gone and the NNCP released")
}

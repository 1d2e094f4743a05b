package e2e_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// Live changes of disks and NICs (#34): KubeVirt v1.9 hot-plugs a
// hotpluggable DataVolume/PVC volume added to a running VM's template
// (DeclarativeHotplugVolumes) and a bridge-bound interface
// (pkg/network/controllers/vm.go); Wukong writes an added disk as
// hotpluggable while the machine runs, and a removed NIC with state absent
// until KubeVirt has unplugged it.

// vmiVolume is the running VMI's volume name (nil when it has none).
func vmiVolume(vmi *kubevirtv1.VirtualMachineInstance, name string) *kubevirtv1.Volume {
	for i := range vmi.Spec.Volumes {
		if vmi.Spec.Volumes[i].Name == name {
			return &vmi.Spec.Volumes[i]
		}
	}
	return nil
}

// runningHotplugWukong creates a Wukong with one disk, waits for it to run
// and returns it with its VMI.
func runningHotplugWukong(t *testing.T, ns, name string) (*v1alpha1.Wukong, *kubevirtv1.VirtualMachineInstance) {
	t.Helper()
	w := newWukong(ns, name)
	create(t, w)
	w = waitRunning(t, key(w))
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctxT(t), key(w), vmi))
	return w, vmi
}

// assertNoRestartRequired: the Wukong does not ask for a restart.
func assertNoRestartRequired(c *assert.CollectT, w *v1alpha1.Wukong) {
	rr := cond(w, v1alpha1.RestartRequiredCondition)
	if rr != nil {
		assert.NotEqual(c, metav1.ConditionTrue, rr.Status, "RestartRequired: %s", rr.Message)
	}
}

// hotAddDisk adds disk data (1Gi, blank) with policy to the running w and
// waits for it to be attached live: hotpluggable in the VMI, hotplug phase
// Ready in status.volumes, no RestartRequired, a LiveAttach Event.
func hotAddDisk(t *testing.T, w *v1alpha1.Wukong, policy v1alpha1.DiskDeletionPolicy) {
	t.Helper()
	updateWukong(t, key(w), func(w *v1alpha1.Wukong) {
		w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "data", Size: resource.MustParse("1Gi"), DeletionPolicy: policy})
	})
	eventually(t, 1, func(c *assert.CollectT) {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(context.Background(), key(w), vmi))
		v := vmiVolume(vmi, "data")
		if assert.NotNil(c, v, "the running VMI has volume data") {
			assert.True(c, (v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.Hotpluggable) ||
				(v.DataVolume != nil && v.DataVolume.Hotpluggable), "hotpluggable: %+v", v.VolumeSource)
		}
		got := getWukong(c, k, key(w))
		vs := volumeStatus(got, "data")
		if assert.NotNil(c, vs, "status.volumes[data]") && assert.NotNil(c, vs.Hotplug, "status.volumes[data].hotplug") {
			assert.Equal(c, string(kubevirtv1.VolumeReady), vs.Hotplug.Phase, "hotplug phase (%s)", vs.Hotplug.Message)
		}
		assertNoRestartRequired(c, got)
		ev, err := eventsWith(w.Namespace, w.Name, v1alpha1.ReasonLiveAttach)
		require.NoError(c, err)
		assert.NotEmpty(c, ev, "a LiveAttach Event")
	}, "disk data to be hot-plugged")
}

// needGuestForUnplug skips off the sandbox: the test's Wukong has a blank
// boot disk, so on a real cluster no guest runs to take part in the
// unplug, and virt-launcher fails the detach (observed on the local
// cluster, KubeVirt v1.9.0: the VM's Synchronized False, "SyncVMI failed:
// LibvirtError(Code=99, ..., Message='device not found: no target device
// vdc')", the volume still in the VMI). TestLocalHotplugDisk removes a
// hot-plugged disk from a booted guest there.
func needGuestForUnplug(t *testing.T) {
	t.Helper()
	if !inSandbox {
		t.Skip("a live unplug needs a booted guest; this test's Wukong boots none (TestLocalHotplugDisk covers the real cluster)")
	}
}

// hotRemoveDisk removes disk data from the running w and waits until the
// VMI, the VM template and status.volumes no longer have it.
func hotRemoveDisk(t *testing.T, w *v1alpha1.Wukong) {
	t.Helper()
	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.Disks = w.Spec.Disks[:1] })
	eventually(t, 1, func(c *assert.CollectT) {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(context.Background(), key(w), vmi))
		assert.Nil(c, vmiVolume(vmi, "data"), "the running VMI lost volume data")
		for _, s := range vmi.Status.VolumeStatus {
			assert.NotEqual(c, "data", s.Name, "no volume status for data")
		}
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), key(w), vm))
		for _, v := range vm.Spec.Template.Spec.Volumes {
			assert.NotEqual(c, "data", v.Name, "the VM template lost volume data")
		}
		got := getWukong(c, k, key(w))
		assert.Nil(c, volumeStatus(got, "data"), "status.volumes[data] gone once its policy is carried out")
		assertNoRestartRequired(c, got)
		ev, err := eventsWith(w.Namespace, w.Name, v1alpha1.ReasonLiveDetach)
		require.NoError(c, err)
		assert.NotEmpty(c, ev, "a LiveDetach Event")
	}, "disk data to be detached")
}

// TestHotplugDiskAddRemoveDelete: a disk added to a running Wukong is
// attached live, and removed it is detached live; deletionPolicy Delete
// then deletes its claim. The guest is never restarted.
func TestHotplugDiskAddRemoveDelete(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	needGuestForUnplug(t)
	t.Parallel()
	ns := newNamespace(t)
	w, vmi := runningHotplugWukong(t, ns, "hotdel")

	hotAddDisk(t, w, v1alpha1.DiskDeletionPolicyDelete)
	assertSameVMI(t, vmi)
	claim := types.NamespacedName{Namespace: ns, Name: w.Name + "-data"}
	require.NoError(t, k.Get(ctxT(t), claim, &corev1.PersistentVolumeClaim{}), "the disk's claim exists")

	hotRemoveDisk(t, w)
	assertSameVMI(t, vmi)
	eventually(t, 1, func(c *assert.CollectT) {
		pvc := &corev1.PersistentVolumeClaim{}
		err := k.Get(context.Background(), claim, pvc)
		assert.True(c, apierrors.IsNotFound(err) || pvc.DeletionTimestamp != nil, "the claim is deleted (err %v)", err)
		ev, err := eventsWith(ns, w.Name, v1alpha1.ReasonRemovedDiskDeleted)
		require.NoError(c, err)
		assert.NotEmpty(c, ev, "a RemovedDiskDeleted Event")
	}, "the removed disk's claim to be deleted")
}

// TestHotplugDiskRemoveRetain: a hot-plugged disk with deletionPolicy
// Retain, removed, is detached live and its claim kept: no owner
// reference, labelled with where it came from.
func TestHotplugDiskRemoveRetain(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	needGuestForUnplug(t)
	t.Parallel()
	ns := newNamespace(t)
	w, vmi := runningHotplugWukong(t, ns, "hotret")

	hotAddDisk(t, w, v1alpha1.DiskDeletionPolicyRetain)
	hotRemoveDisk(t, w)
	assertSameVMI(t, vmi)
	claim := types.NamespacedName{Namespace: ns, Name: w.Name + "-data"}
	eventually(t, 1, func(c *assert.CollectT) {
		pvc := &corev1.PersistentVolumeClaim{}
		require.NoError(c, k.Get(context.Background(), claim, pvc), "the claim is kept")
		assert.Nil(c, pvc.DeletionTimestamp, "not being deleted")
		assert.Empty(c, pvc.OwnerReferences, "nothing deletes it")
		assert.Equal(c, w.Name, pvc.Labels[labelRetainedFromWukong])
		assert.Equal(c, "data", pvc.Labels[labelRetainedFromDisk])
		ev, err := eventsWith(ns, w.Name, v1alpha1.ReasonRemovedDiskRetained)
		require.NoError(c, err)
		assert.NotEmpty(c, ev, "a RemovedDiskRetained Event")
		got := getWukong(c, k, key(w))
		assert.NotContains(c, got.Finalizers, retainFinalizer, "no Retain disk left: no finalizer")
	}, "the removed disk's claim to be retained")
}

// TestHotplugNICAddRemove: a bridge NIC added to a running Wukong is
// hot-plugged (the VMI's status.interfaces gains it from the domain and
// Multus), and removed it is unplugged: state absent until KubeVirt has
// taken it off the VMI, then gone from the VM template too. No restart.
func TestHotplugNICAddRemove(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD, kindNNCP)
	needSecondaryNICGuests(t)
	needNodeBridges(t)
	t.Parallel()
	ns := newNamespace(t)
	bridge := tenantBridge(t, ns, "hp")
	w, vmi := runningHotplugWukong(t, ns, "hotnic")

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) {
		w.Spec.Networks = append(w.Spec.Networks, bridgeNIC("extra", bridge, ""))
	})
	eventually(t, 1, func(c *assert.CollectT) {
		live := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(context.Background(), key(w), live))
		var st *kubevirtv1.VirtualMachineInstanceNetworkInterface
		for i := range live.Status.Interfaces {
			if live.Status.Interfaces[i].Name == "extra" {
				st = &live.Status.Interfaces[i]
			}
		}
		if assert.NotNil(c, st, "the VMI reports interface extra") {
			assert.Contains(c, st.InfoSource, "domain", "plugged into the domain")
			assert.Contains(c, st.InfoSource, "multus-status", "attached to the pod by Multus")
			assert.NotEmpty(c, st.MAC)
		}
		got := getWukong(c, k, key(w))
		ns := networkStatus(got, "extra")
		if assert.NotNil(c, ns, "status.networks[extra]") {
			assert.NotEmpty(c, ns.MACAddress, "the new NIC's MAC in status")
		}
		assertNoRestartRequired(c, got)
		ev, err := eventsWith(w.Namespace, w.Name, v1alpha1.ReasonLiveAttach)
		require.NoError(c, err)
		assert.NotEmpty(c, ev, "a LiveAttach Event")
	}, "NIC extra to be hot-plugged")
	assertSameVMI(t, vmi)

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.Networks = w.Spec.Networks[:len(w.Spec.Networks)-1] })
	eventually(t, 1, func(c *assert.CollectT) {
		live := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(context.Background(), key(w), live))
		for _, i := range live.Spec.Domain.Devices.Interfaces {
			assert.NotEqual(c, "extra", i.Name, "the VMI spec lost interface extra")
		}
		for _, i := range live.Status.Interfaces {
			assert.NotEqual(c, "extra", i.Name, "the VMI status lost interface extra")
		}
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), key(w), vm))
		for _, i := range vm.Spec.Template.Spec.Domain.Devices.Interfaces {
			assert.NotEqual(c, "extra", i.Name, "the VM template lost interface extra")
		}
		got := getWukong(c, k, key(w))
		assertNoRestartRequired(c, got)
		ev, err := eventsWith(w.Namespace, w.Name, v1alpha1.ReasonLiveDetach)
		require.NoError(c, err)
		assert.NotEmpty(c, ev, "a LiveDetach Event")
	}, "NIC extra to be unplugged")
	assertSameVMI(t, vmi)
}

// TestHotplugNotAllowedStage: with the KubeVirt CR's vmRolloutStrategy
// Stage, a disk added to a running Wukong is written as an ordinary disk
// and waits for a restart: RestartRequired says which disk and why.
// Not parallel: it changes the sandbox's KubeVirt CR (restored after), and
// Go runs it before the parallel tests resume.
func TestHotplugNotAllowedStage(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	if !inSandbox {
		t.Skip("changes the cluster's KubeVirt CR: sandbox only")
	}
	ctx := ctxT(t)
	kv := &kubevirtv1.KubeVirt{}
	kvKey := client.ObjectKey{Namespace: sandbox.KubeVirtNamespace, Name: sandbox.KubeVirtName}
	require.NoError(t, k.Get(ctx, kvKey, kv))
	base := kv.DeepCopy()
	stage := kubevirtv1.VMRolloutStrategyStage
	kv.Spec.Configuration.VMRolloutStrategy = &stage
	require.NoError(t, k.Patch(ctx, kv, client.MergeFrom(base)))
	t.Cleanup(func() {
		now := &kubevirtv1.KubeVirt{}
		if err := k.Get(context.Background(), kvKey, now); err != nil {
			t.Errorf("reading the KubeVirt CR back: %v", err)
			return
		}
		b := now.DeepCopy()
		now.Spec.Configuration.VMRolloutStrategy = base.Spec.Configuration.VMRolloutStrategy
		if err := k.Patch(context.Background(), now, client.MergeFrom(b)); err != nil {
			t.Errorf("restoring the KubeVirt CR: %v", err)
		}
	})

	ns := newNamespace(t)
	w, vmi := runningHotplugWukong(t, ns, "stage")
	updateWukong(t, key(w), func(w *v1alpha1.Wukong) {
		w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "data", Size: resource.MustParse("1Gi")})
	})
	eventually(t, 1, func(c *assert.CollectT) {
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), key(w), vm))
		var found bool
		for _, v := range vm.Spec.Template.Spec.Volumes {
			if v.Name == "data" {
				found = true
				assert.False(c, (v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.Hotpluggable) ||
					(v.DataVolume != nil && v.DataVolume.Hotpluggable), "an ordinary disk")
			}
		}
		assert.True(c, found, "the VM template has disk data")
		got := getWukong(c, k, key(w))
		rr := cond(got, v1alpha1.RestartRequiredCondition)
		if assert.NotNil(c, rr, "RestartRequired") {
			assert.Equal(c, metav1.ConditionTrue, rr.Status)
			assert.True(c, strings.Contains(rr.Message, "disk data") && strings.Contains(rr.Message, "KubeVirt's vmRolloutStrategy is Stage"),
				"the message names the disk and why: %q", rr.Message)
		}
		live := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(context.Background(), key(w), live))
		assert.Nil(c, vmiVolume(live, "data"), "not attached to the running VMI")
	}, "the added disk to wait for a restart")
	assertSameVMI(t, vmi)
}

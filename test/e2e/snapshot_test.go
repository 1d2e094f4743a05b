package e2e_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

var kindVirtualMachineSnapshot = schema.GroupVersionKind{Group: "snapshot.kubevirt.io", Version: "v1beta1", Kind: "VirtualMachineSnapshot"}

func newSnapshot(ns, name, wukong string) *v1alpha1.WukongSnapshot {
	return &v1alpha1.WukongSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.WukongSnapshotSpec{WukongName: wukong}}
}

// waitSnapshotReady waits for readyToUse and returns the snapshot.
func waitSnapshotReady(t *testing.T, nn types.NamespacedName) *v1alpha1.WukongSnapshot {
	t.Helper()
	s := &v1alpha1.WukongSnapshot{}
	eventually(t, 1, func(c *assert.CollectT) {
		require.NoError(c, k.Get(context.Background(), nn, s))
		assert.Equal(c, v1alpha1.SnapshotSucceeded, s.Status.Phase, "phase")
		assert.True(c, ptr.Deref(s.Status.ReadyToUse, false), "readyToUse")
		if r := cond(s, v1alpha1.ReadyCondition); assert.NotNil(c, r, "Ready") {
			assert.Equal(c, metav1.ConditionTrue, r.Status, "Ready: %s", r.Message)
		}
		assert.Equal(c, s.Generation, s.Status.ObservedGeneration)
	}, "WukongSnapshot %s to be ready to use", nn)
	return s
}

// waitSnapshotStalled waits for Stalled with reason and returns the
// Stalled message.
func waitSnapshotStalled(t *testing.T, nn types.NamespacedName, reason string) string {
	t.Helper()
	var msg string
	eventually(t, 1, func(c *assert.CollectT) {
		s := &v1alpha1.WukongSnapshot{}
		require.NoError(c, k.Get(context.Background(), nn, s))
		st := cond(s, v1alpha1.StalledCondition)
		if assert.NotNil(c, st, "Stalled") {
			assert.Equal(c, reason, st.Reason)
			msg = st.Message
		}
		assert.Empty(c, s.Status.VirtualMachineSnapshotName, "no VirtualMachineSnapshot taken")
	}, "WukongSnapshot %s to be Stalled (%s)", nn, reason)
	return msg
}

// snapshotClass is the StorageClass the snapshot tests put their disks on:
// "" (the default class) when a VolumeSnapshotClass serves the default
// class's provisioner, as in the sandbox; else the first class, by name,
// whose provisioner one serves (make local-cluster-up: the default is
// local-path, which has none, and wukong-csi-hostpath has one). KubeVirt
// snapshots a claim only through a VolumeSnapshotClass of its driver
// (pkg/storage/snapshot: "No VolumeSnapshotClass"). With none, the test
// skips off the sandbox, naming what is missing, and fails in it.
func snapshotClass(t *testing.T) string {
	t.Helper()
	vscs := &unstructured.UnstructuredList{}
	vscs.SetGroupVersionKind(schema.GroupVersionKind{Group: "snapshot.storage.k8s.io", Version: "v1", Kind: "VolumeSnapshotClassList"})
	require.NoError(t, k.List(ctxT(t), vscs), "listing VolumeSnapshotClasses")
	drivers := map[string]bool{}
	for _, v := range vscs.Items {
		d, _, _ := unstructured.NestedString(v.Object, "driver")
		drivers[d] = true
	}
	def := defaultStorageClass(t)
	if drivers[def.Provisioner] {
		return ""
	}
	classes := &storagev1.StorageClassList{}
	require.NoError(t, k.List(ctxT(t), classes))
	sort.Slice(classes.Items, func(i, j int) bool { return classes.Items[i].Name < classes.Items[j].Name })
	for _, sc := range classes.Items {
		if drivers[sc.Provisioner] {
			return sc.Name
		}
	}
	if inSandbox {
		require.FailNow(t, "the sandbox's default StorageClass has no VolumeSnapshotClass", "provisioner %s", def.Provisioner)
	}
	t.Skipf("no StorageClass has a VolumeSnapshotClass (snapshot.storage.k8s.io/v1) serving its provisioner; the default %s (%s) has none", def.Name, def.Provisioner)
	return ""
}

// onSnapshotClass puts every disk of w on snapshotClass.
func onSnapshotClass(t *testing.T, w *v1alpha1.Wukong) *v1alpha1.Wukong {
	t.Helper()
	class := snapshotClass(t)
	for i := range w.Spec.Disks {
		w.Spec.Disks[i].StorageClassName = class
	}
	return w
}

// bindsOnFirstConsumer reports whether StorageClass class ("" the default)
// binds its claims only when a pod first uses them.
func bindsOnFirstConsumer(t *testing.T, class string) bool {
	t.Helper()
	sc := defaultStorageClass(t)
	if class != "" {
		sc = &storagev1.StorageClass{}
		require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: class}, sc))
	}
	return ptr.Deref(sc.VolumeBindingMode, "") == storagev1.VolumeBindingWaitForFirstConsumer
}

// agentConnected reports whether KubeVirt says the guest agent of the
// Wukong's VMI is connected (condition AgentConnected True).
func agentConnected(t *testing.T, nn types.NamespacedName) bool {
	t.Helper()
	for _, c := range getVMI(t, nn).Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceAgentConnected {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestSnapshotRunningWukong: a snapshot of a running Wukong (guest agent
// connected) is ready to use, lists its disks under their spec.disks names
// with the claims and VolumeSnapshots KubeVirt made, says the guest was
// frozen (indications Online and GuestAgent), holds the Wukong's spec, and
// is deleted with the Wukong by default.
func TestSnapshotRunningWukong(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindVirtualMachineSnapshot)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "vm")
	w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "data", Size: resource.MustParse("2Gi")})
	create(t, onSnapshotClass(t, w))
	w = waitRunning(t, key(w))
	// The sandbox connects the guest agent; on a real cluster this
	// Wukong's blank disk boots no guest, so KubeVirt snapshots it
	// crash-consistent (TestLocalSnapshotRestoreClone boots a guest with
	// an agent and checks the frozen snapshot).
	agent := agentConnected(t, key(w))
	if inSandbox {
		require.True(t, agent, "the sandbox's VMI reports AgentConnected")
	}

	snap := newSnapshot(ns, "before-upgrade", w.Name)
	create(t, snap)
	snap = waitSnapshotReady(t, key(snap))
	if agent {
		assert.Equal(t, []v1alpha1.SnapshotIndication{v1alpha1.IndicationGuestAgent, v1alpha1.IndicationOnline}, snap.Status.Indications)
		if assert.NotNil(t, snap.Status.Frozen) {
			assert.True(t, *snap.Status.Frozen, "frozen: the guest agent was connected")
		}
		assert.Equal(t, v1alpha1.ConsistencyFrozen, snap.Status.Consistency)
	} else {
		assert.Equal(t, []v1alpha1.SnapshotIndication{v1alpha1.IndicationNoGuestAgent, v1alpha1.IndicationOnline}, snap.Status.Indications)
		assert.False(t, ptr.Deref(snap.Status.Frozen, true), "not frozen: no guest agent")
		assert.Equal(t, v1alpha1.ConsistencyCrash, snap.Status.Consistency)
	}
	require.Len(t, snap.Status.Disks, 2)
	for _, d := range snap.Status.Disks {
		assert.Equal(t, w.Name+"-"+d.Name, d.ClaimName, "disk %s: the Wukong's claim", d.Name)
		assert.NotEmpty(t, d.VolumeSnapshotName, "disk %s", d.Name)
		assert.True(t, ptr.Deref(d.ReadyToUse, false), "disk %s ready", d.Name)
		assert.NotNil(t, d.RestoreSize, "disk %s restoreSize", d.Name)
	}
	assert.Equal(t, []string{"data", "root"}, []string{snap.Status.Disks[0].Name, snap.Status.Disks[1].Name})
	if assert.NotNil(t, snap.Status.Size) {
		// The sum of the disks' restore sizes: 3Gi in the sandbox; a real
		// provisioner may round a claim up (CDI adds filesystem overhead).
		sum := resource.Quantity{}
		for _, d := range snap.Status.Disks {
			if d.RestoreSize != nil {
				sum.Add(*d.RestoreSize)
			}
		}
		assert.Equal(t, 0, snap.Status.Size.Cmp(sum), "size %s is the disks' restore sizes %s", snap.Status.Size, &sum)
		if inSandbox {
			assert.Equal(t, 0, snap.Status.Size.Cmp(resource.MustParse("3Gi")), "size %s", snap.Status.Size)
		} else {
			assert.GreaterOrEqual(t, snap.Status.Size.Cmp(resource.MustParse("3Gi")), 0, "size %s", snap.Status.Size)
		}
	}
	if assert.NotNil(t, snap.Status.WukongSpec) {
		assert.Len(t, snap.Status.WukongSpec.Disks, 2, "the Wukong's spec is captured")
	}
	assert.Equal(t, w.UID, snap.Status.WukongUID)
	assert.NotNil(t, snap.Status.CreationTime)

	// KubeVirt's objects: the VirtualMachineSnapshot is the WukongSnapshot's.
	vms := &snapshotv1.VirtualMachineSnapshot{}
	require.NoError(t, k.Get(ctxT(t), key(snap), vms))
	assert.True(t, metav1.IsControlledBy(vms, snap), "VirtualMachineSnapshot controlled by the WukongSnapshot")
	assert.Equal(t, w.Name, vms.Spec.Source.Name)
	// KubeVirt's own admission (VMSnapshotAdmitter; in the sandbox,
	// hack/kubevirt-admission serves it) keeps the spec immutable.
	vms.Spec.Source.Name = "other"
	err := k.Update(ctxT(t), vms)
	if assert.Error(t, err, "KubeVirt refuses a changed VirtualMachineSnapshot spec") {
		assert.Contains(t, err.Error(), "spec in immutable after creation", "KubeVirt's words")
	}

	// deletionPolicy Delete (default): owned by the Wukong, not as controller.
	ref := metav1.GetControllerOf(snap)
	assert.Nil(t, ref, "no controller")
	var owned bool
	for _, r := range snap.OwnerReferences {
		owned = owned || (r.Kind == "Wukong" && r.UID == w.UID)
	}
	assert.True(t, owned, "owner reference to the Wukong (deleted with it)")
}

// TestSnapshotTenancy: a WukongSnapshot naming a Wukong that exists only in
// another namespace gets the very message of one naming no Wukong at all.
func TestSnapshotTenancy(t *testing.T) {
	requireKinds(t, kindVirtualMachineSnapshot)
	t.Parallel()
	other := newNamespace(t)
	mine := newNamespace(t)
	victim := newWukong(other, "secret-vm")
	victim.Spec.StartStrategy = &v1alpha1.StartStrategy{AutoStart: new(false)}
	create(t, victim)

	elsewhere := newSnapshot(mine, "grab", "secret-vm")
	nowhere := newSnapshot(mine, "typo", "no-such-vm")
	create(t, elsewhere)
	create(t, nowhere)
	msgElsewhere := waitSnapshotStalled(t, key(elsewhere), v1alpha1.ReasonWukongNotFound)
	msgNowhere := waitSnapshotStalled(t, key(nowhere), v1alpha1.ReasonWukongNotFound)
	assert.Equal(t, msgNowhere, strings.ReplaceAll(msgElsewhere, "secret-vm", "no-such-vm"), "same words whether or not it exists elsewhere")
	assert.NotContains(t, msgElsewhere, other, "the other namespace is not named")

	// A restore naming a snapshot of another namespace: the same answer as
	// for a snapshot that does not exist.
	create(t, newWukong(mine, "mine"))
	rst := &v1alpha1.WukongRestore{ObjectMeta: metav1.ObjectMeta{Namespace: mine, Name: "r"},
		Spec: v1alpha1.WukongRestoreSpec{WukongName: "mine", SnapshotName: "their-snapshot"}}
	create(t, &v1alpha1.WukongSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "their-snapshot"}, Spec: v1alpha1.WukongSnapshotSpec{WukongName: "secret-vm"}})
	create(t, rst)
	eventually(t, 1, func(c *assert.CollectT) {
		got := &v1alpha1.WukongRestore{}
		require.NoError(c, k.Get(context.Background(), key(rst), got))
		st := cond(got, v1alpha1.StalledCondition)
		if assert.NotNil(c, st, "Stalled") {
			assert.Equal(c, v1alpha1.ReasonSnapshotNotFound, st.Reason)
			assert.Equal(c, `spec.snapshotName: no WukongSnapshot "their-snapshot" in this namespace`, st.Message)
		}
	}, "restore refused")
}

// TestSnapshotClassWithoutSnapshots: a disk on a StorageClass whose CSI
// driver has no VolumeSnapshotClass (KubeVirt reports the volume
// enabled=false in the VM's volumeSnapshotStatuses) makes the snapshot
// Stalled naming spec.disks[i].storageClassName; no snapshot is taken.
func TestSnapshotClassWithoutSnapshots(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindVirtualMachineSnapshot)
	if !inSandbox {
		t.Skip("the class without snapshot support is the sandbox's second driver")
	}
	t.Parallel()
	ns := newNamespace(t)
	class := "nosnap-" + randSuffix()
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: sandbox.SnapshotlessProvisioner,
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate)}
	create(t, sc)
	t.Cleanup(func() { _ = k.Delete(context.Background(), sc) })
	// CDI knows no such driver: the administrator completes its profile.
	eventually(t, 1, func(c *assert.CollectT) {
		sp := &cdiv1.StorageProfile{}
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Name: class}, sp))
		sp.Spec.ClaimPropertySets = sandbox.ClaimPropertySets()
		require.NoError(c, k.Update(context.Background(), sp))
	}, "StorageProfile %s completed", class)

	w := newWukong(ns, "vm")
	w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "scratch", Size: resource.MustParse("1Gi"), StorageClassName: class})
	create(t, w)
	waitRunning(t, key(w))
	snap := newSnapshot(ns, "s", w.Name)
	create(t, snap)
	msg := waitSnapshotStalled(t, key(snap), v1alpha1.ReasonSnapshotNotSupported)
	assert.Contains(t, msg, "spec.disks[1].storageClassName of Wukong vm")
	assert.Contains(t, msg, "No VolumeSnapshotClass", "KubeVirt's reason")
	err := k.Get(ctxT(t), key(snap), &snapshotv1.VirtualMachineSnapshot{})
	assert.True(t, apierrors.IsNotFound(err), "no VirtualMachineSnapshot: %v", err)
}

// TestRestoreInPlace: restoring a running Wukong waits, saying to stop it
// first; once stopped, KubeVirt restores every disk in place (claims of the
// same names, recreated from the VolumeSnapshots, owned by their
// DataVolumes again), the Wukong is Restoring meanwhile, runs again
// afterwards per its run strategy, and its controller kept what KubeVirt
// wrote (the VM's volumes).
func TestRestoreInPlace(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindVirtualMachineSnapshot)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "vm")
	create(t, onSnapshotClass(t, w))
	w = waitRunning(t, key(w))
	snap := newSnapshot(ns, "s", w.Name)
	create(t, snap)
	waitSnapshotReady(t, key(snap))
	oldClaim := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "vm-root"}, oldClaim))

	rst := &v1alpha1.WukongRestore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "back"},
		Spec: v1alpha1.WukongRestoreSpec{WukongName: w.Name, SnapshotName: snap.Name}}
	create(t, rst)
	eventually(t, 1, func(c *assert.CollectT) {
		got := &v1alpha1.WukongRestore{}
		require.NoError(c, k.Get(context.Background(), key(rst), got))
		assert.Equal(c, v1alpha1.RestorePending, got.Status.Phase)
		if r := cond(got, v1alpha1.ReadyCondition); assert.NotNil(c, r) {
			assert.Equal(c, v1alpha1.ReasonTargetRunning, r.Reason)
			assert.Contains(c, r.Message, "stop the Wukong first")
		}
		assert.Empty(c, got.Status.VirtualMachineRestoreName, "nothing restored while it runs")
	}, "restore of a running Wukong waits")
	assertGone(t, &snapshotv1.VirtualMachineRestore{}, key(rst))

	// virtctl stop; then the restore goes ahead.
	powerAction(t, key(w), kubevirtv1.RunStrategyHalted)
	sawRestoring := false
	eventually(t, 2, func(c *assert.CollectT) {
		if got := getWukong(c, k, key(w)); got.Status.Phase == v1alpha1.PhaseRestoring {
			sawRestoring = true
		}
		got := &v1alpha1.WukongRestore{}
		require.NoError(c, k.Get(context.Background(), key(rst), got))
		assert.Equal(c, v1alpha1.RestoreSucceeded, got.Status.Phase, "phase (Ready: %v)", cond(got, v1alpha1.ReadyCondition))
		assert.Equal(c, []v1alpha1.RestoredDisk{{Name: "root", ClaimName: "vm-root", VolumeSnapshotName: snapVolume(c, key(snap), "root")}}, got.Status.Disks)
	}, "restore to succeed")
	t.Logf("saw the Wukong in phase Restoring: %v", sawRestoring)

	// The claim: same name, a new object made from the VolumeSnapshot, its
	// DataVolume's again.
	claim := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "vm-root"}, claim))
	assert.NotEqual(t, oldClaim.UID, claim.UID, "the claim was recreated")
	if assert.NotNil(t, claim.Spec.DataSource) {
		assert.Equal(t, "VolumeSnapshot", claim.Spec.DataSource.Kind)
		assert.Equal(t, snapVolume(t, key(snap), "root"), claim.Spec.DataSource.Name)
	}
	eventually(t, 1, func(c *assert.CollectT) {
		pvc := &corev1.PersistentVolumeClaim{}
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "vm-root"}, pvc))
		if ref := metav1.GetControllerOf(pvc); assert.NotNil(c, ref, "controller") {
			assert.Equal(c, "DataVolume", ref.Kind)
		}
	}, "CDI took the claim back")

	// Running again (the Wukong's strategy: Always), with status true.
	w = waitRunning(t, key(w))
	v := volumeStatus(w, "root")
	if assert.NotNil(t, v) {
		assert.Equal(t, "vm-root", v.PVCName)
		assert.True(t, v.Bound)
	}
	// Wukong kept KubeVirt's restored volume (a claim volume of the same
	// claim) and did not bring the dataVolume form back.
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(w), vm))
	var root *kubevirtv1.Volume
	for i := range vm.Spec.Template.Spec.Volumes {
		if vm.Spec.Template.Spec.Volumes[i].Name == "root" {
			root = &vm.Spec.Template.Spec.Volumes[i]
		}
	}
	if assert.NotNil(t, root) {
		assert.Nil(t, root.DataVolume, "not reverted to a dataVolume volume")
		if assert.NotNil(t, root.PersistentVolumeClaim) {
			assert.Equal(t, "vm-root", root.PersistentVolumeClaim.ClaimName)
		}
	}
	assert.NotEmpty(t, vm.Annotations["restore.kubevirt.io/lastRestoreUID"], "KubeVirt's mark stays")
	dv := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "vm-root"}, dv))
	assert.Contains(t, dv.Annotations, cdiv1.AnnPrePopulated, "the DataVolume stays prePopulated: CDI does not import again")
}

// TestRestoreStopTarget: with targetReadinessPolicy StopTarget KubeVirt
// stops the running Wukong, restores, and the Wukong runs again.
func TestRestoreStopTarget(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindVirtualMachineSnapshot)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "vm")
	create(t, onSnapshotClass(t, w))
	waitRunning(t, key(w))
	snap := newSnapshot(ns, "s", w.Name)
	create(t, snap)
	waitSnapshotReady(t, key(snap))
	rst := &v1alpha1.WukongRestore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "back"},
		Spec: v1alpha1.WukongRestoreSpec{WukongName: w.Name, SnapshotName: snap.Name, TargetReadinessPolicy: v1alpha1.RestoreStopTarget}}
	create(t, rst)
	eventually(t, 2, func(c *assert.CollectT) {
		got := &v1alpha1.WukongRestore{}
		require.NoError(c, k.Get(context.Background(), key(rst), got))
		assert.Equal(c, v1alpha1.RestoreSucceeded, got.Status.Phase, "phase (Ready: %v)", cond(got, v1alpha1.ReadyCondition))
	}, "restore to succeed")
	waitRunning(t, key(w))
}

// snapVolume is the VolumeSnapshot of disk in the snapshot's status.
func snapVolume(c require.TestingT, nn types.NamespacedName, disk string) string {
	s := &v1alpha1.WukongSnapshot{}
	require.NoError(c, k.Get(context.Background(), nn, s))
	for _, d := range s.Status.Disks {
		if d.Name == disk {
			return d.VolumeSnapshotName
		}
	}
	return ""
}

var _ client.Object = &v1alpha1.WukongRestore{}

// TestSnapshotWaitsForUnboundDisks: a Wukong never started, whose disk's
// class binds on first consumer, has no volume to snapshot: the
// WukongSnapshot waits (Reconciling, WaitingForDisks, naming the disk) and
// makes no VirtualMachineSnapshot (KubeVirt's would wait for the claim and
// fail at its failureDeadline); once the Wukong starts and the claim
// binds, the snapshot is taken.
func TestSnapshotWaitsForUnboundDisks(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindVirtualMachineSnapshot)
	t.Parallel()
	class := sandbox.StorageClassWFFC
	if !inSandbox {
		class = snapshotClass(t)
		if !bindsOnFirstConsumer(t, class) {
			t.Skipf("the StorageClass with a VolumeSnapshotClass (%q, \"\" the default) binds its claims at once", class)
		}
	}
	ns := newNamespace(t)
	w := newWukong(ns, "later")
	w.Spec.Disks[0].StorageClassName = class
	w.Spec.StartStrategy = &v1alpha1.StartStrategy{AutoStart: new(false)}
	create(t, w)
	eventually(t, 1, func(c *assert.CollectT) {
		assert.Equal(c, v1alpha1.PhaseStopped, getWukong(c, k, key(w)).Status.Phase)
	}, "the stopped Wukong")
	snap := newSnapshot(ns, "early", w.Name)
	create(t, snap)
	eventually(t, 1, func(c *assert.CollectT) {
		got := &v1alpha1.WukongSnapshot{}
		require.NoError(c, k.Get(context.Background(), key(snap), got))
		if r := cond(got, v1alpha1.ReadyCondition); assert.NotNil(c, r, "Ready") {
			assert.Equal(c, v1alpha1.ReasonWaitingForDisks, r.Reason)
			assert.Contains(c, r.Message, "disk(s) root (WaitForFirstConsumer) of Wukong later are not bound")
		}
		if rc := cond(got, v1alpha1.ReconcilingCondition); assert.NotNil(c, rc, "Reconciling") {
			assert.Equal(c, metav1.ConditionTrue, rc.Status)
		}
		assert.Nil(c, cond(got, v1alpha1.StalledCondition), "not Stalled: starting the Wukong is enough")
		assert.Empty(c, got.Status.VirtualMachineSnapshotName)
	}, "the snapshot to wait for the disk")
	assertGone(t, &snapshotv1.VirtualMachineSnapshot{}, key(snap))

	powerAction(t, key(w), kubevirtv1.RunStrategyAlways)
	waitRunning(t, key(w))
	got := waitSnapshotReady(t, key(snap))
	require.Len(t, got.Status.Disks, 1)
	assert.Equal(t, "later-root", got.Status.Disks[0].ClaimName)
}

// TestSnapshotDeletionPolicy: deleting a Wukong deletes its snapshots of
// deletionPolicy Delete (garbage collection through the owner reference),
// with KubeVirt's VirtualMachineSnapshot; a Retain snapshot stays, ready to
// use, with its VirtualMachineSnapshot.
func TestSnapshotDeletionPolicy(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindVirtualMachineSnapshot)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "vm")
	w.Spec.StartStrategy = &v1alpha1.StartStrategy{AutoStart: new(false)}
	create(t, onSnapshotClass(t, w))
	bindByFirstStart(t, w) // else the snapshot waits for the disk (TestSnapshotWaitsForUnboundDisks)
	eventually(t, 1, func(c *assert.CollectT) {
		assert.Equal(c, v1alpha1.PhaseStopped, getWukong(c, k, key(w)).Status.Phase)
	}, "the stopped Wukong")
	gone := newSnapshot(ns, "goes", w.Name)
	kept := newSnapshot(ns, "stays", w.Name)
	kept.Spec.DeletionPolicy = v1alpha1.SnapshotRetainPolicy
	create(t, gone)
	create(t, kept)
	waitSnapshotReady(t, key(gone))
	s := waitSnapshotReady(t, key(kept))
	assert.Equal(t, v1alpha1.ConsistencyOffline, s.Status.Consistency, "a stopped VM: no indications")
	assert.Empty(t, s.Status.Indications)
	assert.Empty(t, s.OwnerReferences, "Retain: no owner reference to the Wukong")

	// The policy can change: Delete -> Retain drops the owner reference.
	switched := newSnapshot(ns, "switched", w.Name)
	create(t, switched)
	waitSnapshotReady(t, key(switched))
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &v1alpha1.WukongSnapshot{}
		if err := k.Get(ctxT(t), key(switched), cur); err != nil {
			return err
		}
		require.NotEmpty(t, cur.OwnerReferences, "Delete: owned by the Wukong")
		cur.Spec.DeletionPolicy = v1alpha1.SnapshotRetainPolicy
		return k.Update(ctxT(t), cur)
	}))
	eventually(t, 1, func(c *assert.CollectT) {
		cur := &v1alpha1.WukongSnapshot{}
		require.NoError(c, k.Get(context.Background(), key(switched), cur))
		assert.Empty(c, cur.OwnerReferences, "Retain now: the owner reference is gone")
	}, "owner reference removed")

	require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, key(w))))
	eventually(t, 2, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.WukongSnapshot{}, key(gone))
		assertGone(c, &snapshotv1.VirtualMachineSnapshot{}, key(gone))
		assertGone(c, &v1alpha1.Wukong{}, key(w))
	}, "the Delete snapshot goes with the Wukong")
	waitSnapshotReady(t, key(switched))
	s = waitSnapshotReady(t, key(kept))
	require.NoError(t, k.Get(ctxT(t), key(kept), &snapshotv1.VirtualMachineSnapshot{}), "its VirtualMachineSnapshot stays")
	assert.Len(t, s.Status.Disks, 1)
	assert.Nil(t, cond(s, v1alpha1.StalledCondition), "a taken snapshot does not need its Wukong")
}

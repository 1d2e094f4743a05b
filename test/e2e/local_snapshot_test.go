package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestLocalSnapshotRestoreClone (issue 31, make e2e-local): the data
// protection path on real KubeVirt, CDI, the real snapshot controller and
// CSI snapshotter sidecar, and our CSI driver (class wukong-csi-hostpath,
// VolumeSnapshotClass wukong-csi-hostpath). A guest writes a file; a
// WukongSnapshot of the running guest is taken; the file is deleted;
// then, each checked IN THE GUEST over SSH:
//   - a new Wukong whose boot disk is cloned from the snapshot reads the
//     first content;
//   - the original Wukong restored in place (targetReadinessPolicy
//     StopTarget: KubeVirt stops it, restores, it runs again) reads the
//     first content;
//   - a new Wukong whose boot disk is cloned from the (stopped) original
//     Wukong reads it too.
func TestLocalSnapshotRestoreClone(t *testing.T) {
	realKubeVirt(t)
	url := realCDI(t)
	needClass(t, expandableClass)
	requireKinds(t, kindVirtualMachineSnapshot)
	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	orig := types.NamespacedName{Namespace: ns, Name: "orig-" + randSuffix()}
	const file = "/var/lib/wukong-snapshot-check"
	first := "first-" + randSuffix()
	write := func(ip, content string) {
		t.Helper()
		out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, fmt.Sprintf("echo %s | sudo tee %s >/dev/null && sync && sudo cat %s", content, file, file))
		require.NoError(t, err, "writing %s: %s", file, out)
		require.Equal(t, content, strings.TrimSpace(out))
	}
	read := func(nn types.NamespacedName, ip string) string {
		t.Helper()
		out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "sudo cat "+file)
		require.NoError(t, err, "%s: reading %s: %s", nn.Name, file, out)
		return strings.TrimSpace(out)
	}
	boot := func(nn types.NamespacedName) string {
		t.Helper()
		g.deadline = time.Now().Add(g.timeout)
		started := time.Now()
		ip := g.bootAndSSH(t, nn).Status.PodIP
		t.Logf("%s: SSH answered %.0f s after the start", nn.Name, time.Since(started).Seconds())
		return ip
	}

	w := g.wukong(ns, orig.Name)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, Image: url, StorageClassName: expandableClass}}
	create(t, w)
	ip := boot(orig)
	write(ip, first)

	snapKey := types.NamespacedName{Namespace: ns, Name: "snap-" + randSuffix()}
	taken := time.Now()
	create(t, newSnapshot(ns, snapKey.Name, orig.Name))
	snap := waitSnapshotReady(t, snapKey)
	t.Logf("snapshot %s ready %.0f s after create: indications %v, frozen %v, consistency %s, size %v, disks %+v",
		snap.Name, time.Since(taken).Seconds(), snap.Status.Indications, ptr.Deref(snap.Status.Frozen, false), snap.Status.Consistency, snap.Status.Size, snap.Status.Disks)
	require.Len(t, snap.Status.Disks, 1)
	assert.Equal(t, orig.Name+"-root", snap.Status.Disks[0].ClaimName)
	assert.NotEmpty(t, snap.Status.Disks[0].VolumeSnapshotName)
	assert.Contains(t, snap.Status.Indications, v1alpha1.IndicationOnline, "taken while the guest ran")
	out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, fmt.Sprintf("sudo rm %s && sync && ! test -e %s && echo deleted", file, file))
	require.NoError(t, err, "deleting %s: %s", file, out)
	require.Equal(t, "deleted", strings.TrimSpace(out))

	// Clone from the snapshot into a new Wukong.
	fromSnap := types.NamespacedName{Namespace: ns, Name: "fromsnap-" + randSuffix()}
	w = g.wukong(ns, fromSnap.Name)
	// At least the VolumeSnapshot's restoreSize, which CDI compares the
	// request with: CDI's claim of the 3Gi disk includes its file system
	// overhead (a 3Gi request is Stalled DiskTooSmall, naming that size).
	require.NotNil(t, snap.Status.Disks[0].RestoreSize)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: *snap.Status.Disks[0].RestoreSize, Boot: true, StorageClassName: expandableClass,
		CloneFrom: &v1alpha1.DiskCloneSource{Snapshot: snapKey.Name}}}
	create(t, w)
	cip := boot(fromSnap)
	assert.Equal(t, first, read(fromSnap, cip), "the clone of the snapshot holds the content at snapshot time")
	if v := volumeStatus(getWukong(t, k, fromSnap), "root"); assert.NotNil(t, v) {
		t.Logf("%s: root cloned by CDI with cloneType %q, claim %s", fromSnap.Name, v.CloneType, v.PVCName)
	}
	require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, fromSnap)))

	// Restore the original in place; KubeVirt stops it first.
	oldClaim := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: orig.Name + "-root"}, oldClaim))
	rst := &v1alpha1.WukongRestore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "back-" + randSuffix()},
		Spec: v1alpha1.WukongRestoreSpec{WukongName: orig.Name, SnapshotName: snapKey.Name, TargetReadinessPolicy: v1alpha1.RestoreStopTarget}}
	restoring := time.Now()
	create(t, rst)
	var phases []v1alpha1.Phase
	eventually(t, 4, func(c *assert.CollectT) {
		if p := getWukong(c, k, orig).Status.Phase; len(phases) == 0 || phases[len(phases)-1] != p {
			phases = append(phases, p)
		}
		got := &v1alpha1.WukongRestore{}
		require.NoError(c, k.Get(context.Background(), key(rst), got))
		assert.Equal(c, v1alpha1.RestoreSucceeded, got.Status.Phase, "phase (Ready: %v)", cond(got, v1alpha1.ReadyCondition))
	}, "restore to succeed")
	t.Logf("restore %s succeeded %.0f s after create; Wukong phases seen %v", rst.Name, time.Since(restoring).Seconds(), phases)
	claim := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: orig.Name + "-root"}, claim))
	assert.NotEqual(t, oldClaim.UID, claim.UID, "KubeVirt recreated the claim from the VolumeSnapshot, under its name")
	ip = boot(orig)
	assert.Equal(t, first, read(orig, ip), "after the restore the guest reads the content at snapshot time")
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), orig, vm))
	assert.NotEmpty(t, vm.Annotations["restore.kubevirt.io/lastRestoreUID"], "KubeVirt's restore mark stays: Wukong did not undo it")

	// Clone from the stopped original into a new Wukong.
	powerAction(t, orig, kubevirtv1.RunStrategyHalted)
	eventually(t, 4, func(c *assert.CollectT) {
		assert.Equal(c, v1alpha1.PhaseStopped, getWukong(c, k, orig).Status.Phase)
	}, "%s to stop", orig)
	fromVM := types.NamespacedName{Namespace: ns, Name: "fromvm-" + randSuffix()}
	w = g.wukong(ns, fromVM.Name)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, StorageClassName: expandableClass,
		CloneFrom: &v1alpha1.DiskCloneSource{Wukong: orig.Name}}}
	create(t, w)
	vip := boot(fromVM)
	assert.Equal(t, first, read(fromVM, vip), "the clone of the restored Wukong's disk")
	if v := volumeStatus(getWukong(t, k, fromVM), "root"); assert.NotNil(t, v) {
		t.Logf("%s: root cloned by CDI with cloneType %q, claim %s", fromVM.Name, v.CloneType, v.PVCName)
	}
}

package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// The disk-growth check of make e2e-local (issue 21): a Wukong's boot disk
// on an expandable StorageClass is grown while the guest runs, and the
// guest sees the larger disk. local-path cannot expand a volume, so the
// local cluster has a second class for this: wukong-csi-hostpath
// (scripts/csi-build.sh: our own CSI driver with the real external-
// provisioner and external-resizer; scripts/local-cluster/addons/csi.sh installs it).

// expandableClass is the StorageClass scripts/local-cluster/addons/csi.sh installs.
const expandableClass = "wukong-csi-hostpath"

// csiDataDir is where that class's driver keeps a volume on the node:
// <dir>/volumes/<PV name> (hack/csi-hostpath/driver.Store).
const csiDataDir = "/var/lib/wukong-csi"

// kubevirtDefaultFSOverhead is the overhead KubeVirt v1.9.0 uses when the
// cluster runs no CDI (pkg/storage/types/cdi.go, DefaultFSOverhead).
const kubevirtDefaultFSOverhead = 0.055

// fsOverhead is the filesystem overhead KubeVirt's virt-controller puts in
// the VMI's volume status for a filesystem claim of class sc: CDIConfig
// status.filesystemOverhead (per class, else global), or KubeVirt's default
// without CDI (pkg/virt-controller/watch/vmi/storage.go,
// getFilesystemOverhead). virt-launcher grows a filesystem claim's
// disk.img to (1 - overhead) x the claim's capacity, down to a MiB
// (possibleGuestSize, pkg/virt-launcher/virtwrap/manager.go, v1.9.0).
func fsOverhead(t *testing.T, sc string) float64 {
	t.Helper()
	cfg := &cdiv1.CDIConfig{}
	err := k.Get(ctxT(t), types.NamespacedName{Name: "config"}, cfg)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) || (err == nil && cfg.Status.FilesystemOverhead == nil) {
		return kubevirtDefaultFSOverhead
	}
	require.NoError(t, err, "CDIConfig config")
	p := cfg.Status.FilesystemOverhead.Global
	if v, ok := cfg.Status.FilesystemOverhead.StorageClass[sc]; ok {
		p = v
	}
	f, err := strconv.ParseFloat(string(p), 64)
	require.NoError(t, err, "CDIConfig filesystemOverhead %q", p)
	return f
}

// guestDiskBytes is the size of /dev/<dev> in the guest, from
// /sys/block/<dev>/size (512-byte sectors, Documentation/block/stat.rst).
func guestDiskBytes(t *testing.T, g guestAccess, ip, dev string) (int64, error) {
	s, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /sys/block/"+dev+"/size")
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, s)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n * 512, err
}

// grownImageBytes is what virt-launcher grows a filesystem claim's
// disk.img to for a claim of capacity bytes: (1 - overhead) x capacity, down
// to a MiB (possibleGuestSize; the node's free space is far larger here).
func grownImageBytes(capacity int64, overhead float64) int64 {
	return int64((1-overhead)*float64(capacity)) / (1 << 20) * (1 << 20)
}

// TestLocalDiskGrow: a Wukong whose 3Gi boot disk real CDI imports from
// the in-cluster image server onto wukong-csi-hostpath (our CSI driver,
// expandable) reaches Running; then spec.disks[root].size becomes 4Gi
// while the guest runs. The claim's request becomes 4Gi and its
// status.capacity follows (external-resizer), the Wukong's
// status.volumes[root].size reaches 4Gi, the disk.img in the volume on the
// node grows, and IN THE GUEST /dev/vda grows online, in the same boot, to
// what KubeVirt gives it: (1 - CDI's filesystem overhead) x the claim's
// new capacity, at a MiB. The boot disk rather than a blank data disk: a
// Wukong with disks has no containerDisk, so one import is needed anyway,
// and growing the disk the guest runs from is the case users have.
func TestLocalDiskGrow(t *testing.T) {
	realKubeVirt(t)
	url := realCDI(t)
	sc := &storagev1.StorageClass{}
	err := k.Get(ctxT(t), types.NamespacedName{Name: expandableClass}, sc)
	if apierrors.IsNotFound(err) {
		t.Skipf("no StorageClass %s: make csi-images, then make local-cluster-up installs it (local-path cannot expand a volume)", expandableClass)
	}
	require.NoError(t, err)
	require.True(t, ptr.Deref(sc.AllowVolumeExpansion, false), "StorageClass %s allows volume expansion", expandableClass)

	ns := newNamespace(t)
	name := "grow-" + randSuffix()
	nn := types.NamespacedName{Namespace: ns, Name: name}
	g := newGuestAccess(t, ns)
	before, after := resource.MustParse("3Gi"), resource.MustParse("4Gi")
	w := g.wukong(ns, name)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: before, Boot: true, Image: url, StorageClassName: expandableClass}}
	create(t, w)
	started := time.Now()
	g.waitRunning(t, nn)
	t.Logf("Running %.0f s after create (import onto %s included)", time.Since(started).Seconds(), expandableClass)
	w = getWukong(t, k, nn)
	v := volumeStatus(w, "root")
	require.NotNil(t, v, "status.volumes[root]")
	require.True(t, v.Bound, "root bound")
	claim := types.NamespacedName{Namespace: ns, Name: v.PVCName}
	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), claim, pvc))
	require.Equal(t, expandableClass, ptr.Deref(pvc.Spec.StorageClassName, ""), "the claim's class")
	pv := pvc.Spec.VolumeName
	require.NotEmpty(t, pv, "the claim's volume")
	capBefore := pvc.Status.Capacity[corev1.ResourceStorage]

	pod := launcherPod(t, nn)
	ip := pod.Status.PodIP
	require.NotEmpty(t, ip, "the launcher pod's IP")
	g.waitSSH(t, ip)
	t.Logf("SSH answered %.0f s after create", time.Since(started).Seconds())
	bootID, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /proc/sys/kernel/random/boot_id")
	require.NoError(t, err, "boot_id: %s", bootID)
	root, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "findmnt -no SOURCE /")
	require.NoError(t, err, "findmnt: %s", root)
	require.True(t, strings.HasPrefix(root, "/dev/vda"), "/ is on the imported disk /dev/vda: %s", root)
	const dev = "vda"
	n0, err := guestDiskBytes(t, g, ip, dev)
	require.NoError(t, err)
	t.Logf("before: claim capacity %s, in the guest /dev/%s %d bytes", capBefore.String(), dev, n0)
	img := filepath.Join(csiDataDir, "volumes", pv, "disk.img")
	local := os.Getenv("E2E_LOCAL_NODE") == "1"
	if local {
		st, err := os.Stat(img)
		require.NoError(t, err, "CDI's disk.img in the volume on the node")
		t.Logf("before: on the node %s %d bytes", img, st.Size())
	}

	grown := time.Now()
	updateWukong(t, nn, func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = after })
	var capAfter resource.Quantity
	eventually(t, 2, func(c *assert.CollectT) {
		pvc := &corev1.PersistentVolumeClaim{}
		require.NoError(c, k.Get(ctxT(t), claim, pvc))
		req := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		assert.GreaterOrEqual(c, req.Cmp(after), 0, "claim request %s, want %s", req.String(), after.String())
		capAfter = pvc.Status.Capacity[corev1.ResourceStorage]
		assert.GreaterOrEqual(c, capAfter.Cmp(req), 0, "claim status.capacity %s, want its request %s", capAfter.String(), req.String())
		w := getWukong(c, k, nn)
		v := volumeStatus(w, "root")
		require.NotNil(c, v, "status.volumes[root]")
		got, err := resource.ParseQuantity(v.Size)
		require.NoError(c, err, "status.volumes[root].size %q", v.Size)
		assert.GreaterOrEqual(c, got.Cmp(after), 0, "status.volumes[root].size %s, want %s", v.Size, after.String())
		assertRunning(c, w)
	}, "the claim and the Wukong's status to show %s", after.String())
	resized := time.Since(grown)

	oh := fsOverhead(t, expandableClass)
	want := grownImageBytes(capAfter.Value(), oh)
	require.Greater(t, want, n0, "KubeVirt's size for the grown claim is above the disk's size before")
	for {
		n, err := guestDiskBytes(t, g, ip, dev)
		if err == nil && n >= want {
			t.Logf("after: claim capacity %s; in the guest /dev/%s %d bytes (want (1 - %.3f) x %d = %d at a MiB), %.0f s after the edit (claim resized after %.0f s)",
				capAfter.String(), dev, n, oh, capAfter.Value(), want, time.Since(grown).Seconds(), resized.Seconds())
			assert.Equal(t, want, n, "/dev/%s after the growth", dev)
			break
		}
		if time.Since(grown) > 5*time.Minute {
			t.Fatalf("/dev/%s in the guest: %d bytes (%v) 5m after the edit, want %d", dev, n, err, want)
		}
		time.Sleep(5 * time.Second)
	}
	if local {
		st, err := os.Stat(img)
		if assert.NoError(t, err, "disk.img") {
			t.Logf("after: on the node %s %d bytes", img, st.Size())
			assert.Equal(t, want, st.Size(), "%s after the growth", img)
		}
	}
	// Online: the same boot of the guest in the same virt-launcher pod.
	id, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /proc/sys/kernel/random/boot_id")
	require.NoError(t, err, "boot_id: %s", id)
	assert.Equal(t, bootID, id, "the guest's boot_id (no reboot)")
	assert.Equal(t, pod.UID, launcherPod(t, nn).UID, "the same virt-launcher pod (no restart)")

	require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, nn)))
	eventually(t, 3, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, nn)
		assertGone(c, &corev1.PersistentVolume{}, types.NamespacedName{Name: pv})
	}, "Wukong %s and its volume %s to be gone", nn, pv)
	if local {
		_, err := os.Stat(filepath.Dir(img))
		assert.True(t, os.IsNotExist(err), "the volume's directory on the node is removed: %v", err)
	}
}

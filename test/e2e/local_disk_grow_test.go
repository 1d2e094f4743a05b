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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// The disk-growth check of make e2e-local (issue 21): a Wukong's data disk
// on an expandable StorageClass is grown while the guest runs, and the
// guest sees the larger disk. local-path cannot expand a volume, so the
// local cluster has a second class for this: wukong-csi-hostpath
// (scripts/csi-build.sh: our own CSI driver with the real external-
// provisioner and external-resizer; scripts/local-cluster-csi.sh installs it).

// expandableClass is the StorageClass scripts/local-cluster-csi.sh installs.
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

// TestLocalDiskGrow: a Running Wukong (the containerDisk boot image of
// E2E_GUEST_IMAGE) with a blank 1Gi data disk on wukong-csi-hostpath gets
// spec.disks[data].size 2Gi. Then the claim's request and status.capacity
// are 2Gi, the Wukong's status.volumes[data].size is 2Gi, the disk.img
// KubeVirt keeps in the volume has grown (on the node), and IN THE GUEST the
// data disk grows online, without a restart, to what KubeVirt gives it:
// (1 - CDI's filesystem overhead) x 2Gi, at a MiB boundary. A blank disk
// rather than an imported one: the import is TestLocalCDIImportBoot's, and
// here only the growth is under test (a blank claim also makes
// virt-launcher create disk.img itself, at the claim's size).
func TestLocalDiskGrow(t *testing.T) {
	image := realKubeVirt(t)
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
	before, after := resource.MustParse("1Gi"), resource.MustParse("2Gi")
	create(t, &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.WukongSpec{
			CPU:           1,
			Memory:        resource.MustParse("1Gi"),
			OSImage:       image,
			Disks:         []v1alpha1.DiskSpec{{Name: "data", Size: before, StorageClassName: expandableClass}},
			SSHKeySecret:  g.secret,
			CloudInitUser: &v1alpha1.CloudInitUser{Name: g.login, Sudo: "ALL=(ALL) NOPASSWD:ALL", Shell: "/bin/bash"},
			GuestAgent:    &v1alpha1.GuestAgent{Install: ptr.To(false)},
		},
	})
	started := time.Now()
	for {
		c := &assert.CollectT{}
		if assertRunning(c, getWukong(t, k, nn)) {
			break
		}
		if time.Now().After(g.deadline) {
			dumpWukongs(t, ns)
			t.Fatalf("Wukong %s not Running within %s", nn, g.timeout)
		}
		time.Sleep(time.Second)
	}
	t.Logf("Running %.0f s after create", time.Since(started).Seconds())
	w := getWukong(t, k, nn)
	v := volumeStatus(w, "data")
	require.NotNil(t, v, "status.volumes[data]")
	require.True(t, v.Bound, "data bound")
	claim := types.NamespacedName{Namespace: ns, Name: v.PVCName}
	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), claim, pvc))
	require.Equal(t, expandableClass, ptr.Deref(pvc.Spec.StorageClassName, ""), "the claim's class")
	pv := pvc.Spec.VolumeName
	require.NotEmpty(t, pv, "the claim's volume")

	// The data disk in the guest: the one of the claim's size (the boot
	// disk is the containerDisk's, the cloud-init disk is a CD-ROM).
	pod := launcherPod(t, nn)
	ip := pod.Status.PodIP
	require.NotEmpty(t, ip, "the launcher pod's IP")
	g.waitSSH(t, ip)
	bootID, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /proc/sys/kernel/random/boot_id")
	require.NoError(t, err, "boot_id: %s", bootID)
	out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "lsblk -bdnro NAME,SIZE,TYPE")
	require.NoError(t, err, "lsblk in the guest: %s", out)
	var dev string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[2] == "disk" && f[1] == strconv.FormatInt(before.Value(), 10) {
			dev = f[0]
		}
	}
	require.NotEmpty(t, dev, "no %d-byte disk in the guest: lsblk says\n%s", before.Value(), out)
	guestBytes := func() (int64, error) {
		s, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /sys/block/"+dev+"/size")
		if err != nil {
			return 0, fmt.Errorf("%w: %s", err, s)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return n * 512, err // sectors of 512 bytes (block/stat.rst)
	}
	n, err := guestBytes()
	require.NoError(t, err)
	t.Logf("in the guest before: /dev/%s %d bytes", dev, n)
	require.Equal(t, before.Value(), n, "/dev/%s before the growth", dev)
	img := filepath.Join(csiDataDir, "volumes", pv, "disk.img")
	local := os.Getenv("E2E_LOCAL_NODE") == "1"
	if local {
		st, err := os.Stat(img)
		require.NoError(t, err, "KubeVirt's disk.img in the volume on the node")
		assert.Equal(t, before.Value(), st.Size(), "%s before the growth", img)
	}

	grown := time.Now()
	updateWukong(t, nn, func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = after })
	eventually(t, 2, func(c *assert.CollectT) {
		pvc := &corev1.PersistentVolumeClaim{}
		require.NoError(c, k.Get(ctxT(t), claim, pvc))
		req := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		assert.Equal(c, 0, req.Cmp(after), "claim request %s, want %s", req.String(), after.String())
		capacity := pvc.Status.Capacity[corev1.ResourceStorage]
		assert.GreaterOrEqual(c, capacity.Cmp(after), 0, "claim status.capacity %s, want %s", capacity.String(), after.String())
		w := getWukong(c, k, nn)
		v := volumeStatus(w, "data")
		require.NotNil(c, v, "status.volumes[data]")
		got, err := resource.ParseQuantity(v.Size)
		require.NoError(c, err, "status.volumes[data].size %q", v.Size)
		assert.GreaterOrEqual(c, got.Cmp(after), 0, "status.volumes[data].size %s, want %s", v.Size, after.String())
		assertRunning(c, w)
	}, "the claim and the Wukong's status to show %s", after.String())
	resized := time.Since(grown)

	// What virt-launcher grows disk.img to, and so what the guest sees.
	oh := fsOverhead(t, expandableClass)
	want := int64((1-oh)*float64(after.Value())) / (1 << 20) * (1 << 20)
	for {
		n, err := guestBytes()
		if err == nil && n >= want {
			t.Logf("in the guest after: /dev/%s %d bytes (want (1 - %.3f) x %d = %d at a MiB), %.0f s after the edit (claim resized after %.0f s), no restart",
				dev, n, oh, after.Value(), want, time.Since(grown).Seconds(), resized.Seconds())
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
			t.Logf("on the node: %s %d bytes", img, st.Size())
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

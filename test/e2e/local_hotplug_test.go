package e2e_test

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// The disk hotplug check of make e2e-local (issue 34): a blank disk added
// to a running Wukong on real KubeVirt (DeclarativeHotplugVolumes, Beta and
// on by default in v1.9, vmRolloutStrategy LiveUpdate by default) shows up
// IN THE GUEST as a new virtio block device, in the same boot, and goes
// again when the disk is removed from the Wukong.

// guestBlockDevices lists the guest's virtio disks (/sys/block/vd*).
func guestBlockDevices(t *testing.T, g guestAccess, ip string) ([]string, error) {
	out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "ls /sys/block")
	if err != nil {
		return nil, err
	}
	var devs []string
	for _, d := range strings.Fields(out) {
		if strings.HasPrefix(d, "vd") {
			devs = append(devs, d)
		}
	}
	sort.Strings(devs)
	return devs, nil
}

// TestLocalHotplugDisk: a Wukong booting from an image real CDI imports
// runs and answers SSH; a 1Gi blank disk is added: the Wukong's
// status.volumes[data].hotplug.phase reaches Ready, RestartRequired is not
// set, and the guest lists one more /sys/block/vd* device, without a
// reboot (same boot_id, same launcher pod). The disk is then removed: the
// device goes from the guest, the entry from status.volumes, and its claim
// is deleted (deletionPolicy Delete).
func TestLocalHotplugDisk(t *testing.T) {
	realKubeVirt(t)
	url := realCDI(t)

	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	nn, pod := g.bootImageDisk(t, ns, "hotplug-"+randSuffix(), url)
	ip := pod.Status.PodIP
	bootID, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /proc/sys/kernel/random/boot_id")
	require.NoError(t, err, "boot_id: %s", bootID)
	before, err := guestBlockDevices(t, g, ip)
	require.NoError(t, err)
	t.Logf("before: guest block devices %v", before)

	added := time.Now()
	updateWukong(t, nn, func(w *v1alpha1.Wukong) {
		w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "data", Size: resource.MustParse("1Gi")})
	})
	eventually(t, 3, func(c *assert.CollectT) {
		w := getWukong(c, k, nn)
		v := volumeStatus(w, "data")
		if assert.NotNil(c, v, "status.volumes[data]") && assert.NotNil(c, v.Hotplug, "status.volumes[data].hotplug") {
			assert.Equal(c, string(kubevirtv1.VolumeReady), v.Hotplug.Phase, "hotplug phase (%s)", v.Hotplug.Message)
		}
		assertNoRestartRequired(c, w)
	}, "disk data to be hot-plugged")
	var after []string
	for {
		after, err = guestBlockDevices(t, g, ip)
		if err == nil && len(after) == len(before)+1 {
			break
		}
		if time.Since(added) > 5*time.Minute {
			t.Fatalf("guest block devices %v (%v) 5m after the disk was added, before %v", after, err, before)
		}
		time.Sleep(5 * time.Second)
	}
	t.Logf("after adding: guest block devices %v (%.0f s after the edit)", after, time.Since(added).Seconds())
	newDev := ""
	for _, d := range after {
		if !slices.Contains(before, d) {
			newDev = d
		}
	}
	require.NotEmpty(t, newDev, "a new vd* device")
	n, err := guestDiskBytes(t, g, ip, newDev)
	require.NoError(t, err)
	t.Logf("/dev/%s: %d bytes", newDev, n)
	assert.Greater(t, n, int64(512<<20), "/dev/%s is the 1Gi disk (less the filesystem overhead)", newDev)

	removed := time.Now()
	updateWukong(t, nn, func(w *v1alpha1.Wukong) { w.Spec.Disks = w.Spec.Disks[:1] })
	for {
		now, err := guestBlockDevices(t, g, ip)
		if err == nil && !slices.Contains(now, newDev) {
			t.Logf("after removing: guest block devices %v (%.0f s after the edit)", now, time.Since(removed).Seconds())
			assert.Equal(t, before, now, "the guest's disks are those it started with")
			break
		}
		if time.Since(removed) > 5*time.Minute {
			t.Fatalf("/dev/%s still in the guest 5m after the disk was removed: %v (%v)", newDev, now, err)
		}
		time.Sleep(5 * time.Second)
	}
	eventually(t, 3, func(c *assert.CollectT) {
		w := getWukong(c, k, nn)
		assert.Nil(c, volumeStatus(w, "data"), "status.volumes[data] gone")
		assertNoRestartRequired(c, w)
	}, "the removed disk to leave the Wukong's status")

	id, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /proc/sys/kernel/random/boot_id")
	require.NoError(t, err, "boot_id: %s", id)
	assert.Equal(t, bootID, id, "the guest's boot_id (no reboot)")
	assert.Equal(t, pod.UID, launcherPod(t, nn).UID, "the same virt-launcher pod (no restart)")
}

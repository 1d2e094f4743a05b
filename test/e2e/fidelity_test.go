package e2e_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestImportTooSmallDisk: CDI refuses to import an image into a disk smaller
// than its virtual size ("A larger PVC is required"); the Wukong is Stalled
// naming spec.disks[0].size, and growing the disk lets the import finish.
func TestImportTooSmallDisk(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	if !inSandbox {
		t.Skip("uses the sandbox's image catalog (the Ubuntu 24.04 cloud image is 3.5 GiB virtual)")
	}
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "small")
	w.Spec.OSImage = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("2Gi")}}
	create(t, w)
	waitStalled(t, key(w), "spec.disks[0].size", v1alpha1.ReasonDiskTooSmall)

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = resource.MustParse("4Gi") })
	got := waitRunning(t, key(w))
	assert.Equal(t, "4Gi", volumeStatus(got, "root").Size)
}

// TestImportMissingImage: an image the server does not have fails as CDI's
// importer does (HTTP 404, retried); the Wukong is Stalled naming the image.
func TestImportMissingImage(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	if !inSandbox {
		t.Skip("uses the sandbox's image catalog")
	}
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "missing")
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("5Gi"), Image: "https://images.example.org/no-such-image.qcow2"}}
	create(t, w)
	waitStalled(t, key(w), "spec.disks[0].image", v1alpha1.ReasonImportFailed)
	got := getWukong(t, k, key(w))
	assert.Contains(t, cond(got, v1alpha1.StalledCondition).Message, "404")
	assert.Equal(t, metav1.ConditionFalse, condStatus(got, v1alpha1.VolumesBoundCondition))
}

// TestContainerDiskPullFails: a container disk from a registry that cannot
// be reached never runs (the kubelet's ErrImagePull, as KubeVirt shows it);
// the Wukong is Stalled, not Creating forever.
func TestContainerDiskPullFails(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	if !inSandbox {
		t.Skip("uses the sandbox's unreachable registry names")
	}
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "nopull")
	w.Spec.Disks = nil
	w.Spec.OSImage = "docker://registry.unreachable.example/os/fedora:40"
	create(t, w)
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		stalled := cond(got, v1alpha1.StalledCondition)
		if assert.NotNil(c, stalled, "Stalled") {
			assert.Equal(c, "ImagePullFailed", stalled.Reason)
			assert.Contains(c, stalled.Message, "registry.unreachable.example")
		}
		assert.Equal(c, v1alpha1.PhaseError, got.Status.Phase)
	}, "Wukong %s Stalled on the image pull", key(w))
}

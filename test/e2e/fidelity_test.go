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

package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestLocalCatalogImageBoot (make e2e-local; issue 32): an administrator's
// ClusterImage of the guest disk the image server serves is imported once
// by real CDI into a golden copy in the operator's catalog namespace (the
// chart's release namespace); a Wukong whose boot disk names it is a real
// CDI clone of that copy (sourceRef to the DataSource, across namespaces;
// the boot disk names it through spec.osClusterImage),
// boots under real KubeVirt, and answers SSH with its own hostname. The
// clone strategy real CDI chose is reported. It skips where real KubeVirt
// or CDI (with the image server) is not running (realKubeVirt, realCDI).
func TestLocalCatalogImageBoot(t *testing.T) {
	realKubeVirt(t)
	url := realCDI(t)
	requireKinds(t, kindDataSource)
	ns := newNamespace(t)
	label := "catalog-" + randSuffix()
	labelNamespace(t, ns, label, "yes")
	g := newGuestAccess(t, ns)

	// Our CSI driver's class, where CDI clones by CSI clone: a host-assisted
	// clone (local-path) needs the upload Service's DNS name, and the local
	// cluster has neither kube-proxy nor DNS (docs/notes/real-cdi-multus.md).
	needClass(t, expandableClass)
	img := newClusterImage(t, "guest-"+randSuffix(), label)
	img.Spec.Source, img.Spec.Size = url, resource.MustParse("3Gi")
	img.Spec.StorageClassNames = []string{expandableClass}
	create(t, img)
	started := time.Now()
	var cp v1alpha1.ClusterImageCopy
	require.Eventually(t, func() bool {
		got := &v1alpha1.ClusterImage{}
		if err := k.Get(context.Background(), types.NamespacedName{Name: img.Name}, got); err != nil {
			return false
		}
		if len(got.Status.Copies) == 1 {
			cp = got.Status.Copies[0]
		}
		return meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition)
	}, time.Until(g.deadline), 2*time.Second, "ClusterImage %s to be Ready (golden copy imported by real CDI)", img.Name)
	t.Logf("golden copy ready %.0f s after create: %+v", time.Since(started).Seconds(), cp)
	assert.True(t, cp.Ready)
	assert.NotEmpty(t, cp.Size)
	assert.NotNil(t, cp.LastImportTime)

	name := "gold-" + randSuffix()
	nn := types.NamespacedName{Namespace: ns, Name: name}
	w := g.wukong(ns, name)
	// The boot disk takes the image from spec.osClusterImage (the catalog
	// form of osImage), as a disk with clusterImage would.
	w.Spec.OSClusterImage = img.Name
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, StorageClassName: expandableClass}}
	create(t, w)
	cloned := time.Now()
	for {
		w = getWukong(t, k, nn)
		c := &assert.CollectT{}
		if assertRunning(c, w) {
			break
		}
		if time.Now().After(g.deadline) {
			dumpWukongs(t, ns)
			t.Fatalf("Wukong %s not Running within %s", nn, g.timeout)
		}
		time.Sleep(time.Second)
	}
	t.Logf("Running %.0f s after create", time.Since(cloned).Seconds())
	if v := volumeStatus(w, "root"); assert.NotNil(t, v) {
		assert.Equal(t, "Bound", v.Phase)
		assert.Contains(t, []string{"csi-clone", "snapshot", "copy"}, v.CloneType, "the strategy real CDI chose")
		t.Logf("clone strategy: %s", v.CloneType)
	}
	ip := launcherPod(t, nn).Status.PodIP
	require.NotEmpty(t, ip, "the launcher pod's IP")
	assert.Equal(t, name, g.waitSSH(t, ip), "the guest's hostname is the Wukong's name")
}

package e2e_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/manager"
	"github.com/novasphere/wukong/test/sandbox"
)

var (
	kindDataSource     = schema.GroupVersionKind{Group: "cdi.kubevirt.io", Version: "v1beta1", Kind: "DataSource"}
	kindDataImportCron = schema.GroupVersionKind{Group: "cdi.kubevirt.io", Version: "v1beta1", Kind: "DataImportCron"}
)

// catalogNamespace makes sure the operator's image catalog namespace (the
// manager's default, as the suite runs it) exists; it is shared and kept.
func catalogNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: manager.DefaultCatalogNamespace}}
	if err := k.Create(ctxT(t), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	return ns.Name
}

// labelNamespace adds a label to a namespace (what an administrator's
// namespaceSelector selects).
func labelNamespace(t *testing.T, name, key, value string) {
	t.Helper()
	ns := &corev1.Namespace{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: name}, ns))
	patch := client.MergeFrom(ns.DeepCopy())
	ns.Labels[key] = value
	require.NoError(t, k.Patch(ctxT(t), ns, patch))
}

// newClusterImage declares a golden image of testImage for the namespaces
// labelled key=yes, deleted at the end.
func newClusterImage(t *testing.T, name, key string) *v1alpha1.ClusterImage {
	t.Helper()
	img := &v1alpha1.ClusterImage{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterImageSpec{
			Source:            testImage,
			Size:              resource.MustParse("1Gi"),
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: "yes"}},
		},
	}
	t.Cleanup(func() { _ = k.Delete(context.Background(), img) })
	return img
}

// waitImageReady waits until the ClusterImage reports one ready golden
// copy, and returns it.
func waitImageReady(t *testing.T, name string) *v1alpha1.ClusterImage {
	t.Helper()
	img := &v1alpha1.ClusterImage{}
	eventually(t, 1, func(c *assert.CollectT) {
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Name: name}, img))
		ready := meta.FindStatusCondition(img.Status.Conditions, v1alpha1.ReadyCondition)
		if assert.NotNil(c, ready, "Ready") {
			assert.Equal(c, metav1.ConditionTrue, ready.Status, "Ready: %s", ready.Message)
		}
		assert.Equal(c, img.Generation, img.Status.ObservedGeneration)
		if assert.Len(c, img.Status.Copies, 1, "one golden copy (the default class)") {
			cp := img.Status.Copies[0]
			assert.True(c, cp.Ready, "copy ready")
			assert.NotEmpty(c, cp.Size, "copy size")
			assert.NotNil(c, cp.LastImportTime, "last import time")
		}
	}, "ClusterImage %s to be Ready", name)
	return img
}

// TestCatalogImage: an administrator declares a golden image for one
// namespace; a Wukong there clones it (disk Bound, the clone strategy CDI
// chose reported, VM Running), and one elsewhere is refused with exactly
// the message it had while the image did not exist at all. The image's
// status shows its golden copy.
func TestCatalogImage(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume, kindDataSource)
	needInternet(t) // newClusterImage imports testImage from quay.io (TestLocalCatalogImageBoot is the offline one)
	t.Parallel()
	catalog := catalogNamespace(t)
	allowed, other := newNamespace(t), newNamespace(t)
	label := "catalog-" + randSuffix()
	labelNamespace(t, allowed, label, "yes")
	name := "img-" + randSuffix()
	field := "spec.disks[0].clusterImage"

	// Refused while the image does not exist.
	outsider := newWukong(other, "outsider")
	outsider.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("1Gi"), ClusterImage: name}}
	create(t, outsider)
	missingMsg := stalledMessage(t, k, key(outsider), field, v1alpha1.ReasonImageNotAllowed)
	assert.Contains(t, missingMsg, field)

	img := newClusterImage(t, name, label)
	create(t, img)
	img = waitImageReady(t, name)
	cp := img.Status.Copies[0]
	assert.Equal(t, defaultStorageClass(t).Name, cp.StorageClassName)
	ds := &cdiv1.DataSource{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: catalog, Name: cp.DataSourceName}, ds), "the golden DataSource, in the catalog namespace")
	if assert.NotNil(t, ds.Spec.Source.PVC) {
		assert.Equal(t, cp.DataSourceName, ds.Spec.Source.PVC.Name, "the golden DataVolume's claim")
	}
	assert.True(t, metav1.IsControlledBy(ds, img), "the golden DataSource is the image's")

	// Used where it is declared.
	user := newWukong(allowed, "user")
	user.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("2Gi"), ClusterImage: name}}
	create(t, user)
	user = waitRunning(t, key(user))
	if v := volumeStatus(user, "root"); assert.NotNil(t, v) {
		assert.Equal(t, "Bound", v.Phase)
		want := profileCloneStrategy(t, defaultStorageClass(t).Name)
		require.NotEmpty(t, want, "CDI reports the default class's clone strategy")
		assert.Equal(t, want, v.CloneType, "the strategy CDI chose for the clone of the golden copy")
	}
	dv := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: allowed, Name: "user-root"}, dv))
	assert.Nil(t, dv.Spec.Source, "a sourceRef clone, no source")
	assert.Equal(t, &cdiv1.DataVolumeSourceRef{Kind: cdiv1.DataVolumeDataSource, Namespace: ptr.To(catalog), Name: cp.DataSourceName}, dv.Spec.SourceRef)
	if inSandbox {
		assert.Equal(t, testImage, claimOf(t, user, "root").Annotations[sandbox.AnnData], "the clone holds the golden copy's image")
	}

	// Refused elsewhere, with the message of an image that does not exist
	// (the image's readiness woke the outsider: it was looked at again).
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, k, key(outsider))
		if s := cond(w, v1alpha1.StalledCondition); assert.NotNil(c, s, "still Stalled") {
			assert.Equal(c, v1alpha1.ReasonImageNotAllowed, s.Reason)
		}
		if r := cond(w, v1alpha1.ReadyCondition); assert.NotNil(c, r) {
			assert.Equal(c, missingMsg, r.Message, "the same message as for a missing image")
		}
	}, "the outsider to stay refused")
	// spec.osClusterImage: the boot disk is the same clone, and a refusal
	// names that field with the same message.
	osUser := newWukong(allowed, "osuser")
	osUser.Spec.OSClusterImage = name
	osUser.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("2Gi"), Boot: true}}
	create(t, osUser)
	waitRunning(t, key(osUser))
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: allowed, Name: "osuser-root"}, dv))
	assert.Nil(t, dv.Spec.Source, "osClusterImage: a sourceRef clone, no import")
	assert.Equal(t, &cdiv1.DataVolumeSourceRef{Kind: cdiv1.DataVolumeDataSource, Namespace: ptr.To(catalog), Name: cp.DataSourceName}, dv.Spec.SourceRef)
	osOutsider := newWukong(other, "osoutsider")
	osOutsider.Spec.OSClusterImage = name
	osOutsider.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("2Gi"), Boot: true}}
	create(t, osOutsider)
	osMsg := stalledMessage(t, k, key(osOutsider), "spec.osClusterImage", v1alpha1.ReasonImageNotAllowed)
	assert.Equal(t, strings.ReplaceAll(missingMsg, field, "spec.osClusterImage"), osMsg, "the same message, naming spec.osClusterImage")

	dvs := &cdiv1.DataVolumeList{}
	require.NoError(t, k.List(ctxT(t), dvs, client.InNamespace(other)))
	assert.Empty(t, dvs.Items, "nothing written for the outsiders")
}

// TestCatalogScheduledImport: a registry image with a schedule is kept by a
// CDI DataImportCron: the golden copy is its import, and (in the sandbox,
// which plays a new push of the image) a new digest is imported, the
// DataSource moves to it and imports beyond importsToKeep are
// garbage-collected.
func TestCatalogScheduledImport(t *testing.T) {
	requireKinds(t, kindDataVolume, kindDataSource, kindDataImportCron)
	needInternet(t) // newClusterImage imports testImage from quay.io (TestLocalCatalogImageBoot is the offline one)
	t.Parallel()
	catalog := catalogNamespace(t)
	name := "cron-" + randSuffix()
	img := newClusterImage(t, name, "catalog-"+randSuffix())
	img.Spec.Schedule = "0 */12 * * *"
	img.Spec.ImportsToKeep = ptr.To[int32](1)
	create(t, img)
	img = waitImageReady(t, name)
	cp := img.Status.Copies[0]
	cron := &cdiv1.DataImportCron{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: catalog, Name: cp.DataSourceName}, cron))
	assert.Equal(t, "0 */12 * * *", cron.Spec.Schedule)
	assert.Equal(t, cp.DataSourceName, cron.Spec.ManagedDataSource)
	require.NotNil(t, cron.Status.LastImportedPVC)
	first := cron.Status.LastImportedPVC.Name
	if !inSandbox {
		return // a real registry pushes on its own schedule
	}

	// A new push of the image (the sandbox's registry digest).
	patch := client.MergeFrom(cron.DeepCopy())
	cron.Annotations[sandbox.AnnRegistryDigest] = "sha256:" + "feedface0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	require.NoError(t, k.Patch(ctxT(t), cron, patch))
	eventually(t, 1, func(c *assert.CollectT) {
		now := &cdiv1.DataImportCron{}
		require.NoError(c, k.Get(context.Background(), client.ObjectKeyFromObject(cron), now))
		if assert.NotNil(c, now.Status.LastImportedPVC) {
			assert.Equal(c, cp.DataSourceName+"-feedface0123", now.Status.LastImportedPVC.Name, "the new digest's import")
		}
		ds := &cdiv1.DataSource{}
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Namespace: catalog, Name: cp.DataSourceName}, ds))
		if assert.NotNil(c, ds.Spec.Source.PVC) {
			assert.Equal(c, cp.DataSourceName+"-feedface0123", ds.Spec.Source.PVC.Name, "the DataSource points at the new import")
		}
		old := &cdiv1.DataVolume{}
		assert.True(c, apierrors.IsNotFound(k.Get(context.Background(), types.NamespacedName{Namespace: catalog, Name: first}, old)),
			"the first import is garbage-collected (importsToKeep 1)")
	}, "the DataImportCron to import the new digest")
}

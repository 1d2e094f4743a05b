package e2e_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// Issue #33, items 3 and 4: CDI garbage-collecting a finished DataVolume,
// and images behind a private CA or a registry login.

// updateCDIConfig changes CDIConfig "config" with mutate, status included:
// CDI's CRD for it has no status subresource (cdi-operator's
// pkg/operator/resources/cluster), so one update writes both.
func updateCDIConfig(t *testing.T, mutate func(*cdiv1.CDIConfig)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cfg := &cdiv1.CDIConfig{}
		if err := k.Get(context.Background(), types.NamespacedName{Name: "config"}, cfg); err != nil {
			return err
		}
		mutate(cfg)
		return k.Update(context.Background(), cfg)
	}))
}

// TestDataVolumeGarbageCollected: CDI before v1.62 with
// dataVolumeTTLSeconds deletes a Succeeded DataVolume and hands its claim
// to the DataVolume's owner (the sandbox plays
// pkg/controller/datavolume/garbagecollect.go). The claim's request holds
// CDI's file system overhead (the sandbox plays InflateSizeWithOverhead
// with the overhead CDIConfig's status gives the class). The Wukong stays
// Ready: no DataVolume is written again (it would import over the booted
// disk), the inflated request is not a shrink; growing the disk then grows
// the claim itself.
func TestDataVolumeGarbageCollected(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	if !inSandbox {
		t.Skip("CDI garbage-collects DataVolumes only before v1.62; the sandbox plays it")
	}
	t.Parallel()
	ctx := ctxT(t)
	class := "gc-" + randSuffix()
	sc := cloneDefaultStorageClass(t, class)
	create(t, sc)
	t.Cleanup(func() {
		_ = k.Delete(context.Background(), &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}})
	})
	require.True(t, ptr.Deref(sc.AllowVolumeExpansion, false), "the default class allows expansion")
	copyStorageProfile(t, defaultStorageClass(t).Name, class)
	// CDI's config controller fills status.filesystemOverhead (global 0.06
	// by default); here only this test's class gets one.
	updateCDIConfig(t, func(cfg *cdiv1.CDIConfig) {
		cfg.Spec.DataVolumeTTLSeconds = ptr.To[int32](0)
		if cfg.Status.FilesystemOverhead == nil {
			cfg.Status.FilesystemOverhead = &cdiv1.FilesystemOverhead{Global: "0"}
		}
		if cfg.Status.FilesystemOverhead.StorageClass == nil {
			cfg.Status.FilesystemOverhead.StorageClass = map[string]cdiv1.Percent{}
		}
		cfg.Status.FilesystemOverhead.StorageClass[class] = "0.055"
	})
	t.Cleanup(func() {
		updateCDIConfig(t, func(cfg *cdiv1.CDIConfig) {
			cfg.Spec.DataVolumeTTLSeconds = nil
			if cfg.Status.FilesystemOverhead != nil {
				delete(cfg.Status.FilesystemOverhead.StorageClass, class)
			}
		})
	})

	ns := newNamespace(t)
	w := newWukong(ns, "gc")
	w.Spec.Disks[0] = v1alpha1.DiskSpec{Name: "root", Size: resource.MustParse("2Gi"), StorageClassName: class,
		Image: "https://images.example.com/disk.qcow2"}
	create(t, w)
	waitRunning(t, key(w))
	claim := types.NamespacedName{Namespace: ns, Name: "gc-root"}
	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, claim, pvc))
	inflated := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	require.Equal(t, 1, inflated.Cmp(resource.MustParse("2Gi")), "CDI's overhead is in the claim's request: %s", inflated.String())

	// CDI's webhook before v1.62 annotated every new DataVolume for
	// collection while the TTL was set; v1.65's (the sandbox's) does not.
	dv := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctx, claim, dv))
	dvUID := dv.UID
	patch := client.MergeFrom(dv.DeepCopy())
	dv.Annotations[sandbox.AnnDeleteAfterCompletion] = "true"
	require.NoError(t, k.Patch(ctx, dv, patch))
	eventually(t, 1, func(c *assert.CollectT) {
		err := k.Get(context.Background(), claim, &cdiv1.DataVolume{})
		assert.True(c, apierrors.IsNotFound(err), "the DataVolume is collected: %v", err)
		p := &corev1.PersistentVolumeClaim{}
		require.NoError(c, k.Get(context.Background(), claim, p))
		ref := metav1.GetControllerOf(p)
		if assert.NotNil(c, ref, "the claim has a controller") {
			assert.Equal(c, "Wukong", ref.Kind, "CDI handed the claim to the DataVolume's owner")
		}
	}, "CDI to collect the DataVolume")

	// For a while: no DataVolume again, Ready, not Stalled.
	deadline := time.Now().Add(scaled(6 * time.Second))
	for time.Now().Before(deadline) {
		got := &cdiv1.DataVolume{}
		err := k.Get(ctx, claim, got)
		require.True(t, apierrors.IsNotFound(err), "no DataVolume is written again over the imported disk (uid %s, was %s): %v", got.UID, dvUID, err)
		cur := getWukong(t, k, key(w))
		require.NotEqual(t, metav1.ConditionTrue, condStatus(cur, v1alpha1.StalledCondition), "not Stalled: %+v", cond(cur, v1alpha1.StalledCondition))
		require.Equal(t, metav1.ConditionTrue, condStatus(cur, v1alpha1.ReadyCondition), "Ready stays: %+v", cond(cur, v1alpha1.ReadyCondition))
		time.Sleep(poll)
	}

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = resource.MustParse("3Gi") })
	eventually(t, 1, func(c *assert.CollectT) {
		p := &corev1.PersistentVolumeClaim{}
		require.NoError(c, k.Get(context.Background(), claim, p))
		want := inflated.DeepCopy()
		want.Add(resource.MustParse("1Gi"))
		got := p.Spec.Resources.Requests[corev1.ResourceStorage]
		assert.Equal(c, 0, got.Cmp(want), "the claim grows by 1Gi, overhead kept: %s, want %s", got.String(), want.String())
		cur := getWukong(c, k, key(w))
		v := volumeStatus(cur, "root")
		if assert.NotNil(c, v) {
			size, err := resource.ParseQuantity(v.Size)
			require.NoError(c, err)
			assert.GreaterOrEqual(c, size.Cmp(resource.MustParse("3Gi")), 0, "status.volumes[root].size %s", v.Size)
		}
		assertRunning(c, cur)
		err := k.Get(context.Background(), claim, &cdiv1.DataVolume{})
		assert.True(c, apierrors.IsNotFound(err), "growing writes no DataVolume: %v", err)
	}, "the collected disk to grow")
}

// waitStalledOn waits until the Wukong is Stalled with reason on condition
// cond, its message (and the Stalled one) naming field and containing each
// of parts.
func waitStalledOn(t *testing.T, nn types.NamespacedName, condType, reason, field string, parts ...string) {
	t.Helper()
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, k, nn)
		assertStalled(c, w, condType, reason, append(parts, field)...)
		if s := cond(w, v1alpha1.StalledCondition); s != nil {
			assert.Contains(c, s.Message, field, "Stalled names the field")
		}
	}, "%s Stalled (%s) naming %s", nn, reason, field)
}

// TestImageBehindPrivateCA: a disk's http image on a server whose
// certificate a private CA signed (the sandbox's importer fails as CDI's
// does: x509: certificate signed by unknown authority) is Stalled naming
// spec.disks[0].imageAccess.certConfigMap; a ConfigMap named there that is
// missing is Stalled naming it (ImageAccessNotFound); once it is created
// the DataVolume is written again with it and the import succeeds.
func TestImageBehindPrivateCA(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	if !inSandbox {
		t.Skip("the image server behind a private CA is the sandbox's (test/sandbox/imageaccess.go)")
	}
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "ca")
	w.Spec.Disks[0] = v1alpha1.DiskSpec{Name: "root", Size: resource.MustParse("2Gi"), Image: "https://private-ca.images.example.org/guest.qcow2"}
	create(t, w)
	const field = "spec.disks[0].imageAccess.certConfigMap"
	waitStalledOn(t, key(w), v1alpha1.VolumesBoundCondition, v1alpha1.ReasonImportFailed, field, "x509: certificate signed by unknown authority")

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) {
		w.Spec.Disks[0].ImageAccess = &v1alpha1.ImageAccess{CertConfigMap: "corp-ca"}
	})
	waitStalledOn(t, key(w), v1alpha1.VolumesBoundCondition, v1alpha1.ReasonImageAccessNotFound, field, "ConfigMap corp-ca not found")
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp-ca"},
		Data: map[string]string{"ca.pem": "-----BEGIN CERTIFICATE-----\n(the sandbox checks none)\n-----END CERTIFICATE-----\n"}})
	poke(t, key(w)) // ConfigMaps are not watched: StalledRetry (a minute) or any change to the Wukong
	waitRunning(t, key(w))
	dv := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "ca-root"}, dv))
	require.NotNil(t, dv.Spec.Source.HTTP)
	assert.Equal(t, "corp-ca", dv.Spec.Source.HTTP.CertConfigMap, "CDI's certConfigMap on the DataVolume")
}

// TestImageBehindLogin: osImage imported into the boot disk from a
// registry that wants a login is Stalled naming
// spec.osImageAccess.secretRef (the importer's "unauthorized:
// authentication required"); with a Secret of CDI's shape named there the
// import succeeds. The operator copies nothing of the Secret.
func TestImageBehindLogin(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	if !inSandbox {
		t.Skip("the registry behind a login is the sandbox's (test/sandbox/imageaccess.go)")
	}
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "login")
	w.Spec.OSImage = "docker://login.registry.example.org/guest:1"
	w.Spec.Disks[0].Size = resource.MustParse("2Gi")
	create(t, w)
	const field = "spec.osImageAccess.secretRef"
	waitStalledOn(t, key(w), v1alpha1.VolumesBoundCondition, v1alpha1.ReasonImportFailed, field, "unauthorized: authentication required", "accessKeyId")

	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "registry-login"},
		Data: map[string][]byte{"accessKeyId": []byte("robot"), "secretKey": []byte("s3cr3t-token")}})
	updateWukong(t, key(w), func(w *v1alpha1.Wukong) {
		w.Spec.OSImageAccess = &v1alpha1.ImageAccess{SecretRef: "registry-login"}
	})
	waitRunning(t, key(w))
	dv := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "login-root"}, dv))
	require.NotNil(t, dv.Spec.Source.Registry)
	assert.Equal(t, "registry-login", ptr.Deref(dv.Spec.Source.Registry.SecretRef, ""))
	// Nothing of the Secret is copied into anything that is not a Secret.
	for _, obj := range []client.Object{dv, getWukong(t, k, key(w))} {
		raw, err := json.Marshal(obj)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), "s3cr3t-token", "%T", obj)
	}
}

// TestContainerDiskPullSecret: osImage booted as a container disk with
// spec.osImagePullSecret: a missing Secret is Stalled naming the field and
// no VM is written; once it exists the VM's containerDisk carries
// imagePullSecret (KubeVirt's field; virt-controller adds it to the
// launcher pod's imagePullSecrets).
func TestContainerDiskPullSecret(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	needInternet(t) // its container disk is on quay.io
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "pull")
	w.Spec.Disks = nil
	w.Spec.OSImage = "quay.io/containerdisks/fedora:40"
	w.Spec.OSImagePullSecret = "registry-pull"
	create(t, w)
	stalledMessage(t, k, key(w), "spec.osImagePullSecret", v1alpha1.ReasonSecretNotFound)

	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "registry-pull"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"quay.io":{"auth":"cm9ib3Q6dG9rZW4="}}}`)}})
	poke(t, key(w)) // Secrets a user brings are not watched: StalledRetry or any change to the Wukong
	waitRunning(t, key(w))
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(w), vm))
	var found bool
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.ContainerDisk != nil {
			found = true
			assert.Equal(t, "registry-pull", v.ContainerDisk.ImagePullSecret)
		}
	}
	assert.True(t, found, "the VM boots a container disk")
}

package sandbox_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/test/sandbox"
)

// TestStorageProfiles: CDI's own StorageProfile controller keeps one profile
// per StorageClass; the sandbox's classes report the claim property sets the
// fixtures declared, the unknown provisioner's none.
func TestStorageProfiles(t *testing.T) {
	classes := &storagev1.StorageClassList{}
	require.NoError(t, sb.Client.List(ctx, classes))
	require.Len(t, classes.Items, 4)
	for _, sc := range classes.Items {
		sp := &cdiv1.StorageProfile{}
		require.NoError(t, sb.Client.Get(ctx, types.NamespacedName{Name: sc.Name}, sp), sc.Name)
		assert.Equal(t, sc.Provisioner, ptr.Deref(sp.Status.Provisioner, ""), sc.Name)
		assert.Equal(t, sc.Name, ptr.Deref(sp.Status.StorageClass, ""), sc.Name)
		if sc.Name == sandbox.StorageClassUnknownProvisioner {
			assert.Empty(t, sp.Status.ClaimPropertySets, "CDI knows no access modes for %s", sandbox.UnknownProvisioner)
			continue
		}
		require.Len(t, sp.Status.ClaimPropertySets, 1, sc.Name)
		assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, sp.Status.ClaimPropertySets[0].AccessModes)
	}
	if len(sb.AdmissionUnavailable) > 0 {
		return
	}
	// CDI's controller, not the fixtures, made the profile of a new class.
	sc := &storagev1.StorageClass{Provisioner: sandbox.UnknownProvisioner}
	sc.Name = "late-" + namespace(t)
	require.NoError(t, sb.Client.Create(ctx, sc))
	t.Cleanup(func() { _ = sb.Client.Delete(ctx, sc) })
	sp := &cdiv1.StorageProfile{}
	sp.Name = sc.Name
	eventually(t, sp, func(sp *cdiv1.StorageProfile) bool {
		return ptr.Deref(sp.Status.Provisioner, "") == sandbox.UnknownProvisioner
	},
		"no StorageProfile for a new StorageClass")
	// ... and deletes it with the class.
	require.NoError(t, sb.Client.Delete(ctx, sc))
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(sb.Client.Get(ctx, client.ObjectKeyFromObject(sp), &cdiv1.StorageProfile{}))
	}, timeout, 100*time.Millisecond, "StorageProfile outlived its StorageClass")
}

// TestCDIClaimNeedsStorageProfile: a DataVolume whose spec.storage names no
// access modes, on a class whose profile has none, gets no claim; CDI's
// conditions say why. With access modes it gets its claim (which nobody
// provisions); on a profiled class the profile's modes are used.
func TestCDIClaimNeedsStorageProfile(t *testing.T) {
	ns := namespace(t)
	bare := httpDV(ns, "bare", sandbox.StorageClassUnknownProvisioner, "https://images.example.com/disk.qcow2")
	explicit := httpDV(ns, "explicit", sandbox.StorageClassUnknownProvisioner, "https://images.example.com/disk.qcow2")
	explicit.Spec.Storage.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	profiled := httpDV(ns, "profiled", sandbox.StorageClassStandard, "https://images.example.com/disk.qcow2")
	for _, dv := range []*cdiv1.DataVolume{bare, explicit, profiled} {
		require.NoError(t, sb.Client.Create(ctx, dv))
	}
	want := "no accessMode specified in StorageProfile " + sandbox.StorageClassUnknownProvisioner
	eventually(t, bare, func(dv *cdiv1.DataVolume) bool {
		for _, c := range dv.Status.Conditions {
			if c.Type == cdiv1.DataVolumeBound && c.Status == corev1.ConditionFalse && c.Reason == "ErrClaimNotValid" && c.Message == want {
				return dv.Status.Phase == cdiv1.PhaseUnset
			}
		}
		return false
	}, "Bound=False ErrClaimNotValid")
	assert.True(t, apierrors.IsNotFound(sb.Client.Get(ctx, client.ObjectKeyFromObject(bare), &corev1.PersistentVolumeClaim{})),
		"a claim was made without access modes")

	claim := &corev1.PersistentVolumeClaim{}
	require.Eventually(t, func() bool { return sb.Client.Get(ctx, client.ObjectKeyFromObject(explicit), claim) == nil },
		timeout, 100*time.Millisecond, "no claim for a DataVolume with access modes")
	assert.Equal(t, corev1.ClaimPending, claim.Status.Phase, "another driver's class is not provisioned")

	eventually(t, profiled, func(dv *cdiv1.DataVolume) bool { return dv.Status.Phase == cdiv1.Succeeded }, "profiled import")
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(profiled), claim))
	assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, claim.Spec.AccessModes)
	assert.Equal(t, corev1.PersistentVolumeFilesystem, ptr.Deref(claim.Spec.VolumeMode, ""))
}

package storage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// userClaim creates a claim as a user does (no labels, no owner) in the
// fixture's namespace, with extra changes by mutate.
func (f *fixture) userClaim(name, request string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	f.t.Helper()
	p := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: gi(request)}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	require.NoError(f.t, f.c.Create(f.ctx, p))
	return p
}

func (f *fixture) claim(name string) *corev1.PersistentVolumeClaim {
	f.t.Helper()
	p := &corev1.PersistentVolumeClaim{}
	require.NoError(f.t, f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, p))
	return p
}

// deleteHeld deletes claim name while a finalizer holds it, so it stays
// there being deleted, and lets it go when the test ends.
func (f *fixture) deleteHeld(name string) {
	f.t.Helper()
	p := f.claim(name)
	p.Finalizers = append(p.Finalizers, "example.org/hold")
	require.NoError(f.t, f.c.Update(f.ctx, p))
	require.NoError(f.t, f.c.Delete(f.ctx, p))
	f.t.Cleanup(func() {
		p := f.claim(name)
		p.Finalizers = nil
		_ = f.c.Update(context.Background(), p)
	})
}

// A disk naming an existing claim: refused while the claim is missing,
// controlled by another object or too small (each a stalled failure naming
// the field), used as it is once fine, and never written.
func TestReconcileExistingClaim(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("existing-wffc", true, false, false)
	disk := Disk{Name: "data", ClaimName: "keep-me", Size: gi("2Gi")}

	obs, err := f.reconcile(disk)
	assert.Equal(t, "PersistentVolumeClaim keep-me not found in this namespace", requireStalled(t, err, ReasonClaimNotFound, "data", "claimName"))
	assert.Equal(t, "keep-me", obs[0].ClaimName)
	assert.True(t, obs[0].Existing)
	assert.Nil(t, mustGetOptional(t, f, "keep-me", &corev1.PersistentVolumeClaim{}), "nothing is created for a missing claim")
	assert.Nil(t, mustGetOptional(t, f, ClaimName("vm", "data"), &corev1.PersistentVolumeClaim{}), "nor a claim of the disk's own name")

	// Controlled by a DataVolume (another owner's disk): never taken.
	f.userClaim("keep-me", "1Gi", func(p *corev1.PersistentVolumeClaim) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume",
			Name: "other-root", UID: "0000-other", Controller: ptr(true)}}
		p.Spec.StorageClassName = ptr("existing-wffc")
	})
	rv := f.claim("keep-me").ResourceVersion
	_, err = f.reconcile(disk)
	assert.Contains(t, requireStalled(t, err, ReasonClaimInUse, "data", "claimName"), "controlled by DataVolume other-root")
	assert.Equal(t, rv, f.claim("keep-me").ResourceVersion, "a refused claim is not written")

	// Freed, but smaller than the disk's size: refused, not resized.
	p := f.claim("keep-me")
	p.OwnerReferences = nil
	require.NoError(t, f.c.Update(f.ctx, p))
	_, err = f.reconcile(disk)
	assert.Contains(t, requireStalled(t, err, ReasonClaimTooSmall, "data", "size"), "keep-me")
	assert.Equal(t, "1Gi", f.claim("keep-me").Spec.Resources.Requests.Storage().String(), "never resized")

	// A size it satisfies, or none: used as it is.
	for _, size := range []string{"1Gi", ""} {
		d := disk
		d.Size = gi("0")
		if size != "" {
			d.Size = gi(size)
		}
		rv = f.claim("keep-me").ResourceVersion
		obs, err = f.reconcile(d)
		require.NoError(t, err, "size %q", size)
		o := obs[0]
		assert.True(t, o.Existing)
		assert.False(t, o.DataVolume, "the VM refers to the claim itself")
		assert.False(t, o.PlainClaim)
		assert.Equal(t, "keep-me", o.ClaimName)
		assert.Equal(t, "1Gi", o.Requested.String(), "the claim's request is the disk's size")
		assert.Equal(t, "existing-wffc", o.StorageClassName)
		assert.Equal(t, PhaseWaitForFirstConsumer, o.Phase, "unbound on a WaitForFirstConsumer class")
		assert.True(t, o.ConsumerCanStart())
		got := f.claim("keep-me")
		assert.Equal(t, rv, got.ResourceVersion, "an existing claim is never written")
		assert.Empty(t, got.Labels)
		assert.Empty(t, got.OwnerReferences)
	}

	// Being deleted: refused as missing.
	f.deleteHeld("keep-me")
	_, err = f.reconcile(disk)
	fail, ok := apply.AsFailure(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, ReasonClaimNotFound, fail.Reason)
	assert.Equal(t, "PersistentVolumeClaim keep-me is being deleted", fail.Error())
}

// mustGetOptional reads name in the fixture's namespace into obj: nil
// when it is not there.
func mustGetOptional[T client.Object](t *testing.T, f *fixture, name string, obj T) T {
	t.Helper()
	got, err := apply.GetOptional(f.ctx, f.c, client.ObjectKey{Namespace: f.ns, Name: name}, obj)
	require.NoError(t, err)
	return got
}

// Release hands a Retain disk's claim over as CDI's DataVolume garbage
// collection did: no owner reference to the owner or the DataVolume (one
// someone else added stays), no populatedFor, the owner's labels swapped
// for retained-from ones; the DataVolume goes. A second call changes
// nothing. Disks without Retain, and a claim of that name not made for the
// owner, are left alone; a missing claim is no error.
func TestReleaseRetainedClaims(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("release-std", false, false, false)
	disks := []Disk{
		{Name: "root", Size: gi("1Gi"), StorageClassName: "release-std", Source: "https://example.org/f.qcow2", Retain: true},
		{Name: "scratch", Size: gi("1Gi"), StorageClassName: "release-std"},
		{Name: "never", Size: gi("1Gi"), StorageClassName: "release-std", Retain: true},
		{Name: "theirs", Size: gi("1Gi"), StorageClassName: "release-std", Retain: true},
		{Name: "user", ClaimName: "users-claim", Retain: true},
	}
	_, err := f.reconcile(disks[0], disks[1])
	require.NoError(t, err)
	f.createCDIClaim("root", "release-std", "1100Mi")
	f.createCDIClaim("scratch", "release-std", "1100Mi")
	root := f.pvc("root")
	root.Annotations = map[string]string{annPopulatedFor: "vm-root", "cdi.kubevirt.io/createdForDataVolume": string(f.dv("root").UID)}
	root.Labels[apply.LabelManagedBy] = "wukong" // CDI copies the DataVolume's labels
	root.Labels[testID.OwnerLabelKey()] = "vm"
	root.Labels[testID.Key(KeyDisk)] = "root"
	root.OwnerReferences = append(root.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "someone", UID: "0000-someone"})
	require.NoError(t, f.c.Update(f.ctx, root))
	// "theirs": a claim of the disk's name the owner did not make.
	theirs := f.userClaim(ClaimName("vm", "theirs"), "1Gi")
	users := f.userClaim("users-claim", "1Gi")

	got, err := Release(f.ctx, f.c, testID, f.owner, disks)
	require.NoError(t, err)
	assert.Equal(t, []Released{
		{Disk: "root", ClaimName: "vm-root", Outcome: ReleaseDone},
		{Disk: "never", ClaimName: "vm-never", Outcome: ReleaseGone},
		{Disk: "theirs", ClaimName: "vm-theirs", Outcome: ReleaseNotOwned},
	}, got)

	root = f.pvc("root")
	assert.Equal(t, []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "someone", UID: "0000-someone"}}, root.OwnerReferences,
		"the owner's and the DataVolume's references go, someone else's stays")
	assert.Equal(t, map[string]string{cdiLabelKey: cdiLabelValue, "vm.novasphere.dev/retained-from-configmap": "vm", testID.Key(KeyRetainedFromDisk): "root"}, root.Labels)
	assert.NotContains(t, root.Annotations, annPopulatedFor, "else CDI takes the claim back")
	assert.Equal(t, string(f.owner.UID), root.Annotations[testID.Key(KeyRetainedFromUID)])
	assert.Contains(t, root.Annotations, "cdi.kubevirt.io/createdForDataVolume", "CDI's other annotations stay, as its own hand-over kept them")
	assert.Nil(t, mustGetOptional(t, f, "vm-root", &cdiv1.DataVolume{}), "the DataVolume is deleted")

	scratch := f.pvc("scratch")
	require.Len(t, scratch.OwnerReferences, 1, "a disk without Retain keeps its DataVolume")
	assert.Equal(t, "DataVolume", scratch.OwnerReferences[0].Kind)
	assert.NotNil(t, mustGetOptional(t, f, "vm-scratch", &cdiv1.DataVolume{}))
	assert.Equal(t, theirs.ResourceVersion, f.claim(theirs.Name).ResourceVersion, "a claim not made for the owner is not touched")
	assert.Equal(t, users.ResourceVersion, f.claim(users.Name).ResourceVersion, "a claim the disk names is never touched")

	rv := root.ResourceVersion
	again, err := Release(f.ctx, f.c, testID, f.owner, disks)
	require.NoError(t, err)
	assert.Equal(t, got, again, "a second call finds the claim it released")
	assert.Equal(t, rv, f.pvc("root").ResourceVersion)

	// The released claim now serves as an existing claim, for this owner
	// or another.
	obs, err := f.reconcile(Disk{Name: "again", ClaimName: "vm-root"})
	require.NoError(t, err)
	assert.True(t, obs[0].Existing)
}

// A plain claim (controlled by the owner itself) is released too; one being
// deleted cannot be kept and is reported, not an error.
func TestReleasePlainAndDeletingClaims(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("release-plain", false, false, false)
	plain := Disk{Name: "plain", Size: gi("1Gi"), StorageClassName: "release-plain", Retain: true}
	doomed := Disk{Name: "doomed", Size: gi("1Gi"), StorageClassName: "release-plain", Retain: true}
	f.plainClaims(plain, doomed)
	f.deleteHeld(f.pvc("doomed").Name)

	got, err := Release(f.ctx, f.c, testID, f.owner, []Disk{plain, doomed})
	require.NoError(t, err)
	assert.Equal(t, []Released{
		{Disk: "plain", ClaimName: "vm-plain", Outcome: ReleaseDone},
		{Disk: "doomed", ClaimName: "vm-doomed", Outcome: ReleaseDeleting},
	}, got)
	rel := f.pvc("plain")
	assert.Empty(t, rel.OwnerReferences)
	assert.Equal(t, "vm", rel.Labels["vm.novasphere.dev/retained-from-configmap"])
	assert.NotContains(t, rel.Labels, apply.LabelManagedBy)
	assert.NotContains(t, rel.Annotations, testID.HashAnnotationKey())
}

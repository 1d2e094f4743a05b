package e2e_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Disks that outlive their Wukong (#31): deletionPolicy Retain keeps a
// disk's claim when its Wukong is deleted; claimName uses such a claim (or
// any claim of the namespace without a controller) in a new Wukong, which
// never changes or deletes it.

const (
	// retainFinalizer is the operator's retainFinalizer.
	retainFinalizer         = "vm.novasphere.dev/retain-disks"
	labelRetainedFromWukong = "vm.novasphere.dev/retained-from-wukong"
	labelRetainedFromDisk   = "vm.novasphere.dev/retained-from-disk"
)

// hasRetainFinalizer reports whether the live Wukong carries the finalizer
// that releases its Retain disks' claims.
func hasRetainFinalizer(c *assert.CollectT, nn types.NamespacedName) bool {
	return controllerutil.ContainsFinalizer(getWukong(c, k, nn), retainFinalizer)
}

// TestRetainedDiskOutlivesWukong: a Retain disk's claim survives its
// Wukong's deletion with no owner reference and labels saying where it
// came from (its DataVolume and the Delete disk's claim go); the policy can
// change both ways on a live Wukong (the finalizer follows); a new Wukong
// runs on the kept claim through claimName, never changes it, and leaves it
// behind when it is deleted in turn.
func TestRetainedDiskOutlivesWukong(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	needInternet(t) // its Wukongs import testImage from quay.io
	t.Parallel()
	ns := newNamespace(t)
	ctx := ctxT(t)

	a := newWukong(ns, "a")
	a.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), Boot: true, Image: testImage, DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain},
		{Name: "data", Size: resource.MustParse("1Gi")},
	}
	create(t, a)
	a = waitRunning(t, key(a))
	assert.Contains(t, a.Finalizers, retainFinalizer, "a Retain disk puts the finalizer on")
	assert.Equal(t, v1alpha1.VolumeClaimRetained, volumeStatus(a, "root").Claim)
	assert.Equal(t, v1alpha1.VolumeClaimOwned, volumeStatus(a, "data").Claim)

	// Retain -> Delete -> Retain on the live Wukong: the finalizer follows.
	setPolicy := func(p v1alpha1.DiskDeletionPolicy) {
		updateWukong(t, key(a), func(w *v1alpha1.Wukong) { w.Spec.Disks[0].DeletionPolicy = p })
	}
	setPolicy(v1alpha1.DiskDeletionPolicyDelete)
	eventually(t, 1, func(c *assert.CollectT) {
		assert.False(c, hasRetainFinalizer(c, key(a)), "finalizer after Retain -> Delete")
		assert.Equal(c, v1alpha1.VolumeClaimOwned, volumeStatus(getWukong(c, k, key(a)), "root").Claim)
	}, "the finalizer to go with the last Retain disk")
	setPolicy(v1alpha1.DiskDeletionPolicyRetain)
	eventually(t, 1, func(c *assert.CollectT) {
		assert.True(c, hasRetainFinalizer(c, key(a)), "finalizer after Delete -> Retain")
	}, "the finalizer to come back")

	root := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "a-root"}, root))
	require.NotNil(t, metav1.GetControllerOf(root), "CDI's claim is controlled by its DataVolume while the Wukong lives")
	assert.Equal(t, "DataVolume", metav1.GetControllerOf(root).Kind)
	rootUID := root.UID

	require.NoError(t, k.Delete(ctx, a))
	eventually(t, 1, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, key(a))
		assertGone(c, &kubevirtv1.VirtualMachine{}, key(a))
		assertGone(c, &cdiv1.DataVolume{}, types.NamespacedName{Namespace: ns, Name: "a-root"})
		assertGone(c, &cdiv1.DataVolume{}, types.NamespacedName{Namespace: ns, Name: "a-data"})
		assertGone(c, &corev1.PersistentVolumeClaim{}, types.NamespacedName{Namespace: ns, Name: "a-data"})
	}, "Wukong a, its VM, DataVolumes and the Delete disk's claim to be gone")
	kept := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: "a-root"}, kept), "the Retain disk's claim survives")
	assert.Equal(t, rootUID, kept.UID, "the same claim, not a new one")
	assert.Nil(t, kept.DeletionTimestamp)
	assert.Empty(t, kept.OwnerReferences, "nothing left to delete it")
	assert.Equal(t, "a", kept.Labels[labelRetainedFromWukong])
	assert.Equal(t, "root", kept.Labels[labelRetainedFromDisk])
	assert.NotContains(t, kept.Labels, labelManagedBy, "no longer Wukong's")
	assert.NotContains(t, kept.Labels, labelWukong)
	assert.Equal(t, corev1.ClaimBound, kept.Status.Phase, "still bound to its volume")

	// Never adopted by name: a new Wukong "a" with the same disk and no
	// claimName finds the kept claim in its way.
	again := newWukong(ns, "a")
	again.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("1Gi")}}
	create(t, again)
	waitStalled(t, key(again), "spec.disks[0].name", v1alpha1.ReasonNameConflict)
	assertClaimUntouched(t, kept)
	require.NoError(t, k.Delete(ctx, again))
	eventually(t, 1, func(c *assert.CollectT) { assertGone(c, &v1alpha1.Wukong{}, key(again)) }, "the second Wukong a to be gone")
	assertClaimUntouched(t, kept)

	// A new Wukong runs on it.
	b := newWukong(ns, "b")
	b.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", ClaimName: "a-root", Boot: true}}
	create(t, b)
	b = waitRunning(t, key(b))
	v := volumeStatus(b, "root")
	require.NotNil(t, v)
	assert.Equal(t, "a-root", v.PVCName)
	assert.Equal(t, v1alpha1.VolumeClaimExisting, v.Claim)
	assert.True(t, v.Bound)
	assert.Empty(t, b.Finalizers, "a claimName disk is never deleted: no finalizer")
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctx, key(b), vm))
	var claimVolume *kubevirtv1.Volume
	for i, vol := range vm.Spec.Template.Spec.Volumes {
		if vol.Name == "root" {
			claimVolume = &vm.Spec.Template.Spec.Volumes[i]
		}
	}
	require.NotNil(t, claimVolume, "the VM's root volume")
	require.NotNil(t, claimVolume.PersistentVolumeClaim, "an existing claim is a persistentVolumeClaim volume")
	assert.Equal(t, "a-root", claimVolume.PersistentVolumeClaim.ClaimName)
	assertClaimUntouched(t, kept)

	require.NoError(t, k.Delete(ctx, b))
	eventually(t, 1, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, key(b))
		assertGone(c, &kubevirtv1.VirtualMachine{}, key(b))
	}, "Wukong b and its VM to be gone")
	assertClaimUntouched(t, kept)
}

// assertClaimUntouched checks the claim is still there as was: same UID,
// labels, owner references and request (the simulated PV controller may
// still write its status).
func assertClaimUntouched(t *testing.T, was *corev1.PersistentVolumeClaim) {
	t.Helper()
	now := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), key(was), now), "the claim is still there")
	assert.Equal(t, was.UID, now.UID)
	assert.Nil(t, now.DeletionTimestamp)
	assert.Equal(t, was.Labels, now.Labels, "labels")
	assert.Equal(t, was.Annotations, now.Annotations, "annotations")
	assert.Equal(t, was.OwnerReferences, now.OwnerReferences, "owner references")
	assert.Equal(t, was.Spec.Resources.Requests.Storage().String(), now.Spec.Resources.Requests.Storage().String(), "request")
}

// TestClaimNameMissingThenCreated: a claimName naming no claim of the
// Wukong's namespace stalls it naming the field, with the same message
// whether or not a claim of that name exists in another namespace, and
// nothing is created; once the claim exists the Wukong runs on it.
func TestClaimNameMissingThenCreated(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns, other := newNamespace(t), newNamespace(t)
	class := defaultStorageClass(t).Name
	claim := func(namespace string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "later"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: &class,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
	}
	create(t, claim(other)) // another namespace's claim of that name is never used

	w := newWukong(ns, "brought")
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", ClaimName: "later", Size: resource.MustParse("1Gi")}}
	create(t, w)
	waitStalled(t, key(w), "spec.disks[0].claimName", v1alpha1.ReasonClaimNotFound)
	stalled := cond(getWukong(t, k, key(w)), v1alpha1.StalledCondition)
	assert.Equal(t, "spec.disks[0].claimName: PersistentVolumeClaim later not found in this namespace: "+
		"create it, or name another claim (a claim a deleted Wukong retained keeps its name, <wukong>-<disk>)", stalled.Message,
		"the message is the same whether or not another namespace has the claim")
	assertGone(t, &corev1.PersistentVolumeClaim{}, types.NamespacedName{Namespace: ns, Name: "later"})
	assertGone(t, &corev1.PersistentVolumeClaim{}, types.NamespacedName{Namespace: ns, Name: "brought-root"})

	mine := claim(ns)
	create(t, mine)
	poke(t, key(w)) // a user's claim is not watched: the timed retry is a minute or more away
	w = waitRunning(t, key(w))
	assert.Equal(t, "later", volumeStatus(w, "root").PVCName)
	assert.Equal(t, v1alpha1.VolumeClaimExisting, volumeStatus(w, "root").Claim)
	got := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), key(mine), got))
	assert.Empty(t, got.OwnerReferences, "never owned")
	assert.Empty(t, got.Labels, "never labelled")

	// A second Wukong naming the same claim is refused: two VMs must not
	// write one disk.
	second := newWukong(ns, "second")
	second.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", ClaimName: "later"}}
	create(t, second)
	waitStalled(t, key(second), "spec.disks[0].claimName", v1alpha1.ReasonClaimInUse)
	assert.Contains(t, cond(getWukong(t, k, key(second)), v1alpha1.StalledCondition).Message, "is the disk of Wukong brought")
	waitRunning(t, key(w))

	// Once the first is deleted the second runs on the claim, at once (no
	// poke: the deletion wakes the Wukongs naming its claims).
	require.NoError(t, k.Delete(ctxT(t), w))
	waitRunning(t, key(second))
	require.NoError(t, k.Get(ctxT(t), key(mine), got))
	assert.Empty(t, got.OwnerReferences, "never owned")
	assert.Nil(t, got.DeletionTimestamp, "never deleted")
}

// TestClaimNameOfAnotherWukongRefused: the claim of another Wukong's live
// disk (controlled by its DataVolume) is refused naming the field, and left
// untouched.
func TestClaimNameOfAnotherWukongRefused(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	t.Parallel()
	ns := newNamespace(t)
	owner := newWukong(ns, "owner")
	create(t, owner)
	waitRunning(t, key(owner))
	theirs := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "owner-root"}, theirs))

	thief := newWukong(ns, "thief")
	thief.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", ClaimName: "owner-root"}}
	create(t, thief)
	waitStalled(t, key(thief), "spec.disks[0].claimName", v1alpha1.ReasonClaimInUse)
	assert.Contains(t, cond(getWukong(t, k, key(thief)), v1alpha1.StalledCondition).Message, "controlled by DataVolume owner-root")
	assertClaimUntouched(t, theirs)
	waitRunning(t, key(owner))
}

package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestSyncRetainFinalizer: the finalizer is on a live Wukong exactly while
// a disk it creates has deletionPolicy Retain; changing the policy either
// way adds or removes it. A claimName disk (never deleted) needs none.
func TestSyncRetainFinalizer(t *testing.T) {
	ctx := context.Background()
	w := testWukong()
	w.UID = "uid-vm1"
	c := fake.NewClientBuilder().WithScheme(testScheme(t, v1alpha1.AddToScheme)).WithObjects(w).Build()
	r := &WukongReconciler{Client: c}
	has := func() bool {
		t.Helper()
		got := &v1alpha1.Wukong{}
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(w), got))
		return controllerutil.ContainsFinalizer(got, retainFinalizer)
	}
	set := func(mutate func(*v1alpha1.Wukong)) {
		t.Helper()
		got := &v1alpha1.Wukong{}
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(w), got))
		mutate(got)
		require.NoError(t, c.Update(ctx, got))
		require.NoError(t, r.syncRetainFinalizer(ctx, got))
	}

	set(func(*v1alpha1.Wukong) {})
	assert.False(t, has(), "no Retain disk: no finalizer")
	set(func(w *v1alpha1.Wukong) { w.Spec.Disks[0].DeletionPolicy = v1alpha1.DiskDeletionPolicyRetain })
	assert.True(t, has(), "Retain: finalizer")
	set(func(w *v1alpha1.Wukong) { w.Spec.Disks[0].DeletionPolicy = v1alpha1.DiskDeletionPolicyDelete })
	assert.False(t, has(), "back to Delete: finalizer removed")
	set(func(w *v1alpha1.Wukong) { w.Spec.Disks[0].DeletionPolicy = v1alpha1.DiskDeletionPolicyRetain })
	assert.True(t, has(), "and Retain again")
	set(func(w *v1alpha1.Wukong) {
		w.Spec.Disks[0].DeletionPolicy = ""
		w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "kept", ClaimName: "old", DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain})
	})
	assert.False(t, has(), "a claimName disk is never deleted: no finalizer for it")
}

// TestReconcileDeleteReleasesRetainedClaims: deleting a Wukong with a Retain
// disk releases that disk's claim (no owner reference to the Wukong or the
// DataVolume, retained-from labels), deletes its DataVolume, leaves a
// Delete disk's to the garbage collector, and removes the finalizer; a
// Retain disk whose claim is already gone does not hold the deletion.
func TestReconcileDeleteReleasesRetainedClaims(t *testing.T) {
	ctx := context.Background()
	now := metav1.Now()
	w := testWukong()
	w.UID = "uid-vm1"
	w.Finalizers = []string{retainFinalizer}
	w.DeletionTimestamp = &now
	w.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain},
		{Name: "scratch", Size: resource.MustParse("1Gi")},
		{Name: "gone", Size: resource.MustParse("1Gi"), DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain},
	}
	wukongRef := metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Wukong", Name: "vm1", UID: w.UID, Controller: ptr.To(true)}
	dv := func(disk string) *cdiv1.DataVolume {
		return &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vm1-" + disk, UID: k8stypes.UID("uid-dv-" + disk),
			Labels: map[string]string{"app.kubernetes.io/managed-by": "wukong", "vm.novasphere.dev/wukong": "vm1", "vm.novasphere.dev/disk": disk}, OwnerReferences: []metav1.OwnerReference{wukongRef}}}
	}
	claim := func(d *cdiv1.DataVolume) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: d.Name, Labels: d.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}}}}
	}
	rootDV, scratchDV := dv("root"), dv("scratch")
	c := fake.NewClientBuilder().WithScheme(testScheme(t, v1alpha1.AddToScheme, corev1.AddToScheme, cdiv1.AddToScheme)).
		WithObjects(w, rootDV, claim(rootDV), scratchDV, claim(scratchDV)).Build()
	r := &WukongReconciler{Client: c}

	_, err := r.reconcileDelete(ctx, w)
	require.NoError(t, err)

	root := &corev1.PersistentVolumeClaim{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "vm1-root"}, root))
	assert.Empty(t, root.OwnerReferences, "nothing deletes the retained claim")
	assert.Equal(t, map[string]string{"vm.novasphere.dev/retained-from-wukong": "vm1", "vm.novasphere.dev/retained-from-disk": "root"}, root.Labels)
	err = c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "vm1-root"}, &cdiv1.DataVolume{})
	assert.True(t, apierrors.IsNotFound(err), "the retained disk's DataVolume is deleted, got %v", err)

	scratch := &corev1.PersistentVolumeClaim{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "vm1-scratch"}, scratch))
	assert.Len(t, scratch.OwnerReferences, 1, "a Delete disk is left to the garbage collector")
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "vm1-scratch"}, &cdiv1.DataVolume{}))

	err = c.Get(ctx, client.ObjectKeyFromObject(w), &v1alpha1.Wukong{})
	assert.True(t, apierrors.IsNotFound(err), "the finalizer is removed, so the deleted Wukong goes, got %v", err)
}

// TestClaimsShared: a disk whose claimName a Wukong created earlier names
// too is refused (ClaimInUse naming the field, External); the first one
// keeps it, and Wukongs naming other claims are not concerned.
func TestClaimsShared(t *testing.T) {
	ctx := context.Background()
	wk := func(name, uid string, created time.Time, claims ...string) *v1alpha1.Wukong {
		w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: k8stypes.UID(uid), CreationTimestamp: metav1.NewTime(created)}}
		w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "root", Size: resource.MustParse("1Gi")})
		for i, c := range claims {
			w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: fmt.Sprintf("d%d", i), ClaimName: c})
		}
		return w
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := wk("first", "u1", t0, "shared")
	second := wk("second", "u2", t0.Add(time.Minute), "mine", "shared")
	tie := wk("alpha", "u3", t0.Add(time.Minute), "other")
	tie2 := wk("beta", "u4", t0.Add(time.Minute), "other")
	elsewhere := wk("first", "u5", t0)
	elsewhere.Namespace = "ns2"
	elsewhere.Spec.Disks[0] = v1alpha1.DiskSpec{Name: "root", ClaimName: "mine"}
	c := fake.NewClientBuilder().WithScheme(testScheme(t, v1alpha1.AddToScheme)).
		WithIndex(&v1alpha1.Wukong{}, indexClaimNames, wukongIndex(claimNamesOf)).
		WithObjects(first, second, tie, tie2, elsewhere).Build()
	r := &WukongReconciler{Client: c}

	check := func(w *v1alpha1.Wukong) (map[string]bool, []problem) {
		t.Helper()
		s := &scope{w: w}
		refused, err := r.claimsShared(ctx, s)
		require.NoError(t, err)
		return refused, s.problems
	}
	refused, problems := check(first)
	assert.Empty(t, refused, "the first to name a claim keeps it")
	assert.Empty(t, problems)

	refused, problems = check(second)
	assert.Equal(t, map[string]bool{"d1": true}, refused, "only the shared claim's disk; another namespace's Wukong does not count")
	require.Len(t, problems, 1)
	assert.Equal(t, problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonClaimInUse, Field: "spec.disks[2].claimName", External: true,
		Message: "PersistentVolumeClaim shared is the disk of Wukong first (its claimName), named there first: two virtual machines must not write one claim"}, problems[0])

	refused, _ = check(tie)
	assert.Empty(t, refused, "created at the same time: the smaller name keeps it")
	refused, _ = check(tie2)
	assert.Equal(t, map[string]bool{"d0": true}, refused)
}

// TestStalledClaimUsers: a Wukong's event wakes the Stalled Wukongs naming
// one of its claims (its claimName, or a claim it creates), not itself, not
// the healthy ones, not those of another namespace.
func TestStalledClaimUsers(t *testing.T) {
	wk := func(ns, name string, stalled bool, claims ...string) *v1alpha1.Wukong {
		w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: k8stypes.UID(ns + "/" + name)}}
		for i, c := range claims {
			w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: fmt.Sprintf("d%d", i), ClaimName: c})
		}
		if stalled {
			w.Status.Conditions = []metav1.Condition{{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonClaimInUse}}
		}
		return w
	}
	old := wk("ns", "old", false)
	old.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("1Gi"), DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain}}
	holder := wk("ns", "holder", false, "shared")
	c := fake.NewClientBuilder().WithScheme(testScheme(t, v1alpha1.AddToScheme)).
		WithIndex(&v1alpha1.Wukong{}, indexClaimNames, wukongIndex(claimNamesOf)).
		WithObjects(old, holder, wk("ns", "waits-old", true, "old-root"), wk("ns", "waits-shared", true, "shared"),
			wk("ns", "fine", false, "shared"), wk("ns2", "elsewhere", true, "shared", "old-root")).Build()
	r := &WukongReconciler{Client: c}
	names := func(o client.Object) []string {
		var out []string
		for _, req := range r.stalledClaimUsers(context.Background(), o) {
			out = append(out, req.Namespace+"/"+req.Name)
		}
		return out
	}
	assert.Equal(t, []string{"ns/waits-old"}, names(old), "the claim old creates")
	assert.Equal(t, []string{"ns/waits-shared"}, names(holder), "the claim holder names")
	assert.Empty(t, names(wk("ns", "none", false)))
}

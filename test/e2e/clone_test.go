package e2e_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// annCloneStrategy is the StorageClass annotation CDI's StorageProfile
// controller takes a class's clone strategy from when the profile's
// spec.cloneStrategy is unset (pkg/controller/storageprofile-controller.go
// reconcileCloneStrategy).
const annCloneStrategy = "cdi.kubevirt.io/clone-strategy"

// cloneSource is a Wukong with a root disk imported from testImage and a
// blank data disk, halted (its disks are used by no VM).
func cloneSource(ns, name string) *v1alpha1.Wukong {
	w := newWukong(ns, name)
	w.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), Image: testImage},
		{Name: "data", Size: resource.MustParse("1Gi")},
	}
	w.Spec.StartStrategy = &v1alpha1.StartStrategy{RunStrategy: "Halted"}
	return w
}

// bindByFirstStart: where the class of w's first disk binds on first
// consumer (make local-cluster-up's local-path), the claims of a Wukong
// created Halted stay unbound until it runs, so it is started once and
// halted again (what a user does to provision such a Wukong's disks).
// Elsewhere it does nothing.
func bindByFirstStart(t *testing.T, w *v1alpha1.Wukong) {
	t.Helper()
	if !bindsOnFirstConsumer(t, w.Spec.Disks[0].StorageClassName) {
		return
	}
	eventually(t, 1, func(c *assert.CollectT) {
		require.NoError(c, k.Get(context.Background(), key(w), &kubevirtv1.VirtualMachine{}))
	}, "the VirtualMachine of %s", key(w))
	powerAction(t, key(w), kubevirtv1.RunStrategyAlways)
	waitRunning(t, key(w))
	powerAction(t, key(w), kubevirtv1.RunStrategyHalted)
	// Phase Stopped comes while the guest shuts down; Ready's reason
	// Stopped once the VMI is gone (a snapshot before that is online).
	eventually(t, 1, func(c *assert.CollectT) {
		if r := cond(getWukong(c, k, key(w)), v1alpha1.ReadyCondition); assert.NotNil(c, r) {
			assert.Equal(c, v1alpha1.ReasonStopped, r.Reason)
		}
	}, "%s stopped, its VMI gone", key(w))
}

// needClusterDNS skips off the sandbox when the cluster runs no DNS
// (no Service kube-system/kube-dns; make local-cluster-up runs none): CDI's
// host-assisted clone (cloneType copy, local-path's) has its source pod
// POST to the upload server by Service name, which then never resolves
// (observed: "dial tcp: lookup cdi-upload-<claim>.<ns>.svc ...: i/o
// timeout", the clone at 100% for ever).
func needClusterDNS(t *testing.T) {
	t.Helper()
	if inSandbox {
		return
	}
	err := k.Get(ctxT(t), types.NamespacedName{Namespace: "kube-system", Name: "kube-dns"}, &corev1.Service{})
	if apierrors.IsNotFound(err) {
		t.Skip("the cluster has no DNS (Service kube-system/kube-dns), which CDI's host-assisted clone needs to reach its upload server")
	}
	require.NoError(t, err)
}

// waitStoppedWithDisks waits until w is Stopped with every disk ready.
func waitStoppedWithDisks(t *testing.T, nn types.NamespacedName) *v1alpha1.Wukong {
	t.Helper()
	var w *v1alpha1.Wukong
	eventually(t, 1, func(c *assert.CollectT) {
		w = getWukong(c, k, nn)
		assert.Equal(c, v1alpha1.PhaseStopped, w.Status.Phase, "phase")
		assert.Equal(c, metav1.ConditionTrue, condStatus(w, v1alpha1.VolumesBoundCondition), "VolumesBound")
	}, "Wukong %s to be Stopped with its disks bound", nn)
	return w
}

// cloneStrategyClass makes a StorageClass like the default one whose
// clone strategy is strategy (annotation cdi.kubevirt.io/clone-strategy,
// what an administrator sets for a driver CDI does not know), with the
// default class's claim properties, deleted at the end; it waits until
// CDI's StorageProfile reports the strategy.
func cloneStrategyClass(t *testing.T, strategy cdiv1.CDICloneStrategy) string {
	t.Helper()
	name := string(strategy) + "-" + randSuffix()
	sc := cloneDefaultStorageClass(t, name)
	sc.Annotations = map[string]string{annCloneStrategy: string(strategy)}
	create(t, sc)
	t.Cleanup(func() {
		_ = k.Delete(context.Background(), &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	copyStorageProfile(t, defaultStorageClass(t).Name, name)
	eventually(t, 1, func(c *assert.CollectT) {
		sp := &cdiv1.StorageProfile{}
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Name: name}, sp))
		if assert.NotNil(c, sp.Status.CloneStrategy, "status.cloneStrategy") {
			assert.Equal(c, strategy, *sp.Status.CloneStrategy)
		}
		assert.NotEmpty(c, sp.Status.ClaimPropertySets, "status.claimPropertySets")
	}, "CDI to report StorageProfile %s with clone strategy %s", name, strategy)
	return name
}

// profileCloneStrategy is the clone strategy CDI's StorageProfile of class
// reports ("" when none).
func profileCloneStrategy(t *testing.T, class string) string {
	t.Helper()
	sp := &cdiv1.StorageProfile{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: class}, sp))
	if sp.Status.CloneStrategy == nil {
		return ""
	}
	return string(*sp.Status.CloneStrategy)
}

// claimOf reads the claim of disk of w.
func claimOf(t *testing.T, w *v1alpha1.Wukong, disk string) *corev1.PersistentVolumeClaim {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: w.Namespace, Name: w.Name + "-" + disk}, pvc))
	return pvc
}

// stalledClone creates Wukong "thief" in ns whose first disk clones from,
// a source ns does not have, waits until it is Stalled with
// CloneSourceNotFound naming spec.disks[0].cloneFrom.<field>, and returns
// the message.
func stalledClone(t *testing.T, ns string, from v1alpha1.DiskCloneSource, field string) string {
	t.Helper()
	w := newWukong(ns, "thief")
	w.Spec.Disks[0].CloneFrom = &from
	create(t, w)
	var msg string
	eventually(t, 1, func(c *assert.CollectT) {
		s := cond(getWukong(c, k, key(w)), v1alpha1.StalledCondition)
		if assert.NotNil(c, s, "Stalled") {
			assert.Equal(c, v1alpha1.ReasonCloneSourceNotFound, s.Reason)
			assert.Contains(c, s.Message, "spec.disks[0].cloneFrom."+field)
			msg = s.Message
		}
	}, "%s to be Stalled: no such clone source in its namespace", key(w))
	return msg
}

// TestCloneStoppedWukong: a new Wukong whose disks clone a stopped
// Wukong's runs; each disk reports the strategy CDI chose (the default
// class's profile strategy for one, csi-clone on a class that asks for it
// for the other), the clone holds the source's data (sandbox), and the
// source is left as it was.
func TestCloneStoppedWukong(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	needInternet(t) // cloneSource imports testImage from quay.io
	t.Parallel()
	ns := newNamespace(t)
	src := cloneSource(ns, "src")
	create(t, src)
	src = waitStoppedWithDisks(t, key(src))
	csiClass := cloneStrategyClass(t, cdiv1.CloneStrategyCsiClone)

	srcClaims := map[string]*corev1.PersistentVolumeClaim{}
	for _, d := range []string{"root", "data"} {
		srcClaims[d] = claimOf(t, src, d)
	}
	srcDVs := &cdiv1.DataVolumeList{}
	require.NoError(t, k.List(ctxT(t), srcDVs, client.InNamespace(ns), client.MatchingLabels{labelWukong: "src"}))

	dst := newWukong(ns, "dst")
	dst.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), CloneFrom: &v1alpha1.DiskCloneSource{Wukong: "src"}},
		{Name: "copy", Size: resource.MustParse("2Gi"), StorageClassName: csiClass, CloneFrom: &v1alpha1.DiskCloneSource{Wukong: "src", Disk: "data"}},
	}
	create(t, dst)
	dst = waitRunning(t, key(dst))

	wantRoot := profileCloneStrategy(t, defaultStorageClass(t).Name)
	require.NotEmpty(t, wantRoot, "CDI reports the default class's clone strategy")
	if v := volumeStatus(dst, "root"); assert.NotNil(t, v) {
		assert.Equal(t, wantRoot, v.CloneType, "root: the strategy of the default class's profile")
		assert.Equal(t, string(v1alpha1.PhaseRunning), string(dst.Status.Phase))
	}
	if v := volumeStatus(dst, "copy"); assert.NotNil(t, v) {
		assert.Equal(t, string(cdiv1.CloneStrategyCsiClone), v.CloneType, "copy: the class asks for csi-clone and shares the source's driver")
		assert.Equal(t, "Bound", v.Phase)
	}
	assert.Equal(t, "2/2", dst.Status.Disks)

	// The DataVolumes clone the source's claims, in this namespace.
	for disk, from := range map[string]string{"root": "src-root", "copy": "src-data"} {
		dv := &cdiv1.DataVolume{}
		require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "dst-" + disk}, dv))
		if assert.NotNil(t, dv.Spec.Source.PVC, "%s: a pvc source", disk) {
			assert.Equal(t, cdiv1.DataVolumeSourcePVC{Namespace: ns, Name: from}, *dv.Spec.Source.PVC)
		}
	}
	if inSandbox {
		assert.Equal(t, testImage, claimOf(t, dst, "root").Annotations[sandbox.AnnData], "the clone holds the source's imported image")
		assert.Equal(t, "blank", claimOf(t, dst, "copy").Annotations[sandbox.AnnData], "the clone holds the source's (empty) data")
	}

	// The source is untouched: its spec, phase, claims and DataVolumes.
	now := getWukong(t, k, key(src))
	assert.Equal(t, src.Generation, now.Generation, "source generation")
	assert.Equal(t, src.Spec, now.Spec, "source spec")
	assert.Equal(t, v1alpha1.PhaseStopped, now.Status.Phase, "source still Stopped")
	for d, before := range srcClaims {
		after := claimOf(t, src, d)
		assert.Equal(t, before.Spec, after.Spec, "source claim %s spec", d)
		assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "source claim %s not written", d)
	}
	for i := range srcDVs.Items {
		after := &cdiv1.DataVolume{}
		require.NoError(t, k.Get(ctxT(t), key(&srcDVs.Items[i]), after))
		assert.Equal(t, srcDVs.Items[i].ResourceVersion, after.ResourceVersion, "source DataVolume %s not written", after.Name)
	}
}

// TestCloneWaitsForRunningSource: CDI clones a claim only while no running
// pod uses it, so a clone of a running Wukong's disk waits, and says so on
// the new Wukong (stop the source or use a snapshot), without being
// Stalled; once the source stops, the clone runs.
func TestCloneWaitsForRunningSource(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	needClusterDNS(t)
	t.Parallel()
	ns := newNamespace(t)
	src := newWukong(ns, "busy")
	create(t, src)
	waitRunning(t, key(src))

	dst := newWukong(ns, "copy")
	dst.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("1Gi"), CloneFrom: &v1alpha1.DiskCloneSource{Wukong: "busy"}}}
	create(t, dst)
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, k, key(dst))
		assert.Nil(c, cond(w, v1alpha1.StalledCondition), "not Stalled: it waits")
		assert.Equal(c, v1alpha1.PhasePending, w.Status.Phase)
		if r := cond(w, v1alpha1.ReconcilingCondition); assert.NotNil(c, r, "Reconciling") {
			assert.Contains(c, r.Message, "waiting for Wukong busy to stop")
			assert.Contains(c, r.Message, "stop busy or clone from a snapshot")
		}
		if v := volumeStatus(w, "root"); assert.NotNil(c, v) {
			assert.Contains(c, v.Message, "stop busy or clone from a snapshot")
		}
	}, "the clone to wait for its running source")
	if inSandbox {
		// CDI's own account, on the DataVolume.
		eventually(t, 1, func(c *assert.CollectT) {
			evs := &corev1.EventList{}
			require.NoError(c, k.List(context.Background(), evs, client.InNamespace(ns)))
			found := false
			for _, e := range evs.Items {
				found = found || (e.Reason == "CloneSourceInUse" && e.InvolvedObject.Name == "copy-root")
			}
			assert.True(c, found, "a CloneSourceInUse Event on DataVolume copy-root")
		})
	}

	updateWukong(t, key(src), func(w *v1alpha1.Wukong) {
		w.Spec.StartStrategy = &v1alpha1.StartStrategy{RunStrategy: "Halted"}
	})
	w := waitRunning(t, key(dst))
	if v := volumeStatus(w, "root"); assert.NotNil(t, v) {
		assert.NotEmpty(t, v.CloneType, "CDI's strategy is reported")
		assert.Empty(t, v.Message)
	}
}

// TestCloneSourceNotFoundLeaksNothing: a clone of a Wukong this namespace
// does not have is Stalled naming spec.disks[0].cloneFrom.wukong, with the
// same reason and message whether or not a Wukong of that name (with that
// disk) exists in another namespace.
func TestCloneSourceNotFoundLeaksNothing(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	needInternet(t) // cloneSource imports testImage from quay.io
	t.Parallel()
	other, mine, third := newNamespace(t), newNamespace(t), newNamespace(t)
	name := "secret-" + randSuffix()

	from := v1alpha1.DiskCloneSource{Wukong: name}
	missing := stalledClone(t, mine, from, "wukong") // nowhere yet

	src := cloneSource(other, name)
	src.Spec.Disks[0].Image = ""
	create(t, src)
	waitStoppedWithDisks(t, key(src))
	elsewhere := stalledClone(t, third, from, "wukong") // exists in another namespace

	assert.Contains(t, missing, "spec.disks[0].cloneFrom.wukong")
	assert.Equal(t, missing, elsewhere, "the message does not tell whether it exists elsewhere")
	assert.NotContains(t, elsewhere, other, "no other namespace is named")
	dvs := &cdiv1.DataVolumeList{}
	require.NoError(t, k.List(ctxT(t), dvs, client.InNamespace(third)))
	assert.Empty(t, dvs.Items, "nothing is written for the disk")
}

// TestCloneSmallerThanSource: a clone smaller than its source is Stalled
// naming spec.disks[0].size (CDI refuses it); growing it lets it run.
func TestCloneSmallerThanSource(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	needClusterDNS(t)
	t.Parallel()
	ns := newNamespace(t)
	src := newWukong(ns, "big")
	src.Spec.Disks[0].Size = resource.MustParse("2Gi")
	src.Spec.StartStrategy = &v1alpha1.StartStrategy{RunStrategy: "Halted"}
	create(t, src)
	bindByFirstStart(t, src)
	waitStoppedWithDisks(t, key(src))

	dst := newWukong(ns, "small")
	dst.Spec.Disks[0].CloneFrom = &v1alpha1.DiskCloneSource{Wukong: "big"}
	create(t, dst)
	eventually(t, 1, func(c *assert.CollectT) {
		s := cond(getWukong(c, k, key(dst)), v1alpha1.StalledCondition)
		if assert.NotNil(c, s, "Stalled") {
			assert.Equal(c, v1alpha1.ReasonDiskTooSmall, s.Reason)
			assert.Contains(c, s.Message, "spec.disks[0].size")
			assert.Contains(c, s.Message, "2Gi")
		}
	}, "a clone smaller than its source to be Stalled")
	assertGone(t, &cdiv1.DataVolume{}, types.NamespacedName{Namespace: ns, Name: "small-root"})

	updateWukong(t, key(dst), func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = resource.MustParse("2Gi") })
	waitRunning(t, key(dst))
}

// TestCloneFromSnapshot: disks cloned from a WukongSnapshot's disks run as
// a new Wukong with CDI's snapshot strategy (the VolumeSnapshot's driver is
// the target class's), hold the data the snapshot captured (sandbox), and
// do not wait for the snapshotted Wukong, which runs meanwhile. A Wukong of
// another namespace naming the snapshot is Stalled with the message it got
// before the snapshot existed.
func TestCloneFromSnapshot(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	requireKinds(t, schema.GroupVersionKind{Group: "snapshot.kubevirt.io", Version: "v1beta1", Kind: "VirtualMachineSnapshot"})
	needInternet(t) // cloneSource imports testImage from quay.io
	t.Parallel()
	ns, other, third := newNamespace(t), newNamespace(t), newNamespace(t)
	snapName := "nightly-" + randSuffix()

	from := v1alpha1.DiskCloneSource{Snapshot: snapName}
	before := stalledClone(t, other, from, "snapshot") // the snapshot exists nowhere yet

	src := cloneSource(ns, "web")
	create(t, src)
	waitStoppedWithDisks(t, key(src))
	create(t, newSnapshot(ns, snapName, "web"))
	snap := waitSnapshotReady(t, types.NamespacedName{Namespace: ns, Name: snapName})
	// The snapshotted Wukong runs: a clone of the snapshot does not wait.
	updateWukong(t, key(src), func(w *v1alpha1.Wukong) { w.Spec.StartStrategy = &v1alpha1.StartStrategy{RunStrategy: "Always"} })
	waitRunning(t, key(src))

	dst := newWukong(ns, "restored")
	dst.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("1Gi"), CloneFrom: &v1alpha1.DiskCloneSource{Snapshot: snapName}},
		{Name: "scratch", Size: resource.MustParse("1Gi"), CloneFrom: &v1alpha1.DiskCloneSource{Snapshot: snapName, Disk: "data"}},
	}
	create(t, dst)
	dst = waitRunning(t, key(dst))
	for disk, from := range map[string]string{"root": "root", "scratch": "data"} {
		if v := volumeStatus(dst, disk); assert.NotNil(t, v) {
			assert.Equal(t, string(cdiv1.CloneStrategySnapshot), v.CloneType, "%s: restored by the CSI driver from its VolumeSnapshot", disk)
		}
		var vsName string
		for _, d := range snap.Status.Disks {
			if d.Name == from {
				vsName = d.VolumeSnapshotName
			}
		}
		require.NotEmpty(t, vsName, "the snapshot captured disk %s", from)
		dv := &cdiv1.DataVolume{}
		require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "restored-" + disk}, dv))
		if assert.NotNil(t, dv.Spec.Source.Snapshot, "%s: a snapshot source", disk) {
			assert.Equal(t, cdiv1.DataVolumeSourceSnapshot{Namespace: ns, Name: vsName}, *dv.Spec.Source.Snapshot)
		}
	}
	if inSandbox {
		assert.Equal(t, testImage, claimOf(t, dst, "root").Annotations[sandbox.AnnData], "the clone holds the snapshotted image")
		assert.Equal(t, "blank", claimOf(t, dst, "scratch").Annotations[sandbox.AnnData])
	}

	after := stalledClone(t, third, from, "snapshot") // it exists, in another namespace
	assert.Equal(t, before, after, "the message does not tell whether the snapshot exists elsewhere")
	assert.NotContains(t, after, ns)
}

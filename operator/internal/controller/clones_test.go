package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestCloneSources: how spec.disks[i].cloneFrom resolves against what the
// namespace holds: the source claim or VolumeSnapshot, a wait (snapshot
// not ready, source disk not made), or a problem (source missing, in this
// namespace or at all, with one message; a disk smaller than its source);
// a disk whose DataVolume exists keeps that DataVolume's source whatever
// became of the source.
func TestCloneSources(t *testing.T) {
	scheme := testScheme(t, corev1.AddToScheme, v1alpha1.AddToScheme, cdiv1.AddToScheme, kubevirtv1.AddToScheme)
	const ns = "team-a"
	gi := resource.MustParse
	source := func(ns, name string, disks ...v1alpha1.DiskSpec) *v1alpha1.Wukong {
		return &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.WukongSpec{Disks: disks}}
	}
	claim := func(ns, name string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	snapshot := func(name string, ready bool, disks ...v1alpha1.SnapshotDisk) *v1alpha1.WukongSnapshot {
		return &v1alpha1.WukongSnapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1alpha1.WukongSnapshotSpec{WukongName: "web"},
			Status: v1alpha1.WukongSnapshotStatus{ReadyToUse: ptr.To(ready), Disks: disks,
				WukongSpec: &v1alpha1.WukongSpec{Disks: []v1alpha1.DiskSpec{{Name: "root", Size: gi("2Gi")}}}},
		}
	}
	rootOf := func(size string, cf v1alpha1.DiskCloneSource) []v1alpha1.DiskSpec {
		return []v1alpha1.DiskSpec{{Name: "root", Size: gi(size), CloneFrom: &cf}}
	}
	tests := []struct {
		name    string
		disks   []v1alpha1.DiskSpec
		objs    []client.Object
		want    *storage.CloneSource
		wait    string // substring of the wait
		problem *problem
	}{
		{name: "a Wukong's disk: its claim", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Wukong: "web"}),
			objs: []client.Object{source(ns, "web", v1alpha1.DiskSpec{Name: "root", Size: gi("2Gi")}), claim(ns, "web-root")},
			want: &storage.CloneSource{ClaimName: "web-root"}},
		{name: "another disk, its claim as status names it", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Wukong: "web", Disk: "data"}),
			objs: []client.Object{func() *v1alpha1.Wukong {
				w := source(ns, "web", v1alpha1.DiskSpec{Name: "data", Size: gi("1Gi")})
				w.Status.Volumes = []v1alpha1.VolumeStatus{{Name: "data", PVCName: "kept-data"}}
				return w
			}(), claim(ns, "kept-data")},
			want: &storage.CloneSource{ClaimName: "kept-data"}},
		{name: "no such Wukong", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Wukong: "web"}),
			problem: &problem{Reason: v1alpha1.ReasonCloneSourceNotFound, Field: "spec.disks[0].cloneFrom.wukong",
				Message: "no Wukong web with a disk root in this namespace: a disk clones only a disk of a Wukong of its own namespace"}},
		{name: "a Wukong of that name elsewhere: the same answer", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Wukong: "web"}),
			objs: []client.Object{source("team-b", "web", v1alpha1.DiskSpec{Name: "root", Size: gi("1Gi")}), claim("team-b", "web-root")},
			problem: &problem{Reason: v1alpha1.ReasonCloneSourceNotFound, Field: "spec.disks[0].cloneFrom.wukong",
				Message: "no Wukong web with a disk root in this namespace: a disk clones only a disk of a Wukong of its own namespace"}},
		{name: "the Wukong has no such disk: the same answer", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Wukong: "web"}),
			objs: []client.Object{source(ns, "web", v1alpha1.DiskSpec{Name: "data", Size: gi("1Gi")})},
			problem: &problem{Reason: v1alpha1.ReasonCloneSourceNotFound, Field: "spec.disks[0].cloneFrom.wukong",
				Message: "no Wukong web with a disk root in this namespace: a disk clones only a disk of a Wukong of its own namespace"}},
		{name: "smaller than the source", disks: rootOf("1Gi", v1alpha1.DiskCloneSource{Wukong: "web"}),
			objs:    []client.Object{source(ns, "web", v1alpha1.DiskSpec{Name: "root", Size: gi("2Gi")}), claim(ns, "web-root")},
			problem: &problem{Reason: v1alpha1.ReasonDiskTooSmall, Field: "spec.disks[0].size"}},
		{name: "itself", disks: rootOf("1Gi", v1alpha1.DiskCloneSource{Wukong: "me"}),
			problem: &problem{Reason: v1alpha1.ReasonInvalidSpec, Field: "spec.disks[0].cloneFrom.wukong"}},
		{name: "the source disk is not made yet", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Wukong: "web"}),
			objs: []client.Object{source(ns, "web", v1alpha1.DiskSpec{Name: "root", Size: gi("2Gi")})},
			wait: "waits for disk root of Wukong web to be made"},
		{name: "a ready snapshot: its VolumeSnapshot", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Snapshot: "nightly"}),
			objs: []client.Object{snapshot("nightly", true, v1alpha1.SnapshotDisk{Name: "root", VolumeSnapshotName: "vs-root"})},
			want: &storage.CloneSource{SnapshotName: "vs-root"}},
		{name: "a snapshot not ready yet waits", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Snapshot: "nightly"}),
			objs: []client.Object{snapshot("nightly", false)},
			wait: "waits for WukongSnapshot nightly to be ready to use"},
		{name: "no such snapshot", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Snapshot: "nightly"}),
			problem: &problem{Reason: v1alpha1.ReasonCloneSourceNotFound, Field: "spec.disks[0].cloneFrom.snapshot",
				Message: "no WukongSnapshot nightly with a disk root in this namespace: a disk clones only a snapshot of its own namespace"}},
		{name: "a ready snapshot without the disk", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Snapshot: "nightly", Disk: "data"}),
			objs: []client.Object{snapshot("nightly", true, v1alpha1.SnapshotDisk{Name: "root", VolumeSnapshotName: "vs-root"})},
			problem: &problem{Reason: v1alpha1.ReasonCloneSourceNotFound, Field: "spec.disks[0].cloneFrom.snapshot",
				Message: "no WukongSnapshot nightly with a disk data in this namespace: a disk clones only a snapshot of its own namespace"}},
		{name: "smaller than the snapshot's disk", disks: rootOf("1Gi", v1alpha1.DiskCloneSource{Snapshot: "nightly"}),
			objs:    []client.Object{snapshot("nightly", true, v1alpha1.SnapshotDisk{Name: "root", VolumeSnapshotName: "vs-root"})},
			problem: &problem{Reason: v1alpha1.ReasonDiskTooSmall, Field: "spec.disks[0].size"}},
		{name: "the snapshot's spec size but below its restoreSize (CDI's file system overhead)", disks: rootOf("2Gi", v1alpha1.DiskCloneSource{Snapshot: "nightly"}),
			objs: []client.Object{snapshot("nightly", true, v1alpha1.SnapshotDisk{Name: "root", VolumeSnapshotName: "vs-root", RestoreSize: ptr.To(resource.MustParse("2272649757"))})},
			problem: &problem{Reason: v1alpha1.ReasonDiskTooSmall, Field: "spec.disks[0].size",
				Message: "2Gi is smaller than its clone source, disk root of WukongSnapshot nightly (2272649757): CDI clones only into a disk at least as big as its source; grow the size"}},
		{name: "at least the restoreSize", disks: rootOf("2272649757", v1alpha1.DiskCloneSource{Snapshot: "nightly"}),
			objs: []client.Object{snapshot("nightly", true, v1alpha1.SnapshotDisk{Name: "root", VolumeSnapshotName: "vs-root", RestoreSize: ptr.To(resource.MustParse("2272649757"))})},
			want: &storage.CloneSource{SnapshotName: "vs-root"}},
		{name: "written already: the DataVolume's source, the source Wukong gone", disks: rootOf("1Gi", v1alpha1.DiskCloneSource{Wukong: "web"}),
			objs: []client.Object{&cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "me-root"},
				Spec: cdiv1.DataVolumeSpec{Source: &cdiv1.DataVolumeSource{PVC: &cdiv1.DataVolumeSourcePVC{Namespace: ns, Name: "web-root"}}}}},
			want: &storage.CloneSource{ClaimName: "web-root"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &WukongReconciler{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(tc.objs...).Build()}
			s := &scope{w: &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "me"}, Spec: v1alpha1.WukongSpec{Disks: tc.disks}}}
			got, waits, err := r.cloneSources(t.Context(), s)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got["root"], "source")
			if tc.wait != "" {
				assert.Contains(t, waits["root"], tc.wait)
				assert.Positive(t, s.requeueAfter, "a wait looks again")
			} else {
				assert.Empty(t, waits["root"])
			}
			if tc.problem == nil {
				assert.Empty(t, s.problems)
				return
			}
			require.Len(t, s.problems, 1)
			p := s.problems[0]
			assert.Equal(t, tc.problem.Reason, p.Reason)
			assert.Equal(t, tc.problem.Field, p.Field)
			assert.Equal(t, v1alpha1.VolumesBoundCondition, p.Condition)
			if tc.problem.Message != "" {
				assert.Equal(t, tc.problem.Message, p.Message)
			}
		})
	}
}

// TestCloneSourcesInUse: a clone of a Wukong whose copy has not started
// says to stop the source while its VMI runs, and nothing once it stopped
// or the copy started.
func TestCloneSourcesInUse(t *testing.T) {
	scheme := testScheme(t, corev1.AddToScheme, v1alpha1.AddToScheme, kubevirtv1.AddToScheme)
	running := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Status: kubevirtv1.VirtualMachineInstanceStatus{Phase: kubevirtv1.Running}}
	stopped := running.DeepCopy()
	stopped.Status.Phase = kubevirtv1.Succeeded
	tests := []struct {
		name    string
		vmi     *kubevirtv1.VirtualMachineInstance
		waiting bool
		want    bool
	}{
		{name: "running source, copy not started", vmi: running, waiting: true, want: true},
		{name: "stopped source", vmi: stopped, waiting: true},
		{name: "no instance", waiting: true},
		{name: "copy started", vmi: running},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(scheme)
			if tc.vmi != nil {
				b = b.WithObjects(tc.vmi)
			}
			r := &WukongReconciler{Client: b.Build()}
			s := &scope{
				w: &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "copy"}, Spec: v1alpha1.WukongSpec{Disks: []v1alpha1.DiskSpec{
					{Name: "root", Size: resource.MustParse("1Gi"), CloneFrom: &v1alpha1.DiskCloneSource{Wukong: "web"}},
				}}},
				vols:    []storage.Observation{{Name: "root", Phase: storage.PhaseImporting, CloneWaiting: tc.waiting}},
				netDone: true, volsDone: true,
			}
			require.NoError(t, r.cloneSourcesInUse(t.Context(), s))
			if !tc.want {
				assert.Empty(t, s.cloneWaits)
				assert.Empty(t, s.vols[0].Message)
				return
			}
			assert.Contains(t, s.vols[0].Message, "stop web or clone from a snapshot of it")
			assert.Equal(t, s.vols[0].Message, s.cloneWaits["root"])
			assert.Equal(t, s.vols[0].Message, r.machineBlocked(s), "Ready says why the VM waits")
		})
	}
}

package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestDiskSummary: status.disks and status.importProgress (the Disks and
// Import columns of `kubectl get wk`) from what the storage step observed.
func TestDiskSummary(t *testing.T) {
	importing := func(name, progress string) storage.Observation {
		return storage.Observation{Name: name, Phase: storage.PhaseImporting, Bound: true, Progress: progress}
	}
	boundDisk := func(name string) storage.Observation {
		return storage.Observation{Name: name, Phase: storage.PhaseBound, Bound: true}
	}
	cases := []struct {
		name         string
		vols         []storage.Observation
		volsDone     bool
		prev         v1alpha1.WukongStatus
		wantDisks    string
		wantProgress string
	}{{
		name: "no disks: both empty", volsDone: true,
	}, {
		name: "one disk bound", volsDone: true,
		vols:      []storage.Observation{boundDisk("root")},
		wantDisks: "1/1",
	}, {
		name: "one importing, one bound", volsDone: true,
		vols:      []storage.Observation{importing("root", "45.00%"), boundDisk("data")},
		wantDisks: "1/2", wantProgress: "45.00%",
	}, {
		name: "the least-advanced import wins", volsDone: true,
		vols:      []storage.Observation{importing("a", "80.50%"), importing("b", "9.25%"), importing("c", "100.00%")},
		wantDisks: "0/3", wantProgress: "9.25%",
	}, {
		name: "an import without a reported progress is the least advanced", volsDone: true,
		vols:      []storage.Observation{importing("a", "10.00%"), importing("b", "")},
		wantDisks: "0/2", wantProgress: "N/A",
	}, {
		name: "unparsable progress counts as unknown", volsDone: true,
		vols:      []storage.Observation{importing("a", "soon")},
		wantDisks: "0/1", wantProgress: "N/A",
	}, {
		name: "pending, WaitForFirstConsumer and failed disks are not ready and not importing", volsDone: true,
		vols: []storage.Observation{
			{Name: "a", Phase: storage.PhasePending},
			{Name: "b", Phase: storage.PhaseWaitForFirstConsumer},
			{Name: "c", Phase: storage.PhaseFailed, Progress: "30.00%"},
			boundDisk("d"),
		},
		wantDisks: "1/4",
	}, {
		name: "volumes not observed this pass: computed from the previous status",
		prev: v1alpha1.WukongStatus{Volumes: []v1alpha1.VolumeStatus{
			{Name: "root", Phase: string(storage.PhaseImporting), Progress: "70.00%"},
			{Name: "data", Phase: string(storage.PhaseBound), Bound: true},
		}, Disks: "0/2", ImportProgress: "10.00%"},
		wantDisks: "1/2", wantProgress: "70.00%",
	}, {
		name: "import finished: progress cleared", volsDone: true,
		vols:      []storage.Observation{boundDisk("root")},
		prev:      v1alpha1.WukongStatus{Disks: "0/1", ImportProgress: "90.00%"},
		wantDisks: "1/1",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := testWukong()
			w.Status = tc.prev
			computeStatus(w, &scope{w: w, vols: tc.vols, volsDone: tc.volsDone})
			assert.Equal(t, tc.wantDisks, w.Status.Disks, "status.disks")
			assert.Equal(t, tc.wantProgress, w.Status.ImportProgress, "status.importProgress")
		})
	}
}

// TestVolumeClaimStatus: status.volumes[i] says whose claim pvcName is:
// Existing (claimName), Retained (deletionPolicy Retain) or Owned.
func TestVolumeClaimStatus(t *testing.T) {
	w := testWukong()
	w.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root"},
		{Name: "data", DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain},
		{Name: "kept", ClaimName: "old-data", DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain},
		{Name: "scratch", DeletionPolicy: v1alpha1.DiskDeletionPolicyDelete},
	}
	vols := []storage.Observation{
		{Name: "root", ClaimName: "vm1-root"},
		{Name: "data", ClaimName: "vm1-data"},
		{Name: "kept", ClaimName: "old-data", Existing: true},
		{Name: "scratch", ClaimName: "vm1-scratch"},
	}
	got := map[string][2]string{}
	for _, v := range volumeStatuses(w, vols) {
		got[v.Name] = [2]string{v.PVCName, string(v.Claim)}
	}
	assert.Equal(t, map[string][2]string{
		"root":    {"vm1-root", "Owned"},
		"data":    {"vm1-data", "Retained"},
		"kept":    {"old-data", "Existing"},
		"scratch": {"vm1-scratch", "Owned"},
	}, got)
}

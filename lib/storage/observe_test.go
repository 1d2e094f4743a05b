package storage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

func dvWith(phase cdiv1.DataVolumePhase, progress string, conds ...cdiv1.DataVolumeCondition) *cdiv1.DataVolume {
	return &cdiv1.DataVolume{Status: cdiv1.DataVolumeStatus{Phase: phase, Progress: cdiv1.DataVolumeProgress(progress), Conditions: conds}}
}

func pvcWith(phase corev1.PersistentVolumeClaimPhase, capacity string, conds ...corev1.PersistentVolumeClaimConditionType) *corev1.PersistentVolumeClaim {
	p := &corev1.PersistentVolumeClaim{Status: corev1.PersistentVolumeClaimStatus{Phase: phase}}
	if capacity != "" {
		p.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(capacity)}
	}
	for _, c := range conds {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PersistentVolumeClaimCondition{Type: c, Status: corev1.ConditionTrue})
	}
	return p
}

func running(status corev1.ConditionStatus, reason, msg string) cdiv1.DataVolumeCondition {
	return cdiv1.DataVolumeCondition{Type: cdiv1.DataVolumeRunning, Status: status, Reason: reason, Message: msg}
}

func TestObserve(t *testing.T) {
	cases := []struct {
		name     string
		dv       *cdiv1.DataVolume
		pvc      *corev1.PersistentVolumeClaim
		wffc     bool
		want     Observation
		ready    bool
		canStart bool
	}{
		{name: "blank, no PVC yet", want: Observation{Phase: PhasePending}},
		{name: "blank pending", pvc: pvcWith(corev1.ClaimPending, ""), want: Observation{Phase: PhasePending}},
		{name: "blank pending on WFFC class", pvc: pvcWith(corev1.ClaimPending, ""), wffc: true,
			want: Observation{Phase: PhaseWaitForFirstConsumer, WaitForFirstConsumerClass: true}, canStart: true},
		{name: "blank bound with resize conditions", pvc: pvcWith(corev1.ClaimBound, "10Gi", corev1.PersistentVolumeClaimResizing, corev1.PersistentVolumeClaimFileSystemResizePending),
			want: Observation{Phase: PhaseBound, Bound: true, Capacity: resource.MustParse("10Gi"), Resizing: true, FileSystemResizePending: true}, ready: true, canStart: true},
		{name: "blank lost", pvc: pvcWith(corev1.ClaimLost, ""),
			want: Observation{Phase: PhaseFailed, Reason: ReasonClaimLost, Message: "the PersistentVolume of the claim is lost"}},
		{name: "import in progress", dv: dvWith(cdiv1.ImportInProgress, "45.50%", running(corev1.ConditionTrue, "Pod is running", "")), pvc: pvcWith(corev1.ClaimBound, "11Gi"),
			want: Observation{Phase: PhaseImporting, Progress: "45.50%", Bound: true, Capacity: resource.MustParse("11Gi")}},
		{name: "import in progress on WFFC class may start", dv: dvWith(cdiv1.ImportInProgress, "1.00%"), wffc: true,
			want: Observation{Phase: PhaseImporting, Progress: "1.00%", WaitForFirstConsumerClass: true}, canStart: true},
		{name: "import scheduled, N/A progress", dv: dvWith(cdiv1.ImportScheduled, "N/A"), want: Observation{Phase: PhaseImporting}},
		{name: "importer error", dv: dvWith(cdiv1.ImportInProgress, "0.00%", running(corev1.ConditionFalse, "Error", "Unable to connect to http data source: expected status code 200, got 404")),
			want: Observation{Phase: PhaseFailed, Progress: "0.00%", Reason: "Error", Message: "Unable to connect to http data source: expected status code 200, got 404"}},
		{name: "failed phase without conditions", dv: dvWith(cdiv1.Failed, ""),
			want: Observation{Phase: PhaseFailed, Reason: ReasonImportFailed, Message: "the DataVolume failed"}},
		{name: "succeeded", dv: dvWith(cdiv1.Succeeded, "100.0%", running(corev1.ConditionFalse, "Completed", "Import Complete")), pvc: pvcWith(corev1.ClaimBound, "11Gi"),
			want: Observation{Phase: PhaseBound, Progress: "100.0%", Bound: true, Capacity: resource.MustParse("11Gi")}, ready: true, canStart: true},
		{name: "WFFC phase", dv: dvWith(cdiv1.WaitForFirstConsumer, "N/A"), wffc: true,
			want: Observation{Phase: PhaseWaitForFirstConsumer, WaitForFirstConsumerClass: true}, canStart: true},
		{name: "pending population on WFFC", dv: dvWith(cdiv1.PendingPopulation, ""), wffc: true,
			want: Observation{Phase: PhaseWaitForFirstConsumer, WaitForFirstConsumerClass: true}, canStart: true},
		{name: "pending population on immediate class", dv: dvWith(cdiv1.PendingPopulation, ""), want: Observation{Phase: PhasePending}},
		{name: "pending with bound reason", dv: dvWith(cdiv1.Pending, "", cdiv1.DataVolumeCondition{Type: cdiv1.DataVolumeBound, Status: corev1.ConditionFalse, Reason: "Pending", Message: "PVC vm1-root Pending"}),
			want: Observation{Phase: PhasePending, Reason: "Pending", Message: "PVC vm1-root Pending"}},
		{name: "PVCBound", dv: dvWith(cdiv1.PVCBound, ""), want: Observation{Phase: PhasePending}},
		{name: "paused multi-stage", dv: dvWith(cdiv1.Paused, ""), want: Observation{Phase: PhaseImporting}},
		{name: "unknown", dv: dvWith(cdiv1.Unknown, ""), want: Observation{Phase: PhasePending}},
		// Clones: CDI records the strategy it chose in AnnCloneType; the
		// copy waits (CloneWaiting) until CDI starts it.
		{name: "clone scheduled, strategy not chosen", dv: cloneDV(cdiv1.CloneScheduled, "", ""),
			want: Observation{Phase: PhaseImporting, CloneWaiting: true}},
		{name: "clone pending population on immediate class", dv: cloneDV(cdiv1.PendingPopulation, "csi-clone", ""),
			want: Observation{Phase: PhasePending, CloneWaiting: true, CloneType: "csi-clone"}},
		{name: "host-assisted clone in progress", dv: cloneDV(cdiv1.CloneInProgress, "copy", "30.00%"),
			want: Observation{Phase: PhaseImporting, Progress: "30.00%", CloneType: "copy"}},
		{name: "clone type from the claim before the DataVolume has it", dv: cloneDV(cdiv1.CSICloneInProgress, "", ""),
			pvc: func() *corev1.PersistentVolumeClaim {
				p := pvcWith(corev1.ClaimPending, "")
				p.Annotations = map[string]string{AnnCloneType: "snapshot"}
				return p
			}(),
			want: Observation{Phase: PhaseImporting, CloneType: "snapshot"}},
		{name: "clone succeeded", dv: cloneDV(cdiv1.Succeeded, "snapshot", "100.0%"), pvc: pvcWith(corev1.ClaimBound, "3Gi"),
			want: Observation{Phase: PhaseBound, Progress: "100.0%", CloneType: "snapshot", Bound: true, Capacity: resource.MustParse("3Gi")}, ready: true, canStart: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got Observation
			Observe(&got, tc.dv, tc.pvc, tc.wffc)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.ready, got.Ready(), "Ready")
			assert.Equal(t, tc.canStart, got.ConsumerCanStart(), "ConsumerCanStart")
		})
	}
}

func TestDefaultClass(t *testing.T) {
	at := func(name string, sec int64, def bool, beta bool) storagev1.StorageClass {
		sc := storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(sec, 0))}}
		if def {
			sc.Annotations = map[string]string{AnnotationDefaultClass: "true"}
		}
		if beta {
			sc.Annotations = map[string]string{AnnotationBetaDefaultClass: "true"}
		}
		return sc
	}
	cases := []struct {
		name    string
		classes []storagev1.StorageClass
		want    string
	}{
		{name: "none", classes: []storagev1.StorageClass{at("a", 1, false, false)}},
		{name: "one", classes: []storagev1.StorageClass{at("a", 1, false, false), at("b", 1, true, false)}, want: "b"},
		{name: "newest wins", classes: []storagev1.StorageClass{at("old", 1, true, false), at("new", 2, true, false)}, want: "new"},
		{name: "tie by name", classes: []storagev1.StorageClass{at("zeta", 5, true, false), at("alpha", 5, true, false)}, want: "alpha"},
		{name: "beta annotation", classes: []storagev1.StorageClass{at("legacy", 1, false, true)}, want: "legacy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DefaultClass(tc.classes)
			if tc.want == "" {
				assert.Nil(t, got)
				return
			}
			if assert.NotNil(t, got) {
				assert.Equal(t, tc.want, got.Name)
			}
		})
	}
}

// cloneDV is a DataVolume cloning a claim, in phase p, with CDI's clone
// type annotation (none when "") and progress.
func cloneDV(p cdiv1.DataVolumePhase, cloneType, progress string) *cdiv1.DataVolume {
	dv := dvWith(p, progress)
	dv.Spec.Source = &cdiv1.DataVolumeSource{PVC: &cdiv1.DataVolumeSourcePVC{Namespace: "ns1", Name: "src-root"}}
	if cloneType != "" {
		dv.Annotations = map[string]string{AnnCloneType: cloneType}
	}
	return dv
}

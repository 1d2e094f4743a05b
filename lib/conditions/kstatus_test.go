package conditions_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/novasphere/wukong/lib/conditions"
)

func TestProgressHelpers(t *testing.T) {
	setClock(t, t0)
	tests := []struct {
		name      string
		steps     func(w *widget)
		wantTypes []string
	}{
		{
			name:      "MarkReconciling sets Reconciling",
			steps:     func(w *widget) { conditions.MarkReconciling(w, "Progressing", "step %d", 1) },
			wantTypes: []string{"Ready", "Reconciling"},
		},
		{
			name: "MarkReconciling deletes Stalled",
			steps: func(w *widget) {
				conditions.MarkStalled(w, "Invalid", "")
				conditions.MarkReconciling(w, "Progressing", "")
			},
			wantTypes: []string{"Ready", "Reconciling"},
		},
		{
			name: "MarkStalled deletes Reconciling",
			steps: func(w *widget) {
				conditions.MarkReconciling(w, "Progressing", "")
				conditions.MarkStalled(w, "Invalid", "")
			},
			wantTypes: []string{"Ready", "Stalled"},
		},
		{
			name: "ClearProgress removes both",
			steps: func(w *widget) {
				conditions.MarkReconciling(w, "Progressing", "")
				conditions.ClearProgress(w)
			},
			wantTypes: []string{"Ready"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWidget(1)
			conditions.MarkFalse(w, "Ready", "NotYet", "")
			tt.steps(w)
			assert.Equal(t, tt.wantTypes, types(w))
			for _, typ := range []string{conditions.ReconcilingCondition, conditions.StalledCondition} {
				if conditions.Has(w, typ) {
					assert.True(t, conditions.IsTrue(w, typ), "%s present only when True", typ)
				}
			}
			assert.NoError(t, conditions.Check(w))
		})
	}
	w := newWidget(1)
	conditions.MarkReconciling(w, "Progressing", "step %d of %d", 1, 3)
	assert.Equal(t, "Progressing", conditions.GetReason(w, conditions.ReconcilingCondition))
	assert.Equal(t, "step 1 of 3", conditions.GetMessage(w, conditions.ReconcilingCondition))
}

var allViolations = []error{
	conditions.ErrReconcilingAndStalled, conditions.ErrAbnormalNotTrue, conditions.ErrGenerationAhead,
	conditions.ErrReadyMissing, conditions.ErrDuplicateType, conditions.ErrEmptyReason,
	conditions.ErrEmptyType, conditions.ErrInvalidStatus,
}

func assertViolations(t *testing.T, err error, want []error) {
	t.Helper()
	if len(want) == 0 {
		assert.NoError(t, err)
		return
	}
	require.Error(t, err)
	for _, v := range allViolations {
		wanted := false
		for _, w := range want {
			wanted = wanted || errors.Is(v, w)
		}
		assert.Equal(t, wanted, errors.Is(err, v), "errors.Is(%q, %q)", err, v)
	}
}

func TestCheck(t *testing.T) {
	ready := cond("Ready", cTrue, "Ok", "", 2, t0)
	tests := []struct {
		name       string
		generation int64
		observed   int64
		conds      []metav1.Condition
		want       []error
	}{
		{name: "compliant", generation: 2, observed: 2, conds: []metav1.Condition{ready}},
		{name: "observedGeneration behind is fine", generation: 3, observed: 2, conds: []metav1.Condition{ready}},
		{name: "Ready missing", generation: 2, want: []error{conditions.ErrReadyMissing}},
		{
			name: "Reconciling and Stalled both True", generation: 2,
			conds: []metav1.Condition{ready, cond("Reconciling", cTrue, "R", "", 2, t0), cond("Stalled", cTrue, "S", "", 2, t0)},
			want:  []error{conditions.ErrReconcilingAndStalled},
		},
		{
			name: "Reconciling False should be deleted", generation: 2,
			conds: []metav1.Condition{ready, cond("Reconciling", cFalse, "Done", "", 2, t0)},
			want:  []error{conditions.ErrAbnormalNotTrue},
		},
		{
			name: "Stalled Unknown should be deleted", generation: 2,
			conds: []metav1.Condition{ready, cond("Stalled", cUnknown, "Hm", "", 2, t0)},
			want:  []error{conditions.ErrAbnormalNotTrue},
		},
		{
			name: "condition observedGeneration ahead", generation: 1,
			conds: []metav1.Condition{ready},
			want:  []error{conditions.ErrGenerationAhead},
		},
		{
			name: "status observedGeneration ahead", generation: 2, observed: 3,
			conds: []metav1.Condition{ready},
			want:  []error{conditions.ErrGenerationAhead},
		},
		{
			name: "duplicate type", generation: 2,
			conds: []metav1.Condition{ready, cond("A", cTrue, "R", "", 2, t0), cond("A", cFalse, "R", "", 2, t0)},
			want:  []error{conditions.ErrDuplicateType},
		},
		{
			name: "empty reason", generation: 2,
			conds: []metav1.Condition{ready, cond("A", cTrue, "", "", 2, t0)},
			want:  []error{conditions.ErrEmptyReason},
		},
		{
			name: "empty type and invalid status", generation: 2,
			conds: []metav1.Condition{ready, cond("", "Maybe", "R", "", 2, t0)},
			want:  []error{conditions.ErrEmptyType, conditions.ErrInvalidStatus},
		},
		{
			name: "several at once", generation: 1,
			conds: []metav1.Condition{cond("Stalled", cFalse, "", "", 2, t0)},
			want: []error{conditions.ErrReadyMissing, conditions.ErrAbnormalNotTrue, conditions.ErrEmptyReason,
				conditions.ErrGenerationAhead},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWidget(tt.generation, tt.conds...)
			w.Status.ObservedGeneration = tt.observed
			assertViolations(t, conditions.Check(w), tt.want)
		})
	}
}

func toUnstructured(t *testing.T, w *widget) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(w)
	require.NoError(t, err)
	return &unstructured.Unstructured{Object: m}
}

// expectedKstatus is what the kstatus rules (see package doc) say for an
// object that passes Check.
func expectedKstatus(w *widget) status.Status {
	switch {
	case w.Status.ObservedGeneration != 0 && w.Status.ObservedGeneration != w.Generation:
		return status.InProgressStatus
	case conditions.IsTrue(w, conditions.ReconcilingCondition):
		return status.InProgressStatus
	case conditions.IsTrue(w, conditions.StalledCondition):
		return status.FailedStatus
	case conditions.IsTrue(w, conditions.ReadyCondition):
		return status.CurrentStatus
	default:
		return status.InProgressStatus
	}
}

// TestKstatus builds Widgets through the helpers and compares the verdict of
// the real kstatus library with the expected one and with Check.
func TestKstatus(t *testing.T) {
	setClock(t, t0)
	tests := []struct {
		name      string
		build     func(w *widget)
		want      status.Status
		wantCheck []error
	}{
		{
			name: "reconciling",
			build: func(w *widget) {
				conditions.MarkUnknown(w, "VolumesBound", "Importing", "import at 40%")
				conditions.SetSummary(w, conditions.ReadyCondition, "VolumesBound")
				conditions.MarkReconciling(w, "Importing", "import at 40%")
			},
			want: status.InProgressStatus,
		},
		{
			name: "stalled",
			build: func(w *widget) {
				conditions.MarkReconciling(w, "Progressing", "")
				conditions.MarkFalse(w, "NetworksConfigured", "NADMissing", "network attachment %q not found", "lan")
				conditions.SetSummary(w, conditions.ReadyCondition, "NetworksConfigured")
				conditions.MarkStalled(w, "NADMissing", "network attachment %q not found", "lan")
			},
			want: status.FailedStatus,
		},
		{
			name: "ready",
			build: func(w *widget) {
				conditions.MarkStalled(w, "Old", "")
				conditions.MarkTrue(w, "VolumesBound", "Bound", "")
				conditions.SetSummary(w, conditions.ReadyCondition, "VolumesBound")
				conditions.ClearProgress(w)
			},
			want: status.CurrentStatus,
		},
		{
			name: "not ready, no progress conditions",
			build: func(w *widget) {
				conditions.MarkFalse(w, "VolumesBound", "Pending", "")
				conditions.SetSummary(w, conditions.ReadyCondition, "VolumesBound")
				conditions.ClearProgress(w)
			},
			want: status.InProgressStatus,
		},
		{
			name: "ready unknown: summary of a missing condition",
			build: func(w *widget) {
				conditions.SetSummary(w, conditions.ReadyCondition, "VolumesBound")
			},
			want: status.InProgressStatus,
		},
		{
			name: "generation ahead of observedGeneration",
			build: func(w *widget) {
				conditions.MarkTrue(w, conditions.ReadyCondition, "Ok", "")
				w.Generation++ // spec changed after the last status write
			},
			want: status.InProgressStatus,
		},
		{
			name: "stalled wins over ready true",
			build: func(w *widget) {
				conditions.MarkTrue(w, conditions.ReadyCondition, "Ok", "")
				conditions.MarkStalled(w, "Invalid", "")
			},
			want: status.FailedStatus,
		},
		// Objects the helpers never produce: Check flags them, kstatus
		// gives a verdict that hides the problem.
		{
			name: "both true: kstatus sees only Reconciling (sorted first), Check flags it",
			build: func(w *widget) {
				conditions.MarkTrue(w, conditions.ReadyCondition, "Ok", "")
				conditions.MarkTrue(w, conditions.StalledCondition, "Invalid", "")
				conditions.MarkTrue(w, conditions.ReconcilingCondition, "Progressing", "")
			},
			want:      status.InProgressStatus,
			wantCheck: []error{conditions.ErrReconcilingAndStalled},
		},
		{
			name: "Reconciling False is ignored by kstatus, Check flags it",
			build: func(w *widget) {
				conditions.MarkTrue(w, conditions.ReadyCondition, "Ok", "")
				conditions.MarkFalse(w, conditions.ReconcilingCondition, "Done", "")
			},
			want:      status.CurrentStatus,
			wantCheck: []error{conditions.ErrAbnormalNotTrue},
		},
		{
			name:      "no conditions: kstatus says Current, Check requires Ready",
			build:     func(w *widget) {},
			want:      status.CurrentStatus,
			wantCheck: []error{conditions.ErrReadyMissing},
		},
		{
			name: "status observedGeneration ahead: kstatus InProgress, Check flags it",
			build: func(w *widget) {
				conditions.MarkTrue(w, conditions.ReadyCondition, "Ok", "")
				w.Status.ObservedGeneration = w.Generation + 1
			},
			want:      status.InProgressStatus,
			wantCheck: []error{conditions.ErrGenerationAhead},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWidget(2)
			w.Status.ObservedGeneration = 2
			tt.build(w)

			res, err := status.Compute(toUnstructured(t, w))
			require.NoError(t, err)
			assert.Equal(t, tt.want, res.Status, "kstatus: %s", res.Message)

			checkErr := conditions.Check(w)
			assertViolations(t, checkErr, tt.wantCheck)
			if checkErr == nil {
				assert.Equal(t, expectedKstatus(w), res.Status, "Check passed, so kstatus must follow the documented rules")
			}
		})
	}
}

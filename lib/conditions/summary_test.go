package conditions_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/conditions"
)

func TestSetSummary(t *testing.T) {
	setClock(t, t1)
	type want struct {
		status          metav1.ConditionStatus
		reason, message string
	}
	tests := []struct {
		name     string
		existing []metav1.Condition
		from     []string
		want     want
	}{
		{
			name:     "all True",
			existing: []metav1.Condition{cond("A", cTrue, "Ra", "a ok", 1, t0), cond("B", cTrue, "Rb", "b ok", 1, t0)},
			from:     []string{"A", "B"},
			want:     want{cTrue, conditions.SucceededReason, conditions.SucceededMessage},
		},
		{
			name: "no sources is True",
			want: want{cTrue, conditions.SucceededReason, conditions.SucceededMessage},
		},
		{
			name:     "first not-True False gives its reason and message",
			existing: []metav1.Condition{cond("A", cTrue, "Ra", "a ok", 1, t0), cond("B", cFalse, "Rb", "b broken", 1, t0)},
			from:     []string{"A", "B"},
			want:     want{cFalse, "Rb", "b broken"},
		},
		{
			name:     "Unknown propagates as Unknown",
			existing: []metav1.Condition{cond("A", cUnknown, "Ra", "a checking", 1, t0), cond("B", cFalse, "Rb", "b broken", 1, t0)},
			from:     []string{"A", "B"},
			want:     want{cUnknown, "Ra", "a checking"},
		},
		{
			name:     "list order of from wins over storage order",
			existing: []metav1.Condition{cond("A", cUnknown, "Ra", "a checking", 1, t0), cond("B", cFalse, "Rb", "b broken", 1, t0)},
			from:     []string{"B", "A"},
			want:     want{cFalse, "Rb", "b broken"},
		},
		{
			name:     "missing counts as Unknown with ConditionMissing",
			existing: []metav1.Condition{cond("A", cTrue, "Ra", "a ok", 1, t0), cond("C", cFalse, "Rc", "c broken", 1, t0)},
			from:     []string{"A", "B", "C"},
			want:     want{cUnknown, conditions.ConditionMissingReason, "B has not been reported"},
		},
		{
			name:     "False before a missing one wins",
			existing: []metav1.Condition{cond("C", cFalse, "Rc", "c broken", 1, t0)},
			from:     []string{"C", "B"},
			want:     want{cFalse, "Rc", "c broken"},
		},
		{
			name:     "target in from is skipped",
			existing: []metav1.Condition{cond("Ready", cFalse, "Old", "old", 1, t0), cond("A", cTrue, "Ra", "a ok", 1, t0)},
			from:     []string{"Ready", "A"},
			want:     want{cTrue, conditions.SucceededReason, conditions.SucceededMessage},
		},
		{
			name:     "empty reason and message get defaults",
			existing: []metav1.Condition{cond("A", cFalse, "", "", 1, t0)},
			from:     []string{"A"},
			want:     want{cFalse, conditions.UnspecifiedReason, "A is False"},
		},
		{
			name:     "invalid status counts as Unknown",
			existing: []metav1.Condition{cond("A", "Maybe", "Ra", "a?", 1, t0)},
			from:     []string{"A"},
			want:     want{cUnknown, "Ra", "a?"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWidget(3, tt.existing...)
			conditions.SetSummary(w, conditions.ReadyCondition, tt.from...)
			got := conditions.Get(w, conditions.ReadyCondition)
			require.NotNil(t, got)
			assert.Equal(t, tt.want, want{got.Status, got.Reason, got.Message})
			assert.Equal(t, int64(3), got.ObservedGeneration)
			assert.Equal(t, conditions.ReadyCondition, w.Status.Conditions[0].Type, "Ready sorted first")
			// Sources are left alone.
			for _, e := range tt.existing {
				if e.Type == conditions.ReadyCondition {
					continue
				}
				assert.Equal(t, &e, conditions.Get(w, e.Type))
			}
		})
	}
}

func TestSetSummaryTransitionTime(t *testing.T) {
	w := newWidget(1)
	setClock(t, t0)
	conditions.MarkFalse(w, "A", "Waiting", "")
	conditions.SetSummary(w, "Ready", "A")
	setClock(t, t1)
	conditions.MarkFalse(w, "A", "StillWaiting", "")
	conditions.SetSummary(w, "Ready", "A")
	ready := conditions.Get(w, "Ready")
	assert.Equal(t, "StillWaiting", ready.Reason)
	assert.Equal(t, t0, ready.LastTransitionTime, "reason change without flip keeps the time")
	setClock(t, t2)
	conditions.MarkTrue(w, "A", "Done", "")
	conditions.SetSummary(w, "Ready", "A")
	assert.Equal(t, t2, conditions.Get(w, "Ready").LastTransitionTime)
	assert.True(t, conditions.IsTrue(w, "Ready"))
}

func BenchmarkSetSummary(b *testing.B) {
	from := []string{"NetworksConfigured", "VolumesBound", "MachineCreated", "MachineRunning", "AgentConnected"}
	for _, tc := range []struct {
		name  string
		fails bool
	}{{"AllTrue", false}, {"OneFalse", true}} {
		b.Run(tc.name, func(b *testing.B) {
			w := newWidget(2)
			for i, t := range from {
				if tc.fails && i == 3 {
					conditions.MarkFalse(w, t, "Pending", "waiting for %s", t)
					continue
				}
				conditions.MarkTrue(w, t, "Ok", "")
			}
			conditions.MarkReconciling(w, "Progressing", "")
			b.ReportAllocs()
			for b.Loop() {
				conditions.SetSummary(w, conditions.ReadyCondition, from...)
			}
			if got := conditions.IsTrue(w, conditions.ReadyCondition); got == tc.fails {
				b.Fatalf("Ready=%v, want %v", got, !tc.fails)
			}
		})
	}
}

package conditions_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/conditions"
)

func TestSet(t *testing.T) {
	setClock(t, t2)
	tests := []struct {
		name       string
		generation int64
		existing   []metav1.Condition
		set        metav1.Condition
		want       []metav1.Condition
	}{
		{
			name:       "new condition gets now and the object's generation",
			generation: 4,
			set:        cond("Ready", cTrue, "Ok", "fine", 0, metav1.Time{}),
			want:       []metav1.Condition{cond("Ready", cTrue, "Ok", "fine", 4, t2)},
		},
		{
			name:       "caller's observedGeneration is overwritten by the generation",
			generation: 2,
			set:        cond("Ready", cTrue, "Ok", "fine", 9, metav1.Time{}),
			want:       []metav1.Condition{cond("Ready", cTrue, "Ok", "fine", 2, t2)},
		},
		{
			name:       "same status keeps transition time, updates reason, message and generation",
			generation: 3,
			existing:   []metav1.Condition{cond("Ready", cFalse, "Old", "old", 1, t0)},
			set:        cond("Ready", cFalse, "New", "new", 0, metav1.Time{}),
			want:       []metav1.Condition{cond("Ready", cFalse, "New", "new", 3, t0)},
		},
		{
			name:       "same status ignores a caller transition time",
			generation: 1,
			existing:   []metav1.Condition{cond("Ready", cFalse, "Old", "old", 1, t0)},
			set:        cond("Ready", cFalse, "Old", "old", 0, t1),
			want:       []metav1.Condition{cond("Ready", cFalse, "Old", "old", 1, t0)},
		},
		{
			name:       "status flip False to True sets now",
			generation: 1,
			existing:   []metav1.Condition{cond("Ready", cFalse, "Old", "old", 1, t0)},
			set:        cond("Ready", cTrue, "Ok", "fine", 0, metav1.Time{}),
			want:       []metav1.Condition{cond("Ready", cTrue, "Ok", "fine", 1, t2)},
		},
		{
			name:       "status flip True to Unknown sets now",
			generation: 1,
			existing:   []metav1.Condition{cond("Ready", cTrue, "Ok", "fine", 1, t0)},
			set:        cond("Ready", cUnknown, "Checking", "", 0, metav1.Time{}),
			want:       []metav1.Condition{cond("Ready", cUnknown, "Checking", "", 1, t2)},
		},
		{
			name:       "status flip keeps a caller transition time",
			generation: 1,
			existing:   []metav1.Condition{cond("Ready", cFalse, "Old", "old", 1, t0)},
			set:        cond("Ready", cTrue, "Ok", "fine", 0, t1),
			want:       []metav1.Condition{cond("Ready", cTrue, "Ok", "fine", 1, t1)},
		},
		{
			name:       "new condition keeps a caller transition time",
			generation: 1,
			set:        cond("Ready", cTrue, "Ok", "fine", 0, t1),
			want:       []metav1.Condition{cond("Ready", cTrue, "Ok", "fine", 1, t1)},
		},
		{
			name:       "list is sorted Ready first then alphabetically, others untouched",
			generation: 5,
			existing: []metav1.Condition{
				cond("b", cTrue, "R", "", 1, t0),
				cond("Stalled", cTrue, "R", "", 1, t0),
				cond("Ready", cFalse, "R", "", 1, t0),
				cond("A", cTrue, "R", "", 1, t0),
			},
			set: cond("C", cTrue, "R", "", 0, metav1.Time{}),
			want: []metav1.Condition{
				cond("Ready", cFalse, "R", "", 1, t0),
				cond("A", cTrue, "R", "", 1, t0),
				cond("C", cTrue, "R", "", 5, t2),
				cond("Stalled", cTrue, "R", "", 1, t0),
				cond("b", cTrue, "R", "", 1, t0),
			},
		},
		{
			name:       "duplicates of the type are collapsed; first one gives the transition time",
			generation: 1,
			existing: []metav1.Condition{
				cond("X", cTrue, "R", "", 1, t0),
				cond("X", cTrue, "R", "", 1, t1),
			},
			set:  cond("X", cTrue, "R2", "", 0, metav1.Time{}),
			want: []metav1.Condition{cond("X", cTrue, "R2", "", 1, t0)},
		},
		{
			name:       "empty type is ignored",
			generation: 1,
			existing:   []metav1.Condition{cond("X", cTrue, "R", "", 1, t0)},
			set:        cond("", cTrue, "R", "", 0, metav1.Time{}),
			want:       []metav1.Condition{cond("X", cTrue, "R", "", 1, t0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWidget(tt.generation, tt.existing...)
			conditions.Set(w, tt.set)
			assert.Equal(t, tt.want, w.Status.Conditions)
		})
	}
}

func TestSetOrderIndependentOfCallOrder(t *testing.T) {
	setClock(t, t0)
	a, b := newWidget(1), newWidget(1)
	for _, typ := range []string{"Z", "Ready", "M", "Reconciling"} {
		conditions.MarkTrue(a, typ, "R", "")
	}
	for _, typ := range []string{"Reconciling", "M", "Ready", "Z"} {
		conditions.MarkTrue(b, typ, "R", "")
	}
	assert.Equal(t, a.Status.Conditions, b.Status.Conditions)
	assert.Equal(t, []string{"Ready", "M", "Reconciling", "Z"}, types(a))
}

func TestSetDoesNotModifyCallerSlice(t *testing.T) {
	setClock(t, t2)
	orig := []metav1.Condition{cond("B", cTrue, "R", "", 1, t0), cond("A", cFalse, "R", "", 1, t0)}
	snapshot := append([]metav1.Condition(nil), orig...)
	w := newWidget(2, orig...)
	conditions.MarkTrue(w, "A", "R", "")
	assert.Equal(t, snapshot, orig)
	require.Len(t, w.Status.Conditions, 2)
	assert.Equal(t, "A", w.Status.Conditions[0].Type)
}

func TestSetTransitionTimeAcrossCalls(t *testing.T) {
	w := newWidget(1)
	setClock(t, t0)
	conditions.MarkFalse(w, "Ready", "Waiting", "")
	setClock(t, t1)
	conditions.MarkFalse(w, "Ready", "StillWaiting", "")
	assert.Equal(t, t0, conditions.Get(w, "Ready").LastTransitionTime, "same status keeps time")
	w.Generation = 2
	setClock(t, t2)
	conditions.MarkTrue(w, "Ready", "Done", "")
	got := conditions.Get(w, "Ready")
	assert.Equal(t, t2, got.LastTransitionTime, "flip sets now")
	assert.Equal(t, int64(2), got.ObservedGeneration)
}

func TestDefaultNowTruncatedToSeconds(t *testing.T) {
	n := conditions.Now()
	assert.Equal(t, 0, n.Nanosecond())
	assert.False(t, n.IsZero())
}

func TestMark(t *testing.T) {
	setClock(t, t0)
	tests := []struct {
		name string
		mark func(w *widget)
		want metav1.Condition
	}{
		{
			name: "MarkTrue formats the message",
			mark: func(w *widget) { conditions.MarkTrue(w, "VolumesBound", "Bound", "%d of %d bound", 2, 2) },
			want: cond("VolumesBound", cTrue, "Bound", "2 of 2 bound", 7, t0),
		},
		{
			name: "MarkFalse without args keeps a literal percent sign",
			mark: func(w *widget) { conditions.MarkFalse(w, "VolumesBound", "Importing", "import at 50%") },
			want: cond("VolumesBound", cFalse, "Importing", "import at 50%", 7, t0),
		},
		{
			name: "MarkUnknown",
			mark: func(w *widget) { conditions.MarkUnknown(w, "VolumesBound", "Checking", "checking %q", "disk0") },
			want: cond("VolumesBound", cUnknown, "Checking", `checking "disk0"`, 7, t0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWidget(7)
			tt.mark(w)
			assert.Equal(t, []metav1.Condition{tt.want}, w.Status.Conditions)
		})
	}
}

func TestGetters(t *testing.T) {
	w := newWidget(1,
		cond("Ready", cTrue, "Ok", "all good", 1, t0),
		cond("A", cFalse, "Broken", "a is broken", 1, t0),
		cond("B", cUnknown, "Checking", "b unknown", 1, t0),
	)
	tests := []struct {
		name               string
		typ                string
		has, isT, isF, isU bool
		reason, message    string
		wantGet            *metav1.Condition
	}{
		{name: "true", typ: "Ready", has: true, isT: true, reason: "Ok", message: "all good", wantGet: &w.Status.Conditions[0]},
		{name: "false", typ: "A", has: true, isF: true, reason: "Broken", message: "a is broken", wantGet: &w.Status.Conditions[1]},
		{name: "unknown", typ: "B", has: true, isU: true, reason: "Checking", message: "b unknown", wantGet: &w.Status.Conditions[2]},
		{name: "missing counts as unknown", typ: "C", isU: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.has, conditions.Has(w, tt.typ), "Has")
			assert.Equal(t, tt.isT, conditions.IsTrue(w, tt.typ), "IsTrue")
			assert.Equal(t, tt.isF, conditions.IsFalse(w, tt.typ), "IsFalse")
			assert.Equal(t, tt.isU, conditions.IsUnknown(w, tt.typ), "IsUnknown")
			assert.Equal(t, tt.reason, conditions.GetReason(w, tt.typ), "GetReason")
			assert.Equal(t, tt.message, conditions.GetMessage(w, tt.typ), "GetMessage")
			assert.Equal(t, tt.wantGet, conditions.Get(w, tt.typ), "Get")
		})
	}
}

func TestGetReturnsCopy(t *testing.T) {
	w := newWidget(1, cond("Ready", cTrue, "Ok", "", 1, t0))
	c := conditions.Get(w, "Ready")
	require.NotNil(t, c)
	c.Reason = "Changed"
	assert.Equal(t, "Ok", conditions.GetReason(w, "Ready"))
}

func TestNilObjects(t *testing.T) {
	assert.Nil(t, conditions.Get(nil, "Ready"))
	assert.False(t, conditions.Has(nil, "Ready"))
	assert.True(t, conditions.IsUnknown(nil, "Ready"))
	assert.NotPanics(t, func() {
		conditions.Set(nil, metav1.Condition{Type: "Ready"})
		conditions.Delete(nil, "Ready")
		conditions.SetSummary(nil, "Ready", "A")
	})
	assert.NoError(t, conditions.Check(nil))
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name     string
		existing []metav1.Condition
		del      string
		want     []metav1.Condition
	}{
		{
			name:     "removes the type, keeps order",
			existing: []metav1.Condition{cond("Ready", cTrue, "R", "", 1, t0), cond("A", cTrue, "R", "", 1, t0), cond("B", cTrue, "R", "", 1, t0)},
			del:      "A",
			want:     []metav1.Condition{cond("Ready", cTrue, "R", "", 1, t0), cond("B", cTrue, "R", "", 1, t0)},
		},
		{
			name:     "removes duplicates too",
			existing: []metav1.Condition{cond("A", cTrue, "R", "", 1, t0), cond("A", cFalse, "R", "", 1, t0)},
			del:      "A",
			want:     []metav1.Condition{},
		},
		{
			name:     "missing type leaves the list as it was",
			existing: []metav1.Condition{cond("A", cTrue, "R", "", 1, t0)},
			del:      "B",
			want:     []metav1.Condition{cond("A", cTrue, "R", "", 1, t0)},
		},
		{
			name: "nil list stays nil",
			del:  "B",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWidget(1, tt.existing...)
			conditions.Delete(w, tt.del)
			assert.Equal(t, tt.want, w.Status.Conditions)
		})
	}
}

package conditions_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/conditions"
)

// widget is a made-up API object (example.dev/v1 Widget) implementing
// conditions.Setter and conditions.ObservedGenerationGetter.
type widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Status            widgetStatus `json:"status,omitempty"`
}

type widgetStatus struct {
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

func (w *widget) GetConditions() []metav1.Condition  { return w.Status.Conditions }
func (w *widget) SetConditions(c []metav1.Condition) { w.Status.Conditions = c }
func (w *widget) GetObservedGeneration() int64       { return w.Status.ObservedGeneration }

var (
	_ conditions.Setter                   = &widget{}
	_ conditions.ObservedGenerationGetter = &widget{}
)

func newWidget(generation int64, conds ...metav1.Condition) *widget {
	return &widget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "example.dev/v1", Kind: "Widget"},
		ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: "ns", Generation: generation},
		Status:     widgetStatus{Conditions: conds},
	}
}

// types lists the types of w's conditions in their stored order.
func types(w *widget) []string {
	var out []string
	for _, c := range w.Status.Conditions {
		out = append(out, c.Type)
	}
	return out
}

var (
	t0 = metav1.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = metav1.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
	t2 = metav1.Date(2030, 1, 1, 2, 0, 0, 0, time.UTC)
)

// setClock makes conditions.Now return ts for the duration of the test.
// Tests that call it must not run in parallel.
func setClock(t testing.TB, ts metav1.Time) {
	t.Helper()
	old := conditions.Now
	conditions.Now = func() metav1.Time { return ts }
	t.Cleanup(func() { conditions.Now = old })
}

// cond builds a condition; ltt may be the zero time.
func cond(typ string, s metav1.ConditionStatus, reason, msg string, gen int64, ltt metav1.Time) metav1.Condition {
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: ltt}
}

const (
	cTrue    = metav1.ConditionTrue
	cFalse   = metav1.ConditionFalse
	cUnknown = metav1.ConditionUnknown
)

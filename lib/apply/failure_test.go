package apply_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/apply"
)

func TestFailure(t *testing.T) {
	cause := errors.New("no such class")
	f := apply.Stalled("ClassNotFound", cause).On("data", "storageClassName")
	assert.True(t, f.Stalled)
	assert.Equal(t, corev1.EventTypeWarning, f.EventType())
	assert.Equal(t, "no such class", f.Error())
	assert.ErrorIs(t, fmt.Errorf("disk %q: %w", "data", f), cause, "the cause stays reachable")
	got, ok := apply.AsFailure(errors.Join(errors.New("other"), fmt.Errorf("wrapped: %w", f)))
	require.True(t, ok)
	assert.Equal(t, "data", got.Subject)
	assert.Equal(t, "storageClassName", got.Field)

	tr := apply.Transient("ApplyFailed", cause)
	assert.False(t, tr.Stalled)
	assert.Equal(t, corev1.EventTypeNormal, tr.EventType())

	_, ok = apply.AsFailure(cause)
	assert.False(t, ok)
}

func TestConflictFailure(t *testing.T) {
	assert.Nil(t, apply.ConflictFailure(errors.New("not a conflict")))
	taken := &apply.ConflictError{Kind: "Secret", Namespace: "ns", Name: "x"}
	f := apply.ConflictFailure(fmt.Errorf("cannot apply: %w", taken))
	require.NotNil(t, f)
	assert.True(t, f.Stalled)
	assert.Equal(t, apply.ReasonNameConflict, f.Reason)

	pred := &apply.ConflictError{Kind: "Secret", Namespace: "ns", Name: "x", Predecessor: true,
		Controller: &metav1.OwnerReference{Kind: "Owner", Name: "x", UID: "old"}}
	f = apply.ConflictFailure(pred)
	require.NotNil(t, f)
	assert.False(t, f.Stalled, "a deleted predecessor's object goes away by itself")
	assert.Equal(t, apply.ReasonPredecessor, f.Reason)
	assert.Equal(t, apply.PredecessorRetry, f.RequeueAfter, "a wait says when to look again")
	assert.Zero(t, apply.ConflictFailure(taken).RequeueAfter, "a stalled failure waits for a change, not a time")
}

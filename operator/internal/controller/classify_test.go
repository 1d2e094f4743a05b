package controller

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestClassify: every lib failure is sorted in one place. A stalled failure
// the operator knows gets Wukong's reason and field; one it does not know
// still stalls the Wukong with the lib's reason (never retried silently as
// transient); a predecessor's child waits; transient failures and plain API
// errors are returned for a retry.
func TestClassify(t *testing.T) {
	known := func(f *apply.Failure) (problem, bool) {
		if f.Reason != "Known" {
			return problem{}, false
		}
		return problem{v1alpha1.ReadyCondition, "WukongReason", "spec.x", "mapped", false}, true
	}
	apiErr := errors.New("etcdserver: request timed out")
	tests := []struct {
		name            string
		err             error
		wantProblems    []problem
		wantTransient   error
		wantPredecessor string
	}{
		{name: "nil", err: nil},
		{name: "known stalled failure", err: apply.Stalled("Known", errors.New("boom")),
			wantProblems: []problem{{v1alpha1.ReadyCondition, "WukongReason", "spec.x", "mapped", false}}},
		{name: "unknown stalled failure is a problem, not transient", err: apply.Stalled("SomethingNew", errors.New("the lib says no")),
			wantProblems: []problem{{v1alpha1.ReadyCondition, "SomethingNew", "spec.y", "the lib says no", false}}},
		{name: "wrapped and joined", err: errors.Join(fmt.Errorf("disk %q: %w", "a", apply.Stalled("SomethingNew", errors.New("no"))), apiErr),
			wantProblems:  []problem{{v1alpha1.ReadyCondition, "SomethingNew", "spec.y", "no", false}},
			wantTransient: apiErr},
		{name: "transient failure", err: apply.Transient(network.ReasonApplyFailed, apiErr), wantTransient: apiErr},
		{name: "plain API error", err: apiErr, wantTransient: apiErr},
		{name: "predecessor waits", err: apply.ConflictFailure(&apply.ConflictError{Kind: "VirtualMachine", Name: "vm",
			Controller: &metav1.OwnerReference{Kind: "Wukong", Name: "vm", UID: "old"}, Predecessor: true}), wantPredecessor: "VirtualMachine vm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scope{w: &v1alpha1.Wukong{}}
			rest := s.classify(tt.err, v1alpha1.ReadyCondition, "spec.y", known)
			assert.Equal(t, tt.wantProblems, s.problems)
			if tt.wantTransient == nil {
				assert.NoError(t, rest)
			} else {
				assert.ErrorIs(t, rest, tt.wantTransient)
			}
			if tt.wantPredecessor != "" {
				assert.Contains(t, s.predecessor, tt.wantPredecessor)
				assert.Equal(t, predecessorRetry, s.requeueAfter)
			} else {
				assert.Empty(t, s.predecessor)
			}
		})
	}
}

// TestMachineProblem: lib/kubevirt's stalled failures map to Wukong's
// reasons and spec fields.
func TestMachineProblem(t *testing.T) {
	w := &v1alpha1.Wukong{}
	p, ok := machineProblem(w, apply.Stalled(kubevirt.ReasonKubeVirtNotInstalled, kubevirt.ErrKubeVirtNotInstalled))
	require.True(t, ok)
	assert.Equal(t, v1alpha1.ReasonKubeVirtMissing, p.Reason)
	p, ok = machineProblem(w, apply.Stalled(kubevirt.ReasonInvalidInput, &kubevirt.InvalidInputError{Field: "containerDiskImage", Message: "bad"}))
	require.True(t, ok)
	assert.Equal(t, problem{v1alpha1.ReadyCondition, v1alpha1.ReasonInvalidSpec, "spec.osImage", "bad", false}, p)
	p, ok = machineProblem(w, apply.ConflictFailure(&apply.ConflictError{Kind: "VirtualMachine", Namespace: "ns", Name: "vm"}))
	require.True(t, ok)
	assert.Equal(t, v1alpha1.ReasonNameConflict, p.Reason)
	assert.Equal(t, "metadata.name", p.Field)
	_, ok = machineProblem(w, apply.Stalled("SomethingNew", errors.New("x")))
	assert.False(t, ok, "unknown reasons are left to classify's fallback")
}

package statuspass

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// restoreScope is the scope of a pass over a WukongRestore in TestPassRun.
type restoreScope struct{ rst *v1alpha1.WukongRestore }

// pollInProgress is the requeue TestPassRun's compute returns.
const pollInProgress = 5 * time.Second

// TestPassRun: the reconcile skeleton the controllers run. A missing or
// final object runs no step; a step's error writes nothing; otherwise the
// computed status is patched, observedGeneration included.
func TestPassRun(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "team-a", Name: "r1"}
	newClient := func(phase v1alpha1.RestorePhase) client.Client {
		rst := &v1alpha1.WukongRestore{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Generation: 2},
			Status:     v1alpha1.WukongRestoreStatus{Phase: phase},
		}
		return fake.NewClientBuilder().WithScheme(scheme).WithObjects(rst).WithStatusSubresource(rst).Build()
	}
	boom := errors.New("boom")
	ran := 0
	p := func(stepErr error) Pass[*v1alpha1.WukongRestore, *restoreScope] {
		return Pass[*v1alpha1.WukongRestore, *restoreScope]{
			Final: func(rst *v1alpha1.WukongRestore) bool { return rst.Status.Phase == v1alpha1.RestoreSucceeded },
			Scope: func(rst *v1alpha1.WukongRestore) *restoreScope { return &restoreScope{rst: rst} },
			Steps: []func(context.Context, *restoreScope) error{func(context.Context, *restoreScope) error { ran++; return stepErr }},
			Compute: func(s *restoreScope) ctrl.Result {
				s.rst.Status.Phase = v1alpha1.RestoreInProgress
				s.rst.Status.ObservedGeneration = s.rst.Generation
				return ctrl.Result{RequeueAfter: pollInProgress}
			},
			Status: func(rst *v1alpha1.WukongRestore) any { return rst.Status },
		}
	}
	read := func(c client.Client) v1alpha1.WukongRestoreStatus {
		got := &v1alpha1.WukongRestore{}
		require.NoError(t, c.Get(ctx, key, got))
		return got.Status
	}

	res, err := p(nil).Run(ctx, newClient(""), client.ObjectKey{Namespace: "team-a", Name: "missing"}, &v1alpha1.WukongRestore{})
	require.NoError(t, err, "a missing object is no error")
	assert.Equal(t, ctrl.Result{}, res)
	assert.Zero(t, ran, "no step runs for a missing object")

	c := newClient(v1alpha1.RestoreSucceeded)
	_, err = p(nil).Run(ctx, c, key, &v1alpha1.WukongRestore{})
	require.NoError(t, err)
	assert.Zero(t, ran, "no step runs for a final object")
	assert.Equal(t, v1alpha1.RestoreSucceeded, read(c).Phase)

	c = newClient(v1alpha1.RestorePending)
	_, err = p(boom).Run(ctx, c, key, &v1alpha1.WukongRestore{})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 1, ran)
	assert.Equal(t, v1alpha1.RestorePending, read(c).Phase, "a failed step writes nothing")

	res, err = p(nil).Run(ctx, c, key, &v1alpha1.WukongRestore{})
	require.NoError(t, err)
	assert.Equal(t, pollInProgress, res.RequeueAfter, "the pass returns compute's result")
	st := read(c)
	assert.Equal(t, v1alpha1.RestoreInProgress, st.Phase)
	assert.Equal(t, int64(2), st.ObservedGeneration)
}

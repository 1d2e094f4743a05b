package clusterimage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestReconcilePass: a missing image is no error; an image whose source
// cannot work gets its status (Stalled, observedGeneration stamped) in one
// write, and a second pass writes nothing.
func TestReconcilePass(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	img := testImage()
	img.Spec.Source = "ftp://images.example.com/u.qcow2"
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(img).WithStatusSubresource(img).Build()
	r := &Reconciler{Client: c, Reader: c, Namespace: "wukong-images"}
	ctx := context.Background()

	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "missing"}})
	require.NoError(t, err)
	assert.Equal(t, ctrl.Result{}, res)

	_, err = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: img.Name}})
	require.NoError(t, err)
	got := &v1alpha1.ClusterImage{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: img.Name}, got))
	assert.Equal(t, int64(2), got.Status.ObservedGeneration)
	assert.True(t, meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.StalledCondition))

	_, err = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: img.Name}})
	require.NoError(t, err)
	again := &v1alpha1.ClusterImage{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: img.Name}, again))
	assert.Equal(t, got.ResourceVersion, again.ResourceVersion, "a second pass writes nothing")
}

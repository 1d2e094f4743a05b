package statuspatch

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestIfChanged: an unchanged status writes nothing, a changed one is
// patched, and an object deleted meanwhile is no error.
func TestIfChanged(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	ctx := context.Background()
	img := &v1alpha1.ClusterImage{ObjectMeta: metav1.ObjectMeta{Name: "ubuntu", Generation: 3}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(img).WithStatusSubresource(img).Build()

	read := func() *v1alpha1.ClusterImage {
		got := &v1alpha1.ClusterImage{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "ubuntu"}, got))
		return got
	}
	obj := read()
	base := obj.DeepCopy()
	require.NoError(t, IfChanged(ctx, c, base, obj, base.Status, obj.Status))
	assert.Equal(t, base.ResourceVersion, read().ResourceVersion, "nothing written")

	obj.Status.ObservedGeneration = 3
	require.NoError(t, IfChanged(ctx, c, base, obj, base.Status, obj.Status))
	assert.Equal(t, int64(3), read().Status.ObservedGeneration)

	gone := &v1alpha1.ClusterImage{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}
	changed := gone.DeepCopy()
	changed.Status.ObservedGeneration = 1
	assert.NoError(t, IfChanged(ctx, c, gone, changed, gone.Status, changed.Status))
}

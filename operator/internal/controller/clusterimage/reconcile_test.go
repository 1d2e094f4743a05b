package clusterimage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
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

// TestClasses: a StorageClass storage.ResolveClass does not find (a named
// one, or no default) makes the image invalid with StorageClassNotFound;
// the classes found are the ones that get a copy.
func TestClasses(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	fast := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "example.com/csi"}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(fast).Build()
	r := &Reconciler{Client: c, Reader: c, Namespace: "wukong-images"}
	ctx := context.Background()

	s := &scope{img: testImage()}
	s.img.Spec.StorageClassNames = nil
	names, err := r.classes(ctx, s)
	require.NoError(t, err)
	assert.Empty(t, names)
	assert.Equal(t, v1alpha1.ReasonStorageClassNotFound, s.invalidReason)
	assert.Equal(t, "the cluster has no default StorageClass: name the classes in spec.storageClassNames", s.invalid)

	s = &scope{img: testImage()}
	s.img.Spec.StorageClassNames = []string{"fast", "slow"}
	names, err = r.classes(ctx, s)
	require.NoError(t, err)
	assert.Empty(t, names)
	assert.Equal(t, v1alpha1.ReasonStorageClassNotFound, s.invalidReason)
	assert.Equal(t, "StorageClass slow of spec.storageClassNames not found", s.invalid)

	s = &scope{img: testImage()}
	s.img.Spec.StorageClassNames = []string{"fast"}
	names, err = r.classes(ctx, s)
	require.NoError(t, err)
	assert.Equal(t, []string{"fast"}, names)
	assert.Empty(t, s.invalid)
}

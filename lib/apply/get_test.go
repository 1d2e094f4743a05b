package apply_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// TestGetOptional: an object that is there is read, a missing one is nil
// without an error, another read error comes back as it is.
func TestGetOptional(t *testing.T) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "get-optional"}, Data: map[string]string{"a": "1"}}
	require.NoError(t, k8s.Create(ctx, cm))
	t.Cleanup(func() { _ = k8s.Delete(ctx, cm) })

	got, err := apply.GetOptional(ctx, k8s, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "1", got.Data["a"])

	missing, err := apply.GetOptional(ctx, k8s, client.ObjectKey{Namespace: "default", Name: "absent"}, &corev1.ConfigMap{})
	require.NoError(t, err)
	assert.Nil(t, missing)

	u := &metav1.PartialObjectMetadata{}
	u.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NoSuchKind"))
	none, err := apply.GetOptional(ctx, k8s, client.ObjectKey{Namespace: "default", Name: "x"}, u)
	require.Error(t, err)
	assert.True(t, meta.IsNoMatchError(err), "%v", err)
	assert.Nil(t, none)
}

package manager

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/novasphere/wukong/operator/internal/controller"
)

// mustScheme is the manager's scheme (NewScheme); the test fails at once
// when it cannot be built.
func mustScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme, err := NewScheme()
	require.NoError(t, err)
	return scheme
}

// TestCachedKinds: each entry's GVK is the kind of the object it makes (in
// the manager's scheme), an optional kind is served only when installed
// says so, and FallbackClient reads from the API server exactly the
// Labelled kinds.
func TestCachedKinds(t *testing.T) {
	scheme := mustScheme(t)
	none := func(schema.GroupVersionKind) bool { return false }
	for _, k := range controller.CachedKinds {
		gvk, err := apiutil.GVKForObject(k.New(), scheme)
		require.NoError(t, err)
		assert.Equal(t, k.GVK, gvk)
		assert.True(t, k.Served(nil), "%s: nil installed serves every kind", k.GVK.Kind)
		assert.Equal(t, !k.Optional, k.Served(none), "%s: served without its CRD", k.GVK.Kind)
		assert.Equal(t, k.Labelled, controller.IsLabelledKind(k.New()), k.GVK.Kind)
	}
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &kubevirtv1.KubeVirt{}} {
		assert.False(t, controller.IsLabelledKind(obj), "%T", obj)
	}
}

package manager

import (
	"context"
	"errors"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// TestFallbackClientOtherNamespaces: with the cache limited to some
// namespaces, a NetworkAttachmentDefinition of another namespace (a global
// one) is read from the API server, where controller-runtime's
// multi-namespace cache would answer "unknown namespace"; in a cached
// namespace the cache answers, and a kind Wukong does not label is never
// read around it.
func TestFallbackClientOtherNamespaces(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	shared := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "shared-nets", Name: "lan"}}
	own := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "lan"}}
	api := fake.NewClientBuilder().WithScheme(scheme).WithObjects(shared.DeepCopy(), own.DeepCopy(),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shared-nets", Name: "cm"}}).Build()
	errUnknown := errors.New("unable to get: because of unknown namespace for the cache")
	var cacheReads []string
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(own.DeepCopy()).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			cacheReads = append(cacheReads, key.String())
			if key.Namespace != "team-a" {
				return errUnknown
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	fc := FallbackClient{Client: cache, APIReader: api, Namespaces: []string{"team-a"}}
	ctx := t.Context()

	require.NoError(t, fc.Get(ctx, client.ObjectKeyFromObject(shared), &nadv1.NetworkAttachmentDefinition{}), "a global namespace's NAD")
	assert.Empty(t, cacheReads, "not asked of the cache")
	require.NoError(t, fc.Get(ctx, client.ObjectKeyFromObject(own), &nadv1.NetworkAttachmentDefinition{}))
	assert.Equal(t, []string{"team-a/lan"}, cacheReads, "a watched namespace's from the cache")
	err = fc.Get(ctx, client.ObjectKey{Namespace: "shared-nets", Name: "cm"}, &corev1.ConfigMap{})
	assert.ErrorIs(t, err, errUnknown, "an unlabelled kind goes to the cache only")

	cacheReads = nil
	all := FallbackClient{Client: cache, APIReader: api}
	assert.ErrorIs(t, all.Get(ctx, client.ObjectKeyFromObject(shared), &nadv1.NetworkAttachmentDefinition{}), errUnknown,
		"watching every namespace, the cache answers")
}

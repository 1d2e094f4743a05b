package manager

import (
	"context"
	"errors"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
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
	scheme := mustScheme(t)
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
	err := fc.Get(ctx, client.ObjectKey{Namespace: "shared-nets", Name: "cm"}, &corev1.ConfigMap{})
	assert.ErrorIs(t, err, errUnknown, "an unlabelled kind goes to the cache only")

	cacheReads = nil
	all := FallbackClient{Client: cache, APIReader: api}
	assert.ErrorIs(t, all.Get(ctx, client.ObjectKeyFromObject(shared), &nadv1.NetworkAttachmentDefinition{}), errUnknown,
		"watching every namespace, the cache answers")
}

// TestFallbackClientReadsStubsLive: a Get the cache answers with a stub
// (an object someone else labelled as Wukong's) returns the live object,
// without the stub's marks; a cache miss of a Labelled kind reads the API
// server; a whole cached object is returned as cached.
func TestFallbackClientReadsStubsLive(t *testing.T) {
	scheme := mustScheme(t)
	live := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "keys", Labels: managed, Annotations: map[string]string{"a": "b"}},
		Data: map[string][]byte{"k": []byte("ssh-ed25519 AAAA")}}
	unlabelled := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain"}, Data: map[string][]byte{"k": []byte("x")}}
	own := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-cloudinit", OwnerReferences: []metav1.OwnerReference{wukongRef}},
		Data: map[string][]byte{"userdata": []byte("cached")}}
	api := fake.NewClientBuilder().WithScheme(scheme).WithObjects(live.DeepCopy(), unlabelled.DeepCopy(),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-cloudinit"}, Data: map[string][]byte{"userdata": []byte("live")}}).Build()
	st := stub(live.DeepCopy())
	cached := fake.NewClientBuilder().WithScheme(scheme).WithObjects(st, own).Build()
	c := FallbackClient{Client: cached, APIReader: api}
	ctx := context.Background()

	got := &corev1.Secret{}
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(live), got))
	assert.Equal(t, live.Data, got.Data, "a stub is read whole from the API server")
	assert.False(t, IsStub(got), "without the stub's mark")
	assert.Equal(t, map[string]string{"a": "b"}, got.Annotations)

	got = &corev1.Secret{}
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(unlabelled), got))
	assert.Equal(t, unlabelled.Data, got.Data, "a cache miss is read from the API server")

	got = &corev1.Secret{}
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(own), got))
	assert.Equal(t, "cached", string(got.Data["userdata"]), "a whole cached object comes from the cache")

	err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "none"}, &corev1.Secret{})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
}

// TestFallbackClientNamespacedInstancetypes: a namespaced instance type or
// preference (any tenant may make any number) is read from the API server
// and never asked of the cache, so no informer on them starts; a cluster
// instance type (an administrator's) is read through the cache.
func TestFallbackClientNamespacedInstancetypes(t *testing.T) {
	scheme := mustScheme(t)
	it := &instancetypev1beta1.VirtualMachineInstancetype{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "small"}}
	pref := &instancetypev1beta1.VirtualMachinePreference{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "linux"}}
	cit := &instancetypev1beta1.VirtualMachineClusterInstancetype{ObjectMeta: metav1.ObjectMeta{Name: "u1.medium"}}
	api := fake.NewClientBuilder().WithScheme(scheme).WithObjects(it.DeepCopy(), pref.DeepCopy(), cit.DeepCopy()).Build()
	var cacheReads []string
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cit.DeepCopy()).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			cacheReads = append(cacheReads, key.String())
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	fc := FallbackClient{Client: cache, APIReader: api}
	ctx := t.Context()
	require.NoError(t, fc.Get(ctx, client.ObjectKeyFromObject(it), &instancetypev1beta1.VirtualMachineInstancetype{}))
	require.NoError(t, fc.Get(ctx, client.ObjectKeyFromObject(pref), &instancetypev1beta1.VirtualMachinePreference{}))
	assert.Empty(t, cacheReads, "namespaced instance types and preferences are not asked of the cache")
	require.NoError(t, fc.Get(ctx, client.ObjectKeyFromObject(cit), &instancetypev1beta1.VirtualMachineClusterInstancetype{}))
	assert.Equal(t, []string{"/u1.medium"}, cacheReads, "a cluster instance type from the cache")
}

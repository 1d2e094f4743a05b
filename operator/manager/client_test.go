package manager

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestFallbackClientReadsStubsLive: a Get the cache answers with a stub
// (an object someone else labelled as Wukong's) returns the live object,
// without the stub's marks; a cache miss of a Labelled kind reads the API
// server; a whole cached object is returned as cached.
func TestFallbackClientReadsStubsLive(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
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

	err = c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "none"}, &corev1.Secret{})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
}

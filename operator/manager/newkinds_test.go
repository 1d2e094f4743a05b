package manager

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/novasphere/wukong/operator/internal/controller"
)

// TestWaitForKinds: nothing happens while the missing kinds stay missing
// (or their lookup fails); once one is served the watcher stops with
// ErrKindInstalled naming it; a cancelled context stops it quietly.
func TestWaitForKinds(t *testing.T) {
	dv, nad := controller.GVKDataVolume, controller.GVKNAD
	var polls atomic.Int32
	served := func(gvk schema.GroupVersionKind) (bool, error) {
		n := polls.Add(1)
		switch {
		case n <= 2:
			return false, errors.New("discovery unavailable")
		case gvk == nad && n >= 6:
			return true, nil
		}
		return false, nil
	}
	err := waitForKinds(context.Background(), []schema.GroupVersionKind{dv, nad}, time.Millisecond, served)
	require.ErrorIs(t, err, ErrKindInstalled)
	assert.Contains(t, err.Error(), "NetworkAttachmentDefinition")
	assert.GreaterOrEqual(t, polls.Load(), int32(6), "looked up until it was served")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- waitForKinds(ctx, []schema.GroupVersionKind{dv}, time.Millisecond,
			func(schema.GroupVersionKind) (bool, error) { return false, nil })
	}()
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "a cancelled context is not an error")
	case <-time.After(10 * time.Second):
		t.Fatal("waitForKinds did not return after its context was cancelled")
	}
	assert.False(t, kindWatcher{}.NeedLeaderElection(), "every replica watches, not only the leader")
}

// TestDiscoveryServed: a kind is served when discovery lists it in its
// group/version; a group/version discovery does not know is not served.
func TestDiscoveryServed(t *testing.T) {
	dc := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	dc.Resources = []*metav1.APIResourceList{{
		GroupVersion: "cdi.kubevirt.io/v1beta1",
		APIResources: []metav1.APIResource{{Name: "datavolumes", Kind: "DataVolume"}},
	}}
	served := discoveryServed(dc)
	ok, err := served(controller.GVKDataVolume)
	require.NoError(t, err)
	assert.True(t, ok, "DataVolume is listed")
	ok, err = served(schema.GroupVersionKind{Group: "cdi.kubevirt.io", Version: "v1beta1", Kind: "DataImportCron"})
	require.NoError(t, err)
	assert.False(t, ok, "a kind its group/version does not list")
	ok, err = served(controller.GVKNAD)
	require.NoError(t, err, "a group/version discovery does not know is NotFound, not an error")
	assert.False(t, ok)
}

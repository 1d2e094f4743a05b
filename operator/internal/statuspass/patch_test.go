package statuspass

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestPatchIfChanged: an unchanged status writes nothing, a changed one is
// patched, and an object deleted meanwhile is no error. PatchIfChanged
// knows no type, so a Pod stands for the operator's kinds.
func TestPatchIfChanged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stored  bool   // the object is in the API server
		message string // the status message the pass computed
		written bool
	}{
		{name: "unchanged", stored: true},
		{name: "changed", stored: true, message: "computed", written: true},
		{name: "deleted meanwhile", message: "computed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "p"}}
			b := fake.NewClientBuilder().WithStatusSubresource(obj)
			if tc.stored {
				b = b.WithObjects(obj.DeepCopy())
			}
			c := b.Build()
			if tc.stored {
				require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(obj), obj))
			}
			base := obj.DeepCopy()
			obj.Status.Message = tc.message
			require.NoError(t, PatchIfChanged(ctx, c, base, obj, base.Status, obj.Status))
			if !tc.stored {
				return
			}
			got := &corev1.Pod{}
			require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(obj), got))
			assert.Equal(t, tc.message, got.Status.Message)
			assert.Equal(t, tc.written, got.ResourceVersion != base.ResourceVersion, "written")
		})
	}
}

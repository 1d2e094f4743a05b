package apply_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

func controllerRef(name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "vm.novasphere.dev/v1alpha1", Kind: "Wukong", Name: name, UID: uid,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
}

// TestApplyNeverAdopts: an object created by someone else (no controller, or
// another controller) is left exactly as it was; a deleted predecessor's child
// is reported as such; the owner's own child is updated.
func TestApplyNeverAdopts(t *testing.T) {
	ctx := context.Background()
	owner := controllerRef("shared", "uid-new")
	cases := []struct {
		name            string
		liveOwners      []metav1.OwnerReference
		wantPredecessor bool
		wantController  bool
	}{
		{name: "created by hand, no owner"},
		{name: "another controller", liveOwners: []metav1.OwnerReference{controllerRef("other", "uid-other")}, wantController: true},
		{name: "same name, other kind", liveOwners: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "shared", UID: "uid-d", Controller: ptr.To(true)}}, wantController: true},
		{name: "predecessor of the same name", liveOwners: []metav1.OwnerReference{controllerRef("shared", "uid-old")}, wantController: true, wantPredecessor: true},
		{name: "non-controller owner reference to this owner", liveOwners: []metav1.OwnerReference{{APIVersion: "vm.novasphere.dev/v1alpha1", Kind: "Wukong", Name: "shared", UID: "uid-new"}}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "foreign-" + string(rune('a'+i))
			foreign := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, OwnerReferences: tc.liveOwners},
				Data:       map[string]string{"precious": "data"},
			}
			require.NoError(t, k8s.Create(ctx, foreign))
			before := foreign.ResourceVersion

			desired := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "x"},
					OwnerReferences: []metav1.OwnerReference{owner}},
				Data: map[string]string{"precious": "overwritten"},
			}
			res, err := apply.Apply(ctx, k8s, desired, testID)
			var conflict *apply.ConflictError
			require.True(t, errors.As(err, &conflict), "want a ConflictError, got %v", err)
			require.Equal(t, apply.Unchanged, res)
			require.Equal(t, "ConfigMap", conflict.Kind)
			require.Equal(t, name, conflict.Name)
			require.Equal(t, tc.wantController, conflict.Controller != nil)
			require.Equal(t, tc.wantPredecessor, conflict.Predecessor)
			require.Contains(t, conflict.Error(), "ConfigMap default/"+name)

			live := &corev1.ConfigMap{}
			require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(foreign), live))
			require.Equal(t, before, live.ResourceVersion, "nothing was written")
			require.Equal(t, "data", live.Data["precious"])
			require.Equal(t, tc.liveOwners, normalise(live.OwnerReferences))
		})
	}

	t.Run("own child is updated", func(t *testing.T) {
		mine := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mine", OwnerReferences: []metav1.OwnerReference{owner}},
			Data:       map[string]string{"v": "1"},
		}
		_, err := apply.Apply(ctx, k8s, mine, testID)
		require.NoError(t, err)
		mine.Data["v"] = "2"
		res, err := apply.Apply(ctx, k8s, mine, testID)
		require.NoError(t, err)
		require.Equal(t, apply.Updated, res)
	})
}

func normalise(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return nil
	}
	return refs
}

package apply_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/testenv"
)

var k8s client.Client

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Scheme(), func(e *testenv.Env) { k8s = e.Client })
}

func configMap(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cm", Labels: map[string]string{"app": "x"}},
		Data:       data,
	}
}

// TestApplyWritesOnlyWhenNeeded: create, no-op, restore a hand edit, keep
// fields owned by others.
func TestApplyWritesOnlyWhenNeeded(t *testing.T) {
	ctx := context.Background()

	cm := configMap(map[string]string{"a": "1"})
	res, err := apply.Apply(ctx, k8s, cm, testID)
	require.NoError(t, err)
	require.Equal(t, apply.Created, res)
	require.NotEmpty(t, cm.ResourceVersion, "the live object is returned")
	rv := cm.ResourceVersion

	res, err = apply.Apply(ctx, k8s, configMap(map[string]string{"a": "1"}), testID)
	require.NoError(t, err)
	require.Equal(t, apply.Unchanged, res)

	live := &corev1.ConfigMap{}
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(cm), live))
	require.Equal(t, rv, live.ResourceVersion, "a no-op apply must not write")

	// Someone else adds a key and edits ours.
	live.Data["a"] = "edited"
	live.Data["other"] = "theirs"
	require.NoError(t, k8s.Update(ctx, live))

	res, err = apply.Apply(ctx, k8s, configMap(map[string]string{"a": "1"}), testID)
	require.NoError(t, err)
	require.Equal(t, apply.Updated, res)
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(cm), live))
	require.Equal(t, "1", live.Data["a"], "the edited field is restored")
	require.Equal(t, "theirs", live.Data["other"], "fields of other managers are kept")
}

// TestApplyRemovesDroppedFields: a field the desired object no longer sets
// is removed (the subset comparison alone would keep it forever).
func TestApplyRemovesDroppedFields(t *testing.T) {
	ctx := context.Background()
	cm := configMap(map[string]string{"keep": "1", "drop": "2"})
	cm.Name = "cm-drop"
	_, err := apply.Apply(ctx, k8s, cm, testID)
	require.NoError(t, err)

	smaller := configMap(map[string]string{"keep": "1"})
	smaller.Name = "cm-drop"
	res, err := apply.Apply(ctx, k8s, smaller, testID)
	require.NoError(t, err)
	require.Equal(t, apply.Updated, res)

	live := &corev1.ConfigMap{}
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(smaller), live))
	require.Equal(t, map[string]string{"keep": "1"}, live.Data)

	res, err = apply.Apply(ctx, k8s, smaller, testID)
	require.NoError(t, err)
	require.Equal(t, apply.Unchanged, res, "and then it is at rest again")
}

// TestApplyIfResourceVersion: an apply computed from a read that another
// writer has since overtaken is refused with 409 Conflict and writes
// nothing (the other writer's change stays); with the current version, or
// none, it is written.
func TestApplyIfResourceVersion(t *testing.T) {
	ctx := context.Background()
	cm := configMap(map[string]string{"power": "off"})
	cm.Name = "cm-precondition"
	_, err := apply.Apply(ctx, k8s, cm, testID)
	require.NoError(t, err)
	read := cm.ResourceVersion

	// Another actor (think virtctl start) changes the field after our read.
	live := &corev1.ConfigMap{}
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(cm), live))
	live.Data["power"] = "on"
	require.NoError(t, k8s.Update(ctx, live))

	stale := configMap(map[string]string{"power": "off", "cpu": "2"})
	stale.Name = cm.Name
	_, err = apply.Apply(ctx, k8s, stale, testID, apply.IfResourceVersion(read))
	require.Error(t, err)
	require.True(t, apierrors.IsConflict(err), "409 Conflict, got %v", err)
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(cm), live))
	require.Equal(t, map[string]string{"power": "on"}, live.Data, "nothing written: the other change stays")

	fresh := configMap(map[string]string{"power": "on", "cpu": "2"})
	fresh.Name = cm.Name
	res, err := apply.Apply(ctx, k8s, fresh, testID, apply.IfResourceVersion(live.ResourceVersion))
	require.NoError(t, err)
	require.Equal(t, apply.Updated, res)
	require.Equal(t, map[string]string{"power": "on", "cpu": "2"}, fresh.Data)

	created := configMap(map[string]string{"a": "1"})
	created.Name = "cm-precondition-new"
	res, err = apply.Apply(ctx, k8s, created, testID, apply.IfResourceVersion(""))
	require.NoError(t, err, "no version read (no object): no precondition")
	require.Equal(t, apply.Created, res)
}

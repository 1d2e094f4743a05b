package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestInstancetypeAdmission: spec.instancetype excludes spec.cpu and
// spec.memory at admission (the message names the fields); its kind
// defaults to the cluster kind as KubeVirt's InstancetypeMatcher does; a
// Wukong without cpu, memory or instancetype is still accepted and stores
// no cpu or memory (the operator sizes it 1 and 1Gi).
func TestInstancetypeAdmission(t *testing.T) {
	ns := newNamespace(t)
	checkAdmission(t, []admissionCase{
		{"instancetype and cpu", "spec:\n  cpu: 2\n  instancetype:\n    name: u1.medium\n", false, "spec.instancetype", "spec.cpu and spec.memory cannot be set with spec.instancetype"},
		{"instancetype and memory", "spec:\n  memory: 2Gi\n  instancetype:\n    name: u1.medium\n", false, "spec.instancetype", "spec.cpu and spec.memory cannot be set with spec.instancetype"},
		{"instancetype without name", "spec:\n  instancetype:\n    kind: VirtualMachineInstancetype\n", false, "spec.instancetype.name", ""},
		{"instancetype of another kind", "spec:\n  instancetype:\n    kind: VirtualMachinePreference\n    name: a\n", false, "spec.instancetype.kind", ""},
		{"preference of an instancetype kind", "spec:\n  preference:\n    kind: VirtualMachineInstancetype\n    name: a\n", false, "spec.preference.kind", ""},
		{"instancetype name not a DNS name", "spec:\n  instancetype:\n    name: U1_Medium\n", false, "spec.instancetype.name", ""},
	}, numberedWukongs(ns, "it-bad"))

	ctx := context.Background()
	require.NoError(t, create(t, ns, fmt.Sprintf(header, "it-ok")+"spec:\n  instancetype:\n    name: u1.medium\n  preference:\n    name: fedora\n"))
	w := &v1alpha1.Wukong{}
	require.NoError(t, k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "it-ok"}, w))
	require.NotNil(t, w.Spec.Instancetype)
	assert.Equal(t, v1alpha1.KindClusterInstancetype, w.Spec.Instancetype.Kind, "kind defaults to the cluster kind")
	assert.Equal(t, v1alpha1.KindClusterPreference, w.Spec.Preference.Kind)
	assert.Zero(t, w.Spec.CPU, "no cpu defaulted next to an instancetype")
	assert.True(t, w.Spec.Memory.IsZero(), "no memory defaulted next to an instancetype")

	require.NoError(t, create(t, ns, fmt.Sprintf(header, "it-plain")+"spec:\n  osImage: docker://a/b:1\n"))
	plain := &v1alpha1.Wukong{}
	require.NoError(t, k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "it-plain"}, plain))
	assert.Zero(t, plain.Spec.CPU)

	// Switching to an instance type means removing cpu and memory.
	w2 := plain.DeepCopy()
	w2.Spec.CPU = 2
	w2.Spec.Instancetype = &v1alpha1.InstancetypeRef{Name: "u1.small"}
	err := k8s.Update(ctx, w2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.cpu and spec.memory cannot be set with spec.instancetype")
	w2.Spec.CPU = 0
	require.NoError(t, k8s.Update(ctx, w2), "a Go client omits the unset memory (omitzero)")
}

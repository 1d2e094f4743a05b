package network

import (
	"context"
	"testing"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestEnactedSkipsGoneNodes: the enactment of a node that no longer exists
// (left at the generation it last applied) does not hold the policy's
// removal; one of an existing node behind the policy's generation does.
func TestEnactedSkipsGoneNodes(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, nmstatev1.AddToScheme(scheme))
	require.NoError(t, nmstatev1beta1.AddToScheme(scheme))
	p := &nmstatev1.NodeNetworkConfigurationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "br", Generation: 2}}
	enactment := func(node string, gen int64) *nmstatev1beta1.NodeNetworkConfigurationEnactment {
		e := &nmstatev1beta1.NodeNetworkConfigurationEnactment{ObjectMeta: metav1.ObjectMeta{Name: node + ".br",
			Labels: map[string]string{LabelEnactmentPolicy: "br", LabelEnactmentNode: node}}}
		e.Status.PolicyGeneration = gen
		e.Status.Conditions = shared.ConditionList{{Type: shared.NodeNetworkConfigurationEnactmentConditionAvailable, Status: corev1.ConditionTrue}}
		return e
	}
	node := func(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	ctx := context.Background()

	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(enactment("n1", 2), enactment("gone", 1), node("n1")).Build()
	done, err := enacted(ctx, c, p)
	require.NoError(t, err)
	assert.True(t, done, "a gone node's stale enactment does not hold the removal")

	c = fake.NewClientBuilder().WithScheme(scheme).WithObjects(enactment("n1", 2), enactment("n2", 1), node("n1"), node("n2")).Build()
	done, err = enacted(ctx, c, p)
	require.NoError(t, err)
	assert.False(t, done, "an existing node behind the generation holds it")
}

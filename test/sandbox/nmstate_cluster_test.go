package sandbox_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/novasphere/wukong/test/crds"
	"github.com/novasphere/wukong/test/fixture"
	"github.com/novasphere/wukong/test/sandbox"
	"github.com/novasphere/wukong/testenv"
)

// TestSimulateNMStateOnACluster: on a cluster of its own (as make
// local-cluster-up's, no sandbox), SimulateNMState refuses to start
// without the NMState CRDs, naming the kind; with them it gives the node a
// NodeNetworkState holding the node's address, answers a policy Available
// with one enactment, and returns nil when its context ends.
func TestSimulateNMStateOnACluster(t *testing.T) {
	env := &envtest.Environment{ControlPlaneStartTimeout: testenv.StartTimeout}
	cfg, err := env.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: sandbox.NewScheme()})
	require.NoError(t, err)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "real-node", Labels: map[string]string{corev1.LabelHostname: "real-node"}}}
	require.NoError(t, c.Create(ctx, node))
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.2.3"}}
	require.NoError(t, c.Status().Update(ctx, node))

	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = sandbox.SimulateNMState(short, cfg, sandbox.NMStateOptions{})
	require.Error(t, err, "without the NMState CRDs")
	assert.Contains(t, err.Error(), "NodeNetworkState")

	_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{
		filepath.Join(crds.Dir(), "nmstate.io_nodenetworkconfigurationpolicies.yaml"),
		filepath.Join(crds.Dir(), "nmstate.io_nodenetworkconfigurationenactments.yaml"),
		filepath.Join(crds.Dir(), "nmstate.io_nodenetworkstates.yaml"),
	}})
	require.NoError(t, err)

	logs := &fixture.SyncBuffer{}
	simCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- sandbox.SimulateNMState(simCtx, cfg, sandbox.NMStateOptions{Interval: 100 * time.Millisecond, LogWriter: logs})
	}()
	nns := &nmstatev1beta1.NodeNetworkState{}
	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		require.NoError(c2, c.Get(ctx, client.ObjectKey{Name: "real-node"}, nns))
		assert.Contains(c2, string(nns.Status.CurrentState.Raw), "10.1.2.3")
	}, timeout, tick, "the node's NodeNetworkState")

	p := &nmstatev1.NodeNetworkConfigurationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "br-test"}}
	p.Spec.DesiredState = shared.State{Raw: []byte(`{"interfaces":[{"name":"br-test","type":"linux-bridge","state":"up"}]}`)}
	require.NoError(t, c.Create(ctx, p))
	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		require.NoError(c2, c.Get(ctx, client.ObjectKeyFromObject(p), p))
		cond := p.Status.Conditions.Find(shared.NodeNetworkConfigurationPolicyConditionAvailable)
		require.NotNil(c2, cond)
		assert.Equal(c2, corev1.ConditionTrue, cond.Status)
		assert.Equal(c2, "1/1 nodes successfully configured", cond.Message)
	}, timeout, tick, "the policy Available")
	enactments := &nmstatev1beta1.NodeNetworkConfigurationEnactmentList{}
	require.NoError(t, c.List(ctx, enactments))
	require.Len(t, enactments.Items, 1)
	assert.Equal(t, "real-node.br-test", enactments.Items[0].Name)
	assert.Contains(t, logs.String(), "NMState simulator running")

	stop()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(timeout):
		t.Fatal("SimulateNMState did not return after its context ended")
	}
}

package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/bench"
)

func TestMain(m *testing.M) {
	bench.MaybeRunManager() // the harness re-executes this test binary as the manager
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestHarness runs the whole benchmark at N=8 so it cannot rot: every
// measurement is filled in, everything converged, the JSON round-trips and
// the operator writes nothing at rest.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox and a manager process")
	}
	const n = 8
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Options{
		N: n, Quiet: 2 * time.Second, Settle: time.Second, NoiseSecrets: 40, NoisePVCs: 10,
		ImportStep: 50, ImportInterval: 100 * time.Millisecond, Timeout: 2 * time.Minute,
		OneSandbox: true, Log: logWriter{t}, StalledWukongs: 4, StalledDisks: 4,
	})
	require.NoError(t, err)
	var table strings.Builder
	bench.WriteTable(&table, res)
	t.Log("\n" + table.String())

	op, fl := res.Operator, res.Floor
	for name, v := range map[string]float64{
		"operator converge": op.Converge.Total, "operator batch 1": op.Converge.Batch1, "operator batch 2": op.Converge.Batch2,
		"floor converge": fl.Converge.Total, "floor batch 1": fl.Converge.Batch1, "floor batch 2": fl.Converge.Batch2,
		"operator delete": op.Delete.Total, "floor delete": fl.Delete.Total, "resync": op.ResyncSeconds,
	} {
		assert.Positive(t, v, name)
	}
	assert.Positive(t, op.Manager.Writes(), "the manager wrote the children")
	assert.Positive(t, op.Manager.Reads(), "the manager read")
	assert.EqualValues(t, 5*n, fl.Client.Writes(), "the floor creates 5 objects per machine")
	assert.Positive(t, op.APIServer.Writes())
	assert.Positive(t, fl.APIServer.Writes())
	assert.Positive(t, op.ResyncManager.Reads(), "the restarted manager re-listed")

	assert.Zero(t, op.QuietManager.Writes(), "manager writes in the quiet period: %v", op.QuietManager.WriteResources())
	assert.Zero(t, op.ResyncManager.Writes(), "manager writes after restart: %v", op.ResyncManager.WriteResources())
	assert.Zero(t, op.APIServerAtRest.WritesExcept(bench.Heartbeats...), "API server writes at rest: %v", op.APIServerAtRest.WriteResources())

	require.Len(t, op.Memory, 4, "memory at 0 (no noise), 0 (noise), N/4, N")
	for _, m := range op.Memory {
		assert.Positive(t, m.HeapAlloc)
		assert.Positive(t, m.RSS)
	}
	assert.Equal(t, n, op.Memory[3].Cache["Wukong"])
	assert.Equal(t, n, op.Memory[3].Cache["Secret"], "only cloud-init Secrets are cached, not the noise")
	assert.Equal(t, 2*n, op.Memory[3].Cache["PersistentVolumeClaim"], "only the Wukongs' PVCs are cached")
	assert.GreaterOrEqual(t, op.ReconcileTime.Count, uint64(n))
	assert.Greater(t, op.ReconcileTime.Quantile(0.99), 0.0)

	require.NotEmpty(t, res.Rows)
	for _, r := range res.Rows {
		assert.NotNil(t, r.Operator, "row %q has no operator value", r.Metric)
		// Convergence, heap and the write ratio (status writes coalesce by
		// time) are targets of the real run, not of this small one.
		if r.Met != nil {
			assert.True(t, *r.Met || strings.HasPrefix(r.Metric, "converge") || strings.HasPrefix(r.Metric, "manager heap") ||
				strings.HasPrefix(r.Metric, "client writes"),
				"row %q missed its target %q", r.Metric, r.Target)
		}
	}
	assert.GreaterOrEqual(t, op.Events["Normal "+v1alpha1.ReasonRunning], n, "each Wukong records Ready: %v", op.Events)
	for _, quiet := range []string{v1alpha1.ReasonNADCreated, v1alpha1.ReasonImporting, v1alpha1.ReasonVolumesBound, v1alpha1.ReasonWaitingForDependencies} {
		assert.Zero(t, op.Events["Normal "+quiet], "no Event for the step %s: %v", quiet, op.Events)
	}
	kinds := bench.WriteKinds(op.Manager)
	assert.Positive(t, kinds[bench.KindStatus], "the manager patched Wukong status: %v", kinds)
	assert.EqualValues(t, n, kinds["child apply/create: virtualmachines"], "one VirtualMachine write per Wukong: %v", kinds)
	assert.Positive(t, res.Env.NumCPU)
	// The Stalled Wukongs are measured (their numbers are reported, not
	// asserted: see the README).
	assert.Equal(t, 4, op.Stalled.Wukongs)
	assert.GreaterOrEqual(t, op.Stalled.RetryReconciles, 4.0, "one more pass of each Stalled Wukong")
	assert.Equal(t, 7, op.Stalled.PassesFirstHour)
	assert.NotEmpty(t, res.Env.GoVersion)
	assert.NotEmpty(t, res.Env.Modules["sigs.k8s.io/controller-runtime"])
	assert.NotEmpty(t, res.Env.Modules["k8s.io/client-go"])

	out := filepath.Join(t.TempDir(), "bench.json")
	require.NoError(t, bench.WriteJSON(out, res))
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var back bench.Result
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, n, back.Options.N)
	assert.Equal(t, res.Rows, back.Rows)
	assert.Equal(t, op.ReconcileTime, back.Operator.ReconcileTime)
}

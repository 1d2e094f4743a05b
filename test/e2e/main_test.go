// Package e2e_test is Wukong's end-to-end suite. It asserts what a user sees
// (Wukong status, the objects in the cluster), never operator internals.
//
// By default TestMain starts the sandbox (a real kube-apiserver with
// SIMULATED KubeVirt, CDI, CSI and NMState, see package sandbox) and runs the
// operator's manager in-process. With E2E_KUBECONFIG set it starts neither and
// runs against that cluster, where the operator is assumed installed by the
// chart.
//
// Environment:
//
//	E2E_KUBECONFIG=path       run against a real cluster
//	E2E_TIMEOUT_SCALE=N       multiply every wait (default 1; e.g. 5 on kind)
//	E2E_LOG=path              write the operator's and simulators' logs there
//	E2E_SKIP_NODE_BRIDGES=1   skip the tests (and the example Wukong) that
//	                          attach NICs to a NodeBridge: its NNCP cannot be
//	                          applied where nodes have no uplink to enslave
//	                          (kind)
//	E2E_NO_SECONDARY_NICS=1   skip the tests that need a VM with a secondary
//	                          NIC running: the nodes cannot run one (KubeVirt's
//	                          bridge binding needs dummy links; make e2e-local
//	                          sets it when the node's kernel has none)
//	E2E_OFFLINE=1             skip the tests whose Wukongs pull or import
//	                          images from the internet (the examples'); make
//	                          e2e-local sets it: the local cluster reaches no
//	                          registry
//
// Run: cd test && go test ./e2e/ -count=1 -v
package e2e_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/novasphere/wukong/operator/manager"
	"github.com/novasphere/wukong/test/sandbox"
)

var (
	// k is a direct (uncached) client for every kind the suite reads.
	k client.Client
	// restConfig is k's configuration (an administrator's), for clients
	// that impersonate tenants.
	restConfig *rest.Config
	// scheme knows core, Wukong, KubeVirt, CDI, Multus and NMState types.
	scheme *runtime.Scheme
	// inSandbox is true when the suite runs its own sandbox.
	inSandbox bool
	// box is the suite's sandbox (nil when it runs against a cluster),
	// for the tests that play a failure of a component (webhooks).
	box *sandbox.Sandbox
	// managerCache is the in-process manager's informer cache (sandbox
	// only; nil when the manager runs in a real cluster), for tests of what
	// the manager holds in memory.
	managerCache client.Reader
	// skipBridges: E2E_SKIP_NODE_BRIDGES=1.
	skipBridges bool
	// noSecondaryNICs: E2E_NO_SECONDARY_NICS=1.
	noSecondaryNICs bool
	// offline: E2E_OFFLINE=1.
	offline bool
	// timeout is the default wait, scaled by E2E_TIMEOUT_SCALE.
	timeout = 60 * time.Second
	// scale is E2E_TIMEOUT_SCALE.
	scale = 1.0
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	simLog := io.Discard
	if path := os.Getenv("E2E_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 2
		}
		defer f.Close()
		ctrl.SetLogger(zap.New(zap.WriteTo(f), zap.UseDevMode(true)))
		simLog = f
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	if v := os.Getenv("E2E_TIMEOUT_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			fmt.Fprintf(os.Stderr, "e2e: E2E_TIMEOUT_SCALE=%q is not a positive number\n", v)
			return 2
		}
		scale = f
	}
	timeout = scaled(timeout)
	skipBridges = os.Getenv("E2E_SKIP_NODE_BRIDGES") == "1"
	noSecondaryNICs = os.Getenv("E2E_NO_SECONDARY_NICS") == "1"
	offline = os.Getenv("E2E_OFFLINE") == "1"

	var err error
	if scheme, err = manager.NewScheme(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var cfg *rest.Config
	if path := os.Getenv("E2E_KUBECONFIG"); path != "" {
		if cfg, err = clientcmd.BuildConfigFromFlags("", path); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: reading E2E_KUBECONFIG %s: %v\n", path, err)
			return 1
		}
	} else {
		inSandbox = true
		start := time.Now()
		// The sandbox runs the operator and returns once everything,
		// the operator included, serves.
		sb, err := sandbox.Start(ctx, sandbox.Options{LogWriter: simLog, Operator: func(cfg *rest.Config) (ctrl.Manager, error) {
			// The node-loss policy is on, with a time no other test's
			// nodes (always Ready) reach; the node-loss tests lose their
			// own nodes as of longer or shorter ago (nodeLossAfter).
			return manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0", NodeLossRestartAfter: nodeLossAfter})
		}})
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: starting sandbox:", err)
			return 1
		}
		defer func() {
			stopped := time.Now()
			if err := sb.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: stopping sandbox:", err)
			}
			fmt.Printf("e2e: sandbox stopped in %s\n", time.Since(stopped).Round(time.Millisecond))
		}()
		cfg, box = sb.Config, sb
		managerCache = sb.Operator.GetCache()
		fmt.Printf("e2e: sandbox (SIMULATED KubeVirt/CDI/CSI/NMState) and operator ready in %s\n", time.Since(start).Round(time.Millisecond))
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 100, 200
	restConfig = cfg
	if k, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: creating client:", err)
		return 1
	}
	return m.Run()
}

func scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }

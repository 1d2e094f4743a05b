// Package reliability_test is Wukong's reliability and security suite: bad
// input, secrets handling, abrupt manager kills, leader election fail-over
// and concurrent user edits, all against the sandbox (a real kube-apiserver,
// etcd and garbage collector with SIMULATED KubeVirt, CDI, CSI and NMState).
//
// TestMain starts one sandbox with the operator's manager in-process (its
// log captured at the most verbose level, for the secrets test) and builds
// cmd/manager once; the kill and fail-over tests run that binary as child
// processes (kill -9 is the honest abrupt stop) on a second sandbox, so the
// in-process manager never competes with them.
//
// Environment:
//
//	RELIABILITY_N=n   Wukongs in the manager-kill test (default 30)
//	RELIABILITY_KILLS=n  abrupt manager kills in that test (default 4)
//
// Run: cd test && go test ./reliability/ -count=1 -v
package reliability_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/novasphere/wukong/operator/manager"
	"github.com/novasphere/wukong/test/fixture"
	"github.com/novasphere/wukong/test/sandbox"
	"github.com/novasphere/wukong/testenv"
)

var (
	// sbA is the main sandbox; the in-process manager reconciles it.
	sbA *sandbox.Sandbox
	// k is a direct client on sbA with the manager's scheme.
	k client.Client
	// scheme knows core, Wukong, KubeVirt, CDI, Multus and NMState types.
	scheme *runtime.Scheme
	// mgrLog holds everything the in-process manager logged (V(5) and up).
	mgrLog = &fixture.SyncBuffer{}
	// mgrDone receives the in-process manager's exit; it must not fire
	// while tests run.
	mgrDone = make(chan error, 1)
	// managerBin is cmd/manager built once for the child-process tests.
	managerBin string
	// nWukongs is RELIABILITY_N; nKills is RELIABILITY_KILLS.
	nWukongs = envInt("RELIABILITY_N", 30)
	nKills   = envInt("RELIABILITY_KILLS", 4)
)

const timeout = 90 * time.Second

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// Verbose development logging into a buffer the secrets test scans.
	ctrl.SetLogger(zap.New(zap.WriteTo(mgrLog), zap.UseDevMode(true), zap.Level(zapcore.Level(-5))))

	tmp, err := os.MkdirTemp("", "wukong-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if managerBin, err = buildManager(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 1
	}
	if scheme, err = manager.NewScheme(); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	if sbA, err = sandbox.Start(ctx, sandbox.Options{LogWriter: io.Discard}); err != nil {
		fmt.Fprintln(os.Stderr, "reliability: starting sandbox:", err)
		return 1
	}
	defer func() { _ = sbA.Stop() }()
	defer stopSharedSandbox()
	mgr, err := manager.New(sbA.Config, manager.Options{MetricsAddr: "0", ProbeAddr: "0", LeaderElectionNamespace: "default"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability: creating manager:", err)
		return 1
	}
	mgrCtx, mgrCancel := context.WithCancel(ctx)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	defer func() {
		mgrCancel()
		select {
		case err := <-mgrDone:
			if err != nil {
				fmt.Fprintln(os.Stderr, "manager stopped with:", err)
			}
		case <-time.After(30 * time.Second):
		}
	}()
	if k, err = newClient(sbA.Config); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 1
	}
	fmt.Printf("reliability: manager built, sandbox (SIMULATED KubeVirt/CDI/CSI/NMState) and in-process operator started in %s\n",
		time.Since(start).Round(time.Millisecond))
	return m.Run()
}

func newClient(cfg *rest.Config) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 200, 400
	return client.New(cfg, client.Options{Scheme: scheme})
}

// buildManager builds cmd/manager into dir.
func buildManager(dir string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "manager")
	cmd := exec.Command("go", "build", "-o", out, "github.com/novasphere/wukong/operator/cmd/manager")
	cmd.Dir = filepath.Join(root, "operator")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the manager: %w\n%s", err, b)
	}
	return out, nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

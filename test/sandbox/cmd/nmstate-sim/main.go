// Command nmstate-sim plays kubernetes-nmstate on a running cluster that has
// no nmstate (nmstate is packaged and served nowhere here): it answers
// NodeNetworkConfigurationPolicies as the sandbox does (package sandbox,
// SimulateNMState) and changes nothing on the nodes. make local-cluster-up
// runs it next to the real KubeVirt, CDI and Multus so that a Wukong's
// NodeBridge becomes Ready; the bridge itself is made on the node by the CNI
// bridge plugin when the first pod attaches.
//
// Usage:
//
//	nmstate-sim [--kubeconfig FILE] [--interval 1s] [--v]
//
// The cluster is --kubeconfig's, else $KUBECONFIG's, else the in-cluster
// one. It runs until SIGINT or SIGTERM and exits 1 naming what failed (the
// cluster lacks the NMState CRDs, no kubeconfig).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/novasphere/wukong/test/sandbox"
)

func main() {
	// --kubeconfig is controller-runtime's flag (pkg/client/config), which
	// also reads $KUBECONFIG.
	interval := flag.Duration("interval", time.Second, "How long a policy stays Progressing before it is Available.")
	verbose := flag.Bool("v", false, "Log every policy the simulator answers.")
	flag.Parse()
	if err := run(*interval, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "nmstate-sim:", err)
		os.Exit(1)
	}
}

func run(interval time.Duration, verbose bool) error {
	cfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("no cluster to run against (--kubeconfig, $KUBECONFIG): %w", err)
	}
	out := io.Discard
	if verbose {
		out = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(out)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return sandbox.SimulateNMState(ctx, cfg, sandbox.NMStateOptions{Interval: interval, LogWriter: os.Stderr})
}

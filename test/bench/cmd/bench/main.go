// Command bench runs the Wukong benchmark in the sandbox (see package bench)
// and prints one table; -out also writes it as JSON.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/novasphere/wukong/test/bench"
)

func main() {
	bench.MaybeRunManager() // when re-executed as the manager child
	var o bench.Options
	out := flag.String("out", "", "Write the result as JSON to this file.")
	flag.IntVar(&o.N, "n", 500, "Number of Wukongs.")
	flag.DurationVar(&o.Quiet, "quiet", 0, "Quiet period after convergence (default 20s).")
	flag.DurationVar(&o.Settle, "settle", 0, "Time the restarted manager runs after its queue drained (default 5s).")
	flag.IntVar(&o.NoiseSecrets, "noise-secrets", 0, "Unrelated 4KiB Secrets created before the manager starts (default 2000).")
	flag.IntVar(&o.NoisePVCs, "noise-pvcs", 0, "Unrelated PVCs created before the manager starts (default 500).")
	flag.IntVar(&o.Concurrency, "concurrency", 0, "The manager's MaxConcurrentReconciles (default 4).")
	flag.IntVar(&o.Workers, "workers", 0, "Goroutines creating and deleting objects (default 8).")
	flag.Float64Var(&o.ImportStep, "import-step", 0, "CDI simulator import progress per tick in percent (sandbox default 10).")
	flag.DurationVar(&o.ImportInterval, "import-interval", 0, "CDI simulator tick (sandbox default 200ms).")
	flag.DurationVar(&o.Timeout, "timeout", 0, "Bound on each wait (default 10m, or 3s per Wukong above 200).")
	flag.DurationVar(&o.Poll, "poll", 0, "How often convergence is checked (default 500ms, or 2ms per Wukong above 250).")
	flag.BoolVar(&o.OneSandbox, "one-sandbox", false, "Run floor and operator phases in one sandbox instead of a fresh one each.")
	quiet := flag.Bool("q", false, "Do not print progress.")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	if !*quiet {
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	bench.WriteTable(os.Stdout, res)
	if *out != "" {
		if err := bench.WriteJSON(*out, res); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", *out)
	}
}

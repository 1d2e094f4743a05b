// Command sandbox runs the Wukong operator against an embedded local control
// plane: a real kube-apiserver and etcd, kube-controller-manager for garbage
// collection, kube-scheduler, KubeVirt's and CDI's own admission webhooks,
// and SIMULATED KubeVirt controllers, CDI importer, CSI and NMState (see
// package sandbox). It applies examples/, shows the Wukongs' phases as they change
// and runs until Ctrl-C, or with --exit-when-ready until every applied Wukong
// is Ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/manager"
	"github.com/novasphere/wukong/test/examples"
	"github.com/novasphere/wukong/test/sandbox"
)

func main() {
	var (
		examplesDir  = flag.String("examples", "examples", "Folder of manifests to apply.")
		skipExamples = flag.Bool("skip-examples", false, "Apply nothing; just run the control plane and the operator.")
		kubeconfig   = flag.String("write-kubeconfig", "", "Where to write the admin kubeconfig, once everything serves; removed when it stops (default: a temporary file).")
		namespace    = flag.String("namespace", "default", "Namespace the examples are applied to.")
		exitReady    = flag.Bool("exit-when-ready", false, "Exit 0 once every applied Wukong is Ready; exit 1 if not within --timeout.")
		timeout      = flag.Duration("timeout", 5*time.Minute, "With --exit-when-ready: how long to wait.")
		verbose      = flag.Bool("v", false, "Show the operator's and simulators' logs.")
		importEvery  = flag.Duration("import-interval", 0, "Time between two steps of a simulated CDI import (default 200ms).")
		importStep   = flag.Float64("import-step", 0, "Import progress per step, in percent (default 10).")
	)
	flag.Parse()
	opts := sandbox.Options{KubeconfigPath: *kubeconfig, ImportInterval: *importEvery, ImportStep: *importStep}
	if err := run(opts, *examplesDir, *skipExamples, *namespace, *exitReady, *timeout, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func run(opts sandbox.Options, examplesDir string, skipExamples bool, namespace string, exitReady bool, timeout time.Duration, verbose bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	go func() {
		// After the first signal, a second one kills at once (the default
		// action); the kernel then kills the control plane (sandbox.Stop).
		<-ctx.Done()
		stop()
	}()
	logOut := devNull()
	if verbose {
		logOut = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logOut)))

	fmt.Println("Starting the sandbox:")
	fmt.Println("  real:      kube-apiserver + etcd, kube-controller-manager, kube-scheduler, KubeVirt's and CDI's admission webhooks and CRDs")
	fmt.Println("  SIMULATED: KubeVirt controllers and launcher, CDI importer, CSI storage, NMState, nodes ...")
	opts.LogWriter = logOut
	// The sandbox runs the operator, and stops it before the control
	// plane (a client still watching would delay the API server's exit).
	opts.Operator = func(cfg *rest.Config) (ctrl.Manager, error) {
		return manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0"})
	}
	// Start returns, and writes the kubeconfig, once everything serves.
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		return err
	}
	for _, msg := range sb.AdmissionUnavailable {
		fmt.Fprintln(os.Stderr, "sandbox: WARNING:", msg)
	}
	defer func() {
		if err := sb.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "sandbox: stopping:", err)
			return
		}
		fmt.Println("Control plane stopped.")
	}()
	c, err := client.New(sb.Config, client.Options{Scheme: sb.Operator.GetScheme()})
	if err != nil {
		return err
	}
	fmt.Printf("Ready: admission webhooks, simulators and operator serving. Kubeconfig: %s\n  try: kubectl --kubeconfig %s get wk -A\n", sb.KubeconfigPath, sb.KubeconfigPath)

	var names []string
	if !skipExamples {
		objs, err := examples.Load(examplesDir)
		if err != nil {
			return err
		}
		if err := examples.LabelNamespace(ctx, c, namespace); err != nil {
			return err
		}
		if err := examples.Apply(ctx, c, namespace, objs); err != nil {
			return err
		}
		names = examples.Wukongs(objs)
		fmt.Printf("Applied %d objects from %s (%d Wukongs) to namespace %s.\n", len(objs), examplesDir, len(names), namespace)
	}

	deadline := time.After(timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nStopping the operator and the control plane (Ctrl-C again kills it at once) ...")
			return nil
		case <-sb.Done():
			return sb.Err()
		case <-deadline:
			if exitReady {
				printSummary(ctx, c)
				return fmt.Errorf("not every Wukong was Ready within %s", timeout)
			}
		case <-tick.C:
		}
		list := &v1alpha1.WukongList{}
		if err := c.List(ctx, list); err != nil {
			continue
		}
		ready := 0
		for i := range list.Items {
			w := &list.Items[i]
			line := describe(w)
			key := w.Namespace + "/" + w.Name
			if last[key] != line {
				fmt.Printf("%s  %-20s %s\n", time.Now().Format("15:04:05"), key, line)
				last[key] = line
			}
			if meta.IsStatusConditionTrue(w.Status.Conditions, v1alpha1.ReadyCondition) && w.Status.ObservedGeneration == w.Generation {
				ready++
			}
		}
		if exitReady && len(names) > 0 && ready == len(list.Items) && len(list.Items) >= len(names) {
			printSummary(ctx, c)
			fmt.Printf("All %d Wukongs are Ready.\n", ready)
			return nil
		}
	}
}

// describe is one line per Wukong: phase, node, IPs and the Ready reason.
func describe(w *v1alpha1.Wukong) string {
	var ips []string
	for _, n := range w.Status.Networks {
		if n.IPAddress != "" {
			ips = append(ips, n.Name+"="+n.IPAddress)
		}
	}
	var vols []string
	for _, v := range w.Status.Volumes {
		s := v.Name + ":" + v.Phase
		if v.Progress != "" && v.Phase != "Bound" {
			s += "(" + v.Progress + ")"
		}
		vols = append(vols, s)
	}
	ready := meta.FindStatusCondition(w.Status.Conditions, v1alpha1.ReadyCondition)
	why := ""
	if ready != nil && ready.Status != "True" {
		why = " — " + ready.Reason + ": " + ready.Message
	}
	phase := string(w.Status.Phase)
	if phase == "" {
		phase = "-"
	}
	return fmt.Sprintf("%-8s node=%s ip=[%s] disks=[%s]%s", phase, w.Status.NodeName, strings.Join(ips, " "), strings.Join(vols, " "), why)
}

func printSummary(ctx context.Context, c client.Client) {
	list := &v1alpha1.WukongList{}
	if err := c.List(ctx, list); err != nil {
		return
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	fmt.Println("\nNAME                 PHASE    NODE     READY")
	for _, w := range list.Items {
		ready := "Unknown"
		if c := meta.FindStatusCondition(w.Status.Conditions, v1alpha1.ReadyCondition); c != nil {
			ready = string(c.Status) + " (" + c.Reason + ")"
		}
		fmt.Printf("%-20s %-8s %-8s %s\n", w.Name, w.Status.Phase, w.Status.NodeName, ready)
	}
}

func devNull() *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return os.Stderr
	}
	return f
}

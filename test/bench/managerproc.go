package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/manager"
)

// The manager runs in a child process (the bench binary re-executed with
// these variables set) so its heap and RSS are its own, not the sandbox's.
const (
	envChild       = "WUKONG_BENCH_MANAGER"
	envKubeconfig  = "WUKONG_BENCH_KUBECONFIG"
	envConcurrency = "WUKONG_BENCH_CONCURRENCY"
	readyPrefix    = "BENCH-MANAGER-READY "
)

// clientQPS and clientBurst are set on every client the bench creates (the
// manager's included) so client-side rate limiting does not shape results.
const (
	clientQPS   = 500
	clientBurst = 1000
)

// MaybeRunManager runs the Wukong manager and exits when this process was
// started as the bench's manager child. Call it first thing in main (and in
// TestMain); it returns at once otherwise.
func MaybeRunManager() {
	if os.Getenv(envChild) != "1" {
		return
	}
	if err := runManagerChild(); err != nil {
		fmt.Fprintln(os.Stderr, "bench manager:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ManagerStats is what the child reports on /stats.
type ManagerStats struct {
	// HeapAlloc is runtime.MemStats.HeapAlloc right after runtime.GC().
	HeapAlloc uint64 `json:"heapAllocBytes"`
	HeapInuse uint64 `json:"heapInuseBytes"`
	// RSS is VmRSS from /proc/self/status.
	RSS        uint64 `json:"rssBytes"`
	Goroutines int    `json:"goroutines"`
	// Requests counted at the manager's client transport since start.
	Requests Requests `json:"requests"`
	// Cache is the number of objects per kind in the informer cache.
	Cache map[string]int `json:"cache"`
	// Reconciles is controller_runtime_reconcile_total{controller="wukong"}.
	Reconciles float64 `json:"reconciles"`
	// QueueDepth is workqueue_depth{name="wukong"}.
	QueueDepth float64 `json:"queueDepth"`
	// ReconcileTime is controller_runtime_reconcile_time_seconds{controller="wukong"}.
	ReconcileTime Histogram `json:"reconcileTime"`
}

func runManagerChild() error {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(envKubeconfig))
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	count := newCounter()
	cfg = count.instrument(cfg)
	conc, _ := strconv.Atoi(os.Getenv(envConcurrency))
	mgr, err := manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0", MaxConcurrentReconciles: conc})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	syncCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		return errors.New("caches did not sync")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := childStats(r.Context(), mgr.GetCache(), count)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println(readyPrefix + ln.Addr().String())
	err = <-done
	_ = srv.Close()
	return err
}

func childStats(ctx context.Context, c client.Reader, count *counter) (*ManagerStats, error) {
	st := &ManagerStats{Requests: count.snapshot(), Cache: map[string]int{}}
	lists := map[string]client.ObjectList{
		"Wukong": &v1alpha1.WukongList{}, "Secret": &corev1.SecretList{},
		"PersistentVolumeClaim": &corev1.PersistentVolumeClaimList{}, "VirtualMachine": &kubevirtv1.VirtualMachineList{},
		"VirtualMachineInstance": &kubevirtv1.VirtualMachineInstanceList{}, "DataVolume": &cdiv1.DataVolumeList{},
		"NetworkAttachmentDefinition":    &nadv1.NetworkAttachmentDefinitionList{},
		"NodeNetworkConfigurationPolicy": &nmstatev1.NodeNetworkConfigurationPolicyList{},
	}
	for kind, l := range lists {
		if err := c.List(ctx, l); err != nil {
			return nil, fmt.Errorf("listing %s from the cache: %w", kind, err)
		}
		st.Cache[kind] = lenOf(l)
	}
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return nil, err
	}
	wukong := map[string]string{"controller": "wukong"}
	for _, f := range families {
		switch f.GetName() {
		case "controller_runtime_reconcile_total":
			st.Reconciles = sumFrom(f, wukong)
		case "workqueue_depth":
			st.QueueDepth = sumFrom(f, map[string]string{"name": "wukong"})
		case "controller_runtime_reconcile_time_seconds":
			st.ReconcileTime = histogramFrom(f, wukong)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.HeapAlloc, st.HeapInuse, st.Goroutines = ms.HeapAlloc, ms.HeapInuse, runtime.NumGoroutine()
	st.RSS = selfRSS()
	return st, nil
}

func lenOf(l client.ObjectList) int {
	switch l := l.(type) {
	case *v1alpha1.WukongList:
		return len(l.Items)
	case *corev1.SecretList:
		return len(l.Items)
	case *corev1.PersistentVolumeClaimList:
		return len(l.Items)
	case *kubevirtv1.VirtualMachineList:
		return len(l.Items)
	case *kubevirtv1.VirtualMachineInstanceList:
		return len(l.Items)
	case *cdiv1.DataVolumeList:
		return len(l.Items)
	case *nadv1.NetworkAttachmentDefinitionList:
		return len(l.Items)
	case *nmstatev1.NodeNetworkConfigurationPolicyList:
		return len(l.Items)
	}
	return -1
}

// selfRSS is VmRSS of this process in bytes (0 if unknown).
func selfRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// managerProc is a running manager child.
type managerProc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
	hc   *http.Client
}

// startManager re-executes this binary as the manager against kubeconfig and
// waits until its caches are synced. Its stderr goes to logw.
func startManager(ctx context.Context, kubeconfig string, concurrency int, logw io.Writer) (*managerProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self) // #nosec G204 -- re-executes this binary
	cmd.Env = append(os.Environ(), envChild+"=1", envKubeconfig+"="+kubeconfig,
		envConcurrency+"="+strconv.Itoa(concurrency), "GOMAXPROCS="+strconv.Itoa(runtime.NumCPU()))
	cmd.Stderr = logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the manager process: %w", err)
	}
	p := &managerProc{cmd: cmd, done: make(chan error, 1), hc: &http.Client{Timeout: time.Minute}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), readyPrefix); ok {
				addr <- a
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case p.addr = <-addr:
		return p, nil
	case err := <-p.done:
		return nil, fmt.Errorf("the manager process exited before it was ready: %w", err)
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		return nil, errors.New("the manager process was not ready within 2m")
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, ctx.Err()
	}
}

// stats fetches the child's /stats (which runs a GC first).
func (p *managerProc) stats(ctx context.Context) (*ManagerStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/stats", nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("manager /stats: %s: %s", resp.Status, b)
	}
	st := &ManagerStats{}
	return st, json.NewDecoder(resp.Body).Decode(st)
}

// stop sends SIGTERM and waits for the child to exit.
func (p *managerProc) stop() error {
	if p == nil || p.cmd.Process == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.cmd.Process = nil
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() != 0 {
			return fmt.Errorf("manager process: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		if err := <-p.done; err == nil {
			return errors.New("manager process did not stop within 30s")
		}
		p.cmd.Process = nil
		return errors.New("manager process did not stop within 30s; killed")
	}
}

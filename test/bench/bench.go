package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/manager"
	"github.com/novasphere/wukong/test/sandbox"
)

// Namespaces the benchmark uses.
const (
	FloorNamespace    = "bench-floor"
	OperatorNamespace = "bench-op"
	NoiseNamespace    = "bench-noise"
	StalledNamespace  = "bench-stalled"
)

// Options configure Run. Zero values take the defaults in parentheses.
type Options struct {
	// N is the number of Wukongs (500).
	N int
	// Quiet is the quiet period after convergence (20s).
	Quiet time.Duration
	// Settle is how long the restarted manager runs after it reconciled
	// every Wukong and its queue drained, before writes are counted (5s).
	Settle time.Duration
	// NoiseSecrets unrelated Secrets of NoiseSecretBytes each (2000, 4096)
	// and NoisePVCs unrelated PVCs (500) exist before the manager starts.
	NoiseSecrets, NoiseSecretBytes, NoisePVCs int
	// Concurrency is the manager's MaxConcurrentReconciles (4, its default).
	Concurrency int
	// Workers is how many goroutines create and delete objects (8).
	Workers int
	// ImportStep and ImportInterval tune the CDI simulator (sandbox defaults).
	ImportStep     float64
	ImportInterval time.Duration
	// Timeout bounds each wait (10m, or 3s per Wukong above 200: the
	// sandbox's KubeVirt simulator starts VMs on one worker; at N=1000 on
	// two loaded cores 1.2s per Wukong was not enough).
	Timeout time.Duration
	// Poll is how often convergence is checked (500ms, or 2ms per Wukong
	// above 250: listing 1000 Wukongs every 500ms costs the shared cores
	// more than it measures).
	Poll time.Duration
	// Log receives progress lines (io.Discard).
	Log io.Writer
	// OneSandbox runs both phases in one sandbox (namespaces apart) instead
	// of a fresh one each; faster, for the harness's own test.
	OneSandbox bool
	// StalledWukongs Wukongs (20) with StalledDisks disks each (16), all
	// naming a missing StorageClass, measure what Stalled Wukongs cost
	// (OperatorPhase.Stalled).
	StalledWukongs, StalledDisks int
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.N, 500)
	def(&o.NoiseSecrets, 2000)
	def(&o.NoiseSecretBytes, 4096)
	def(&o.NoisePVCs, 500)
	def(&o.Concurrency, 4)
	def(&o.Workers, 8)
	def(&o.StalledWukongs, 20)
	def(&o.StalledDisks, 16)
	if o.Quiet <= 0 {
		o.Quiet = 20 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = max(10*time.Minute, time.Duration(o.N)*3*time.Second)
	}
	if o.Poll <= 0 {
		o.Poll = max(500*time.Millisecond, time.Duration(o.N)*2*time.Millisecond)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Timing is a convergence or deletion time, in seconds.
type Timing struct {
	// Batch1 is N/4 objects from create to done, Batch2 the remaining 3N/4
	// created on top; Total is their sum.
	Batch1 float64 `json:"batch1Seconds,omitempty"`
	Batch2 float64 `json:"batch2Seconds,omitempty"`
	Total  float64 `json:"totalSeconds"`
}

// FloorPhase is the plain-client run.
type FloorPhase struct {
	Converge Timing `json:"converge"`
	// Client counts the floor's own writer client (its creates).
	Client Requests `json:"client"`
	// APIServer is apiserver_request_total from first create to all Ready,
	// minus the bench's polling client: floor client + simulators + GC.
	APIServer Requests `json:"apiServer"`
	Delete    Timing   `json:"delete"`
}

// MemoryPoint is the manager's memory and cache at one moment.
type MemoryPoint struct {
	Wukongs   int            `json:"wukongs"`
	Noise     bool           `json:"noise"`
	HeapAlloc uint64         `json:"heapAllocBytes"`
	RSS       uint64         `json:"rssBytes"`
	Cache     map[string]int `json:"cache"`
}

// OperatorPhase is the run with the Wukong manager.
type OperatorPhase struct {
	Converge Timing `json:"converge"`
	// Manager counts the manager's client transport from first create to
	// all Ready; APIServer as in FloorPhase (includes the bench's creates
	// of the Wukongs themselves, the simulators and the GC).
	Manager   Requests `json:"manager"`
	APIServer Requests `json:"apiServer"`
	// QuietManager is the first manager's requests during the quiet period;
	// ResyncManager all requests of the restarted manager (initial list,
	// watches, one reconcile of every Wukong, settle); APIServerAtRest
	// apiserver_request_total over quiet period + restart + settle, from
	// RestAfterSeconds on.
	QuietSeconds    float64  `json:"quietSeconds"`
	QuietManager    Requests `json:"quietManager"`
	ResyncManager   Requests `json:"resyncManager"`
	ResyncSeconds   float64  `json:"resyncSeconds"`
	APIServerAtRest Requests `json:"apiServerAtRest"`
	// RestAfterSeconds is how long after all Wukongs were Ready the API
	// server first went Settle without a write other than Heartbeats (the
	// start of APIServerAtRest's window; at most Timeout).
	RestAfterSeconds float64 `json:"restAfterSeconds"`
	// Memory at: 0 Wukongs without noise, 0 with noise, N/4, N.
	Memory []MemoryPoint `json:"memory"`
	// ReconcileTime is the first manager's histogram (convergence + quiet);
	// ResyncReconcileTime the restarted manager's.
	ReconcileTime       Histogram `json:"reconcileTime"`
	ResyncReconcileTime Histogram `json:"resyncReconcileTime"`
	Delete              Timing    `json:"delete"`
	// Events counts the Events (events.k8s.io) in the operator's namespace
	// once all are Ready, by "type reason" ("Normal Running"): which
	// transitions the Event writes came from.
	Events map[string]int `json:"events"`
	// Stalled is what Stalled Wukongs cost the restarted manager.
	Stalled StalledPhase `json:"stalled"`
}

// StalledPhase measures Wukongs Stalled on a missing StorageClass (issue 28:
// 20 of them with 16 disks made 320 PVC GETs a minute, forever). The
// requests per Stalled Wukong per hour are extrapolated from measured
// passes and the manager's retry schedule, which no benchmark can wait an
// hour for: a Wukong's first passes (until Stalled), then one more pass of
// each (started by an annotation change, which reads what a timed retry
// reads and writes nothing), times the passes an hour the schedule makes.
type StalledPhase struct {
	Wukongs int `json:"wukongs"`
	Disks   int `json:"disksPerWukong"`
	// First is the manager's requests from creating the Wukongs until all
	// are Stalled (first passes, status writes, Events), with Reconciles
	// the passes it took.
	First           Requests `json:"first"`
	FirstReconciles float64  `json:"firstReconciles"`
	// Retry is the manager's requests for one more pass of each, with the
	// passes it took.
	Retry           Requests `json:"retry"`
	RetryReconciles float64  `json:"retryReconciles"`
	// Idle is the manager's requests over IdleSeconds after that (the
	// timed retries are a minute or more away).
	IdleSeconds float64  `json:"idleSeconds"`
	Idle        Requests `json:"idle"`
	// PassesFirstHour and PassesPerHour are the passes of one Wukong
	// Stalled for an hour, and in each hour after, by the retry schedule
	// (manager.DefaultStalledRetryBase doubling to DefaultStalledRetryMax).
	PassesFirstHour int `json:"passesFirstHour"`
	PassesPerHour   int `json:"passesPerHour"`
	// RequestsFirstHour is First per Wukong plus the later passes of the
	// first hour at Retry's cost per pass; RequestsPerHour the passes of
	// an hour after at that cost.
	RequestsFirstHour float64 `json:"requestsPerStalledWukongFirstHour"`
	RequestsPerHour   float64 `json:"requestsPerStalledWukongPerHour"`
}

// stalledPasses counts the passes of one Wukong Stalled at 0 between from
// and to, by the manager's retry rule (the wait is as long as it has been
// Stalled, at least base, at most limit).
func stalledPasses(base, limit, from, to time.Duration) int {
	n := 0
	for t := time.Duration(0); t < to; t += min(max(t, base), limit) {
		if t >= from {
			n++
		}
	}
	return n
}

// Env describes where the benchmark ran.
type Env struct {
	NumCPU     int               `json:"numCPU"`
	GOMAXPROCS int               `json:"gomaxprocs"`
	GoVersion  string            `json:"goVersion"`
	GOOS       string            `json:"goos"`
	GOARCH     string            `json:"goarch"`
	APIServer  string            `json:"kubeAPIServer"`
	Modules    map[string]string `json:"modules"`
	// LoadStart and LoadEnd are /proc/loadavg's 1, 5 and 15 minute load
	// averages when the run started and ended: other work on the same
	// cores shows here (empty where /proc is missing).
	LoadStart string `json:"loadAvgStart,omitempty"`
	LoadEnd   string `json:"loadAvgEnd,omitempty"`
}

// Result is one benchmark run.
type Result struct {
	Env      Env           `json:"env"`
	Options  ResultOptions `json:"options"`
	Rows     []Row         `json:"rows"`
	Floor    FloorPhase    `json:"floor"`
	Operator OperatorPhase `json:"operator"`
	Seconds  float64       `json:"elapsedSeconds"`
	Started  time.Time     `json:"started"`
}

// ResultOptions are the options as recorded in the JSON.
type ResultOptions struct {
	N                int     `json:"n"`
	QuietSeconds     float64 `json:"quietSeconds"`
	SettleSeconds    float64 `json:"settleSeconds"`
	NoiseSecrets     int     `json:"noiseSecrets"`
	NoiseSecretBytes int     `json:"noiseSecretBytes"`
	NoisePVCs        int     `json:"noisePVCs"`
	Concurrency      int     `json:"maxConcurrentReconciles"`
	Workers          int     `json:"clientWorkers"`
	ImportStep       float64 `json:"importStep,omitempty"`
	ImportInterval   string  `json:"importInterval,omitempty"`
	TimeoutSeconds   float64 `json:"timeoutSeconds"`
	PollSeconds      float64 `json:"pollSeconds"`
	ClientQPS        int     `json:"clientQPS"`
	ClientBurst      int     `json:"clientBurst"`
	OneSandbox       bool    `json:"oneSandbox"`
}

// Run runs the floor phase, then the operator phase, each in a fresh
// sandbox, and returns the result with its table rows.
func Run(ctx context.Context, o Options) (*Result, error) {
	o = o.withDefaults()
	start := time.Now()
	res := &Result{Env: environment(), Started: start, Options: ResultOptions{
		N: o.N, QuietSeconds: o.Quiet.Seconds(), SettleSeconds: o.Settle.Seconds(),
		NoiseSecrets: o.NoiseSecrets, NoiseSecretBytes: o.NoiseSecretBytes, NoisePVCs: o.NoisePVCs,
		Concurrency: o.Concurrency, Workers: o.Workers, ImportStep: o.ImportStep,
		TimeoutSeconds: o.Timeout.Seconds(), PollSeconds: o.Poll.Seconds(),
		ClientQPS: clientQPS, ClientBurst: clientBurst, OneSandbox: o.OneSandbox,
	}}
	if o.ImportInterval > 0 {
		res.Options.ImportInterval = o.ImportInterval.String()
	}
	r := &runner{o: o}
	defer r.stopShared()
	if err := r.floor(ctx, &res.Floor, &res.Env); err != nil {
		return nil, fmt.Errorf("floor phase: %w", err)
	}
	if err := r.operator(ctx, &res.Operator); err != nil {
		return nil, fmt.Errorf("operator phase: %w", err)
	}
	res.Seconds = time.Since(start).Seconds()
	res.Env.LoadEnd = loadAvg()
	res.Rows = rows(res)
	return res, nil
}

type runner struct {
	o      Options
	start  time.Time
	shared *sandbox.Sandbox
}

func (r *runner) stopShared() {
	if r.shared != nil {
		_ = r.shared.Stop()
	}
}

func (r *runner) logf(format string, args ...any) {
	if r.start.IsZero() {
		r.start = time.Now()
	}
	_, _ = fmt.Fprintf(r.o.Log, "[bench %6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// clients of one phase: driver (creates and deletes what the user or the
// floor would) and poller (watches progress; subtracted from API server
// counts). Both have the bench's QPS and their own counters.
type clients struct {
	driver, poller         client.Client
	driverCount, pollCount *counter
}

func newClients(cfg *rest.Config) (*clients, error) {
	scheme, err := manager.NewScheme()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	cs := &clients{driverCount: newCounter(), pollCount: newCounter()}
	if cs.driver, err = client.New(cs.driverCount.instrument(cfg), client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if cs.poller, err = client.New(cs.pollCount.instrument(cfg), client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	return cs, nil
}

// startSandbox starts a sandbox; stop stops it unless it is the shared one.
func (r *runner) startSandbox(ctx context.Context) (sb *sandbox.Sandbox, stop func(), err error) {
	if r.shared != nil {
		return r.shared, func() {}, nil
	}
	sb, err = sandbox.Start(ctx, sandbox.Options{
		ImportStep: r.o.ImportStep, ImportInterval: r.o.ImportInterval, LogWriter: io.Discard,
	})
	if err != nil {
		return nil, nil, err
	}
	if r.o.OneSandbox {
		r.shared = sb
		return sb, func() {}, nil
	}
	return sb, func() { _ = sb.Stop() }, nil
}

func batches(n int) [][2]int {
	q := n / 4
	if q < 1 {
		q = 1
	}
	return [][2]int{{0, q}, {q, n}}
}

// floor creates the children directly, waits for every VM to run, then
// deletes them directly and waits for every child to be gone.
func (r *runner) floor(ctx context.Context, ph *FloorPhase, env *Env) error {
	r.logf("floor: starting sandbox")
	sb, stopSandbox, err := r.startSandbox(ctx)
	if err != nil {
		return err
	}
	defer stopSandbox()
	if dc, err := discovery.NewDiscoveryClientForConfig(sb.Config); err == nil {
		if v, err := dc.ServerVersion(); err == nil {
			env.APIServer = v.GitVersion
		}
	}
	cs, err := newClients(sb.Config)
	if err != nil {
		return err
	}
	if err := createNamespace(ctx, cs.driver, FloorNamespace); err != nil {
		return err
	}
	api0, err := scrapeAPIServer(ctx, sb.Config)
	if err != nil {
		return err
	}
	drv0, poll0 := cs.driverCount.snapshot(), cs.pollCount.snapshot()
	for b, rg := range batches(r.o.N) {
		t0 := time.Now()
		err := parallel(ctx, rg[0], rg[1], r.o.Workers, func(i int) error {
			objs, err := floorObjects(FloorNamespace, i)
			if err != nil {
				return err
			}
			for _, o := range objs {
				if err := cs.driver.Create(ctx, o); err != nil {
					return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		r.logf("floor: batch %d: created %d machines' children", b+1, rg[1]-rg[0])
		if err := r.waitFor(ctx, "floor VMs Running", func() (bool, string, error) { return runningVMs(ctx, cs.poller, FloorNamespace, rg[1]) }); err != nil {
			return err
		}
		setBatch(&ph.Converge, b, time.Since(t0).Seconds())
	}
	api1, err := scrapeAPIServer(ctx, sb.Config)
	if err != nil {
		return err
	}
	ph.Client = cs.driverCount.snapshot().Sub(drv0)
	ph.APIServer = api1.Sub(api0).Sub(cs.pollCount.snapshot().Sub(poll0))
	r.logf("floor: all %d VMs Running in %.1fs", r.o.N, ph.Converge.Total)

	t0 := time.Now()
	err = parallel(ctx, 0, r.o.N, r.o.Workers, func(i int) error {
		objs, err := floorObjects(FloorNamespace, i)
		if err != nil {
			return err
		}
		for j := len(objs) - 1; j >= 0; j-- {
			if err := cs.driver.Delete(ctx, objs[j]); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := r.waitFor(ctx, "floor children gone", func() (bool, string, error) { return remaining(ctx, cs.poller, FloorNamespace) }); err != nil {
		return err
	}
	ph.Delete.Total = time.Since(t0).Seconds()
	r.logf("floor: all children gone in %.1fs", ph.Delete.Total)
	return nil
}

func setBatch(t *Timing, b int, s float64) {
	if b == 0 {
		t.Batch1 = s
	} else {
		t.Batch2 = s
	}
	t.Total = t.Batch1 + t.Batch2
}

// operator runs the Wukong manager in a child process: memory without and
// with noise, N/4 then N Wukongs, quiet period, restart, delete.
func (r *runner) operator(ctx context.Context, ph *OperatorPhase) (err error) {
	r.logf("operator: starting sandbox")
	sb, stopSandbox, err := r.startSandbox(ctx)
	if err != nil {
		return err
	}
	defer stopSandbox()
	logPath := filepath.Join(os.TempDir(), "wukong-bench-manager.log")
	mgrLog, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer func() { _ = mgrLog.Close() }()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (manager log: %s)", err, logPath)
		}
	}()
	cs, err := newClients(sb.Config)
	if err != nil {
		return err
	}
	for _, ns := range []string{OperatorNamespace, NoiseNamespace} {
		if err := createNamespace(ctx, cs.driver, ns); err != nil {
			return err
		}
	}
	// The administrator's node bridge the Wukongs' NICs attach to.
	if err := cs.driver.Create(ctx, nodeBridge(OperatorNamespace)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("declaring NodeBridge %s: %w", BridgeName, err)
	}
	memory := func(m *managerProc, wukongs int, noise bool) (*ManagerStats, error) {
		st, err := m.stats(ctx)
		if err != nil {
			return nil, err
		}
		ph.Memory = append(ph.Memory, MemoryPoint{Wukongs: wukongs, Noise: noise, HeapAlloc: st.HeapAlloc, RSS: st.RSS, Cache: st.Cache})
		r.logf("operator: manager at %d Wukongs (noise %v): heap %.1f MiB, RSS %.1f MiB, cache %v",
			wukongs, noise, mib(st.HeapAlloc), mib(st.RSS), st.Cache)
		return st, nil
	}

	// Baseline without noise, then noise, then the manager that runs.
	m0, err := startManager(ctx, sb.KubeconfigPath, r.o.Concurrency, mgrLog)
	if err != nil {
		return err
	}
	if _, err := memory(m0, 0, false); err != nil {
		_ = m0.stop()
		return err
	}
	if err := m0.stop(); err != nil {
		return err
	}
	if err := r.createNoise(ctx, cs.driver); err != nil {
		return err
	}
	m1, err := startManager(ctx, sb.KubeconfigPath, r.o.Concurrency, mgrLog)
	if err != nil {
		return err
	}
	defer func() { _ = m1.stop() }()
	if err := r.waitFor(ctx, "NodeBridge "+BridgeName+" Ready", func() (bool, string, error) { return bridgeReady(ctx, cs.poller) }); err != nil {
		return err
	}
	st0, err := memory(m1, 0, true)
	if err != nil {
		return err
	}
	api0, err := scrapeAPIServer(ctx, sb.Config)
	if err != nil {
		return err
	}
	poll0 := cs.pollCount.snapshot()
	for b, rg := range batches(r.o.N) {
		t0 := time.Now()
		err := parallel(ctx, rg[0], rg[1], r.o.Workers, func(i int) error {
			return cs.driver.Create(ctx, newWukong(OperatorNamespace, i))
		})
		if err != nil {
			return err
		}
		r.logf("operator: batch %d: created %d Wukongs", b+1, rg[1]-rg[0])
		if err := r.waitFor(ctx, "Wukongs Ready", func() (bool, string, error) { return readyWukongs(ctx, cs.poller, OperatorNamespace, rg[1]) }); err != nil {
			return err
		}
		setBatch(&ph.Converge, b, time.Since(t0).Seconds())
		if b == 0 {
			if _, err := memory(m1, rg[1], true); err != nil {
				return err
			}
		}
	}
	api1, err := scrapeAPIServer(ctx, sb.Config)
	if err != nil {
		return err
	}
	ph.APIServer = api1.Sub(api0).Sub(cs.pollCount.snapshot().Sub(poll0))
	r.logf("operator: all %d Wukongs Ready in %.1fs", r.o.N, ph.Converge.Total)
	stN, err := memory(m1, r.o.N, true)
	if err != nil {
		return err
	}
	ph.Manager = stN.Requests.Sub(st0.Requests)
	if ph.Events, err = eventsByReason(ctx, cs.poller, OperatorNamespace); err != nil {
		return err
	}
	r.logf("operator: Events by type and reason: %v", ph.Events)

	// At rest: quiet period, then a restarted manager re-lists and
	// reconciles everything. The API server's window starts once the
	// simulated KubeVirt and CDI have finished the writes that follow Ready
	// (a VM's status follows its VMI's, as in virt-controller), so that
	// only writes the rest period itself causes count; a loop never goes
	// quiet and is measured from the deadline on.
	apiQ0, settled, err := r.apiServerAtRest(ctx, sb.Config)
	if err != nil {
		return err
	}
	ph.RestAfterSeconds = settled.Seconds()
	r.logf("operator: API server at rest %.1fs after all Ready; quiet for %s", settled.Seconds(), r.o.Quiet)
	time.Sleep(r.o.Quiet)
	stQ, err := m1.stats(ctx)
	if err != nil {
		return err
	}
	ph.QuietSeconds = r.o.Quiet.Seconds()
	ph.QuietManager = stQ.Requests.Sub(stN.Requests)
	ph.ReconcileTime = stQ.ReconcileTime
	if err := m1.stop(); err != nil {
		return err
	}
	t0 := time.Now()
	m2, err := startManager(ctx, sb.KubeconfigPath, r.o.Concurrency, mgrLog)
	if err != nil {
		return err
	}
	defer func() { _ = m2.stop() }()
	err = r.waitFor(ctx, "restarted manager reconciled every Wukong", func() (bool, string, error) {
		st, err := m2.stats(ctx)
		if err != nil {
			return false, "", err
		}
		return int(st.Reconciles) >= r.o.N && st.QueueDepth == 0,
			fmt.Sprintf("%.0f reconciles, queue depth %.0f", st.Reconciles, st.QueueDepth), nil
	})
	if err != nil {
		return err
	}
	time.Sleep(r.o.Settle)
	stR, err := m2.stats(ctx)
	if err != nil {
		return err
	}
	ph.ResyncSeconds = time.Since(t0).Seconds()
	ph.ResyncManager = stR.Requests
	ph.ResyncReconcileTime = stR.ReconcileTime
	apiQ1, err := scrapeAPIServer(ctx, sb.Config)
	if err != nil {
		return err
	}
	ph.APIServerAtRest = apiQ1.Sub(apiQ0)
	r.logf("operator: writes at rest: quiet %d, resync %d, API server %d",
		ph.QuietManager.Writes(), ph.ResyncManager.Writes(), ph.APIServerAtRest.WritesExcept(Heartbeats...))

	if err := r.stalled(ctx, cs, m2, &ph.Stalled); err != nil {
		return err
	}

	t0 = time.Now()
	err = parallel(ctx, 0, r.o.N, r.o.Workers, func(i int) error {
		return client.IgnoreNotFound(cs.driver.Delete(ctx, newWukong(OperatorNamespace, i)))
	})
	if err != nil {
		return err
	}
	if err := r.waitFor(ctx, "Wukongs and children gone", func() (bool, string, error) { return remaining(ctx, cs.poller, OperatorNamespace) }); err != nil {
		return err
	}
	ph.Delete.Total = time.Since(t0).Seconds()
	r.logf("operator: all Wukongs and children gone in %.1fs", ph.Delete.Total)
	return nil
}

// stalled creates the Stalled Wukongs on the running manager m, measures
// their passes (StalledPhase) and deletes them.
func (r *runner) stalled(ctx context.Context, cs *clients, m *managerProc, ph *StalledPhase) error {
	ph.Wukongs, ph.Disks = r.o.StalledWukongs, r.o.StalledDisks
	if err := createNamespace(ctx, cs.driver, StalledNamespace); err != nil {
		return err
	}
	s0, err := m.stats(ctx)
	if err != nil {
		return err
	}
	err = parallel(ctx, 0, ph.Wukongs, r.o.Workers, func(i int) error {
		return cs.driver.Create(ctx, stalledWukong(StalledNamespace, i, ph.Disks))
	})
	if err != nil {
		return err
	}
	// settled: every Wukong Stalled for its generation, and the manager's
	// queue drained.
	settled := func(st *ManagerStats) (bool, string, error) {
		n, err := stalledWukongs(ctx, cs.poller, StalledNamespace)
		if err != nil {
			return false, "", err
		}
		return n >= ph.Wukongs && st.QueueDepth == 0, fmt.Sprintf("%d/%d Stalled, queue depth %.0f", n, ph.Wukongs, st.QueueDepth), nil
	}
	var s1 *ManagerStats
	err = r.waitFor(ctx, "Wukongs Stalled", func() (bool, string, error) {
		if s1, err = m.stats(ctx); err != nil {
			return false, "", err
		}
		return settled(s1)
	})
	if err != nil {
		return err
	}
	time.Sleep(r.o.Settle) // the passes a status write starts
	if s1, err = m.stats(ctx); err != nil {
		return err
	}
	ph.First, ph.FirstReconciles = s1.Requests.Sub(s0.Requests), s1.Reconciles-s0.Reconciles

	err = parallel(ctx, 0, ph.Wukongs, r.o.Workers, func(i int) error {
		w := stalledWukong(StalledNamespace, i, ph.Disks)
		patch := []byte(`{"metadata":{"annotations":{"bench.novasphere.dev/poke":"1"}}}`)
		return cs.driver.Patch(ctx, w, client.RawPatch(types.MergePatchType, patch))
	})
	if err != nil {
		return err
	}
	var s2 *ManagerStats
	err = r.waitFor(ctx, "one more pass of each Stalled Wukong", func() (bool, string, error) {
		if s2, err = m.stats(ctx); err != nil {
			return false, "", err
		}
		return s2.Reconciles-s1.Reconciles >= float64(ph.Wukongs) && s2.QueueDepth == 0,
			fmt.Sprintf("%.0f passes", s2.Reconciles-s1.Reconciles), nil
	})
	if err != nil {
		return err
	}
	time.Sleep(r.o.Settle)
	if s2, err = m.stats(ctx); err != nil {
		return err
	}
	ph.Retry, ph.RetryReconciles = s2.Requests.Sub(s1.Requests), s2.Reconciles-s1.Reconciles

	time.Sleep(r.o.Quiet)
	s3, err := m.stats(ctx)
	if err != nil {
		return err
	}
	ph.IdleSeconds, ph.Idle = r.o.Quiet.Seconds(), s3.Requests.Sub(s2.Requests)

	base, limit := manager.DefaultStalledRetryBase, manager.DefaultStalledRetryMax
	ph.PassesFirstHour = stalledPasses(base, limit, 0, time.Hour)
	ph.PassesPerHour = stalledPasses(base, limit, 23*time.Hour, 24*time.Hour)
	perPass := float64(ph.Retry.Reads()+ph.Retry.Writes()) / float64(ph.Wukongs)
	ph.RequestsFirstHour = float64(ph.First.Reads()+ph.First.Writes())/float64(ph.Wukongs) + float64(ph.PassesFirstHour-1)*perPass
	ph.RequestsPerHour = float64(ph.PassesPerHour) * perPass
	r.logf("operator: %d Stalled Wukongs (%d disks): first passes %v, one more pass each %v, idle %.0fs %v; "+
		"per Stalled Wukong: %.1f requests in the first hour (%d passes), %.1f an hour after (%d passes)",
		ph.Wukongs, ph.Disks, ph.First.ByResource, ph.Retry.ByResource, ph.IdleSeconds, ph.Idle.ByResource,
		ph.RequestsFirstHour, ph.PassesFirstHour, ph.RequestsPerHour, ph.PassesPerHour)

	return parallel(ctx, 0, ph.Wukongs, r.o.Workers, func(i int) error {
		return client.IgnoreNotFound(cs.driver.Delete(ctx, stalledWukong(StalledNamespace, i, ph.Disks)))
	})
}

// stalledWukongs counts the Wukongs of ns Stalled for their generation.
func stalledWukongs(ctx context.Context, c client.Client, ns string) (int, error) {
	list := &v1alpha1.WukongList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		w := &list.Items[i]
		if w.Status.ObservedGeneration == w.Generation && meta.IsStatusConditionTrue(w.Status.Conditions, v1alpha1.StalledCondition) {
			n++
		}
	}
	return n, nil
}

func (r *runner) createNoise(ctx context.Context, c client.Client) error {
	t0 := time.Now()
	err := parallel(ctx, 0, r.o.NoiseSecrets, r.o.Workers, func(i int) error {
		return c.Create(ctx, noiseSecret(NoiseNamespace, i, r.o.NoiseSecretBytes))
	})
	if err != nil {
		return err
	}
	err = parallel(ctx, 0, r.o.NoisePVCs, r.o.Workers, func(i int) error {
		return c.Create(ctx, noisePVC(NoiseNamespace, i, sandbox.StorageClassWFFC))
	})
	if err != nil {
		return err
	}
	r.logf("operator: created %d Secrets and %d PVCs of noise in %.1fs", r.o.NoiseSecrets, r.o.NoisePVCs, time.Since(t0).Seconds())
	return nil
}

// waitFor polls check every Options.Poll until it is done, logging
// progress every 10s; it fails after Options.Timeout.
func (r *runner) waitFor(ctx context.Context, what string, check func() (done bool, progress string, err error)) error {
	deadline := time.Now().Add(r.o.Timeout)
	lastLog := time.Now()
	for {
		done, progress, err := check()
		if err != nil && !errors.Is(err, context.Canceled) {
			r.logf("%s: %v (retrying)", what, err)
		}
		if err == nil && done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s after %s", what, progress, r.o.Timeout)
		}
		if time.Since(lastLog) > 10*time.Second {
			r.logf("%s: %s", what, progress)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.o.Poll):
		}
	}
}

// apiServerAtRest polls the API server's request counters until no write
// other than Heartbeats has come for Settle, and returns the counters then
// and how long that took. After Timeout it returns the last counters, so a
// write loop is still measured.
func (r *runner) apiServerAtRest(ctx context.Context, cfg *rest.Config) (Requests, time.Duration, error) {
	start := time.Now()
	last, err := scrapeAPIServer(ctx, cfg)
	if err != nil {
		return last, 0, err
	}
	changed := start
	for time.Since(changed) < r.o.Settle && time.Since(start) < r.o.Timeout {
		select {
		case <-ctx.Done():
			return last, 0, ctx.Err()
		case <-time.After(r.o.Poll):
		}
		now, err := scrapeAPIServer(ctx, cfg)
		if err != nil {
			return last, 0, err
		}
		if now.Sub(last).WritesExcept(Heartbeats...) > 0 {
			changed = time.Now()
		}
		last = now
	}
	return last, time.Since(start), nil
}

// parallel runs f(i) for i in [from, to) on workers goroutines.
func parallel(ctx context.Context, from, to, workers int, f func(i int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next.Store(int64(from))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func createNamespace(ctx context.Context, c client.Client, name string) error {
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// eventsByReason counts the Events in ns by "type reason".
func eventsByReason(ctx context.Context, c client.Client, ns string) (map[string]int, error) {
	list := &eventsv1.EventList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing Events: %w", err)
	}
	out := map[string]int{}
	for i := range list.Items {
		out[list.Items[i].Type+" "+list.Items[i].Reason]++
	}
	return out, nil
}

// readyWukongs counts Wukongs with Ready=True for their current generation.
func readyWukongs(ctx context.Context, c client.Client, ns string, want int) (bool, string, error) {
	list := &v1alpha1.WukongList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return false, "", err
	}
	n := 0
	for i := range list.Items {
		w := &list.Items[i]
		if w.Status.ObservedGeneration == w.Generation && meta.IsStatusConditionTrue(w.Status.Conditions, v1alpha1.ReadyCondition) {
			n++
		}
	}
	return n >= want, fmt.Sprintf("%d/%d Ready", n, want), nil
}

// bridgeReady reports whether NodeBridge BridgeName is Ready for its
// current generation.
func bridgeReady(ctx context.Context, c client.Client) (bool, string, error) {
	d := &v1alpha1.NodeBridge{}
	if err := c.Get(ctx, client.ObjectKey{Name: BridgeName}, d); err != nil {
		return false, "", err
	}
	ready := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ReadyCondition)
	if ready == nil {
		return false, "no Ready condition yet", nil
	}
	return ready.Status == metav1.ConditionTrue && d.Status.ObservedGeneration == d.Generation, ready.Reason + ": " + ready.Message, nil
}

// runningVMs counts VMs KubeVirt (the simulator) reports Ready and Running.
func runningVMs(ctx context.Context, c client.Client, ns string, want int) (bool, string, error) {
	list := &kubevirtv1.VirtualMachineList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return false, "", err
	}
	n := 0
	for i := range list.Items {
		if vm := &list.Items[i]; vm.Status.Ready && vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusRunning {
			n++
		}
	}
	return n >= want, fmt.Sprintf("%d/%d Running", n, want), nil
}

// remaining counts what is left in ns of Wukongs and their children (VMs,
// VMIs, DataVolumes, PVCs, NADs, Secrets); done when zero.
func remaining(ctx context.Context, c client.Client, ns string) (bool, string, error) {
	lists := []client.ObjectList{
		&v1alpha1.WukongList{}, &kubevirtv1.VirtualMachineList{}, &kubevirtv1.VirtualMachineInstanceList{},
		&cdiv1.DataVolumeList{}, &corev1.PersistentVolumeClaimList{}, &nadv1.NetworkAttachmentDefinitionList{},
		&corev1.SecretList{},
	}
	left := 0
	for _, l := range lists {
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			return false, "", err
		}
		left += meta.LenList(l)
	}
	return left == 0, fmt.Sprintf("%d objects left", left), nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func environment() Env {
	env := Env{
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Modules: map[string]string{}, LoadStart: loadAvg(),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "k8s.io/client-go", "k8s.io/apimachinery", "k8s.io/api", "sigs.k8s.io/controller-runtime",
				"kubevirt.io/api", "kubevirt.io/containerized-data-importer-api":
				env.Modules[d.Path] = d.Version
			}
		}
	}
	for _, m := range []string{"k8s.io/client-go", "sigs.k8s.io/controller-runtime"} {
		if env.Modules[m] == "" { // go test binaries carry no dependency list
			env.Modules[m] = "unknown (no build info)"
		}
	}
	return env
}

// loadAvg is the first three fields of /proc/loadavg ("" if unreadable).
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/novasphere/wukong/testenv"
)

const (
	// SimulatedAnnotation marks every object the sandbox creates.
	SimulatedAnnotation = "sandbox.novasphere.dev/simulated"
	// LogPrefix starts every line the simulators log.
	LogPrefix = "[simulated] "

	// StorageClassStandard is the default class: Immediate binding, expandable.
	StorageClassStandard = "standard"
	// StorageClassWFFC binds on first consumer and is expandable.
	StorageClassWFFC = "wffc"
	// StorageClassFixed binds immediately and cannot be expanded.
	StorageClassFixed = "fixed"

	// Provisioner is the (simulated) CSI driver named by the StorageClasses.
	Provisioner = "csi.sandbox.novasphere.dev"

	// TaintKey and TaintValue form the NoSchedule taint on node-3.
	TaintKey   = "dedicated"
	TaintValue = "vms"

	defaultNodes          = 3
	defaultImportStep     = 10.0
	defaultImportInterval = 200 * time.Millisecond
	fieldManager          = "wukong-sandbox"
)

// controlPlaneStopTimeout bounds each control plane process' graceful stop
// (SIGTERM); after it the process gets SIGKILL and Stop reports an error.
const controlPlaneStopTimeout = 15 * time.Second

// Options configure Start. The zero value is a fast three-node sandbox with
// the simulators running.
type Options struct {
	// KubeconfigPath is where the admin kubeconfig is written, once the
	// sandbox is ready (see Start); default <temp dir>/kubeconfig.
	KubeconfigPath string
	// Nodes is the number of fake nodes node-1..node-N (default 3). node-3,
	// if present, carries the taint dedicated=vms:NoSchedule.
	Nodes int
	// ImportStep is the import progress in percent per tick (default 10).
	ImportStep float64
	// ImportInterval is the time between import progress ticks (default 200ms).
	ImportInterval time.Duration
	// DisableSimulators leaves only the API server, controller manager,
	// StorageClasses and Nodes running.
	DisableSimulators bool
	// ExtraCRDDirs are installed besides test/crds and operator/config/crd.
	ExtraCRDDirs []string
	// LogWriter receives the simulators' log (default os.Stderr); the
	// kube-controller-manager log goes to a file in the temp dir.
	LogWriter io.Writer
	// Operator, if set, builds a controller-runtime manager with the
	// admin config (cmd/sandbox and the e2e suite pass the Wukong
	// operator's, operator/manager.New). The sandbox runs it as one of
	// its components: Start returns, and writes the kubeconfig, only once
	// it serves too (its controllers started, its cache synced), and Stop
	// stops it first.
	Operator func(*rest.Config) (ctrl.Manager, error)
}

// Sandbox is a running simulated cluster.
type Sandbox struct {
	// Config is an admin (system:masters) REST config.
	Config *rest.Config
	// Client uses Scheme and Config.
	Client client.Client
	// Scheme knows core, KubeVirt, CDI, Multus and NMState types.
	Scheme *runtime.Scheme
	// KubeconfigPath is the admin kubeconfig file for kubectl. It exists
	// only while the sandbox serves: Start writes it last, whole, and Stop
	// removes it first.
	KubeconfigPath string
	// Nodes are the names of the fake nodes.
	Nodes []string
	// TempDir holds the kubeconfig (by default) and logs; removed by Stop.
	TempDir string
	// AdmissionUnavailable says, per admission server that cannot be built
	// here, that the sandbox runs without it (see admission.go); empty
	// when KubeVirt's and CDI's admission both run.
	AdmissionUnavailable []string
	// Operator is the manager Options.Operator built, running; nil
	// without Options.Operator.
	Operator ctrl.Manager

	env *envtest.Environment
	// adminKubeconfig is the admin kubeconfig the control-plane
	// processes use, in TempDir, written at once.
	adminKubeconfig string
	// published is the kubeconfig written to KubeconfigPath.
	published []byte
	kcm       *exec.Cmd
	kcmDone   chan struct{}
	sched     *exec.Cmd
	schedDone chan struct{}
	admission []component
	// kubevirtForwarder is where KubeVirt's webhooks are registered
	// (webhookoutage.go); nil without KubeVirt's admission server.
	kubevirtForwarder *admissionForwarder
	// simulators and operator run in this process; failed records the
	// first of them to stop on its own.
	simulators, operator *inProcess
	failed               failures
	stopOnce             sync.Once
	stopErr              error
}

// NewScheme returns a scheme with the core Kubernetes, KubeVirt, CDI, Multus
// and NMState types.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, kubevirtv1.AddToScheme, cdiv1.AddToScheme,
		nadv1.AddToScheme, nmstatev1.AddToScheme, nmstatev1beta1.AddToScheme,
		snapshotv1.AddToScheme, instancetypev1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// Start runs the API server, the controller manager, the scheduler, the
// fixtures, KubeVirt's and CDI's admission servers (admission.go), (unless
// disabled) the simulators and Options.Operator. It returns, and writes the
// kubeconfig to Options.KubeconfigPath (removing a stale one first), only
// once all of them serve (see waitServing in ready.go): a client that
// waited for either is answered as on a cluster. Stop it with Stop, also
// on error paths after a successful return.
func Start(ctx context.Context, opts Options) (_ *Sandbox, err error) {
	opts = withDefaults(opts)
	assets, err := testenv.Assets()
	if err != nil {
		return nil, err
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "wukong-sandbox-")
	if err != nil {
		return nil, err
	}
	sb := &Sandbox{Scheme: NewScheme(), TempDir: tmp, failed: failures{done: make(chan struct{})}}
	defer func() {
		if err != nil {
			_ = sb.Stop()
		}
	}()

	bins, err := writeReexecDir(filepath.Join(tmp, "bin"), assets)
	if err != nil {
		return nil, fmt.Errorf("preparing the control plane binaries: %w", err)
	}
	sb.env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths: append([]string{
			filepath.Join(root, "test", "crds"),
			filepath.Join(root, "operator", "config", "crd"),
		}, opts.ExtraCRDDirs...),
		ErrorIfCRDPathMissing: true,
		// Each process gets this long after SIGTERM before SIGKILL; Stop
		// makes both stop in about a second (see stopControlPlane).
		ControlPlaneStopTimeout:  controlPlaneStopTimeout,
		ControlPlaneStartTimeout: testenv.StartTimeout,
	}
	sb.env.ControlPlane.Etcd = &envtest.Etcd{Path: bins["etcd"]}
	api := sb.env.ControlPlane.GetAPIServer()
	api.Path = bins["kube-apiserver"]
	// On SIGTERM kube-apiserver waits for open connections, watches
	// included, for up to --request-timeout (60s) before it exits
	// (k8s.io/apiserver pkg/server/lifecycle_signals.go). A client still
	// watching (a test's own manager) would hold it that long. With
	// ShutdownSendRetryAfter it drains the in-flight requests, answers new
	// ones 429 Retry-After, and gives the rest 2s.
	api.Configure().Set("shutdown-send-retry-after", "true")
	if _, err = sb.env.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-apiserver with assets in %s: %w", assets, err)
	}
	admin, err := sb.env.AddUser(envtest.User{Name: "sandbox-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding admin user: %w", err)
	}
	sb.Config = admin.Config()
	// client-go's default of 5 requests/s would make the simulators, not
	// the operator, the bottleneck of anything bigger than a demo.
	sb.Config.QPS, sb.Config.Burst = 500, 1000
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("rendering kubeconfig: %w", err)
	}
	sb.KubeconfigPath = opts.KubeconfigPath
	if sb.KubeconfigPath == "" {
		sb.KubeconfigPath = filepath.Join(tmp, "kubeconfig")
	} else if err = os.Remove(sb.KubeconfigPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the previous kubeconfig: %w", err)
	}
	sb.adminKubeconfig = filepath.Join(tmp, "admin.kubeconfig")
	if err = os.WriteFile(sb.adminKubeconfig, kubeconfig, 0o600); err != nil {
		return nil, fmt.Errorf("writing kubeconfig: %w", err)
	}
	if sb.Client, err = client.New(sb.Config, client.Options{Scheme: sb.Scheme}); err != nil {
		return nil, err
	}
	if err = sb.startControllerManager(filepath.Join(assets, "kube-controller-manager")); err != nil {
		return nil, err
	}
	if err = sb.startScheduler(filepath.Join(assets, "kube-scheduler")); err != nil {
		return nil, err
	}
	if err = sb.createFixtures(ctx, opts.Nodes); err != nil {
		return nil, err
	}
	if err = sb.startAdmission(ctx, assets, opts.LogWriter); err != nil {
		return nil, err
	}
	cdiController := sb.running(CDIAdmissionBinary) // runs CDI's StorageProfile controller
	if err = sb.completeStorageProfiles(ctx, cdiController); err != nil {
		return nil, err
	}
	if err = sb.waitForStorageProfiles(ctx, cdiController); err != nil {
		return nil, err
	}
	if !opts.DisableSimulators {
		if err = sb.startSimulators(opts); err != nil {
			return nil, err
		}
	}
	if opts.Operator != nil {
		if sb.Operator, err = opts.Operator(sb.Config); err != nil {
			return nil, fmt.Errorf("creating the operator: %w", err)
		}
		sb.operator = runInProcess("operator", sb.Operator, sb.failed.fail)
	}
	if err = sb.waitServing(ctx); err != nil {
		return nil, err
	}
	if err = sb.publishKubeconfig(kubeconfig); err != nil {
		return nil, fmt.Errorf("writing kubeconfig: %w", err)
	}
	return sb, nil
}

// Done is closed when the operator (Options.Operator) or the simulators,
// which run in this process, stop on their own; Err then says which and
// why.
func (s *Sandbox) Done() <-chan struct{} { return s.failed.done }

// Err says why Done was closed; nil before.
func (s *Sandbox) Err() error {
	select {
	case <-s.failed.done:
		return s.failed.err
	default:
		return nil
	}
}

func withDefaults(o Options) Options {
	if o.Nodes <= 0 {
		o.Nodes = defaultNodes
	}
	if o.ImportStep <= 0 {
		o.ImportStep = defaultImportStep
	}
	if o.ImportInterval <= 0 {
		o.ImportInterval = defaultImportInterval
	}
	if o.LogWriter == nil {
		o.LogWriter = os.Stderr
	}
	return o
}

// Stop removes the kubeconfig at KubeconfigPath (if it is still the one
// Start wrote), shuts down, in order and waiting for each, the operator,
// the simulators, the admission servers, the scheduler, the controller
// manager, the API server and etcd (SIGTERM, then SIGKILL after 15s, which
// Stop reports as an error), and removes the temp dir. Clients the caller runs against the
// sandbox should be stopped first; one still watching delays the API
// server's exit by up to 2s. It is safe to call more
// than once. Without Stop (os.Exit, a test's timeout, SIGKILL) the kernel
// kills the control plane when this process ends (see reexec.go).
func (s *Sandbox) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		s.unpublishKubeconfig()
		for _, p := range []*inProcess{s.operator, s.simulators} {
			if p == nil {
				continue
			}
			if err := p.stop(); err != nil {
				errs = append(errs, err)
			}
		}
		if s.kubevirtForwarder != nil {
			_ = s.kubevirtForwarder.down()
		}
		for _, p := range append(s.admission,
			component{"kube-scheduler", s.sched, s.schedDone}, component{"kube-controller-manager", s.kcm, s.kcmDone}) {
			if p.cmd == nil || p.cmd.Process == nil {
				continue
			}
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(controlPlaneStopTimeout):
				_ = p.cmd.Process.Kill()
				<-p.done
				errs = append(errs, fmt.Errorf("%s did not stop on SIGTERM", p.name))
			}
		}
		if s.env != nil {
			if err := s.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("API server: %w", err))
			}
		}
		if s.TempDir != "" {
			_ = os.RemoveAll(s.TempDir)
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// startControllerManager runs kube-controller-manager as the admin user with
// only the garbage collector and namespace controllers, the PV/PVC
// protection controllers that remove the kubernetes.io/pv(c)-protection
// finalizers the API server adds (without them, deleted PVCs hang), and the
// clusterrole-aggregation controller that fills the default admin, edit
// and view roles (the RBAC a tenant is given), and the disruption
// controller, which keeps PodDisruptionBudgets' status current so that the
// API server's eviction subresource (pods/eviction, what `kubectl drain`
// calls) honours them. KubeVirt v1.9.0 itself creates no PDBs (its
// disruptionbudget controller only deletes those older versions made).
// The resource quota controller keeps ResourceQuotas' status.used current:
// the API server's quota admission refuses everything a quota covers while
// the quota has no usage yet ("status unknown for quota").
func (s *Sandbox) startControllerManager(binary string) error {
	cmd, done, err := s.startComponent("kube-controller-manager", binary,
		"--kubeconfig="+s.adminKubeconfig,
		"--controllers=garbage-collector-controller,namespace-controller,"+
			"persistentvolume-protection-controller,persistentvolumeclaim-protection-controller,"+
			"clusterrole-aggregation-controller,disruption-controller,resourcequota-controller",
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--concurrent-gc-syncs=5",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--v=1",
	)
	s.kcm, s.kcmDone = cmd, done
	return err
}

// startScheduler runs the real kube-scheduler (default profile) as the
// admin user: it binds the launcher pods the KubeVirt simulator creates, or
// reports why no node fits, as on any cluster.
func (s *Sandbox) startScheduler(binary string) error {
	cmd, done, err := s.startComponent("kube-scheduler", binary,
		"--kubeconfig="+s.adminKubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--v=1",
	)
	s.sched, s.schedDone = cmd, done
	return err
}

// startComponent starts a control-plane binary logging to
// <TempDir>/<name>.log, in its own process group (a Ctrl-C in the terminal
// reaches only the sandbox, which stops the control plane in order) and
// with SIGKILL as its parent-death signal (see reexec.go). It fails when the
// process exits at once (bad flags).
func (s *Sandbox) startComponent(name, binary string, args ...string) (*exec.Cmd, chan struct{}, error) {
	logFile, err := os.Create(filepath.Join(s.TempDir, name+".log"))
	if err != nil {
		return nil, nil, err
	}
	// #nosec G204 -- the binary comes from the envtest assets dir.
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, nil, fmt.Errorf("starting %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(done)
	}()
	select {
	case <-done:
		out, _ := os.ReadFile(logFile.Name())
		return cmd, done, fmt.Errorf("%s exited: %s", name, tail(string(out), 2000))
	case <-time.After(300 * time.Millisecond):
		return cmd, done, nil
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func simulatedMeta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: namespace,
		Annotations: map[string]string{SimulatedAnnotation: "true"},
	}
}

// createFixtures creates the StorageClasses, the fake Nodes and the KubeVirt
// CR.
func (s *Sandbox) createFixtures(ctx context.Context, nodes int) error {
	immediate, wffc := storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer
	classes := []struct {
		name   string
		mode   storagev1.VolumeBindingMode
		expand bool
	}{
		{StorageClassStandard, immediate, true},
		{StorageClassWFFC, wffc, true},
		{StorageClassFixed, immediate, false},
	}
	classes = append(classes, struct {
		name   string
		mode   storagev1.VolumeBindingMode
		expand bool
	}{StorageClassUnknownProvisioner, immediate, true})
	for _, c := range classes {
		provisioner := Provisioner
		if c.name == StorageClassUnknownProvisioner {
			provisioner = UnknownProvisioner
		}
		sc := &storagev1.StorageClass{
			ObjectMeta:           simulatedMeta(c.name, ""),
			Provisioner:          provisioner,
			VolumeBindingMode:    ptr.To(c.mode),
			AllowVolumeExpansion: ptr.To(c.expand),
			ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimDelete),
		}
		if c.name == StorageClassStandard {
			sc.Annotations["storageclass.kubernetes.io/is-default-class"] = "true"
		}
		if err := s.Client.Create(ctx, sc); err != nil {
			return fmt.Errorf("creating StorageClass %s: %w", c.name, err)
		}
	}
	for i := 1; i <= nodes; i++ {
		name := fmt.Sprintf("node-%d", i)
		var taints []corev1.Taint
		if i == 3 {
			taints = []corev1.Taint{{Key: TaintKey, Value: TaintValue, Effect: corev1.TaintEffectNoSchedule}}
		}
		if err := AddNode(ctx, s.Client, name, fmt.Sprintf("172.18.0.%d", i+1), nil, taints); err != nil {
			return err
		}
		s.Nodes = append(s.Nodes, name)
	}
	// The sandbox driver's VolumeSnapshotClass (snapshot.go), when
	// test/crds holds external-snapshotter's CRDs.
	if _, err := s.Client.RESTMapper().RESTMapping(gvkVolumeSnapshotClass.GroupKind(), gvkVolumeSnapshotClass.Version); err == nil {
		if err := s.createVolumeSnapshotClass(ctx); err != nil {
			return err
		}
	}
	return s.createKubeVirtCR(ctx)
}

// running says whether the admission server name was started.
func (s *Sandbox) running(name string) bool {
	for _, c := range s.admission {
		if c.name == name {
			return true
		}
	}
	return false
}

// startSimulators runs the simulators in one controller-runtime manager with
// its own client and cache.
func (s *Sandbox) startSimulators(opts Options) error {
	log := newLogger(opts.LogWriter)
	cfg, err := s.simulatorConfig()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 s.Scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("creating simulator manager: %w", err)
	}
	setups := []func(ctrl.Manager) error{
		(&storageSim{}).setup,
		(&cdiSim{step: opts.ImportStep, interval: opts.ImportInterval}).setup,
		(&kubevirtSim{}).setup,
		(&kubeletSim{}).setup,
		(&vmiReleaseSim{}).setup,
		(&nodeSim{}).setup,
		(&nmstateSim{interval: 5 * opts.ImportInterval}).setup,
	}
	// The migration simulators need KubeVirt's
	// VirtualMachineInstanceMigration CRD (test/crds, generated by
	// `kubevirt-admission crds`); without it the sandbox runs without
	// migrations and says so.
	if _, err := mgr.GetRESTMapper().RESTMapping(kubevirtv1.VirtualMachineInstanceMigrationGroupVersionKind.GroupKind(),
		kubevirtv1.VirtualMachineInstanceMigrationGroupVersionKind.Version); err == nil {
		setups = append(setups, (&migrationSim{}).setup, (&evacuationSim{}).setup)
	} else {
		log.Info("WARNING: no VirtualMachineInstanceMigration CRD (regenerate test/crds with make generate): migrations are not simulated", "error", err.Error())
	}
	// Snapshots and restores (snapshot.go) need KubeVirt's snapshot CRDs and
	// external-snapshotter's (test/crds).
	if _, err := mgr.GetRESTMapper().RESTMapping(snapshotv1.SchemeGroupVersion.WithKind("VirtualMachineSnapshot").GroupKind(), snapshotv1.SchemeGroupVersion.Version); err == nil {
		setups = append(setups, (&snapshotSim{}).setup, (&volumeSnapshotSim{}).setup, (&restoreSim{}).setup)
	} else {
		log.Info("WARNING: no VirtualMachineSnapshot CRD (regenerate test/crds with make generate): snapshots are not simulated", "error", err.Error())
	}
	// Golden images (catalog.go): CDI's DataSource and DataImportCron CRDs
	// (test/crds, by `cdi-admission crds`).
	if _, err := mgr.GetRESTMapper().RESTMapping(cdiv1.SchemeGroupVersion.WithKind("DataImportCron").GroupKind(), cdiv1.SchemeGroupVersion.Version); err == nil {
		setups = append(setups, (&dataSourceSim{}).setup, (&dataImportCronSim{}).setup)
	} else {
		log.Info("WARNING: no DataImportCron CRD (regenerate test/crds with make generate): golden images are not simulated", "error", err.Error())
	}
	for _, setup := range setups {
		if err := setup(mgr); err != nil {
			return fmt.Errorf("setting up simulator: %w", err)
		}
	}
	s.simulators = runInProcess("simulators", mgr, s.failed.fail)
	log.Info("simulators started", "nodes", s.Nodes)
	return nil
}

func newLogger(w io.Writer) logr.Logger {
	var mu sync.Mutex
	return funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		if prefix != "" {
			prefix += ": "
		}
		_, _ = fmt.Fprintf(w, "%s%s %s%s\n", LogPrefix, time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{})
}

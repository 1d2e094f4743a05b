// Package manager assembles the Wukong controller manager: scheme,
// label-filtered cache holding whole only what the operator controls, metrics with authentication and authorization,
// health probes, leader election and the reconciler. cmd/manager runs it;
// the sandbox, the e2e suite and the chart's RBAC test run it in-process.
package manager

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
	"github.com/novasphere/wukong/operator/imagesource"
	"github.com/novasphere/wukong/operator/internal/controller"
	"github.com/novasphere/wukong/operator/internal/controller/clusterimage"
	"github.com/novasphere/wukong/operator/internal/controller/nodebridge"
	"github.com/novasphere/wukong/operator/internal/controller/snapshot"
	"github.com/novasphere/wukong/operator/internal/nodenet"
)

// The metrics endpoint authenticates callers with TokenReviews and
// authorizes them with SubjectAccessReviews.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Options configure the manager; cmd/manager maps its flags onto them.
type Options struct {
	// MetricsAddr serves /metrics ("0" disables it).
	MetricsAddr string
	// SecureMetrics serves metrics over HTTPS with authn/authz (default in
	// the chart). Without it metrics are plain HTTP, for local use only.
	SecureMetrics bool
	// MetricsCertDir holds the metrics endpoint's serving certificate and
	// key (MetricsCertName, MetricsKeyName), e.g. a mounted
	// kubernetes.io/tls Secret; they are reloaded when they change (a
	// cert-manager renewal). Empty: controller-runtime generates a
	// self-signed certificate for "localhost" at each start, which no
	// scraper can verify. Set, both files must exist (New fails otherwise,
	// rather than falling back to the self-signed one).
	MetricsCertDir string
	// MetricsCertName and MetricsKeyName are the file names in
	// MetricsCertDir (default tls.crt and tls.key, a TLS Secret's keys).
	MetricsCertName, MetricsKeyName string
	// ProbeAddr serves /healthz and /readyz.
	ProbeAddr string
	// LeaderElection makes only one replica reconcile at a time.
	LeaderElection          bool
	LeaderElectionID        string
	LeaderElectionNamespace string
	// Namespaces limits the Wukongs (and children) watched; empty = all.
	Namespaces []string
	// RestartOnNewKinds makes the manager stop with ErrKindInstalled when
	// an optional kind missing at start (KubeVirt, CDI, Multus, NMState)
	// becomes served, so that its Deployment restarts it watching the kind
	// (cmd/manager: on). Off for in-process managers (tests, sandbox).
	RestartOnNewKinds bool
	// KindPollInterval is how often RestartOnNewKinds looks
	// (default DefaultKindPollInterval).
	KindPollInterval time.Duration
	// MaxConcurrentReconciles is how many Wukongs reconcile in parallel.
	MaxConcurrentReconciles int
	// SkipControllerNameValidation lets several managers run in one
	// process (tests); controller-runtime refuses a second controller
	// named "wukong" otherwise, since their metrics would collide.
	SkipControllerNameValidation bool
	// GlobalNADNamespaces are namespaces whose NetworkAttachmentDefinitions
	// every Wukong may name (Multus' globalNamespaces); NADs in other
	// namespaces than the Wukong's are refused.
	GlobalNADNamespaces []string
	// ImageSources is the administrator's list of hosts disk images and
	// osImage may be fetched from (syntax: package imagesource); empty
	// allows every host but link-local, loopback, private and
	// cluster-internal ones.
	ImageSources []string
	// ClusterDomain is the cluster's DNS domain (kubelet --cluster-domain;
	// default cluster.local): names under it are cluster-internal image
	// sources.
	ClusterDomain string
	// StalledRetryBase and StalledRetryMax bound the wait before a Wukong
	// Stalled on something no watch reports (a missing NAD or Secret, a
	// CRD) is looked at again: Base at first, then as long as it has been
	// Stalled, at most Max (defaults DefaultStalledRetryBase and
	// DefaultStalledRetryMax; see controller.StalledRetry).
	StalledRetryBase, StalledRetryMax time.Duration
	// DefaultEvictionStrategy is the eviction strategy of VMs whose Wukong
	// sets no spec.evictionStrategy: LiveMigrate, LiveMigrateIfPossible,
	// External, None, or empty (the VM field stays unset, so the KubeVirt
	// CR's spec.configuration.evictionStrategy applies). New fails on
	// another value.
	DefaultEvictionStrategy string
	// NodeLossRestartAfter turns on the node-loss policy: a Wukong's VM
	// whose node has been NotReady this long is restarted elsewhere by
	// force-deleting its virt-launcher pods (controller.NodeLossPolicy).
	// Zero (the default) leaves lost nodes to an administrator. Safe only
	// where storage fences a lost node.
	NodeLossRestartAfter time.Duration
	// ClusterID is mixed into the MACs of new secondary NICs (see
	// ClusterIdentity); empty: the UID of the kube-system namespace, read
	// once by New.
	ClusterID string
	// CatalogNamespace holds the golden copies of ClusterImages (issue
	// #32): their CDI DataVolumes, DataSources and DataImportCrons, which
	// Wukong disks naming spec.disks[i].clusterImage clone across
	// namespaces. Empty: DefaultCatalogNamespace. The operator needs its
	// catalog rights there (the chart's RoleBinding).
	CatalogNamespace string
}

// DefaultCatalogNamespace is Options.CatalogNamespace when unset (the chart
// passes its release namespace instead).
const DefaultCatalogNamespace = "wukong-images"

// The defaults of Options.StalledRetryBase and StalledRetryMax.
const (
	DefaultStalledRetryBase = controller.DefaultStalledRetryBase
	DefaultStalledRetryMax  = controller.DefaultStalledRetryMax
)

// ManagedSelector selects the objects Wukong writes (identity.Wukong's
// managed-by label); the cache lists only those, so its memory grows with
// Wukongs, not with the cluster. Anyone may set the label, so of those the
// cache keeps whole only what the operator controls (ChildTransform).
var ManagedSelector = identity.ManagedSelector()

// NewScheme returns a scheme with every kind Wukong reads or writes.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, v1alpha1.AddToScheme, kubevirtv1.AddToScheme,
		cdiv1.AddToScheme, nadv1.AddToScheme, nmstatev1.AddToScheme, nmstatev1beta1.AddToScheme,
		snapshotv1.AddToScheme, instancetypev1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// metricsOptions maps o onto controller-runtime's metrics server options.
func metricsOptions(o Options) (metricsserver.Options, error) {
	mo := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.SecureMetrics}
	if o.SecureMetrics {
		mo.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	if o.MetricsCertDir == "" {
		return mo, nil
	}
	if !o.SecureMetrics {
		return mo, fmt.Errorf("a metrics certificate (%s) needs secure metrics", o.MetricsCertDir)
	}
	mo.CertDir, mo.CertName, mo.KeyName = o.MetricsCertDir, o.MetricsCertName, o.MetricsKeyName
	if mo.CertName == "" {
		mo.CertName = "tls.crt"
	}
	if mo.KeyName == "" {
		mo.KeyName = "tls.key"
	}
	// controller-runtime serves a self-signed certificate when the files
	// are missing; a configured certificate that is not there is an error.
	for _, f := range []string{mo.CertName, mo.KeyName} {
		if _, err := os.Stat(filepath.Join(mo.CertDir, f)); err != nil {
			return mo, fmt.Errorf("metrics serving certificate: %w", err)
		}
	}
	return mo, nil
}

// New builds a manager with the Wukong controller registered.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	if o.LeaderElectionID == "" {
		o.LeaderElectionID = "wukong.vm.novasphere.dev"
	}
	sources, err := imagesource.New(o.ImageSources, o.ClusterDomain)
	if err != nil {
		return nil, err
	}
	switch kubevirtv1.EvictionStrategy(o.DefaultEvictionStrategy) {
	case "", kubevirtv1.EvictionStrategyNone, kubevirtv1.EvictionStrategyLiveMigrate,
		kubevirtv1.EvictionStrategyLiveMigrateIfPossible, kubevirtv1.EvictionStrategyExternal:
	default:
		return nil, fmt.Errorf("--default-eviction-strategy %q: want LiveMigrate, LiveMigrateIfPossible, External, None or empty", o.DefaultEvictionStrategy)
	}
	if o.NodeLossRestartAfter < 0 {
		return nil, fmt.Errorf("--node-loss-restart-after %s: must not be negative", o.NodeLossRestartAfter)
	}
	if o.CatalogNamespace == "" {
		o.CatalogNamespace = DefaultCatalogNamespace
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 4
	}
	metricsOpts, err := metricsOptions(o)
	if err != nil {
		return nil, err
	}
	// Which optional kinds (KubeVirt, CDI, Multus, NMState) are served: the
	// cache must not be configured for a kind the API server does not know
	// (the manager would not start), and they are not watched.
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("cannot discover the API server's kinds: %w", err)
	}
	installed := func(gvk schema.GroupVersionKind) bool {
		_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		return err == nil
	}
	// The kinds the controllers read with a cache setting of their own
	// (controller.CachedKinds): Wukong's children only when labelled as
	// Wukong's; the KubeVirt CR (which says whether the macvtap binding is
	// registered) unfiltered and from every namespace, even when Namespaces
	// limits the rest.
	// Every kind is cached without managedFields; the Labelled kinds keep
	// whole only the objects the operator controls, the rest as stubs
	// (ChildTransform). children.Reader is the cache itself, set below
	// before the cache starts.
	children := &ChildTransform{Installed: installed}
	byObject := map[client.Object]cache.ByObject{}
	var missing []schema.GroupVersionKind
	for _, k := range controller.CachedKinds {
		switch {
		case !k.Served(installed):
			missing = append(missing, k.GVK)
			ctrl.Log.WithName("setup").Info("CRD not installed: not watching it; Wukongs that need it report it in their conditions",
				"kind", k.GVK.String(), "restartWhenInstalled", o.RestartOnNewKinds)
		case k.Labelled:
			byObject[k.New()] = cache.ByObject{Label: ManagedSelector, Transform: children.Transform}
		default:
			byObject[k.New()] = cache.ByObject{Namespaces: map[string]cache.Config{cache.AllNamespaces: {}}}
		}
	}
	byObject[&corev1.Node{}] = cache.ByObject{Transform: TrimNode}
	cacheOpts := cache.Options{ByObject: byObject, DefaultTransform: StripManagedFields}
	if len(o.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Controller:                    config.Controller{SkipNameValidation: ptr.To(o.SkipControllerNameValidation)},
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOpts,
		MapperProvider: func(*rest.Config, *http.Client) (meta.RESTMapper, error) {
			return mapper, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create manager: %w", err)
	}
	// The Wukong field index both controllers list by (the declarations a
	// Wukong's NICs name), registered once.
	if err := nodenet.AddIndex(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, fmt.Errorf("cannot index Wukongs by their node networks: %w", err)
	}
	children.Reader = mgr.GetCache()
	clusterID := o.ClusterID
	if clusterID == "" {
		if clusterID, err = ClusterIdentity(context.Background(), mgr.GetAPIReader()); err != nil {
			return nil, err
		}
	}
	r := &controller.WukongReconciler{
		Client:              FallbackClient{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Namespaces: o.Namespaces},
		Recorder:            mgr.GetEventRecorder("wukong"),
		APIReader:           mgr.GetAPIReader(),
		Metrics:             controller.NewMetrics(metrics.Registry),
		GlobalNADNamespaces: o.GlobalNADNamespaces,
		ImageSources:        sources,
		StalledRetry:        controller.StalledRetry{Base: o.StalledRetryBase, Max: o.StalledRetryMax},
		Cache:               mgr.GetCache(),
		// The administrator's answers for drains and lost nodes (#30).
		DefaultEvictionStrategy: kubevirtv1.EvictionStrategy(o.DefaultEvictionStrategy),
		NodeLoss:                controller.NodeLossPolicy{After: o.NodeLossRestartAfter},
		// MACs differ between clusters (#33).
		ClusterID:        clusterID,
		CatalogNamespace: o.CatalogNamespace,
	}
	keySecrets, err := newKeySecretCache(cfg, httpClient, scheme, mapper, cacheOpts.DefaultNamespaces)
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(keySecrets); err != nil {
		return nil, err
	}
	if err := r.SetupWithManager(mgr, controller.SetupOptions{MaxConcurrentReconciles: o.MaxConcurrentReconciles, Installed: installed,
		KeySecrets: keySecrets.Cache}); err != nil {
		return nil, fmt.Errorf("cannot set up the Wukong controller: %w", err)
	}
	nb := &nodebridge.Reconciler{Client: FallbackClient{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Namespaces: o.Namespaces}}
	if err := nb.SetupWithManager(mgr, installed); err != nil {
		return nil, fmt.Errorf("cannot set up the NodeBridge controller: %w", err)
	}
	// The golden image catalog (issue #32): the catalog namespace is read
	// from the API server (the cache holds the watched namespaces only).
	if installed(v1alpha1.GroupVersion.WithKind("ClusterImage")) {
		ci := &clusterimage.Reconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: o.CatalogNamespace}
		if err := ci.SetupWithManager(mgr, installed); err != nil {
			return nil, fmt.Errorf("cannot set up the ClusterImage controller: %w", err)
		}
	}
	// Snapshots and restores compose KubeVirt's snapshot API: set up only
	// where it is served (issue #31).
	if installed(snapshot.GVKVirtualMachineSnapshot) {
		sc := FallbackClient{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Namespaces: o.Namespaces}
		if err := (&snapshot.SnapshotReconciler{Client: sc}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("cannot set up the WukongSnapshot controller: %w", err)
		}
		if err := (&snapshot.RestoreReconciler{Client: sc}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("cannot set up the WukongRestore controller: %w", err)
		}
	} else {
		ctrl.Log.WithName("setup").Info("KubeVirt's snapshot API is not served: WukongSnapshots and WukongRestores are not reconciled",
			"kind", snapshot.GVKVirtualMachineSnapshot.String())
	}
	if o.RestartOnNewKinds && len(missing) > 0 {
		dc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, httpClient)
		if err != nil {
			return nil, err
		}
		interval := o.KindPollInterval
		if interval <= 0 {
			interval = DefaultKindPollInterval
		}
		if err := mgr.Add(kindWatcher{missing: missing, interval: interval, served: discoveryServed(dc)}); err != nil {
			return nil, err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("informer caches not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Package manager assembles the Wukong controller manager: scheme,
// label-filtered cache, metrics with authentication and authorization,
// health probes, leader election and the reconciler. cmd/manager runs it;
// the sandbox, the e2e suite and the chart's RBAC test run it in-process.
package manager

import (
	"fmt"
	"net/http"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
	"github.com/novasphere/wukong/operator/imagesource"
	"github.com/novasphere/wukong/operator/internal/controller"
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
}

// ManagedSelector selects the objects Wukong writes (identity.Wukong's
// managed-by label); the cache holds only those, so its memory grows with
// Wukongs, not with the cluster.
var ManagedSelector = identity.ManagedSelector()

// NewScheme returns a scheme with every kind Wukong reads or writes.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, v1alpha1.AddToScheme, kubevirtv1.AddToScheme,
		cdiv1.AddToScheme, nadv1.AddToScheme, nmstatev1.AddToScheme, nmstatev1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
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
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 4
	}
	metricsOpts := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.SecureMetrics}
	if o.SecureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
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
	byObject := map[client.Object]cache.ByObject{}
	var missing []schema.GroupVersionKind
	for _, k := range controller.CachedKinds {
		switch {
		case !k.Served(installed):
			missing = append(missing, k.GVK)
			ctrl.Log.WithName("setup").Info("CRD not installed: not watching it; Wukongs that need it report it in their conditions",
				"kind", k.GVK.String(), "restartWhenInstalled", o.RestartOnNewKinds)
		case k.Labelled:
			byObject[k.New()] = cache.ByObject{Label: ManagedSelector}
		default:
			byObject[k.New()] = cache.ByObject{Namespaces: map[string]cache.Config{cache.AllNamespaces: {}}}
		}
	}
	cacheOpts := cache.Options{ByObject: byObject}
	if len(o.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
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
	r := &controller.WukongReconciler{
		Client:              FallbackClient{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()},
		Recorder:            mgr.GetEventRecorder("wukong"),
		APIReader:           mgr.GetAPIReader(),
		Metrics:             controller.NewMetrics(metrics.Registry),
		GlobalNADNamespaces: o.GlobalNADNamespaces,
		ImageSources:        sources,
	}
	if err := r.SetupWithManager(mgr, controller.SetupOptions{MaxConcurrentReconciles: o.MaxConcurrentReconciles, Installed: installed}); err != nil {
		return nil, fmt.Errorf("cannot set up the Wukong controller: %w", err)
	}
	nb := &controller.NodeBridgeReconciler{Client: FallbackClient{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}}
	if err := nb.SetupWithManager(mgr, installed); err != nil {
		return nil, fmt.Errorf("cannot set up the NodeBridge controller: %w", err)
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

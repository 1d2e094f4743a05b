// Command manager runs the Wukong operator.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/novasphere/wukong/operator/manager"
)

func main() {
	var (
		o          manager.Options
		namespaces string
		globalNADs string
		sources    string
	)
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", `Address of the metrics endpoint; "0" disables it.`)
	flag.BoolVar(&o.SecureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with Kubernetes authentication and authorization.")
	flag.StringVar(&o.MetricsCertDir, "metrics-cert-path", "", "Directory with the metrics serving certificate and key (e.g. a mounted kubernetes.io/tls Secret), reloaded when they change; empty serves a self-signed certificate generated at start.")
	flag.StringVar(&o.MetricsCertName, "metrics-cert-name", "tls.crt", "File name of the metrics serving certificate in --metrics-cert-path.")
	flag.StringVar(&o.MetricsKeyName, "metrics-cert-key", "tls.key", "File name of the metrics serving key in --metrics-cert-path.")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	flag.BoolVar(&o.LeaderElection, "leader-elect", false, "Elect a leader so only one replica reconciles.")
	flag.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the pod's).")
	flag.StringVar(&namespaces, "namespaces", "", "Comma-separated namespaces to watch (default: all).")
	flag.IntVar(&o.MaxConcurrentReconciles, "concurrency", 4, "Wukongs reconciled in parallel.")
	flag.BoolVar(&o.RestartOnNewKinds, "restart-on-new-crds", true, "Exit (for the Deployment to restart the manager) when KubeVirt, CDI, Multus or NMState, missing at start, is installed, so their kinds are watched.")
	flag.StringVar(&globalNADs, "global-nad-namespaces", "", "Comma-separated namespaces whose NetworkAttachmentDefinitions any Wukong may name in nadName (like Multus' globalNamespaces); others are refused.")
	flag.StringVar(&sources, "image-sources", "", "Comma-separated hosts disk images and osImage may be fetched from: *, NAME, *.DOMAIN, IP or CIDR (see package imagesource). Empty (or *) allows every host but link-local, loopback, private and cluster-internal ones.")
	flag.StringVar(&o.DefaultEvictionStrategy, "default-eviction-strategy", "", "KubeVirt eviction strategy (LiveMigrate, LiveMigrateIfPossible, External, None) of VMs whose Wukong sets no spec.evictionStrategy; empty leaves the VM field unset, so the KubeVirt CR's spec.configuration.evictionStrategy applies.")
	flag.DurationVar(&o.NodeLossRestartAfter, "node-loss-restart-after", 0, "Opt-in node-loss policy: restart a Wukong's VM elsewhere (force-delete its virt-launcher pods, never its disks) once its node has been NotReady this long, e.g. 5m. 0 (default) disables it. Safe only where storage fences a lost node.")
	flag.StringVar(&o.ClusterID, "cluster-id", "", "The cluster's identity, mixed into the MACs of new secondary NICs so that clusters sharing a VLAN do not repeat MACs; empty uses the UID of the kube-system namespace. NICs that have a MAC keep it.")
	flag.StringVar(&o.CatalogNamespace, "image-catalog-namespace", "", "Namespace holding the golden copies of ClusterImages (CDI DataVolumes, DataSources, DataImportCrons) that disks naming spec.disks[i].clusterImage clone; empty: "+manager.DefaultCatalogNamespace+".")
	flag.StringVar(&o.ClusterDomain, "cluster-domain", "cluster.local", "The cluster's DNS domain (kubelet --cluster-domain): names under it are cluster-internal image sources.")
	zapOpts := zap.Options{Development: false, TimeEncoder: zapcore.ISO8601TimeEncoder}
	zapOpts.BindFlags(flag.CommandLine) // --zap-log-level, --zap-encoder (json|console), ...
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if namespaces != "" {
		o.Namespaces = strings.Split(namespaces, ",")
	}
	if globalNADs != "" {
		o.GlobalNADNamespaces = strings.Split(globalNADs, ",")
	}

	if sources != "" {
		o.ImageSources = strings.Split(sources, ",")
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot load a kubeconfig:", err)
		os.Exit(1)
	}
	mgr, err := manager.New(cfg, o)
	if err != nil {
		ctrl.Log.Error(err, "setup failed")
		os.Exit(1)
	}
	ctrl.Log.Info("starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		if errors.Is(err, manager.ErrKindInstalled) {
			ctrl.Log.Info("restarting", "reason", err.Error())
			// Best effort: outside a pod the file does not exist.
			_ = os.WriteFile("/dev/termination-log", []byte(err.Error()), 0o644)
			os.Exit(manager.ExitKindInstalled)
		}
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

// Command kubevirt-admission serves KubeVirt's own admission webhooks for
// VirtualMachines and VirtualMachineInstances, built from kubevirt.io/kubevirt
// (the version pinned in go.mod), so the Wukong sandbox answers as a cluster
// running virt-api does. It also prints the objects virt-operator would
// install for them: the webhook configurations and KubeVirt's CRDs.
//
// Subcommands:
//
//	kubevirt-admission serve --kubeconfig F --tls-cert-file F --tls-private-key-file F [--listen 127.0.0.1:0] [--address-file F] [--namespace kubevirt]
//	kubevirt-admission webhooks --url https://127.0.0.1:PORT --ca-file F
//	kubevirt-admission crds --out-dir D
//
// serve registers, on the paths virt-api uses, the same handlers virt-api's
// registerValidatingWebhooks and registerMutatingWebhook register
// (pkg/virt-api/api.go): the VirtualMachine and VirtualMachineInstance
// mutators, the VirtualMachineInstance create (with the network spec
// validator) and update admitters, the VirtualMachine admitter, the
// VirtualMachine status admitter, the VirtualMachineInstanceMigration
// mutator and create and update admitters, the VirtualMachineSnapshot and
// VirtualMachineRestore admitters (pkg/storage/admitters), and the
// pods/eviction interceptor (admitters.PodEvictionAdmitter: an eviction of a
// virt-launcher pod whose VMI's eviction strategy, its own or the KubeVirt
// CR's spec.configuration.evictionStrategy, is LiveMigrate,
// LiveMigrateIfPossible on a migratable VMI, or External, marks the VMI
// with status.evacuationNodeName and is refused with 429; LiveMigrate on a
// VMI that is not migratable is refused without marking). Their cluster configuration is virt-api's:
// virtconfig.ClusterConfig fed by informers on the KubeVirt CRs of
// --namespace and on the CRDs, so it follows the cluster's KubeVirt CR
// (feature gates, network binding plugins, ...) as it changes. Requests by
// the service accounts virt-api trusts (webhooks.KubeVirtServiceAccounts:
// system:serviceaccount:<namespace>:kubevirt-controller, kubevirt-handler,
// ...) are treated as KubeVirt's own, as in virt-api. Once the informers
// have synced and the listener is open, serve writes the listening address
// (host:port) to --address-file.
//
// webhooks prints (YAML) virt-operator's MutatingWebhookConfiguration and
// ValidatingWebhookConfiguration for virt-api
// (components.NewVirtAPIMutatingWebhookConfiguration and
// NewVirtAPIValidatingWebhookConfiguration) reduced to the webhooks serve
// answers, each pointing at --url plus its path with the CA bundle of
// --ca-file instead of at the virt-api Service.
//
// crds writes the CRDs virt-operator installs (components.New...Crd: schema,
// short names, printer columns, categories, subresources) for
// VirtualMachine, VirtualMachineInstance, KubeVirt,
// VirtualMachineInstanceMigration and VirtualMachineInstancePreset (the
// VMI mutator reads presets), the snapshot.kubevirt.io kinds and the
// instancetype.kubevirt.io kinds ((Cluster)Instancetype and
// (Cluster)Preference, which the VM admitter and mutator look up) into
// --out-dir, one file per CRD named <group>_<plural>.yaml.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	v1 "kubevirt.io/api/core/v1"
	"kubevirt.io/client-go/kubecli"

	"kubevirt.io/kubevirt/pkg/controller"
	netadmitter "kubevirt.io/kubevirt/pkg/network/admitter"
	"kubevirt.io/kubevirt/pkg/virt-api/webhooks"
	mutating_webhook "kubevirt.io/kubevirt/pkg/virt-api/webhooks/mutating-webhook"
	validating_webhook "kubevirt.io/kubevirt/pkg/virt-api/webhooks/validating-webhook"
	virtconfig "kubevirt.io/kubevirt/pkg/virt-config"
	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "webhooks":
		err = printWebhooks(os.Args[2:])
	case "crds":
		err = writeCRDs(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubevirt-admission %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kubevirt-admission serve|webhooks|crds [flags] (see the package doc)")
	os.Exit(2)
}

// server is what the handlers share: virt-api's cluster config, client,
// informers and trusted service accounts.
type server struct {
	clusterConfig   *virtconfig.ClusterConfig
	virtCli         kubecli.KubevirtClient
	informers       *webhooks.Informers
	serviceAccounts map[string]struct{}
}

// handlers maps each path served to its handler, as virt-api registers
// them (pkg/virt-api/api.go registerValidatingWebhooks and
// registerMutatingWebhook). The webhooks subcommand keeps exactly the
// webhooks whose path is a key here; s may be nil there.
func handlers(s *server) map[string]http.HandlerFunc {
	if s == nil {
		s = &server{}
	}
	return map[string]http.HandlerFunc{
		components.VMICreateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMICreate(w, r, s.clusterConfig, s.serviceAccounts,
				func(field *field.Path, vmiSpec *v1.VirtualMachineInstanceSpec, clusterCfg *virtconfig.ClusterConfig) []metav1.StatusCause {
					return netadmitter.Validate(field, vmiSpec, clusterCfg)
				})
		},
		components.VMIUpdateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMIUpdate(w, r, s.clusterConfig, s.serviceAccounts)
		},
		components.VMValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMs(w, r, s.clusterConfig, s.virtCli, s.informers, s.serviceAccounts)
		},
		components.StatusValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeStatusValidation(w, r, s.clusterConfig, s.virtCli, s.informers, s.serviceAccounts)
		},
		components.VMMutatePath: func(w http.ResponseWriter, r *http.Request) {
			mutating_webhook.ServeVMs(w, r, s.clusterConfig, s.virtCli)
		},
		components.VMIMutatePath: func(w http.ResponseWriter, r *http.Request) {
			mutating_webhook.ServeVMIs(w, r, s.clusterConfig, s.informers, s.serviceAccounts)
		},
		// pods/eviction of virt-launcher (and hotplug) pods: KubeVirt's
		// PodEvictionAdmitter, which marks the VMI for evacuation
		// (status.evacuationNodeName) and refuses the eviction (429) when
		// the VMI's eviction strategy says so.
		components.PodEvictionValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServePodEvictionInterceptor(w, r, s.clusterConfig, s.virtCli)
		},
		components.MigrationCreateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeMigrationCreate(w, r, s.clusterConfig, s.virtCli, s.serviceAccounts)
		},
		components.MigrationUpdateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeMigrationUpdate(w, r)
		},
		components.MigrationMutatePath: func(w http.ResponseWriter, r *http.Request) {
			mutating_webhook.ServeMigrationCreate(w, r)
		},
		// snapshot.kubevirt.io (issue #31): KubeVirt's VMSnapshotAdmitter
		// (source kind and group, the Snapshot feature gate, spec
		// immutable) and VMRestoreAdmitter (target, one restore in
		// progress per target, volume restore and ownership policies),
		// pkg/storage/admitters.
		components.VMSnapshotValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMSnapshots(w, r, s.clusterConfig, s.virtCli)
		},
		components.VMRestoreValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMRestores(w, r, s.clusterConfig, s.virtCli, s.informers)
		},
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "Kubeconfig of the cluster whose KubeVirt CR configures the admitters (required).")
	namespace := fs.String("namespace", "kubevirt", "Namespace of KubeVirt's install: its KubeVirt CR and service accounts.")
	listen := fs.String("listen", "127.0.0.1:0", "Address to serve HTTPS on.")
	addressFile := fs.String("address-file", "", "Where to write the listening host:port once ready.")
	certFile := fs.String("tls-cert-file", "", "PEM serving certificate (required).")
	keyFile := fs.String("tls-private-key-file", "", "PEM private key of the serving certificate (required).")
	_ = fs.Parse(args)
	if *kubeconfig == "" || *certFile == "" || *keyFile == "" {
		return errors.New("--kubeconfig, --tls-cert-file and --tls-private-key-file are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("loading the serving certificate: %w", err)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("reading --kubeconfig: %w", err)
	}
	restConfig.QPS, restConfig.Burst = 200, 400
	virtCli, err := kubecli.GetKubevirtClientFromRESTConfig(restConfig)
	if err != nil {
		return fmt.Errorf("building the KubeVirt client: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// As virt-api's Run (pkg/virt-api/api.go): informers on the KubeVirt
	// CR, the CRDs, presets and namespaces; the cluster config; DataSources
	// when CDI's DataSource API exists, else KubeVirt's dummy informer.
	factory := controller.NewKubeInformerFactory(virtCli.RestClient(), virtCli, virtCli, nil, *namespace)
	kubeVirtInformer := factory.KubeVirt()
	crdInformer := factory.CRD()
	presetInformer := factory.VirtualMachinePreset()
	namespaceInformer := factory.Namespace()
	// The restore admitter lists the namespace's restores (one in progress
	// per target).
	restoreInformer := factory.VirtualMachineRestore()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	clusterConfig, err := virtconfig.NewClusterConfig(crdInformer, kubeVirtInformer, *namespace)
	if err != nil {
		return fmt.Errorf("building the cluster config: %w", err)
	}
	var dataSourceInformer cache.SharedIndexInformer
	if clusterConfig.HasDataSourceAPI() {
		dataSourceInformer = factory.DataSource()
	} else {
		dataSourceInformer = factory.DummyDataSource()
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if ctx.Err() != nil {
		return ctx.Err()
	}

	s := &server{
		clusterConfig: clusterConfig,
		virtCli:       virtCli,
		informers: &webhooks.Informers{
			VMIPresetInformer:  presetInformer,
			DataSourceInformer: dataSourceInformer,
			NamespaceInformer:  namespaceInformer,
			VMRestoreInformer:  restoreInformer,
		},
		serviceAccounts: webhooks.KubeVirtServiceAccounts(*namespace),
	}
	mux := http.NewServeMux()
	for path, h := range handlers(s) {
		mux.HandleFunc(path, h)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	if *addressFile != "" {
		if err := writeAtomically(*addressFile, []byte(ln.Addr().String())); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "kubevirt-admission: serving %d webhooks on https://%s\n", len(handlers(nil)), ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

func writeAtomically(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printWebhooks(args []string) error {
	fs := flag.NewFlagSet("webhooks", flag.ExitOnError)
	url := fs.String("url", "", "Base URL of the serve subcommand, e.g. https://127.0.0.1:8443 (required).")
	caFile := fs.String("ca-file", "", "PEM CA bundle that signed the serving certificate (required).")
	namespace := fs.String("namespace", "kubevirt", "Namespace of KubeVirt's install.")
	_ = fs.Parse(args)
	if *url == "" || *caFile == "" {
		return errors.New("--url and --ca-file are required")
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	served := handlers(nil)
	clientConfig := func(cc admissionregistrationv1.WebhookClientConfig) (admissionregistrationv1.WebhookClientConfig, bool) {
		if cc.Service == nil || cc.Service.Path == nil {
			return cc, false
		}
		if _, ok := served[*cc.Service.Path]; !ok {
			return cc, false
		}
		u := *url + *cc.Service.Path
		return admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: ca}, true
	}

	mutating := components.NewVirtAPIMutatingWebhookConfiguration(*namespace)
	var mws []admissionregistrationv1.MutatingWebhook
	for _, w := range mutating.Webhooks {
		if cc, ok := clientConfig(w.ClientConfig); ok {
			w.ClientConfig = cc
			mws = append(mws, w)
		}
	}
	mutating.Webhooks = mws
	validating := components.NewVirtAPIValidatingWebhookConfiguration(*namespace)
	var vws []admissionregistrationv1.ValidatingWebhook
	for _, w := range validating.Webhooks {
		if cc, ok := clientConfig(w.ClientConfig); ok {
			w.ClientConfig = cc
			vws = append(vws, w)
		}
	}
	validating.Webhooks = vws
	// One path may back several webhooks (virt-operator points both
	// pods/eviction interceptors, launcher and hotplug, at one path).
	named := map[string]bool{}
	for _, w := range mws {
		named[*w.ClientConfig.URL] = true
	}
	for _, w := range vws {
		named[*w.ClientConfig.URL] = true
	}
	if len(named) != len(served) {
		return fmt.Errorf("virt-operator's webhook configurations name %d of the %d paths served", len(named), len(served))
	}
	for _, obj := range []any{mutating, validating} {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		fmt.Printf("---\n%s", b)
	}
	return nil
}

func writeCRDs(args []string) error {
	fs := flag.NewFlagSet("crds", flag.ExitOnError)
	outDir := fs.String("out-dir", "", "Directory to write the CRDs into (required).")
	_ = fs.Parse(args)
	if *outDir == "" {
		return errors.New("--out-dir is required")
	}
	var crds []*extv1.CustomResourceDefinition
	for _, gen := range []func() (*extv1.CustomResourceDefinition, error){
		components.NewVirtualMachineCrd,
		components.NewVirtualMachineInstanceCrd,
		components.NewKubeVirtCrd,
		components.NewPresetCrd,
		components.NewVirtualMachineInstanceMigrationCrd,
		// snapshot.kubevirt.io: what a WukongSnapshot and WukongRestore
		// create (VirtualMachineSnapshot, VirtualMachineRestore) and read
		// (VirtualMachineSnapshotContent), issue #31.
		components.NewVirtualMachineSnapshotCrd,
		components.NewVirtualMachineSnapshotContentCrd,
		components.NewVirtualMachineRestoreCrd,
		// instancetype.kubevirt.io (issue #32): what a Wukong's
		// spec.instancetype and spec.preference name, and what the VM
		// admitter and mutator look up (pkg/instancetype/webhooks/vm).
		components.NewVirtualMachineInstancetypeCrd,
		components.NewVirtualMachineClusterInstancetypeCrd,
		components.NewVirtualMachinePreferenceCrd,
		components.NewVirtualMachineClusterPreferenceCrd,
	} {
		crd, err := gen()
		if err != nil {
			return err
		}
		crds = append(crds, crd)
	}
	sort.Slice(crds, func(i, j int) bool { return crds[i].Name < crds[j].Name })
	for _, crd := range crds {
		b, err := marshalCRD(crd)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s_%s.yaml", crd.Spec.Group, crd.Spec.Names.Plural)
		if err := os.WriteFile(filepath.Join(*outDir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// marshalCRD renders crd as YAML without the empty status and creation
// timestamp a Go object carries (the API server fills both).
func marshalCRD(crd *extv1.CustomResourceDefinition) ([]byte, error) {
	b, err := yaml.Marshal(crd)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Generated by hack/kubevirt-admission (kubevirt-admission crds) from\n# kubevirt.io/kubevirt pkg/virt-operator/resource/generate/components. DO NOT EDIT.\n---\n"), out...), nil
}

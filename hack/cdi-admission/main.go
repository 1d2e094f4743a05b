// Command cdi-admission serves CDI's own admission webhooks for
// DataVolumes, built from kubevirt.io/containerized-data-importer (the
// version pinned in go.mod), so the Wukong sandbox answers as a cluster
// running cdi-apiserver does. It also prints the objects cdi-operator would
// install for them: the webhook configurations and CDI's CRDs.
//
// Subcommands:
//
//	cdi-admission serve --kubeconfig F --tls-cert-file F --tls-private-key-file F [--listen 127.0.0.1:0] [--address-file F]
//	cdi-admission webhooks --url https://127.0.0.1:PORT --ca-file F
//	cdi-admission crds --out-dir D
//
// serve registers, on cdi-apiserver's paths, the handlers cdi-apiserver
// registers for DataVolumes (pkg/apiserver/apiserver.go): the validating
// webhook (webhooks.NewDataVolumeValidatingWebhook: spec rules, source
// URLs, sizes, no spec update, an existing PVC of the same name) and the
// mutating one (webhooks.NewDataVolumeMutatingWebhook: clone source
// authorization and clone token). Its clients are cdi-apiserver's (core,
// CDI, snapshot, and a controller-runtime client that reads CDIConfig's
// feature gates). Once listening it writes the host:port to --address-file.
//
// serve also runs CDI's own StorageProfile controller
// (controller.NewStorageProfileController, pkg/controller/
// storageprofile-controller.go, as cdi-controller runs it) in a
// controller-runtime manager: one StorageProfile per StorageClass, whose
// status.claimPropertySets come from the profile's spec or, when that is
// empty, from CDI's table of known provisioners (pkg/storagecapabilities);
// for a provisioner CDI does not know they stay empty. With --no-controllers
// only the webhooks are served.
//
// webhooks prints (YAML) cdi-operator's cdi-api-datavolume-validate and
// cdi-api-datavolume-mutate configurations (pkg/operator/resources/cluster,
// the "apiserver-registrations" group), pointing at --url plus their path
// with the CA bundle of --ca-file instead of at the cdi-api Service.
//
// crds writes the CRDs cdi-operator installs (cluster.New...Crd) for
// DataVolume, StorageProfile, CDIConfig, DataSource and DataImportCron
// (the golden image catalog, issue #32) into --out-dir, one
// file per CRD named <group>_<plural>.yaml.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v6/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v6/clientset/versioned"
	ocpconfigv1 "github.com/openshift/api/config/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"kubevirt.io/containerized-data-importer/pkg/apiserver/webhooks"
	cdiclient "kubevirt.io/containerized-data-importer/pkg/client/clientset/versioned"
	cdicontroller "kubevirt.io/containerized-data-importer/pkg/controller"
	"kubevirt.io/containerized-data-importer/pkg/operator/resources/cluster"
)

// The paths cdi-apiserver serves the DataVolume webhooks on
// (pkg/apiserver/apiserver.go dvValidatePath, dvMutatePath).
const (
	dvValidatePath = "/datavolume-validate"
	dvMutatePath   = "/datavolume-mutate"
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
		fmt.Fprintf(os.Stderr, "cdi-admission %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cdi-admission serve|webhooks|crds [flags] (see the package doc)")
	os.Exit(2)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "Kubeconfig of the cluster (required).")
	listen := fs.String("listen", "127.0.0.1:0", "Address to serve HTTPS on.")
	addressFile := fs.String("address-file", "", "Where to write the listening host:port once ready.")
	certFile := fs.String("tls-cert-file", "", "PEM serving certificate (required).")
	keyFile := fs.String("tls-private-key-file", "", "PEM private key of the serving certificate (required).")
	noControllers := fs.Bool("no-controllers", false, "Serve the webhooks only, without CDI's StorageProfile controller.")
	_ = fs.Parse(args)
	if *kubeconfig == "" || *certFile == "" || *keyFile == "" {
		return errors.New("--kubeconfig, --tls-cert-file and --tls-private-key-file are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("loading the serving certificate: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("reading --kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	// The clients cdi-apiserver builds (cmd/cdi-apiserver/apiserver.go).
	k8s, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cdi, err := cdiclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	snap, err := snapclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := cdiv1.AddToScheme(scheme); err != nil {
		return err
	}
	crc, err := crclient.New(cfg, crclient.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	// cdi-apiserver signs clone tokens with a key of its own; one made at
	// start is as good here (nothing else verifies them).
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle(dvValidatePath, webhooks.NewDataVolumeValidatingWebhook(k8s, cdi, snap, crc))
	mux.Handle(dvMutatePath, webhooks.NewDataVolumeMutatingWebhook(k8s, cdi, key))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	if !*noControllers {
		mgr, err := storageProfileManager(cfg)
		if err != nil {
			return err
		}
		go func() {
			if err := mgr.Start(ctx); err != nil {
				errc <- fmt.Errorf("StorageProfile controller: %w", err)
			}
		}()
	}
	if *addressFile != "" {
		tmp := *addressFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *addressFile); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "cdi-admission: serving the DataVolume webhooks on https://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

// storageProfileManager returns a manager running CDI's StorageProfile
// controller with the scheme cdi-controller gives it (core, CDI, CSI
// snapshots, OpenShift's config API, which the controller reads for the
// cluster's topology and skips when it is not served). Its metrics server is
// off.
func storageProfileManager(cfg *rest.Config) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, cdiv1.AddToScheme, snapshotv1.AddToScheme, ocpconfigv1.Install,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return nil, err
	}
	// cdi-operator labels what CDI's controllers create with the CDI CR's
	// installer labels; the sandbox has no installer.
	if _, err := cdicontroller.NewStorageProfileController(mgr, mgr.GetLogger(), map[string]string{}); err != nil {
		return nil, err
	}
	return mgr, nil
}

func printWebhooks(args []string) error {
	fs := flag.NewFlagSet("webhooks", flag.ExitOnError)
	url := fs.String("url", "", "Base URL of the serve subcommand, e.g. https://127.0.0.1:8443 (required).")
	caFile := fs.String("ca-file", "", "PEM CA bundle that signed the serving certificate (required).")
	_ = fs.Parse(args)
	if *url == "" || *caFile == "" {
		return errors.New("--url and --ca-file are required")
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	objs, err := cluster.CreateDynamicResourceGroup("apiserver-registrations",
		&cluster.FactoryArgs{Namespace: "cdi", Logger: logr.Discard()})
	if err != nil {
		return err
	}
	point := func(cc *admissionregistrationv1.WebhookClientConfig) bool {
		if cc.Service == nil || cc.Service.Path == nil || (*cc.Service.Path != dvValidatePath && *cc.Service.Path != dvMutatePath) {
			return false
		}
		u := *url + *cc.Service.Path
		*cc = admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: ca}
		return true
	}
	var out []any
	for _, obj := range objs {
		switch w := obj.(type) {
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			if len(w.Webhooks) == 1 && point(&w.Webhooks[0].ClientConfig) {
				out = append(out, w)
			}
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			if len(w.Webhooks) == 1 && point(&w.Webhooks[0].ClientConfig) {
				out = append(out, w)
			}
		}
	}
	if len(out) != 2 {
		return fmt.Errorf("cdi-operator's registrations hold %d DataVolume webhook configurations, want 2", len(out))
	}
	for _, obj := range out {
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
	for _, crd := range []*extv1.CustomResourceDefinition{
		cluster.NewDataVolumeCrd(),
		cluster.NewStorageProfileCrd(),
		cluster.NewCdiConfigCrd(),
		cluster.NewDataSourceCrd(),
		cluster.NewDataImportCronCrd(),
	} {
		if crd.Name == "" {
			return errors.New("CDI's embedded CRD did not decode")
		}
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
	return append([]byte("# Generated by hack/cdi-admission (cdi-admission crds) from\n# kubevirt.io/containerized-data-importer pkg/operator/resources/cluster. DO NOT EDIT.\n---\n"), out...), nil
}

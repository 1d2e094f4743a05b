// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest) for this repository's integration tests, with the CRDs of the
// systems Wukong drives installed, so every object a test writes is
// validated by the real schemas. It knows the repository's layout (go.work
// at the root, bin/k8s/, test/crds/), so it is a module of its own that only
// tests import: the lib/* modules stay importable without it.
//
// Binaries come from KUBEBUILDER_ASSETS, else from bin/k8s/<version>/ at the
// repository root, as built by scripts/envtest-assets.sh (`make
// envtest-assets`). When neither exists the test fails: integration tests are
// never skipped silently.
package testenv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// StartTimeout is how long etcd and the API server each get to answer
// their health checks (envtest's default is 20 s): on a 2-core machine
// with several test binaries starting control planes at once, a CI run
// saw kube-apiserver miss 20 s five times in a row.
const StartTimeout = 2 * time.Minute

// Env is a running API server.
type Env struct {
	Config *rest.Config
	Client client.Client
	env    *envtest.Environment
}

// Stop shuts the API server and etcd down.
func (e *Env) Stop() error { return e.env.Stop() }

// Start runs an API server with the CRDs in crdDirs installed and returns a
// client using scheme.
func Start(scheme *runtime.Scheme, crdDirs ...string) (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: StartTimeout,
	}
	cfg, err := env.Start()
	if err != nil {
		// Start may fail after the processes are up (e.g. a CRD the API
		// server rejects): stop them, or they outlive the test.
		_ = env.Stop()
		return nil, fmt.Errorf("starting envtest with assets in %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, env: env}, nil
}

// Assets returns the directory holding kube-apiserver and etcd.
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	matches, _ := filepath.Glob(filepath.Join(root, "bin", "k8s", "*", "kube-apiserver"))
	if len(matches) == 0 {
		return "", errors.New("no kube-apiserver: run `make envtest-assets` or set KUBEBUILDER_ASSETS")
	}
	sort.Strings(matches)
	return filepath.Dir(matches[len(matches)-1]), nil
}

// RepoRoot walks up from the working directory to the directory holding
// go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
}

// CRDs returns the repository's test/crds directory (the generated KubeVirt,
// CDI, Multus and NMState CRDs).
func CRDs() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "test", "crds"), nil
}

// Scheme returns a scheme with client-go's kinds and every kind adds add
// (each a generated AddToScheme); it panics on an error, which only a
// broken generated package gives.
func Scheme(adds ...func(*runtime.Scheme) error) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range append([]func(*runtime.Scheme) error{clientgoscheme.AddToScheme}, adds...) {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// Main is a package's TestMain: it starts an API server with the
// repository's test CRDs (CRDs) and a client using scheme, hands it to
// started, runs the tests, stops the server and exits with the tests' code
// (1, with the reason on stderr, when the server cannot start).
//
// A run that can reach no test, only fuzz targets (NoTests), starts no
// server and never calls started: fuzz targets must not need one.
func Main(m *testing.M, scheme *runtime.Scheme, started func(*Env)) {
	if NoTests() {
		os.Exit(m.Run())
	}
	os.Exit(run(m, scheme, started))
}

// NoTests reports whether this test binary runs no Test function, only
// lists names or fuzzes: `go test -list`, a fuzzing worker process
// (-test.fuzzworker) or `go test -run '^$' -fuzz X` (as make fuzz runs
// it). It parses the command line (flag.Parse), as a TestMain may.
func NoTests() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	value := func(name string) string {
		if f := flag.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	return value("test.list") != "" || value("test.fuzzworker") == "true" ||
		(value("test.fuzz") != "" && value("test.run") == "^$")
}

func run(m *testing.M, scheme *runtime.Scheme, started func(*Env)) int {
	dir, err := CRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start envtest:", err)
		return 1
	}
	env, err := Start(scheme, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	started(env)
	return m.Run()
}

// Owner creates a namespace named after prefix (metadata.generateName) and
// in it a ConfigMap called name, the owner of what a test writes: envtest
// runs no garbage collector, so any namespaced kind stands in for a
// controller's own kind. The ConfigMap comes back without TypeMeta, as a
// controller reads it, so code under test must take the owner's kind from
// the client's scheme. Any error fails t.
func Owner(t testing.TB, c client.Client, prefix, name string) *corev1.ConfigMap {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace %s*: %v", prefix, err)
	}
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name}}
	if err := c.Create(ctx, owner); err != nil {
		t.Fatalf("create owner %s/%s: %v", ns.Name, name, err)
	}
	owner.TypeMeta = metav1.TypeMeta{}
	return owner
}

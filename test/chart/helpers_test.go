package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/testenv"
)

// kubeVersion is the cluster version the render and lint tests assume.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}

// repoPath is a path relative to the repository root.
func repoPath(t testing.TB, rel ...string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	return filepath.Join(append([]string{root}, rel...)...)
}

func chartDir(t testing.TB) string { return repoPath(t, "charts", "wukong") }

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir(t))
	require.NoError(t, err)
	return c
}

// render renders the chart client-side as `helm template` would.
func render(t testing.TB, vals map[string]any) (*release.Release, error) {
	t.Helper()
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
	inst.ReleaseName, inst.Namespace = "wukong", "wukong-system"
	inst.KubeVersion = kubeVersion
	return inst.Run(loadChart(t), vals)
}

// manifest is a rendered release's objects by "Kind/name", or
// "Kind/namespace/name" for objects of one kind and name in several
// namespaces (the RoleBindings in watchNamespaces).
type manifest map[string]*unstructured.Unstructured

func parse(t testing.TB, text string) manifest {
	t.Helper()
	out := manifest{}
	shared := map[string]bool{} // Kind/name seen in more than one namespace
	for _, doc := range releaseutil.SplitManifests(text) {
		m := map[string]any{}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &m), doc)
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		key := u.GetKind() + "/" + u.GetName()
		nsKey := func(o *unstructured.Unstructured) string {
			return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
		}
		if prev, ok := out[key]; ok && prev.GetNamespace() != u.GetNamespace() {
			delete(out, key)
			out[nsKey(prev)] = prev
			shared[key] = true
		}
		if shared[key] {
			key = nsKey(u)
		}
		require.NotContains(t, out, key, "duplicate object")
		out[key] = u
	}
	return out
}

// generatedRoles is operator/config/rbac/role.yaml (controller-gen's output)
// by where the chart binds it.
type generatedRoles struct {
	// Cluster: the rules the manager needs cluster-wide (the markers
	// without namespace=).
	Cluster *rbacv1.ClusterRole
	// Namespaced: those it needs only in the namespaces it watches (the
	// Role of the placeholder namespace "watched").
	Namespaced *rbacv1.Role
	// GlobalNADs: those it needs in multus.globalNamespaces (the Role of
	// "global-nads").
	GlobalNADs *rbacv1.Role
	// Catalog: those it needs in the image catalog namespace (the Role of
	// "catalog": the golden copies of ClusterImages).
	Catalog *rbacv1.Role
}

func readGeneratedRoles(t testing.TB) generatedRoles {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "operator", "config", "rbac", "role.yaml"))
	require.NoError(t, err)
	var g generatedRoles
	for _, doc := range releaseutil.SplitManifests(string(b)) {
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal([]byte(doc), &tm))
		switch tm.Kind {
		case "ClusterRole":
			require.Nil(t, g.Cluster, "one ClusterRole in role.yaml")
			g.Cluster = &rbacv1.ClusterRole{}
			require.NoError(t, yaml.Unmarshal([]byte(doc), g.Cluster))
		case "Role":
			r := &rbacv1.Role{}
			require.NoError(t, yaml.Unmarshal([]byte(doc), r))
			switch r.Namespace {
			case "watched":
				require.Nil(t, g.Namespaced, "one Role \"watched\" in role.yaml")
				g.Namespaced = r
			case "global-nads":
				require.Nil(t, g.GlobalNADs, "one Role \"global-nads\" in role.yaml")
				g.GlobalNADs = r
			case "catalog":
				require.Nil(t, g.Catalog, "one Role \"catalog\" in role.yaml")
				g.Catalog = r
			default:
				t.Fatalf("role.yaml: a Role in %q: markers name namespace=watched, namespace=global-nads, namespace=catalog or none", r.Namespace)
			}
		default:
			t.Fatalf("unexpected %s in role.yaml", tm.Kind)
		}
	}
	require.NotNil(t, g.Cluster, "role.yaml has a ClusterRole")
	require.NotNil(t, g.Namespaced, "role.yaml has a Role \"watched\"")
	require.NotNil(t, g.GlobalNADs, "role.yaml has a Role \"global-nads\"")
	require.NotNil(t, g.Catalog, "role.yaml has a Role \"catalog\"")
	for _, rules := range [][]rbacv1.PolicyRule{g.Cluster.Rules, g.Namespaced.Rules, g.GlobalNADs.Rules, g.Catalog.Rules} {
		require.NotEmpty(t, rules)
	}
	return g
}

// get decodes the object key ("Kind/name") into a typed object.
func get[T any](t testing.TB, m manifest, key string) *T {
	t.Helper()
	u, ok := m[key]
	require.True(t, ok, "%s not rendered; have %v", key, m.keys())
	obj := new(T)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj))
	return obj
}

func (m manifest) keys() []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// fromYAMLFile decodes a YAML file into a typed object.
func fromYAMLFile[T any](t testing.TB, path string) *T {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	obj := new(T)
	require.NoError(t, yaml.Unmarshal(b, obj))
	return obj
}

// warnings records every warning header the API server sends.
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warnings) reset() { w.mu.Lock(); w.seen = nil; w.mu.Unlock() }

// podSecurity returns the warnings about Pod Security.
func (w *warnings) podSecurity() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.seen {
		if strings.Contains(s, "PodSecurity") || strings.Contains(s, "would violate") {
			out = append(out, s)
		}
	}
	return out
}

// restGetter gives Helm clients for a rest.Config (envtest's admin) whose
// warnings go to a recorder.
type restGetter struct {
	cfg *rest.Config
	ns  string
}

func newRESTGetter(cfg *rest.Config, ns string, w *warnings) *restGetter {
	c := rest.CopyConfig(cfg)
	c.WarningHandler = w
	return &restGetter{cfg: c, ns: ns}
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(g.cfg)
	if err != nil {
		return nil, err
	}
	return versionedDiscovery{memory.NewMemCacheClient(dc)}, nil
}

// versionedDiscovery reports the envtest kube-apiserver as v1.37.2: built
// from its Go module without version ldflags, it says v0.0.0-master, which
// the chart's kubeVersion (>=1.31.0-0) rightly refuses.
type versionedDiscovery struct {
	discovery.CachedDiscoveryInterface
}

func (d versionedDiscovery) ServerVersion() (*version.Info, error) {
	v, err := d.CachedDiscoveryInterface.ServerVersion()
	if err != nil || !strings.HasPrefix(v.GitVersion, "v0.0.0") {
		return v, err
	}
	v.GitVersion, v.Major, v.Minor = kubeVersion.Version, kubeVersion.Major, kubeVersion.Minor
	return v, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	return restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(dc), dc, nil), nil
}

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	api := clientcmdapi.NewConfig()
	api.Clusters["envtest"] = &clientcmdapi.Cluster{Server: g.cfg.Host, CertificateAuthorityData: g.cfg.CAData}
	api.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: g.cfg.CertData, ClientKeyData: g.cfg.KeyData, Token: g.cfg.BearerToken,
	}
	api.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: g.ns}
	api.CurrentContext = "envtest"
	return clientcmd.NewDefaultClientConfig(*api, &clientcmd.ConfigOverrides{})
}

// helmConfig is an action.Configuration talking to the API server, storing
// releases as Secrets in ns.
func helmConfig(t testing.TB, cfg *rest.Config, ns string, w *warnings) *action.Configuration {
	t.Helper()
	ac := &action.Configuration{}
	require.NoError(t, ac.Init(newRESTGetter(cfg, ns, w), ns, "secret", func(format string, v ...any) {
		t.Logf("helm: %s", fmt.Sprintf(format, v...))
	}))
	return ac
}

// uninstallRelease uninstalls a release installed with crds.keep=false and
// waits until every CRD of the chart's group is gone. Waiting for one CRD is
// not enough: the API server deletes the five one by one, and the next
// test's install fails on one still terminating ("object is being deleted").
func uninstallRelease(t testing.TB, cfg *action.Configuration, rel string) {
	t.Helper()
	_, err := action.NewUninstall(cfg).Run(rel)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		crds := &apiextensionsv1.CustomResourceDefinitionList{}
		if err := env.Client.List(context.Background(), crds); err != nil {
			return false
		}
		for _, crd := range crds.Items {
			if crd.Spec.Group == v1alpha1.GroupVersion.Group {
				return false
			}
		}
		return true
	}, 60*time.Second, 200*time.Millisecond, "the chart's CRDs deleted")
}

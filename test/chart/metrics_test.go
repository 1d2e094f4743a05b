package chart

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestMetricsCertificate runs the manager binary with the arguments the
// chart renders for metrics.secretName (the mounted Secret's directory
// stands in for the volume) and scrapes /metrics as the chart's
// ServiceMonitor would: verifying the serving certificate against the
// Secret's ca.crt for the server name the ServiceMonitor names, with the
// token of a ServiceAccount bound to the metrics-reader ClusterRole. A
// client that does not trust that CA, or expects another name, is refused.
func TestMetricsCertificate(t *testing.T) {
	ctx := t.Context()
	c := env.Client

	// The Secret an administrator provides: a serving certificate for the
	// metrics Service, signed by a CA (client-go's helper makes both).
	rel, err := render(t, map[string]any{"metrics": map[string]any{
		"secretName": "metrics-serving", "serviceMonitor": map[string]any{"enabled": true},
	}})
	require.NoError(t, err)
	m := parse(t, rel.Manifest)
	tlsConfig := serviceMonitorEndpoint(t, m)["tlsConfig"].(map[string]any)
	serverName := tlsConfig["serverName"].(string)
	require.Equal(t, "wukong-metrics.wukong-system.svc", serverName)
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKeyWithFixtures(serverName, nil, nil, "")
	require.NoError(t, err)
	serving, rest := pem.Decode(certPEM)
	caBlock, _ := pem.Decode(rest)
	require.NotNil(t, serving)
	require.NotNil(t, caBlock, "the helper returns the serving certificate and its CA")
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"tls.crt": pem.EncodeToMemory(serving), "tls.key": keyPEM, "ca.crt": pem.EncodeToMemory(caBlock),
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}

	// The chart's manager arguments, with the Secret's directory and a free
	// local port; without leader election (no Role here) and probes.
	_, mc := managerOf(t, m)
	require.Len(t, mc.VolumeMounts, 1)
	mount := mc.VolumeMounts[0].MountPath
	port := freePort(t)
	var args []string
	for _, a := range mc.Args {
		switch {
		case a == "--metrics-cert-path="+mount:
			args = append(args, "--metrics-cert-path="+dir)
		case strings.HasPrefix(a, "--metrics-bind-address="):
			args = append(args, fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port))
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			args = append(args, "--health-probe-bind-address=0")
		case strings.HasPrefix(a, "--leader-elect"):
		default:
			args = append(args, a)
		}
	}
	require.Contains(t, args, "--metrics-cert-path="+dir, "the chart passes the mounted certificate: %v", mc.Args)
	installCRDs(t)
	exited, _ := runManagerBinary(t, args, "")

	// A scraper: a ServiceAccount bound to the chart's metrics-reader rule.
	const ns = "metrics-scraper"
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	require.NoError(t, c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prometheus"}}))
	reader := get[rbacv1.ClusterRole](t, m, "ClusterRole/wukong-metrics-reader")
	reader.ObjectMeta = metav1.ObjectMeta{Name: "metrics-test-reader"}
	require.NoError(t, c.Create(ctx, reader))
	require.NoError(t, c.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-test-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "prometheus"}},
	}))
	cs, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "prometheus", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem.EncodeToMemory(caBlock)))
	scrape := func(cfg *tls.Config) (int, string, error) {
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", port), nil)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+tr.Status.Token)
		resp, err := cl.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	verified := &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
	var body string
	require.Eventually(t, func() bool {
		if exited() {
			return true
		}
		code, b, err := scrape(verified)
		if err != nil || code != http.StatusOK {
			t.Logf("scrape: %d %v", code, err)
			return false
		}
		body = b
		return true
	}, 60*time.Second, 500*time.Millisecond, "scrape with the CA and the ServiceMonitor's server name")
	require.False(t, exited(), "the manager exited")
	assert.Contains(t, body, "controller_runtime_")

	_, _, err = scrape(&tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12})
	assert.ErrorContains(t, err, "certificate signed by unknown authority", "a client without the CA")
	_, _, err = scrape(&tls.Config{RootCAs: pool, ServerName: "other.wukong-system.svc", MinVersion: tls.VersionTLS12})
	assert.ErrorContains(t, err, "certificate is valid for", "a client expecting another name")
}

// freePort is a TCP port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// installCRDs creates the Wukong and NodeBridge CRDs (the chart's, from
// operator/config/crd) until the test ends, for a manager run without the
// chart; they are gone again before the next test installs the chart.
func installCRDs(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	for _, plural := range []string{"wukongs", "nodebridges"} {
		crd := fromYAMLFile[apiextensionsv1.CustomResourceDefinition](t, repoPath(t, "operator", "config", "crd", "vm.novasphere.dev_"+plural+".yaml"))
		require.NoError(t, env.Client.Create(ctx, crd))
		t.Cleanup(func() {
			bg := context.Background()
			require.NoError(t, env.Client.Delete(bg, crd))
			require.Eventually(t, func() bool {
				return apierrors.IsNotFound(env.Client.Get(bg, client.ObjectKeyFromObject(crd), &apiextensionsv1.CustomResourceDefinition{}))
			}, 30*time.Second, 200*time.Millisecond, "CRD %s deleted", crd.Name)
		})
	}
	waitEstablished(t, crdName)
}

var (
	managerBuild    sync.Once
	managerBin      string
	managerBuildErr error
)

// runManagerBinary builds operator/cmd/manager (once per test binary) and
// runs it with args against the test's API server until the test ends, as
// its admin or, with as set, impersonating that user. exited reports whether
// it stopped; log returns what it wrote so far.
func runManagerBinary(t *testing.T, args []string, as string) (exited func() bool, log func() string) {
	t.Helper()
	managerBuild.Do(func() {
		dir, err := os.MkdirTemp("", "wukong-manager-")
		if err != nil {
			managerBuildErr = err
			return
		}
		managerBin = filepath.Join(dir, "manager")
		build := exec.Command("go", "build", "-o", managerBin, "./cmd/manager")
		build.Dir = repoPath(t, "operator")
		if out, err := build.CombinedOutput(); err != nil {
			managerBuildErr = fmt.Errorf("%w: %s", err, out)
		}
	})
	require.NoError(t, managerBuildErr)
	bin := managerBin
	dir := t.TempDir()

	raw, err := newRESTGetter(env.Config, "default", &warnings{}).ToRawKubeConfigLoader().RawConfig()
	require.NoError(t, err)
	if as != "" {
		for _, a := range raw.AuthInfos {
			a.Impersonate = as
		}
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(raw, kubeconfig))
	// #nosec G204 -- the binary was just built from this repository.
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	logPath := filepath.Join(dir, "manager.log")
	done := runUntilTestEnds(t, "the manager", logPath, cmd)
	return func() bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		}, func() string {
			b, _ := os.ReadFile(logPath)
			return string(b)
		}
}

// Package kindup_test checks scripts/kind-up.sh and scripts/kind-down.sh
// without Docker: the --dry-run plan (every step, in order, with the pinned
// manifest URLs), that --dry-run executes nothing, the flag handling, and a
// full run against fake docker/kubectl/go/make/helm commands that record what
// they are asked to do (so the order, the cluster reuse, the Multus image
// pinning and the "step NAME failed" error path are exercised for real).
package kindup_test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	repoRoot   = mustAbs("../..")
	kindUp     = filepath.Join(repoRoot, "scripts", "kind-up.sh")
	kindDown   = filepath.Join(repoRoot, "scripts", "kind-down.sh")
	stepsInOrd = []string{
		"prerequisites", "cluster", "cni-plugins", "multus", "nmstate",
		"kubevirt", "cdi", "storageclass", "image-build", "image-load", "chart", "summary",
	}
)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

// The versions the scripts pin by default, from scripts/versions.env (the
// one place they are written): the plan must name these.
var (
	versions    = readVersions(filepath.Join(repoRoot, "scripts", "versions.env"))
	kindV       = pinned("KIND_VERSION")
	helmV       = pinned("HELM_VERSION")
	cniPluginsV = pinned("CNI_PLUGINS_VERSION")
	multusV     = pinned("MULTUS_VERSION")
	nmstateV    = pinned("NMSTATE_VERSION")
	kubevirtV   = pinned("KUBEVIRT_VERSION")
	cdiV        = pinned("CDI_VERSION")
	localPathV  = pinned("LOCAL_PATH_VERSION")
)

// readVersions reads a NAME=value file as scripts/versions.sh does: blank
// lines and # comments skipped, the value the rest of the line.
func readVersions(path string) map[string]string {
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, _ := strings.Cut(line, "=")
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		out[name] = value
	}
	return out
}

// pinned is versions.env's value of name; it panics when there is none.
func pinned(name string) string {
	v, ok := versions[name]
	if !ok || v == "" {
		panic("scripts/versions.env sets no " + name)
	}
	return v
}

// Environment variables the scripts read (every name of versions.env, which
// the environment overrides, and these); cleared so the defaults are tested.
var scriptEnv = append(slices.Sorted(maps.Keys(versions)),
	"KIND_CLUSTER_NAME", "KIND_NODE_IMAGE",
	"IMAGE_REPO", "IMAGE_TAG", "EMULATION", "WAIT_TIMEOUT", "KIND_UP_OUT_DIR", "KUBECONFIG",
	"E2E_SKIP_NODE_BRIDGES",
)

// fakeCmd logs "NAME ARGS" to $FAKE_LOG and fails when ARGS contain
// $FAKE_FAIL. kubectl, go (kind) add the few answers the script reads back.
const fakeCmd = `#!/usr/bin/env bash
echo "$(basename "$0") $*" >>"$FAKE_LOG"
if [ -n "${FAKE_FAIL:-}" ] && [[ "$*" == *"$FAKE_FAIL"* ]]; then echo "fake failure: $*" >&2; exit 1; fi
case "$(basename "$0") $*" in
  "kubectl apply -f -") cat >>"$FAKE_DIR/applied.yaml" ;;
  "kubectl create --dry-run=client -o yaml -f "*)
    printf 'image: ghcr.io/k8snetworkplumbingwg/multus-cni:snapshot-thick\nmemory: "50Mi"\n' ;;
  "kubectl annotate "*) touch "$FAKE_DIR/sc-default" ;;
  "kubectl get storageclass -o jsonpath="*)
    if [ -n "${FAKE_DEFAULT_SC:-}" ]; then echo "$FAKE_DEFAULT_SC"; elif [ -e "$FAKE_DIR/sc-default" ]; then echo standard; fi ;;
  "go run sigs.k8s.io/kind@"*" get clusters") echo "${FAKE_CLUSTERS:-}" ;;
  "go run sigs.k8s.io/kind@"*" get nodes "*) printf 'n-control-plane\nn-worker\nn-worker2\n' ;;
  "go run sigs.k8s.io/kind@"*" get kubeconfig "*) echo "apiVersion: v1" ;;
esac
exit 0
`

type result struct {
	out  string // stdout + stderr
	code int
	log  string // every faked command, one a line
	dir  string // fake dir: applied.yaml, out/
}

// run runs script with args, PATH led by fake docker, kind, kubectl, go,
// helm, make and curl; env adds KEY=VALUE pairs.
func run(t *testing.T, script string, env []string, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.Mkdir(bin, 0o755))
	for _, name := range []string{"docker", "kind", "kubectl", "go", "helm", "make", "curl"} {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte(fakeCmd), 0o755))
	}
	logFile := filepath.Join(dir, "calls.log")
	require.NoError(t, os.WriteFile(logFile, nil, 0o644))

	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Dir = filepath.Join(repoRoot, "test", "kindup")
	base := []string{}
	for _, kv := range os.Environ() {
		keep := true
		for _, k := range append(scriptEnv, "PATH") {
			if strings.HasPrefix(kv, k+"=") {
				keep = false
			}
		}
		if keep {
			base = append(base, kv)
		}
	}
	cmd.Env = append(base,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"FAKE_LOG="+logFile, "FAKE_DIR="+dir, "KIND_UP_OUT_DIR="+filepath.Join(dir, "out"))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var exitErr *exec.ExitError
		require.ErrorAs(t, err, &exitErr, "bash did not run: %s", out)
		code = exitErr.ExitCode()
	}
	calls, err := os.ReadFile(logFile)
	require.NoError(t, err)
	return result{out: string(out), code: code, log: string(calls), dir: dir}
}

// assertOrder asserts each needle occurs in haystack, each after the previous.
func assertOrder(t *testing.T, haystack string, needles ...string) {
	t.Helper()
	last, lastNeedle := -1, ""
	for _, n := range needles {
		i := strings.Index(haystack, n)
		if !assert.GreaterOrEqual(t, i, 0, "missing %q", n) {
			continue
		}
		assert.Greater(t, i, last, "%q must come after %q", n, lastNeedle)
		last, lastNeedle = i, n
	}
}

func stepHeaders() []string {
	h := make([]string, len(stepsInOrd))
	for i, s := range stepsInOrd {
		h[i] = "==> " + s + "\n"
	}
	return h
}

func TestDryRunPrintsEveryStepAndPinnedURLInOrder(t *testing.T) {
	r := run(t, kindUp, nil, "--dry-run")
	require.Equal(t, 0, r.code, r.out)

	assertOrder(t, r.out, stepHeaders()...)
	assert.Equal(t, len(stepsInOrd), strings.Count(r.out, "\n==> "), "one header per step, no extra, none skipped")

	// Pinned defaults, in install order: CNI before KubeVirt, KubeVirt before
	// CDI, CDI and the StorageClass before the chart.
	assertOrder(t, r.out,
		"go run sigs.k8s.io/kind@"+kindV+" create cluster --name wukong",
		"https://github.com/containernetworking/plugins/releases/download/"+cniPluginsV+"/cni-plugins-linux-",
		"https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/"+multusV+"/deployments/multus-daemonset-thick.yml",
		"rollout status daemonset/kube-multus-ds",
		"https://github.com/nmstate/kubernetes-nmstate/releases/download/"+nmstateV+"/nmstate.io_nmstates.yaml",
		"https://github.com/nmstate/kubernetes-nmstate/releases/download/"+nmstateV+"/namespace.yaml",
		"https://github.com/nmstate/kubernetes-nmstate/releases/download/"+nmstateV+"/service_account.yaml",
		"https://github.com/nmstate/kubernetes-nmstate/releases/download/"+nmstateV+"/role.yaml",
		"https://github.com/nmstate/kubernetes-nmstate/releases/download/"+nmstateV+"/role_binding.yaml",
		"https://github.com/nmstate/kubernetes-nmstate/releases/download/"+nmstateV+"/operator.yaml",
		"kind: NMState",
		"https://github.com/kubevirt/kubevirt/releases/download/"+kubevirtV+"/kubevirt-operator.yaml",
		"https://github.com/kubevirt/kubevirt/releases/download/"+kubevirtV+"/kubevirt-cr.yaml",
		"developerConfiguration",
		`{"spec":{"configuration":{"network":{"binding":{"macvtap":{"domainAttachmentType":"tap"}}}}}}`,
		"kubectl -n kubevirt wait kubevirt/kubevirt --for=condition=Available",
		"https://github.com/kubevirt/containerized-data-importer/releases/download/"+cdiV+"/cdi-operator.yaml",
		"https://github.com/kubevirt/containerized-data-importer/releases/download/"+cdiV+"/cdi-cr.yaml",
		"kubectl wait cdi/cdi --for=condition=Available",
		"https://raw.githubusercontent.com/rancher/local-path-provisioner/"+localPathV+"/deploy/local-path-storage.yaml",
		"make -C "+repoRoot+" docker-build IMG=wukong.local/wukong-manager:dev",
		"go run sigs.k8s.io/kind@"+kindV+" load docker-image wukong.local/wukong-manager:dev --name wukong",
		"go run helm.sh/helm/v3/cmd/helm@"+helmV+" upgrade --install wukong "+repoRoot+"/charts/wukong -n wukong-system --create-namespace",
		"image.repository=wukong.local/wukong-manager,image.tag=dev,image.pullPolicy=IfNotPresent --wait",
		"E2E_KUBECONFIG=",
	)
	// The cluster shape and the kind-on-containers caveat are stated.
	assert.Equal(t, 2, strings.Count(r.out, "- role: worker"))
	assert.Equal(t, 1, strings.Count(r.out, "- role: control-plane"))
	assert.Contains(t, r.out, "disableDefaultCNI: false")
	assert.Contains(t, r.out, "NOT really configured")
	assert.Contains(t, r.out, "E2E_SKIP_NODE_BRIDGES=1")
	assert.Contains(t, r.out, "software emulation")
	assert.Contains(t, r.out, "make e2e-run")
	assert.Contains(t, r.out, filepath.Join(r.dir, "out", "kind-wukong.kubeconfig"))

	assert.Empty(t, r.log, "--dry-run must execute nothing")
	assert.NoDirExists(t, filepath.Join(r.dir, "out"), "--dry-run must write nothing")
}

func TestDryRunVersionOverrides(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		want    []string
		notWant []string
	}{
		{
			name:    "kubevirt flag",
			args:    []string{"--kubevirt-version", "v1.8.2"},
			want:    []string{"kubevirt/releases/download/v1.8.2/kubevirt-operator.yaml", "kubevirt/releases/download/v1.8.2/kubevirt-cr.yaml"},
			notWant: []string{kubevirtV},
		},
		{
			name:    "cdi flag with =",
			args:    []string{"--cdi-version=v1.65.1"},
			want:    []string{"containerized-data-importer/releases/download/v1.65.1/cdi-operator.yaml"},
			notWant: []string{cdiV},
		},
		{
			name:    "multus and nmstate flags",
			args:    []string{"--multus-version", "v4.1.4", "--nmstate-version", "v0.85.1"},
			want:    []string{"multus-cni/v4.1.4/deployments/multus-daemonset-thick.yml", "multus-cni:v4.1.4-thick", "kubernetes-nmstate/releases/download/v0.85.1/operator.yaml"},
			notWant: []string{multusV, nmstateV},
		},
		{
			name:    "kind version and cluster name",
			args:    []string{"--kind-version", "v0.32.0", "--name", "demo"},
			want:    []string{"go run sigs.k8s.io/kind@v0.32.0 create cluster --name demo", "kind@v0.32.0 load docker-image wukong.local/wukong-manager:dev --name demo", "kind-demo.kubeconfig", "kind-down.sh --name demo"},
			notWant: []string{"kind@" + kindV, "--name wukong"},
		},
		{
			name:    "environment variables",
			env:     []string{"KUBEVIRT_VERSION=v1.7.0", "CDI_VERSION=v1.64.0", "HELM_VERSION=v3.21.0"},
			want:    []string{"kubevirt/releases/download/v1.7.0/", "releases/download/v1.64.0/cdi-cr.yaml", "helm@v3.21.0"},
			notWant: []string{kubevirtV, cdiV, helmV},
		},
		{
			name:    "flag beats environment",
			args:    []string{"--kubevirt-version", "v1.8.0"},
			env:     []string{"KUBEVIRT_VERSION=v1.7.0"},
			want:    []string{"kubevirt/releases/download/v1.8.0/"},
			notWant: []string{"v1.7.0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.want {
				for _, nw := range tc.notWant {
					require.NotContains(t, w, nw, "an override must differ from scripts/versions.env's version: pick another")
				}
			}
			r := run(t, kindUp, tc.env, append([]string{"--dry-run"}, tc.args...)...)
			require.Equal(t, 0, r.code, r.out)
			for _, w := range tc.want {
				assert.Contains(t, r.out, w)
			}
			for _, nw := range tc.notWant {
				assert.NotContains(t, r.out, nw)
			}
			assertOrder(t, r.out, stepHeaders()...)
			assert.Empty(t, r.log)
		})
	}
}

func TestDryRunEmulation(t *testing.T) {
	_, err := os.Stat("/dev/kvm")
	autoWant := fmt.Sprint(err != nil)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "on", args: []string{"--emulation", "on"}, want: "true"},
		{name: "off", args: []string{"--emulation=off"}, want: "false"},
		{name: "auto follows /dev/kvm", args: nil, want: autoWant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, kindUp, nil, append([]string{"--dry-run"}, tc.args...)...)
			require.Equal(t, 0, r.code, r.out)
			assert.Contains(t, r.out, `'{"spec":{"configuration":{"developerConfiguration":{"useEmulation":`+tc.want+`}}}}'`)
			if tc.want == "true" {
				assert.Contains(t, r.out, "software emulation ON")
			} else {
				assert.Contains(t, r.out, "software emulation OFF")
			}
			assert.Empty(t, r.log)
		})
	}
}

func TestDryRunSkipBuild(t *testing.T) {
	r := run(t, kindUp, nil, "--dry-run", "--skip-build", "--image-repo", "ghcr.io/x/wukong", "--image-tag", "v1")
	require.Equal(t, 0, r.code, r.out)
	assertOrder(t, r.out, stepHeaders()...)
	assert.Contains(t, r.out, "skipped (--skip-build): using the existing image ghcr.io/x/wukong:v1")
	assert.NotContains(t, r.out, "docker-build")
	assert.Contains(t, r.out, "image.repository=ghcr.io/x/wukong,image.tag=v1,image.pullPolicy=IfNotPresent")
	assert.Empty(t, r.log)
}

func TestBadInvocations(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown flag", args: []string{"--dry-run", "--bogus"}, want: "kind-up: unknown flag --bogus"},
		{name: "missing value", args: []string{"--kubevirt-version"}, want: "kind-up: flag --kubevirt-version needs a value"},
		{name: "flag as value", args: []string{"--name", "--dry-run"}, want: "kind-up: flag --name needs a value"},
		{name: "empty inline value", args: []string{"--name=", "--dry-run"}, want: "kind-up: flag --name needs a value"},
		{name: "bad emulation", args: []string{"--dry-run", "--emulation", "maybe"}, want: "--emulation must be auto, on or off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, kindUp, nil, tc.args...)
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.out, tc.want)
			assert.Empty(t, r.log)
		})
	}
	r := run(t, kindUp, nil, "--help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.out, "--kubevirt-version")
	assert.Empty(t, r.log)
}

func TestMissingPrerequisitesAreNamed(t *testing.T) {
	empty := t.TempDir()
	bash, err := exec.LookPath("bash")
	require.NoError(t, err)
	cmd := exec.Command(bash, kindUp)
	cmd.Env = []string{"PATH=" + empty, "HOME=" + empty, "KIND_UP_OUT_DIR=" + filepath.Join(empty, "out")}
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "kind-up: missing prerequisites: docker kubectl go make")
	assert.Contains(t, string(out), "kind-up: step prerequisites failed")
	assert.NotContains(t, string(out), "==> cluster")
}

// A non-dry run against the fakes, where everything "succeeds".
func TestFakeRunReusesClusterAndRunsStepsInOrder(t *testing.T) {
	r := run(t, kindUp, []string{"FAKE_CLUSTERS=other\nwukong", "EMULATION=on"})
	require.Equal(t, 0, r.code, r.out)
	assertOrder(t, r.out, stepHeaders()...)
	assert.Contains(t, r.out, "reusing existing kind cluster 'wukong'")
	assert.NotContains(t, r.log, "create cluster", "an existing cluster is reused")

	assertOrder(t, r.log,
		"docker info",
		"go run sigs.k8s.io/kind@"+kindV+" get clusters",
		"go run sigs.k8s.io/kind@"+kindV+" get kubeconfig --name wukong",
		"kubectl wait --for=condition=Ready nodes --all",
		"docker exec n-control-plane sh -c",
		"docker exec n-worker2 sh -c",
		"kubectl create --dry-run=client -o yaml -f https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/"+multusV+"/",
		"kubectl -n kube-system rollout status daemonset/kube-multus-ds",
		"kubectl apply -f https://github.com/nmstate/kubernetes-nmstate/releases/download/"+nmstateV+"/operator.yaml",
		"kubectl get crd nodenetworkconfigurationpolicies.nmstate.io",
		"kubectl apply -f https://github.com/kubevirt/kubevirt/releases/download/"+kubevirtV+"/kubevirt-operator.yaml",
		`"useEmulation":true`,
		"kubectl -n kubevirt wait kubevirt/kubevirt",
		"kubectl apply -f https://github.com/kubevirt/containerized-data-importer/releases/download/"+cdiV+"/cdi-operator.yaml",
		"kubectl wait cdi/cdi",
		"kubectl annotate --overwrite storageclass standard storageclass.kubernetes.io/is-default-class=true",
		"kubectl -n local-path-storage rollout status deployment/local-path-provisioner",
		"go run sigs.k8s.io/kind@"+kindV+" load docker-image wukong.local/wukong-manager:dev --name wukong",
		"go run helm.sh/helm/v3/cmd/helm@"+helmV+" upgrade --install wukong",
	)
	assert.Equal(t, 3, strings.Count(r.log, "docker exec n-")/2, "CNI plugins installed and checked on every node")
	assert.NotContains(t, r.log, "local-path-storage.yaml", "kind's 'standard' class is reused, not replaced")
	// Either the Makefile target or the direct Dockerfile build ran.
	assert.True(t, strings.Contains(r.log, "make -C "+repoRoot+" docker-build IMG=wukong.local/wukong-manager:dev") ||
		strings.Contains(r.log, "docker build -t wukong.local/wukong-manager:dev"), r.log)

	applied, err := os.ReadFile(filepath.Join(r.dir, "applied.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(applied), "ghcr.io/k8snetworkplumbingwg/multus-cni:"+multusV+"-thick", "Multus image pinned")
	assert.NotContains(t, string(applied), "snapshot-thick")
	assert.Contains(t, string(applied), "memory: 300Mi")
	assert.Contains(t, string(applied), "kind: NMState")

	out := filepath.Join(r.dir, "out")
	assert.FileExists(t, filepath.Join(out, "kind-wukong.kubeconfig"))
	env, err := os.ReadFile(filepath.Join(out, "kind-wukong.env"))
	require.NoError(t, err)
	assert.Contains(t, string(env), "export E2E_SKIP_NODE_BRIDGES=1")
	assert.Contains(t, string(env), "export E2E_KUBECONFIG="+filepath.Join(out, "kind-wukong.kubeconfig"))
}

func TestFakeRunCreatesMissingCluster(t *testing.T) {
	r := run(t, kindUp, []string{"FAKE_CLUSTERS=other", "FAKE_DEFAULT_SC=standard"}, "--name", "c2", "--skip-build")
	require.Equal(t, 0, r.code, r.out)
	cfg := filepath.Join(r.dir, "out", "kind-c2.yaml")
	assert.Contains(t, r.log, "go run sigs.k8s.io/kind@"+kindV+" create cluster --name c2 --config "+cfg)
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(data), "- role: worker"))
	assert.NotContains(t, r.log, "annotate", "an existing default StorageClass is kept")
	assert.NotContains(t, r.log, "docker-build")
	assert.NotContains(t, r.log, "docker build")
}

func TestFakeRunStepFailureStopsWithStepName(t *testing.T) {
	tests := []struct {
		name     string
		fail     string // fake commands whose arguments contain this fail
		step     string // the step that must be reported failed
		next     string // the step after it, which must not start
		notInLog string // a command of a later step, which must not run
	}{
		{name: "multus rollout", fail: "daemonset/kube-multus-ds", step: "multus", next: "nmstate", notInLog: "nmstate"},
		{name: "kubevirt never available", fail: "kubevirt/kubevirt --for=condition=Available", step: "kubevirt", next: "cdi", notInLog: "cdi-operator.yaml"},
		{name: "cdi operator", fail: "deployment/cdi-operator", step: "cdi", next: "storageclass", notInLog: "helm"},
		{name: "helm", fail: "upgrade --install", step: "chart", next: "summary", notInLog: "none-after-chart"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, kindUp, []string{"FAKE_CLUSTERS=wukong", "FAKE_FAIL=" + tc.fail})
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.out, "kind-up: step "+tc.step+" failed")
			assert.Contains(t, r.out, "kind-up: command failed")
			assert.NotContains(t, r.out, "==> "+tc.next)
			assert.NotContains(t, r.log, tc.notInLog, "nothing runs after the failed step")
			assert.NoFileExists(t, filepath.Join(r.dir, "out", "kind-wukong.env"))
		})
	}
}

func TestKindDown(t *testing.T) {
	r := run(t, kindDown, nil, "--dry-run", "--name", "demo")
	require.Equal(t, 0, r.code, r.out)
	assert.Contains(t, r.out, "go run sigs.k8s.io/kind@"+kindV+" delete cluster --name demo")
	assert.Contains(t, r.out, "kind-demo.kubeconfig")
	assert.Empty(t, r.log, "--dry-run must execute nothing")

	r = run(t, kindDown, nil, "--kind-version=v0.32.0")
	require.Equal(t, 0, r.code, r.out)
	assert.Equal(t, "go run sigs.k8s.io/kind@v0.32.0 delete cluster --name wukong\n", r.log)

	r = run(t, kindDown, nil, "--bogus")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.out, "kind-down: unknown flag --bogus")
	assert.Empty(t, r.log)
}

func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck not installed (apt-get install shellcheck); CI installs it")
	}
	out, err := exec.Command(sc, "--severity=style", kindUp, kindDown).CombinedOutput()
	assert.NoError(t, err, "shellcheck:\n%s", out)
}

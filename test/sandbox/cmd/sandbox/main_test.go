package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/novasphere/wukong/test/fixture"
	"github.com/novasphere/wukong/testenv"
)

// readyLine starts the line the sandbox prints once it is ready.
const readyLine = "Ready: "

// controlPlane are programs the sandbox always starts, by argv[0]'s base
// name; it may start more (admission servers). Every child is counted.
var controlPlane = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// sandboxBinary builds this command once per test run.
func sandboxBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sandbox-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "sandbox")
		// #nosec G204 -- the go tool building this package.
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binary
}

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	if binary != "" {
		_ = os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

type running struct {
	cmd        *exec.Cmd
	out        *fixture.SyncBuffer
	done       chan struct{}
	kubeconfig string
	children   []proc
}

// launch runs the sandbox binary, writing its kubeconfig into the test's
// temp dir. TMPDIR points there too, so whatever a killed sandbox leaves on
// disk is removed with it.
func launch(t *testing.T, args ...string) *running {
	t.Helper()
	bin := sandboxBinary(t)
	assets, err := testenv.Assets()
	require.NoError(t, err)
	tmp := t.TempDir()
	r := &running{out: &fixture.SyncBuffer{}, done: make(chan struct{}), kubeconfig: filepath.Join(tmp, "kubeconfig")}
	// #nosec G204 -- the binary built above.
	r.cmd = exec.Command(bin, append([]string{"--write-kubeconfig", r.kubeconfig}, args...)...)
	r.cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "KUBEBUILDER_ASSETS="+assets)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	// If this test process dies, the sandbox dies (and with it, by the
	// behaviour under test, its control plane).
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, r.cmd.Start())
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("sandbox output:\n%s", r.out)
		}
	})
	return r
}

// startSandbox runs the sandbox binary until it says it is ready and
// records its children.
func startSandbox(t *testing.T, args ...string) *running {
	t.Helper()
	r := launch(t, args...)
	assets, err := testenv.Assets()
	require.NoError(t, err)
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(r.out.String(), readyLine) {
		select {
		case <-r.done:
			t.Fatalf("sandbox exited before the operator ran:\n%s", r.out)
		case <-deadline:
			t.Fatalf("sandbox did not start within 3m:\n%s", r.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.children = childrenOf(t, r.cmd.Process.Pid)
	var names []string
	for _, c := range r.children {
		names = append(names, c.name)
		if _, err := os.Stat(filepath.Join(assets, c.name)); err == nil {
			// etcd and kube-apiserver start through the sandbox binary
			// (reexec.go), which must then have become the real one.
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.pid))
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(assets, c.name), exe, "%s runs the real binary", c.name)
		}
	}
	sort.Strings(names)
	t.Logf("children: %v", names)
	for _, want := range controlPlane {
		require.Contains(t, names, want, "the sandbox's child processes")
	}
	return r
}

// exited waits for the sandbox to exit and returns its exit code.
func (r *running) exited(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("sandbox still running %s after the signal:\n%s", within, r.out)
		return -1
	}
}

// TestInterrupt: on SIGINT (Ctrl-C) or SIGTERM the sandbox stops the
// operator and the control plane in order, says nothing about timeouts, and
// no child process is left. On the way, `kubectl get wk` (a Table request,
// as kubectl makes) shows a disk import's progress in the Disks and Import
// columns, and -o wide adds VM and Reason.
func TestInterrupt(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			var args []string
			if sig == syscall.SIGINT {
				examples := t.TempDir()
				b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "examples", "02-image-and-data-disk.yaml"))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(examples, "fedora.yaml"), b, 0o600))
				// Ten one-second steps: time to see the import mid-way.
				args = []string{"--examples", examples, "--import-interval", "1s", "--import-step", "10"}
			} else {
				args = []string{"--skip-examples"}
			}
			r := startSandbox(t, args...)
			if sig == syscall.SIGINT {
				t.Run("kubectl get wk shows the import", func(t *testing.T) { importColumns(t, r.kubeconfig) })
			}

			start := time.Now()
			require.NoError(t, r.cmd.Process.Signal(sig))
			code := r.exited(t, time.Minute)
			took := time.Since(start)
			t.Logf("stopped %d processes in %s", len(r.children), took.Round(time.Millisecond))
			out := r.out.String()
			assert.Equal(t, 0, code, out)
			assert.NotContains(t, out, "timeout waiting")
			assert.NotContains(t, out, "sandbox: stopping")
			assert.Contains(t, out, "Control plane stopped.")
			assert.Less(t, took, 15*time.Second, "graceful stop took too long")
			for _, c := range r.children {
				assert.False(t, c.alive(), "%s (pid %d) outlived the sandbox", c.name, c.pid)
			}
		})
	}
}

// TestExitWhenReady: with --exit-when-ready the sandbox exits on its own
// once the example is Ready, with the operator still running until then (the
// client that used to hold kube-apiserver's shutdown past envtest's timeout):
// exit 0, nothing about timeouts, no child left.
func TestExitWhenReady(t *testing.T) {
	examples := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "examples", "01-minimal.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(examples, "minimal.yaml"), b, 0o600))
	r := startSandbox(t, "--examples", examples, "--exit-when-ready", "--timeout", "3m")
	code := r.exited(t, 4*time.Minute)
	out := r.out.String()
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "All 1 Wukongs are Ready.")
	assert.NotContains(t, out, "timeout waiting")
	assert.NotContains(t, out, "sandbox: stopping")
	assert.Contains(t, out, "Control plane stopped.")
	for _, c := range r.children {
		assert.False(t, c.alive(), "%s (pid %d) outlived the sandbox", c.name, c.pid)
	}
}

// TestKubeconfigMeansReady: the kubeconfig file, what scripts and users
// wait for, appears only once the sandbox answers as a cluster does. The
// moment it exists, a VirtualMachine with an interface without a network
// and a DataVolume whose URL is not a URL are refused by KubeVirt's and
// CDI's validating webhooks, and a valid VirtualMachine is stored with the
// defaults KubeVirt's mutating webhook adds (firmware UUID and serial).
// Once the sandbox has stopped, the file is gone.
func TestKubeconfigMeansReady(t *testing.T) {
	r := launch(t, "--skip-examples")
	c := r.clientOnceKubeconfig(t)
	ctx := t.Context()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ready"}}
	require.NoError(t, c.Create(ctx, ns))
	noNetwork := readyVM(ns.Name, "iface-no-net")
	devices := &noNetwork.Spec.Template.Spec.Domain.Devices
	devices.Interfaces = append(devices.Interfaces, kubevirtv1.Interface{
		Name: "data", InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}},
	})
	err := c.Create(ctx, noNetwork)
	if assert.Error(t, err, "a VM with an interface without a network was admitted") {
		assert.Contains(t, err.Error(),
			`admission webhook "virtualmachine-validator.kubevirt.io" denied the request: spec.template.spec.domain.devices.interfaces[1].name 'data' not found.`)
	}

	dv := &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Name: "bad-url", Namespace: ns.Name}}
	dv.Spec.Source = &cdiv1.DataVolumeSource{HTTP: &cdiv1.DataVolumeSourceHTTP{URL: "not a url"}}
	dv.Spec.Storage = &cdiv1.StorageSpec{Resources: corev1.VolumeResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
	}}
	err = c.Create(ctx, dv)
	if assert.Error(t, err, "a DataVolume with an invalid URL was admitted") {
		assert.Contains(t, err.Error(),
			`admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request:  spec.source Invalid source URL: not a url`)
	}

	valid := readyVM(ns.Name, "valid")
	require.NoError(t, c.Create(ctx, valid))
	fw := valid.Spec.Template.Spec.Domain.Firmware
	if assert.NotNil(t, fw, "the VM was stored without KubeVirt's defaults") {
		assert.NotEmpty(t, fw.UUID)
		assert.NotEmpty(t, fw.Serial)
	}

	// It says so once it is ready, and stops as usual.
	deadline := time.After(time.Minute)
	for !strings.Contains(r.out.String(), readyLine) {
		select {
		case <-r.done:
			t.Fatalf("sandbox exited:\n%s", r.out)
		case <-deadline:
			t.Fatalf("no %q line:\n%s", readyLine, r.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, r.exited(t, time.Minute), r.out.String())
	assert.NoFileExists(t, r.kubeconfig, "the kubeconfig of a stopped sandbox")
}

// readyVM is a halted VirtualMachine with a pod network NIC.
func readyVM(ns, name string) *kubevirtv1.VirtualMachine {
	v := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	v.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyHalted)
	v.Spec.Template = &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
		Domain: kubevirtv1.DomainSpec{
			Memory: &kubevirtv1.Memory{Guest: ptr.To(resource.MustParse("1Gi"))},
			Devices: kubevirtv1.Devices{Interfaces: []kubevirtv1.Interface{{
				Name: "default", InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}},
			}}},
		},
		Networks: []kubevirtv1.Network{{Name: "default", NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}}},
	}}
	return v
}

// clientOnceKubeconfig waits for the sandbox's kubeconfig file to appear
// (it is written whole: a rename) and returns a client using it at once.
func (r *running) clientOnceKubeconfig(t *testing.T) client.Client {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	for {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			break
		}
		select {
		case <-r.done:
			t.Fatalf("sandbox exited before it wrote its kubeconfig:\n%s", r.out)
		case <-deadline:
			t.Fatalf("no kubeconfig within 3m:\n%s", r.out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", r.kubeconfig)
	require.NoError(t, err)
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, kubevirtv1.AddToScheme(scheme))
	require.NoError(t, cdiv1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)
	return c
}

// TestKilled: when the sandbox is killed (SIGKILL: no handler, no deferred
// Stop, like a test binary ended by its timeout) the kernel kills its control
// plane too.
func TestKilled(t *testing.T) {
	r := startSandbox(t, "--skip-examples")
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGKILL))
	r.exited(t, 10*time.Second)
	for _, c := range r.children {
		assert.Eventually(t, func() bool { return !c.alive() }, 10*time.Second, 50*time.Millisecond,
			"%s (pid %d) outlived the killed sandbox", c.name, c.pid)
	}
}

// importColumns polls the Wukong table until it has seen the fedora
// example's root disk importing (Import a percentage below 100, at most one
// of its two disks ready) and then both disks ready with Import empty.
func importColumns(t *testing.T, kubeconfig string) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	hc, err := rest.HTTPClientFor(cfg)
	require.NoError(t, err)
	url := cfg.Host + "/apis/vm.novasphere.dev/v1alpha1/namespaces/default/wukongs"
	percent := regexp.MustCompile(`^(\d+(\.\d+)?)%$`)

	var midway, done map[string]string
	var seen []string
	deadline := time.Now().Add(2 * time.Minute)
	for done == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		tbl, err := table(hc, url)
		if err != nil {
			t.Logf("table: %v", err)
			continue
		}
		row := rowOf(tbl, "fedora")
		if row == nil {
			continue
		}
		if line := row["Disks"] + " " + row["Import"]; len(seen) == 0 || seen[len(seen)-1] != line {
			seen = append(seen, line)
		}
		if m := percent.FindStringSubmatch(row["Import"]); m != nil && midway == nil {
			if p, _ := strconv.ParseFloat(m[1], 64); p < 100 && (row["Disks"] == "0/2" || row["Disks"] == "1/2") {
				midway = row
			}
		}
		if midway != nil && row["Disks"] == "2/2" {
			done = row
		}
	}
	t.Logf("Disks Import, as they changed: %q", seen)
	require.NotNil(t, midway, "never saw the import in progress")
	require.NotNil(t, done, "never saw both disks ready")
	assert.Empty(t, done["Import"], "Import is empty once no disk imports")

	// -o wide: the priority-1 columns.
	tbl, err := table(hc, url)
	require.NoError(t, err)
	priority := map[string]int32{}
	for _, c := range tbl.ColumnDefinitions {
		priority[c.Name] = c.Priority
	}
	assert.Equal(t, map[string]int32{
		"Name": 0, "Phase": 0, "CPU": 0, "Memory": 0, "Disks": 0, "Import": 0, "Node": 0, "IP": 0, "Ready": 0, "Age": 0,
		"VM": 1, "Reason": 1,
	}, priority)
	assert.Eventually(t, func() bool {
		tbl, err := table(hc, url)
		return err == nil && rowOf(tbl, "fedora")["VM"] == "fedora"
	}, time.Minute, 200*time.Millisecond, "the VM column names the VirtualMachine")
}

// table makes the request `kubectl get` makes: the server renders the CRD's
// printer columns.
func table(hc *http.Client, url string) (*metav1.Table, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	tbl := &metav1.Table{}
	if err := json.Unmarshal(b, tbl); err != nil {
		return nil, err
	}
	if tbl.Kind != "Table" {
		return nil, fmt.Errorf("got a %s, not a Table", tbl.Kind)
	}
	return tbl, nil
}

// rowOf returns the cells of the named row by column name, as text.
func rowOf(tbl *metav1.Table, name string) map[string]string {
	for _, r := range tbl.Rows {
		cells := map[string]string{}
		for i, c := range tbl.ColumnDefinitions {
			if i < len(r.Cells) && r.Cells[i] != nil {
				cells[c.Name] = fmt.Sprint(r.Cells[i])
			}
		}
		if cells["Name"] == name {
			return cells
		}
	}
	return nil
}

// proc is a process identified by pid and start time (so a reused pid is
// not mistaken for it).
type proc struct {
	pid   int
	name  string
	start string
}

// stat returns a process' state, parent pid and start time from
// /proc/<pid>/stat (proc(5): fields 3, 4 and 22).
func stat(pid int) (state string, ppid int, start string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, "", err
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, f[19], err
}

// alive: the process still exists and is not a zombie (killed, not yet
// reaped by its new parent).
func (p proc) alive() bool {
	state, _, start, err := stat(p.pid)
	return err == nil && start == p.start && state != "Z" && state != "X"
}

// childrenOf lists the live child processes of pid with argv[0]'s base name.
func childrenOf(t *testing.T, pid int) []proc {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []proc
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		state, ppid, start, err := stat(child)
		if err != nil || ppid != pid || state == "Z" {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		out = append(out, proc{pid: child, name: filepath.Base(argv0), start: start})
	}
	return out
}

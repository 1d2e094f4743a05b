package reliability_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/fixture"
	"github.com/novasphere/wukong/test/sandbox"
)

// The contract every child of a Wukong carries.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelWukong    = "vm.novasphere.dev/wukong"
	poll           = 200 * time.Millisecond
)

// A NodeBridge's policy: wukong-br-<bridge>, its state "up" or "absent".
const (
	policyPrefix          = "wukong-br-"
	annotationBridgeState = "vm.novasphere.dev/bridge-state"
	// labelTestNamespace marks the NodeBridges declared for one test
	// namespace; the namespace's cleanup deletes them.
	labelTestNamespace = "reliability.novasphere.dev/namespace"
)

// newNamespace creates a namespace on c for one test and deletes it (with
// its Wukongs) at the end; on failure it logs every Wukong's status first.
func newNamespace(t *testing.T, c client.Client, prefix string) string {
	t.Helper()
	name := "rel-" + prefix + "-" + randSuffix()
	require.NoError(t, c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			dumpWukongs(t, c, name)
		}
		list := &v1alpha1.WukongList{}
		if err := c.List(ctx, list, client.InNamespace(name)); err == nil {
			for i := range list.Items {
				_ = c.Delete(ctx, &list.Items[i])
			}
		}
		_ = c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
		_ = c.DeleteAllOf(ctx, &v1alpha1.NodeBridge{}, client.MatchingLabels{labelTestNamespace: name})
	})
	return name
}

// declareBridge does what a cluster administrator does before a tenant can
// attach to node bridge name: a NodeBridge with uplinks that only namespace
// ns may use. spec (optional) adjusts the rest. The NodeBridge is deleted
// with ns (newNamespace), not with t: a catalog entry declares it in one
// subtest and fixes the Wukong in another.
func declareBridge(t *testing.T, c client.Client, ns, name string, uplinks []string, spec ...func(*v1alpha1.NodeBridgeSpec)) *v1alpha1.NodeBridge {
	t.Helper()
	d := &v1alpha1.NodeBridge{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{labelTestNamespace: ns}},
		Spec: v1alpha1.NodeBridgeSpec{
			Uplinks:           uplinks,
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
		},
	}
	for _, f := range spec {
		f(&d.Spec)
	}
	require.NoError(t, c.Create(t.Context(), d), "declaring NodeBridge %s", name)
	return d
}

// getPolicy reads node bridge bridge's NodeNetworkConfigurationPolicy.
func getPolicy(c require.TestingT, kc client.Client, bridge string) *nmstatev1.NodeNetworkConfigurationPolicy {
	p := &nmstatev1.NodeNetworkConfigurationPolicy{}
	require.NoError(c, kc.Get(context.Background(), types.NamespacedName{Name: policyPrefix + bridge}, p), "NNCP of %s", bridge)
	return p
}

// assertBridgeReady: the NodeBridge is Ready for its current generation and
// its policy, the only one controlled by it, configures the bridge (state
// up), has the NodeBridge as controller and carries no per-Wukong record.
func assertBridgeReady(c *assert.CollectT, kc client.Client, bridge string) {
	d := &v1alpha1.NodeBridge{}
	require.NoError(c, kc.Get(context.Background(), types.NamespacedName{Name: bridge}, d), "NodeBridge %s", bridge)
	ready := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ReadyCondition)
	if assert.NotNil(c, ready, "NodeBridge %s Ready", bridge) {
		assert.Equal(c, metav1.ConditionTrue, ready.Status, "NodeBridge %s Ready: %s", bridge, ready.Message)
	}
	assert.Equal(c, d.Generation, d.Status.ObservedGeneration, "NodeBridge %s observedGeneration", bridge)
	assert.Equal(c, policyPrefix+bridge, d.Status.PolicyName, "NodeBridge %s status.policyName", bridge)
	p := getPolicy(c, kc, bridge)
	ref := metav1.GetControllerOf(p)
	if assert.NotNil(c, ref, "NNCP %s controller", p.Name) {
		assert.Equal(c, "NodeBridge", ref.Kind, "NNCP %s controller kind", p.Name)
		assert.Equal(c, d.UID, ref.UID, "NNCP %s controller is NodeBridge %s", p.Name, bridge)
	}
	assert.Equal(c, "up", p.Annotations[annotationBridgeState], "NNCP %s state", p.Name)
	assert.NotContains(c, p.Annotations, "vm.novasphere.dev/holders", "NNCP %s: tenants' Wukongs are not recorded on it", p.Name)
	list := &nmstatev1.NodeNetworkConfigurationPolicyList{}
	require.NoError(c, kc.List(context.Background(), list))
	n := 0
	for i := range list.Items {
		if r := metav1.GetControllerOf(&list.Items[i]); r != nil && r.UID == d.UID {
			n++
		}
	}
	assert.Equal(c, 1, n, "policies controlled by NodeBridge %s", bridge)
}

// nodeBridgeCondition is the NodeBridge's condition of type t, or nil.
func nodeBridgeCondition(c require.TestingT, kc client.Client, bridge, t string) *metav1.Condition {
	d := &v1alpha1.NodeBridge{}
	require.NoError(c, kc.Get(context.Background(), types.NamespacedName{Name: bridge}, d), "NodeBridge %s", bridge)
	return meta.FindStatusCondition(d.Status.Conditions, t)
}

func dumpWukongs(t *testing.T, c client.Client, ns string) {
	list := &v1alpha1.WukongList{}
	if err := c.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Logf("listing Wukongs in %s: %v", ns, err)
		return
	}
	for _, w := range list.Items {
		out, _ := yaml.Marshal(map[string]any{"generation": w.Generation, "spec": w.Spec, "status": w.Status})
		t.Logf("Wukong %s/%s:\n%s", ns, w.Name, out)
	}
}

// bridgeNIC is a NIC on node bridge bridge; uplink (physicalInterface) is
// optional and must then be one of the NodeBridge's uplinks.
func bridgeNIC(name, bridge, uplink string) v1alpha1.NetworkSpec {
	return v1alpha1.NetworkSpec{Name: name, Type: v1alpha1.NetworkTypeBridge, BridgeName: bridge, PhysicalInterface: uplink}
}

func key(o client.Object) types.NamespacedName { return client.ObjectKeyFromObject(o) }

func eventually(t *testing.T, f func(c *assert.CollectT), msgAndArgs ...any) {
	t.Helper()
	require.EventuallyWithT(t, f, timeout, poll, msgAndArgs...)
}

func getWukong(c require.TestingT, kc client.Client, nn types.NamespacedName) *v1alpha1.Wukong {
	w := &v1alpha1.Wukong{}
	require.NoError(c, kc.Get(context.Background(), nn, w))
	return w
}

// assertRunning: phase Running, Ready True, status of the current
// generation, neither Stalled nor Reconciling.
func assertRunning(c assert.TestingT, w *v1alpha1.Wukong) bool {
	ready := cond(w, v1alpha1.ReadyCondition)
	return assert.Equal(c, v1alpha1.PhaseRunning, w.Status.Phase, "%s: phase", w.Name) &&
		assert.True(c, ready != nil && ready.Status == metav1.ConditionTrue, "%s: Ready", w.Name) &&
		assert.NotEmpty(c, w.Status.NodeName, "%s: status.nodeName", w.Name) &&
		assert.Equal(c, w.Generation, w.Status.ObservedGeneration, "%s: observedGeneration", w.Name) &&
		assert.Nil(c, cond(w, v1alpha1.StalledCondition), "%s: Stalled", w.Name) &&
		assert.Nil(c, cond(w, v1alpha1.ReconcilingCondition), "%s: Reconciling", w.Name)
}

func waitRunning(t *testing.T, kc client.Client, nn types.NamespacedName) *v1alpha1.Wukong {
	t.Helper()
	var w *v1alpha1.Wukong
	eventually(t, func(c *assert.CollectT) {
		w = getWukong(c, kc, nn)
		assertRunning(c, w)
	}, "Wukong %s to be Running", nn)
	return w
}

// updateWukong applies mutate to the live Wukong, retrying on conflicts.
func updateWukong(t *testing.T, kc client.Client, nn types.NamespacedName, mutate func(*v1alpha1.Wukong)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		w := &v1alpha1.Wukong{}
		if err := kc.Get(context.Background(), nn, w); err != nil {
			return err
		}
		mutate(w)
		return kc.Update(context.Background(), w)
	}))
}

// poke changes an annotation, which starts a reconcile: the operator looks
// again at objects it does not watch (user NADs and Secrets, CRDs) only
// after a minute or more (StalledRetry).
func poke(t *testing.T, kc client.Client, nn types.NamespacedName) {
	t.Helper()
	updateWukong(t, kc, nn, func(w *v1alpha1.Wukong) {
		if w.Annotations == nil {
			w.Annotations = map[string]string{}
		}
		w.Annotations["reliability.novasphere.dev/poke"] = time.Now().Format(time.RFC3339Nano)
	})
}

func isGone(kc client.Client, obj client.Object, nn types.NamespacedName) bool {
	return apierrors.IsNotFound(kc.Get(context.Background(), nn, obj))
}

func vmExists(kc client.Client, nn types.NamespacedName) bool {
	return !isGone(kc, &kubevirtv1.VirtualMachine{}, nn)
}

func sshSecret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{v1alpha1.SSHAuthorizedKeysLabel: "true"}},
		Data: map[string][]byte{"alice": []byte(
			"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@example.com")},
	}
}

// --- The second sandbox, for the tests that run managers as processes. ---

var (
	sharedOnce sync.Once
	sharedSB   *sandbox.Sandbox
	sharedErr  error
)

// sharedSandbox is a sandbox without an in-process manager, started on first
// use; tests using it run their own manager processes and must stop them.
func sharedSandbox(t *testing.T) (*sandbox.Sandbox, client.Client) {
	t.Helper()
	sharedOnce.Do(func() {
		sharedSB, sharedErr = sandbox.Start(context.Background(), sandbox.Options{LogWriter: io.Discard})
	})
	require.NoError(t, sharedErr, "starting the second sandbox")
	c, err := newClient(sharedSB.Config)
	require.NoError(t, err)
	return sharedSB, c
}

func stopSharedSandbox() {
	if sharedSB != nil {
		_ = sharedSB.Stop()
	}
}

// managerProc is cmd/manager running as a child process.
type managerProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startManager runs the manager binary against kubeconfig; its output goes
// to a file in the test's temp dir. It is killed (-9) at the end of the test
// if still running.
func startManager(t *testing.T, kubeconfig, name string, args ...string) *managerProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	args = append([]string{"--kubeconfig=" + kubeconfig, "--metrics-bind-address=0", "--health-probe-bind-address=0"}, args...)
	cmd := exec.Command(managerBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	p := &managerProc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, tail(p.output(), 3000))
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to exit.
func (p *managerProc) kill() {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

func (p *managerProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *managerProc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// listChildren returns every object of the child kinds in ns labelled with
// the Wukong label, as "Kind/name" -> the label's value.
func listChildren(t require.TestingT, kc client.Client, ns string) map[string]string {
	out := map[string]string{}
	lists := map[string]client.ObjectList{
		"NetworkAttachmentDefinition": &nadv1.NetworkAttachmentDefinitionList{},
		"PersistentVolumeClaim":       &corev1.PersistentVolumeClaimList{},
		"DataVolume":                  &cdiv1.DataVolumeList{},
		"Secret":                      &corev1.SecretList{},
		"VirtualMachine":              &kubevirtv1.VirtualMachineList{},
	}
	for kind, l := range lists {
		require.NoError(t, kc.List(context.Background(), l, client.InNamespace(ns), client.HasLabels{labelWukong}))
		items, err := meta.ExtractList(l)
		require.NoError(t, err)
		for _, it := range items {
			o := it.(client.Object)
			out[kind+"/"+o.GetName()] = o.GetLabels()[labelWukong]
		}
	}
	return out
}

func objMeta(nn types.NamespacedName) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: nn.Namespace, Name: nn.Name}
}

func retryOnConflict(f func() error) error { return retry.RetryOnConflict(retry.DefaultRetry, f) }

// Shared with the other suite (package fixture).
var (
	newWukong  = fixture.Wukong
	cond       = fixture.Cond
	randSuffix = fixture.RandSuffix
	userNAD    = fixture.UserNAD
)

// pokeBridge changes an annotation on NodeBridge bridge, as an
// administrator's edit would, which starts its reconcile.
func pokeBridge(t *testing.T, c client.Client, bridge string) {
	t.Helper()
	require.NoError(t, retryOnConflict(func() error {
		d := &v1alpha1.NodeBridge{}
		if err := c.Get(context.Background(), types.NamespacedName{Name: bridge}, d); err != nil {
			return err
		}
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations["reliability.novasphere.dev/poke"] = time.Now().Format(time.RFC3339Nano)
		return c.Update(context.Background(), d)
	}))
}

// bridgePorts reads the ports of the bridges a policy configures (its
// desired state is NMState YAML).
func bridgePorts(c require.TestingT, p *nmstatev1.NodeNetworkConfigurationPolicy) []string {
	var state struct {
		Interfaces []struct {
			Bridge struct {
				Port []struct {
					Name string `json:"name"`
				} `json:"port"`
			} `json:"bridge"`
		} `json:"interfaces"`
	}
	require.NoError(c, yaml.Unmarshal(p.Spec.DesiredState.Raw, &state), "the desired state of %s", p.Name)
	var ports []string
	for _, i := range state.Interfaces {
		for _, port := range i.Bridge.Port {
			ports = append(ports, port.Name)
		}
	}
	return ports
}

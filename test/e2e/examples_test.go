package e2e_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/examples"
)

// examplesDir is the repository's examples/ folder (the test runs in test/e2e).
var examplesDir = filepath.Join("..", "..", "examples")

// TestExamples applies every manifest in examples/ and checks each Wukong
// converges to Running with full status, and that kstatus reads its
// conditions: InProgress while converging, Current once Running.
func TestExamples(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume, kindNAD, kindNNCP)
	needInternet(t)
	needSecondaryNICGuests(t)
	t.Parallel()
	ns := newNamespace(t)
	objs, err := examples.Load(examplesDir)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(examples.Wukongs(objs)), 6, "examples/ should hold the documented Wukongs")
	if skipBridges {
		objs = withoutNodeBridges(t, objs)
	}
	names := examples.Wukongs(objs)
	// The administrator's declarations (NodeBridges) are cluster-scoped:
	// remove them with the test.
	for _, o := range objs {
		namespaced, err := k.IsObjectNamespaced(o)
		require.NoError(t, err, "%s %s", o.GetKind(), o.GetName())
		if !namespaced {
			t.Cleanup(func() { _ = client.IgnoreNotFound(k.Delete(context.Background(), o.DeepCopy())) })
		}
	}

	// Watch kstatus from the moment the examples are applied.
	seen := newKstatusLog()
	ctx, stop := context.WithCancel(ctxT(t))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen.poll(ctx, ns)
	}()
	defer func() { stop(); wg.Wait() }()

	require.NoError(t, examples.LabelNamespace(ctxT(t), k, ns))
	require.NoError(t, examples.Apply(ctxT(t), k, ns, objs))

	for _, name := range names {
		nn := types.NamespacedName{Namespace: ns, Name: name}
		eventually(t, 1.5, func(c *assert.CollectT) {
			w := getWukong(c, k, nn)
			if !assertRunning(c, w) {
				return
			}
			require.NotEmpty(c, w.Status.Networks, "status.networks")
			for _, n := range w.Status.Networks {
				assert.NotEmpty(c, n.IPAddress, "NIC %s IP", n.Name)
				assert.NotEmpty(c, n.MACAddress, "NIC %s MAC", n.Name)
			}
			// Every spec NIC is reported, plus the pod network.
			for _, n := range w.Spec.Networks {
				assert.NotNil(c, networkStatus(w, n.Name), "status.networks[%s]", n.Name)
			}
			assert.Len(c, w.Status.Volumes, len(w.Spec.Disks), "status.volumes")
			u := wukongUnstructured(c, nn)
			res, err := status.Compute(u)
			require.NoError(c, err)
			assert.Equal(c, status.CurrentStatus, res.Status, "kstatus of a Running Wukong: %s", res.Message)
		}, "example Wukong %s to be Running with full status", name)
	}

	if !skipBridges {
		web := getWukong(t, k, types.NamespacedName{Namespace: ns, Name: "web"})
		lan := networkStatus(web, "lan")
		require.NotNil(t, lan, "web reports NIC lan")
		assert.Equal(t, "192.168.100.10", lan.IPAddress, "web's static address on lan")
	}

	// 04: the macvlan NIC is a macvtap NAD bound with KubeVirt's macvtap
	// binding plugin, never the bridge binding (which cannot work over macvlan).
	worker := types.NamespacedName{Namespace: ns, Name: "worker"}
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), worker, vm))
	var data *kubevirtv1.Interface
	for i, iface := range vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		if iface.Name == "data" {
			data = &vm.Spec.Template.Spec.Domain.Devices.Interfaces[i]
		}
	}
	require.NotNil(t, data, "worker's VM has interface data")
	assert.Equal(t, &kubevirtv1.PluginBinding{Name: "macvtap"}, data.Binding)
	assert.Nil(t, data.Bridge, "no bridge binding for a macvlan NIC")
	nad := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "worker-data"}, nad))
	assert.Equal(t, "macvtap.network.kubevirt.io/eth2", nad.Annotations["k8s.v1.cni.cncf.io/resourceName"])
	assert.Contains(t, nad.Spec.Config, `"type":"macvtap"`)

	stop()
	wg.Wait()
	inProgress := seen.namesWith(status.InProgressStatus)
	assert.NotEmpty(t, inProgress, "kstatus should report InProgress for at least one Wukong while it converges; saw %v", seen.all())
	t.Logf("kstatus InProgress observed for %v", inProgress)
}

// withoutNodeBridges drops the examples that need a node bridge
// (E2E_SKIP_NODE_BRIDGES=1: the nodes cannot configure one): the
// NodeBridges and the Wukongs with a NIC on a node bridge (type bridge or
// ovs without nadName).
func withoutNodeBridges(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var kept []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "NodeBridge" && configuresNodes(o) {
			t.Logf("E2E_SKIP_NODE_BRIDGES=1: not declaring NodeBridge %s", o.GetName())
			continue
		}
		if o.GetKind() == "Wukong" && usesNodeBridge(o) {
			t.Logf("E2E_SKIP_NODE_BRIDGES=1: skipping example Wukong %s, whose NIC needs a node bridge", o.GetName())
			continue
		}
		kept = append(kept, o)
	}
	return kept
}

// configuresNodes: a NodeBridge of a bridge type (Wukong writes an NMState
// policy for it); macvtap and sriov declarations configure nothing.
func configuresNodes(o *unstructured.Unstructured) bool {
	typ, _, _ := unstructured.NestedString(o.Object, "spec", "type")
	return typ == "" || typ == string(v1alpha1.BridgeTypeLinux) || typ == string(v1alpha1.BridgeTypeOVS)
}

func usesNodeBridge(o *unstructured.Unstructured) bool {
	nets, _, _ := unstructured.NestedSlice(o.Object, "spec", "networks")
	for _, n := range nets {
		m, ok := n.(map[string]any)
		if !ok || m["nadName"] != nil {
			continue
		}
		if typ := m["type"]; typ == nil || typ == "bridge" || typ == "ovs" {
			return true
		}
	}
	return false
}

func wukongUnstructured(c require.TestingT, nn types.NamespacedName) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Wukong"))
	require.NoError(c, k.Get(context.Background(), nn, u))
	return u
}

// kstatusLog records every kstatus a set of Wukongs was seen in.
type kstatusLog struct {
	mu   sync.Mutex
	seen map[string]map[status.Status]bool
}

func newKstatusLog() *kstatusLog { return &kstatusLog{seen: map[string]map[status.Status]bool{}} }

func (l *kstatusLog) poll(ctx context.Context, ns string) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("WukongList"))
		if err := k.List(ctx, list, client.InNamespace(ns)); err == nil {
			for i := range list.Items {
				if res, err := status.Compute(&list.Items[i]); err == nil {
					l.add(list.Items[i].GetName(), res.Status)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (l *kstatusLog) add(name string, s status.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[name] == nil {
		l.seen[name] = map[status.Status]bool{}
	}
	l.seen[name][s] = true
}

func (l *kstatusLog) namesWith(s status.Status) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for n, m := range l.seen {
		if m[s] {
			out = append(out, n)
		}
	}
	return out
}

func (l *kstatusLog) all() map[string][]status.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]status.Status{}
	for n, m := range l.seen {
		for s := range m {
			out[n] = append(out[n], s)
		}
	}
	return out
}

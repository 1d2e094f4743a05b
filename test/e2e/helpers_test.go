package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/util/retry"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/fixture"
)

// The contract every child of a Wukong carries.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelWukong    = "vm.novasphere.dev/wukong"
	// cirros is small enough to import on a real cluster too.
	testImage = "docker://quay.io/kubevirt/cirros-container-disk-demo:latest"
	poll      = 200 * time.Millisecond
	// A NodeBridge's policy is wukong-br-<bridge>; its state annotation is
	// "up", or "absent" while it removes the bridge from the nodes.
	policyPrefix          = "wukong-br-"
	annotationBridgeState = "vm.novasphere.dev/bridge-state"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	return t.Context()
}

// newNamespace creates a namespace for one test and deletes it at the end.
// On failure it logs the status of every Wukong in it first.
func newNamespace(t *testing.T) string {
	t.Helper()
	base := strings.ToLower(strings.TrimPrefix(t.Name(), "Test"))
	base = strings.NewReplacer("/", "-", "_", "-").Replace(base)
	if len(base) > 40 {
		base = base[:40]
	}
	name := "e2e-" + strings.Trim(base, "-") + "-" + randSuffix()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"e2e.novasphere.dev/suite": "true"}}}
	require.NoError(t, k.Create(ctxT(t), ns))
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			dumpWukongs(t, name)
		}
		list := &v1alpha1.WukongList{}
		if err := k.List(ctx, list, client.InNamespace(name)); err == nil {
			for i := range list.Items {
				_ = k.Delete(ctx, &list.Items[i])
			}
		}
		_ = k.Delete(ctx, ns)
	})
	return name
}

func dumpWukongs(t *testing.T, ns string) {
	list := &v1alpha1.WukongList{}
	if err := k.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Logf("listing Wukongs in %s: %v", ns, err)
		return
	}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := k.List(context.Background(), pvcs, client.InNamespace(ns)); err == nil {
		for _, p := range pvcs.Items {
			t.Logf("PVC %s/%s: uid %s, phase %s, capacity %v, deleting %v", ns, p.Name, p.UID, p.Status.Phase, p.Status.Capacity.Storage(), p.DeletionTimestamp != nil)
		}
	}
	for _, w := range list.Items {
		out, _ := yaml.Marshal(map[string]any{"generation": w.Generation, "spec": w.Spec, "status": w.Status})
		t.Logf("Wukong %s/%s:\n%s", ns, w.Name, out)
		vm := &kubevirtv1.VirtualMachine{}
		if err := k.Get(context.Background(), key(&w), vm); err == nil {
			out, _ := yaml.Marshal(map[string]any{"generation": vm.Generation, "template.cpu": vm.Spec.Template.Spec.Domain.CPU, "status": vm.Status})
			t.Logf("VirtualMachine %s/%s:\n%s", ns, w.Name, out)
		}
		vmi := &kubevirtv1.VirtualMachineInstance{}
		if err := k.Get(context.Background(), key(&w), vmi); err == nil {
			out, _ := yaml.Marshal(map[string]any{"uid": vmi.UID, "cpu": vmi.Spec.Domain.CPU, "phase": vmi.Status.Phase, "node": vmi.Status.NodeName})
			t.Logf("VirtualMachineInstance %s/%s:\n%s", ns, w.Name, out)
		}
	}
}

// bridgeNIC is a NIC on node bridge bridge, which a NodeBridge must declare
// for the namespace (declareBridge, bridgeTenant). uplink
// (physicalInterface) is optional; when given it must be one of the
// NodeBridge's uplinks.
func bridgeNIC(name, bridge, uplink string) v1alpha1.NetworkSpec {
	return v1alpha1.NetworkSpec{Name: name, Type: v1alpha1.NetworkTypeBridge, BridgeName: bridge, PhysicalInterface: uplink}
}

// needNodeBridges skips a test that attaches a NIC to a node bridge where
// the nodes cannot have one (E2E_SKIP_NODE_BRIDGES=1, e.g. kind).
func needNodeBridges(t *testing.T) {
	t.Helper()
	if skipBridges {
		t.Skip("E2E_SKIP_NODE_BRIDGES=1: this test attaches a NIC to a NodeBridge, whose NMState policy this cluster's nodes cannot apply (no uplink to enslave, e.g. kind)")
	}
}

// needSecondaryNICGuests skips a test that needs a VM with a secondary NIC
// (Multus) running where the nodes cannot run one (E2E_NO_SECONDARY_NICS=1:
// KubeVirt's bridge binding adds a dummy link in the launcher pod,
// pkg/network/setup/netpod/netpod.go, which a kernel without CONFIG_DUMMY
// refuses).
func needSecondaryNICGuests(t *testing.T) {
	t.Helper()
	if noSecondaryNICs {
		t.Skip("E2E_NO_SECONDARY_NICS=1: this cluster's nodes cannot run a VM with a secondary NIC (KubeVirt's bridge binding needs dummy links, which the node's kernel lacks)")
	}
}

// needInternet skips a test whose Wukongs pull or import images from the
// internet where the cluster reaches none (E2E_OFFLINE=1).
func needInternet(t *testing.T) {
	t.Helper()
	if offline {
		t.Skip("E2E_OFFLINE=1: this test's Wukongs pull or import images from the internet, which the cluster does not reach")
	}
}

// bridgeName is a node bridge name unique to this run (at most 15
// characters: prefix of at most 7, then a dash-free random suffix).
func bridgeName(prefix string) string { return prefix + randSuffix() }

// bridgeTenant labels namespace ns, as an administrator would, so that the
// returned selector (a NodeBridge's namespaceSelector) selects it.
func bridgeTenant(t *testing.T, ns, bridge string) *metav1.LabelSelector {
	t.Helper()
	label := "bridges.e2e.novasphere.dev/" + bridge
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := &corev1.Namespace{}
		if err := k.Get(ctxT(t), types.NamespacedName{Name: ns}, n); err != nil {
			return err
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[label] = "tenant"
		return k.Update(ctxT(t), n)
	}), "labelling namespace %s", ns)
	return &metav1.LabelSelector{MatchLabels: map[string]string{label: "tenant"}}
}

// declareBridge does what a cluster administrator does before tenants can
// attach to node bridge name: a NodeBridge (linux-bridge) with uplinks, the
// VLANs tenants may tag (none: untagged only) and the namespaces that may
// use it (nil: none). spec (optional) adjusts the rest. The NodeBridge is
// deleted when the test ends (it waits for its users, then removes the
// bridge from the nodes).
func declareBridge(t *testing.T, name string, uplinks []string, vlans []v1alpha1.VLANRange, nsSelector *metav1.LabelSelector, spec ...func(*v1alpha1.NodeBridgeSpec)) *v1alpha1.NodeBridge {
	t.Helper()
	d := &v1alpha1.NodeBridge{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.NodeBridgeSpec{Uplinks: uplinks, AllowedVLANs: vlans, NamespaceSelector: nsSelector},
	}
	for _, f := range spec {
		f(&d.Spec)
	}
	create(t, d)
	t.Cleanup(func() { _ = client.IgnoreNotFound(k.Delete(context.Background(), d)) })
	return d
}

// tenantBridge is the common case: a NodeBridge on eth1 with no VLANs that
// only namespace ns may use.
func tenantBridge(t *testing.T, ns, prefix string) string {
	t.Helper()
	name := bridgeName(prefix)
	declareBridge(t, name, []string{"eth1"}, nil, bridgeTenant(t, ns, name))
	return name
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	require.NoError(t, k.Create(ctxT(t), obj), "creating %T %s", obj, obj.GetName())
}

func key(o client.Object) types.NamespacedName { return client.ObjectKeyFromObject(o) }

// eventually polls f until it collects no failure, within the scaled timeout
// times factor.
func eventually(t *testing.T, factor float64, f func(c *assert.CollectT), msgAndArgs ...any) {
	t.Helper()
	require.EventuallyWithT(t, f, time.Duration(float64(timeout)*factor), poll, msgAndArgs...)
}

func getWukong(c require.TestingT, k8s client.Client, nn types.NamespacedName) *v1alpha1.Wukong {
	w := &v1alpha1.Wukong{}
	require.NoError(c, k8s.Get(context.Background(), nn, w))
	return w
}

func condStatus(w *v1alpha1.Wukong, t string) metav1.ConditionStatus {
	if c := cond(w, t); c != nil {
		return c.Status
	}
	return ""
}

// assertRunning checks the Running contract: Ready True, phase Running, a
// node, status for the current generation, no Stalled/Reconciling.
func assertRunning(c assert.TestingT, w *v1alpha1.Wukong) bool {
	return assert.Equal(c, v1alpha1.PhaseRunning, w.Status.Phase, "phase") &&
		assert.Equal(c, metav1.ConditionTrue, condStatus(w, v1alpha1.ReadyCondition), "Ready") &&
		assert.NotEmpty(c, w.Status.NodeName, "status.nodeName") &&
		assert.Equal(c, w.Generation, w.Status.ObservedGeneration, "observedGeneration") &&
		assert.Nil(c, cond(w, v1alpha1.StalledCondition), "Stalled") &&
		assert.Nil(c, cond(w, v1alpha1.ReconcilingCondition), "Reconciling")
}

// waitRunning waits for assertRunning and returns the Wukong.
func waitRunning(t *testing.T, nn types.NamespacedName) *v1alpha1.Wukong {
	t.Helper()
	var w *v1alpha1.Wukong
	running := func(c *assert.CollectT) {
		w = getWukong(c, k, nn)
		assertRunning(c, w)
	}
	if !assert.EventuallyWithT(t, running, timeout, poll, "Wukong %s to be Running", nn) {
		stuckStatusDiagnosis(t, nn, running)
		t.FailNow()
	}
	return w
}

// updateWukong applies mutate to the live Wukong, retrying on conflicts.
func updateWukong(t *testing.T, nn types.NamespacedName, mutate func(*v1alpha1.Wukong)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		w := &v1alpha1.Wukong{}
		if err := k.Get(ctxT(t), nn, w); err != nil {
			return err
		}
		mutate(w)
		return k.Update(ctxT(t), w)
	}))
}

// poke changes an annotation: annotation changes start a reconcile, which
// the suite uses where the operator would otherwise retry only after a
// minute or more (objects it does not watch: user NADs, Secrets).
func poke(t *testing.T, nn types.NamespacedName) {
	t.Helper()
	updateWukong(t, nn, func(w *v1alpha1.Wukong) {
		if w.Annotations == nil {
			w.Annotations = map[string]string{}
		}
		w.Annotations["e2e.novasphere.dev/poke"] = time.Now().Format(time.RFC3339Nano)
	})
}

func networkStatus(w *v1alpha1.Wukong, name string) *v1alpha1.NetworkStatus {
	for i := range w.Status.Networks {
		if w.Status.Networks[i].Name == name {
			return &w.Status.Networks[i]
		}
	}
	return nil
}

func volumeStatus(w *v1alpha1.Wukong, name string) *v1alpha1.VolumeStatus {
	for i := range w.Status.Volumes {
		if w.Status.Volumes[i].Name == name {
			return &w.Status.Volumes[i]
		}
	}
	return nil
}

// assertGone asserts obj no longer exists.
func assertGone(c assert.TestingT, obj client.Object, nn types.NamespacedName) bool {
	err := k.Get(context.Background(), nn, obj)
	return assert.Truef(c, apierrors.IsNotFound(err), "%T %s should be gone (err=%v)", obj, nn, err)
}

// assertOwnedChild asserts the Wukong child contract: the managed-by and
// wukong labels and a controller owner reference to w.
func assertOwnedChild(c assert.TestingT, obj client.Object, w *v1alpha1.Wukong) {
	what := fmt.Sprintf("%T %s", obj, obj.GetName())
	assert.Equal(c, "wukong", obj.GetLabels()[labelManagedBy], "%s: label %s", what, labelManagedBy)
	assert.Equal(c, w.Name, obj.GetLabels()[labelWukong], "%s: label %s", what, labelWukong)
	ref := metav1.GetControllerOf(obj)
	if assert.NotNil(c, ref, "%s: controller owner reference", what) {
		assert.Equal(c, "Wukong", ref.Kind, what)
		assert.Equal(c, v1alpha1.GroupVersion.String(), ref.APIVersion, what)
		assert.Equal(c, w.Name, ref.Name, what)
		assert.Equal(c, w.UID, ref.UID, what)
	}
}

// The kinds of the projects Wukong drives; a test names those it needs
// with requireKinds.
var (
	kindVirtualMachine = schema.GroupVersionKind{Group: "kubevirt.io", Version: "v1", Kind: "VirtualMachine"}
	kindDataVolume     = schema.GroupVersionKind{Group: "cdi.kubevirt.io", Version: "v1beta1", Kind: "DataVolume"}
	kindNAD            = schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}
	kindNNCP           = schema.GroupVersionKind{Group: "nmstate.io", Version: "v1", Kind: "NodeNetworkConfigurationPolicy"}
)

// served caches, per group/version, the kinds the cluster serves
// (discovery), or the error that made discovery fail.
var served sync.Map // string -> servedKinds

type servedKinds struct {
	kinds map[string]bool
	err   error
}

// requireKinds skips t, naming what is missing, unless the cluster serves
// every kind in kinds (its CRD is installed: KubeVirt, CDI, Multus or
// kubernetes-nmstate). The sandbox serves them all; a plain cluster such
// as make local-cluster-up's serves none, and there these tests skip
// until the projects are installed.
func requireKinds(t *testing.T, kinds ...schema.GroupVersionKind) {
	t.Helper()
	var missing []string
	for _, gvk := range kinds {
		if !serves(t, gvk) {
			missing = append(missing, gvk.Kind+" ("+gvk.GroupVersion().String()+")")
		}
	}
	if len(missing) > 0 {
		t.Skipf("the cluster does not serve %s: install KubeVirt, CDI, Multus and kubernetes-nmstate to run this test", strings.Join(missing, ", "))
	}
	// The suite's Wukongs have disks (fixture.Wukong), whose claims bind
	// only where a default StorageClass provisions them. The sandbox has one;
	// make local-cluster-up has KubeVirt but no provisioner yet.
	if !inSandbox && !hasDefaultStorageClass(t) {
		t.Skip("the cluster has no default StorageClass (annotation storageclass.kubernetes.io/is-default-class) for the test Wukongs' disks")
	}
}

// hasDefaultStorageClass reports whether a StorageClass is marked default.
func hasDefaultStorageClass(t *testing.T) bool {
	t.Helper()
	classes := &storagev1.StorageClassList{}
	require.NoError(t, k.List(ctxT(t), classes), "listing StorageClasses")
	for _, sc := range classes.Items {
		if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			return true
		}
	}
	return false
}

// serves reports whether the cluster serves gvk (discovery, cached per
// group/version). A discovery error other than NotFound fails t.
func serves(t *testing.T, gvk schema.GroupVersionKind) bool {
	t.Helper()
	gv := gvk.GroupVersion().String()
	v, ok := served.Load(gv)
	if !ok {
		sk := servedKinds{kinds: map[string]bool{}}
		dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
		require.NoError(t, err, "discovery client")
		list, err := dc.ServerResourcesForGroupVersion(gv)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			sk.err = err
		default:
			for _, r := range list.APIResources {
				sk.kinds[r.Kind] = true
			}
		}
		v, _ = served.LoadOrStore(gv, sk)
	}
	sk := v.(servedKinds)
	require.NoError(t, sk.err, "discovering %s", gv)
	return sk.kinds[gvk.Kind]
}

// Shared with the other suite (package fixture).
var (
	newWukong  = fixture.Wukong
	cond       = fixture.Cond
	randSuffix = fixture.RandSuffix
	userNAD    = fixture.UserNAD
)

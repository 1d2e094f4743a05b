package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/kubectl/pkg/drain"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/manager"
	"github.com/novasphere/wukong/test/sandbox"
)

// Node maintenance (issue #30) in the sandbox: drains with kubectl
// drain's own code (k8s.io/kubectl/pkg/drain), KubeVirt's eviction
// admitter and the simulated evacuation and migration controllers
// (package sandbox, migration.go), users' migrations, and node loss.
//
// Each test runs its Wukongs on nodes of its own (sandbox.AddNode), which
// carry a taint and a label naming the test's namespace; the Wukongs reach
// them through what a tenant has, spec.highAvailability.nodeSelector and
// tolerations. Draining, cordoning or losing those nodes disturbs no other
// test.

// labelPool is the label of a test's own nodes (value: its namespace), and
// the key of their NoSchedule taint.
const labelPool = "e2e.novasphere.dev/maintenance-pool"

// needSandboxNodes skips tests that add, drain or lose nodes: they need
// the sandbox's simulated nodes.
func needSandboxNodes(t *testing.T) {
	t.Helper()
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	if !inSandbox {
		t.Skip("adds, drains and loses simulated nodes (sandbox only)")
	}
}

// parallelOnTwoNodes skips t outside the sandbox, runs it in parallel and
// gives it a namespace and two nodes of its own.
func parallelOnTwoNodes(t *testing.T) (ns, a, b string) {
	t.Helper()
	needSandboxNodes(t)
	t.Parallel()
	ns = newNamespace(t)
	nodes := ownNodes(t, ns, 2)
	return ns, nodes[0], nodes[1]
}

// assertStayed: w still runs on node with the same VMI (uid), and nothing
// migrated it.
func assertStayed(t *testing.T, w *v1alpha1.Wukong, node string, uid types.UID) {
	t.Helper()
	got := getWukong(t, k, key(w))
	assertRunning(t, got)
	assert.Equal(t, node, got.Status.NodeName)
	assert.Equal(t, uid, getVMI(t, key(w)).UID)
	assert.Empty(t, migrations(t, w.Namespace, w.Name))
}

// ownNodes adds n Ready nodes for the test (named <ns>-a, <ns>-b, ...),
// labelled and tainted labelPool=<ns>, deleted at the end.
func ownNodes(t *testing.T, ns string, n int) []string {
	t.Helper()
	var names []string
	for i := range n {
		name := fmt.Sprintf("%s-%c", ns, 'a'+i)
		taint := corev1.Taint{Key: labelPool, Value: ns, Effect: corev1.TaintEffectNoSchedule}
		// 172.20.x.y: a range no other sandbox node uses.
		addr := fmt.Sprintf("172.20.%d.%d", len(ns)%200, 10+i)
		require.NoError(t, sandbox.AddNode(ctxT(t), k, name, addr, nil, []corev1.Taint{taint}))
		t.Cleanup(func() { _ = k.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}) })
		require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			node := &corev1.Node{}
			if err := k.Get(ctxT(t), types.NamespacedName{Name: name}, node); err != nil {
				return err
			}
			node.Labels[labelPool] = ns
			return k.Update(ctxT(t), node)
		}))
		names = append(names, name)
	}
	return names
}

// onOwnNodes places w on the test's own nodes, as a tenant can:
// spec.highAvailability.nodeSelector and tolerations.
func onOwnNodes(w *v1alpha1.Wukong) {
	if w.Spec.HighAvailability == nil {
		w.Spec.HighAvailability = &v1alpha1.HighAvailability{}
	}
	w.Spec.HighAvailability.NodeSelector = map[string]string{labelPool: w.Namespace}
	w.Spec.HighAvailability.Tolerations = []corev1.Toleration{{Key: labelPool, Operator: corev1.TolerationOpEqual, Value: w.Namespace, Effect: corev1.TaintEffectNoSchedule}}
}

// rwxClass makes a StorageClass like the default one whose StorageProfile
// gives ReadWriteMany Filesystem claims (what an administrator writes for
// shared storage, e.g. a NFS or CephFS class), deleted at the end, and
// returns its name.
func rwxClass(t *testing.T) string {
	t.Helper()
	name := "rwx-" + randSuffix()
	sc := cloneDefaultStorageClass(t, name)
	create(t, sc)
	t.Cleanup(func() {
		_ = k.Delete(context.Background(), &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	sets := []cdiv1.ClaimPropertySet{{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
		VolumeMode:  ptr.To(corev1.PersistentVolumeFilesystem),
	}}
	eventually(t, 1, func(c *assert.CollectT) {
		require.NoError(c, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sp := &cdiv1.StorageProfile{}
			if err := k.Get(context.Background(), types.NamespacedName{Name: name}, sp); err != nil {
				return err
			}
			sp.Spec.ClaimPropertySets = sets
			return k.Update(context.Background(), sp)
		}))
	}, "StorageProfile %s to take ReadWriteMany", name)
	eventually(t, 1, func(c *assert.CollectT) {
		sp := &cdiv1.StorageProfile{}
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Name: name}, sp))
		if assert.NotEmpty(c, sp.Status.ClaimPropertySets) {
			assert.Equal(c, sets[0].AccessModes, sp.Status.ClaimPropertySets[0].AccessModes)
		}
	}, "CDI to report StorageProfile %s", name)
	return name
}

// maintWukong is a Wukong on the test's own nodes with eviction strategy
// es and its root disk on class (empty: the default class, ReadWriteOnce).
func maintWukong(ns, name string, es kubevirtv1.EvictionStrategy, class string) *v1alpha1.Wukong {
	w := newWukong(ns, name)
	w.Spec.EvictionStrategy = string(es)
	w.Spec.Disks[0].StorageClassName = class
	onOwnNodes(w)
	return w
}

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(restConfig)
	require.NoError(t, err)
	return cs
}

// setCordon cordons (or uncordons) node as kubectl cordon does.
func setCordon(t *testing.T, node string, on bool) {
	t.Helper()
	n := &corev1.Node{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: node}, n))
	h := &drain.Helper{Ctx: ctxT(t), Client: clientset(t), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	require.NoError(t, drain.RunCordonOrUncordon(h, n, on))
}

// drainNode runs kubectl drain's code on node (cordon, then evict every
// pod, retrying refused evictions every 5s until timeout, kubectl drain's
// EvictErrorRetryDelay) and returns its output.
func drainNode(t *testing.T, node string, timeout time.Duration) (string, error) {
	t.Helper()
	var out bytes.Buffer
	h := drainHelper(t, node, timeout, &out)
	setCordon(t, node, true)
	err := drain.RunNodeDrain(h, node)
	return out.String(), err
}

// drainHelper is kubectl drain's helper for node as the tests drain it:
// only the test's own pods (those in the node's labelPool namespace) are
// evicted. A parallel test (TestTenantAntiAffinity) may put a bare pod on
// any node, which kubectl drain refuses to delete without --force before
// it runs AdditionalFilters (its unreplicated filter comes first); Force
// lets such a pod reach the filter here, which skips every pod outside the
// test's namespace.
func drainHelper(t *testing.T, node string, timeout time.Duration, out *bytes.Buffer) *drain.Helper {
	t.Helper()
	n := &corev1.Node{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: node}, n))
	pool := n.Labels[labelPool]
	return &drain.Helper{
		Ctx: ctxT(t), Client: clientset(t), GracePeriodSeconds: -1, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		Timeout: timeout, Out: out, ErrOut: out, EvictErrorRetryDelay: 5 * time.Second, Force: true,
		AdditionalFilters: []drain.PodFilter{func(p corev1.Pod) drain.PodDeleteStatus {
			if pool != "" && p.Namespace != pool {
				return drain.MakePodDeleteStatusSkip()
			}
			return drain.MakePodDeleteStatusOkay()
		}},
	}
}

// runningOn starts w (placed on the test's nodes, one of them cordoned by
// the caller when it matters) and waits until it runs on node.
func runningOn(t *testing.T, w *v1alpha1.Wukong, node string) *v1alpha1.Wukong {
	t.Helper()
	create(t, w)
	got := waitRunning(t, key(w))
	require.Equal(t, node, got.Status.NodeName, "Wukong %s runs on %s", key(w), node)
	return got
}

// runningOnFirst starts w on a (b cordoned meanwhile, uncordoned after)
// and returns it Running with its VMI's UID.
func runningOnFirst(t *testing.T, w *v1alpha1.Wukong, a, b string) (*v1alpha1.Wukong, types.UID) {
	t.Helper()
	setCordon(t, b, true)
	got := runningOn(t, w, a)
	uid := getVMI(t, key(w)).UID
	setCordon(t, b, false)
	return got, uid
}

func getVMI(c require.TestingT, nn types.NamespacedName) *kubevirtv1.VirtualMachineInstance {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(c, k.Get(context.Background(), nn, vmi))
	return vmi
}

// phases records the distinct phases a Wukong goes through (polled every
// 50ms until the test ends).
func phases(t *testing.T, nn types.NamespacedName) func() []v1alpha1.Phase {
	t.Helper()
	var mu sync.Mutex
	var seen []v1alpha1.Phase
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			w := &v1alpha1.Wukong{}
			if err := k.Get(ctx, nn, w); err == nil {
				mu.Lock()
				if len(seen) == 0 || seen[len(seen)-1] != w.Status.Phase {
					seen = append(seen, w.Status.Phase)
				}
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() []v1alpha1.Phase {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// migrations are the VirtualMachineInstanceMigrations of VMI name.
func migrations(c require.TestingT, ns, name string) []kubevirtv1.VirtualMachineInstanceMigration {
	list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
	require.NoError(c, k.List(context.Background(), list, client.InNamespace(ns)))
	var out []kubevirtv1.VirtualMachineInstanceMigration
	for _, m := range list.Items {
		if m.Spec.VMIName == name {
			out = append(out, m)
		}
	}
	return out
}

func claimUID(t *testing.T, ns, name string) types.UID {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: name}, pvc))
	return pvc.UID
}

// TestDrainLiveMigrate: a Wukong with evictionStrategy LiveMigrate and its
// disk on ReadWriteMany storage is Migratable; kubectl drain of its node
// live-migrates it (KubeVirt refuses the eviction and its evacuation
// controller migrates): the Wukong goes Migrating, then Running on the
// other node with status.migration Succeeded, the same VMI and the same
// claim.
func TestDrainLiveMigrate(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	setCordon(t, b, true)
	w := maintWukong(ns, "mover", kubevirtv1.EvictionStrategyLiveMigrate, rwxClass(t))
	w = runningOn(t, w, a)
	m := cond(w, v1alpha1.MigratableCondition)
	require.NotNil(t, m, "Migratable")
	assert.Equal(t, metav1.ConditionTrue, m.Status, "Migratable: %s", m.Message)
	assert.NotContains(t, cond(w, v1alpha1.ReadyCondition).Message, "is refused", "nothing blocks a drain")
	uid := getVMI(t, key(w)).UID
	claim := claimUID(t, ns, "mover-root")
	setCordon(t, b, false)
	seen := phases(t, key(w))

	// The drain runs meanwhile (kubectl drain returns at its next retry,
	// 5s after KubeVirt refused the first eviction), so the time to
	// Running on b is measured on its own.
	var out bytes.Buffer
	h := drainHelper(t, a, scaled(60*time.Second), &out)
	start := time.Now()
	type result struct {
		out     string
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		n := &corev1.Node{}
		err := k.Get(ctxT(t), types.NamespacedName{Name: a}, n)
		if err == nil {
			err = drain.RunCordonOrUncordon(h, n, true)
		}
		if err == nil {
			err = drain.RunNodeDrain(h, a)
		}
		done <- result{out.String(), err, time.Since(start)}
	}()
	var got *v1alpha1.Wukong
	eventually(t, 1, func(c *assert.CollectT) {
		got = getWukong(c, k, key(w))
		assertRunning(c, got)
		assert.Equal(c, b, got.Status.NodeName)
		if assert.NotNil(c, got.Status.Migration, "status.migration") {
			assert.Equal(c, "Succeeded", got.Status.Migration.State)
		}
	}, "Wukong %s Running on %s after the drain", key(w), b)
	running := time.Since(start)
	r := <-done
	require.NoError(t, r.err, "drain: %s", r.out)
	assert.Contains(t, r.out, "Eviction triggered evacuation", "KubeVirt refuses the first eviction and evacuates")
	t.Logf("drain start to Wukong Running on %s: %s (the sandbox's transfer alone takes %s, up to 1s more); kubectl drain of %s finished after %s; phases %v",
		b, running.Round(time.Millisecond), sandbox.MigrationRunTime, a, r.elapsed.Round(time.Millisecond), seen())

	mig := got.Status.Migration
	assert.Equal(t, a, mig.SourceNode)
	assert.Equal(t, b, mig.TargetNode)
	assert.Empty(t, mig.FailureReason)
	if assert.NotNil(t, mig.StartTime) && assert.NotNil(t, mig.EndTime) {
		assert.False(t, mig.EndTime.Before(mig.StartTime), "endTime %s before startTime %s", mig.EndTime, mig.StartTime)
		t.Logf("migration %s -> %s: startTime %s, endTime %s", mig.SourceNode, mig.TargetNode, mig.StartTime.Format(time.RFC3339), mig.EndTime.Format(time.RFC3339))
	}
	ph := seen()
	i := slices.Index(ph, v1alpha1.PhaseMigrating)
	assert.GreaterOrEqual(t, i, 0, "the Wukong went Migrating: %v", ph)
	assert.Equal(t, v1alpha1.PhaseRunning, ph[len(ph)-1], "then Running: %v", ph)
	assert.NotContains(t, ph, v1alpha1.PhaseCreating, "a live migration does not restart the VM: %v", ph)
	assert.Equal(t, uid, getVMI(t, key(w)).UID, "the VMI was migrated, not restarted")
	assert.Equal(t, claim, claimUID(t, ns, "mover-root"), "the disk is the same claim")
}

// TestDrainNoneRestarts: with evictionStrategy None kubectl drain evicts
// the launcher pod: the guest stops and KubeVirt starts a new VMI on the
// other node; the Wukong is Running there, no migration recorded.
func TestDrainNoneRestarts(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, uid := runningOnFirst(t, maintWukong(ns, "none", kubevirtv1.EvictionStrategyNone, ""), a, b)
	claim := claimUID(t, ns, "none-root")
	seen := phases(t, key(w))

	start := time.Now()
	out, err := drainNode(t, a, scaled(60*time.Second))
	require.NoError(t, err, "drain: %s", out)
	assert.NotContains(t, out, "evacuation")
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		assert.Equal(c, b, got.Status.NodeName)
		assert.NotEqual(c, uid, getVMI(c, key(w)).UID, "a new VMI")
	}, "Wukong %s restarted on %s", key(w), b)
	t.Logf("None: drain start to Wukong Running on %s (new VMI): %s; phases %v", b, time.Since(start).Round(time.Millisecond), seen())
	got := getWukong(t, k, key(w))
	assert.Nil(t, got.Status.Migration, "nothing migrated")
	assert.Empty(t, migrations(t, ns, w.Name))
	assert.Equal(t, claim, claimUID(t, ns, "none-root"), "the disk is the same claim")
}

// TestDrainLiveMigrateIfPossibleRestarts: LiveMigrateIfPossible on a VM
// that cannot migrate (ReadWriteOnce disk): the drain evicts it and it
// restarts on the other node; no drain is blocked.
func TestDrainLiveMigrateIfPossibleRestarts(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, _ := runningOnFirst(t, maintWukong(ns, "ifpossible", kubevirtv1.EvictionStrategyLiveMigrateIfPossible, ""), a, b)
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assert.Equal(c, metav1.ConditionFalse, condStatus(got, v1alpha1.MigratableCondition), "Migratable")
		assert.NotContains(c, cond(got, v1alpha1.ReadyCondition).Message, "refused", "IfPossible never blocks a drain")
	}, "Wukong %s not Migratable", key(w))
	uid := getVMI(t, key(w)).UID

	start := time.Now()
	out, err := drainNode(t, a, scaled(60*time.Second))
	require.NoError(t, err, "drain: %s", out)
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		assert.Equal(c, b, got.Status.NodeName)
		assert.NotEqual(c, uid, getVMI(c, key(w)).UID, "a new VMI")
	}, "Wukong %s restarted on %s", key(w), b)
	t.Logf("LiveMigrateIfPossible (not migratable): drain start to Running on %s: %s", b, time.Since(start).Round(time.Millisecond))
	assert.Empty(t, migrations(t, ns, w.Name))
}

// TestDrainExternal: evictionStrategy External: KubeVirt refuses the
// eviction and only marks the VMI (evacuationNodeName) for an external
// controller; nothing migrates, the drain does not finish, and Ready
// notes the evacuation request.
func TestDrainExternal(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, uid := runningOnFirst(t, maintWukong(ns, "external", kubevirtv1.EvictionStrategyExternal, rwxClass(t)), a, b)

	out, err := drainNode(t, a, scaled(8*time.Second))
	require.Error(t, err, "the drain cannot finish: %s", out)
	assert.Contains(t, out, "Eviction triggered evacuation of VMI")
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		ready := cond(got, v1alpha1.ReadyCondition)
		if assert.NotNil(c, ready) {
			assert.Equal(c, metav1.ConditionTrue, ready.Status, "still Ready")
			assert.Contains(c, ready.Message, "a drain asked the VM to leave node "+a)
			assert.Contains(c, ready.Message, "eviction strategy External, from spec.evictionStrategy")
		}
	}, "Wukong %s to note the evacuation", key(w))
	got := getWukong(t, k, key(w))
	t.Logf("External: Ready %q", cond(got, v1alpha1.ReadyCondition).Message)
	assert.Equal(t, a, got.Status.NodeName)
	vmi := getVMI(t, key(w))
	assert.Equal(t, uid, vmi.UID)
	assert.Equal(t, a, vmi.Status.EvacuationNodeName)
	assert.Empty(t, migrations(t, ns, w.Name), "External: nothing migrates")
}

// TestDrainRefusedNotMigratable: LiveMigrate with a ReadWriteOnce disk:
// Migratable False (DisksNotLiveMigratable, naming spec.disks[0]), Ready
// says a drain is refused, and kubectl drain indeed gets 429s from
// KubeVirt's eviction admitter and does not finish; the VM keeps running.
func TestDrainRefusedNotMigratable(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, uid := runningOnFirst(t, maintWukong(ns, "pinned", kubevirtv1.EvictionStrategyLiveMigrate, ""), a, b)
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		m, ready := cond(got, v1alpha1.MigratableCondition), cond(got, v1alpha1.ReadyCondition)
		if assert.NotNil(c, m, "Migratable") && assert.NotNil(c, ready) {
			assert.Equal(c, metav1.ConditionFalse, m.Status)
			assert.Equal(c, string(kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable), m.Reason)
			assert.Contains(c, m.Message, "disk spec.disks[0] (root, claim pinned-root)")
			assert.Contains(c, m.Message, "ReadWriteOnce")
			assert.Contains(c, ready.Message, "a drain of node "+a+" is refused")
		}
	}, "Wukong %s to say a drain is blocked", key(w))
	got := getWukong(t, k, key(w))
	t.Logf("Migratable: %q; Ready: %q", cond(got, v1alpha1.MigratableCondition).Message, cond(got, v1alpha1.ReadyCondition).Message)

	out, err := drainNode(t, a, scaled(8*time.Second))
	require.Error(t, err, "the drain must not finish: %s", out)
	// kubectl drain retries only a 429 (TooManyRequests) this way.
	assert.Contains(t, out, `(will retry after 5s): admission webhook "virt-launcher-eviction-interceptor.kubevirt.io" denied the request: `+
		"VMI pinned is configured with an eviction strategy but is not live-migratable", "KubeVirt's admitter refused (429)")
	assertStayed(t, w, a, uid)
}

// TestMigrationByUser: a VirtualMachineInstanceMigration a user creates
// (virtctl migrate) moves the Wukong's VM; the Wukong reports it and does
// not undo it.
func TestMigrationByUser(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, uid := runningOnFirst(t, maintWukong(ns, "user", kubevirtv1.EvictionStrategyLiveMigrate, rwxClass(t)), a, b)
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(w), vm))
	seen := phases(t, key(w))

	m := &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "user-", Namespace: ns},
		Spec:       kubevirtv1.VirtualMachineInstanceMigrationSpec{VMIName: w.Name},
	}
	start := time.Now()
	create(t, m)
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		assert.Equal(c, b, got.Status.NodeName)
		if assert.NotNil(c, got.Status.Migration) {
			assert.Equal(c, "Succeeded", got.Status.Migration.State)
			assert.Equal(c, a, got.Status.Migration.SourceNode)
			assert.Equal(c, b, got.Status.Migration.TargetNode)
		}
	}, "Wukong %s migrated to %s", key(w), b)
	t.Logf("virtctl migrate: created to Wukong Running on %s: %s; phases %v", b, time.Since(start).Round(time.Millisecond), seen())
	assert.Contains(t, seen(), v1alpha1.PhaseMigrating)

	// Never undone: the VM stays on b, nothing else migrates or restarts
	// it, and the operator leaves the VM's spec alone.
	time.Sleep(3 * time.Second)
	got := getWukong(t, k, key(w))
	assertRunning(t, got)
	assert.Equal(t, b, got.Status.NodeName)
	assert.Equal(t, uid, getVMI(t, key(w)).UID)
	assert.Len(t, migrations(t, ns, w.Name), 1)
	after := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(w), after))
	assert.Equal(t, vm.Generation, after.Generation, "the VM's spec was not rewritten")
}

// TestMigrationFailed: a migration that fails (KubeVirt's functional-test
// annotation on the VMI, which an administrator may set) leaves the VM
// running on its node; the Wukong's status.migration is Failed with
// KubeVirt's failureReason.
func TestMigrationFailed(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, uid := runningOnFirst(t, maintWukong(ns, "failing", kubevirtv1.EvictionStrategyLiveMigrate, rwxClass(t)), a, b)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vmi := getVMI(t, key(w))
		if vmi.Annotations == nil {
			vmi.Annotations = map[string]string{}
		}
		vmi.Annotations[sandbox.ForceMigrationFailureAnnotation] = ""
		return k.Update(ctxT(t), vmi)
	}))

	create(t, &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "user-", Namespace: ns},
		Spec:       kubevirtv1.VirtualMachineInstanceMigrationSpec{VMIName: w.Name},
	})
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		if assert.NotNil(c, got.Status.Migration) {
			assert.Equal(c, "Failed", got.Status.Migration.State)
		}
		assertRunning(c, got)
	}, "Wukong %s to report the failed migration", key(w))
	got := getWukong(t, k, key(w))
	mig := got.Status.Migration
	t.Logf("failed migration: %+v", *mig)
	assert.Equal(t, sandbox.MessageForcedMigrationFailure, mig.FailureReason)
	assert.Equal(t, a, mig.SourceNode)
	assert.Equal(t, b, mig.TargetNode)
	assert.NotNil(t, mig.EndTime)
	assert.Equal(t, a, got.Status.NodeName, "still on the source node")
	assert.Equal(t, uid, getVMI(t, key(w)).UID)
}

// TestDrainHighAvailability: two HA Wukongs of one anti-affinity group
// (Required) on nodes a and b, a third node c: draining a migrates its VM
// to c, never to b (the migration target pod carries the VM's
// anti-affinity); draining c then finds no room (a is cordoned, b runs the
// other one): the migration's target pod stays unschedulable, the drain
// does not finish, the VM keeps running on c and Ready says the drain
// waits for a target node.
func TestDrainHighAvailability(t *testing.T) {
	needSandboxNodes(t)
	t.Parallel()
	ns := newNamespace(t)
	nodes := ownNodes(t, ns, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	class := rwxClass(t)
	ha := func(name string) *v1alpha1.Wukong {
		w := maintWukong(ns, name, kubevirtv1.EvictionStrategyLiveMigrate, class)
		w.Spec.HighAvailability.AntiAffinity = true
		return w
	}
	setCordon(t, b, true)
	setCordon(t, c, true)
	first := runningOn(t, ha("first"), a)
	setCordon(t, b, false)
	second := runningOn(t, ha("second"), b)
	setCordon(t, c, false)

	start := time.Now()
	out, err := drainNode(t, a, scaled(60*time.Second))
	require.NoError(t, err, "drain: %s", out)
	eventually(t, 1, func(ct *assert.CollectT) {
		got := getWukong(ct, k, key(first))
		assertRunning(ct, got)
		assert.Equal(ct, c, got.Status.NodeName, "the only node without a VM of the group")
		if assert.NotNil(ct, got.Status.Migration) {
			assert.Equal(ct, "Succeeded", got.Status.Migration.State)
		}
	}, "Wukong %s migrated to %s", key(first), c)
	t.Logf("HA: drain of %s to Wukong Running on %s: %s", a, c, time.Since(start).Round(time.Millisecond))
	assert.Equal(t, b, getWukong(t, k, key(second)).Status.NodeName, "the other one stays")

	// No room: c's VM can go nowhere.
	out, err = drainNode(t, c, scaled(8*time.Second))
	require.Error(t, err, "the drain of %s cannot finish: %s", c, out)
	var got *v1alpha1.Wukong
	eventually(t, 1, func(ct *assert.CollectT) {
		got = getWukong(ct, k, key(first))
		assert.Equal(ct, c, got.Status.NodeName)
		ready := cond(got, v1alpha1.ReadyCondition)
		if assert.NotNil(ct, ready) {
			assert.Equal(ct, metav1.ConditionTrue, ready.Status, "the guest still runs")
			assert.Contains(ct, ready.Message, "a drain asked the VM to leave node "+c+
				" (eviction strategy LiveMigrate, from spec.evictionStrategy): its live migration has not started")
		}
	}, "Wukong %s to say the drain waits", key(first))
	ms := migrations(t, ns, first.Name)
	var pending []string
	for _, m := range ms {
		if !m.IsFinal() {
			pending = append(pending, fmt.Sprintf("%s %s", m.Name, m.Status.Phase))
		}
	}
	assert.Len(t, pending, 1, "one migration waits for room: %v", pending)
	t.Logf("HA, no room: drain error %v; Wukong phase %s, Ready %q, migration %+v; unfinished migrations %v",
		err, got.Status.Phase, cond(got, v1alpha1.ReadyCondition).Message, got.Status.Migration, pending)
}

// nodeLossAfter is the suite operator's node-loss policy
// (--node-loss-restart-after): long enough that no other test, whose nodes
// stay Ready, is ever touched; the node-loss tests lose their node that
// long ago (sandbox.LoseNode's ago) or less.
const nodeLossAfter = 10 * time.Minute

// assertNodeLost: w reports node lost, NodeLost True and Ready False with
// reason and one message, which names the node and contains each of msgHas.
func assertNodeLost(c *assert.CollectT, w *v1alpha1.Wukong, reason, node string, msgHas ...string) {
	lost, ready := cond(w, v1alpha1.NodeLostCondition), cond(w, v1alpha1.ReadyCondition)
	if !assert.NotNil(c, lost, "NodeLost") || !assert.NotNil(c, ready, "Ready") {
		return
	}
	assert.Equal(c, metav1.ConditionTrue, lost.Status)
	assert.Equal(c, reason, lost.Reason)
	assert.Contains(c, lost.Message, "node "+node+" has been NotReady since")
	for _, m := range msgHas {
		assert.Contains(c, lost.Message, m)
	}
	assert.Equal(c, metav1.ConditionFalse, ready.Status)
	assert.Equal(c, reason, ready.Reason)
	assert.Equal(c, lost.Message, ready.Message, "Ready says the same")
}

// TestNodeLossWaiting: the node of a running Wukong is lost for less than
// the policy's time: NodeLost True NodeLostWaiting, Ready False saying when
// the policy acts; nothing is deleted. RestoreNode clears it.
func TestNodeLossWaiting(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, uid := runningOnFirst(t, maintWukong(ns, "waiting", "", ""), a, b)

	require.NoError(t, sandbox.LoseNode(ctxT(t), k, a, time.Minute))
	t.Cleanup(func() { _ = sandbox.RestoreNode(context.Background(), k, a) })
	eventually(t, 1, func(c *assert.CollectT) {
		assertNodeLost(c, getWukong(c, k, key(w)), v1alpha1.ReasonNodeLostWaiting, a, "once it has been so for "+nodeLossAfter.String())
	}, "Wukong %s to report the lost node", key(w))
	t.Logf("NodeLost: %q", cond(getWukong(t, k, key(w)), v1alpha1.NodeLostCondition).Message)
	vmi := getVMI(t, key(w))
	assert.Equal(t, uid, vmi.UID, "nothing restarted")
	assert.Equal(t, a, vmi.Status.NodeName)

	require.NoError(t, sandbox.RestoreNode(ctxT(t), k, a))
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		assert.Nil(c, cond(got, v1alpha1.NodeLostCondition), "NodeLost gone")
	}, "Wukong %s Running once the node is back", key(w))
}

// TestNodeLossNoPolicy: without the node-loss policy (the operator's
// default: --node-loss-restart-after and the chart's nodeLoss.restartAfter
// unset) a Wukong whose node has been lost for half an hour says so,
// NodeLost True and Ready False with reason NodeNotReady, and what an
// administrator can do (force-delete the VM's pod once the node is surely
// down, or enable the policy); nothing is deleted: the VMI and its
// virt-launcher pod stay, same UIDs, not terminating. RestoreNode clears
// it. The suite's operator runs with the policy, so this test starts a
// sandbox of its own whose operator runs without it, as such an install
// does.
func TestNodeLossNoPolicy(t *testing.T) {
	needSandboxNodes(t)
	t.Parallel()
	start := time.Now()
	sb, err := sandbox.Start(ctxT(t), sandbox.Options{LogWriter: io.Discard, Operator: func(cfg *rest.Config) (ctrl.Manager, error) {
		return manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0", SkipControllerNameValidation: true})
	}})
	require.NoError(t, err, "starting a sandbox whose operator has no node-loss policy")
	t.Cleanup(func() { _ = sb.Stop() })
	t.Logf("sandbox without the node-loss policy ready in %s", time.Since(start).Round(time.Millisecond))
	c, err := client.New(sb.Config, client.Options{Scheme: scheme})
	require.NoError(t, err)
	ctx := ctxT(t)
	const ns = "no-policy"
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	w := newWukong(ns, "stranded")
	require.NoError(t, c.Create(ctx, w))
	eventually(t, 2, func(ct *assert.CollectT) {
		w = getWukong(ct, c, key(w))
		assertRunning(ct, w)
	}, "Wukong %s Running", key(w))
	node := w.Status.NodeName
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, c.Get(ctx, key(w), vmi))
	launchers := func() ([]corev1.Pod, error) {
		pods := &corev1.PodList{}
		err := c.List(context.Background(), pods, client.InNamespace(ns), client.MatchingLabels{kubevirtv1.CreatedByLabel: string(vmi.UID)})
		return pods.Items, err
	}
	pods, err := launchers()
	require.NoError(t, err)
	require.Len(t, pods, 1)
	pod := pods[0]

	require.NoError(t, sandbox.LoseNode(ctx, c, node, 30*time.Minute))
	eventually(t, 1, func(ct *assert.CollectT) {
		assertNodeLost(ct, getWukong(ct, c, key(w)), v1alpha1.ReasonNodeNotReady, node,
			"no node-loss policy is set, so it is not restarted elsewhere",
			"kubectl delete pod -n "+ns+" -l kubevirt.io/created-by="+string(vmi.UID)+" --force --grace-period=0",
			"or enables the operator's node-loss policy")
	}, "Wukong %s to report the lost node", key(w))
	t.Logf("NodeLost: %q", cond(getWukong(t, c, key(w)), v1alpha1.NodeLostCondition).Message)

	// However long the node stays lost, nothing is deleted.
	assert.Never(t, func() bool {
		now := &kubevirtv1.VirtualMachineInstance{}
		if err := c.Get(context.Background(), key(w), now); err != nil || now.UID != vmi.UID || now.DeletionTimestamp != nil {
			return true
		}
		pods, err := launchers()
		return err != nil || len(pods) != 1 || pods[0].UID != pod.UID || pods[0].DeletionTimestamp != nil
	}, scaled(5*time.Second), poll, "the VMI or its launcher pod was deleted without a node-loss policy")
	assert.Equal(t, v1alpha1.ReasonNodeNotReady, cond(getWukong(t, c, key(w)), v1alpha1.NodeLostCondition).Reason, "still reported")

	require.NoError(t, sandbox.RestoreNode(ctx, c, node))
	eventually(t, 1, func(ct *assert.CollectT) {
		got := getWukong(ct, c, key(w))
		assertRunning(ct, got)
		assert.Equal(ct, node, got.Status.NodeName)
		assert.Nil(ct, cond(got, v1alpha1.NodeLostCondition), "NodeLost gone")
	}, "Wukong %s Running once the node is back", key(w))
	now := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, c.Get(ctx, key(w), now))
	assert.Equal(t, vmi.UID, now.UID, "the same VMI runs on")
}

// eventsWith lists the Events of namespace ns about the object named name
// with reason.
func eventsWith(ns, name, reason string) ([]eventsv1.Event, error) {
	list := &eventsv1.EventList{}
	if err := k.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out, nil
}

// occurrences counts what events record: an Event once, or its series'
// count (an events/v1 recorder folds a repeat of an Event into a series).
func occurrences(events []eventsv1.Event) int {
	n := 0
	for _, e := range events {
		if e.Series != nil {
			n += int(e.Series.Count)
		} else {
			n++
		}
	}
	return n
}

// TestNodeLossRestart: the node of a running Wukong has been lost for
// longer than the policy's time: the operator force-deletes the launcher
// pod there (Event NodeLostRestarting), KubeVirt starts a new VMI on the
// other node, the disk is the same claim.
func TestNodeLossRestart(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, _ := runningOnFirst(t, maintWukong(ns, "survivor", "", ""), a, b)
	vmi := getVMI(t, key(w))
	claim := claimUID(t, ns, "survivor-root")
	pods := &corev1.PodList{}
	require.NoError(t, k.List(ctxT(t), pods, client.InNamespace(ns), client.MatchingLabels{kubevirtv1.CreatedByLabel: string(vmi.UID)}))
	require.Len(t, pods.Items, 1)
	launcher := pods.Items[0]

	start := time.Now()
	require.NoError(t, sandbox.LoseNode(ctxT(t), k, a, nodeLossAfter+time.Minute))
	t.Cleanup(func() { _ = sandbox.RestoreNode(context.Background(), k, a) })
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		assert.Equal(c, b, got.Status.NodeName)
		assert.NotEqual(c, vmi.UID, getVMI(c, key(w)).UID, "a new VMI")
		assert.Nil(c, cond(got, v1alpha1.NodeLostCondition), "NodeLost gone: the VM's node is Ready")
	}, "Wukong %s restarted on %s", key(w), b)
	t.Logf("node loss (policy %s): LoseNode to Wukong Running on %s: %s", nodeLossAfter, b, time.Since(start).Round(time.Millisecond))
	assertGone(t, &corev1.Pod{}, key(&launcher))
	assert.Equal(t, claim, claimUID(t, ns, "survivor-root"), "the disk is untouched")
	// One restart, one Event with reason NodeLostRestarting: the policy's
	// own (action ForceDeleteLauncherPod), saying what it deleted; Ready
	// leaving True for that reason in the same pass records none besides.
	var events []eventsv1.Event
	eventually(t, 1, func(c *assert.CollectT) {
		var err error
		events, err = eventsWith(ns, w.Name, v1alpha1.ReasonNodeLostRestarting)
		require.NoError(c, err)
		assert.NotEmpty(c, events)
	}, "the NodeLostRestarting Event")
	assert.Never(t, func() bool {
		more, err := eventsWith(ns, w.Name, v1alpha1.ReasonNodeLostRestarting)
		return err == nil && occurrences(more) > 1
	}, scaled(3*time.Second), poll, "a second NodeLostRestarting Event for one restart")
	for _, e := range events {
		t.Logf("Event %s %s (action %s, series %v): %q", e.Type, e.Reason, e.Action, e.Series, e.Note)
	}
	if assert.Len(t, events, 1, "one NodeLostRestarting Event") {
		e := events[0]
		assert.Equal(t, corev1.EventTypeWarning, e.Type)
		assert.Equal(t, "ForceDeleteLauncherPod", e.Action)
		assert.Equal(t, 1, occurrences(events), "recorded once (no series)")
		assert.Contains(t, e.Note, "node "+a+" has been NotReady since")
		assert.Contains(t, e.Note, "force-deleted 1 virt-launcher pod(s)")
		assert.Contains(t, e.Note, "the disks are untouched")
	}
	require.NoError(t, sandbox.RestoreNode(ctxT(t), k, a))
}

// TestDrainHighAvailabilityRestart: the same with evictionStrategy None:
// draining a restarts its VM on c, never on b; draining c then leaves the
// VM nowhere to go: its launcher pod is evicted (None), the new one is
// unschedulable, and the Wukong is Unschedulable quoting the scheduler and
// naming spec.highAvailability.antiAffinity: unlike LiveMigrate, the guest
// is down until room is made.
func TestDrainHighAvailabilityRestart(t *testing.T) {
	needSandboxNodes(t)
	t.Parallel()
	ns := newNamespace(t)
	nodes := ownNodes(t, ns, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ha := func(name string) *v1alpha1.Wukong {
		w := maintWukong(ns, name, kubevirtv1.EvictionStrategyNone, "")
		w.Spec.HighAvailability.AntiAffinity = true
		return w
	}
	setCordon(t, b, true)
	setCordon(t, c, true)
	first := runningOn(t, ha("first"), a)
	setCordon(t, b, false)
	second := runningOn(t, ha("second"), b)
	setCordon(t, c, false)
	uid := getVMI(t, key(first)).UID

	start := time.Now()
	out, err := drainNode(t, a, scaled(60*time.Second))
	require.NoError(t, err, "drain: %s", out)
	eventually(t, 1, func(ct *assert.CollectT) {
		got := getWukong(ct, k, key(first))
		assertRunning(ct, got)
		assert.Equal(ct, c, got.Status.NodeName, "the only node without a VM of the group")
		assert.NotEqual(ct, uid, getVMI(ct, key(first)).UID, "a new VMI")
	}, "Wukong %s restarted on %s", key(first), c)
	t.Logf("HA None: drain of %s to Wukong Running on %s: %s", a, c, time.Since(start).Round(time.Millisecond))
	assert.Equal(t, b, getWukong(t, k, key(second)).Status.NodeName, "the other one stays")

	// No room: the drain evicts the VM (None) and it cannot start again.
	out, err = drainNode(t, c, scaled(60*time.Second))
	require.NoError(t, err, "None: nothing refuses the eviction: %s", out)
	eventually(t, 1, func(ct *assert.CollectT) {
		got := getWukong(ct, k, key(first))
		ready := cond(got, v1alpha1.ReadyCondition)
		if assert.NotNil(ct, ready) {
			assert.Equal(ct, metav1.ConditionFalse, ready.Status)
			assert.Equal(ct, v1alpha1.ReasonUnschedulable, ready.Reason)
			assert.Contains(ct, ready.Message, "spec.highAvailability.antiAffinity")
		}
	}, "Wukong %s Unschedulable after the drain of %s", key(first), c)
	got := getWukong(t, k, key(first))
	t.Logf("HA None, no room: phase %s, Ready %q", got.Status.Phase, cond(got, v1alpha1.ReadyCondition).Message)
	assertRunning(t, getWukong(t, k, key(second)))
}

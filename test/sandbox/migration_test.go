package sandbox_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/test/sandbox"
)

// Migration tests run on two nodes of their own, tainted so that only
// their VMs (which tolerate the taint and select the two nodes) go there:
// cordoning, draining or losing them touches no other test.
func ownNodes(t *testing.T, ns string) (a, b string) {
	t.Helper()
	a, b = ns+"-a", ns+"-b"
	taint := corev1.Taint{Key: "sandbox-test", Value: ns, Effect: corev1.TaintEffectNoSchedule}
	for i, n := range []string{a, b} {
		require.NoError(t, sandbox.AddNode(ctx, sb.Client, n, fmt.Sprintf("172.19.%d.1", i+1), nil, []corev1.Taint{taint}))
		t.Cleanup(func() { _ = sb.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}) })
	}
	return a, b
}

// onNodes places the VM on nodes (tolerating their test taint).
func onNodes(ns string, nodes ...string) func(*kubevirtv1.VirtualMachine) {
	return func(v *kubevirtv1.VirtualMachine) {
		s := &v.Spec.Template.Spec
		s.Tolerations = append(s.Tolerations, corev1.Toleration{Key: "sandbox-test", Value: ns, Effect: corev1.TaintEffectNoSchedule})
		s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: nodes,
			}}}},
		}}}
	}
}

func withEviction(s kubevirtv1.EvictionStrategy) func(*kubevirtv1.VirtualMachine) {
	return func(v *kubevirtv1.VirtualMachine) { v.Spec.Template.Spec.EvictionStrategy = ptr.To(s) }
}

// rwxDisk adds a disk on a ReadWriteMany PVC named claim.
func rwxDisk(t *testing.T, ns, claim string) func(*kubevirtv1.VirtualMachine) {
	t.Helper()
	p := pvc(ns, claim, "", "1Gi")
	p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	require.NoError(t, sb.Client.Create(ctx, p))
	return withVolume(claim, pvcVolume(claim))
}

func rwoDisk(t *testing.T, ns, claim string) func(*kubevirtv1.VirtualMachine) {
	t.Helper()
	require.NoError(t, sb.Client.Create(ctx, pvc(ns, claim, "", "1Gi")))
	return withVolume(claim, pvcVolume(claim))
}

// runningOn starts v and waits until its VMI runs, returning the VMI.
func runningOn(t *testing.T, v *kubevirtv1.VirtualMachine) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, vmRunning, "VM not running")
	got := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: v.Name, Namespace: v.Namespace}}
	eventually(t, got, func(i *kubevirtv1.VirtualMachineInstance) bool {
		return i.Status.Phase == kubevirtv1.Running && migratableCondition(i).Type != ""
	}, "VMI not running with LiveMigratable")
	return got
}

func migratableCondition(vmi *kubevirtv1.VirtualMachineInstance) kubevirtv1.VirtualMachineInstanceCondition {
	for _, c := range vmi.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceIsMigratable {
			return c
		}
	}
	return kubevirtv1.VirtualMachineInstanceCondition{}
}

// launcher is the VMI's live launcher pod on its node.
func launcher(t *testing.T, vmi *kubevirtv1.VirtualMachineInstance) *corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	require.NoError(t, sb.Client.List(ctx, pods, client.InNamespace(vmi.Namespace), client.MatchingLabels{"kubevirt.io/created-by": string(vmi.UID)}))
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName == vmi.Status.NodeName && p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded {
			return p
		}
	}
	t.Fatalf("no launcher pod of VMI %s on %s", vmi.Name, vmi.Status.NodeName)
	return nil
}

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(sb.Config)
	require.NoError(t, err)
	return cs
}

// evict asks the API server's eviction subresource to evict pod, as
// kubectl drain does (policy/v1).
func evict(t *testing.T, pod *corev1.Pod) error {
	t.Helper()
	return clientset(t).PolicyV1().Evictions(pod.Namespace).Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
	})
}

func cordon(t *testing.T, node string) { setUnschedulable(t, node, true) }

// setUnschedulable cordons (true) or uncordons (false) node with kubectl's
// own code.
func setUnschedulable(t *testing.T, node string, unschedulable bool) {
	t.Helper()
	n := &corev1.Node{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKey{Name: node}, n))
	h := &drain.Helper{Ctx: ctx, Client: clientset(t), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	require.NoError(t, drain.RunCordonOrUncordon(h, n, unschedulable))
}

// runningOnFirst starts v on a (b cordoned meanwhile), uncordons b and
// returns the Running VMI.
func runningOnFirst(t *testing.T, v *kubevirtv1.VirtualMachine, a, b string) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	cordon(t, b)
	vmi := runningOn(t, v)
	require.Equal(t, a, vmi.Status.NodeName)
	setUnschedulable(t, b, false)
	return vmi
}

// drainNode runs kubectl drain's own code (k8s.io/kubectl/pkg/drain) on
// node: cordon, then evict every pod, retrying refused evictions every 5s,
// until timeout.
func drainNode(t *testing.T, node string, timeout time.Duration) (string, error) {
	t.Helper()
	var out bytes.Buffer
	h := &drain.Helper{
		Ctx: ctx, Client: clientset(t), GracePeriodSeconds: -1, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		Timeout: timeout, Out: &out, ErrOut: &out, EvictErrorRetryDelay: 5 * time.Second, // kubectl drain's (pkg/cmd/drain)
	}
	n := &corev1.Node{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKey{Name: node}, n))
	require.NoError(t, drain.RunCordonOrUncordon(h, n, true))
	err := drain.RunNodeDrain(h, node)
	return out.String(), err
}

func migrationsOf(t *testing.T, vmi *kubevirtv1.VirtualMachineInstance) []kubevirtv1.VirtualMachineInstanceMigration {
	t.Helper()
	list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
	require.NoError(t, sb.Client.List(ctx, list, client.InNamespace(vmi.Namespace)))
	var out []kubevirtv1.VirtualMachineInstanceMigration
	for _, m := range list.Items {
		if m.Spec.VMIName == vmi.Name {
			out = append(out, m)
		}
	}
	return out
}

// TestLiveMigratableCondition: the VMI's LiveMigratable condition and
// migration method follow its claims' access modes and its pod-network
// binding, as virt-handler writes them.
func TestLiveMigratableCondition(t *testing.T) {
	ns := namespace(t)
	shared := runningOn(t, vm(ns, "shared", rwxDisk(t, ns, "shared-disk")))
	assert.Equal(t, corev1.ConditionTrue, migratableCondition(shared).Status)
	assert.Equal(t, kubevirtv1.LiveMigration, shared.Status.MigrationMethod)
	require.Len(t, shared.Status.VolumeStatus, 1)
	assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, shared.Status.VolumeStatus[0].PersistentVolumeClaimInfo.AccessModes)

	local := runningOn(t, vm(ns, "local", rwoDisk(t, ns, "local-disk")))
	c := migratableCondition(local)
	assert.Equal(t, corev1.ConditionFalse, c.Status)
	assert.Equal(t, kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable, c.Reason)
	assert.Contains(t, c.Message, "PVC local-disk is not shared")
	assert.Equal(t, kubevirtv1.BlockMigration, local.Status.MigrationMethod)

	bridged := vm(ns, "bridged")
	bridged.Spec.Template.Spec.Domain.Devices.Interfaces[0].InterfaceBindingMethod = kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}}
	c = migratableCondition(runningOn(t, bridged))
	assert.Equal(t, corev1.ConditionFalse, c.Status)
	assert.Equal(t, kubevirtv1.VirtualMachineInstanceReasonInterfaceNotMigratable, c.Reason)
	assert.Equal(t, sandbox.MessageInterfaceNotMigratable, c.Message)
}

// TestEvictionPerStrategy evicts launcher pods through the API server's
// eviction subresource, which calls KubeVirt's real pod-eviction admitter
// (virt-launcher-eviction-interceptor.kubevirt.io).
func TestEvictionPerStrategy(t *testing.T) {
	ns := namespace(t)
	a, b := ownNodes(t, ns)

	t.Run("LiveMigrate not migratable is refused", func(t *testing.T) {
		vmi := runningOn(t, vm(ns, "rwo-live", onNodes(ns, a, b), withEviction(kubevirtv1.EvictionStrategyLiveMigrate), rwoDisk(t, ns, "rwo-live-disk")))
		err := evict(t, launcher(t, vmi))
		require.Error(t, err)
		assert.True(t, apierrors.IsTooManyRequests(err), "want 429, got %v", err)
		assert.Contains(t, err.Error(), "VMI rwo-live is configured with an eviction strategy but is not live-migratable")
		require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi))
		assert.Empty(t, vmi.Status.EvacuationNodeName)
		assert.Equal(t, kubevirtv1.Running, vmi.Status.Phase)
	})

	t.Run("External marks and nothing migrates", func(t *testing.T) {
		vmi := runningOn(t, vm(ns, "external", onNodes(ns, a, b), withEviction(kubevirtv1.EvictionStrategyExternal)))
		node := vmi.Status.NodeName
		err := evict(t, launcher(t, vmi))
		require.Error(t, err)
		assert.True(t, apierrors.IsTooManyRequests(err), "want 429, got %v", err)
		assert.Contains(t, err.Error(), `Eviction triggered evacuation of VMI "`+ns+`/external"`)
		eventually(t, vmi, func(i *kubevirtv1.VirtualMachineInstance) bool { return i.Status.EvacuationNodeName == node },
			"evacuationNodeName not set")
		time.Sleep(time.Second)
		assert.Empty(t, migrationsOf(t, vmi), "External must not migrate")
		require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi))
		assert.Equal(t, node, vmi.Status.NodeName)
	})

	t.Run("LiveMigrateIfPossible not migratable is evicted and restarted", func(t *testing.T) {
		v := vm(ns, "ifpossible", onNodes(ns, a, b), withEviction(kubevirtv1.EvictionStrategyLiveMigrateIfPossible), rwoDisk(t, ns, "ifpossible-disk"))
		vmi := runningOn(t, v)
		uid := vmi.UID
		require.NoError(t, evict(t, launcher(t, vmi)))
		eventually(t, vmi, func(i *kubevirtv1.VirtualMachineInstance) bool {
			return i.UID != uid && i.Status.Phase == kubevirtv1.Running
		},
			"the VM did not restart its VMI")
	})

	t.Run("None is evicted: the guest stops and the VM restarts it", func(t *testing.T) {
		v := vm(ns, "none", onNodes(ns, a, b))
		vmi := runningOn(t, v)
		uid := vmi.UID
		require.NoError(t, evict(t, launcher(t, vmi)))
		eventually(t, vmi, func(i *kubevirtv1.VirtualMachineInstance) bool {
			return i.UID != uid && i.Status.Phase == kubevirtv1.Running
		},
			"the VM did not restart its VMI")
		assert.Empty(t, migrationsOf(t, vmi))
	})
}

// TestDrainLiveMigrates drains a node with kubectl drain's code: the
// LiveMigrate VM's eviction is refused, KubeVirt's evacuation migrates it to
// the other node, and the drain completes once the source pod is done.
func TestDrainLiveMigrates(t *testing.T) {
	ns := namespace(t)
	a, b := ownNodes(t, ns)
	v := vm(ns, "mover", onNodes(ns, a, b), withEviction(kubevirtv1.EvictionStrategyLiveMigrate), rwxDisk(t, ns, "mover-disk"))
	vmi := runningOnFirst(t, v, a, b)
	uid := vmi.UID

	out, err := drainNode(t, a, 40*time.Second)
	require.NoError(t, err, "drain: %s", out)
	assert.Contains(t, out, "Eviction triggered evacuation", "the first eviction is refused by KubeVirt")

	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi))
	assert.Equal(t, uid, vmi.UID, "the VMI was migrated, not restarted")
	assert.Equal(t, b, vmi.Status.NodeName)
	assert.Equal(t, b, vmi.Labels[kubevirtv1.NodeNameLabel])
	assert.Empty(t, vmi.Status.EvacuationNodeName)
	s := vmi.Status.MigrationState
	require.NotNil(t, s)
	assert.Equal(t, a, s.SourceNode)
	assert.Equal(t, b, s.TargetNode)
	assert.True(t, s.Completed)
	assert.False(t, s.Failed)
	require.NotNil(t, s.StartTimestamp)
	require.NotNil(t, s.EndTimestamp)
	assert.Equal(t, kubevirtv1.MigrationPreCopy, s.Mode)
	ms := migrationsOf(t, vmi)
	require.Len(t, ms, 1)
	m := ms[0]
	assert.True(t, strings.HasPrefix(m.Name, "kubevirt-evacuation-"), m.Name)
	assert.Equal(t, a, m.Annotations[kubevirtv1.EvacuationMigrationAnnotation])
	assert.Equal(t, kubevirtv1.MigrationSucceeded, m.Status.Phase)
	assert.Equal(t, s.MigrationUID, m.UID)
	assert.Empty(t, m.Finalizers)
	var phases []kubevirtv1.VirtualMachineInstanceMigrationPhase
	for _, p := range m.Status.PhaseTransitionTimestamps {
		phases = append(phases, p.Phase)
	}
	assert.Equal(t, []kubevirtv1.VirtualMachineInstanceMigrationPhase{
		kubevirtv1.MigrationPending, kubevirtv1.MigrationScheduling, kubevirtv1.MigrationScheduled,
		kubevirtv1.MigrationPreparingTarget, kubevirtv1.MigrationTargetReady, kubevirtv1.MigrationRunning, kubevirtv1.MigrationSucceeded,
	}, phases)
	pods := &corev1.PodList{}
	require.NoError(t, sb.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"kubevirt.io/created-by": string(vmi.UID)}))
	for _, p := range pods.Items {
		assert.Equal(t, b, p.Spec.NodeName, "pod %s left on the drained node", p.Name)
	}
	eventually(t, v, vmRunning, "VM not Running after the migration")
}

// TestDrainNoneRestarts: under None, kubectl drain evicts the launcher pod,
// the guest stops and the VM controller starts a new VMI on the other node.
func TestDrainNoneRestarts(t *testing.T) {
	ns := namespace(t)
	a, b := ownNodes(t, ns)
	v := vm(ns, "restarter", onNodes(ns, a, b))
	vmi := runningOnFirst(t, v, a, b)
	uid := vmi.UID

	out, err := drainNode(t, a, 30*time.Second)
	require.NoError(t, err, "drain: %s", out)
	eventually(t, vmi, func(i *kubevirtv1.VirtualMachineInstance) bool {
		return i.UID != uid && i.Status.Phase == kubevirtv1.Running && i.Status.NodeName == b
	}, "VMI not restarted on the other node")
	assert.Empty(t, migrationsOf(t, vmi))
}

// TestUserMigration: a VirtualMachineInstanceMigration a user creates
// (`virtctl migrate`) moves the VMI; one for a VMI that is not migratable
// is refused by KubeVirt's migration admitter.
func TestUserMigration(t *testing.T) {
	ns := namespace(t)
	a, b := ownNodes(t, ns)
	vmi := runningOn(t, vm(ns, "user", onNodes(ns, a, b), rwxDisk(t, ns, "user-disk")))
	from := vmi.Status.NodeName
	m := &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "user-", Namespace: ns},
		Spec:       kubevirtv1.VirtualMachineInstanceMigrationSpec{VMIName: vmi.Name},
	}
	require.NoError(t, sb.Client.Create(ctx, m))
	assert.Contains(t, m.Finalizers, kubevirtv1.VirtualMachineInstanceMigrationFinalizer, "KubeVirt's migration mutator adds its finalizer")
	assert.Equal(t, vmi.Name, m.Labels[kubevirtv1.MigrationSelectorLabel])
	eventually(t, m, func(m *kubevirtv1.VirtualMachineInstanceMigration) bool {
		return m.Status.Phase == kubevirtv1.MigrationSucceeded
	},
		"migration did not succeed")
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi))
	assert.NotEqual(t, from, vmi.Status.NodeName)
	assert.Equal(t, from, vmi.Status.MigrationState.SourceNode)
	require.NotNil(t, m.Status.MigrationState)
	assert.True(t, m.Status.MigrationState.Completed)

	local := runningOn(t, vm(ns, "local", onNodes(ns, a, b), rwoDisk(t, ns, "local-disk")))
	err := sb.Client.Create(ctx, &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "user-", Namespace: ns},
		Spec:       kubevirtv1.VirtualMachineInstanceMigrationSpec{VMIName: local.Name},
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Cannot migrate VMI, Reason: DisksNotLiveMigratable")
}

// TestFailedMigration: KubeVirt's functional-test annotation makes the
// migration fail; the VMI stays where it was, with the failure recorded.
func TestFailedMigration(t *testing.T) {
	ns := namespace(t)
	a, b := ownNodes(t, ns)
	v := vm(ns, "failing", onNodes(ns, a, b), rwxDisk(t, ns, "failing-disk"))
	v.Spec.Template.ObjectMeta.Annotations = map[string]string{sandbox.ForceMigrationFailureAnnotation: ""}
	vmi := runningOn(t, v)
	from := vmi.Status.NodeName
	m := &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "user-", Namespace: ns},
		Spec:       kubevirtv1.VirtualMachineInstanceMigrationSpec{VMIName: vmi.Name},
	}
	require.NoError(t, sb.Client.Create(ctx, m))
	eventually(t, m, func(m *kubevirtv1.VirtualMachineInstanceMigration) bool {
		return m.Status.Phase == kubevirtv1.MigrationFailed
	},
		"migration did not fail")
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi))
	assert.Equal(t, from, vmi.Status.NodeName)
	assert.Equal(t, kubevirtv1.Running, vmi.Status.Phase)
	s := vmi.Status.MigrationState
	require.NotNil(t, s)
	assert.True(t, s.Failed)
	assert.True(t, s.Completed)
	assert.Equal(t, sandbox.MessageForcedMigrationFailure, s.FailureReason)
	assert.Equal(t, m.UID, s.MigrationUID)
	pods := &corev1.PodList{}
	require.Eventually(t, func() bool {
		require.NoError(t, sb.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{kubevirtv1.MigrationJobLabel: string(m.UID)}))
		return len(pods.Items) == 0
	}, timeout, tick, "the target pod was not removed")
}

// TestNodeLoss: a node loses its kubelet; its pods stay; a force-deleted
// launcher pod fails the VMI and the VM starts a new one on another node;
// KubeVirt's node controller marks the node unschedulable once
// virt-handler's heartbeat is older than 5 minutes.
func TestNodeLoss(t *testing.T) {
	ns := namespace(t)
	a, b := ownNodes(t, ns)
	v := vm(ns, "survivor", onNodes(ns, a, b))
	vmi := runningOnFirst(t, v, a, b)
	uid := vmi.UID

	require.NoError(t, sandbox.LoseNode(ctx, sb.Client, a, 6*time.Minute))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a}}
	eventually(t, node, func(n *corev1.Node) bool { return n.Labels[kubevirtv1.NodeSchedulable] == "false" },
		"KubeVirt's node controller did not mark the node unschedulable")
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			assert.Equal(t, corev1.ConditionUnknown, c.Status)
			assert.Equal(t, "NodeStatusUnknown", c.Reason)
		}
	}
	// The pod stays; a graceful delete leaves it Terminating.
	pod := launcher(t, vmi)
	require.NoError(t, sb.Client.Delete(ctx, pod))
	time.Sleep(time.Second)
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod))
	assert.NotNil(t, pod.DeletionTimestamp)
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi))
	assert.Equal(t, kubevirtv1.Running, vmi.Status.Phase, "a Terminating pod still runs the VMI")

	// The administrator's (or the operator's) force delete.
	require.NoError(t, sb.Client.Delete(ctx, pod, client.GracePeriodSeconds(0)))
	eventually(t, vmi, func(i *kubevirtv1.VirtualMachineInstance) bool {
		return i.UID != uid && i.Status.Phase == kubevirtv1.Running && i.Status.NodeName == b
	}, "VMI not restarted on the other node")

	require.NoError(t, sandbox.RestoreNode(ctx, sb.Client, a))
	eventually(t, node, func(n *corev1.Node) bool { return n.Labels[kubevirtv1.NodeSchedulable] == "true" },
		"virt-handler's heartbeat did not make the node schedulable again")
}

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubectl/pkg/drain"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Node maintenance on the real two-node local cluster (issue 30):
// `LOCAL_CLUSTER_NODES=2 make local-cluster-up` with KubeVirt, CDI and our
// CSI driver built, then `make e2e-local`. Real KubeVirt live-migrates a
// real guest between the two nodes (each its own network, PID and mount
// namespace on this machine), and a stopped kubelet plays a lost node.
//
// The drains are kubectl drain's own code (k8s.io/kubectl/pkg/drain) on
// the test's virt-launcher pods only (kubectl drain --pod-selector
// kubevirt.io=virt-launcher, narrowed to the test's namespace): the
// cluster's own pods (KubeVirt, CDI, the CSI driver, the image server with
// its node-local volume) stay, so the tests after these find the cluster
// as it was. The node is cordoned as kubectl drain cordons it.
//
//	E2E_NODE_CTL     scripts/local-cluster/node.sh (make e2e-local sets
//	                 it): cuts a node off the network and brings it back;
//	                 the node-loss test skips without it.

// sharedClass is the ReadWriteMany StorageClass of our CSI driver
// (scripts/csi-build.sh: parameters.shared "true", one directory every
// node mounts, its StorageProfile ReadWriteMany Filesystem).
const sharedClass = "wukong-csi-shared"

// twoRealNodes skips t unless the cluster runs real KubeVirt on at least
// two Ready, schedulable nodes; it returns two of them, sorted.
func twoRealNodes(t *testing.T) []string {
	t.Helper()
	realKubeVirt(t)
	nodes := &corev1.NodeList{}
	require.NoError(t, k.List(ctxT(t), nodes))
	var ready []string
	for _, n := range nodes.Items {
		if !n.Spec.Unschedulable && nodeReady(&n) {
			ready = append(ready, n.Name)
		}
	}
	if len(ready) < 2 {
		t.Skipf("needs two Ready schedulable nodes (LOCAL_CLUSTER_NODES=2 make local-cluster-up); the cluster has %v", ready)
	}
	slices.Sort(ready)
	return ready[:2]
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// needClass skips t unless StorageClass name exists.
func needClass(t *testing.T, name string) {
	t.Helper()
	if err := k.Get(ctxT(t), types.NamespacedName{Name: name}, &storagev1.StorageClass{}); apierrors.IsNotFound(err) {
		t.Skipf("StorageClass %s is not installed (make csi-images, then make local-cluster-up)", name)
	}
}

// uncordonAtEnd uncordons node when the test ends, whatever it did.
func uncordonAtEnd(t *testing.T, node string) {
	t.Cleanup(func() {
		n := &corev1.Node{}
		if err := k.Get(context.Background(), types.NamespacedName{Name: node}, n); err == nil && n.Spec.Unschedulable {
			h := &drain.Helper{Ctx: context.Background(), Client: clientset(t), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
			_ = drain.RunCordonOrUncordon(h, n, false)
		}
	})
}

// startOn creates w and waits (up to the guest boot timeout) until it
// runs on node; other is cordoned meanwhile, so the scheduler has one
// choice, and uncordoned after. It returns the Running Wukong.
func startOn(t *testing.T, g guestAccess, w *v1alpha1.Wukong, node, other string) *v1alpha1.Wukong {
	t.Helper()
	uncordonAtEnd(t, other)
	setCordon(t, other, true)
	create(t, w)
	started := time.Now()
	var got *v1alpha1.Wukong
	for {
		got = getWukong(t, k, key(w))
		if assertRunning(&assert.CollectT{}, got) {
			break
		}
		if time.Now().After(g.deadline) {
			dumpWukongs(t, w.Namespace)
			t.Fatalf("Wukong %s not Running within %s (phase %s)", key(w), g.timeout, got.Status.Phase)
		}
		time.Sleep(time.Second)
	}
	setCordon(t, other, false)
	require.Equal(t, node, got.Status.NodeName, "Wukong %s runs on %s", key(w), node)
	t.Logf("Wukong %s Running on %s %.0f s after create", key(w), node, time.Since(started).Seconds())
	return got
}

// drainLaunchers runs kubectl drain's code on node for the virt-launcher
// pods of namespace ns: cordon, then evict, retrying refused evictions
// every 5s (kubectl's EvictErrorRetryDelay) until they are gone or timeout.
func drainLaunchers(t *testing.T, node, ns string, timeout time.Duration) (string, error) {
	t.Helper()
	var out bytes.Buffer
	h := &drain.Helper{
		Ctx: ctxT(t), Client: clientset(t), GracePeriodSeconds: -1, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		Timeout: timeout, Out: &out, ErrOut: &out, EvictErrorRetryDelay: 5 * time.Second,
		PodSelector: kubevirtv1.AppLabel + "=virt-launcher",
		AdditionalFilters: []drain.PodFilter{func(p corev1.Pod) drain.PodDeleteStatus {
			if p.Namespace != ns {
				return drain.MakePodDeleteStatusSkip()
			}
			return drain.MakePodDeleteStatusOkay()
		}},
	}
	uncordonAtEnd(t, node)
	n := &corev1.Node{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: node}, n))
	require.NoError(t, drain.RunCordonOrUncordon(h, n, true))
	err := drain.RunNodeDrain(h, node)
	return out.String(), err
}

// guestState is what a test reads in the guest to tell a live migration
// from a restart: the kernel's boot_id (a new one at every boot,
// Documentation/admin-guide/sysctl/kernel.rst "random") and the uptime.
type guestState struct {
	bootID string
	uptime float64
}

func readGuest(t *testing.T, g guestAccess, ip string) guestState {
	t.Helper()
	out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /proc/sys/kernel/random/boot_id /proc/uptime")
	require.NoError(t, err, "boot_id and uptime in the guest: %s", out)
	f := strings.Fields(out)
	require.Len(t, f, 3, "boot_id and /proc/uptime: %q", out)
	up, err := strconv.ParseFloat(f[1], 64)
	require.NoError(t, err, "uptime %q", f[1])
	return guestState{bootID: f[0], uptime: up}
}

// sshWhenReady waits for SSH on the Wukong's current launcher pod and
// returns the pod's IP.
func sshWhenReady(t *testing.T, g guestAccess, nn types.NamespacedName) string {
	t.Helper()
	ip := launcherPod(t, nn).Status.PodIP
	require.NotEmpty(t, ip, "the launcher pod's IP")
	g.waitSSH(t, ip)
	return ip
}

// ticker is started in the guest: it appends the guest's clock every 50 ms
// to /var/tmp/ticks, so the largest gap between two lines after a live
// migration is the pause the guest itself saw (its clock keeps time
// across the migration: KubeVirt's guests use kvmclock, which QEMU
// migrates).
const ticker = `sudo -n sh -c 'nohup sh -c "while :; do date +%s.%N; sleep 0.05; done" >/var/tmp/ticks 2>/dev/null </dev/null &'`

// largestGap is the largest gap between consecutive ticks in seconds, and
// the time of the tick before it.
func largestGap(ticks string) (gap, at float64) {
	prev := -1.0
	for _, l := range strings.Fields(ticks) {
		v, err := strconv.ParseFloat(l, 64)
		if err != nil {
			continue
		}
		if prev >= 0 && v-prev > gap {
			gap, at = v-prev, prev
		}
		prev = v
	}
	return gap, at
}

// TestLocalDrainLiveMigrate: a Wukong with evictionStrategy LiveMigrate,
// its boot disk imported by real CDI onto ReadWriteMany storage and a
// blank ReadWriteMany data disk, runs on node a; a file is written to its
// root filesystem and a marker to the raw data disk. kubectl drain of a
// (its code) live-migrates it with real KubeVirt: the Wukong goes
// Migrating, then Running on b with status.migration Succeeded a -> b, and
// in the guest the boot_id is the same, the uptime went on, the file and
// the marker are there. The guest's own clock gives the pause it saw.
func TestLocalDrainLiveMigrate(t *testing.T) {
	nodes := twoRealNodes(t)
	url := realCDI(t)
	needClass(t, sharedClass)
	a, b := nodes[0], nodes[1]
	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	w := g.wukong(ns, "mover")
	w.Spec.EvictionStrategy = string(kubevirtv1.EvictionStrategyLiveMigrate)
	w.Spec.Disks = []v1alpha1.DiskSpec{
		{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, Image: url, StorageClassName: sharedClass},
		{Name: "data", Size: resource.MustParse("1Gi"), StorageClassName: sharedClass},
	}
	w = startOn(t, g, w, a, b)
	nn := key(w)
	if m := cond(w, v1alpha1.MigratableCondition); assert.NotNil(t, m, "Migratable") {
		assert.Equal(t, metav1.ConditionTrue, m.Status, "Migratable: %s", m.Message)
	}
	vmiUID := getVMI(t, nn).UID

	ip := sshWhenReady(t, g, nn)
	marker := "wukong-" + randSuffix()
	out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip,
		"echo "+marker+" | sudo -n tee /var/tmp/marker >/dev/null && echo "+marker+" | sudo -n dd of=/dev/vdb conv=fsync status=none && sync && lsblk -ndo NAME,SIZE")
	require.NoError(t, err, "writing the marker: %s", out)
	t.Logf("in the guest before the drain: disks %q", strings.ReplaceAll(out, "\n", "; "))
	out, err = guestSSH(ctxT(t), g.keyFile, g.login, ip, ticker)
	require.NoError(t, err, "starting the ticker: %s", out)
	before := readGuest(t, g, ip)

	seen := phases(t, nn)
	start := time.Now()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := drainLaunchers(t, a, ns, scaled(3*time.Minute))
		done <- result{out, err}
	}()
	var got *v1alpha1.Wukong
	eventually(t, 3, func(c *assert.CollectT) {
		got = getWukong(c, k, nn)
		assertRunning(c, got)
		assert.Equal(c, b, got.Status.NodeName)
		if assert.NotNil(c, got.Status.Migration, "status.migration") {
			assert.Equal(c, "Succeeded", got.Status.Migration.State)
		}
	}, "Wukong %s Running on %s after the drain of %s", nn, b, a)
	running := time.Since(start)
	r := <-done
	require.NoError(t, r.err, "drain: %s", r.out)
	assert.Contains(t, r.out, "Eviction triggered evacuation", "KubeVirt refused the eviction and evacuated")

	mig := got.Status.Migration
	assert.Equal(t, a, mig.SourceNode, "status.migration.sourceNode")
	assert.Equal(t, b, mig.TargetNode, "status.migration.targetNode")
	assert.Empty(t, mig.FailureReason)
	var transfer time.Duration
	if assert.NotNil(t, mig.StartTime) && assert.NotNil(t, mig.EndTime) {
		transfer = mig.EndTime.Sub(mig.StartTime.Time)
		assert.GreaterOrEqual(t, transfer, time.Duration(0), "endTime after startTime")
	}
	ph := seen()
	assert.Contains(t, ph, v1alpha1.PhaseMigrating, "the Wukong went Migrating: %v", ph)
	assert.NotContains(t, ph, v1alpha1.PhaseCreating, "a live migration does not restart the VM: %v", ph)
	assert.Equal(t, vmiUID, getVMI(t, nn).UID, "the same VMI, migrated")

	ip = sshWhenReady(t, g, nn)
	after := readGuest(t, g, ip)
	assert.Equal(t, before.bootID, after.bootID, "the guest did not reboot")
	assert.Greater(t, after.uptime, before.uptime, "the guest's uptime went on")
	out, err = guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /var/tmp/marker && sudo -n head -c "+strconv.Itoa(len(marker))+" /dev/vdb && echo && cat /var/tmp/ticks")
	require.NoError(t, err, "reading the marker: %s", out)
	lines := strings.SplitN(out, "\n", 3)
	require.GreaterOrEqual(t, len(lines), 3, "marker, data disk, ticks: %q", out)
	assert.Equal(t, marker, lines[0], "the file on the root disk")
	assert.Equal(t, marker, lines[1], "the marker on the data disk")
	gap, _ := largestGap(lines[2])
	t.Logf("drain start -> Running on %s: %.1f s; migration %s -> %s, KubeVirt's start..end %s; phases %v; "+
		"guest boot_id kept (%s), uptime %.0f s -> %.0f s; largest gap the guest's 50 ms ticker saw: %.2f s",
		b, running.Seconds(), mig.SourceNode, mig.TargetNode, transfer, ph, after.bootID, before.uptime, after.uptime, gap)
}

// TestLocalDrainNoneRestarts: with evictionStrategy None kubectl drain
// evicts the launcher pod: the guest shuts down and KubeVirt starts it
// again on the other node (runStrategy Always): a new VMI, a new boot_id,
// the uptime reset; the Wukong is Running there with no migration.
func TestLocalDrainNoneRestarts(t *testing.T) {
	nodes := twoRealNodes(t)
	image := realKubeVirt(t)
	a, b := nodes[0], nodes[1]
	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	w := g.wukong(ns, "restarter")
	w.Spec.OSImage = image
	w.Spec.EvictionStrategy = string(kubevirtv1.EvictionStrategyNone)
	w = startOn(t, g, w, a, b)
	nn := key(w)
	vmiUID := getVMI(t, nn).UID
	before := readGuest(t, g, sshWhenReady(t, g, nn))

	seen := phases(t, nn)
	start := time.Now()
	out, err := drainLaunchers(t, a, ns, scaled(3*time.Minute))
	require.NoError(t, err, "drain: %s", out)
	drained := time.Since(start)
	var got *v1alpha1.Wukong
	eventually(t, 3, func(c *assert.CollectT) {
		got = getWukong(c, k, nn)
		assertRunning(c, got)
		assert.Equal(c, b, got.Status.NodeName)
	}, "Wukong %s Running on %s after the drain of %s", nn, b, a)
	running := time.Since(start)
	assert.NotEqual(t, vmiUID, getVMI(t, nn).UID, "a new VMI")
	assert.Nil(t, got.Status.Migration, "no migration")
	after := readGuest(t, g, sshWhenReady(t, g, nn))
	assert.NotEqual(t, before.bootID, after.bootID, "the guest booted again")
	t.Logf("drain (eviction) took %.1f s; Running on %s %.1f s after the drain started; phases %v; boot_id %s -> %s, uptime %.0f s -> %.0f s",
		drained.Seconds(), b, running.Seconds(), seen(), before.bootID, after.bootID, before.uptime, after.uptime)
}

// TestLocalDrainRefusedRWO: a Wukong with evictionStrategy LiveMigrate and
// its boot disk on ReadWriteOnce storage is not live-migratable (real KubeVirt's
// LiveMigratable condition): the Wukong says so naming spec.disks[0] and
// that a drain of its node is refused; kubectl drain's code is refused
// (KubeVirt's eviction webhook answers 429) until it gives up, and the VM
// keeps running on its node, the same VMI.
func TestLocalDrainRefusedRWO(t *testing.T) {
	nodes := twoRealNodes(t)
	url := realCDI(t)
	needClass(t, "wukong-csi-hostpath")
	a, b := nodes[0], nodes[1]
	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	w := g.wukong(ns, "pinned")
	w.Spec.EvictionStrategy = string(kubevirtv1.EvictionStrategyLiveMigrate)
	// With disks the OS is a boot disk CDI imports (osImage would go into
	// the first disk, and CDI cannot pull the node's local containerDisk).
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, Image: url, StorageClassName: "wukong-csi-hostpath"}}
	w = startOn(t, g, w, a, b)
	nn := key(w)
	vmiUID := getVMI(t, nn).UID
	eventually(t, 2, func(c *assert.CollectT) {
		got := getWukong(c, k, nn)
		m, ready := cond(got, v1alpha1.MigratableCondition), cond(got, v1alpha1.ReadyCondition)
		if assert.NotNil(c, m, "Migratable") && assert.NotNil(c, ready) {
			assert.Equal(c, metav1.ConditionFalse, m.Status)
			assert.Equal(c, string(kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable), m.Reason)
			assert.Contains(c, m.Message, "spec.disks[0] (root")
			assert.Contains(c, ready.Message, "a drain of node "+a+" is refused")
		}
	}, "Wukong %s to say a drain is refused", nn)
	got := getWukong(t, k, nn)
	t.Logf("Migratable: %q; Ready: %q", cond(got, v1alpha1.MigratableCondition).Message, cond(got, v1alpha1.ReadyCondition).Message)

	out, err := drainLaunchers(t, a, ns, scaled(6*time.Second))
	require.Error(t, err, "the drain must not finish: %s", out)
	assert.Contains(t, out, "is configured with an eviction strategy but is not live-migratable", "KubeVirt's eviction admitter refused")
	t.Logf("kubectl drain: %s", firstLine(out, "not live-migratable"))
	got = getWukong(t, k, nn)
	assertRunning(t, got)
	assert.Equal(t, a, got.Status.NodeName)
	assert.Equal(t, vmiUID, getVMI(t, nn).UID, "the same VMI")
	assert.Empty(t, migrations(t, ns, w.Name), "no migration")
}

// firstLine is the first line of out containing s.
func firstLine(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// nodeCtl runs scripts/local-cluster/node.sh (E2E_NODE_CTL).
func nodeCtl(t *testing.T, verb, node string) {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), os.Getenv("E2E_NODE_CTL"), verb, node).CombinedOutput()
	require.NoError(t, err, "node.sh %s %s: %s", verb, node, out)
}

// kubevirtNodes are the nodes running KubeVirt's virt-api and
// virt-controller pods.
func kubevirtNodes(t *testing.T) map[string]bool {
	t.Helper()
	pods := &corev1.PodList{}
	require.NoError(t, k.List(ctxT(t), pods, client.InNamespace("kubevirt")))
	out := map[string]bool{}
	for _, p := range pods.Items {
		if l := p.Labels[kubevirtv1.AppLabel]; l == "virt-api" || l == "virt-controller" {
			out[p.Spec.NodeName] = true
		}
	}
	return out
}

// TestLocalNodeLoss: the node a Wukong's VM runs on is cut off the network
// (scripts/local-cluster/node.sh partition: its kubelet, virt-handler and
// pods, the guest's qemu included, keep running but reach nothing, as on a
// node behind a failed switch). Without the node-loss policy (the chart's
// default) the Wukong reports the lost node (NodeLost NodeNotReady) and
// nothing is restarted. Then the chart is upgraded with
// nodeLoss.restartAfter: the operator force-deletes the launcher pod on the
// lost node; KubeVirt fails the instance once virt-handler's heartbeat
// there is 5 minutes old (virt-controller's node controller) and starts
// the VM on the other node, where the Wukong is Running. The node is
// brought back and the chart's value put back at the end. Stopping only
// the kubelet is not enough: virt-handler keeps heartbeating and KubeVirt
// keeps the instance Running (seen here).
func TestLocalNodeLoss(t *testing.T) {
	nodes := twoRealNodes(t)
	image := realKubeVirt(t)
	if os.Getenv("E2E_NODE_CTL") == "" {
		t.Skip("E2E_NODE_CTL (scripts/local-cluster/node.sh) is not set: make e2e-local sets it")
	}
	r := chartRelease(t)
	if os.Getenv("E2E_HELM") == "" || os.Getenv("E2E_CHART") == "" {
		t.Skip("E2E_HELM and E2E_CHART are not set; make e2e-local sets them")
	}
	var values struct {
		NodeLoss struct {
			RestartAfter string `json:"restartAfter"`
		} `json:"nodeLoss"`
	}
	require.NoError(t, json.Unmarshal([]byte(helmRun(t, r, "get", "values", r.name, "--output", "json")), &values))
	require.Empty(t, values.NodeLoss.RestartAfter, "the test starts without a node-loss policy (the chart's default)")
	// The lost node runs no virt-api or virt-controller: KubeVirt starts the
	// VM again through them (a lost node's pods are replaced only after
	// the unreachable taint's 300 s). A manager there loses its lease; the
	// chart upgrade below starts one on the other node.
	lost, keep := nodes[1], nodes[0]
	if kv := kubevirtNodes(t); kv[lost] {
		lost, keep = keep, lost
		if kv[lost] {
			t.Skipf("KubeVirt's virt-api and virt-controller run on both nodes (%v): no node can be lost without them", kv)
		}
	}
	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	w := g.wukong(ns, "survivor")
	w.Spec.OSImage = image
	w = startOn(t, g, w, lost, keep)
	nn := key(w)
	vmiUID := getVMI(t, nn).UID

	t.Cleanup(func() { nodeCtl(t, "heal", lost) })
	stopped := time.Now()
	nodeCtl(t, "partition", lost)
	eventually(t, 3, func(c *assert.CollectT) {
		got := getWukong(c, k, nn)
		if l := cond(got, v1alpha1.NodeLostCondition); assert.NotNil(c, l, "NodeLost") {
			assert.Equal(c, metav1.ConditionTrue, l.Status)
			assert.Equal(c, v1alpha1.ReasonNodeNotReady, l.Reason)
			assert.Contains(c, l.Message, "node "+lost)
		}
	}, "Wukong %s to report the lost node %s", nn, lost)
	reported := time.Since(stopped)
	got := getWukong(t, k, nn)
	t.Logf("%s cut off; %.0f s later NodeLost: %q", lost, reported.Seconds(), cond(got, v1alpha1.NodeLostCondition).Message)
	assert.Equal(t, vmiUID, getVMI(t, nn).UID, "without the policy nothing is restarted")

	const after = "30s"
	t.Cleanup(func() {
		helmRun(t, r, "upgrade", r.name, os.Getenv("E2E_CHART"), "--reuse-values", "--set", "nodeLoss.restartAfter=", "--wait", "--timeout", "5m")
	})
	helmRun(t, r, "upgrade", r.name, os.Getenv("E2E_CHART"), "--reuse-values", "--set", "nodeLoss.restartAfter="+after, "--wait", "--timeout", "5m")
	upgraded := time.Now()
	assert.Contains(t, managerPod(t, r).Spec.Containers[0].Args, "--node-loss-restart-after="+after, "the policy reached the manager")
	eventually(t, 3, func(c *assert.CollectT) {
		got = getWukong(c, k, nn)
		assertRunning(c, got)
		assert.Equal(c, keep, got.Status.NodeName)
	}, "Wukong %s Running on %s after the policy restarted it", nn, keep)
	assert.NotEqual(t, vmiUID, getVMI(t, nn).UID, "a new VMI")
	assert.Nil(t, cond(got, v1alpha1.NodeLostCondition), "NodeLost gone once the VM runs on a Ready node")
	t.Logf("policy on (restartAfter %s): Running on %s %.0f s after the upgrade, %.0f s after the node was cut off",
		after, keep, time.Since(upgraded).Seconds(), time.Since(stopped).Seconds())

	nodeCtl(t, "heal", lost)
	eventually(t, 3, func(c *assert.CollectT) {
		n := &corev1.Node{}
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Name: lost}, n))
		assert.True(c, nodeReady(n), "node %s Ready", lost)
		pods := &corev1.PodList{}
		require.NoError(c, k.List(context.Background(), pods, client.InNamespace(ns)))
		for _, p := range pods.Items {
			assert.NotEqual(c, lost, p.Spec.NodeName, "pod %s still on %s", p.Name, lost)
		}
	}, "node %s back and nothing of %s left on it", lost, nn)
	sshWhenReady(t, g, nn)
}

// helmRun runs the helm of E2E_HELM on release r's namespace and returns
// its output, failing t on an error.
func helmRun(t *testing.T, r release, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), os.Getenv("E2E_HELM"), append([]string{"--namespace", r.namespace}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+os.Getenv("E2E_KUBECONFIG"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helm %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

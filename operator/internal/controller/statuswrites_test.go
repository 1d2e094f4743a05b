package controller

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// fakeClock is a clock the test moves by hand (no test here reads the wall
// clock).
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time         { return c.t }
func (c *fakeClock) add(d time.Duration)    { c.t = c.t.Add(d) }
func newClock() *fakeClock                  { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func importingScope(progress string) *scope { return scopeWith(importing(progress)) }

func importing(progress string) storage.Observation {
	return storage.Observation{Name: "root", ClaimName: "vm1-root", DataVolume: true, Phase: storage.PhaseImporting, Progress: progress}
}

func scopeWith(vols ...storage.Observation) *scope {
	return &scope{net: netOK, netDone: true, volsDone: true, vols: vols, waiting: "waiting for disk root (Importing)"}
}

// statusOf is the status computeStatus derives from s on top of prev (so
// conditions keep their transition times, as in a real pass).
func statusOf(prev *v1alpha1.WukongStatus, s *scope) *v1alpha1.WukongStatus {
	w := testWukong()
	w.Status = *prev.DeepCopy()
	s.w = w
	computeStatus(w, s)
	return &w.Status
}

// cluster plays the API server's copy of one Wukong's status (with its
// resourceVersion) and counts the writes StatusWrites lets through.
type cluster struct {
	t      *testing.T
	sw     *StatusWrites
	clock  *fakeClock
	key    types.NamespacedName
	status *v1alpha1.WukongStatus
	rv     int
	writes int
}

func (c *cluster) wukong() *v1alpha1.Wukong {
	return &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{ResourceVersion: fmt.Sprint(c.rv)}, Status: *c.status.DeepCopy()}
}

func newCluster(t *testing.T) *cluster {
	clock := newClock()
	return &cluster{
		t: t, clock: clock, key: types.NamespacedName{Namespace: "ns", Name: "vm1"},
		sw:     &StatusWrites{Now: clock.now},
		status: &v1alpha1.WukongStatus{},
	}
}

// pass runs one reconcile's status decision for what s observed.
func (c *cluster) pass(s *scope) writeDecision {
	return c.passOn(c.wukong(), s)
}

// passOn runs a pass that read base (maybe a stale copy).
func (c *cluster) passOn(base *v1alpha1.Wukong, s *scope) writeDecision {
	next := statusOf(&base.Status, s)
	d, _ := c.sw.decide(c.key, base, next)
	if d.Write {
		c.sw.written(c.key, base.ResourceVersion, next)
		c.status = next
		c.rv++
		c.writes++
	}
	return d
}

func (c *cluster) progress() string { return c.status.Volumes[0].Progress }

// TestStatusWritesProgressInsideOneBand: five progress steps inside one
// 10-point band, closer together than the interval, make no write; the
// newest is written once it stood for the interval (following the requeues
// the coalesced passes ask for), and then nothing more.
func TestStatusWritesProgressInsideOneBand(t *testing.T) {
	c := newCluster(t)
	require.True(t, c.pass(importingScope("40.00%")).Write, "Importing starts: a condition change")
	require.Equal(t, 1, c.writes)

	var d writeDecision
	for _, p := range []string{"41.00%", "42.00%", "43.00%", "44.00%", "45.00%"} {
		c.clock.add(500 * time.Millisecond)
		d = c.pass(importingScope(p))
		assert.False(t, d.Write, "progress %s inside band 4 within the interval", p)
		assert.Positive(t, d.RequeueAfter, "a coalesced progress write asks for a requeue")
		assert.LessOrEqual(t, d.RequeueAfter, defaultStatusInterval)
	}
	assert.Equal(t, 1, c.writes, "no write for the five steps yet")
	assert.Equal(t, "40.00%", c.progress())

	requeues := 0
	for !d.Write {
		require.Positive(t, d.RequeueAfter, "coalesced without a requeue: the last value would be lost")
		requeues++
		require.LessOrEqual(t, requeues, 3, "the last value must be written within a few requeues")
		c.clock.add(d.RequeueAfter)
		d = c.pass(importingScope("45.00%"))
	}
	assert.Equal(t, 2, c.writes, "the five steps made one write")
	assert.Equal(t, "45.00%", c.progress(), "the last value is written after the interval")
	assert.Equal(t, "45.00%", c.status.ImportProgress)
	assert.Contains(t, conditions.GetMessage(&v1alpha1.Wukong{Status: *c.status}, v1alpha1.VolumesBoundCondition), "45.00%")

	c.clock.add(time.Minute)
	d = c.pass(importingScope("45.00%"))
	assert.Equal(t, writeDecision{}, d, "nothing changed: no write, no requeue")
	assert.Equal(t, 2, c.writes)
}

// TestStatusWritesBandCrossing: a progress step into another band is
// written as soon as the interval since the last write passed, not before.
func TestStatusWritesBandCrossing(t *testing.T) {
	c := newCluster(t)
	c.pass(importingScope("40.00%"))
	c.clock.add(time.Second)
	d := c.pass(importingScope("55.00%"))
	assert.False(t, d.Write, "a band crossing 1s after the last write waits for the interval")
	assert.Equal(t, defaultStatusInterval-time.Second, d.RequeueAfter, "requeued for the rest of the interval")

	c.clock.add(d.RequeueAfter)
	d = c.pass(importingScope("55.00%"))
	assert.True(t, d.Write, "band 4 -> 5 after the interval")
	assert.Equal(t, "55.00%", c.progress())

	c.clock.add(2 * defaultStatusInterval)
	assert.True(t, c.pass(importingScope("61.50%")).Write, "band 5 -> 6, long after the last write")
	assert.Equal(t, 3, c.writes)
}

// TestStatusWritesFastImport: an import that moves 10 points every 200ms
// (the sandbox's CDI) is written at most once per interval: the two writes
// here are the start of the import and one progress write.
func TestStatusWritesFastImport(t *testing.T) {
	c := newCluster(t)
	for p := 0; p <= 90; p += 10 {
		c.pass(importingScope(fmt.Sprintf("%d.00%%", p)))
		c.clock.add(200 * time.Millisecond)
	}
	assert.Equal(t, 1, c.writes, "ten band crossings within 2s: only the first status")
	c.clock.add(defaultStatusInterval)
	assert.True(t, c.pass(importingScope("95.00%")).Write)
	assert.Equal(t, 2, c.writes)
}

// TestStatusWritesNonProgressAtOnce: a phase change, a condition reason
// change and a new condition are written at once, right after a write.
func TestStatusWritesNonProgressAtOnce(t *testing.T) {
	c := newCluster(t)
	c.pass(importingScope("40.00%"))

	c.clock.add(10 * time.Millisecond)
	vm := importingScope("")
	vm.vols = bound
	vm.vm = kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, false), nil)
	d := c.pass(vm)
	assert.True(t, d.Write, "disks bound and the VM created: VolumesBound and the phase change")
	assert.Equal(t, v1alpha1.PhaseCreating, c.status.Phase)

	c.clock.add(10 * time.Millisecond)
	st := importingScope("")
	st.vols = bound
	st.vm = kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, false), nil)
	st.addProblem(problemOf(fromStorage, diskWukong("fast"),
		failureOn(storage.ReasonStorageClassNotFound, errors.New(`StorageClass "fast" not found`), "root", "storageClassName")))
	assert.True(t, c.pass(st).Write, "Stalled appears")
	assert.Equal(t, v1alpha1.PhaseError, c.status.Phase)
	assert.Equal(t, 3, c.writes)
}

// TestStatusWritesDetailsWithinInterval: a change of a condition's reason
// or message while its status stays (disks start importing) waits for the
// interval and is written then; a change of state right after a write is
// written at once and carries the details along.
func TestStatusWritesDetailsWithinInterval(t *testing.T) {
	c := newCluster(t)
	pending := scopeWith(storage.Observation{Name: "root", ClaimName: "vm1-root", DataVolume: true, Phase: storage.PhasePending})
	require.True(t, c.pass(pending).Write, "the first status")
	c.clock.add(time.Second)
	d := c.pass(importingScope(""))
	assert.False(t, d.Write, "VolumesBound Pending -> Importing (status False both) within the interval")
	assert.Equal(t, defaultStatusInterval-time.Second, d.RequeueAfter)
	c.clock.add(d.RequeueAfter)
	require.True(t, c.pass(importingScope("")).Write, "written when the interval passed")
	assert.Equal(t, v1alpha1.ReasonImporting, conditions.GetReason(&v1alpha1.Wukong{Status: *c.status}, v1alpha1.VolumesBoundCondition))

	c.clock.add(time.Second)
	assert.False(t, c.pass(importingScope("20.00%")).Write)
	c.clock.add(time.Second)
	done := importingScope("")
	done.vols, done.vm = bound, kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, false), nil)
	require.True(t, c.pass(done).Write, "VolumesBound True: written at once")
	assert.Equal(t, 3, c.writes)
}

// TestStatusWritesStaleCache: a pass that reads the Wukong as it was
// before this manager's last write (an informer cache that has not caught
// up) does not write the same status again, and writes a real change.
func TestStatusWritesStaleCache(t *testing.T) {
	c := newCluster(t)
	stale := c.wukong()
	require.True(t, c.pass(importingScope("40.00%")).Write)
	c.clock.add(time.Minute)
	assert.Equal(t, writeDecision{}, c.passOn(stale, importingScope("40.00%")), "the same status from a stale copy: nothing to write")
	assert.Equal(t, 1, c.writes)

	done := importingScope("")
	done.vols, done.vm = bound, kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, false), nil)
	assert.True(t, c.passOn(stale, done).Write, "a change of state from a stale copy is still written")
	assert.Equal(t, 2, c.writes)
	assert.Equal(t, writeDecision{}, c.pass(done), "the cache caught up: nothing to write")
}

// TestStatusWritesRestarted: a manager that never wrote this Wukong (after
// a restart) writes a band crossing at once and an in-band change after it
// stood for the interval.
func TestStatusWritesRestarted(t *testing.T) {
	c := newCluster(t)
	c.status = statusOf(c.status, importingScope("40.00%")) // written by the previous manager
	d := c.pass(importingScope("45.00%"))
	assert.False(t, d.Write)
	assert.Equal(t, defaultStatusInterval, d.RequeueAfter)
	c.clock.add(d.RequeueAfter)
	assert.True(t, c.pass(importingScope("45.00%")).Write)

	c2 := newCluster(t)
	c2.status = statusOf(c2.status, importingScope("40.00%"))
	assert.True(t, c2.pass(importingScope("50.00%")).Write, "band crossing, nothing written by this manager yet")
}

// TestStatusWritesForget: a forgotten Wukong starts afresh.
func TestStatusWritesForget(t *testing.T) {
	c := newCluster(t)
	c.pass(importingScope("40.00%"))
	c.sw.forget(c.key)
	assert.True(t, c.pass(importingScope("50.00%")).Write, "no last write remembered")
}

func TestProgressOnly(t *testing.T) {
	at40 := statusOf(&v1alpha1.WukongStatus{}, importingScope("40.00%"))
	cases := []struct {
		name string
		next *v1alpha1.WukongStatus
		want bool
	}{
		{"progress and the Importing message", statusOf(at40, importingScope("47.25%")), true},
		{"progress from N/A", statusOf(statusOf(&v1alpha1.WukongStatus{}, importingScope("")), importingScope("3.00%")), true},
		{"volume phase", statusOf(at40, scopeWith(storage.Observation{Name: "root", ClaimName: "vm1-root", Phase: storage.PhasePending})), false},
		{"volume message", func() *v1alpha1.WukongStatus {
			s := statusOf(at40, importingScope("47.25%"))
			s.Volumes[0].Message = "Import pod restarted"
			return s
		}(), false},
		{"observedGeneration", func() *v1alpha1.WukongStatus {
			s := statusOf(at40, importingScope("40.00%"))
			s.ObservedGeneration++
			return s
		}(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := at40
			if tc.name == "progress from N/A" {
				base = statusOf(&v1alpha1.WukongStatus{}, importingScope(""))
			}
			assert.Equal(t, tc.want, progressOnly(base, tc.next))
		})
	}
}

// TestWriteStatusPatches: writeStatus patches through the client only
// what StatusWrites lets through, records Events only with a write, and
// returns the requeue of a coalesced write.
func TestWriteStatusPatches(t *testing.T) {
	scheme := testScheme(t, v1alpha1.AddToScheme)
	w := testWukong()
	patches := 0
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(w).WithStatusSubresource(&v1alpha1.Wukong{}).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			patches++
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		}}).Build()
	clock := newClock()
	rec := events.NewFakeRecorder(10)
	r := &WukongReconciler{Client: c, Recorder: rec, StatusWrites: StatusWrites{Now: clock.now}}
	ctx := context.Background()

	pass := func(s *scope) time.Duration {
		t.Helper()
		live := &v1alpha1.Wukong{}
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(w), live))
		base := live.DeepCopy()
		s.w = live
		requeue, err := r.writeStatus(ctx, base, live, s)
		require.NoError(t, err)
		return requeue
	}
	assert.Zero(t, pass(importingScope("40.00%")))
	assert.Equal(t, 1, patches, "the first status")
	clock.add(time.Second)
	assert.Equal(t, defaultStatusInterval-time.Second, pass(importingScope("44.00%")), "coalesced, requeued")
	assert.Equal(t, 1, patches, "no patch for progress inside the band")
	assert.Empty(t, rec.Events, "no Event while disks import")

	clock.add(time.Second)
	s := importingScope("")
	s.vols = bound
	s.vm = kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, true), runningVMI("node-a"))
	assert.Zero(t, pass(s))
	assert.Equal(t, 2, patches, "Ready: written at once")
	require.Len(t, rec.Events, 1)
	assert.Equal(t, "Normal Running running on node node-a", <-rec.Events)

	assert.Zero(t, pass(s))
	assert.Equal(t, 2, patches, "nothing changed")
	assert.Empty(t, rec.Events)
}

func TestEventsFor(t *testing.T) {
	type mark func(o *v1alpha1.Wukong)
	set := func(t, status, reason, msg string) mark {
		return func(o *v1alpha1.Wukong) {
			conditions.Set(o, metav1.Condition{Type: t, Status: metav1.ConditionStatus(status), Reason: reason, Message: msg})
		}
	}
	build := func(marks ...mark) *v1alpha1.Wukong {
		o := &v1alpha1.Wukong{}
		for _, m := range marks {
			m(o)
		}
		return o
	}
	readyFalse := set(v1alpha1.ReadyCondition, "False", v1alpha1.ReasonWaitingForDependencies, "VirtualMachine not created")
	starting := set(v1alpha1.ReadyCondition, "False", v1alpha1.ReasonStarting, "the VirtualMachine is starting")
	running := set(v1alpha1.ReadyCondition, "True", v1alpha1.ReasonRunning, "running on node n1")
	stopped := set(v1alpha1.ReadyCondition, "True", v1alpha1.ReasonStopped, "stopped (run strategy Halted)")
	netTrue := set(v1alpha1.NetworksConfiguredCondition, "True", v1alpha1.ReasonNADCreated, "1 secondary network(s)")
	importingC := set(v1alpha1.VolumesBoundCondition, "False", v1alpha1.ReasonImporting, "importing: root 40.00%")
	boundC := set(v1alpha1.VolumesBoundCondition, "True", v1alpha1.ReasonVolumesBound, "1 disk(s) bound")
	stalled := func(reason, msg string) mark { return set(v1alpha1.StalledCondition, "True", reason, msg) }
	restart := set(v1alpha1.RestartRequiredCondition, "True", v1alpha1.ReasonRestartRequired, "virtctl restart vm1")
	nodeLost := func(reason string) mark { return set(v1alpha1.ReadyCondition, "False", reason, "node n1 is NotReady") }

	cases := []struct {
		name          string
		before, after *v1alpha1.Wukong
		want          []event
	}{
		{"networks configured, disks importing: none", build(), build(netTrue, importingC, readyFalse), nil},
		{"disks bound, VM starting: none", build(netTrue, importingC, readyFalse), build(netTrue, boundC, starting), nil},
		{"Ready becomes True", build(netTrue, boundC, starting), build(netTrue, boundC, running),
			[]event{{corev1.EventTypeNormal, v1alpha1.ReasonRunning, v1alpha1.ReadyCondition, "running on node n1"}}},
		{"Ready Running -> Stopped", build(running), build(stopped),
			[]event{{corev1.EventTypeNormal, v1alpha1.ReasonStopped, v1alpha1.ReadyCondition, "stopped (run strategy Halted)"}}},
		{"Ready leaves True", build(running), build(starting),
			[]event{{corev1.EventTypeWarning, v1alpha1.ReasonStarting, v1alpha1.ReadyCondition, "the VirtualMachine is starting"}}},
		{"Ready leaves True for a lost node the policy waits on", build(running), build(nodeLost(v1alpha1.ReasonNodeLostWaiting)),
			[]event{{corev1.EventTypeWarning, v1alpha1.ReasonNodeLostWaiting, v1alpha1.ReadyCondition, "node n1 is NotReady"}}},
		{"Ready leaves True for a lost node, no policy", build(running), build(nodeLost(v1alpha1.ReasonNodeNotReady)),
			[]event{{corev1.EventTypeWarning, v1alpha1.ReasonNodeNotReady, v1alpha1.ReadyCondition, "node n1 is NotReady"}}},
		{"Ready leaves True as the policy restarts: none (the policy's own Event says it)", build(running),
			build(nodeLost(v1alpha1.ReasonNodeLostRestarting)), nil},
		{"Stalled appears", build(readyFalse), build(readyFalse, stalled(v1alpha1.ReasonStorageClassNotFound, "spec.disks[0].storageClassName: x")),
			[]event{{corev1.EventTypeWarning, v1alpha1.ReasonStorageClassNotFound, v1alpha1.StalledCondition, "spec.disks[0].storageClassName: x"}}},
		{"Stalled changes reason", build(stalled(v1alpha1.ReasonStorageClassNotFound, "a")), build(stalled(v1alpha1.ReasonSecretNotFound, "b")),
			[]event{{corev1.EventTypeWarning, v1alpha1.ReasonSecretNotFound, v1alpha1.StalledCondition, "b"}}},
		{"Stalled, same reason, new message: none", build(stalled(v1alpha1.ReasonSecretNotFound, "a")), build(stalled(v1alpha1.ReasonSecretNotFound, "b")), nil},
		{"RestartRequired appears", build(running), build(running, restart),
			[]event{{corev1.EventTypeNormal, v1alpha1.ReasonRestartRequired, v1alpha1.RestartRequiredCondition, "virtctl restart vm1"}}},
		{"RestartRequired stays: none", build(running, restart), build(running, restart), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, eventsFor(tc.before, tc.after))
		})
	}
}

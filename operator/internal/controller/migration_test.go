package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

var (
	t0 = metav1.NewTime(time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC))
	t1 = metav1.NewTime(t0.Add(40 * time.Second))
)

// migratingVMI is a running instance with a migration state as KubeVirt
// writes it (kubevirt.io/api core/v1 VirtualMachineInstanceMigrationState).
func migratingVMI(ms *kubevirtv1.VirtualMachineInstanceMigrationState) *kubevirtv1.VirtualMachineInstance {
	vmi := runningVMI("node-a")
	vmi.Status.MigrationState = ms
	return vmi
}

// TestStatusFromMigrationState: phase Migrating while KubeVirt migrates,
// status.migration from the VMI's migrationState (kept after the end, so
// the move stays on record), Ready True throughout (the guest runs).
func TestStatusFromMigrationState(t *testing.T) {
	tests := []struct {
		name   string
		ms     *kubevirtv1.VirtualMachineInstanceMigrationState
		phase  v1alpha1.Phase
		ready  string
		msgHas string
		want   *v1alpha1.MigrationStatus
	}{
		{name: "target pod handed off, not started: Migrating, Pending",
			ms:    &kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "node-a", TargetNode: "node-b", MigrationUID: "m1"},
			phase: v1alpha1.PhaseMigrating, ready: "True:" + v1alpha1.ReasonMigrating, msgHas: "live-migrating to node node-b (Pending)",
			want: &v1alpha1.MigrationStatus{State: "Pending", SourceNode: "node-a", TargetNode: "node-b"}},
		{name: "running: Migrating, Running with its start",
			ms:    &kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "node-a", TargetNode: "node-b", StartTimestamp: &t0},
			phase: v1alpha1.PhaseMigrating, ready: "True:" + v1alpha1.ReasonMigrating, msgHas: "running on node node-a, live-migrating to node node-b (Running)",
			want: &v1alpha1.MigrationStatus{State: "Running", SourceNode: "node-a", TargetNode: "node-b", StartTime: &t0}},
		{name: "succeeded: Running again, the move recorded",
			ms: &kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "node-a", TargetNode: "node-b", StartTimestamp: &t0, EndTimestamp: &t1,
				Completed: true},
			phase: v1alpha1.PhaseRunning, ready: "True:" + v1alpha1.ReasonRunning, msgHas: "running on node node-a",
			want: &v1alpha1.MigrationStatus{State: "Succeeded", SourceNode: "node-a", TargetNode: "node-b", StartTime: &t0, EndTime: &t1}},
		{name: "failed: Running on the source, the reason recorded",
			ms: &kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "node-a", TargetNode: "node-b", StartTimestamp: &t0, EndTimestamp: &t1,
				Completed: true, Failed: true, FailureReason: "Live migration failed: migration job cancelled"},
			phase: v1alpha1.PhaseRunning, ready: "True:" + v1alpha1.ReasonRunning,
			want: &v1alpha1.MigrationStatus{State: "Failed", SourceNode: "node-a", TargetNode: "node-b", StartTime: &t0, EndTime: &t1,
				FailureReason: "Live migration failed: migration job cancelled"}},
		{name: "aborted without a reason: Failed, aborted",
			ms: &kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "node-a", TargetNode: "node-b", StartTimestamp: &t0, EndTimestamp: &t1,
				AbortStatus: kubevirtv1.MigrationAbortSucceeded},
			phase: v1alpha1.PhaseRunning, ready: "True:" + v1alpha1.ReasonRunning,
			want: &v1alpha1.MigrationStatus{State: "Failed", SourceNode: "node-a", TargetNode: "node-b", StartTime: &t0, EndTime: &t1, FailureReason: "aborted"}},
		{name: "never migrated: no migration status", phase: v1alpha1.PhaseRunning, ready: "True:" + v1alpha1.ReasonRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testWukong()
			s := runningScope(w, migratingVMI(tt.ms))
			computeStatus(w, s)
			assert.Equal(t, tt.phase, w.Status.Phase)
			assert.Equal(t, tt.want, w.Status.Migration)
			ready := mustCondition(t, w, v1alpha1.ReadyCondition)
			assert.Equal(t, tt.ready, string(ready.Status)+":"+ready.Reason)
			assert.Contains(t, ready.Message, tt.msgHas)
			assert.Nil(t, conditions.Get(w, v1alpha1.StalledCondition), "a migration is no problem")
		})
	}
}

// TestMigrationSettlingIsNotCreating: around a live migration's handover
// real KubeVirt (v1.9.0, two nodes) reports the instance Running but not
// Ready, while the migration runs and right after it succeeded; the guest
// never stopped, so the Wukong stays Migrating (it showed Creating), then
// Running.
func TestMigrationSettlingIsNotCreating(t *testing.T) {
	vmi := migratingVMI(&kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "node-a", TargetNode: "node-b",
		StartTimestamp: &t0, EndTimestamp: &t1, Completed: true})
	for i, c := range vmi.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceReady {
			vmi.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	w := testWukong()
	computeStatus(w, runningScope(w, vmi))
	assert.Equal(t, v1alpha1.PhaseMigrating, w.Status.Phase)
	assert.Equal(t, "Succeeded", w.Status.Migration.State)

	// The same while the migration runs (seen: Running Migrating Creating
	// Migrating Running before).
	vmi.Status.MigrationState = &kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "node-a", TargetNode: "node-b", StartTimestamp: &t0}
	w = testWukong()
	computeStatus(w, runningScope(w, vmi))
	assert.Equal(t, v1alpha1.PhaseMigrating, w.Status.Phase)
	assert.Equal(t, "Running", w.Status.Migration.State)

	// A first start (no migration) that is not Ready yet is still Creating.
	first := runningVMI("node-a")
	for i, c := range first.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceReady {
			first.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	w = testWukong()
	computeStatus(w, runningScope(w, first))
	assert.Equal(t, v1alpha1.PhaseCreating, w.Status.Phase)
}

// KubeVirt's message for a claim that is not ReadWriteMany
// (pkg/virt-controller/watch/vmi.go checkVolumesForMigration).
const notSharedMessage = "cannot migrate VMI: PVC vm1-data is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)"

func notMigratableVMI() *kubevirtv1.VirtualMachineInstance {
	vmi := runningVMI("node-a")
	vmi.Status.Conditions = append(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceCondition{
		Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionFalse,
		Reason: kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable, Message: notSharedMessage,
	})
	return vmi
}

// TestMigratableMirrorsLiveMigratable: KubeVirt's reason is kept, the claim
// it names becomes spec.disks[1]; Ready says a drain is refused only when
// LiveMigrate is in effect.
func TestMigratableMirrorsLiveMigratable(t *testing.T) {
	w, vols := twoDisks()
	s := runningScope(w, notMigratableVMI())
	s.vols = vols
	s.maint.evictionStrategy, s.maint.evictionSource = kubevirtv1.EvictionStrategyLiveMigrate, "spec.evictionStrategy"
	computeStatus(w, s)

	m := mustCondition(t, w, v1alpha1.MigratableCondition)
	assert.Equal(t, metav1.ConditionFalse, m.Status)
	assert.Equal(t, kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable, m.Reason)
	assert.Contains(t, m.Message, "disk spec.disks[1] (data, claim vm1-data) is not shared")
	assert.NotContains(t, m.Message, "PVC vm1-data")
	assert.Contains(t, m.Message, "spec.disks[1]'s claim has access modes [ReadWriteOnce]")
	assert.Contains(t, m.Message, "StorageClass local")

	ready := mustCondition(t, w, v1alpha1.ReadyCondition)
	assert.Equal(t, metav1.ConditionTrue, ready.Status, "the guest runs: a refused drain is not a failure")
	assert.Contains(t, ready.Message, "a drain of node node-a is refused")
	assert.Contains(t, ready.Message, "LiveMigrate (from spec.evictionStrategy)")
	assert.Equal(t, v1alpha1.PhaseRunning, w.Status.Phase)

	// None: the drain shuts the guest down, nothing is refused.
	w2, _ := twoDisks()
	s.w = w2
	s.maint.evictionStrategy = kubevirtv1.EvictionStrategyNone
	computeStatus(w2, s)
	assert.NotContains(t, conditions.Get(w2, v1alpha1.ReadyCondition).Message, "drain")
	assert.Equal(t, metav1.ConditionFalse, conditions.Get(w2, v1alpha1.MigratableCondition).Status)

	// Migratable True, and absent once no instance runs.
	vmi := runningVMI("node-a")
	vmi.Status.Conditions = append(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceCondition{
		Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionTrue})
	s.vm = observeRunning(vmi)
	computeStatus(w2, s)
	assert.Equal(t, "True:"+v1alpha1.ReasonMigratable, string(conditions.Get(w2, v1alpha1.MigratableCondition).Status)+":"+conditions.Get(w2, v1alpha1.MigratableCondition).Reason)
	s.vm = kubevirt.Observe(vmWith(kubevirtv1.RunStrategyHalted, false), nil)
	computeStatus(w2, s)
	assert.Nil(t, conditions.Get(w2, v1alpha1.MigratableCondition))
}

// drainedScope is a pass over a Wukong whose VM runs on node-a, which a
// drain marked (the VMI's evacuationNodeName), under eviction strategy es
// from spec.evictionStrategy.
func drainedScope(es kubevirtv1.EvictionStrategy) (*v1alpha1.Wukong, *scope, *kubevirtv1.VirtualMachineInstance) {
	w := testWukong()
	vmi := runningVMI("node-a")
	vmi.Status.EvacuationNodeName = "node-a"
	s := runningScope(w, vmi)
	s.maint.evictionStrategy, s.maint.evictionSource = es, "spec.evictionStrategy"
	return w, s, vmi
}

// TestDrainNote: a drain marked the instance (evacuationNodeName) and no
// migration has reached it: Ready, still True, says what the drain waits
// for. External: the drain only marks the instance. LiveMigrate: its
// migration has not started (the target pod is unscheduled).
func TestDrainNote(t *testing.T) {
	tests := []struct {
		es     kubevirtv1.EvictionStrategy
		msgHas string
	}{
		{kubevirtv1.EvictionStrategyExternal, "a drain asked the VM to leave node node-a (eviction strategy External"},
		{kubevirtv1.EvictionStrategyLiveMigrate, "a drain asked the VM to leave node node-a (eviction strategy LiveMigrate, from spec.evictionStrategy): its live migration has not started"},
	}
	for _, tt := range tests {
		t.Run(string(tt.es), func(t *testing.T) {
			w, s, _ := drainedScope(tt.es)
			computeStatus(w, s)
			ready := mustCondition(t, w, v1alpha1.ReadyCondition)
			assert.Equal(t, metav1.ConditionTrue, ready.Status)
			assert.Contains(t, ready.Message, tt.msgHas)
		})
	}
}

// LiveMigrate: once the drain's migration runs, Ready says it migrates and
// no longer that the drain waits.
func TestDrainNoteGoneOnceMigrating(t *testing.T) {
	w, s, vmi := drainedScope(kubevirtv1.EvictionStrategyLiveMigrate)
	vmi.Status.MigrationState = &kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "node-a", TargetNode: "node-b", StartTimestamp: &metav1.Time{}}
	s.vm = observeRunning(vmi)
	computeStatus(w, s)
	ready := mustCondition(t, w, v1alpha1.ReadyCondition)
	assert.Equal(t, v1alpha1.ReasonMigrating, ready.Reason)
	assert.NotContains(t, ready.Message, "has not started")
}

// A blank disk written as a plain claim says why it cannot migrate.
func TestMigratableMessageNamesPlainClaims(t *testing.T) {
	w, vols := twoDisks()
	vols[1].PlainClaim, vols[1].NoCDI, vols[1].DataVolume = true, true, false
	msg := migratableMessage(w, vols, notSharedMessage)
	assert.Contains(t, msg, "spec.disks[1]")
	assert.Contains(t, msg, "CDI was not installed when the disk was made")
	assert.Equal(t, "no claim named", migratableMessage(w, vols, "no claim named"), "a message naming no claim of the Wukong is kept")
}

// The operator's default eviction strategy fills in only what the Wukong
// leaves empty.
func TestEvictionDefault(t *testing.T) {
	r := &WukongReconciler{DefaultEvictionStrategy: kubevirtv1.EvictionStrategyLiveMigrate}
	m := kubevirt.Machine{}
	r.withEvictionDefault(&m)
	assert.Equal(t, kubevirtv1.EvictionStrategyLiveMigrate, m.EvictionStrategy)
	m = kubevirt.Machine{EvictionStrategy: kubevirtv1.EvictionStrategyNone}
	r.withEvictionDefault(&m)
	assert.Equal(t, kubevirtv1.EvictionStrategyNone, m.EvictionStrategy, "the Wukong's own wins")
	m = kubevirt.Machine{}
	(&WukongReconciler{}).withEvictionDefault(&m)
	assert.Empty(t, m.EvictionStrategy, "no default: unset, the KubeVirt CR's applies")
}

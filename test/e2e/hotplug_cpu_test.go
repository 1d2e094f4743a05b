package e2e_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// CPU and memory hotplug (issue #34) in the sandbox: KubeVirt's real VMI
// mutator sets the hot-plug maxima (maxSockets 4 × sockets, maxGuest 4 ×
// guest: the default maxHotplugRatio), and the simulated virt-controller
// and virt-handler carry a grow out through a live migration (package
// sandbox, hotplug_cpu.go). A grow needs a VM that can live-migrate: the
// tests put its disk on a ReadWriteMany class and give it two nodes.

// hotplugWukong is a migratable Wukong (root disk on a ReadWriteMany
// class) on the test's own nodes, running on a, with its VMI's UID.
func hotplugWukong(t *testing.T, ns, a, b, memory string) (*v1alpha1.Wukong, *kubevirtv1.VirtualMachineInstance) {
	t.Helper()
	w := maintWukong(ns, "hot", "", rwxClass(t))
	w.Spec.Memory = resource.MustParse(memory)
	runningOnFirst(t, w, a, b)
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		if m := cond(got, v1alpha1.MigratableCondition); assert.NotNil(c, m, "Migratable") {
			assert.Equal(c, metav1.ConditionTrue, m.Status, "Migratable: %s", m.Message)
		}
		assert.NotNil(c, got.Status.Resources, "status.resources")
	}, "Wukong %s migratable", key(w))
	return w, getVMI(t, key(w))
}

// workloadUpdateMigrations are the migrations KubeVirt's workload updater
// made for VMI name (annotation kubevirt.io/workloadUpdateMigration).
func workloadUpdateMigrations(c require.TestingT, ns, name string) []kubevirtv1.VirtualMachineInstanceMigration {
	var out []kubevirtv1.VirtualMachineInstanceMigration
	for _, m := range migrations(c, ns, name) {
		if _, ok := m.Annotations[kubevirtv1.WorkloadUpdateMigrationAnnotation]; ok {
			out = append(out, m)
		}
	}
	return out
}

// TestHotplugCPUGrowLive: cpu 1 → 2 on a running, migratable Wukong is
// applied without a restart: KubeVirt copies the template's sockets to the
// VMI, its workload updater migrates it, and the target has 2 CPUs; the
// Wukong goes Migrating and back to Running with the same VMI, shows
// status.resources.cpu 2, no RestartRequired, and records the Event
// ResourcesUpdatedLive.
func TestHotplugCPUGrowLive(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, vmi := hotplugWukong(t, ns, a, b, "256Mi")
	got := getWukong(t, k, key(w))
	assert.Equal(t, int32(1), got.Status.Resources.CPU)
	assert.Equal(t, int32(4), got.Status.Resources.MaxCPU, "maxSockets 4 × 1 (KubeVirt's default maxHotplugRatio)")
	seen := phases(t, key(w))

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.CPU = 2 })
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		if assert.NotNil(c, got.Status.Resources) {
			assert.Equal(c, int32(2), got.Status.Resources.CPU, "status.resources.cpu")
		}
		assert.Nil(c, cond(got, v1alpha1.RestartRequiredCondition), "no RestartRequired")
		now := getVMI(c, key(w))
		assert.Equal(c, uint32(2), now.Spec.Domain.CPU.Sockets, "VMI sockets")
		if assert.NotNil(c, now.Status.CurrentCPUTopology) {
			assert.Equal(c, uint32(2), now.Status.CurrentCPUTopology.Sockets, "VMI status.currentCPUTopology")
		}
	}, "cpu 2 applied live to %s", key(w))

	assert.Equal(t, vmi.UID, getVMI(t, key(w)).UID, "the same VMI: no restart")
	ms := workloadUpdateMigrations(t, ns, w.Name)
	require.Len(t, ms, 1, "one workload-update migration")
	assert.True(t, strings.HasPrefix(ms[0].Name, sandbox.WorkloadUpdateMigrationPrefix), ms[0].Name)
	assert.Equal(t, kubevirtv1.MigrationSucceeded, ms[0].Status.Phase)
	ph := seen()
	assert.Contains(t, ph, v1alpha1.PhaseMigrating, "the Wukong went Migrating: %v", ph)
	assert.NotContains(t, ph, v1alpha1.PhaseCreating, "no restart: %v", ph)
	eventually(t, 1, func(c *assert.CollectT) {
		evs, err := eventsWith(ns, w.Name, v1alpha1.ReasonResourcesUpdated)
		require.NoError(c, err)
		if assert.NotEmpty(c, evs, "Event %s", v1alpha1.ReasonResourcesUpdated) {
			assert.Contains(c, evs[0].Note, "cpu 1 → 2 applied to the running guest without a restart")
		}
	}, "the Event")
	t.Logf("phases %v; migration %s", ph, ms[0].Name)
}

// TestHotplugCPUMemoryGrowLive: memory 1Gi → 2Gi (up to maxGuest 4Gi) is
// applied live the same way: VMI guest memory and status.memory 2Gi, same
// VMI, no RestartRequired.
func TestHotplugCPUMemoryGrowLive(t *testing.T) {
	ns, a, b := parallelOnTwoNodes(t)
	w, vmi := hotplugWukong(t, ns, a, b, "1Gi")
	got := getWukong(t, k, key(w))
	require.NotNil(t, got.Status.Resources.MaxMemory, "KubeVirt set up memory hotplug for a 1Gi guest")
	assert.Equal(t, "4Gi", got.Status.Resources.MaxMemory.String())

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.Memory = resource.MustParse("2Gi") })
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		if assert.NotNil(c, got.Status.Resources) && assert.NotNil(c, got.Status.Resources.Memory) {
			assert.Equal(c, "2Gi", got.Status.Resources.Memory.String(), "status.resources.memory")
		}
		assert.Nil(c, cond(got, v1alpha1.RestartRequiredCondition), "no RestartRequired")
		now := getVMI(c, key(w))
		assert.Equal(c, "2Gi", now.Spec.Domain.Memory.Guest.String(), "VMI guest memory")
		if assert.NotNil(c, now.Status.Memory) && assert.NotNil(c, now.Status.Memory.GuestRequested) {
			assert.Equal(c, "2Gi", now.Status.Memory.GuestRequested.String(), "VMI status.memory.guestRequested")
		}
	}, "memory 2Gi applied live to %s", key(w))
	assert.Equal(t, vmi.UID, getVMI(t, key(w)).UID, "the same VMI: no restart")
	assert.Len(t, workloadUpdateMigrations(t, ns, w.Name), 1, "through one workload-update migration")
}

// TestHotplugCPUPastMaximum: cpu past the instance's maximum (5 > 4) waits
// for a restart and the Wukong says so, naming the field and the maximum;
// KubeVirt's VM has its own RestartRequired. After the restart the new VMI
// has 5 sockets and RestartRequired goes. A cpu past the CRD's bound (64)
// is refused by the API server.
func TestHotplugCPUPastMaximum(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "big")
	create(t, w)
	waitRunning(t, key(w))
	vmi := getVMI(t, key(w))

	err := k.Patch(ctxT(t), &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: w.Name}},
		client.RawPatch(types.MergePatchType, []byte(`{"spec":{"cpu":65}}`)))
	require.Error(t, err, "cpu 65 is above the CRD's maximum")
	assert.Contains(t, err.Error(), "spec.cpu")

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.CPU = 5 })
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		rr := cond(got, v1alpha1.RestartRequiredCondition)
		if assert.NotNil(c, rr, "RestartRequired") {
			assert.Contains(c, rr.Message, "spec.cpu 1 → 5")
			assert.Contains(c, rr.Message, "hot-plug maximum of 4 vCPUs")
		}
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), key(w), vm))
		assert.True(c, slices.ContainsFunc(vm.Status.Conditions, func(vc kubevirtv1.VirtualMachineCondition) bool {
			return vc.Type == kubevirtv1.VirtualMachineRestartRequired && vc.Message == sandbox.MessageCPUAboveMax
		}), "KubeVirt's VM RestartRequired: %v", vm.Status.Conditions)
		assert.Equal(c, uint32(1), getVMI(c, key(w)).Spec.Domain.CPU.Sockets, "the VMI keeps 1 socket")
	}, "RestartRequired for cpu 5")
	assert.Equal(t, vmi.UID, getVMI(t, key(w)).UID, "not restarted behind the user's back")

	restartVM(t, key(w))
	eventually(t, 2, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		assert.Nil(c, cond(got, v1alpha1.RestartRequiredCondition), "RestartRequired gone after the restart")
		now := getVMI(c, key(w))
		assert.NotEqual(c, vmi.UID, now.UID, "a new VMI")
		assert.Equal(c, uint32(5), now.Spec.Domain.CPU.Sockets)
		assert.Equal(c, uint32(20), now.Spec.Domain.CPU.MaxSockets, "KubeVirt's new maximum: 4 × 5")
		if assert.NotNil(c, got.Status.Resources) {
			assert.Equal(c, int32(5), got.Status.Resources.CPU)
		}
	}, "cpu 5 after the restart")
}

// TestHotplugCPUShrinkRestart: cpu 2 → 1 waits for a restart (KubeVirt
// removes CPUs only then); the VMI keeps 2 sockets.
func TestHotplugCPUShrinkRestart(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "shrink")
	w.Spec.CPU = 2
	create(t, w)
	waitRunning(t, key(w))
	vmi := getVMI(t, key(w))

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.CPU = 1 })
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		assertRunning(c, got)
		rr := cond(got, v1alpha1.RestartRequiredCondition)
		if assert.NotNil(c, rr, "RestartRequired") {
			assert.Contains(c, rr.Message, "spec.cpu 2 → 1")
			assert.Contains(c, rr.Message, "removes CPUs only at a restart")
		}
		assert.Equal(c, uint32(2), getVMI(c, key(w)).Spec.Domain.CPU.Sockets, "the VMI keeps 2 sockets")
	}, "RestartRequired for the shrink")
	assert.Equal(t, vmi.UID, getVMI(t, key(w)).UID, "not restarted")
}

// TestHotplugCPUNotMigratable: a VM that cannot live-migrate (ReadWriteOnce
// disk) takes no CPU live: KubeVirt copies the sockets to the VMI and marks
// it HotVCPUChange, but its workload updater makes no migration; the
// Wukong's RestartRequired says why, naming the claim.
func TestHotplugCPUNotMigratable(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "rwo")
	create(t, w)
	waitRunning(t, key(w))
	vmi := getVMI(t, key(w))

	updateWukong(t, key(w), func(w *v1alpha1.Wukong) { w.Spec.CPU = 2 })
	eventually(t, 1, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		rr := cond(got, v1alpha1.RestartRequiredCondition)
		if assert.NotNil(c, rr, "RestartRequired") {
			assert.Contains(c, rr.Message, "spec.cpu 1 → 2")
			assert.Contains(c, rr.Message, "cannot live-migrate")
		}
		now := getVMI(c, key(w))
		assert.Equal(c, uint32(2), now.Spec.Domain.CPU.Sockets, "KubeVirt took the sockets")
		assert.True(c, slices.ContainsFunc(now.Status.Conditions, func(vc kubevirtv1.VirtualMachineInstanceCondition) bool {
			return vc.Type == kubevirtv1.VirtualMachineInstanceVCPUChange
		}), "HotVCPUChange on the VMI")
		if assert.NotNil(c, got.Status.Resources) {
			assert.Equal(c, int32(1), got.Status.Resources.CPU, "the guest still has 1")
		}
	}, "RestartRequired for a VM that cannot migrate")
	assert.Empty(t, migrations(t, ns, w.Name), "no migration")
	assert.Equal(t, vmi.UID, getVMI(t, key(w)).UID, "not restarted")
}

package e2e_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// powerAction changes the VM's spec.runStrategy as `virtctl start` / `virtctl
// stop` do (their start/stop subresources patch it; KubeVirt user guide,
// "Run Strategies").
func powerAction(t *testing.T, nn types.NamespacedName, rs kubevirtv1.VirtualMachineRunStrategy) {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	vm.Namespace, vm.Name = nn.Namespace, nn.Name
	patch := []byte(`{"spec":{"runStrategy":"` + string(rs) + `"}}`)
	require.NoError(t, k.Patch(ctxT(t), vm, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("virtctl")))
}

// assertVM checks the VM's runStrategy and vCPUs (sockets of one core).
func assertVM(c assert.TestingT, nn types.NamespacedName, rs kubevirtv1.VirtualMachineRunStrategy, cpus uint32) {
	vm := &kubevirtv1.VirtualMachine{}
	if !assert.NoError(c, k.Get(context.Background(), nn, vm)) {
		return
	}
	if assert.NotNil(c, vm.Spec.RunStrategy, "spec.runStrategy") {
		assert.Equal(c, rs, *vm.Spec.RunStrategy, "spec.runStrategy")
	}
	assert.Equal(c, cpus, vm.Spec.Template.Spec.Domain.CPU.Sockets, "sockets")
}

// assertStopped: phase Stopped, Ready True (Stopped) with the start hint,
// status current, no VMI.
func assertStopped(c assert.TestingT, w *v1alpha1.Wukong) {
	assert.Equal(c, v1alpha1.PhaseStopped, w.Status.Phase, "phase")
	assert.Equal(c, w.Generation, w.Status.ObservedGeneration, "observedGeneration")
	if ready := cond(w, v1alpha1.ReadyCondition); assert.NotNil(c, ready, "Ready") {
		assert.Equal(c, metav1.ConditionTrue, ready.Status, "Ready")
		assert.Equal(c, v1alpha1.ReasonStopped, ready.Reason, "Ready reason")
		assert.Contains(c, ready.Message, "virtctl start "+w.Name)
	}
	assert.Nil(c, cond(w, v1alpha1.StalledCondition), "Stalled")
	assertGone(c, &kubevirtv1.VirtualMachineInstance{}, key(w))
}

// TestPowerActionsKept: `virtctl start` on a Wukong created with
// autoStart: false, and `virtctl stop` on it afterwards, stay through later
// reconciles that rewrite the VM (a CPU change); the Wukong's phase and
// Ready follow the VM. Changing the Wukong's own strategy fields applies the
// new strategy over the power action.
func TestPowerActionsKept(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "power")
	w.Spec.CPU = 1
	w.Spec.StartStrategy = &v1alpha1.StartStrategy{AutoStart: new(false)}
	create(t, w)
	nn := key(w)
	eventually(t, 1, func(c *assert.CollectT) {
		assertStopped(c, getWukong(c, k, nn))
		assertVM(c, nn, kubevirtv1.RunStrategyHalted, 1)
	}, "the autoStart=false Wukong to be Stopped")

	// virtctl start: Running, and the power state survives a reconcile that
	// rewrites the VM.
	powerAction(t, nn, kubevirtv1.RunStrategyAlways)
	w = waitRunning(t, nn)
	assert.NotContains(t, cond(w, v1alpha1.ReadyCondition).Message, "virtctl start")
	updateWukong(t, nn, func(w *v1alpha1.Wukong) { w.Spec.CPU = 2 })
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, k, nn)
		assert.Equal(c, w.Generation, w.Status.ObservedGeneration, "observedGeneration")
		assertVM(c, nn, kubevirtv1.RunStrategyAlways, 2)
		assert.NotEqual(c, v1alpha1.PhaseStopped, w.Status.Phase)
	}, "the CPU change to reach the VM with the started state kept")
	eventually(t, 1, func(c *assert.CollectT) {
		assert.Equal(c, v1alpha1.PhaseRunning, getWukong(c, k, nn).Status.Phase)
	}, "the started Wukong to stay Running")

	// virtctl stop: Stopped, and that survives a rewrite too.
	powerAction(t, nn, kubevirtv1.RunStrategyHalted)
	eventually(t, 1, func(c *assert.CollectT) { assertStopped(c, getWukong(c, k, nn)) }, "the stopped Wukong to be Stopped")
	updateWukong(t, nn, func(w *v1alpha1.Wukong) { w.Spec.CPU = 3 })
	eventually(t, 1, func(c *assert.CollectT) {
		assertStopped(c, getWukong(c, k, nn))
		assertVM(c, nn, kubevirtv1.RunStrategyHalted, 3)
	}, "the CPU change to reach the VM with the stopped state kept")

	// The Wukong's own strategy changes: applied.
	updateWukong(t, nn, func(w *v1alpha1.Wukong) {
		w.Spec.StartStrategy = nil
		w.Spec.HighAvailability = &v1alpha1.HighAvailability{RestartPolicy: "OnFailure"}
	})
	eventually(t, 1, func(c *assert.CollectT) {
		assertVM(c, nn, kubevirtv1.RunStrategyRerunOnFailure, 3)
		assertRunning(c, getWukong(c, k, nn))
	}, "the new strategy (RerunOnFailure) to be applied and the VM to run")
}

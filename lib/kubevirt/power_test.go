package kubevirt

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// powerAction changes spec.runStrategy the way virtctl start/stop (the VM's
// start/stop subresources) do: a patch by another field manager.
func powerAction(t *testing.T, c client.Client, key client.ObjectKey, rs kubevirtv1.VirtualMachineRunStrategy) {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	vm.Namespace, vm.Name = key.Namespace, key.Name
	patch := []byte(`{"spec":{"runStrategy":"` + string(rs) + `"}}`)
	require.NoError(t, c.Patch(context.Background(), vm, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("virtctl")))
}

func liveVM(t *testing.T, c client.Client, key client.ObjectKey) *kubevirtv1.VirtualMachine {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(context.Background(), key, vm))
	require.NotNil(t, vm.Spec.RunStrategy, "runStrategy is never dropped")
	return vm
}

// reconcileHalted reconciles, in a new namespace, a base machine whose run
// strategy is Halted (autoStart false), and returns its owner, the machine,
// the VM's key and the observation.
func reconcileHalted(t *testing.T, c client.Client) (*corev1.ConfigMap, Machine, client.ObjectKey, Observation) {
	t.Helper()
	ns, owner := newNamespace(t, c)
	m := baseMachine()
	m.RunStrategy = kubevirtv1.RunStrategyHalted
	obs, err := Reconcile(context.Background(), c, testID, owner, m)
	require.NoError(t, err)
	return owner, m, client.ObjectKey{Namespace: ns, Name: m.Name}, obs
}

// TestReconcileKeepsPowerActions: a VM created Halted (autoStart false) and
// started with `virtctl start` stays Always through later reconciles, also
// ones that change other fields; `virtctl stop` stays too; a change of the
// owner's strategy is applied over the power action.
func TestReconcileKeepsPowerActions(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	owner, m, key, obs := reconcileHalted(t, c)
	assert.Equal(t, kubevirtv1.RunStrategyHalted, obs.RunStrategy())
	vm := liveVM(t, c, key)
	assert.Equal(t, kubevirtv1.RunStrategyHalted, *vm.Spec.RunStrategy)
	assert.Equal(t, "Halted", vm.Annotations[testID.Key(KeyAppliedRunStrategy)])

	// virtctl start.
	powerAction(t, c, key, kubevirtv1.RunStrategyAlways)
	obs, err := Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, obs.RunStrategy(), "the observation follows the VM")
	vm = liveVM(t, c, key)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy, "virtctl start is kept")
	rv := vm.ResourceVersion
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm = liveVM(t, c, key)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
	assert.Equal(t, rv, vm.ResourceVersion, "a steady state writes nothing")

	// Another field changes: applied, the power state stays.
	m.CPU = 4
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm = liveVM(t, c, key)
	assert.Equal(t, uint32(4), vm.Spec.Template.Spec.Domain.CPU.Sockets)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)

	// virtctl stop.
	powerAction(t, c, key, kubevirtv1.RunStrategyHalted)
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	assert.Equal(t, kubevirtv1.RunStrategyHalted, *liveVM(t, c, key).Spec.RunStrategy, "virtctl stop is kept")

	// The owner's strategy changes (autoStart true, restartPolicy OnFailure):
	// applied, although the VM was stopped by hand.
	m.RunStrategy = kubevirtv1.RunStrategyRerunOnFailure
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm = liveVM(t, c, key)
	assert.Equal(t, kubevirtv1.RunStrategyRerunOnFailure, *vm.Spec.RunStrategy)
	assert.Equal(t, "RerunOnFailure", vm.Annotations[testID.Key(KeyAppliedRunStrategy)])

	// Back to Halted after another power action: applied again.
	powerAction(t, c, key, kubevirtv1.RunStrategyAlways)
	m.RunStrategy = kubevirtv1.RunStrategyHalted
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	assert.Equal(t, kubevirtv1.RunStrategyHalted, *liveVM(t, c, key).Spec.RunStrategy)
}

// TestReconcileAdoptsUnannotatedVM: a VM written before the annotation
// existed gets the owner's strategy and the annotation on the next pass.
func TestReconcileAdoptsUnannotatedVM(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, owner := newNamespace(t, c)
	m := baseMachine()
	key := client.ObjectKey{Namespace: ns, Name: m.Name}
	_, err := Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm := liveVM(t, c, key)
	delete(vm.Annotations, testID.Key(KeyAppliedRunStrategy))
	halted := kubevirtv1.RunStrategyHalted
	vm.Spec.RunStrategy = &halted
	require.NoError(t, c.Update(ctx, vm))

	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm = liveVM(t, c, key)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
	assert.Equal(t, "Always", vm.Annotations[testID.Key(KeyAppliedRunStrategy)])
}

// staleVMReader answers Gets of VirtualMachines with a copy taken earlier,
// as a controller's cache does before a watch event arrives.
type staleVMReader struct {
	client.Client
	vm *kubevirtv1.VirtualMachine
}

func (s staleVMReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if vm, ok := obj.(*kubevirtv1.VirtualMachine); ok && key == client.ObjectKeyFromObject(s.vm) {
		s.vm.DeepCopyInto(vm)
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// TestReconcileStaleReadKeepsPowerAction: a reconcile that read the VM
// before `virtctl start` changed it (a lagging cache) must not put the old
// run strategy back: its apply is refused (409 Conflict, a transient error
// to retry) and the VM stays Always; the retry with a fresh read keeps it.
func TestReconcileStaleReadKeepsPowerAction(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	owner, m, key, _ := reconcileHalted(t, c)
	before := liveVM(t, c, key)

	powerAction(t, c, key, kubevirtv1.RunStrategyAlways)
	m.CPU++ // a change that makes the reconcile write
	_, err := Reconcile(ctx, staleVMReader{Client: c, vm: before}, testID, owner, m)
	require.Error(t, err, "the apply from a stale read")
	assert.True(t, apierrors.IsConflict(err), "409 Conflict, got %v", err)
	_, isFailure := apply.AsFailure(err)
	assert.False(t, isFailure, "not stalled: the caller retries")
	vm := liveVM(t, c, key)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy, "virtctl start survives the stale reconcile")
	assert.Equal(t, before.Spec.Template.Spec.Domain.CPU.Sockets, vm.Spec.Template.Spec.Domain.CPU.Sockets, "nothing of the stale apply was written")

	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm = liveVM(t, c, key)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
	assert.Equal(t, uint32(m.CPU), vm.Spec.Template.Spec.Domain.CPU.Sockets)
}

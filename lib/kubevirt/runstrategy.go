package kubevirt

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// RunStrategyToApply returns the spec.runStrategy to send when applying a VM
// whose input asks for desired (empty means Always), given the live VM (nil
// when it does not exist yet) written under id.
//
// Power actions work by changing the VM's spec.runStrategy: `virtctl start`
// on a Halted VM sets Always, `virtctl stop` on an Always VM sets Halted (the
// start/stop subresources; KubeVirt user guide, "Run Strategies", virtctl
// table, https://kubevirt.io/user-guide/compute/run_strategies/). They belong
// to the user, so the rule is:
//
//   - no live VM, or a live VM whose annotation id.Key(KeyAppliedRunStrategy) differs from
//     desired (the owner's strategy changed, or the VM predates the
//     annotation): desired;
//   - otherwise the live VM's runStrategy, whatever a power action made it
//     (desired again when the live VM has none, or one the lib does not
//     offer, such as WaitAsReceiver).
//
// The field is always sent, never dropped: Server-Side Apply removes a field
// its manager owned and stops sending.
func RunStrategyToApply(id apply.Identity, desired kubevirtv1.VirtualMachineRunStrategy, live *kubevirtv1.VirtualMachine) kubevirtv1.VirtualMachineRunStrategy {
	if desired == "" {
		desired = kubevirtv1.RunStrategyAlways
	}
	if live == nil || live.Annotations[id.Key(KeyAppliedRunStrategy)] != string(desired) || live.Spec.RunStrategy == nil {
		return desired
	}
	switch rs := *live.Spec.RunStrategy; rs {
	case kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyManual,
		kubevirtv1.RunStrategyHalted, kubevirtv1.RunStrategyOnce:
		return rs
	}
	return desired
}

// keepPowerState sets vm.Spec.RunStrategy (built from the input, annotated
// with id.Key(KeyAppliedRunStrategy)) to what RunStrategyToApply says for the
// live VM of the same name, read through c. It returns the resourceVersion
// of that read ("" when there is no VM): the VM must be applied only if it
// is still at that version, or a power action (virtctl start/stop) made
// after a stale read would be undone. It also returns the live VM (nil
// when there is none).
func keepPowerState(ctx context.Context, c client.Reader, id apply.Identity, vm *kubevirtv1.VirtualMachine) (*kubevirtv1.VirtualMachine, string, error) {
	live := &kubevirtv1.VirtualMachine{}
	switch err := c.Get(ctx, client.ObjectKeyFromObject(vm), live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return nil, "", wrapKubeVirt(errApplyVM, err)
	}
	rs := RunStrategyToApply(id, kubevirtv1.VirtualMachineRunStrategy(vm.Annotations[id.Key(KeyAppliedRunStrategy)]), live)
	vm.Spec.RunStrategy = &rs
	if live == nil {
		return nil, "", nil
	}
	return live, live.ResourceVersion, nil
}

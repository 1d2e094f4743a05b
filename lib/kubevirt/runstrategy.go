package kubevirt

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// Names of the Wukong fields RunStrategy maps, used in ConflictError.Field
// and InvalidInputError.Field.
const (
	FieldRunStrategy   = "startStrategy.runStrategy"
	FieldAutoStart     = "startStrategy.autoStart"
	FieldRestartPolicy = "highAvailability.restartPolicy"
)

// Restart policies accepted by RunStrategy.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// RunStrategy maps the Wukong fields startStrategy.runStrategy (optional),
// startStrategy.autoStart (nil means true) and highAvailability.restartPolicy
// (optional) to one KubeVirt run strategy:
//
//   - An explicit runStrategy wins, but must agree with the other two:
//     autoStart=true (explicit) conflicts with Halted and Manual, which never
//     start the machine on their own; autoStart=false conflicts with Always,
//     RerunOnFailure and Once, which do. restartPolicy must match the
//     runStrategy's restart behaviour: Always↔Always, RerunOnFailure↔OnFailure,
//     Once↔Never, Manual↔Never (Manual never restarts on its own); Halted
//     accepts any restartPolicy, since a halted machine does not run.
//   - Without runStrategy: autoStart=false gives Halted; else restartPolicy
//     Always gives Always, OnFailure gives RerunOnFailure, Never gives Once;
//     nothing set gives Always.
//
// A contradiction returns *ConflictError whose Field is the input that
// disagrees with runStrategy (autoStart is checked first); an unknown value
// returns *InvalidInputError.
func RunStrategy(runStrategy string, autoStart *bool, restartPolicy string) (kubevirtv1.VirtualMachineRunStrategy, error) {
	rs := kubevirtv1.VirtualMachineRunStrategy(runStrategy)
	switch rs {
	case "", kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyManual,
		kubevirtv1.RunStrategyHalted, kubevirtv1.RunStrategyOnce:
	default:
		return "", &InvalidInputError{Field: FieldRunStrategy, Message: fmt.Sprintf("unsupported value %q", runStrategy)}
	}
	var fromPolicy kubevirtv1.VirtualMachineRunStrategy
	switch restartPolicy {
	case "":
	case RestartAlways:
		fromPolicy = kubevirtv1.RunStrategyAlways
	case RestartOnFailure:
		fromPolicy = kubevirtv1.RunStrategyRerunOnFailure
	case RestartNever:
		fromPolicy = kubevirtv1.RunStrategyOnce
	default:
		return "", &InvalidInputError{Field: FieldRestartPolicy, Message: fmt.Sprintf("unsupported value %q", restartPolicy)}
	}

	if rs == "" {
		switch {
		case autoStart != nil && !*autoStart:
			return kubevirtv1.RunStrategyHalted, nil
		case fromPolicy != "":
			return fromPolicy, nil
		default:
			return kubevirtv1.RunStrategyAlways, nil
		}
	}

	startsItself := rs != kubevirtv1.RunStrategyHalted && rs != kubevirtv1.RunStrategyManual
	if autoStart != nil && *autoStart != startsItself {
		if startsItself {
			return "", &ConflictError{Field: FieldAutoStart, Message: fmt.Sprintf(
				"autoStart is false but runStrategy %s starts the machine", rs)}
		}
		return "", &ConflictError{Field: FieldAutoStart, Message: fmt.Sprintf(
			"autoStart is true but runStrategy %s never starts the machine on its own", rs)}
	}
	if restartPolicy == "" || rs == kubevirtv1.RunStrategyHalted {
		return rs, nil
	}
	want := rs
	if rs == kubevirtv1.RunStrategyManual {
		want = kubevirtv1.RunStrategyOnce // neither restarts the machine
	}
	if fromPolicy != want {
		return "", &ConflictError{Field: FieldRestartPolicy, Message: fmt.Sprintf(
			"restartPolicy %s disagrees with runStrategy %s", restartPolicy, rs)}
	}
	return rs, nil
}

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
// live VM of the same name, read through c.
func keepPowerState(ctx context.Context, c client.Reader, id apply.Identity, vm *kubevirtv1.VirtualMachine) error {
	live := &kubevirtv1.VirtualMachine{}
	switch err := c.Get(ctx, client.ObjectKeyFromObject(vm), live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return wrapKubeVirt(errApplyVM, err)
	}
	rs := RunStrategyToApply(id, kubevirtv1.VirtualMachineRunStrategy(vm.Annotations[id.Key(KeyAppliedRunStrategy)]), live)
	vm.Spec.RunStrategy = &rs
	return nil
}

package kubevirt

import (
	"fmt"

	kubevirtv1 "kubevirt.io/api/core/v1"
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

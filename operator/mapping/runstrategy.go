package mapping

import (
	"fmt"

	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// This file is Wukong's run-strategy policy: how startStrategy and
// highAvailability.restartPolicy become one KubeVirt run strategy. lib/kubevirt
// takes the KubeVirt value as it is (Machine.RunStrategy).

// runStrategy maps w's startStrategy and highAvailability.restartPolicy
// (runStrategyOf has the table).
func runStrategy(w *v1alpha1.Wukong) (kubevirtv1.VirtualMachineRunStrategy, error) {
	var rs, restart string
	var autoStart *bool
	if s := w.Spec.StartStrategy; s != nil {
		rs, autoStart = s.RunStrategy, s.AutoStart
	}
	if ha := w.Spec.HighAvailability; ha != nil {
		restart = ha.RestartPolicy
	}
	return runStrategyOf(rs, autoStart, restart)
}

// The Wukong fields runStrategyOf maps, named (without "spec.") in a
// *RunStrategyError.
const (
	fieldRunStrategy   = "startStrategy.runStrategy"
	fieldAutoStart     = "startStrategy.autoStart"
	fieldRestartPolicy = "highAvailability.restartPolicy"
)

// The values of highAvailability.restartPolicy (the CRD's enum).
const (
	restartAlways    = "Always"
	restartOnFailure = "OnFailure"
	restartNever     = "Never"
)

// RunStrategyError: the run-strategy fields contradict each other
// (Conflict) or one has a value Wukong does not offer. Field is the input
// at fault (autoStart or restartPolicy for a conflict), without "spec.".
// The API server's enum validation normally refuses unknown values first.
type RunStrategyError struct {
	Field    string
	Message  string
	Conflict bool
}

func (e *RunStrategyError) Error() string {
	if e.Conflict {
		return fmt.Sprintf("conflicting %s: %s", e.Field, e.Message)
	}
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Message)
}

// runStrategyOf maps the Wukong fields startStrategy.runStrategy (optional),
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
// A contradiction returns a *RunStrategyError (Conflict) whose Field is the
// input that disagrees with runStrategy (autoStart is checked first); an
// unknown value a *RunStrategyError naming its field. The run strategies'
// meaning is KubeVirt's (user guide, "Run Strategies",
// https://kubevirt.io/user-guide/compute/run_strategies/).
func runStrategyOf(runStrategy string, autoStart *bool, restartPolicy string) (kubevirtv1.VirtualMachineRunStrategy, error) {
	rs := kubevirtv1.VirtualMachineRunStrategy(runStrategy)
	switch rs {
	case "", kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyManual,
		kubevirtv1.RunStrategyHalted, kubevirtv1.RunStrategyOnce:
	default:
		return "", &RunStrategyError{Field: fieldRunStrategy, Message: fmt.Sprintf("unsupported value %q", runStrategy)}
	}
	var fromPolicy kubevirtv1.VirtualMachineRunStrategy
	switch restartPolicy {
	case "":
	case restartAlways:
		fromPolicy = kubevirtv1.RunStrategyAlways
	case restartOnFailure:
		fromPolicy = kubevirtv1.RunStrategyRerunOnFailure
	case restartNever:
		fromPolicy = kubevirtv1.RunStrategyOnce
	default:
		return "", &RunStrategyError{Field: fieldRestartPolicy, Message: fmt.Sprintf("unsupported value %q", restartPolicy)}
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
			return "", &RunStrategyError{Conflict: true, Field: fieldAutoStart, Message: fmt.Sprintf(
				"autoStart is false but runStrategy %s starts the machine", rs)}
		}
		return "", &RunStrategyError{Conflict: true, Field: fieldAutoStart, Message: fmt.Sprintf(
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
		return "", &RunStrategyError{Conflict: true, Field: fieldRestartPolicy, Message: fmt.Sprintf(
			"restartPolicy %s disagrees with runStrategy %s", restartPolicy, rs)}
	}
	return rs, nil
}

package kubevirt

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// TestRunStrategyExhaustive covers every combination of runStrategy (6
// values incl. unset), autoStart (unset, true, false) and restartPolicy (4
// values incl. unset). "!autoStart" and "!restartPolicy" mean a
// *ConflictError naming that field.
func TestRunStrategyExhaustive(t *testing.T) {
	const asConflict, rpConflict = "!autoStart", "!restartPolicy"
	policies := []string{"", "Always", "OnFailure", "Never"}
	table := []struct {
		runStrategy string
		autoStart   string    // "", "true", "false"
		want        [4]string // by restartPolicy: "", Always, OnFailure, Never
	}{
		{"", "", [4]string{"Always", "Always", "RerunOnFailure", "Once"}},
		{"", "true", [4]string{"Always", "Always", "RerunOnFailure", "Once"}},
		{"", "false", [4]string{"Halted", "Halted", "Halted", "Halted"}},

		{"Always", "", [4]string{"Always", "Always", rpConflict, rpConflict}},
		{"Always", "true", [4]string{"Always", "Always", rpConflict, rpConflict}},
		{"Always", "false", [4]string{asConflict, asConflict, asConflict, asConflict}},

		{"RerunOnFailure", "", [4]string{"RerunOnFailure", rpConflict, "RerunOnFailure", rpConflict}},
		{"RerunOnFailure", "true", [4]string{"RerunOnFailure", rpConflict, "RerunOnFailure", rpConflict}},
		{"RerunOnFailure", "false", [4]string{asConflict, asConflict, asConflict, asConflict}},

		{"Once", "", [4]string{"Once", rpConflict, rpConflict, "Once"}},
		{"Once", "true", [4]string{"Once", rpConflict, rpConflict, "Once"}},
		{"Once", "false", [4]string{asConflict, asConflict, asConflict, asConflict}},

		{"Manual", "", [4]string{"Manual", rpConflict, rpConflict, "Manual"}},
		{"Manual", "true", [4]string{asConflict, asConflict, asConflict, asConflict}},
		{"Manual", "false", [4]string{"Manual", rpConflict, rpConflict, "Manual"}},

		{"Halted", "", [4]string{"Halted", "Halted", "Halted", "Halted"}},
		{"Halted", "true", [4]string{asConflict, asConflict, asConflict, asConflict}},
		{"Halted", "false", [4]string{"Halted", "Halted", "Halted", "Halted"}},
	}
	seen := map[string]bool{}
	for _, row := range table {
		for i, rp := range policies {
			var autoStart *bool
			switch row.autoStart {
			case "true":
				autoStart = ptrTo(true)
			case "false":
				autoStart = ptrTo(false)
			}
			name := fmt.Sprintf("runStrategy=%q/autoStart=%q/restartPolicy=%q", row.runStrategy, row.autoStart, rp)
			seen[name] = true
			want := row.want[i]
			t.Run(name, func(t *testing.T) {
				got, err := RunStrategy(row.runStrategy, autoStart, rp)
				switch want {
				case asConflict, rpConflict:
					var conflict *ConflictError
					require.True(t, errors.As(err, &conflict), "want a *ConflictError, got %v (strategy %q)", err, got)
					field := FieldAutoStart
					if want == rpConflict {
						field = FieldRestartPolicy
					}
					assert.Equal(t, field, conflict.Field)
					assert.Contains(t, conflict.Error(), field)
					assert.Empty(t, got)
				default:
					require.NoError(t, err)
					assert.Equal(t, want, string(got))
				}
			})
		}
	}
	assert.Len(t, seen, 6*3*4, "every combination is covered exactly once")
}

func TestRunStrategyInvalid(t *testing.T) {
	tests := []struct {
		name, runStrategy, restartPolicy, wantField string
	}{
		{"unknown runStrategy", "Sometimes", "", FieldRunStrategy},
		{"WaitAsReceiver is not offered", "WaitAsReceiver", "", FieldRunStrategy},
		{"unknown restartPolicy", "", "Maybe", FieldRestartPolicy},
		{"lowercase restartPolicy", "Always", "always", FieldRestartPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RunStrategy(tt.runStrategy, nil, tt.restartPolicy)
			var inv *InvalidInputError
			require.True(t, errors.As(err, &inv), "got %v", err)
			assert.Equal(t, tt.wantField, inv.Field)
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestRunStrategyToApply: the owner's strategy wins when the VM is new or the
// strategy changed since it was last applied; otherwise a power action
// (virtctl start/stop, which change spec.runStrategy) is kept.
func TestRunStrategyToApply(t *testing.T) {
	live := func(applied string, rs *kubevirtv1.VirtualMachineRunStrategy) *kubevirtv1.VirtualMachine {
		vm := &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{RunStrategy: rs}}
		if applied != "" {
			vm.Annotations = map[string]string{testID.Key(KeyAppliedRunStrategy): applied}
		}
		return vm
	}
	rs := func(s kubevirtv1.VirtualMachineRunStrategy) *kubevirtv1.VirtualMachineRunStrategy { return &s }
	const (
		always  = kubevirtv1.RunStrategyAlways
		halted  = kubevirtv1.RunStrategyHalted
		rerun   = kubevirtv1.RunStrategyRerunOnFailure
		manual  = kubevirtv1.RunStrategyManual
		onceRS  = kubevirtv1.RunStrategyOnce
		waitRcv = kubevirtv1.RunStrategyWaitAsReceiver
	)
	tests := []struct {
		name    string
		desired kubevirtv1.VirtualMachineRunStrategy
		live    *kubevirtv1.VirtualMachine
		want    kubevirtv1.VirtualMachineRunStrategy
	}{
		{"new VM gets the desired strategy", halted, nil, halted},
		{"new VM, empty desired means Always", "", nil, always},
		{"unchanged, not touched", halted, live("Halted", rs(halted)), halted},
		{"virtctl start on a Halted VM is kept", halted, live("Halted", rs(always)), always},
		{"virtctl stop on an Always VM is kept", always, live("Always", rs(halted)), halted},
		{"empty desired compares as Always", "", live("Always", rs(halted)), halted},
		{"a power action on RerunOnFailure is kept", rerun, live("RerunOnFailure", rs(halted)), halted},
		{"the owner's strategy changed: applied even over a power action", rerun, live("Halted", rs(always)), rerun},
		{"the owner changed back: applied", halted, live("Always", rs(always)), halted},
		{"VM from before the annotation: desired", always, live("", rs(halted)), always},
		{"live VM without runStrategy: desired", manual, live("Manual", nil), manual},
		{"a strategy the lib does not offer is not kept", onceRS, live("Once", rs(waitRcv)), onceRS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, RunStrategyToApply(testID, tt.desired, tt.live))
		})
	}
}

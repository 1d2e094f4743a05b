package kubevirt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

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

func ptrTo[T any](v T) *T { return &v }

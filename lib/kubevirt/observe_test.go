package kubevirt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

func obsVM(rs kubevirtv1.VirtualMachineRunStrategy, ps kubevirtv1.VirtualMachinePrintableStatus, conds ...kubevirtv1.VirtualMachineCondition) *kubevirtv1.VirtualMachine {
	return &kubevirtv1.VirtualMachine{
		Spec:   kubevirtv1.VirtualMachineSpec{RunStrategy: &rs},
		Status: kubevirtv1.VirtualMachineStatus{PrintableStatus: ps, Conditions: conds},
	}
}

func obsVMI(phase kubevirtv1.VirtualMachineInstancePhase, conds ...kubevirtv1.VirtualMachineInstanceCondition) *kubevirtv1.VirtualMachineInstance {
	return &kubevirtv1.VirtualMachineInstance{Status: kubevirtv1.VirtualMachineInstanceStatus{Phase: phase, Conditions: conds, NodeName: "node-1"}}
}

func vmiCond(t kubevirtv1.VirtualMachineInstanceConditionType, s corev1.ConditionStatus, reason, msg string) kubevirtv1.VirtualMachineInstanceCondition {
	return kubevirtv1.VirtualMachineInstanceCondition{Type: t, Status: s, Reason: reason, Message: msg}
}

func vmCond(t kubevirtv1.VirtualMachineConditionType, s corev1.ConditionStatus, reason, msg string) kubevirtv1.VirtualMachineCondition {
	return kubevirtv1.VirtualMachineCondition{Type: t, Status: s, Reason: reason, Message: msg}
}

func TestObserve(t *testing.T) {
	always, halted := kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyHalted
	ready := vmiCond(kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue, "", "")
	notReady := vmiCond(kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "GuestNotRunning", "guest agent not connected")
	unsched := vmiCond(kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled), corev1.ConditionFalse, "Unschedulable", "0/3 nodes are available")
	deleting := obsVMI(kubevirtv1.Running)
	deleting.DeletionTimestamp = &metav1.Time{}

	tests := []struct {
		name            string
		vm              *kubevirtv1.VirtualMachine
		vmi             *kubevirtv1.VirtualMachineInstance
		ready, stopped  bool
		reason, message string
	}{
		{name: "nothing exists", reason: ReasonVirtualMachineMissing, message: "the VirtualMachine does not exist"},
		{name: "running and ready", vm: obsVM(always, kubevirtv1.VirtualMachineStatusRunning), vmi: obsVMI(kubevirtv1.Running, ready), ready: true},
		{name: "running, guest not ready", vm: obsVM(always, kubevirtv1.VirtualMachineStatusRunning), vmi: obsVMI(kubevirtv1.Running, notReady),
			reason: ReasonGuestNotReady, message: "guest agent not connected"},
		{name: "running without ready condition", vm: obsVM(always, kubevirtv1.VirtualMachineStatusRunning), vmi: obsVMI(kubevirtv1.Running),
			reason: ReasonGuestNotReady, message: "the guest is not ready"},
		{name: "ready condition but not running yet", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStarting), vmi: obsVMI(kubevirtv1.Scheduled, ready),
			reason: ReasonStarting, message: "the VirtualMachineInstance is Scheduled"},
		{name: "unschedulable from the VMI pod condition", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStarting), vmi: obsVMI(kubevirtv1.Scheduling, unsched),
			reason: ReasonUnschedulable, message: "0/3 nodes are available"},
		{name: "ErrorUnschedulable printable status", vm: obsVM(always, kubevirtv1.VirtualMachineStatusUnschedulable), vmi: obsVMI(kubevirtv1.Scheduling),
			reason: ReasonUnschedulable, message: "no node can run the machine"},
		{name: "waiting for volume binding", vm: obsVM(always, kubevirtv1.VirtualMachineStatusWaitingForVolumeBinding),
			reason: ReasonVolumesNotReady, message: "waiting for PersistentVolumeClaims to be bound"},
		{name: "DataVolume provisioning", vm: obsVM(always, kubevirtv1.VirtualMachineStatusProvisioning),
			reason: ReasonVolumesNotReady, message: "DataVolumes are being provisioned"},
		{name: "DataVolume error with failure message", vm: obsVM(always, kubevirtv1.VirtualMachineStatusDataVolumeError,
			vmCond(kubevirtv1.VirtualMachineFailure, corev1.ConditionTrue, "DataVolumeError", "import failed")),
			reason: ReasonVolumesNotReady, message: "import failed"},
		{name: "PVC not found", vm: obsVM(always, kubevirtv1.VirtualMachineStatusPvcNotFound),
			reason: ReasonVolumesNotReady, message: "a PersistentVolumeClaim does not exist"},
		{name: "image pull", vm: obsVM(always, kubevirtv1.VirtualMachineStatusImagePullBackOff), vmi: obsVMI(kubevirtv1.Scheduling),
			reason: ReasonImagePullFailed, message: "the container disk image cannot be pulled"},
		{name: "crash loop", vm: obsVM(always, kubevirtv1.VirtualMachineStatusCrashLoopBackOff),
			reason: ReasonCrashLoopBackOff, message: "the machine keeps failing to start"},
		{name: "VMI provisioning condition", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStarting),
			vmi:    obsVMI(kubevirtv1.Pending, vmiCond(kubevirtv1.VirtualMachineInstanceProvisioning, corev1.ConditionTrue, "", "")),
			reason: ReasonVolumesNotReady, message: "DataVolumes are being provisioned"},
		{name: "halted, no VMI", vm: obsVM(halted, kubevirtv1.VirtualMachineStatusStopped), stopped: true,
			reason: ReasonStopped, message: "the machine is stopped (run strategy Halted)"},
		{name: "manual, finished VMI", vm: obsVM(kubevirtv1.RunStrategyManual, kubevirtv1.VirtualMachineStatusStopped), vmi: obsVMI(kubevirtv1.Succeeded), stopped: true,
			reason: ReasonStopped, message: "the machine is stopped (run strategy Manual)"},
		{name: "halted but VMI still running is stopping, not stopped", vm: obsVM(halted, kubevirtv1.VirtualMachineStatusStopping), vmi: deleting,
			reason: ReasonStopping, message: "the VirtualMachineInstance is shutting down (run strategy Halted)"},
		// virtctl stop set Halted; KubeVirt has not marked the VMI for deletion yet.
		{name: "halted by a power action, VMI still ready: not ready, stopping", vm: obsVM(halted, kubevirtv1.VirtualMachineStatusRunning),
			vmi: obsVMI(kubevirtv1.Running, ready), reason: ReasonStopping, message: "the VirtualMachineInstance is shutting down (run strategy Halted)"},
		{name: "always, VMI deleted for a restart", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStopping), vmi: deleting,
			reason: ReasonStopping, message: "the VirtualMachineInstance is shutting down (run strategy Always)"},
		// virtctl start on a Halted VM sets Always: starting, never "stopped".
		{name: "started by a power action, VMI not created yet", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStopped),
			reason: ReasonStarting, message: "the VirtualMachineInstance has not been created yet"},
		// virtctl start on a Manual VM is a Start state change request.
		{name: "manual with a pending start request is not stopped", vm: func() *kubevirtv1.VirtualMachine {
			v := obsVM(kubevirtv1.RunStrategyManual, kubevirtv1.VirtualMachineStatusStopped)
			v.Status.StateChangeRequests = []kubevirtv1.VirtualMachineStateChangeRequest{{Action: kubevirtv1.StartRequest}}
			return v
		}(), reason: ReasonStarting, message: "the VirtualMachineInstance has not been created yet"},
		{name: "once, finished VMI", vm: obsVM(kubevirtv1.RunStrategyOnce, kubevirtv1.VirtualMachineStatusStopped), vmi: obsVMI(kubevirtv1.Succeeded), stopped: true,
			reason: ReasonStopped, message: "the machine is stopped (run strategy Once)"},
		{name: "always, VMI not created yet", vm: obsVM(always, ""),
			reason: ReasonStarting, message: "the VirtualMachineInstance has not been created yet"},
		{name: "always, VM failure and no VMI", vm: obsVM(always, "", vmCond(kubevirtv1.VirtualMachineFailure, corev1.ConditionTrue, "FailedCreate", "quota exceeded")),
			reason: ReasonFailed, message: "quota exceeded"},
		{name: "failed VMI", vm: obsVM(always, kubevirtv1.VirtualMachineStatusRunning), vmi: obsVMI(kubevirtv1.Failed),
			reason: ReasonFailed, message: "the VirtualMachineInstance failed"},
		{name: "paused", vm: obsVM(always, kubevirtv1.VirtualMachineStatusPaused),
			vmi:    obsVMI(kubevirtv1.Running, vmiCond(kubevirtv1.VirtualMachineInstancePaused, corev1.ConditionTrue, "PausedByUser", "")),
			reason: ReasonPaused, message: "the machine is paused"},
		{name: "no VMI given, vm.status.ready", vm: func() *kubevirtv1.VirtualMachine {
			v := obsVM(always, kubevirtv1.VirtualMachineStatusRunning)
			v.Status.Ready = true
			return v
		}(), ready: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Observe(tt.vm, tt.vmi)
			assert.Equal(t, tt.ready, o.Ready())
			assert.Equal(t, tt.stopped, o.Stopped())
			assert.Equal(t, tt.reason == ReasonStopping, o.Stopping(), "Stopping")
			reason, message := o.NotReadyReason()
			assert.Equal(t, tt.reason, reason)
			assert.Equal(t, tt.message, message)
		})
	}
}

func TestObserveFacts(t *testing.T) {
	vm := obsVM(kubevirtv1.RunStrategyAlways, kubevirtv1.VirtualMachineStatusRunning,
		vmCond(kubevirtv1.VirtualMachineRestartRequired, corev1.ConditionTrue, "", "a non-live-updatable field was changed"))
	vmi := obsVMI(kubevirtv1.Running)
	vmi.Status.Interfaces = []kubevirtv1.VirtualMachineInstanceNetworkInterface{
		{Name: "default", InterfaceName: "eth0", IP: "10.244.0.7", IPs: []string{"10.244.0.7", "fd10::7"}, MAC: "02:00:00:00:00:aa"},
		{Name: "lan", MAC: "02:aa:bb:cc:dd:01"},
	}
	o := Observe(vm, vmi)
	assert.True(t, o.Exists())
	assert.True(t, o.HasInstance())
	assert.Equal(t, kubevirtv1.VirtualMachineStatusRunning, o.PrintableStatus())
	assert.Equal(t, kubevirtv1.Running, o.Phase())
	assert.Equal(t, "node-1", o.Node())
	assert.True(t, o.RestartRequired())
	assert.Equal(t, []Interface{
		{Name: "default", InterfaceName: "eth0", IP: "10.244.0.7", IPs: []string{"10.244.0.7", "fd10::7"}, MAC: "02:00:00:00:00:aa"},
		{Name: "lan", MAC: "02:aa:bb:cc:dd:01"},
	}, o.Interfaces())

	vm.Status.Conditions[0].Status = corev1.ConditionFalse
	assert.False(t, Observe(vm, vmi).RestartRequired())

	var zero Observation
	assert.False(t, zero.Exists())
	assert.Empty(t, zero.Phase())
	assert.Empty(t, zero.Node())
	assert.Empty(t, zero.PrintableStatus())
	assert.Nil(t, zero.Interfaces())
	assert.False(t, zero.RestartRequired())
	assert.False(t, zero.Stopped())
}

package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestStatusFollowsPowerActions: phase and Ready follow the VM's run strategy
// and instance, whoever set it (the Wukong asked for the opposite in each
// case), and Ready never tells the user to start a machine that is started.
func TestStatusFollowsPowerActions(t *testing.T) {
	halted, always := kubevirtv1.RunStrategyHalted, kubevirtv1.RunStrategyAlways
	autoStart := func(on bool) *v1alpha1.StartStrategy { return &v1alpha1.StartStrategy{AutoStart: &on} }
	tests := []struct {
		name       string
		strategy   *v1alpha1.StartStrategy
		vm         *kubevirtv1.VirtualMachine
		vmi        *kubevirtv1.VirtualMachineInstance
		phase      v1alpha1.Phase
		ready      string // status:reason
		msgHas     string
		reconciles bool
	}{
		{name: "virtctl start on an autoStart=false Wukong: Running", strategy: autoStart(false),
			vm: vmWith(always, true), vmi: runningVMI("node-1"),
			phase: v1alpha1.PhaseRunning, ready: "True:" + v1alpha1.ReasonRunning, msgHas: "running on node node-1"},
		{name: "virtctl start, instance not created yet: Creating, no start hint", strategy: autoStart(false),
			vm:    vmWith(always, false),
			phase: v1alpha1.PhaseCreating, ready: "False:" + kubevirt.ReasonStarting, msgHas: "has not been created yet", reconciles: true},
		{name: "virtctl stop on a running Wukong: Stopped with the start hint",
			vm:    vmWith(halted, false),
			phase: v1alpha1.PhaseStopped, ready: "True:" + v1alpha1.ReasonStopped, msgHas: "stopped (run strategy Halted); start it with virtctl start vm1"},
		{name: "virtctl stop, guest still shutting down: Stopped phase, not Ready yet",
			vm: vmWith(halted, false), vmi: runningVMI("node-1"),
			phase: v1alpha1.PhaseStopped, ready: "False:" + kubevirt.ReasonStopping, msgHas: "shutting down (run strategy Halted)", reconciles: true},
		{name: "Manual with a pending start request: starting, no start hint", strategy: &v1alpha1.StartStrategy{RunStrategy: "Manual"},
			vm: func() *kubevirtv1.VirtualMachine {
				vm := vmWith(kubevirtv1.RunStrategyManual, false)
				vm.Status.StateChangeRequests = []kubevirtv1.VirtualMachineStateChangeRequest{{Action: kubevirtv1.StartRequest}}
				return vm
			}(),
			phase: v1alpha1.PhaseCreating, ready: "False:" + kubevirt.ReasonStarting, reconciles: true},
		{name: "Once after its run: Stopped, no start hint", strategy: &v1alpha1.StartStrategy{RunStrategy: "Once"},
			vm: vmWith(kubevirtv1.RunStrategyOnce, false),
			vmi: func() *kubevirtv1.VirtualMachineInstance {
				vmi := runningVMI("node-1")
				vmi.Status.Phase = kubevirtv1.Succeeded
				return vmi
			}(),
			phase: v1alpha1.PhaseStopped, ready: "True:" + v1alpha1.ReasonStopped, msgHas: "stopped after its one run (run strategy Once)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testWukong()
			w.Spec.StartStrategy = tt.strategy
			s := &scope{w: w, net: netOK, netDone: true, vols: bound, volsDone: true, vm: kubevirt.Observe(tt.vm, tt.vmi)}
			computeStatus(w, s)
			o := w
			assert.Equal(t, tt.phase, w.Status.Phase)
			ready := conditions.Get(o, v1alpha1.ReadyCondition)
			require.NotNil(t, ready)
			assert.Equal(t, tt.ready, string(ready.Status)+":"+ready.Reason)
			assert.Contains(t, ready.Message, tt.msgHas)
			if tt.vm.Spec.RunStrategy != nil && *tt.vm.Spec.RunStrategy != halted && *tt.vm.Spec.RunStrategy != kubevirtv1.RunStrategyManual {
				assert.NotContains(t, ready.Message, "virtctl start", "no start hint for a machine that starts")
			}
			if tt.phase == v1alpha1.PhaseCreating || tt.phase == v1alpha1.PhaseRunning {
				assert.NotContains(t, ready.Message, "virtctl start")
			}
			assert.Equal(t, tt.reconciles, conditions.Get(o, v1alpha1.ReconcilingCondition) != nil, "Reconciling")
			assert.Nil(t, conditions.Get(o, v1alpha1.StalledCondition), "a power action is not a problem")
			assert.NoError(t, conditions.Check(o))
		})
	}
}

// TestStatusNetworkBindingProblems: a macvlan NIC whose macvtap binding the
// KubeVirt CR does not register, and a user NAD of type ipvlan or macvlan,
// stall the Wukong naming the field.
func TestStatusNetworkBindingProblems(t *testing.T) {
	macvlanNIC := v1alpha1.NetworkSpec{Name: "lan", Type: v1alpha1.NetworkTypeMacvlan, PhysicalInterface: "eth1"}
	userNIC := v1alpha1.NetworkSpec{Name: "lan", NADName: "corp"}
	tests := []struct {
		name      string
		nic       v1alpha1.NetworkSpec
		problem   func(w *v1alpha1.Wukong) (problem, bool)
		reason    string
		field     string
		msgHas    []string
		msgHasNot string
	}{
		{name: "macvtap binding not registered, no KubeVirt CR", nic: macvlanNIC,
			problem: func(w *v1alpha1.Wukong) (problem, bool) {
				return problemOf(fromKubeVirt, w, failureOn(kubevirt.ReasonBindingNotRegistered, &kubevirt.BindingNotRegisteredError{NIC: "lan", Binding: "macvtap"}, "lan", "")), true
			},
			reason: v1alpha1.ReasonBindingNotRegistered, field: "spec.networks[0].type",
			msgHas: []string{"no KubeVirt CR", "spec.configuration.network.binding.macvtap", "macvtap-cni"}},
		{name: "macvtap binding not registered in the KubeVirt CR", nic: macvlanNIC,
			problem: func(w *v1alpha1.Wukong) (problem, bool) {
				return problemOf(fromKubeVirt, w, failureOn(kubevirt.ReasonBindingNotRegistered, &kubevirt.BindingNotRegisteredError{NIC: "lan", Binding: "macvtap", KubeVirtCRs: 1}, "lan", "")), true
			},
			reason: v1alpha1.ReasonBindingNotRegistered, field: "spec.networks[0].type",
			msgHas: []string{"the KubeVirt CR does not register it"}, msgHasNot: "no KubeVirt CR"},
		{name: "a user's macvtap NAD without the binding names nadName", nic: userNIC,
			problem: func(w *v1alpha1.Wukong) (problem, bool) {
				return problemOf(fromKubeVirt, w, failureOn(kubevirt.ReasonBindingNotRegistered, &kubevirt.BindingNotRegisteredError{NIC: "lan", Binding: "macvtap", KubeVirtCRs: 1}, "lan", "")), true
			},
			reason: v1alpha1.ReasonBindingNotRegistered, field: "spec.networks[0].nadName"},
		{name: "user NAD of type ipvlan", nic: userNIC,
			problem: func(w *v1alpha1.Wukong) (problem, bool) {
				return problemOf(fromNetwork, w, failureOn(network.ReasonUnsupportedCNI, &network.UnsupportedCNIError{NIC: "lan", Namespace: "ns", Name: "corp", Type: "ipvlan"}, "lan", "nadName")), true
			},
			reason: v1alpha1.ReasonUnsupportedCNI, field: "spec.networks[0].nadName",
			msgHas: []string{"ns/corp uses the ipvlan CNI plugin", "KubeVirt cannot connect", "macvtap"}},
		{name: "user NAD of type macvlan", nic: userNIC,
			problem: func(w *v1alpha1.Wukong) (problem, bool) {
				return problemOf(fromNetwork, w, failureOn(network.ReasonUnsupportedCNI, &network.UnsupportedCNIError{NIC: "lan", Namespace: "ns", Name: "corp", Type: "macvlan"}, "lan", "nadName")), true
			},
			reason: v1alpha1.ReasonUnsupportedCNI, field: "spec.networks[0].nadName",
			msgHas: []string{"uses the macvlan CNI plugin", "type: macvlan with physicalInterface"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testWukong()
			w.Spec.Networks = []v1alpha1.NetworkSpec{tt.nic}
			p, ok := tt.problem(w)
			require.True(t, ok, "the error is a problem, not a retry")
			s := &scope{w: w, net: netOK, netDone: true, vols: bound, volsDone: true}
			s.addProblem(p)
			computeStatus(w, s)
			o := w
			assert.Equal(t, v1alpha1.PhaseError, w.Status.Phase)
			for _, typ := range []string{v1alpha1.StalledCondition, v1alpha1.ReadyCondition, v1alpha1.NetworksConfiguredCondition} {
				c := conditions.Get(o, typ)
				require.NotNil(t, c, typ)
				assert.Equal(t, tt.reason, c.Reason, typ)
				assert.Contains(t, c.Message, tt.field+": ", typ)
				for _, sub := range tt.msgHas {
					assert.Contains(t, c.Message, sub, typ)
				}
				if tt.msgHasNot != "" {
					assert.NotContains(t, c.Message, tt.msgHasNot, typ)
				}
			}
			assert.Equal(t, metav1.ConditionFalse, conditions.Get(o, v1alpha1.NetworksConfiguredCondition).Status)
			assert.True(t, p.External, "the KubeVirt CR and user NADs are not watched: timed retry")
			assert.NoError(t, conditions.Check(o))
		})
	}
}

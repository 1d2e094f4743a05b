package kubevirt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// TestObserveGuestAgent reads the conditions as virt-handler v1.9.0 writes
// them (updateGuestAgentConditions: AgentVersionNotSupported with the text
// in the reason; updateAccessCredentialConditions: message, no reason).
func TestObserveGuestAgent(t *testing.T) {
	connected := vmiCond(kubevirtv1.VirtualMachineInstanceAgentConnected, corev1.ConditionTrue, "", "")
	unsupported := vmiCond(kubevirtv1.VirtualMachineInstanceUnsupportedAgent, corev1.ConditionTrue,
		"This guest agent doesn't support required basic commands", "")
	synced := vmiCond(kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized, corev1.ConditionTrue, "", "")
	offline := vmiCond(kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized, corev1.ConditionFalse, "", "Guest agent is offline")
	tests := []struct {
		name  string
		vmi   *kubevirtv1.VirtualMachineInstance
		agent GuestAgent
		creds AccessCredentials
	}{
		{name: "no VMI"},
		{name: "no agent", vmi: obsVMI(kubevirtv1.Running)},
		{name: "connected and supported, keys written", vmi: obsVMI(kubevirtv1.Running, connected, synced),
			agent: GuestAgent{Connected: true}, creds: AccessCredentials{Reported: true, Synchronized: true}},
		{name: "connected but not supported (after a KubeVirt upgrade)", vmi: obsVMI(kubevirtv1.Running, connected, unsupported),
			agent: GuestAgent{Connected: true, Unsupported: true, Reason: "This guest agent doesn't support required basic commands"}},
		{name: "reason in the message", vmi: obsVMI(kubevirtv1.Running, connected,
			vmiCond(kubevirtv1.VirtualMachineInstanceUnsupportedAgent, corev1.ConditionTrue, "", "Guest agent version '2.5' is not supported")),
			agent: GuestAgent{Connected: true, Unsupported: true, Reason: "Guest agent version '2.5' is not supported"}},
		{name: "keys not written: agent offline", vmi: obsVMI(kubevirtv1.Running, offline),
			creds: AccessCredentials{Reported: true, Message: "Guest agent is offline"}},
		{name: "credentials in the VMI's spec, not written yet", vmi: func() *kubevirtv1.VirtualMachineInstance {
			vmi := obsVMI(kubevirtv1.Running, connected)
			vmi.Spec.AccessCredentials = BuildVM(testID, testOwner(), propagating(keyA)).Spec.Template.Spec.AccessCredentials
			return vmi
		}(), agent: GuestAgent{Connected: true}, creds: AccessCredentials{Configured: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Observe(obsVM(kubevirtv1.RunStrategyAlways, kubevirtv1.VirtualMachineStatusRunning), tt.vmi)
			assert.Equal(t, tt.agent, o.GuestAgent())
			assert.Equal(t, tt.creds, o.AccessCredentials())
		})
	}
}

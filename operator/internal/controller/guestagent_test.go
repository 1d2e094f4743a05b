package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestNetworkStatusAgentUnsupported: with the VMI condition
// AgentVersionNotSupported (virt-handler v1.9.0 puts its text in the
// reason), a secondary NIC without an address from the agent says why and
// points at spec.guestAgent and the image; a NIC the agent reported, and
// the pod network, do not; without the condition no NIC has a message.
func TestNetworkStatusAgentUnsupported(t *testing.T) {
	w := testWukong()
	w.Spec.Networks = []v1alpha1.NetworkSpec{
		{Name: "lan", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "192.168.100.10/24"}},
		{Name: "dyn", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeDHCP}},
	}
	nics := network.Observation{NICs: []network.NICObservation{{Name: "lan", MAC: "02:00:00:00:00:01"}, {Name: "dyn", MAC: "02:00:00:00:00:03"}}}
	ifaces := []kubevirtv1.VirtualMachineInstanceNetworkInterface{
		{Name: "default", IP: "10.244.1.5", IPs: []string{"10.244.1.5"}, InfoSource: "domain"},
		{Name: "lan", MAC: "02:00:00:00:00:01", InfoSource: "domain, multus-status"},
		{Name: "dyn", MAC: "02:00:00:00:00:03", InfoSource: "domain, multus-status"},
	}
	const reason = "This guest agent doesn't support required basic commands"
	for _, unsupported := range []bool{false, true} {
		vmi := runningVMI("node-1")
		vmi.Status.Interfaces = ifaces
		vmi.Status.Conditions = append(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceCondition{
			Type: kubevirtv1.VirtualMachineInstanceAgentConnected, Status: corev1.ConditionTrue})
		if unsupported {
			vmi.Status.Conditions = append(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceCondition{
				Type: kubevirtv1.VirtualMachineInstanceUnsupportedAgent, Status: corev1.ConditionTrue, Reason: reason})
		}
		s := &scope{w: w, net: nics, netDone: true, vm: kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, true), vmi)}
		got := map[string]string{}
		for _, ns := range networkStatuses(s) {
			got[ns.Name] = ns.Message
		}
		if !unsupported {
			assert.Equal(t, map[string]string{"default": "", "lan": "", "dyn": ""}, got, "a supported agent: no message")
			continue
		}
		assert.Empty(t, got["default"], "the pod network's address comes from the pod")
		for _, n := range []string{"lan", "dyn"} {
			assert.Equal(t, AgentUnsupportedMessage(reason), got[n], n)
		}
		assert.Contains(t, got["dyn"], "spec.guestAgent")
		assert.Contains(t, got["dyn"], "spec.osImage")
		assert.Contains(t, got["dyn"], reason)
	}
}

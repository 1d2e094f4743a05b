package controller

import (
	"fmt"

	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// explainAgentUnsupported sets the message of a secondary NIC whose
// address was not observed by the guest agent while KubeVirt reports the
// agent connected but not supported (VMI condition AgentVersionNotSupported,
// kubevirt.GuestAgent): virt-launcher then gets no interface list from the
// guest (an agent without guest-network-get-interfaces is one of the
// unsupported kinds), so the addresses would vanish from status without a
// word. The message quotes virt-handler's reason and points at what fixes
// it: a newer qemu-guest-agent in the guest or its image.
func explainAgentUnsupported(ns *v1alpha1.NetworkStatus, agent kubevirt.GuestAgent) {
	if !agent.Unsupported || ns.IPSource == v1alpha1.IPSourceGuestAgent {
		return
	}
	ns.Message = agentUnsupportedMessage(agent.Reason)
}

// agentUnsupportedMessage is the NIC status message for a guest agent
// KubeVirt does not support, quoting virt-handler's reason.
func agentUnsupportedMessage(reason string) string {
	return fmt.Sprintf("no address observed inside the guest: KubeVirt reports the QEMU guest agent connected but not supported "+
		"(AgentVersionNotSupported: %s); update qemu-guest-agent in the guest or in its image (spec.osImage): "+
		"spec.guestAgent.install installs the distribution's package at first boot only", reason)
}

package kubevirt

import (
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// GuestAgent is what the VMI says about the QEMU guest agent, as
// virt-handler writes it (kubevirt v1.9.0 pkg/virt-handler/vm.go,
// updateGuestAgentConditions): condition AgentConnected=True while the
// agent's virtio-serial channel is connected, and, while it is, condition
// AgentVersionNotSupported=True (kubevirtv1.VirtualMachineInstanceUnsupportedAgent)
// when the agent lacks commands KubeVirt needs, with virt-handler's text in
// the condition's reason (isGuestAgentSupported, pkg/virt-handler/guestagent.go:
// "This guest agent doesn't support required basic commands" when it lacks
// one of guest-ping, guest-info, guest-network-get-interfaces, ...; "...
// required public key commands" when the VMI has qemuGuestAgent access
// credentials and it lacks guest-ssh-* and the guest-exec/guest-file-*
// fallback; "... required password commands"; or "Guest agent version '<v>'
// is not supported" from an older virt-launcher).
type GuestAgent struct {
	// Connected: AgentConnected=True.
	Connected bool
	// Unsupported: AgentVersionNotSupported=True; Reason says why.
	Unsupported bool
	// Reason is virt-handler's text for Unsupported (the condition's
	// reason, or its message when the reason is empty).
	Reason string
}

// GuestAgent reads the guest agent conditions of the VMI (the zero
// GuestAgent without a VMI).
func (o Observation) GuestAgent() GuestAgent {
	var g GuestAgent
	if c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceAgentConnected); c != nil && c.Status == corev1.ConditionTrue {
		g.Connected = true
	}
	if c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceUnsupportedAgent); c != nil && c.Status == corev1.ConditionTrue {
		g.Unsupported = true
		g.Reason = or(c.Reason, c.Message)
	}
	return g
}

// AccessCredentials is the VMI's AccessCredentialsSynchronized condition,
// which virt-handler copies from what virt-launcher's access credential
// manager reported after its last attempt to write the keys through the
// guest agent (kubevirt v1.9.0 pkg/virt-handler/vm.go,
// updateAccessCredentialConditions; pkg/virt-launcher/virtwrap/
// access-credentials/access_credentials.go, reloadCredentialFiles: message
// "Guest agent is offline" when the agent does not answer, or the error of
// writing a user's keys).
type AccessCredentials struct {
	// Configured: the VMI's spec has an SSH public key credential with
	// qemuGuestAgent propagation (a VMI started before the VM had one has
	// none: KubeVirt mounts the Secret at start).
	Configured bool
	// Reported: the VMI has the condition (KubeVirt sets it only for a VMI
	// with qemuGuestAgent access credentials, after a first attempt).
	Reported bool
	// Synchronized: the condition is True.
	Synchronized bool
	// Message is the condition's message (empty on success).
	Message string
}

// AccessCredentials reads the VMI's access credentials and its
// AccessCredentialsSynchronized condition (the zero value without a VMI).
func (o Observation) AccessCredentials() AccessCredentials {
	var a AccessCredentials
	if o.vmi == nil {
		return a
	}
	for _, c := range o.vmi.Spec.AccessCredentials {
		if c.SSHPublicKey != nil && c.SSHPublicKey.PropagationMethod.QemuGuestAgent != nil {
			a.Configured = true
		}
	}
	if c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized); c != nil {
		a.Reported, a.Synchronized, a.Message = true, c.Status == corev1.ConditionTrue, c.Message
	}
	return a
}

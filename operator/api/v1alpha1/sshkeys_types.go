package v1alpha1

// SSHKeysSynchronizedCondition (issue #33) is present when spec.sshKeySecret
// is set: whether the running guest's authorized_keys follow the Secret.
// True: KubeVirt's guest agent propagation wrote the keys for
// spec.cloudInitUser (the VMI's AccessCredentialsSynchronized is True), so
// a key removed from the Secret is removed from the guest and one added is
// added. False: they do not, and the message says why; key changes then
// reach the guest only through cloud-init, which applies them at the first
// boot of a new disk. Unknown: the VM does not run, or KubeVirt has not
// reported yet. It does not affect Ready.
const SSHKeysSynchronizedCondition = "SSHKeysSynchronized"

// Reasons of SSHKeysSynchronized.
const (
	// ReasonKeysSynchronized: the guest agent wrote the Secret's keys.
	ReasonKeysSynchronized = "Synchronized"
	// ReasonKeysFirstBootOnly: no spec.cloudInitUser, so no guest user is
	// known to write the keys for: cloud-init's first boot only.
	ReasonKeysFirstBootOnly = "FirstBootOnly"
	// ReasonKeysNeedRestart: the running VMI started without KubeVirt access
	// credentials (a VM made before them, or before cloudInitUser was set):
	// they apply from the next start.
	ReasonKeysNeedRestart = "RestartRequired"
	// ReasonGuestAgentNotConnected: no QEMU guest agent answers in the guest.
	ReasonGuestAgentNotConnected = "GuestAgentNotConnected"
	// ReasonGuestAgentNotSupported: KubeVirt does not support the guest's
	// agent (VMI AgentVersionNotSupported).
	ReasonGuestAgentNotSupported = "GuestAgentNotSupported"
	// ReasonKeysSyncFailed: KubeVirt tried and failed to write the keys
	// (VMI AccessCredentialsSynchronized False).
	ReasonKeysSyncFailed = "SyncFailed"
	// ReasonKeysPending: the VM does not run, or KubeVirt has not reported.
	ReasonKeysPending = "Pending"
)

package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The simulated QEMU guest agent (issue #33). A guest runs it when its
// cloud-init user data installs qemu-guest-agent (guestAgent). What it can
// do is played as KubeVirt v1.9.0 reads it:
//
//   - virt-handler's updateGuestAgentConditions (pkg/virt-handler/vm.go):
//     AgentConnected=True while the agent's channel is connected, and
//     AgentVersionNotSupported=True, with isGuestAgentSupported's text as
//     its reason (pkg/virt-handler/guestagent.go), when the agent lacks a
//     command KubeVirt needs: a basic one (guest-network-get-interfaces
//     among them), or, for a VMI with qemuGuestAgent SSH access
//     credentials, both guest-ssh-{get,add,remove}-authorized-keys and the
//     older guest-exec / guest-file-* set.
//   - virt-launcher's agent poller asks the agent for the guest's
//     interfaces (guest-network-get-interfaces): an agent without that
//     command reports none, so a bridge-bound NIC's addresses vanish
//     (interfaces: infoSource without guest-agent).
//   - virt-launcher's access credential manager
//     (pkg/virt-launcher/virtwrap/access-credentials/access_credentials.go,
//     reloadCredentialFiles) writes each qemuGuestAgent user's
//     authorized_keys from every non-empty line of the Secrets named,
//     replacing the file (AuthorizedSSHKeysSet with flags 0), and reports
//     the result, which virt-handler copies into the VMI condition
//     AccessCredentialsSynchronized (updateAccessCredentialConditions:
//     status True with no message, or False with "Guest agent is offline"
//     when the agent does not answer, or the write's error). The keys the
//     guest then holds are recorded in the VMI annotation
//     GuestAuthorizedKeysAnnotation, so a test can read the guest's
//     authorized_keys.
//
// The real manager resyncs on a change of the mounted Secret (kubelet
// updates it within its sync period) and every five minutes; the sandbox
// resyncs on every change of a Secret a VMI names (watched), at once.

// GuestAgentCommandsAnnotation is the annotation a test puts on a
// VirtualMachine to say which commands its guest's agent has
// (comma-separated QMP command names, as guest-info lists them), e.g. an
// old agent without guest-network-get-interfaces. Without it the agent has
// every command (a current qemu-guest-agent).
const GuestAgentCommandsAnnotation = "sandbox.novasphere.dev/guest-agent-commands"

// GuestAuthorizedKeysAnnotation is the VMI annotation where the sandbox
// records the authorized_keys the guest agent wrote: JSON, user name to
// the key lines.
const GuestAuthorizedKeysAnnotation = "sandbox.novasphere.dev/guest-authorized-keys"

// Command sets of KubeVirt v1.9.0 pkg/virt-handler/guestagent.go.
var (
	agentBasicCommands = []string{"guest-ping", "guest-get-time", "guest-info", "guest-shutdown", "guest-network-get-interfaces",
		"guest-get-fsinfo", "guest-get-host-name", "guest-get-users", "guest-get-timezone", "guest-get-osinfo"}
	agentSSHCommands    = []string{"guest-ssh-get-authorized-keys", "guest-ssh-add-authorized-keys", "guest-ssh-remove-authorized-keys"}
	agentOldSSHCommands = []string{"guest-exec-status", "guest-exec", "guest-file-open", "guest-file-close", "guest-file-read", "guest-file-write"}
)

// agent is the simulated guest agent of one VMI.
type agent struct {
	running bool
	// commands it has; nil: every command.
	commands map[string]bool
}

func (a agent) has(cmds ...string) bool {
	if !a.running {
		return false
	}
	if a.commands == nil {
		return true
	}
	for _, c := range cmds {
		if !a.commands[c] {
			return false
		}
	}
	return true
}

// guestAgentOf reads vmi's agent: running per guestAgent, its commands from
// the VM's GuestAgentCommandsAnnotation.
func (r *kubevirtSim) guestAgentOf(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (agent, error) {
	running, err := r.guestAgent(ctx, vmi)
	if err != nil || !running {
		return agent{}, err
	}
	vm := &kubevirtv1.VirtualMachine{}
	if err := r.c.Get(ctx, types.NamespacedName{Namespace: vmi.Namespace, Name: vmi.Name}, vm); err != nil {
		if apierrors.IsNotFound(err) {
			return agent{running: true}, nil
		}
		return agent{}, err
	}
	list, ok := vm.Annotations[GuestAgentCommandsAnnotation]
	if !ok {
		return agent{running: true}, nil
	}
	cmds := map[string]bool{}
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cmds[c] = true
		}
	}
	return agent{running: true, commands: cmds}, nil
}

// supported is isGuestAgentSupported: whether KubeVirt supports a, and
// virt-handler's reason when it does not.
func (a agent) supported(vmi *kubevirtv1.VirtualMachineInstance) (bool, string) {
	if !a.has(agentBasicCommands...) {
		return false, "This guest agent doesn't support required basic commands"
	}
	if hasAgentSSHCredentials(vmi) && !a.has(agentSSHCommands...) && !a.has(agentOldSSHCommands...) {
		return false, "This guest agent doesn't support required public key commands"
	}
	return true, "This guest agent is supported"
}

func hasAgentSSHCredentials(vmi *kubevirtv1.VirtualMachineInstance) bool {
	return slices.ContainsFunc(vmi.Spec.AccessCredentials, func(c kubevirtv1.AccessCredential) bool {
		return c.SSHPublicKey != nil && c.SSHPublicKey.PropagationMethod.QemuGuestAgent != nil
	})
}

// playGuestAgent sets the VMI's agent conditions for a (AgentConnected,
// AgentVersionNotSupported) and, for a VMI with qemuGuestAgent SSH access
// credentials, writes the keys (AccessCredentialsSynchronized and
// GuestAuthorizedKeysAnnotation), as described above.
func (r *kubevirtSim) playGuestAgent(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, a agent) error {
	if a.running {
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceAgentConnected, corev1.ConditionTrue, "", "")
		if ok, reason := a.supported(vmi); !ok {
			setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceUnsupportedAgent, corev1.ConditionTrue, reason, "")
		} else {
			removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceUnsupportedAgent)
		}
	} else {
		removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceAgentConnected)
		removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceUnsupportedAgent)
	}
	if !hasAgentSSHCredentials(vmi) {
		return nil
	}
	if !a.has("guest-ping") {
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized, corev1.ConditionFalse, "", "Guest agent is offline")
		return nil
	}
	keys := map[string][]string{}
	for _, c := range vmi.Spec.AccessCredentials {
		if c.SSHPublicKey == nil || c.SSHPublicKey.PropagationMethod.QemuGuestAgent == nil || c.SSHPublicKey.Source.Secret == nil {
			continue
		}
		lines, err := r.secretLines(ctx, vmi.Namespace, c.SSHPublicKey.Source.Secret.SecretName)
		if err != nil {
			return err
		}
		for _, u := range c.SSHPublicKey.PropagationMethod.QemuGuestAgent.Users {
			keys[u] = append(keys[u], lines...)
		}
	}
	users := make([]string, 0, len(keys))
	for u := range keys {
		users = append(users, u)
	}
	sort.Strings(users)
	if !a.has(agentSSHCommands...) && !a.has(agentOldSSHCommands...) {
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized, corev1.ConditionFalse, "",
			fmt.Sprintf("Error encountered writing ssh pub key access credentials for user [%s]: failed to set SSH keys: "+
				"error from guest-ssh-add-authorized-keys: command not supported; error from using guest-file-write: command not supported", strings.Join(users, ",")))
		return nil
	}
	data, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	if vmi.Annotations == nil {
		vmi.Annotations = map[string]string{}
	}
	vmi.Annotations[GuestAuthorizedKeysAnnotation] = string(data)
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized, corev1.ConditionTrue, "", "")
	return nil
}

// secretLines is readKeysFromDirectory over the mounted Secret: every
// non-empty trimmed line of every value, by key order (the files of the
// Secret volume, listed by name). A missing Secret gives none (a real
// launcher pod would not have started).
func (r *kubevirtSim) secretLines(ctx context.Context, namespace, name string) ([]string, error) {
	s := &corev1.Secret{}
	if err := r.live.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	names := make([]string, 0, len(s.Data))
	for k := range s.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		for _, l := range strings.Split(string(s.Data[k]), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// vmsUsingSecret: the VMs whose running instance names Secret o in its
// access credentials (virt-launcher watches the mounted Secret).
func (r *kubevirtSim) vmsUsingSecret(ctx context.Context, o client.Object) []reconcile.Request {
	vmis := &kubevirtv1.VirtualMachineInstanceList{}
	if err := r.c.List(ctx, vmis, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range vmis.Items {
		for _, c := range vmis.Items[i].Spec.AccessCredentials {
			if c.SSHPublicKey != nil && c.SSHPublicKey.Source.Secret != nil && c.SSHPublicKey.Source.Secret.SecretName == o.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&vmis.Items[i])})
				break
			}
		}
	}
	return reqs
}

// syncGuestAgent replays the agent of a running VMI (its commands may have
// changed, a Secret it names may have): its conditions and keys
// (playGuestAgent), and its interfaces when whether the agent reports them
// changed.
func (r *kubevirtSim) syncGuestAgent(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) error {
	a, err := r.guestAgentOf(ctx, vmi)
	if err != nil {
		return err
	}
	before := vmi.Annotations[GuestAuthorizedKeysAnnotation]
	if err := r.playGuestAgent(ctx, vmi, a); err != nil {
		return err
	}
	reported := slices.ContainsFunc(vmi.Status.Interfaces, func(i kubevirtv1.VirtualMachineInstanceNetworkInterface) bool {
		return strings.Contains(i.InfoSource, "guest-agent")
	})
	if reported != a.has("guest-network-get-interfaces") && vmi.Status.NodeName != "" {
		node := &corev1.Node{}
		if err := r.live.Get(ctx, types.NamespacedName{Name: vmi.Status.NodeName}, node); err != nil {
			return err
		}
		ifaces, err := r.interfaces(ctx, vmi, node)
		if err != nil {
			return err
		}
		vmi.Status.Interfaces = ifaces
	}
	if vmi.Annotations[GuestAuthorizedKeysAnnotation] != before {
		// The annotation is not status: updateVMIStatus would skip it.
		return r.c.Update(ctx, vmi)
	}
	return nil
}

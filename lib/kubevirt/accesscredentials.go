package kubevirt

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// SSH keys in a running guest (issue #33). cloud-init applies
// ssh_authorized_keys once, at the first boot of a disk: a key removed
// later stays authorized. KubeVirt's access credentials API with the
// qemuGuestAgent propagation method keeps a user's authorized_keys equal to
// the keys of a Secret while the guest runs (KubeVirt user guide,
// "Accessing Virtual Machines", dynamic SSH public key injection): the
// Secret is mounted into the virt-launcher pod when the VM starts, and
// virt-launcher's access credential manager rewrites
// ~user/.ssh/authorized_keys through the guest agent whenever the mounted
// Secret changes and every five minutes, replacing the file
// (guest-ssh-add-authorized-keys with reset, or, for agents before QEMU
// 5.2, guest-exec and guest-file-* writes; kubevirt v1.9.0
// pkg/virt-launcher/virtwrap/access-credentials/access_credentials.go).
// virt-handler reports the outcome in the VMI condition
// AccessCredentialsSynchronized (Observation.AccessCredentials).
//
// KubeVirt copies every non-empty line of every value of that Secret into
// the file. The lib therefore never names the owner's key Secret there: it
// writes the keys it kept (CloudInit.SSHKeys, lines that parse as keys) into
// a Secret of its own, <owner>-sshkeys, key authorized_keys, so nothing else
// of a Secret reaches the guest.

// Names of the SSH key Secret.
const (
	// SSHKeysSecretSuffix: the Secret is named <owner>-sshkeys.
	SSHKeysSecretSuffix = "sshkeys"
	// AuthorizedKeysKey is its one key: the keys, one per line.
	AuthorizedKeysKey = "authorized_keys"
)

// SSHKeysSecretName is the name of the Secret BuildSSHKeysSecret builds.
func SSHKeysSecretName(owner client.Object) string {
	return owner.GetName() + "-" + SSHKeysSecretSuffix
}

// BuildSSHKeysSecret returns the Secret <owner>-sshkeys holding
// m.CloudInit.SSHKeys (trimmed, empty ones left out, one per line, in
// order) under AuthorizedKeysKey, for KubeVirt to propagate (see above);
// an empty value when there are none, so every key is revoked. Like
// BuildCloudInitSecret, the owner reference needs owner's TypeMeta.
func BuildSSHKeysSecret(id apply.Identity, owner client.Object, m Machine) *corev1.Secret {
	keys := cleanKeys(m.CloudInit.SSHKeys)
	value := ""
	if len(keys) > 0 {
		value = strings.Join(keys, "\n") + "\n"
	}
	return ownedSecret(id, owner, SSHKeysSecretName(owner), map[string][]byte{AuthorizedKeysKey: []byte(value)})
}

// buildAccessCredentials is the VMI template's accessCredentials: with
// CloudInit.PropagateSSHKeys, one sshPublicKey credential from the Secret
// <owner>-sshkeys, propagated by the QEMU guest agent for User.Name; else
// none.
func buildAccessCredentials(owner client.Object, m Machine) []kubevirtv1.AccessCredential {
	if !m.CloudInit.PropagateSSHKeys || m.CloudInit.User == nil {
		return nil
	}
	return []kubevirtv1.AccessCredential{{SSHPublicKey: &kubevirtv1.SSHPublicKeyAccessCredential{
		Source: kubevirtv1.SSHPublicKeyAccessCredentialSource{
			Secret: &kubevirtv1.AccessCredentialSecretSource{SecretName: SSHKeysSecretName(owner)},
		},
		PropagationMethod: kubevirtv1.SSHPublicKeyAccessCredentialPropagationMethod{
			QemuGuestAgent: &kubevirtv1.QemuGuestAgentSSHPublicKeyAccessCredentialPropagation{Users: []string{m.CloudInit.User.Name}},
		},
	}}}
}

// validateAccessCredentials is Machine.Validate's part for
// PropagateSSHKeys: the guest agent writes the keys for a named user
// (KubeVirt refuses a qemuGuestAgent credential without users), so it needs
// CloudInit.User.
func (m Machine) validateAccessCredentials() error {
	if m.CloudInit.PropagateSSHKeys && (m.CloudInit.User == nil || m.CloudInit.User.Name == "") {
		return &InvalidInputError{Field: "cloudInit.propagateSSHKeys", Message: "needs cloudInit.user: the guest agent writes the keys of a named user"}
	}
	return nil
}

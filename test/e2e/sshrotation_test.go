package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// e2eKey2 is a second real ed25519 public key.
const e2eKey2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbMKs0A4tIRYbgz5rVwxKp1pnzAhm7fUp8fV1k8ZB1e second@test"

// TestSSHKeyRotation (issue #33, item 6): removing a key from the
// sshKeySecret revokes it in the running guest. The edit alone (nothing
// touches the Wukong) re-renders the cloud-init Secret and the SSH key
// Secret KubeVirt's access credentials name; the sandbox plays
// virt-launcher's access credential manager writing the user's
// authorized_keys through the guest agent and virt-handler's
// AccessCredentialsSynchronized condition; the Wukong's SSHKeysSynchronized
// is True.
func TestSSHKeyRotation(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	if !inSandbox {
		t.Skip("reads the simulated guest agent's keys annotation: sandbox only (TestLocalSSHKeyRotation checks a real guest over SSH)")
	}
	t.Parallel()
	ns := newNamespace(t)
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team-keys",
		Labels: map[string]string{v1alpha1.SSHAuthorizedKeysLabel: "true"}},
		StringData: map[string]string{"alice": e2eKey + "\n", "bob": e2eKey2 + "\n"}}
	create(t, keys)
	w := newWukong(ns, "rotate")
	w.Spec.SSHKeySecret = "team-keys"
	w.Spec.CloudInitUser = &v1alpha1.CloudInitUser{Name: "ops"}
	create(t, w)
	waitRunning(t, key(w))

	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(w), vm))
	require.Len(t, vm.Spec.Template.Spec.AccessCredentials, 1, "KubeVirt access credentials on the VM")
	ac := vm.Spec.Template.Spec.AccessCredentials[0].SSHPublicKey
	require.NotNil(t, ac)
	assert.Equal(t, "rotate-sshkeys", ac.Source.Secret.SecretName, "the operator's own Secret, only key lines")
	require.NotNil(t, ac.PropagationMethod.QemuGuestAgent)
	assert.Equal(t, []string{"ops"}, ac.PropagationMethod.QemuGuestAgent.Users)

	check := func(want ...string) {
		t.Helper()
		eventually(t, 1, func(c *assert.CollectT) {
			ci := &corev1.Secret{}
			require.NoError(c, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "rotate-cloudinit"}, ci))
			var cfg struct {
				Users []struct {
					Keys []string `json:"ssh_authorized_keys"`
				} `json:"users"`
			}
			require.NoError(c, yaml.Unmarshal(ci.Data[kubevirt.UserDataKey], &cfg))
			if assert.Len(c, cfg.Users, 1) {
				assert.Equal(c, want, cfg.Users[0].Keys, "the cloud-init Secret follows the key Secret")
			}
			sk := &corev1.Secret{}
			require.NoError(c, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "rotate-sshkeys"}, sk))
			assert.Equal(c, want, splitLines(string(sk.Data[kubevirt.AuthorizedKeysKey])), "the access credential Secret follows it")
			vmi := &kubevirtv1.VirtualMachineInstance{}
			require.NoError(c, k.Get(ctxT(t), key(w), vmi))
			guest := map[string][]string{}
			if raw := vmi.Annotations[sandbox.GuestAuthorizedKeysAnnotation]; assert.NotEmpty(c, raw, "the guest agent wrote keys") {
				require.NoError(c, json.Unmarshal([]byte(raw), &guest))
			}
			assert.Equal(c, map[string][]string{"ops": want}, guest, "the running guest's authorized_keys")
			got := getWukong(c, k, key(w))
			if sc := cond(got, v1alpha1.SSHKeysSynchronizedCondition); assert.NotNil(c, sc) {
				assert.Equal(c, metav1.ConditionTrue, sc.Status, sc.Message)
				assert.Equal(c, v1alpha1.ReasonKeysSynchronized, sc.Reason)
			}
		}, "keys %v in the cloud-init Secret, the access credential Secret and the guest", want)
	}
	check(e2eKey, e2eKey2)

	// Revoke alice's key: only the Secret changes.
	require.NoError(t, k.Get(ctxT(t), key(keys), keys))
	keys.Data = map[string][]byte{"bob": []byte(e2eKey2 + "\n")}
	require.NoError(t, k.Update(ctxT(t), keys))
	check(e2eKey2)
	after := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(w), after))
	assert.Equal(t, vm.Generation, after.Generation, "the VM is not changed by a key edit (no restart)")
}

// TestSSHKeysFirstBootOnly (issue #33, item 6): where the keys cannot reach
// the running guest, the Wukong says that key changes apply only at the
// first boot of a new disk: no guest agent (spec.guestAgent.install false,
// an image without one: virt-launcher reports "Guest agent is offline"),
// or no known user (no spec.cloudInitUser: no access credentials at all).
func TestSSHKeysFirstBootOnly(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team-keys",
		Labels: map[string]string{v1alpha1.SSHAuthorizedKeysLabel: "true"}}, StringData: map[string]string{"alice": e2eKey}})
	off := false
	noAgent := newWukong(ns, "noagent")
	noAgent.Spec.SSHKeySecret = "team-keys"
	noAgent.Spec.CloudInitUser = &v1alpha1.CloudInitUser{Name: "ops"}
	noAgent.Spec.GuestAgent = &v1alpha1.GuestAgent{Install: &off}
	noUser := newWukong(ns, "nouser")
	noUser.Spec.SSHKeySecret = "team-keys"
	create(t, noAgent)
	create(t, noUser)

	for _, tc := range []struct {
		w      *v1alpha1.Wukong
		reason string
		says   string
	}{
		{noAgent, v1alpha1.ReasonGuestAgentNotConnected, "spec.guestAgent.install is false"},
		{noUser, v1alpha1.ReasonKeysFirstBootOnly, "spec.cloudInitUser"},
	} {
		waitRunning(t, key(tc.w))
		eventually(t, 1, func(c *assert.CollectT) {
			got := getWukong(c, k, key(tc.w))
			if sc := cond(got, v1alpha1.SSHKeysSynchronizedCondition); assert.NotNil(c, sc) {
				assert.Equal(c, metav1.ConditionFalse, sc.Status)
				assert.Equal(c, tc.reason, sc.Reason)
				assert.Contains(c, sc.Message, "apply only at the first boot of a new disk")
				assert.Contains(c, sc.Message, tc.says)
			}
			assert.Equal(c, metav1.ConditionTrue, condStatus(got, v1alpha1.ReadyCondition), "keys do not make the VM unready")
		}, "%s: SSHKeysSynchronized False (%s)", tc.w.Name, tc.reason)
	}
	// virt-launcher's access credential manager reports the condition at
	// its first check, up to resyncCheckIntervalSeconds after the domain
	// started (pkg/virt-launcher/virtwrap/access-credentials: pingAgent
	// fails, "Guest agent is offline"); virt-handler copies it to the VMI.
	eventually(t, 1, func(c *assert.CollectT) {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(ctxT(t), key(noAgent), vmi))
		var synced *kubevirtv1.VirtualMachineInstanceCondition
		for i, cd := range vmi.Status.Conditions {
			if cd.Type == kubevirtv1.VirtualMachineInstanceAccessCredentialsSynchronized {
				synced = &vmi.Status.Conditions[i]
			}
		}
		if assert.NotNil(c, synced, "virt-handler's AccessCredentialsSynchronized") {
			assert.Equal(c, corev1.ConditionFalse, synced.Status)
			assert.Equal(c, "Guest agent is offline", synced.Message)
		}
	}, "the VMI of %s to say the guest agent is offline", noAgent.Name)
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

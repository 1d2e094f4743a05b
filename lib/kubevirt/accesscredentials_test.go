package kubevirt

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

const (
	keyA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINeWUM1ouD70UOC7hd0OLjA02sHgBQMnT+RNWjbJlaBr a@test"
	keyB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbMKs0A4tIRYbgz5rVwxKp1pnzAhm7fUp8fV1k8ZB1e b@test"
)

func propagating(keys ...string) Machine {
	return with(func(m *Machine) {
		m.CloudInit.User = &User{Name: "ops"}
		m.CloudInit.SSHKeys = keys
		m.CloudInit.PropagateSSHKeys = true
	})
}

// TestBuildAccessCredentials: with PropagateSSHKeys the VM names the lib's
// own key Secret with KubeVirt's qemuGuestAgent propagation for the user
// (the shape KubeVirt's user guide shows for dynamic key injection);
// without it, no access credentials.
func TestBuildAccessCredentials(t *testing.T) {
	vm := BuildVM(testID, testOwner(), propagating(keyA))
	require.Len(t, vm.Spec.Template.Spec.AccessCredentials, 1)
	ac := vm.Spec.Template.Spec.AccessCredentials[0]
	require.NotNil(t, ac.SSHPublicKey)
	require.NotNil(t, ac.SSHPublicKey.Source.Secret)
	assert.Equal(t, "web-sshkeys", ac.SSHPublicKey.Source.Secret.SecretName)
	require.NotNil(t, ac.SSHPublicKey.PropagationMethod.QemuGuestAgent)
	assert.Equal(t, []string{"ops"}, ac.SSHPublicKey.PropagationMethod.QemuGuestAgent.Users)
	assert.Nil(t, ac.SSHPublicKey.PropagationMethod.NoCloud)

	plain := propagating(keyA)
	plain.CloudInit.PropagateSSHKeys = false
	assert.Empty(t, BuildVM(testID, testOwner(), plain).Spec.Template.Spec.AccessCredentials)

	// The VM does not depend on the keys: a key change rewrites only the
	// Secret, which KubeVirt propagates to the running guest.
	assert.Equal(t, BuildVM(testID, testOwner(), propagating(keyA)).Spec, BuildVM(testID, testOwner(), propagating(keyB)).Spec)
}

// TestBuildSSHKeysSecret: the keys, one per line, under authorized_keys,
// and nothing else; no keys is an empty value (KubeVirt then empties the
// user's authorized_keys: every key revoked).
func TestBuildSSHKeysSecret(t *testing.T) {
	s := BuildSSHKeysSecret(testID, testOwner(), propagating("  "+keyA+" ", "", keyB))
	assert.Equal(t, "web-sshkeys", s.Name)
	assert.Equal(t, "prod", s.Namespace)
	assert.Equal(t, map[string][]byte{AuthorizedKeysKey: []byte(keyA + "\n" + keyB + "\n")}, s.Data)
	assert.Equal(t, corev1.SecretTypeOpaque, s.Type)
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, map[string][]byte{AuthorizedKeysKey: {}}, BuildSSHKeysSecret(testID, testOwner(), propagating()).Data)
}

// TestValidatePropagateSSHKeys: propagation needs the user the agent writes
// the keys of (KubeVirt refuses a qemuGuestAgent credential without users).
func TestValidatePropagateSSHKeys(t *testing.T) {
	require.NoError(t, propagating(keyA).Validate())
	m := propagating(keyA)
	m.CloudInit.User = nil
	requireInvalid(t, m.Validate(), "cloudInit.propagateSSHKeys")
}

// TestRenderUserDataFollowsKeys: the cloud-init user data is rendered from
// the keys given each time: a key removed is gone from it (for the next
// new disk; cloud-init applies keys once per instance).
func TestRenderUserDataFollowsKeys(t *testing.T) {
	keysOf := func(m Machine) []string {
		data, err := RenderUserData(testOwner(), m)
		require.NoError(t, err)
		var cfg struct {
			Users []struct {
				Keys []string `json:"ssh_authorized_keys"`
			} `json:"users"`
		}
		require.NoError(t, yaml.Unmarshal(data, &cfg))
		require.Len(t, cfg.Users, 1)
		return cfg.Users[0].Keys
	}
	assert.Equal(t, []string{keyA, keyB}, keysOf(propagating(keyA, keyB)))
	assert.Equal(t, []string{keyB}, keysOf(propagating(keyB)))
}

// TestReconcileSSHKeysSecret (envtest): Reconcile writes <owner>-sshkeys
// with the keys; a key change rewrites the Secret and leaves the VM as it
// is (no restart needed: KubeVirt propagates the Secret to the guest).
func TestReconcileSSHKeysSecret(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, owner := newNamespace(t, c)
	_, err := Reconcile(ctx, c, testID, owner, propagating(keyA, keyB))
	require.NoError(t, err)
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: ns, Name: "web-sshkeys"}
	require.NoError(t, c.Get(ctx, key, secret))
	assert.Equal(t, keyA+"\n"+keyB+"\n", string(secret.Data[AuthorizedKeysKey]))
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, vm))
	require.Len(t, vm.Spec.Template.Spec.AccessCredentials, 1)

	_, err = Reconcile(ctx, c, testID, owner, propagating(keyB))
	require.NoError(t, err)
	require.NoError(t, c.Get(ctx, key, secret))
	assert.Equal(t, keyB+"\n", string(secret.Data[AuthorizedKeysKey]), "the removed key is gone from the Secret KubeVirt propagates")
	after := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, after))
	assert.Equal(t, vm.ResourceVersion, after.ResourceVersion, "the VM is not written for a key change")
	ci := &corev1.Secret{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-cloudinit"}, ci))
	// The key blobs (YAML may fold a long line).
	assert.NotContains(t, string(ci.Data[UserDataKey]), "AAAAINeWUM1ouD70UOC7hd0OLjA02sHgBQMnT", "the cloud-init Secret follows the keys")
	assert.Contains(t, string(ci.Data[UserDataKey]), "AAAAIHbMKs0A4tIRYbgz5rVwxKp1pnzAhm7fUp8fV1k8ZB1e")
}

// TestKeepRunningAccessCredentials: a VM whose running instance started
// without access credentials (rendered before key propagation) is not
// given them while it runs, as KubeVirt would report RestartRequired for
// that alone (operator upgrade: nothing flagged); stopped, or with a
// restart pending or requested, it gets them for its next start; a VM
// that has them keeps them.
func TestKeepRunningAccessCredentials(t *testing.T) {
	old := BuildVM(testID, testOwner(), propagating(keyA))
	old.Spec.Template.Spec.AccessCredentials = nil
	oldVMI := mutatedVMI(old)
	withCreds := BuildVM(testID, testOwner(), propagating(keyA))
	restartRequired := old.DeepCopy()
	restartRequired.Status.Conditions = []kubevirtv1.VirtualMachineCondition{{Type: kubevirtv1.VirtualMachineRestartRequired, Status: corev1.ConditionTrue}}
	stopRequested := old.DeepCopy()
	stopRequested.Status.StateChangeRequests = []kubevirtv1.VirtualMachineStateChangeRequest{{Action: kubevirtv1.StopRequest}}
	for _, tt := range []struct {
		name string
		live *kubevirtv1.VirtualMachine
		vmi  *kubevirtv1.VirtualMachineInstance
		want bool
	}{
		{"running without them: kept out", old, oldVMI, false},
		{"stopped: added for the next start", old, nil, true},
		{"restart pending anyway: added", restartRequired, oldVMI, true},
		{"stop requested (virtctl restart): added", stopRequested, oldVMI, true},
		{"running with them: kept", withCreds, mutatedVMI(withCreds), true},
		{"no VM yet: added", nil, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vm := BuildVM(testID, testOwner(), propagating(keyA))
			keepRunningAccessCredentials(vm, tt.live, tt.vmi)
			assert.Equal(t, tt.want, len(vm.Spec.Template.Spec.AccessCredentials) == 1)
		})
	}
}

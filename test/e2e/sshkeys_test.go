package e2e_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// e2eKey is a real ed25519 public key (ssh-keygen -t ed25519).
const e2eKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINeWUM1ouD70UOC7hd0OLjA02sHgBQMnT+RNWjbJlaBr ed25519@test"

// TestTenantSSHKeySecret: a tenant's sshKeySecret copies into the guest
// only a Secret that opts in (label vm.novasphere.dev/ssh-authorized-keys:
// "true"), and of it only the lines that are SSH public keys; naming any
// other Secret of the namespace (a database password) is refused with the
// same answer as naming a Secret that does not exist, and nothing of it
// reaches the guest.
func TestTenantSSHKeySecret(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	alice := tenant(t, ns, "alice-"+randSuffix())
	const password = "db-Pa55w0rd-e2e"
	// Another team's Secret in the namespace, not meant for guests.
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-credentials"},
		StringData: map[string]string{"password": password, "key": e2eKey}})
	// A key Secret that opts in, with a stray password line.
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team-keys",
		Labels: map[string]string{v1alpha1.SSHAuthorizedKeysLabel: "true"}},
		StringData: map[string]string{"alice": e2eKey + "\n" + password + "\n"}})

	steal := newWukong(ns, "steal")
	steal.Spec.SSHKeySecret = "db-credentials"
	missing := newWukong(ns, "missing")
	missing.Spec.SSHKeySecret = "no-such-secret"
	keys := newWukong(ns, "keys")
	keys.Spec.SSHKeySecret = "team-keys"
	for _, w := range []*v1alpha1.Wukong{steal, missing, keys} {
		require.NoError(t, alice.Create(ctxT(t), w))
	}

	msgSteal := stalledMessage(t, alice, key(steal), "spec.sshKeySecret", v1alpha1.ReasonSecretNotFound)
	msgMissing := stalledMessage(t, alice, key(missing), "spec.sshKeySecret", v1alpha1.ReasonSecretNotFound)
	assert.Equal(t, msgMissing, strings.ReplaceAll(msgSteal, "db-credentials", "no-such-secret"),
		"a Secret that does not opt in gets the answer of one that does not exist")
	assertGone(t, &corev1.Secret{}, types.NamespacedName{Namespace: ns, Name: "steal-cloudinit"})

	waitRunning(t, key(keys))
	ci := &corev1.Secret{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: "keys-cloudinit"}, ci))
	userdata := string(ci.Data["userdata"])
	var cfg struct {
		Keys []string `json:"ssh_authorized_keys"`
	}
	require.NoError(t, yaml.Unmarshal(ci.Data["userdata"], &cfg))
	assert.Equal(t, []string{e2eKey}, cfg.Keys, "the key reaches the guest, and only it")
	assert.NotContains(t, userdata, password, "a line that is not a key does not")
	eventually(t, 1, func(c *assert.CollectT) {
		events := &eventsv1.EventList{}
		require.NoError(c, k.List(ctxT(t), events, client.InNamespace(ns)))
		var notes []string
		for _, e := range events.Items {
			if e.Regarding.Name == "keys" && e.Reason == v1alpha1.ReasonSSHKeyLinesDropped {
				notes = append(notes, e.Note)
			}
		}
		if assert.NotEmpty(c, notes, "a Warning Event counts the dropped lines") {
			assert.Contains(c, notes[0], "1 line(s) of Secret team-keys")
			assert.NotContains(c, notes[0], password)
		}
	}, "the SSHKeyLinesDropped Event")
}

// TestTenantPasswordSecretRef: cloudInitUser.passwordSecretRef takes the
// password from a Secret that opts in (label
// vm.novasphere.dev/cloud-init-password: "true"): a plain value reaches the
// guest only as a SHA-512 crypt hash, a crypt(3) value as it is. Naming a
// Secret without the label is refused with the answer of a Secret that does
// not exist, and nothing of it reaches a guest.
func TestTenantPasswordSecretRef(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ns := newNamespace(t)
	alice := tenant(t, ns, "alice-"+randSuffix())
	const (
		plain = "ops-Pa55-e2e"
		hash  = "$6$e2esalt$Bq2E0Uu1t8hB0sYgQW4cN7H9oq7b1B4o2h6m5YH3lTq1W0m0sQ6m0o7N6bWZzq0ZxR1n6eQ8kL2yPpF5fYwA1"
	)
	optedIn := map[string]string{v1alpha1.CloudInitPasswordLabel: "true"}
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-credentials"},
		StringData: map[string]string{"password": "db-Pa55w0rd-e2e"}})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ops-password", Labels: optedIn},
		StringData: map[string]string{"password": plain + "\n", "hash": hash}})

	user := func(name, secret, key string) *v1alpha1.Wukong {
		w := newWukong(ns, name)
		w.Spec.CloudInitUser = &v1alpha1.CloudInitUser{Name: "ops", LockPasswd: ptrTo(false),
			PasswordSecretRef: &v1alpha1.PasswordSecretRef{Name: secret, Key: key}}
		return w
	}
	steal := user("steal", "db-credentials", "")
	missing := user("missing", "no-such-secret", "")
	fromPlain := user("plain", "ops-password", "")
	fromHash := user("hash", "ops-password", "hash")
	for _, w := range []*v1alpha1.Wukong{steal, missing, fromPlain, fromHash} {
		require.NoError(t, alice.Create(ctxT(t), w))
	}
	got := &v1alpha1.Wukong{}
	require.NoError(t, alice.Get(ctxT(t), key(fromPlain), got))
	assert.Equal(t, "password", got.Spec.CloudInitUser.PasswordSecretRef.Key, "the key defaults to password")

	field := "spec.cloudInitUser.passwordSecretRef"
	msgSteal := stalledMessage(t, alice, key(steal), field, v1alpha1.ReasonSecretNotFound)
	msgMissing := stalledMessage(t, alice, key(missing), field, v1alpha1.ReasonSecretNotFound)
	assert.Equal(t, msgMissing, strings.ReplaceAll(msgSteal, "db-credentials", "no-such-secret"),
		"a Secret that does not opt in gets the answer of one that does not exist")
	assertGone(t, &corev1.Secret{}, types.NamespacedName{Namespace: ns, Name: "steal-cloudinit"})

	passwd := func(w *v1alpha1.Wukong) string {
		t.Helper()
		waitRunning(t, key(w))
		ci := &corev1.Secret{}
		require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: w.Name + "-cloudinit"}, ci))
		var cfg struct {
			Users []struct {
				Name   string `json:"name"`
				Passwd string `json:"passwd"`
			} `json:"users"`
		}
		require.NoError(t, yaml.Unmarshal(ci.Data["userdata"], &cfg))
		for _, u := range cfg.Users {
			if u.Name == "ops" {
				assert.NotContains(t, string(ci.Data["userdata"]), plain, "the plain password is not in the cloud-init Secret")
				return u.Passwd
			}
		}
		t.Fatalf("no user ops in %s", ci.Data["userdata"])
		return ""
	}
	assert.Regexp(t, `^\$6\$[^$]+\$[./0-9A-Za-z]{86}$`, passwd(fromPlain), "a plain value is hashed with SHA-512 crypt")
	assert.Equal(t, hash, passwd(fromHash), "a crypt(3) value is used as it is")
}

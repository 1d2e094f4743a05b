package reliability_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestSecretsStayInSecrets: a plain cloudInitUser.password reaches only the
// cloud-init Secret, and only as a SHA-512 crypt hash. It is absent from the
// VM, the VMI, the Wukong status, every Event and the manager's most verbose
// log.
func TestSecretsStayInSecrets(t *testing.T) {
	const password = "S3cr3t-Pa55"
	ctx := t.Context()
	ns := newNamespace(t, k, "secrets")
	require.NoError(t, k.Create(ctx, sshSecret(ns, "keys")))
	w := newWukong(ns, "guarded")
	w.Spec.SSHKeySecret = "keys"
	w.Spec.CloudInitUser = &v1alpha1.CloudInitUser{Name: "rel", Password: password, Sudo: "ALL=(ALL) NOPASSWD:ALL"}
	require.NoError(t, k.Create(ctx, w))
	w = waitRunning(t, k, key(w))

	scan := func(what string, obj any) {
		t.Helper()
		b, err := json.Marshal(obj)
		require.NoError(t, err, what)
		assert.NotContains(t, string(b), password, "the plain password is in %s", what)
	}
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctx, key(w), vm))
	scan("the VirtualMachine", vm)
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctx, key(w), vmi))
	scan("the VirtualMachineInstance", vmi)
	scan("the Wukong status", w.Status)

	events := &eventsv1.EventList{}
	require.NoError(t, k.List(ctx, events, client.InNamespace(ns)))
	require.NotEmpty(t, events.Items, "the operator records events (else this scan proves nothing)")
	scan("the Events (events.k8s.io)", events)
	coreEvents := &corev1.EventList{}
	require.NoError(t, k.List(ctx, coreEvents, client.InNamespace(ns)))
	scan("the Events (core)", coreEvents)

	ci := &corev1.Secret{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: w.Name + "-cloudinit"}, ci))
	userdata := string(ci.Data["userdata"])
	require.NotEmpty(t, userdata, "cloud-init userdata")
	assert.NotContains(t, userdata, password, "the plain password is in the cloud-init userdata")
	assert.NotContains(t, string(ci.Data["networkdata"]), password, "networkdata")
	var cfg struct {
		Users []struct {
			Name   string `json:"name"`
			Passwd string `json:"passwd"`
		} `json:"users"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(strings.TrimPrefix(userdata, "#cloud-config\n")), &cfg))
	require.Len(t, cfg.Users, 1)
	hash := cfg.Users[0].Passwd
	require.True(t, strings.HasPrefix(hash, "$6$"), "passwd is a SHA-512 crypt hash: %q", hash)
	assert.Equal(t, hash, opensslCrypt(t, password, hash), "the hash verifies against the password")
	assert.NotEqual(t, hash, opensslCrypt(t, "wrong-password", hash), "the hash check can fail")
	// The hash is in the Secret only: not in the VM either.
	scanHash, _ := json.Marshal(vm)
	assert.NotContains(t, string(scanHash), hash, "the password hash is in the VirtualMachine")

	logs := mgrLog.String()
	require.Contains(t, logs, w.Name, "the manager log mentions the Wukong (the capture works)")
	assert.NotContains(t, logs, password, "the plain password is in the manager's log")
	// Sanity: the Wukong object itself does hold it (documented: prefer
	// passwordHash), so the scans above would have found a copy.
	stored := getWukong(t, k, key(w))
	require.Equal(t, password, stored.Spec.CloudInitUser.Password)
}

// opensslCrypt hashes password with SHA-512 crypt under the salt of hash
// ("$6$<salt>$..."), by OpenSSL (openssl passwd -6), an implementation
// independent of the one lib/kubevirt uses.
func opensslCrypt(t *testing.T, password, hash string) string {
	t.Helper()
	parts := strings.Split(hash, "$")
	require.GreaterOrEqual(t, len(parts), 4, "hash %q is not $6$<salt>$<digest>", hash)
	cmd := exec.Command("openssl", "passwd", "-6", "-salt", parts[2], "-stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	require.NoError(t, err, "openssl passwd -6")
	return strings.TrimSpace(string(out))
}

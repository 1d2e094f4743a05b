package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestLocalSSHKeyRotation (issue #33, item 6) on real KubeVirt: a guest
// boots with key A in spec.sshKeySecret; key B is added to the Secret and
// then key A removed, and nothing else changes. Real KubeVirt's access
// credentials (qemuGuestAgent propagation, virt-launcher's
// accesscredentials manager writing the user's authorized_keys through the
// guest agent) carry both edits into the running guest: B logs in, then A
// is refused, the boot_id stays the same, and the Wukong's
// SSHKeysSynchronized is True.
func TestLocalSSHKeyRotation(t *testing.T) {
	realKubeVirt(t)
	url := realCDI(t)

	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	nn, pod := g.bootImageDisk(t, ns, "keys-"+randSuffix(), url)
	ip := pod.Status.PodIP
	bootID, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "cat /proc/sys/kernel/random/boot_id")
	require.NoError(t, err, "boot_id: %s", bootID)
	synced := func(what string) {
		t.Helper()
		eventually(t, 3, func(c *assert.CollectT) {
			sc := cond(getWukong(c, k, nn), v1alpha1.SSHKeysSynchronizedCondition)
			if assert.NotNil(c, sc, "SSHKeysSynchronized") {
				assert.Equal(c, metav1.ConditionTrue, sc.Status, "SSHKeysSynchronized: %s %s", sc.Reason, sc.Message)
			}
		}, "SSHKeysSynchronized True %s", what)
	}
	synced("after boot")

	keyB := filepath.Join(t.TempDir(), "id_b")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-local-b", "-f", keyB).CombinedOutput()
	require.NoError(t, err, "ssh-keygen: %s", out)
	pubB, err := os.ReadFile(keyB + ".pub")
	require.NoError(t, err)
	setKeys := func(data map[string]string) {
		t.Helper()
		require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s := &corev1.Secret{}
			if err := k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: g.secret}, s); err != nil {
				return err
			}
			s.Data = nil
			s.StringData = data
			return k.Update(ctxT(t), s)
		}))
	}
	// waitLogin polls ssh with keyFile until it logs in (want) or is
	// refused (!want), for at most 5 minutes; it returns the seconds taken.
	waitLogin := func(keyFile string, want bool) float64 {
		t.Helper()
		start := time.Now()
		for {
			_, err := guestSSH(ctxT(t), keyFile, g.login, ip, "true")
			if (err == nil) == want {
				return time.Since(start).Seconds()
			}
			if time.Since(start) > 5*time.Minute {
				t.Fatalf("ssh with %s: logged in %v, want %v, 5m after the Secret changed (last error %v)", filepath.Base(keyFile), err == nil, want, err)
			}
			time.Sleep(5 * time.Second)
		}
	}
	pubA, err := os.ReadFile(g.keyFile + ".pub")
	require.NoError(t, err)

	setKeys(map[string]string{"e2e": strings.TrimSpace(string(pubA)), "b": strings.TrimSpace(string(pubB))})
	t.Logf("key B added to Secret %s: it logs in %.0f s later", g.secret, waitLogin(keyB, true))
	setKeys(map[string]string{"b": strings.TrimSpace(string(pubB))})
	t.Logf("key A removed from Secret %s: it is refused %.0f s later", g.secret, waitLogin(g.keyFile, false))
	_, err = guestSSH(ctxT(t), keyB, g.login, ip, "true")
	require.NoError(t, err, "key B still logs in")
	synced("after the edits")
	id, err := guestSSH(ctxT(t), keyB, g.login, ip, "cat /proc/sys/kernel/random/boot_id")
	require.NoError(t, err, "boot_id: %s", id)
	assert.Equal(t, bootID, id, "the guest's boot_id (no reboot)")
	keys, err := guestSSH(ctxT(t), keyB, g.login, ip, "cat ~/.ssh/authorized_keys")
	require.NoError(t, err)
	t.Logf("the guest's authorized_keys now:\n%s", keys)
	assert.NotContains(t, keys, strings.Fields(string(pubA))[1], "key A is gone from the guest")
}

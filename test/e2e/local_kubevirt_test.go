package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// The real-KubeVirt checks of make e2e-local (issue 20): a Wukong whose VM
// real KubeVirt runs under qemu on this machine's node, checked from inside
// the guest. They need a cluster running KubeVirt (not the sandbox's
// simulator) and a containerDisk image the node has without a registry:
//
//	E2E_GUEST_IMAGE   the guest's containerDisk (make e2e-local sets the one
//	                  scripts/kubevirt-build.sh imports: localhost/wukong/guest-disk:bookworm)
//	E2E_LOCAL_NODE=1  the test runs on the node itself (it then also finds
//	                  the guest's qemu process in /proc)
//	E2E_BOOT_TIMEOUT  how long the guest may take to answer SSH (default 15m:
//	                  software emulation, 2 shared cores)

// realKubeVirt skips t unless the cluster runs KubeVirt itself (its
// KubeVirt CR is Available) and E2E_GUEST_IMAGE names a bootable
// containerDisk; it returns that image.
func realKubeVirt(t *testing.T) string {
	t.Helper()
	if inSandbox {
		t.Skip("boots a guest under real KubeVirt (make local-cluster-up with make kubevirt-images built, then make e2e-local); the sandbox simulates KubeVirt")
	}
	if !serves(t, kindVirtualMachine) {
		t.Skip("the cluster does not serve KubeVirt's VirtualMachine: make kubevirt-images, then make local-cluster-up installs it")
	}
	image := os.Getenv("E2E_GUEST_IMAGE")
	if image == "" {
		t.Skip("E2E_GUEST_IMAGE is not set: no bootable containerDisk for this cluster (make e2e-local sets it)")
	}
	kvs := &kubevirtv1.KubeVirtList{}
	require.NoError(t, k.List(ctxT(t), kvs))
	for _, kv := range kvs.Items {
		if kv.Status.Phase == kubevirtv1.KubeVirtPhaseDeployed {
			return image
		}
	}
	t.Skipf("no KubeVirt CR is Deployed (%d found)", len(kvs.Items))
	return ""
}

// TestLocalKubeVirtGuest: a Manual Wukong with a containerDisk, a
// cloud-init user and an SSH key becomes a VM real KubeVirt runs:
// started and stopped through virt-api's start/stop subresources (what
// virtctl start/stop call), a virt-launcher pod and a qemu process, and in
// the guest the Wukong's hostname, its user with the key and sudo; deleting
// the Wukong leaves no VM, VMI, pod, Secret or qemu behind.
func TestLocalKubeVirtGuest(t *testing.T) {
	image := realKubeVirt(t)
	ns := newNamespace(t)
	name := "guest-" + randSuffix()
	nn := types.NamespacedName{Namespace: ns, Name: name}
	g := newGuestAccess(t, ns)

	login := g.login
	w := g.wukong(ns, name)
	w.Spec.OSImage = image
	w.Spec.StartStrategy = &v1alpha1.StartStrategy{RunStrategy: string(kubevirtv1.RunStrategyManual)}
	create(t, w)
	eventually(t, 2, func(c *assert.CollectT) {
		assertStopped(c, getWukong(c, k, nn))
	}, "the Manual Wukong to be Stopped")

	// virtctl start: virt-api's subresource, through the aggregation layer.
	started := time.Now()
	vmSubresource(t, nn, "start")
	eventually(t, 5, func(c *assert.CollectT) {
		assertRunning(c, getWukong(c, k, nn))
	}, "Wukong %s to be Running after virtctl start", nn)
	w = getWukong(t, k, nn)
	t.Logf("Running %.0f s after start, on %s", time.Since(started).Seconds(), w.Status.NodeName)

	pod := launcherPod(t, nn)
	t.Logf("virt-launcher pod %s (%s), containers %v", pod.Name, pod.Status.PodIP, containerNames(pod))
	if os.Getenv("E2E_LOCAL_NODE") == "1" {
		pid := qemuPID(ns, name)
		require.NotZero(t, pid, "a qemu process for domain %s_%s", ns, name)
		t.Logf("qemu: PID %d", pid)
	}

	// In the guest, over SSH to the pod's address (KubeVirt's masquerade
	// binding forwards it to the guest), as the cloud-init user, with the key.
	ip := pod.Status.PodIP
	require.NotEmpty(t, ip, "the launcher pod's IP")
	hostname := g.waitSSH(t, ip)
	t.Logf("SSH answered %.0f s after start", time.Since(started).Seconds())
	assert.Equal(t, name, hostname, "the guest's hostname is the Wukong's name")
	// cloud-init's final stage may still run under emulation: wait for it.
	var status string
	var err error
	for {
		status, err = guestSSH(ctxT(t), g.keyFile, login, ip, "cloud-init status")
		if !strings.Contains(status, "running") || time.Now().After(g.deadline) {
			break
		}
		time.Sleep(10 * time.Second)
	}
	assert.Equal(t, "status: done", status, "cloud-init status (%v)", err)
	t.Logf("cloud-init done %.0f s after start", time.Since(started).Seconds())
	whoami, err := guestSSH(ctxT(t), g.keyFile, login, ip, "id -un && sudo -n id -un && getent hosts $(hostname)")
	require.NoError(t, err, "in the guest: %s", whoami)
	lines := strings.Split(whoami, "\n")
	if assert.Len(t, lines, 3, "id -un; sudo -n id -un; getent hosts: %q", whoami) {
		assert.Equal(t, login, lines[0], "the cloud-init user")
		assert.Equal(t, "root", lines[1], "its passwordless sudo, with no warning")
		assert.Contains(t, strings.Fields(lines[2]), name, "the hostname resolves in the guest (manage_etc_hosts)")
	}
	t.Logf("in the guest: hostname %s, user %s, sudo, %s", hostname, login, lines[len(lines)-1])

	// virtctl stop.
	vmSubresource(t, nn, "stop")
	eventually(t, 3, func(c *assert.CollectT) {
		assertStopped(c, getWukong(c, k, nn))
		assert.True(c, apierrors.IsNotFound(k.Get(context.Background(), nn, &kubevirtv1.VirtualMachineInstance{})), "the VMI is gone")
	}, "Wukong %s to be Stopped after virtctl stop", nn)
	if os.Getenv("E2E_LOCAL_NODE") == "1" {
		eventually(t, 2, func(c *assert.CollectT) {
			assert.Zero(c, qemuPID(ns, name), "qemu of %s_%s", ns, name)
		}, "qemu to exit after stop")
	}

	// Delete: nothing of the Wukong's stays.
	require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, nn)))
	eventually(t, 3, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, nn)
		assertGone(c, &kubevirtv1.VirtualMachine{}, nn)
		assertGone(c, &kubevirtv1.VirtualMachineInstance{}, nn)
		pods := &corev1.PodList{}
		require.NoError(c, k.List(context.Background(), pods, client.InNamespace(ns)))
		assert.Empty(c, pods.Items, "pods left in %s", ns)
		secrets := &corev1.SecretList{}
		require.NoError(c, k.List(context.Background(), secrets, client.InNamespace(ns)))
		for _, s := range secrets.Items {
			assert.Equal(c, "keys", s.Name, "only the user's own Secret stays")
		}
	}, "everything of Wukong %s to be gone", nn)
}

// guestAccess is how the real-guest tests log in: an ed25519 key whose
// public half is in the Secret secret (the Wukongs' sshKeySecret), the
// cloud-init user login, and the time the guest must answer by.
type guestAccess struct {
	keyFile, secret, login string
	timeout                time.Duration
	deadline               time.Time
}

// wukong is a Wukong in ns the tests log in to: 1 CPU, 1Gi, the access's
// key Secret and cloud-init user (passwordless sudo), and no guest agent
// install (the image ships the agent, and the local cluster's pods reach no
// package mirror: installing would fail cloud-init's final stage). The
// caller adds the boot source (osImage or a boot disk) and the rest.
func (g guestAccess) wukong(ns, name string) *v1alpha1.Wukong {
	return &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.WukongSpec{
			CPU:           1,
			Memory:        resource.MustParse("1Gi"),
			SSHKeySecret:  g.secret,
			CloudInitUser: &v1alpha1.CloudInitUser{Name: g.login, Sudo: "ALL=(ALL) NOPASSWD:ALL", Shell: "/bin/bash"},
			GuestAgent:    &v1alpha1.GuestAgent{Install: ptr.To(false)},
		},
	}
}

// waitRunning polls the Wukong nn every second until it is Running, and
// fails t (after dumping the namespace's Wukongs) past the boot deadline.
func (g guestAccess) waitRunning(t *testing.T, nn types.NamespacedName) {
	t.Helper()
	for {
		c := &assert.CollectT{}
		if assertRunning(c, getWukong(t, k, nn)) {
			return
		}
		if time.Now().After(g.deadline) {
			dumpWukongs(t, nn.Namespace)
			t.Fatalf("Wukong %s not Running within %s", nn, g.timeout)
		}
		time.Sleep(time.Second)
	}
}

// newGuestAccess needs ssh and ssh-keygen, makes the key and the Secret
// "keys" in ns, and starts the boot clock (E2E_BOOT_TIMEOUT, default 15m:
// software emulation, 2 shared cores).
func newGuestAccess(t *testing.T, ns string) guestAccess {
	t.Helper()
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to log in to the guest: %v", tool, err)
		}
	}
	g := guestAccess{keyFile: filepath.Join(t.TempDir(), "id_ed25519"), secret: "keys", login: "ops", timeout: 15 * time.Minute}
	if v := os.Getenv("E2E_BOOT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "E2E_BOOT_TIMEOUT")
		g.timeout = d
	}
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-local", "-f", g.keyFile).CombinedOutput()
	require.NoError(t, err, "ssh-keygen: %s", out)
	pub, err := os.ReadFile(g.keyFile + ".pub")
	require.NoError(t, err)
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: g.secret, Labels: map[string]string{v1alpha1.SSHAuthorizedKeysLabel: "true"}},
		StringData: map[string]string{"e2e": strings.TrimSpace(string(pub))},
	})
	g.deadline = time.Now().Add(g.timeout)
	return g
}

// waitSSH logs in to the guest at ip every 10 s until it answers and
// returns its hostname; past the deadline it fails t.
func (g guestAccess) waitSSH(t *testing.T, ip string) string {
	t.Helper()
	for {
		hostname, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "hostname")
		if err == nil {
			return hostname
		}
		if time.Now().After(g.deadline) {
			t.Fatalf("no SSH into the guest at %s within %s: %v: %s", ip, g.timeout, err, hostname)
		}
		time.Sleep(10 * time.Second)
	}
}

// vmSubresource PUTs virt-api's VirtualMachine subresource (start, stop,
// restart) as virtctl does: subresources.kubevirt.io/v1, an empty JSON body.
func vmSubresource(t *testing.T, nn types.NamespacedName, verb string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(restConfig)
	require.NoError(t, err)
	path := fmt.Sprintf("/apis/subresources.kubevirt.io/v1/namespaces/%s/virtualmachines/%s/%s", nn.Namespace, nn.Name, verb)
	res := cs.CoreV1().RESTClient().Put().AbsPath(path).SetHeader("Content-Type", "application/json").Body([]byte("{}")).Do(ctxT(t))
	require.NoError(t, res.Error(), "PUT %s", path)
}

// launcherPod is the one virt-launcher pod of the VM nn that has not
// ended: after a live migration the source pod stays, Succeeded, until
// KubeVirt's garbage collection.
func launcherPod(t *testing.T, nn types.NamespacedName) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, 2, func(c *assert.CollectT) {
		pods := &corev1.PodList{}
		require.NoError(c, k.List(context.Background(), pods, client.InNamespace(nn.Namespace),
			client.MatchingLabels{kubevirtv1.AppLabel: "virt-launcher"}))
		var own []corev1.Pod // controlled by the VMI nn
		for _, p := range pods.Items {
			if ref := metav1.GetControllerOf(&p); ref != nil && ref.Kind == "VirtualMachineInstance" && ref.Name == nn.Name && p.DeletionTimestamp == nil &&
				p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				own = append(own, p)
			}
		}
		if assert.Len(c, own, 1, "virt-launcher pods of VMI %s", nn) {
			assert.Equal(c, corev1.PodRunning, own[0].Status.Phase)
			pod = &own[0]
		}
	}, "the virt-launcher pod of %s", nn)
	return pod
}

func containerNames(p *corev1.Pod) []string {
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	return names
}

// qemuPID is the PID of the qemu process libvirt started for domain
// <namespace>_<name> (KubeVirt's domain name), or 0.
func qemuPID(ns, name string) int {
	matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil || !bytes.HasPrefix(b, []byte("/usr/bin/qemu-system")) {
			continue
		}
		if bytes.Contains(b, []byte("guest="+ns+"_"+name+",")) {
			var pid int
			_, _ = fmt.Sscanf(m, "/proc/%d/cmdline", &pid)
			return pid
		}
	}
	return 0
}

// guestSSH runs command in the guest as user, with the key only.
func guestSSH(ctx context.Context, keyFile, user, host, command string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "ssh", "-i", keyFile, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "ConnectTimeout=10", user+"@"+host, command)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

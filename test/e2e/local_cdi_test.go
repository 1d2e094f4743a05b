package e2e_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// The real-CDI check of make e2e-local (issue 21): a Wukong whose boot disk
// real CDI imports over HTTP from the image server make local-cluster-up
// runs on the node (bin/cdi/manifests/image-server.yaml: hostNetwork, port
// 18080, the guest disk of make guest-image as /guest.qcow2) into a
// local-path volume, then real KubeVirt boots it.

// imageServerPort is the port of bin/cdi/manifests/image-server.yaml.
const imageServerPort = 18080

// realCDI skips t unless the cluster runs CDI itself (its CDI CR is
// Deployed) and serves the image server; it returns the guest disk's URL.
func realCDI(t *testing.T) string {
	t.Helper()
	if !serves(t, kindDataVolume) {
		t.Skip("the cluster does not serve CDI's DataVolume: make cdi-images, then make local-cluster-up installs it")
	}
	cdis := &cdiv1.CDIList{}
	require.NoError(t, k.List(ctxT(t), cdis))
	deployed := false
	for _, c := range cdis.Items {
		deployed = deployed || c.Status.Phase == "Deployed"
	}
	if !deployed {
		t.Skipf("no CDI CR is Deployed (%d found)", len(cdis.Items))
	}
	pods := &corev1.PodList{}
	require.NoError(t, k.List(ctxT(t), pods, client.InNamespace("wukong-images"), client.MatchingLabels{"app": "image-server"}))
	var ip string
	for _, p := range pods.Items {
		if podReady(&p) {
			ip = p.Status.HostIP
		}
	}
	if ip == "" {
		t.Skip("no Ready image server in namespace wukong-images (bin/cdi/manifests/image-server.yaml)")
	}
	return "http://" + ip + ":" + strconv.Itoa(imageServerPort) + "/guest.qcow2"
}

// progressRe is CDI's DataVolume status.progress as seen on a real CDI
// v1.65.0: a percentage ("45.27%", "100.0%"), or N/A.
var progressRe = regexp.MustCompile(`^(\d{1,3}(\.\d+)?%|N/A)$`)

// TestLocalCDIImportBoot: a Wukong with a 3Gi boot disk imported by real
// CDI from http://<node>:18080/guest.qcow2 (a 1.5 GiB qcow2) reaches
// Running under real KubeVirt; on the way its status shows the disk's
// phase and CDI's import progress; then it is Bound at its size, and in
// the guest (SSH as TestLocalKubeVirtGuest) the root disk and filesystem
// have grown past the image's 1.5 GiB.
func TestLocalCDIImportBoot(t *testing.T) {
	realKubeVirt(t)
	url := realCDI(t)
	ns := newNamespace(t)
	name := "cdi-" + randSuffix()
	nn := types.NamespacedName{Namespace: ns, Name: name}
	g := newGuestAccess(t, ns)
	bootTimeout, deadline := g.timeout, g.deadline

	login := g.login
	size := resource.MustParse("3Gi")
	w := g.wukong(ns, name)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: size, Boot: true, Image: url}}
	create(t, w)

	// Until Running: every disk phase and progress the status showed.
	started := time.Now()
	phases := map[string]bool{}
	var progresses []string
	var imported time.Duration
	for {
		w := getWukong(t, k, nn)
		if v := volumeStatus(w, "root"); v != nil {
			phases[v.Phase] = true
			if v.Progress != "" && (len(progresses) == 0 || progresses[len(progresses)-1] != v.Progress) {
				progresses = append(progresses, v.Progress)
				assert.Regexp(t, progressRe, v.Progress, "status.volumes[root].progress")
			}
			if v.Phase == "Bound" && imported == 0 {
				imported = time.Since(started)
			}
		}
		c := &assert.CollectT{}
		if assertRunning(c, w) {
			break
		}
		if time.Now().After(deadline) {
			dumpWukongs(t, ns)
			t.Fatalf("Wukong %s not Running within %s; disk phases seen %v, progress %v", nn, bootTimeout, phases, progresses)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("Running %.0f s after create (disk Bound after %.0f s); disk phases seen %v; progress %v",
		time.Since(started).Seconds(), imported.Seconds(), phases, progresses)
	assert.True(t, phases["Importing"], "the status showed the disk Importing (phases seen %v)", phases)
	assert.NotEmpty(t, progresses, "the status showed CDI's import progress")
	w = getWukong(t, k, nn)
	if v := volumeStatus(w, "root"); assert.NotNil(t, v, "status.volumes[root]") {
		assert.True(t, v.Bound, "root bound")
		assert.Equal(t, "Bound", v.Phase, "root phase")
		assert.NotEmpty(t, v.PVCName, "root pvcName")
		if q, err := resource.ParseQuantity(v.Size); assert.NoError(t, err, "root size %q", v.Size) {
			assert.GreaterOrEqual(t, q.Cmp(size), 0, "root size %s >= %s", v.Size, size.String())
		}
		dv := &cdiv1.DataVolume{}
		require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: v.PVCName}, dv), "DataVolume %s", v.PVCName)
		assert.Equal(t, cdiv1.Succeeded, dv.Status.Phase, "DataVolume phase")
		if assert.NotNil(t, dv.Spec.Source, "DataVolume source") && assert.NotNil(t, dv.Spec.Source.HTTP, "DataVolume http source") {
			assert.Equal(t, url, dv.Spec.Source.HTTP.URL, "DataVolume source URL")
		}
	}

	pod := launcherPod(t, nn)
	ip := pod.Status.PodIP
	require.NotEmpty(t, ip, "the launcher pod's IP")
	hostname := g.waitSSH(t, ip)
	t.Logf("SSH answered %.0f s after create", time.Since(started).Seconds())
	assert.Equal(t, name, hostname, "the guest's hostname is the Wukong's name")

	// The imported disk is the root disk, grown to the claim (cloud-init's
	// growpart and resizefs run at boot): larger than the image's 1.5 GiB.
	const imageBytes = 1610612736
	for {
		sizes, err := guestSSH(ctxT(t), g.keyFile, login, ip, "lsblk -bndo SIZE /dev/vda && df -B1 --output=size / | tail -1 && findmnt -no SOURCE /")
		f := strings.Fields(sizes)
		if err == nil && len(f) == 3 {
			disk, _ := strconv.ParseInt(f[0], 10, 64)
			fs, _ := strconv.ParseInt(f[1], 10, 64)
			if fs > imageBytes || time.Now().After(deadline) {
				t.Logf("in the guest: /dev/vda %d bytes, / %d bytes on %s", disk, fs, f[2])
				assert.Greater(t, disk, int64(imageBytes), "/dev/vda is larger than the image")
				assert.Greater(t, fs, int64(imageBytes), "/ has grown past the image's size")
				assert.True(t, strings.HasPrefix(f[2], "/dev/vda"), "/ is on the imported disk: %s", f[2])
				break
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("lsblk/df in the guest: %v: %q", err, sizes)
		}
		time.Sleep(10 * time.Second)
	}

	require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, nn)))
	eventually(t, 3, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, nn)
		assertGone(c, &cdiv1.DataVolume{}, types.NamespacedName{Namespace: ns, Name: volumeStatusName(w)})
	}, "Wukong %s and its DataVolume to be gone", nn)
}

// volumeStatusName is the root disk's claim name in w's status, or "".
func volumeStatusName(w *v1alpha1.Wukong) string {
	if v := volumeStatus(w, "root"); v != nil {
		return v.PVCName
	}
	return ""
}

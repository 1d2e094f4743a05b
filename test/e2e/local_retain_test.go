package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestLocalRetainedDiskKeepsData (issue 31, make e2e-local): a guest
// writes a file to its boot disk (deletionPolicy Retain, imported by real
// CDI); its Wukong is deleted (real garbage collector, real KubeVirt and
// CDI); a new Wukong boots from the kept claim through claimName, and IN
// THE GUEST the file is there with its content.
func TestLocalRetainedDiskKeepsData(t *testing.T) {
	realKubeVirt(t)
	url := realCDI(t)
	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	first := types.NamespacedName{Namespace: ns, Name: "keep-" + randSuffix()}
	second := types.NamespacedName{Namespace: ns, Name: "reuse-" + randSuffix()}
	claim := types.NamespacedName{Namespace: ns, Name: first.Name + "-root"}
	const file = "/var/lib/wukong-retain-check"
	content := "kept-" + randSuffix()

	w := g.wukong(ns, first.Name)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, Image: url, DeletionPolicy: v1alpha1.DiskDeletionPolicyRetain}}
	create(t, w)
	started := time.Now()
	ip := g.bootAndSSH(t, first).Status.PodIP
	t.Logf("%s: SSH answered %.0f s after create", first.Name, time.Since(started).Seconds())
	out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, fmt.Sprintf("echo %s | sudo tee %s >/dev/null && sync && sudo cat %s", content, file, file))
	require.NoError(t, err, "writing %s: %s", file, out)
	require.Equal(t, content, strings.TrimSpace(out))

	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), claim, pvc))
	pv := pvc.Spec.VolumeName
	require.NotEmpty(t, pv, "the claim's volume")

	deleted := time.Now()
	require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, first)))
	eventually(t, 3, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, first)
		assertGone(c, &kubevirtv1.VirtualMachine{}, first)
		assertGone(c, &cdiv1.DataVolume{}, claim)
	}, "Wukong %s, its VM and DataVolume to be gone", first)
	kept := &corev1.PersistentVolumeClaim{}
	require.NoError(t, k.Get(ctxT(t), claim, kept), "the Retain disk's claim is kept")
	assert.Equal(t, pvc.UID, kept.UID)
	assert.Empty(t, kept.OwnerReferences)
	assert.Equal(t, first.Name, kept.Labels[labelRetainedFromWukong])
	assert.Equal(t, pv, kept.Spec.VolumeName, "still bound to its volume")
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: pv}, &corev1.PersistentVolume{}), "the volume is kept")
	t.Logf("%s deleted in %.0f s; claim %s kept on volume %s", first.Name, time.Since(deleted).Seconds(), claim.Name, pv)

	w = g.wukong(ns, second.Name)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", ClaimName: claim.Name, Boot: true}}
	create(t, w)
	g.deadline = time.Now().Add(g.timeout)
	started = time.Now()
	ip = g.bootAndSSH(t, second).Status.PodIP
	t.Logf("%s: SSH answered %.0f s after create", second.Name, time.Since(started).Seconds())
	out, err = guestSSH(ctxT(t), g.keyFile, g.login, ip, "sudo cat "+file)
	require.NoError(t, err, "reading %s: %s", file, out)
	assert.Equal(t, content, strings.TrimSpace(out), "the file written by the first guest, read by the second")

	require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, second)))
	eventually(t, 3, func(c *assert.CollectT) { assertGone(c, &v1alpha1.Wukong{}, second) }, "Wukong %s to be gone", second)
	require.NoError(t, k.Get(ctxT(t), claim, kept), "a claimName claim outlives the Wukong using it")
	assert.Nil(t, kept.DeletionTimestamp)
	// The namespace's deletion at the end of the test deletes the claim.
}

// bootAndSSH waits for the Wukong to be Running and its guest to answer
// SSH on the launcher pod's IP; it returns the launcher pod.
func (g guestAccess) bootAndSSH(t *testing.T, nn types.NamespacedName) *corev1.Pod {
	t.Helper()
	g.waitRunning(t, nn)
	pod := launcherPod(t, nn)
	require.NotEmpty(t, pod.Status.PodIP, "the launcher pod's IP")
	g.waitSSH(t, pod.Status.PodIP)
	return pod
}

// bootImageDisk creates the Wukong name in ns that g logs in to, with a
// 3Gi boot disk CDI imports from url, and waits until its guest answers
// SSH; it returns the Wukong's key and its launcher pod.
func (g guestAccess) bootImageDisk(t *testing.T, ns, name, url string) (types.NamespacedName, *corev1.Pod) {
	t.Helper()
	w := g.wukong(ns, name)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, Image: url}}
	create(t, w)
	nn := types.NamespacedName{Namespace: ns, Name: name}
	return nn, g.bootAndSSH(t, nn)
}

package e2e_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// privateImageServerPort is the port of the image server the private-CA
// check starts next to make local-cluster-up's (host network).
const privateImageServerPort = 18443

// TestLocalImageBehindPrivateCAAndLogin is issue 33's item 4 on real CDI:
// the test starts a second image server (the same image, host network,
// HTTPS on port 18443 with a certificate of a CA it just made, basic
// authentication against a Secret of CDI's secretRef shape). A Wukong whose
// boot disk is imported from it is
//  1. Stalled (ImportFailed) naming spec.disks[0].imageAccess.certConfigMap,
//     quoting real CDI's x509 error, without the CA;
//  2. Stalled naming spec.disks[0].imageAccess.secretRef, quoting the 401,
//     with the CA but without the login;
//  3. Running with both, the guest booted from the imported disk (SSH,
//     hostname), the DataVolume naming the ConfigMap and the Secret.
//
// Registry logins (docker:// with secretRef) are not checked here: the
// machine has no registry to run.
func TestLocalImageBehindPrivateCAAndLogin(t *testing.T) {
	realKubeVirt(t)
	realCDI(t)
	ctx := ctxT(t)
	server := startPrivateImageServer(t)
	url := "https://" + net.JoinHostPort(server.ip, strconv.Itoa(privateImageServerPort)) + "/guest.qcow2"

	ns := newNamespace(t)
	g := newGuestAccess(t, ns)
	name := "private-" + randSuffix()
	nn := types.NamespacedName{Namespace: ns, Name: name}
	w := g.wukong(ns, name)
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, Image: url}}
	create(t, w)
	started := time.Now()

	waitStalledOn(t, nn, v1alpha1.VolumesBoundCondition, v1alpha1.ReasonImportFailed,
		"spec.disks[0].imageAccess.certConfigMap", "x509")
	t.Logf("without the CA: Stalled after %.0f s: %s", time.Since(started).Seconds(),
		cond(getWukong(t, k, nn), v1alpha1.StalledCondition).Message)

	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp-ca"},
		Data: map[string]string{"ca.pem": string(server.caPEM)}})
	updateWukong(t, nn, func(w *v1alpha1.Wukong) {
		w.Spec.Disks[0].ImageAccess = &v1alpha1.ImageAccess{CertConfigMap: "corp-ca"}
	})
	started = time.Now()
	waitStalledOn(t, nn, v1alpha1.VolumesBoundCondition, v1alpha1.ReasonImportFailed,
		"spec.disks[0].imageAccess.secretRef", "401")
	t.Logf("with the CA, without the login: Stalled after %.0f s: %s", time.Since(started).Seconds(),
		cond(getWukong(t, k, nn), v1alpha1.StalledCondition).Message)

	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "image-login"},
		Data: map[string][]byte{"accessKeyId": []byte(server.user), "secretKey": []byte(server.password)}})
	updateWukong(t, nn, func(w *v1alpha1.Wukong) {
		w.Spec.Disks[0].ImageAccess.SecretRef = "image-login"
	})
	started = time.Now()
	g.waitRunning(t, nn)
	t.Logf("with the CA and the login: Running after %.0f s", time.Since(started).Seconds())

	live := getWukong(t, k, nn)
	v := volumeStatus(live, "root")
	require.NotNil(t, v, "status.volumes[root]")
	dv := &cdiv1.DataVolume{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: ns, Name: v.PVCName}, dv))
	assert.Equal(t, cdiv1.Succeeded, dv.Status.Phase, "the DataVolume's import")
	if assert.NotNil(t, dv.Spec.Source.HTTP, "http source") {
		assert.Equal(t, url, dv.Spec.Source.HTTP.URL)
		assert.Equal(t, "corp-ca", dv.Spec.Source.HTTP.CertConfigMap, "CDI's certConfigMap")
		assert.Equal(t, "image-login", dv.Spec.Source.HTTP.SecretRef, "CDI's secretRef")
	}
	hostname := g.waitSSH(t, launcherPod(t, nn).Status.PodIP)
	assert.Equal(t, name, hostname, "the guest booted from the disk imported over HTTPS with a login")
	t.Logf("SSH answered %.0f s after the login was given", time.Since(started).Seconds())
}

// privateImageServer is the HTTPS image server with a login the test runs.
type privateImageServer struct {
	ip             string // the node's IP (host network)
	caPEM          []byte // the CA that signed its certificate
	user, password string
}

// startPrivateImageServer runs the image server of make local-cluster-up's
// image (hack/image-server: -tls-cert, -tls-key, -auth-dir) as a second
// Deployment in wukong-images on the node of the first, with a certificate
// for that node's IP signed by a new CA and a login; all of it is deleted
// when t ends.
func startPrivateImageServer(t *testing.T) privateImageServer {
	t.Helper()
	ctx := ctxT(t)
	const imagesNS = "wukong-images"
	pods := &corev1.PodList{}
	require.NoError(t, k.List(ctx, pods, client.InNamespace(imagesNS), client.MatchingLabels{"app": "image-server"}))
	var first *corev1.Pod
	for i := range pods.Items {
		if podReady(&pods.Items[i]) {
			first = &pods.Items[i]
		}
	}
	require.NotNil(t, first, "a Ready image server in %s", imagesNS)
	s := privateImageServer{ip: first.Status.HostIP, user: "robot", password: "e2e-" + randSuffix()}
	ip := net.ParseIP(s.ip)
	require.NotNil(t, ip, "the image server's host IP %q", s.ip)

	caPEM, certPEM, keyPEM, err := sandbox.ServingCert("image-server-private", []net.IP{ip}, nil)
	require.NoError(t, err)
	s.caPEM = caPEM

	name := "image-server-private"
	tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: imagesNS, Name: name + "-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       certPEM,
			corev1.TLSPrivateKeyKey: keyPEM,
		}}
	login := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: imagesNS, Name: name + "-login"},
		Data: map[string][]byte{"accessKeyId": []byte(s.user), "secretKey": []byte(s.password)}}
	labels := map[string]string{"app": name}
	mount := func(vol, path string) corev1.VolumeMount {
		return corev1.VolumeMount{Name: vol, MountPath: path, ReadOnly: true}
	}
	secretVolume := func(vol, secret string) corev1.Volume {
		return corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
	}
	c := first.Spec.Containers[0]
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: imagesNS, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:  true,
					NodeSelector: map[string]string{corev1.LabelHostname: first.Spec.NodeName},
					Containers: []corev1.Container{{
						Name: "image-server", Image: c.Image, ImagePullPolicy: corev1.PullIfNotPresent,
						Args: []string{"-addr", ":" + strconv.Itoa(privateImageServerPort),
							"-tls-cert", "/tls/tls.crt", "-tls-key", "/tls/tls.key", "-auth-dir", "/login"},
						ReadinessProbe: &corev1.Probe{PeriodSeconds: 2, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstr.FromInt32(privateImageServerPort), Scheme: corev1.URISchemeHTTPS}}},
						VolumeMounts:    []corev1.VolumeMount{mount("tls", "/tls"), mount("login", "/login")},
						SecurityContext: c.SecurityContext,
					}},
					Volumes: []corev1.Volume{secretVolume("tls", tlsSecret.Name), secretVolume("login", login.Name)},
				},
			},
		},
	}
	for _, obj := range []client.Object{tlsSecret, login, dep} {
		require.NoError(t, k.Create(ctx, obj), "%T %s", obj, obj.GetName())
		t.Cleanup(func() { _ = k.Delete(context.Background(), obj) })
	}
	eventually(t, 2, func(c *assert.CollectT) {
		live := &appsv1.Deployment{}
		require.NoError(c, k.Get(context.Background(), client.ObjectKeyFromObject(dep), live))
		assert.Equal(c, int32(1), live.Status.ReadyReplicas, "Deployment %s ready", name)
	}, "the private image server to be Ready")
	return s
}

package e2e_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/manager"
)

// Checks that only a real cluster with the chart installed can answer (make
// e2e-local against make local-cluster-up, or any E2E_KUBECONFIG cluster):
// the pod the kubelet runs, the Lease leader election holds, the metrics
// endpoint's authentication, what a Wukong says where KubeVirt, CDI and
// Multus are absent, and helm upgrade/uninstall. In the sandbox (the
// manager runs in-process, no chart, no kubelet) they skip.
//
// Environment (set by make e2e-local):
//
//	E2E_RELEASE, E2E_RELEASE_NAMESPACE  the chart's release (default wukong in wukong-system)
//	E2E_HELM, E2E_CHART                 the helm binary and chart directory for TestLocalHelmUpgradeUninstall

// leaseName is the manager's leader election Lease (manager.Options'
// default LeaderElectionID; the chart does not change it).
const leaseName = "wukong.vm.novasphere.dev"

type release struct{ name, namespace, fullname string }

// chartRelease skips t in the sandbox and returns the release under test,
// failing when its manager Deployment is not there.
func chartRelease(t *testing.T) release {
	t.Helper()
	if inSandbox {
		t.Skip("needs a real cluster with the chart installed (E2E_KUBECONFIG, e.g. make local-cluster-up && make e2e-local); the sandbox runs the manager in-process")
	}
	r := release{name: envOr("E2E_RELEASE", "wukong"), namespace: envOr("E2E_RELEASE_NAMESPACE", "wukong-system")}
	r.fullname = r.name
	if !strings.Contains(r.name, "wukong") {
		r.fullname = r.name + "-wukong"
	}
	return r
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// managerPod waits for the release's one Running manager pod and returns it.
func managerPod(t *testing.T, r release) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, 2, func(c *assert.CollectT) {
		pods := &corev1.PodList{}
		require.NoError(c, k.List(context.Background(), pods, client.InNamespace(r.namespace),
			client.MatchingLabels{"app.kubernetes.io/instance": r.name, "app.kubernetes.io/component": "manager"}))
		var running []corev1.Pod
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running = append(running, p)
			}
		}
		if assert.Len(c, running, 1, "Running manager pods of release %s/%s", r.namespace, r.name) {
			pod = &running[0]
		}
	}, "the manager pod of release %s/%s", r.namespace, r.name)
	return pod
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestLocalManagerPodRestricted: the kubelet runs the manager non-root with
// a read-only root filesystem in a namespace enforcing Pod Security
// "restricted", and its probes pass (Ready, never restarted but with the
// node, or by its own choice when a CRD it did not watch was installed:
// exit code manager.ExitKindInstalled).
func TestLocalManagerPodRestricted(t *testing.T) {
	r := chartRelease(t)
	ns := &corev1.Namespace{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: r.namespace}, ns))
	assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"], "namespace %s enforces Pod Security restricted", r.namespace)

	var pod *corev1.Pod
	eventually(t, 2, func(c *assert.CollectT) {
		pod = managerPod(t, r)
		assert.True(c, podReady(pod), "pod %s Ready (readiness probe /readyz passed)", pod.Name)
	}, "the manager pod to be Ready")
	require.Len(t, pod.Spec.Containers, 1)
	ctr := pod.Spec.Containers[0]
	require.NotNil(t, ctr.ReadinessProbe, "readiness probe")
	require.NotNil(t, ctr.LivenessProbe, "liveness probe")
	require.Len(t, pod.Status.ContainerStatuses, 1)
	st := pod.Status.ContainerStatuses[0]
	assert.True(t, st.Ready, "container ready")
	if st.RestartCount > 0 {
		// A node restarted by make local-cluster-down/up (etcd keeps the pod)
		// restarts the container in a new sandbox: PodReadyToStartContainers
		// turned True after the last run ended. A crash or a failed liveness
		// probe restarts it in the same sandbox, which this refuses.
		last := st.LastTerminationState.Terminated
		var sandbox *corev1.PodCondition
		for i := range pod.Status.Conditions {
			if pod.Status.Conditions[i].Type == corev1.PodReadyToStartContainers {
				sandbox = &pod.Status.Conditions[i]
			}
		}
		planned := last != nil && last.ExitCode == manager.ExitKindInstalled
		if planned {
			t.Logf("restarted %d times, the last to watch a new CRD: %q", st.RestartCount, last.Message)
			assert.Contains(t, last.Message, "CRD", "the termination message says why")
		}
		if !planned && assert.NotNil(t, last, "restarted %d times: the last termination", st.RestartCount) &&
			assert.NotNil(t, sandbox, "condition PodReadyToStartContainers") {
			assert.False(t, sandbox.LastTransitionTime.Before(&last.FinishedAt),
				"the container restarted (%d) in the same sandbox: its last run ended %s (%s, exit %d) after the sandbox started %s: a crash or a failed liveness probe, not a node restart",
				st.RestartCount, last.FinishedAt, last.Reason, last.ExitCode, sandbox.LastTransitionTime)
		}
	}
	require.NotNil(t, st.State.Running, "container running")

	psc, sc := pod.Spec.SecurityContext, ctr.SecurityContext
	require.NotNil(t, psc)
	require.NotNil(t, sc)
	assert.Equal(t, ptrTo(true), psc.RunAsNonRoot, "pod runAsNonRoot")
	assert.Equal(t, ptrTo(int64(65532)), psc.RunAsUser, "pod runAsUser")
	assert.Equal(t, ptrTo(true), sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem")
	assert.Equal(t, ptrTo(false), sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation")
	if assert.NotNil(t, sc.Capabilities) {
		assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "capabilities dropped")
	}

	// The enforcement is live: the same pod without its security settings
	// is refused by the API server (a server-side dry run creates nothing).
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.namespace, Name: "e2e-psa-probe-" + randSuffix()},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: ctr.Image}}},
	}
	err := k.Create(ctxT(t), bad, client.DryRunAll)
	require.Error(t, err, "a pod without runAsNonRoot/seccomp/capabilities must be refused in %s", r.namespace)
	assert.True(t, apierrors.IsForbidden(err), "refused as Forbidden: %v", err)
	assert.Contains(t, err.Error(), "restricted", "refused by Pod Security restricted")
}

// TestLocalLeaderElectionLease: the manager holds a coordination.k8s.io
// Lease in the release namespace and keeps renewing it.
func TestLocalLeaderElectionLease(t *testing.T) {
	r := chartRelease(t)
	pod := managerPod(t, r)
	lease := &coordinationv1.Lease{}
	nn := types.NamespacedName{Namespace: r.namespace, Name: leaseName}
	eventually(t, 2, func(c *assert.CollectT) {
		require.NoError(c, k.Get(context.Background(), nn, lease))
		require.NotNil(c, lease.Spec.HolderIdentity)
		// controller-runtime's identity: <hostname>_<uuid>; the hostname is the pod name.
		assert.True(c, strings.HasPrefix(*lease.Spec.HolderIdentity, pod.Name+"_"), "holder %q is pod %s", *lease.Spec.HolderIdentity, pod.Name)
	}, "Lease %s held by the manager pod", nn)
	require.NotNil(t, lease.Spec.RenewTime)
	first := lease.Spec.RenewTime.Time
	eventually(t, 1, func(c *assert.CollectT) {
		l := &coordinationv1.Lease{}
		require.NoError(c, k.Get(context.Background(), nn, l))
		require.NotNil(c, l.Spec.RenewTime)
		assert.True(c, l.Spec.RenewTime.After(first), "renewTime %s after %s", l.Spec.RenewTime.Time, first)
	}, "the leader to renew Lease %s", nn)
}

// TestLocalMetricsAuthenticated: /metrics answers 401 without a token, 403
// for a ServiceAccount without the metrics-reader ClusterRole, and 200 with
// the reconcilers' metrics once it is bound.
func TestLocalMetricsAuthenticated(t *testing.T) {
	r := chartRelease(t)
	pod := managerPod(t, r)
	port := int32(0)
	for _, p := range pod.Spec.Containers[0].Ports {
		if p.Name == "https" {
			port = p.ContainerPort
		}
	}
	require.NotZero(t, port, "the manager serves metrics (container port https)")
	addr := net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(port))
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Skipf("pod IP %s is not reachable from this machine (%v): this check runs on the node, as with make e2e-local", addr, err)
	}
	_ = conn.Close()
	// The endpoint's certificate is self-signed (controller-runtime makes one
	// when no cert dir is given); what is checked here is authentication.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed by design, see above
	get := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, "https://"+addr+"/metrics", nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, _ := get("")
	assert.Equal(t, http.StatusUnauthorized, code, "no token")
	// An invalid token is refused too, but as 500: controller-runtime's
	// filter answers any authentication error so (v0.25.2
	// pkg/metrics/filters/filters.go: "Authentication failed"); found on
	// the local cluster, the sandbox has no metrics endpoint.
	code, _ = get("not-a-token")
	assert.Contains(t, []int{http.StatusUnauthorized, http.StatusInternalServerError}, code, "an invalid token is refused")

	ns := newNamespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scraper"}}
	create(t, sa)
	cs, err := kubernetes.NewForConfig(restConfig)
	require.NoError(t, err)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctxT(t), sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(600))},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	code, _ = get(tr.Status.Token)
	assert.Equal(t, http.StatusForbidden, code, "a ServiceAccount without the metrics-reader ClusterRole")

	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.fullname + "-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa.Name}},
	}
	create(t, crb)
	t.Cleanup(func() { _ = k.Delete(context.Background(), crb) })
	// The manager caches the SubjectAccessReview's denial for a while
	// (about 30 s here), so the binding takes effect after that.
	start := time.Now()
	eventually(t, 1, func(c *assert.CollectT) {
		code, body := get(tr.Status.Token)
		if assert.Equal(c, http.StatusOK, code, "bound to %s-metrics-reader", r.fullname) {
			// controller-runtime initializes every controller's series at start.
			assert.Contains(c, body, `controller_runtime_reconcile_total{controller="`, "the reconcilers' metrics")
		}
	}, "the metrics endpoint to accept the bound ServiceAccount")
	t.Logf("the binding took effect after %s", time.Since(start).Round(time.Second))
}

// TestLocalMissingProjects: where KubeVirt, CDI and Multus are not
// installed, a Wukong that needs one says which, in its conditions, with
// the reason the operator documents (operator/api/v1alpha1/conditions.go).
func TestLocalMissingProjects(t *testing.T) {
	chartRelease(t)
	ns := newNamespace(t)
	// A StorageClass whose PVCs wait for their first consumer: the disk
	// step then lets the machine step run, which needs KubeVirt.
	class := "e2e-wffc-" + randSuffix()
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: class, Labels: map[string]string{"e2e.novasphere.dev/suite": "true"}},
		Provisioner:       "kubernetes.io/no-provisioner",
		VolumeBindingMode: &wffc,
	}
	create(t, sc)
	t.Cleanup(func() { _ = k.Delete(context.Background(), sc) })

	cases := []struct {
		name, project string
		kind          schema.GroupVersionKind // whose absence is reported
		mutate        func(*v1alpha1.Wukong)
		reason, text  string
	}{
		{"nokubevirt", "KubeVirt", kindVirtualMachine, func(w *v1alpha1.Wukong) {
			w.Spec.Disks[0].StorageClassName = class
		}, v1alpha1.ReasonKubeVirtMissing, "KubeVirt is not installed"},
		{"nocdi", "CDI", kindDataVolume, func(w *v1alpha1.Wukong) {
			w.Spec.Disks[0].StorageClassName = class
			w.Spec.Disks[0].Image = testImage
		}, v1alpha1.ReasonCDIMissing, "CDI"},
		{"nomultus", "Multus", kindNAD, func(w *v1alpha1.Wukong) {
			w.Spec.Disks[0].StorageClassName = class
			w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", NADName: "lan-net"}}
		}, v1alpha1.ReasonNADNotFound, "Multus is not installed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if serves(t, tc.kind) {
				t.Skipf("%s is installed on this cluster", tc.project)
			}
			w := newWukong(ns, tc.name)
			tc.mutate(w)
			create(t, w)
			eventually(t, 2, func(c *assert.CollectT) {
				w := getWukong(c, k, key(w))
				assert.Equal(c, w.Generation, w.Status.ObservedGeneration, "observedGeneration")
				assert.Equal(c, metav1.ConditionFalse, condStatus(w, v1alpha1.ReadyCondition), "Ready")
				i := slices.IndexFunc(w.Status.Conditions, func(cd metav1.Condition) bool { return cd.Reason == tc.reason })
				if assert.GreaterOrEqual(c, i, 0, "a condition with reason %s in %+v", tc.reason, w.Status.Conditions) {
					assert.Contains(c, w.Status.Conditions[i].Message, tc.text, "condition %s", w.Status.Conditions[i].Type)
				}
			}, "Wukong %s to say %s is missing", tc.name, tc.project)
		})
	}
}

// TestLocalHelmUpgradeUninstall: `helm upgrade` rolls a changed value out
// to a new Ready manager; `helm uninstall` removes the manager and keeps
// the Wukong CRD (crds.keep); installing again with the same values adopts
// the kept CRD. Runs last in this file: it replaces the manager pod.
func TestLocalHelmUpgradeUninstall(t *testing.T) {
	r := chartRelease(t)
	helm, chart := os.Getenv("E2E_HELM"), os.Getenv("E2E_CHART")
	if helm == "" || chart == "" {
		t.Skip("E2E_HELM (a helm binary) and E2E_CHART (charts/wukong) are not set; make e2e-local sets them")
	}
	run := func(args ...string) string { return helmRun(t, r, args...) }
	before := managerPod(t, r)
	values := filepath.Join(t.TempDir(), "values.yaml")
	require.NoError(t, os.WriteFile(values, []byte(run("get", "values", r.name, "--output", "yaml")), 0o600))

	run("upgrade", r.name, chart, "--reuse-values", "--set", "concurrency=2", "--wait", "--timeout", "3m")
	after := managerPod(t, r)
	assert.NotEqual(t, before.UID, after.UID, "the upgrade replaced the manager pod")
	assert.Contains(t, after.Spec.Containers[0].Args, "--concurrency=2", "the new value reached the manager")
	assert.True(t, podReady(after), "the upgraded manager is Ready")
	assert.Contains(t, run("history", r.name, "--max", "1"), "deployed")

	run("uninstall", r.name, "--wait", "--timeout", "3m")
	eventually(t, 2, func(c *assert.CollectT) {
		pods := &corev1.PodList{}
		require.NoError(c, k.List(context.Background(), pods, client.InNamespace(r.namespace),
			client.MatchingLabels{"app.kubernetes.io/instance": r.name}))
		assert.Empty(c, pods.Items, "manager pods after uninstall")
	}, "helm uninstall to remove the manager")
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: "wukongs.vm.novasphere.dev"}, crd), "helm uninstall keeps the Wukong CRD")
	assert.Equal(t, "keep", crd.GetAnnotations()["helm.sh/resource-policy"])

	// Back as it was, for whatever runs after.
	run("install", r.name, chart, "--values", values, "--wait", "--timeout", "3m")
	assert.True(t, podReady(managerPod(t, r)), "the reinstalled manager is Ready")
}

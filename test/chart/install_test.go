package chart

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/manager"
)

const (
	releaseName = "wukong"
	releaseNS   = "wukong-system"
	crdName     = "wukongs.vm.novasphere.dev"
	saUser      = "system:serviceaccount:" + releaseNS + ":wukong"
)

// TestLifecycle installs the chart into a namespace enforcing the restricted
// Pod Security level, runs the manager with the chart's ServiceAccount,
// checks its RBAC, upgrades, uninstalls (the CRD and Wukongs are kept),
// reinstalls over the kept CRD and uninstalls with crds.keep=false.
func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	c := env.Client
	w := &warnings{}
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNS, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
		"pod-security.kubernetes.io/audit":   "restricted",
	}}}))
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vms"}}))
	cfg := helmConfig(t, env.Config, releaseNS, w)

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"warnings are captured", func(t *testing.T) {
			// The recorder must see Pod Security warnings, or the install
			// check below proves nothing: a bare Deployment violates restricted.
			wc, err := client.New(newRESTGetterConfig(w), client.Options{Scheme: c.Scheme()})
			require.NoError(t, err)
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "insecure", Namespace: releaseNS},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}},
					},
				},
			}
			require.NoError(t, wc.Create(ctx, d, client.DryRunAll))
			assert.NotEmpty(t, w.podSecurity(), "no Pod Security warning for a bare Deployment: %v", w.seen)
			w.reset()
		}},
		{"install", func(t *testing.T) {
			inst := action.NewInstall(cfg)
			inst.ReleaseName, inst.Namespace = releaseName, releaseNS
			rel, err := inst.Run(loadChart(t), nil)
			require.NoError(t, err)
			assert.Equal(t, "deployed", rel.Info.Status.String())
			assert.Empty(t, w.podSecurity(), "Pod Security warnings")

			d := &appsv1.Deployment{}
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: releaseName}, d))
			assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--zap-log-level=info")
			crd := &apiextensionsv1.CustomResourceDefinition{}
			require.NoError(t, c.Get(ctx, client.ObjectKey{Name: crdName}, crd))
			assert.Equal(t, "keep", crd.Annotations["helm.sh/resource-policy"])
			for _, obj := range []client.Object{
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: releaseName}},
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: releaseName + "-metrics"}},
			} {
				assert.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(obj), obj))
			}
			waitEstablished(t, crdName)
		}},
		{"physicalInterface on a bridge NIC draws an admission warning", func(t *testing.T) {
			wc, err := client.New(newRESTGetterConfig(w), client.Options{Scheme: c.Scheme()})
			require.NoError(t, err)
			// The policy is enforced once the API server has loaded it.
			require.Eventually(t, func() bool {
				w.reset()
				bridged := wukong("bridged", nil)
				bridged.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "wan", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br-take", PhysicalInterface: "eth0"}}
				if err := wc.Create(ctx, bridged, client.DryRunAll); err != nil {
					t.Logf("dry-run create: %v", err)
					return false
				}
				for _, s := range w.seen {
					if strings.Contains(s, "wan: eth0") && strings.Contains(s, "NodeBridge") {
						return true
					}
				}
				return false
			}, 30*time.Second, 500*time.Millisecond, "a warning naming spec.networks[].physicalInterface; saw %v", w.seen)
			w.reset()
			plain := wukong("plain", nil)
			plain.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "wan", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br1"}}
			require.NoError(t, wc.Create(ctx, plain, client.DryRunAll))
			for _, s := range w.seen {
				assert.NotContains(t, s, "physicalInterface", "no warning without physicalInterface")
			}
			w.reset()
		}},
		{"an inline cloud-init password draws an admission warning", func(t *testing.T) {
			wc, err := client.New(newRESTGetterConfig(w), client.Options{Scheme: c.Scheme()})
			require.NoError(t, err)
			const want = "spec.cloudInitUser.password and spec.cloudInitUser.passwordHash are deprecated"
			for _, u := range []*v1alpha1.CloudInitUser{
				{Name: "ops", Password: "s3cret"},
				{Name: "ops", PasswordHash: "$6$salt$hash"},
			} {
				require.Eventually(t, func() bool {
					w.reset()
					inline := wukong("inline", nil)
					inline.Spec.CloudInitUser = u
					if err := wc.Create(ctx, inline, client.DryRunAll); err != nil {
						t.Logf("dry-run create: %v", err)
						return false
					}
					for _, s := range w.seen {
						if strings.Contains(s, want) && strings.Contains(s, "passwordSecretRef") {
							return true
						}
					}
					return false
				}, 30*time.Second, 500*time.Millisecond, "a warning about the inline password; saw %v", w.seen)
			}
			w.reset()
			ref := wukong("ref", nil)
			ref.Spec.CloudInitUser = &v1alpha1.CloudInitUser{Name: "ops", PasswordSecretRef: &v1alpha1.PasswordSecretRef{Name: "ops-password"}}
			require.NoError(t, wc.Create(ctx, ref, client.DryRunAll))
			for _, s := range w.seen {
				assert.NotContains(t, s, "deprecated", "no warning with passwordSecretRef")
			}
			w.reset()
		}},
		{"manager runs as the ServiceAccount", func(t *testing.T) { managerAsServiceAccount(t) }},
		{"RBAC is exactly role.yaml plus leader election", func(t *testing.T) { rbacBounds(t) }},
		{"upgrade", func(t *testing.T) {
			up := action.NewUpgrade(cfg)
			up.Namespace = releaseNS
			up.ReuseValues = true
			rel, err := up.Run(releaseName, loadChart(t), map[string]any{"logLevel": "debug", "replicaCount": 2})
			require.NoError(t, err)
			assert.Equal(t, 2, rel.Version)
			assert.Empty(t, w.podSecurity(), "Pod Security warnings")
			d := &appsv1.Deployment{}
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: releaseName}, d))
			assert.Equal(t, int32(2), *d.Spec.Replicas)
			assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--zap-log-level=debug")
			assert.NotContains(t, d.Spec.Template.Spec.Containers[0].Args, "--zap-log-level=info")
		}},
		{"uninstall keeps the CRD and the Wukongs", func(t *testing.T) {
			require.NoError(t, c.Create(ctx, wukong("kept", nil)))
			res, err := action.NewUninstall(cfg).Run(releaseName)
			require.NoError(t, err)
			assert.Contains(t, res.Info, crdName, "helm reports the kept CRD")
			require.NoError(t, c.Get(ctx, client.ObjectKey{Name: crdName}, &apiextensionsv1.CustomResourceDefinition{}))
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "vms", Name: "kept"}, &v1alpha1.Wukong{}))
			err = c.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: releaseName}, &appsv1.Deployment{})
			assert.True(t, apierrors.IsNotFound(err), "Deployment removed: %v", err)
		}},
		{"reinstall adopts the kept CRD; crds.keep=false uninstall removes it", func(t *testing.T) {
			inst := action.NewInstall(cfg)
			inst.ReleaseName, inst.Namespace = releaseName, releaseNS
			rel, err := inst.Run(loadChart(t), map[string]any{"crds": map[string]any{"keep": false}})
			require.NoError(t, err)
			assert.Empty(t, w.podSecurity(), "Pod Security warnings")
			// Helm decides what to keep from the release's manifest (the live
			// CRD may still carry the annotation from the first release).
			m := parse(t, rel.Manifest)
			require.Contains(t, m, crdKey)
			assert.NotContains(t, m[crdKey].GetAnnotations(), "helm.sh/resource-policy")
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "vms", Name: "kept"}, &v1alpha1.Wukong{}), "Wukong survived the reinstall")

			uninstallRelease(t, cfg, releaseName)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			return
		}
	}
}

func newRESTGetterConfig(w *warnings) *rest.Config {
	cfg, _ := newRESTGetter(env.Config, releaseNS, w).ToRESTConfig()
	return cfg
}

func waitEstablished(t *testing.T, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(t.Context(), client.ObjectKey{Name: name}, crd); err != nil {
			return false
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond)
	// The admin client's RESTMapper may have cached discovery before the CRD.
	require.Eventually(t, func() bool {
		return env.Client.List(t.Context(), &v1alpha1.WukongList{}) == nil
	}, 10*time.Second, 100*time.Millisecond)
}

func wukong(name string, disks []v1alpha1.DiskSpec) *v1alpha1.Wukong {
	w := &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Namespace: "vms", Name: name},
		Spec:       v1alpha1.WukongSpec{CPU: 1, Memory: resource.MustParse("1Gi"), Disks: disks},
	}
	if len(disks) == 0 { // with disks, osImage would make the boot disk a CDI import
		w.Spec.OSImage = "quay.io/containerdisks/fedora:latest"
	}
	return w
}

// logSink records the manager's log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{})
}

func (l *logSink) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(strings.ToLower(line), s) {
			out = append(out, line)
		}
	}
	return out
}

// managerAsServiceAccount runs the real manager impersonating the chart's
// ServiceAccount: it must create the disk's PVC, report status, create the
// VirtualMachine once the PVC is bound, and release its finalizer on delete.
func managerAsServiceAccount(t *testing.T) {
	ctx := t.Context()
	c := env.Client
	logs := &logSink{}
	ctrl.SetLogger(logs.logger())

	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "chart-test"}, Provisioner: "example.com/none"}
	require.NoError(t, c.Create(ctx, sc))

	impersonated := rest.CopyConfig(env.Config)
	impersonated.Impersonate = rest.ImpersonationConfig{UserName: saUser}
	mgr, err := manager.New(impersonated, manager.Options{
		MetricsAddr: "0", ProbeAddr: "0", LeaderElection: true, LeaderElectionNamespace: releaseNS,
	})
	require.NoError(t, err)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		if t.Failed() {
			for _, l := range logs.matching("") {
				t.Log(l)
			}
		}
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("manager did not stop")
		}
	}()

	w := wukong("first", []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("1Gi"), StorageClassName: sc.Name}})
	require.NoError(t, c.Create(ctx, w))
	key := client.ObjectKeyFromObject(w)

	// A blank disk is a CDI DataVolume (#30); this API server runs no CDI,
	// so the test plays it: the claim CDI makes (same name, controlled by
	// the DataVolume, CDI's app label), then the DataVolume Succeeded.
	var dv cdiv1.DataVolume
	require.Eventually(t, func() bool {
		var list cdiv1.DataVolumeList
		if err := c.List(ctx, &list, client.InNamespace("vms")); err != nil || len(list.Items) != 1 {
			return false
		}
		dv = list.Items[0]
		return true
	}, 20*time.Second, 100*time.Millisecond, "the manager creates the disk's DataVolume")
	require.NotNil(t, dv.Spec.Storage)
	assert.Equal(t, sc.Name, *dv.Spec.Storage.StorageClassName)
	ctrl := true
	pvc := corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: dv.Namespace, Name: dv.Name, Labels: map[string]string{"app": "containerized-data-importer"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume", Name: dv.Name, UID: dv.UID, Controller: &ctrl}}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: &sc.Name,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	require.NoError(t, c.Create(ctx, &pvc))

	require.Eventually(t, func() bool {
		got := &v1alpha1.Wukong{}
		if err := c.Get(ctx, key, got); err != nil {
			return false
		}
		return got.Status.ObservedGeneration == got.Generation &&
			meta.FindStatusCondition(got.Status.Conditions, v1alpha1.VolumesBoundCondition) != nil
	}, 20*time.Second, 100*time.Millisecond, "the manager writes status")

	pvc.Status.Phase = corev1.ClaimBound
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	require.NoError(t, c.Status().Update(ctx, &pvc))
	dv.Status.Phase, dv.Status.Progress = cdiv1.Succeeded, "100.0%"
	require.NoError(t, c.Status().Update(ctx, &dv))
	require.Eventually(t, func() bool {
		return c.Get(ctx, key, &kubevirtv1.VirtualMachine{}) == nil
	}, 20*time.Second, 100*time.Millisecond, "the manager creates the VirtualMachine once the disk is bound")

	lease := &coordinationv1.Lease{}
	assert.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: "wukong.vm.novasphere.dev"}, lease), "leader election Lease")

	require.NoError(t, c.Delete(ctx, w))
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(c.Get(ctx, key, &v1alpha1.Wukong{}))
	}, 20*time.Second, 100*time.Millisecond, "the manager removes its finalizer")

	assert.Empty(t, logs.matching("forbidden"), "the manager hit RBAC denials")
}

// rbacBounds asks the authorizer what the chart's ServiceAccount may do:
// every rule of role.yaml (without watchNamespaces, the namespaced half in
// every namespace too), the Lease in the release namespace, nothing more.
func rbacBounds(t *testing.T) {
	ctx := t.Context()
	roles := readGeneratedRoles(t)
	type check struct {
		attrs   authorizationv1.ResourceAttributes
		allowed bool
	}
	var checks []check
	add := func(rules []rbacv1.PolicyRule, namespaces ...string) {
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					resource, sub, _ := strings.Cut(res, "/")
					for _, v := range r.Verbs {
						for _, ns := range namespaces {
							checks = append(checks, check{authorizationv1.ResourceAttributes{Namespace: ns, Group: g, Resource: resource, Subresource: sub, Verb: v}, true})
						}
					}
				}
			}
		}
	}
	add(roles.Cluster.Rules, "")
	add(roles.Namespaced.Rules, "vms", "")
	add(roles.GlobalNADs.Rules, "vms", "")
	require.Greater(t, len(checks), 40)
	for _, v := range []string{"get", "list", "watch", "create", "update", "patch", "delete"} {
		checks = append(checks,
			check{authorizationv1.ResourceAttributes{Namespace: releaseNS, Group: "coordination.k8s.io", Resource: "leases", Verb: v}, true},
			check{authorizationv1.ResourceAttributes{Namespace: "vms", Group: "coordination.k8s.io", Resource: "leases", Verb: v}, false})
	}
	for _, a := range []authorizationv1.ResourceAttributes{
		{Namespace: "vms", Resource: "secrets", Verb: "delete"},
		{Namespace: "vms", Resource: "secrets", Verb: "update"},
		{Namespace: "vms", Resource: "pods", Verb: "get"},
		{Namespace: "vms", Resource: "pods", Verb: "list"},
		{Namespace: "vms", Resource: "events", Verb: "watch"}, // read by UID while a VM fails to start, never watched
		{Namespace: "vms", Resource: "events", Verb: "delete"},
		{Resource: "nodes", Verb: "update"},                  // read for node loss (get, list, watch), never written
		{Namespace: "vms", Resource: "pods", Verb: "delete"}, // only with nodeLoss.restartAfter (nodeloss-rbac.yaml)
		{Resource: "namespaces", Verb: "delete"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Verb: "create"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Verb: "create"},
		{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Verb: "create"},
		{Namespace: "vms", Group: "kubevirt.io", Resource: "virtualmachines", Verb: "delete"},
		{Namespace: "vms", Group: "kubevirt.io", Resource: "virtualmachineinstances", Verb: "create"},
		{Namespace: "vms", Group: "vm.novasphere.dev", Resource: "wukongs", Verb: "create"},
		{Namespace: "vms", Group: "vm.novasphere.dev", Resource: "wukongs", Verb: "delete"},
		{Group: "storage.k8s.io", Resource: "storageclasses", Verb: "create"},
		{Namespace: "vms", Group: "apps", Resource: "deployments", Verb: "get"},
	} {
		checks = append(checks, check{a, false})
	}
	for _, ck := range checks {
		attrs := ck.attrs
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               saUser,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNS, "system:authenticated"},
			ResourceAttributes: &attrs,
		}}
		require.NoError(t, env.Client.Create(ctx, sar))
		assert.Equal(t, ck.allowed, sar.Status.Allowed, "%s %s/%s/%s in %q", attrs.Verb, attrs.Group, attrs.Resource, attrs.Subresource, attrs.Namespace)
	}
}

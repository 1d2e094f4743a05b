package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/testenv"
)

const (
	group    = "vm.novasphere.dev"
	aggLabel = "rbac.authorization.k8s.io/aggregate-to-"
)

// TestTenantRolesRender: the chart's aggregated ClusterRoles grant exactly
// read (view, edit, admin) and write (edit, admin) on wukongs and their
// snapshots and restores, nothing on
// status writes or other kinds, and rbac.aggregateClusterRoles=false drops
// them.
func TestTenantRolesRender(t *testing.T) {
	rel, err := render(t, nil)
	require.NoError(t, err)
	m := parse(t, rel.Manifest)
	assert.Contains(t, rel.Info.Notes, "--clusterrole=edit")

	view := get[rbacv1.ClusterRole](t, m, "ClusterRole/wukong-view")
	assert.Equal(t, []rbacv1.PolicyRule{{
		APIGroups: []string{group}, Resources: []string{"wukongs", "wukongs/status", "wukongsnapshots", "wukongsnapshots/status", "wukongrestores", "wukongrestores/status"}, Verbs: []string{"get", "list", "watch"},
	}}, view.Rules)
	for _, role := range []string{"view", "edit", "admin"} {
		assert.Equal(t, "true", view.Labels[aggLabel+role], "view rules aggregate to %s", role)
	}

	edit := get[rbacv1.ClusterRole](t, m, "ClusterRole/wukong-edit")
	assert.Equal(t, []rbacv1.PolicyRule{{
		APIGroups: []string{group}, Resources: []string{"wukongs", "wukongsnapshots", "wukongrestores"},
		Verbs: []string{"create", "update", "patch", "delete", "deletecollection"},
	}}, edit.Rules)
	assert.Equal(t, "true", edit.Labels[aggLabel+"edit"])
	assert.Equal(t, "true", edit.Labels[aggLabel+"admin"])
	assert.NotContains(t, edit.Labels, aggLabel+"view", "view must not gain write rules")

	rel, err = render(t, map[string]any{"rbac": map[string]any{"aggregateClusterRoles": false}})
	require.NoError(t, err)
	m = parse(t, rel.Manifest)
	assert.NotContains(t, m, "ClusterRole/wukong-view")
	assert.NotContains(t, m, "ClusterRole/wukong-edit")
	assert.Contains(t, m, "ClusterRole/wukong-manager")
	assert.NotContains(t, rel.Info.Notes, "--clusterrole=edit")

	_, err = render(t, map[string]any{"rbac": map[string]any{"aggregateClusterRoles": "yes"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "aggregateClusterRoles")
}

// TestTenantRoles installs the chart, lets the real clusterrole-aggregation
// controller (kube-controller-manager) fold its roles into Kubernetes'
// admin, edit and view, and asks the authorizer, then the API server as
// those users: edit in team-a manages Wukongs there and nowhere else, view
// only reads, and neither reaches the cluster-scoped nodebridges an
// administrator owns. Uninstalling takes the rights away again.
func TestTenantRoles(t *testing.T) {
	ctx := t.Context()
	c := env.Client
	const rel, relNS = "tenancy", "tenancy-system"
	for _, ns := range []string{relNS, "team-a", "team-b"} {
		require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	runClusterRoleAggregation(t)

	cfg := helmConfig(t, env.Config, relNS, &warnings{})
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace = rel, relNS
	// Not kept, so the CRD goes with the release and TestLifecycle can
	// install its own, whichever runs first.
	_, err := inst.Run(loadChart(t), map[string]any{"crds": map[string]any{"keep": false}})
	require.NoError(t, err)
	uninstalled := false
	uninstall := func() {
		uninstalled = true
		uninstallRelease(t, cfg, rel)
	}
	t.Cleanup(func() {
		if !uninstalled {
			uninstall()
		}
	})
	waitEstablished(t, crdName)

	bindings := map[string]string{"alice": "edit", "bob": "view", "carol": "admin"}
	for user, role := range bindings {
		require.NoError(t, c.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: user + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		}))
	}
	// The aggregation controller fills view, edit and admin from the labels.
	for _, role := range []string{"view", "edit", "admin"} {
		want := "get"
		if role != "view" {
			want = "deletecollection"
		}
		require.Eventually(t, func() bool {
			cr := &rbacv1.ClusterRole{}
			return c.Get(ctx, client.ObjectKey{Name: role}, cr) == nil && grants(cr.Rules, "wukongs", want)
		}, 60*time.Second, 200*time.Millisecond, "ClusterRole %s gains the wukongs rules", role)
	}

	read := []string{"get", "list", "watch"}
	write := []string{"create", "update", "patch", "delete", "deletecollection"}
	type check struct {
		user, ns, resource, sub string
		verbs                   []string
		allowed                 bool
	}
	checks := []check{
		{"alice", "team-a", "wukongs", "", append(read, write...), true},
		{"alice", "team-a", "wukongs", "status", read, true},
		{"alice", "team-a", "wukongs", "status", []string{"update", "patch"}, false},
		{"alice", "team-b", "wukongs", "", append(read, write...), false},
		{"carol", "team-a", "wukongs", "", append(read, write...), true},
		{"carol", "team-b", "wukongs", "", append(read, write...), false},
		{"bob", "team-a", "wukongs", "", read, true},
		{"bob", "team-a", "wukongs", "status", read, true},
		{"bob", "team-a", "wukongs", "", write, false},
		{"bob", "team-b", "wukongs", "", read, false},
	}
	for user := range bindings {
		checks = append(checks,
			check{user, "", "nodebridges", "", append(read, write...), false},
			check{user, "", "wukongs", "", append(read, write...), false}) // all namespaces
	}
	for _, ck := range checks {
		for _, verb := range ck.verbs {
			assert.Equal(t, ck.allowed, allowed(t, ck.user, authorizationv1.ResourceAttributes{
				Namespace: ck.ns, Verb: verb, Group: group, Resource: ck.resource, Subresource: ck.sub,
			}), "%s: %s %s/%s in %q", ck.user, verb, ck.resource, ck.sub, ck.ns)
		}
	}

	// The same through the API server, as the users.
	alice, bob := as(t, "alice"), as(t, "bob")
	w := wukong("tenant-vm", nil)
	w.Namespace = "team-a"
	require.NoError(t, alice.Create(ctx, w.DeepCopy()), "edit creates a Wukong in its namespace")
	w.Namespace = "team-b"
	assert.True(t, apierrors.IsForbidden(alice.Create(ctx, w.DeepCopy())), "edit cannot create in another namespace")
	list := &v1alpha1.WukongList{}
	require.NoError(t, bob.List(ctx, list, client.InNamespace("team-a")), "view lists Wukongs")
	require.Len(t, list.Items, 1)
	got := list.Items[0].DeepCopy()
	got.Spec.CPU = 2
	assert.True(t, apierrors.IsForbidden(bob.Update(ctx, got)), "view cannot update")
	assert.True(t, apierrors.IsForbidden(bob.Delete(ctx, got)), "view cannot delete")
	assert.True(t, apierrors.IsForbidden(bob.List(ctx, &v1alpha1.WukongList{}, client.InNamespace("team-b"))), "view only in its namespace")
	require.NoError(t, alice.Delete(ctx, got), "edit deletes")

	uninstall()
	for _, role := range []string{"view", "edit", "admin"} {
		require.Eventually(t, func() bool {
			cr := &rbacv1.ClusterRole{}
			return c.Get(ctx, client.ObjectKey{Name: role}, cr) == nil && !grants(cr.Rules, "wukongs", "get")
		}, 60*time.Second, 200*time.Millisecond, "ClusterRole %s loses the wukongs rules after uninstall", role)
	}
	assert.False(t, allowed(t, "alice", authorizationv1.ResourceAttributes{Namespace: "team-a", Verb: "create", Group: group, Resource: "wukongs"}))
}

// grants reports whether rules allow verb on resource in the Wukong group.
func grants(rules []rbacv1.PolicyRule, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// allowed asks the authorizer (SubjectAccessReview) about an authenticated user.
func allowed(t *testing.T, user string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:authenticated"}, ResourceAttributes: &attrs,
	}}
	require.NoError(t, env.Client.Create(t.Context(), sar))
	return sar.Status.Allowed
}

// as is a client impersonating an authenticated user.
func as(t *testing.T, user string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
	require.NoError(t, err)
	return c
}

// runClusterRoleAggregation runs kube-controller-manager (from the envtest
// assets) with only the clusterrole-aggregation controller until the test
// ends; envtest runs no controllers.
func runClusterRoleAggregation(t *testing.T) {
	t.Helper()
	assets, err := testenv.Assets()
	require.NoError(t, err)
	dir := t.TempDir()
	raw, err := newRESTGetter(env.Config, "default", &warnings{}).ToRawKubeConfigLoader().RawConfig()
	require.NoError(t, err)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(raw, kubeconfig))

	// #nosec G204 -- the binary comes from the envtest assets dir.
	cmd := exec.Command(filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--controllers=clusterrole-aggregation",
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
	)
	runUntilTestEnds(t, "kube-controller-manager", filepath.Join(dir, "kube-controller-manager.log"), cmd)
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// runUntilTestEnds starts cmd with its output in logPath and stops it
// (SIGTERM, then SIGKILL after 15 s, an error) when the test ends, logging
// the tail of its output if the test failed. The process gets SIGKILL if the
// test binary dies first (a test timeout). The returned channel closes when
// the process exits.
func runUntilTestEnds(t *testing.T, name, logPath string, cmd *exec.Cmd) <-chan struct{} {
	t.Helper()
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop on SIGTERM", name)
		}
		_ = logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, tailString(string(out), 4000))
		}
	})
	return done
}

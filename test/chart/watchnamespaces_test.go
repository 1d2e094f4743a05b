package chart

import (
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestWatchNamespacesRBAC installs the chart with watchNamespaces=[watched-a]
// and multus.globalNamespaces=[shared-nets] and shows the manager's
// ServiceAccount reaches only those: the authorizer (SubjectAccessReview)
// and the API server (impersonating it) refuse every namespaced right in
// other-b and across all namespaces, and all but reading a NAD in
// shared-nets, while the manager, run as that ServiceAccount, reconciles the
// Wukongs of watched-a (one with a NIC on shared-nets' NAD) without a single
// denial.
func TestWatchNamespacesRBAC(t *testing.T) {
	ctx := t.Context()
	c := env.Client
	const rel, relNS, watched, other, shared = "scoped", "scoped-system", "watched-a", "other-b", "shared-nets"
	const sa = "system:serviceaccount:" + relNS + ":scoped-wukong"
	for _, ns := range []string{relNS, watched, other, shared} {
		require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	cfg := helmConfig(t, env.Config, relNS, &warnings{})
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace = rel, relNS
	_, err := inst.Run(loadChart(t), map[string]any{
		"watchNamespaces": []any{watched},
		"multus":          map[string]any{"globalNamespaces": []any{shared}},
		// Not kept: the CRD goes with the release, for the other tests'.
		"crds": map[string]any{"keep": false},
	})
	require.NoError(t, err)
	t.Cleanup(func() { uninstallRelease(t, cfg, rel) })
	waitEstablished(t, crdName)

	roles := readGeneratedRoles(t)
	can := func(attrs authorizationv1.ResourceAttributes) bool {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + relNS, "system:authenticated"},
			ResourceAttributes: &attrs,
		}}
		require.NoError(t, c.Create(ctx, sar))
		return sar.Status.Allowed
	}
	each := func(rules []rbacv1.PolicyRule, f func(a authorizationv1.ResourceAttributes)) {
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					resource, sub, _ := strings.Cut(res, "/")
					for _, v := range r.Verbs {
						f(authorizationv1.ResourceAttributes{Group: g, Resource: resource, Subresource: sub, Verb: v})
					}
				}
			}
		}
	}
	globalNAD := authorizationv1.ResourceAttributes{Namespace: shared, Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions", Verb: "get"}
	each(roles.Namespaced.Rules, func(a authorizationv1.ResourceAttributes) {
		a.Namespace = watched
		assert.True(t, can(a), "%s %s/%s/%s in the watched namespace", a.Verb, a.Group, a.Resource, a.Subresource)
		a.Namespace = other
		assert.False(t, can(a), "%s %s/%s/%s in an unwatched namespace", a.Verb, a.Group, a.Resource, a.Subresource)
		a.Namespace = ""
		assert.False(t, can(a), "%s %s/%s/%s across all namespaces", a.Verb, a.Group, a.Resource, a.Subresource)
		if a.Namespace = shared; a != globalNAD {
			assert.False(t, can(a), "%s %s/%s/%s in a global NAD namespace", a.Verb, a.Group, a.Resource, a.Subresource)
		}
	})
	each(roles.GlobalNADs.Rules, func(a authorizationv1.ResourceAttributes) {
		a.Namespace = shared
		assert.Equal(t, globalNAD, a, "reading a global namespace's NAD is all")
		assert.True(t, can(a), "%s %s/%s/%s in a global NAD namespace", a.Verb, a.Group, a.Resource, a.Subresource)
		a.Namespace = other
		assert.False(t, can(a), "%s %s/%s/%s in an unwatched namespace", a.Verb, a.Group, a.Resource, a.Subresource)
	})
	each(roles.Cluster.Rules, func(a authorizationv1.ResourceAttributes) {
		assert.True(t, can(a), "%s %s/%s/%s cluster-wide", a.Verb, a.Group, a.Resource, a.Subresource)
	})
	for _, v := range []string{"get", "list", "watch"} {
		assert.False(t, can(authorizationv1.ResourceAttributes{Namespace: other, Resource: "secrets", Verb: v}), "%s secrets in %s", v, other)
	}

	// The same through the API server, as the ServiceAccount.
	impersonated := rest.CopyConfig(env.Config)
	impersonated.Impersonate = rest.ImpersonationConfig{UserName: sa}
	asSA, err := client.New(impersonated, client.Options{Scheme: c.Scheme()})
	require.NoError(t, err)
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "private"}, StringData: map[string]string{"k": "v"}}))
	err = asSA.Get(ctx, client.ObjectKey{Namespace: other, Name: "private"}, &corev1.Secret{})
	assert.True(t, apierrors.IsForbidden(err), "get a Secret of %s: %v", other, err)
	err = asSA.List(ctx, &corev1.SecretList{}, client.InNamespace(other))
	assert.True(t, apierrors.IsForbidden(err), "list the Secrets of %s: %v", other, err)
	err = asSA.List(ctx, &corev1.SecretList{})
	assert.True(t, apierrors.IsForbidden(err), "list every namespace's Secrets: %v", err)
	require.NoError(t, asSA.List(ctx, &corev1.SecretList{}, client.InNamespace(watched)), "list the Secrets of %s", watched)

	// The manager binary with the installed Deployment's arguments (metrics
	// and probes off), as the ServiceAccount: it reconciles watched-a and is
	// never denied.
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "chart-scoped"}, Provisioner: "example.com/none"}
	require.NoError(t, c.Create(ctx, sc))
	d := &appsv1.Deployment{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: relNS, Name: "scoped-wukong"}, d))
	var args []string
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		switch {
		case strings.HasPrefix(a, "--metrics-"):
		case strings.HasPrefix(a, "--health-probe-bind-address="):
		default:
			args = append(args, a)
		}
	}
	assert.Contains(t, args, "--namespaces="+watched)
	assert.Contains(t, args, "--global-nad-namespaces="+shared)
	args = append(args, "--metrics-bind-address=0", "--health-probe-bind-address=0")
	exited, managerLog := runManagerBinary(t, args, sa)
	defer func() {
		assert.False(t, exited(), "the manager exited")
		assert.NotContains(t, strings.ToLower(managerLog()), "forbidden", "the manager hit RBAC denials")
	}()

	disks := []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("1Gi"), StorageClassName: sc.Name}}
	in := wukong("in-scope", disks)
	in.Namespace = watched
	out := wukong("out-of-scope", disks)
	out.Namespace = other
	require.NoError(t, c.Create(ctx, out))
	require.NoError(t, c.Create(ctx, in))
	// A blank disk is a CDI DataVolume (CDI's CRDs are installed here, CDI
	// is not: the DataVolume is what the manager writes).
	require.Eventually(t, func() bool {
		var list cdiv1.DataVolumeList
		return c.List(ctx, &list, client.InNamespace(watched)) == nil && len(list.Items) == 1
	}, 60*time.Second, 100*time.Millisecond, "the manager creates the disk's DataVolume in %s", watched)
	require.Eventually(t, func() bool {
		got := &v1alpha1.Wukong{}
		return c.Get(ctx, client.ObjectKeyFromObject(in), got) == nil &&
			got.Status.ObservedGeneration == got.Generation &&
			meta.FindStatusCondition(got.Status.Conditions, v1alpha1.VolumesBoundCondition) != nil
	}, 20*time.Second, 100*time.Millisecond, "the manager writes the status of the Wukong in %s", watched)

	// A NIC on a global namespace's NAD: read from the API server (the
	// cache holds only the watched namespaces) with the RoleBinding there.
	require.NoError(t, c.Create(ctx, &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: shared, Name: "lan"},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br-lan"}`},
	}))
	netted := wukong("netted", nil)
	netted.Namespace = watched
	netted.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", NADName: shared + "/lan"}}
	require.NoError(t, c.Create(ctx, netted))
	require.Eventually(t, func() bool {
		vm := &kubevirtv1.VirtualMachine{}
		if c.Get(ctx, client.ObjectKeyFromObject(netted), vm) != nil || vm.Spec.Template == nil {
			return false
		}
		for _, n := range vm.Spec.Template.Spec.Networks {
			if n.Multus != nil && n.Multus.NetworkName == shared+"/lan" {
				return true
			}
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "the manager creates the VirtualMachine on %s/lan", shared)

	got := &v1alpha1.Wukong{}
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(out), got))
	assert.Empty(t, got.Status.Conditions, "the Wukong in %s is not reconciled", other)
	var pvcs corev1.PersistentVolumeClaimList
	require.NoError(t, c.List(ctx, &pvcs, client.InNamespace(other)))
	assert.Empty(t, pvcs.Items)
	var dvs cdiv1.DataVolumeList
	require.NoError(t, c.List(ctx, &dvs, client.InNamespace(other)))
	assert.Empty(t, dvs.Items)
}

// TestRBACScopes checks the split of role.yaml against the API server's
// discovery: the rules the manager needs only in watched namespaces
// (namespace=watched) name namespaced resources, and the cluster-wide ones
// name cluster-scoped resources, but for the KubeVirt CR (namespaced, read
// wherever KubeVirt was installed: see netbinding.go). A new marker on a
// namespaced kind without namespace=watched fails here.
func TestRBACScopes(t *testing.T) {
	roles := readGeneratedRoles(t)
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	require.NoError(t, err)
	_, lists, err := dc.ServerGroupsAndResources()
	require.NoError(t, err)
	scope := map[schema.GroupResource]bool{} // namespaced?
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		require.NoError(t, err)
		for _, r := range l.APIResources {
			scope[schema.GroupResource{Group: gv.Group, Resource: r.Name}] = r.Namespaced
		}
	}
	// The Wukong CRDs come with the chart, not with the test's API server.
	for _, plural := range []string{"wukongs", "nodebridges", "wukongsnapshots", "wukongrestores", "clusterimages"} {
		crd := fromYAMLFile[apiextensionsv1.CustomResourceDefinition](t, repoPath(t, "operator", "config", "crd", "vm.novasphere.dev_"+plural+".yaml"))
		for _, sub := range []string{"", "/status", "/finalizers"} {
			scope[schema.GroupResource{Group: crd.Spec.Group, Resource: plural + sub}] = crd.Spec.Scope == apiextensionsv1.NamespaceScoped
		}
	}
	clusterWideByChoice := map[schema.GroupResource]bool{{Group: "kubevirt.io", Resource: "kubevirts"}: true}
	check := func(rules []rbacv1.PolicyRule, wantNamespaced bool) {
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					gr := schema.GroupResource{Group: g, Resource: res}
					ns, known := scope[gr]
					// datavolumes/source is what CDI's clone authorization asks a
					// SubjectAccessReview about (CDI API authorize_utils.go); it
					// is not served either.
					if !known && (strings.HasSuffix(res, "/finalizers") || gr == (schema.GroupResource{Group: "cdi.kubevirt.io", Resource: "datavolumes/source"})) { // not a served subresource
						ns, known = scope[schema.GroupResource{Group: g, Resource: strings.Split(res, "/")[0]}]
					}
					require.True(t, known, "%s not served by the API server", gr)
					if !wantNamespaced && clusterWideByChoice[gr] {
						continue
					}
					assert.Equal(t, wantNamespaced, ns, "%s: namespaced=%v, in the %s half of role.yaml", gr, ns,
						map[bool]string{true: "namespace=watched", false: "cluster-wide"}[wantNamespaced])
				}
			}
		}
	}
	check(roles.Namespaced.Rules, true)
	check(roles.GlobalNADs.Rules, true)
	check(roles.Catalog.Rules, true)
	check(roles.Cluster.Rules, false)
}

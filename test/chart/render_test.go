package chart

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

const (
	deployKey = "Deployment/wukong"
	crdKey    = "CustomResourceDefinition/wukongs.vm.novasphere.dev"
	keepKey   = "helm.sh/resource-policy"
)

func managerOf(t *testing.T, m manifest) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d := get[appsv1.Deployment](t, m, deployKey)
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	return d, d.Spec.Template.Spec.Containers[0]
}

// TestRender renders and lints the chart for defaults and a matrix of
// non-default values, asserting on the decoded objects.
func TestRender(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, m manifest, notes string)
	}{{
		name:   "defaults",
		values: nil,
		check: func(t *testing.T, m manifest, notes string) {
			d, c := managerOf(t, m)
			assert.Equal(t, ptr.To[int32](1), d.Spec.Replicas)
			assert.Equal(t, "ghcr.io/novasphere/wukong-manager:0.1.0", c.Image)
			assert.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy)
			assert.Equal(t, []string{
				"--metrics-bind-address=:8443", "--metrics-secure=true", "--health-probe-bind-address=:8081",
				"--leader-elect", "--leader-election-namespace=wukong-system",
				"--cluster-domain=cluster.local", "--image-catalog-namespace=wukong-system",
				"--concurrency=4", "--zap-log-level=info", "--zap-encoder=json",
			}, c.Args)
			pod := d.Spec.Template.Spec
			assert.Equal(t, &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}, pod.SecurityContext)
			assert.Equal(t, &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}, c.SecurityContext)
			assert.Equal(t, "wukong", pod.ServiceAccountName)
			assert.Equal(t, ptr.To(true), pod.AutomountServiceAccountToken)
			assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			assert.Equal(t, "probes", c.ReadinessProbe.HTTPGet.Port.String())
			assert.Contains(t, c.Ports, corev1.ContainerPort{Name: "probes", ContainerPort: 8081, Protocol: corev1.ProtocolTCP})
			assert.Contains(t, c.Ports, corev1.ContainerPort{Name: "https", ContainerPort: 8443, Protocol: corev1.ProtocolTCP})
			assert.NotEmpty(t, c.Resources.Requests)
			assert.NotEmpty(t, c.Resources.Limits)
			assert.Empty(t, pod.NodeSelector)
			assert.Empty(t, pod.Tolerations)
			assert.Empty(t, pod.PriorityClassName)
			assert.Empty(t, pod.ImagePullSecrets)

			selector := map[string]string{
				"app.kubernetes.io/name": "wukong", "app.kubernetes.io/instance": "wukong", "app.kubernetes.io/component": "manager",
			}
			assert.Equal(t, selector, d.Spec.Selector.MatchLabels)
			for key, u := range m {
				if u.GetKind() == "CustomResourceDefinition" { // controller-gen output, kept as is
					continue
				}
				labels := u.GetLabels()
				assert.Equal(t, "Helm", labels["app.kubernetes.io/managed-by"], key)
				assert.Equal(t, "wukong-0.1.0", labels["helm.sh/chart"], key)
				assert.Equal(t, "0.1.0", labels["app.kubernetes.io/version"], key)
				assert.Equal(t, "wukong", labels["app.kubernetes.io/instance"], key)
				assert.Equal(t, "wukong", labels["app.kubernetes.io/name"], key)
			}
			for k, v := range selector {
				assert.Equal(t, v, d.Spec.Template.Labels[k])
			}

			assert.Equal(t, "keep", m[crdKey].GetAnnotations()[keepKey])
			sa := get[corev1.ServiceAccount](t, m, "ServiceAccount/wukong")
			assert.Equal(t, ptr.To(true), sa.AutomountServiceAccountToken)
			crb := get[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding/wukong-manager")
			assert.Equal(t, "wukong-manager", crb.RoleRef.Name)
			assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "wukong", Namespace: "wukong-system"}}, crb.Subjects)
			// Watching every namespace: the namespaced rules cluster-wide too.
			nsCRB := get[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding/wukong-manager-namespaced")
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wukong-manager-namespaced"}, nsCRB.RoleRef)
			assert.Equal(t, crb.Subjects, nsCRB.Subjects)
			for key, u := range m {
				if u.GetKind() == "RoleBinding" {
					assert.NotEqual(t, "wukong-manager-namespaced", u.Object["roleRef"].(map[string]any)["name"], "no RoleBindings without watchNamespaces: %s", key)
				}
			}
			role := get[rbacv1.Role](t, m, "Role/wukong-leader-election")
			assert.Equal(t, "wukong-system", role.Namespace)
			assert.Contains(t, role.Rules, rbacv1.PolicyRule{
				APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
				Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"},
			})
			rb := get[rbacv1.RoleBinding](t, m, "RoleBinding/wukong-leader-election")
			assert.Equal(t, crb.Subjects, rb.Subjects)
			svc := get[corev1.Service](t, m, "Service/wukong-metrics")
			require.Len(t, svc.Spec.Ports, 1)
			assert.Equal(t, "https", svc.Spec.Ports[0].Name)
			assert.Equal(t, int32(8443), svc.Spec.Ports[0].Port)
			assert.Equal(t, selector, svc.Spec.Selector)
			reader := get[rbacv1.ClusterRole](t, m, "ClusterRole/wukong-metrics-reader")
			assert.Equal(t, []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}, reader.Rules)
			assert.NotContains(t, m, "ServiceMonitor/wukong")
			assert.NotContains(t, m, "NetworkPolicy/wukong-metrics")
			assert.NotContains(t, m, "Certificate/wukong-metrics")
			assert.Empty(t, pod.Volumes, "the self-signed metrics certificate by default")
			assert.Empty(t, c.VolumeMounts)
			assert.NotContains(t, m, "PodDisruptionBudget/wukong")
			assert.NotContains(t, m, "ConfigMap/wukong-dashboard")
			assert.Contains(t, m, "ClusterRole/wukong-view")
			assert.Contains(t, m, "ClusterRole/wukong-edit")
			assert.Contains(t, m, "ValidatingAdmissionPolicy/wukong-inline-password")
			assert.Contains(t, m, "ValidatingAdmissionPolicyBinding/wukong-inline-password")
			assert.Contains(t, m, "CustomResourceDefinition/wukongsnapshots.vm.novasphere.dev")
			assert.Contains(t, m, "CustomResourceDefinition/wukongrestores.vm.novasphere.dev")
			// The golden image catalog (#32): its CRD, the manager's rights in
			// the catalog namespace (the release namespace by default) and the
			// administrators' roles.
			assert.Contains(t, m, "CustomResourceDefinition/clusterimages.vm.novasphere.dev")
			assert.Contains(t, m, "ClusterRole/wukong-clusterimage-admin")
			assert.Contains(t, m, "ClusterRole/wukong-clusterimage-viewer")
			catalog := get[rbacv1.RoleBinding](t, m, "RoleBinding/wukong-manager-catalog")
			assert.Equal(t, "wukong-system", catalog.Namespace, "bound in the release namespace")
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wukong-manager-catalog"}, catalog.RoleRef)
			assert.Len(t, m, 28, "%v", m.keys())

			assert.Contains(t, notes, "kubectl apply -f")
			assert.Contains(t, notes, "kind: Wukong")
			assert.Contains(t, notes, "kubectl get wk")
		},
	}, {
		name:   "watchNamespaces",
		values: map[string]any{"watchNamespaces": []any{"team-a", "team-b"}},
		check: func(t *testing.T, m manifest, notes string) {
			_, c := managerOf(t, m)
			assert.Contains(t, c.Args, "--namespaces=team-a,team-b")
			assert.Contains(t, notes, "team-a, team-b")
			// The namespaced rules only in the watched namespaces; the
			// cluster-wide ones as always.
			assert.NotContains(t, m, "ClusterRoleBinding/wukong-manager-namespaced")
			assert.Contains(t, m, "ClusterRoleBinding/wukong-manager")
			for _, ns := range []string{"team-a", "team-b"} {
				rb := get[rbacv1.RoleBinding](t, m, "RoleBinding/"+ns+"/wukong-manager")
				assert.Equal(t, ns, rb.Namespace)
				assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wukong-manager-namespaced"}, rb.RoleRef)
				assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "wukong", Namespace: "wukong-system"}}, rb.Subjects)
			}
			var bindings []string
			for key, u := range m {
				if u.GetKind() == "RoleBinding" || u.GetKind() == "ClusterRoleBinding" {
					bindings = append(bindings, key)
				}
			}
			assert.ElementsMatch(t, []string{
				"ClusterRoleBinding/wukong-manager", "RoleBinding/team-a/wukong-manager", "RoleBinding/team-b/wukong-manager",
				"RoleBinding/wukong-leader-election", "RoleBinding/wukong-manager-catalog",
			}, bindings)
		},
	}, {
		name:   "watchNamespaces and multus.globalNamespaces",
		values: map[string]any{"watchNamespaces": []any{"team-a"}, "multus": map[string]any{"globalNamespaces": []any{"shared-nets"}}},
		check: func(t *testing.T, m manifest, _ string) {
			rb := get[rbacv1.RoleBinding](t, m, "RoleBinding/wukong-manager-global-nads")
			assert.Equal(t, "shared-nets", rb.Namespace)
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wukong-manager-global-nads"}, rb.RoleRef)
			assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "wukong", Namespace: "wukong-system"}}, rb.Subjects)
			assert.Equal(t, "team-a", get[rbacv1.RoleBinding](t, m, "RoleBinding/wukong-manager").Namespace)
		},
	}, {
		name:   "multus.globalNamespaces, every namespace watched",
		values: map[string]any{"multus": map[string]any{"globalNamespaces": []any{"shared-nets"}}},
		check: func(t *testing.T, m manifest, _ string) {
			assert.NotContains(t, m, "RoleBinding/wukong-manager-global-nads", "the namespaced rules cover every namespace")
			assert.Contains(t, m, "ClusterRoleBinding/wukong-manager-namespaced")
		},
	}, {
		name:   "two replicas with a PodDisruptionBudget",
		values: map[string]any{"replicaCount": 2, "pdb": map[string]any{"enabled": true}},
		check: func(t *testing.T, m manifest, _ string) {
			d, _ := managerOf(t, m)
			assert.Equal(t, ptr.To[int32](2), d.Spec.Replicas)
			pdb := get[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget/wukong")
			assert.Equal(t, "1", pdb.Spec.MinAvailable.String())
			assert.Equal(t, d.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels)
		},
	}, {
		name:   "PodDisruptionBudget with a percentage",
		values: map[string]any{"replicaCount": 3, "pdb": map[string]any{"enabled": true, "minAvailable": "50%"}},
		check: func(t *testing.T, m manifest, _ string) {
			pdb := get[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget/wukong")
			assert.Equal(t, "50%", pdb.Spec.MinAvailable.String())
		},
	}, {
		name:   "ServiceMonitor on the self-signed certificate (insecureSkipVerify opt-in)",
		values: map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true, "insecureSkipVerify": true}}},
		check: func(t *testing.T, m manifest, _ string) {
			ep := serviceMonitorEndpoint(t, m)
			assert.Equal(t, "https", ep["port"])
			assert.Equal(t, "https", ep["scheme"])
			assert.Equal(t, "/metrics", ep["path"])
			assert.Equal(t, true, ep["honorLabels"], "keep wukong_import_progress_ratio's namespace label")
			assert.Equal(t, map[string]any{"insecureSkipVerify": true}, ep["tlsConfig"])
			d, c := managerOf(t, m)
			assert.NotContains(t, strings.Join(c.Args, " "), "--metrics-cert-path")
			assert.Empty(t, d.Spec.Template.Spec.Volumes)
		},
	}, {
		name: "metrics certificate from cert-manager, the chart's own CA",
		values: map[string]any{"metrics": map[string]any{
			"certManager": map[string]any{"enabled": true}, "serviceMonitor": map[string]any{"enabled": true},
		}},
		check: func(t *testing.T, m manifest, _ string) {
			selfSigned := m["Issuer/wukong-metrics-selfsigned"]
			require.NotNil(t, selfSigned, "%v", m.keys())
			assert.Equal(t, "cert-manager.io/v1", selfSigned.GetAPIVersion())
			assert.Equal(t, map[string]any{"selfSigned": map[string]any{}}, selfSigned.Object["spec"])
			ca := m["Certificate/wukong-metrics-ca"]
			require.NotNil(t, ca)
			assert.Equal(t, true, ca.Object["spec"].(map[string]any)["isCA"])
			assert.Equal(t, "wukong-metrics-ca", ca.Object["spec"].(map[string]any)["secretName"])
			assert.Equal(t, map[string]any{"name": "wukong-metrics-selfsigned", "kind": "Issuer", "group": "cert-manager.io"},
				ca.Object["spec"].(map[string]any)["issuerRef"])
			caIssuer := m["Issuer/wukong-metrics-ca"]
			require.NotNil(t, caIssuer)
			assert.Equal(t, map[string]any{"ca": map[string]any{"secretName": "wukong-metrics-ca"}}, caIssuer.Object["spec"])

			spec := metricsCertificate(t, m)
			assert.Equal(t, map[string]any{"name": "wukong-metrics-ca", "kind": "Issuer", "group": "cert-manager.io"}, spec["issuerRef"])
			assertMountedMetricsCert(t, m, "wukong-metrics-tls")
		},
	}, {
		name: "metrics certificate from cert-manager, an administrator's issuer",
		values: map[string]any{"metrics": map[string]any{
			"certManager":    map[string]any{"enabled": true, "issuerRef": map[string]any{"kind": "ClusterIssuer", "name": "internal-ca"}},
			"serviceMonitor": map[string]any{"enabled": true},
		}},
		check: func(t *testing.T, m manifest, _ string) {
			for key, u := range m {
				assert.NotEqual(t, "Issuer", u.GetKind(), "no issuer of the chart's: %s", key)
			}
			assert.NotContains(t, m, "Certificate/wukong-metrics-ca")
			spec := metricsCertificate(t, m)
			assert.Equal(t, map[string]any{"name": "internal-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}, spec["issuerRef"])
			assertMountedMetricsCert(t, m, "wukong-metrics-tls")
		},
	}, {
		name: "metrics certificate from an administrator's Secret",
		values: map[string]any{"metrics": map[string]any{
			"secretName": "metrics-serving", "serviceMonitor": map[string]any{"enabled": true},
		}},
		check: func(t *testing.T, m manifest, _ string) {
			for key, u := range m {
				assert.NotEqual(t, "cert-manager.io/v1", u.GetAPIVersion(), "no cert-manager object: %s", key)
			}
			assertMountedMetricsCert(t, m, "metrics-serving")
		},
	}, {
		name:   "metrics certificate without a ServiceMonitor",
		values: map[string]any{"metrics": map[string]any{"secretName": "metrics-serving"}},
		check: func(t *testing.T, m manifest, _ string) {
			assert.NotContains(t, m, "ServiceMonitor/wukong")
			_, c := managerOf(t, m)
			assert.Contains(t, c.Args, "--metrics-cert-path=/etc/wukong/metrics-tls")
		},
	}, {
		name: "metrics NetworkPolicy",
		values: map[string]any{"metrics": map[string]any{"port": 9443, "networkPolicy": map[string]any{
			"enabled": true,
			"from": []any{map[string]any{
				"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}},
				"podSelector":       map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "prometheus"}},
			}},
		}}},
		check: func(t *testing.T, m manifest, _ string) {
			np := get[networkingv1.NetworkPolicy](t, m, "NetworkPolicy/wukong-metrics")
			d, _ := managerOf(t, m)
			assert.Equal(t, d.Spec.Selector.MatchLabels, np.Spec.PodSelector.MatchLabels, "selects the manager pods")
			assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, np.Spec.PolicyTypes)
			require.Len(t, np.Spec.Ingress, 1, "one rule: every other ingress is denied")
			port := intstr.FromInt32(9443)
			assert.Equal(t, []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: &port}}, np.Spec.Ingress[0].Ports)
			assert.Equal(t, []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
			}}, np.Spec.Ingress[0].From)
		},
	}, {
		name: "metrics disabled",
		values: map[string]any{"metrics": map[string]any{
			"enabled": false, "serviceMonitor": map[string]any{"enabled": true},
			"certManager":   map[string]any{"enabled": true},
			"networkPolicy": map[string]any{"enabled": true},
		}},
		check: func(t *testing.T, m manifest, _ string) {
			_, c := managerOf(t, m)
			assert.Contains(t, c.Args, "--metrics-bind-address=0")
			assert.NotContains(t, c.Args, "--metrics-secure=true")
			assert.Len(t, c.Ports, 1)
			assert.NotContains(t, m, "Service/wukong-metrics")
			assert.NotContains(t, m, "ServiceMonitor/wukong")
			assert.NotContains(t, m, "ClusterRole/wukong-metrics-reader")
			assert.NotContains(t, m, "Certificate/wukong-metrics")
			assert.NotContains(t, m, "NetworkPolicy/wukong-metrics")
			d, _ := managerOf(t, m)
			assert.Empty(t, d.Spec.Template.Spec.Volumes)
		},
	}, {
		name:   "metrics port",
		values: map[string]any{"metrics": map[string]any{"port": 9443}},
		check: func(t *testing.T, m manifest, _ string) {
			_, c := managerOf(t, m)
			assert.Contains(t, c.Args, "--metrics-bind-address=:9443")
			svc := get[corev1.Service](t, m, "Service/wukong-metrics")
			assert.Equal(t, int32(9443), svc.Spec.Ports[0].Port)
		},
	}, {
		name:   "CRDs disabled",
		values: map[string]any{"crds": map[string]any{"enabled": false}},
		check: func(t *testing.T, m manifest, notes string) {
			assert.NotContains(t, m, crdKey)
			assert.Contains(t, m, deployKey)
			assert.Contains(t, notes, "crds.enabled is false")
		},
	}, {
		name:   "CRD not kept",
		values: map[string]any{"crds": map[string]any{"keep": false}},
		check: func(t *testing.T, m manifest, notes string) {
			require.Contains(t, m, crdKey)
			assert.NotContains(t, m[crdKey].GetAnnotations(), keepKey)
			assert.Contains(t, m[crdKey].GetAnnotations(), "controller-gen.kubebuilder.io/version")
			assert.NotContains(t, notes, "CRD is kept")
		},
	}, {
		name:   "leader election disabled",
		values: map[string]any{"leaderElection": map[string]any{"enabled": false}},
		check: func(t *testing.T, m manifest, _ string) {
			_, c := managerOf(t, m)
			assert.NotContains(t, c.Args, "--leader-elect")
			assert.NotContains(t, strings.Join(c.Args, " "), "--leader-election-namespace")
			assert.NotContains(t, m, "Role/wukong-leader-election")
			assert.NotContains(t, m, "RoleBinding/wukong-leader-election")
		},
	}, {
		name: "image sources",
		values: map[string]any{"imageSources": map[string]any{
			"allowed": []any{"*", "quay.io", "*.images.example.com", "registry.infra.svc", "10.20.0.0/16"}, "clusterDomain": "corp.example",
		}},
		check: func(t *testing.T, m manifest, _ string) {
			_, c := managerOf(t, m)
			assert.Contains(t, c.Args, "--image-sources=*,quay.io,*.images.example.com,registry.infra.svc,10.20.0.0/16")
			assert.Contains(t, c.Args, "--cluster-domain=corp.example")
			assert.NotContains(t, m, "NetworkPolicy/wukong-cdi-importer-egress", "the importer NetworkPolicy is opt-in")
		},
	}, {
		name:   "no deprecation warnings",
		values: map[string]any{"deprecationWarnings": false},
		check: func(t *testing.T, m manifest, _ string) {
			assert.NotContains(t, m, "ValidatingAdmissionPolicy/wukong-inline-password")
			assert.NotContains(t, m, "ValidatingAdmissionPolicyBinding/wukong-inline-password")
		},
	}, {
		name: "logging, concurrency and image",
		values: map[string]any{
			"logLevel": "debug", "logFormat": "console", "concurrency": 8,
			"image": map[string]any{"repository": "registry.local/wukong", "tag": "dev", "pullPolicy": "Always"},
		},
		check: func(t *testing.T, m manifest, _ string) {
			_, c := managerOf(t, m)
			assert.Contains(t, c.Args, "--zap-log-level=debug")
			assert.Contains(t, c.Args, "--zap-encoder=console")
			assert.Contains(t, c.Args, "--concurrency=8")
			assert.Equal(t, "registry.local/wukong:dev", c.Image)
			assert.Equal(t, corev1.PullAlways, c.ImagePullPolicy)
		},
	}, {
		name: "scheduling, resources and pull secrets",
		values: map[string]any{
			"resources": map[string]any{
				"requests": map[string]any{"cpu": "250m", "memory": "256Mi"},
				"limits":   map[string]any{"memory": "1Gi"},
			},
			"nodeSelector":      map[string]any{"node-role.kubernetes.io/control-plane": ""},
			"tolerations":       []any{map[string]any{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}},
			"affinity":          map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "kubernetes.io/os", "operator": "In", "values": []any{"linux"}}}}}}}},
			"priorityClassName": "system-cluster-critical",
			"imagePullSecrets":  []any{map[string]any{"name": "regcred"}},
			"podAnnotations":    map[string]any{"example.com/team": "vms"},
			"fullnameOverride":  "vm-operator",
		},
		check: func(t *testing.T, m manifest, _ string) {
			d := get[appsv1.Deployment](t, m, "Deployment/vm-operator")
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			assert.Equal(t, corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				// Helm merges maps with the defaults: the default cpu limit stays.
				Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
			}, c.Resources)
			assert.Equal(t, map[string]string{"node-role.kubernetes.io/control-plane": ""}, pod.NodeSelector)
			assert.Equal(t, []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}, pod.Tolerations)
			require.NotNil(t, pod.Affinity)
			require.NotNil(t, pod.Affinity.NodeAffinity)
			assert.Equal(t, "system-cluster-critical", pod.PriorityClassName)
			assert.Equal(t, []corev1.LocalObjectReference{{Name: "regcred"}}, pod.ImagePullSecrets)
			assert.Equal(t, "vms", d.Spec.Template.Annotations["example.com/team"])
			assert.Equal(t, "vm-operator", pod.ServiceAccountName)
			assert.Contains(t, m, "ClusterRole/vm-operator-manager")
			assert.Contains(t, m, "ClusterRoleBinding/vm-operator-manager")
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := render(t, tc.values)
			require.NoError(t, err)
			tc.check(t, parse(t, rel.Manifest), rel.Info.Notes)

			linter := lint.AllWithKubeVersion(chartDir(t), tc.values, "wukong-system", kubeVersion)
			for _, msg := range linter.Messages {
				assert.Less(t, msg.Severity, support.WarningSev, "lint: %s", msg)
			}
		})
	}
}

// serviceMonitorEndpoint is the one endpoint of the rendered ServiceMonitor.
func serviceMonitorEndpoint(t *testing.T, m manifest) map[string]any {
	t.Helper()
	sm := m["ServiceMonitor/wukong"]
	require.NotNil(t, sm, "%v", m.keys())
	assert.Equal(t, "monitoring.coreos.com/v1", sm.GetAPIVersion())
	endpoints, _, _ := unstructuredSlice(sm.Object, "spec", "endpoints")
	require.Len(t, endpoints, 1)
	return endpoints[0].(map[string]any)
}

// metricsCertificate is the spec of cert-manager's Certificate for the
// metrics Service: its names, into wukong-metrics-tls.
func metricsCertificate(t *testing.T, m manifest) map[string]any {
	t.Helper()
	cert := m["Certificate/wukong-metrics"]
	require.NotNil(t, cert, "%v", m.keys())
	assert.Equal(t, "cert-manager.io/v1", cert.GetAPIVersion())
	assert.Equal(t, "wukong-system", cert.GetNamespace())
	spec := cert.Object["spec"].(map[string]any)
	assert.Equal(t, "wukong-metrics-tls", spec["secretName"])
	assert.Equal(t, []any{"wukong-metrics", "wukong-metrics.wukong-system", "wukong-metrics.wukong-system.svc"}, spec["dnsNames"])
	assert.Contains(t, spec["usages"], "server auth")
	return spec
}

// assertMountedMetricsCert: the manager serves metrics with the certificate
// of secret, mounted read-only, and the ServiceMonitor (when rendered)
// verifies it against the Secret's ca.crt for the Service's name.
func assertMountedMetricsCert(t *testing.T, m manifest, secret string) {
	t.Helper()
	d, c := managerOf(t, m)
	assert.Contains(t, c.Args, "--metrics-cert-path=/etc/wukong/metrics-tls")
	assert.Equal(t, []corev1.VolumeMount{{Name: "metrics-tls", MountPath: "/etc/wukong/metrics-tls", ReadOnly: true}}, c.VolumeMounts)
	assert.Equal(t, []corev1.Volume{{Name: "metrics-tls", VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: secret, DefaultMode: nil},
	}}}, d.Spec.Template.Spec.Volumes)
	if _, ok := m["ServiceMonitor/wukong"]; !ok {
		return
	}
	ep := serviceMonitorEndpoint(t, m)
	assert.Equal(t, map[string]any{
		"serverName": "wukong-metrics.wukong-system.svc",
		"ca":         map[string]any{"secret": map[string]any{"name": secret, "key": "ca.crt"}},
	}, ep["tlsConfig"], "verified, never insecureSkipVerify")
}

func unstructuredSlice(obj map[string]any, fields ...string) ([]any, bool, error) {
	cur := any(obj)
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[f]
	}
	s, ok := cur.([]any)
	return s, ok, nil
}

// TestRenderRefuses checks combinations the templates refuse, and values
// the schema rejects, fail with a message naming the value.
func TestRenderRefuses(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"replicaCount a string", map[string]any{"replicaCount": "two"}, []string{"at '/replicaCount': got string, want integer"}},
		{"logLevel not in the enum", map[string]any{"logLevel": "verbose"}, []string{"at '/logLevel': value must be one of 'info', 'debug', 'error'"}},
		{"logFormat not in the enum", map[string]any{"logFormat": "text"}, []string{"logFormat"}},
		{"unknown top-level key", map[string]any{"replicas": 2}, []string{"additional properties 'replicas' not allowed"}},
		{"unknown nested key", map[string]any{"crds": map[string]any{"install": true}}, []string{"at '/crds': additional properties 'install' not allowed"}},
		{"pullPolicy not in the enum", map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}, []string{"pullPolicy"}},
		{"watchNamespaces not a list", map[string]any{"watchNamespaces": "team-a"}, []string{"watchNamespaces", "array"}},
		{"watchNamespaces not a name", map[string]any{"watchNamespaces": []any{"Team_A"}}, []string{"watchNamespaces"}},
		{"concurrency zero", map[string]any{"concurrency": 0}, []string{"concurrency"}},
		{"image source a URL", map[string]any{"imageSources": map[string]any{"allowed": []any{"https://quay.io/x"}}}, []string{"imageSources"}},
		{"importer policy without denied CIDRs", map[string]any{"imageSources": map[string]any{"importerNetworkPolicy": map[string]any{"deniedCIDRs": []any{}}}}, []string{"deniedCIDRs"}},
		{"crds.keep a string", map[string]any{"crds": map[string]any{"keep": "yes"}}, []string{"keep", "boolean"}},
		{"metrics port out of range", map[string]any{"metrics": map[string]any{"port": 70000}}, []string{"port"}},
		{"PodDisruptionBudget over one replica", map[string]any{"pdb": map[string]any{"enabled": true}}, []string{"pdb.enabled needs replicaCount of 2 or more"}},
		{"ServiceMonitor without a verifiable certificate", map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
			[]string{"metrics.serviceMonitor needs a certificate it can verify", "insecureSkipVerify=true"}},
		{"insecureSkipVerify with a certificate", map[string]any{"metrics": map[string]any{
			"certManager": map[string]any{"enabled": true}, "serviceMonitor": map[string]any{"enabled": true, "insecureSkipVerify": true},
		}}, []string{"insecureSkipVerify is only for the self-signed default"}},
		{"two metrics certificates", map[string]any{"metrics": map[string]any{"certManager": map[string]any{"enabled": true}, "secretName": "x"}},
			[]string{"metrics.certManager.enabled and metrics.secretName"}},
		{"metrics secretName not a name", map[string]any{"metrics": map[string]any{"secretName": "My_Secret"}}, []string{"secretName"}},
		{"issuerRef kind without a name", map[string]any{"metrics": map[string]any{"certManager": map[string]any{"enabled": true, "issuerRef": map[string]any{"kind": "ClusterIssuer"}}}},
			[]string{"issuerRef"}},
		{"NetworkPolicy without from", map[string]any{"metrics": map[string]any{"networkPolicy": map[string]any{"enabled": true}}},
			[]string{"metrics.networkPolicy.enabled needs metrics.networkPolicy.from"}},
		{"NetworkPolicy peer not a peer", map[string]any{"metrics": map[string]any{"networkPolicy": map[string]any{"enabled": true, "from": []any{map[string]any{"namespace": "monitoring"}}}}},
			[]string{"from"}},
		{"replicas without leader election", map[string]any{"replicaCount": 2, "leaderElection": map[string]any{"enabled": false}}, []string{"replicaCount above 1 needs leaderElection.enabled"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			t.Logf("%v", err)
		})
	}
}

// TestDrift checks the chart's CRD and ClusterRoles equal controller-gen's
// output (run scripts/gen-chart.sh, or make generate, when this fails): the
// manager's cluster-wide rules, and the ones it needs in watched namespaces.
func TestDrift(t *testing.T) {
	want := fromYAMLFile[apiextensionsv1.CustomResourceDefinition](t, repoPath(t, "operator", "config", "crd", "vm.novasphere.dev_wukongs.yaml"))
	roles := readGeneratedRoles(t)

	for _, keep := range []bool{true, false} {
		rel, err := render(t, map[string]any{"crds": map[string]any{"keep": keep}})
		require.NoError(t, err)
		m := parse(t, rel.Manifest)
		got := get[apiextensionsv1.CustomResourceDefinition](t, m, crdKey)
		if keep {
			assert.Equal(t, "keep", got.Annotations[keepKey])
			delete(got.Annotations, keepKey)
		}
		assert.Equal(t, want, got, "chart CRD differs from operator/config/crd (keep=%v)", keep)

		role := get[rbacv1.ClusterRole](t, m, "ClusterRole/wukong-manager")
		assert.Equal(t, roles.Cluster.Rules, role.Rules, "chart ClusterRole rules differ from role.yaml's ClusterRole")
		role = get[rbacv1.ClusterRole](t, m, "ClusterRole/wukong-manager-namespaced")
		assert.Equal(t, roles.Namespaced.Rules, role.Rules, "chart ClusterRole -namespaced differs from role.yaml's Role \"watched\"")
		role = get[rbacv1.ClusterRole](t, m, "ClusterRole/wukong-manager-global-nads")
		assert.Equal(t, roles.GlobalNADs.Rules, role.Rules, "chart ClusterRole -global-nads differs from role.yaml's Role \"global-nads\"")
	}
}

// TestRenderImporterNetworkPolicy: with imageSources.importerNetworkPolicy
// enabled, each listed namespace gets one NetworkPolicy selecting only CDI's
// importer pods, allowing DNS to the cluster DNS pods and every address but
// the denied ranges, IPv4 and IPv6 each in their own ipBlock.
func TestRenderImporterNetworkPolicy(t *testing.T) {
	vals := map[string]any{"imageSources": map[string]any{"importerNetworkPolicy": map[string]any{
		"enabled": true, "namespaces": []any{"team-a", "team-b"},
	}}}
	rel, err := render(t, vals)
	require.NoError(t, err)
	var policies []networkingv1.NetworkPolicy
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var np networkingv1.NetworkPolicy
		require.NoError(t, yaml.Unmarshal([]byte(doc), &np))
		if np.Kind == "NetworkPolicy" {
			policies = append(policies, np)
		}
	}
	require.Len(t, policies, 2)
	sort.Slice(policies, func(i, j int) bool { return policies[i].Namespace < policies[j].Namespace })
	for i, ns := range []string{"team-a", "team-b"} {
		np := policies[i]
		assert.Equal(t, ns, np.Namespace)
		assert.Equal(t, "wukong-cdi-importer-egress", np.Name)
		assert.Equal(t, map[string]string{"app": "containerized-data-importer"}, np.Spec.PodSelector.MatchLabels)
		assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, np.Spec.PolicyTypes)
		require.Len(t, np.Spec.Egress, 2)
		dns := np.Spec.Egress[0]
		require.Len(t, dns.To, 1)
		assert.Equal(t, map[string]string{"kubernetes.io/metadata.name": "kube-system"}, dns.To[0].NamespaceSelector.MatchLabels)
		assert.Equal(t, map[string]string{"k8s-app": "kube-dns"}, dns.To[0].PodSelector.MatchLabels)
		assert.Len(t, dns.Ports, 2)
		out := np.Spec.Egress[1]
		require.Len(t, out.To, 2)
		assert.Equal(t, &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{
			"169.254.0.0/16", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
		}}, out.To[0].IPBlock)
		assert.Equal(t, &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"fe80::/10", "fc00::/7"}}, out.To[1].IPBlock)
		assert.Empty(t, out.Ports, "every port")
	}
	linter := lint.AllWithKubeVersion(chartDir(t), vals, "wukong-system", kubeVersion)
	for _, msg := range linter.Messages {
		assert.Less(t, msg.Severity, support.WarningSev, "lint: %s", msg)
	}
}

// TestRenderNodeLoss: the node-loss policy is off by default (no flag, no
// right to delete pods); nodeLoss.restartAfter passes the flag and grants
// pods list/delete where the manager watches, nothing more.
func TestRenderNodeLoss(t *testing.T) {
	rel, err := render(t, nil)
	require.NoError(t, err)
	m := parse(t, rel.Manifest)
	_, c := managerOf(t, m)
	for _, a := range c.Args {
		assert.NotContains(t, a, "--node-loss-restart-after")
		assert.NotContains(t, a, "--default-eviction-strategy")
	}
	assert.NotContains(t, m.keys(), "ClusterRole/wukong-manager-node-loss")

	rel, err = render(t, map[string]any{
		"nodeLoss": map[string]any{"restartAfter": "5m"}, "defaultEvictionStrategy": "LiveMigrate",
		"watchNamespaces": []any{"team-a"},
	})
	require.NoError(t, err)
	m = parse(t, rel.Manifest)
	_, c = managerOf(t, m)
	assert.Contains(t, c.Args, "--node-loss-restart-after=5m")
	assert.Contains(t, c.Args, "--default-eviction-strategy=LiveMigrate")
	role := get[rbacv1.ClusterRole](t, m, "ClusterRole/wukong-manager-node-loss")
	require.Len(t, role.Rules, 1)
	assert.Equal(t, []string{"pods"}, role.Rules[0].Resources)
	assert.Equal(t, []string{"delete", "list"}, role.Rules[0].Verbs)
	rb := get[rbacv1.RoleBinding](t, m, "RoleBinding/wukong-manager-node-loss")
	assert.Equal(t, "wukong-manager-node-loss", rb.RoleRef.Name)
	assert.Equal(t, "team-a", rb.Namespace)
	assert.NotContains(t, m.keys(), "ClusterRoleBinding/wukong-manager-node-loss")

	_, err = render(t, map[string]any{"defaultEvictionStrategy": "Migrate"})
	assert.Error(t, err, "the values schema refuses an unknown strategy")
}

// TestRenderClusterID: clusterID becomes --cluster-id; unset, the flag is
// absent (the manager reads kube-system's UID).
func TestRenderClusterID(t *testing.T) {
	rel, err := render(t, nil)
	require.NoError(t, err)
	_, c := managerOf(t, parse(t, rel.Manifest))
	for _, a := range c.Args {
		assert.NotContains(t, a, "--cluster-id")
	}
	rel, err = render(t, map[string]any{"clusterID": "dc1-prod"})
	require.NoError(t, err)
	_, c = managerOf(t, parse(t, rel.Manifest))
	assert.Contains(t, c.Args, "--cluster-id=dc1-prod")
}

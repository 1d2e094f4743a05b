package e2e_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestTenantImageSources: a tenant cannot make CDI's importer fetch the
// node's metadata endpoint or a Service of the cluster into a disk it
// boots. Under the default image sources (no allow-list) a disk image, an
// osImage imported into the boot disk and an osImage booted as a container
// disk naming such hosts make the Wukong Stalled (ImageSourceNotAllowed)
// naming the field, with no DataVolume and no VirtualMachine written; the
// answer for a Service that exists and one that does not is the same.
func TestTenantImageSources(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindDataVolume)
	t.Parallel()
	ns := newNamespace(t)
	alice := tenant(t, ns, "alice-"+randSuffix())

	cases := []struct {
		name, field string
		mutate      func(*v1alpha1.Wukong)
	}{
		{"metadata", "spec.disks[0].image", func(w *v1alpha1.Wukong) {
			w.Spec.Disks[0].Image = "http://169.254.169.254/latest/meta-data"
		}},
		{"apiserver", "spec.disks[0].image", func(w *v1alpha1.Wukong) {
			w.Spec.Disks[0].Image = "https://kubernetes.default.svc/api/v1/secrets"
		}},
		{"noservice", "spec.disks[0].image", func(w *v1alpha1.Wukong) {
			w.Spec.Disks[0].Image = "https://no-such-service.default.svc/api/v1/secrets"
		}},
		{"search-path", "spec.disks[0].image", func(w *v1alpha1.Wukong) {
			w.Spec.Disks[0].Image = "http://kubernetes.default/api/v1/secrets" // Service kubernetes of namespace default
		}},
		{"os-import", "spec.osImage", func(w *v1alpha1.Wukong) {
			w.Spec.OSImage = "docker://registry.kube-system.svc.cluster.local:5000/os:1"
		}},
		{"container-disk", "spec.osImage", func(w *v1alpha1.Wukong) {
			w.Spec.Disks = nil
			// A loopback IP, not the name localhost: make
			// local-cluster-up allows localhost by name (its images are
			// localhost/wukong/...), no installation allows this.
			w.Spec.OSImage = "127.0.0.1:5000/os:1"
		}},
	}
	msgs := map[string]string{}
	for _, tc := range cases {
		w := newWukong(ns, tc.name)
		tc.mutate(w)
		require.NoError(t, alice.Create(ctxT(t), w), tc.name)
	}
	for _, tc := range cases {
		nn := types.NamespacedName{Namespace: ns, Name: tc.name}
		msgs[tc.name] = stalledMessage(t, alice, nn, tc.field, v1alpha1.ReasonImageSourceNotAllowed)
		assertGone(t, &cdiv1.DataVolume{}, types.NamespacedName{Namespace: ns, Name: tc.name + "-root"})
	}
	assert.Contains(t, msgs["metadata"], `"169.254.169.254" is not allowed`)
	assert.Contains(t, msgs["metadata"], "link-local")
	assert.Equal(t, msgs["apiserver"], strings.ReplaceAll(msgs["noservice"], "no-such-service", "kubernetes"),
		"the answer does not reveal whether the Service exists")
}

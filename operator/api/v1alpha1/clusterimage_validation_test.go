package v1alpha1_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestClusterImageValidation checks the CRD's schema and CEL rules of
// ClusterImage on a real API server.
func TestClusterImageValidation(t *testing.T) {
	const head = "apiVersion: vm.novasphere.dev/v1alpha1\nkind: ClusterImage\nmetadata:\n  name: "
	for _, tc := range []struct {
		name, manifest string
		ok             bool
		want           []string
	}{
		{"http source", head + "ok-http\nspec:\n  source: https://images.example.org/u.qcow2\n  size: 10Gi\n  namespaceSelector: {}\n", true, nil},
		{"registry with a schedule", head + "ok-cron\nspec:\n  source: quay.io/containerdisks/ubuntu:24.04\n  size: 10Gi\n  schedule: \"0 */12 * * *\"\n  importsToKeep: 2\n", true, nil},
		{"schedule on http", head + "bad-cron\nspec:\n  source: http://images.example.org/u.qcow2\n  size: 10Gi\n  schedule: \"0 0 * * *\"\n", false,
			[]string{"spec.schedule", "DataImportCron polls registries"}},
		{"importsToKeep without schedule", head + "bad-keep\nspec:\n  source: quay.io/a/b:1\n  size: 10Gi\n  importsToKeep: 2\n", false, []string{"spec.importsToKeep", "needs schedule"}},
		{"size zero", head + "bad-size\nspec:\n  source: quay.io/a/b:1\n  size: \"0\"\n", false, []string{"spec.size", "greater than zero"}},
		{"source required", head + "bad-source\nspec:\n  size: 1Gi\n", false, []string{"spec.source"}},
		{"name starting with a digit", head + "1ubuntu\nspec:\n  source: quay.io/a/b:1\n  size: 1Gi\n", false, []string{"metadata.name"}},
	} {
		t.Run(tc.name, func(t *testing.T) { requireAdmission(t, create(t, "", tc.manifest), tc.ok, tc.want...) })
	}

	// source is immutable; the rest is not.
	ctx := context.Background()
	img := &v1alpha1.ClusterImage{ObjectMeta: metav1.ObjectMeta{Name: "immutable"},
		Spec: v1alpha1.ClusterImageSpec{Source: "quay.io/a/b:1", Size: resource.MustParse("1Gi")}}
	require.NoError(t, k8s.Create(ctx, img))
	img.Spec.NamespaceSelector = &metav1.LabelSelector{}
	require.NoError(t, k8s.Update(ctx, img), "namespaceSelector may change")
	img.Spec.Source = "quay.io/a/b:2"
	requireAdmission(t, k8s.Update(ctx, img), false, "source is immutable")
}

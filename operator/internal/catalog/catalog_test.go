package catalog

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestNamespaceAllowed(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"team": "a"}}}
	cases := []struct {
		name string
		sel  *metav1.LabelSelector
		want bool
	}{
		{name: "omitted selects none", sel: nil, want: false},
		{name: "empty selects every namespace", sel: &metav1.LabelSelector{}, want: true},
		{name: "matching label", sel: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}, want: true},
		{name: "other label", sel: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}, want: false},
		{name: "expression", sel: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "c"}}}}, want: true},
		{name: "invalid selector selects none", sel: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Bogus"}}}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := &v1alpha1.ClusterImage{Spec: v1alpha1.ClusterImageSpec{NamespaceSelector: tc.sel}}
			assert.Equal(t, tc.want, NamespaceAllowed(img, ns))
		})
	}
}

// TestRefusedMessage: the message names the image and the namespace only,
// nothing that depends on whether the image exists.
func TestRefusedMessage(t *testing.T) {
	m := RefusedMessage("ubuntu", "team-a")
	assert.Contains(t, m, "ClusterImage ubuntu")
	assert.Contains(t, m, "namespace team-a")
	assert.Equal(t, m, RefusedMessage("ubuntu", "team-a"))
}

func TestDataSourceName(t *testing.T) {
	long := strings.Repeat("a", 40)
	cases := []struct {
		name, image, class, want string
	}{
		{name: "plain", image: "ubuntu", class: "standard", want: "ubuntu-standard"},
		{name: "a class with dots is hashed", image: "ubuntu", class: "csi.example.com"},
		{name: "too long is hashed", image: long, class: strings.Repeat("b", 30)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DataSourceName(tc.image, tc.class)
			if tc.want != "" {
				assert.Equal(t, tc.want, got)
			} else {
				assert.True(t, strings.HasPrefix(got, tc.image+"-"), got)
				assert.Len(t, got, len(tc.image)+11)
			}
			assert.Empty(t, validation.IsDNS1035Label(got), "a DNS-1035 label (CDI's managedDataSource): %q", got)
			assert.Equal(t, got, DataSourceName(tc.image, tc.class), "stable")
		})
	}
	assert.NotEqual(t, DataSourceName("u", "csi.a"), DataSourceName("u", "csi.b"), "distinct classes, distinct names")
}

func TestCopyFor(t *testing.T) {
	img := &v1alpha1.ClusterImage{Status: v1alpha1.ClusterImageStatus{Copies: []v1alpha1.ClusterImageCopy{
		{StorageClassName: "fast", DataSourceName: "img-fast"},
		{StorageClassName: "standard", DataSourceName: "img-standard"},
	}}}
	assert.Equal(t, "img-standard", CopyFor(img, "standard").DataSourceName, "the disk's class")
	assert.Equal(t, "img-fast", CopyFor(img, "other").DataSourceName, "else the first copy (CDI copies across classes)")
	assert.Nil(t, CopyFor(&v1alpha1.ClusterImage{}, "standard"), "no copies yet")
}

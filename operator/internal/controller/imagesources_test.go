package controller

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/imagesource"
)

// TestCheckImageSources: each refused source is a problem naming the field
// the user wrote (a disk's image, osImage on the boot disk, osImage as the
// container disk), its disk is marked not to be written, and the VM is
// blocked; sources the disk step refuses (InvalidSpec) are left to it; a
// failed Namespace lookup blocks without a problem and is retried.
func TestCheckImageSources(t *testing.T) {
	scheme := testScheme(t, corev1.AddToScheme)
	disk := func(name, image string) v1alpha1.DiskSpec {
		return v1alpha1.DiskSpec{Name: name, Size: resource.MustParse("1Gi"), Image: image}
	}
	tests := []struct {
		name    string
		spec    v1alpha1.WukongSpec
		policy  []string
		fields  []string // problems' fields, in order
		refused []string // disks not written
	}{
		{name: "public sources", spec: v1alpha1.WukongSpec{OSImage: "quay.io/a/b:1", Disks: []v1alpha1.DiskSpec{disk("root", ""), disk("data", "https://images.example.org/d.img")}}},
		{name: "a disk's image", spec: v1alpha1.WukongSpec{Disks: []v1alpha1.DiskSpec{disk("root", ""), disk("data", "http://169.254.169.254/latest")}},
			fields: []string{"spec.disks[1].image"}, refused: []string{"data"}},
		{name: "osImage on the boot disk", spec: v1alpha1.WukongSpec{OSImage: "docker://registry.infra.svc/os:1", Disks: []v1alpha1.DiskSpec{disk("root", "")}},
			fields: []string{"spec.osImage"}, refused: []string{"root"}},
		{name: "the boot disk's own image wins over osImage", spec: v1alpha1.WukongSpec{OSImage: "quay.io/a/b:1", Disks: []v1alpha1.DiskSpec{disk("root", "http://10.0.0.1/x")}},
			fields: []string{"spec.disks[0].image"}, refused: []string{"root"}},
		{name: "osImage as the container disk", spec: v1alpha1.WukongSpec{OSImage: "localhost:5000/os:1"},
			fields: []string{"spec.osImage"}},
		{name: "service.namespace", spec: v1alpha1.WukongSpec{Disks: []v1alpha1.DiskSpec{disk("root", "http://minio.team-a/x")}},
			fields: []string{"spec.disks[0].image"}, refused: []string{"root"}},
		{name: "invalid sources are the disk step's", spec: v1alpha1.WukongSpec{Disks: []v1alpha1.DiskSpec{disk("root", "ftp://10.0.0.1/x")}}},
		{name: "an administrator's entry", policy: []string{"registry.infra.svc"}, spec: v1alpha1.WukongSpec{OSImage: "docker://registry.infra.svc/os:1", Disks: []v1alpha1.DiskSpec{disk("root", "")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}).Build()
			p, err := imagesource.New(tc.policy, "")
			require.NoError(t, err)
			r := &WukongReconciler{Client: c, ImageSources: p}
			s := &scope{w: &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "w"}, Spec: tc.spec}}
			require.NoError(t, r.checkImageSources(context.Background(), s))
			var fields []string
			for _, p := range s.problems {
				assert.Equal(t, v1alpha1.ReasonImageSourceNotAllowed, p.Reason)
				fields = append(fields, p.Field)
			}
			assert.Equal(t, tc.fields, fields)
			var refused []string
			for _, d := range tc.spec.Disks {
				if s.sourceRefused[d.Name] {
					refused = append(refused, d.Name)
				}
			}
			assert.Equal(t, tc.refused, refused)
			assert.Equal(t, len(tc.fields) > 0, s.sourceBlocked)
			if s.sourceBlocked {
				assert.NotEmpty(t, r.machineBlocked(s))
			}
		})
	}

	t.Run("a failed lookup blocks without a problem", func(t *testing.T) {
		c := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
			Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
				return errors.New("API down")
			},
		}).Build()
		r := &WukongReconciler{Client: c}
		s := &scope{w: &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "w"},
			Spec: v1alpha1.WukongSpec{Disks: []v1alpha1.DiskSpec{disk("root", "https://images.example.org/x")}}}}
		require.Error(t, r.checkImageSources(context.Background(), s))
		assert.Empty(t, s.problems)
		assert.True(t, s.sourceRefused["root"])
		assert.Equal(t, "waiting for the image sources to be checked", r.machineBlocked(s))
	})
}

package mapping

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestImageAccess: a disk's own image takes its imageAccess, the boot disk
// importing osImage takes spec.osImageAccess, and the fields a lib/storage
// failure names map back to the one the user wrote.
func TestImageAccess(t *testing.T) {
	w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Name: "vm"}, Spec: v1alpha1.WukongSpec{
		OSImage:       "https://images.corp.example/os.qcow2",
		OSImageAccess: &v1alpha1.ImageAccess{CertConfigMap: "corp-ca"},
		Disks: []v1alpha1.DiskSpec{
			{Name: "root", Size: resource.MustParse("10Gi")},
			{Name: "data", Size: resource.MustParse("1Gi"), Image: "registry.corp.example/data:1", ImageAccess: &v1alpha1.ImageAccess{SecretRef: "login"}},
			{Name: "scratch", Size: resource.MustParse("1Gi")},
		},
	}}
	disks := Disks(w)
	assert.Equal(t, "corp-ca", disks[0].CertConfigMap)
	assert.Empty(t, disks[0].SecretRef)
	assert.Equal(t, "login", disks[1].SecretRef)
	assert.Empty(t, disks[1].CertConfigMap)
	assert.Empty(t, disks[2].CertConfigMap+disks[2].SecretRef, "a blank disk takes none")

	assert.Equal(t, "spec.osImageAccess.certConfigMap", DiskField(w, 0, "certConfigMap"))
	assert.Equal(t, "spec.disks[1].imageAccess.secretRef", DiskField(w, 1, "secretRef"))

	cd := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Name: "cd"}, Spec: v1alpha1.WukongSpec{OSImage: "registry.corp.example/os:1", OSImagePullSecret: "pull"}}
	m, err := Machine(cd, nil, nil, nil)
	assert.NoError(t, err)
	assert.Equal(t, "pull", m.ContainerDiskPullSecret)
	m, err = Machine(w, nil, nil, nil)
	assert.NoError(t, err)
	assert.Empty(t, m.ContainerDiskPullSecret)
}

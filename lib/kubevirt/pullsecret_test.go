package kubevirt

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestContainerDiskPullSecret: the container disk carries the pull Secret
// (KubeVirt's containerDisk.imagePullSecret, which virt-controller adds to
// the launcher pod's imagePullSecrets); none without one.
func TestContainerDiskPullSecret(t *testing.T) {
	for _, tt := range []struct{ name, secret string }{{"with a pull secret", "registry-login"}, {"without", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			m := with(func(m *Machine) {
				m.Disks = nil
				m.ContainerDiskImage = "registry.example.org/guest:1"
				m.ContainerDiskPullSecret = tt.secret
			})
			vm := BuildVM(testID, testOwner(), m)
			cd := volume(t, vm, ContainerDiskName).ContainerDisk
			assert.Equal(t, "registry.example.org/guest:1", cd.Image)
			assert.Equal(t, tt.secret, cd.ImagePullSecret)
		})
	}
}

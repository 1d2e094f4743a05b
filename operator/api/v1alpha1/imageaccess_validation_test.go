package v1alpha1_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestImageAccessAdmission: imageAccess goes with a disk's own image,
// osImageAccess with osImage, osImagePullSecret with osImage booted as a
// container disk (no disks); names are object names.
func TestImageAccessAdmission(t *testing.T) {
	ns := newNamespace(t)
	requireAccepted(t, ns, "ok",
		"spec:\n  disks:\n  - name: d\n    size: 1Gi\n    image: https://images.corp.example/a.qcow2\n    imageAccess:\n      certConfigMap: corp-ca\n      secretRef: corp-login\n",
		"spec:\n  osImage: https://images.corp.example/a.qcow2\n  osImageAccess:\n    certConfigMap: corp-ca\n  disks:\n  - name: d\n    size: 1Gi\n",
		"spec:\n  osImage: registry.corp.example/os:1\n  osImagePullSecret: pull\n",
	)
	for i, tc := range []struct{ spec, want string }{
		{"spec:\n  disks:\n  - name: d\n    size: 1Gi\n    imageAccess:\n      secretRef: corp-login\n", "imageAccess applies only to a disk's own image"},
		{"spec:\n  osImageAccess:\n    secretRef: corp-login\n  disks:\n  - name: d\n    size: 1Gi\n", "osImageAccess applies only to osImage"},
		{"spec:\n  osImage: registry.corp.example/os:1\n  osImagePullSecret: pull\n  disks:\n  - name: d\n    size: 1Gi\n", "osImagePullSecret applies only to osImage booted as a container disk"},
		{"spec:\n  disks:\n  - name: d\n    size: 1Gi\n    image: https://images.corp.example/a.qcow2\n    imageAccess:\n      certConfigMap: Not_A_Name\n", "certConfigMap"},
	} {
		err := create(t, ns, fmt.Sprintf(header, fmt.Sprintf("bad-%d", i))+tc.spec)
		if assert.Error(t, err, "manifest %d", i) {
			assert.Contains(t, err.Error(), tc.want, "manifest %d", i)
		}
	}
}

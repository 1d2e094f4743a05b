package v1alpha1_test

import "testing"

// TestImageAccessAdmission: imageAccess goes with a disk's own image,
// osImageAccess with osImage, osImagePullSecret with osImage booted as a
// container disk (no disks); names are object names.
func TestImageAccessAdmission(t *testing.T) {
	ns := newNamespace(t)
	checkAdmission(t, []admissionCase{
		{"a disk's image with imageAccess", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n    image: https://images.corp.example/a.qcow2\n    imageAccess:\n      certConfigMap: corp-ca\n      secretRef: corp-login\n", true, "", ""},
		{"osImage with osImageAccess", "spec:\n  osImage: https://images.corp.example/a.qcow2\n  osImageAccess:\n    certConfigMap: corp-ca\n  disks:\n  - name: d\n    size: 1Gi\n", true, "", ""},
		{"osImage as a container disk with osImagePullSecret", "spec:\n  osImage: registry.corp.example/os:1\n  osImagePullSecret: pull\n", true, "", ""},
		{"imageAccess on a disk without an image", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n    imageAccess:\n      secretRef: corp-login\n", false, "", "imageAccess applies only to a disk's own image"},
		{"osImageAccess without osImage", "spec:\n  osImageAccess:\n    secretRef: corp-login\n  disks:\n  - name: d\n    size: 1Gi\n", false, "", "osImageAccess applies only to osImage"},
		{"osImagePullSecret with disks", "spec:\n  osImage: registry.corp.example/os:1\n  osImagePullSecret: pull\n  disks:\n  - name: d\n    size: 1Gi\n", false, "", "osImagePullSecret applies only to osImage booted as a container disk"},
		{"certConfigMap not a name", "spec:\n  disks:\n  - name: d\n    size: 1Gi\n    image: https://images.corp.example/a.qcow2\n    imageAccess:\n      certConfigMap: Not_A_Name\n", false, "certConfigMap", ""},
	}, numberedWukongs(ns, "ia"))
}

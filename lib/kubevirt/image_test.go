package kubevirt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestContainerDiskImage(t *testing.T) {
	tests := []struct {
		name   string
		source string
		want   string // empty: an error is expected
		errHas string
	}{
		// Accepted: the scheme goes, everything else of the reference stays.
		{name: "docker scheme, registry, tag", source: "docker://quay.io/containerdisks/fedora:40", want: "quay.io/containerdisks/fedora:40"},
		{name: "bare reference, registry, tag", source: "quay.io/containerdisks/fedora:40", want: "quay.io/containerdisks/fedora:40"},
		{name: "docker scheme, digest", source: "docker://quay.io/containerdisks/fedora@" + testDigest, want: "quay.io/containerdisks/fedora@" + testDigest},
		{name: "tag and digest", source: "quay.io/containerdisks/fedora:40@" + testDigest, want: "quay.io/containerdisks/fedora:40@" + testDigest},
		{name: "registry with port", source: "docker://registry.example.org:5000/os/debian:12", want: "registry.example.org:5000/os/debian:12"},
		{name: "localhost with port", source: "localhost:5000/x", want: "localhost:5000/x"},
		{name: "docker scheme, localhost with port", source: "docker://localhost:5000/x:1.0", want: "localhost:5000/x:1.0"},
		{name: "IP registry with port", source: "10.0.0.7:5000/guest/alpine:3.20", want: "10.0.0.7:5000/guest/alpine:3.20"},
		{name: "no tag stays without tag", source: "docker://quay.io/containerdisks/fedora", want: "quay.io/containerdisks/fedora"},
		{name: "official image is qualified like Docker", source: "docker://fedora:40", want: "docker.io/library/fedora:40"},
		{name: "Docker Hub user image is qualified", source: "kubevirt/fedora-cloud-container-disk-demo:latest", want: "docker.io/kubevirt/fedora-cloud-container-disk-demo:latest"},
		{name: "explicit docker.io kept qualified", source: "docker.io/library/ubuntu:24.04", want: "docker.io/library/ubuntu:24.04"},
		{name: "tag with dots, dashes and underscores", source: "quay.io/a/b:v1.2_rc-3", want: "quay.io/a/b:v1.2_rc-3"},

		// Refused, with the reason in the message.
		{name: "empty", source: "", errHas: "must not be empty"},
		{name: "docker scheme only", source: "docker://", errHas: "not a valid container image reference"},
		{name: "https URL", source: "https://images.example.org/guest.qcow2", errHas: "add a disk"},
		{name: "http URL", source: "http://images.example.org/guest.img", errHas: "http(s) URL"},
		{name: "other scheme", source: "oci://quay.io/x:1", errHas: `unsupported scheme "oci"`},
		{name: "double scheme", source: "docker://docker://quay.io/x:1", errHas: "not a valid container image reference"},
		{name: "upper case repository", source: "quay.io/ContainerDisks/fedora:40", errHas: "must be lowercase"},
		{name: "bad tag", source: "quay.io/x:-bad", errHas: "not a valid container image reference"},
		{name: "tag too long", source: "quay.io/x:" + strings.Repeat("a", 129), errHas: "not a valid container image reference"},
		{name: "bad digest", source: "quay.io/x@sha256:1234", errHas: "not a valid container image reference"},
		{name: "empty port", source: "localhost:/x", errHas: "not a valid container image reference"},
		{name: "trailing colon", source: "quay.io/x:", errHas: "not a valid container image reference"},
		{name: "space", source: "quay.io/x y", errHas: "not a valid container image reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ContainerDiskImage(tt.source)
			if tt.errHas == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				assert.NotContains(t, got, "://")
				return
			}
			require.Error(t, err, "got %q", got)
			assert.Contains(t, requireInvalid(t, err, "containerDiskImage"), tt.errHas)
		})
	}
}

// TestBuildVMContainerDiskImageHasNoScheme: the VM carries the plain
// reference whatever form the machine was given.
func TestBuildVMContainerDiskImageHasNoScheme(t *testing.T) {
	for source, want := range map[string]string{
		"docker://quay.io/containerdisks/fedora:40":   "quay.io/containerdisks/fedora:40",
		"docker://localhost:5000/x":                   "localhost:5000/x",
		"quay.io/containerdisks/fedora@" + testDigest: "quay.io/containerdisks/fedora@" + testDigest,
	} {
		t.Run(source, func(t *testing.T) {
			m := with(func(m *Machine) { m.Disks = nil; m.ContainerDiskImage = source })
			require.NoError(t, m.Validate())
			vm := BuildVM(testID, testOwner(), m)
			assert.Equal(t, want, volume(t, vm, ContainerDiskName).ContainerDisk.Image)
		})
	}
}

// TestValidateContainerDiskImage: a machine without disks whose image cannot
// boot as a container disk is refused before anything is built; with disks
// the image is not the VM's business (CDI imports it).
func TestValidateContainerDiskImage(t *testing.T) {
	tests := []struct {
		name, image string
		disks       bool
		wantErr     string
	}{
		{"https URL without disks", "https://images.example.org/guest.qcow2", false, "add a disk"},
		{"invalid reference without disks", "docker://Quay.io/X", false, "not a valid container image reference"},
		{"https URL with disks is not used by the VM", "https://images.example.org/guest.qcow2", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := with(func(m *Machine) {
				if !tt.disks {
					m.Disks = nil
				}
				m.ContainerDiskImage = tt.image
			})
			err := m.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			assert.Contains(t, requireInvalid(t, err, "containerDiskImage"), tt.wantErr)
		})
	}
}

func TestRegistryHost(t *testing.T) {
	tests := []struct {
		source, want string // want empty: an error is expected
	}{
		{"docker://quay.io/containerdisks/fedora:40", "quay.io"},
		{"quay.io/containerdisks/fedora:40", "quay.io"},
		{"fedora:40", "docker.io"},
		{"myservice/img:1", "docker.io"}, // a first component without '.' or ':' is a path, not a registry
		{"myservice:5000/img:1", "myservice:5000"},
		{"localhost/img", "localhost"},
		{"docker://localhost:5000/x:1.0", "localhost:5000"},
		{"169.254.169.254/latest/meta-data", "169.254.169.254"},
		{"[::1]:5000/x", "[::1]:5000"},
		{"docker://Quay.IO/x", "Quay.IO"},
		{"https://quay.io/x", ""},
		{"oci://quay.io/x:1", ""},
		{"UPPER/case", "UPPER"}, // a first component with upper case is a registry (distribution/reference)
		{"quay.io/UPPER/case", ""},
	}
	for _, tc := range tests {
		t.Run(tc.source, func(t *testing.T) {
			got, err := RegistryHost(tc.source)
			if tc.want == "" {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

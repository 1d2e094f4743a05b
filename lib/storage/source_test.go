package storage

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSourceKind(t *testing.T) {
	cases := []struct {
		name    string
		source  string
		want    Kind
		wantErr string
	}{
		{name: "blank", source: "", want: KindBlank},
		{name: "https URL", source: "https://example.org/images/fedora.qcow2", want: KindHTTP},
		{name: "http URL with port", source: "http://10.0.0.1:8080/disk.img", want: KindHTTP},
		{name: "docker scheme", source: "docker://quay.io/containerdisks/fedora:40", want: KindRegistry},
		{name: "bare image with registry and tag", source: "quay.io/containerdisks/fedora:40", want: KindRegistry},
		{name: "bare short image", source: "fedora", want: KindRegistry},
		{name: "registry with port", source: "localhost:5000/disks/alpine:3.20", want: KindRegistry},
		{name: "digest", source: "quay.io/x/y@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", want: KindRegistry},
		{name: "http without host", source: "http:///path", wantErr: "not a valid http(s) URL"},
		{name: "http with space", source: "https://example.org/a b.img", wantErr: "not a valid http(s) URL"},
		{name: "unsupported scheme", source: "s3://bucket/disk.img", wantErr: `unsupported scheme "s3"`},
		{name: "docker scheme with bad ref", source: "docker://Quay.io/UPPER/Case", wantErr: "not a valid container image reference"},
		{name: "uppercase repository", source: "quay.io/Fedora:40", wantErr: "neither an http(s) URL nor a container image"},
		{name: "spaces", source: "not an image", wantErr: "neither an http(s) URL nor a container image"},
		{name: "empty docker ref", source: "docker://", wantErr: "not a valid container image reference"},
		// Found by FuzzSourceKind.
		{name: "http port without host", source: "http://:80/x", wantErr: "not a valid http(s) URL"},
		{name: "http with a Unicode space", source: "https://example.org/a\u00a0b", wantErr: "not a valid http(s) URL"},
		{name: "digest of an algorithm no registry resolves", source: "docker://a@md5:0123456789abcdef0123456789abcdef", wantErr: "not a valid container image reference"},
		{name: "an image ID, not a name", source: strings.Repeat("0", 64), wantErr: "neither an http(s) URL nor a container image"},
		{name: "path over 255 characters", source: "quay.io/" + strings.Repeat("a", 256), wantErr: "neither an http(s) URL nor a container image"},
		{name: "sha256 digest too short", source: "a@sha256:0123456789abcdef0123456789abcdef", wantErr: "neither an http(s) URL nor a container image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SourceKind(tc.source)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrInvalidDisk)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRegistryURL(t *testing.T) {
	assert.Equal(t, "docker://quay.io/containerdisks/fedora:40", RegistryURL("quay.io/containerdisks/fedora:40"))
	assert.Equal(t, "docker://fedora", RegistryURL("docker://fedora"))
}

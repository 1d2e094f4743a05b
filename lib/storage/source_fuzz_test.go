package storage

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/distribution/reference"
)

// FuzzSourceKind: a disk's image source (a tenant's spec.disks[].image or
// spec.osImage) is refused with ErrInvalidDisk, or is what the importer can
// read: an http(s) URL with a host, as net/url parses it (CDI's importer
// does the same), or a registry image that the distribution reference
// parser (the grammar containers/image, which CDI's registry importer uses,
// follows) accepts, with no whitespace or control character anywhere.
func FuzzSourceKind(f *testing.F) {
	for _, s := range []string{
		"", "https://example.org/images/fedora.qcow2", "http://10.0.0.1:8080/disk.img", "docker://quay.io/containerdisks/fedora:40",
		"quay.io/containerdisks/fedora:40", "fedora", "localhost:5000/disks/alpine:3.20", "http:///path", "s3://bucket/disk.img",
		"quay.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "docker://", "http://:80/x",
		"https://169.254.169.254/latest/meta-data", "http://[::1]:8080/a", "docker://a@md5:0123456789abcdef0123456789abcdef",
		"https://example.org/a\u00a0b", "docker://quay.io/a:b\n", "quay.io/a/b:" + strings.Repeat("t", 128),
		strings.Repeat("0", 64), // found by fuzzing
		"quay.io/" + strings.Repeat("a", 256),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, source string) {
		kind, err := SourceKind(source)
		if err != nil {
			if !errors.Is(err, ErrInvalidDisk) || kind != KindBlank {
				t.Fatalf("SourceKind(%q) = %v, %v: want KindBlank and ErrInvalidDisk", source, kind, err)
			}
			return
		}
		if kind == KindBlank {
			if source != "" {
				t.Fatalf("SourceKind(%q) = blank", source)
			}
			return
		}
		for _, r := range source {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				t.Fatalf("%v source %q holds %U", kind, source, r)
			}
		}
		switch kind {
		case KindHTTP:
			u, err := url.Parse(source)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
				t.Fatalf("http source %q: url.Parse gives %v (scheme %q, host %q)", source, err, u.Scheme, u.Hostname())
			}
		case KindRegistry:
			ref := RegistryURL(source)
			if k, err := SourceKind(ref); k != KindRegistry || err != nil {
				t.Fatalf("RegistryURL(%q) = %q is %v, %v", source, ref, k, err)
			}
			if _, err := reference.ParseNormalizedNamed(strings.TrimPrefix(ref, dockerScheme)); err != nil {
				t.Fatalf("registry source %q is no image reference: %v", source, err)
			}
		default:
			t.Fatalf("SourceKind(%q) = %v", source, kind)
		}
	})
}

package imagesource

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzCheck: Check never panics, and a source the default allows never has
// an IP literal host the default must refuse (metadata, loopback, private,
// ...), however the URL is written.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"http://169.254.169.254/latest/meta-data", "http://[::ffff:169.254.169.254]/", "http://2852039166/",
		"https://quay.io/x", "docker://quay.io/x:1", "fedora:40", "http://a@127.0.0.1:80/", "http://[fe80::1%25eth0]/",
		"http://%31%36%39.254.169.254/", "http://169.254.169.254./", "HTTP://169.254.169.254/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, source string) {
		if (*Policy)(nil).Check(source, nil) != nil {
			return
		}
		if !strings.HasPrefix(source, "http://") && !strings.HasPrefix(source, "https://") {
			return
		}
		u, err := url.Parse(source)
		if err != nil {
			t.Fatalf("allowed %q, which net/url does not parse: %v", source, err)
		}
		h := strings.TrimSuffix(u.Hostname(), ".")
		if a, err := netip.ParseAddr(h); err == nil {
			a = a.Unmap()
			if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
				t.Fatalf("allowed %q, whose host %s is internal", source, a)
			}
		}
	})
}

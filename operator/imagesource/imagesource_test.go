package imagesource

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckDefault(t *testing.T) {
	namespaces := map[string]bool{"default": true, "team-a": true, "monitoring": true}
	isNS := func(s string) bool { return namespaces[s] }
	tests := []struct {
		name, source string
		refused      string // "" = allowed; else a substring of the message
	}{
		// Public sources.
		{"https URL", "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img", ""},
		{"http URL with port", "http://images.example.org:8080/disk.qcow2", ""},
		{"registry with docker scheme", "docker://quay.io/containerdisks/fedora:40", ""},
		{"bare registry ref", "quay.io/containerdisks/fedora:40", ""},
		{"docker hub short name", "fedora:40", ""},
		{"docker hub path without registry", "myservice/img:1", ""}, // docker.io/myservice/img
		{"public IPv4 literal", "http://8.8.8.8/x.img", ""},
		{"public IPv6 literal", "http://[2001:4860:4860::8888]/x.img", ""},
		{"blank disk", "", ""},

		// The metadata endpoint and its disguises.
		{"metadata endpoint", "http://169.254.169.254/latest/meta-data", `"169.254.169.254" is not allowed: it is a link-local address`},
		{"metadata endpoint https port", "https://169.254.169.254:443/x", "link-local"},
		{"metadata endpoint as registry", "169.254.169.254/latest/meta-data", "link-local"},
		{"metadata endpoint with userinfo", "http://images.example.org@169.254.169.254/", "link-local"},
		{"IPv4-mapped IPv6", "http://[::ffff:169.254.169.254]/", "link-local"},
		{"decimal IPv4", "http://2852039166/", "is a number"},
		{"hex IPv4", "http://0xa9fea9fe/", "is a number"},
		{"octal dotted IPv4", "http://0251.0376.0251.0376/", "is a number"},
		{"short dotted IPv4", "http://169.254.43518/", "is a number"},
		{"IPv6 link-local with zone", "http://[fe80::1%25eth0]/", "link-local"},
		{"NAT64 of metadata", "http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::/96"},
		{"GCE metadata name", "http://metadata.google.internal/computeMetadata/v1/", "names under internal"},

		// Loopback, unspecified, private.
		{"loopback", "http://127.0.0.1:10250/pods", "loopback"},
		{"loopback elsewhere in 127/8", "http://127.1.2.3/", "loopback"},
		{"IPv6 loopback", "http://[::1]/", "loopback"},
		{"localhost", "http://localhost:8080/x", "local host"},
		{"localhost upper case, trailing dot", "http://LOCALHOST./x", "local host"},
		{"under localhost", "http://a.localhost/x", "names under localhost"},
		{"localhost registry", "localhost:5000/x:1", "local host"},
		{"unspecified", "http://0.0.0.0/", "unspecified"},
		{"this network", "http://0.1.2.3/", "0.0.0.0/8"},
		{"private 10/8", "http://10.96.0.1/", "private"},
		{"private 192.168", "docker://192.168.1.5:5000/x", "private"},
		{"private 172.16/12", "http://172.20.0.1/", "private"},
		{"unique local IPv6", "http://[fd00::1]/", "private"},
		{"shared address space", "http://100.64.0.1/", "100.64.0.0/10"},
		{"multicast", "http://239.1.1.1/", "not a global unicast"},
		{"broadcast", "http://255.255.255.255/", "not a global unicast"},

		// Cluster-internal names.
		{"single label", "http://minio/bucket/disk.img", "single-label"},
		{"single label registry with port", "myregistry:5000/x:1", "single-label"},
		{"svc", "http://minio.storage.svc/disk.img", "names under svc"},
		{"svc.cluster.local", "http://minio.storage.svc.cluster.local:9000/disk.img", "names under cluster.local"},
		{"cluster.local", "https://kubernetes.default.svc.cluster.local./x", "names under cluster.local"},
		{"cluster.local pod", "http://10-0-0-5.team-a.pod.cluster.local/", "names under"},
		{"pod", "http://10-0-0-5.team-a.pod/", "names under pod"},
		{"mdns", "http://printer.local/", "names under local"},
		{"service.namespace", "http://prometheus.monitoring:9090/api/v1/query", "names a namespace"},
		{"host.service.namespace", "http://web-0.web.team-a/", "names a namespace"},
		{"svc.default", "http://kubernetes.default/", "names a namespace"},
		{"namespace not existing", "http://prometheus.other/", ""},

		// Not parseable.
		{"URL without host", "http:///x", "neither an http(s) URL"},
		{"unsupported scheme", "ftp://files.example.com/disk.img", "neither an http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := (*Policy)(nil).Check(tc.source, isNS)
			if tc.refused == "" {
				assert.NoError(t, err)
				return
			}
			var refused *RefusedError
			require.True(t, errors.As(err, &refused), "want a *RefusedError, got %v", err)
			assert.Contains(t, err.Error(), tc.refused)
		})
	}
}

func TestCheckAllowList(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		domain  string
		source  string
		allowed bool
	}{
		{"exact name", []string{"quay.io"}, "", "docker://quay.io/x:1", true},
		{"exact name, other host refused", []string{"quay.io"}, "", "https://cloud-images.ubuntu.com/x.img", false},
		{"exact name, case and trailing dot", []string{"Quay.IO."}, "", "quay.io/x:1", true},
		{"exact name does not cover subdomains", []string{"example.com"}, "", "https://images.example.com/x", false},
		{"wildcard covers subdomains", []string{"*.example.com"}, "", "https://a.b.example.com/x", true},
		{"wildcard does not cover the domain itself", []string{"*.example.com"}, "", "https://example.com/x", false},
		{"wildcard is on a label boundary", []string{"*.example.com"}, "", "https://badexample.com/x", false},
		{"docker hub by its domain", []string{"docker.io"}, "", "fedora:40", true},
		{"port is not part of the match", []string{"registry.example.org"}, "", "registry.example.org:5000/x", true},
		{"an entry allows an internal name", []string{"registry.infra.svc"}, "", "docker://registry.infra.svc:5000/os:1", true},
		{"an entry allows an internal name, only that one", []string{"registry.infra.svc"}, "", "http://minio.infra.svc/x", false},
		{"a CIDR allows private addresses", []string{"10.20.0.0/16"}, "", "http://10.20.3.4/x", true},
		{"a CIDR allows only its addresses", []string{"10.20.0.0/16"}, "", "http://10.21.3.4/x", false},
		{"an IP entry", []string{"fd00::7"}, "", "http://[fd00::7]:8080/x", true},
		{"an IP entry matches the mapped form", []string{"10.0.0.7"}, "", "http://[::ffff:10.0.0.7]/x", true},
		{"a CIDR entry does not allow names", []string{"10.0.0.0/8"}, "", "https://quay.io/x", false},
		{"star keeps the default", []string{"*"}, "", "https://quay.io/x", true},
		{"star keeps the default refusals", []string{"*"}, "", "http://169.254.169.254/", false},
		{"star plus an internal registry", []string{"*", "registry.infra.svc"}, "", "registry.infra.svc/x", true},
		{"empty entries are the default", []string{"", " "}, "", "https://quay.io/x", true},
		{"custom cluster domain refused", nil, "corp.example", "http://minio.storage.svc.corp.example/x", false},
		{"custom cluster domain names", nil, "corp.example", "http://db.corp.example/x", false},
		{"cluster.local stays refused", nil, "corp.example", "http://a.b.cluster.local/x", false},
		{"an unlisted metadata endpoint with a list", []string{"quay.io"}, "", "http://169.254.169.254/", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.entries, tc.domain)
			require.NoError(t, err)
			err = p.Check(tc.source, nil)
			if tc.allowed {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	for _, e := range []string{"https://quay.io", "quay.io:5000", "*.", "*.*.example.com", "10.0.0.0/33", "bad name", "a..b"} {
		_, err := New([]string{e}, "")
		assert.Error(t, err, e)
	}
	_, err := New(nil, "bad domain")
	assert.Error(t, err)
}

// TestMessageSameWhetherOrNotHostExists: the answer is computed from the
// text alone, so two hosts of the same form get the same message but for
// the host.
func TestMessageSameWhetherOrNotHostExists(t *testing.T) {
	a := (*Policy)(nil).Check("http://kubernetes.default.svc/", nil)
	b := (*Policy)(nil).Check("http://no-such-service.default.svc/", nil)
	require.Error(t, a)
	require.Error(t, b)
	assert.Equal(t, a.Error(), replace(b.Error(), "no-such-service", "kubernetes"))
}

func replace(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

// Package imagesource decides which hosts a Wukong may import disk images
// from: an administrator's allow-list (the manager's --image-sources flag,
// the chart's imageSources value), and without one a default that refuses
// the hosts a tenant must not make CDI's importer (or a node's container
// runtime) fetch from: the node's metadata endpoint, loopback, private
// addresses and the cluster's own Services.
//
// # The host of a source
//
// An http:// or https:// source's host is its URL's host (net/url,
// URL.Hostname: without userinfo, port or brackets). A registry source
// (docker://REF or a bare REF) is pulled from its registry, the domain
// github.com/distribution/reference gives REF (lib/kubevirt RegistryHost):
// a reference without a registry is Docker Hub's ("docker.io"). Hosts are
// compared in lower case, without a trailing dot; an IP literal is
// compared as an address (net/netip; an IPv4-mapped IPv6 address as its
// IPv4 address).
//
// # The allow-list
//
// Each entry is one of:
//
//   - "*": any host the default rules below allow (so "*,registry.infra.svc"
//     is the default plus one in-cluster registry);
//   - a DNS name, e.g. "quay.io": that host exactly;
//   - "*." followed by a DNS name, e.g. "*.example.com": any host with at
//     least one more label in front (a.example.com, a.b.example.com), not
//     example.com itself;
//   - an IP address, e.g. "10.0.0.7" or "fd00::7": that address;
//   - an IP prefix in CIDR notation, e.g. "10.20.0.0/16": any address in it.
//
// Ports and schemes are not part of an entry: an entry allows every port
// of its hosts, over http, https and registry pulls. A source whose host an
// entry names is allowed even when the default would refuse it: an entry is
// the administrator's decision. With an allow-list, a host no entry matches
// is refused.
//
// # The default (no allow-list, or the entry "*")
//
// Refused, by the host's form alone (no DNS lookup is made):
//
//   - IP literals that are not global unicast or are private: loopback
//     (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10: the
//     metadata endpoint 169.254.169.254 of most clouds), unspecified
//     (0.0.0.0, ::), multicast, broadcast, private (10.0.0.0/8,
//     172.16.0.0/12, 192.168.0.0/16, fc00::/7: nodes, pods and Services
//     commonly live there), shared address space 100.64.0.0/10 (RFC 6598,
//     used by some pod networks), 0.0.0.0/8, and the IPv6 prefixes that
//     embed an IPv4 address (NAT64 64:ff9b::/96 and 64:ff9b:1::/48,
//     6to4 2002::/16);
//   - names whose last label is a number (digits, or 0x and hex digits):
//     URL parsers and resolvers read them as IPv4 addresses in other forms
//     (2852039166 or 0xa9fea9fe is 169.254.169.254; WHATWG URL Standard,
//     "ends in a number checker"; inet_aton(3));
//   - localhost and names under it (RFC 6761 section 6.3);
//   - single-label names (no dot): a pod's DNS search path makes them
//     Services of the importer's namespace (Kubernetes "DNS for Services
//     and Pods");
//   - names ending in .svc or .pod, or in the cluster domain
//     (cluster.local, and the manager's --cluster-domain), the zones of the
//     cluster's DNS; names ending in .local (multicast DNS, RFC 6762) or
//     .internal (reserved for private use by ICANN, e.g. Google Cloud's
//     metadata.google.internal);
//   - names whose last label is the name of a Namespace of the cluster:
//     through the search path, "web.team-a" is Service web of namespace
//     team-a. (So a refusal of a.b where b is not otherwise refused tells
//     a tenant that a namespace b exists: namespace names are not kept
//     secret by this check.)
//
// Everything else is allowed. These checks look at names, not at the
// addresses they resolve to: a public DNS name that resolves to an
// internal address (169.254.169.254.nip.io, a record the tenant controls)
// passes them. Only a network rule on the importer's egress stops that;
// the chart's README gives a NetworkPolicy.
package imagesource

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/novasphere/wukong/lib/kubevirt"
)

// defaultClusterDomain is the cluster DNS domain of a default cluster
// (kubelet --cluster-domain).
const defaultClusterDomain = "cluster.local"

// Policy is a parsed allow-list. The nil *Policy (and a Policy from New
// with no entries) is the default.
type Policy struct {
	public   bool // "*", or no entries at all
	names    map[string]bool
	suffixes []string // ".example.com"
	prefixes []netip.Prefix
	zones    []string // ".svc", ".cluster.local", ...
}

// New parses an allow-list (see the package doc for the syntax) and the
// cluster's DNS domain ("" is cluster.local; cluster.local is refused by
// default whatever it is). Empty entries are ignored; an invalid one is an
// error naming it.
func New(entries []string, clusterDomain string) (*Policy, error) {
	p := &Policy{names: map[string]bool{}}
	n := 0
	for _, raw := range entries {
		e := strings.ToLower(strings.TrimSpace(raw))
		if e == "" {
			continue
		}
		n++
		switch {
		case e == "*":
			p.public = true
		case strings.Contains(e, "/"):
			pfx, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("image source %q: not a valid IP prefix (CIDR): %w", raw, err)
			}
			p.prefixes = append(p.prefixes, pfx.Masked())
		case strings.HasPrefix(e, "*."):
			name := strings.TrimSuffix(e[2:], ".")
			if !validName(name) {
				return nil, fmt.Errorf("image source %q: not *. followed by a DNS name", raw)
			}
			p.suffixes = append(p.suffixes, "."+name)
		default:
			if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
				p.prefixes = append(p.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			name := strings.TrimSuffix(e, ".")
			if !validName(name) {
				return nil, fmt.Errorf("image source %q: not *, a DNS name, *.NAME, an IP address or an IP prefix (ports and schemes are not part of an entry)", raw)
			}
			p.names[name] = true
		}
	}
	if n == 0 {
		p.public = true
	}
	// Longest first: a message names the most specific zone.
	var zones []string
	if d := strings.Trim(strings.ToLower(clusterDomain), "."); d != "" && d != defaultClusterDomain {
		if !validName(d) {
			return nil, fmt.Errorf("cluster domain %q is not a DNS name", clusterDomain)
		}
		zones = append(zones, "."+d)
	}
	p.zones = append(zones, "."+defaultClusterDomain, ".svc", ".pod", ".local", ".internal", ".localhost")
	return p, nil
}

// validName: dot-separated labels of letters, digits, '-' and '_'.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, r := range l {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			default:
				return false
			}
		}
	}
	return true
}

// RefusedError is a source Check refuses. Its message names the host and
// why, from the source's text alone: it reads the same whether or not the
// host exists.
type RefusedError struct {
	Source string
	// Host is the host the source names ("" when it has none).
	Host string
	// Why is the rule that refused it.
	Why string
}

func (e *RefusedError) Error() string {
	if e.Host == "" {
		return fmt.Sprintf("image source %q is not allowed: %s", e.Source, e.Why)
	}
	return fmt.Sprintf("image source host %q is not allowed: %s", e.Host, e.Why)
}

// sourceHost returns the host an image source is fetched from (see the package
// doc), with its port when it names one. An empty source has none ("");
// a source that is neither an http(s) URL with a host nor a registry
// image reference is an error.
func sourceHost(source string) (string, error) {
	switch {
	case source == "":
		return "", nil
	case strings.HasPrefix(source, "http://"), strings.HasPrefix(source, "https://"):
		u, err := url.Parse(source)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("%q is not a valid http(s) URL", source)
		}
		return u.Host, nil
	default:
		return kubevirt.RegistryHost(source)
	}
}

// Check returns nil when source (a disk's image, osImage or a container
// disk image) may be fetched, else a *RefusedError. isNamespace says
// whether a name is a Namespace of the cluster (nil: none is). A source
// that has no host it can parse is refused. The empty source (a blank
// disk) is allowed.
func (p *Policy) Check(source string, isNamespace func(string) bool) error {
	if source == "" {
		return nil
	}
	if p == nil {
		p, _ = New(nil, "")
	}
	hostport, err := sourceHost(source)
	if err != nil {
		return &RefusedError{Source: source, Why: "it is neither an http(s) URL with a host nor a container image reference"}
	}
	host := hostname(hostport)
	if p.listed(host) {
		return nil
	}
	if !p.public {
		return &RefusedError{Source: source, Host: host, Why: "it is not in the administrator's list of image sources (manager flag --image-sources)"}
	}
	if why := p.internal(host, isNamespace); why != "" {
		return &RefusedError{Source: source, Host: host, Why: why + "; an administrator may allow it (manager flag --image-sources)"}
	}
	return nil
}

// hostname strips the port and brackets of host[:port], lower-cases it and
// drops a trailing dot.
func hostname(hostport string) string {
	h := (&url.URL{Host: hostport}).Hostname()
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// listed says whether an allow-list entry (other than "*") names host.
func (p *Policy) listed(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		for _, pfx := range p.prefixes {
			if pfx.Contains(a) {
				return true
			}
		}
		return false
	}
	if p.names[host] {
		return true
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// embedsIPv4 and other refused prefixes beyond netip's predicates.
var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network" (RFC 791); 0.0.0.0 reaches the local host
	netip.MustParsePrefix("100.64.0.0/10"),  // shared address space (RFC 6598)
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 well-known prefix (RFC 6052)
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("2002::/16"),      // 6to4 (RFC 3056)
}

// internal says why the default refuses host, or "".
func (p *Policy) internal(host string, isNamespace func(string) bool) string {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		switch {
		case a.IsLoopback():
			return "it is a loopback address"
		case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
			return "it is a link-local address (the node's metadata endpoint lives there)"
		case a.IsUnspecified():
			return "it is the unspecified address"
		case a.IsPrivate():
			return "it is a private address"
		case !a.IsGlobalUnicast():
			return "it is not a global unicast address"
		}
		for _, pfx := range refusedPrefixes {
			if pfx.Contains(a) {
				return "it is in " + pfx.String() + ", which is not a public unicast range"
			}
		}
		return ""
	}
	labels := strings.Split(host, ".")
	last := labels[len(labels)-1]
	switch {
	case host == "" || last == "":
		return "it has no host name"
	case numeric(last):
		return "its last label is a number, which resolvers read as an IPv4 address: write a public IP address in dotted form"
	case host == "localhost":
		return "it is the local host"
	case len(labels) == 1:
		return "a single-label name resolves to a Service of the importer's namespace"
	}
	for _, z := range p.zones {
		if strings.HasSuffix(host, z) {
			return "names under " + z[1:] + " are the cluster's or the local network's"
		}
	}
	if isNamespace != nil && isNamespace(last) {
		return "its last label names a namespace, so the cluster's DNS resolves it to a Service"
	}
	return ""
}

// numeric: all decimal digits, or 0x followed by hex digits (or nothing).
func numeric(label string) bool {
	if h, ok := strings.CutPrefix(label, "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(label, "0123456789") == ""
}

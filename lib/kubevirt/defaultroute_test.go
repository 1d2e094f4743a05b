package kubevirt

import (
	"fmt"
	"net/netip"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// defaultRoute is one default route found in a network configuration: the
// interface (ethernets key, or guest interface name) and the gateway, or
// "dhcp" when the route comes from a DHCPv4 lease's routers.
type defaultRoute struct {
	Iface, Via string
}

// routeVariant is a machine whose network data must give exactly the
// expected default routes: at most one per address family.
type routeVariant struct {
	name   string
	m      Machine
	v4, v6 *defaultRoute // nil: no default route of that family
}

const (
	macA = "02:00:00:00:00:0a"
	macB = "02:00:00:00:00:0b"
)

// routeVariants are the multi-NIC layouts of KubeVirt and Harvester reports
// (pod network plus secondaries, secondaries only, static and DHCP, IPv4 and
// IPv6, an explicit defaultRoute).
func routeVariants() []routeVariant {
	static := func(addr, gw string) *IPConfig {
		return &IPConfig{Mode: NetworkModeStatic, Addresses: []string{addr}, Gateway: gw}
	}
	dhcp := func() *IPConfig { return &IPConfig{Mode: NetworkModeDHCP} }
	explicit := func(ip *IPConfig) *IPConfig { ip.DefaultRoute = true; return ip }
	r := func(iface, via string) *defaultRoute { return &defaultRoute{iface, via} }
	// Each row: the pod network on or off, its IP (nil: DHCPv4), the IPs of
	// the NICs a (MAC macA) and b (macB), and the expected default routes.
	rows := []struct {
		name   string
		pod    bool
		podIP  *IPConfig
		ips    []*IPConfig
		v4, v6 *defaultRoute
	}{
		{"example web: pod network and a static NIC with a gateway", true, nil, []*IPConfig{static("192.168.100.10/24", "192.168.100.1")}, r(PodNetworkName, "dhcp"), nil},
		{"pod network off, a static NIC with a gateway", false, nil, []*IPConfig{static("192.168.100.10/24", "192.168.100.1")}, r("a", "192.168.100.1"), nil},
		{"pod network off, two static NICs with gateways: the first", false, nil, []*IPConfig{static("10.1.0.5/24", "10.1.0.1"), static("10.2.0.5/24", "10.2.0.1")}, r("a", "10.1.0.1"), nil},
		{"pod network off, two DHCP NICs: the first keeps its lease's routes", false, nil, []*IPConfig{dhcp(), dhcp()}, r("a", "dhcp"), nil},
		{"pod network off, static without gateway then DHCP: the DHCP NIC", false, nil, []*IPConfig{static("10.1.0.5/24", ""), dhcp()}, r("b", "dhcp"), nil},
		{"pod network and two DHCP NICs: the pod network", true, nil, []*IPConfig{dhcp(), dhcp()}, r(PodNetworkName, "dhcp"), nil},
		{"pod network off, IPv6 static with a gateway", false, nil, []*IPConfig{static("2001:db8:1::5/64", "2001:db8:1::1")}, nil, r("a", "2001:db8:1::1")},
		{"pod network, IPv4 static and IPv6 static: pod keeps IPv4, the IPv6 NIC carries IPv6", true, nil, []*IPConfig{static("10.1.0.5/24", "10.1.0.1"), static("2001:db8:2::5/64", "2001:db8:2::1")}, r(PodNetworkName, "dhcp"), r("b", "2001:db8:2::1")},
		{"pod network off, two IPv6 static NICs: the first", false, nil, []*IPConfig{static("fd00:a::5/64", "fd00:a::1"), static("fd00:b::5/64", "fd00:b::1")}, nil, r("a", "fd00:a::1")},
		{"defaultRoute on a static NIC with the pod network on: the NIC, pod DHCP ignores routes", true, nil, []*IPConfig{explicit(static("192.168.100.10/24", "192.168.100.1"))}, r("a", "192.168.100.1"), nil},
		{"defaultRoute on a DHCP NIC with the pod network on", true, nil, []*IPConfig{dhcp(), explicit(dhcp())}, r("b", "dhcp"), nil},
		{"defaultRoute on the second static NIC, pod network off", false, nil, []*IPConfig{static("10.1.0.5/24", "10.1.0.1"), explicit(static("10.2.0.5/24", "10.2.0.1"))}, r("b", "10.2.0.1"), nil},
		{"defaultRoute on an IPv6 NIC with the pod network on: pod keeps IPv4", true, nil, []*IPConfig{explicit(static("2001:db8:3::5/64", "2001:db8:3::1"))}, r(PodNetworkName, "dhcp"), r("a", "2001:db8:3::1")},
		{"pod network configured statically with a gateway, plus a static NIC", true, static("10.0.2.2/24", "10.0.2.1"), []*IPConfig{static("10.1.0.5/24", "10.1.0.1")}, r(PodNetworkName, "10.0.2.1"), nil},
		{"pod network off and no gateway anywhere: no default route", false, nil, []*IPConfig{static("10.1.0.5/24", "")}, nil, nil},
	}
	out := make([]routeVariant, 0, len(rows))
	for _, row := range rows {
		m := with(func(m *Machine) {
			m.PodNetwork, m.PodNetworkIP = row.pod, row.podIP
			m.NICs = []NIC{{Name: "a", NAD: "net/a", MAC: macA}, {Name: "b", NAD: "net/b", MAC: macB}}[:len(row.ips)]
			for i, ip := range row.ips {
				m.NICs[i].IP = ip
			}
		})
		out = append(out, routeVariant{name: row.name, m: m, v4: row.v4, v6: row.v6})
	}
	return out
}

// family sorts default routes into IPv4 and IPv6; a DHCPv4 lease is IPv4.
func family(r defaultRoute) string {
	if r.Via == "dhcp" {
		return "v4"
	}
	if a, err := netip.ParseAddr(r.Via); err == nil && a.Is6() && !a.Unmap().Is4() {
		return "v6"
	}
	return "v4"
}

// assertDefaultRoutes checks that got holds exactly the expected default
// routes: at most one per family, on the right interface, via the right
// gateway.
func assertDefaultRoutes(t *testing.T, v routeVariant, got []defaultRoute, where string) {
	t.Helper()
	byFamily := map[string][]defaultRoute{}
	for _, r := range got {
		byFamily[family(r)] = append(byFamily[family(r)], r)
	}
	for _, f := range []struct {
		name string
		want *defaultRoute
	}{{"v4", v.v4}, {"v6", v.v6}} {
		routes := byFamily[f.name]
		sort.Slice(routes, func(i, j int) bool { return routes[i].Iface < routes[j].Iface })
		if f.want == nil {
			assert.Empty(t, routes, "%s: no IP%s default route expected", where, f.name)
			continue
		}
		assert.Equal(t, []defaultRoute{*f.want}, routes, "%s: exactly one IP%s default route", where, f.name)
	}
}

// netplanDefaultRoutes lists the default routes of a netplan / cloud-init v2
// document (optionally under "network:"): routes to 0.0.0.0/0, ::/0 or
// default, gateway4 and gateway6, and dhcp4 without use-routes: false.
func netplanDefaultRoutes(t *testing.T, data []byte) []defaultRoute {
	t.Helper()
	type eth struct {
		DHCP4          bool             `json:"dhcp4"`
		DHCP4Overrides map[string]any   `json:"dhcp4-overrides"`
		Gateway4       string           `json:"gateway4"`
		Gateway6       string           `json:"gateway6"`
		Routes         []map[string]any `json:"routes"`
	}
	type cfg struct {
		Ethernets map[string]eth `json:"ethernets"`
		Network   *struct {
			Ethernets map[string]eth `json:"ethernets"`
		} `json:"network"`
	}
	var c cfg
	require.NoError(t, yaml.Unmarshal(data, &c), "netplan YAML:\n%s", data)
	ethernets := c.Ethernets
	if c.Network != nil {
		ethernets = c.Network.Ethernets
	}
	var out []defaultRoute
	for name, e := range ethernets {
		if e.DHCP4 && e.DHCP4Overrides["use-routes"] != false {
			out = append(out, defaultRoute{name, "dhcp"})
		}
		for _, gw := range []string{e.Gateway4, e.Gateway6} {
			if gw != "" {
				out = append(out, defaultRoute{name, gw})
			}
		}
		for _, r := range e.Routes {
			switch r["to"] {
			case "0.0.0.0/0", "::/0", "default":
				out = append(out, defaultRoute{name, fmt.Sprint(r["via"])})
			}
		}
	}
	return out
}

// TestDefaultRouteRule checks the rendered network data itself (netplan v2
// syntax) against every variant; cloudinit_realtest_test.go checks what the
// real cloud-init makes of it.
func TestDefaultRouteRule(t *testing.T) {
	for _, v := range routeVariants() {
		t.Run(v.name, func(t *testing.T) {
			data, err := RenderNetworkData("prod", v.m)
			require.NoError(t, err)
			assertDefaultRoutes(t, v, netplanDefaultRoutes(t, data), "network data")
		})
	}
}

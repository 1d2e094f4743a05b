package kubevirt

// These tests hand what the lib renders to the real cloud-init (Debian's
// cloud-init package, `apt-get install cloud-init`; .ci/run installs it):
// `cloud-init schema --config-file` validates the user data against
// cloud-init's own JSON schema, and `cloud-init devel net-convert` renders
// the network data the way a booting guest does, for netplan (Ubuntu),
// systemd-networkd (Debian 13, Fedora CoreOS...) and ifupdown (eni, Debian
// 12 images). The output files are parsed and must hold exactly the default
// routes the rule in RenderNetworkData promises. A missing cloud-init fails
// the tests: they must run in CI.

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cloudInit returns the path of the cloud-init executable or fails the test.
func cloudInit(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("cloud-init")
	if err != nil {
		t.Fatalf("cloud-init is not installed; the rendered cloud-init data is checked with it: apt-get install cloud-init (%v)", err)
	}
	return path
}

// runCloudInit runs cloud-init with args and returns its combined output; a
// non-zero exit fails the test with that output.
func runCloudInit(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(cloudInit(t), args...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "cloud-init %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// netConvert renders networkData with `cloud-init devel net-convert` for the
// Debian distro into outputKind (netplan, networkd or eni) and returns the
// files it wrote, keyed by path relative to the output directory.
func netConvert(t *testing.T, networkData []byte, outputKind string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "network-config")
	require.NoError(t, os.WriteFile(in, networkData, 0o600))
	out := filepath.Join(dir, "out")
	runCloudInit(t, "devel", "net-convert", "--network-data", in, "--kind", "yaml",
		"--distro", "debian", "--output-kind", outputKind, "--directory", out)
	files := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(out, p)
		files[rel] = b
		return err
	}))
	require.NotEmpty(t, files, "net-convert to %s wrote nothing", outputKind)
	return files
}

// iniSection is one [Section] of a systemd unit file with its keys.
type iniSection struct {
	name string
	keys map[string][]string
}

// parseINI reads a systemd .network file; sections may repeat ([Route]).
func parseINI(data []byte) []iniSection {
	var out []iniSection
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			out = append(out, iniSection{name: strings.Trim(line, "[]"), keys: map[string][]string{}})
		case len(out) > 0:
			k, v, _ := strings.Cut(line, "=")
			out[len(out)-1].keys[k] = append(out[len(out)-1].keys[k], v)
		}
	}
	return out
}

// networkdDefaultRoutes lists the default routes of cloud-init's
// systemd-networkd output: [Route] or [Network] Gateway= without a
// Destination (or with 0.0.0.0/0 or ::/0), and DHCP=yes|ipv4 without
// [DHCPv4] UseRoutes=false.
func networkdDefaultRoutes(t *testing.T, files map[string][]byte) []defaultRoute {
	t.Helper()
	var out []defaultRoute
	for path, data := range files {
		if !strings.HasSuffix(path, ".network") {
			continue
		}
		secs := parseINI(data)
		name, dhcp, useRoutes := "", false, true
		var gws []string
		for _, s := range secs {
			switch s.name {
			case "Match":
				if n := s.keys["Name"]; len(n) > 0 {
					name = n[0]
				}
			case "Network":
				for _, d := range s.keys["DHCP"] {
					dhcp = dhcp || d == "yes" || d == "true" || d == "ipv4"
				}
				gws = append(gws, s.keys["Gateway"]...)
			case "DHCPv4", "DHCP":
				for _, u := range s.keys["UseRoutes"] {
					useRoutes = !strings.EqualFold(u, "false") && u != "no"
				}
			case "Route":
				dst := s.keys["Destination"]
				if len(dst) == 0 || dst[0] == "0.0.0.0/0" || dst[0] == "::/0" {
					gws = append(gws, s.keys["Gateway"]...)
				}
			}
		}
		require.NotEmpty(t, name, "%s has no [Match] Name=:\n%s", path, data)
		if dhcp && useRoutes {
			out = append(out, defaultRoute{name, "dhcp"})
		}
		for _, gw := range gws {
			out = append(out, defaultRoute{name, gw})
		}
	}
	return out
}

var (
	eniIface   = regexp.MustCompile(`^iface (\S+) (inet6?) (\S+)`)
	eniGateway = regexp.MustCompile(`^gateway (\S+)`)
	eniRoute   = regexp.MustCompile(`^post-up route add (?:-A inet6 )?(\S+) gw (\S+)`)
)

// eniDefaultRoutes lists the default routes of cloud-init's ifupdown output:
// gateway lines, post-up routes to default, 0.0.0.0/0 or ::/0, and inet dhcp
// stanzas (ifupdown's dhclient always takes the lease's routers: cloud-init's
// eni renderer has no DHCP overrides).
func eniDefaultRoutes(files map[string][]byte) []defaultRoute {
	var out []defaultRoute
	for path, data := range files {
		if !strings.Contains(path, "interfaces") {
			continue
		}
		iface := ""
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if m := eniIface.FindStringSubmatch(line); m != nil {
				iface = m[1]
				if m[2] == "inet" && m[3] == "dhcp" {
					out = append(out, defaultRoute{iface, "dhcp"})
				}
				continue
			}
			if m := eniGateway.FindStringSubmatch(line); m != nil {
				out = append(out, defaultRoute{iface, m[1]})
			}
			if m := eniRoute.FindStringSubmatch(line); m != nil {
				switch m[1] {
				case "default", "0.0.0.0/0", "::/0":
					out = append(out, defaultRoute{iface, m[2]})
				}
			}
		}
	}
	return out
}

// ignoresDHCPRoutes reports whether the rendered network data asks some DHCP
// NIC to ignore its lease's routes, which the eni renderer cannot express.
func ignoresDHCPRoutes(t *testing.T, networkData []byte) bool {
	t.Helper()
	return bytes.Contains(networkData, []byte("use-routes: false"))
}

// TestRealCloudInitDefaultRoutes renders every route variant with the real
// cloud-init for netplan, networkd and eni and checks the default routes of
// the result: exactly one per family that has one, on the promised NIC.
func TestRealCloudInitDefaultRoutes(t *testing.T) {
	cloudInit(t)
	for _, v := range routeVariants() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			data, err := RenderNetworkData("prod", v.m)
			require.NoError(t, err)

			for path, out := range netConvert(t, data, "netplan") {
				assertDefaultRoutes(t, v, netplanDefaultRoutes(t, out), "netplan "+path)
			}
			networkd := netConvert(t, data, "networkd")
			assertDefaultRoutes(t, v, networkdDefaultRoutes(t, networkd), "networkd")

			// ifupdown honours static routes only; where the rule needs a
			// DHCP lease's routers ignored, eni cannot express it (README).
			if !ignoresDHCPRoutes(t, data) {
				assertDefaultRoutes(t, v, eniDefaultRoutes(netConvert(t, data, "eni")), "eni")
			}
		})
	}
}

// TestRealCloudInitIPv6DefaultRoute pins why IPv6 default routes are written
// as gateway6: the networkd renderer must produce a route with no
// destination (a default route) via the gateway, never one to ::/64.
func TestRealCloudInitIPv6DefaultRoute(t *testing.T) {
	m := with(func(m *Machine) {
		m.PodNetwork = false
		m.NICs = []NIC{{Name: "a", NAD: "net/a", MAC: macA, IP: &IPConfig{Mode: NetworkModeStatic, Addresses: []string{"2001:db8::5/64"}, Gateway: "2001:db8::1"}}}
	})
	data, err := RenderNetworkData("prod", m)
	require.NoError(t, err)
	for kind, files := range map[string]map[string][]byte{"networkd": netConvert(t, data, "networkd"), "eni": netConvert(t, data, "eni")} {
		var all string
		for _, b := range files {
			all += string(b)
		}
		assert.NotContains(t, all, "::/64", "%s output has a route to ::/64 instead of a default route:\n%s", kind, all)
		assert.Contains(t, all, "2001:db8::1", "%s output lost the gateway:\n%s", kind, all)
	}
}

// TestRealCloudInitSchema validates user data with cloud-init's own schema:
// with a user, password and keys, without a user, and without the guest
// agent.
func TestRealCloudInitSchema(t *testing.T) {
	cloudInit(t)
	cases := map[string]CloudInit{
		"user, password, keys, guest agent": cloudInitMachine().CloudInit,
		"keys for the default user":         {SSHKeys: []string{"ssh-ed25519 AAAA1 a@b"}},
		"password hash, locked":             {User: &User{Name: "ops", PasswordHash: "$6$abc$def", LockPasswd: ptrTo(true)}},
		"no guest agent":                    {SkipGuestAgent: true, User: &User{Name: "ops"}},
		// Strings PyYAML reads as other types (FuzzUserData): without
		// quoting, "=" and "<<" make cloud-init drop the whole document.
		"strings PyYAML would misread": {User: &User{Name: "ops", Sudo: "=", Shell: "<<", Groups: []string{".1_", "1:20"}}},
	}
	for name, ci := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := baseMachine()
			m.CloudInit = ci
			data, err := RenderUserData(testOwner(), m)
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "user-data")
			require.NoError(t, os.WriteFile(path, data, 0o600))
			out := runCloudInit(t, "schema", "--config-file", path)
			assert.Contains(t, out, "Valid cloud-config", "user data:\n%s", data)
		})
	}
}

// TestRealCloudInitSchemaRejects proves the schema check can fail: a
// document cloud-init's schema refuses makes `cloud-init schema` exit
// non-zero.
func TestRealCloudInitSchemaRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user-data")
	require.NoError(t, os.WriteFile(path, []byte("#cloud-config\npackages: qemu-guest-agent\n"), 0o600))
	out, err := exec.Command(cloudInit(t), "schema", "--config-file", path).CombinedOutput()
	require.Error(t, err, "cloud-init accepted packages given as a string:\n%s", out)
	assert.Contains(t, string(out), "packages")
}

package kubevirt

import (
	"errors"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	yamlv3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The cloud-init fuzz targets feed tenant strings (a Wukong's cloudInitUser,
// sshKeySecret lines, hostname, NIC names and addresses) through
// RenderUserData and RenderNetworkData and check what cloud-init would read:
// one YAML document, only the keys the renderer writes (derived from its
// types by reflection), every string back as the same string for PyYAML
// (cloud-init's parser, YAML 1.1), and only characters PyYAML accepts.

// fuzzOwner is the owner of the fuzzed machines.
var fuzzOwner = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "web", UID: "3c7d1a9e-0000-4000-8000-000000000001"}}

// parseOneDocument parses data as YAML and fails unless it holds exactly
// one document.
func parseOneDocument(t *testing.T, data []byte) *yamlv3.Node {
	t.Helper()
	dec := yamlv3.NewDecoder(strings.NewReader(string(data)))
	var docs []*yamlv3.Node
	for {
		var n yamlv3.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, data)
		}
		docs = append(docs, &n)
	}
	if len(docs) != 1 {
		t.Fatalf("output holds %d YAML documents, want 1:\n%s", len(docs), data)
	}
	return docs[0]
}

// pyYAMLPrintable is PyYAML's Reader.NON_PRINTABLE complement: any other
// character in the stream makes PyYAML refuse the whole document.
func pyYAMLPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7e) || r == 0x85 ||
		(r >= 0xa0 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd) || (r >= 0x10000 && r <= 0x10ffff)
}

// checkShape walks node (YAML) against typ (the renderer's Go type): a
// struct's mapping has only keys that are json tags of its fields, a map's
// keys are exactly mapKeys[path] (the keys the inputs ask for), and every
// plain string scalar reads back as a string in PyYAML.
func checkShape(t *testing.T, n *yamlv3.Node, typ reflect.Type, path string, mapKeys map[string][]string) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if n.Kind == yamlv3.DocumentNode {
		checkShape(t, n.Content[0], typ, path, mapKeys)
		return
	}
	if n.Kind == yamlv3.ScalarNode {
		if n.Style == 0 && typ.Kind() == reflect.String && pyYAMLReadsAsNonString(n.Value) {
			t.Errorf("%s: the string %q is a plain scalar PyYAML reads as another type", path, n.Value)
		}
		return
	}
	switch typ.Kind() {
	case reflect.Struct:
		if n.Kind != yamlv3.MappingNode {
			t.Fatalf("%s: want a mapping for %s, got kind %d", path, typ, n.Kind)
		}
		fields := map[string]reflect.Type{}
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			fields[name] = typ.Field(i).Type
		}
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := fields[k]
			if !ok {
				t.Fatalf("%s: key %q is not one the renderer writes (%s)", path, k, typ)
			}
			checkShape(t, n.Content[i+1], ft, path+"."+k, mapKeys)
		}
	case reflect.Map:
		if n.Kind != yamlv3.MappingNode {
			t.Fatalf("%s: want a mapping, got kind %d", path, n.Kind)
		}
		var keys []string
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Style == 0 && pyYAMLReadsAsNonString(k.Value) {
				t.Errorf("%s: the key %q is a plain scalar PyYAML reads as another type", path, k.Value)
			}
			keys = append(keys, n.Content[i].Value)
			checkShape(t, n.Content[i+1], typ.Elem(), path+"["+n.Content[i].Value+"]", mapKeys)
		}
		want := slices.Clone(mapKeys[path])
		slices.Sort(keys)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Fatalf("%s: keys %q, want %q", path, keys, want)
		}
	case reflect.Slice:
		if n.Kind != yamlv3.SequenceNode {
			t.Fatalf("%s: want a sequence, got kind %d", path, n.Kind)
		}
		for _, c := range n.Content {
			checkShape(t, c, typ.Elem(), path+"[]", mapKeys)
		}
	default:
		t.Fatalf("%s: a %d node where %s is rendered", path, n.Kind, typ)
	}
}

// checkCloudInitText: the text PyYAML reads as one document: printable
// characters only, and one document.
func checkCloudInitText(t *testing.T, data []byte) *yamlv3.Node {
	t.Helper()
	for _, r := range string(data) {
		if !pyYAMLPrintable(r) {
			t.Fatalf("output holds %U, which PyYAML refuses:\n%q", r, data)
		}
	}
	return parseOneDocument(t, data)
}

func FuzzUserData(f *testing.F) {
	f.Add("web", "ubuntu", "ALL=(ALL) NOPASSWD:ALL", "/bin/bash", "adm", "sudo", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPd user@host", "", false)
	f.Add("", "core", "", "", "wheel", "", "ssh-rsa AAAA\nssh-ed25519 BBBB", "$6$salt$hash", true)
	f.Add("h\nusers: []", "u\n- name: root", "x\nsudo: ALL", "sh\n---\nruncmd: [reboot]", "a: b", "[x]", "k\n#cloud-config\nruncmd: [id]", "p\"'", false)
	f.Add("yes", "null", "=", "<<", "0x1F", "1:20", ".1_", "2001-12-14", false)
	f.Add("&a", "*a", "!!binary x", "%TAG", "- x", "? y", "| z", "> w", true)
	f.Fuzz(func(t *testing.T, hostname, user, sudo, shell, group1, group2, keys, hash string, noUser bool) {
		for _, s := range []string{hostname, user, sudo, shell, group1, group2, keys, hash} {
			if !utf8.ValidString(s) {
				return // Kubernetes API strings are UTF-8 (JSON)
			}
		}
		m := Machine{Name: "web", CloudInit: CloudInit{Hostname: hostname, SSHKeys: strings.Split(keys, "\n")}}
		if !noUser {
			m.CloudInit.User = &User{Name: user, Sudo: sudo, Shell: shell, Groups: []string{group1, group2}, PasswordHash: hash}
		}
		out, err := RenderUserData(fuzzOwner, m)
		if err != nil {
			var inv *InvalidInputError
			if errors.As(err, &inv) {
				return
			}
			t.Fatalf("RenderUserData: %v", err)
		}
		body, ok := strings.CutPrefix(string(out), "#cloud-config\n")
		if !ok {
			t.Fatalf("user data does not start with #cloud-config:\n%s", out)
		}
		doc := checkCloudInitText(t, []byte(body))
		checkShape(t, doc, reflect.TypeFor[cloudConfig](), "", nil)

		var got cloudConfig
		if err := yaml.UnmarshalStrict([]byte(body), &got); err != nil {
			t.Fatalf("decoding user data: %v", err)
		}
		wantHost := hostname
		if wantHost == "" {
			wantHost = m.Name
		}
		if got.Hostname != wantHost {
			t.Errorf("hostname %q, want %q", got.Hostname, wantHost)
		}
		wantKeys := cleanKeys(m.CloudInit.SSHKeys)
		if noUser {
			if len(got.Users) != 0 || !slices.Equal(got.SSHAuthorizedKeys, wantKeys) {
				t.Errorf("users %+v, keys %q; want none and %q", got.Users, got.SSHAuthorizedKeys, wantKeys)
			}
			return
		}
		if len(got.Users) != 1 {
			t.Fatalf("%d users, want 1", len(got.Users))
		}
		u := got.Users[0]
		want := userEntry{Name: user, Sudo: sudo, Shell: shell, Groups: []string{group1, group2}, Passwd: hash, SSHAuthorizedKeys: wantKeys}
		if u.Name != want.Name || u.Sudo != want.Sudo || u.Shell != want.Shell || u.Passwd != want.Passwd ||
			!slices.Equal(u.Groups, want.Groups) || !slices.Equal(u.SSHAuthorizedKeys, want.SSHAuthorizedKeys) {
			t.Errorf("user read back as %+v, want %+v", u, want)
		}
	})
}

func FuzzNetworkData(f *testing.F) {
	f.Add("lan", "02:00:00:00:00:0a", "static", "192.168.1.10/24", "192.168.1.1", "1.1.1.1", "wan", "dhcp", "", true, false)
	f.Add("a", "02:00:00:00:00:0b", "static", "fd00::5/64", "fd00::1", "2001:4860:4860::8888", "b", "static", "10.0.0.2/8", false, true)
	f.Add("n\nversion: 3", "02:00:00:00:00:0c", "dhcp", "", "", "", "=", "dhcp", "", true, true)
	f.Fuzz(func(t *testing.T, name1, mac1, mode1, addr1, gw1, dns1, name2, mode2, addr2 string, pod, route bool) {
		for _, s := range []string{name1, mac1, mode1, addr1, gw1, dns1, name2, mode2, addr2} {
			if !utf8.ValidString(s) {
				return
			}
		}
		ip := func(mode, addr, gw, dns string, def bool) *IPConfig {
			c := &IPConfig{Mode: NetworkMode(mode), Gateway: gw, DefaultRoute: def}
			if addr != "" {
				c.Addresses = []string{addr}
			}
			if dns != "" {
				c.DNS = []string{dns}
			}
			return c
		}
		m := Machine{Name: "web", CPU: 1, Memory: resource.MustParse("1Gi"), PodNetwork: pod,
			Disks: []Disk{{Name: "root", ClaimName: "web-root"}},
			NICs: []NIC{
				{Name: name1, NAD: "n1", MAC: mac1, IP: ip(mode1, addr1, gw1, dns1, route)},
				{Name: name2, NAD: "n2", MAC: "02:00:00:00:00:99", IP: ip(mode2, addr2, "", "", false)},
			}}
		if m.Validate() != nil {
			return // Reconcile refuses it before rendering
		}
		out, err := RenderNetworkData(fuzzOwner.Namespace, m)
		if err != nil {
			var inv *InvalidInputError
			if errors.As(err, &inv) {
				return
			}
			t.Fatalf("RenderNetworkData: %v", err)
		}
		doc := checkCloudInitText(t, out)
		keys := []string{name1, name2}
		if pod {
			keys = append(keys, PodNetworkName)
		}
		checkShape(t, doc, reflect.TypeFor[networkConfig](), "", map[string][]string{".ethernets": keys})

		var got networkConfig
		if err := yaml.UnmarshalStrict(out, &got); err != nil {
			t.Fatalf("decoding network data: %v", err)
		}
		for _, n := range m.NICs {
			e := got.Ethernets[n.Name]
			if e.SetName != n.Name {
				t.Errorf("ethernets[%q].set-name is %q", n.Name, e.SetName)
			}
			if e.Match.MACAddress != canonicalMAC(n.MAC) {
				t.Errorf("ethernets[%q] matches MAC %q, want %q", n.Name, e.Match.MACAddress, canonicalMAC(n.MAC))
			}
			// Addresses, gateways and name servers are re-rendered from
			// their parsed form: nothing of the input text but the address.
			for _, a := range e.Addresses {
				if _, err := netip.ParsePrefix(a); err != nil {
					t.Errorf("ethernets[%q] address %q is not a prefix", n.Name, a)
				}
			}
			if e.Nameservers != nil {
				for _, a := range e.Nameservers.Addresses {
					if _, err := netip.ParseAddr(a); err != nil {
						t.Errorf("ethernets[%q] name server %q is not an address", n.Name, a)
					}
				}
			}
			for _, r := range e.Routes {
				if _, err := netip.ParseAddr(r.Via); err != nil {
					t.Errorf("ethernets[%q] route via %q is not an address", n.Name, r.Via)
				}
			}
		}
	})
}

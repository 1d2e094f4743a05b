package kubevirt

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/novasphere/wukong/lib/apply"
)

const plainPassword = "s3cret-Pa55word!"

func cloudInitMachine() Machine {
	return with(func(m *Machine) {
		m.NICs = []NIC{
			{Name: "lan", NAD: "net/lan", MAC: "02:AA:BB:CC:DD:01", IP: &IPConfig{Mode: NetworkModeStatic, Addresses: []string{"192.168.10.5/24"},
				Gateway: "192.168.10.1", DNS: []string{"192.168.10.2", "1.1.1.1"}}},
			{Name: "stor", NAD: "net/stor", MAC: "02:aa:bb:cc:dd:02", IP: &IPConfig{Mode: NetworkModeDHCP}},
			{Name: "v6", NAD: "net/v6", MAC: "02:aa:bb:cc:dd:03", IP: &IPConfig{Mode: NetworkModeStatic, Addresses: []string{"2001:db8::5/64"}, Gateway: "2001:db8::1"}},
		}
		m.CloudInit = CloudInit{
			Hostname: "web01",
			User: &User{
				Name: "ops", Password: plainPassword, Sudo: "ALL=(ALL) NOPASSWD:ALL",
				Shell: "/bin/bash", Groups: []string{"wheel", "adm"},
			},
			SSHKeys: []string{"ssh-ed25519 AAAA1 a@b", "  ", "ssh-rsa AAAA2 c@d\n"},
		}
	})
}

var (
	guestAgentPackages = []any{"qemu-guest-agent"}
	guestAgentRuncmd   = []any{[]any{"systemctl", "enable", "--now", "qemu-guest-agent.service"}}
	// The udev rules that online hot-plugged CPUs and memory.
	hotplugWriteFiles = []any{map[string]any{
		"path":        "/etc/udev/rules.d/80-hotplug-cpu-memory-online.rules",
		"permissions": "0644",
		"content": "# Online CPUs and memory hot-plugged by the hypervisor (KubeVirt CPU and memory hotplug).\n" +
			`SUBSYSTEM=="cpu", ACTION=="add", TEST=="online", ATTR{online}=="0", ATTR{online}="1"` + "\n" +
			`SUBSYSTEM=="memory", ACTION=="add", TEST=="state", ATTR{state}=="offline", ATTR{state}="online"` + "\n",
	}}
)

func parseUserData(t *testing.T, data []byte) map[string]any {
	t.Helper()
	require.True(t, strings.HasPrefix(string(data), "#cloud-config\n"), "user data must start with #cloud-config:\n%s", data)
	var out map[string]any
	require.NoError(t, yaml.Unmarshal(data, &out))
	return out
}

// userData is the parsed user data every machine gets (hostname, growpart,
// the hotplug udev rules and, with guestAgent, the agent's package and
// runcmd), plus extra.
func userData(hostname string, guestAgent bool, extra map[string]any) map[string]any {
	out := map[string]any{
		"hostname":         hostname,
		"manage_etc_hosts": true,
		"growpart":         map[string]any{"mode": "auto", "devices": []any{"/"}},
		"resize_rootfs":    true,
		"write_files":      hotplugWriteFiles,
	}
	if guestAgent {
		out["packages"] = guestAgentPackages
		out["runcmd"] = guestAgentRuncmd
	}
	maps.Copy(out, extra)
	return out
}

func TestRenderUserData(t *testing.T) {
	owner := testOwner()
	salt, err := passwordSalt(owner, "", "ops")
	require.NoError(t, err)
	tests := []struct {
		name string
		ci   CloudInit
		want map[string]any
	}{
		{
			name: "user with plain password: hashed, password login enabled, keys on the user",
			ci:   cloudInitMachine().CloudInit,
			want: userData("web01", true, map[string]any{
				"users": []any{map[string]any{
					"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL", "shell": "/bin/bash",
					"groups": []any{"wheel", "adm"}, "lock_passwd": false,
					"passwd":              sha512Crypt(plainPassword, salt),
					"ssh_authorized_keys": []any{"ssh-ed25519 AAAA1 a@b", "ssh-rsa AAAA2 c@d"},
				}},
				"ssh_pwauth": true,
			}),
		},
		{
			name: "password hash used as is, lock_passwd explicit",
			ci:   CloudInit{User: &User{Name: "ops", Password: "ignored", PasswordHash: "$6$abc$def", LockPasswd: ptrTo(true)}},
			want: userData("web", true, map[string]any{
				"users":      []any{map[string]any{"name": "ops", "passwd": "$6$abc$def", "lock_passwd": true}},
				"ssh_pwauth": true,
			}),
		},
		{
			name: "no user: keys go to the image's default user, no password login",
			ci:   CloudInit{SSHKeys: []string{"ssh-ed25519 AAAA1 a@b"}},
			want: userData("web", true, map[string]any{"ssh_authorized_keys": []any{"ssh-ed25519 AAAA1 a@b"}}),
		},
		{
			name: "user without password: no passwd, cloud-init default lock",
			ci:   CloudInit{User: &User{Name: "ops"}},
			want: userData("web", true, map[string]any{"users": []any{map[string]any{"name": "ops"}}}),
		},
		{
			name: "guest agent opted out: no packages, no runcmd",
			ci:   CloudInit{SkipGuestAgent: true},
			want: userData("web", false, nil),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMachine()
			m.CloudInit = tt.ci
			data, err := RenderUserData(owner, m)
			require.NoError(t, err)
			assert.Equal(t, tt.want, parseUserData(t, data))
			assert.NotContains(t, string(data), plainPassword)
		})
	}
}

func TestPasswordHashIsStableAndPerOwner(t *testing.T) {
	hash := func(o *corev1.ConfigMap, ci CloudInit) string {
		m := baseMachine()
		m.CloudInit = ci
		data, err := RenderUserData(o, m)
		require.NoError(t, err)
		users := parseUserData(t, data)["users"].([]any)
		return users[0].(map[string]any)["passwd"].(string)
	}
	ci := CloudInit{User: &User{Name: "ops", Password: plainPassword}}
	a := hash(testOwner(), ci)
	assert.Regexp(t, `^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$`, a)
	assert.Equal(t, a, hash(testOwner(), ci), "same owner, same hash")

	other := testOwner()
	other.UID = "another-uid"
	assert.NotEqual(t, a, hash(other, ci), "salt depends on the owner UID")

	ci2 := CloudInit{User: &User{Name: "admin", Password: plainPassword}}
	assert.NotEqual(t, a, hash(testOwner(), ci2), "salt depends on the user name")

	ci3 := CloudInit{User: &User{Name: "ops", Password: "Hello world!"}, Salt: "saltstring"}
	assert.Equal(t, "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", hash(testOwner(), ci3))

	noUID := testOwner()
	noUID.UID = ""
	assert.Equal(t, hash(noUID, ci), hash(noUID, ci), "namespace/name seed is stable too")
}

var noRoutes = map[string]any{"use-routes": false}

func TestRenderNetworkData(t *testing.T) {
	podMAC := PodNetworkMAC("prod", "web")
	tests := []struct {
		name string
		m    Machine
		want map[string]any
	}{
		{
			name: "pod NIC keeps the IPv4 default; static v4 gateway unused; dhcp NIC ignores routes; the only IPv6 gateway is the IPv6 default",
			m:    cloudInitMachine(),
			want: map[string]any{"version": float64(2), "ethernets": map[string]any{
				"default": map[string]any{"match": map[string]any{"macaddress": podMAC}, "dhcp4": true},
				"lan": map[string]any{
					"match": map[string]any{"macaddress": "02:aa:bb:cc:dd:01"}, "set-name": "lan",
					"addresses":   []any{"192.168.10.5/24"},
					"nameservers": map[string]any{"addresses": []any{"192.168.10.2", "1.1.1.1"}},
				},
				"stor": map[string]any{
					"match": map[string]any{"macaddress": "02:aa:bb:cc:dd:02"}, "set-name": "stor", "dhcp4": true,
					"dhcp4-overrides": noRoutes,
				},
				"v6": map[string]any{
					"match": map[string]any{"macaddress": "02:aa:bb:cc:dd:03"}, "set-name": "v6",
					"addresses": []any{"2001:db8::5/64"},
					"gateway6":  "2001:db8::1",
				},
			}},
		},
		{
			name: "pod NIC configured statically replaces dhcp",
			m: with(func(m *Machine) {
				m.PodNetworkIP = &IPConfig{Mode: NetworkModeStatic, Addresses: []string{"10.0.2.2/24"}, Gateway: "10.0.2.1"}
			}),
			want: map[string]any{"version": float64(2), "ethernets": map[string]any{
				"default": map[string]any{
					"match": map[string]any{"macaddress": podMAC}, "addresses": []any{"10.0.2.2/24"},
					"routes": []any{map[string]any{"to": "0.0.0.0/0", "via": "10.0.2.1"}},
				},
			}},
		},
		{
			name: "no pod network and nothing configured: empty v2 config",
			m:    with(func(m *Machine) { m.PodNetwork = false }),
			want: map[string]any{"version": float64(2), "ethernets": map[string]any{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := RenderNetworkData("prod", tt.m)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, yaml.Unmarshal(data, &got))
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestRenderNetworkDataInvalid: what RenderNetworkData cannot render,
// Machine.Validate refuses naming the field.
func TestRenderNetworkDataInvalid(t *testing.T) {
	const mac = "02:00:00:00:00:01"
	lan := func(ip IPConfig) NIC { return NIC{Name: "lan", NAD: "a/b", MAC: mac, IP: &ip} }
	tests := []struct {
		name      string
		edit      func(*Machine)
		wantField string
	}{
		{"IP without MAC", func(m *Machine) { m.NICs = []NIC{{Name: "lan", NAD: "a/b", IP: &IPConfig{}}} }, "nics[0].mac"},
		{"same MAC twice", func(m *Machine) {
			m.NICs = []NIC{lan(IPConfig{}), {Name: "stor", NAD: "a/c", MAC: mac, IP: &IPConfig{}}}
		}, "nics[1].mac"},
		{"pod network IP without the pod network", func(m *Machine) { m.PodNetwork, m.PodNetworkIP = false, &IPConfig{} }, "podNetworkIP"},
		{"static without addresses", func(m *Machine) { m.NICs = []NIC{lan(IPConfig{Mode: NetworkModeStatic})} }, "nics[0].ip.addresses"},
		{"address not CIDR", func(m *Machine) {
			m.NICs = []NIC{lan(IPConfig{Mode: NetworkModeStatic, Addresses: []string{"10.0.0.1"}})}
		}, "nics[0].ip.addresses[0]"},
		{"bad gateway", func(m *Machine) { m.NICs = []NIC{lan(IPConfig{Gateway: "gw"})} }, "nics[0].ip.gateway"},
		{"bad dns", func(m *Machine) { m.NICs = []NIC{lan(IPConfig{DNS: []string{"dns.example"}})} }, "nics[0].ip.dns[0]"},
		{"bad mode", func(m *Machine) { m.NICs = []NIC{lan(IPConfig{Mode: "slaac"})} }, "nics[0].ip.mode"},
		{"gateway in dhcp mode", func(m *Machine) { m.NICs = []NIC{lan(IPConfig{Gateway: "10.0.0.1"})} }, "nics[0].ip.gateway"},
		{"defaultRoute on a static NIC without gateway", func(m *Machine) {
			m.NICs = []NIC{lan(IPConfig{Mode: NetworkModeStatic, Addresses: []string{"10.0.0.5/24"}, DefaultRoute: true})}
		}, "nics[0].ip.gateway"},
		{"defaultRoute twice", func(m *Machine) {
			m.PodNetworkIP = &IPConfig{DefaultRoute: true}
			m.NICs = []NIC{lan(IPConfig{DefaultRoute: true})}
		}, "nics[0].ip.defaultRoute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := with(tt.edit).Validate() // the renderer trusts it
			requireInvalid(t, err, tt.wantField)
		})
	}
	_, err := BuildCloudInitSecret(testID, testOwner(), with(func(m *Machine) {
		m.CloudInit.Salt = "bad salt!"
		m.CloudInit.User = &User{Name: "ops", Password: "x"}
	}))
	// An explicit salt outside the crypt alphabet is refused.
	requireInvalid(t, err, "cloudInit.salt")
}

func TestBuildCloudInitSecret(t *testing.T) {
	owner := testOwner()
	m := cloudInitMachine()
	s, err := BuildCloudInitSecret(testID, owner, m)
	require.NoError(t, err)
	assert.Equal(t, "web-cloudinit", s.Name)
	assert.Equal(t, "prod", s.Namespace)
	assert.Equal(t, map[string]string{apply.LabelManagedBy: "wukong", testID.OwnerLabelKey(): "web"}, s.Labels)
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, owner.UID, s.OwnerReferences[0].UID)
	assert.Empty(t, s.StringData)
	assert.ElementsMatch(t, []string{UserDataKey, NetworkDataKey}, keysOf(s.Data))
	parseUserData(t, s.Data[UserDataKey])

	// The plain password appears nowhere: not in the marshalled Secret or
	// VM, nor in the decoded Secret values.
	vm := BuildVM(testID, owner, m)
	for _, obj := range []any{s, vm} {
		raw, err := json.Marshal(obj)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), plainPassword)
	}
	for k, v := range s.Data {
		assert.NotContains(t, string(v), plainPassword, k)
	}

	again, err := BuildCloudInitSecret(testID, owner, m)
	require.NoError(t, err)
	assert.Equal(t, s, again, "deterministic")
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

const (
	testKeyEd25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINeWUM1ouD70UOC7hd0OLjA02sHgBQMnT+RNWjbJlaBr ed25519@test"
	testKeyRSA     = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDMUv6rN5RC7J9l1XRemKUQZVgy57BcRRHhi8hFyeZ2CV28/zniZvX4zxV0WRL92PtT4SoDikOwBEaOhUk6lyfL1rYVkl6s+oL4qVTvCLAKjCSiQkzEHrbIKR/Z8t3Xy0QmLfbPz2en9D4waI3iMHln3ctrbJXMP3VtrsNqf4eAvxDuNg7NyjQyjzQ4zsczqMB0rRYiXaHOSK77L9YYSes4cOxJbdwY9CL/dsmb0E98EMdL6kRQwAxcoJ0RO2/pH07NQglX4l+/SHVYsK8aHvCmzUvEXFZddzBlrw8pacOtc9Ac7zPdGsPs7hEnTNNTKjPval9Mw5jDqeqRzhblEcQV rsa@test"
	testOptIn      = "example.com/ssh-authorized-keys"
)

func TestReadSSHKeys(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, _ := newNamespace(t, c)
	optedIn := map[string]string{testOptIn: "true"}
	for _, s := range []*corev1.Secret{{
		ObjectMeta: metav1.ObjectMeta{Name: "keys", Namespace: ns, Labels: optedIn},
		Data: map[string][]byte{
			"zeta":  []byte(testKeyEd25519 + "\n"),
			"alpha": []byte(testKeyRSA + "\r\n\n  " + `from="10.0.0.0/8" ` + testKeyEd25519 + "  \n"),
			"empty": nil,
		},
	}, {
		// What a Secret that is not a key list holds: every line is dropped.
		ObjectMeta: metav1.ObjectMeta{Name: "mixed", Namespace: ns, Labels: optedIn},
		Data: map[string][]byte{
			"password": []byte("hunter2\n"),
			"keys":     []byte("# the team's keys\n" + testKeyEd25519 + "\nssh-ed25519 not-base64 x@y\n" + testKeyEd25519 + " trailing junk " + testKeyRSA + "\n"),
			"id":       []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
		},
	}, {
		ObjectMeta: metav1.ObjectMeta{Name: "unlabelled", Namespace: ns},
		Data:       map[string][]byte{"k": []byte(testKeyEd25519)},
	}, {
		ObjectMeta: metav1.ObjectMeta{Name: "false", Namespace: ns, Labels: map[string]string{testOptIn: "false"}},
		Data:       map[string][]byte{"k": []byte(testKeyEd25519)},
	}} {
		require.NoError(t, c.Create(ctx, s))
	}
	tests := []struct {
		name, secret, label string
		want                SSHKeys
		missing, notOptedIn bool
	}{
		{name: "keys of every value, values sorted, options kept", secret: "keys", label: testOptIn,
			want: SSHKeys{Keys: []string{testKeyRSA, `from="10.0.0.0/8" ` + testKeyEd25519, testKeyEd25519}}},
		{name: "what is not one key per line is dropped and counted", secret: "mixed", label: testOptIn,
			// id: 3 lines; keys: the comment and the bad key; password: 1. A
			// key's comment is free text, so the last key line is kept.
			want: SSHKeys{Keys: []string{testKeyEd25519, testKeyEd25519 + " trailing junk " + testKeyRSA}, Dropped: 6}},
		{name: "missing secret", secret: "nope", label: testOptIn, missing: true},
		{name: "no label", secret: "unlabelled", label: testOptIn, notOptedIn: true},
		{name: "label not true", secret: "false", label: testOptIn, notOptedIn: true},
		{name: "no label needed", secret: "unlabelled", want: SSHKeys{Keys: []string{testKeyEd25519}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSSHKeys(ctx, c, ns, tt.secret, tt.label)
			if tt.missing || tt.notOptedIn {
				f, ok := apply.AsFailure(err)
				require.True(t, ok, "an *apply.Failure: %v", err)
				assert.True(t, f.Stalled)
				assert.Equal(t, ReasonSSHKeySecretNotFound, f.Reason)
				assert.Equal(t, tt.secret, f.Subject)
				assert.Equal(t, "secretName", f.Field)
			}
			switch {
			case tt.missing:
				var nf *SecretNotFoundError
				require.True(t, errors.As(err, &nf), "got %v", err)
				assert.Equal(t, tt.secret, nf.Name)
			case tt.notOptedIn:
				var no *SecretNotOptedInError
				require.True(t, errors.As(err, &no), "got %v", err)
				assert.Equal(t, tt.secret, no.Name)
				assert.Empty(t, got.Keys)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestReadPassword(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, _ := newNamespace(t, c)
	const hash = "$6$rounds=4096$saltsalt$Bq2E0Uu1t8hB0sYgQW4cN7H9oq7b1B4o2h6m5YH3lTq1W0m0sQ6m0o7N6bWZzq0ZxR1n6eQ8kL2yPpF5fYwA1"
	optedIn := map[string]string{testOptIn: "true"}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: ns, Labels: optedIn}, Data: map[string][]byte{
			"password": []byte("s3cret\n"), "crlf": []byte("s3cret\r\n"), "two": []byte("s3cret\n\n"),
			"hash": []byte(hash + "\n"), "yescrypt": []byte("$y$j9T$salt$hash"), "dollar": []byte("$notcrypt"),
			"empty": []byte("\n"),
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled", Namespace: ns}, Data: map[string][]byte{"password": []byte("x")}},
	} {
		require.NoError(t, c.Create(ctx, s))
	}
	tests := []struct {
		name, secret, key string
		want              Password
		err               any
	}{
		{name: "plain, one newline dropped", secret: "pw", key: "password", want: Password{Plain: "s3cret"}},
		{name: "CRLF dropped", secret: "pw", key: "crlf", want: Password{Plain: "s3cret"}},
		{name: "only one newline dropped", secret: "pw", key: "two", want: Password{Plain: "s3cret\n"}},
		{name: "SHA-512 crypt used as is", secret: "pw", key: "hash", want: Password{Hash: hash}},
		{name: "yescrypt used as is", secret: "pw", key: "yescrypt", want: Password{Hash: "$y$j9T$salt$hash"}},
		{name: "a dollar is not a hash", secret: "pw", key: "dollar", want: Password{Plain: "$notcrypt"}},
		{name: "empty value", secret: "pw", key: "empty", err: new(*SecretKeyNotFoundError)},
		{name: "missing key", secret: "pw", key: "nope", err: new(*SecretKeyNotFoundError)},
		{name: "missing secret", secret: "nope", key: "password", err: new(*SecretNotFoundError)},
		{name: "not opted in", secret: "unlabelled", key: "password", err: new(*SecretNotOptedInError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadPassword(ctx, c, ns, tt.secret, tt.key, testOptIn)
			if tt.err != nil {
				require.Error(t, err)
				assert.True(t, errors.As(err, tt.err), "got %T %v", err, err)
				f, ok := apply.AsFailure(err)
				require.True(t, ok, "an *apply.Failure: %v", err)
				assert.True(t, f.Stalled)
				assert.Equal(t, tt.secret, f.Subject)
				if _, keyMissing := tt.err.(**SecretKeyNotFoundError); keyMissing {
					assert.Equal(t, ReasonPasswordKeyNotFound, f.Reason)
					assert.Equal(t, "key", f.Field)
				} else {
					assert.Equal(t, ReasonPasswordSecretNotFound, f.Reason)
					assert.Equal(t, "secretName", f.Field)
				}
				assert.Equal(t, Password{}, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

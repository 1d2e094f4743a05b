package kubevirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// cloudConfig is the #cloud-config user data. Field order is the output
// order; sigs.k8s.io/yaml sorts map keys, so the text is deterministic.
type cloudConfig struct {
	Hostname          string      `json:"hostname"`
	Users             []userEntry `json:"users,omitempty"`
	SSHAuthorizedKeys []string    `json:"ssh_authorized_keys,omitempty"`
	SSHPwauth         *bool       `json:"ssh_pwauth,omitempty"`
	Growpart          growpart    `json:"growpart"`
	ResizeRootfs      bool        `json:"resize_rootfs"`
}

type userEntry struct {
	Name              string   `json:"name"`
	Sudo              string   `json:"sudo,omitempty"`
	Shell             string   `json:"shell,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	LockPasswd        *bool    `json:"lock_passwd,omitempty"`
	Passwd            string   `json:"passwd,omitempty"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
}

type growpart struct {
	Mode    string   `json:"mode"`
	Devices []string `json:"devices"`
}

// networkConfig is cloud-init network config version 2 (netplan syntax).
type networkConfig struct {
	Version   int                 `json:"version"`
	Ethernets map[string]ethernet `json:"ethernets"`
}

type ethernet struct {
	Match       ethMatch     `json:"match"`
	SetName     string       `json:"set-name,omitempty"`
	DHCP4       *bool        `json:"dhcp4,omitempty"`
	DHCP6       *bool        `json:"dhcp6,omitempty"`
	Addresses   []string     `json:"addresses,omitempty"`
	Routes      []route      `json:"routes,omitempty"`
	Nameservers *nameservers `json:"nameservers,omitempty"`
}

type ethMatch struct {
	MACAddress string `json:"macaddress"`
}

type route struct {
	To  string `json:"to"`
	Via string `json:"via"`
}

type nameservers struct {
	Addresses []string `json:"addresses"`
}

// BuildCloudInitSecret returns the Secret <owner>-cloudinit holding the
// NoCloud user data (key userdata) and network data (key networkdata) for m,
// in data (never stringData). A plain User.Password is stored only as its
// SHA-512 crypt hash, salted deterministically (see CloudInit.Salt). Like
// BuildVM, the owner reference needs owner's TypeMeta.
func BuildCloudInitSecret(owner client.Object, m Machine) (*corev1.Secret, error) {
	user, err := RenderUserData(owner, m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errBuildCloudIni, err)
	}
	network, err := RenderNetworkData(owner.GetNamespace(), m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errBuildCloudIni, err)
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            CloudInitSecretName(owner),
			Namespace:       owner.GetNamespace(),
			Labels:          Labels(owner),
			OwnerReferences: ownerReferences(owner),
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{UserDataKey: user, NetworkDataKey: network},
	}, nil
}

// RenderUserData renders the #cloud-config document for m: hostname, the user with
// a hashed password and SSH keys (or the keys for the image's default user),
// ssh_pwauth when a password is set, and growpart/resize_rootfs so an
// expanded disk reaches the root filesystem.
func RenderUserData(owner client.Object, m Machine) ([]byte, error) {
	ci := m.CloudInit
	cfg := cloudConfig{
		Hostname:     ci.Hostname,
		Growpart:     growpart{Mode: "auto", Devices: []string{"/"}},
		ResizeRootfs: true,
	}
	if cfg.Hostname == "" {
		cfg.Hostname = m.Name
	}
	keys := cleanKeys(ci.SSHKeys)
	if u := ci.User; u != nil {
		if u.Name == "" {
			return nil, &InvalidInputError{Field: "cloudInit.user.name", Message: "must not be empty"}
		}
		e := userEntry{
			Name:              u.Name,
			Sudo:              u.Sudo,
			Shell:             u.Shell,
			Groups:            append([]string(nil), u.Groups...),
			LockPasswd:        u.LockPasswd,
			SSHAuthorizedKeys: keys,
		}
		switch {
		case u.PasswordHash != "":
			e.Passwd = u.PasswordHash
		case u.Password != "":
			salt, err := passwordSalt(owner, ci.Salt, u.Name)
			if err != nil {
				return nil, err
			}
			e.Passwd = SHA512Crypt(u.Password, salt)
		}
		if e.Passwd != "" {
			t, f := true, false
			cfg.SSHPwauth = &t
			if e.LockPasswd == nil {
				e.LockPasswd = &f
			}
		}
		cfg.Users = []userEntry{e}
	} else {
		cfg.SSHAuthorizedKeys = keys
	}
	body, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return append([]byte("#cloud-config\n"), body...), nil
}

// passwordSalt returns the explicit salt, or 16 crypt-alphabet characters
// from sha256(owner UID, or namespace/name when the UID is unset, + user).
func passwordSalt(owner client.Object, explicit, user string) (string, error) {
	if explicit != "" {
		if len(explicit) > sha512SaltMax || strings.Trim(explicit, cryptAlphabet) != "" {
			return "", &InvalidInputError{Field: "cloudInit.salt", Message: "must be at most 16 characters of [./0-9A-Za-z]"}
		}
		return explicit, nil
	}
	seed := string(owner.GetUID())
	if seed == "" {
		seed = owner.GetNamespace() + "/" + owner.GetName()
	}
	sum := sha256.Sum256([]byte(seed + "\x00" + user))
	salt := make([]byte, sha512SaltMax)
	for i := range salt {
		salt[i] = cryptAlphabet[sum[i]&0x3f]
	}
	return string(salt), nil
}

func cleanKeys(in []string) []string {
	var out []string
	for _, k := range in {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// RenderNetworkData renders cloud-init network config version 2 for m. Every
// entry is matched by MAC: the pod-network NIC by PodNetworkMAC (the lib
// sets that MAC on the masquerade interface, so it is known before boot)
// and gets DHCP unless CloudInit.Networks configures that MAC; a Multus NIC
// is configured only when CloudInit.Networks has an entry with its MAC, and
// is renamed to the NIC's name (set-name). The default route is written as
// routes to 0.0.0.0/0 (or ::/0) rather than the deprecated gateway4, which
// both netplan and cloud-init's own renderers understand. A Networks entry
// whose MAC matches no interface is an *InvalidInputError.
func RenderNetworkData(namespace string, m Machine) ([]byte, error) {
	cfg := networkConfig{Version: 2, Ethernets: map[string]ethernet{}}
	byMAC := map[string]string{} // MAC -> ethernets key
	setName := map[string]bool{}
	podMAC := ""
	if m.PodNetwork {
		podMAC = PodNetworkMAC(namespace, m.Name)
		byMAC[podMAC] = PodNetworkName
	}
	for _, n := range m.NICs {
		if n.MAC != "" {
			byMAC[canonicalMAC(n.MAC)] = n.Name
			setName[n.Name] = true
		}
	}
	configured := map[string]bool{}
	for i, nd := range m.CloudInit.Networks {
		field := fmt.Sprintf("cloudInit.networks[%d]", i)
		mac := canonicalMAC(nd.MAC)
		key, ok := byMAC[mac]
		if !ok {
			return nil, &InvalidInputError{Field: field + ".mac", Message: "matches no interface of the machine"}
		}
		if configured[mac] {
			return nil, &InvalidInputError{Field: field + ".mac", Message: "configured twice"}
		}
		configured[mac] = true
		eth, err := buildEthernet(field, mac, nd)
		if err != nil {
			return nil, err
		}
		if setName[key] {
			eth.SetName = key
		}
		cfg.Ethernets[key] = eth
	}
	if podMAC != "" && !configured[podMAC] {
		t := true
		cfg.Ethernets[PodNetworkName] = ethernet{Match: ethMatch{MACAddress: podMAC}, DHCP4: &t}
	}
	return yaml.Marshal(cfg)
}

func buildEthernet(field, mac string, nd NetworkData) (ethernet, error) {
	eth := ethernet{Match: ethMatch{MACAddress: mac}}
	switch nd.Mode {
	case "", NetworkModeDHCP:
		t := true
		eth.DHCP4 = &t
	case NetworkModeStatic:
		if len(nd.Addresses) == 0 {
			return eth, &InvalidInputError{Field: field + ".addresses", Message: "static mode needs at least one address"}
		}
	default:
		return eth, &InvalidInputError{Field: field + ".mode", Message: fmt.Sprintf("unsupported value %q", nd.Mode)}
	}
	for j, a := range nd.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return eth, &InvalidInputError{Field: fmt.Sprintf("%s.addresses[%d]", field, j), Message: "not an address in CIDR form"}
		}
		eth.Addresses = append(eth.Addresses, p.String())
	}
	if nd.Gateway != "" {
		gw, err := netip.ParseAddr(nd.Gateway)
		if err != nil {
			return eth, &InvalidInputError{Field: field + ".gateway", Message: "not an IP address"}
		}
		to := "0.0.0.0/0"
		if gw.Is6() && !gw.Is4In6() {
			to = "::/0"
		}
		eth.Routes = []route{{To: to, Via: gw.String()}}
	}
	if len(nd.DNS) > 0 {
		ns := &nameservers{}
		for j, d := range nd.DNS {
			a, err := netip.ParseAddr(d)
			if err != nil {
				return eth, &InvalidInputError{Field: fmt.Sprintf("%s.dns[%d]", field, j), Message: "not an IP address"}
			}
			ns.Addresses = append(ns.Addresses, a.String())
		}
		eth.Nameservers = ns
	}
	return eth, nil
}

// ReadSSHKeys returns every non-empty line of every value of the Secret
// namespace/secretName, keys taken in sorted order. A missing Secret is a
// *SecretNotFoundError.
func ReadSSHKeys(ctx context.Context, c client.Client, namespace, secretName string) ([]string, error) {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: secretName}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &SecretNotFoundError{Namespace: namespace, Name: secretName}
		}
		return nil, fmt.Errorf("%s: %w", errGetSSHSecret, err)
	}
	names := make([]string, 0, len(s.Data))
	for k := range s.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	var keys []string
	for _, k := range names {
		for _, line := range bytes.Split(s.Data[k], []byte("\n")) {
			if l := strings.TrimSpace(string(line)); l != "" {
				keys = append(keys, l)
			}
		}
	}
	return keys, nil
}

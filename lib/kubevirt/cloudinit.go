package kubevirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// cloudConfig is the #cloud-config user data. Field order is the output
// order; sigs.k8s.io/yaml sorts map keys, so the text is deterministic.
type cloudConfig struct {
	Hostname          string      `json:"hostname"`
	ManageEtcHosts    bool        `json:"manage_etc_hosts"`
	Users             []userEntry `json:"users,omitempty"`
	SSHAuthorizedKeys []string    `json:"ssh_authorized_keys,omitempty"`
	SSHPwauth         *bool       `json:"ssh_pwauth,omitempty"`
	Growpart          growpart    `json:"growpart"`
	ResizeRootfs      bool        `json:"resize_rootfs"`
	WriteFiles        []writeFile `json:"write_files"`
	Packages          []string    `json:"packages,omitempty"`
	Runcmd            [][]string  `json:"runcmd,omitempty"`
}

// writeFile is one entry of cloud-init's write_files module.
type writeFile struct {
	Path        string `json:"path"`
	Content     string `json:"content"`
	Permissions string `json:"permissions"`
}

// HotplugRulesPath is the udev rules file RenderUserData writes so that
// the guest onlines the CPUs and memory KubeVirt hot-plugs (a cpu or memory
// grow on a running VM, applied by KubeVirt through sockets and virtio-mem:
// user guide, "CPU Hotplug", "Memory Hotplug"). The kernel adds a
// hot-plugged CPU offline and, unless its default says otherwise, memory
// blocks offline too; Fedora, RHEL and Ubuntu ship udev rules that online
// them, Debian does not (its bookworm guest on the local cluster showed the
// second CPU in /sys/devices/system/cpu but nproc 1). The rules are those
// distributions' (set online when added offline); on an image that has its
// own they change nothing.
const HotplugRulesPath = "/etc/udev/rules.d/80-hotplug-cpu-memory-online.rules"

// hotplugRules is the content of HotplugRulesPath.
const hotplugRules = `# Online CPUs and memory hot-plugged by the hypervisor (KubeVirt CPU and memory hotplug).
SUBSYSTEM=="cpu", ACTION=="add", TEST=="online", ATTR{online}=="0", ATTR{online}="1"
SUBSYSTEM=="memory", ACTION=="add", TEST=="state", ATTR{state}=="offline", ATTR{state}="online"
`

// Guest agent: the package has this name on Debian, Ubuntu, Fedora, RHEL and
// their derivatives, and its systemd unit is qemu-guest-agent.service. The
// unit is normally started by udev when the agent's virtio-serial port
// appears, which happens before cloud-init installs the package on first
// boot, hence the explicit start (KubeVirt user guide, "Guest Agent
// information": install qemu-guest-agent and start its service).
const (
	GuestAgentPackage = "qemu-guest-agent"
	guestAgentService = "qemu-guest-agent.service"
)

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
	Match          ethMatch       `json:"match"`
	SetName        string         `json:"set-name,omitempty"`
	DHCP4          *bool          `json:"dhcp4,omitempty"`
	DHCP4Overrides *dhcpOverrides `json:"dhcp4-overrides,omitempty"`
	Addresses      []string       `json:"addresses,omitempty"`
	Gateway6       string         `json:"gateway6,omitempty"`
	Routes         []route        `json:"routes,omitempty"`
	Nameservers    *nameservers   `json:"nameservers,omitempty"`
}

type dhcpOverrides struct {
	UseRoutes bool `json:"use-routes"`
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
func BuildCloudInitSecret(id apply.Identity, owner client.Object, m Machine) (*corev1.Secret, error) {
	user, err := RenderUserData(owner, m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errBuildCloudIni, err)
	}
	network, err := RenderNetworkData(owner.GetNamespace(), m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errBuildCloudIni, err)
	}
	return ownedSecret(id, owner, CloudInitSecretName(owner), map[string][]byte{UserDataKey: user, NetworkDataKey: network}), nil
}

// ownedSecret is the Opaque Secret name in owner's namespace holding data,
// with the owner's labels and an owner reference to it (which needs owner's
// TypeMeta).
func ownedSecret(id apply.Identity, owner client.Object, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       owner.GetNamespace(),
			Labels:          Labels(id, owner),
			OwnerReferences: ownerReferences(owner),
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// RenderUserData renders the #cloud-config document for m: hostname (and
// manage_etc_hosts: true, cloud-init's update_etc_hosts module, so the name
// resolves in the guest: without it, on a cluster whose DNS does not know
// the guest, sudo warns "unable to resolve host" after a DNS timeout, as the
// local cluster's real KubeVirt showed), the user with
// a hashed password and SSH keys (or the keys for the image's default user),
// ssh_pwauth when a password is set, growpart/resize_rootfs so an expanded
// disk reaches the root filesystem, udev rules at HotplugRulesPath that
// online hot-plugged CPUs and memory (write_files), and, unless
// CloudInit.SkipGuestAgent,
// the QEMU guest agent: packages [qemu-guest-agent] (cloud-init refreshes the
// package index first and installs it in its final stage) and a runcmd
// `systemctl enable --now qemu-guest-agent.service`, which runs after the
// package install. KubeVirt reports the IP addresses of bridge- and
// SR-IOV-bound NICs only from the guest agent (VMI status.interfaces[] with
// infoSource guest-agent); an image that already ships the agent gets a
// no-op install.
func RenderUserData(owner client.Object, m Machine) ([]byte, error) {
	ci := m.CloudInit
	cfg := cloudConfig{
		Hostname:       ci.Hostname,
		ManageEtcHosts: true,
		Growpart:       growpart{Mode: "auto", Devices: []string{"/"}},
		ResizeRootfs:   true,
		WriteFiles:     []writeFile{{Path: HotplugRulesPath, Content: hotplugRules, Permissions: "0644"}},
	}
	if !ci.SkipGuestAgent {
		cfg.Packages = []string{GuestAgentPackage}
		cfg.Runcmd = [][]string{{"systemctl", "enable", "--now", guestAgentService}}
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
			e.Passwd = sha512Crypt(u.Password, salt)
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
	body, err := marshalCloudInit(cfg)
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

// RenderNetworkData renders cloud-init network config version 2 for m: one
// entry per configured NIC, matched in the guest by MAC. The pod-network NIC
// is matched by PodNetworkMAC (the lib sets that MAC on the masquerade
// interface, so it is known before boot) and gets Machine.PodNetworkIP, or
// DHCPv4 when that is nil; a Multus NIC is configured only when its IP is
// set, by its MAC (which IP therefore needs), and is renamed to the NIC's
// name (set-name). m is not validated here: Machine.Validate refuses what
// cannot be rendered (validateNetworkData); Reconcile calls it first.
//
// Default route: per address family, exactly one NIC carries it, so egress
// never depends on which of two default routes the kernel prefers. The
// carrier is, in this order:
//
//  1. the NIC whose IP sets DefaultRoute, if it can (static with a gateway
//     of that family, or dhcp mode for IPv4);
//  2. else the pod network when it is on and can (by default it is DHCPv4,
//     so it keeps the IPv4 default route);
//  3. else the first configured NIC of Machine.NICs that can.
//
// Every other NIC gets no default route of that family: a static gateway is
// left out (the NIC reaches its own subnet, through the prefix route of its
// address), and a DHCP NIC, the pod network included, gets
// dhcp4-overrides: {use-routes: false} so the routers of its lease are
// ignored (netplan's and cloud-init's networkd renderer honour it; cloud-init's
// ifupdown (eni) renderer ignores DHCP overrides). An IPv4 default route is
// written as routes: [{to: 0.0.0.0/0, via: GW}]; an IPv6 one as gateway6: GW,
// because cloud-init before 23.1 renders a route to ::/0 as a route to ::/64
// with its networkd and eni renderers (canonical/cloud-init#1973, #4600),
// while gateway6 reaches every renderer intact.
func RenderNetworkData(namespace string, m Machine) ([]byte, error) {
	cfg := networkConfig{Version: 2, Ethernets: map[string]ethernet{}}

	// Entries in the order rule 3 reads them; the pod network's is marked.
	type entry struct {
		key string
		eth ethernet
		ip  IPConfig
		gw  netip.Addr // valid only for a static entry with a gateway
		pod bool
	}
	var entries []*entry
	explicit := -1
	add := func(key string, mac string, ip IPConfig, pod bool) {
		eth, gw := buildEthernet(mac, ip)
		if !pod {
			eth.SetName = key
		}
		if ip.DefaultRoute {
			explicit = len(entries)
		}
		entries = append(entries, &entry{key: key, eth: eth, ip: ip, gw: gw, pod: pod})
	}
	podMAC, macs := interfaceMACs(namespace, m)
	if m.PodNetwork {
		ip := IPConfig{Mode: NetworkModeDHCP}
		if m.PodNetworkIP != nil {
			ip = *m.PodNetworkIP
		}
		add(PodNetworkName, podMAC, ip, true)
	}
	for i, n := range m.NICs {
		if n.IP != nil {
			add(n.Name, macs[i], *n.IP, false)
		}
	}

	canRoute := func(e *entry, v6 bool) bool {
		if isDHCP(e.ip) {
			return !v6 // the lib enables DHCPv4 only
		}
		return e.gw.IsValid() && isIPv6(e.gw) == v6
	}
	carrier := func(v6 bool) *entry {
		if explicit >= 0 && canRoute(entries[explicit], v6) {
			return entries[explicit]
		}
		for _, e := range entries {
			if e.pod && canRoute(e, v6) {
				return e
			}
		}
		for _, e := range entries {
			if canRoute(e, v6) {
				return e
			}
		}
		return nil
	}
	v4, v6 := carrier(false), carrier(true)
	for _, e := range entries {
		switch {
		case isDHCP(e.ip):
			if e != v4 {
				e.eth.DHCP4Overrides = &dhcpOverrides{UseRoutes: false}
			}
		case e.gw.IsValid() && !isIPv6(e.gw) && e == v4:
			e.eth.Routes = []route{{To: "0.0.0.0/0", Via: e.gw.String()}}
		case e.gw.IsValid() && isIPv6(e.gw) && e == v6:
			e.eth.Gateway6 = e.gw.String()
		}
		cfg.Ethernets[e.key] = e.eth
	}
	return marshalCloudInit(cfg)
}

func isDHCP(ip IPConfig) bool { return ip.Mode == "" || ip.Mode == NetworkModeDHCP }

// isIPv6 reports whether a is an IPv6 address (an IPv4-mapped one counts as IPv4).
func isIPv6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }

// validateNetworkData is Machine.Validate's part for RenderNetworkData: the
// pod network's IP needs the pod network; a NIC with an IP needs a MAC no
// other such NIC has (cloud-init finds the guest NIC by it); each IP
// (checkIP) is valid; at most one carries DefaultRoute.
func (m Machine) validateNetworkData() error {
	route := "" // the field of the NIC carrying DefaultRoute
	check := func(field, ipField string, ip IPConfig) error {
		if err := checkIP(ipField, ip); err != nil {
			return err
		}
		if ip.DefaultRoute {
			if route != "" {
				return &InvalidInputError{Field: ipField + ".defaultRoute", Message: fmt.Sprintf(
					"only one NIC can carry the default route; %s already does", route)}
			}
			route = field
		}
		return nil
	}
	switch {
	case m.PodNetwork && m.PodNetworkIP != nil:
		if err := check("podNetwork", "podNetworkIP", *m.PodNetworkIP); err != nil {
			return err
		}
	case m.PodNetworkIP != nil:
		return &InvalidInputError{Field: "podNetworkIP", Message: "needs podNetwork"}
	}
	byMAC := map[string]string{} // MAC -> field of the NIC configured with it
	for i, n := range m.NICs {
		if n.IP == nil {
			continue
		}
		field := fmt.Sprintf("nics[%d]", i)
		if n.MAC == "" {
			return &InvalidInputError{Field: field + ".mac", Message: "needed to configure the NIC's IP: cloud-init finds the guest NIC by its MAC"}
		}
		mac := canonicalMAC(n.MAC)
		if other, ok := byMAC[mac]; ok {
			return &InvalidInputError{Field: field + ".mac", Message: "is the MAC of " + other + " too"}
		}
		byMAC[mac] = field
		if err := check(field, field+".ip", *n.IP); err != nil {
			return err
		}
	}
	return nil
}

// checkIP checks one NIC's IPConfig (field names it): a known mode, at
// least one address in CIDR form in static mode, a gateway and name servers
// that are IP addresses, no gateway in dhcp mode (DHCP learns its router
// from the lease; a gateway there would be ignored by every renderer), and
// a gateway for DefaultRoute in static mode.
func checkIP(field string, nd IPConfig) error {
	switch nd.Mode {
	case "", NetworkModeDHCP:
	case NetworkModeStatic:
		if len(nd.Addresses) == 0 {
			return &InvalidInputError{Field: field + ".addresses", Message: "static mode needs at least one address"}
		}
	default:
		return &InvalidInputError{Field: field + ".mode", Message: fmt.Sprintf("unsupported value %q", nd.Mode)}
	}
	for j, a := range nd.Addresses {
		if _, err := netip.ParsePrefix(a); err != nil {
			return &InvalidInputError{Field: fmt.Sprintf("%s.addresses[%d]", field, j), Message: "not an address in CIDR form"}
		}
	}
	if nd.Gateway != "" {
		if _, err := netip.ParseAddr(nd.Gateway); err != nil {
			return &InvalidInputError{Field: field + ".gateway", Message: "not an IP address"}
		}
		if isDHCP(nd) {
			return &InvalidInputError{Field: field + ".gateway", Message: "cannot be set in dhcp mode"}
		}
	}
	for j, d := range nd.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return &InvalidInputError{Field: fmt.Sprintf("%s.dns[%d]", field, j), Message: "not an IP address"}
		}
	}
	if nd.DefaultRoute && !isDHCP(nd) && nd.Gateway == "" {
		return &InvalidInputError{Field: field + ".gateway", Message: "defaultRoute needs a gateway in static mode"}
	}
	return nil
}

// Prefixes returns Addresses parsed, in order; one that is not in CIDR
// form is left out (Machine.Validate refuses it). The one place an address
// is read, for the network data and for a caller showing what the guest is
// configured with.
func (ip IPConfig) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ip.Addresses))
	for _, a := range ip.Addresses {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// buildEthernet renders one entry's addresses, DHCP and name servers of a
// checked IPConfig (checkIP) and returns its gateway (the zero Addr when it
// has none); the default route is RenderNetworkData's decision.
func buildEthernet(mac string, nd IPConfig) (ethernet, netip.Addr) {
	var gw netip.Addr
	eth := ethernet{Match: ethMatch{MACAddress: mac}}
	if isDHCP(nd) {
		t := true
		eth.DHCP4 = &t
	}
	for _, p := range nd.Prefixes() {
		eth.Addresses = append(eth.Addresses, p.String())
	}
	if nd.Gateway != "" {
		gw, _ = netip.ParseAddr(nd.Gateway)
		gw = gw.Unmap()
	}
	if len(nd.DNS) > 0 {
		ns := &nameservers{}
		for _, d := range nd.DNS {
			a, _ := netip.ParseAddr(d)
			ns.Addresses = append(ns.Addresses, a.String())
		}
		eth.Nameservers = ns
	}
	return eth, gw
}

// SSHKeys is what ReadSSHKeys takes from a Secret.
type SSHKeys struct {
	// Keys are the lines that parse as SSH public keys in authorized_keys
	// format, trimmed, in order (values by sorted key, lines in order).
	Keys []string
	// Dropped counts the other non-empty lines (comments included): they
	// are not returned, so not copied into the guest.
	Dropped int
}

// ReadSSHKeys reads the authorized SSH keys of the Secret
// namespace/secretName. The Secret must opt in by carrying the label
// optInLabel with the value "true" (an empty optInLabel needs no label),
// so that a reference to any Secret of the namespace does not copy it into
// a guest. A missing Secret and one without the label are both a stalled
// *apply.Failure with reason ReasonSSHKeySecretNotFound, Subject
// secretName and Field "secretName", wrapping a *SecretNotFoundError or a
// *SecretNotOptedInError (one reason, so a caller's message need not tell
// whether a Secret it may not use exists). Of every value, taken by sorted key, each line
// that golang.org/x/crypto/ssh.ParseAuthorizedKey parses whole (one key,
// with its options and comment, as sshd(8) AUTHORIZED_KEYS FILE FORMAT
// describes) is kept verbatim; other non-empty lines (passwords, private
// keys, comments) are counted in Dropped.
func ReadSSHKeys(ctx context.Context, c client.Reader, namespace, secretName, optInLabel string) (SSHKeys, error) {
	s, err := readOptedIn(ctx, c, namespace, secretName, optInLabel, errGetSSHSecret, "SSH key")
	if err != nil {
		return SSHKeys{}, secretFailure(ReasonSSHKeySecretNotFound, secretName, err)
	}
	names := make([]string, 0, len(s.Data))
	for k := range s.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	var out SSHKeys
	for _, k := range names {
		for _, line := range bytes.Split(s.Data[k], []byte("\n")) {
			l := strings.TrimSpace(string(line))
			if l == "" {
				continue
			}
			if isAuthorizedKey(l) {
				out.Keys = append(out.Keys, l)
			} else {
				out.Dropped++
			}
		}
	}
	return out, nil
}

// isAuthorizedKey: line is exactly one authorized_keys entry.
func isAuthorizedKey(line string) bool {
	if strings.HasPrefix(line, "#") {
		return false
	}
	_, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	return err == nil && len(bytes.TrimSpace(rest)) == 0
}

// Password is a user's password read from a Secret (ReadPassword): either
// a crypt(3) hash to use as it is, or a plain password to hash.
type Password struct {
	// Hash is set when the value is in crypt(3) modular format.
	Hash string
	// Plain is set otherwise.
	Plain string
}

// cryptHash matches the crypt(3) modular format "$id$..." of the hashing
// methods Linux guests' libcrypt (libxcrypt) verifies: MD5 (1), bcrypt
// (2a, 2b, 2y), SHA-256 (5), SHA-512 (6), scrypt (7), yescrypt (y) and
// gost-yescrypt (gy) (crypt(5), "HASHING METHODS").
var cryptHash = regexp.MustCompile(`^\$(1|2[aby]|5|6|7|y|gy)\$[!-~]+$`)

// Reasons of the stalled *apply.Failure errors ReadSSHKeys and
// ReadPassword return; Failure.Subject is the Secret's name.
const (
	// ReasonSSHKeySecretNotFound: ReadSSHKeys' Secret is missing (a
	// *SecretNotFoundError) or lacks the opt-in label (a
	// *SecretNotOptedInError); Failure.Field is "secretName".
	ReasonSSHKeySecretNotFound = "SSHKeySecretNotFound"
	// ReasonPasswordSecretNotFound: the same for ReadPassword.
	ReasonPasswordSecretNotFound = "PasswordSecretNotFound"
	// ReasonPasswordKeyNotFound: ReadPassword's Secret has no non-empty
	// value at the key (a *SecretKeyNotFoundError); Failure.Field is "key".
	ReasonPasswordKeyNotFound = "PasswordKeyNotFound"
)

// secretFailure wraps readOptedIn's typed errors as a stalled failure with
// reason and Field "secretName"; other errors (reading failed) stay as
// they are, to be retried.
func secretFailure(reason, secretName string, err error) error {
	var (
		notFound   *SecretNotFoundError
		notOptedIn *SecretNotOptedInError
	)
	if errors.As(err, &notFound) || errors.As(err, &notOptedIn) {
		return apply.Stalled(reason, err).On(secretName, "secretName")
	}
	return err
}

// readOptedIn reads the Secret namespace/secretName for ReadSSHKeys and
// ReadPassword: a *SecretNotFoundError when it is missing, a
// *SecretNotOptedInError when it lacks optInLabel=true (an empty optInLabel
// needs no label), another read error prefixed with errGet. kind names the
// Secret in messages ("SSH key", "password").
func readOptedIn(ctx context.Context, c client.Reader, namespace, secretName, optInLabel, errGet, kind string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: secretName}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &SecretNotFoundError{Kind: kind, Namespace: namespace, Name: secretName}
		}
		return nil, fmt.Errorf("%s: %w", errGet, err)
	}
	if optInLabel != "" && s.Labels[optInLabel] != "true" {
		return nil, &SecretNotOptedInError{Kind: kind, Namespace: namespace, Name: secretName, Label: optInLabel}
	}
	return &s, nil
}

// ReadPassword reads a user's password from key of the Secret
// namespace/secretName. The Secret must carry the label optInLabel with the
// value "true" (an empty optInLabel needs no label). A missing Secret and
// one without the label are a stalled *apply.Failure with reason
// ReasonPasswordSecretNotFound (wrapping a *SecretNotFoundError or a
// *SecretNotOptedInError, Field "secretName"); a missing or empty key is
// one with reason ReasonPasswordKeyNotFound (wrapping a
// *SecretKeyNotFoundError, Field "key"); Subject is secretName. One trailing newline
// ("\n" or "\r\n", as a file read by kubectl create secret --from-file
// ends) is not part of the value. A value in crypt(3) modular format is
// returned as Hash, anything else as Plain.
func ReadPassword(ctx context.Context, c client.Reader, namespace, secretName, key, optInLabel string) (Password, error) {
	s, err := readOptedIn(ctx, c, namespace, secretName, optInLabel, errGetPasswordSecret, "password")
	if err != nil {
		return Password{}, secretFailure(ReasonPasswordSecretNotFound, secretName, err)
	}
	v := string(s.Data[key])
	if t, ok := strings.CutSuffix(v, "\n"); ok {
		v = strings.TrimSuffix(t, "\r")
	}
	if v == "" {
		return Password{}, apply.Stalled(ReasonPasswordKeyNotFound,
			&SecretKeyNotFoundError{Namespace: namespace, Name: secretName, Key: key}).On(secretName, "key")
	}
	if cryptHash.MatchString(v) {
		return Password{Hash: v}, nil
	}
	return Password{Plain: v}, nil
}

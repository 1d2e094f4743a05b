//go:build guest

// Package guest_test boots Wukongs as real Linux guests and checks, from
// inside each guest, that what Wukong renders works there: the cloud-init
// user data and network data from lib/kubevirt's BuildCloudInitSecret, and
// the NICs (MACs, order) and disks from its BuildVM, for the
// kubevirt.Machine the operator builds (see operatorMachine).
//
// Each guest is the Debian image `make guest-image` caches in bin/guest/
// (scripts/guest-image.sh), booted by qemu under software emulation (TCG;
// this machine's /dev/kvm is a PVM hypervisor that does not boot stock
// kernels) with a NoCloud seed made as KubeVirt's virt-launcher makes it.
// The pod network is qemu's user networking laid out like KubeVirt's
// masquerade binding; each secondary NIC is a tap device in a network
// namespace the test makes, with a real peer: an address on the tap, and
// dnsmasq for DNS and DHCP. The checks log in over SSH with the Wukong's
// key and talk to the guest agent through its virtio-serial socket. One
// line is printed per check.
//
// Needs root, qemu-system-x86, qemu-utils, xorriso, openssh-client,
// dnsmasq-base and iproute2: run it with `make guest-test`, which installs
// them (scripts/guest-deps.sh), builds or reuses the image and removes every
// namespace, tap device and process the run made, also when it fails. It is
// not part of make test (build tag guest) and takes minutes.
//
// Environment: GUEST_IMAGE_DIR (default ../../bin/guest), GUEST_STATE_DIR
// (where the resources file for the caller's cleanup goes),
// GUEST_BOOT_TIMEOUT (per guest, default 20m), GUEST_ONLY (boot only the
// Wukong of that name), GUEST_KEEP=1 (copy each guest's logs, seed, key and
// qemu command line to a /tmp/wukong-guest-<name>-* directory and print it).
package guest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/novasphere/wukong/lib/kubevirt"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("GUEST_STATE_DIR"); dir != "" {
		resources.state = filepath.Join(dir, "resources")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		resources.release()
		os.Exit(1)
	}()
	code := m.Run()
	resources.release()
	os.Exit(code)
}

// preflight fails the test when the host cannot run guests.
func preflight(t *testing.T) guestImage {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the guest tier needs root (network namespaces, tap devices): run make guest-test")
	}
	for _, cmd := range []string{"qemu-system-x86_64", "qemu-img", "xorrisofs", "ssh", "ssh-keygen", "dnsmasq", "ip"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Fatalf("%s not found: run make guest-test (scripts/guest-deps.sh installs it)", cmd)
		}
	}
	img, err := findImage()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestGuest(t *testing.T) {
	img := preflight(t)
	fmt.Printf("guest image: %s\n", img.about)
	timeout := 20 * time.Minute
	if s := os.Getenv("GUEST_BOOT_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("GUEST_BOOT_TIMEOUT: %v", err)
		}
		timeout = d
	}
	for _, c := range guestCases() {
		if only := os.Getenv("GUEST_ONLY"); only != "" && only != c.wukong.Name {
			continue
		}
		t.Run(c.wukong.Name, func(t *testing.T) {
			t.Cleanup(resources.release)
			g, err := newGuest(t, c)
			if err != nil {
				t.Fatal(err)
			}
			if os.Getenv("GUEST_KEEP") != "" {
				keep, err := os.MkdirTemp("/tmp", "wukong-guest-"+c.wukong.Name+"-")
				if err == nil {
					t.Cleanup(func() {
						keepFiles(g.dir, keep)
						fmt.Printf("%s: logs, seed and qemu command line kept in %s\n", c.wukong.Name, keep)
					})
				}
			}
			fmt.Printf("\n%s: %s\n", c.wukong.Name, describe(g))
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			sshUp, ciDone, err := g.boot(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("%s: SSH up %.0fs after qemu started, cloud-init done at %.0fs (TCG, %d vCPU)\n",
				c.wukong.Name, sshUp.Seconds(), ciDone.Seconds(), g.r.vm.Spec.Template.Spec.Domain.CPU.Sockets)
			runChecks(ctx, t, g)
			if err := g.alive(); err != nil {
				t.Errorf("after the checks: %v", err)
			}
		})
	}
}

// keepFiles copies the regular files under 10 MiB of dir (logs, seed, qemu
// command line, key; not the disks or the agent socket) to keep.
func keepFiles(dir, keep string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil //nolint:nilerr // best effort: skip what cannot be read
		}
		info, err := d.Info()
		if err != nil || info.Size() > 10<<20 {
			return nil //nolint:nilerr // best effort
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err == nil && os.MkdirAll(filepath.Dir(filepath.Join(keep, rel)), 0o700) == nil {
			_ = os.WriteFile(filepath.Join(keep, rel), b, 0o600)
		}
		return nil
	})
}

// describe is one line on what the guest gets: its NICs in order with MACs
// and its boot disk.
func describe(g *guest) string {
	var nics []string
	for _, i := range g.r.vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		kind := "bridge -> tap " + g.c.wukong.Name
		if i.Masquerade != nil {
			kind = "pod network (masquerade -> qemu user net)"
		} else if k, ok := g.c.segments[i.Name]; ok {
			kind = map[segmentKind]string{segStatic: "static peer ", segDHCP: "dnsmasq DHCP ", segStatic6: "static peer "}[k] + k.peer()
		}
		nics = append(nics, fmt.Sprintf("%s %s (%s)", i.Name, i.MacAddress, kind))
	}
	var disks []string
	for _, d := range g.c.wukong.Spec.Disks {
		disks = append(disks, d.Name+" "+d.Size.String())
	}
	return fmt.Sprintf("NICs in order: %s; disks: %s", strings.Join(nics, ", "), strings.Join(disks, ", "))
}

// reporter prints one line per check and fails the test on a failed one.
type reporter struct {
	t      *testing.T
	failed int
}

func (r *reporter) check(name string, ok bool, format string, args ...any) {
	r.t.Helper()
	status := "ok  "
	if !ok {
		status = "FAIL"
		r.failed++
		r.t.Errorf("%s: "+format, append([]any{name}, args...)...)
	}
	fmt.Printf("  %s %-22s %s\n", status, name, fmt.Sprintf(format, args...))
}

// sh runs a command in the guest; a failure is reported as a failed check
// named name and returns ok=false.
func sh(ctx context.Context, r *reporter, g *guest, name, command string) (string, bool) {
	out, err := g.ssh(ctx, command)
	if err != nil {
		r.check(name, false, "`%s`: %v: %s", command, err, out)
		return out, false
	}
	return out, true
}

// renderedUser is the users[0] entry of the rendered user data.
type renderedUser struct {
	Name   string `json:"name"`
	Passwd string `json:"passwd"`
}

func runChecks(ctx context.Context, t *testing.T, g *guest) {
	r := &reporter{t: t}
	w := g.c.wukong

	checkCloudInit(ctx, r, g)

	if out, ok := sh(ctx, r, g, "hostname", "hostname"); ok {
		r.check("hostname", out == w.Name, "%q (want %q, the Wukong's name)", out, w.Name)
	}

	host, port := g.sshTarget()
	pub, _ := os.ReadFile(g.key + ".pub")
	if out, ok := sh(ctx, r, g, "ssh key login", "id -un; cat ~/.ssh/authorized_keys"); ok {
		lines := strings.Split(out, "\n")
		r.check("ssh key login", lines[0] == g.c.login && strings.Contains(out, strings.TrimSpace(string(pub))),
			"%s@%s:%s with the sshKeySecret key only (password and keyboard-interactive off); key in ~/.ssh/authorized_keys", lines[0], host, port)
	}

	if u := w.Spec.CloudInitUser; u != nil {
		checkUser(ctx, r, g)
	} else if out, ok := sh(ctx, r, g, "default user", "id -un; sudo -n true && echo sudo-ok"); ok {
		r.check("default user", strings.HasSuffix(out, "sudo-ok"), "no cloudInitUser: the keys went to the image's default user %q, who has sudo", g.c.login)
	}

	checkNICs(ctx, r, g)
	checkRoutes(ctx, r, g)
	checkDNS(ctx, r, g)
	checkBoot(ctx, r, g)
	checkDisk(ctx, r, g)
	checkAgent(ctx, r, g)
	if r.failed > 0 {
		fmt.Printf("%s: %d check(s) failed; serial console tail:\n%s", w.Name, r.failed, tail(g.serial, 15))
	}
}

// checkCloudInit reports cloud-init's own verdict: status done and no
// module errors in /run/cloud-init/result.json.
func checkCloudInit(ctx context.Context, r *reporter, g *guest) {
	// cloud-init status exits 1 on "error"; its output is what counts.
	out, err := g.ssh(ctx, "cloud-init status --long; cat /run/cloud-init/result.json")
	if !strings.Contains(out, "status:") {
		r.check("cloud-init", false, "cloud-init status: %v: %s", err, out)
		return
	}
	status := ""
	for _, l := range strings.Split(out, "\n") {
		if s, found := strings.CutPrefix(l, "status: "); found {
			status = s
		}
	}
	var result struct {
		V1 struct {
			Datasource string   `json:"datasource"`
			Errors     []string `json:"errors"`
		} `json:"v1"`
	}
	if i := strings.Index(out, "{"); i >= 0 {
		_ = json.Unmarshal([]byte(out[i:]), &result)
	}
	r.check("cloud-init", status == "done" && len(result.V1.Errors) == 0, "status %s, datasource %s, errors %q",
		status, result.V1.Datasource, result.V1.Errors)
}

func checkUser(ctx context.Context, r *reporter, g *guest) {
	u := g.c.wukong.Spec.CloudInitUser
	var ud struct {
		Users []renderedUser `json:"users"`
	}
	if err := yaml.Unmarshal(g.r.secret[kubevirt.UserDataKey], &ud); err != nil || len(ud.Users) != 1 {
		r.check("user", false, "rendered user data has no single user: %v", err)
		return
	}
	hash := ud.Users[0].Passwd

	if out, ok := sh(ctx, r, g, "user", "getent passwd "+u.Name); ok {
		f := strings.Split(out, ":")
		r.check("user", len(f) == 7 && f[0] == u.Name && f[6] == u.Shell, "%s (want shell %s)", out, u.Shell)
	}
	if out, ok := sh(ctx, r, g, "groups", "id -nG "+u.Name); ok {
		have := strings.Fields(out)
		var missing []string
		for _, grp := range u.Groups {
			if !slices.Contains(have, grp) {
				missing = append(missing, grp)
			}
		}
		r.check("groups", len(missing) == 0, "%s (want %s; missing %v)", out, strings.Join(u.Groups, ","), missing)
	}
	if out, ok := sh(ctx, r, g, "sudo rule", "sudo -n true && echo sudo-ok; sudo -n cat /etc/sudoers.d/90-cloud-init-users"); ok {
		rule := u.Name + " " + u.Sudo
		r.check("sudo rule", strings.HasPrefix(out, "sudo-ok") && strings.Contains(out, rule),
			"sudo -n works; /etc/sudoers.d/90-cloud-init-users has %q", rule)
	}
	if out, ok := sh(ctx, r, g, "password hash", "sudo -n getent shadow "+u.Name); ok {
		f := strings.Split(out, ":")
		got := ""
		if len(f) > 1 {
			got = f[1]
		}
		r.check("password hash", got == hash, "/etc/shadow has %s (the Secret has %s; unlocked: %t)", abbreviate(got), abbreviate(hash), !strings.HasPrefix(got, "!"))
	}
	if g.c.password != "" {
		// glibc's crypt(3) must accept the hash lib/kubevirt computed.
		cmd := fmt.Sprintf(`python3 -W ignore -c 'import crypt,spwd,sys; h=spwd.getspnam(sys.argv[1]).sp_pwdp; print(crypt.crypt(sys.argv[2], h) == h)' %s %s`, u.Name, g.c.password)
		if out, ok := sh(ctx, r, g, "password", "sudo -n "+cmd); ok {
			r.check("password", out == "True", "glibc crypt(3) accepts the cloudInitUser password against the rendered SHA-512 hash: %s", out)
		}
	}
}

// abbreviate shortens a crypt hash for printing.
func abbreviate(h string) string {
	if len(h) > 28 {
		return h[:24] + "..."
	}
	return h
}

// ipAddr is one entry of `ip -j addr`.
type ipAddr struct {
	IfName   string `json:"ifname"`
	Address  string `json:"address"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Scope     string `json:"scope"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// global is the link's IPv4 and global IPv6 addresses in CIDR form.
func (a ipAddr) global() []string {
	var out []string
	for _, i := range a.AddrInfo {
		if i.Family == "inet" || i.Scope == "global" {
			out = append(out, fmt.Sprintf("%s/%d", i.Local, i.PrefixLen))
		}
	}
	return out
}

// wantName is the guest interface name of the i-th VM interface: cloud-init
// renames a Multus NIC to its Wukong name (set-name); the pod network keeps
// the kernel's predictable name for its PCI slot (root port i+1, bus i+1).
func wantName(g *guest, i int) string {
	iface := g.r.vm.Spec.Template.Spec.Domain.Devices.Interfaces[i]
	if iface.Masquerade != nil {
		return fmt.Sprintf("enp%ds0", i+1)
	}
	return iface.Name
}

func checkNICs(ctx context.Context, r *reporter, g *guest) {
	out, ok := sh(ctx, r, g, "nics", `ip -j addr show; for n in /sys/class/net/*; do d=$(readlink -f $n/device 2>/dev/null) && echo "pci ${n##*/} $(basename $(dirname $d))"; done`)
	if !ok {
		return
	}
	jsonPart, pciPart, _ := strings.Cut(out, "\npci ")
	var links []ipAddr
	if err := json.Unmarshal([]byte(jsonPart), &links); err != nil {
		r.check("nics", false, "cannot parse ip -j addr: %v", err)
		return
	}
	pci := map[string]string{}
	for _, l := range strings.Split("pci "+pciPart, "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			pci[f[1]] = f[2]
		}
	}
	ipConfig := map[string]int{}
	for i, n := range g.c.wukong.Spec.Networks {
		ipConfig[n.Name] = i
	}
	lastPCI := ""
	for i, iface := range g.r.vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		name := "nic " + iface.Name
		var link *ipAddr
		for j := range links {
			if strings.EqualFold(links[j].Address, iface.MacAddress) {
				link = &links[j]
			}
		}
		if link == nil {
			r.check(name, false, "no guest interface has MAC %s", iface.MacAddress)
			continue
		}
		want := wantName(g, i)
		addrs := link.global()
		var addrOK bool
		var wantAddr string
		switch {
		case iface.Masquerade != nil:
			wantAddr = podAddress + " (pod network DHCP)"
			addrOK = slices.Equal(addrs, []string{podAddress})
		default:
			ipc := g.c.wukong.Spec.Networks[ipConfig[iface.Name]].IPConfig
			if ipc != nil && ipc.Mode == "static" {
				wantAddr = ipc.Address + " (static)"
				addrOK = slices.Equal(addrs, []string{ipc.Address})
			} else {
				wantAddr = dhcpRangeStart + "-" + dhcpRangeEnd + "/24 (DHCP lease)"
				addrOK = len(addrs) == 1 && inRange(addrs[0], dhcpRangeStart, dhcpRangeEnd)
			}
		}
		ordered := pci[link.IfName] > lastPCI
		lastPCI = pci[link.IfName]
		r.check(name, link.IfName == want && addrOK && ordered, "MAC %s, name %s (want %s), addresses %v (want %s), PCI %s (KubeVirt order #%d)",
			link.Address, link.IfName, want, addrs, wantAddr, pci[link.IfName], i+1)
	}
	// Reach each secondary NIC's peer through that NIC.
	for _, iface := range g.r.vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		if iface.Masquerade != nil {
			continue
		}
		peer := g.c.segments[iface.Name].peer()
		out, err := g.ssh(ctx, fmt.Sprintf("ping -c 1 -W 5 -I %s %s", iface.Name, peer))
		r.check("reach "+iface.Name, err == nil, "ping %s through %s: %s", peer, iface.Name, lastLine(out))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func inRange(prefix, lo, hi string) bool {
	p, err := netip.ParsePrefix(prefix)
	if err != nil || p.Bits() != 24 {
		return false
	}
	a, l, h := p.Addr(), netip.MustParseAddr(lo), netip.MustParseAddr(hi)
	return a.Compare(l) >= 0 && a.Compare(h) <= 0
}

// ipRoute is one entry of `ip -j route`.
type ipRoute struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
}

func checkRoutes(ctx context.Context, r *reporter, g *guest) {
	out, ok := sh(ctx, r, g, "default route", "ip -j -4 route show default; echo; ip -j -6 route show default")
	if !ok {
		return
	}
	parts := strings.SplitN(out, "\n", 2)
	var v4, v6 []ipRoute
	_ = json.Unmarshal([]byte(parts[0]), &v4)
	if len(parts) > 1 {
		_ = json.Unmarshal([]byte(strings.TrimSpace(parts[1])), &v6)
	}
	describeRoutes := func(rts []ipRoute) string {
		if len(rts) == 0 {
			return "none"
		}
		var seen []string
		for _, rt := range rts {
			seen = append(seen, fmt.Sprintf("via %s dev %s (%s)", rt.Gateway, rt.Dev, rt.Protocol))
		}
		return fmt.Sprintf("%d: %s", len(rts), strings.Join(seen, "; "))
	}
	r.check("default route", len(v4) == 1 && v4[0].Gateway == g.c.defaultVia && v4[0].Dev == g.c.defaultDev,
		"IPv4 %s (want exactly one, via %s dev %s)", describeRoutes(v4), g.c.defaultVia, g.c.defaultDev)
	if g.c.defaultVia6 == "" {
		r.check("default route IPv6", len(v6) == 0, "IPv6 %s (want none: no NIC has an IPv6 gateway)", describeRoutes(v6))
	} else {
		r.check("default route IPv6", len(v6) == 1 && v6[0].Gateway == g.c.defaultVia6 && v6[0].Dev == g.c.defaultDev6,
			"IPv6 %s (want exactly one, via %s dev %s)", describeRoutes(v6), g.c.defaultVia6, g.c.defaultDev6)
	}
}

func checkDNS(ctx context.Context, r *reporter, g *guest) {
	out, ok := sh(ctx, r, g, "dns", "resolvectl dns")
	if !ok {
		return
	}
	perLink := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		// Link 3 (storage): 10.10.0.1 10.10.0.53
		if !strings.HasPrefix(l, "Link ") {
			continue
		}
		open, closeIdx := strings.Index(l, "("), strings.Index(l, "):")
		if open < 0 || closeIdx < open {
			continue
		}
		perLink[l[open+1:closeIdx]] = strings.Fields(l[closeIdx+2:])
	}
	for i, iface := range g.r.vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		link := wantName(g, i)
		var want []string
		source := ""
		switch {
		case iface.Masquerade != nil:
			want, source = []string{podDNS}, "pod network DHCP"
		case g.c.segments[iface.Name] == segDHCP:
			want, source = []string{dhcpPeer}, "DHCP lease"
		default:
			for _, n := range g.c.wukong.Spec.Networks {
				if n.Name == iface.Name && n.IPConfig != nil {
					want = n.IPConfig.DNSServers
				}
			}
			source = "ipConfig.dnsServers"
		}
		r.check("dns "+link, slices.Equal(perLink[link], want), "%v (want %v from %s)", perLink[link], want, source)
	}
	out, err := g.ssh(ctx, "getent ahostsv4 "+dnsName+" | head -n1")
	f := strings.Fields(out)
	r.check("dns lookup", err == nil && len(f) > 0 && f[0] == staticPeer, "%s resolves to %q through systemd-resolved (want %s, answered by dnsmasq at %s)", dnsName, out, staticPeer, staticPeer)
}

// checkBoot: the kernel came from the disk, through the GRUB of
// scripts/guest-image.sh (qemu has no -kernel): GRUB's linux command puts
// BOOT_IMAGE=<path> first on the command line, qemu's direct kernel boot
// does not.
func checkBoot(ctx context.Context, r *reporter, g *guest) {
	out, ok := sh(ctx, r, g, "boot from disk", "cat /proc/cmdline")
	if !ok {
		return
	}
	r.check("boot from disk", strings.HasPrefix(out, "BOOT_IMAGE=/vmlinuz ") && strings.Contains(out, " root=LABEL=root "),
		"SeaBIOS -> GRUB in the MBR gap -> /vmlinuz on the root filesystem; kernel command line %q", out)
}

func checkDisk(ctx context.Context, r *reporter, g *guest) {
	out, ok := sh(ctx, r, g, "root filesystem", "findmnt -no SOURCE /; lsblk -bndo SIZE /dev/vda; lsblk -bndo SIZE /dev/vda1; df -B1 --output=size / | tail -n1")
	if !ok {
		return
	}
	f := strings.Fields(out)
	if len(f) != 4 {
		r.check("root filesystem", false, "unexpected output %q", out)
		return
	}
	disk, _ := strconv.ParseInt(f[1], 10, 64)
	part, _ := strconv.ParseInt(f[2], 10, 64)
	fs, _ := strconv.ParseInt(f[3], 10, 64)
	boot := g.c.wukong.Spec.Disks[0]
	for _, d := range g.c.wukong.Spec.Disks {
		if d.Boot {
			boot = d
		}
	}
	want := boot.Size.Value()
	const mib = 1 << 20
	gib := func(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }
	r.check("root filesystem", f[0] == "/dev/vda1" && disk == want && part >= want-2*mib && float64(fs) >= 0.95*float64(part),
		"/ on %s: filesystem %s, partition %s, disk %s (Wukong disk %s %s; image 1.50 GiB): growpart and resize2fs ran",
		f[0], gib(fs), gib(part), gib(disk), boot.Name, boot.Size.String())
}

func checkAgent(ctx context.Context, r *reporter, g *guest) {
	out, _ := g.ssh(ctx, "systemctl is-active qemu-guest-agent")
	var info struct {
		Version string `json:"version"`
	}
	err := g.agent.call("guest-info", nil, &info)
	r.check("guest agent", out == "active" && err == nil, "qemu-guest-agent.service %s; guest-info over the virtio-serial channel: version %q, err %v",
		out, info.Version, err)
	var hostname struct {
		HostName string `json:"host-name"`
	}
	if err := g.agent.call("guest-get-host-name", nil, &hostname); err != nil || hostname.HostName != g.c.wukong.Name {
		r.check("agent hostname", false, "guest-get-host-name: %q, %v", hostname.HostName, err)
	}
	var ifaces []agentInterface
	if err := g.agent.call("guest-network-get-interfaces", nil, &ifaces); err != nil {
		r.check("agent interfaces", false, "guest-network-get-interfaces: %v", err)
		return
	}
	var seen, missing []string
	for _, iface := range g.r.vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		found := false
		for _, a := range ifaces {
			if !strings.EqualFold(a.MAC, iface.MacAddress) {
				continue
			}
			for _, ip := range a.IPAddresses {
				if addr, err := netip.ParseAddr(ip.Address); err == nil && (addr.Is4() || addr.IsGlobalUnicast()) {
					found = true
					seen = append(seen, fmt.Sprintf("%s=%s/%d", a.Name, ip.Address, ip.Prefix))
				}
			}
		}
		if !found {
			missing = append(missing, iface.MacAddress)
		}
	}
	r.check("agent interfaces", len(missing) == 0, "what KubeVirt would report in status.interfaces: %s (MACs without an IPv4 or global IPv6 address: %v)", strings.Join(seen, " "), missing)
}

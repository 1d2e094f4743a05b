//go:build guest

package guest_test

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // RFC 4122 name-based UUID (version 5), as KubeVirt derives the firmware UUID
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
)

// tracker remembers every process and network namespace the tier makes and
// removes them at the end of each guest (t.Cleanup) and on SIGINT/SIGTERM.
// It also appends them to $GUEST_STATE_DIR/resources ("pid N", "netns
// NAME"), which scripts/guest-test.sh's trap reads, so they are removed even
// when the test binary is killed (a go test timeout panics without running
// cleanups). Deleting a namespace deletes the tap devices in it.
type tracker struct {
	mu    sync.Mutex
	pids  []int
	netns []string
	state string
}

var resources = &tracker{}

func (r *tracker) record(line string) {
	if r.state == "" {
		return
	}
	f, err := os.OpenFile(r.state, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintln(f, line)
}

func (r *tracker) addPID(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pids = append(r.pids, pid)
	r.record(fmt.Sprintf("pid %d", pid))
}

func (r *tracker) addNetns(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.netns = append(r.netns, name)
	r.record("netns " + name)
}

// release kills the processes (SIGTERM, then SIGKILL after a grace period)
// and deletes the namespaces made so far.
func (r *tracker) release() {
	r.mu.Lock()
	pids, nss := r.pids, r.netns
	r.pids, r.netns = nil, nil
	r.mu.Unlock()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, ns := range nss {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// run runs a host command and returns its combined output; an error carries
// the output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// startProcess starts a long-running host process with its output in
// logPath, tracked for cleanup. The process is killed when the test binary
// dies (Pdeathsig) as well.
func startProcess(logPath, name string, args ...string) (*exec.Cmd, <-chan error, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	resources.addPID(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() {
		done <- cmd.Wait()
		logFile.Close()
	}()
	return cmd, done, nil
}

// rendered is what lib/kubevirt built for a Wukong, exactly as the operator
// applies it: the cloud-init Secret and the VirtualMachine.
type rendered struct {
	machine kubevirt.Machine
	secret  map[string][]byte
	vm      *kubevirtv1.VirtualMachine
}

func render(w *v1alpha1.Wukong, sshKeys []string) (rendered, error) {
	m, err := operatorMachine(w, sshKeys)
	if err != nil {
		return rendered{}, fmt.Errorf("machine for %s: %w", w.Name, err)
	}
	secret, err := kubevirt.BuildCloudInitSecret(identity.Wukong, w, m)
	if err != nil {
		return rendered{}, fmt.Errorf("cloud-init Secret for %s: %w", w.Name, err)
	}
	return rendered{machine: m, secret: secret.Data, vm: kubevirt.BuildVM(identity.Wukong, w, m)}, nil
}

// firmwareUUID is the firmware UUID KubeVirt's VM controller gives the VMI
// of VM name: a version 5 UUID of the name in KubeVirt's namespace
// 6a1a24a1-4061-4607-8bf4-a3963d0c5895 (pkg/virt-controller/watch/vm,
// CalculateLegacyUUID). virt-launcher uses it as the NoCloud instance-id.
func firmwareUUID(name string) string {
	ns := []byte{0x6a, 0x1a, 0x24, 0xa1, 0x40, 0x61, 0x46, 0x07, 0x8b, 0xf4, 0xa3, 0x96, 0x3d, 0x0c, 0x58, 0x95}
	h := sha1.New() //nolint:gosec // see import
	h.Write(ns)
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// writeSeed writes the NoCloud seed of vm the way KubeVirt's virt-launcher
// does for a cloudInitNoCloud volume with userDataSecretRef and
// networkDataSecretRef (pkg/cloud-init/cloud-init.go, GenerateLocalData):
// the Secret's userdata key as user-data, its networkdata key as
// network-config, meta-data as JSON {"instance-id": <firmware UUID>,
// "local-hostname": <spec.hostname, else the VMI name>}, packed by
// `xorrisofs -volid cidata -joliet -rock -partition_cyl_align on`.
func writeSeed(dir string, r rendered) (string, error) {
	data := filepath.Join(dir, "seed")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", err
	}
	hostname := r.vm.Spec.Template.Spec.Hostname
	if hostname == "" {
		hostname = r.vm.Name
	}
	meta, err := json.Marshal(map[string]string{"instance-id": firmwareUUID(r.vm.Name), "local-hostname": hostname})
	if err != nil {
		return "", err
	}
	files := map[string][]byte{
		"user-data":      r.secret[kubevirt.UserDataKey],
		"network-config": r.secret[kubevirt.NetworkDataKey],
		"meta-data":      meta,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(data, name), b, 0o600); err != nil {
			return "", err
		}
	}
	iso := filepath.Join(dir, "cloudinit.iso")
	if _, err := run("xorrisofs", "-quiet", "-output", iso, "-volid", "cidata", "-joliet", "-rock", "-partition_cyl_align", "on", data); err != nil {
		return "", err
	}
	return iso, nil
}

// guestImage locates the image make guest-image builds: a BIOS-bootable
// disk (GRUB in its MBR gap, scripts/guest-image.sh).
type guestImage struct {
	disk, about string
}

func findImage() (guestImage, error) {
	dir := os.Getenv("GUEST_IMAGE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "guest")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return guestImage{}, err
	}
	img := guestImage{disk: filepath.Join(dir, "disk.qcow2")}
	if _, err := os.Stat(img.disk); err != nil {
		return guestImage{}, fmt.Errorf("guest image missing (%w): run make guest-image", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "build.txt")); err == nil {
		img.about = strings.SplitN(string(b), "\n", 2)[0]
	}
	return img, nil
}

// guest is one booted Wukong.
type guest struct {
	c       guestCase
	r       rendered
	dir     string
	netns   string
	key     string // private key file
	agent   *agentClient
	qemu    <-chan error
	serial  string
	started time.Time
	// taps: NIC name -> tap device in netns.
	taps map[string]string
}

// newSSHKey makes an ed25519 key pair in dir and returns the private key
// file and the public key line (what a user puts in sshKeySecret).
func newSSHKey(dir, comment string) (string, string, error) {
	key := filepath.Join(dir, "id_ed25519")
	if _, err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key); err != nil {
		return "", "", err
	}
	pub, err := os.ReadFile(key + ".pub")
	return key, strings.TrimSpace(string(pub)), err
}

// setupNetwork makes the guest's network namespace: one tap device per
// secondary NIC (qemu attaches to it), holding the peer's address, and
// dnsmasq answering DNS on the static peer and DHCP on the DHCP peer. qemu
// runs inside this namespace too, so the pod network's port forward
// listens there.
func (g *guest) setupNetwork() error {
	g.netns = fmt.Sprintf("wkg-%s-%d", g.c.wukong.Name, os.Getpid())
	if _, err := run("ip", "netns", "add", g.netns); err != nil {
		return err
	}
	resources.addNetns(g.netns)
	if _, err := run("ip", "-n", g.netns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	g.taps = map[string]string{}
	dnsmasq := []string{"netns", "exec", g.netns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--user=root", "--pid-file=", "--bind-interfaces", "--except-interface=lo", "--no-resolv", "--no-hosts",
		"--address=/" + dnsName + "/" + staticPeer, "--log-facility=-", "--log-dhcp",
		"--dhcp-leasefile=" + filepath.Join(g.dir, "dnsmasq.leases")}
	for i, iface := range g.r.vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		if iface.Masquerade != nil {
			continue
		}
		kind, ok := g.c.segments[iface.Name]
		if !ok {
			return fmt.Errorf("NIC %s has no segment in the test case", iface.Name)
		}
		tap := fmt.Sprintf("tap%d", i)
		addr := []string{"-n", g.netns, "addr", "add", kind.prefix(), "dev", tap}
		if kind == segStatic6 {
			addr = append(addr, "nodad")
		}
		if kind == segDHCP {
			dnsmasq = append(dnsmasq, "--dhcp-range="+dhcpRangeStart+","+dhcpRangeEnd+",255.255.255.0,1h",
				"--dhcp-option=option:router,"+dhcpPeer, "--dhcp-option=option:dns-server,"+dhcpPeer)
		}
		for _, args := range [][]string{
			{"-n", g.netns, "tuntap", "add", "dev", tap, "mode", "tap"},
			addr,
			{"-n", g.netns, "link", "set", tap, "up"},
		} {
			if _, err := run("ip", args...); err != nil {
				return err
			}
		}
		g.taps[iface.Name] = tap
		dnsmasq = append(dnsmasq, "--interface="+tap)
	}
	if len(g.taps) == 0 {
		return nil
	}
	_, done, err := startProcess(filepath.Join(g.dir, "dnsmasq.log"), "ip", dnsmasq...)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		b, _ := os.ReadFile(filepath.Join(g.dir, "dnsmasq.log"))
		return fmt.Errorf("dnsmasq exited: %w\n%s", exitErr(err), b)
	case <-time.After(500 * time.Millisecond):
	}
	return nil
}

// diskSize is the Wukong's size for disk name.
func diskSize(w *v1alpha1.Wukong, name string) (int64, bool) {
	for _, d := range w.Spec.Disks {
		if d.Name == name {
			return d.Size.Value(), true
		}
	}
	return 0, false
}

// qemuArgs turns the VirtualMachine into a qemu command line, device for
// device in KubeVirt's order: q35 with one PCIe root port per device, the
// interfaces first (so the first one, the pod network when on, is the
// guest's enp1s0, as in KubeVirt guests), then the guest agent's
// virtio-serial channel org.qemu.guest_agent.0 (virt-launcher always adds
// it), then the disks in spec order, all virtio-blk (the boot disk is vda),
// a disk's bootOrder its bootindex (as libvirt turns KubeVirt's bootOrder
// into <boot order=N/>).
// A DataVolume/PVC disk is the image copied to the Wukong disk's size, as
// CDI imports an image into a bigger claim: here a qcow2 overlay over the
// cached image, grown to that size. The pod network is qemu's user
// networking laid out like KubeVirt's masquerade (10.0.2.2/24, router
// 10.0.2.1), IPv4 only, with SSH forwarded from 127.0.0.1:2222 in the
// namespace; a bridge-bound NIC is a tap device in the namespace. Every
// NIC gets Wukong's MAC. Boot is from the disk alone, as a KubeVirt VM
// without kernelBoot boots: qemu's default firmware for q35 (SeaBIOS) runs
// the GRUB in the image's MBR gap, which boots the image's kernel with
// root=LABEL=root and the console on the serial port; no -kernel/-initrd.
func (g *guest) qemuArgs(img guestImage, seed string) ([]string, error) {
	spec := g.r.vm.Spec.Template.Spec
	c := spec.Domain.CPU // vCPUs: sockets of one core since issue 34
	cores := int(max(c.Sockets, 1) * max(c.Cores, 1) * max(c.Threads, 1))
	memMiB := spec.Domain.Memory.Guest.Value() / (1 << 20)
	args := []string{
		"-name", g.c.wukong.Name, "-machine", "q35", "-accel", "tcg", "-cpu", "max",
		"-smp", fmt.Sprint(cores), "-m", fmt.Sprintf("%dM", memMiB),
		"-nodefaults", "-display", "none", "-vga", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:" + g.serial,
		"-uuid", firmwareUUID(g.r.vm.Name),
	}
	port := 0
	rootPort := func() string {
		port++
		id := fmt.Sprintf("rp%d", port)
		args = append(args, "-device", fmt.Sprintf("pcie-root-port,id=%s,bus=pcie.0,chassis=%d,addr=0x%x", id, port, port+1))
		return id
	}
	for i, iface := range spec.Domain.Devices.Interfaces {
		bus := rootPort()
		id := fmt.Sprintf("net%d", i)
		switch {
		case iface.Masquerade != nil:
			args = append(args, "-netdev", "user,id="+id+",net=10.0.2.0/24,host="+podGateway+",dhcpstart=10.0.2.2,dns="+podDNS+
				",ipv6=off,hostfwd=tcp:127.0.0.1:2222-:22")
		case iface.Bridge != nil:
			args = append(args, "-netdev", "tap,id="+id+",ifname="+g.taps[iface.Name]+",script=no,downscript=no")
		default:
			return nil, fmt.Errorf("interface %s: only masquerade and bridge bindings run here", iface.Name)
		}
		args = append(args, "-device", fmt.Sprintf("virtio-net-pci,netdev=%s,mac=%s,bus=%s,romfile=", id, iface.MacAddress, bus))
	}
	args = append(args,
		"-chardev", "socket,id=qga0,path="+g.agent.path+",server=on,wait=off",
		"-device", "virtio-serial-pci,id=vser0,bus="+rootPort(),
		"-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0")
	volumes := map[string]kubevirtv1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for i, d := range spec.Domain.Devices.Disks {
		if d.Disk == nil || d.Disk.Bus != kubevirtv1.DiskBusVirtio {
			return nil, fmt.Errorf("disk %s: want a virtio disk", d.Name)
		}
		v := volumes[d.Name]
		var drive string
		switch {
		case v.CloudInitNoCloud != nil:
			drive = "file=" + seed + ",format=raw,readonly=on"
		case v.DataVolume != nil || v.PersistentVolumeClaim != nil:
			size, ok := diskSize(g.c.wukong, d.Name)
			if !ok {
				return nil, fmt.Errorf("disk %s is not in the Wukong", d.Name)
			}
			file := filepath.Join(g.dir, d.Name+".qcow2")
			if i == 0 {
				_, err := run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img.disk, file, fmt.Sprint(size))
				if err != nil {
					return nil, err
				}
			} else if _, err := run("qemu-img", "create", "-q", "-f", "qcow2", file, fmt.Sprint(size)); err != nil {
				return nil, err
			}
			drive = "file=" + file + ",format=qcow2,discard=unmap"
		default:
			return nil, fmt.Errorf("disk %s: unsupported volume source", d.Name)
		}
		device := fmt.Sprintf("virtio-blk-pci,drive=disk%d,bus=%s", i, rootPort())
		if d.BootOrder != nil {
			device += fmt.Sprintf(",bootindex=%d", *d.BootOrder)
		}
		args = append(args, "-drive", fmt.Sprintf("if=none,id=disk%d,%s", i, drive), "-device", device)
	}
	return args, nil
}

// boot renders, seeds and starts the guest, then waits until SSH answers
// with the Wukong's key and cloud-init has finished. It returns how long
// each took from qemu's start.
func (g *guest) boot(ctx context.Context, img guestImage) (sshUp, cloudInitDone time.Duration, err error) {
	seed, err := writeSeed(g.dir, g.r)
	if err != nil {
		return 0, 0, err
	}
	if err := g.setupNetwork(); err != nil {
		return 0, 0, err
	}
	args, err := g.qemuArgs(img, seed)
	if err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(filepath.Join(g.dir, "qemu.cmdline"), []byte("qemu-system-x86_64 "+strings.Join(args, " ")+"\n"), 0o600); err != nil {
		return 0, 0, err
	}
	g.started = time.Now()
	_, g.qemu, err = startProcess(filepath.Join(g.dir, "qemu.log"), "ip", append([]string{"netns", "exec", g.netns, "qemu-system-x86_64"}, args...)...)
	if err != nil {
		return 0, 0, err
	}
	for {
		if _, err := g.ssh(ctx, "true"); err == nil {
			break
		}
		select {
		case err := <-g.qemu:
			return 0, 0, fmt.Errorf("qemu exited before the guest answered on SSH: %w\n%s%s", exitErr(err), tail(filepath.Join(g.dir, "qemu.log"), 10), tail(g.serial, 40))
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("no SSH login after %s: %w\nlast serial console lines:\n%s", time.Since(g.started).Round(time.Second), ctx.Err(), tail(g.serial, 40))
		case <-time.After(3 * time.Second):
		}
	}
	sshUp = time.Since(g.started)
	// cloud-init writes boot-finished at the end of its last stage (final).
	// `cloud-init status --wait` is not enough: cloud-init 22.4 reports
	// "error" as soon as an earlier stage had one, and --wait returns then.
	const finished = "while [ ! -e /var/lib/cloud/instance/boot-finished ]; do sleep 2; done"
	for {
		out, err := g.ssh(ctx, finished)
		if err == nil {
			break
		}
		// Exit status 255 is ssh's own failure, not the command's: cloud-init
		// restarts sshd when it changes ssh_pwauth (set_passwords), and a
		// connection in that moment is closed ("kex_exchange_identification:
		// Connection closed by remote host"). Try again until ctx ends.
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 255 || ctx.Err() != nil {
			return sshUp, 0, fmt.Errorf("waiting for cloud-init's boot-finished: %w: %s", err, out)
		}
		time.Sleep(3 * time.Second)
	}
	return sshUp, time.Since(g.started), nil
}

// sshTarget is the address and port the checks reach the guest's SSH server at.
func (g *guest) sshTarget() (string, string) {
	if g.c.sshNIC == "" {
		return "127.0.0.1", "2222"
	}
	for _, n := range g.c.wukong.Spec.Networks {
		if n.Name == g.c.sshNIC && n.IPConfig != nil {
			return strings.SplitN(n.IPConfig.Address, "/", 2)[0], "22"
		}
	}
	return "", ""
}

// ssh runs a shell command in the guest as the login user, authenticated
// with the Wukong's key only (no password, no agent), from inside the
// guest's network namespace. It returns stdout and stderr together.
func (g *guest) ssh(ctx context.Context, command string) (string, error) {
	host, port := g.sshTarget()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "ip", "netns", "exec", g.netns, "ssh",
		"-i", g.key, "-p", port, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "ConnectTimeout=10", g.c.login+"@"+host, command)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

// exitErr is a process's exit error, or one saying it exited with status 0.
func exitErr(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// errQemuGone says qemu is not running any more.
var errQemuGone = errors.New("qemu is not running")

// alive reports whether qemu still runs.
func (g *guest) alive() error {
	select {
	case err := <-g.qemu:
		return fmt.Errorf("%w: %w", errQemuGone, exitErr(err))
	default:
		return nil
	}
}

// newGuest prepares a work directory and the key for case c.
func newGuest(t *testing.T, c guestCase) (*guest, error) {
	dir := t.TempDir()
	g := &guest{c: c, dir: dir, serial: filepath.Join(dir, "serial.log")}
	key, pub, err := newSSHKey(dir, "wukong-guest-test@"+c.wukong.Name)
	if err != nil {
		return nil, err
	}
	g.key = key
	// The key as the operator reads it from sshKeySecret (one line per key).
	g.r, err = render(c.wukong, []string{pub})
	if err != nil {
		return nil, err
	}
	g.agent = &agentClient{path: filepath.Join(dir, "qga.sock")}
	return g, nil
}

package sandbox

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"
)

const (
	// PodNetworkPrefix is the first two octets of simulated pod IPs
	// (10.244.<node index>.<host>).
	PodNetworkPrefix = "10.244"
	// DHCPPoolPrefix is the first three octets of simulated DHCP leases on
	// multus networks without a static address.
	DHCPPoolPrefix = "192.168.100"
)

// requeueOnConflict turns write conflicts (stale cache) into a quiet requeue.
func requeueOnConflict(res ctrl.Result, err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return ctrl.Result{RequeueAfter: 50 * time.Millisecond}, nil
	}
	return res, err
}

// interfaces builds status.interfaces: per spec interface, in order, name,
// interfaceName ethN, the spec MAC (or a fake one derived from the VMI and
// interface names), and an IP: pod network 10.244.<node index>.<host>; a
// multus network the static address the cloud-init networkdata gives that MAC,
// else a lease from 192.168.100.0/24 derived from the MAC.
func (r *kubevirtSim) interfaces(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, node *corev1.Node) ([]kubevirtv1.VirtualMachineInstanceNetworkInterface, error) {
	static, err := r.staticAddresses(ctx, vmi)
	if err != nil {
		return nil, err
	}
	ga, err := r.guestAgentOf(ctx, vmi)
	if err != nil {
		return nil, err
	}
	// The agent poller's guest-network-get-interfaces (guestagent.go).
	agent := ga.has("guest-network-get-interfaces")
	nodes := &corev1.NodeList{}
	if err := r.c.List(ctx, nodes); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(nodes.Items))
	for _, n := range nodes.Items {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	nodeIndex := sort.SearchStrings(names, node.Name) + 1

	var out []kubevirtv1.VirtualMachineInstanceNetworkInterface
	for i, iface := range vmi.Spec.Domain.Devices.Interfaces {
		mac := strings.ToLower(iface.MacAddress)
		if mac == "" {
			mac = fakeMAC(vmi.Namespace + "/" + vmi.Name + "/" + iface.Name)
		}
		var ips []string
		for _, net := range vmi.Spec.Networks {
			if net.Name != iface.Name {
				continue
			}
			switch {
			case net.Pod != nil:
				ips = []string{fmt.Sprintf("%s.%d.%d", PodNetworkPrefix, nodeIndex, hash(vmi.Namespace+"/"+vmi.Name)%250+2)}
			case net.Multus != nil && agent:
				ips = static[mac]
				if len(ips) == 0 {
					ips = []string{fmt.Sprintf("%s.%d", DHCPPoolPrefix, hash(mac)%250+2)}
				}
			}
		}
		// KubeVirt learns a bridge-bound secondary NIC's addresses only
		// from the guest agent (user guide, "Interfaces and Networks":
		// the guest agent reports them); the pod network's address comes
		// from the pod's network status too.
		source := "domain, multus-status"
		if agent {
			source = "domain, guest-agent, multus-status"
		}
		st := kubevirtv1.VirtualMachineInstanceNetworkInterface{
			Name: iface.Name, InterfaceName: fmt.Sprintf("eth%d", i), MAC: mac,
			IPs: ips, InfoSource: source, QueueCount: 1, LinkState: "up",
		}
		if len(ips) > 0 {
			st.IP = ips[0]
		}
		out = append(out, st)
	}
	return out, nil
}

func hash(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

// fakeMAC is a locally administered unicast MAC derived from seed.
func fakeMAC(seed string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	b := h.Sum64()
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(b>>32), byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
}

// networkConfig is the part of cloud-init network config v2 the simulator
// reads, optionally wrapped in "network:".
type networkConfig struct {
	Network   *networkConfig `json:"network,omitempty"`
	Ethernets map[string]struct {
		Match struct {
			MACAddress string `json:"macaddress"`
		} `json:"match"`
		Addresses []string `json:"addresses"`
	} `json:"ethernets"`
}

// staticAddresses maps lower-case MAC to the addresses (without prefix
// length) the VMI's cloud-init networkdata assigns it.
func (r *kubevirtSim) staticAddresses(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (map[string][]string, error) {
	data, err := r.cloudInitData(ctx, vmi, "networkdata", "networkData")
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	if data == "" {
		return out, nil
	}
	cfg := &networkConfig{}
	if err := yaml.Unmarshal([]byte(data), cfg); err != nil {
		log.FromContext(ctx).Info("ignoring unparsable networkdata", "error", err.Error())
		return out, nil
	}
	if cfg.Network != nil {
		cfg = cfg.Network
	}
	for _, eth := range cfg.Ethernets {
		for _, addr := range eth.Addresses {
			ip, _, _ := strings.Cut(addr, "/")
			mac := strings.ToLower(eth.Match.MACAddress)
			out[mac] = append(out[mac], ip)
		}
	}
	return out, nil
}

// cloudInitData returns the VMI's cloud-init NoCloud or ConfigDrive data
// under the Secret keys given (userdata/userData or networkdata/networkData),
// or the inline value; "" when there is none.
func (r *kubevirtSim) cloudInitData(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, keys ...string) (string, error) {
	network := keys[0] == "networkdata"
	for _, v := range vmi.Spec.Volumes {
		var inline string
		var ref *corev1.LocalObjectReference
		switch {
		case v.CloudInitNoCloud != nil && network:
			inline, ref = v.CloudInitNoCloud.NetworkData, v.CloudInitNoCloud.NetworkDataSecretRef
		case v.CloudInitNoCloud != nil:
			inline, ref = v.CloudInitNoCloud.UserData, v.CloudInitNoCloud.UserDataSecretRef
		case v.CloudInitConfigDrive != nil && network:
			inline, ref = v.CloudInitConfigDrive.NetworkData, v.CloudInitConfigDrive.NetworkDataSecretRef
		case v.CloudInitConfigDrive != nil:
			inline, ref = v.CloudInitConfigDrive.UserData, v.CloudInitConfigDrive.UserDataSecretRef
		default:
			continue
		}
		if ref == nil {
			return inline, nil
		}
		secret := &corev1.Secret{}
		if err := r.c.Get(ctx, types.NamespacedName{Namespace: vmi.Namespace, Name: ref.Name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				return "", nil // real KubeVirt would not start; the sandbox falls back to DHCP
			}
			return "", err
		}
		for _, k := range keys {
			if d := string(secret.Data[k]); d != "" {
				return d, nil
			}
		}
		return "", nil
	}
	return "", nil
}

// guestAgent reports whether the guest runs the QEMU guest agent: the
// sandbox's guests have it when their cloud-init user data installs
// qemu-guest-agent (a real image may ship it; the sandbox's do not).
func (r *kubevirtSim) guestAgent(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (bool, error) {
	data, err := r.cloudInitData(ctx, vmi, "userdata", "userData")
	return strings.Contains(data, "qemu-guest-agent"), err
}

// pacer spaces a simulator's steps per object by at least an interval, so
// the watch event of its own status write does not fast-forward it.
type pacer struct {
	mu   sync.Mutex
	next map[types.NamespacedName]time.Time
}

// wait returns how long key must still wait; when it returns 0 the step may
// run now and the next one is due an interval later.
func (p *pacer) wait(key types.NamespacedName, interval time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == nil {
		p.next = map[types.NamespacedName]time.Time{}
	}
	now := time.Now()
	if d := p.next[key].Sub(now); d > 0 {
		return d
	}
	p.next[key] = now.Add(interval)
	return 0
}

func (p *pacer) forget(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.next, key)
}

//go:build guest

package guest_test

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// namespace of every test Wukong.
const namespace = "guests"

// The peers on the other side of the secondary NICs, inside the test's
// network namespace: each secondary NIC's tap device holds the peer's
// address. dnsmasq answers DNS for dnsName on the static segment's peer and
// serves DHCP leases (router and DNS server: the DHCP peer) on the other.
const (
	staticPeer     = "10.10.0.1"
	staticPrefix   = "10.10.0.1/24"
	dhcpPeer       = "10.20.0.1"
	dhcpPrefix     = "10.20.0.1/24"
	dhcpRangeStart = "10.20.0.100"
	dhcpRangeEnd   = "10.20.0.150"
	dnsName        = "peer.wukong.test"
	// The IPv6 segment: a static peer only.
	static6Peer   = "fd00:10::1"
	static6Prefix = "fd00:10::1/64"
)

// The pod network is qemu's user networking (slirp) laid out like KubeVirt's
// masquerade binding: the guest gets 10.0.2.2/24 by DHCP with router
// 10.0.2.1 (KubeVirt user guide, "Interfaces and Networks", masquerade).
const (
	podGateway = "10.0.2.1"
	podAddress = "10.0.2.2/24"
	podDNS     = "10.0.2.3"
)

// segmentKind is what the test puts behind a secondary NIC.
type segmentKind int

const (
	segStatic  segmentKind = iota // the static peer, with DNS
	segDHCP                       // the DHCP server
	segStatic6                    // the IPv6 static peer
)

// peer is the address on the netns side of a segment's tap.
func (k segmentKind) peer() string {
	return map[segmentKind]string{segStatic: staticPeer, segDHCP: dhcpPeer, segStatic6: static6Peer}[k]
}

// prefix is the peer's address in CIDR form.
func (k segmentKind) prefix() string {
	return map[segmentKind]string{segStatic: staticPrefix, segDHCP: dhcpPrefix, segStatic6: static6Prefix}[k]
}

// guestCase is one Wukong booted as a real guest, with what its guest must
// show. Everything else the checks expect (hostname, MACs, static addresses,
// DNS servers, user, disk size) is read from the Wukong and from what
// lib/kubevirt rendered for it.
type guestCase struct {
	wukong *v1alpha1.Wukong
	// segments: NIC name -> what is on the other side of its tap.
	segments map[string]segmentKind
	// login is the guest user the checks log in as with the Wukong's key:
	// cloudInitUser.name, or the image's default user ("debian", from
	// Debian's cloud.cfg) when the Wukong has none.
	login string
	// sshNIC is the NIC the checks reach the guest's SSH server through:
	// "" for the pod network (a qemu port forward, as virtctl port-forward
	// reaches a masquerade guest), else a static NIC's address.
	sshNIC string
	// defaultVia/defaultDev is the one IPv4 default route the guest must
	// have: the router, and the NIC name (the pod network's is the
	// kernel's name for the first PCI slot, enp1s0).
	defaultVia, defaultDev string
	// defaultVia6/defaultDev6 is the one IPv6 default route the guest must
	// have; empty for none.
	defaultVia6, defaultDev6 string
	// password is cloudInitUser.password in clear, to check that glibc's
	// crypt accepts the hash Wukong rendered.
	password string
}

// guestCases are the Wukongs the tier boots, in order.
func guestCases() []guestCase {
	const password = "wukong-guest-pw"
	return []guestCase{
		{
			// Pod network plus a static NIC with gateway and DNS and a DHCP
			// NIC; a user with sudo, groups (one the image lacks), a
			// password and keys; a 4 GiB disk from a 1.5 GiB image.
			wukong: &v1alpha1.Wukong{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Wukong"},
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "guest-a", UID: "5d3c9a6e-0000-4000-8000-00000000000a"},
				Spec: v1alpha1.WukongSpec{
					CPU:     2,
					Memory:  resource.MustParse("1Gi"),
					OSImage: "https://images.example/debian-12-wukong-guest.qcow2",
					Disks:   []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("4Gi"), Boot: true}},
					Networks: []v1alpha1.NetworkSpec{
						{Name: "storage", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br-storage", IPConfig: &v1alpha1.IPConfig{
							Mode: v1alpha1.IPModeStatic, Address: "10.10.0.5/24", Gateway: staticPeer,
							DNSServers: []string{staticPeer, "10.10.0.53"},
						}},
						{Name: "mgmt", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeDHCP}},
					},
					SSHKeySecret: "guest-a-keys",
					CloudInitUser: &v1alpha1.CloudInitUser{
						Name:     "ops",
						Password: password,
						Sudo:     "ALL=(ALL) NOPASSWD:ALL",
						Shell:    "/bin/bash",
						Groups:   []string{"adm", "sudo", "wukong-ops"},
					},
				},
			},
			segments:   map[string]segmentKind{"storage": segStatic, "mgmt": segDHCP},
			login:      "ops",
			defaultVia: podGateway,
			defaultDev: "enp1s0",
			password:   password,
		},
		{
			// No pod network: a static NIC with gateway and DNS, a DHCP NIC
			// that asks for the default route, and a static IPv6 NIC with a
			// gateway (the IPv6 default route, rendered as gateway6); keys
			// for the image's default user; the image's own guest agent
			// (install: false).
			wukong: &v1alpha1.Wukong{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Wukong"},
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "guest-b", UID: "5d3c9a6e-0000-4000-8000-00000000000b"},
				Spec: v1alpha1.WukongSpec{
					CPU:        1,
					Memory:     resource.MustParse("1Gi"),
					OSImage:    "https://images.example/debian-12-wukong-guest.qcow2",
					PodNetwork: ptr.To(false),
					Disks:      []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("3Gi")}},
					Networks: []v1alpha1.NetworkSpec{
						{Name: "lan", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br-lan", IPConfig: &v1alpha1.IPConfig{
							Mode: v1alpha1.IPModeStatic, Address: "10.10.0.7/24", Gateway: staticPeer, DNSServers: []string{staticPeer},
						}},
						{Name: "wan", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br-wan", IPConfig: &v1alpha1.IPConfig{
							Mode: v1alpha1.IPModeDHCP, DefaultRoute: true,
						}},
						{Name: "v6", Type: v1alpha1.NetworkTypeBridge, BridgeName: "br-v6", IPConfig: &v1alpha1.IPConfig{
							Mode: v1alpha1.IPModeStatic, Address: "fd00:10::7/64", Gateway: static6Peer,
						}},
					},
					SSHKeySecret: "guest-b-keys",
					GuestAgent:   &v1alpha1.GuestAgent{Install: ptr.To(false)},
				},
			},
			segments:    map[string]segmentKind{"lan": segStatic, "wan": segDHCP, "v6": segStatic6},
			login:       "debian",
			sshNIC:      "lan",
			defaultVia:  dhcpPeer,
			defaultDev:  "wan",
			defaultVia6: static6Peer,
			defaultDev6: "v6",
		},
	}
}

// operatorMachine is the kubevirt.Machine the operator builds for w once its
// networks and disks are ready: the operator's own mapping (mapping.Machine),
// fed what lib/network and lib/storage observe on a cluster (each NIC's
// stable MAC network.MAC and its Wukong-made NAD <wukong>-<nic>; a disk with
// an image as the DataVolume <wukong>-<disk>).
func operatorMachine(w *v1alpha1.Wukong, sshKeys []string) (kubevirt.Machine, error) {
	var nics []network.NICObservation
	for _, a := range mapping.Attachments(w) {
		nics = append(nics, network.NICObservation{Name: a.Name, NADNamespace: w.Namespace, NADName: network.NADName(w.Name, a.Name),
			MAC: network.MAC(w.Namespace, w.Name, a.Name), Found: true, CNIType: network.CNITypeFor(a)})
	}
	var vols []storage.Observation
	for _, d := range mapping.Disks(w) {
		vols = append(vols, storage.Observation{Name: d.Name, ClaimName: storage.ClaimName(w.Name, d.Name), DataVolume: d.Source != ""})
	}
	m, err := mapping.Machine(w, nics, vols, sshKeys)
	if err != nil {
		return m, err
	}
	return m, m.Validate()
}

// Package mapping turns a Wukong's spec into the input types of lib/network,
// lib/storage and lib/kubevirt, and lib field paths back into spec paths.
// It is the operator's one Wukong -> KubeVirt/CDI/Multus translation: the
// reconciler calls it, and the real-guest tier (test/guest) calls the same
// functions to render what the operator would. Every function is pure, so
// it is table-tested and fuzzed without an API server. It imports the libs
// and the API package, never the reconciler.
package mapping

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Attachments maps spec.networks to lib/network attachments.
func Attachments(w *v1alpha1.Wukong) []network.Attachment {
	out := make([]network.Attachment, 0, len(w.Spec.Networks))
	for _, n := range w.Spec.Networks {
		a := network.Attachment{
			Name:              n.Name,
			Type:              network.Type(NetworkType(n)),
			NADName:           n.NADName,
			Bridge:            n.BridgeName,
			VLAN:              int(n.VLANID),
			PhysicalInterface: n.PhysicalInterface,
			ResourceName:      n.ResourceName,
		}
		if a.Type == network.TypeMacvlan {
			// macvlan has no bridge: bridgeName names the master when
			// physicalInterface is empty (the original design's habit).
			if a.PhysicalInterface == "" {
				a.PhysicalInterface = n.BridgeName
			}
			a.Bridge = ""
		}
		out = append(out, a)
	}
	return out
}

// NetworkType is spec.networks[i].type, bridge when unset (the CRD's
// default, for objects written before it applied).
func NetworkType(n v1alpha1.NetworkSpec) v1alpha1.NetworkType {
	if n.Type == "" {
		return v1alpha1.NetworkTypeBridge
	}
	return n.Type
}

// BootIndex is the index of the boot disk: the one marked boot, else the
// first; -1 without disks. It is the one place the boot disk is decided:
// Disks gives it osImage, Machine marks it bootable.
func BootIndex(w *v1alpha1.Wukong) int {
	for i, d := range w.Spec.Disks {
		if d.Boot {
			return i
		}
	}
	if len(w.Spec.Disks) > 0 {
		return 0
	}
	return -1
}

// Disks maps spec.disks to lib/storage disks. osImage fills the boot disk's
// image when it names none.
func Disks(w *v1alpha1.Wukong) []storage.Disk {
	boot := BootIndex(w)
	out := make([]storage.Disk, 0, len(w.Spec.Disks))
	for i, d := range w.Spec.Disks {
		src := d.Image
		if i == boot && src == "" {
			src = w.Spec.OSImage
		}
		out = append(out, storage.Disk{
			Name:             d.Name,
			Size:             d.Size,
			StorageClassName: d.StorageClassName,
			Source:           src,
		})
	}
	return out
}

// Machine maps the spec plus what the network and storage steps observed to
// a lib/kubevirt machine.
func Machine(w *v1alpha1.Wukong, nics []network.NICObservation, vols []storage.Observation, sshKeys []string) (kubevirt.Machine, error) {
	rs, err := RunStrategy(w)
	if err != nil {
		return kubevirt.Machine{}, err
	}
	m := kubevirt.Machine{
		Name:        w.Name,
		CPU:         w.Spec.CPU,
		Memory:      w.Spec.Memory,
		RunStrategy: rs,
		PodNetwork:  w.Spec.PodNetwork == nil || *w.Spec.PodNetwork,
		CloudInit: kubevirt.CloudInit{
			Hostname: w.Name,
			SSHKeys:  sshKeys,
		},
	}
	if m.CPU == 0 {
		m.CPU = 1
	}
	if m.Memory.IsZero() {
		m.Memory = resource.MustParse("1Gi") // the CRD default, for objects written before it applied
	}
	if len(w.Spec.Disks) == 0 {
		m.ContainerDiskImage = w.Spec.OSImage
	}
	boot := BootIndex(w)
	for i, v := range vols {
		m.Disks = append(m.Disks, kubevirt.Disk{
			Name:       v.Name,
			ClaimName:  v.ClaimName,
			DataVolume: v.DataVolume,
			Boot:       i == boot,
		})
	}
	byName := make(map[string]network.NICObservation, len(nics))
	for _, n := range nics {
		byName[n.Name] = n
	}
	for _, spec := range w.Spec.Networks {
		obs := byName[spec.Name]
		nic := kubevirt.NIC{Name: spec.Name, NAD: obs.NetworkName(), MAC: obs.MAC, Binding: NICBinding(spec, obs)}
		m.NICs = append(m.NICs, nic)
		if ip := spec.IPConfig; ip != nil {
			nd := kubevirt.NetworkData{MAC: obs.MAC, Mode: kubevirt.NetworkModeDHCP, Gateway: ip.Gateway, DNS: ip.DNSServers, DefaultRoute: ip.DefaultRoute}
			if ip.Mode == v1alpha1.IPModeStatic {
				nd.Mode = kubevirt.NetworkModeStatic
				nd.Addresses = []string{ip.Address}
			}
			m.CloudInit.Networks = append(m.CloudInit.Networks, nd)
		}
	}
	if ga := w.Spec.GuestAgent; ga != nil && ga.Install != nil && !*ga.Install {
		m.CloudInit.SkipGuestAgent = true
	}
	if u := w.Spec.CloudInitUser; u != nil {
		m.CloudInit.User = &kubevirt.User{
			Name:         u.Name,
			Password:     u.Password,
			PasswordHash: u.PasswordHash,
			Sudo:         u.Sudo,
			Shell:        u.Shell,
			Groups:       u.Groups,
			LockPasswd:   u.LockPasswd,
		}
	}
	if ha := w.Spec.HighAvailability; ha != nil {
		m.NodeSelector = ha.NodeSelector
		m.Tolerations = ha.Tolerations
		m.AntiAffinity = ha.AntiAffinity
	}
	return m, nil
}

// SpecField names the Wukong field behind a lib/kubevirt input field (the
// Field of a *kubevirt.InvalidInputError) so a Stalled message points at what
// the user wrote: containerDiskImage is spec.osImage, and
// cloudInit.networks[i].<x> is the ipConfig of the i-th spec.networks entry
// that has one (Machine appends them in that order). Other fields are
// returned as they are.
func SpecField(w *v1alpha1.Wukong, libField string) string {
	if libField == "containerDiskImage" {
		return "spec.osImage"
	}
	after, ok := strings.CutPrefix(libField, "cloudInit.networks[")
	index, suffix, found := strings.Cut(after, "]")
	i, err := strconv.Atoi(index)
	if !ok || !found || err != nil {
		return libField
	}
	seen := 0
	for j, n := range w.Spec.Networks {
		if n.IPConfig == nil {
			continue
		}
		if seen == i {
			base := fmt.Sprintf("spec.networks[%d].ipConfig", j)
			switch {
			case strings.HasPrefix(suffix, ".addresses"):
				return base + ".address"
			case strings.HasPrefix(suffix, ".dns"):
				return base + ".dnsServers" + strings.TrimPrefix(suffix, ".dns")
			case suffix == ".mac":
				return fmt.Sprintf("spec.networks[%d]", j)
			}
			return base + suffix
		}
		seen++
	}
	return libField
}

// NICBinding is the KubeVirt binding of a NIC: sriov for type sriov; the
// macvtap binding plugin when its NAD is a macvtap one (the NAD Wukong
// writes for type macvlan, or a user's macvtap NAD); else the bridge
// binding. A macvlan or ipvlan NAD never gets here: network.Reconcile fails
// such a NIC (an *network.UnsupportedCNIError). KubeVirt user guide, "Interfaces and
// Networks" and the macvtap binding plugin page.
func NICBinding(spec v1alpha1.NetworkSpec, obs network.NICObservation) kubevirt.Binding {
	switch {
	case NetworkType(spec) == v1alpha1.NetworkTypeSRIOV:
		return kubevirt.BindingSRIOV
	case obs.CNIType == network.CNIMacvtap:
		return kubevirt.BindingMacvtap
	default:
		return kubevirt.BindingBridge
	}
}

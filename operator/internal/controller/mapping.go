package controller

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

// This file maps Wukong.spec to the libs' input types. Every function is pure
// so it is table-tested and fuzzed without an API server.

// attachments maps spec.networks to lib/network attachments.
func attachments(w *v1alpha1.Wukong) []network.Attachment {
	out := make([]network.Attachment, 0, len(w.Spec.Networks))
	for _, n := range w.Spec.Networks {
		a := network.Attachment{
			Name:              n.Name,
			Type:              network.Type(networkType(n)),
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

func networkType(n v1alpha1.NetworkSpec) v1alpha1.NetworkType {
	if n.Type == "" {
		return v1alpha1.NetworkTypeBridge
	}
	return n.Type
}

// bootIndex is the index of the boot disk: the one marked boot, else the
// first; -1 without disks. It is the one place the boot disk is decided:
// disks gives it osImage, machine marks it bootable.
func bootIndex(w *v1alpha1.Wukong) int {
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

// disks maps spec.disks to lib/storage disks. osImage fills the boot disk's
// image when it names none.
func disks(w *v1alpha1.Wukong) []storage.Disk {
	boot := bootIndex(w)
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

// machine maps the spec plus what the network and storage steps observed to
// a lib/kubevirt machine.
func machine(w *v1alpha1.Wukong, nics []network.NICObservation, vols []storage.Observation, sshKeys []string) (kubevirt.Machine, error) {
	rs, err := runStrategy(w)
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
	boot := bootIndex(w)
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
		nic := kubevirt.NIC{Name: spec.Name, NAD: obs.NetworkName(), MAC: obs.MAC, Binding: nicBinding(spec, obs)}
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

// specField names the Wukong field behind a lib/kubevirt input field (the
// Field of a *kubevirt.InvalidInputError) so a Stalled message points at what
// the user wrote: containerDiskImage is spec.osImage, and
// cloudInit.networks[i].<x> is the ipConfig of the i-th spec.networks entry
// that has one (machine appends them in that order). Other fields are
// returned as they are.
func specField(w *v1alpha1.Wukong, libField string) string {
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

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
	kubevirtv1 "kubevirt.io/api/core/v1"

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

// networkFields is the reverse of Attachments: the spec.networks[i] field
// behind each lib/network Attachment field (the Field of a
// *network.InvalidAttachmentError). MTU has none: Wukong never sets it.
var networkFields = map[string]string{
	"name":              "name",
	"type":              "type",
	"nadName":           "nadName",
	"bridge":            "bridgeName",
	"vlan":              "vlanId",
	"physicalInterface": "physicalInterface",
	"resourceName":      "resourceName",
}

// NetworkField is the field of spec.networks[i] behind lib/network
// Attachment field libField ("vlan" is vlanId, "bridge" bridgeName); ""
// when no Wukong field sets it (mtu), so the message names the NIC.
func NetworkField(libField string) string { return networkFields[libField] }

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

// ClusterImage is the ClusterImage disk i is cloned from and the spec path
// that names it: spec.disks[i].clusterImage, or spec.osClusterImage for the
// boot disk when it names no image, claimName, cloneFrom or clusterImage of
// its own; "", "" for any other disk.
func ClusterImage(w *v1alpha1.Wukong, i int) (name, field string) {
	d := w.Spec.Disks[i]
	switch {
	case d.ClusterImage != "":
		return d.ClusterImage, fmt.Sprintf("spec.disks[%d].clusterImage", i)
	case w.Spec.OSClusterImage != "" && i == BootIndex(w) && d.Image == "" && d.ClaimName == "" && d.CloneFrom == nil:
		return w.Spec.OSClusterImage, "spec.osClusterImage"
	}
	return "", ""
}

// Disks maps spec.disks to lib/storage disks. osImage fills the boot disk's
// image when it names none and is neither a clone nor an existing claim
// (claimName: used as it is); osClusterImage makes it a catalog clone
// (ClusterImage). claimName is the disk's ClaimName;
// deletionPolicy Retain is Retain (ignored by lib/storage for a claimName
// disk, which it never deletes). A disk with cloneFrom or clusterImage gets
// no Clone here: the reconciler resolves its source (a claim, a
// VolumeSnapshot or a catalog DataSource) in the cluster.
func Disks(w *v1alpha1.Wukong) []storage.Disk {
	boot := BootIndex(w)
	out := make([]storage.Disk, 0, len(w.Spec.Disks))
	for i, d := range w.Spec.Disks {
		src, access := d.Image, d.ImageAccess
		if i == boot && src == "" && d.ClaimName == "" && d.CloneFrom == nil && d.ClusterImage == "" {
			src, access = w.Spec.OSImage, w.Spec.OSImageAccess
		}
		if src == "" {
			access = nil // refused at admission; not a blank disk's business
		}
		var cm, secret string
		if access != nil {
			cm, secret = access.CertConfigMap, access.SecretRef
		}
		out = append(out, storage.Disk{
			CertConfigMap:    cm,
			SecretRef:        secret,
			Name:             d.Name,
			Size:             d.Size,
			StorageClassName: d.StorageClassName,
			Source:           src,
			ClaimName:        d.ClaimName,
			Retain:           d.DeletionPolicy == v1alpha1.DiskDeletionPolicyRetain,
		})
	}
	return out
}

// RetainsClaims reports whether some disk of w keeps a claim Wukong
// created when w is deleted (deletionPolicy Retain without claimName): w
// then needs the finalizer that releases them.
func RetainsClaims(w *v1alpha1.Wukong) bool {
	for _, d := range w.Spec.Disks {
		if d.DeletionPolicy == v1alpha1.DiskDeletionPolicyRetain && d.ClaimName == "" {
			return true
		}
	}
	return false
}

// DiskClaimName is the claim of spec.disks[i]: its claimName, else the one
// Wukong creates (storage.ClaimName: "<wukong>-<disk>").
func DiskClaimName(w *v1alpha1.Wukong, i int) string {
	if c := w.Spec.Disks[i].ClaimName; c != "" {
		return c
	}
	return storage.ClaimName(w.Name, w.Spec.Disks[i].Name)
}

// DiskOfClaim is the reverse of Disks for a claim name KubeVirt reports
// (a VMI's volume status, a LiveMigratable message): the index i of the
// spec.disks[i] whose claim is named claim (DiskClaimName), and false when
// none is.
func DiskOfClaim(w *v1alpha1.Wukong, claim string) (int, bool) {
	for i := range w.Spec.Disks {
		if DiskClaimName(w, i) == claim {
			return i, true
		}
	}
	return 0, false
}

// DiskField is the reverse of Disks: the path of the Wukong field behind
// lib/storage Disk field libField (the Field of a disk's *apply.Failure) of
// spec.disks[i]: name, size and storageClassName are the disk's own; source
// is its image, or spec.osImage for the boot disk without one (Disks gives
// it osImage), or cloneFrom for a clone; claimName is claimName;
// certConfigMap and secretRef are imageAccess's, or spec.osImageAccess's
// for the boot disk importing osImage; "" (a failure about the whole disk)
// is spec.disks[i].
func DiskField(w *v1alpha1.Wukong, i int, libField string) string {
	disk := fmt.Sprintf("spec.disks[%d]", i)
	switch libField {
	case "":
		return disk
	case "source":
		switch {
		case w.Spec.Disks[i].CloneFrom != nil:
			return disk + ".cloneFrom"
		case w.Spec.Disks[i].ClusterImage != "" || w.Spec.OSClusterImage != "" && i == BootIndex(w) && w.Spec.Disks[i].Image == "" && w.Spec.Disks[i].ClaimName == "":
			_, field := ClusterImage(w, i)
			return field
		case i == BootIndex(w) && w.Spec.Disks[i].Image == "" && w.Spec.Disks[i].ClaimName == "":
			return "spec.osImage"
		}
		return disk + ".image"
	case "certConfigMap", "secretRef":
		// As Disks fills them: osImage's for the boot disk importing it.
		if d := w.Spec.Disks[i]; i == BootIndex(w) && d.Image == "" && d.ClaimName == "" && d.CloneFrom == nil {
			return "spec.osImageAccess." + libField
		}
		return disk + ".imageAccess." + libField
	}
	return disk + "." + libField
}

// The size of a Wukong that sets neither cpu and memory nor an instance
// type (the CRD's defaults before instance types existed; Wukongs written
// then have them stored).
const (
	DefaultCPU    = 1
	DefaultMemory = "1Gi"
)

// Machine maps the spec plus what the network and storage steps observed to
// a lib/kubevirt machine: one NIC per spec.networks entry, in order, with
// its ipConfig attached (NIC.IP); one disk per observed spec.disks entry, in
// order. Observations are matched to spec entries by name. A run-strategy
// contradiction is a *RunStrategyError.
func Machine(w *v1alpha1.Wukong, nicObs []network.NICObservation, volObs []storage.Observation, sshKeys []string) (kubevirt.Machine, error) {
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
	if it := w.Spec.Instancetype; it != nil {
		m.Instancetype = &kubevirt.Matcher{Kind: it.Kind, Name: it.Name}
	} else {
		if m.CPU == 0 {
			m.CPU = DefaultCPU
		}
		if m.Memory.IsZero() {
			m.Memory = resource.MustParse(DefaultMemory)
		}
	}
	if p := w.Spec.Preference; p != nil {
		m.Preference = &kubevirt.Matcher{Kind: p.Kind, Name: p.Name}
	}
	if len(w.Spec.Disks) == 0 {
		m.ContainerDiskImage = w.Spec.OSImage
		m.ContainerDiskPullSecret = w.Spec.OSImagePullSecret
	}
	// Observations are joined to spec entries by name.
	vols := byName(volObs, func(v storage.Observation) string { return v.Name })
	boot := BootIndex(w)
	for i, d := range w.Spec.Disks {
		v, ok := vols[d.Name]
		if !ok {
			continue // not observed: the caller waits for every disk first
		}
		m.Disks = append(m.Disks, kubevirt.Disk{
			Name:       d.Name,
			ClaimName:  v.ClaimName,
			DataVolume: v.DataVolume,
			Boot:       i == boot,
		})
	}
	nics := byName(nicObs, func(n network.NICObservation) string { return n.Name })
	for _, spec := range w.Spec.Networks {
		obs := nics[spec.Name]
		m.NICs = append(m.NICs, kubevirt.NIC{Name: spec.Name, NAD: obs.NetworkName(), MAC: obs.MAC, Binding: nicBinding(spec, obs), IP: IPConfig(spec.IPConfig)})
	}
	if ga := w.Spec.GuestAgent; ga != nil && ga.Install != nil && !*ga.Install {
		m.CloudInit.SkipGuestAgent = true
	}
	if u := w.Spec.CloudInitUser; u != nil {
		// Keys reach the running guest too, through the guest agent, for
		// the user Wukong knows (issue #33; lib/kubevirt accesscredentials.go).
		m.CloudInit.PropagateSSHKeys = w.Spec.SSHKeySecret != ""
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
	// Empty stays empty: the operator's default is the caller's to add
	// (kubevirt.Machine.EvictionStrategy), the cluster's KubeVirt's.
	m.EvictionStrategy = kubevirtv1.EvictionStrategy(w.Spec.EvictionStrategy)
	if ha := w.Spec.HighAvailability; ha != nil {
		m.NodeSelector = ha.NodeSelector
		m.Tolerations = ha.Tolerations
		m.AntiAffinity = ha.AntiAffinity
		m.AntiAffinityGroup = ha.AntiAffinityGroup
		m.AntiAffinityPreferred = ha.AntiAffinityMode == v1alpha1.AntiAffinityPreferred
	}
	return m, nil
}

// IPConfig maps a NIC's spec.networks[i].ipConfig (nil: none) to what
// lib/kubevirt configures the guest with.
func IPConfig(ip *v1alpha1.IPConfig) *kubevirt.IPConfig {
	if ip == nil {
		return nil
	}
	out := &kubevirt.IPConfig{Mode: kubevirt.NetworkModeDHCP, Gateway: ip.Gateway, DNS: ip.DNSServers, DefaultRoute: ip.DefaultRoute}
	if ip.Mode == v1alpha1.IPModeStatic {
		out.Mode = kubevirt.NetworkModeStatic
		out.Addresses = []string{ip.Address}
	}
	return out
}

// byName indexes observations by the name of the spec entry they are of.
func byName[T any](obs []T, name func(T) string) map[string]T {
	out := make(map[string]T, len(obs))
	for _, o := range obs {
		out[name(o)] = o
	}
	return out
}

// machineFields are the lib/kubevirt input fields Machine fills from one
// Wukong field each (their reverse).
var machineFields = map[string]string{
	"name":                       "metadata.name",
	"containerDiskImage":         "spec.osImage",
	"evictionStrategy":           "spec.evictionStrategy",
	"memory":                     "spec.memory",
	"cpu":                        "spec.cpu",
	"instancetype":               "spec.instancetype",
	"instancetype.name":          "spec.instancetype.name",
	"instancetype.kind":          "spec.instancetype.kind",
	"preference":                 "spec.preference",
	"preference.name":            "spec.preference.name",
	"preference.kind":            "spec.preference.kind",
	"runStrategy":                "spec.startStrategy.runStrategy",
	"disks":                      "spec.disks",
	"antiAffinityGroup":          "spec.highAvailability.antiAffinityGroup",
	"cloudInit.user.name":        "spec.cloudInitUser.name",
	"cloudInit.propagateSSHKeys": "spec.sshKeySecret",
}

// MachineField is the reverse of Machine: the Wukong field behind a
// lib/kubevirt input field (the Field of a *kubevirt.InvalidInputError or
// of a lib/kubevirt *apply.Failure) so a Stalled message points at what
// the user wrote: the fields of machineFields (e.g. containerDiskImage is
// spec.osImage, antiAffinityGroup is spec.highAvailability.antiAffinityGroup);
// disks[i].<x> is spec.disks[i].name for name, else spec.disks[i] (Machine
// makes disk i of spec.disks[i]; its claim is derived); nics[i].ip.<x> is
// spec.networks[i].ipConfig.<x> (addresses is ipConfig.address, dns is
// dnsServers), nics[i].name is spec.networks[i].name and any other
// nics[i].<x> (mac, nad, binding: derived) is spec.networks[i]. A field
// Machine never fills, and an entry w does not have, is returned as it is.
func MachineField(w *v1alpha1.Wukong, libField string) string {
	if f, ok := machineFields[libField]; ok {
		return f
	}
	list, after, ok := strings.Cut(libField, "[")
	index, suffix, found := strings.Cut(after, "]")
	i, err := strconv.Atoi(index)
	if !ok || !found || err != nil || i < 0 {
		return libField
	}
	switch {
	case list == "disks" && i < len(w.Spec.Disks):
		if suffix == ".name" {
			return fmt.Sprintf("spec.disks[%d].name", i)
		}
		return fmt.Sprintf("spec.disks[%d]", i)
	case list != "nics" || i >= len(w.Spec.Networks):
		return libField
	}
	nic := fmt.Sprintf("spec.networks[%d]", i)
	ip, isIP := strings.CutPrefix(suffix, ".ip")
	switch {
	case suffix == ".name":
		return nic + ".name"
	case !isIP:
		return nic
	case strings.HasPrefix(ip, ".addresses"):
		return nic + ".ipConfig.address"
	case strings.HasPrefix(ip, ".dns"):
		return nic + ".ipConfig.dnsServers" + strings.TrimPrefix(ip, ".dns")
	}
	return nic + ".ipConfig" + ip
}

// nicBinding is the KubeVirt binding of a NIC: sriov for type sriov; the
// macvtap binding plugin when its NAD is a macvtap one (the NAD Wukong
// writes for type macvlan, or a user's macvtap NAD); else the bridge
// binding. A macvlan or ipvlan NAD never gets here: network.Reconcile fails
// such a NIC (an *network.UnsupportedCNIError). KubeVirt user guide, "Interfaces and
// Networks" and the macvtap binding plugin page.
func nicBinding(spec v1alpha1.NetworkSpec, obs network.NICObservation) kubevirt.Binding {
	switch {
	case NetworkType(spec) == v1alpha1.NetworkTypeSRIOV:
		return kubevirt.BindingSRIOV
	case obs.CNIType == network.CNIMacvtap:
		return kubevirt.BindingMacvtap
	default:
		return kubevirt.BindingBridge
	}
}

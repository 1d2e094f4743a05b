package kubevirt

import (
	"crypto/sha256"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// Labels returns the labels every object built for owner under id carries:
// id.OwnerLabels(owner's name).
func Labels(id apply.Identity, owner client.Object) map[string]string {
	return id.OwnerLabels(owner.GetName())
}

// ownerReferences returns a controller reference to owner, taken from the
// owner's TypeMeta; an owner without apiVersion/kind gets none (Reconcile
// fills them from the client's scheme first).
func ownerReferences(owner client.Object) []metav1.OwnerReference {
	gvk := owner.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return nil
	}
	return []metav1.OwnerReference{apply.ControllerRef(owner)}
}

// CloudInitSecretName is the name of the Secret BuildCloudInitSecret builds.
func CloudInitSecretName(owner client.Object) string {
	return owner.GetName() + "-" + CloudInitSecretSuffix
}

// PodNetworkMAC is the MAC the lib gives the pod-network (masquerade)
// interface of machine name in namespace: locally administered, derived from
// the names so it is stable, and known in advance so cloud-init network data
// can match it. With masquerade the MAC never leaves the pod, so it cannot
// clash with other machines.
func PodNetworkMAC(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	sum[0] = (sum[0] | 0x02) &^ 0x01 // locally administered, unicast
	return net.HardwareAddr(sum[:6]).String()
}

// interfaceMACs is the one place the MACs of m's interfaces are decided,
// for the VM's interfaces and the network data alike: the pod network's
// (PodNetworkMAC) and each NIC's, in order (canonicalMAC of NIC.MAC, ""
// when it has none: KubeVirt or the CNI picks one).
func interfaceMACs(namespace string, m Machine) (pod string, nics []string) {
	nics = make([]string, len(m.NICs))
	for i, n := range m.NICs {
		if n.MAC != "" {
			nics[i] = canonicalMAC(n.MAC)
		}
	}
	return PodNetworkMAC(namespace, m.Name), nics
}

// canonicalMAC lowercases and colon-separates a MAC; unparsable input is
// returned as is (Validate reports it).
func canonicalMAC(mac string) string {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return mac
	}
	return hw.String()
}

// canonicalQuantity drops any cached textual form so the quantity always
// serializes the same way (e.g. 4096Mi -> 4Gi).
func canonicalQuantity(q resource.Quantity) resource.Quantity {
	if q.IsZero() {
		return resource.Quantity{}
	}
	c := resource.NewQuantity(q.Value(), q.Format)
	return *c
}

// Validate reports the first input BuildVM or BuildCloudInitSecret cannot
// turn into a valid object, as an *InvalidInputError.
func (m Machine) Validate() error {
	invalid := func(field, format string, args ...any) error {
		return &InvalidInputError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	if m.Name == "" {
		return invalid("name", "must not be empty")
	}
	if err := m.validateSize(); err != nil {
		return err
	}
	switch m.RunStrategy {
	case "", kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyHalted, kubevirtv1.RunStrategyManual,
		kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyOnce:
	default:
		return invalid("runStrategy", "unsupported value %q", m.RunStrategy)
	}
	names := map[string]bool{CloudInitDiskName: true}
	if len(m.Disks) == 0 && m.ContainerDiskImage == "" {
		return invalid("disks", "need at least one disk or a container disk image")
	}
	if len(m.Disks) == 0 {
		names[ContainerDiskName] = true
		if _, err := ContainerDiskImage(m.ContainerDiskImage); err != nil {
			return err
		}
	}
	boots := 0
	for i, d := range m.Disks {
		if err := namedEntry("disks", i, d.Name, names, CloudInitDiskName, "claimName", d.ClaimName); err != nil {
			return err
		}
		if d.Boot {
			boots++
		}
	}
	if boots > 1 {
		return invalid("disks", "at most one disk can boot")
	}
	if m.AntiAffinityGroup != "" {
		if errs := validation.IsValidLabelValue(m.AntiAffinityGroup); len(errs) > 0 {
			return invalid("antiAffinityGroup", "not a label value: %s", strings.Join(errs, "; "))
		}
	}
	switch m.EvictionStrategy {
	case "", kubevirtv1.EvictionStrategyNone, kubevirtv1.EvictionStrategyLiveMigrate,
		kubevirtv1.EvictionStrategyLiveMigrateIfPossible, kubevirtv1.EvictionStrategyExternal:
	default:
		return invalid("evictionStrategy", "unsupported value %q (None, LiveMigrate, LiveMigrateIfPossible or External)", m.EvictionStrategy)
	}
	nics := map[string]bool{PodNetworkName: true}
	for i, n := range m.NICs {
		if err := namedEntry("nics", i, n.Name, nics, PodNetworkName, "nad", n.NAD); err != nil {
			return err
		}
		if n.MAC != "" {
			if hw, err := net.ParseMAC(n.MAC); err != nil || len(hw) != 6 {
				return invalid(fmt.Sprintf("nics[%d].mac", i), "not a 48-bit MAC address")
			}
		}
		switch n.Binding {
		case "", BindingBridge, BindingSRIOV, BindingMacvtap:
		default:
			return invalid(fmt.Sprintf("nics[%d].binding", i), "unsupported value %q", n.Binding)
		}
	}
	if err := m.validateAccessCredentials(); err != nil {
		return err
	}
	return m.validateNetworkData()
}

// namedEntry checks entry i of the input list (disks, nics): its name is
// set and not taken (taken holds the names so far, starting with the lib's
// own, reserved), and the field ref, which points at its backing object, is
// set. It records the name in taken.
func namedEntry(list string, i int, name string, taken map[string]bool, reserved, refField, ref string) error {
	if name == "" || taken[name] {
		return &InvalidInputError{Field: fmt.Sprintf("%s[%d].name", list, i), Message: fmt.Sprintf("must be non-empty and unique, and not %q", reserved)}
	}
	taken[name] = true
	if ref == "" {
		return &InvalidInputError{Field: fmt.Sprintf("%s[%d].%s", list, i, refField), Message: "must not be empty"}
	}
	return nil
}

// BuildVM returns the VirtualMachine for m in owner's namespace. owner must
// have apiVersion and kind set (TypeMeta) for the controller owner reference
// to be added; Reconcile takes care of it. The result is deterministic and
// uses canonical values, so applying it twice writes nothing the second time.
// spec.runStrategy is m.RunStrategy (Always when empty), also recorded in the
// annotation id.Key(KeyAppliedRunStrategy); Reconcile may send the live
// VM's run strategy instead (see RunStrategyToApply). Labels come from id
// (Labels). Inputs are not validated here; see Machine.Validate.
func BuildVM(id apply.Identity, owner client.Object, m Machine) *kubevirtv1.VirtualMachine {
	labels := Labels(id, owner)
	tmplLabels := Labels(id, owner)
	antiAffinity := id.Key(KeyAntiAffinity)
	if m.AntiAffinity {
		tmplLabels[antiAffinity] = m.antiAffinityGroup()
	}
	rs := m.RunStrategy
	if rs == "" {
		rs = kubevirtv1.RunStrategyAlways
	}
	// CPUs are sockets of one core and one thread, guest memory has no
	// separate request: the two things KubeVirt changes on a running VM
	// (hotplug_cpu.go).
	sockets := uint32(1)
	if m.CPU > 1 {
		sockets = uint32(m.CPU)
	}
	mem := canonicalQuantity(m.Memory)

	disks, volumes := buildDisks(owner, m)
	ifaces, networks := buildNICs(owner.GetNamespace(), m)

	spec := kubevirtv1.VirtualMachineInstanceSpec{
		Domain: kubevirtv1.DomainSpec{
			CPU:     &kubevirtv1.CPU{Sockets: sockets, Cores: 1, Threads: 1},
			Memory:  &kubevirtv1.Memory{Guest: &mem},
			Devices: kubevirtv1.Devices{Disks: disks, Interfaces: ifaces},
		},
		Networks:          networks,
		Volumes:           volumes,
		Tolerations:       append([]corev1.Toleration(nil), m.Tolerations...),
		AccessCredentials: buildAccessCredentials(owner, m),
	}
	if !m.PodNetwork {
		f := false
		spec.Domain.Devices.AutoattachPodInterface = &f
	}
	if len(m.NodeSelector) > 0 {
		spec.NodeSelector = make(map[string]string, len(m.NodeSelector))
		for k, v := range m.NodeSelector {
			spec.NodeSelector[k] = v
		}
	}
	if m.AntiAffinity {
		spec.Affinity = &corev1.Affinity{PodAntiAffinity: buildAntiAffinity(antiAffinity, m)}
	}
	if m.EvictionStrategy != "" {
		es := m.EvictionStrategy
		spec.EvictionStrategy = &es
	}

	vm := &kubevirtv1.VirtualMachine{
		TypeMeta: metav1.TypeMeta{APIVersion: kubevirtv1.GroupVersion.String(), Kind: "VirtualMachine"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            m.Name,
			Namespace:       owner.GetNamespace(),
			Labels:          labels,
			Annotations:     map[string]string{id.Key(KeyAppliedRunStrategy): string(rs)},
			OwnerReferences: ownerReferences(owner),
		},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: &rs,
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: tmplLabels},
				Spec:       spec,
			},
		},
	}
	setReferences(vm, m)
	return vm
}

// buildAntiAffinity is the podAntiAffinity of a machine with AntiAffinity:
// one term over pods labelled key=<group> on the same node
// (HostnameTopologyKey), required or preferred. The term sets neither
// namespaces nor namespaceSelector: "null or empty namespaces list and null
// namespaceSelector means 'this pod's namespace'" (Kubernetes API
// reference, core/v1 PodAffinityTerm), so no other namespace's pods, which
// anyone with the edit role there can label, keep the machine off a node.
func buildAntiAffinity(key string, m Machine) *corev1.PodAntiAffinity {
	term := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: m.antiAffinityGroup()}},
		TopologyKey:   HostnameTopologyKey,
	}
	if m.AntiAffinityPreferred {
		return &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: PreferredAntiAffinityWeight, PodAffinityTerm: term,
		}}}
	}
	return &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term}}
}

func virtioDisk(name string) kubevirtv1.Disk {
	return kubevirtv1.Disk{Name: name, DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}}}
}

func buildDisks(owner client.Object, m Machine) ([]kubevirtv1.Disk, []kubevirtv1.Volume) {
	var disks []kubevirtv1.Disk
	var volumes []kubevirtv1.Volume
	one := uint(1)

	if len(m.Disks) == 0 && m.ContainerDiskImage != "" {
		d := virtioDisk(ContainerDiskName)
		d.BootOrder = &one
		disks = append(disks, d)
		image, err := ContainerDiskImage(m.ContainerDiskImage)
		if err != nil {
			image = m.ContainerDiskImage // Validate reports it
		}
		volumes = append(volumes, kubevirtv1.Volume{Name: ContainerDiskName, VolumeSource: kubevirtv1.VolumeSource{
			ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: image, ImagePullSecret: m.ContainerDiskPullSecret},
		}})
	}

	boot := 0
	for i, d := range m.Disks {
		if d.Boot {
			boot = i
			break
		}
	}
	ordered := make([]Disk, 0, len(m.Disks))
	if len(m.Disks) > 0 {
		ordered = append(ordered, m.Disks[boot])
		ordered = append(ordered, m.Disks[:boot]...)
		ordered = append(ordered, m.Disks[boot+1:]...)
	}
	for i, d := range ordered {
		disk := virtioDisk(d.Name)
		if i == 0 {
			disk.BootOrder = &one
		}
		disks = append(disks, disk)
		v := kubevirtv1.Volume{Name: d.Name}
		if d.DataVolume {
			v.DataVolume = &kubevirtv1.DataVolumeSource{Name: d.ClaimName, Hotpluggable: d.Hotpluggable}
		} else {
			v.PersistentVolumeClaim = &kubevirtv1.PersistentVolumeClaimVolumeSource{
				PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: d.ClaimName},
				Hotpluggable:                      d.Hotpluggable,
			}
		}
		volumes = append(volumes, v)
	}

	secret := &corev1.LocalObjectReference{Name: CloudInitSecretName(owner)}
	disks = append(disks, virtioDisk(CloudInitDiskName))
	volumes = append(volumes, kubevirtv1.Volume{Name: CloudInitDiskName, VolumeSource: kubevirtv1.VolumeSource{
		CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{
			UserDataSecretRef:    secret,
			NetworkDataSecretRef: secret.DeepCopy(),
		},
	}})
	return disks, volumes
}

func buildNICs(namespace string, m Machine) ([]kubevirtv1.Interface, []kubevirtv1.Network) {
	var ifaces []kubevirtv1.Interface
	var networks []kubevirtv1.Network
	podMAC, macs := interfaceMACs(namespace, m)
	if m.PodNetwork {
		ifaces = append(ifaces, kubevirtv1.Interface{
			Name:                   PodNetworkName,
			MacAddress:             podMAC,
			InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}},
		})
		networks = append(networks, kubevirtv1.Network{Name: PodNetworkName, NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}})
	}
	for i, n := range m.NICs {
		iface := kubevirtv1.Interface{Name: n.Name, MacAddress: macs[i]}
		switch n.Binding {
		case BindingSRIOV:
			iface.SRIOV = &kubevirtv1.InterfaceSRIOV{}
		case BindingMacvtap:
			iface.Binding = &kubevirtv1.PluginBinding{Name: MacvtapBindingName}
		default:
			iface.Bridge = &kubevirtv1.InterfaceBridge{}
		}
		ifaces = append(ifaces, iface)
		networks = append(networks, kubevirtv1.Network{Name: n.Name, NetworkSource: kubevirtv1.NetworkSource{
			Multus: &kubevirtv1.MultusNetwork{NetworkName: n.NAD},
		}})
	}
	for _, u := range m.Unplug {
		ifaces = append(ifaces, *u.Interface.DeepCopy())
		networks = append(networks, *u.Network.DeepCopy())
	}
	return ifaces, networks
}

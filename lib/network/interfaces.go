package network

import (
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// InterfaceStatus is what KubeVirt reports for one NIC of a running VM.
type InterfaceStatus struct {
	// Name is the KubeVirt network/interface name (the NIC name).
	Name string
	// InterfaceName is the name inside the guest (guest agent).
	InterfaceName string
	// IPs are every address reported; IP is the first.
	IPs []string
	IP  string
	// MAC is the address in use.
	MAC string
	// NAD is the Multus networkName of the NIC's network, empty for pod
	// networks.
	NAD string
}

// Interfaces reports vmi.status.interfaces per NIC, in status order.
// Interfaces the guest agent reports without a KubeVirt name (not declared
// in the spec) are skipped. A nil vmi has no interfaces.
func Interfaces(vmi *kubevirtv1.VirtualMachineInstance) []InterfaceStatus {
	if vmi == nil {
		return nil
	}
	nads := map[string]string{}
	for _, n := range vmi.Spec.Networks {
		if n.Multus != nil {
			nads[n.Name] = n.Multus.NetworkName
		}
	}
	var out []InterfaceStatus
	for _, s := range vmi.Status.Interfaces {
		if s.Name == "" {
			continue
		}
		st := InterfaceStatus{Name: s.Name, InterfaceName: s.InterfaceName, MAC: s.MAC, IP: s.IP, NAD: nads[s.Name]}
		st.IPs = append(st.IPs, s.IPs...)
		if len(st.IPs) == 0 && s.IP != "" {
			st.IPs = []string{s.IP}
		}
		if st.IP == "" && len(st.IPs) > 0 {
			st.IP = st.IPs[0]
		}
		out = append(out, st)
	}
	return out
}

package controller

import (
	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// observedIPSource says where the addresses KubeVirt reports for a NIC come
// from: GuestAgent when the QEMU guest agent reported the interface (VMI
// status.interfaces[].infoSource contains guest-agent), Network when KubeVirt
// reported addresses without it (the pod's address for the pod network, or
// Multus network status), empty when there is no address.
func observedIPSource(i kubevirt.Interface) v1alpha1.IPSource {
	switch {
	case len(i.IPs) == 0 && i.IP == "":
		return ""
	case i.FromGuestAgent():
		return v1alpha1.IPSourceGuestAgent
	default:
		return v1alpha1.IPSourceNetwork
	}
}

// showConfiguredAddress fills a NIC status that has no observed address with
// the static address spec.networks[].ipConfig gives the guest (without its
// prefix length, as KubeVirt reports addresses), marked ipSource Configured:
// a bridge- or SR-IOV-bound NIC's address is observed only by the guest
// agent, so until the agent reports it the user sees what was configured and
// that it was not observed.
func showConfiguredAddress(ns *v1alpha1.NetworkStatus, w *v1alpha1.Wukong) {
	if ns.IPAddress != "" || len(ns.IPAddresses) > 0 {
		return
	}
	for _, n := range w.Spec.Networks {
		if n.Name != ns.Name {
			continue
		}
		// What the guest is configured with (mapping.IPConfig, as lib/kubevirt
		// renders it), not a second reading of the spec.
		ip := mapping.IPConfig(n.IPConfig)
		if ip == nil || ip.Mode != kubevirt.NetworkModeStatic {
			return
		}
		if p := ip.Prefixes(); len(p) > 0 {
			ns.IPAddress, ns.IPAddresses, ns.IPSource = p[0].Addr().String(), []string{p[0].Addr().String()}, v1alpha1.IPSourceConfigured
		}
		return
	}
}

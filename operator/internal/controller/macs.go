package controller

import (
	"context"

	"github.com/novasphere/wukong/lib/kubevirt"
)

// MACs of secondary NICs (issue #33, item 7). A NIC's MAC used to be a
// function of namespace, Wukong and NIC names alone (network.MAC), so two
// clusters with the same names on one VLAN gave two VMs one MAC. New NICs
// now get network.ClusterMAC with the cluster's identity (ClusterID: the
// kube-system namespace's UID, or the administrator's --cluster-id). A NIC
// that already has a MAC keeps it (keptMACs), so upgrading the operator,
// or changing --cluster-id, changes no running guest's MAC: a changed MAC
// breaks DHCP reservations and leases and the guest's interface naming
// (udev's persistent names and netplan's match by MAC), and cloud-init
// matches its network data by MAC only at first boot.

// keptMACs is the MAC each secondary NIC of s.w already has, by NIC name:
// the one in the Wukong's VirtualMachine (spec.template's interfaces; the
// VM is read through the cache), else the one status.networks shows (a VM
// deleted by hand, or not readable this pass). The pod network's
// masquerade MAC never leaves the pod and is not kept here
// (kubevirt.PodNetworkMAC).
func (r *WukongReconciler) keptMACs(ctx context.Context, s *scope) (map[string]string, error) {
	if len(s.w.Spec.Networks) == 0 {
		return nil, nil // no NIC: no read (a cluster without KubeVirt would ask discovery each pass)
	}
	kept := map[string]string{}
	for _, n := range s.w.Status.Networks {
		if n.Name != kubevirt.PodNetworkName && n.MACAddress != "" {
			kept[n.Name] = n.MACAddress
		}
	}
	live, err := r.liveVM(ctx, s)
	if err != nil || live == nil || live.Spec.Template == nil {
		return kept, err
	}
	for _, i := range live.Spec.Template.Spec.Domain.Devices.Interfaces {
		if i.Name != kubevirt.PodNetworkName && i.MacAddress != "" {
			kept[i.Name] = i.MacAddress
		}
	}
	return kept, nil
}

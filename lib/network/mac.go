package network

import (
	"crypto/sha256"
	"net"
)

// ClusterMAC returns the MAC address for nic of owner in namespace on the
// cluster identified by cluster: the first six bytes of a SHA-256 over the
// four strings (each followed by a NUL byte), with the locally
// administered bit set and the multicast bit cleared (IEEE 802: bits 1 and
// 0 of the first octet). The same inputs always give the same address, so
// a restarted VM keeps its MAC; two clusters with different identities
// give the same names different addresses, so VMs of two clusters sharing
// one VLAN do not collide (48-bit space less two bits: a collision among
// n NICs on one segment has probability about n²/2⁴⁷). An empty cluster
// gives MAC(namespace, owner, nic), the address before cluster identities
// existed.
func ClusterMAC(cluster, namespace, owner, nic string) string {
	if cluster == "" {
		return MAC(namespace, owner, nic)
	}
	return hashMAC(cluster, namespace, owner, nic)
}

// hashMAC is the first six bytes of a SHA-256 over names (each followed by
// a NUL byte), marked locally administered and unicast.
func hashMAC(names ...string) string {
	h := sha256.New()
	for _, s := range names {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	mac := net.HardwareAddr(sum[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac.String()
}

// WithClusterID mixes the cluster's identity into the MACs Reconcile gives
// NICs (ClusterMAC), e.g. the UID of the kube-system namespace or an
// administrator's name for the cluster. Without it (or with ""), a NIC's
// MAC depends on its namespace, owner and NIC names alone (MAC), so two
// clusters with the same names give two VMs the same MAC.
func WithClusterID(id string) Option {
	return func(o *options) { o.clusterID = id }
}

// WithKeptMACs gives the MACs NICs already have, by NIC name (e.g. read
// from the running VirtualMachine): Reconcile reports such a NIC with that
// MAC instead of computing one, so an existing VM keeps its addresses when
// the way MACs are computed changes (a changed MAC breaks DHCP
// reservations and the guest's interface naming). A value that is not a
// 48-bit MAC is ignored.
func WithKeptMACs(macs map[string]string) Option {
	return func(o *options) { o.kept = macs }
}

// nicMAC is the MAC of NIC nic of owner: the kept one, else ClusterMAC.
func (o options) nicMAC(namespace, owner, nic string) string {
	if hw, err := net.ParseMAC(o.kept[nic]); err == nil && len(hw) == 6 {
		return hw.String()
	}
	return ClusterMAC(o.clusterID, namespace, owner, nic)
}

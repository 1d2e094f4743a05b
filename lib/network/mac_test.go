package network_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/novasphere/wukong/lib/network"
)

// TestClusterMAC (issue #33, item 7): the same names on two clusters give
// different MACs, on one cluster always the same; every MAC is a locally
// administered unicast address; an empty cluster is the address before
// cluster identities (MAC), so nothing changes for a caller without one.
func TestClusterMAC(t *testing.T) {
	const a, b = "6f1c2d0e-0000-4000-8000-00000000000a", "6f1c2d0e-0000-4000-8000-00000000000b"
	assert.Equal(t, network.ClusterMAC(a, "ns", "vm", "lan"), network.ClusterMAC(a, "ns", "vm", "lan"), "stable on one cluster")
	assert.NotEqual(t, network.ClusterMAC(a, "ns", "vm", "lan"), network.ClusterMAC(b, "ns", "vm", "lan"), "two clusters, two MACs")
	assert.NotEqual(t, network.MAC("ns", "vm", "lan"), network.ClusterMAC(a, "ns", "vm", "lan"), "a cluster identity changes the scheme")
	assert.Equal(t, network.MAC("ns", "vm", "lan"), network.ClusterMAC("", "ns", "vm", "lan"), "no identity: the old scheme")
	// Concatenation must not collide: ("ab","c") vs ("a","bc").
	assert.NotEqual(t, network.ClusterMAC("x", "ns", "ab", "c"), network.ClusterMAC("x", "ns", "a", "bc"))
	assert.NotEqual(t, network.ClusterMAC("xns", "", "vm", "c"), network.ClusterMAC("x", "ns", "vm", "c"))

	seen := map[string]bool{}
	for i := range 2000 {
		cluster := []string{a, b}[i%2]
		mac := network.ClusterMAC(cluster, "ns", fmt.Sprintf("vm-%d", i/8), fmt.Sprintf("nic%d", (i/2)%4))
		require.False(t, seen[mac], "duplicate MAC %s", mac)
		seen[mac] = true
		hw, err := net.ParseMAC(mac)
		require.NoError(t, err)
		require.Len(t, hw, 6)
		assert.Equal(t, byte(0x02), hw[0]&0x02, "locally administered: %s", mac)
		assert.Equal(t, byte(0x00), hw[0]&0x01, "unicast: %s", mac)
	}
}

// TestReconcileKeepsMACs: with a cluster identity a new NIC gets ClusterMAC;
// a NIC whose MAC is given as kept (an existing VM's) keeps it, written in
// canonical form; an unparsable kept value is ignored.
func TestReconcileKeepsMACs(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	o := newOwner(t, c, "keeper")
	atts := []network.Attachment{
		{Name: "old", Type: network.TypeBridge, Bridge: "br1"},
		{Name: "new", Type: network.TypeBridge, Bridge: "br1"},
		{Name: "bad", Type: network.TypeBridge, Bridge: "br1"},
	}
	obs, err := network.Reconcile(ctx, c, testID, o, atts, network.WithClusterID("cluster-b"),
		network.WithKeptMACs(map[string]string{"old": "02:AA:BB:CC:DD:EE", "bad": "not-a-mac"}))
	require.NoError(t, err)
	require.Len(t, obs.NICs, 3)
	assert.Equal(t, "02:aa:bb:cc:dd:ee", obs.NICs[0].MAC, "the existing NIC keeps its MAC")
	assert.Equal(t, network.ClusterMAC("cluster-b", o.Namespace, "keeper", "new"), obs.NICs[1].MAC, "a new NIC gets the cluster's")
	assert.Equal(t, network.ClusterMAC("cluster-b", o.Namespace, "keeper", "bad"), obs.NICs[2].MAC, "an unparsable kept MAC is ignored")
}

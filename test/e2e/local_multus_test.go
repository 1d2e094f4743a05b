package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// The real-Multus checks of make e2e-local (issue 21): secondary NICs that
// Multus v4.2.3 (thick) and the CNI bridge plugin v1.10.0 give a guest real
// KubeVirt runs. NMState is SIMULATED on the local cluster
// (test/sandbox/cmd/nmstate-sim: nmstate is served nowhere here): a
// NodeBridge's policy is answered Available and nothing is enslaved; the
// bridge plugin makes the bridge on the node when the launcher pod
// attaches.
//
// KubeVirt's bridge binding puts a dummy link in the launcher pod for each
// secondary NIC (pkg/network/setup/netpod/netpod.go, bridgeBindingSpec),
// and the bridge plugin's "vlan" needs a VLAN-filtering bridge: a kernel
// without CONFIG_DUMMY or CONFIG_BRIDGE_VLAN_FILTERING (this machine's)
// cannot boot such a guest. TestLocalMultusAttachments checks what a node
// with VLAN filtering but no dummy links still does for real (every bridge
// NIC is an access port, untagged ones of the native VLAN);
// TestLocalMultusGuestNICs boots the guest where the kernel can.

// multusReady skips t unless the cluster runs real KubeVirt and serves the
// NAD kind (Multus) and NodeNetworkConfigurationPolicy (kubernetes-nmstate
// or make local-cluster-up's simulator); it returns the guest image.
func multusReady(t *testing.T) string {
	t.Helper()
	image := realKubeVirt(t)
	if !serves(t, kindNAD) {
		t.Skip("the cluster does not serve NetworkAttachmentDefinition: make local-cluster-up installs Multus when make cdi-images built it")
	}
	if !serves(t, kindNNCP) {
		t.Skip("the cluster does not serve NodeNetworkConfigurationPolicy: make local-cluster-up runs the NMState simulator with Multus")
	}
	return image
}

// kernelLacks returns the options among want that the running kernel's
// /proc/config.gz does not set (=y or =m); nil when it cannot tell.
func kernelLacks(want ...string) []string {
	out, err := exec.Command("sh", "-c", "zcat /proc/config.gz 2>/dev/null").Output()
	if err != nil || len(out) == 0 {
		return nil
	}
	var missing []string
	for _, opt := range want {
		if !strings.Contains(string(out), "\n"+opt+"=y") && !strings.Contains(string(out), "\n"+opt+"=m") {
			missing = append(missing, opt)
		}
	}
	return missing
}

// userBridgeNAD creates in ns the NetworkAttachmentDefinition "user-net" a
// user would write: the bridge plugin on bridge, no IPAM (the guest's
// address comes from cloud-init). It returns its config.
func userBridgeNAD(t *testing.T, ns, bridge string) string {
	t.Helper()
	config := fmt.Sprintf(`{"cniVersion":"0.3.1","name":"user-net","type":"bridge","bridge":%q}`, bridge)
	create(t, &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "user-net"},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	})
	return config
}

// deleteLinksAtEnd deletes the node's links names when t ends (the bridge
// plugin never deletes a bridge it made; make local-cluster-down would).
func deleteLinksAtEnd(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command("ip", "link", "del", n).Run()
		}
	})
}

// assertUserNADKept: the user's NAD "user-net" is there with config and no
// owner.
func assertUserNADKept(t *testing.T, ns, config string) {
	t.Helper()
	got := &nadv1.NetworkAttachmentDefinition{}
	require.NoError(t, k.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "user-net"}, got), "the user's NAD stays")
	assert.Equal(t, config, got.Spec.Config, "the user's NAD config is untouched")
	assert.Empty(t, got.OwnerReferences, "the user's NAD gets no owner")
}

// deleteAndCheck deletes the Wukong nn and waits until it, its VM and its
// NAD <name>-lan are gone; the user's NAD stays as it was.
func deleteAndCheck(t *testing.T, nn types.NamespacedName, userConfig string) {
	t.Helper()
	require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, nn)))
	eventually(t, 3, func(c *assert.CollectT) {
		assertGone(c, &v1alpha1.Wukong{}, nn)
		assertGone(c, &kubevirtv1.VirtualMachine{}, nn)
		assertGone(c, &nadv1.NetworkAttachmentDefinition{}, types.NamespacedName{Namespace: nn.Namespace, Name: nn.Name + "-lan"})
	}, "Wukong %s and its NAD to be gone", nn)
	assertUserNADKept(t, nn.Namespace, userConfig)
}

// assertBridgeNAD: Wukong's NAD <name>-lan uses the bridge plugin on bridge
// (with vlan, when not 0).
func assertBridgeNAD(t *testing.T, nn types.NamespacedName, bridge string, vlan int) {
	t.Helper()
	own := &nadv1.NetworkAttachmentDefinition{}
	eventually(t, 2, func(c *assert.CollectT) {
		require.NoError(c, k.Get(context.Background(), types.NamespacedName{Namespace: nn.Namespace, Name: nn.Name + "-lan"}, own))
	}, "Wukong's NAD %s-lan", nn.Name)
	var cfg struct {
		Type   string `json:"type"`
		Bridge string `json:"bridge"`
		VLAN   int    `json:"vlan"`
	}
	require.NoError(t, json.Unmarshal([]byte(own.Spec.Config), &cfg), "NAD config %s", own.Spec.Config)
	assert.Equal(t, "bridge", cfg.Type, own.Spec.Config)
	assert.Equal(t, bridge, cfg.Bridge, own.Spec.Config)
	assert.Equal(t, vlan, cfg.VLAN, own.Spec.Config)
}

// statusMACs waits until the Wukong nn reports a MAC for each of nics and
// returns them by NIC name, lower case.
func statusMACs(t *testing.T, nn types.NamespacedName, nics ...string) map[string]string {
	t.Helper()
	macs := map[string]string{}
	eventually(t, 1, func(c *assert.CollectT) {
		for _, n := range getWukong(c, k, nn).Status.Networks {
			macs[n.Name] = strings.ToLower(n.MACAddress)
		}
		for _, nic := range nics {
			assert.NotEmpty(c, macs[nic], "status.networks[%s].macAddress", nic)
		}
	}, "the Wukong's MACs")
	return macs
}

// TestLocalMultusAttachments: real Multus attaches a Wukong's secondary
// NICs to its virt-launcher pod: "lan", a bridge NIC on an administrator's
// NodeBridge (through the NetworkAttachmentDefinition Wukong writes: the
// bridge plugin on that bridge), and "data", through a NAD the user made
// (nadName), used as is. Multus's network-status on the pod lists both
// with the MACs the Wukong reports (KubeVirt passes them in the pod's
// network selection), and on the node (E2E_LOCAL_NODE=1) the bridge plugin
// made both bridges, each with a port. Deleting the Wukong deletes its NAD
// and leaves the user's unchanged. Whether the guest then boots depends on
// the kernel (TestLocalMultusGuestNICs); where it cannot (no dummy links),
// the Wukong's Ready condition carries KubeVirt's cause.
func TestLocalMultusAttachments(t *testing.T) {
	image := multusReady(t)
	// An untagged bridge NIC is an access port of its NodeBridge's native
	// VLAN (bridge CNI "vlan": 1), so the bridge plugin turns on VLAN
	// filtering, which this kernel option provides; without it every
	// launcher pod's sandbox fails ("operation not supported").
	if missing := kernelLacks("CONFIG_BRIDGE_VLAN_FILTERING"); len(missing) > 0 {
		t.Skipf("the node's kernel lacks %v: an untagged bridge NIC is an access port of the native VLAN, which needs a VLAN-filtering bridge", missing)
	}
	ns := newNamespace(t)
	name := "att-" + randSuffix()
	nn := types.NamespacedName{Namespace: ns, Name: name}
	bridge := bridgeName("e2ea")
	declareBridge(t, bridge, []string{"eth1"}, nil, bridgeTenant(t, ns, bridge))
	userBridge := "e2eu" + randSuffix()
	userConfig := userBridgeNAD(t, ns, userBridge)
	onNode := os.Getenv("E2E_LOCAL_NODE") == "1"
	if onNode {
		deleteLinksAtEnd(t, bridge, userBridge)
	}
	create(t, &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.WukongSpec{
			CPU: 1, Memory: resource.MustParse("1Gi"), OSImage: image,
			GuestAgent: &v1alpha1.GuestAgent{Install: ptr.To(false)},
			Networks: []v1alpha1.NetworkSpec{
				{Name: "lan", Type: v1alpha1.NetworkTypeBridge, BridgeName: bridge,
					IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "198.51.100.10/24"}},
				{Name: "data", NADName: "user-net",
					IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "203.0.113.10/24"}},
			},
		},
	})
	assertBridgeNAD(t, nn, bridge, v1alpha1.DefaultNativeVLAN)

	// Multus writes network-status once the pod's sandbox has its networks.
	// On a kernel without dummy links KubeVirt then fails the VMI and makes
	// a new pod after a backoff: any launcher pod of the VM counts.
	var attached []nadv1.NetworkStatus
	var podName string
	eventually(t, 4, func(c *assert.CollectT) {
		pods := &corev1.PodList{}
		require.NoError(c, k.List(context.Background(), pods, client.InNamespace(ns), client.MatchingLabels{kubevirtv1.AppLabel: "virt-launcher"}))
		for _, p := range pods.Items {
			if s := p.Annotations[nadv1.NetworkStatusAnnot]; s != "" {
				attached, podName = nil, p.Name
				require.NoError(c, json.Unmarshal([]byte(s), &attached), "%s: %s", nadv1.NetworkStatusAnnot, s)
				return
			}
		}
		assert.Fail(c, "no launcher pod with Multus's network-status yet")
	}, "Multus to attach the networks of %s", nn)
	byName := map[string]nadv1.NetworkStatus{}
	for _, a := range attached {
		byName[a.Name] = a
	}
	t.Logf("pod %s: Multus network-status %+v", podName, attached)
	lan, data := byName[ns+"/"+name+"-lan"], byName[ns+"/user-net"]
	require.NotEmpty(t, lan.Interface, "Multus attached Wukong's NAD: %+v", attached)
	require.NotEmpty(t, data.Interface, "Multus attached the user's NAD: %+v", attached)
	macs := statusMACs(t, nn, "lan", "data")
	assert.Equal(t, macs["lan"], strings.ToLower(lan.Mac), "the pod's %s has the MAC of status.networks[lan]", lan.Interface)
	assert.Equal(t, macs["data"], strings.ToLower(data.Mac), "the pod's %s has the MAC of status.networks[data]", data.Interface)

	if onNode {
		for _, b := range []string{bridge, userBridge} {
			// stdout only: ip also says "Peer netns reference is invalid" for
			// the veths whose peers are in pods' namespaces.
			out, err := exec.Command("ip", "-o", "link", "show", "master", b).Output()
			require.NoError(t, err, "ip link show master %s: %s", b, out)
			assert.NotEmpty(t, strings.TrimSpace(string(out)), "bridge %s has the pod's port", b)
			t.Logf("node: ports of bridge %s: %s", b, strings.TrimSpace(string(out)))
		}
	}
	if missing := kernelLacks("CONFIG_DUMMY"); len(missing) > 0 {
		// virt-handler fails the VMI (event SyncFailed) and KubeVirt backs
		// off; the Wukong must say why, not just that it is starting.
		t.Logf("this kernel lacks %v: KubeVirt cannot make the bridge binding's dummy link in the pod, so the VM does not run here", missing)
		eventually(t, 2, func(c *assert.CollectT) {
			ready := cond(getWukong(c, k, nn), v1alpha1.ReadyCondition)
			require.NotNil(c, ready)
			assert.Contains(c, ready.Message, "SyncFailed", "Ready names virt-handler's event")
			assert.Contains(c, ready.Message, "failed to configure vmi network", "Ready carries KubeVirt's cause")
		}, "the Wukong's Ready condition to give KubeVirt's cause")
		t.Logf("Ready: %s", cond(getWukong(t, k, nn), v1alpha1.ReadyCondition).Message)
	}
	deleteAndCheck(t, nn, userConfig)
}

// TestLocalMultusGuestNICs: a Wukong with two secondary NICs boots under
// real KubeVirt with real Multus:
//   - "lan", a bridge NIC on an administrator's NodeBridge, VLAN 100, static
//     198.51.100.10/24 with gateway 198.51.100.1 (through the
//     NetworkAttachmentDefinition Wukong writes: bridge plugin, vlan 100);
//   - "data", through a NetworkAttachmentDefinition the user made (nadName),
//     static 203.0.113.10/24; Wukong uses it as is.
//
// In the guest: each NIC is an interface named after it, with the MAC the
// Wukong's status reports and its static address; exactly one IPv4
// default route, through the pod network (the static NIC's gateway must
// not add a second one); the guest agent's addresses reach the Wukong's
// status. On the node (E2E_LOCAL_NODE=1) the test gives VLAN 100 an access
// port (a veth, 198.51.100.1) and the user's bridge 203.0.113.1, and the
// guest pings both. The user's NAD is unchanged at the end and stays after
// the Wukong is deleted.
func TestLocalMultusGuestNICs(t *testing.T) {
	image := multusReady(t)
	if missing := kernelLacks("CONFIG_DUMMY", "CONFIG_BRIDGE_VLAN_FILTERING"); len(missing) > 0 {
		t.Skipf("the node's kernel lacks %v (/proc/config.gz): KubeVirt's bridge binding needs a dummy link in the pod, the bridge plugin's vlan a VLAN-filtering bridge", missing)
	}
	ns := newNamespace(t)
	name := "nics-" + randSuffix()
	nn := types.NamespacedName{Namespace: ns, Name: name}
	g := newGuestAccess(t, ns)
	onNode := os.Getenv("E2E_LOCAL_NODE") == "1"

	// The administrator's bridge, VLAN 100 allowed for this namespace.
	bridge := bridgeName("e2em")
	declareBridge(t, bridge, []string{"eth1"}, []v1alpha1.VLANRange{{Min: 100}}, bridgeTenant(t, ns, bridge))
	userBridge := "e2eu" + randSuffix()
	userConfig := userBridgeNAD(t, ns, userBridge)
	hostPort := "e2ev" + randSuffix() // the node's end of VLAN 100 (a veth)
	if onNode {
		deleteLinksAtEnd(t, hostPort, bridge, userBridge)
	}

	started := time.Now()
	w := g.wukong(ns, name)
	w.Spec.OSImage = image
	w.Spec.Networks = []v1alpha1.NetworkSpec{
		{Name: "lan", Type: v1alpha1.NetworkTypeBridge, BridgeName: bridge, VLANID: 100,
			IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "198.51.100.10/24", Gateway: "198.51.100.1"}},
		{Name: "data", NADName: "user-net",
			IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "203.0.113.10/24"}},
	}
	create(t, w)
	assertBridgeNAD(t, nn, bridge, 100)
	eventually(t, 6, func(c *assert.CollectT) {
		assertRunning(c, getWukong(c, k, nn))
	}, "Wukong %s to be Running", nn)
	t.Logf("Running %.0f s after create", time.Since(started).Seconds())

	pod := launcherPod(t, nn)
	ip := pod.Status.PodIP
	require.NotEmpty(t, ip, "the launcher pod's IP")
	g.waitSSH(t, ip)
	t.Logf("SSH answered %.0f s after create", time.Since(started).Seconds())
	macs := statusMACs(t, nn, "lan", "data")

	// The guest's interfaces: MACs (ip -j link) and IPv4 addresses.
	linkOut, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "ip -j link show")
	require.NoError(t, err, "in the guest: %s", linkOut)
	var linkList []struct {
		Name string `json:"ifname"`
		MAC  string `json:"address"`
	}
	require.NoError(t, json.Unmarshal([]byte(linkOut), &linkList), "ip -j link: %s", linkOut)
	macOf := map[string]string{}
	for _, l := range linkList {
		macOf[l.Name] = strings.ToLower(l.MAC)
	}
	addrOut, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "ip -j -4 addr show")
	require.NoError(t, err, "in the guest: %s", addrOut)
	var addrList []struct {
		Name     string `json:"ifname"`
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	require.NoError(t, json.Unmarshal([]byte(addrOut), &addrList), "ip -j addr: %s", addrOut)
	addrsOf := map[string][]string{}
	for _, l := range addrList {
		for _, a := range l.AddrInfo {
			addrsOf[l.Name] = append(addrsOf[l.Name], fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
		}
	}
	t.Logf("in the guest: MACs %v, IPv4 %v", macOf, addrsOf)
	for nic, want := range map[string]string{"lan": "198.51.100.10/24", "data": "203.0.113.10/24"} {
		assert.Equal(t, macs[nic], macOf[nic], "the guest's interface %s has the MAC the Wukong reports", nic)
		assert.Contains(t, addrsOf[nic], want, "the guest's interface %s has its static address", nic)
	}

	routeOut, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "ip -j -4 route show default")
	require.NoError(t, err, "in the guest: %s", routeOut)
	var routes []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	require.NoError(t, json.Unmarshal([]byte(routeOut), &routes), "ip -j route: %s", routeOut)
	t.Logf("in the guest: IPv4 default routes %+v", routes)
	if assert.Len(t, routes, 1, "exactly one IPv4 default route: %s", routeOut) {
		assert.NotContains(t, []string{"lan", "data"}, routes[0].Dev, "the default route is the pod network's, not a secondary NIC's")
		assert.NotEqual(t, "198.51.100.1", routes[0].Gateway, "the static NIC's gateway is not the default route")
	}

	// The guest agent (the image ships it) reports the static addresses to
	// KubeVirt, and the Wukong shows them.
	eventually(t, 4, func(c *assert.CollectT) {
		got := map[string]v1alpha1.NetworkStatus{}
		for _, n := range getWukong(c, k, nn).Status.Networks {
			got[n.Name] = n
		}
		assert.Equal(c, "198.51.100.10", got["lan"].IPAddress, "status.networks[lan]: %+v", got["lan"])
		assert.Equal(c, "203.0.113.10", got["data"].IPAddress, "status.networks[data]: %+v", got["data"])
		assert.Equal(c, v1alpha1.IPSourceGuestAgent, got["lan"].IPSource, "status.networks[lan].ipSource")
	}, "the guest agent's addresses in the Wukong's status")

	if onNode {
		hostIP := func(args ...string) {
			t.Helper()
			out, err := exec.Command("ip", args...).CombinedOutput()
			require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
		}
		// The node's end of VLAN 100: a veth whose peer is an access port of
		// the bridge (pvid 100, untagged), as the launcher pod's port is.
		peer := hostPort + "p"
		hostIP("link", "add", hostPort, "type", "veth", "peer", "name", peer)
		hostIP("link", "set", peer, "master", bridge)
		out, err := exec.Command("bridge", "vlan", "add", "dev", peer, "vid", "100", "pvid", "untagged").CombinedOutput()
		require.NoError(t, err, "bridge vlan add: %s", out)
		hostIP("link", "set", peer, "up")
		hostIP("addr", "add", "198.51.100.1/24", "dev", hostPort)
		hostIP("link", "set", hostPort, "up")
		hostIP("addr", "add", "203.0.113.1/24", "dev", userBridge)
		hostIP("link", "set", userBridge, "up")
		for _, target := range []string{"198.51.100.1", "203.0.113.1"} {
			out, err := guestSSH(ctxT(t), g.keyFile, g.login, ip, "ping -c 3 -W 5 "+target)
			assert.NoError(t, err, "the guest pings the node's %s: %s", target, out)
		}
		vlans, _ := exec.Command("bridge", "vlan", "show").CombinedOutput()
		t.Logf("node: bridge vlan show: %s", vlans)
	}

	assertUserNADKept(t, ns, userConfig)
	deleteAndCheck(t, nn, userConfig)
}

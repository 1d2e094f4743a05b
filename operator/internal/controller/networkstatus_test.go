package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// networkStatusesOf is status.networks of w with its NICs observed as nics
// and vmi running (nil: no VMI, the VM stopped).
func networkStatusesOf(w *v1alpha1.Wukong, nics network.Observation, vmi *kubevirtv1.VirtualMachineInstance) []v1alpha1.NetworkStatus {
	s := &scope{w: w, net: nics, netDone: true, vm: kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, vmi != nil), vmi)}
	return networkStatuses(s)
}

// TestNetworkStatusIPSource: an address is GuestAgent only when the agent
// reported it; a static address nobody reported is shown as Configured; a
// DHCP NIC the agent has not reported shows no address.
func TestNetworkStatusIPSource(t *testing.T) {
	w := testWukong()
	w.Spec.Networks = []v1alpha1.NetworkSpec{
		{Name: "lan", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "192.168.100.10/24", Gateway: "192.168.100.1"}},
		{Name: "v6", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "2001:db8::5/64"}},
		{Name: "dyn", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeDHCP}},
		{Name: "raw", BridgeName: "br1"},
	}
	nics := network.Observation{NICs: []network.NICObservation{
		{Name: "lan", MAC: "02:00:00:00:00:01"}, {Name: "v6", MAC: "02:00:00:00:00:02"},
		{Name: "dyn", MAC: "02:00:00:00:00:03"}, {Name: "raw", MAC: "02:00:00:00:00:04"},
	}}
	type want struct {
		ip     string
		source v1alpha1.IPSource
	}
	cases := []struct {
		name   string
		ifaces []kubevirtv1.VirtualMachineInstanceNetworkInterface
		want   map[string]want
	}{
		{
			name: "no guest agent: pod address from the pod, static addresses only configured, DHCP unknown",
			ifaces: []kubevirtv1.VirtualMachineInstanceNetworkInterface{
				{Name: "default", IP: "10.244.1.5", IPs: []string{"10.244.1.5"}, InfoSource: "domain"},
				{Name: "lan", MAC: "02:00:00:00:00:01", InfoSource: "domain"},
				{Name: "v6", MAC: "02:00:00:00:00:02", InfoSource: "domain"},
				{Name: "dyn", MAC: "02:00:00:00:00:03", InfoSource: "domain"},
				{Name: "raw", MAC: "02:00:00:00:00:04", InfoSource: "domain"},
			},
			want: map[string]want{
				"default": {"10.244.1.5", v1alpha1.IPSourceNetwork},
				"lan":     {"192.168.100.10", v1alpha1.IPSourceConfigured},
				"v6":      {"2001:db8::5", v1alpha1.IPSourceConfigured},
				"dyn":     {"", ""},
				"raw":     {"", ""},
			},
		},
		{
			name: "guest agent reports every NIC",
			ifaces: []kubevirtv1.VirtualMachineInstanceNetworkInterface{
				{Name: "default", IP: "10.244.1.5", IPs: []string{"10.244.1.5"}, InfoSource: "domain, guest-agent"},
				{Name: "lan", IP: "192.168.100.10", IPs: []string{"192.168.100.10", "fe80::1"}, InfoSource: "domain, guest-agent"},
				{Name: "v6", IP: "2001:db8::5", IPs: []string{"2001:db8::5"}, InfoSource: "domain, guest-agent"},
				{Name: "dyn", IP: "10.9.0.7", IPs: []string{"10.9.0.7"}, InfoSource: "domain, guest-agent, multus-status"},
				{Name: "raw", InfoSource: "domain, guest-agent"},
			},
			want: map[string]want{
				"default": {"10.244.1.5", v1alpha1.IPSourceGuestAgent},
				"lan":     {"192.168.100.10", v1alpha1.IPSourceGuestAgent},
				"v6":      {"2001:db8::5", v1alpha1.IPSourceGuestAgent},
				"dyn":     {"10.9.0.7", v1alpha1.IPSourceGuestAgent},
				"raw":     {"", ""},
			},
		},
		{
			name: "guest agent reports another address than configured: the observed one wins",
			ifaces: []kubevirtv1.VirtualMachineInstanceNetworkInterface{
				{Name: "lan", IP: "192.168.100.99", IPs: []string{"192.168.100.99"}, InfoSource: "domain, guest-agent"},
			},
			want: map[string]want{
				"lan": {"192.168.100.99", v1alpha1.IPSourceGuestAgent},
				"v6":  {"2001:db8::5", v1alpha1.IPSourceConfigured},
				"dyn": {"", ""},
				"raw": {"", ""},
			},
		},
		{
			name: "no VMI (stopped): static addresses shown as configured",
			want: map[string]want{
				"lan": {"192.168.100.10", v1alpha1.IPSourceConfigured},
				"v6":  {"2001:db8::5", v1alpha1.IPSourceConfigured},
				"dyn": {"", ""},
				"raw": {"", ""},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var vmi *kubevirtv1.VirtualMachineInstance
			if tc.ifaces != nil {
				vmi = runningVMI("node-1")
				vmi.Status.Interfaces = tc.ifaces
			}
			got := map[string]want{}
			for _, ns := range networkStatusesOf(w, nics, vmi) {
				got[ns.Name] = want{ns.IPAddress, ns.IPSource}
				if ns.IPSource == v1alpha1.IPSourceConfigured {
					assert.Equal(t, []string{ns.IPAddress}, ns.IPAddresses, ns.Name)
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestNetworkStatusAgentUnsupported: with the VMI condition
// AgentVersionNotSupported (virt-handler v1.9.0 puts its text in the
// reason), a secondary NIC without an address from the agent says why and
// points at spec.guestAgent and the image; a NIC the agent reported, and
// the pod network, do not; without the condition no NIC has a message.
func TestNetworkStatusAgentUnsupported(t *testing.T) {
	w := testWukong()
	w.Spec.Networks = []v1alpha1.NetworkSpec{
		{Name: "lan", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeStatic, Address: "192.168.100.10/24"}},
		{Name: "dyn", BridgeName: "br1", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeDHCP}},
	}
	nics := network.Observation{NICs: []network.NICObservation{{Name: "lan", MAC: "02:00:00:00:00:01"}, {Name: "dyn", MAC: "02:00:00:00:00:03"}}}
	ifaces := []kubevirtv1.VirtualMachineInstanceNetworkInterface{
		{Name: "default", IP: "10.244.1.5", IPs: []string{"10.244.1.5"}, InfoSource: "domain"},
		{Name: "lan", MAC: "02:00:00:00:00:01", InfoSource: "domain, multus-status"},
		{Name: "dyn", MAC: "02:00:00:00:00:03", InfoSource: "domain, multus-status"},
	}
	const reason = "This guest agent doesn't support required basic commands"
	for _, unsupported := range []bool{false, true} {
		vmi := runningVMI("node-1")
		vmi.Status.Interfaces = ifaces
		vmi.Status.Conditions = append(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceCondition{
			Type: kubevirtv1.VirtualMachineInstanceAgentConnected, Status: corev1.ConditionTrue})
		if unsupported {
			vmi.Status.Conditions = append(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceCondition{
				Type: kubevirtv1.VirtualMachineInstanceUnsupportedAgent, Status: corev1.ConditionTrue, Reason: reason})
		}
		got := map[string]string{}
		for _, ns := range networkStatusesOf(w, nics, vmi) {
			got[ns.Name] = ns.Message
		}
		if !unsupported {
			assert.Equal(t, map[string]string{"default": "", "lan": "", "dyn": ""}, got, "a supported agent: no message")
			continue
		}
		assert.Empty(t, got["default"], "the pod network's address comes from the pod")
		for _, n := range []string{"lan", "dyn"} {
			assert.Equal(t, agentUnsupportedMessage(reason), got[n], n)
		}
		assert.Contains(t, got["dyn"], "spec.guestAgent")
		assert.Contains(t, got["dyn"], "spec.osImage")
		assert.Contains(t, got["dyn"], reason)
	}
}

package kubevirt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

func TestInterfaceFromGuestAgent(t *testing.T) {
	vmi := &kubevirtv1.VirtualMachineInstance{Status: kubevirtv1.VirtualMachineInstanceStatus{
		Interfaces: []kubevirtv1.VirtualMachineInstanceNetworkInterface{
			{Name: "default", IP: "10.244.0.7", IPs: []string{"10.244.0.7"}, InfoSource: "domain, guest-agent"},
			{Name: "lan", MAC: "02:aa:bb:cc:dd:01", InfoSource: "domain"},
			{Name: "stor", IP: "192.168.5.9", IPs: []string{"192.168.5.9"}, InfoSource: "domain, guest-agent, multus-status"},
			{Name: "hot", InfoSource: "multus-status"},
			{Name: "ga", IP: "10.0.0.9", IPs: []string{"10.0.0.9"}, InfoSource: "guest-agent"},
			{Name: "old"}, // KubeVirt before infoSource
		},
	}}
	ifs := Observe(&kubevirtv1.VirtualMachine{}, vmi).Interfaces()
	got := map[string]bool{}
	for _, i := range ifs {
		got[i.Name] = i.FromGuestAgent()
	}
	assert.Equal(t, map[string]bool{"default": true, "lan": false, "stor": true, "hot": false, "ga": true, "old": false}, got)
	assert.Equal(t, "domain, guest-agent, multus-status", ifs[2].InfoSource, "copied as KubeVirt wrote it")
}

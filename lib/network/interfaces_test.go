package network_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/network"
)

func TestInterfaces(t *testing.T) {
	networks := []kubevirtv1.Network{
		{Name: "default", NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}},
		{Name: "data", NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: "team-a/vm1-data"}}},
	}
	tests := []struct {
		name   string
		vmi    *kubevirtv1.VirtualMachineInstance
		status []kubevirtv1.VirtualMachineInstanceNetworkInterface
		want   []network.InterfaceStatus
	}{
		{name: "nil VMI", want: nil},
		{name: "no status yet", vmi: &kubevirtv1.VirtualMachineInstance{}, want: nil},
		{
			name: "pod and multus NICs with guest agent data",
			status: []kubevirtv1.VirtualMachineInstanceNetworkInterface{
				{Name: "default", InterfaceName: "eth0", IP: "10.0.0.5", IPs: []string{"10.0.0.5", "fd00::5"}, MAC: "02:00:00:00:00:01"},
				{Name: "data", InterfaceName: "eth1", IP: "192.168.1.9", IPs: []string{"192.168.1.9"}, MAC: "02:aa:bb:cc:dd:ee"},
				{InterfaceName: "docker0", IP: "172.17.0.1"},
			},
			want: []network.InterfaceStatus{
				{Name: "default", InterfaceName: "eth0", IP: "10.0.0.5", IPs: []string{"10.0.0.5", "fd00::5"}, MAC: "02:00:00:00:00:01"},
				{Name: "data", InterfaceName: "eth1", IP: "192.168.1.9", IPs: []string{"192.168.1.9"}, MAC: "02:aa:bb:cc:dd:ee", NAD: "team-a/vm1-data"},
			},
		},
		{
			name: "only IPs reported: IP is the first",
			status: []kubevirtv1.VirtualMachineInstanceNetworkInterface{
				{Name: "data", IPs: []string{"fd00::9", "192.168.1.9"}, MAC: "02:aa:bb:cc:dd:ee"},
			},
			want: []network.InterfaceStatus{
				{Name: "data", IP: "fd00::9", IPs: []string{"fd00::9", "192.168.1.9"}, MAC: "02:aa:bb:cc:dd:ee", NAD: "team-a/vm1-data"},
			},
		},
		{
			name:   "no address yet",
			status: []kubevirtv1.VirtualMachineInstanceNetworkInterface{{Name: "data", MAC: "02:aa:bb:cc:dd:ee"}},
			want:   []network.InterfaceStatus{{Name: "data", MAC: "02:aa:bb:cc:dd:ee", NAD: "team-a/vm1-data"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vmi := tc.vmi
			if vmi == nil && tc.status != nil {
				vmi = &kubevirtv1.VirtualMachineInstance{}
				vmi.Spec.Networks = networks
				vmi.Status.Interfaces = tc.status
			}
			assert.Equal(t, tc.want, network.Interfaces(vmi))
		})
	}
}

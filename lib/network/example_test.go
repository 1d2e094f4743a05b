package network_test

import (
	"fmt"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/network"
)

// Build the NAD for a VLAN-tagged bridge NIC and the stable MAC the VM
// should use for it.
func ExampleBuildNAD() {
	owner := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
	}
	nic := network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "br1", VLAN: 100, PhysicalInterface: "eth1"}

	nad, err := network.BuildNAD(owner, nic)
	if err != nil {
		panic(err)
	}
	conf, _ := libcni.NetworkPluginConfFromBytes([]byte(nad.Spec.Config))
	bridge, _ := network.BridgeFor(nic)

	fmt.Println(nad.Namespace + "/" + nad.Name)
	fmt.Println(nad.Spec.Config)
	fmt.Println(conf.Network.Type, conf.Network.CNIVersion)
	fmt.Println(network.PolicyName(bridge.Name), "trunk:", bridge.Trunk)
	fmt.Println(network.MAC("shop", "web", "data"))
	// Output:
	// shop/web-data
	// {"cniVersion":"1.0.0","name":"web-data","type":"bridge","bridge":"br1","vlan":100,"preserveDefaultVlan":false,"ipam":{}}
	// bridge 1.0.0
	// wukong-br-br1 trunk: true
	// 5e:28:a6:07:1c:cf
}

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
	nic := network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "br1", VLAN: 100}

	nad, err := network.BuildNAD(owner, nic)
	if err != nil {
		panic(err)
	}
	conf, _ := libcni.NetworkPluginConfFromBytes([]byte(nad.Spec.Config))

	fmt.Println(nad.Namespace + "/" + nad.Name)
	fmt.Println(nad.Spec.Config)
	fmt.Println(conf.Network.Type, conf.Network.CNIVersion)
	fmt.Println(network.MAC("shop", "web", "data"))
	// Output:
	// shop/web-data
	// {"cniVersion":"1.0.0","name":"web-data","type":"bridge","bridge":"br1","vlan":100,"preserveDefaultVlan":false,"ipam":{}}
	// bridge 1.0.0
	// 5e:28:a6:07:1c:cf
}

// Build the policy that puts bridge br1 on the nodes labelled net=a, with
// eth1 as its port trunking VLANs 100-199.
func ExampleBuildPolicy() {
	decl := &corev1.Namespace{ // any cluster-scoped object can own the policy
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "network-admin", UID: "0b7c"},
	}
	b := network.Bridge{Name: "br1", Uplinks: []string{"eth1"}, VLANs: []network.VLANRange{{Min: 100, Max: 199}},
		NodeSelector: map[string]string{"net": "a"}}
	p := network.BuildPolicy(decl, b, false)
	state, _ := p.Spec.DesiredState.MarshalJSON()
	fmt.Println(p.Name, p.Spec.NodeSelector)
	fmt.Println(string(state))
	// Output:
	// wukong-br-br1 map[net:a]
	// {"interfaces":[{"bridge":{"options":{"stp":{"enabled":false}},"port":[{"name":"eth1","vlan":{"enable-native":true,"mode":"trunk","tag":1,"trunk-tags":[{"id-range":{"max":199,"min":100}}]}}]},"ipv4":{"enabled":false},"ipv6":{"enabled":false},"name":"br1","state":"up","type":"linux-bridge"}]}
}

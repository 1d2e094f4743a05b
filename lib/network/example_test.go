package network_test

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/network"
)

// myID is the calling controller's identity: field manager, managed-by
// value, label domain and the prefix of the policies it names. The package
// has none of its own.
var myID = apply.Identity{FieldManager: "my-controller", Domain: "vm.example.com", NamePrefix: "mine-"}

// Reconcile writes one NAD per NIC that names none, under the caller's
// identity, and reports each NIC; a NIC naming a NAD that does not exist is
// reported without stopping the others. The fake client stands in for a
// manager's client (its scheme must know Multus' v1).
func ExampleReconcile() {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = nadv1.AddToScheme(scheme)
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "1234"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(owner).Build()

	nics := []network.Attachment{
		{Name: "data", Type: network.TypeBridge, Bridge: "br1", VLAN: 100},
		{Name: "storage", Type: network.TypeBridge, NADName: "storage-net"},
	}
	obs, err := network.Reconcile(ctx, c, myID, owner, nics)
	for _, n := range obs.NICs {
		fmt.Printf("%s %s found=%t reason=%q\n", n.Name, n.NetworkName(), n.Found, n.Reason)
	}
	fmt.Println(obs.Configured(), err)

	nad := &nadv1.NetworkAttachmentDefinition{}
	_ = c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web-data"}, nad)
	fmt.Println(nad.Labels)
	// Output:
	// data shop/web-data found=true reason=""
	// storage shop/storage-net found=false reason="NADNotFound"
	// false NIC "storage": NetworkAttachmentDefinition shop/storage-net not found
	// map[app.kubernetes.io/managed-by:my-controller vm.example.com/nic:data vm.example.com/owner:web]
}

// Build the NAD for a VLAN-tagged bridge NIC and the stable MAC the VM
// should use for it.
func ExampleBuildNAD() {
	owner := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
	}
	nic := network.Attachment{Name: "data", Type: network.TypeBridge, Bridge: "br1", VLAN: 100}

	nad, err := network.BuildNAD(myID, owner, nic)
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
	// {"cniVersion":"1.0.0","name":"web-data","type":"bridge","bridge":"br1","vlan":100,"preserveDefaultVlan":false,"macspoofchk":true,"ipam":{}}
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
	p := network.BuildPolicy(myID, decl, b, false)
	state, _ := p.Spec.DesiredState.MarshalJSON()
	fmt.Println(p.Name, p.Spec.NodeSelector)
	fmt.Println(string(state))
	// Output:
	// mine-br-br1 map[net:a]
	// {"interfaces":[{"bridge":{"options":{"stp":{"enabled":false}},"port":[{"name":"eth1","vlan":{"enable-native":true,"mode":"trunk","tag":1,"trunk-tags":[{"id-range":{"max":199,"min":100}}]}}]},"ipv4":{"enabled":false},"ipv6":{"enabled":false},"name":"br1","state":"up","type":"linux-bridge"}]}
}

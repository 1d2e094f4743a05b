package controller

import (
	"fmt"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Reading the KubeVirt CR tells whether the macvtap binding plugin that
// type: macvlan NICs use is registered. Cluster-wide even when the manager
// watches only some namespaces: the CR is the cluster's one KubeVirt
// installation (in the namespace its installer chose, usually kubevirt),
// cluster configuration rather than a tenant's data.
// +kubebuilder:rbac:groups=kubevirt.io,resources=kubevirts,verbs=get;list;watch

// bindingField: a NIC needs a network binding plugin the KubeVirt CR does
// not register (macvtap for type macvlan, or a user's macvtap NAD). The
// field is spec.networks[i].type for a NIC of type macvlan, else its
// nadName. (The failures row is External: the KubeVirt CR is not watched,
// so the Wukong looks again after StalledRetry.)
func bindingField(e entry, _ *apply.Failure) string {
	if n := e.w.Spec.Networks[e.i]; n.NADName != "" && n.Type != v1alpha1.NetworkTypeMacvlan {
		return nic(e, "nadName")
	}
	return nic(e, "type")
}

// bindingMessage says which plugin the NIC needs and how an administrator
// registers it.
var bindingMessage = typed(func(notRegistered *kubevirt.BindingNotRegisteredError) string {
	where := "the KubeVirt CR does not register it"
	if notRegistered.KubeVirtCRs == 0 {
		where = "no KubeVirt CR (kubevirt.io/v1 KubeVirt) was found"
	}
	return fmt.Sprintf("NIC %s attaches the guest with KubeVirt's %s network binding plugin (macvlan-style: its own MAC on a node interface), "+
		"but %s; a cluster administrator adds spec.configuration.network.binding.%s: {domainAttachmentType: tap} to the KubeVirt CR "+
		"and deploys macvtap-cni (https://kubevirt.io/user-guide/network/net_binding_plugins/macvtap/)",
		notRegistered.NIC, notRegistered.Binding, where, notRegistered.Binding)
})

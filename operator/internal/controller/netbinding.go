package controller

import (
	"errors"
	"fmt"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Reading the KubeVirt CR tells whether the macvtap binding plugin that
// type: macvlan NICs use is registered. Cluster-wide even when the manager
// watches only some namespaces: the CR is the cluster's one KubeVirt
// installation (in the namespace its installer chose, usually kubevirt),
// cluster configuration rather than a tenant's data.
// +kubebuilder:rbac:groups=kubevirt.io,resources=kubevirts,verbs=get;list;watch

// cniProblem: a user NAD (spec.networks[i].nadName) whose CNI plugin
// KubeVirt cannot connect a VM to.
func cniProblem(i int, err error) (problem, bool) {
	var unsupported *network.UnsupportedCNIError
	if !errors.As(err, &unsupported) {
		return problem{}, false
	}
	return problem{v1alpha1.NetworksConfiguredCondition, v1alpha1.ReasonUnsupportedCNI,
		fmt.Sprintf("spec.networks[%d].nadName", i),
		fmt.Sprintf("NetworkAttachmentDefinition %s/%s uses the %s CNI plugin, which KubeVirt cannot connect a VM to "+
			"(the bridge binding needs a pod interface it can enslave to a bridge and hand to the guest; a %s interface is neither); "+
			"name a NetworkAttachmentDefinition of type bridge or macvtap, or use type: macvlan with physicalInterface and no nadName "+
			"(Wukong then writes a macvtap one)",
			unsupported.Namespace, unsupported.Name, unsupported.Type, unsupported.Type), true}, true
}

// bindingProblem: a NIC needs a network binding plugin the KubeVirt CR does
// not register (macvtap for type macvlan, or a user's macvtap NAD). The
// field is spec.networks[i].type for a NIC of type macvlan, else its
// nadName. External: the KubeVirt CR is not watched, so the Wukong looks
// again after StalledRetry.
func bindingProblem(w *v1alpha1.Wukong, err error) (problem, bool) {
	var notRegistered *kubevirt.BindingNotRegisteredError
	if !errors.As(err, &notRegistered) {
		return problem{}, false
	}
	field := "spec.networks"
	for i, n := range w.Spec.Networks {
		if n.Name != notRegistered.NIC {
			continue
		}
		field = fmt.Sprintf("spec.networks[%d].type", i)
		if n.NADName != "" && n.Type != v1alpha1.NetworkTypeMacvlan {
			field = fmt.Sprintf("spec.networks[%d].nadName", i)
		}
	}
	where := "the KubeVirt CR does not register it"
	if notRegistered.KubeVirtCRs == 0 {
		where = "no KubeVirt CR (kubevirt.io/v1 KubeVirt) was found"
	}
	return problem{v1alpha1.NetworksConfiguredCondition, v1alpha1.ReasonBindingNotRegistered, field,
		fmt.Sprintf("NIC %s attaches the guest with KubeVirt's %s network binding plugin (macvlan-style: its own MAC on a node interface), "+
			"but %s; a cluster administrator adds spec.configuration.network.binding.%s: {domainAttachmentType: tap} to the KubeVirt CR "+
			"and deploys macvtap-cni (https://kubevirt.io/user-guide/network/net_binding_plugins/macvtap/)",
			notRegistered.NIC, notRegistered.Binding, where, notRegistered.Binding), true}, true
}

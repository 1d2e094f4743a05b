package kubevirt

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BindingMacvtap binds a NIC with KubeVirt's macvtap network binding plugin
// (interface `binding: {name: macvtap}`): the guest NIC is a macvtap device
// on a node interface, with its own MAC, and needs a NetworkAttachmentDefinition
// of CNI type macvtap (kubevirt/macvtap-cni). It is what KubeVirt offers for
// the "own MAC on the node's network" use of macvlan: the bridge binding
// cannot work over macvlan or ipvlan pod interfaces (KubeVirt user guide,
// "Interfaces and Networks", invalid CNIs for secondary networks; macvtap
// binding: https://kubevirt.io/user-guide/network/net_binding_plugins/macvtap/).
const BindingMacvtap Binding = "macvtap"

// MacvtapBindingName is the name under which the macvtap binding plugin is
// registered in the KubeVirt CR (spec.configuration.network.binding.macvtap,
// domainAttachmentType tap) and referenced by interfaces; the name the
// KubeVirt user guide uses.
const MacvtapBindingName = "macvtap"

const errListKubeVirt = "cannot list KubeVirt CRs"

// BindingNotRegisteredError: a NIC uses a network binding plugin that no
// KubeVirt CR (kubevirt.io/v1 KubeVirt) registers under
// spec.configuration.network.binding. KubeVirt would accept the VM but
// virt-controller could not render its launcher pod ("unable to find the
// network binding plugin ... in Kubevirt configuration"), so Reconcile
// writes nothing. KubeVirtCRs is how many KubeVirt CRs were found.
type BindingNotRegisteredError struct {
	NIC         string
	Binding     string
	KubeVirtCRs int
}

func (e *BindingNotRegisteredError) Error() string {
	where := "the KubeVirt CR does not register it"
	if e.KubeVirtCRs == 0 {
		where = "no KubeVirt CR (kubevirt.io/v1 KubeVirt) was found"
	}
	return fmt.Sprintf("NIC %q needs KubeVirt's %s network binding plugin, but %s; a cluster administrator adds "+
		"spec.configuration.network.binding.%s: {domainAttachmentType: tap} to the KubeVirt CR and deploys macvtap-cni "+
		"(https://kubevirt.io/user-guide/network/net_binding_plugins/macvtap/)", e.NIC, e.Binding, where, e.Binding)
}

// RegisteredBindings lists the network binding plugins registered in the
// cluster's KubeVirt CRs (spec.configuration.network.binding keys, sorted)
// and how many KubeVirt CRs exist. A cluster that does not serve the
// KubeVirt kind has none (nil, 0, nil). c needs list on kubevirts.kubevirt.io
// in every namespace (the CR usually lives in namespace kubevirt).
func RegisteredBindings(ctx context.Context, c client.Reader) ([]string, int, error) {
	list := &kubevirtv1.KubeVirtList{}
	if err := c.List(ctx, list); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("%s: %w", errListKubeVirt, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, kv := range list.Items {
		if kv.DeletionTimestamp != nil || kv.Spec.Configuration.NetworkConfiguration == nil {
			continue
		}
		for name := range kv.Spec.Configuration.NetworkConfiguration.Binding {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, len(list.Items), nil
}

// checkBindings returns a *BindingNotRegisteredError for the first NIC of m
// whose binding plugin no KubeVirt CR registers. It reads the KubeVirt CRs
// only when a NIC uses a plugin binding.
func checkBindings(ctx context.Context, c client.Reader, m Machine) error {
	first := slices.IndexFunc(m.NICs, func(n NIC) bool { return n.Binding == BindingMacvtap })
	if first < 0 {
		return nil
	}
	registered, crs, err := RegisteredBindings(ctx, c)
	if err != nil {
		return err
	}
	if !slices.Contains(registered, MacvtapBindingName) {
		return &BindingNotRegisteredError{NIC: m.NICs[first].Name, Binding: MacvtapBindingName, KubeVirtCRs: crs}
	}
	return nil
}

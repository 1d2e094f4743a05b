package e2e_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestStalledUnsupportedCNI: a user NAD whose CNI plugin is ipvlan (which
// no KubeVirt binding can use) stalls the Wukong naming
// spec.networks[0].nadName, with no VM; once the NAD is a bridge one the
// Wukong runs, with the bridge binding.
func TestStalledUnsupportedCNI(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD)
	needSecondaryNICGuests(t)
	t.Parallel()
	ns := newNamespace(t)
	nad := userNAD(ns, "corp")
	nad.Spec.Config = `{"cniVersion":"0.3.1","name":"corp","plugins":[{"type":"ipvlan","mode":"l2","master":"eth1","ipam":{"type":"whereabouts","range":"10.1.0.0/24"}}]}`
	create(t, nad)
	w := newWukong(ns, "ipvlan")
	w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", NADName: "corp"}}
	create(t, w)
	waitStalled(t, key(w), "spec.networks[0].nadName", v1alpha1.ReasonUnsupportedCNI)

	live := userNAD(ns, "corp")
	require.NoError(t, k.Get(ctxT(t), key(live), live))
	live.Spec.Config = userNAD(ns, "corp").Spec.Config
	require.NoError(t, k.Update(ctxT(t), live))
	poke(t, key(w)) // user NADs are not watched
	waitRunning(t, key(w))
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), key(w), vm))
	ifs := vm.Spec.Template.Spec.Domain.Devices.Interfaces
	require.Len(t, ifs, 2)
	assert.NotNil(t, ifs[1].Bridge, "a bridge NAD gets the bridge binding")
}

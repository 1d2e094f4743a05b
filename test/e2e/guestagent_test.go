package e2e_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// TestGuestAgentNotSupported (issue #33, item 8): after a KubeVirt upgrade
// the guest's agent is connected but KubeVirt does not support it (the
// sandbox plays virt-handler v1.9.0: AgentVersionNotSupported=True with
// "This guest agent doesn't support required basic commands" when the
// agent lacks guest-network-get-interfaces, and no addresses from the
// guest). The NIC's status says why and points at spec.guestAgent and the
// image instead of losing its address silently; a supported agent clears
// the message.
func TestGuestAgentNotSupported(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD)
	if !inSandbox {
		t.Skip("the sandbox plays an old guest agent (sandbox.GuestAgentCommandsAnnotation); a real cluster needs an old image")
	}
	t.Parallel()
	ns := newNamespace(t)
	create(t, userNAD(ns, "lan-net"))
	w := newWukong(ns, "oldagent")
	w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", NADName: "lan-net", IPConfig: &v1alpha1.IPConfig{Mode: v1alpha1.IPModeDHCP}}}
	create(t, w)

	eventually(t, 1, func(c *assert.CollectT) {
		lan := networkStatus(getWukong(c, k, key(w)), "lan")
		if assert.NotNil(c, lan) {
			assert.Equal(c, v1alpha1.IPSourceGuestAgent, lan.IPSource, "a supported agent reports the lease")
			assert.Empty(c, lan.Message)
		}
	}, "the lease reported by the guest agent")

	// An agent without guest-network-get-interfaces (an old one).
	basic := []string{"guest-ping", "guest-get-time", "guest-info", "guest-shutdown",
		"guest-get-fsinfo", "guest-get-host-name", "guest-get-users", "guest-get-timezone", "guest-get-osinfo"}
	annotateVM(t, key(w), sandbox.GuestAgentCommandsAnnotation, strings.Join(basic, ","))
	eventually(t, 1, func(c *assert.CollectT) {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(ctxT(t), key(w), vmi))
		found := false
		for _, cd := range vmi.Status.Conditions {
			if cd.Type == kubevirtv1.VirtualMachineInstanceUnsupportedAgent {
				found = true
				assert.Equal(c, "This guest agent doesn't support required basic commands", cd.Reason)
			}
		}
		assert.True(c, found, "virt-handler's AgentVersionNotSupported condition")
		lan := networkStatus(getWukong(c, k, key(w)), "lan")
		if assert.NotNil(c, lan) {
			assert.Empty(c, lan.IPAddress, "no address from the guest")
			assert.Contains(c, lan.Message, "AgentVersionNotSupported: This guest agent doesn't support required basic commands")
			assert.Contains(c, lan.Message, "spec.guestAgent")
			assert.Contains(c, lan.Message, "spec.osImage")
		}
	}, "the NIC status saying why its address is gone")

	deleteVMAnnotation(t, key(w), sandbox.GuestAgentCommandsAnnotation)
	eventually(t, 1, func(c *assert.CollectT) {
		lan := networkStatus(getWukong(c, k, key(w)), "lan")
		if assert.NotNil(c, lan) {
			assert.Equal(c, v1alpha1.IPSourceGuestAgent, lan.IPSource, "the updated agent reports the lease again")
			assert.Empty(c, lan.Message)
		}
	}, "the message gone with a supported agent")
}

// annotateVM sets an annotation on the Wukong's VirtualMachine (a merge
// patch: the operator's fields stay the operator's).
func annotateVM(t *testing.T, nn client.ObjectKey, name, value string) {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	eventually(t, 1, func(c *assert.CollectT) {
		require.NoError(c, k.Get(ctxT(t), nn, vm))
	}, "VirtualMachine %s", nn)
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"`+name+`":"`+value+`"}}}`))
	require.NoError(t, k.Patch(ctxT(t), vm, patch))
}

// deleteVMAnnotation removes an annotation from the Wukong's VirtualMachine.
func deleteVMAnnotation(t *testing.T, nn client.ObjectKey, name string) {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: nn.Namespace, Name: nn.Name}}
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"`+name+`":null}}}`))
	require.NoError(t, k.Patch(ctxT(t), vm, patch))
}

package e2e_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// stateChangeRequest asks KubeVirt to start or stop the VM the way virt-api's
// start and stop subresources do for runStrategy Manual (`virtctl start|stop`
// on a Manual VM): a request appended to the VM's status.stateChangeRequests
// (kubevirt.io/kubevirt pkg/virt-api/rest; the stop request names the VMI's
// UID). The sandbox serves no subresource API, so the test writes what
// virt-api would.
func stateChangeRequest(t *testing.T, nn types.NamespacedName, action kubevirtv1.StateChangeRequestAction) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vm := &kubevirtv1.VirtualMachine{}
		if err := k.Get(context.Background(), nn, vm); err != nil {
			return err
		}
		r := kubevirtv1.VirtualMachineStateChangeRequest{Action: action}
		if action == kubevirtv1.StopRequest {
			vmi := &kubevirtv1.VirtualMachineInstance{}
			if err := k.Get(context.Background(), nn, vmi); err != nil {
				return err
			}
			r.UID = &vmi.UID
		}
		vm.Status.StateChangeRequests = append(vm.Status.StateChangeRequests, r)
		return k.Status().Update(context.Background(), vm)
	}))
}

// TestManualRunStrategy: a Wukong with runStrategy Manual is Stopped until
// the user starts its VM (`virtctl start`), Running after, and Stopped again
// after `virtctl stop`; the operator leaves the VM's strategy Manual
// throughout.
func TestManualRunStrategy(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	if !inSandbox {
		t.Skip("writes the state change requests virt-api's subresources write; on a real cluster use virtctl")
	}
	t.Parallel()
	ns := newNamespace(t)
	w := newWukong(ns, "manual")
	w.Spec.CPU = 1
	w.Spec.StartStrategy = &v1alpha1.StartStrategy{RunStrategy: string(kubevirtv1.RunStrategyManual)}
	create(t, w)
	nn := key(w)
	eventually(t, 1, func(c *assert.CollectT) {
		assertStopped(c, getWukong(c, k, nn))
		assertVM(c, nn, kubevirtv1.RunStrategyManual, 1)
	}, "the Manual Wukong to be Stopped")

	stateChangeRequest(t, nn, kubevirtv1.StartRequest)
	waitRunning(t, nn)
	assertVM(t, nn, kubevirtv1.RunStrategyManual, 1)

	stateChangeRequest(t, nn, kubevirtv1.StopRequest)
	eventually(t, 1, func(c *assert.CollectT) {
		assertStopped(c, getWukong(c, k, nn))
		assertVM(c, nn, kubevirtv1.RunStrategyManual, 1)
	}, "the Manual Wukong to be Stopped after virtctl stop")
}

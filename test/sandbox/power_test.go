package sandbox_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// request adds a state change request to the VM's status, as virt-api's
// start, stop and restart subresources do (`virtctl start|stop|restart`).
func request(t *testing.T, v *kubevirtv1.VirtualMachine, action kubevirtv1.StateChangeRequestAction, uid types.UID) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := sb.Client.Get(ctx, client.ObjectKeyFromObject(v), v); err != nil {
			return err
		}
		r := kubevirtv1.VirtualMachineStateChangeRequest{Action: action}
		if uid != "" {
			r.UID = ptr.To(uid)
		}
		v.Status.StateChangeRequests = append(v.Status.StateChangeRequests, r)
		return sb.Client.Status().Update(ctx, v)
	}))
}

func vmiOf(t *testing.T, v *kubevirtv1.VirtualMachine) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(v), vmi))
	return vmi
}

// TestKubeVirtManualRunStrategy: a Manual VM does not start by itself; a
// start request starts it, a stop request for its VMI stops it, and each
// request is removed once done (virt-controller's syncRunStrategy and
// isTrimFirstChangeRequestNeeded).
func TestKubeVirtManualRunStrategy(t *testing.T) {
	ns := namespace(t)
	v := vm(ns, "manual", func(v *kubevirtv1.VirtualMachine) { v.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyManual) })
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool {
		return v.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusStopped
	}, "Manual VM not Stopped")
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: v.Name, Namespace: ns}}
	require.True(t, apierrors.IsNotFound(sb.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi)), "a Manual VM started by itself")

	request(t, v, kubevirtv1.StartRequest, "")
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool { return vmRunning(v) && len(v.Status.StateChangeRequests) == 0 },
		"Manual VM not running after a start request, or the request not removed")

	request(t, v, kubevirtv1.StopRequest, vmiOf(t, v).UID)
	gone(t, vmi)
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool {
		return v.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusStopped && len(v.Status.StateChangeRequests) == 0
	}, "Manual VM not Stopped after a stop request, or the request not removed")
}

// TestKubeVirtRestartRequest: a stop request for the running VMI followed by
// a start request (virt-api's restart) replaces the VMI of an Always VM.
func TestKubeVirtRestartRequest(t *testing.T) {
	ns := namespace(t)
	v := vm(ns, "restart")
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, vmRunning, "VM not running")
	first := vmiOf(t, v).UID
	request(t, v, kubevirtv1.StopRequest, first)
	require.Eventually(t, func() bool {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		err := sb.Client.Get(ctx, client.ObjectKeyFromObject(v), vmi)
		return err == nil && vmi.UID != first && vmi.Status.Phase == kubevirtv1.Running
	}, timeout, tick, "the VMI was not replaced")
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool { return vmRunning(v) && len(v.Status.StateChangeRequests) == 0 },
		"VM not running again after the restart, or the request not removed")
}

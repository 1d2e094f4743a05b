package e2e_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/test/sandbox"
)

// A machine KubeVirt or the kubelet keeps failing to start says why in its
// Wukong's Ready condition (and Stalled or Reconciling), not only that it
// does not start: the cause is in Events only (issue #21, seen on a real
// node with KubeVirt v1.9.0 and Multus v4.2.3).

// TestStartFailureCNIPluginMissing: a NIC through a NetworkAttachmentDefinition
// whose CNI plugin the nodes lack (cnv-bridge, OpenShift's name for bridge):
// the kubelet fails the launcher pod's sandbox for ever (FailedCreatePodSandBox)
// and the VMI stays Scheduling. The Wukong stays Creating and Reconciling,
// with Multus' error in Ready. Real Multus says the same, so the test also
// runs against a real cluster (with the chart's image built from this tree).
// Where the default class binds on first consumer (make local-cluster-up's
// local-path), the pod that fails is KubeVirt's temporary pod for the
// blank disk's claim: the VMI stays Pending (Provisioning), the Wukong's
// Ready says VolumesNotReady, and the same cause follows
// (kubevirt.EventSubjects).
func TestStartFailureCNIPluginMissing(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD)
	t.Parallel()
	reason, vmiPhase := "Starting", kubevirtv1.Scheduling
	if bindsOnFirstConsumer(t, "") {
		reason, vmiPhase = "VolumesNotReady", kubevirtv1.Pending
	}
	ns := newNamespace(t)
	nad := userNAD(ns, "corp-lan")
	nad.Spec.Config = `{"cniVersion":"0.3.1","name":"corp-lan","type":"cnv-bridge","bridge":"br-corp"}`
	create(t, nad)
	w := newWukong(ns, "nocni")
	w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", NADName: "corp-lan"}}
	create(t, w)

	// Events are read 30 s after the VMI was created (kubevirt.StartGrace).
	eventually(t, 2, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		ready := cond(got, v1alpha1.ReadyCondition)
		if !assert.NotNil(c, ready) {
			return
		}
		assert.Equal(c, metav1.ConditionFalse, ready.Status)
		assert.Equal(c, reason, ready.Reason)
		assert.Contains(c, ready.Message, "FailedCreatePodSandBox (kubelet on Pod virt-launcher-nocni-")
		// The CNI bin dir is the cluster's (/opt/cni/bin in the sandbox and on
		// the local cluster).
		assert.Contains(c, ready.Message, `error adding container to network "corp-lan": failed to find plugin "cnv-bridge" in path [`)
		assert.NotContains(c, ready.Message, "StdinData", "the request dump is trimmed")
		assert.LessOrEqual(c, len(ready.Message), 1024)
		assert.Equal(c, v1alpha1.PhaseCreating, got.Status.Phase)
		if rec := cond(got, v1alpha1.ReconcilingCondition); assert.NotNil(c, rec) {
			assert.Equal(c, ready.Message, rec.Message)
		}
	}, "the Wukong's Ready to carry the kubelet's FailedCreatePodSandBox cause")

	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, k.Get(ctxT(t), key(w), vmi))
	assert.Equal(t, vmiPhase, vmi.Status.Phase, "the pod never runs")
}

// TestStartFailureCrashLoop: a bridge-bound NIC on a node whose kernel
// cannot add a dummy link: virt-handler fails each VMI (SyncFailed), KubeVirt
// counts start failures and backs off (CrashLoopBackOff, no message in the VM).
// The Wukong is Error and Stalled with virt-handler's error in Ready. It adds
// its own tainted node, so it runs alone (not parallel) and only in the
// sandbox.
func TestStartFailureCrashLoop(t *testing.T) {
	requireKinds(t, kindVirtualMachine, kindNAD)
	if !inSandbox {
		t.Skip("plays a node without dummy links: sandbox only (the local real cluster shows it with test/e2e/local_*)")
	}
	ns := newNamespace(t)
	node := "e2e-nodummy-" + randSuffix()
	taint := corev1.Taint{Key: "e2e.novasphere.dev/nodummy", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	require.NoError(t, sandbox.AddNode(ctxT(t), k, node, "172.18.1.9", map[string]string{sandbox.NodeKernelWithout: "dummy"}, []corev1.Taint{taint}))
	t.Cleanup(func() {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
		if err := k.Delete(context.Background(), n); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting node %s: %v", node, err)
		}
	})
	create(t, userNAD(ns, "lan-net"))
	w := newWukong(ns, "crash")
	w.Spec.Networks = []v1alpha1.NetworkSpec{{Name: "lan", NADName: "lan-net"}}
	w.Spec.HighAvailability = &v1alpha1.HighAvailability{
		NodeSelector: map[string]string{corev1.LabelHostname: node},
		Tolerations:  []corev1.Toleration{{Key: taint.Key, Operator: corev1.TolerationOpEqual, Value: taint.Value, Effect: taint.Effect}},
	}
	create(t, w)

	eventually(t, 2, func(c *assert.CollectT) {
		got := getWukong(c, k, key(w))
		ready := cond(got, v1alpha1.ReadyCondition)
		if !assert.NotNil(c, ready) {
			return
		}
		assert.Equal(c, "CrashLoopBackOff", ready.Reason)
		assert.Contains(c, ready.Message, "the machine keeps failing to start")
		assert.Contains(c, ready.Message, "SyncFailed (virt-handler on VirtualMachineInstance crash): "+sandbox.MessageLinkAddNotSupported)
		assert.Equal(c, v1alpha1.PhaseError, got.Status.Phase)
		if st := cond(got, v1alpha1.StalledCondition); assert.NotNil(c, st) {
			assert.Equal(c, ready.Message, st.Message)
		}
	}, "the Wukong's Ready to carry virt-handler's SyncFailed cause")

	// What KubeVirt itself shows: a crash loop, no message.
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: w.Name}, vm))
	require.NotNil(t, vm.Status.StartFailure)
	assert.GreaterOrEqual(t, vm.Status.StartFailure.ConsecutiveFailCount, 1)
	for _, c := range vm.Status.Conditions {
		assert.NotEqual(t, kubevirtv1.VirtualMachineFailure, c.Type, "KubeVirt sets no Failure condition for a crash loop")
	}
}

package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// eventReader serves events like the API server's field selectors
// involvedObject.uid and type, and counts the Lists.
func eventReader(t *testing.T, lists *int, events ...corev1.Event) client.Reader {
	t.Helper()
	scheme := testScheme(t, corev1.AddToScheme)
	objs := make([]client.Object, 0, len(events))
	for i := range events {
		objs = append(objs, &events[i])
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&corev1.Event{}, "involvedObject.uid", func(o client.Object) []string {
			return []string{string(o.(*corev1.Event).InvolvedObject.UID)}
		}).
		WithIndex(&corev1.Event{}, "type", func(o client.Object) []string { return []string{o.(*corev1.Event).Type} }).
		WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, l client.ObjectList, opts ...client.ListOption) error {
			*lists++
			return c.List(ctx, l, opts...)
		}}).
		Build()
}

func warning(name string, uid types.UID, kind, reason, source, msg string) corev1.Event {
	return corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "ns", Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: string(uid), UID: uid, Namespace: "ns"},
		Type:           corev1.EventTypeWarning, Reason: reason, Message: msg,
		Source:        corev1.EventSource{Component: source},
		LastTimestamp: metav1.Now(),
	}
}

// TestObserveCause: a machine stuck starting gets the Warning Event that
// says why in Ready and Stalled or Reconciling (issue #21, as real KubeVirt
// v1.9.0 and Multus v4.2.3 left them); a healthy one reads no Event.
func TestObserveCause(t *testing.T) {
	always := kubevirtv1.RunStrategyAlways
	const syncFailed = "failed to configure vmi network: setup failed, err: Critical network error: LinkAdd: operation not supported"
	const sandbox = `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "2fca9740a41bc96cfe48340fa5fa3366811eab90205d1cd6f071f4e4156f7bbe": plugin type="multus-shim" name="multus-cni-network" failed (add): CmdAdd (shim): CNI request failed with status 400: 'ContainerID:"2fca9740a41bc96cfe48340fa5fa3366811eab90205d1cd6f071f4e4156f7bbe" Netns:"/var/run/netns/cni-f066298d" IfName:"eth0" Args:"K8S_POD_NAMESPACE=ns" Path:"" ERRORED: error configuring pod [ns/virt-launcher-vm1-qvn2m] networking: [ns/virt-launcher-vm1-qvn2m/pod-uid:vm1-lan]: error adding container to network "vm1-lan": failed to create bridge "br1": could not add "br1": operation not supported` + "\n" + `': StdinData: {"binDir":"/opt/cni/bin"}`

	crashLoop := vmWith(always, false)
	crashLoop.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusCrashLoopBackOff
	crashLoop.Status.StartFailure = &kubevirtv1.VirtualMachineStartFailure{ConsecutiveFailCount: 2, LastFailedVMIUID: "failed-vmi"}
	starting := vmWith(always, false)
	starting.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStarting
	scheduling := func(age time.Duration) *kubevirtv1.VirtualMachineInstance {
		vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vm1", UID: "vmi-uid",
			CreationTimestamp: metav1.NewTime(time.Now().Add(-age))}}
		vmi.Status.Phase = kubevirtv1.Scheduling
		vmi.Status.ActivePods = map[types.UID]string{"pod-uid": "node-1"}
		return vmi
	}
	events := []corev1.Event{
		warning("e1", "failed-vmi", "VirtualMachineInstance", "SyncFailed", "virt-handler", syncFailed),
		warning("e2", "pod-uid", "Pod", "FailedCreatePodSandBox", "kubelet", sandbox),
	}
	tests := []struct {
		name        string
		vm          *kubevirtv1.VirtualMachine
		vmi         *kubevirtv1.VirtualMachineInstance
		phase       v1alpha1.Phase
		ready       string // reason
		msgHas      []string
		progress    string // the kstatus condition set besides Ready
		lists       int
		requeueLess time.Duration // > 0: a timed requeue at most this far
	}{
		{name: "crash loop: virt-handler's SyncFailed of the last failed VMI", vm: crashLoop,
			phase: v1alpha1.PhaseError, ready: kubevirt.ReasonCrashLoopBackOff, progress: v1alpha1.StalledCondition, lists: 1,
			msgHas: []string{"the machine keeps failing to start (2 failed start(s))", "SyncFailed (virt-handler", "LinkAdd: operation not supported"}},
		{name: "launcher pod's sandbox failing past the grace: the kubelet's FailedCreatePodSandBox", vm: starting, vmi: scheduling(time.Minute),
			phase: v1alpha1.PhaseCreating, ready: kubevirt.ReasonStarting, progress: v1alpha1.ReconcilingCondition, lists: 2, requeueLess: kubevirt.CauseRecheck,
			msgHas: []string{"the VirtualMachineInstance is Scheduling: FailedCreatePodSandBox (kubelet on Pod pod-uid)",
				`error adding container to network "vm1-lan": failed to create bridge "br1": could not add "br1": operation not supported`}},
		{name: "starting within the grace: no read, a look when it ends", vm: starting, vmi: scheduling(5 * time.Second),
			phase: v1alpha1.PhaseCreating, ready: kubevirt.ReasonStarting, progress: v1alpha1.ReconcilingCondition, requeueLess: kubevirt.StartGrace - 5*time.Second,
			msgHas: []string{"the VirtualMachineInstance is Scheduling"}},
		{name: "running: no read", vm: vmWith(always, true), vmi: runningVMI("node-1"),
			phase: v1alpha1.PhaseRunning, ready: v1alpha1.ReasonRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lists := 0
			r := &WukongReconciler{APIReader: eventReader(t, &lists, events...)}
			w := testWukong()
			s := &scope{w: w, net: netOK, netDone: true, vols: bound, volsDone: true, vm: kubevirt.Observe(tt.vm, tt.vmi)}
			require.NoError(t, r.observeCause(context.Background(), s))
			assert.Equal(t, tt.lists, lists, "Event Lists")
			if tt.requeueLess > 0 {
				assert.Positive(t, s.requeueAfter)
				assert.LessOrEqual(t, s.requeueAfter, tt.requeueLess)
			} else {
				assert.Zero(t, s.requeueAfter)
			}
			computeStatus(w, s)
			o := w
			assert.Equal(t, tt.phase, w.Status.Phase)
			ready := conditions.Get(o, v1alpha1.ReadyCondition)
			require.NotNil(t, ready)
			assert.Equal(t, tt.ready, ready.Reason)
			for _, sub := range tt.msgHas {
				assert.Contains(t, ready.Message, sub)
			}
			assert.LessOrEqual(t, len(ready.Message), 1024)
			if tt.progress != "" {
				c := conditions.Get(o, tt.progress)
				require.NotNil(t, c, tt.progress)
				assert.Equal(t, ready.Message, c.Message, "%s repeats Ready", tt.progress)
			}
			assert.NoError(t, conditions.Check(o))
		})
	}
}

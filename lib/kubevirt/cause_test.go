package kubevirt

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Messages as real KubeVirt v1.9.0, Multus v4.2.3 (thick) and the CNI bridge
// plugin v1.10.0 left them on a node whose kernel lacks dummy links and
// bridge VLAN filtering (issue #21).
const (
	realSyncFailed   = "failed to configure vmi network: setup failed, err: Critical network error: LinkAdd: operation not supported"
	realSandbox      = `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "2fca9740a41bc96cfe48340fa5fa3366811eab90205d1cd6f071f4e4156f7bbe": plugin type="multus-shim" name="multus-cni-network" failed (add): CmdAdd (shim): CNI request failed with status 400: 'ContainerID:"2fca9740a41bc96cfe48340fa5fa3366811eab90205d1cd6f071f4e4156f7bbe" Netns:"/var/run/netns/cni-f066298d-f92f-73f9-6b11-55711aa8ab18" IfName:"eth0" Args:"K8S_POD_INFRA_CONTAINER_ID=2fca9740a41bc96cfe48340fa5fa3366811eab90205d1cd6f071f4e4156f7bbe;K8S_POD_UID=286fb16f-fba8-4c96-805c-31d83a3cd573;IgnoreUnknown=1;K8S_POD_NAMESPACE=dbg;K8S_POD_NAME=virt-launcher-dbg3-qvn2m" Path:"" ERRORED: error configuring pod [dbg/virt-launcher-dbg3-qvn2m] networking: [dbg/virt-launcher-dbg3-qvn2m/286fb16f-fba8-4c96-805c-31d83a3cd573:dbg3-lan]: error adding container to network "dbg3-lan": failed to create bridge "dbgvl": could not add "dbgvl": operation not supported` + "\n" + `': StdinData: {"binDir":"/opt/cni/bin","clusterNetwork":"/host/etc/cni/net.d/10-wukong-local.conflist","cniVersion":"0.3.1","logLevel":"verbose","logToStderr":true,"name":"multus-cni-network","type":"multus-shim"}`
	realSandboxCause = `error configuring pod [dbg/virt-launcher-dbg3-qvn2m] networking: [dbg/virt-launcher-dbg3-qvn2m/286fb16f-fba8-4c96-805c-31d83a3cd573:dbg3-lan]: error adding container to network "dbg3-lan": failed to create bridge "dbgvl": could not add "dbgvl": operation not supported`
)

func TestTrimEventMessage(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	tests := []struct {
		name, in, want string
	}{
		{name: "Multus thick: the error between ERRORED and StdinData", in: realSandbox, want: realSandboxCause},
		{name: "virt-handler SyncFailed is kept whole", in: realSyncFailed, want: realSyncFailed},
		{name: "Multus thin: after the last failed (add)",
			in:   `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "` + strings.Repeat("ab", 32) + `": plugin type="multus" name="multus-cni-network" failed (add): [ns/p/uid:net1]: error adding container to network "net1": failed to find plugin "nosuch" in path [/opt/cni/bin]`,
			want: `[ns/p/uid:net1]: error adding container to network "net1": failed to find plugin "nosuch" in path [/opt/cni/bin]`},
		{name: "other sandbox error: prefixes go, the changing ID becomes <id>",
			in:   `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to create containerd task for "` + strings.Repeat("0f", 32) + `": no space left on device`,
			want: `failed to create containerd task for "<id>": no space left on device`},
		{name: "white space runs become one space", in: "a\n  b\t c\n", want: "a b c"},
		{name: "bounded on a rune boundary", in: long, want: strings.Repeat("é", (MaxCauseMessage-len("…"))/2) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TrimEventMessage(tt.in)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, len(got), MaxCauseMessage)
			assert.True(t, utf8.ValidString(got))
		})
	}
}

func event(typ, reason, source, kind, name, msg string, last time.Time) corev1.Event {
	return corev1.Event{
		Type: typ, Reason: reason, Message: msg, Source: corev1.EventSource{Component: source},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: name},
		LastTimestamp:  metav1.NewTime(last),
	}
}

func TestPickCause(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	sync := event(corev1.EventTypeWarning, "SyncFailed", "virt-handler", "VirtualMachineInstance", "vm1", realSyncFailed, t0)
	sandbox := event(corev1.EventTypeWarning, "FailedCreatePodSandBox", "kubelet", "Pod", "virt-launcher-dbg3-qvn2m", realSandbox, t0.Add(time.Minute))
	normal := event(corev1.EventTypeNormal, "Started", "virt-handler", "VirtualMachineInstance", "vm1", "started", t0.Add(time.Hour))
	series := event(corev1.EventTypeWarning, "FailedMount", "kubelet", "Pod", "p", "MountVolume.SetUp failed", t0)
	series.Series = &corev1.EventSeries{Count: 5, LastObservedTime: metav1.NewMicroTime(t0.Add(2 * time.Minute))}
	crashed := event(corev1.EventTypeWarning, "Stopped", "virt-handler", "VirtualMachineInstance", "vm1", "The VirtualMachineInstance crashed.", t0)
	reporting := corev1.Event{Type: corev1.EventTypeWarning, Reason: "SyncFailed", Message: "x", ReportingController: "virt-handler", EventTime: metav1.NewMicroTime(t0)}

	tests := []struct {
		name   string
		events []corev1.Event
		want   Cause
	}{
		{name: "none"},
		{name: "only Normal events", events: []corev1.Event{normal}},
		{name: "virt-handler SyncFailed", events: []corev1.Event{normal, sync},
			want: Cause{Reason: "SyncFailed", Source: "virt-handler", Kind: "VirtualMachineInstance", Name: "vm1", Message: realSyncFailed}},
		{name: "virt-handler's Stopped (crashed) in the same second does not hide SyncFailed", events: []corev1.Event{crashed, sync},
			want: Cause{Reason: "SyncFailed", Source: "virt-handler", Kind: "VirtualMachineInstance", Name: "vm1", Message: realSyncFailed}},
		{name: "Stopped (crashed) when it is all there is", events: []corev1.Event{crashed},
			want: Cause{Reason: "Stopped", Source: "virt-handler", Kind: "VirtualMachineInstance", Name: "vm1", Message: "The VirtualMachineInstance crashed."}},
		{name: "the newest Warning wins, trimmed", events: []corev1.Event{sync, sandbox},
			want: Cause{Reason: "FailedCreatePodSandBox", Source: "kubelet", Kind: "Pod", Name: "virt-launcher-dbg3-qvn2m", Message: realSandboxCause}},
		{name: "a series counts by its last observed time", events: []corev1.Event{sandbox, series},
			want: Cause{Reason: "FailedMount", Source: "kubelet", Kind: "Pod", Name: "p", Message: "MountVolume.SetUp failed"}},
		{name: "events.k8s.io fields: eventTime and reportingController", events: []corev1.Event{reporting},
			want: Cause{Reason: "SyncFailed", Source: "virt-handler", Message: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, PickCause(tt.events))
		})
	}
}

func TestCauseString(t *testing.T) {
	c := Cause{Reason: "SyncFailed", Source: "virt-handler", Kind: "VirtualMachineInstance", Name: "vm1", Message: "boom"}
	assert.Equal(t, "SyncFailed (virt-handler on VirtualMachineInstance vm1): boom", c.String())
	assert.Equal(t, "SyncFailed: boom", Cause{Reason: "SyncFailed", Message: "boom"}.String())
	assert.Equal(t, "", Cause{}.String())
}

// provisioning marks v as KubeVirt does while its DataVolumes wait for a
// first consumer (VMI Pending, condition Provisioning True).
func provisioning(v *kubevirtv1.VirtualMachineInstance) *kubevirtv1.VirtualMachineInstance {
	v.Status.Conditions = append(v.Status.Conditions, vmiCond(kubevirtv1.VirtualMachineInstanceProvisioning, corev1.ConditionTrue, "", ""))
	return v
}

func TestEventSubjects(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	always := kubevirtv1.RunStrategyAlways
	crashLoop := obsVM(always, kubevirtv1.VirtualMachineStatusCrashLoopBackOff,
		vmCond(kubevirtv1.VirtualMachineReady, corev1.ConditionFalse, "VMINotExists", "VMI does not exist"))
	crashLoop.Status.StartFailure = &kubevirtv1.VirtualMachineStartFailure{ConsecutiveFailCount: 2, LastFailedVMIUID: "failed-vmi"}
	starting := obsVM(always, kubevirtv1.VirtualMachineStatusStarting)
	vmiAt := func(phase kubevirtv1.VirtualMachineInstancePhase, age time.Duration, pods map[types.UID]string) *kubevirtv1.VirtualMachineInstance {
		v := obsVMI(phase)
		v.UID = "vmi"
		v.CreationTimestamp = metav1.NewTime(now.Add(-age))
		v.Status.ActivePods = pods
		return v
	}
	restarted := crashLoop.DeepCopy()
	restarted.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStarting
	tests := []struct {
		name    string
		vm      *kubevirtv1.VirtualMachine
		vmi     *kubevirtv1.VirtualMachineInstance
		uids    []types.UID
		recheck time.Duration
	}{
		{name: "no VM"},
		{name: "running", vm: obsVM(always, kubevirtv1.VirtualMachineStatusRunning),
			vmi: obsVMI(kubevirtv1.Running, vmiCond(kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue, "", ""))},
		{name: "crash loop without a VMI: the last failed one, at once", vm: crashLoop, uids: []types.UID{"failed-vmi"}},
		{name: "crash loop, a new VMI started: it, its pods and the last failed one", vm: restarted,
			vmi:  vmiAt(kubevirtv1.Scheduling, time.Second, map[types.UID]string{"pod-b": "", "pod-a": "node-1"}),
			uids: []types.UID{"vmi", "failed-vmi", "pod-a", "pod-b"}},
		{name: "VMI Failed before a crash loop is counted", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStarting),
			vmi: vmiAt(kubevirtv1.Failed, time.Second, nil), uids: []types.UID{"vmi"}},
		{name: "Scheduling within the grace: nothing read, look again when it ends", vm: starting,
			vmi: vmiAt(kubevirtv1.Scheduling, 10*time.Second, map[types.UID]string{"pod": "node-1"}), recheck: StartGrace - 10*time.Second},
		{name: "Scheduling past the grace: the VMI and its pods with a node", vm: starting,
			vmi:  vmiAt(kubevirtv1.Scheduling, time.Minute, map[types.UID]string{"pod": "node-1", "unbound": ""}),
			uids: []types.UID{"vmi", "pod"}, recheck: CauseRecheck},
		{name: "pod not bound yet: the scheduler's, the binding updates the VMI", vm: starting,
			vmi: vmiAt(kubevirtv1.Scheduling, time.Hour, map[types.UID]string{"pod": ""})},
		{name: "Scheduled past the grace: virt-handler's, the VMI and its pod", vm: starting,
			vmi:  vmiAt(kubevirtv1.Scheduled, time.Minute, map[types.UID]string{"pod": "node-1"}),
			uids: []types.UID{"vmi", "pod"}, recheck: CauseRecheck},
		{name: "Pending, virt-controller cannot make the pod (Synchronized=False)", vm: starting,
			vmi: func() *kubevirtv1.VirtualMachineInstance {
				v := vmiAt(kubevirtv1.Pending, time.Minute, nil)
				v.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{vmiCond(kubevirtv1.VirtualMachineInstanceSynchronized, corev1.ConditionFalse, "FailedCreate", "quota")}
				return v
			}(),
			uids: []types.UID{"vmi"}, recheck: CauseRecheck},
		{name: "waiting for volumes says why itself", vm: obsVM(always, kubevirtv1.VirtualMachineStatusProvisioning),
			vmi: vmiAt(kubevirtv1.Pending, time.Hour, nil)},
		{name: "waiting for a first consumer, no temporary pod on a node yet", vm: obsVM(always, kubevirtv1.VirtualMachineStatusProvisioning),
			vmi: provisioning(vmiAt(kubevirtv1.Pending, time.Hour, map[types.UID]string{"temp": ""}))},
		{name: "waiting for a first consumer within the grace: look again when it ends", vm: obsVM(always, kubevirtv1.VirtualMachineStatusProvisioning),
			vmi:     provisioning(vmiAt(kubevirtv1.Pending, 10*time.Second, map[types.UID]string{"temp": "node-1"})),
			recheck: StartGrace - 10*time.Second},
		{name: "waiting for a first consumer past the grace: the VMI and KubeVirt's temporary pod", vm: obsVM(always, kubevirtv1.VirtualMachineStatusProvisioning),
			vmi:  provisioning(vmiAt(kubevirtv1.Pending, time.Minute, map[types.UID]string{"temp": "node-1"})),
			uids: []types.UID{"vmi", "temp"}, recheck: CauseRecheck},
		{name: "volumes provisioning without Provisioning (CDI imports): no read", vm: obsVM(always, kubevirtv1.VirtualMachineStatusProvisioning),
			vmi: vmiAt(kubevirtv1.Pending, time.Hour, map[types.UID]string{"importer": "node-1"})},
		{name: "unschedulable says why itself", vm: starting,
			vmi: func() *kubevirtv1.VirtualMachineInstance {
				v := vmiAt(kubevirtv1.Scheduling, time.Hour, nil)
				v.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{vmiCond(kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled), corev1.ConditionFalse, "Unschedulable", "0/3 nodes")}
				return v
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uids, recheck := Observe(tt.vm, tt.vmi).EventSubjects(now)
			assert.Equal(t, tt.uids, uids)
			assert.Equal(t, tt.recheck, recheck)
		})
	}
}

func TestNotReadyReasonWithCause(t *testing.T) {
	always := kubevirtv1.RunStrategyAlways
	crashLoop := obsVM(always, kubevirtv1.VirtualMachineStatusCrashLoopBackOff)
	crashLoop.Status.StartFailure = &kubevirtv1.VirtualMachineStartFailure{ConsecutiveFailCount: 2, LastFailedVMIUID: "x"}
	syncFailed := Cause{Reason: "SyncFailed", Source: "virt-handler", Kind: "VirtualMachineInstance", Name: "vm1", Message: realSyncFailed}
	sandbox := Cause{Reason: "FailedCreatePodSandBox", Source: "kubelet", Kind: "Pod", Name: "virt-launcher-dbg3-qvn2m", Message: realSandboxCause}
	failedSync := obsVMI(kubevirtv1.Failed, vmiCond(kubevirtv1.VirtualMachineInstanceSynchronized, corev1.ConditionFalse, "Synchronizing with the Domain failed.", realSyncFailed))
	tests := []struct {
		name            string
		vm              *kubevirtv1.VirtualMachine
		vmi             *kubevirtv1.VirtualMachineInstance
		cause           Cause
		reason, message string
	}{
		{name: "crash loop without a cause (before: all a user saw)", vm: crashLoop,
			reason: ReasonCrashLoopBackOff, message: "the machine keeps failing to start (2 failed start(s))"},
		{name: "crash loop with virt-handler's SyncFailed", vm: crashLoop, cause: syncFailed,
			reason:  ReasonCrashLoopBackOff,
			message: "the machine keeps failing to start (2 failed start(s)): SyncFailed (virt-handler on VirtualMachineInstance vm1): " + realSyncFailed},
		{name: "launcher pod sandbox failing", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStarting), vmi: obsVMI(kubevirtv1.Scheduling), cause: sandbox,
			reason:  ReasonStarting,
			message: "the VirtualMachineInstance is Scheduling: FailedCreatePodSandBox (kubelet on Pod virt-launcher-dbg3-qvn2m): " + realSandboxCause},
		{name: "failed VMI: virt-handler's Synchronized message", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStarting), vmi: failedSync,
			reason: ReasonFailed, message: "the VirtualMachineInstance failed: " + realSyncFailed},
		{name: "failed VMI with its event: the event, once", vm: obsVM(always, kubevirtv1.VirtualMachineStatusStarting), vmi: failedSync, cause: syncFailed,
			reason: ReasonFailed, message: "the VirtualMachineInstance failed: SyncFailed (virt-handler on VirtualMachineInstance vm1): " + realSyncFailed},
		{name: "volumes waiting for KubeVirt's temporary pod, whose sandbox fails", vm: obsVM(always, kubevirtv1.VirtualMachineStatusProvisioning), cause: sandbox,
			reason: ReasonVolumesNotReady, message: "DataVolumes are being provisioned: FailedCreatePodSandBox (kubelet on Pod virt-launcher-dbg3-qvn2m): " + realSandboxCause},
		{name: "a cause does not change other reasons", vm: obsVM(always, kubevirtv1.VirtualMachineStatusErrImagePull), cause: sandbox,
			reason: ReasonImagePullFailed, message: "the container disk image cannot be pulled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, msg := Observe(tt.vm, tt.vmi).WithCause(tt.cause).NotReadyReason()
			assert.Equal(t, tt.reason, reason)
			assert.Equal(t, tt.message, msg)
		})
	}
}

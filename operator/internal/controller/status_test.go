package controller

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestComputeStatus(t *testing.T) {
	cases := []struct {
		name  string
		scope func() *scope
		phase v1alpha1.Phase
		// want condition type -> status:reason ("" = absent)
		want   map[string]string
		msgHas map[string]string
		check  func(t *testing.T, w *v1alpha1.Wukong)
	}{
		{
			name: "missing StorageClass stalls with the field named",
			scope: func() *scope {
				s := &scope{net: netOK, netDone: true, volsDone: true,
					vols: []storage.Observation{{Name: "root", ClaimName: "vm1-root", Phase: storage.PhasePending, Reason: storage.ReasonStorageClassNotFound, Message: `StorageClass "fast" not found`}}}
				s.addProblem(problemOf(fromStorage, diskWukong("fast"),
					failureOn(storage.ReasonStorageClassNotFound, errors.New(s.vols[0].Message), "root", "storageClassName")))
				return s
			},
			phase: v1alpha1.PhaseError,
			want: map[string]string{
				v1alpha1.ReadyCondition: "False:" + v1alpha1.ReasonStorageClassNotFound, v1alpha1.StalledCondition: "True:" + v1alpha1.ReasonStorageClassNotFound,
				v1alpha1.ReconcilingCondition: "", v1alpha1.VolumesBoundCondition: "False:" + v1alpha1.ReasonStorageClassNotFound,
				v1alpha1.NetworksConfiguredCondition: "True:" + v1alpha1.ReasonNADCreated,
			},
			msgHas: map[string]string{v1alpha1.StalledCondition: "spec.disks[0].storageClassName", v1alpha1.ReadyCondition: `StorageClass "fast" not found`},
		},
		{
			name: "importing reports progress and is reconciling",
			scope: func() *scope {
				return &scope{net: netOK, netDone: true, volsDone: true, waiting: "waiting for disk root (Importing)",
					vols: []storage.Observation{{Name: "root", ClaimName: "vm1-root", DataVolume: true, Phase: storage.PhaseImporting, Progress: "45.00%"}}}
			},
			phase: v1alpha1.PhasePending,
			want: map[string]string{
				v1alpha1.ReadyCondition: "False:" + v1alpha1.ReasonWaitingForDependencies, v1alpha1.ReconcilingCondition: "True:" + v1alpha1.ReasonWaitingForDependencies,
				v1alpha1.StalledCondition: "", v1alpha1.VolumesBoundCondition: "False:" + v1alpha1.ReasonImporting,
			},
			msgHas: map[string]string{v1alpha1.VolumesBoundCondition: "root 45.00%", v1alpha1.ReadyCondition: "waiting for disk root"},
			check: func(t *testing.T, w *v1alpha1.Wukong) {
				require.Len(t, w.Status.Volumes, 1)
				assert.Equal(t, "45.00%", w.Status.Volumes[0].Progress)
				assert.Equal(t, "Importing", w.Status.Volumes[0].Phase)
				assert.False(t, w.Status.Volumes[0].Bound)
			},
		},
		{
			name: "running VM is Ready with node, IPs and MACs",
			scope: func() *scope {
				return runningScope(nil, runningVMI("node-1"))
			},
			phase: v1alpha1.PhaseRunning,
			want: map[string]string{
				v1alpha1.ReadyCondition: "True:" + v1alpha1.ReasonRunning, v1alpha1.ReconcilingCondition: "", v1alpha1.StalledCondition: "",
				v1alpha1.VolumesBoundCondition: "True:" + v1alpha1.ReasonVolumesBound, v1alpha1.RestartRequiredCondition: "",
			},
			check: func(t *testing.T, w *v1alpha1.Wukong) {
				assert.Equal(t, "node-1", w.Status.NodeName)
				assert.Equal(t, "vm1", w.Status.VMName)
				assert.Equal(t, int64(3), w.Status.ObservedGeneration)
				require.Len(t, w.Status.Networks, 2)
				assert.Equal(t, v1alpha1.NetworkStatus{Name: "default", Interface: "eth0", IPAddress: "10.244.1.5", IPAddresses: []string{"10.244.1.5"}, MACAddress: "02:00:00:00:00:01", IPSource: v1alpha1.IPSourceNetwork}, w.Status.Networks[0])
				assert.Equal(t, v1alpha1.NetworkStatus{Name: "lan", Interface: "lan", IPAddress: "192.168.1.10", IPAddresses: []string{"192.168.1.10"}, MACAddress: "02:aa:bb:cc:dd:ee", NADName: "ns/vm1-lan", IPSource: v1alpha1.IPSourceNetwork}, w.Status.Networks[1])
				assert.Equal(t, "10Gi", w.Status.Volumes[0].Size)
			},
		},
		{
			name: "halted VM is Stopped and Ready",
			scope: func() *scope {
				return &scope{net: netOK, netDone: true, vols: bound, volsDone: true,
					vm: kubevirt.Observe(vmWith(kubevirtv1.RunStrategyHalted, false), nil)}
			},
			phase: v1alpha1.PhaseStopped,
			want:  map[string]string{v1alpha1.ReadyCondition: "True:" + v1alpha1.ReasonStopped, v1alpha1.ReconcilingCondition: "", v1alpha1.StalledCondition: ""},
		},
		{
			name: "KubeVirt restoring the VM: Restoring, the disks waiting",
			scope: func() *scope {
				return &scope{net: netOK, netDone: true, vols: bound, volsDone: true, restoring: "back",
					waiting: "KubeVirt is restoring it from a snapshot (VirtualMachineRestore back)",
					vm:      kubevirt.Observe(vmWith(kubevirtv1.RunStrategyHalted, false), nil)}
			},
			phase:  v1alpha1.PhaseRestoring,
			want:   map[string]string{v1alpha1.ReadyCondition: "False:" + v1alpha1.ReasonRestoring, v1alpha1.StalledCondition: ""},
			msgHas: map[string]string{v1alpha1.ReadyCondition: "VirtualMachineRestore back"},
		},
		{
			name: "a disk problem while KubeVirt restores: still Restoring",
			scope: func() *scope {
				s := &scope{net: netOK, netDone: true, vols: bound, volsDone: true, restoring: "back",
					waiting: "KubeVirt is restoring it from a snapshot (VirtualMachineRestore back)",
					vm:      kubevirt.Observe(vmWith(kubevirtv1.RunStrategyHalted, false), nil)}
				s.addProblem(problem{Condition: v1alpha1.VolumesBoundCondition, Reason: v1alpha1.ReasonNameConflict, Field: "spec.disks[0]", Message: "claim vm-root exists and is not this Wukong's"})
				return s
			},
			phase: v1alpha1.PhaseRestoring,
			want:  map[string]string{v1alpha1.StalledCondition: "True:" + v1alpha1.ReasonNameConflict},
		},
		{
			name: "unschedulable VM stalls",
			scope: func() *scope {
				vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vm1"}}
				vmi.Status.Phase = kubevirtv1.Scheduling
				vmi.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{
					Type: kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled), Status: corev1.ConditionFalse,
					Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available"}}
				return &scope{net: netOK, netDone: true, vols: bound, volsDone: true,
					vm: kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, false), vmi)}
			},
			phase:  v1alpha1.PhaseError,
			want:   map[string]string{v1alpha1.ReadyCondition: "False:" + kubevirt.ReasonUnschedulable, v1alpha1.StalledCondition: "True:" + kubevirt.ReasonUnschedulable, v1alpha1.ReconcilingCondition: ""},
			msgHas: map[string]string{v1alpha1.StalledCondition: "0/3 nodes are available"},
		},
		{
			name: "restart required is surfaced",
			scope: func() *scope {
				vm := vmWith(kubevirtv1.RunStrategyAlways, true)
				vm.Status.Conditions = []kubevirtv1.VirtualMachineCondition{{Type: kubevirtv1.VirtualMachineRestartRequired, Status: corev1.ConditionTrue}}
				return &scope{net: netOK, netDone: true, vols: bound, volsDone: true, vm: kubevirt.Observe(vm, runningVMI("node-2"))}
			},
			phase: v1alpha1.PhaseRunning,
			want:  map[string]string{v1alpha1.RestartRequiredCondition: "True:" + v1alpha1.ReasonRestartRequired, v1alpha1.ReadyCondition: "True:" + v1alpha1.ReasonRunning},
		},
		{
			name: "WaitForFirstConsumer disks while the VM starts",
			scope: func() *scope {
				return &scope{net: netOK, netDone: true, volsDone: true,
					vols: []storage.Observation{{Name: "root", ClaimName: "vm1-root", Phase: storage.PhaseWaitForFirstConsumer, WaitForFirstConsumerClass: true}},
					vm:   kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, false), nil)}
			},
			phase: v1alpha1.PhaseCreating,
			want:  map[string]string{v1alpha1.VolumesBoundCondition: "False:" + v1alpha1.ReasonWaitForFirstConsumer, v1alpha1.ReconcilingCondition: "True:"},
		},
		{
			name: "a transient error keeps observedGeneration",
			scope: func() *scope {
				return &scope{net: netOK, netDone: true, transient: errors.New("etcd hiccup")}
			},
			phase: v1alpha1.PhasePending,
			want:  map[string]string{v1alpha1.ReadyCondition: "Unknown:" + v1alpha1.ReasonTransientError, v1alpha1.ReconcilingCondition: "True:" + v1alpha1.ReasonTransientError},
			check: func(t *testing.T, w *v1alpha1.Wukong) {
				assert.Equal(t, int64(1), w.Status.ObservedGeneration, "unchanged from before the pass")
				assert.Nil(t, w.Status.Volumes, "volumes not observed are not reported as empty")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := testWukong()
			w.Status.ObservedGeneration = 1
			s := tc.scope()
			s.w = w
			computeStatus(w, s)
			assert.Equal(t, tc.phase, w.Status.Phase)
			o := w
			for typ, want := range tc.want {
				c := conditions.Get(o, typ)
				if want == "" {
					assert.Nil(t, c, "condition %s should be absent", typ)
					continue
				}
				require.NotNil(t, c, "condition %s missing", typ)
				assert.Equal(t, want, string(c.Status)+":"+c.Reason[:min(len(c.Reason), len(want)-len(string(c.Status))-1)], "condition %s", typ)
			}
			for typ, sub := range tc.msgHas {
				assert.Contains(t, conditions.GetMessage(o, typ), sub, "message of %s", typ)
			}
			if s.transient == nil {
				// kstatus: never Reconciling and Stalled together, no abnormal-false conditions.
				assert.NoError(t, conditions.Check(o))
			}
			if tc.check != nil {
				tc.check(t, w)
			}
		})
	}
}

// TestComputeStatusIsStable: a second pass with the same observations
// changes nothing (so the reconciler writes nothing at rest).
func TestComputeStatusIsStable(t *testing.T) {
	w := testWukong()
	s := runningScope(w, runningVMI("node-1"))
	computeStatus(w, s)
	first := w.Status.DeepCopy()
	computeStatus(w, s)
	assert.Equal(t, first, &w.Status)
}

// BenchmarkComputeStatus: status for a running Wukong with one NIC and one
// disk, the work of every reconcile pass.
func BenchmarkComputeStatus(b *testing.B) {
	w := testWukong()
	s := runningScope(w, runningVMI("node-1"))
	b.ReportAllocs()
	for b.Loop() {
		computeStatus(w, s)
	}
}

// TestUnschedulableMessage: Ready quotes the scheduler's verdict whole and
// names only the fields behind the node reasons it gives, never a field the
// scheduler did not blame (another namespace's pods, another pod's rule).
func TestUnschedulableMessage(t *testing.T) {
	tests := []struct {
		name, scheduler string
		fields          []string
	}{
		{"own anti-affinity", "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
			[]string{"spec.highAvailability.antiAffinity"}},
		{"node selector and taint", "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node affinity/selector.",
			[]string{"spec.highAvailability.nodeSelector", "spec.highAvailability.tolerations"}},
		{"memory", "0/2 nodes are available: 2 Insufficient memory.", []string{"spec.memory"}},
		{"another pod's rule", "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules.", nil},
		{"no scheduler text", "no node can run the machine", nil},
	}
	all := []string{"spec.highAvailability.nodeSelector", "spec.highAvailability.tolerations", "spec.highAvailability.antiAffinity", "spec.cpu", "spec.memory"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unschedulableMessage("vm1", tt.scheduler)
			assert.Contains(t, got, tt.scheduler, "the scheduler's verdict, quoted whole")
			for _, f := range all {
				if slices.Contains(tt.fields, f) {
					assert.Contains(t, got, f)
				} else {
					assert.NotContains(t, got, f)
				}
			}
			if len(tt.fields) > 0 {
				assert.Contains(t, got, "virtctl restart vm1")
			} else {
				assert.NotContains(t, got, "restart")
			}
		})
	}
}

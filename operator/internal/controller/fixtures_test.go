package controller

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Fixtures the status tests share: a Wukong vm1 in namespace ns with a root
// disk and a NIC lan, its VirtualMachine and running instance as KubeVirt
// reports them, and the storage and network observations of a pass that
// found everything in place.

// testWukong is vm1 (generation 3) with a 10Gi root disk and NIC lan on
// bridge br1.
func testWukong() *v1alpha1.Wukong {
	return &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vm1", Generation: 3},
		Spec: v1alpha1.WukongSpec{
			Disks:    []v1alpha1.DiskSpec{{Name: "root", Size: resource.MustParse("10Gi")}},
			Networks: []v1alpha1.NetworkSpec{{Name: "lan", BridgeName: "br1"}},
		},
	}
}

// vmWith is vm1's VirtualMachine with run strategy rs; a ready one is
// Running (status.ready and printableStatus as KubeVirt writes them).
func vmWith(rs kubevirtv1.VirtualMachineRunStrategy, ready bool) *kubevirtv1.VirtualMachine {
	vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vm1"}}
	vm.Spec.RunStrategy = &rs
	vm.Status.Ready = ready
	if ready {
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusRunning
	}
	return vm
}

// runningVMI is vm1's instance Running and Ready on node, with the pod
// network's interface and NIC lan as KubeVirt reports them.
func runningVMI(node string) *kubevirtv1.VirtualMachineInstance {
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vm1"}}
	vmi.Status.Phase = kubevirtv1.Running
	vmi.Status.NodeName = node
	vmi.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{Type: kubevirtv1.VirtualMachineInstanceReady, Status: corev1.ConditionTrue}}
	vmi.Status.Interfaces = []kubevirtv1.VirtualMachineInstanceNetworkInterface{
		{Name: "default", InterfaceName: "eth0", IP: "10.244.1.5", IPs: []string{"10.244.1.5"}, MAC: "02:00:00:00:00:01"},
		{Name: "lan", InterfaceName: "lan", IP: "192.168.1.10", IPs: []string{"192.168.1.10"}, MAC: "02:aa:bb:cc:dd:ee"},
	}
	return vmi
}

// netOK: NIC lan's attachment vm1-lan exists; bound: the root disk's claim
// is bound with 10Gi.
var (
	netOK = network.Observation{NICs: []network.NICObservation{{Name: "lan", NADNamespace: "ns", NADName: "vm1-lan", MAC: "02:aa:bb:cc:dd:ee", Found: true}}}
	bound = []storage.Observation{{Name: "root", ClaimName: "vm1-root", Phase: storage.PhaseBound, Bound: true, Capacity: resource.MustParse("10Gi")}}
)

// runningScope is a pass that found the network and the root disk in place
// and the VM (run strategy Always, ready) running as vmi.
func runningScope(w *v1alpha1.Wukong, vmi *kubevirtv1.VirtualMachineInstance) *scope {
	return &scope{w: w, net: netOK, netDone: true, vols: bound, volsDone: true, vm: observeRunning(vmi)}
}

// observeRunning is the observation of vm1 (run strategy Always, ready)
// with instance vmi.
func observeRunning(vmi *kubevirtv1.VirtualMachineInstance) kubevirt.Observation {
	return kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, true), vmi)
}

// mustCondition is w's condition of type typ; the test fails at once when
// it is missing.
func mustCondition(t *testing.T, w *v1alpha1.Wukong, typ string) *metav1.Condition {
	t.Helper()
	c := conditions.Get(w, typ)
	require.NotNil(t, c, "condition %s missing", typ)
	return c
}

// twoDisks is a Wukong with a root and a data disk (spec.disks[1]).
func twoDisks() (*v1alpha1.Wukong, []storage.Observation) {
	w := testWukong()
	w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: "data", Size: resource.MustParse("5Gi")})
	vols := append(append([]storage.Observation(nil), bound...), storage.Observation{
		Name: "data", ClaimName: "vm1-data", Phase: storage.PhaseBound, Bound: true, DataVolume: true,
		StorageClassName: "local", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
	})
	return w, vols
}

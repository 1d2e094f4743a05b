package sandbox_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"

	"github.com/novasphere/wukong/test/sandbox"
)

// TestKubeVirtInstancetype: a VM referencing a cluster instance type gets
// it captured in a ControllerRevision it controls (named in
// status.instancetypeRef) and a VMI sized by it (guest vCPUs as sockets,
// guest memory), as virt-controller v1.9 does; a VM referencing a missing
// one gets the Failure condition FailedFindInstancetype and no VMI.
func TestKubeVirtInstancetype(t *testing.T) {
	ns := namespace(t)
	it := &instancetypev1beta1.VirtualMachineClusterInstancetype{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "sb-it-"},
		Spec: instancetypev1beta1.VirtualMachineInstancetypeSpec{
			CPU:    instancetypev1beta1.CPUInstancetype{Guest: 3},
			Memory: instancetypev1beta1.MemoryInstancetype{Guest: resource.MustParse("768Mi")},
		},
	}
	require.NoError(t, sb.Client.Create(ctx, it))
	t.Cleanup(func() { _ = sb.Client.Delete(ctx, it) })
	sized := func(name string) func(*kubevirtv1.VirtualMachine) {
		return func(v *kubevirtv1.VirtualMachine) {
			v.Spec.Instancetype = &kubevirtv1.InstancetypeMatcher{Name: name}
			v.Spec.Template.Spec.Domain.CPU, v.Spec.Template.Spec.Domain.Memory = nil, nil
		}
	}
	v := vm(ns, "sized", sized(it.Name))
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool {
		return vmRunning(v) && v.Status.InstancetypeRef != nil && v.Status.InstancetypeRef.ControllerRevisionRef != nil
	}, "VM not running with a captured instance type")
	rev := &appsv1.ControllerRevision{}
	require.NoError(t, sb.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: v.Status.InstancetypeRef.ControllerRevisionRef.Name}, rev))
	assert.True(t, metav1.IsControlledBy(rev, v))
	assert.Equal(t, it.Name, rev.Labels["instancetype.kubevirt.io/object-name"])
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, sb.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "sized"}, vmi))
	require.NotNil(t, vmi.Spec.Domain.CPU)
	assert.Equal(t, kubevirtv1.CPU{Sockets: 3, Cores: 1, Threads: 1}, kubevirtv1.CPU{Sockets: vmi.Spec.Domain.CPU.Sockets, Cores: vmi.Spec.Domain.CPU.Cores, Threads: vmi.Spec.Domain.CPU.Threads})
	assert.Equal(t, "768Mi", vmi.Spec.Domain.Memory.Guest.String())
	for _, c := range v.Status.Conditions {
		assert.False(t, c.Type == kubevirtv1.VirtualMachineRestartRequired && c.Status == corev1.ConditionTrue, "RestartRequired on an unchanged VM")
	}

	missing := vm(ns, "missing", sized("sb-it-nope"))
	require.NoError(t, sb.Client.Create(ctx, missing))
	eventually(t, missing, func(v *kubevirtv1.VirtualMachine) bool {
		for _, c := range v.Status.Conditions {
			if c.Type == kubevirtv1.VirtualMachineFailure && c.Reason == sandbox.ReasonFailedFindInstancetype {
				return true
			}
		}
		return false
	}, "VM without FailedFindInstancetype")
	assert.Error(t, sb.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "missing"}, &kubevirtv1.VirtualMachineInstance{}), "no VMI")
}

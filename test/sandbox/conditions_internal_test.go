package sandbox

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// The one condition helper keeps the transition time while the status stays,
// moves it when the status changes, and removes a condition (nil when none
// is left), and the one finder finds it, for KubeVirt's and CDI's condition
// types alike (VM, VMI, DataVolume, DataSource).
func TestConditionHelpers(t *testing.T) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "Starting", "a")
	require.Len(t, vmi.Status.Conditions, 1)
	old := metav1.NewTime(time.Now().Add(-time.Hour))
	vmi.Status.Conditions[0].LastTransitionTime = old

	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "Still", "b")
	c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceReady)
	assert.Equal(t, old, c.LastTransitionTime, "same status: the transition time stays")
	assert.Equal(t, "Still", c.Reason)
	assert.Equal(t, "b", c.Message)

	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue, "", "")
	c = vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceReady)
	assert.True(t, c.LastTransitionTime.After(old.Time), "a new status moves the transition time")
	assert.Equal(t, corev1.ConditionTrue, c.Status)

	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceIsMigratable, corev1.ConditionFalse, "DisksNotLiveMigratable", "m")
	require.Len(t, vmi.Status.Conditions, 2)
	removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady)
	require.Len(t, vmi.Status.Conditions, 1)
	assert.Equal(t, kubevirtv1.VirtualMachineInstanceIsMigratable, vmi.Status.Conditions[0].Type)
	removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceIsMigratable)
	assert.Nil(t, vmi.Status.Conditions)
	assert.Empty(t, vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceReady).Type, "absent: the zero condition")

	vm := &kubevirtv1.VirtualMachine{}
	setVMCondition(vm, kubevirtv1.VirtualMachineReady, corev1.ConditionFalse, "r", "m")
	require.Len(t, vm.Status.Conditions, 1)
	c2 := findCondition(vm.Status.Conditions, vmCondFields, kubevirtv1.VirtualMachineReady)
	require.NotNil(t, c2)
	assert.Equal(t, "r", c2.Reason)
	c2.Message = "through the pointer"
	assert.Equal(t, "through the pointer", vm.Status.Conditions[0].Message, "the finder points into the list")
	assert.Nil(t, findCondition(vm.Status.Conditions, vmCondFields, kubevirtv1.VirtualMachineFailure), "absent: nil")
	removeVMCondition(vm, kubevirtv1.VirtualMachineReady)
	assert.Nil(t, vm.Status.Conditions)
	assert.Nil(t, findCondition(vm.Status.Conditions, vmCondFields, kubevirtv1.VirtualMachineReady), "none at all: nil")

	dv := &cdiv1.DataVolume{}
	setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionFalse, "Pending", "m")
	require.Len(t, dv.Status.Conditions, 1)
	first := dv.Status.Conditions[0]
	assert.False(t, first.LastHeartbeatTime.IsZero(), "a new DataVolume condition gets its heartbeat")
	dv.Status.Conditions[0].LastHeartbeatTime = old
	setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionTrue, "Bound", "m")
	assert.Equal(t, old, dv.Status.Conditions[0].LastHeartbeatTime, "an update keeps the heartbeat (no write per pass)")
	assert.Equal(t, first.LastHeartbeatTime, first.LastTransitionTime, "a new condition: heartbeat and transition at once")

	ds := &cdiv1.DataSource{}
	setDSCondition(ds, cdiv1.DataSourceReady, corev1.ConditionFalse, "NotFound", "PVC not found")
	require.Len(t, ds.Status.Conditions, 1)
	assert.False(t, ds.Status.Conditions[0].LastHeartbeatTime.IsZero(), "a new DataSource condition gets its heartbeat")
	ds.Status.Conditions[0].LastTransitionTime, ds.Status.Conditions[0].LastHeartbeatTime = old, old
	setDSCondition(ds, cdiv1.DataSourceReady, corev1.ConditionFalse, "Pending", "p")
	d := findCondition(ds.Status.Conditions, dsCondFields, cdiv1.DataSourceReady)
	require.NotNil(t, d)
	assert.Equal(t, old, d.LastTransitionTime, "same status: the transition time stays")
	assert.Equal(t, old, d.LastHeartbeatTime, "an update keeps the heartbeat")
	assert.Equal(t, "Pending", d.Reason)
	assert.Equal(t, "p", d.Message)
	setDSCondition(ds, cdiv1.DataSourceReady, corev1.ConditionTrue, "Ready", "DataSource is ready to be consumed")
	require.Len(t, ds.Status.Conditions, 1)
	assert.True(t, ds.Status.Conditions[0].LastTransitionTime.After(old.Time), "a new status moves the transition time")
	assert.Equal(t, corev1.ConditionTrue, ds.Status.Conditions[0].Status)
}

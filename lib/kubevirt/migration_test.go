package kubevirt

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Migration reads the VMI's status.migrationState as KubeVirt writes it.
func TestObservationMigration(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC))
	end := metav1.NewTime(start.Add(time.Minute))
	vm := &kubevirtv1.VirtualMachine{}
	tests := []struct {
		name      string
		ms        *kubevirtv1.VirtualMachineInstanceMigrationState
		want      MigrationState
		migrating bool
		reason    string
	}{
		{"handed off", &kubevirtv1.VirtualMachineInstanceMigrationState{TargetNode: "b"}, MigrationPending, true, ""},
		{"running", &kubevirtv1.VirtualMachineInstanceMigrationState{TargetNode: "b", StartTimestamp: &start}, MigrationRunning, true, ""},
		{"completed", &kubevirtv1.VirtualMachineInstanceMigrationState{StartTimestamp: &start, EndTimestamp: &end, Completed: true}, MigrationSucceeded, false, ""},
		{"failed", &kubevirtv1.VirtualMachineInstanceMigrationState{StartTimestamp: &start, Completed: true, Failed: true, FailureReason: "x"}, MigrationFailed, false, "x"},
		{"aborted", &kubevirtv1.VirtualMachineInstanceMigrationState{StartTimestamp: &start, AbortStatus: kubevirtv1.MigrationAbortSucceeded}, MigrationFailed, false, "aborted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vmi := &kubevirtv1.VirtualMachineInstance{Status: kubevirtv1.VirtualMachineInstanceStatus{Phase: kubevirtv1.Running, MigrationState: tt.ms}}
			o := Observe(vm, vmi)
			m := o.Migration()
			if assert.NotNil(t, m) {
				assert.Equal(t, tt.want, m.State)
				assert.Equal(t, tt.reason, m.FailureReason)
			}
			assert.Equal(t, tt.migrating, o.Migrating())
		})
	}
	assert.Nil(t, Observe(vm, &kubevirtv1.VirtualMachineInstance{}).Migration())
	assert.False(t, Observe(vm, nil).Migrating())
}

// LiveMigratable, EvacuationNode and EvictionStrategy are KubeVirt's own
// fields, read as they are.
func TestObservationLiveMigratable(t *testing.T) {
	lm := kubevirtv1.EvictionStrategyLiveMigrate
	none := kubevirtv1.EvictionStrategyNone
	vm := &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
		Spec: kubevirtv1.VirtualMachineInstanceSpec{EvictionStrategy: &none}}}}
	vmi := &kubevirtv1.VirtualMachineInstance{
		Spec: kubevirtv1.VirtualMachineInstanceSpec{EvictionStrategy: &lm},
		Status: kubevirtv1.VirtualMachineInstanceStatus{EvacuationNodeName: "a", Conditions: []kubevirtv1.VirtualMachineInstanceCondition{{
			Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionFalse,
			Reason: kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable, Message: "cannot migrate VMI: PVC web-data is not shared",
		}}},
	}
	o := Observe(vm, vmi)
	st, reason, msg, ok := o.LiveMigratable()
	assert.True(t, ok)
	assert.Equal(t, corev1.ConditionFalse, st)
	assert.Equal(t, "DisksNotLiveMigratable", reason)
	assert.Contains(t, msg, "PVC web-data")
	assert.Equal(t, "a", o.EvacuationNode())
	assert.Equal(t, lm, o.EvictionStrategy(), "the instance's own wins")
	assert.Equal(t, none, Observe(vm, &kubevirtv1.VirtualMachineInstance{}).EvictionStrategy(), "else the VM template's")
	assert.Empty(t, Observe(&kubevirtv1.VirtualMachine{}, nil).EvictionStrategy())
	_, _, _, ok = Observe(vm, nil).LiveMigratable()
	assert.False(t, ok)
}

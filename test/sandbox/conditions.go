package sandbox

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// condFields points at the fields the simulators write of one condition of
// KubeVirt's or CDI's own condition types (each API has its own struct, with
// the same fields): its type, status, reason, message and transition time.
type condFields[T comparable] struct {
	typ        *T
	status     *corev1.ConditionStatus
	reason     *string
	message    *string
	transition *metav1.Time
}

// setCondition sets condition t in conds as KubeVirt's and CDI's controllers
// do: the transition time changes only when the status does; a new
// condition is appended. fields gives a condition's fields.
func setCondition[C any, T comparable](conds *[]C, fields func(*C) condFields[T], t T, status corev1.ConditionStatus, reason, msg string) *C {
	for i := range *conds {
		c := &(*conds)[i]
		if f := fields(c); *f.typ == t {
			if *f.status != status {
				*f.transition = metav1.Now()
			}
			*f.status, *f.reason, *f.message = status, reason, msg
			return c
		}
	}
	var c C
	f := fields(&c)
	*f.typ, *f.status, *f.reason, *f.message, *f.transition = t, status, reason, msg, metav1.Now()
	*conds = append(*conds, c)
	return &(*conds)[len(*conds)-1]
}

// removeCondition drops condition t from conds (nil when none is left, as
// the API server stores an empty list).
func removeCondition[C any, T comparable](conds *[]C, fields func(*C) condFields[T], t T) {
	*conds = slices.DeleteFunc(*conds, func(c C) bool { return *fields(&c).typ == t })
	if len(*conds) == 0 {
		*conds = nil
	}
}

func vmCondFields(c *kubevirtv1.VirtualMachineCondition) condFields[kubevirtv1.VirtualMachineConditionType] {
	return condFields[kubevirtv1.VirtualMachineConditionType]{&c.Type, &c.Status, &c.Reason, &c.Message, &c.LastTransitionTime}
}

func vmiCondFields(c *kubevirtv1.VirtualMachineInstanceCondition) condFields[kubevirtv1.VirtualMachineInstanceConditionType] {
	return condFields[kubevirtv1.VirtualMachineInstanceConditionType]{&c.Type, &c.Status, &c.Reason, &c.Message, &c.LastTransitionTime}
}

func dvCondFields(c *cdiv1.DataVolumeCondition) condFields[cdiv1.DataVolumeConditionType] {
	return condFields[cdiv1.DataVolumeConditionType]{&c.Type, &c.Status, &c.Reason, &c.Message, &c.LastTransitionTime}
}

func setVMCondition(vm *kubevirtv1.VirtualMachine, t kubevirtv1.VirtualMachineConditionType, status corev1.ConditionStatus, reason, msg string) {
	setCondition(&vm.Status.Conditions, vmCondFields, t, status, reason, msg)
}

func removeVMCondition(vm *kubevirtv1.VirtualMachine, t kubevirtv1.VirtualMachineConditionType) {
	removeCondition(&vm.Status.Conditions, vmCondFields, t)
}

func setVMICondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType, status corev1.ConditionStatus, reason, msg string) {
	setCondition(&vmi.Status.Conditions, vmiCondFields, t, status, reason, msg)
}

func removeVMICondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType) {
	removeCondition(&vmi.Status.Conditions, vmiCondFields, t)
}

// vmiCondition is condition t of vmi, the zero condition when it has none.
func vmiCondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType) kubevirtv1.VirtualMachineInstanceCondition {
	for _, c := range vmi.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return kubevirtv1.VirtualMachineInstanceCondition{}
}

// setDVCondition sets a DataVolume condition; a new one also gets its
// heartbeat time.
func setDVCondition(dv *cdiv1.DataVolume, t cdiv1.DataVolumeConditionType, status corev1.ConditionStatus, reason, msg string) {
	n := len(dv.Status.Conditions)
	c := setCondition(&dv.Status.Conditions, dvCondFields, t, status, reason, msg)
	if len(dv.Status.Conditions) > n {
		c.LastHeartbeatTime = c.LastTransitionTime
	}
}

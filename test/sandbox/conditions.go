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
// the same fields): its type, status, reason, message and transition time,
// and its heartbeat time where the type has one (CDI's; nil for KubeVirt's).
// NMState's conditions are not among them: its API's ConditionList has Set
// and Find of its own, which the NMState simulator uses.
type condFields[T comparable] struct {
	typ        *T
	status     *corev1.ConditionStatus
	reason     *string
	message    *string
	transition *metav1.Time
	heartbeat  *metav1.Time
}

// findCondition is condition t in conds, nil when there is none. fields
// gives a condition's fields.
func findCondition[C any, T comparable](conds []C, fields func(*C) condFields[T], t T) *C {
	for i := range conds {
		if *fields(&conds[i]).typ == t {
			return &conds[i]
		}
	}
	return nil
}

// setCondition sets condition t in conds as KubeVirt's and CDI's controllers
// do: the transition time changes only when the status does; a new
// condition is appended, with its heartbeat time (where it has one) equal
// to its transition time; an update keeps the heartbeat, so that a pass
// that changes nothing writes nothing. fields gives a condition's fields.
func setCondition[C any, T comparable](conds *[]C, fields func(*C) condFields[T], t T, status corev1.ConditionStatus, reason, msg string) *C {
	if c := findCondition(*conds, fields, t); c != nil {
		f := fields(c)
		if *f.status != status {
			*f.transition = metav1.Now()
		}
		*f.status, *f.reason, *f.message = status, reason, msg
		return c
	}
	var c C
	f := fields(&c)
	*f.typ, *f.status, *f.reason, *f.message, *f.transition = t, status, reason, msg, metav1.Now()
	if f.heartbeat != nil {
		*f.heartbeat = *f.transition
	}
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
	return condFields[kubevirtv1.VirtualMachineConditionType]{&c.Type, &c.Status, &c.Reason, &c.Message, &c.LastTransitionTime, nil}
}

func vmiCondFields(c *kubevirtv1.VirtualMachineInstanceCondition) condFields[kubevirtv1.VirtualMachineInstanceConditionType] {
	return condFields[kubevirtv1.VirtualMachineInstanceConditionType]{&c.Type, &c.Status, &c.Reason, &c.Message, &c.LastTransitionTime, nil}
}

func dvCondFields(c *cdiv1.DataVolumeCondition) condFields[cdiv1.DataVolumeConditionType] {
	return condFields[cdiv1.DataVolumeConditionType]{&c.Type, &c.Status, &c.Reason, &c.Message, &c.LastTransitionTime, &c.LastHeartbeatTime}
}

func dsCondFields(c *cdiv1.DataSourceCondition) condFields[cdiv1.DataSourceConditionType] {
	return condFields[cdiv1.DataSourceConditionType]{&c.Type, &c.Status, &c.Reason, &c.Message, &c.LastTransitionTime, &c.LastHeartbeatTime}
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

// vmiCondition is a copy of condition t of vmi, the zero condition when it
// has none (so that callers can test its status or reason at once).
func vmiCondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType) kubevirtv1.VirtualMachineInstanceCondition {
	if c := findCondition(vmi.Status.Conditions, vmiCondFields, t); c != nil {
		return *c
	}
	return kubevirtv1.VirtualMachineInstanceCondition{}
}

func setDVCondition(dv *cdiv1.DataVolume, t cdiv1.DataVolumeConditionType, status corev1.ConditionStatus, reason, msg string) {
	setCondition(&dv.Status.Conditions, dvCondFields, t, status, reason, msg)
}

// setDSCondition sets a DataSource condition as CDI's
// updateDataSourceCondition does.
func setDSCondition(ds *cdiv1.DataSource, t cdiv1.DataSourceConditionType, status corev1.ConditionStatus, reason, msg string) {
	setCondition(&ds.Status.Conditions, dsCondFields, t, status, reason, msg)
}

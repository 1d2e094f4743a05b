package kubevirt

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Reasons returned by Observation.NotReadyReason.
const (
	// ReasonVirtualMachineMissing: there is no VirtualMachine.
	ReasonVirtualMachineMissing = "VirtualMachineMissing"
	// ReasonStopped: the run strategy keeps the machine off and no VMI runs.
	ReasonStopped = "Stopped"
	// ReasonStopping: the VMI is shutting down.
	ReasonStopping = "Stopping"
	// ReasonUnschedulable: no node can run the virt-launcher pod.
	ReasonUnschedulable = "Unschedulable"
	// ReasonVolumesNotReady: a DataVolume or PVC is still provisioning, not
	// bound, missing or failed.
	ReasonVolumesNotReady = "VolumesNotReady"
	// ReasonImagePullFailed: the container disk image cannot be pulled.
	ReasonImagePullFailed = "ImagePullFailed"
	// ReasonCrashLoopBackOff: the VMI keeps failing and KubeVirt backs off.
	ReasonCrashLoopBackOff = "CrashLoopBackOff"
	// ReasonFailed: the VMI failed or KubeVirt reports a VM Failure condition.
	ReasonFailed = "Failed"
	// ReasonPaused: the VMI is paused.
	ReasonPaused = "Paused"
	// ReasonStarting: the VMI exists but is not running yet, or the VM has
	// no VMI although its run strategy wants one.
	ReasonStarting = "Starting"
	// ReasonGuestNotReady: the VMI runs but its Ready condition is not true
	// (the guest has not booted or a readiness probe fails).
	ReasonGuestNotReady = "GuestNotReady"
)

// Interface is a guest NIC as the VMI reports it.
type Interface struct {
	// Name is the VM spec interface/network name.
	Name string
	// InterfaceName is the name inside the guest (needs the guest agent).
	InterfaceName string
	IP            string
	IPs           []string
	MAC           string
	// InfoSource is where KubeVirt took the data from: a comma-separated
	// list of domain, guest-agent and multus-status (VMI
	// status.interfaces[].infoSource).
	InfoSource string
}

// InfoSourceGuestAgent is the InfoSource entry KubeVirt writes when the QEMU
// guest agent reported the interface.
const InfoSourceGuestAgent = "guest-agent"

// FromGuestAgent reports whether the guest agent reported the interface, so
// its addresses were seen inside the guest. Without the agent KubeVirt knows
// a bridge- or SR-IOV-bound NIC only from the domain (MAC, no address); the
// pod network's address is then the pod's.
func (i Interface) FromGuestAgent() bool {
	for _, s := range strings.Split(i.InfoSource, ",") {
		if strings.TrimSpace(s) == InfoSourceGuestAgent {
			return true
		}
	}
	return false
}

// Observation answers questions about a VirtualMachine and its instance,
// read once. Build it with Observe; the zero value means "nothing exists".
type Observation struct {
	vm  *kubevirtv1.VirtualMachine
	vmi *kubevirtv1.VirtualMachineInstance
	// cause is what the Events say keeps the machine from starting
	// (WithCause).
	cause Cause
	// plan is Reconcile's PlanLive plan; requested its live changes when
	// this pass wrote the VM.
	plan      LivePlan
	requested []LiveChange
	// size is the guest's resolved size (Reconcile fills it).
	size Size
}

// Size is the guest's resolved cpu and memory, as Reconcile found them
// (resolveSize): the zero Size from Observe and Get.
func (o Observation) Size() Size { return o.size }

// Observe wraps vm and vmi (either may be nil: no VMI is normal for a
// stopped machine). It keeps the pointers; do not modify them afterwards.
func Observe(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) Observation {
	return Observation{vm: vm, vmi: vmi}
}

// WithCause returns o with c, the Warning Event that explains why the
// machine does not start (ReadCause of EventSubjects), which NotReadyReason
// then adds to its message for reasons CrashLoopBackOff, Failed and
// Starting.
func (o Observation) WithCause(c Cause) Observation {
	o.cause = c
	return o
}

// Cause is the Cause given to WithCause (the zero Cause without one).
func (o Observation) Cause() Cause { return o.cause }

// StartFailure is vm.status.startFailure: KubeVirt's count of VMIs that
// failed before they ran, the last one's UID and when the next start is
// allowed (pkg/virt-controller/watch/vm/vm.go, syncStartFailureStatus); nil
// without a VM or a failure.
func (o Observation) StartFailure() *kubevirtv1.VirtualMachineStartFailure {
	if o.vm == nil {
		return nil
	}
	return o.vm.Status.StartFailure
}

// Exists reports whether the VirtualMachine exists.
func (o Observation) Exists() bool { return o.vm != nil }

// HasInstance reports whether a VirtualMachineInstance exists.
func (o Observation) HasInstance() bool { return o.vmi != nil }

// PrintableStatus is vm.status.printableStatus.
func (o Observation) PrintableStatus() kubevirtv1.VirtualMachinePrintableStatus {
	if o.vm == nil {
		return ""
	}
	return o.vm.Status.PrintableStatus
}

// Phase is the VMI phase, empty without a VMI.
func (o Observation) Phase() kubevirtv1.VirtualMachineInstancePhase {
	if o.vmi == nil {
		return ""
	}
	return o.vmi.Status.Phase
}

// Node is the node running the VMI, empty when unscheduled.
func (o Observation) Node() string {
	if o.vmi == nil {
		return ""
	}
	return o.vmi.Status.NodeName
}

// Ready: the VMI is Running with its Ready condition true and is not
// Stopping; without a VMI, vm.status.ready.
func (o Observation) Ready() bool {
	if o.vmi != nil {
		if o.Stopping() {
			return false
		}
		c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceReady)
		return o.vmi.Status.Phase == kubevirtv1.Running && c != nil && c.Status == corev1.ConditionTrue
	}
	return o.vm != nil && o.vm.Status.Ready
}

// RunStrategy is the VM's spec.runStrategy (Halted when only the deprecated
// spec.running=false is set; empty without a VM).
func (o Observation) RunStrategy() kubevirtv1.VirtualMachineRunStrategy {
	if o.vm == nil {
		return ""
	}
	rs, err := o.vm.RunStrategy()
	if err != nil {
		return ""
	}
	return rs
}

// Stopped: the run strategy does not keep the machine running (Halted,
// Manual, or Once), no start is pending (a `virtctl start` on a Manual VM
// is a Start entry in vm.status.stateChangeRequests; on a Halted VM it sets
// runStrategy Always), and there is no VMI, or only a finished one
// (Succeeded or Failed).
func (o Observation) Stopped() bool {
	if o.vm == nil || o.StartRequested() {
		return false
	}
	switch o.RunStrategy() {
	case kubevirtv1.RunStrategyHalted, kubevirtv1.RunStrategyManual, kubevirtv1.RunStrategyOnce:
	default:
		return false
	}
	return o.vmi == nil || o.vmi.IsFinal()
}

// Stopping: a VMI that has not finished is going away: it is being deleted,
// or the run strategy is Halted, which makes KubeVirt stop it (`virtctl
// stop` sets Halted; KubeVirt user guide, "Run Strategies").
func (o Observation) Stopping() bool {
	if o.vm == nil || o.vmi == nil || o.vmi.IsFinal() {
		return false
	}
	return o.vmi.DeletionTimestamp != nil || o.RunStrategy() == kubevirtv1.RunStrategyHalted
}

// StartRequested: vm.status.stateChangeRequests holds a Start not yet acted
// on (how KubeVirt's start subresource starts a Manual VM).
func (o Observation) StartRequested() bool {
	if o.vm == nil {
		return false
	}
	for _, r := range o.vm.Status.StateChangeRequests {
		if r.Action == kubevirtv1.StartRequest {
			return true
		}
	}
	return false
}

// RestartRequired: KubeVirt reports that spec changes wait for a restart
// (VM condition RestartRequired=True).
func (o Observation) RestartRequired() bool {
	c := o.vmCondition(kubevirtv1.VirtualMachineRestartRequired)
	return c != nil && c.Status == corev1.ConditionTrue
}

// Interfaces lists vmi.status.interfaces in the VMI's order.
func (o Observation) Interfaces() []Interface {
	if o.vmi == nil || len(o.vmi.Status.Interfaces) == 0 {
		return nil
	}
	out := make([]Interface, 0, len(o.vmi.Status.Interfaces))
	for _, i := range o.vmi.Status.Interfaces {
		out = append(out, Interface{
			Name:          i.Name,
			InterfaceName: i.InterfaceName,
			IP:            i.IP,
			IPs:           append([]string(nil), i.IPs...),
			MAC:           i.MAC,
			InfoSource:    i.InfoSource,
		})
	}
	return out
}

// NotReadyReason explains why Ready is false, as one of the Reason*
// constants and a message taken from the KubeVirt condition that says so
// when there is one. For CrashLoopBackOff, Failed, Starting and
// VolumesNotReady the message also gives the number of failed starts
// (vm.status.startFailure) and the Cause given to WithCause
// ("<message>: <Cause>"; see EventSubjects for when there is one). It
// returns two empty strings when Ready is true.
func (o Observation) NotReadyReason() (reason, message string) {
	reason, message = o.notReadyReason()
	switch reason {
	case ReasonCrashLoopBackOff, ReasonFailed, ReasonStarting, ReasonVolumesNotReady:
	default:
		return reason, message
	}
	if sf := o.StartFailure(); sf != nil && sf.ConsecutiveFailCount > 0 {
		message = fmt.Sprintf("%s (%d failed start(s))", message, sf.ConsecutiveFailCount)
	}
	if !o.cause.IsZero() && !strings.Contains(message, o.cause.Message) {
		message += ": " + o.cause.String()
	}
	return reason, message
}

func (o Observation) notReadyReason() (reason, message string) {
	if o.Ready() {
		return "", ""
	}
	if o.vm == nil {
		return ReasonVirtualMachineMissing, "the VirtualMachine does not exist"
	}
	if o.Stopped() {
		return ReasonStopped, "the machine is stopped (run strategy " + string(o.RunStrategy()) + ")"
	}
	if o.Stopping() {
		return ReasonStopping, "the VirtualMachineInstance is shutting down (run strategy " + string(o.RunStrategy()) + ")"
	}
	ps := o.vm.Status.PrintableStatus

	// Scheduling: the pod condition KubeVirt copies to the VMI (and VM).
	if c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled)); c != nil &&
		c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		return ReasonUnschedulable, or(c.Message, "no node can run the machine")
	}
	if c := o.vmCondition(kubevirtv1.VirtualMachineConditionType(corev1.PodScheduled)); c != nil &&
		c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		return ReasonUnschedulable, or(c.Message, "no node can run the machine")
	}
	switch ps {
	case kubevirtv1.VirtualMachineStatusUnschedulable:
		return ReasonUnschedulable, or(o.failureMessage(), "no node can run the machine")
	case kubevirtv1.VirtualMachineStatusWaitingForVolumeBinding:
		return ReasonVolumesNotReady, "waiting for PersistentVolumeClaims to be bound"
	case kubevirtv1.VirtualMachineStatusProvisioning:
		return ReasonVolumesNotReady, "DataVolumes are being provisioned"
	case kubevirtv1.VirtualMachineStatusDataVolumeError:
		return ReasonVolumesNotReady, or(o.failureMessage(), "a DataVolume failed")
	case kubevirtv1.VirtualMachineStatusPvcNotFound:
		return ReasonVolumesNotReady, or(o.failureMessage(), "a PersistentVolumeClaim does not exist")
	case kubevirtv1.VirtualMachineStatusErrImagePull, kubevirtv1.VirtualMachineStatusImagePullBackOff:
		return ReasonImagePullFailed, or(o.failureMessage(), "the container disk image cannot be pulled")
	case kubevirtv1.VirtualMachineStatusCrashLoopBackOff:
		return ReasonCrashLoopBackOff, or(o.failureMessage(), "the machine keeps failing to start")
	}
	if c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceProvisioning); c != nil && c.Status == corev1.ConditionTrue {
		return ReasonVolumesNotReady, or(c.Message, "DataVolumes are being provisioned")
	}
	if o.vmi == nil {
		if m := o.failureMessage(); m != "" {
			return ReasonFailed, m
		}
		return ReasonStarting, "the VirtualMachineInstance has not been created yet"
	}
	if o.vmi.DeletionTimestamp != nil {
		return ReasonStopping, "the VirtualMachineInstance is shutting down"
	}
	switch o.vmi.Status.Phase {
	case kubevirtv1.Failed:
		// virt-handler's sync error (handleSyncError: Synchronized=False).
		if c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceSynchronized); c != nil && c.Status == corev1.ConditionFalse && c.Message != "" && o.cause.IsZero() {
			return ReasonFailed, "the VirtualMachineInstance failed: " + c.Message
		}
		return ReasonFailed, "the VirtualMachineInstance failed"
	case kubevirtv1.Succeeded:
		return ReasonStopped, "the guest shut down"
	case kubevirtv1.Running:
		if c := o.vmiCondition(kubevirtv1.VirtualMachineInstancePaused); c != nil && c.Status == corev1.ConditionTrue {
			return ReasonPaused, or(c.Message, "the machine is paused")
		}
		msg := "the guest is not ready"
		if c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceReady); c != nil && c.Message != "" {
			msg = c.Message
		}
		return ReasonGuestNotReady, msg
	default:
		return ReasonStarting, "the VirtualMachineInstance is " + or(string(o.vmi.Status.Phase), string(kubevirtv1.Pending))
	}
}

func (o Observation) failureMessage() string {
	if c := o.vmCondition(kubevirtv1.VirtualMachineFailure); c != nil && c.Status == corev1.ConditionTrue {
		return c.Message
	}
	return ""
}

func (o Observation) vmCondition(t kubevirtv1.VirtualMachineConditionType) *kubevirtv1.VirtualMachineCondition {
	if o.vm == nil {
		return nil
	}
	return findCondition(o.vm.Status.Conditions, func(c kubevirtv1.VirtualMachineCondition) bool { return c.Type == t })
}

func (o Observation) vmiCondition(t kubevirtv1.VirtualMachineInstanceConditionType) *kubevirtv1.VirtualMachineInstanceCondition {
	if o.vmi == nil {
		return nil
	}
	return findCondition(o.vmi.Status.Conditions, func(c kubevirtv1.VirtualMachineInstanceCondition) bool { return c.Type == t })
}

// findCondition returns the first condition of conds that is, or nil.
func findCondition[C any](conds []C, is func(C) bool) *C {
	for i := range conds {
		if is(conds[i]) {
			return &conds[i]
		}
	}
	return nil
}

func or(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// RestoreInProgress is the VM's status.restoreInProgress: the name of the
// VirtualMachineRestore KubeVirt is carrying out on it ("" when none).
// KubeVirt sets it before it touches the VM's claims and clears it once the
// VM's spec is restored (pkg/storage/snapshot/restore.go
// UpdateRestoreInProgress, UpdateDoneRestore); meanwhile it does not start
// the VM.
func (o Observation) RestoreInProgress() string {
	if o.vm == nil || o.vm.Status.RestoreInProgress == nil {
		return ""
	}
	return *o.vm.Status.RestoreInProgress
}

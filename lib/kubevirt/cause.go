package kubevirt

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A machine that keeps failing to start often says why only in Events:
//
//   - virt-handler fails a VMI it cannot set up with a Warning Event of
//     reason SyncFailed on the VMI (pkg/virt-handler/vm.go, KubeVirt
//     v1.9.0; a *neterrors.CriticalNetworkError such as "failed to configure
//     vmi network: setup failed, err: Critical network error: LinkAdd:
//     operation not supported" makes the VMI Failed at once). The VM
//     controller then deletes the VMI, counts the failure in
//     vm.status.startFailure (consecutiveFailCount, lastFailedVMIUID,
//     retryAfterTimestamp) and shows printableStatus CrashLoopBackOff until it
//     starts a new one (pkg/virt-controller/watch/vm/vm.go,
//     syncStartFailureStatus): no VM condition carries the message, and the
//     failed VMI is gone.
//   - the kubelet cannot create a launcher pod's sandbox (a CNI plugin fails
//     through Multus) and retries for ever, recording Warning Events of reason
//     FailedCreatePodSandBox on the pod ("Failed to create pod sandbox: %v",
//     pkg/kubelet/kuberuntime/kuberuntime_manager.go): the VMI stays
//     Scheduling and nothing in the VM or VMI says why.
//   - the same for KubeVirt's temporary pod: a DataVolume of a
//     WaitForFirstConsumer class waits for a consumer, so virt-controller
//     starts a short-lived pod of the VMI's own shape (annotation
//     kubevirt.io/ephemeral-provisioning, controlled by the VMI and listed
//     in its activePods) to get the claim bound, and keeps the VMI Pending
//     with condition Provisioning True meanwhile
//     (pkg/virt-controller/watch/vmi/lifecycle.go, KubeVirt v1.9.0). Where
//     that pod's sandbox fails, the claim stays unbound (CDI starts no
//     import while a pod uses the claim) and the VM says only "DataVolumes
//     are being provisioned", for ever.
//
// EventSubjects says whose Events to read and when, ReadCause reads them and
// PickCause chooses and trims the one a user needs; Observation.WithCause
// puts it into NotReadyReason's message.

// StartGrace is how long a VMI may take to leave Pending, Scheduling or
// Scheduled before its (and its launcher pod's) Warning Events are read:
// a healthy start is over well within it, so it costs no read.
const StartGrace = 30 * time.Second

// CauseRecheck is how often the Events of a machine stuck starting are read
// again: Events are not watched, and nothing else changes while the kubelet
// retries.
const CauseRecheck = time.Minute

// MaxCauseMessage bounds Cause.Message, in bytes (a condition message may
// hold 32768; the cause is one line of it).
const MaxCauseMessage = 512

// Cause is the newest Warning Event of an object that keeps a machine from
// starting, trimmed for a user. The zero value means none was found.
type Cause struct {
	// Reason is the Event's reason (SyncFailed, FailedCreatePodSandBox, ...).
	Reason string
	// Source is the component that reported it (virt-handler, kubelet).
	Source string
	// Kind and Name are the object the Event is about (Pod
	// virt-launcher-x-abcde, VirtualMachineInstance x).
	Kind, Name string
	// Message is the Event's message trimmed by TrimEventMessage: at most
	// MaxCauseMessage bytes.
	Message string
}

// IsZero reports whether no cause was found.
func (c Cause) IsZero() bool { return c.Reason == "" && c.Message == "" }

// String is "<Reason> (<source> on <kind> <name>): <message>", e.g.
// `SyncFailed (virt-handler on VirtualMachineInstance vm1): failed to
// configure vmi network: ...`; "" for the zero Cause.
func (c Cause) String() string {
	if c.IsZero() {
		return ""
	}
	var where []string
	if c.Source != "" {
		where = append(where, c.Source)
	}
	if c.Kind != "" || c.Name != "" {
		if len(where) > 0 {
			where = append(where, "on")
		}
		where = append(where, strings.TrimSpace(c.Kind+" "+c.Name))
	}
	if len(where) == 0 {
		return c.Reason + ": " + c.Message
	}
	return c.Reason + " (" + strings.Join(where, " ") + "): " + c.Message
}

// EventSubjects says whose Warning Events may explain why the machine is not
// running, given the time now:
//
//   - a crash loop (vm.status.startFailure set, or the VMI Failed before it
//     ran): the current VMI, startFailure.lastFailedVMIUID and the current
//     VMI's launcher pods (vmi.status.activePods), read at once;
//   - a VMI still Pending, Scheduling or Scheduled StartGrace after it was
//     created, whose launcher pod is on a node (the kubelet works on it), or
//     which is Scheduled (virt-handler works on it) or Synchronized=False
//     (virt-controller failed on it): the VMI and its launcher pods that
//     have a node, read now and again after CauseRecheck; before StartGrace
//     nothing is read and recheck is the time left. The same for a VMI
//     waiting for volumes (Pending, Provisioning True) whose temporary pod
//     has a node: its volumes wait for that pod. A VMI whose pod has no
//     node yet is the scheduler's, whose verdict KubeVirt copies into the
//     VMI's PodScheduled condition, and its binding updates the VMI: no
//     read, no recheck.
//
// Otherwise (no VM, running, stopped or stopping, waiting for volumes with
// no pod on a node, unschedulable, an image that cannot be pulled: those
// say why in their conditions) it returns nil and 0. recheck > 0 asks the caller to look
// again after it, since Events are not watched.
func (o Observation) EventSubjects(now time.Time) (uids []types.UID, recheck time.Duration) {
	if o.vm == nil || o.Ready() || o.Stopped() || o.Stopping() {
		return nil, 0
	}
	reason, _ := o.NotReadyReason()
	volumes := reason == ReasonVolumesNotReady
	switch reason {
	case ReasonCrashLoopBackOff, ReasonFailed, ReasonStarting:
	case ReasonVolumesNotReady:
		if c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceProvisioning); c == nil || c.Status != corev1.ConditionTrue {
			return nil, 0 // CDI or the provisioner works on them, and says so
		}
	default:
		return nil, 0
	}
	pods := func(withNode bool) []types.UID {
		if o.vmi == nil {
			return nil
		}
		var out []types.UID
		for uid, node := range o.vmi.Status.ActivePods {
			if !withNode || node != "" {
				out = append(out, uid)
			}
		}
		return sortedUIDs(out)
	}
	sf := o.vm.Status.StartFailure
	if sf != nil || o.Phase() == kubevirtv1.Failed {
		if o.vmi != nil {
			uids = append(uids, o.vmi.UID)
		}
		if sf != nil && sf.LastFailedVMIUID != "" && (o.vmi == nil || sf.LastFailedVMIUID != o.vmi.UID) {
			uids = append(uids, sf.LastFailedVMIUID)
		}
		return append(uids, pods(false)...), 0
	}
	if o.vmi == nil {
		return nil, 0
	}
	switch o.vmi.Status.Phase {
	case "", kubevirtv1.Pending, kubevirtv1.Scheduling, kubevirtv1.Scheduled:
	default:
		return nil, 0
	}
	onNode := pods(true)
	unsynced := o.vmiCondition(kubevirtv1.VirtualMachineInstanceSynchronized)
	if len(onNode) == 0 && (volumes || o.vmi.Status.Phase != kubevirtv1.Scheduled && (unsynced == nil || unsynced.Status != corev1.ConditionFalse)) {
		return nil, 0 // nobody works on it yet: its next step changes the VMI
	}
	if age := now.Sub(o.vmi.CreationTimestamp.Time); age < StartGrace {
		return nil, StartGrace - age
	}
	return append([]types.UID{o.vmi.UID}, onNode...), CauseRecheck
}

func sortedUIDs(u []types.UID) []types.UID {
	for i := 1; i < len(u); i++ {
		for j := i; j > 0 && u[j] < u[j-1]; j-- {
			u[j], u[j-1] = u[j-1], u[j]
		}
	}
	return u
}

// ReadCause lists the Warning Events of each object in uids in namespace
// (core/v1 Events, field selector involvedObject.uid=<uid>,type=Warning: one
// List per UID, served by the API server, so r should be an uncached reader
// and needs get/list on events in namespace) and returns PickCause of them.
// No uids: no read, the zero Cause. Errors are the API server's, wrapped.
func ReadCause(ctx context.Context, r client.Reader, namespace string, uids []types.UID) (Cause, error) {
	var all []corev1.Event
	for _, uid := range uids {
		list := &corev1.EventList{}
		sel := fields.Set{"involvedObject.uid": string(uid), "type": corev1.EventTypeWarning}.AsSelector()
		if err := r.List(ctx, list, client.InNamespace(namespace), client.MatchingFieldsSelector{Selector: sel}); err != nil {
			return Cause{}, fmt.Errorf("cannot list the Events of %s: %w", uid, err)
		}
		all = append(all, list.Items...)
	}
	return PickCause(all), nil
}

// consequenceReasons are Warning Event reasons that say only that the
// machine failed, not why: virt-handler records Stopped "The
// VirtualMachineInstance crashed." (VMICrashed, recordPhaseChangeEvent in
// pkg/virt-handler/vm.go) in the same second as the SyncFailed that made
// the VMI Failed.
var consequenceReasons = map[string]bool{string(kubevirtv1.Stopped): true}

// PickCause returns the newest Warning Event of events (by its last time:
// series.lastObservedTime, lastTimestamp, eventTime, then firstTimestamp;
// ties keep the first), trimmed by TrimEventMessage. An Event that only
// reports the failure (virt-handler's Stopped "The VirtualMachineInstance
// crashed.") is taken only when no other Warning is there. Normal Events
// are ignored; none left gives the zero Cause. Pure.
func PickCause(events []corev1.Event) Cause {
	var best *corev1.Event
	var bestAt time.Time
	bestConsequence := false
	for i := range events {
		e := &events[i]
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		at, consequence := eventTime(e), consequenceReasons[e.Reason]
		switch {
		case best == nil,
			bestConsequence && !consequence,
			bestConsequence == consequence && at.After(bestAt):
			best, bestAt, bestConsequence = e, at, consequence
		}
	}
	if best == nil {
		return Cause{}
	}
	source := best.Source.Component
	if source == "" {
		source = best.ReportingController
	}
	return Cause{
		Reason:  best.Reason,
		Source:  source,
		Kind:    best.InvolvedObject.Kind,
		Name:    best.InvolvedObject.Name,
		Message: TrimEventMessage(best.Message),
	}
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.FirstTimestamp.Time
	}
}

// containerID matches the 64-hex sandbox and container IDs the container
// runtime puts in its errors: a new one each retry.
var containerID = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// TrimEventMessage keeps what a user needs of an Event message, at most
// MaxCauseMessage bytes (cut on a rune boundary, ending in "…"):
//
//   - Multus thick plugin's error, as the kubelet's FailedCreatePodSandBox
//     relays it ("Failed to create pod sandbox: rpc error: ... CNI request
//     failed with status 400: 'ContainerID:... ERRORED: <error>\n':
//     StdinData: {...}"): the <error> between "ERRORED: " (multus-cni
//     pkg/server/server.go) and "StdinData" (pkg/server/api/shim.go), which
//     names the pod, the network and the plugin's own error;
//   - another CNI failure ("... plugin type=\"multus\" name=... failed
//     (add): <error>", libcni): the <error> after the last "failed (add): ";
//   - otherwise the message, without a leading "Failed to create pod
//     sandbox: rpc error: code = Unknown desc = ".
//
// 64-hex container and sandbox IDs, new at every kubelet retry, become
// "<id>", so the result (and a status built from it) does not change while
// the same failure repeats. Runs of white space (the newline Multus ends
// its error with) become one space; trailing quotes and colons go.
func TrimEventMessage(msg string) string {
	m := msg
	if i := strings.Index(m, "ERRORED: "); i >= 0 {
		m = m[i+len("ERRORED: "):]
	} else if i := strings.LastIndex(m, "failed (add): "); i >= 0 {
		m = m[i+len("failed (add): "):]
	} else {
		m = strings.TrimPrefix(m, "Failed to create pod sandbox: ")
		m = strings.TrimPrefix(m, "rpc error: code = Unknown desc = ")
	}
	if i := strings.Index(m, "StdinData"); i >= 0 {
		m = m[:i]
	}
	m = containerID.ReplaceAllString(m, "<id>")
	m = strings.TrimRight(strings.TrimSpace(m), " :'\n\t")
	m = strings.Join(strings.Fields(m), " ")
	if len(m) <= MaxCauseMessage {
		return m
	}
	const ellipsis = "…"
	cut := MaxCauseMessage - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + ellipsis
}

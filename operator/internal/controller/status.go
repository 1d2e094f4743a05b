package controller

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/nodenet"
)

// computeStatus turns what a pass observed into Wukong.status. It is a pure
// function of the scope (plus the previous conditions, for transition times),
// table-tested without an API server.
func computeStatus(w *v1alpha1.Wukong, s *scope) {
	st := &w.Status
	st.VMName = ""
	if s.vm.Exists() {
		st.VMName = w.Name
	}
	st.NodeName = s.vm.Node()
	st.Resources = resourcesStatus(w, s)
	if s.netDone {
		st.Networks = networkStatuses(s)
	}
	if s.volsDone {
		st.Volumes = volumeStatuses(w, s.vols)
		hotplugStatuses(st.Volumes, s.vm)
		st.Volumes = append(st.Volumes, s.detaching...)
	}
	st.Disks, st.ImportProgress = diskSummary(st.Volumes)

	setNetworksConfigured(w, s)
	setVolumesBound(w, s)
	setRestartRequired(w, s)
	setSSHKeysSynchronized(w, s)
	setReady(w, s)
	setMigration(w, s)
	setResources(w, s)
	setNodeLost(w, s, s.maint.policy)
	stalled := setProgress(w, s)
	st.Phase = phase(s, stalled)
	if s.transient == nil {
		st.ObservedGeneration = w.Generation
	}
}

func networkStatuses(s *scope) []v1alpha1.NetworkStatus {
	byName := map[string]kubevirt.Interface{}
	for _, i := range s.vm.Interfaces() {
		byName[i.Name] = i
	}
	var out []v1alpha1.NetworkStatus
	if pod, ok := byName[kubevirt.PodNetworkName]; ok {
		out = append(out, v1alpha1.NetworkStatus{
			Name: pod.Name, Interface: pod.InterfaceName, IPAddress: pod.IP, IPAddresses: pod.IPs, MACAddress: pod.MAC,
			IPSource: observedIPSource(pod),
		})
	}
	for _, n := range s.net.NICs {
		ns := v1alpha1.NetworkStatus{Name: n.Name, MACAddress: n.MAC}
		if n.NADName != "" {
			ns.NADName = n.NetworkName()
		}
		if i, ok := byName[n.Name]; ok {
			ns.Interface, ns.IPAddress, ns.IPAddresses = i.InterfaceName, i.IP, i.IPs
			if i.MAC != "" {
				ns.MACAddress = i.MAC
			}
			ns.IPSource = observedIPSource(i)
		}
		showConfiguredAddress(&ns, s.w)
		explainAgentUnsupported(&ns, s.vm.GuestAgent())
		out = append(out, ns)
	}
	return out
}

// volumeStatuses is status.volumes: one entry per observed disk, with
// whose claim it is (claim: Existing for a claimName disk, Retained for
// one with deletionPolicy Retain, else Owned).
func volumeStatuses(w *v1alpha1.Wukong, vols []storage.Observation) []v1alpha1.VolumeStatus {
	retain := map[string]bool{}
	for _, d := range w.Spec.Disks {
		retain[d.Name] = d.DeletionPolicy == v1alpha1.DiskDeletionPolicyRetain
	}
	out := make([]v1alpha1.VolumeStatus, 0, len(vols))
	for _, v := range vols {
		vs := v1alpha1.VolumeStatus{
			Name:      v.Name,
			PVCName:   v.ClaimName,
			Claim:     v1alpha1.VolumeClaimOwned,
			Bound:     v.Bound,
			Phase:     string(v.Phase),
			Progress:  v.Progress,
			CloneType: v.CloneType,
		}
		switch {
		case v.Existing:
			vs.Claim = v1alpha1.VolumeClaimExisting
		case retain[v.Name]:
			vs.Claim = v1alpha1.VolumeClaimRetained
		}
		if !v.Capacity.IsZero() {
			vs.Size = v.Capacity.String()
		}
		if v.Phase != storage.PhaseBound {
			vs.Message = v.Message
		}
		out = append(out, vs)
	}
	return out
}

// diskSummary returns status.disks ("<Bound>/<all>", empty without disks)
// and status.importProgress: the progress of the least-advanced Importing
// disk, "N/A" when CDI has not reported one for it, empty when none imports.
func diskSummary(vols []v1alpha1.VolumeStatus) (disks, importProgress string) {
	if len(vols) == 0 {
		return "", ""
	}
	ready, least := 0, math.Inf(1)
	for _, v := range vols {
		switch storage.Phase(v.Phase) {
		case storage.PhaseBound:
			ready++
		case storage.PhaseImporting:
			p, ok := parsePercent(v.Progress)
			if !ok {
				p, v.Progress = -1, "N/A"
			}
			if p < least {
				least, importProgress = p, v.Progress
			}
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(vols)), importProgress
}

// parsePercent reads CDI's progress text ("45.50%", see DataVolumeProgress
// in kubevirt.io/containerized-data-importer-api core/v1beta1).
func parsePercent(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	return f, err == nil && strings.HasSuffix(s, "%")
}

// markedOrUnobserved is the start of a step's condition: with a problem
// of type t, it marks t False with the first one; when the step did not
// observe this pass (observed false), t keeps what was there. It reports
// whether either happened, so the caller has nothing left to decide.
func markedOrUnobserved(o *v1alpha1.Wukong, s *scope, t string, observed bool) bool {
	if p, ok := s.problemFor(t); ok {
		conditions.MarkFalse(o, t, p.Reason, "%s", p.String())
		return true
	}
	return !observed
}

// setNetworksConfigured: True when every NIC has its NAD and every node
// bridge policy is Available; False with the first problem or what is
// pending.
func setNetworksConfigured(o *v1alpha1.Wukong, s *scope) {
	const t = v1alpha1.NetworksConfiguredCondition
	if markedOrUnobserved(o, s, t, s.netDone) {
		return
	}
	if s.bridgePending != "" {
		conditions.MarkFalse(o, t, v1alpha1.ReasonBridgePending, "%s", s.bridgePending)
		return
	}
	n, bridges := len(s.net.NICs), 0
	for _, g := range s.bridges {
		if nodenet.ConfiguresNodes(g.Decl) {
			bridges++
		}
	}
	conditions.MarkTrue(o, t, v1alpha1.ReasonNADCreated, "%d secondary network(s) and %d node bridge(s) ready", n, bridges)
}

// setVolumesBound: True when every claim is bound; False with the first
// problem, or Importing (with progress), WaitForFirstConsumer or Pending.
func setVolumesBound(o *v1alpha1.Wukong, s *scope) {
	const t = v1alpha1.VolumesBoundCondition
	if markedOrUnobserved(o, s, t, s.volsDone) {
		return
	}
	var importing, wffc, pending []string
	for _, v := range s.vols {
		switch v.Phase {
		case storage.PhaseBound:
		case storage.PhaseImporting:
			p := v.Progress
			if p == "" {
				p = "N/A"
			}
			importing = append(importing, v.Name+" "+p)
		case storage.PhaseWaitForFirstConsumer:
			wffc = append(wffc, v.Name)
		default:
			pending = append(pending, v.Name)
		}
	}
	switch {
	case len(importing) > 0:
		conditions.MarkFalse(o, t, v1alpha1.ReasonImporting, "importing: %s", strings.Join(importing, ", "))
	case len(pending) > 0:
		conditions.MarkFalse(o, t, v1alpha1.ReasonVolumesPending, "waiting for claims to bind: %s", strings.Join(pending, ", "))
	case len(wffc) > 0:
		conditions.MarkFalse(o, t, v1alpha1.ReasonWaitForFirstConsumer, "bound when the VM starts (WaitForFirstConsumer): %s", strings.Join(wffc, ", "))
	default:
		conditions.MarkTrue(o, t, v1alpha1.ReasonVolumesBound, "%d disk(s) bound", len(s.vols))
	}
}

// setRestartRequired is True while a spec change waits for a guest
// restart: it lists each (restartReasons: disks and NICs Wukong does not
// attach or detach live, with why; restartItems: cpu and memory changes
// KubeVirt cannot apply live, with why, and KubeVirt's own
// RestartRequired for the rest). Absent otherwise.
func setRestartRequired(o *v1alpha1.Wukong, s *scope) {
	const t = v1alpha1.RestartRequiredCondition
	if items := append(restartReasons(s), restartItems(s)...); len(items) > 0 {
		conditions.MarkTrue(o, t, v1alpha1.ReasonRestartRequired,
			"takes effect after the guest restarts (virtctl restart %s): %s", o.Name, strings.Join(items, "; "))
		return
	}
	if s.vm.Exists() || !s.volsDone {
		conditions.Delete(o, t)
	}
}

// setReady: True when the guest runs (or is intentionally stopped and
// everything is in place); else False with the first problem, what the VM
// waits for, or KubeVirt's reason.
func setReady(o *v1alpha1.Wukong, s *scope) {
	const t = v1alpha1.ReadyCondition
	switch {
	case len(s.problems) > 0:
		p := s.problems[0]
		conditions.MarkFalse(o, t, p.Reason, "%s", p.String())
	case s.predecessor != "":
		conditions.MarkFalse(o, t, v1alpha1.ReasonWaitingForPredecessor, "waiting for a deleted Wukong's objects to go: %s", s.predecessor)
	case s.transient != nil && !s.vm.Exists():
		conditions.MarkUnknown(o, t, v1alpha1.ReasonTransientError, "retrying after an error talking to the API server")
	case !s.vm.Exists():
		conditions.MarkFalse(o, t, v1alpha1.ReasonWaitingForDependencies, "VirtualMachine not created: %s", s.waiting)
	case s.restoring != "":
		conditions.MarkFalse(o, t, v1alpha1.ReasonRestoring, "KubeVirt is restoring the disks from a snapshot (VirtualMachineRestore %s); the VirtualMachine is left alone until it completes", s.restoring)
	case s.vm.Ready() && migratingReady(s) != "":
		conditions.MarkTrue(o, t, v1alpha1.ReasonMigrating, "%s", migratingReady(s))
	case s.vm.Ready():
		conditions.MarkTrue(o, t, v1alpha1.ReasonRunning, "running on node %s%s", s.vm.Node(), drainNote(o, s))
	case s.vm.Stopped():
		conditions.MarkTrue(o, t, v1alpha1.ReasonStopped, "%s", stoppedMessage(s.vm.RunStrategy(), o.Name))
	default:
		reason, msg := s.vm.NotReadyReason()
		if reason == "" {
			reason, msg = v1alpha1.ReasonStarting, "the VirtualMachine is starting"
		}
		if reason == kubevirt.ReasonUnschedulable {
			msg = unschedulableMessage(o.Name, msg)
		}
		if reason == kubevirt.ReasonImagePullFailed && len(o.Spec.Disks) == 0 {
			msg = fmt.Sprintf("spec.osImage: container disk %s cannot be pulled: %s", o.Spec.OSImage, msg)
		}
		conditions.MarkFalse(o, t, reason, "%s", msg)
	}
}

// schedulerCauses maps the per-node reasons kube-scheduler writes into an
// unschedulable pod's PodScheduled message to the Wukong field that feeds
// each. The phrases are the scheduler plugins' own texts
// (pkg/scheduler/framework/plugins: nodeaffinity ErrReasonPod,
// tainttoleration "node(s) had untolerated taint(s)", interpodaffinity
// ErrReasonAntiAffinityRulesNotMatch, noderesources "Insufficient <name>").
// "didn't satisfy existing pods anti-affinity rules" is another pod's rule,
// no field of this Wukong's, so it is not here.
var schedulerCauses = []struct{ phrase, field string }{
	{"didn't match Pod's node affinity/selector", "spec.highAvailability.nodeSelector"},
	{"untolerated taint", "spec.highAvailability.tolerations"},
	{"didn't match pod anti-affinity rules", "spec.highAvailability.antiAffinity"},
	{"Insufficient cpu", "spec.cpu"},
	{"Insufficient memory", "spec.memory"},
}

// unschedulableMessage is Ready's message for a VM no node can run: the
// scheduler's verdict as KubeVirt copied it from the launcher pod's
// PodScheduled condition, quoted whole, then the fields of this Wukong
// behind the node reasons it names, if any (a VM whose own fields are the
// cause runs only after a change and a restart). It names no field the
// scheduler did not blame.
func unschedulableMessage(name, scheduler string) string {
	msg := "no node can run the VM; the scheduler says: " + scheduler
	var fields []string
	for _, c := range schedulerCauses {
		if strings.Contains(scheduler, c.phrase) {
			fields = append(fields, c.field)
		}
	}
	if len(fields) == 0 {
		return msg
	}
	return msg + " (see " + strings.Join(fields, ", ") + "; after changing them, restart the VM: virtctl restart " + name + ")"
}

// stoppedMessage is Ready's message for a machine its run strategy keeps
// stopped. It suggests `virtctl start` only where that starts it (Halted:
// start sets Always; Manual: start asks for a run), per the virtctl table of
// KubeVirt's user guide, "Run Strategies". The phase and this message follow
// the VM, whoever changed its run strategy.
func stoppedMessage(rs kubevirtv1.VirtualMachineRunStrategy, name string) string {
	if rs == kubevirtv1.RunStrategyOnce {
		return "stopped after its one run (run strategy Once)"
	}
	return fmt.Sprintf("stopped (run strategy %s); start it with virtctl start %s", rs, name)
}

// vmStalled: KubeVirt reasons that will not heal without a change.
func vmStalled(s *scope) bool {
	if !s.vm.Exists() || s.vm.Ready() {
		return false
	}
	reason, _ := s.vm.NotReadyReason()
	switch reason {
	case kubevirt.ReasonUnschedulable, kubevirt.ReasonImagePullFailed, kubevirt.ReasonCrashLoopBackOff:
		return true
	}
	return false
}

// setProgress sets the kstatus pair: Stalled (with Ready's reason) when a
// problem needs a change, Reconciling while converging (VirtualMachineUpdatePending
// while the VirtualMachine cannot be written), neither when Ready.
// It returns whether the Wukong is stalled.
func setProgress(o *v1alpha1.Wukong, s *scope) bool {
	ready := conditions.Get(o, v1alpha1.ReadyCondition)
	switch {
	case len(s.problems) > 0 || vmStalled(s):
		conditions.MarkStalled(o, ready.Reason, "%s", ready.Message)
		return true
	case s.notWritten != nil:
		// What is observed stays (phase, node, addresses, Ready): the
		// change waits for the write.
		what := "create"
		if s.vm.Exists() {
			what = "update"
		}
		conditions.MarkReconciling(o, v1alpha1.ReasonVMUpdatePending, "the change waits for the VirtualMachine %s, retried with backoff: %s", what, s.notWritten)
	case ready.Status == "True" && s.transient == nil:
		conditions.ClearProgress(o)
	default:
		conditions.MarkReconciling(o, ready.Reason, "%s", ready.Message)
	}
	return false
}

func phase(s *scope, stalled bool) v1alpha1.Phase {
	switch {
	case s.restoring != "":
		// KubeVirt deletes and recreates the claims while it restores: a
		// disk may look foreign for a pass (real KubeVirt v1.9 on the local
		// cluster: phases Running Stopped Restoring Error Restoring); the
		// conditions keep saying what they see, the phase what happens.
		return v1alpha1.PhaseRestoring
	case stalled:
		return v1alpha1.PhaseError
	case !s.vm.Exists():
		return v1alpha1.PhasePending
	case s.vm.Ready() && s.vm.Migrating(), s.vm.MigrationSettling():
		// Settling: the guest runs (on the source or already on the
		// target) while KubeVirt does not report it Ready around the
		// handover; it never stopped (not Creating).
		return v1alpha1.PhaseMigrating
	case s.vm.Ready():
		return v1alpha1.PhaseRunning
	case s.vm.Stopped(), s.vm.Stopping() && s.vm.RunStrategy() == kubevirtv1.RunStrategyHalted:
		return v1alpha1.PhaseStopped // a Halted VM whose guest is still shutting down is on its way there
	default:
		return v1alpha1.PhaseCreating
	}
}

package sandbox

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Live migration, played as KubeVirt v1.9.0 plays it (no guest runs: the
// memory copy is a wait of MigrationRunTime):
//
//   - virt-controller's evacuation controller
//     (pkg/virt-controller/watch/drain/evacuation/evacuation.go): a running
//     VMI that KubeVirt's eviction admitter marked (status.evacuationNodeName
//     equal to its node), whose eviction strategy migrates
//     (VMIMigratableOnEviction) and that is LiveMigratable, with no
//     unfinished migration and one active pod, gets a
//     VirtualMachineInstanceMigration generateName kubevirt-evacuation-,
//     annotated kubevirt.io/evacuationMigration=<node>, priority
//     system-critical, and the Event SuccessfulCreate "Created Migration
//     <name>" on the VMI. virt-controller's VMI controller sets the VMI
//     condition EvictionRequested (pkg/virt-controller/watch/vmi/lifecycle.go).
//   - virt-controller's migration controller
//     (pkg/virt-controller/watch/migration/migration.go processMigrationPhase)
//     and virt-handler (pkg/virt-handler/migration-source.go,
//     migration-target.go), for any migration, a user's (`virtctl migrate`)
//     or the evacuation's: phases Pending (a second unfinished migration of
//     the same VMI fails at once), Scheduling (a target virt-launcher pod
//     labelled kubevirt.io/migrationJobUID, with the VMI's node selector,
//     affinity and tolerations plus a required anti-affinity to the VMI's
//     other pods on kubernetes.io/hostname, createMigrationPodAntiAffinityRule;
//     the real kube-scheduler places it, so a cordoned node or the VMI's
//     affinity is respected; an unschedulable target keeps the migration
//     Scheduling), Scheduled (the VMI's status.migrationState gets
//     migrationUid, sourceNode, targetNode, targetPod, sourcePod, and the
//     VMI the label kubevirt.io/migrationTargetNodeName), PreparingTarget,
//     TargetReady (targetNodeAddress: the target's InternalIP), Running
//     (startTimestamp, mode PreCopy), then Succeeded: the VMI's
//     status.nodeName, label kubevirt.io/nodeName and activePods move to
//     the target, evacuationNodeName is cleared (ackMigrationCompletion),
//     migrationState gets completed and endTimestamp, the source launcher
//     pod completes (phase Succeeded) and the VMI gets the Event Migrated
//     "The VirtualMachineInstance migrated to node <target>.". The migration
//     keeps a copy of the final migrationState; its finalizer
//     kubevirt.io/migrationJobFinalize (added by KubeVirt's migration
//     mutator) is removed once it is final.
//   - A failed migration: a VMI annotated ForceMigrationFailureAnnotation
//     (KubeVirt's own functional-test knob, read by virt-launcher's
//     migrate) fails once Running: migrationState gets failed, completed,
//     endTimestamp and failureReason MessageForcedMigrationFailure; the
//     target pod is deleted, the VMI stays on its node, the migration is
//     Failed and the VMI gets the Warning Event Migrated
//     "VirtualMachineInstance migration uid <uid> failed. reason:<reason>".
//     A target pod deleted during the migration fails it with "Target pod
//     is down". An evacuation migration after a failed one waits KubeVirt's
//     backoff (handleMigrationBackoff: 20s after the failure, doubling for
//     each failure in a row).

const (
	// ForceMigrationFailureAnnotation on a VMI makes each of its
	// migrations fail once running, as KubeVirt's functional tests make it
	// fail (kubevirtv1.FuncTestForceLauncherMigrationFailureAnnotation,
	// read by virt-launcher's live-migration-source.go). Any value.
	ForceMigrationFailureAnnotation = kubevirtv1.FuncTestForceLauncherMigrationFailureAnnotation
	// MessageForcedMigrationFailure is the failureReason virt-launcher
	// reports for such a migration.
	MessageForcedMigrationFailure = "Failed migration to satisfy functional test condition"
	// MessageTargetPodDown is virt-controller's failureReason when the
	// target pod went away.
	MessageTargetPodDown = "Target pod is down"

	// MigrationRunTime is how long a simulated migration stays Running
	// (the memory copy) before it completes or fails: at least this, at
	// most a second more (the VMI's startTimestamp it counts from has a
	// second's resolution).
	MigrationRunTime = 2 * time.Second
	// migrationStep is the pause between the other phases.
	migrationStep = 100 * time.Millisecond
	// migrationBackoffStart is handleMigrationBackoff's first backoff.
	migrationBackoffStart = 20 * time.Second
)

// migrationSim plays virt-controller's migration controller and the
// virt-handlers of both nodes (see above).
type migrationSim struct {
	kubevirtSim
}

func (r *migrationSim) setup(mgr ctrl.Manager) error {
	r.c, r.live = mgr.GetClient(), mgr.GetAPIReader()
	byVMI := func(ctx context.Context, namespace, vmi string) []reconcile.Request {
		list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
		if err := r.c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if list.Items[i].Spec.VMIName == vmi {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
	return ctrl.NewControllerManagedBy(mgr).Named("sim-migration").
		For(&kubevirtv1.VirtualMachineInstanceMigration{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			if _, ok := o.GetLabels()[kubevirtv1.MigrationJobLabel]; !ok {
				return nil
			}
			if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "VirtualMachineInstance" {
				return byVMI(ctx, o.GetNamespace(), ref.Name)
			}
			return nil
		})).
		Complete(r)
}

func (r *migrationSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *migrationSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	m := &kubevirtv1.VirtualMachineInstanceMigration{}
	if err := r.live.Get(ctx, req.NamespacedName, m); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if m.IsFinal() || m.DeletionTimestamp != nil {
		if m.DeletionTimestamp != nil && !m.IsFinal() {
			// A deleted unfinished migration is aborted: its target goes.
			if err := r.deleteTargetPods(ctx, m); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{}, r.removeFinalizer(ctx, m)
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.live.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.Spec.VMIName}, vmi); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		vmi = nil
	}
	before := m.Status.DeepCopy()
	if vmi == nil || vmi.IsFinal() || vmi.DeletionTimestamp != nil {
		return ctrl.Result{}, r.failMigration(ctx, m, before, vmi, "")
	}
	var after time.Duration
	switch m.Status.Phase {
	case kubevirtv1.MigrationPhaseUnset:
		busy, err := r.otherMigrationRunning(ctx, m)
		if err != nil {
			return ctrl.Result{}, err
		}
		if busy {
			// "VMI is not eligible for migration because another
			// migration job is in progress."
			return ctrl.Result{}, r.failMigration(ctx, m, before, nil, "")
		}
		setMigrationPhase(m, kubevirtv1.MigrationPending)
	case kubevirtv1.MigrationPending:
		if wait, err := r.backoff(ctx, m); err != nil || wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, err
		}
		if _, err := r.targetPod(ctx, m, vmi, true); err != nil {
			return ctrl.Result{}, err
		}
		setMigrationPhase(m, kubevirtv1.MigrationScheduling)
	case kubevirtv1.MigrationScheduling:
		pod, err := r.targetPod(ctx, m, vmi, false)
		if err != nil {
			return ctrl.Result{}, err
		}
		if pod == nil {
			return ctrl.Result{}, r.failMigration(ctx, m, before, vmi, MessageTargetPodDown)
		}
		if pod.Spec.NodeName == "" {
			return ctrl.Result{}, nil // the pod's binding brings it back
		}
		if err := r.startMigrationState(ctx, vmi, m, pod); err != nil {
			return ctrl.Result{}, err
		}
		setMigrationPhase(m, kubevirtv1.MigrationScheduled)
		after = migrationStep
	case kubevirtv1.MigrationScheduled:
		setMigrationPhase(m, kubevirtv1.MigrationPreparingTarget)
		after = migrationStep
	case kubevirtv1.MigrationPreparingTarget:
		if err := r.updateMigrationState(ctx, vmi, m, func(s *kubevirtv1.VirtualMachineInstanceMigrationState) error {
			node := &corev1.Node{}
			if err := r.live.Get(ctx, client.ObjectKey{Name: s.TargetNode}, node); err != nil {
				return err
			}
			s.TargetNodeAddress = nodeAddress(node)
			return nil
		}); err != nil {
			return ctrl.Result{}, err
		}
		setMigrationPhase(m, kubevirtv1.MigrationTargetReady)
		after = migrationStep
	case kubevirtv1.MigrationTargetReady:
		if err := r.updateMigrationState(ctx, vmi, m, func(s *kubevirtv1.VirtualMachineInstanceMigrationState) error {
			s.StartTimestamp = ptr.To(metav1.Now())
			s.Mode = kubevirtv1.MigrationPreCopy
			return nil
		}); err != nil {
			return ctrl.Result{}, err
		}
		setMigrationPhase(m, kubevirtv1.MigrationRunning)
		after = MigrationRunTime
	case kubevirtv1.MigrationRunning:
		pod, err := r.targetPod(ctx, m, vmi, false)
		if err != nil {
			return ctrl.Result{}, err
		}
		if pod == nil {
			return ctrl.Result{}, r.failMigration(ctx, m, before, vmi, MessageTargetPodDown)
		}
		if s := vmi.Status.MigrationState; s != nil && s.StartTimestamp != nil {
			// startTimestamp is stored to the second (metav1.Time), so
			// the transfer started within the second after it: wait from
			// the end of that second, for at least MigrationRunTime.
			if left := time.Until(s.StartTimestamp.Add(time.Second + MigrationRunTime)); left > 0 {
				return ctrl.Result{RequeueAfter: left}, nil
			}
		}
		if _, fail := vmi.Annotations[ForceMigrationFailureAnnotation]; fail {
			return ctrl.Result{}, r.failMigration(ctx, m, before, vmi, MessageForcedMigrationFailure)
		}
		if err := r.completeMigration(ctx, vmi, m, pod); err != nil {
			return ctrl.Result{}, err
		}
		setMigrationPhase(m, kubevirtv1.MigrationSucceeded)
		m.Status.MigrationState = vmi.Status.MigrationState.DeepCopy()
	}
	if err := r.updateMigrationStatus(ctx, m, before); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

func setMigrationPhase(m *kubevirtv1.VirtualMachineInstanceMigration, phase kubevirtv1.VirtualMachineInstanceMigrationPhase) {
	m.Status.Phase = phase
	m.Status.PhaseTransitionTimestamps = append(m.Status.PhaseTransitionTimestamps,
		kubevirtv1.VirtualMachineInstanceMigrationPhaseTransitionTimestamp{Phase: phase, PhaseTransitionTimestamp: metav1.Now()})
}

func (r *migrationSim) updateMigrationStatus(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration, before *kubevirtv1.VirtualMachineInstanceMigrationStatus) error {
	if equality.Semantic.DeepEqual(before, &m.Status) {
		return nil
	}
	if err := r.c.Status().Update(ctx, m); err != nil {
		return err
	}
	log.FromContext(ctx).Info("migration phase", "vmi", m.Spec.VMIName, "phase", m.Status.Phase)
	if m.IsFinal() {
		return r.removeFinalizer(ctx, m)
	}
	return nil
}

func (r *migrationSim) removeFinalizer(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration) error {
	if !controllerutil.RemoveFinalizer(m, kubevirtv1.VirtualMachineInstanceMigrationFinalizer) {
		return nil
	}
	return client.IgnoreNotFound(r.c.Update(ctx, m))
}

// otherMigrationRunning: another unfinished migration of the same VMI
// that started before m (canMigrateVMI).
func (r *migrationSim) otherMigrationRunning(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration) (bool, error) {
	list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
	if err := r.live.List(ctx, list, client.InNamespace(m.Namespace)); err != nil {
		return false, err
	}
	for _, o := range list.Items {
		if o.UID != m.UID && o.Spec.VMIName == m.Spec.VMIName && !o.IsFinal() && o.Status.Phase != kubevirtv1.MigrationPhaseUnset {
			return true, nil
		}
	}
	return false, nil
}

// backoff is handleMigrationBackoff: among the VMI's evacuation
// migrations, newest first, the newest (m) waits 20s after the failure of
// the one before it when that one failed, doubling for each further
// failed one before the last success.
func (r *migrationSim) backoff(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration) (time.Duration, error) {
	if _, evacuation := m.Annotations[kubevirtv1.EvacuationMigrationAnnotation]; !evacuation {
		return 0, nil
	}
	if _, ignore := m.Annotations[kubevirtv1.FuncTestForceIgnoreMigrationBackoffAnnotation]; ignore {
		return 0, nil
	}
	list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
	if err := r.live.List(ctx, list, client.InNamespace(m.Namespace)); err != nil {
		return 0, err
	}
	var eligible []kubevirtv1.VirtualMachineInstanceMigration
	for _, o := range list.Items {
		if _, ok := o.Annotations[kubevirtv1.EvacuationMigrationAnnotation]; ok && o.Spec.VMIName == m.Spec.VMIName {
			eligible = append(eligible, o)
		}
	}
	if len(eligible) < 2 {
		return 0, nil
	}
	slices.SortFunc(eligible, func(a, b kubevirtv1.VirtualMachineInstanceMigration) int {
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	if eligible[0].UID != m.UID {
		return 0, nil
	}
	backoff := time.Duration(0)
	for _, o := range eligible[1:] {
		if o.Status.Phase == kubevirtv1.MigrationSucceeded {
			break
		}
		if o.DeletionTimestamp == nil && o.Status.Phase == kubevirtv1.MigrationFailed {
			if backoff == 0 {
				backoff = migrationBackoffStart
			} else {
				backoff *= 2
			}
		}
	}
	if backoff == 0 {
		return 0, nil
	}
	var failed time.Time
	for _, t := range eligible[1].Status.PhaseTransitionTimestamps {
		if t.Phase == kubevirtv1.MigrationFailed {
			failed = t.PhaseTransitionTimestamp.Time
		}
	}
	return max(time.Until(failed.Add(backoff)), 0), nil
}

// targetPod returns m's target launcher pod (label
// kubevirt.io/migrationJobUID), creating it when create is set and there
// is none.
func (r *migrationSim) targetPod(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration, vmi *kubevirtv1.VirtualMachineInstance, create bool) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.live.List(ctx, pods, client.InNamespace(m.Namespace), client.MatchingLabels{kubevirtv1.MigrationJobLabel: string(m.UID)}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			return p, nil
		}
	}
	if !create {
		return nil, nil
	}
	pod, err := r.newLauncherPod(ctx, vmi)
	if err != nil {
		return nil, err
	}
	delete(pod.Labels, kubevirtv1.NodeNameLabel)
	delete(pod.Labels, kubevirtv1.MigrationTargetNodeNameLabel)
	pod.Labels[kubevirtv1.MigrationJobLabel] = string(m.UID)
	// createMigrationPodAntiAffinityRule: never on a node running one of
	// the VMI's pods.
	term := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labelCreatedBy: string(vmi.UID)}},
		TopologyKey:   corev1.LabelHostname,
	}
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &corev1.Affinity{}
	}
	if pod.Spec.Affinity.PodAntiAffinity == nil {
		pod.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{}
	}
	aa := pod.Spec.Affinity.PodAntiAffinity
	aa.RequiredDuringSchedulingIgnoredDuringExecution = append(aa.RequiredDuringSchedulingIgnoredDuringExecution, term)
	if err := controllerutil.SetControllerReference(vmi, pod, r.c.Scheme()); err != nil {
		return nil, err
	}
	if err := r.c.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("creating migration target pod: %w", err)
	}
	log.FromContext(ctx).Info("created migration target pod", "pod", pod.Name, "vmi", vmi.Name)
	return pod, nil
}

func (r *migrationSim) deleteTargetPods(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration) error {
	return r.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(m.Namespace),
		client.MatchingLabels{kubevirtv1.MigrationJobLabel: string(m.UID)}, client.GracePeriodSeconds(0))
}

// startMigrationState is virt-controller's handleTargetPodHandoff: the
// VMI's migrationState for m, and the target node label.
func (r *migrationSim) startMigrationState(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, m *kubevirtv1.VirtualMachineInstanceMigration, target *corev1.Pod) error {
	if s := vmi.Status.MigrationState; s != nil && s.MigrationUID == m.UID {
		return nil
	}
	source := ""
	for uid, node := range vmi.Status.ActivePods {
		if node == vmi.Status.NodeName {
			pod := &corev1.Pod{}
			list := &corev1.PodList{}
			if err := r.live.List(ctx, list, client.InNamespace(vmi.Namespace), client.MatchingLabels{labelCreatedBy: string(vmi.UID)}); err != nil {
				return err
			}
			for i := range list.Items {
				if list.Items[i].UID == uid {
					pod = &list.Items[i]
				}
			}
			source = pod.Name
		}
	}
	vmi.Status.MigrationState = &kubevirtv1.VirtualMachineInstanceMigrationState{
		MigrationUID: m.UID,
		SourceNode:   vmi.Status.NodeName,
		SourcePod:    source,
		TargetNode:   target.Spec.NodeName,
		TargetPod:    target.Name,
	}
	if vmi.Status.ActivePods == nil {
		vmi.Status.ActivePods = map[types.UID]string{}
	}
	vmi.Status.ActivePods[target.UID] = target.Spec.NodeName
	if vmi.Labels == nil {
		vmi.Labels = map[string]string{}
	}
	vmi.Labels[kubevirtv1.MigrationTargetNodeNameLabel] = target.Spec.NodeName
	if err := r.c.Update(ctx, vmi); err != nil {
		return err
	}
	log.FromContext(ctx).Info("migration target scheduled", "vmi", vmi.Name, "source", vmi.Status.MigrationState.SourceNode, "target", target.Spec.NodeName)
	return nil
}

// updateMigrationState changes the VMI's migrationState for m with f.
func (r *migrationSim) updateMigrationState(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, m *kubevirtv1.VirtualMachineInstanceMigration, f func(*kubevirtv1.VirtualMachineInstanceMigrationState) error) error {
	s := vmi.Status.MigrationState
	if s == nil || s.MigrationUID != m.UID {
		return fmt.Errorf("VMI %s has no migration state for migration %s", vmi.Name, m.Name)
	}
	if err := f(s); err != nil {
		return err
	}
	return r.c.Update(ctx, vmi)
}

// completeMigration is the target virt-handler's ackMigrationCompletion
// and the source pod's end.
func (r *migrationSim) completeMigration(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, m *kubevirtv1.VirtualMachineInstanceMigration, target *corev1.Pod) error {
	s := vmi.Status.MigrationState
	if s == nil || s.MigrationUID != m.UID {
		return fmt.Errorf("VMI %s has no migration state for migration %s", vmi.Name, m.Name)
	}
	now := metav1.Now()
	s.Completed = true
	s.EndTimestamp = &now
	s.TargetNodeDomainReadyTimestamp = &now
	s.TargetNodeDomainDetected = true
	sourcePod := s.SourcePod
	vmi.Status.NodeName = target.Spec.NodeName
	vmi.Status.EvacuationNodeName = ""
	vmi.Status.ActivePods = map[types.UID]string{target.UID: target.Spec.NodeName}
	vmi.Labels[kubevirtv1.NodeNameLabel] = target.Spec.NodeName
	removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceEvictionRequested)
	hotplugOnTarget(vmi) // a CPU or memory hotplug: the target has the new size
	if err := r.c.Update(ctx, vmi); err != nil {
		return err
	}
	if err := recordEvent(ctx, r.c, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", corev1.EventTypeNormal,
		string(kubevirtv1.Migrated), fmt.Sprintf("The VirtualMachineInstance migrated to node %s.", target.Spec.NodeName), "virt-handler", target.Spec.NodeName); err != nil {
		return err
	}
	// virt-launcher on the source exits once the domain left: the pod
	// completes (a kubelet would report it so).
	if sourcePod != "" {
		pod := &corev1.Pod{}
		if err := r.live.Get(ctx, client.ObjectKey{Namespace: vmi.Namespace, Name: sourcePod}, pod); err == nil && pod.DeletionTimestamp == nil {
			pod.Status.Phase = corev1.PodSucceeded
			if err := r.c.Status().Update(ctx, pod); client.IgnoreNotFound(err) != nil {
				return err
			}
		} else if client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	log.FromContext(ctx).Info("migration succeeded", "vmi", vmi.Name, "node", target.Spec.NodeName)
	return nil
}

// failMigration ends m Failed. With vmi and a reason, the VMI's
// migrationState records the failure (virt-handler's source report, or
// virt-controller's "Target pod is down") and the target pod goes.
func (r *migrationSim) failMigration(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration, before *kubevirtv1.VirtualMachineInstanceMigrationStatus, vmi *kubevirtv1.VirtualMachineInstance, reason string) error {
	if vmi != nil && reason != "" {
		if s := vmi.Status.MigrationState; s != nil && s.MigrationUID == m.UID && !s.Completed {
			now := metav1.Now()
			s.Failed, s.Completed = true, true
			s.EndTimestamp = &now
			if s.StartTimestamp == nil {
				s.StartTimestamp = &now
			}
			s.FailureReason = reason
			for uid, node := range vmi.Status.ActivePods {
				if node == s.TargetNode && node != vmi.Status.NodeName {
					delete(vmi.Status.ActivePods, uid)
				}
			}
			delete(vmi.Labels, kubevirtv1.MigrationTargetNodeNameLabel)
			if err := r.c.Update(ctx, vmi); err != nil {
				return err
			}
			if err := r.recordWarning(ctx, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", string(kubevirtv1.Migrated),
				fmt.Sprintf("VirtualMachineInstance migration uid %s failed. reason:%s", m.UID, reason), "virt-handler", vmi.Status.NodeName); err != nil {
				return err
			}
			m.Status.MigrationState = s.DeepCopy()
		}
		if err := r.deleteTargetPods(ctx, m); err != nil {
			return err
		}
		log.FromContext(ctx).Info("migration failed", "vmi", vmi.Name, "reason", reason)
	}
	setMigrationPhase(m, kubevirtv1.MigrationFailed)
	return r.updateMigrationStatus(ctx, m, before)
}

// evacuationSim plays virt-controller's evacuation controller (see above).
type evacuationSim struct {
	c    client.Client
	live client.Reader
}

func (r *evacuationSim) setup(mgr ctrl.Manager) error {
	r.c, r.live = mgr.GetClient(), mgr.GetAPIReader()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-evacuation").
		For(&kubevirtv1.VirtualMachineInstance{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			vmi, ok := o.(*kubevirtv1.VirtualMachineInstance)
			return ok && vmi.Status.EvacuationNodeName != ""
		}))).
		// A migration that ends lets the next one be made.
		Watches(&kubevirtv1.VirtualMachineInstanceMigration{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			m, ok := o.(*kubevirtv1.VirtualMachineInstanceMigration)
			if !ok {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.VMIName}}}
		})).
		Complete(r)
}

func (r *evacuationSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *evacuationSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.live.Get(ctx, req.NamespacedName, vmi); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !vmi.IsMarkedForEviction() || vmi.IsFinal() || vmi.DeletionTimestamp != nil || vmi.Status.NodeName != vmi.Status.EvacuationNodeName {
		return ctrl.Result{}, nil
	}
	// lifecycle.go: a VMI marked for eviction has EvictionRequested=True.
	if c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceEvictionRequested); c.Status != corev1.ConditionTrue {
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceEvictionRequested, corev1.ConditionTrue,
			kubevirtv1.VirtualMachineInstanceReasonEvictionRequested, "")
		if err := r.c.Update(ctx, vmi); err != nil {
			return ctrl.Result{}, err
		}
	}
	cfg, err := readClusterConfig(ctx, r.live)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !cfg.migratableOnEviction(vmi) || !vmi.IsMigratable() || migrating(vmi) {
		return ctrl.Result{}, nil // External, None, or not migratable: nothing migrates
	}
	list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
	if err := r.live.List(ctx, list, client.InNamespace(vmi.Namespace)); err != nil {
		return ctrl.Result{}, err
	}
	for _, m := range list.Items {
		if m.Spec.VMIName == vmi.Name && !m.IsFinal() {
			return ctrl.Result{}, nil // already migrating
		}
	}
	pods := &corev1.PodList{}
	if err := r.live.List(ctx, pods, client.InNamespace(vmi.Namespace), client.MatchingLabels{labelCreatedBy: string(vmi.UID)}); err != nil {
		return ctrl.Result{}, err
	}
	active := 0
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			active++
		}
	}
	if active > 1 {
		// Waiting on the pods of a previous migration to end.
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	m := &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "kubevirt-evacuation-",
			Namespace:    vmi.Namespace,
			Annotations: map[string]string{
				kubevirtv1.EvacuationMigrationAnnotation: vmi.Status.EvacuationNodeName,
				SimulatedAnnotation:                      "true",
			},
		},
		Spec: kubevirtv1.VirtualMachineInstanceMigrationSpec{
			VMIName:  vmi.Name,
			Priority: ptr.To(kubevirtv1.PrioritySystemCritical),
		},
	}
	if err := r.c.Create(ctx, m); err != nil {
		return ctrl.Result{}, fmt.Errorf("creating evacuation migration: %w", err)
	}
	if err := recordEvent(ctx, r.c, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", corev1.EventTypeNormal,
		"SuccessfulCreate", "Created Migration "+m.Name, "virtualmachine-controller", ""); err != nil {
		return ctrl.Result{}, err
	}
	log.FromContext(ctx).Info("evacuation: created migration", "vmi", vmi.Name, "migration", m.Name, "node", vmi.Status.EvacuationNodeName)
	return ctrl.Result{}, nil
}

// migrating is migrations.IsMigrating: started and not ended.
func migrating(vmi *kubevirtv1.VirtualMachineInstance) bool {
	s := vmi.Status.MigrationState
	return s != nil && s.StartTimestamp != nil && s.EndTimestamp == nil
}

func nodeAddress(node *corev1.Node) string {
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// recordEvent records an Event of type evType on obj as component on host
// (in namespace default for a cluster-scoped obj, as client-go's recorder
// does).
func recordEvent(ctx context.Context, c client.Client, obj client.Object, apiVersion, kind, evType, reason, msg, component, host string) error {
	now := metav1.Now()
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s.%x", obj.GetName(), now.UnixNano()),
			Namespace:   ns,
			Annotations: map[string]string{SimulatedAnnotation: "true"},
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: apiVersion, Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(),
			UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Reason: reason, Message: msg, Type: evType,
		Source:         corev1.EventSource{Component: component, Host: host},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: component, ReportingInstance: host,
	}
	if err := c.Create(ctx, ev); err != nil {
		return fmt.Errorf("recording Event %s: %w", reason, err)
	}
	return nil
}

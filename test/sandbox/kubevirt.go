package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const (
	// conditionPodScheduled is the VMI (and VM) condition of a VMI no node fits.
	conditionPodScheduled = "PodScheduled"
	// ReasonUnschedulable is the PodScheduled reason when no node fits.
	ReasonUnschedulable = "Unschedulable"
	// MessageRestartRequired is the VM RestartRequired condition message.
	MessageRestartRequired = "a non-live-updatable field was changed in the template spec"
)

// kubevirtSim plays virt-controller, the scheduler and virt-handler. A VM
// that should run (runStrategy Always, RerunOnFailure or Once, or the
// deprecated running: true) gets a VMI of its name whose spec is the
// template's. The VMI stays Pending while its volumes are not ready, then is
// given a virt-launcher pod (see launcherPod) that the real kube-scheduler
// binds; the VMI then becomes Running on that node with interfaces;
// otherwise it stays in Scheduling with the pod's PodScheduled=False. The VM's status mirrors the
// VMI. A VM that should not run has its VMI deleted.
type kubevirtSim struct {
	c client.Client
	// live reads the API server directly, so scheduling never decides on a
	// stale cache.
	live client.Reader
}

func (r *kubevirtSim) setup(mgr ctrl.Manager) error {
	r.c, r.live = mgr.GetClient(), mgr.GetAPIReader()
	// A claim or DataVolume changes whether the VMs using it can start:
	// only those VMs are looked at again, found through an index (a
	// namespace-wide fan-out makes every event cost O(VMs)). Scheduling is
	// kube-scheduler's: its binding of a launcher pod (watched below) is
	// what moves a waiting VMI on, so other VMIs' events are not watched.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kubevirtv1.VirtualMachine{}, indexVMClaims,
		func(o client.Object) []string {
			vm, ok := o.(*kubevirtv1.VirtualMachine)
			if !ok || vm.Spec.Template == nil {
				return nil
			}
			return claimNames(&vm.Spec.Template.Spec)
		}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("sim-kubevirt").
		// VMs are independent: each worker handles one VM at a time (the
		// workqueue never hands one key to two workers).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		For(&kubevirtv1.VirtualMachine{}).
		Owns(&kubevirtv1.VirtualMachineInstance{}).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(r.vmsUsingClaim)).
		Watches(&cdiv1.DataVolume{}, handler.EnqueueRequestsFromMapFunc(r.vmsUsingClaim)).
		Watches(&kubevirtv1.KubeVirt{}, handler.EnqueueRequestsFromMapFunc(r.kubevirtCRChanged)).
		// virt-launcher watches the Secrets of its access credentials.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.vmsUsingSecret)).
		// The scheduler's binding (or its Unschedulable verdict) of a
		// launcher pod moves its VMI on; the pod's controller is the VMI,
		// whose name is the VM's.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "VirtualMachineInstance" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}}}
			}
			return nil
		})).
		Complete(r)
}

// indexVMClaims indexes VMs by the claims (PVC or DataVolume names) their
// template's volumes use.
const indexVMClaims = "sim.claims"

// vmsUsingClaim: the VMs whose volumes name o (a PVC or DataVolume).
func (r *kubevirtSim) vmsUsingClaim(ctx context.Context, o client.Object) []reconcile.Request {
	vms := &kubevirtv1.VirtualMachineList{}
	if err := r.c.List(ctx, vms, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexVMClaims: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(vms.Items))
	for i := range vms.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&vms.Items[i])})
	}
	return reqs
}

func (r *kubevirtSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *kubevirtSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vm := &kubevirtv1.VirtualMachine{}
	if err := r.c.Get(ctx, req.NamespacedName, vm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if vm.DeletionTimestamp != nil {
		return ctrl.Result{}, nil // the garbage collector removes the VMI
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.c.Get(ctx, req.NamespacedName, vmi); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		vmi = nil
	}
	before := vm.Status.DeepCopy()
	if !shouldRun(vm, vmi) || stopRequested(vm, vmi) {
		if vmi != nil && vmi.DeletionTimestamp == nil {
			if err := r.c.Delete(ctx, vmi); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, err
			}
			// virt-controller deletes the launcher pod of a stopping VMI
			// itself. No kubelet runs here to confirm a bound pod's
			// termination, so it goes at once (grace period 0), as the
			// kubelet would once qemu exited; the scheduler then sees the
			// node freed.
			if err := r.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(vmi.Namespace),
				client.MatchingLabels{labelCreatedBy: string(vmi.UID)}, client.GracePeriodSeconds(0)); err != nil {
				return ctrl.Result{}, err
			}
			log.FromContext(ctx).Info("stopped VM: deleted its VMI and launcher pod")
		}
		stoppedStatus(vm, vmi != nil)
		trimStateChangeRequest(vm, vmi)
		return ctrl.Result{}, r.updateVMStatus(ctx, vm, before)
	}
	if vmi != nil && vmi.Status.Phase == kubevirtv1.Failed {
		return r.failedVMI(ctx, vm, vmi, before)
	}
	// Instance types and preferences (instancetype.go): captured in a
	// ControllerRevision, expanded into the VMI; a missing one fails the
	// sync before any VMI is made.
	expanded, itFailure, err := r.syncInstancetype(ctx, vm)
	if err != nil {
		return ctrl.Result{}, err
	}
	if itFailure != nil {
		failedInstancetypeSync(vm, itFailure)
		return ctrl.Result{RequeueAfter: launcherRetry}, r.updateVMStatus(ctx, vm, before)
	}
	if vmi == nil {
		// After a start failure the VM controller waits out the backoff
		// (startFailureBackoffTimeLeft), showing CrashLoopBackOff.
		if left := startBackoffLeft(vm, time.Now()); left > 0 {
			crashLoopStatus(vm, false)
			trimStateChangeRequest(vm, vmi)
			return ctrl.Result{RequeueAfter: left}, r.updateVMStatus(ctx, vm, before)
		}
		if vmi, err = r.createVMI(ctx, vm, expanded); err != nil {
			return ctrl.Result{}, err
		}
	}
	var hotplugRetry time.Duration
	switch {
	case vmi.DeletionTimestamp != nil:
	case vmi.Status.Phase != kubevirtv1.Running:
		if err := r.progressVMI(ctx, vmi); err != nil {
			return ctrl.Result{}, err
		}
	default:
		hp, err := r.syncHotplug(ctx, vm, vmi)
		if err != nil {
			return ctrl.Result{}, err
		}
		hotplugRetry = hp
		if err := r.syncRunningVMI(ctx, vmi); err != nil {
			return ctrl.Result{}, err
		}
	}
	runningStatus(vm, vmi, expanded)
	if err := r.hotplugResources(ctx, vm, vmi); err != nil {
		return ctrl.Result{}, err
	}
	trimStateChangeRequest(vm, vmi)
	var retry time.Duration
	if c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized); c.Status == corev1.ConditionFalse && c.Reason == reasonFailedCreate {
		retry = launcherRetry // virt-controller retries a failed sync
	}
	if hotplugRetry > 0 && (retry == 0 || hotplugRetry < retry) {
		retry = hotplugRetry
	}
	return ctrl.Result{RequeueAfter: retry}, r.updateVMStatus(ctx, vm, before)
}

// shouldRun follows virt-controller's syncRunStrategy
// (pkg/virt-controller/watch/vm/vm.go, v1.9.0): Always, RerunOnFailure and
// Once run, Halted does not; Manual keeps what exists and starts only on a
// start request (status.stateChangeRequests[0], which virt-api's start
// subresource adds: `virtctl start`).
func shouldRun(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
	if vm.Spec.RunStrategy == nil {
		return deref(vm.Spec.Running) //nolint:staticcheck // the deprecated field still works
	}
	switch *vm.Spec.RunStrategy {
	case kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyOnce:
		return true
	case kubevirtv1.RunStrategyManual:
		if vmi != nil {
			return vmi.DeletionTimestamp == nil
		}
		return firstRequest(vm) == kubevirtv1.StartRequest
	}
	return false
}

func firstRequest(vm *kubevirtv1.VirtualMachine) kubevirtv1.StateChangeRequestAction {
	if len(vm.Status.StateChangeRequests) == 0 {
		return ""
	}
	return vm.Status.StateChangeRequests[0].Action
}

// stopRequested: the first state change request stops this very VMI
// (virt-api's stop and restart subresources add it with the VMI's UID;
// virt-controller's hasStopRequestForVMI).
func stopRequested(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
	if vmi == nil || firstRequest(vm) != kubevirtv1.StopRequest {
		return false
	}
	uid := vm.Status.StateChangeRequests[0].UID
	return uid != nil && *uid == vmi.UID
}

// trimStateChangeRequest drops the first state change request once it is
// done, as virt-controller's isTrimFirstChangeRequestNeeded does: a stop
// request when there is no VMI, or another one than it named (or it named
// none); a start request when a VMI exists and is not being deleted.
func trimStateChangeRequest(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
	done := false
	switch firstRequest(vm) {
	case kubevirtv1.StopRequest:
		uid := vm.Status.StateChangeRequests[0].UID
		done = vmi == nil || uid == nil || *uid != vmi.UID
	case kubevirtv1.StartRequest:
		done = vmi != nil && vmi.DeletionTimestamp == nil
	}
	if done {
		vm.Status.StateChangeRequests = vm.Status.StateChangeRequests[1:]
	}
}

// createVMI creates vm's VMI from its template, or from expanded, the
// template with its instance type applied, when not nil.
func (r *kubevirtSim) createVMI(ctx context.Context, vm *kubevirtv1.VirtualMachine, expanded *kubevirtv1.VirtualMachineInstanceSpec) (*kubevirtv1.VirtualMachineInstance, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: simulatedMeta(vm.Name, vm.Namespace)}
	if t := vm.Spec.Template; t != nil {
		vmi.Labels = t.ObjectMeta.Labels
		for k, v := range t.ObjectMeta.Annotations {
			vmi.Annotations[k] = v
		}
		vmi.Spec = *t.Spec.DeepCopy()
		if expanded != nil {
			vmi.Spec = *expanded.DeepCopy()
		}
	}
	vmi.Annotations[kubevirtv1.VirtualMachineGenerationAnnotation] = strconv.FormatInt(vm.Generation, 10)
	if err := controllerutil.SetControllerReference(vm, vmi, r.c.Scheme()); err != nil {
		return nil, err
	}
	if err := r.c.Create(ctx, vmi); err != nil {
		return nil, fmt.Errorf("creating VMI: %w", err)
	}
	log.FromContext(ctx).Info("created VMI")
	return vmi, nil
}

// progressVMI moves a not yet running VMI on: Pending while volumes are not
// ready, then Scheduling (no node fits) or Running.
func (r *kubevirtSim) progressVMI(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) error {
	before := vmi.Status.DeepCopy()
	if msg, err := r.missingBinding(ctx, vmi); err != nil {
		return err
	} else if msg != "" {
		failedCreate(vmi, msg)
		return r.updateVMIStatus(ctx, vmi, before)
	}
	removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized)
	if waiting, msg, err := r.volumesNotReady(ctx, vmi); err != nil {
		return err
	} else if waiting != "" {
		vmi.Status.Phase = kubevirtv1.Pending
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, string(waiting), msg)
		setWaitingFor(vmi, waiting)
		return r.updateVMIStatus(ctx, vmi, before)
	}
	// virt-controller makes the launcher pod; the real kube-scheduler binds
	// it (or reports why not); the VMI follows, as virt-controller copies
	// the pod's PodScheduled condition into the VMI.
	pod, err := r.launcherPod(ctx, vmi)
	if refused := (*podCreateError)(nil); errors.As(err, &refused) {
		return r.refuseLauncher(ctx, vmi, refused.err, before)
	}
	if err != nil {
		return err
	}
	// virt-controller lists the VMI's pods, with their nodes (setActivePods).
	vmi.Status.ActivePods = map[types.UID]string{pod.UID: pod.Spec.NodeName}
	setWaitingFor(vmi, "")
	if pod.Spec.NodeName == "" {
		vmi.Status.Phase = kubevirtv1.Scheduling
		if c := podScheduled(pod); c != nil && c.Status == corev1.ConditionFalse {
			setVMICondition(vmi, conditionPodScheduled, corev1.ConditionFalse, c.Reason, c.Message)
		}
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "PodNotReady", "")
		return r.updateVMIStatus(ctx, vmi, before)
	}
	node := &corev1.Node{}
	if err := r.live.Get(ctx, client.ObjectKey{Name: pod.Spec.NodeName}, node); err != nil {
		return err
	}
	if msg, err := r.podSandboxFailure(ctx, vmi, pod); err != nil {
		return err
	} else if msg != "" {
		// The kubelet cannot create the pod's sandbox: the pod stays
		// Pending on its node, the VMI Scheduling; only the pod's Events
		// say why (recorded when the VMI's status first shows the node).
		vmi.Status.Phase = kubevirtv1.Scheduling
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "PodNotReady", "")
		if equality.Semantic.DeepEqual(before, &vmi.Status) {
			return nil
		}
		if err := r.recordWarning(ctx, pod, "v1", "Pod", ReasonFailedCreatePodSandBox, msg, "kubelet", node.Name); err != nil {
			return err
		}
		log.FromContext(ctx).Info("kubelet: pod sandbox failed", "pod", pod.Name, "reason", ReasonFailedCreatePodSandBox)
		return r.updateVMIStatus(ctx, vmi, before)
	}
	if msg := networkSetupFails(vmi, node); msg != "" {
		return r.failVMISync(ctx, vmi, node.Name, msg, before)
	}
	if msg := unpullableContainerDisk(vmi); msg != "" {
		// The kubelet cannot pull a container disk: the launcher pod never
		// runs, and KubeVirt shows the pod's waiting reason.
		vmi.Status.Phase = kubevirtv1.Scheduled
		vmi.Status.NodeName = node.Name
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "PodNotReady", msg)
		setWaitingFor(vmi, kubevirtv1.VirtualMachineStatusErrImagePull)
		return r.updateVMIStatus(ctx, vmi, before)
	}
	// Claim the node before reporting Running so the label is there for
	// the next scheduling decision.
	if vmi.Labels == nil {
		vmi.Labels = map[string]string{}
	}
	if vmi.Labels[kubevirtv1.NodeNameLabel] != node.Name {
		vmi.Labels[kubevirtv1.NodeNameLabel] = node.Name
		status := vmi.Status
		if err := r.c.Update(ctx, vmi); err != nil {
			return err
		}
		vmi.Status = status
	}
	interfaces, err := r.interfaces(ctx, vmi, node)
	if err != nil {
		return err
	}
	vmi.Status.Phase = kubevirtv1.Running
	vmi.Status.NodeName = node.Name
	vmi.Status.Interfaces = interfaces
	vmi.Status.Conditions = nil
	setVMICondition(vmi, conditionPodScheduled, corev1.ConditionTrue, "", "")
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue, "", "")
	if agent, err := r.guestAgentOf(ctx, vmi); err != nil {
		return err
	} else if err := r.playGuestAgent(ctx, vmi, agent); err != nil {
		return err
	}
	setPhaseTransition(vmi, kubevirtv1.Running)
	if err := r.migrationStatus(ctx, vmi); err != nil {
		return err
	}
	if err := r.c.Update(ctx, vmi); err != nil {
		return err
	}
	log.FromContext(ctx).Info("VMI running", "node", node.Name)
	return nil
}

// setWaitingFor records why the VMI waits (for the VM's printable
// status) in the VMI's Provisioning condition.
func setWaitingFor(vmi *kubevirtv1.VirtualMachineInstance, waiting kubevirtv1.VirtualMachinePrintableStatus) {
	if waiting == "" {
		removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceProvisioning)
		return
	}
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceProvisioning, corev1.ConditionTrue, string(waiting), "")
}

// volumesNotReady returns the VM printable status a VMI waits in because of
// its volumes (ErrorPvcNotFound, DataVolumeError, WaitingForVolumeBinding,
// Provisioning, in that precedence), or "" when all are ready.
func (r *kubevirtSim) volumesNotReady(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (kubevirtv1.VirtualMachinePrintableStatus, string, error) {
	rank := map[kubevirtv1.VirtualMachinePrintableStatus]int{
		kubevirtv1.VirtualMachineStatusPvcNotFound:             4,
		kubevirtv1.VirtualMachineStatusDataVolumeError:         3,
		kubevirtv1.VirtualMachineStatusWaitingForVolumeBinding: 2,
		kubevirtv1.VirtualMachineStatusProvisioning:            1,
	}
	var worst kubevirtv1.VirtualMachinePrintableStatus
	var worstMsg string
	note := func(s kubevirtv1.VirtualMachinePrintableStatus, msg string) {
		if rank[s] > rank[worst] {
			worst, worstMsg = s, msg
		}
	}
	for _, v := range vmi.Spec.Volumes {
		var name string
		switch {
		case v.PersistentVolumeClaim != nil:
			name = v.PersistentVolumeClaim.ClaimName
		case v.DataVolume != nil:
			name = v.DataVolume.Name
		default:
			continue
		}
		key := types.NamespacedName{Namespace: vmi.Namespace, Name: name}
		dv := &cdiv1.DataVolume{}
		hasDV := true
		if err := r.c.Get(ctx, key, dv); err != nil {
			if !apierrors.IsNotFound(err) {
				return "", "", err
			}
			hasDV = false
		}
		pvc := &corev1.PersistentVolumeClaim{}
		hasPVC := true
		if err := r.c.Get(ctx, key, pvc); err != nil {
			if !apierrors.IsNotFound(err) {
				return "", "", err
			}
			hasPVC = false
		}
		switch {
		case !hasDV && !hasPVC:
			note(kubevirtv1.VirtualMachineStatusPvcNotFound, fmt.Sprintf("PVC %s/%s does not exist", vmi.Namespace, name))
		case hasDV && dvError(dv) != "":
			note(kubevirtv1.VirtualMachineStatusDataVolumeError, dvError(dv))
		case hasPVC && pvc.Status.Phase != corev1.ClaimBound:
			note(kubevirtv1.VirtualMachineStatusWaitingForVolumeBinding, fmt.Sprintf("PVC %s is %s", name, pvc.Status.Phase))
		case hasDV && dv.Status.Phase != cdiv1.Succeeded, !hasPVC:
			note(kubevirtv1.VirtualMachineStatusProvisioning, fmt.Sprintf("DataVolume %s is %s", name, dv.Status.Phase))
		}
	}
	return worst, worstMsg, nil
}

func dvError(dv *cdiv1.DataVolume) string {
	for _, c := range dv.Status.Conditions {
		if c.Type == cdiv1.DataVolumeRunning && c.Status == corev1.ConditionFalse && c.Reason == ReasonImportError {
			return c.Message
		}
	}
	return ""
}

// runningStatus derives the status of a VM that should run from its VMI;
// expanded, when not nil, is its template with its instance type applied.
func runningStatus(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, expanded *kubevirtv1.VirtualMachineInstanceSpec) {
	vm.Status.Created = true
	vm.Status.DesiredGeneration = vm.Generation
	if g, err := strconv.ParseInt(vmi.Annotations[kubevirtv1.VirtualMachineGenerationAnnotation], 10, 64); err == nil {
		vm.Status.ObservedGeneration = g
	}
	vm.Status.RunStrategy = deref(vm.Spec.RunStrategy)
	ready := vmi.Status.Phase == kubevirtv1.Running
	vm.Status.Ready = ready
	if ready {
		vm.Status.StartFailure = nil // a VMI that ran ends the crash loop (shouldClearStartFailure)
	}
	removeVMCondition(vm, conditionPodScheduled)
	switch {
	case vmi.DeletionTimestamp != nil:
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStopping
	case ready && migrating(vmi):
		// isVirtualMachineStatusMigrating (pkg/virt-controller/watch/vm/vm.go).
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusMigrating
	case ready:
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusRunning
	case vmi.Status.Phase == kubevirtv1.Scheduling:
		// ErrorUnschedulable only once the scheduler said so; before, the
		// VM is Starting (KubeVirt's printable status rules).
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStarting
		if c := vmiCondition(vmi, conditionPodScheduled); c.Status == corev1.ConditionFalse && c.Reason == ReasonUnschedulable {
			vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusUnschedulable
			setVMCondition(vm, conditionPodScheduled, corev1.ConditionFalse, c.Reason, c.Message)
		}
	case vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized).Reason == reasonFailedCreate:
		// A Pending VMI whose pod cannot be made (isVirtualMachineStatusStarting:
		// IsUnprocessed).
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStarting
	default:
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusProvisioning
		if c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceProvisioning); c.Reason != "" {
			vm.Status.PrintableStatus = kubevirtv1.VirtualMachinePrintableStatus(c.Reason)
		}
	}
	if c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized); c.Status == corev1.ConditionFalse && c.Reason == reasonFailedCreate {
		setVMCondition(vm, kubevirtv1.VirtualMachineFailure, corev1.ConditionTrue, c.Reason, c.Message)
	} else {
		removeVMCondition(vm, kubevirtv1.VirtualMachineFailure)
	}
	if ready {
		setVMCondition(vm, kubevirtv1.VirtualMachineReady, corev1.ConditionTrue, "", "")
	} else {
		c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceReady)
		setVMCondition(vm, kubevirtv1.VirtualMachineReady, corev1.ConditionFalse, c.Reason, c.Message)
	}
	tmpl := expanded
	if tmpl == nil && vm.Spec.Template != nil {
		tmpl = &vm.Spec.Template.Spec
	}
	if tmpl != nil && restartRequired(tmpl, &vmi.Spec) {
		setVMCondition(vm, kubevirtv1.VirtualMachineRestartRequired, corev1.ConditionTrue, "", MessageRestartRequired)
	} else {
		removeVMCondition(vm, kubevirtv1.VirtualMachineRestartRequired)
	}
}

// stoppedStatus is the status of a VM that should not run.
func stoppedStatus(vm *kubevirtv1.VirtualMachine, vmiExists bool) {
	vm.Status.Created = vmiExists
	vm.Status.Ready = false
	vm.Status.DesiredGeneration = vm.Generation
	vm.Status.ObservedGeneration = vm.Generation
	vm.Status.RunStrategy = deref(vm.Spec.RunStrategy)
	vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStopped
	if rs := deref(vm.Spec.RunStrategy); rs == kubevirtv1.RunStrategyHalted || rs == kubevirtv1.RunStrategyManual {
		vm.Status.StartFailure = nil // shouldClearStartFailure: no automatic restart
	}
	if vmiExists {
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStopping
	}
	setVMCondition(vm, kubevirtv1.VirtualMachineReady, corev1.ConditionFalse, "VMINotExists", "VMI does not exist")
	removeVMCondition(vm, kubevirtv1.VirtualMachineRestartRequired)
	removeVMCondition(vm, conditionPodScheduled)
	removeVMCondition(vm, kubevirtv1.VirtualMachineFailure)
}

// restartRequired reports template changes a running VMI cannot take live:
// CPU cores or threads, a memory request (cpuMemoryRestartRequired; sockets
// and guest memory are hotplugResources'), and the disks and interfaces
// devicesNeedRestart names. tmpl is the template with its instance type
// applied, when it has one (the vCPUs are then sockets, as on the VMI).
func restartRequired(tmpl, running *kubevirtv1.VirtualMachineInstanceSpec) bool {
	return cpuMemoryRestartRequired(tmpl, running) || devicesNeedRestart(tmpl, running)
}

func (r *kubevirtSim) updateVMStatus(ctx context.Context, vm *kubevirtv1.VirtualMachine, before *kubevirtv1.VirtualMachineStatus) error {
	if equality.Semantic.DeepEqual(before, &vm.Status) {
		return nil
	}
	if err := r.c.Status().Update(ctx, vm); err != nil {
		return err
	}
	if before.PrintableStatus != vm.Status.PrintableStatus {
		log.FromContext(ctx).Info("VM status", "printableStatus", vm.Status.PrintableStatus)
	}
	return nil
}

func (r *kubevirtSim) updateVMIStatus(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, before *kubevirtv1.VirtualMachineInstanceStatus) error {
	if equality.Semantic.DeepEqual(before, &vmi.Status) {
		return nil
	}
	// KubeVirt's VMI CRD has no status subresource (virt-operator's
	// components.NewVirtualMachineInstanceCrd): virt-controller and
	// virt-handler update the whole object, and KubeVirt's VMI mutator keeps
	// a status change only from KubeVirt's service accounts (SimulatorUser).
	return r.c.Update(ctx, vmi)
}

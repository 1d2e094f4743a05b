package sandbox

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// A node that loses its kubelet (the machine died, or its network), as
// the cluster sees it, and what KubeVirt does about it:
//
//   - LoseNode plays the node lifecycle controller once
//     node-monitor-grace-period (40s) passed without a kubelet status:
//     Ready=Unknown, reason NodeStatusUnknown, "Kubelet stopped posting
//     node status." (lastHeartbeatTime the kubelet's last post), and the
//     taints node.kubernetes.io/unreachable NoSchedule and NoExecute
//     (k8s.io/kubernetes pkg/controller/nodelifecycle). Pods on the node
//     stay as they are in the API (Running); a pod deleted with a grace
//     period stays Terminating, as no kubelet confirms it; only a force
//     delete (grace period 0) removes it. No taint-based eviction runs
//     (the sandbox's kube-controller-manager runs no node lifecycle
//     controller), so nothing deletes them on its own.
//   - virt-handler on the node stops too: its heartbeat (the node
//     annotation kubevirt.io/heartbeat, refreshed every minute with the
//     label kubevirt.io/schedulable=true, pkg/virt-handler/heartbeat) stops.
//   - virt-controller's node controller (pkg/virt-controller/watch/node/node.go)
//     finds the node unresponsive once the heartbeat is older than 5
//     minutes (heartBeatTimeout; rechecked every minute): it labels the
//     node kubevirt.io/schedulable=false (Event NodeUnresponsive
//     "virt-handler is not responsive, marking node as unresponsive") and
//     sets every VMI on it whose launcher pod no longer exists to Failed
//     with status.reason NodeUnresponsive (Event NodeUnresponsive
//     "virt-handler on node <node> is not responsive, marking VMI as
//     failed"). Independently, virt-controller's VMI controller fails a
//     running VMI whose pod is gone at once (syncRunningVMI), so a
//     force-deleted launcher pod fails its VMI either way; the VM
//     controller then starts a new VMI, which the scheduler places on
//     another node (the lost one is tainted).
//   - RestoreNode brings the kubelet and virt-handler back.
//
// LoseNode's ago says how long ago the node was lost, so a test can play
// a node lost for longer than a timeout (5 minutes for KubeVirt's node
// controller) without waiting for it.

const (
	// KubeletStoppedAnnotation is on a Node whose kubelet LoseNode stopped
	// (value: when, RFC 3339). The kubelet and virt-handler simulators
	// leave such a node alone.
	KubeletStoppedAnnotation = "sandbox.novasphere.dev/kubelet-stopped"
	// ReasonNodeUnresponsive is KubeVirt's node controller reason (Events
	// and VMI status.reason).
	ReasonNodeUnresponsive = "NodeUnresponsive"
	// VirtHandlerHeartbeatTimeout is the node controller's
	// heartBeatTimeout.
	VirtHandlerHeartbeatTimeout = 5 * time.Minute

	// taintUnreachable is corev1.TaintNodeUnreachable.
	taintUnreachable = corev1.TaintNodeUnreachable
	// nodeMonitorGracePeriod is kube-controller-manager's default.
	nodeMonitorGracePeriod = 40 * time.Second
	// heartbeatInterval is virt-handler's heartbeat period.
	heartbeatInterval = time.Minute
	// nodeRecheckInterval is the node controller's recheckInterval.
	nodeRecheckInterval = time.Minute
)

// LoseNode makes Node name lose its kubelet and virt-handler as of ago
// before now (see above): Ready=Unknown, the unreachable taints, the
// virt-handler heartbeat left at that time, and KubeletStoppedAnnotation.
// Errors: the Node cannot be read or written.
func LoseNode(ctx context.Context, c client.Client, name string, ago time.Duration) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return loseNode(ctx, c, name, ago) })
}

func loseNode(ctx context.Context, c client.Client, name string, ago time.Duration) error {
	node := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		return fmt.Errorf("getting Node %s: %w", name, err)
	}
	lost := time.Now().Add(-ago)
	noticed := metav1.NewTime(minTime(lost.Add(nodeMonitorGracePeriod), time.Now()))
	if node.Annotations == nil {
		node.Annotations = map[string]string{}
	}
	node.Annotations[KubeletStoppedAnnotation] = lost.UTC().Format(time.RFC3339)
	node.Annotations[kubevirtv1.VirtHandlerHeartbeat] = lost.UTC().Format(time.RFC3339)
	for _, effect := range []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute} {
		if !slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == taintUnreachable && t.Effect == effect }) {
			node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: taintUnreachable, Effect: effect, TimeAdded: &noticed})
		}
	}
	if err := c.Update(ctx, node); err != nil {
		return fmt.Errorf("marking Node %s lost: %w", name, err)
	}
	for i := range node.Status.Conditions {
		cond := &node.Status.Conditions[i]
		if cond.Type == corev1.NodeReady {
			cond.Status, cond.Reason, cond.Message = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."
			cond.LastHeartbeatTime = metav1.NewTime(lost)
			cond.LastTransitionTime = noticed
		}
	}
	if err := c.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("setting Node %s Ready=Unknown: %w", name, err)
	}
	return nil
}

// RestoreNode brings Node name's kubelet and virt-handler back: Ready=True
// (KubeletReady), the unreachable taints lifted, KubeletStoppedAnnotation
// removed; virt-handler's heartbeat then labels it schedulable again.
func RestoreNode(ctx context.Context, c client.Client, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return restoreNode(ctx, c, name) })
}

func restoreNode(ctx context.Context, c client.Client, name string) error {
	node := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		return fmt.Errorf("getting Node %s: %w", name, err)
	}
	delete(node.Annotations, KubeletStoppedAnnotation)
	node.Spec.Taints = slices.DeleteFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == taintUnreachable })
	if err := c.Update(ctx, node); err != nil {
		return fmt.Errorf("restoring Node %s: %w", name, err)
	}
	now := metav1.Now()
	for i := range node.Status.Conditions {
		cond := &node.Status.Conditions[i]
		if cond.Type == corev1.NodeReady {
			cond.Status, cond.Reason, cond.Message = corev1.ConditionTrue, "KubeletReady", "simulated node is ready"
			cond.LastHeartbeatTime, cond.LastTransitionTime = now, now
		}
	}
	if err := c.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("setting Node %s Ready: %w", name, err)
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// nodeLost says whether LoseNode stopped node's kubelet.
func nodeLost(node *corev1.Node) bool {
	_, ok := node.Annotations[KubeletStoppedAnnotation]
	return ok
}

// nodeSim plays virt-handler's heartbeat on live nodes and
// virt-controller's node controller on lost ones (see above).
type nodeSim struct {
	kubevirtSim
}

func (r *nodeSim) setup(mgr ctrl.Manager) error {
	r.c, r.live = mgr.GetClient(), mgr.GetAPIReader()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-virt-handler-heartbeat").
		For(&corev1.Node{}).
		Complete(r)
}

func (r *nodeSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *nodeSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := &corev1.Node{}
	if err := r.live.Get(ctx, req.NamespacedName, node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	last, err := time.Parse(time.RFC3339, node.Annotations[kubevirtv1.VirtHandlerHeartbeat])
	if err != nil {
		last = time.Time{}
	}
	if !nodeLost(node) {
		// virt-handler's heartbeat: schedulable, and the time.
		if left := time.Until(last.Add(heartbeatInterval)); left > 0 && node.Labels[kubevirtv1.NodeSchedulable] == "true" {
			return ctrl.Result{RequeueAfter: left}, nil
		}
		if node.Annotations == nil {
			node.Annotations = map[string]string{}
		}
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		node.Annotations[kubevirtv1.VirtHandlerHeartbeat] = time.Now().UTC().Format(time.RFC3339)
		node.Labels[kubevirtv1.NodeSchedulable] = "true"
		return ctrl.Result{RequeueAfter: heartbeatInterval}, r.c.Update(ctx, node)
	}
	// The node controller: unresponsive once the heartbeat is too old.
	if left := time.Until(last.Add(VirtHandlerHeartbeatTimeout)); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if node.Labels[kubevirtv1.NodeSchedulable] == "true" {
		if err := recordEvent(ctx, r.c, node, "v1", "Node", corev1.EventTypeNormal, ReasonNodeUnresponsive,
			"virt-handler is not responsive, marking node as unresponsive", "virt-controller", ""); err != nil {
			return ctrl.Result{}, err
		}
		node.Labels[kubevirtv1.NodeSchedulable] = "false"
		if err := r.c.Update(ctx, node); err != nil {
			return ctrl.Result{}, err
		}
		log.FromContext(ctx).Info("node controller: virt-handler unresponsive, node unschedulable", "node", node.Name)
	}
	if err := r.failOrphanedVMIs(ctx, node.Name); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: nodeRecheckInterval}, nil
}

// failOrphanedVMIs is checkVirtLauncherPodsAndUpdateVMIStatus: the VMIs
// on node that are not final and whose launcher pod (controlled by the
// VMI, on the node, not terminated) is gone become Failed with reason
// NodeUnresponsive.
func (r *nodeSim) failOrphanedVMIs(ctx context.Context, node string) error {
	vmis := &kubevirtv1.VirtualMachineInstanceList{}
	if err := r.live.List(ctx, vmis); err != nil {
		return err
	}
	pods := &corev1.PodList{}
	if err := r.live.List(ctx, pods); err != nil {
		return err
	}
	alive := map[string]bool{}
	for _, p := range pods.Items {
		ref := metav1.GetControllerOf(&p)
		if p.Spec.NodeName == node && ref != nil && ref.Kind == "VirtualMachineInstance" &&
			p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			alive[string(ref.UID)] = true
		}
	}
	for i := range vmis.Items {
		vmi := &vmis.Items[i]
		if vmi.Status.NodeName != node || vmi.IsFinal() || alive[string(vmi.UID)] {
			continue
		}
		if err := recordEvent(ctx, r.c, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", corev1.EventTypeNormal, ReasonNodeUnresponsive,
			fmt.Sprintf("virt-handler on node %s is not responsive, marking VMI as failed", node), "virt-controller", ""); err != nil {
			return err
		}
		vmi.Status.Phase = kubevirtv1.Failed
		vmi.Status.Reason = ReasonNodeUnresponsive
		setPhaseTransition(vmi, kubevirtv1.Failed)
		if err := r.c.Update(ctx, vmi); err != nil {
			return err
		}
		log.FromContext(ctx).Info("node controller: VMI on unresponsive node failed", "vmi", vmi.Name, "node", node)
	}
	return nil
}

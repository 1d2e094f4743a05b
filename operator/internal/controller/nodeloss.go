package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/novasphere/wukong/lib/conditions"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Nodes are read (never written) to tell a Wukong its VM's node is lost;
// the Node watch maps a node's Ready change to the Wukongs on it.
// +kubebuilder:rbac:groups=core,resources=nodes,verbs=get;list;watch
// The node-loss policy (NodeLossPolicy, off by default) force-deletes the
// virt-launcher pods of a Wukong's VM on a lost node, listed from the API
// server by KubeVirt's kubevirt.io/created-by label: the one object the
// operator deletes that it did not create. Its rule (pods: list, delete, in
// the watched namespaces) is deliberately not a +kubebuilder:rbac marker:
// the chart grants it only when nodeLoss.restartAfter is set
// (templates/nodeloss-rbac.yaml), so an install without the policy cannot
// delete pods at all.

// NodeLossPolicy is the administrator's opt-in answer to a node that stops
// reporting (--node-loss-restart-after, chart value nodeLoss): after a
// node has been NotReady for After, the VMs of Wukongs on it are restarted
// elsewhere the way KubeVirt's user guide documents for an unresponsive
// node ("Unresponsive nodes": force-delete the VM's pods on the dead node;
// kubevirt.io/user-guide/cluster_admin/unresponsive_nodes/): their
// virt-launcher pods are deleted with grace period 0, so KubeVirt fails
// the instance and the VM's run strategy starts a new one on another node.
// Disks are never touched. Safe only where the lost node cannot still be
// writing the disks (its storage fences, or the node is powered off):
// otherwise two guests may write one disk.
type NodeLossPolicy struct {
	// After is how long a node must have been NotReady (its Ready
	// condition False or Unknown, since its lastTransitionTime); zero
	// disables the policy.
	After time.Duration
}

// Enabled reports whether the policy acts at all.
func (p NodeLossPolicy) Enabled() bool { return p.After > 0 }

// nodeLoss is a decision about the node an instance runs on.
type nodeLoss struct {
	// Node is the node's name; Lost that its Ready condition is not True;
	// Since when it stopped being Ready.
	Node  string
	Lost  bool
	Since time.Time
	// Act: the policy force-deletes the VM's launcher pods now.
	Act bool
	// Wait is how long until the policy acts (0 when it acts or is off).
	Wait time.Duration
	// Deleted is how many launcher pods the pass deleted (set by
	// observeNodeLoss after acting).
	Deleted int
}

// decideNodeLoss is the node-loss policy as a pure function of the node's
// Ready condition, the time and the policy: a node whose Ready condition is
// False or Unknown (the node lifecycle controller sets Unknown when the
// kubelet stops posting status) is lost since the condition's
// lastTransitionTime; with the policy on, it acts once that is After ago,
// else says how long to wait. A node without a Ready condition is not
// judged (a new node has none until its kubelet reports).
func decideNodeLoss(node *corev1.Node, now time.Time, p NodeLossPolicy) nodeLoss {
	d := nodeLoss{Node: node.Name}
	var ready *corev1.NodeCondition
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			ready = &node.Status.Conditions[i]
		}
	}
	if ready == nil || ready.Status == corev1.ConditionTrue {
		return d
	}
	d.Lost, d.Since = true, ready.LastTransitionTime.Time
	if !p.Enabled() {
		return d
	}
	if lost := now.Sub(d.Since); lost >= p.After {
		d.Act = true
	} else {
		d.Wait = p.After - lost
	}
	return d
}

// observeNodeLoss reads the instance's node (from the cache: Nodes are
// watched) and decides; under the policy it force-deletes the launcher
// pods on that node (restartOnLostNode) or asks to look again when the
// grace ends. A node that is gone is not judged: Kubernetes' pod garbage
// collector deletes the pods of nodes that no longer exist.
func (r *WukongReconciler) observeNodeLoss(ctx context.Context, s *scope) error {
	name := s.vm.Node()
	if name == "" {
		return nil
	}
	node := &corev1.Node{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, node); err != nil {
		return client.IgnoreNotFound(err)
	}
	d := decideNodeLoss(node, r.now(), r.NodeLoss)
	if d.Wait > 0 {
		s.requeue(d.Wait)
	}
	if d.Act {
		n, err := r.restartOnLostNode(ctx, s, name, d)
		if err != nil {
			return err
		}
		d.Deleted = n
	}
	s.maint.node = d
	return nil
}

// restartOnLostNode force-deletes (grace period 0) the virt-launcher pods
// on node of the Wukong's own VM's instance: pods labelled
// kubevirt.io/created-by=<VMI UID> (KubeVirt's launcher pod label) and
// controlled by that VMI, whose VMI is controlled by the VM, which is
// controlled by this Wukong. Nothing else is deleted. It records a Warning
// Event per pass that deleted any, and returns how many it deleted.
func (r *WukongReconciler) restartOnLostNode(ctx context.Context, s *scope, node string, d nodeLoss) (int, error) {
	vm, vmi := s.vm.VirtualMachine(), s.vm.Instance()
	if vm == nil || vmi == nil || !controlledBy(vm, s.w.UID) || !controlledBy(vmi, vm.UID) || r.APIReader == nil {
		return 0, nil
	}
	pods := &corev1.PodList{}
	if err := r.APIReader.List(ctx, pods, client.InNamespace(vmi.Namespace),
		client.MatchingLabels{kubevirtv1.CreatedByLabel: string(vmi.UID)}); err != nil {
		return 0, fmt.Errorf("cannot list the VM's virt-launcher pods: %w", err)
	}
	deleted := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName != node || !controlledBy(p, vmi.UID) {
			continue
		}
		uid := p.UID
		err := r.Client.Delete(ctx, p, client.GracePeriodSeconds(0), client.Preconditions{UID: &uid})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return deleted, fmt.Errorf("cannot force-delete virt-launcher pod %s on lost node %s: %w", p.Name, node, err)
		}
		if err == nil {
			deleted++
		}
	}
	if deleted > 0 && r.Recorder != nil {
		r.Recorder.Eventf(s.w, nil, corev1.EventTypeWarning, v1alpha1.ReasonNodeLostRestarting, "ForceDeleteLauncherPod",
			"node %s has been NotReady since %s (longer than the node-loss policy's %s): force-deleted %d virt-launcher pod(s) of the VM on it "+
				"so KubeVirt restarts the VM on another node; the disks are untouched",
			node, d.Since.UTC().Format(time.RFC3339), r.NodeLoss.After, deleted)
	}
	return deleted, nil
}

// controlledBy: o's controller owner reference has uid.
func controlledBy(o metav1.Object, uid types.UID) bool {
	ref := metav1.GetControllerOfNoCopy(o)
	return ref != nil && ref.UID == uid
}

func (r *WukongReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

// setNodeLost sets NodeLost and, for a lost node, Ready False with why and
// what can be done: the policy restarted the VM elsewhere, will after its
// grace, or (without a policy) an administrator must act. Absent when the
// node is Ready.
func setNodeLost(o *v1alpha1.Wukong, s *scope, p NodeLossPolicy) {
	const t = v1alpha1.NodeLostCondition
	d := s.maint.node
	if !d.Lost {
		if s.vm.Exists() || s.volsDone {
			conditions.Delete(o, t)
		}
		return
	}
	since := d.Since.UTC().Format(time.RFC3339)
	var reason, msg string
	switch {
	case d.Act:
		reason = v1alpha1.ReasonNodeLostRestarting
		msg = fmt.Sprintf("node %s has been NotReady since %s, longer than the node-loss policy's %s: the VM's virt-launcher pod(s) there "+
			"were force-deleted so KubeVirt restarts the VM on another node (disks untouched)", d.Node, since, p.After)
	case p.Enabled():
		reason = v1alpha1.ReasonNodeLostWaiting
		msg = fmt.Sprintf("node %s has been NotReady since %s: the node-loss policy restarts the VM elsewhere once it has been so for %s",
			d.Node, since, p.After)
	default:
		reason = v1alpha1.ReasonNodeNotReady
		msg = fmt.Sprintf("node %s has been NotReady since %s and the VM cannot be reached there; no node-loss policy is set, so it is not "+
			"restarted elsewhere: an administrator who has made sure the node is down (powered off or fenced) force-deletes the VM's pod "+
			"(kubectl delete pod -n %s -l kubevirt.io/created-by=%s --force --grace-period=0) and KubeVirt restarts it on another node, "+
			"or enables the operator's node-loss policy", d.Node, since, o.Namespace, instanceUID(s))
	}
	conditions.MarkTrue(o, t, reason, "%s", msg)
	conditions.MarkFalse(o, v1alpha1.ReadyCondition, reason, "%s", msg)
}

func instanceUID(s *scope) string {
	if vmi := s.vm.Instance(); vmi != nil {
		return string(vmi.UID)
	}
	return "<VMI UID>"
}

// indexNodeName indexes Wukongs by status.nodeName, so a Node's change
// reaches the Wukongs whose VM runs there.
const indexNodeName = "status.nodeName"

func nodeNameOf(w *v1alpha1.Wukong) []string {
	if w.Status.NodeName == "" {
		return nil
	}
	return []string{w.Status.NodeName}
}

// wukongsOnNode maps a Node to the Wukongs whose status.nodeName it is.
func (r *WukongReconciler) wukongsOnNode(ctx context.Context, o client.Object) []reconcile.Request {
	return r.wukongRequests(ctx, nil, client.MatchingFields{indexNodeName: o.GetName()})
}

// nodeReadyChanged passes Node updates whose Ready condition changed status
// (and creations and deletions): heartbeats and other status updates wake
// no Wukong.
var nodeReadyChanged = predicate.Funcs{
	UpdateFunc: func(e ctrlevent.UpdateEvent) bool {
		return nodeReadyStatus(e.ObjectOld) != nodeReadyStatus(e.ObjectNew)
	},
}

func nodeReadyStatus(o client.Object) corev1.ConditionStatus {
	n, ok := o.(*corev1.Node)
	if !ok {
		return ""
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

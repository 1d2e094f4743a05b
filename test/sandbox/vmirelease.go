package sandbox

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// vmiReleaseSim releases deleted VirtualMachineInstances. KubeVirt's VMI
// mutator gives every VMI the finalizer kubevirt.io/foregroundDeleteVirtualMachine
// (pkg/virt-api/webhooks/mutating-webhook/mutators/vmi-mutator.go); once a
// deleted VMI's domain is shut down (virt-handler sets the phase Succeeded)
// and all its launcher pods are gone, virt-controller removes it
// (pkg/virt-controller/watch/vmi/lifecycle.go, "all pods have been deleted,
// removing finalizer"). Here no domain runs and no kubelet confirms a pod's
// end, so a deleted VMI's launcher pods go at once (grace period 0), then
// the VMI becomes Succeeded without the finalizer, whoever deleted it (the
// KubeVirt simulator stopping a VM, the garbage collector after its VM, a
// user).
type vmiReleaseSim struct {
	c client.Client
}

func (r *vmiReleaseSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-vmi-release").
		For(&kubevirtv1.VirtualMachineInstance{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetDeletionTimestamp() != nil && hasVMIFinalizer(o)
		}))).
		Complete(r)
}

func hasVMIFinalizer(o client.Object) bool {
	return slices.Contains(o.GetFinalizers(), kubevirtv1.VirtualMachineInstanceFinalizer) ||
		slices.Contains(o.GetFinalizers(), kubevirtv1.DeprecatedVirtualMachineInstanceFinalizer)
}

func (r *vmiReleaseSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *vmiReleaseSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.c.Get(ctx, req.NamespacedName, vmi); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if vmi.DeletionTimestamp == nil || !hasVMIFinalizer(vmi) {
		return ctrl.Result{}, nil
	}
	if err := r.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(vmi.Namespace),
		client.MatchingLabels{labelCreatedBy: string(vmi.UID)}, client.GracePeriodSeconds(0)); err != nil {
		return ctrl.Result{}, err
	}
	vmi.Finalizers = slices.DeleteFunc(vmi.Finalizers, func(f string) bool {
		return f == kubevirtv1.VirtualMachineInstanceFinalizer || f == kubevirtv1.DeprecatedVirtualMachineInstanceFinalizer
	})
	if !vmi.IsFinal() {
		vmi.Status.Phase = kubevirtv1.Succeeded
	}
	// The VMI CRD has no status subresource: status and finalizers go in
	// one update, as virt-controller writes them.
	if err := r.c.Update(ctx, vmi); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log.FromContext(ctx).Info("VMI released: launcher pods deleted, finalizer removed")
	return ctrl.Result{}, nil
}

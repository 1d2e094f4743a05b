package sandbox

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const (
	labelClaimNamespace = "sandbox.novasphere.dev/claim-namespace"
	labelClaimName      = "sandbox.novasphere.dev/claim-name"
	annBindCompleted    = "pv.kubernetes.io/bind-completed"
	annBoundByCtrl      = "pv.kubernetes.io/bound-by-controller"
	annProvisionedBy    = "pv.kubernetes.io/provisioned-by"
)

// storageSim plays a CSI provisioner plus the PV controller. A Pending claim
// of an Immediate class (or no class: the default class) gets a
// PersistentVolume "pvc-<uid>" and is Bound with capacity = request. A
// WaitForFirstConsumer claim binds once a VirtualMachineInstance uses it
// directly or through a DataVolume of the same name. A grown request of a
// Bound claim is copied to status.capacity at once (no FileSystemResizePending
// step). When a claim is gone its volume is deleted (reclaim policy Delete).
// Claims of a class with another provisioner stay Pending.
type storageSim struct{ c client.Client }

func (r *storageSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-storage").
		// Objects are independent here.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		For(&corev1.PersistentVolumeClaim{}).
		Watches(&kubevirtv1.VirtualMachineInstance{}, handler.EnqueueRequestsFromMapFunc(claimsOfVMI)).
		Complete(r)
}

// claimsOfVMI maps a VMI to the claims it uses (a DataVolume's claim has the
// DataVolume's name).
func claimsOfVMI(_ context.Context, o client.Object) []reconcile.Request {
	vmi, ok := o.(*kubevirtv1.VirtualMachineInstance)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	for _, name := range claimNames(&vmi.Spec) {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: vmi.Namespace, Name: name}})
	}
	return reqs
}

func claimNames(spec *kubevirtv1.VirtualMachineInstanceSpec) []string {
	var names []string
	for _, v := range spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		case v.DataVolume != nil:
			names = append(names, v.DataVolume.Name)
		}
	}
	return names
}

func (r *storageSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *storageSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.c.Get(ctx, req.NamespacedName, pvc); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.reclaim(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if pvc.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	if pvc.Status.Phase == corev1.ClaimBound {
		return ctrl.Result{}, r.expand(ctx, pvc)
	}
	sc, err := r.class(ctx, pvc)
	if err != nil || sc == nil {
		// No such class (yet): stays Pending, as in a real cluster.
		return ctrl.Result{RequeueAfter: requeueSlow}, err
	}
	if sc.Provisioner != Provisioner && sc.Provisioner != SnapshotlessProvisioner {
		// Another driver's class (StorageClassUnknownProvisioner): nobody
		// provisions it, so the claim stays Pending, as in a real cluster.
		return ctrl.Result{}, nil
	}
	if deref(sc.VolumeBindingMode) == storagev1.VolumeBindingWaitForFirstConsumer {
		used, err := r.consumed(ctx, pvc)
		if err != nil || !used {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, r.bind(ctx, pvc, sc)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// class returns the claim's StorageClass, or the default one when the claim
// names none; nil when there is none.
func (r *storageSim) class(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (*storagev1.StorageClass, error) {
	if name := deref(pvc.Spec.StorageClassName); name != "" {
		sc := &storagev1.StorageClass{}
		if err := r.c.Get(ctx, types.NamespacedName{Name: name}, sc); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		return sc, nil
	}
	list := &storagev1.StorageClassList{}
	if err := r.c.List(ctx, list); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// consumed reports whether a VMI in the claim's namespace uses the claim.
func (r *storageSim) consumed(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (bool, error) {
	vmis := &kubevirtv1.VirtualMachineInstanceList{}
	if err := r.c.List(ctx, vmis, client.InNamespace(pvc.Namespace)); err != nil {
		return false, err
	}
	for i := range vmis.Items {
		for _, name := range claimNames(&vmis.Items[i].Spec) {
			if name == pvc.Name {
				return true, nil
			}
		}
	}
	return false, nil
}

func (r *storageSim) bind(ctx context.Context, pvc *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass) error {
	request := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	pvName := "pvc-" + string(pvc.UID)
	pv := &corev1.PersistentVolume{ObjectMeta: simulatedMeta(pvName, "")}
	pv.Annotations[annProvisionedBy] = sc.Provisioner
	pv.Labels = map[string]string{labelClaimNamespace: pvc.Namespace, labelClaimName: pvc.Name}
	pv.Spec = corev1.PersistentVolumeSpec{
		Capacity:                      corev1.ResourceList{corev1.ResourceStorage: request},
		AccessModes:                   pvc.Spec.AccessModes,
		VolumeMode:                    pvc.Spec.VolumeMode,
		StorageClassName:              sc.Name,
		PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
		ClaimRef: &corev1.ObjectReference{
			Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
		},
		PersistentVolumeSource: corev1.PersistentVolumeSource{
			CSI: &corev1.CSIPersistentVolumeSource{Driver: sc.Provisioner, VolumeHandle: pvName},
		},
	}
	if err := r.c.Create(ctx, pv); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating PersistentVolume: %w", err)
	}
	pv.Status.Phase = corev1.VolumeBound
	if err := r.c.Status().Update(ctx, pv); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("binding PersistentVolume: %w", err)
	}

	if pvc.Spec.VolumeName == "" {
		if pvc.Annotations == nil {
			pvc.Annotations = map[string]string{}
		}
		pvc.Annotations[annBindCompleted] = "yes"
		pvc.Annotations[annBoundByCtrl] = "yes"
		pvc.Annotations[SimulatedAnnotation] = "true"
		pvc.Spec.VolumeName = pvName
		if err := r.c.Update(ctx, pvc); err != nil {
			return err // a conflict is retried with backoff
		}
	}
	pvc.Status.Phase = corev1.ClaimBound
	pvc.Status.AccessModes = pvc.Spec.AccessModes
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: request}
	if err := r.c.Status().Update(ctx, pvc); err != nil {
		return err
	}
	log.FromContext(ctx).Info("bound claim", "volume", pvName, "class", sc.Name, "capacity", request.String())
	return nil
}

// expand copies a grown request to status.capacity (and the volume).
func (r *storageSim) expand(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	request := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	capacity := pvc.Status.Capacity[corev1.ResourceStorage]
	if request.Cmp(capacity) <= 0 {
		return nil
	}
	if pvc.Spec.VolumeName != "" {
		pv := &corev1.PersistentVolume{}
		if err := r.c.Get(ctx, types.NamespacedName{Name: pvc.Spec.VolumeName}, pv); err == nil {
			pv.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: request}
			if err := r.c.Update(ctx, pv); err != nil {
				return err
			}
		}
	}
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: request}
	pvc.Status.Conditions = nil
	if err := r.c.Status().Update(ctx, pvc); err != nil {
		return err
	}
	log.FromContext(ctx).Info("expanded claim", "capacity", request.String())
	return nil
}

// reclaim deletes the volumes of a deleted claim (reclaim policy Delete).
func (r *storageSim) reclaim(ctx context.Context, claim types.NamespacedName) error {
	pvs := &corev1.PersistentVolumeList{}
	if err := r.c.List(ctx, pvs, client.MatchingLabels{labelClaimNamespace: claim.Namespace, labelClaimName: claim.Name}); err != nil {
		return err
	}
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		if pv.DeletionTimestamp != nil {
			continue
		}
		// Released lets the pv-protection controller drop its finalizer.
		pv.Status.Phase = corev1.VolumeReleased
		if err := r.c.Status().Update(ctx, pv); err != nil {
			return err
		}
		if err := r.c.Delete(ctx, pv); client.IgnoreNotFound(err) != nil {
			return err
		}
		log.FromContext(ctx).Info("deleted released volume", "volume", pv.Name)
	}
	return nil
}

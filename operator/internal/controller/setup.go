package controller

import (
	"context"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Optional kinds: watched only when their CRD is installed, so the operator
// starts (and deletes Wukongs) on a cluster without KubeVirt, CDI, Multus or
// NMState and reports what is missing in conditions instead.
var (
	GVKVirtualMachine         = kubevirtv1.GroupVersion.WithKind("VirtualMachine")
	GVKVirtualMachineInstance = kubevirtv1.GroupVersion.WithKind("VirtualMachineInstance")
	GVKDataVolume             = cdiv1.SchemeGroupVersion.WithKind("DataVolume")
	GVKNAD                    = nadv1.SchemeGroupVersion.WithKind("NetworkAttachmentDefinition")
	GVKNNCP                   = nmstatev1.GroupVersion.WithKind("NodeNetworkConfigurationPolicy")
)

// SetupOptions tune the controller.
type SetupOptions struct {
	MaxConcurrentReconciles int
	// Installed reports whether a kind is served; kinds that are not are
	// not watched. Nil means every kind is served.
	Installed func(schema.GroupVersionKind) bool
}

// SetupWithManager registers the reconciler and its watches.
func (r *WukongReconciler) SetupWithManager(mgr ctrl.Manager, o SetupOptions) error {
	installed := o.Installed
	if installed == nil {
		installed = func(schema.GroupVersionKind) bool { return true }
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("wukong").
		// Every Wukong change, status included: the pass after a status
		// patch lands in the cache re-checks it, so a pass that ran on a
		// stale cached Wukong (and skipped its write because it compared
		// equal to the stale status) is corrected. That pass reads from the
		// cache and writes nothing when the status is already right.
		For(&v1alpha1.Wukong{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles}).
		Owns(&corev1.Secret{}).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(r.pvcToWukong))
	if installed(GVKVirtualMachine) {
		b = b.Owns(&kubevirtv1.VirtualMachine{})
	}
	if installed(GVKVirtualMachineInstance) {
		b = b.Watches(&kubevirtv1.VirtualMachineInstance{}, handler.EnqueueRequestsFromMapFunc(byWukongLabel))
	}
	if installed(GVKDataVolume) {
		b = b.Owns(&cdiv1.DataVolume{})
	}
	if installed(GVKNAD) {
		b = b.Owns(&nadv1.NetworkAttachmentDefinition{})
	}
	if installed(GVKNNCP) {
		b = b.Watches(&nmstatev1.NodeNetworkConfigurationPolicy{}, handler.EnqueueRequestsFromMapFunc(policyHolders))
	}
	return b.Complete(r)
}

// byWukongLabel maps a child labelled vm.novasphere.dev/wukong to its Wukong.
func byWukongLabel(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[storage.LabelOwner]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// pvcToWukong maps a PVC to its Wukong: by label, or through the
// DataVolume that owns it (CDI creates a DataVolume's PVC).
func (r *WukongReconciler) pvcToWukong(ctx context.Context, o client.Object) []reconcile.Request {
	if reqs := byWukongLabel(ctx, o); reqs != nil {
		return reqs
	}
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind != "DataVolume" {
			continue
		}
		dv := &cdiv1.DataVolume{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}, dv); err == nil {
			return byWukongLabel(ctx, dv)
		}
	}
	return nil
}

// policyHolders maps a shared node bridge policy to every Wukong holding it.
func policyHolders(_ context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, h := range network.Holders(o) {
		reqs = append(reqs, reconcile.Request{NamespacedName: h})
	}
	return reqs
}

// IsNotInstalled is true for the error a RESTMapper gives for a kind whose
// CRD is missing.
func IsNotInstalled(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no matches for kind") || strings.Contains(err.Error(), "could not find the requested resource"))
}

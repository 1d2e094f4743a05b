package controller

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
	"github.com/novasphere/wukong/operator/internal/nodenet"
	"github.com/novasphere/wukong/operator/mapping"
)

// SetupOptions tune the controller.
type SetupOptions struct {
	MaxConcurrentReconciles int
	// Installed reports whether a kind is served; kinds that are not are
	// not watched. Nil means every kind is served.
	Installed func(schema.GroupVersionKind) bool
	// KeySecrets holds (metadata only) the Secrets labelled
	// v1alpha1.SSHAuthorizedKeysLabel=true; an edit of one reconciles the
	// Wukongs naming it (sshkeys.go). Nil: not watched.
	KeySecrets cache.Cache
}

// SetupWithManager registers the reconciler and its watches.
func (r *WukongReconciler) SetupWithManager(mgr ctrl.Manager, o SetupOptions) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("wukong").
		// Every Wukong change, status included: the pass after a status
		// patch lands in the cache re-checks it, so a pass that ran on a
		// stale cached Wukong (and skipped its write because it compared
		// equal to the stale status) is corrected. That pass reads from the
		// cache and writes nothing when the status is already right.
		For(&v1alpha1.Wukong{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles})
	for _, k := range CachedKinds {
		if !k.Served(o.Installed) {
			continue
		}
		switch k.GVK {
		case gvkPersistentVolumeClaim:
			// CDI creates a DataVolume's PVC: found through the DataVolume.
			b = b.Watches(k.New(), handler.EnqueueRequestsFromMapFunc(r.pvcToWukong))
		case gvkVirtualMachineInstance:
			// KubeVirt creates it, with the VM's labels.
			b = b.Watches(k.New(), handler.EnqueueRequestsFromMapFunc(byWukongLabel))
		case gvkNNCP, gvkKubeVirt:
			// Policies are shared by Wukongs: the NodeBridge controller
			// watches them. The KubeVirt CR is looked at again after
			// StalledRetry.
		default:
			b = b.Owns(k.New())
		}
	}
	// Node bridge declarations and namespace labels decide which NICs may
	// use which bridge: a change re-checks the Wukongs using the bridge.
	b = b.Watches(&v1alpha1.NodeBridge{}, handler.EnqueueRequestsFromMapFunc(r.bridgeUsers)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.namespaceBridgeUsers))
	// StorageClasses: a Stalled Wukong whose disk names a missing class (or
	// the default, when none is) passes again as soon as the class appears,
	// instead of after StalledRetry. They are cluster-scoped, written by
	// administrators only and few, and the steps already read them through
	// the cache, so the watch adds no informer. The NADs and password
	// Secrets a user names are not watched: even metadata only, that would
	// keep an entry per NAD or Secret of every namespace in memory, a
	// number any tenant can grow; a Wukong waiting for one finds it by
	// StalledRetry (or at once on any change to the Wukong, an annotation
	// included). SSH key Secrets are the exception (an edit must reach
	// running guests): the opted-in ones only, their names only
	// (SetupOptions.KeySecrets).
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Wukong{}, indexStorageClasses, wukongIndex(storageClassesOf)); err != nil {
		return err
	}
	b = b.Watches(&storagev1.StorageClass{}, handler.EnqueueRequestsFromMapFunc(r.stalledClassUsers))
	// Claims named by claimName: a disk whose claim another Wukong of the
	// namespace names first is refused (claimsShared).
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Wukong{}, indexClaimNames, wukongIndex(claimNamesOf)); err != nil {
		return err
	}
	// A Wukong's change (its deletion above all: it frees a claim another
	// names first, or releases a Retain disk's claim) wakes the Stalled
	// Wukongs naming one of its claims, instead of after StalledRetry.
	b = b.Watches(&v1alpha1.Wukong{}, handler.EnqueueRequestsFromMapFunc(r.stalledClaimUsers))
	// Nodes: a node's Ready change reaches the Wukongs whose VM runs there
	// (status.nodeName, indexed), for NodeLost and the node-loss policy.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Wukong{}, indexNodeName, wukongIndex(nodeNameOf)); err != nil {
		return err
	}
	b = b.Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.wukongsOnNode), builder.WithPredicates(nodeReadyChanged))
	// Clone sources: a Wukong or WukongSnapshot that appears, changes (a
	// disk made, ready to use) or goes reaches the Wukongs of its
	// namespace whose disks clone it (spec.disks[i].cloneFrom, indexed).
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Wukong{}, indexCloneSources, wukongIndex(cloneSourcesOf)); err != nil {
		return err
	}
	b = b.Watches(&v1alpha1.Wukong{}, handler.EnqueueRequestsFromMapFunc(r.cloneUsers(cloneKeyWukong)))
	if o.Installed == nil || o.Installed(v1alpha1.GroupVersion.WithKind("WukongSnapshot")) {
		b = b.Watches(&v1alpha1.WukongSnapshot{}, handler.EnqueueRequestsFromMapFunc(r.cloneUsers(cloneKeySnapshot)))
	}
	b, err := r.watchSSHKeySecrets(mgr, b, o.KeySecrets)
	if err != nil {
		return err
	}
	// Cluster instance types and preferences: an administrator's and few,
	// like StorageClasses, and read through the cache already (lib/kubevirt
	// resolveReferences), so the watch adds no informer; a Wukong Stalled
	// on a missing one passes as soon as it appears, instead of after
	// StalledRetry. The namespaced kinds are read from the API server
	// (UncachedKind) and not watched: a tenant can make any number.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Wukong{}, indexClusterInstancetypes, wukongIndex(clusterInstancetypesOf)); err != nil {
		return err
	}
	for _, w := range []struct {
		gvk schema.GroupVersionKind
		obj client.Object
	}{
		{gvkClusterInstancetype, &instancetypev1beta1.VirtualMachineClusterInstancetype{}},
		{gvkClusterPreference, &instancetypev1beta1.VirtualMachineClusterPreference{}},
	} {
		if o.Installed == nil || o.Installed(w.gvk) {
			b = b.Watches(w.obj, handler.EnqueueRequestsFromMapFunc(r.stalledInstancetypeUsers(w.gvk.Kind)))
		}
	}
	// Catalog images: declared, allowed for a namespace, golden copy ready.
	if o.Installed == nil || o.Installed(v1alpha1.GroupVersion.WithKind("ClusterImage")) {
		b = b.Watches(&v1alpha1.ClusterImage{}, handler.EnqueueRequestsFromMapFunc(r.catalogUsers))
	}
	return b.Complete(r)
}

// wukongIndex is the client.IndexerFunc of a Wukong field index whose keys
// are keys(w) for a Wukong w (an object of another type has none).
func wukongIndex(keys func(w *v1alpha1.Wukong) []string) client.IndexerFunc {
	return func(o client.Object) []string {
		if w, ok := o.(*v1alpha1.Wukong); ok {
			return keys(w)
		}
		return nil
	}
}

// indexCloneSources indexes Wukongs by the sources their disks clone:
// cloneKeyWukong(name) and cloneKeySnapshot(name), in their namespace.
const indexCloneSources = "spec.disks.cloneFrom"

func cloneKeyWukong(name string) string   { return "wukong/" + name }
func cloneKeySnapshot(name string) string { return "snapshot/" + name }

func cloneSourcesOf(w *v1alpha1.Wukong) []string {
	var out []string
	for _, d := range w.Spec.Disks {
		switch cf := d.CloneFrom; {
		case cf == nil:
		case cf.Wukong != "":
			out = append(out, cloneKeyWukong(cf.Wukong))
		case cf.Snapshot != "":
			out = append(out, cloneKeySnapshot(cf.Snapshot))
		}
	}
	return out
}

// cloneUsers maps a clone source (a Wukong or a WukongSnapshot) to the
// Wukongs of its namespace that clone it.
func (r *WukongReconciler) cloneUsers(key func(string) string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.wukongRequests(ctx, nil, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexCloneSources: key(o.GetName())})
	}
}

// indexStorageClasses indexes Wukongs by the StorageClasses their disks
// name; defaultClassKey stands for a disk naming none (the cluster's
// default class).
const (
	indexStorageClasses = "spec.disks.storageClassName"
	defaultClassKey     = "<default>" // not a valid object name
)

// indexClaimNames indexes Wukongs by the existing claims their disks name
// (claimName).
const indexClaimNames = "spec.disks.claimName"

func claimNamesOf(w *v1alpha1.Wukong) []string {
	var out []string
	for _, d := range w.Spec.Disks {
		if d.ClaimName != "" && !slices.Contains(out, d.ClaimName) {
			out = append(out, d.ClaimName)
		}
	}
	return out
}

func storageClassesOf(w *v1alpha1.Wukong) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range mapping.Disks(w) {
		if d.ClaimName != "" {
			continue // an existing claim: its class is its own, never looked for
		}
		name := d.StorageClassName
		if name == "" {
			name = defaultClassKey
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// stalledClassUsers maps a StorageClass to the Stalled Wukongs whose disks
// name it, and, for a class marked default, to those naming none. Wukongs
// that are not Stalled are left alone: a claim's class never changes, so a
// class event tells them nothing.
func (r *WukongReconciler) stalledClassUsers(ctx context.Context, o client.Object) []reconcile.Request {
	keys := []string{o.GetName()}
	if storage.IsDefaultClass(o) {
		keys = append(keys, defaultClassKey)
	}
	stalled := func(w *v1alpha1.Wukong) bool { return conditions.IsTrue(w, v1alpha1.StalledCondition) }
	var reqs []reconcile.Request
	for _, key := range keys {
		reqs = append(reqs, r.wukongRequests(ctx, stalled, client.MatchingFields{indexStorageClasses: key})...)
	}
	return reqs
}

// indexClusterInstancetypes indexes Wukongs by the cluster instance type
// and cluster preference they name: clusterRefKey(kind, name).
const indexClusterInstancetypes = "spec.clusterInstancetypeRefs"

func clusterRefKey(kind, name string) string { return kind + "/" + name }

func clusterInstancetypesOf(w *v1alpha1.Wukong) []string {
	var out []string
	if it := w.Spec.Instancetype; it != nil && (it.Kind == "" || it.Kind == kubevirt.KindClusterInstancetype) {
		out = append(out, clusterRefKey(kubevirt.KindClusterInstancetype, it.Name))
	}
	if p := w.Spec.Preference; p != nil && (p.Kind == "" || p.Kind == kubevirt.KindClusterPreference) {
		out = append(out, clusterRefKey(kubevirt.KindClusterPreference, p.Name))
	}
	return out
}

// stalledInstancetypeUsers maps a cluster instance type or preference (of
// kind) to the Stalled Wukongs naming it.
func (r *WukongReconciler) stalledInstancetypeUsers(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.wukongRequests(ctx, func(w *v1alpha1.Wukong) bool { return conditions.IsTrue(w, v1alpha1.StalledCondition) },
			client.MatchingFields{indexClusterInstancetypes: clusterRefKey(kind, o.GetName())})
	}
}

// stalledClaimUsers maps a Wukong to the other Stalled Wukongs of its
// namespace whose claimName names one of its disks' claims (its claimName,
// or the claim it creates, <wukong>-<disk>).
func (r *WukongReconciler) stalledClaimUsers(ctx context.Context, o client.Object) []reconcile.Request {
	w, ok := o.(*v1alpha1.Wukong)
	if !ok {
		return nil
	}
	otherStalled := func(other *v1alpha1.Wukong) bool {
		return other.UID != w.UID && conditions.IsTrue(other, v1alpha1.StalledCondition)
	}
	var reqs []reconcile.Request
	for i := range w.Spec.Disks {
		reqs = append(reqs, r.wukongRequests(ctx, otherStalled, client.InNamespace(w.Namespace), client.MatchingFields{indexClaimNames: mapping.DiskClaimName(w, i)})...)
	}
	return reqs
}

// bridgeUsers maps a NodeBridge to the Wukongs naming it.
func (r *WukongReconciler) bridgeUsers(ctx context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, k := range nodenet.Keys(o) {
		reqs = append(reqs, r.wukongsUsing(ctx, k)...)
	}
	return reqs
}

// namespaceBridgeUsers maps a Namespace to its Wukongs that use a node
// bridge (its labels decide whether they may).
func (r *WukongReconciler) namespaceBridgeUsers(ctx context.Context, o client.Object) []reconcile.Request {
	usesBridge := func(w *v1alpha1.Wukong) bool { return len(nodenet.IndexWukong(w)) > 0 }
	return r.wukongRequests(ctx, usesBridge, client.InNamespace(o.GetName()))
}

func (r *WukongReconciler) wukongsUsing(ctx context.Context, bridge string) []reconcile.Request {
	return r.wukongRequests(ctx, nil, client.MatchingFields{nodenet.IndexField: bridge})
}

// wukongRequests lists the Wukongs opts select and returns a request for
// each that keep passes (a nil keep passes all); none when the list fails.
func (r *WukongReconciler) wukongRequests(ctx context.Context, keep func(*v1alpha1.Wukong) bool, opts ...client.ListOption) []reconcile.Request {
	list := &v1alpha1.WukongList{}
	if err := r.Client.List(ctx, list, opts...); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if keep == nil || keep(&list.Items[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// byWukongLabel maps a child carrying Wukong's owner label
// (identity.Wukong.OwnerLabelKey()) to its Wukong.
func byWukongLabel(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[identity.Wukong.OwnerLabelKey()]
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

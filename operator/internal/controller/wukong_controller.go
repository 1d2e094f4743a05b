// Package controller is the Wukong reconciler: it maps a Wukong's spec to the
// lib/network, lib/storage and lib/kubevirt inputs, runs them as steps, and
// derives the Wukong's status from what they observed.
package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
	"github.com/novasphere/wukong/operator/imagesource"
	"github.com/novasphere/wukong/operator/mapping"
)

// Finalizer was put on Wukongs by versions that wrote node bridge policies
// for them; those are now an administrator's NodeBridge's, and everything a
// Wukong owns goes through owner references, so it is only removed.
const Finalizer = "vm.novasphere.dev/finalizer"

// retainFinalizer is on a Wukong while one of its disks has deletionPolicy
// Retain (and no claimName): when the Wukong is deleted it holds the Wukong,
// and so the garbage collection of its children, until those disks' claims
// are released (storage.Release). It is added and removed as the spec
// changes, and removed once the claims are released or gone.
const retainFinalizer = "vm.novasphere.dev/retain-disks"

// Every rule below is needed by a step; see the chart's RBAC test.
// namespace=watched marks a rule on namespaced objects Wukong reads or
// writes only in the Wukong's own namespace: controller-gen puts it in a
// Role of the placeholder namespace "watched" (operator/config/rbac), which
// scripts/gen-chart.sh turns into the chart's <fullname>-manager-namespaced
// ClusterRole, bound in each of watchNamespaces (or cluster-wide when it is
// empty). Rules without it are cluster-wide in every install.
// Wukongs: the resource itself, its status and its finalizer.
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=wukongs,verbs=get;list;watch;update;patch,namespace=watched
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=wukongs/status,verbs=get;update;patch,namespace=watched
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=wukongs/finalizers,verbs=update,namespace=watched
// Children: applied with Server-Side Apply (patch), watched, cleaned by GC.
// A DataVolume the operator created is also deleted by it: a Retain disk's
// once its claim is released (reconcileDelete), a blank disk's whose claim
// is gone (lib/storage).
// +kubebuilder:rbac:groups=kubevirt.io,resources=virtualmachines,verbs=get;list;watch;create;patch,namespace=watched
// +kubebuilder:rbac:groups=kubevirt.io,resources=virtualmachineinstances,verbs=get;list;watch,namespace=watched
// +kubebuilder:rbac:groups=cdi.kubevirt.io,resources=datavolumes,verbs=get;list;watch;create;patch;delete,namespace=watched
// +kubebuilder:rbac:groups=core,resources=persistentvolumeclaims,verbs=get;list;watch;create;patch,namespace=watched
// +kubebuilder:rbac:groups=k8s.cni.cncf.io,resources=network-attachment-definitions,verbs=get;list;watch;create;patch,namespace=watched
// NetworkAttachmentDefinitions of the global namespaces (GlobalNADNamespaces)
// a NIC may name: only read, one at a time. namespace=global-nads: the chart
// binds this rule in each of multus.globalNamespaces when the manager
// watches only some namespaces.
// +kubebuilder:rbac:groups=k8s.cni.cncf.io,resources=network-attachment-definitions,verbs=get,namespace=global-nads
// Cloud-init Secrets are written; SSH key Secrets are read.
// +kubebuilder:rbac:groups=core,resources=secrets,verbs=get;list;watch;create;patch,namespace=watched
// ConfigMaps a disk names for its import (imageAccess.certConfigMap): only
// read, one at a time, to see they are there; never listed or watched.
// +kubebuilder:rbac:groups=core,resources=configmaps,verbs=get,namespace=watched
// Node bridges: an administrator's declarations, read to grant NICs; the
// namespace's labels, matched against their namespaceSelector.
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=nodebridges,verbs=get;list;watch
// +kubebuilder:rbac:groups=core,resources=namespaces,verbs=get;list;watch
// StorageClasses: existence, default class, binding mode, expansion.
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get;list;watch
// Events on the condition transitions a person acts on (emitEvents).
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch,namespace=watched
// Events read (never watched) from the API server, in the Wukong's
// namespace and by involvedObject.uid, only while its machine is stuck
// starting (observeCause).
// +kubebuilder:rbac:groups=core,resources=events,verbs=get;list,namespace=watched

// WukongReconciler reconciles Wukong objects.
type WukongReconciler struct {
	// Client reads from the informer cache, falling back to the API server
	// for objects the label-filtered cache does not hold (see FallbackClient).
	Client   client.Client
	Recorder events.EventRecorder
	// APIReader reads from the API server, uncached: the Events that say
	// why a machine does not start (observeCause). Nil reads none.
	APIReader client.Reader
	Metrics   *Metrics
	// GlobalNADNamespaces are the namespaces whose NetworkAttachmentDefinitions
	// any Wukong may name in nadName (like Multus' globalNamespaces); a NAD
	// in any other namespace but the Wukong's own is refused.
	GlobalNADNamespaces []string
	// ImageSources decides which hosts disk images and osImage may be
	// fetched from (nil: the default policy of package imagesource).
	ImageSources *imagesource.Policy
	// StatusWrites coalesces status writes that change no state (import
	// progress, messages, details) (its zero value: 10-point bands, 5s).
	StatusWrites StatusWrites
	// StalledRetry is when a Wukong Stalled on something no watch reports
	// is looked at again (its zero value: 1m doubling to 30m).
	StalledRetry StalledRetry
	// DefaultEvictionStrategy is the administrator's eviction strategy for
	// VMs whose Wukong sets no spec.evictionStrategy (empty: none, so the
	// KubeVirt CR's applies).
	DefaultEvictionStrategy kubevirtv1.EvictionStrategy
	// NodeLoss is the administrator's node-loss policy (zero: off).
	NodeLoss NodeLossPolicy
	// ClusterID is mixed into the MACs of new NICs (network.WithClusterID;
	// see macs.go); empty keeps the scheme without it.
	ClusterID string
	// Clock is the time the node-loss policy compares with (nil: time.Now).
	Clock func() time.Time
	// Cache reads only what the manager's cache holds (Wukong's own,
	// labelled children), never the API server: a Stalled pass uses it to
	// skip live reads that cannot change what it does (see reconcileDisks
	// and observeMachine). Nil reads through Client.
	Cache client.Reader
	// CatalogNamespace holds the golden copies of ClusterImages (the
	// DataSources disks naming spec.disks[i].clusterImage clone).
	CatalogNamespace string
}

// Reconcile runs one pass for one Wukong: finalizer, steps
// (networks -> disks -> machine) into a scope, then status once.
func (r *WukongReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	log := logf.FromContext(ctx)
	w := &v1alpha1.Wukong{}
	if err := r.Client.Get(ctx, req.NamespacedName, w); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.forget(req.NamespacedName)
			r.StatusWrites.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !w.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, w)
	}
	if err := r.syncRetainFinalizer(ctx, w); err != nil {
		return ctrl.Result{}, err
	}
	base := w.DeepCopy()
	s := &scope{w: w}
	defer func() {
		requeue, err := r.writeStatus(ctx, base, w, s)
		if err != nil {
			retErr = errors.Join(retErr, err)
		}
		if retErr == nil && s.external() {
			// Stalled on what no watch reports: look again later, the
			// later the longer it has been Stalled (base: as read at the
			// start of the pass; w: as computed now).
			requeue = minRequeue(requeue, r.StalledRetry.After(
				conditions.Get(base, v1alpha1.StalledCondition),
				conditions.GetReason(w, v1alpha1.StalledCondition), w.Generation))
		}
		result.RequeueAfter = minRequeue(result.RequeueAfter, requeue) // a coalesced progress write is written then
		if retErr != nil && !errors.Is(retErr, context.Canceled) {
			r.Metrics.reconcileError(errorReason(retErr))
		}
	}()

	for _, st := range []step{r.checkImageSources, r.reconcileNetworks, r.reconcileDisks, r.reconcileMachine, r.releaseRemovedDisks, r.observeMaintenance, r.observeResources} {
		if err := st(ctx, s); err != nil {
			if errors.Is(err, context.Canceled) {
				return ctrl.Result{}, nil
			}
			s.addTransient(err)
		}
	}
	if s.transient != nil {
		log.V(1).Info("transient error, retrying with backoff", "error", s.transient.Error())
		return ctrl.Result{}, s.transient
	}
	return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
}

// minRequeue is the shorter of two requeue delays, 0 meaning none.
func minRequeue(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// writeStatus computes status from the scope and patches it in one patch
// (the only status write of a pass) when it changed and StatusWrites does
// not coalesce it; a coalesced write returns when to reconcile again.
// Events follow a written status (emitEvents).
func (r *WukongReconciler) writeStatus(ctx context.Context, base, w *v1alpha1.Wukong, s *scope) (time.Duration, error) {
	computeStatus(w, s)
	r.Metrics.observe(w)
	key := client.ObjectKeyFromObject(w)
	d, before := r.StatusWrites.decide(key, base, &w.Status)
	if !d.Write {
		return d.RequeueAfter, nil
	}
	if err := r.Client.Status().Patch(ctx, w, client.MergeFrom(base)); err != nil {
		if apierrors.IsNotFound(err) || errors.Is(err, context.Canceled) {
			return 0, nil
		}
		return 0, fmt.Errorf("cannot patch Wukong status: %w", err)
	}
	r.StatusWrites.written(key, base.ResourceVersion, &w.Status)
	r.emitEvents(&v1alpha1.Wukong{Status: *before}, w)
	return 0, nil
}

// emitEvents records an Event for each condition transition a person acts
// on or waits for; the steps in between (networks configured, disks
// importing or bound, the VM starting) show in status and its conditions,
// not as Events, so a healthy Wukong records one Event. They are:
//
//   - Ready becomes True, or changes reason while True (Running, Stopped):
//     Normal, reason Ready's: the machine is up (or stopped as asked).
//   - Ready leaves True (False or Unknown): Warning, reason Ready's: a
//     running machine went down. Not for reason NodeLostRestarting: the
//     node-loss policy records its own Event in the pass that force-deletes
//     the VM's pods (restartOnLostNode, which says how many), so a restart
//     records one Event, not two.
//   - Stalled becomes True, or changes reason while True: Warning, reason
//     and message Stalled's, which name the spec field to fix.
//   - RestartRequired becomes True: Normal: a change waits for a guest
//     restart (virtctl restart).
//   - status.resources changes on a live-migrated instance: Normal
//     ResourcesUpdatedLive: cpu or memory grew without a restart
//     (resourceEvents).
//
// The note is the condition type; the message the condition's.
func (r *WukongReconciler) emitEvents(base, w *v1alpha1.Wukong) {
	if r.Recorder == nil {
		return
	}
	for _, e := range eventsFor(base, w) {
		r.Recorder.Eventf(w, nil, e.kind, e.reason, e.condition, "%s", e.message)
	}
}

// event is one Event emitEvents records.
type event struct{ kind, reason, condition, message string }

// eventsFor lists the Events for the condition transitions from before to
// after (see emitEvents).
func eventsFor(before, after *v1alpha1.Wukong) []event {
	var out []event
	isTrue := func(c *metav1.Condition) bool { return c != nil && c.Status == metav1.ConditionTrue }
	for _, t := range []string{v1alpha1.ReadyCondition, v1alpha1.StalledCondition, v1alpha1.RestartRequiredCondition} {
		was, now := conditions.Get(before, t), conditions.Get(after, t)
		if now == nil {
			continue
		}
		kind := ""
		switch {
		case isTrue(now) && (!isTrue(was) || (t != v1alpha1.RestartRequiredCondition && was.Reason != now.Reason)):
			kind = corev1.EventTypeNormal
			if t == v1alpha1.StalledCondition {
				kind = corev1.EventTypeWarning
			}
		case t == v1alpha1.ReadyCondition && isTrue(was) && !isTrue(now) && now.Reason != v1alpha1.ReasonNodeLostRestarting:
			kind = corev1.EventTypeWarning
		}
		if kind != "" {
			out = append(out, event{kind: kind, reason: now.Reason, condition: t, message: now.Message})
		}
	}
	return append(out, resourceEvents(before, after)...)
}

// syncRetainFinalizer puts retainFinalizer on a live Wukong while one of
// its disks has deletionPolicy Retain (mapping.RetainsClaims) and takes it
// off when none has, in a patch conditional on the Wukong's
// resourceVersion (a conflict is retried). Nothing else is written.
func (r *WukongReconciler) syncRetainFinalizer(ctx context.Context, w *v1alpha1.Wukong) error {
	want := mapping.RetainsClaims(w) || len(removedRetainDisks(w)) > 0
	if want == controllerutil.ContainsFinalizer(w, retainFinalizer) {
		return nil
	}
	base := w.DeepCopy()
	if want {
		controllerutil.AddFinalizer(w, retainFinalizer)
	} else {
		controllerutil.RemoveFinalizer(w, retainFinalizer)
	}
	if err := r.Client.Patch(ctx, w, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("cannot patch the finalizers of Wukong %s: %w", w.Name, err)
	}
	return nil
}

// reconcileDelete releases the claims of the disks with deletionPolicy
// Retain (storage.Release: only claims this Wukong created; a claim that is
// gone or being deleted is reported in an Event, never waited for), then
// removes retainFinalizer and the finalizer older versions added; owner
// references take the other children (only those this Wukong created: it
// never adopts, so nothing else can go with it). A disk changed from Retain
// to Delete just before the deletion is not released: the spec at deletion
// decides.
func (r *WukongReconciler) reconcileDelete(ctx context.Context, w *v1alpha1.Wukong) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(w, Finalizer) && !controllerutil.ContainsFinalizer(w, retainFinalizer) {
		return ctrl.Result{}, nil
	}
	if controllerutil.ContainsFinalizer(w, retainFinalizer) {
		released, err := storage.Release(ctx, r.Client, identity.Wukong, w, append(mapping.Disks(w), removedRetainDisks(w)...))
		if err != nil {
			return ctrl.Result{}, err
		}
		r.retainEvents(w, released)
	}
	base := w.DeepCopy()
	controllerutil.RemoveFinalizer(w, Finalizer)
	controllerutil.RemoveFinalizer(w, retainFinalizer)
	if err := r.Client.Patch(ctx, w, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.Metrics.forget(client.ObjectKeyFromObject(w))
	return ctrl.Result{}, nil
}

// retainEvents records what became of each Retain disk's claim: Normal
// DiskRetained for a released claim (with the labels to find it by),
// Warning DiskNotRetained for one being deleted already (a foreground
// deletion deletes the children before the finalizer is looked at) or a
// claim of that name Wukong did not create (left untouched). A claim that
// never existed gets none.
func (r *WukongReconciler) retainEvents(w *v1alpha1.Wukong, released []storage.Released) {
	if r.Recorder == nil {
		return
	}
	from := storage.RetainedFromKey(identity.Wukong, "Wukong")
	for _, rel := range released {
		switch rel.Outcome {
		case storage.ReleaseDone:
			r.Recorder.Eventf(w, nil, corev1.EventTypeNormal, v1alpha1.ReasonDiskRetained, "Release",
				"disk %s: PersistentVolumeClaim %s is kept (labels %s=%s, %s=%s): name it in a disk's claimName to use it again",
				rel.Disk, rel.ClaimName, from, w.Name, identity.Wukong.Key(storage.KeyRetainedFromDisk), rel.Disk)
		case storage.ReleaseDeleting:
			r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, v1alpha1.ReasonDiskNotRetained, "Release",
				"disk %s: PersistentVolumeClaim %s was being deleted already and cannot be kept", rel.Disk, rel.ClaimName)
		case storage.ReleaseNotOwned:
			r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, v1alpha1.ReasonDiskNotRetained, "Release",
				"disk %s: PersistentVolumeClaim %s was not created for this Wukong and is left untouched", rel.Disk, rel.ClaimName)
		}
	}
}

// errorReason is a low-cardinality label for the reconcile error metric.
func errorReason(err error) string {
	switch {
	case apierrors.IsConflict(err):
		return "Conflict"
	case apierrors.IsNotFound(err):
		return "NotFound"
	case apierrors.IsForbidden(err):
		return "Forbidden"
	case apierrors.IsInvalid(err):
		return "Invalid"
	case apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return "Timeout"
	case apierrors.IsTooManyRequests(err):
		return "TooManyRequests"
	default:
		return "Other"
	}
}

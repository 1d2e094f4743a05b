package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	requeueSlow = 2 * time.Second
	// ProgressNA is the progress CDI reports before the importer runs.
	ProgressNA = "N/A"
	// ProgressDone is the progress of a Succeeded import.
	ProgressDone = "100.0%"
	// ReasonImportError is the Running condition reason of a failing import.
	ReasonImportError = "Error"
	// DefaultDataVolumeSize is used when a DataVolume requests no size.
	DefaultDataVolumeSize = "1Gi"
	annImportEndpoint     = "cdi.kubevirt.io/storage.import.endpoint"
	annImportSource       = "cdi.kubevirt.io/storage.import.source"
	// annCreatedForDataVolume and annPopulatedFor are CDI's claim
	// annotations (pkg/controller/common AnnCreatedForDataVolume,
	// AnnPopulatedFor).
	annCreatedForDataVolume = "cdi.kubevirt.io/createdForDataVolume"
	annPopulatedFor         = "cdi.kubevirt.io/storage.populatedFor"
	sourceNone              = "none"
	maxBackoffShift         = 5 // at most 32 intervals between importer restarts
)

// cdiSim plays CDI's import controller. A DataVolume (image or blank
// source) gets a PVC of the same
// name (controlled by the DataVolume); while the PVC is Pending the phase is
// Pending, or WaitForFirstConsumer for a WaitForFirstConsumer class. Once
// Bound: ImportScheduled, then ImportInProgress with progress advancing by
// step each interval, then Succeeded at "100.0%". An unreachable source keeps
// the import in ImportInProgress with a growing restartCount and
// Running=False reason "Error" (real CDI retries a crashing importer pod
// forever; the DataVolume does not become Failed).
type cdiSim struct {
	c        client.Client
	step     float64
	interval time.Duration
	pace     pacer
}

func (r *cdiSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-cdi").
		// Objects are independent here.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		For(&cdiv1.DataVolume{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		// A claim populated for a DataVolume has no owner yet.
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if dv := o.GetAnnotations()[annPopulatedFor]; dv != "" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: dv}}}
			}
			return nil
		})).
		Complete(r)
}

func (r *cdiSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *cdiSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	dv := &cdiv1.DataVolume{}
	if err := r.c.Get(ctx, req.NamespacedName, dv); err != nil {
		r.pace.forget(req.NamespacedName)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if dv.DeletionTimestamp != nil {
		r.pace.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if dv.Status.Phase == cdiv1.Succeeded {
		// CDI checks the claim's ownership on every pass, a finished
		// DataVolume's too (syncDvPvcState calls validatePVC), and makes
		// no new claim for it.
		r.pace.forget(req.NamespacedName)
		pvc := &corev1.PersistentVolumeClaim{}
		if err := r.c.Get(ctx, req.NamespacedName, pvc); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if _, err := r.validateClaim(ctx, dv, pvc); err != nil {
			return ctrl.Result{}, err
		}
		left, err := r.collect(ctx, dv, pvc) // CDI before v1.62 only: see collect
		return ctrl.Result{RequeueAfter: time.Duration(left) * time.Second}, err
	}
	// A clone of a DataSource (spec.sourceRef) clones what it points at
	// (catalog.go populateSourceRef); until then CDI retries, no claim made.
	if ok, err := r.populateSourceRef(ctx, dv); err != nil || !ok {
		if err == nil && dv.Status.Phase == cdiv1.PhaseUnset {
			dv.Status.Phase = cdiv1.Pending
			err = r.c.Status().Update(ctx, dv)
		}
		return ctrl.Result{RequeueAfter: requeueSlow}, err
	}
	pvc, err := r.ensureClaim(ctx, dv)
	if errors.Is(err, errPrePopulated) {
		return ctrl.Result{RequeueAfter: requeueSlow}, nil
	}
	var invalid *errClaimNotValid
	if errors.As(err, &invalid) {
		return r.claimNotValid(ctx, dv, invalid.msg)
	}
	if status := apierrors.APIStatus(nil); apierrors.IsForbidden(err) && errors.As(err, &status) &&
		strings.Contains(status.Status().Message, "exceeded quota:") {
		return r.quotaExceeded(ctx, dv, status.Status().Message)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	before := dv.Status.DeepCopy()
	requeue, err := r.advance(ctx, dv, pvc)
	if err != nil {
		return ctrl.Result{}, err
	}
	if equality.Semantic.DeepEqual(before, &dv.Status) {
		return ctrl.Result{RequeueAfter: requeue}, nil
	}
	if err := r.c.Status().Update(ctx, dv); err != nil {
		return ctrl.Result{}, err
	}
	if dv.Status.Phase != before.Phase {
		log.FromContext(ctx).Info("DataVolume phase", "phase", dv.Status.Phase, "progress", dv.Status.Progress)
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// claimNotValid reports, as CDI's DataVolume controller does when it cannot
// render the claim (pkg/controller/datavolume/controller-base.go
// syncCommon and updateConditions), phase unset and Bound and Ready False
// with reason ErrClaimNotValid and the message; CDI retries, and so does
// this (a changed StorageProfile can fix it).
func (r *cdiSim) claimNotValid(ctx context.Context, dv *cdiv1.DataVolume, msg string) (ctrl.Result, error) {
	before := dv.Status.DeepCopy()
	dv.Status.Phase = cdiv1.PhaseUnset
	setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionFalse, reasonClaimNotValid, msg)
	setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionFalse, reasonClaimNotValid, msg)
	setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "", "")
	if !equality.Semantic.DeepEqual(before, &dv.Status) {
		if err := r.c.Status().Update(ctx, dv); err != nil {
			return ctrl.Result{}, err
		}
		log.FromContext(ctx).Info("DataVolume claim not valid", "message", msg)
	}
	return ctrl.Result{RequeueAfter: requeueSlow}, nil
}

// reasonExceededQuota is CDI's reason for a claim a quota refuses
// (pkg/controller/common ErrExceededQuota).
const reasonExceededQuota = "ErrExceededQuota"

// quotaExceeded reports, as CDI's handlePvcCreation does when the API
// server refuses the DataVolume's claim for a quota
// (pkg/controller/datavolume/controller-base.go, v1.65.0; the real quota
// admission of the sandbox's API server refused it): phase Pending, Bound
// and Ready False with reason ErrExceededQuota and the API server's
// message, and on the phase change a Warning Event of that reason. CDI
// retries with backoff; the sandbox every requeueSlow, so a raised quota
// or a smaller disk passes soon.
func (r *cdiSim) quotaExceeded(ctx context.Context, dv *cdiv1.DataVolume, msg string) (ctrl.Result, error) {
	before := dv.Status.DeepCopy()
	dv.Status.Phase = cdiv1.Pending
	setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionFalse, reasonExceededQuota, msg)
	setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionFalse, reasonExceededQuota, msg)
	setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "", "")
	if equality.Semantic.DeepEqual(before, &dv.Status) {
		return ctrl.Result{RequeueAfter: requeueSlow}, nil
	}
	if err := r.c.Status().Update(ctx, dv); err != nil {
		return ctrl.Result{}, err
	}
	if before.Phase != dv.Status.Phase {
		events := &kubevirtSim{c: r.c} // the same Event shape as any recorder's
		if err := events.recordWarning(ctx, dv, cdiv1.SchemeGroupVersion.String(), "DataVolume", reasonExceededQuota, msg, "datavolume-import-controller", ""); err != nil {
			return ctrl.Result{}, err
		}
	}
	log.FromContext(ctx).Info("DataVolume claim refused by a quota", "message", msg)
	return ctrl.Result{RequeueAfter: requeueSlow}, nil
}

// advance computes the next status from the claim; it returns when to look
// again (0: wait for a watch event). A clone goes on in advanceClone once
// its claim is bound.
func (r *cdiSim) advance(ctx context.Context, dv *cdiv1.DataVolume, pvc *corev1.PersistentVolumeClaim) (time.Duration, error) {
	dv.Status.ClaimName = pvc.Name
	if pvc.Status.Phase != corev1.ClaimBound {
		dv.Status.Phase = cdiv1.Pending
		if r.waitsForConsumer(ctx, pvc) {
			dv.Status.Phase = cdiv1.WaitForFirstConsumer
		}
		dv.Status.Progress = ProgressNA
		setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionFalse, "Pending", "PVC "+pvc.Name+" Pending")
		setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionFalse, "", "")
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "", "")
		return 0, nil
	}
	setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionTrue, "Bound", "PVC "+pvc.Name+" Bound")
	setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionFalse, "", "")
	if isClone(dv) {
		return r.advanceClone(ctx, dv, pvc)
	}
	msg := importError(dv, pvc)
	next := r.interval
	if msg != "" { // back off like a crash-looping importer pod
		next <<= min(dv.Status.RestartCount+1, maxBackoffShift)
	}
	if d := r.pace.wait(client.ObjectKeyFromObject(dv), next); d > 0 {
		return d, nil
	}
	switch dv.Status.Phase {
	case cdiv1.ImportScheduled, cdiv1.ImportInProgress:
	default:
		dv.Status.Phase = cdiv1.ImportScheduled
		dv.Status.Progress = ProgressNA
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "Pending", "Import pod pending")
		return r.interval, nil
	}
	if msg != "" {
		dv.Status.Phase = cdiv1.ImportInProgress
		dv.Status.Progress = ProgressNA
		dv.Status.RestartCount++
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, ReasonImportError, msg)
		return next, nil
	}
	progress := parseProgress(dv.Status.Progress) + r.step
	if src := dv.Spec.Source; src != nil && src.Blank != nil {
		// A blank source has nothing to transfer: CDI's importer writes an
		// empty image and reports no progress, so the DataVolume goes from
		// ImportInProgress "N/A" to Succeeded (CDI pkg/importer, the
		// "none" source's data processor).
		progress = 100
		if dv.Status.Phase == cdiv1.ImportScheduled {
			dv.Status.Phase = cdiv1.ImportInProgress
			setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionTrue, "Pod is running", "")
			return r.interval, nil
		}
	}
	if progress >= 100 {
		if err := r.setData(ctx, pvc, importedData(dv)); err != nil {
			return 0, err
		}
		dv.Status.Phase = cdiv1.Succeeded
		dv.Status.Progress = ProgressDone
		setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionTrue, "", "")
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "Completed", "Import Complete")
		return 0, nil
	}
	dv.Status.Phase = cdiv1.ImportInProgress
	dv.Status.Progress = cdiv1.DataVolumeProgress(fmt.Sprintf("%.2f%%", progress))
	setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionTrue, "Pod is running", "")
	return r.interval, nil
}

func parseProgress(p cdiv1.DataVolumeProgress) float64 {
	f, err := strconv.ParseFloat(strings.TrimSuffix(string(p), "%"), 64)
	if err != nil {
		return 0
	}
	return f
}

// unreachable returns the importer's error for a source that cannot be
// reached: an http(s) URL whose host ends in ".invalid", or a registry URL
// containing "unreachable". Empty when the source is fine.
func unreachable(dv *cdiv1.DataVolume) string {
	src := dv.Spec.Source
	if src == nil {
		return ""
	}
	if src.HTTP != nil {
		u, err := url.Parse(src.HTTP.URL)
		if err == nil && strings.HasSuffix(u.Hostname(), ".invalid") {
			return fmt.Sprintf("Unable to connect to http data source: Get %q: dial tcp: lookup %s: no such host",
				src.HTTP.URL, u.Hostname())
		}
	}
	if src.Registry != nil && strings.Contains(deref(src.Registry.URL), "unreachable") {
		image := strings.TrimPrefix(deref(src.Registry.URL), "docker://")
		host, _, _ := strings.Cut(image, "/")
		return fmt.Sprintf("Unable to process data: Failed to read registry image: pinging container registry %s: "+
			"dial tcp: lookup %s: no such host", host, host)
	}
	return ""
}

// ensureClaim returns the DataVolume's PVC, creating it from spec.storage
// (or spec.pvc) when missing. As CDI does, the claim it creates is
// controlled by the DataVolume and annotated with the DataVolume's UID
// (containerized-data-importer pkg/controller/datavolume/controller-base.go
// newPersistentVolumeClaim: metav1.NewControllerRef(dataVolume, ...),
// AnnCreatedForDataVolume), and an existing claim the DataVolume does not
// control is taken back only when it carries AnnPopulatedFor naming the
// DataVolume, else refused (validatePVC, pvcRequiresWork: "Resource %q
// already exists and is not managed by DataVolume"; claim adoption, off by
// default, is not played).
func (r *cdiSim) ensureClaim(ctx context.Context, dv *cdiv1.DataVolume) (*corev1.PersistentVolumeClaim, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	err := r.c.Get(ctx, client.ObjectKeyFromObject(dv), pvc)
	if err == nil {
		return r.validateClaim(ctx, dv, pvc)
	}
	if !apierrors.IsNotFound(err) {
		return pvc, err
	}
	if _, ok := dv.Annotations[cdiv1.AnnPrePopulated]; ok {
		// CDI's handlePvcCreation: a prePopulated DataVolume never gets a
		// claim made for it (KubeVirt's restore makes it).
		return nil, errPrePopulated
	}
	pvc = &corev1.PersistentVolumeClaim{ObjectMeta: simulatedMeta(dv.Name, dv.Namespace)}
	for k, v := range dv.Annotations { // CDI copies them all (newPersistentVolumeClaim)
		pvc.Annotations[k] = v
	}
	pvc.Annotations[annCreatedForDataVolume] = string(dv.UID)
	pvc.Labels = map[string]string{"app": "containerized-data-importer"}
	for k, v := range dv.Labels {
		pvc.Labels[k] = v
	}
	if src := dv.Spec.Source; src != nil && src.HTTP != nil {
		pvc.Annotations[annImportEndpoint] = src.HTTP.URL
	} else if src != nil && src.Registry != nil {
		pvc.Annotations[annImportEndpoint] = deref(src.Registry.URL)
	} else if src != nil && src.Blank != nil {
		// CDI marks a blank DataVolume's claim with import source "none"
		// (containerized-data-importer pkg/controller/common AnnSource,
		// SourceNone) and its importer only creates an empty disk image.
		pvc.Annotations[annImportSource] = sourceNone
	}
	switch {
	case dv.Spec.Storage != nil:
		s := dv.Spec.Storage
		pvc.Spec.AccessModes = slices.Clone(s.AccessModes)
		pvc.Spec.StorageClassName = s.StorageClassName
		pvc.Spec.VolumeMode = s.VolumeMode
		pvc.Spec.Resources = s.Resources
		if err := claimDefaults(ctx, r.c, &pvc.Spec); err != nil { // from the StorageProfile
			return nil, err
		}
		if err := r.inflateForOverhead(ctx, &pvc.Spec); err != nil {
			return nil, err
		}
	case dv.Spec.PVC != nil:
		pvc.Spec = *dv.Spec.PVC.DeepCopy()
	}
	if _, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		pvc.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(DefaultDataVolumeSize)}
	}
	if err := controllerutil.SetControllerReference(dv, pvc, r.c.Scheme()); err != nil {
		return nil, err
	}
	if err := r.c.Create(ctx, pvc); err != nil {
		return nil, fmt.Errorf("creating PVC for DataVolume: %w", err)
	}
	log.FromContext(ctx).Info("created claim for DataVolume")
	return pvc, nil
}

// validateClaim is CDI's validatePVC for an existing claim (see
// ensureClaim).
func (r *cdiSim) validateClaim(ctx context.Context, dv *cdiv1.DataVolume, pvc *corev1.PersistentVolumeClaim) (*corev1.PersistentVolumeClaim, error) {
	if metav1.IsControlledBy(pvc, dv) {
		return pvc, nil
	}
	if pvc.Annotations[annPopulatedFor] != dv.Name {
		return nil, fmt.Errorf("resource %q already exists and is not managed by DataVolume", pvc.Name)
	}
	if err := controllerutil.SetControllerReference(dv, pvc, r.c.Scheme()); err != nil {
		return nil, err
	}
	if err := r.c.Update(ctx, pvc); err != nil {
		return nil, err
	}
	return pvc, nil
}

// errPrePopulated: the DataVolume is marked prePopulated and has no claim.
var errPrePopulated = errors.New("prePopulated DataVolume without claim")

func (r *cdiSim) waitsForConsumer(ctx context.Context, pvc *corev1.PersistentVolumeClaim) bool {
	name := deref(pvc.Spec.StorageClassName)
	if name == "" {
		return false
	}
	sc := &storagev1.StorageClass{}
	if err := r.c.Get(ctx, types.NamespacedName{Name: name}, sc); err != nil {
		return false
	}
	return deref(sc.VolumeBindingMode) == storagev1.VolumeBindingWaitForFirstConsumer
}

// importedData is the AnnData an import writes: its source URL, "blank"
// for a blank disk.
func importedData(dv *cdiv1.DataVolume) string {
	switch src := dv.Spec.Source; {
	case src != nil && src.HTTP != nil:
		return src.HTTP.URL
	case src != nil && src.Registry != nil:
		return deref(src.Registry.URL)
	default:
		return "blank"
	}
}

package sandbox

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// AnnData is the sandbox's stand-in for a disk's content, on a claim: what
// CDI wrote into it. An import writes its source URL, a blank disk
// "blank"; a clone copies its source's value (from the source claim, or
// from the VolumeSnapshot, which carries its claim's value when it has
// one), so a test can see that a clone holds its source's data. Real
// clusters have no such annotation.
const AnnData = "sandbox.novasphere.dev/data"

// annCloneType is CDI's record of the clone strategy it chose, on the
// target claim and the DataVolume (pkg/controller/common AnnCloneType).
const annCloneType = "cdi.kubevirt.io/cloneType"

// reasonCloneSourceInUse is the Warning Event CDI records on the target
// while a pod uses the source claim (pkg/controller/common
// CloneSourceInUse).
const reasonCloneSourceInUse = "CloneSourceInUse"

// gvkVolumeSnapshotContent is read as unstructured, as the VolumeSnapshot
// and VolumeSnapshotClass kinds are (snapshot.go).
var gvkVolumeSnapshotContent = schema.GroupVersionKind{Group: "snapshot.storage.k8s.io", Version: "v1", Kind: "VolumeSnapshotContent"}

// cloneStep is one DataVolume phase of a clone.
type cloneStep struct {
	phase    cdiv1.DataVolumePhase
	progress bool // progress advances by step (host-assisted copies report it)
}

// cloneSteps are the DataVolume phases CDI goes through per strategy before
// Succeeded (pkg/controller/datavolume: CSICloneInProgress for a CSI
// clone; SnapshotForSmartCloneInProgress then SmartClonePVCInProgress for a
// clone through a snapshot; CloneFromSnapshotSourceInProgress for a
// snapshot source restored by the CSI driver; CloneInProgress with
// progress for a host-assisted copy).
var cloneSteps = map[string][]cloneStep{
	"csi-clone":                             {{phase: cdiv1.CSICloneInProgress}},
	"snapshot":                              {{phase: cdiv1.SnapshotForSmartCloneInProgress}, {phase: cdiv1.SmartClonePVCInProgress}},
	"snapshot-source":                       {{phase: cdiv1.CloneFromSnapshotSourceInProgress}},
	string(cdiv1.CloneStrategyHostAssisted): {{phase: cdiv1.CloneInProgress, progress: true}},
}

// isClone reports whether the DataVolume clones a claim or a snapshot.
func isClone(dv *cdiv1.DataVolume) bool {
	src := dv.Spec.Source
	return src != nil && (src.PVC != nil || src.Snapshot != nil)
}

// advanceClone plays CDI's clone of a bound target claim (the populator
// flow of pkg/controller/populators/clone-populator.go with the planner of
// pkg/controller/clone/planner.go), one step per interval:
//
//  1. The source must exist (else Pending, CDI's CloneWithoutSource
//     "The source pvc|snapshot <name> doesn't exist"); a source claim
//     must be no bigger than the target (ValidateRequestedCloneSize:
//     "target resources requests storage size is smaller than the
//     source"), bound and populated (its DataVolume Succeeded), and used
//     by no running pod (IsSourceClaimReady, before a CSI clone or a
//     snapshot; clone-controller.go before a host-assisted copy): until
//     then the phase is CloneScheduled, and a Warning Event
//     CloneSourceInUse is recorded on the DataVolume when a running VMI
//     uses the claim (its virt-launcher pod mounts it; the sandbox's
//     launcher pods carry no volumes, so the VMI stands for its pod). A
//     snapshot source must be readyToUse.
//  2. The strategy is chosen once (chooseCloneStrategy) and recorded in
//     annotation cdi.kubevirt.io/cloneType on the claim and the
//     DataVolume.
//  3. The strategy's phases (cloneSteps), then Succeeded at 100.0%, with
//     the source's AnnData copied onto the target claim.
//
// Real CDI fills a prime claim and rebinds its volume to the target, so
// the target binds only when populated; here the target binds first
// (storageSim) and is filled after, which the operator observes the same
// way (the DataVolume's phase).
func (r *cdiSim) advanceClone(ctx context.Context, dv *cdiv1.DataVolume, pvc *corev1.PersistentVolumeClaim) (time.Duration, error) {
	if dv.Status.Phase == cdiv1.Pending || dv.Status.Phase == cdiv1.WaitForFirstConsumer || dv.Status.Phase == cdiv1.PhaseUnset {
		dv.Status.Phase = cdiv1.CloneScheduled
		dv.Status.Progress = ProgressNA
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "", "")
		return r.interval, nil
	}
	strategy := dv.Annotations[annCloneType]
	if strategy == "" {
		wait, err := r.cloneSourceReady(ctx, dv, pvc)
		if err != nil || wait != "" {
			if wait != "" {
				setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, wait, "")
			}
			return 2 * time.Second, err // CDI's own retry (csi-clone.go, snapshot.go: RequeueAfter 2s)
		}
		if strategy, err = r.chooseCloneStrategy(ctx, dv, pvc); err != nil {
			return 0, err
		}
		if err := r.recordCloneType(ctx, dv, pvc, strategy); err != nil {
			return 0, err
		}
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionTrue, "Pod is running", "")
		return r.interval, nil
	}
	if d := r.pace.wait(client.ObjectKeyFromObject(dv), r.interval); d > 0 {
		return d, nil
	}
	key := strategy
	if dv.Spec.Source.Snapshot != nil && strategy == string(cdiv1.CloneStrategySnapshot) {
		key = "snapshot-source"
	}
	steps := cloneSteps[key]
	at := -1
	for i, s := range steps {
		if s.phase == dv.Status.Phase {
			at = i
		}
	}
	if at >= 0 && steps[at].progress {
		if p := parseProgress(dv.Status.Progress) + r.step; p < 100 {
			dv.Status.Progress = cdiv1.DataVolumeProgress(fmt.Sprintf("%.2f%%", p))
			return r.interval, nil
		}
	}
	if at+1 < len(steps) {
		dv.Status.Phase = steps[at+1].phase
		dv.Status.Progress = ProgressNA
		if steps[at+1].progress {
			dv.Status.Progress = "0.00%"
		}
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionTrue, "Pod is running", "")
		return r.interval, nil
	}
	data, _, err := r.cloneSourceData(ctx, dv)
	if err != nil {
		return 0, err
	}
	if err := r.setData(ctx, pvc, data); err != nil {
		return 0, err
	}
	dv.Status.Phase = cdiv1.Succeeded
	dv.Status.Progress = ProgressDone
	setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionTrue, "", "")
	setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "Completed", "Clone Complete")
	return 0, nil
}

// cloneSourceReady checks the source (step 1 of advanceClone): it returns
// the reason the clone waits ("" when it may start).
func (r *cdiSim) cloneSourceReady(ctx context.Context, dv *cdiv1.DataVolume, target *corev1.PersistentVolumeClaim) (string, error) {
	if s := dv.Spec.Source.Snapshot; s != nil {
		vs, err := r.getUnstructured(ctx, gvkVolumeSnapshot, s.Namespace, s.Name)
		if err != nil {
			return "", err
		}
		if vs == nil {
			return "CloneWithoutSource", nil
		}
		if ready, _, _ := unstructured.NestedBool(vs.Object, "status", "readyToUse"); !ready {
			return "SnapshotNotReady", nil
		}
		return "", nil
	}
	s := dv.Spec.Source.PVC
	src := &corev1.PersistentVolumeClaim{}
	if err := r.c.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, src); err != nil {
		if apierrors.IsNotFound(err) {
			return "CloneWithoutSource", nil
		}
		return "", err
	}
	want, have := src.Spec.Resources.Requests[corev1.ResourceStorage], target.Spec.Resources.Requests[corev1.ResourceStorage]
	if want.Cmp(have) > 0 {
		return "ErrIncompatiblePVC", nil
	}
	if src.Status.Phase != corev1.ClaimBound {
		return "SourceNotBound", nil
	}
	srcDV := &cdiv1.DataVolume{}
	if err := r.c.Get(ctx, client.ObjectKeyFromObject(src), srcDV); err == nil && srcDV.Status.Phase != cdiv1.Succeeded {
		return "SourceNotPopulated", nil // cdiv1.IsPopulated
	} else if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	vmi, err := r.claimUser(ctx, src)
	if err != nil || vmi == nil {
		return "", err
	}
	if runningReason(dv) != reasonCloneSourceInUse { // once per wait
		msg := fmt.Sprintf("pod %s/virt-launcher-%s using PersistentVolumeClaim %s", vmi.Namespace, vmi.Name, src.Name)
		if err := recordEvent(ctx, r.c, dv, "cdi.kubevirt.io/v1beta1", "DataVolume", corev1.EventTypeWarning, reasonCloneSourceInUse, msg, "datavolume-pvc-clone-controller", ""); err != nil {
			return "", err
		}
	}
	return reasonCloneSourceInUse, nil
}

func runningReason(dv *cdiv1.DataVolume) string {
	for _, c := range dv.Status.Conditions {
		if c.Type == cdiv1.DataVolumeRunning {
			return c.Reason
		}
	}
	return ""
}

// claimUser returns a running VMI (not Succeeded or Failed, as
// GetPodsUsingPVCs skips finished pods) that uses the claim, nil when none.
func (r *cdiSim) claimUser(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (*kubevirtv1.VirtualMachineInstance, error) {
	vmis := &kubevirtv1.VirtualMachineInstanceList{}
	if err := r.c.List(ctx, vmis, client.InNamespace(pvc.Namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, err
	}
	for i := range vmis.Items {
		vmi := &vmis.Items[i]
		if vmi.IsFinal() {
			continue
		}
		for _, name := range claimNames(&vmi.Spec) {
			if name == pvc.Name {
				return vmi, nil
			}
		}
	}
	return nil, nil
}

// chooseCloneStrategy follows CDI's planner (pkg/controller/clone/
// planner.go). For a claim source (computeStrategyForSourcePVC): the
// target class's StorageProfile status.cloneStrategy (which CDI's
// StorageProfile controller derives from the profile's spec.cloneStrategy,
// the class's cdi.kubevirt.io/clone-strategy annotation, else snapshot when
// a VolumeSnapshotClass serves the driver, else copy), snapshot when the
// profile has none; snapshot needs a VolumeSnapshotClass whose driver is
// the source's (else copy); snapshot and csi-clone need source and target
// on one CSI driver (GetCommonDriver: the source volume's driver, the
// target class's provisioner) with the same volume mode, and a target
// bigger than the source only where the class allows expansion
// (validateAdvancedClonePVC), else copy. For a snapshot source
// (computeStrategyForSourceSnapshot): snapshot when the snapshot content's
// driver is the target class's provisioner and the class may expand a
// restore bigger than restoreSize, else copy. (The CDI CR's
// cloneStrategyOverride, which wins over all this, is not played: the
// sandbox has no CDI CR.)
func (r *cdiSim) chooseCloneStrategy(ctx context.Context, dv *cdiv1.DataVolume, target *corev1.PersistentVolumeClaim) (string, error) {
	const copyStrategy = string(cdiv1.CloneStrategyHostAssisted)
	sc, err := cdiStorageClass(ctx, r.c, target.Spec.StorageClassName)
	if err != nil || sc == nil {
		return copyStrategy, err
	}
	expandable := sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
	request := target.Spec.Resources.Requests[corev1.ResourceStorage]
	if s := dv.Spec.Source.Snapshot; s != nil {
		vs, err := r.getUnstructured(ctx, gvkVolumeSnapshot, s.Namespace, s.Name)
		if err != nil || vs == nil {
			return copyStrategy, err
		}
		driver, err := r.snapshotDriver(ctx, vs)
		if err != nil {
			return "", err
		}
		if driver != sc.Provisioner {
			return copyStrategy, nil
		}
		if rs, ok, _ := unstructured.NestedString(vs.Object, "status", "restoreSize"); ok && !expandable && quantityLess(rs, request) {
			return copyStrategy, nil
		}
		return string(cdiv1.CloneStrategySnapshot), nil
	}
	strategy := string(cdiv1.CloneStrategySnapshot)
	sp := &cdiv1.StorageProfile{}
	if err := r.c.Get(ctx, types.NamespacedName{Name: sc.Name}, sp); err == nil && sp.Status.CloneStrategy != nil {
		strategy = string(*sp.Status.CloneStrategy)
	} else if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	if strategy == copyStrategy {
		return strategy, nil
	}
	src := &corev1.PersistentVolumeClaim{}
	if err := r.c.Get(ctx, types.NamespacedName{Namespace: dv.Spec.Source.PVC.Namespace, Name: dv.Spec.Source.PVC.Name}, src); err != nil {
		return "", err
	}
	srcDriver, err := r.claimDriver(ctx, src)
	if err != nil {
		return "", err
	}
	if strategy == string(cdiv1.CloneStrategySnapshot) {
		ok, err := r.snapshotClassFor(ctx, srcDriver)
		if err != nil || !ok {
			return copyStrategy, err
		}
	}
	if srcDriver != sc.Provisioner || deref(src.Spec.VolumeMode) != deref(target.Spec.VolumeMode) {
		return copyStrategy, nil
	}
	if capacity, ok := src.Status.Capacity[corev1.ResourceStorage]; ok && capacity.Cmp(request) < 0 && !expandable {
		return copyStrategy, nil
	}
	return strategy, nil
}

// snapshotDriver is the CSI driver of a VolumeSnapshot: its
// VolumeSnapshotContent's spec.driver (what CDI reads:
// GetSnapshotContentFromSnapshot, ValidateSnapshotCloneProvisioners); the
// sandbox's snapshot controller makes no content object, so then the
// driver of the VolumeSnapshotClass it names, else of its source claim.
func (r *cdiSim) snapshotDriver(ctx context.Context, vs *unstructured.Unstructured) (string, error) {
	content, _, _ := unstructured.NestedString(vs.Object, "status", "boundVolumeSnapshotContentName")
	if vsc, err := r.getUnstructured(ctx, gvkVolumeSnapshotContent, "", content); err != nil || vsc != nil {
		if err != nil {
			return "", err
		}
		driver, _, _ := unstructured.NestedString(vsc.Object, "spec", "driver")
		return driver, nil
	}
	if class, _, _ := unstructured.NestedString(vs.Object, "spec", "volumeSnapshotClassName"); class != "" {
		vsc, err := r.getUnstructured(ctx, gvkVolumeSnapshotClass, "", class)
		if err != nil || vsc == nil {
			return "", err
		}
		driver, _, _ := unstructured.NestedString(vsc.Object, "driver")
		return driver, nil
	}
	claim, _, _ := unstructured.NestedString(vs.Object, "spec", "source", "persistentVolumeClaimName")
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.c.Get(ctx, types.NamespacedName{Namespace: vs.GetNamespace(), Name: claim}, pvc); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	return r.claimDriver(ctx, pvc)
}

// quantityLess reports a < b for a quantity a in text (an unstructured
// field); false when it does not parse.
func quantityLess(a string, b resource.Quantity) bool {
	qa, err := resource.ParseQuantity(a)
	return err == nil && qa.Cmp(b) < 0
}

// claimDriver is the CSI driver of a claim's volume, else its class's
// provisioner (CDI GetDriverFromVolume, then the class).
func (r *cdiSim) claimDriver(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (string, error) {
	if pvc.Spec.VolumeName != "" {
		pv := &corev1.PersistentVolume{}
		if err := r.c.Get(ctx, types.NamespacedName{Name: pvc.Spec.VolumeName}, pv); err == nil && pv.Spec.CSI != nil {
			return pv.Spec.CSI.Driver, nil
		} else if err != nil && !apierrors.IsNotFound(err) {
			return "", err
		}
	}
	sc := &storagev1.StorageClass{}
	if err := r.c.Get(ctx, types.NamespacedName{Name: deref(pvc.Spec.StorageClassName)}, sc); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	return sc.Provisioner, nil
}

// snapshotClassFor reports whether a VolumeSnapshotClass serves driver
// (CDI GetCompatibleVolumeSnapshotClass); false when the snapshot CRDs are
// not installed.
func (r *cdiSim) snapshotClassFor(ctx context.Context, driver string) (bool, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvkVolumeSnapshotClass.GroupVersion().WithKind("VolumeSnapshotClassList"))
	if err := r.c.List(ctx, list); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	for _, c := range list.Items {
		if d, _, _ := unstructured.NestedString(c.Object, "driver"); d == driver {
			return true, nil
		}
	}
	return false, nil
}

// recordCloneType writes the chosen strategy on the claim and the
// DataVolume, as CDI does (clone-populator.go setSavedCloneStrategy on the
// claim; the DataVolume controllers copy it onto the DataVolume).
func (r *cdiSim) recordCloneType(ctx context.Context, dv *cdiv1.DataVolume, pvc *corev1.PersistentVolumeClaim, strategy string) error {
	patch := client.MergeFrom(pvc.DeepCopy())
	if pvc.Annotations == nil {
		pvc.Annotations = map[string]string{}
	}
	pvc.Annotations[annCloneType] = strategy
	if err := r.c.Patch(ctx, pvc, patch); err != nil {
		return err
	}
	status := dv.Status.DeepCopy()
	dvPatch := client.MergeFrom(dv.DeepCopy())
	if dv.Annotations == nil {
		dv.Annotations = map[string]string{}
	}
	dv.Annotations[annCloneType] = strategy
	if err := r.c.Patch(ctx, dv, dvPatch); err != nil {
		return err
	}
	dv.Status = *status // the caller writes the status it computed
	log.FromContext(ctx).Info("clone strategy chosen", "cloneType", strategy)
	return nil
}

// cloneSourceData is the AnnData a clone copies: the source claim's, or
// the VolumeSnapshot's (else its source claim's).
func (r *cdiSim) cloneSourceData(ctx context.Context, dv *cdiv1.DataVolume) (string, bool, error) {
	var claim types.NamespacedName
	if s := dv.Spec.Source.Snapshot; s != nil {
		vs, err := r.getUnstructured(ctx, gvkVolumeSnapshot, s.Namespace, s.Name)
		if err != nil || vs == nil {
			return "", false, err
		}
		if v, ok := vs.GetAnnotations()[AnnData]; ok {
			return v, true, nil
		}
		name, _, _ := unstructured.NestedString(vs.Object, "spec", "source", "persistentVolumeClaimName")
		claim = types.NamespacedName{Namespace: s.Namespace, Name: name}
	} else {
		claim = types.NamespacedName{Namespace: dv.Spec.Source.PVC.Namespace, Name: dv.Spec.Source.PVC.Name}
	}
	src := &corev1.PersistentVolumeClaim{}
	if err := r.c.Get(ctx, claim, src); err != nil {
		return "", false, client.IgnoreNotFound(err)
	}
	v, ok := src.Annotations[AnnData]
	return v, ok, nil
}

// setData records a claim's content (AnnData).
func (r *cdiSim) setData(ctx context.Context, pvc *corev1.PersistentVolumeClaim, data string) error {
	if pvc.Annotations[AnnData] == data {
		return nil
	}
	patch := client.MergeFrom(pvc.DeepCopy())
	if pvc.Annotations == nil {
		pvc.Annotations = map[string]string{}
	}
	pvc.Annotations[AnnData] = data
	return r.c.Patch(ctx, pvc, patch)
}

func (r *cdiSim) getUnstructured(ctx context.Context, gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := r.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, err
	}
	return u, nil
}

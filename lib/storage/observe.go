package storage

import (
	corev1 "k8s.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"strings"
)

// importerFailureReasons are Running-condition reasons CDI sets when the
// importer pod fails.
var importerFailureReasons = map[string]bool{
	"Error":            true,
	"ImportFailed":     true,
	"CrashLoopBackOff": true,
	// The importer pod's image could not be pulled, or the importer could
	// not pull a registry image (CDI pkg/controller/util.go
	// ImagePullFailedReason, set when the message holds
	// common.ImagePullFailureText "failed to pull image").
	"ImagePullFailed": true,
}

// ReasonClaimNotValid is the reason CDI gives on a DataVolume's Bound and
// Ready conditions when it cannot render the claim
// (containerized-data-importer pkg/controller/common ErrClaimNotValid;
// pkg/controller/datavolume/util.go): most often spec.storage names no
// access modes and the StorageClass's StorageProfile has no
// claimPropertySets, e.g. "no accessMode specified in StorageProfile
// <class>". The DataVolume keeps no phase (PhasePending here) and CDI
// retries, so fixing the profile lets it proceed.
const ReasonClaimNotValid = "ErrClaimNotValid"

// AnnCloneType is the annotation in which CDI records the clone strategy it
// chose, on the target claim and copied onto the DataVolume
// (containerized-data-importer pkg/controller/common AnnCloneType,
// "cdi.kubevirt.io/cloneType"; set in pkg/controller/populators/
// clone-populator.go setSavedCloneStrategy, and to "copy" for a
// host-assisted clone in pkg/controller/datavolume/pvc-clone-controller.go).
// Values are CDI's CDICloneStrategy: csi-clone, snapshot, copy.
const AnnCloneType = "cdi.kubevirt.io/cloneType"

// Observe fills o's status facts from a disk's DataVolume (nil for a blank
// disk, or when CDI removed it) and PVC (nil when not created yet). wffc
// tells whether the StorageClass binds on first consumer. Name, ClaimName,
// DataVolume and Requested are left to the caller.
func Observe(o *Observation, dv *cdiv1.DataVolume, pvc *corev1.PersistentVolumeClaim, wffc bool) {
	o.WaitForFirstConsumerClass = wffc
	if pvc != nil {
		o.AccessModes = append([]corev1.PersistentVolumeAccessMode(nil), pvc.Spec.AccessModes...)
		o.Bound = pvc.Status.Phase == corev1.ClaimBound
		o.Capacity = pvc.Status.Capacity[corev1.ResourceStorage]
		for _, c := range pvc.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case corev1.PersistentVolumeClaimResizing:
				o.Resizing = true
			case corev1.PersistentVolumeClaimFileSystemResizePending:
				o.FileSystemResizePending = true
			}
		}
	}
	if dv == nil {
		switch {
		case pvc != nil && pvc.Status.Phase == corev1.ClaimBound:
			o.Phase = PhaseBound
		case pvc != nil && pvc.Status.Phase == corev1.ClaimLost:
			o.Phase, o.Reason, o.Message = PhaseFailed, ReasonClaimLost, "the PersistentVolume of the claim is lost"
		case wffc:
			o.Phase = PhaseWaitForFirstConsumer
		default:
			o.Phase = PhasePending
		}
		return
	}

	if p := string(dv.Status.Progress); p != "N/A" {
		o.Progress = p
	}
	if src := dv.Spec.Source; src != nil && (src.PVC != nil || src.Snapshot != nil) || dv.Spec.SourceRef != nil {
		switch dv.Status.Phase {
		case cdiv1.PhaseUnset, cdiv1.Pending, cdiv1.CloneScheduled, cdiv1.PendingPopulation:
			o.CloneWaiting = true
		}
	}
	o.CloneType = dv.Annotations[AnnCloneType]
	if o.CloneType == "" && pvc != nil {
		o.CloneType = pvc.Annotations[AnnCloneType]
	}
	o.Phase = dataVolumePhase(dv.Status.Phase, wffc)
	o.Reason, o.Message = dataVolumeReason(dv.Status.Conditions)
	if importerFailureReasons[o.Reason] {
		o.Phase = PhaseFailed
	}
	if o.Phase == PhaseFailed && strings.Contains(o.Message, largerPVCRequired) {
		o.Reason = ReasonDiskTooSmall
	}
	if o.Phase == PhaseFailed && o.Reason == "" {
		o.Reason, o.Message = ReasonImportFailed, "the DataVolume failed"
	}
}

func dataVolumePhase(p cdiv1.DataVolumePhase, wffc bool) Phase {
	switch p {
	case cdiv1.Succeeded:
		return PhaseBound
	case cdiv1.Failed:
		return PhaseFailed
	case cdiv1.WaitForFirstConsumer:
		return PhaseWaitForFirstConsumer
	case cdiv1.PendingPopulation:
		if wffc {
			return PhaseWaitForFirstConsumer
		}
		return PhasePending
	case cdiv1.ImportScheduled, cdiv1.ImportInProgress,
		cdiv1.CloneScheduled, cdiv1.CloneInProgress, cdiv1.SnapshotForSmartCloneInProgress,
		cdiv1.CloneFromSnapshotSourceInProgress, cdiv1.SmartClonePVCInProgress, cdiv1.CSICloneInProgress,
		cdiv1.ExpansionInProgress, cdiv1.NamespaceTransferInProgress,
		cdiv1.UploadScheduled, cdiv1.UploadReady,
		cdiv1.PrepClaimInProgress, cdiv1.RebindInProgress, cdiv1.Paused:
		return PhaseImporting
	default: // "", Pending, PVCBound, Unknown
		return PhasePending
	}
}

// dataVolumeReason returns what CDI says is holding the DataVolume: a
// not-completed Running condition, else a not-true Bound, else Ready.
func dataVolumeReason(conds []cdiv1.DataVolumeCondition) (string, string) {
	find := func(t cdiv1.DataVolumeConditionType) *cdiv1.DataVolumeCondition {
		for i := range conds {
			if conds[i].Type == t {
				return &conds[i]
			}
		}
		return nil
	}
	if c := find(cdiv1.DataVolumeRunning); c != nil && c.Status == corev1.ConditionFalse && c.Reason != "" && c.Reason != "Completed" {
		return c.Reason, c.Message
	}
	for _, t := range []cdiv1.DataVolumeConditionType{cdiv1.DataVolumeBound, cdiv1.DataVolumeReady} {
		if c := find(t); c != nil && c.Status != corev1.ConditionTrue && c.Reason != "" {
			return c.Reason, c.Message
		}
	}
	return "", ""
}

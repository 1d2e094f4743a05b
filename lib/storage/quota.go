package storage

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// ReasonQuotaExceeded: a ResourceQuota of the namespace has no room for a
// disk's claim. It is CDI's own reason (containerized-data-importer
// pkg/controller/common ErrExceededQuota, v1.65.0): when the API server
// refuses the PVC of a DataVolume with "exceeded quota:" (ErrQuotaExceeded),
// CDI's handlePvcCreation (pkg/controller/datavolume/controller-base.go)
// keeps the DataVolume Pending, sets its Bound and Ready conditions False
// with this reason and the API server's message, records a Warning Event of
// this reason, and retries with backoff. The same refusal of a claim this
// package writes (a plain claim, a growth) is reported with it too.
const ReasonQuotaExceeded = "ErrExceededQuota"

// QuotaExceededError: the API server's ResourceQuota admission refused a
// disk's claim (k8s.io/apiserver pkg/admission/plugin/resourcequota:
// "exceeded quota: <quota>, requested: <r>=<n>,..., used: ..., limited:
// ...").
type QuotaExceededError struct {
	Disk string
	// Storage: the quota that is full counts storage (requests.storage, or
	// <class>.storageclass.storage.k8s.io/requests.storage), so a smaller
	// disk may fit; false when it counts claims only (persistentvolumeclaims).
	Storage bool
	// Message is the API server's refusal from "exceeded quota:" on (the
	// claim's name before it is left out).
	Message string
}

func (e *QuotaExceededError) Error() string {
	return fmt.Sprintf("disk %q: the namespace's ResourceQuota has no room for its claim: %s", e.Disk, e.Message)
}

// Field is the Disk field a smaller value of which may fit: "size" when
// the quota counts storage, else "" (the disk itself).
func (e *QuotaExceededError) Field() string {
	if e.Storage {
		return "size"
	}
	return ""
}

// parseQuota reads an "exceeded quota:" refusal out of msg (the API
// server's error text, or CDI's condition message that quotes it); nil
// when msg is no such refusal.
func parseQuota(disk, msg string) *QuotaExceededError {
	i := strings.Index(msg, "exceeded quota:")
	if i < 0 {
		return nil
	}
	rest := msg[i:]
	requested := rest
	if _, after, ok := strings.Cut(rest, "requested: "); ok {
		requested, _, _ = strings.Cut(after, " used:")
	}
	return &QuotaExceededError{Disk: disk, Storage: strings.Contains(requested, "storage="), Message: rest}
}

// quotaRefusal is the *QuotaExceededError of err when the API server
// refused a claim write for a quota (403 Forbidden, "exceeded quota:"), nil
// otherwise.
func quotaRefusal(disk string, err error) *QuotaExceededError {
	if err == nil || !apierrors.IsForbidden(err) {
		return nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return nil
	}
	return parseQuota(disk, status.Status().Message)
}

// quotaRefusedDataVolume: CDI reports that the API server refused the
// DataVolume's claim for a quota (Bound False, ReasonQuotaExceeded).
func quotaRefusedDataVolume(dv *cdiv1.DataVolume) bool {
	for _, c := range dv.Status.Conditions {
		if c.Type == cdiv1.DataVolumeBound && c.Reason == ReasonQuotaExceeded {
			return true
		}
	}
	return false
}

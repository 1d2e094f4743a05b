package apply

import (
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Failure is how lib/storage, lib/network and lib/kubevirt report a failure:
// one typed error carrying what a caller needs to act on it, so the caller
// classifies every failure in one place. It wraps the lib's own typed error
// (errors.Is / errors.As still reach it).
//
// The split follows Flux's source-controller (internal/error: a Stalling
// error needs a change by someone before a retry can succeed; a Waiting one
// passes by itself, to be looked at again after RequeueAfter; a Generic one
// may succeed on retry).
type Failure struct {
	// Reason is a CamelCase word for a condition reason, e.g. NADNotFound;
	// each lib documents its reasons as Reason* constants.
	Reason string
	// Stalled: retrying alone will not fix it; the user or an administrator
	// must change something (an input, a missing object or CRD). False: it
	// may pass on a later attempt (a conflict, an API hiccup, an object still
	// being garbage-collected).
	Stalled bool
	// RequeueAfter, when positive, says the failure is a wait (Flux's
	// Waiting): nothing is wrong, something outside the caller (the garbage
	// collector) resolves it, and no event may say so, so the caller looks
	// again after this long. Zero for a stalled or a transient failure.
	RequeueAfter time.Duration
	// Subject names the input entry at fault in the lib's own terms (a disk
	// or NIC name), empty when the failure is not about one entry.
	Subject string
	// Field is the input field at fault in the lib's own terms (e.g.
	// "nadName", "nics[0].ip.gateway"), empty when none; the
	// caller translates it to its own API's path.
	Field string
	// Err is the cause.
	Err error
}

func (f *Failure) Error() string { return f.Err.Error() }

// Unwrap returns the cause.
func (f *Failure) Unwrap() error { return f.Err }

// EventType is the Kubernetes event type to report the failure with:
// Warning when stalled (someone must act), Normal otherwise.
func (f *Failure) EventType() string {
	if f.Stalled {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}

// Stalled returns a stalled *Failure: retrying alone will not fix err.
func Stalled(reason string, err error) *Failure {
	return &Failure{Reason: reason, Stalled: true, Err: err}
}

// Transient returns a *Failure that may pass on a later attempt.
func Transient(reason string, err error) *Failure {
	return &Failure{Reason: reason, Err: err}
}

// Waiting returns a *Failure that resolves by itself: the caller looks
// again after d (see RequeueAfter).
func Waiting(reason string, d time.Duration, err error) *Failure {
	return &Failure{Reason: reason, RequeueAfter: d, Err: err}
}

// On sets Subject and Field and returns f.
func (f *Failure) On(subject, field string) *Failure {
	f.Subject, f.Field = subject, field
	return f
}

// ReasonPredecessor is the reason of a waiting failure for an object that
// still belongs to a deleted owner of the same name (see ConflictError's
// Predecessor): waiting for the garbage collector resolves it.
const ReasonPredecessor = "WaitingForPredecessor"

// PredecessorRetry is how long a ReasonPredecessor failure asks to wait
// before looking again: the garbage collector removes a deleted owner's
// dependents within seconds, and no watch event on the owner says it did.
const PredecessorRetry = 5 * time.Second

// ReasonNameConflict is the reason of a stalled failure for an object of
// the wanted name that was not created for this owner (a *ConflictError).
const ReasonNameConflict = "NameConflict"

// ConflictFailure classifies a *ConflictError: waiting PredecessorRetry
// (ReasonPredecessor) for a deleted predecessor's object, else stalled
// (ReasonNameConflict). It returns nil when err holds no *ConflictError.
func ConflictFailure(err error) *Failure {
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		return nil
	}
	if conflict.Predecessor {
		return Waiting(ReasonPredecessor, PredecessorRetry, err)
	}
	return Stalled(ReasonNameConflict, err)
}

// AsFailure returns the first *Failure in err's tree.
func AsFailure(err error) (*Failure, bool) {
	var f *Failure
	if errors.As(err, &f) {
		return f, true
	}
	return nil, false
}

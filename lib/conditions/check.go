package conditions

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Violations reported by Check; test them with errors.Is.
var (
	// ErrReconcilingAndStalled: Reconciling and Stalled are both True.
	ErrReconcilingAndStalled = errors.New("conditions Reconciling and Stalled are both True")
	// ErrAbnormalNotTrue: Reconciling or Stalled is present but not True
	// (it should have been deleted).
	ErrAbnormalNotTrue = errors.New("abnormal-true condition present but not True")
	// ErrGenerationAhead: a condition's (or the status') observedGeneration
	// is greater than metadata.generation.
	ErrGenerationAhead = errors.New("observedGeneration greater than generation")
	// ErrReadyMissing: there is no Ready condition.
	ErrReadyMissing = errors.New("condition Ready missing")
	// ErrDuplicateType: two conditions share a type.
	ErrDuplicateType = errors.New("duplicate condition type")
	// ErrEmptyReason: a condition has an empty reason.
	ErrEmptyReason = errors.New("empty reason")
	// ErrEmptyType: a condition has an empty type.
	ErrEmptyType = errors.New("empty condition type")
	// ErrInvalidStatus: a condition's status is not True, False or Unknown.
	ErrInvalidStatus = errors.New("invalid condition status")
)

// ObservedGenerationGetter is optionally implemented by objects passed to
// Check to expose status.observedGeneration.
type ObservedGenerationGetter interface {
	GetObservedGeneration() int64
}

// Check reports how obj's conditions break the kstatus rules and this
// package's invariants, as one error joining every violation (nil when
// compliant). Each violation wraps one of the Err* sentinels, e.g.
// errors.Is(err, ErrReadyMissing). It is meant for tests.
//
// It does not flag status.observedGeneration lower than metadata.generation:
// that is a normal in-between state (kstatus: InProgress).
func Check(obj Getter) error {
	if obj == nil {
		return nil
	}
	var errs []error
	gen := obj.GetGeneration()
	if og, ok := obj.(ObservedGenerationGetter); ok && og.GetObservedGeneration() > gen {
		errs = append(errs, fmt.Errorf("%w: status.observedGeneration %d, generation %d",
			ErrGenerationAhead, og.GetObservedGeneration(), gen))
	}
	seen := map[string]bool{}
	for i, c := range obj.GetConditions() {
		if c.Type == "" {
			errs = append(errs, fmt.Errorf("%w: conditions[%d]", ErrEmptyType, i))
		} else if seen[c.Type] {
			errs = append(errs, fmt.Errorf("%w: %s", ErrDuplicateType, c.Type))
		}
		seen[c.Type] = true
		switch c.Status {
		case metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown:
		default:
			errs = append(errs, fmt.Errorf("%w: %s has status %q", ErrInvalidStatus, c.Type, c.Status))
		}
		if c.Reason == "" {
			errs = append(errs, fmt.Errorf("%w: %s", ErrEmptyReason, c.Type))
		}
		if c.ObservedGeneration > gen {
			errs = append(errs, fmt.Errorf("%w: %s observedGeneration %d, generation %d",
				ErrGenerationAhead, c.Type, c.ObservedGeneration, gen))
		}
		if (c.Type == ReconcilingCondition || c.Type == StalledCondition) && c.Status != metav1.ConditionTrue {
			errs = append(errs, fmt.Errorf("%w: %s is %s, delete it instead", ErrAbnormalNotTrue, c.Type, c.Status))
		}
	}
	if !seen[ReadyCondition] {
		errs = append(errs, ErrReadyMissing)
	}
	if IsTrue(obj, ReconcilingCondition) && IsTrue(obj, StalledCondition) {
		errs = append(errs, ErrReconcilingAndStalled)
	}
	return errors.Join(errs...)
}

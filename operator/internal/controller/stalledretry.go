package controller

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of StalledRetry (issue 28: a fixed one-minute retry of every
// Stalled Wukong re-read each missing child every minute, forever).
const (
	// DefaultStalledRetryBase is the first wait of a Wukong Stalled on
	// something no watch reports.
	DefaultStalledRetryBase = time.Minute
	// DefaultStalledRetryMax is the longest wait.
	DefaultStalledRetryMax = 30 * time.Minute
)

// StalledRetry is when a Wukong Stalled on something Wukong does not watch
// (a problem with External set: a user's NetworkAttachmentDefinition or
// Secret, a missing CRD, the KubeVirt CR, a StorageProfile) is looked at
// again. Its zero value uses the defaults above and the wall clock.
//
// The wait is derived from the object, not kept in memory, so it survives
// a manager restart: a Wukong that has been Stalled for the same reason and
// the same generation since lastTransitionTime t waits as long as it has
// been Stalled (now - t), at least Base and at most Max. Each pass thus
// comes about twice as late as the one before: after 1m, 1m, 2m, 4m, 8m,
// 16m, then every 30m (7 passes in the first hour, 2 an hour after).
// A Wukong newly Stalled, Stalled for another reason, or whose spec changed
// since its status was written (a new generation) waits Base. Events still
// start a pass at once, whatever the wait: a change to the Wukong (its spec,
// or an annotation), to one of its children, or to a StorageClass its disks
// name (see SetupWithManager).
type StalledRetry struct {
	// Base is the first and shortest wait (default DefaultStalledRetryBase).
	Base time.Duration
	// Max is the longest wait (default DefaultStalledRetryMax).
	Max time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// After returns the wait before the next pass of a Wukong this pass found
// Stalled with reason, given prev, its Stalled condition as read at the
// start of the pass (nil when it had none), and generation, its
// metadata.generation (see StalledRetry).
func (b StalledRetry) After(prev *metav1.Condition, reason string, generation int64) time.Duration {
	base, limit, now := b.Base, b.Max, b.Now
	if base <= 0 {
		base = DefaultStalledRetryBase
	}
	if limit <= 0 {
		limit = DefaultStalledRetryMax
	}
	limit = max(limit, base)
	if now == nil {
		now = time.Now
	}
	if prev == nil || prev.Status != metav1.ConditionTrue || prev.Reason != reason ||
		prev.ObservedGeneration != generation || prev.LastTransitionTime.IsZero() {
		return base
	}
	return min(max(now().Sub(prev.LastTransitionTime.Time), base), limit)
}

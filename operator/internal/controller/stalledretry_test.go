package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestStalledRetryAfter(t *testing.T) {
	clock := newClock()
	stalledFor := func(d time.Duration) *metav1.Condition {
		return &metav1.Condition{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonStorageClassNotFound, ObservedGeneration: 3,
			LastTransitionTime: metav1.NewTime(clock.now().Add(-d))}
	}
	with := func(c *metav1.Condition, f func(*metav1.Condition)) *metav1.Condition { f(c); return c }
	defaults := StalledRetry{Now: clock.now}
	for _, tc := range []struct {
		name  string
		retry StalledRetry
		prev  *metav1.Condition
		// reason and generation of this pass (default: prev's).
		reason     string
		generation int64
		want       time.Duration
	}{
		{name: "newly Stalled: no condition before", retry: defaults, prev: nil, want: time.Minute},
		{name: "newly Stalled: was False", retry: defaults,
			prev: with(stalledFor(time.Hour), func(c *metav1.Condition) { c.Status = metav1.ConditionFalse }), want: time.Minute},
		{name: "Stalled for 10s waits the base", retry: defaults, prev: stalledFor(10 * time.Second), want: time.Minute},
		{name: "Stalled for 1m waits 1m", retry: defaults, prev: stalledFor(time.Minute), want: time.Minute},
		{name: "Stalled for 2m waits 2m (the next pass at 4m)", retry: defaults, prev: stalledFor(2 * time.Minute), want: 2 * time.Minute},
		{name: "Stalled for 4m waits 4m", retry: defaults, prev: stalledFor(4 * time.Minute), want: 4 * time.Minute},
		{name: "Stalled for 16m waits 16m", retry: defaults, prev: stalledFor(16 * time.Minute), want: 16 * time.Minute},
		{name: "Stalled for 32m waits the cap", retry: defaults, prev: stalledFor(32 * time.Minute), want: 30 * time.Minute},
		{name: "Stalled for a week waits the cap", retry: defaults, prev: stalledFor(7 * 24 * time.Hour), want: 30 * time.Minute},
		{name: "another reason starts over", retry: defaults, prev: stalledFor(time.Hour),
			reason: v1alpha1.ReasonNADNotFound, want: time.Minute},
		{name: "a new generation (spec change) starts over", retry: defaults, prev: stalledFor(time.Hour),
			generation: 4, want: time.Minute},
		{name: "no transition time waits the base", retry: defaults,
			prev: with(stalledFor(time.Hour), func(c *metav1.Condition) { c.LastTransitionTime = metav1.Time{} }), want: time.Minute},
		{name: "a clock behind the transition time waits the base", retry: defaults, prev: stalledFor(-time.Hour), want: time.Minute},
		{name: "own base and cap", retry: StalledRetry{Base: time.Second, Max: 10 * time.Second, Now: clock.now},
			prev: stalledFor(3 * time.Second), want: 3 * time.Second},
		{name: "own cap", retry: StalledRetry{Base: time.Second, Max: 10 * time.Second, Now: clock.now},
			prev: stalledFor(time.Minute), want: 10 * time.Second},
		{name: "a cap below the base is the base", retry: StalledRetry{Base: time.Hour, Max: time.Minute, Now: clock.now},
			prev: stalledFor(3 * time.Hour), want: time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, generation := tc.reason, tc.generation
			if reason == "" {
				reason = v1alpha1.ReasonStorageClassNotFound
			}
			if generation == 0 {
				generation = 3
			}
			assert.Equal(t, tc.want, tc.retry.After(tc.prev, reason, generation))
		})
	}
}

// TestStalledRetrySchedule follows the waits of a Wukong that stays Stalled
// for a day: they double from the base to the cap, and the passes of an
// hour stay few.
func TestStalledRetrySchedule(t *testing.T) {
	clock := newClock()
	start := clock.now()
	retry := StalledRetry{Now: clock.now}
	var prev *metav1.Condition
	var waits []time.Duration
	passes := map[int]int{} // by hour
	for clock.now().Sub(start) < 24*time.Hour {
		passes[int(clock.now().Sub(start)/time.Hour)]++
		d := retry.After(prev, v1alpha1.ReasonStorageClassNotFound, 1)
		if prev == nil {
			prev = &metav1.Condition{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue,
				Reason: v1alpha1.ReasonStorageClassNotFound, ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(start)}
		}
		if len(waits) < 8 {
			waits = append(waits, d)
		}
		clock.add(d)
	}
	m := time.Minute
	assert.Equal(t, []time.Duration{m, m, 2 * m, 4 * m, 8 * m, 16 * m, 30 * m, 30 * m}, waits)
	assert.Equal(t, 7, passes[0], "passes in the first hour (at 0, 1, 2, 4, 8, 16 and 32 minutes)")
	for h := 1; h < 24; h++ {
		assert.Equal(t, 2, passes[h], "passes in hour %d", h)
	}
}

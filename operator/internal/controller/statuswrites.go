package controller

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"

	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Defaults of StatusWrites (issue 19: CDI reports import progress every few
// seconds per DataVolume; writing each step cost more API server and etcd
// writes than everything else the operator does).
const (
	// DefaultProgressBand is the width of a progress band, in percentage
	// points: 0-9.99% is band 0, 10-19.99% band 1, and so on.
	DefaultProgressBand = 10.0
	// DefaultStatusInterval is the shortest time between two status writes
	// of one Wukong that only move import progress.
	DefaultStatusInterval = 5 * time.Second
)

// StatusWrites decides, per Wukong, whether a computed status is written
// now or coalesced with later ones. Its zero value uses the defaults above
// and the wall clock; it is safe for concurrent reconciles.
//
// The rule, for a status that differs from the one in the cluster:
//
//   - Anything but import progress changed (phase, a condition's status,
//     reason or message, observedGeneration, a volume's phase or size, a
//     NIC, the node, ...): written at once.
//   - Only import progress changed (status.volumes[].progress,
//     status.importProgress, and the percentages in the message of a
//     condition whose reason is Importing): written when at least Interval
//     passed since this manager last wrote this Wukong's status AND a
//     volume's progress crossed into another Band, so at most once per
//     band or once per Interval, whichever is rarer. Within one band, the
//     newest value is still written once it stood unchanged for Interval
//     (an import that pauses, or ends its last band, shows where it is).
//   - A coalesced status asks for a requeue when it may be written (the
//     rest of the Interval), so the last value is never lost even if no
//     other event comes.
//
// Reconcile writes status at most once per pass (one patch, in its
// deferred writeStatus), so a Wukong's status is never written twice in
// one reconcile. What this manager wrote is remembered in memory only: a
// restarted manager writes a progress-only change like one that waited the
// Interval.
type StatusWrites struct {
	// Band is the progress band width in percentage points
	// (DefaultProgressBand when 0).
	Band float64
	// Interval is the shortest time between two progress-only writes
	// (DefaultStatusInterval when 0).
	Interval time.Duration
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time

	mu    sync.Mutex
	state map[types.NamespacedName]*writeState
}

// writeState is what StatusWrites remembers of one Wukong.
type writeState struct {
	// written is when this manager last wrote its status (zero: never).
	written time.Time
	// pending is the progress (progressKey) of the newest status not
	// written; since is when that value was first seen.
	pending string
	since   time.Time
}

// writeDecision says whether to write now, or when to look again.
type writeDecision struct {
	Write bool
	// RequeueAfter > 0: a progress-only change was coalesced; reconcile
	// again after this long so it is written.
	RequeueAfter time.Duration
}

func (c *StatusWrites) band() float64 {
	if c.Band > 0 {
		return c.Band
	}
	return DefaultProgressBand
}

func (c *StatusWrites) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return DefaultStatusInterval
}

func (c *StatusWrites) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// decide compares the status in the cluster (before) with the computed one
// (after) for the Wukong key. A true Write must be followed by written(key)
// once the patch succeeded.
func (c *StatusWrites) decide(key types.NamespacedName, before, after *v1alpha1.WukongStatus) writeDecision {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state[key]
	if equality.Semantic.DeepEqual(before, after) {
		if st != nil {
			st.pending, st.since = "", time.Time{}
		}
		return writeDecision{}
	}
	if !progressOnly(before, after) {
		return writeDecision{Write: true}
	}
	if c.state == nil {
		c.state = map[types.NamespacedName]*writeState{}
	}
	if st == nil {
		st = &writeState{}
		c.state[key] = st
	}
	now, interval := c.now(), c.interval()
	p := progressKey(after)
	if st.pending != p {
		st.pending, st.since = p, now
	}
	if !st.written.IsZero() {
		if wait := interval - now.Sub(st.written); wait > 0 {
			return writeDecision{RequeueAfter: wait}
		}
	}
	if bands(before, c.band()) != bands(after, c.band()) {
		return writeDecision{Write: true}
	}
	if wait := interval - now.Sub(st.since); wait > 0 {
		return writeDecision{RequeueAfter: wait}
	}
	return writeDecision{Write: true} // unchanged for Interval: the newest value
}

// written records that key's status was written now.
func (c *StatusWrites) written(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		c.state = map[types.NamespacedName]*writeState{}
	}
	c.state[key] = &writeState{written: c.now()}
}

// forget drops what is remembered of a Wukong that is gone.
func (c *StatusWrites) forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.state, key)
}

// percent matches a progress percentage in a condition message, as
// setVolumesBound writes it from CDI's DataVolume status.progress
// ("45.50%", or "N/A" before CDI reports one).
var percent = regexp.MustCompile(`\d+(\.\d+)?%|N/A`)

// progressOnly reports whether a and b differ only in import progress.
func progressOnly(a, b *v1alpha1.WukongStatus) bool {
	return equality.Semantic.DeepEqual(withoutProgress(a), withoutProgress(b))
}

// withoutProgress is a copy of st with every progress value blanked.
func withoutProgress(st *v1alpha1.WukongStatus) *v1alpha1.WukongStatus {
	out := st.DeepCopy()
	out.ImportProgress = ""
	for i := range out.Volumes {
		out.Volumes[i].Progress = ""
	}
	for i := range out.Conditions {
		if c := &out.Conditions[i]; c.Reason == v1alpha1.ReasonImporting {
			c.Message = percent.ReplaceAllString(c.Message, "%")
		}
	}
	return out
}

// progressKey identifies the progress values of st.
func progressKey(st *v1alpha1.WukongStatus) string {
	var b strings.Builder
	b.WriteString(st.ImportProgress)
	for _, v := range st.Volumes {
		b.WriteString("|" + v.Name + "=" + v.Progress)
	}
	return b.String()
}

// bands is each importing volume's progress band (-1 without a
// percentage), e.g. "root:4,data:-1".
func bands(st *v1alpha1.WukongStatus, width float64) string {
	var out []string
	for _, v := range st.Volumes {
		if storage.Phase(v.Phase) != storage.PhaseImporting {
			continue
		}
		b := -1.0
		if p, ok := parsePercent(v.Progress); ok {
			b = math.Floor(p / width)
		}
		out = append(out, fmt.Sprintf("%s:%g", v.Name, b))
	}
	return strings.Join(out, ",")
}

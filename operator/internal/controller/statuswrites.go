package controller

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Defaults of StatusWrites (issue 19: CDI reports import progress every few
// seconds per DataVolume; writing each step cost more API server and etcd
// writes than everything else the operator does).
const (
	// defaultProgressBand is the width of a progress band, in percentage
	// points: 0-9.99% is band 0, 10-19.99% band 1, and so on.
	defaultProgressBand = 10.0
	// defaultStatusInterval is the shortest time between two status writes
	// of one Wukong when the second changes no state (see StatusWrites).
	defaultStatusInterval = 5 * time.Second
)

// StatusWrites decides, per Wukong, whether a computed status is written
// now or coalesced with later ones. Its zero value uses the defaults above
// and the wall clock; it is safe for concurrent reconciles.
//
// The rule, for a status that differs from the one last written:
//
//   - A change of state is written at once: the phase, observedGeneration,
//     a condition appearing, disappearing or changing status
//     (True/False/Unknown), and Stalled's reason (it names what to fix).
//     That is what kstatus, `kubectl wait` and a person act on.
//   - Only import progress changed (status.volumes[].progress,
//     status.importProgress, and the percentages in the message of a
//     condition whose reason is Importing): written when at least Interval
//     passed since this manager last wrote this Wukong's status AND a
//     volume's progress crossed into another Band, so at most once per
//     band or once per Interval, whichever is rarer. Within one band, the
//     newest value is written once it stood unchanged for Interval (an
//     import that pauses, or ends its last band, shows where it is).
//   - Any other detail (a condition's reason or message while its status
//     stays, a volume's phase or size, NIC addresses, the node, ...):
//     written once Interval passed since the last write, so the steps a
//     VM goes through while it starts are one write per Interval at most.
//   - A coalesced status asks for a requeue when it may be written (the
//     rest of the Interval), so the last value is never lost even if no
//     other event comes; any write carries every pending detail with it.
//
// A pass that reads a Wukong from an informer cache that has not yet seen
// this manager's last status write (its resourceVersion is the one that
// write was based on) compares against what was written, not the stale
// copy, so the same status is not written twice.
//
// Reconcile writes status at most once per pass (one patch, in its
// deferred writeStatus), so a Wukong's status is never written twice in
// one reconcile. What this manager wrote is remembered in memory only: a
// restarted manager writes a coalesced change like one that waited the
// Interval.
type StatusWrites struct {
	// Band is the progress band width in percentage points
	// (defaultProgressBand when 0).
	Band float64
	// Interval is the shortest time between a write and a following one
	// that changes no state (defaultStatusInterval when 0).
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
	// basedOn is the resourceVersion the last write was computed from, and
	// status what it wrote; status is dropped once a pass reads a newer
	// Wukong (the cache caught up).
	basedOn string
	status  *v1alpha1.WukongStatus
	// pending is the progress (progressKey) of the newest status not
	// written; since is when that value was first seen.
	pending string
	since   time.Time
}

// writeDecision says whether to write now, or when to look again.
type writeDecision struct {
	Write bool
	// RequeueAfter > 0: a change was coalesced; reconcile again after this
	// long so it is written.
	RequeueAfter time.Duration
}

func (c *StatusWrites) band() float64 {
	if c.Band > 0 {
		return c.Band
	}
	return defaultProgressBand
}

func (c *StatusWrites) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return defaultStatusInterval
}

func (c *StatusWrites) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// decide compares the computed status (after) of the Wukong key with the
// status the cluster has: base's, or what this manager last wrote when
// base is a stale copy from before that write. It returns the decision and
// that status (for Events). A true Write must be followed by written once
// the patch succeeded.
func (c *StatusWrites) decide(key types.NamespacedName, base *v1alpha1.Wukong, after *v1alpha1.WukongStatus) (writeDecision, *v1alpha1.WukongStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := &base.Status
	st := c.state[key]
	if st != nil && st.status != nil {
		if base.ResourceVersion == st.basedOn {
			before = st.status // the cache has not seen the last write yet
		} else {
			st.status, st.basedOn = nil, ""
		}
	}
	if equality.Semantic.DeepEqual(before, after) {
		if st != nil {
			st.pending, st.since = "", time.Time{}
		}
		return writeDecision{}, before
	}
	if stateChanged(before, after) {
		return writeDecision{Write: true}, before
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
			return writeDecision{RequeueAfter: wait}, before
		}
	}
	if !progressOnly(before, after) || bands(before, c.band()) != bands(after, c.band()) {
		return writeDecision{Write: true}, before
	}
	if wait := interval - now.Sub(st.since); wait > 0 {
		return writeDecision{RequeueAfter: wait}, before
	}
	return writeDecision{Write: true}, before // unchanged for Interval: the newest value
}

// written records that key's status was written now: status, computed
// from a Wukong at resourceVersion basedOn.
func (c *StatusWrites) written(key types.NamespacedName, basedOn string, status *v1alpha1.WukongStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		c.state = map[types.NamespacedName]*writeState{}
	}
	c.state[key] = &writeState{written: c.now(), basedOn: basedOn, status: status.DeepCopy()}
}

// forget drops what is remembered of a Wukong that is gone.
func (c *StatusWrites) forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.state, key)
}

// stateChanged reports whether the phase, observedGeneration, the set of
// conditions, a condition's status or Stalled's reason differ.
func stateChanged(a, b *v1alpha1.WukongStatus) bool {
	if a.Phase != b.Phase || a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return true
	}
	for _, ca := range a.Conditions {
		cb := findCondition(b.Conditions, ca.Type)
		if cb == nil || cb.Status != ca.Status || (ca.Type == v1alpha1.StalledCondition && cb.Reason != ca.Reason) {
			return true
		}
	}
	return false
}

func findCondition(cs []metav1.Condition, t string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
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

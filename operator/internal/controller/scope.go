package controller

import (
	"errors"
	"time"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/nodenet"
)

// scope is what one reconcile pass observed. Steps fill it; status is derived
// from it once, at the end (computeStatus), so there is no intermediate
// condition state.
type scope struct {
	w *v1alpha1.Wukong

	// problems need a change by the user or the cluster admin: each becomes
	// Stalled with a reason and a message naming the field.
	problems []problem

	net     network.Observation
	netDone bool

	// bridges are the node bridges the NICs may use (granted by a
	// NodeBridge); bridgeBlocked marks NICs refused one (by index);
	// bridgeNodeSelector is the union of the granted bridges' node
	// selectors, added to the VM's; bridgePending says why a granted bridge
	// is not ready yet ("" when all are).
	bridges            []nodenet.Grant
	bridgeBlocked      map[int]bool
	bridgeNodeSelector map[string]string
	bridgePending      string

	// predecessor says which child still belongs to a deleted Wukong of the
	// same name (being garbage-collected): the pass waits, adopting nothing.
	predecessor string

	// sourceRefused marks the disks (by name) whose image source the
	// administrator's image sources refuse: they are not written.
	// sourceBlocked: a source (a disk's, or the container disk) was refused
	// or could not be checked; the VM is not written.
	sourceRefused map[string]bool
	sourceBlocked bool

	vols     []storage.Observation
	volsDone bool
	// cloneWaits says, by disk name, why a clone disk waits for its source
	// (a snapshot not ready, a source disk not made, the source Wukong
	// running); shown as Ready's message while the VM waits for the disk.
	cloneWaits map[string]string

	// vm is what this pass applied or found of the VirtualMachine and its
	// instance: vm.Exists() is the one answer to whether the VM exists.
	vm kubevirt.Observation
	// waiting says why the VirtualMachine was not created or updated yet.
	waiting string
	// restoring is the KubeVirt VirtualMachineRestore in progress on the
	// VM (its status.restoreInProgress): the VM is not applied meanwhile.
	restoring string
	// maint: drains, migrations, node loss (observeMaintenance).
	maint maintenance
	// detaching are the status.volumes entries of disks removed from
	// spec.disks whose deletionPolicy waits (releaseRemovedDisks).
	detaching []v1alpha1.VolumeStatus
	// res: cpu and memory changes on the running guest (observeResources).
	res resourcesObs

	// notWritten is why the VirtualMachine could not be written this pass
	// (a transient error: KubeVirt's webhook unreachable, an API hiccup);
	// vm is then what exists (machineNotWritten).
	notWritten error

	// transient is an error that is nobody's fault (API hiccup, conflict):
	// it is retried with backoff and keeps observedGeneration unchanged.
	transient error

	// requeueAfter asks for a timed retry when nothing will send an event
	// (a deleted predecessor's children going, a machine stuck starting).
	// A problem with External set is retried after StalledRetry instead.
	requeueAfter time.Duration
}

// problem is a finding the user or admin must act on.
type problem struct {
	// Condition is the condition type the problem belongs to besides Stalled
	// (NetworksConfigured, VolumesBound or Ready).
	Condition string
	Reason    string
	// Field is the spec path, e.g. spec.disks[1].storageClassName.
	Field   string
	Message string
	// External: the fix is an object no watch of Wukong may report (a
	// user's Secret or NAD, a CRD, the KubeVirt CR, a StorageProfile), so a
	// timed retry is needed to notice it: after the wait StalledRetry
	// gives, which grows the longer the Wukong stays Stalled. (A
	// StorageClass is watched too, and also wakes the Wukongs naming it.)
	External bool
}

func (p problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// addProblem records a problem once.
func (s *scope) addProblem(p problem) {
	for _, q := range s.problems {
		if q == p {
			return
		}
	}
	s.problems = append(s.problems, p)
}

// external reports whether a problem needs a timed retry to be noticed
// fixed (see problem.External).
func (s *scope) external() bool {
	for _, p := range s.problems {
		if p.External {
			return true
		}
	}
	return false
}

// problemFor returns the first problem of a condition type.
func (s *scope) problemFor(condition string) (problem, bool) {
	for _, p := range s.problems {
		if p.Condition == condition {
			return p, true
		}
	}
	return problem{}, false
}

func (s *scope) requeue(d time.Duration) {
	if d > 0 && (s.requeueAfter == 0 || d < s.requeueAfter) {
		s.requeueAfter = d
	}
}

func (s *scope) addTransient(err error) {
	s.transient = errors.Join(s.transient, err)
}

// classify is the one place a lib failure is sorted. Every leaf of err that
// is a stalled *apply.Failure becomes a problem through the failures table
// (problemOf); a waiting one (RequeueAfter: a deleted predecessor's child)
// makes the pass wait and look again after it. What is left (transient
// failures, API errors) is returned, to be retried with backoff.
func (s *scope) classify(err error, from source) error {
	return eachError(err, func(e error) bool {
		f, ok := apply.AsFailure(e)
		switch {
		case !ok:
			return false
		case f.RequeueAfter > 0:
			if f.Reason == apply.ReasonPredecessor {
				s.predecessor = f.Error()
			}
			s.requeue(f.RequeueAfter)
			return true
		case !f.Stalled:
			return false
		}
		s.addProblem(problemOf(from, s.w, f))
		return true
	})
}

// eachError calls f for every leaf of a (possibly joined, possibly wrapped)
// error tree that f does not claim; it returns the unclaimed ones joined.
func eachError(err error, claim func(error) bool) error {
	if err == nil {
		return nil
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		var rest []error
		for _, e := range multi.Unwrap() {
			if r := eachError(e, claim); r != nil {
				rest = append(rest, r)
			}
		}
		return errors.Join(rest...)
	}
	if claim(err) {
		return nil
	}
	return err
}

// noteCloneWait records why a clone disk waits for its source.
func (s *scope) noteCloneWait(disk, msg string) {
	if s.cloneWaits == nil {
		s.cloneWaits = map[string]string{}
	}
	s.cloneWaits[disk] = msg
}

package controller

import (
	"context"
	"time"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/novasphere/wukong/lib/kubevirt"
)

// observeCause adds to s.vm the Warning Event that keeps the machine from
// starting, so that Ready (and Stalled or Reconciling, which repeat it) say
// why, not only that it does not start: virt-handler's SyncFailed on a VMI
// that failed (KubeVirt then shows CrashLoopBackOff with no message), the
// kubelet's FailedCreatePodSandBox on a launcher pod whose network cannot be
// made (the VMI stays Scheduling). kubevirt.Observation.EventSubjects says
// whose Events to read and when: only for a crash loop, a failed VMI or a
// VMI still starting after kubevirt.StartGrace, so a healthy pass reads
// none. They are read with r.APIReader (Events are neither cached nor
// watched), in the Wukong's namespace, by involvedObject.uid; since nothing
// announces a new Event, a pass on a VMI still starting asks to run again
// (kubevirt.StartGrace, then kubevirt.CauseRecheck). A failed read is
// logged and leaves the message as it was: the cause is a detail, not a
// reason to retry the pass.
func (r *WukongReconciler) observeCause(ctx context.Context, s *scope) error {
	if r.APIReader == nil {
		return nil
	}
	uids, recheck := s.vm.EventSubjects(time.Now())
	s.requeue(recheck)
	if len(uids) == 0 {
		return nil
	}
	c, err := kubevirt.ReadCause(ctx, r.APIReader, s.w.Namespace, uids)
	if err != nil {
		logf.FromContext(ctx).Info("cannot read the Events that say why the machine does not start", "error", err.Error())
		return nil
	}
	s.vm = s.vm.WithCause(c)
	return nil
}

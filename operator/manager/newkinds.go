package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"
)

// ErrKindInstalled is what the manager stops with when an optional kind it
// found missing at start (KubeVirt, CDI, Multus or NMState not installed)
// is served now: its cache and watches are set up only at start, so the
// process exits and its Deployment starts it again, this time watching the
// kind. Without this, a Wukong would wait forever on a project installed
// after the operator: a DataVolume on a WaitForFirstConsumer class, for
// one, binds only once the VM that consumes it exists (the local cluster's
// real CDI showed this).
var ErrKindInstalled = errors.New("a CRD the manager did not watch at start is installed now; restarting to watch it")

// ExitKindInstalled is the exit code of cmd/manager when it stops with
// ErrKindInstalled (1 for any other failure), so that a restart it asked
// for can be told from a crash; the message goes to the container's
// termination log (/dev/termination-log) too, where kubectl describe shows
// it as the last state's message.
const ExitKindInstalled = 3

// DefaultKindPollInterval is how often missing optional kinds are looked up.
const DefaultKindPollInterval = 30 * time.Second

// waitForKinds looks up each of missing every interval with served and
// returns ErrKindInstalled (naming the kind) once one is served, or nil when
// ctx ends. A lookup error other than NotFound is logged and retried.
func waitForKinds(ctx context.Context, missing []schema.GroupVersionKind, interval time.Duration,
	served func(schema.GroupVersionKind) (bool, error)) error {
	log := ctrl.Log.WithName("kinds")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, gvk := range missing {
			ok, err := served(gvk)
			if err != nil {
				log.Error(err, "cannot look the kind up", "kind", gvk.String())
				continue
			}
			if ok {
				return fmt.Errorf("%w: %s", ErrKindInstalled, gvk)
			}
		}
	}
}

// discoveryServed answers served for waitForKinds from the API server's
// discovery (uncached: a new CRD shows at once).
func discoveryServed(dc discovery.DiscoveryInterface) func(schema.GroupVersionKind) (bool, error) {
	return func(gvk schema.GroupVersionKind) (bool, error) {
		list, err := dc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
		switch {
		case apierrors.IsNotFound(err):
			return false, nil
		case err != nil:
			return false, err
		}
		for _, r := range list.APIResources {
			if r.Kind == gvk.Kind {
				return true, nil
			}
		}
		return false, nil
	}
}

// kindWatcher runs waitForKinds in every replica (not only the leader: a
// standby would otherwise take over without the kind).
type kindWatcher struct {
	missing  []schema.GroupVersionKind
	interval time.Duration
	served   func(schema.GroupVersionKind) (bool, error)
}

func (w kindWatcher) Start(ctx context.Context) error {
	return waitForKinds(ctx, w.missing, w.interval, w.served)
}

func (kindWatcher) NeedLeaderElection() bool { return false }

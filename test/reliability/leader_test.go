package reliability_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	leaseName     = "wukong.vm.novasphere.dev"
	acquiredLease = "successfully acquired lease" // compared case-insensitively
	startWorkers  = "Starting workers"
)

// TestLeaderFailover: two manager processes with leader election; one holds
// the Lease and only it starts its controller; after kill -9 of the leader
// the other takes the Lease and reconciles a Wukong created after the kill.
func TestLeaderFailover(t *testing.T) {
	sb, c := sharedSandbox(t)
	ns := newNamespace(t, c, "leader")
	args := []string{"--leader-elect", "--leader-election-namespace=default"}
	procs := []*managerProc{
		startManager(t, sb.KubeconfigPath, "replica-a", args...),
		startManager(t, sb.KubeconfigPath, "replica-b", args...),
	}

	// Sample the Lease holder throughout.
	var mu sync.Mutex
	var holders []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			l := &coordinationv1.Lease{}
			if err := c.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: leaseName}, l); err == nil &&
				l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
				mu.Lock()
				if len(holders) == 0 || holders[len(holders)-1] != *l.Spec.HolderIdentity {
					holders = append(holders, *l.Spec.HolderIdentity)
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	history := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(holders)
	}

	var leader, follower *managerProc
	require.Eventually(t, func() bool {
		var got []*managerProc
		for _, p := range procs {
			if has(p, acquiredLease) {
				got = append(got, p)
			}
		}
		if len(got) != 1 || len(history()) == 0 {
			return false
		}
		leader = got[0]
		return true
	}, timeout, poll, "exactly one replica to acquire the Lease")
	follower = procs[0]
	if follower == leader {
		follower = procs[1]
	}
	first := history()[0]

	w1 := newWukong(ns, "before-kill")
	require.NoError(t, c.Create(t.Context(), w1))
	waitRunning(t, c, key(w1))
	assert.Contains(t, leader.output(), startWorkers, "the leader runs the controller")
	assert.NotContains(t, follower.output(), startWorkers, "the follower must not run the controller")
	assert.False(t, has(follower, acquiredLease), "the follower must not hold the Lease")
	assert.Equal(t, []string{first}, history(), "one Lease holder while the leader lives")

	leader.kill() // SIGKILL: the Lease is not released
	killed := time.Now()
	require.Eventually(t, func() bool {
		h := history()
		return len(h) == 2 && has(follower, acquiredLease)
	}, timeout, poll, "the follower to take the Lease")
	t.Logf("fail-over took %s (Lease duration 15s: the killed leader cannot release it)", time.Since(killed).Round(100*time.Millisecond))

	w2 := newWukong(ns, "after-kill")
	require.NoError(t, c.Create(t.Context(), w2))
	waitRunning(t, c, key(w2))
	waitRunning(t, c, key(w1))
	assert.Contains(t, follower.output(), startWorkers, "the new leader runs the controller")
	h := history()
	assert.Len(t, h, 2, "Lease holders over time: %v", h)
	assert.NotEqual(t, h[0], h[1], "the holder identity changed")
	requireAlive(t, follower)
}

func has(p *managerProc, s string) bool {
	return strings.Contains(strings.ToLower(p.output()), strings.ToLower(s))
}

package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestManagerKills: an administrator declares two node bridges; N Wukongs
// are created, grown, given a NIC on a node bridge and some deleted, and the
// administrator deletes one node bridge while its users are being deleted,
// all while the manager (a child process) is killed with SIGKILL at random
// moments and restarted. At the end every remaining Wukong converges (with
// no finalizer), children are exactly the expected ones (no orphans, no
// duplicates), the kept bridge has exactly one policy, controlled by its
// NodeBridge, and the deleted bridge's NodeBridge and policy are gone.
// Deleting every Wukong leaves the kept bridge's policy (it is the
// administrator's); deleting its NodeBridge, with one more kill while NMState
// removes the bridge, removes both.
func TestManagerKills(t *testing.T) {
	sb, c := sharedSandbox(t)
	ctx := t.Context()
	ns := newNamespace(t, c, "kills")
	const (
		shared   = "br-rel"  // kept: some users remain
		doomed   = "br-gone" // deleted by the administrator; every user is deleted
		uplink   = "eth1"
		uplink2  = "eth3"
		grownTo  = "2Gi"
		addedNIC = "rel"
	)
	name := func(i int) string { return fmt.Sprintf("w-%02d", i) }
	grow := func(i int) bool { return i%4 == 1 }
	addNIC := func(i int) bool { return i%4 == 2 }
	del := func(i int) bool { return i%5 == 4 || i%10 == 7 }

	declareBridge(t, c, ns, shared, []string{uplink})
	declareBridge(t, c, ns, doomed, []string{uplink2})
	mgr := startManager(t, sb.KubeconfigPath, "manager-0")
	eventually(t, func(ct *assert.CollectT) {
		assertBridgeReady(ct, c, shared)
		assertBridgeReady(ct, c, doomed)
	}, "the declared node bridges to be Ready")

	for i := range nWukongs {
		w := newWukong(ns, name(i))
		switch {
		case i%10 == 7:
			w.Spec.Networks = []v1alpha1.NetworkSpec{bridgeNIC("lan", doomed, uplink2)}
		case i%3 == 0:
			w.Spec.Networks = []v1alpha1.NetworkSpec{bridgeNIC("lan", shared, "")}
		}
		require.NoError(t, c.Create(ctx, w))
	}

	var ops []func() error
	for i := range nWukongs {
		nn := types.NamespacedName{Namespace: ns, Name: name(i)}
		if grow(i) {
			ops = append(ops, func() error {
				return updateErr(c, nn, func(w *v1alpha1.Wukong) { w.Spec.Disks[0].Size = resource.MustParse(grownTo) })
			})
		}
		if addNIC(i) {
			ops = append(ops, func() error {
				return updateErr(c, nn, func(w *v1alpha1.Wukong) {
					w.Spec.Networks = append(w.Spec.Networks, bridgeNIC(addedNIC, shared, uplink))
				})
			})
		}
		if del(i) {
			ops = append(ops, func() error { return c.Delete(context.Background(), &v1alpha1.Wukong{ObjectMeta: objMeta(nn)}) })
		}
	}
	// The administrator removes a node bridge whose users are going away:
	// it waits for them, whenever in the shuffle it comes.
	ops = append(ops, func() error {
		return c.Delete(context.Background(), &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: doomed}})
	})
	rand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })

	// The user's changes are spread over the window in which the manager
	// is killed and restarted nKills times at random 0.5-3s intervals.
	var wg sync.WaitGroup
	opErrs := make(chan error, len(ops))
	window := time.Duration(nKills) * 1750 * time.Millisecond
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, op := range ops {
			if err := op(); err != nil {
				opErrs <- err
			}
			time.Sleep(window / time.Duration(len(ops)+1))
		}
	}()
	for r := range nKills {
		time.Sleep(time.Duration(500+rand.IntN(2500)) * time.Millisecond)
		require.True(t, mgr.alive(), "manager exited on its own:\n%s", tail(mgr.output(), 2000))
		mgr.kill() // SIGKILL: no lease release, no cleanup, mid-reconcile
		mgr = startManager(t, sb.KubeconfigPath, fmt.Sprintf("manager-%d", r+1))
	}
	wg.Wait()
	close(opErrs)
	for err := range opErrs {
		require.NoError(t, err, "a user change")
	}
	t.Logf("%d user changes while the manager was killed %d times", len(ops), nKills)

	// Expected state.
	remaining := map[string]bool{}
	expected := map[string]string{}
	for i := range nWukongs {
		if del(i) {
			continue
		}
		n := name(i)
		remaining[n] = true
		expected["Secret/"+n+"-cloudinit"] = n
		// A blank disk is a CDI DataVolume; its claim carries the
		// DataVolume's labels (CDI copies them).
		expected["DataVolume/"+n+"-root"] = n
		expected["PersistentVolumeClaim/"+n+"-root"] = n
		expected["VirtualMachine/"+n] = n
		if i%3 == 0 {
			expected["NetworkAttachmentDefinition/"+n+"-lan"] = n
		}
		if addNIC(i) {
			expected["NetworkAttachmentDefinition/"+n+"-"+addedNIC] = n
		}
	}

	eventually(t, func(ct *assert.CollectT) {
		list := &v1alpha1.WukongList{}
		require.NoError(ct, c.List(context.Background(), list, client.InNamespace(ns)))
		got := map[string]bool{}
		for i := range list.Items {
			w := &list.Items[i]
			got[w.Name] = true
			assertRunning(ct, w)
			assert.Empty(ct, w.Finalizers, "%s: Wukongs carry no finalizer", w.Name)
		}
		assert.Equal(ct, remaining, got, "remaining Wukongs (deleted ones gone)")
	}, "every remaining Wukong to converge after the kills")
	eventually(t, func(ct *assert.CollectT) {
		assert.Equal(ct, expected, listChildren(ct, c, ns), "children: exactly the expected ones (GC removes the deleted Wukongs')")
	}, "children to be exactly the expected ones")
	for i := range nWukongs {
		if del(i) {
			continue
		}
		nn := types.NamespacedName{Namespace: ns, Name: name(i)}
		if grow(i) {
			pvc := &corev1.PersistentVolumeClaim{}
			require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: nn.Name + "-root"}, pvc))
			assert.Equal(t, grownTo, pvc.Spec.Resources.Requests.Storage().String(), "%s: grown PVC", nn)
		}
		if addNIC(i) {
			vm := &kubevirtv1.VirtualMachine{}
			require.NoError(t, c.Get(ctx, nn, vm))
			var nets []string
			for _, n := range vm.Spec.Template.Spec.Networks {
				nets = append(nets, n.Name)
			}
			assert.Contains(t, nets, addedNIC, "%s: VM networks", nn)
		}
	}
	eventually(t, func(ct *assert.CollectT) {
		assertBridgeReady(ct, c, shared)
		assert.True(ct, isGone(c, &v1alpha1.NodeBridge{}, types.NamespacedName{Name: doomed}),
			"NodeBridge %s, deleted by the administrator, once its users are gone", doomed)
		assert.True(ct, isGone(c, &nmstatev1.NodeNetworkConfigurationPolicy{}, types.NamespacedName{Name: policyPrefix + doomed}),
			"the policy of NodeBridge %s", doomed)
	}, "node bridge policies to match the declarations")
	requireAlive(t, mgr)

	// Delete every Wukong with the manager running: all children go; the
	// node bridge stays, as the administrator declared it.
	require.NoError(t, c.DeleteAllOf(ctx, &v1alpha1.Wukong{}, client.InNamespace(ns)))
	eventually(t, func(ct *assert.CollectT) {
		list := &v1alpha1.WukongList{}
		require.NoError(ct, c.List(context.Background(), list, client.InNamespace(ns)))
		assert.Empty(ct, list.Items, "Wukongs")
		assert.Empty(ct, listChildren(ct, c, ns), "children")
	}, "every Wukong and child to be deleted")
	eventually(t, func(ct *assert.CollectT) { assertBridgeReady(ct, c, shared) },
		"NodeBridge %s and its policy to stay without users", shared)

	// The administrator deletes it; the manager is killed once more while
	// NMState removes the bridge from the nodes (state: absent).
	require.NoError(t, c.Delete(ctx, &v1alpha1.NodeBridge{ObjectMeta: metav1.ObjectMeta{Name: shared}}))
	eventually(t, func(ct *assert.CollectT) {
		p := &nmstatev1.NodeNetworkConfigurationPolicy{}
		if err := c.Get(context.Background(), types.NamespacedName{Name: policyPrefix + shared}, p); err == nil {
			assert.Equal(ct, "absent", p.Annotations[annotationBridgeState], "policy state")
		}
	}, "the policy to remove the bridge from the nodes")
	mgr.kill()
	mgr = startManager(t, sb.KubeconfigPath, "manager-final")
	eventually(t, func(ct *assert.CollectT) {
		assert.True(ct, isGone(c, &nmstatev1.NodeNetworkConfigurationPolicy{}, types.NamespacedName{Name: policyPrefix + shared}),
			"the policy of the deleted NodeBridge %s", shared)
		assert.True(ct, isGone(c, &v1alpha1.NodeBridge{}, types.NamespacedName{Name: shared}), "NodeBridge %s", shared)
	}, "the node bridge to be removed")
	requireAlive(t, mgr)
}

func updateErr(c client.Client, nn types.NamespacedName, mutate func(*v1alpha1.Wukong)) error {
	// A shuffled delete may come first: changing a deleted Wukong is a no-op.
	return client.IgnoreNotFound(retryOnConflict(func() error {
		w := &v1alpha1.Wukong{}
		if err := c.Get(context.Background(), nn, w); err != nil {
			return err
		}
		mutate(w)
		return c.Update(context.Background(), w)
	}))
}

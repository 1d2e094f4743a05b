package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestConcurrentUserEdits: while the operator reconciles (the Wukong is
// being created, then running), two user goroutines update spec.cpu and a
// label repeatedly, each with a think time between read and write (like
// kubectl edit), retrying conflicts with each other and with the
// operator's finalizer and status writes. At the end the VM has the final
// cpu and the status describes the final generation.
func TestConcurrentUserEdits(t *testing.T) {
	ns := newNamespace(t, k, "edits")
	w := newWukong(ns, "edited")
	require.NoError(t, k.Create(t.Context(), w))
	nn := key(w)

	const rounds = 30
	const label = "reliability.novasphere.dev/round"
	var mu sync.Mutex
	conflicts := 0
	edit := func(mutate func(*v1alpha1.Wukong)) error {
		for {
			cur := &v1alpha1.Wukong{}
			if err := k.Get(context.Background(), nn, cur); err != nil {
				return err
			}
			mutate(cur)
			time.Sleep(30 * time.Millisecond) // think time: others write meanwhile
			err := k.Update(context.Background(), cur)
			if !apierrors.IsConflict(err) {
				return err
			}
			mu.Lock()
			conflicts++
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	var finalCPU int32
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range rounds {
			cpu := int32(i%4 + 1)
			errs <- edit(func(w *v1alpha1.Wukong) { w.Spec.CPU = cpu })
			finalCPU = cpu
		}
	}()
	go func() {
		defer wg.Done()
		for i := range rounds {
			errs <- edit(func(w *v1alpha1.Wukong) {
				if w.Labels == nil {
					w.Labels = map[string]string{}
				}
				w.Labels[label] = fmt.Sprint(i)
			})
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("%d updates, %d conflicts retried", 2*rounds, conflicts)
	assert.Positive(t, conflicts, "the edits raced (else this test proves little)")

	eventually(t, func(c *assert.CollectT) {
		cur := getWukong(c, k, nn)
		assert.Equal(c, finalCPU, cur.Spec.CPU)
		assert.Equal(c, cur.Generation, cur.Status.ObservedGeneration, "observedGeneration")
		ready := cond(cur, v1alpha1.ReadyCondition)
		assert.True(c, ready != nil && ready.Status == "True", "Ready")
		assert.Nil(c, cond(cur, v1alpha1.StalledCondition), "Stalled")
		assert.Equal(c, fmt.Sprint(rounds-1), cur.Labels[label])
		assertVMCores(c, nn, finalCPU)
	}, "the VM to reflect the final spec")
}

// assertVMCores checks the VM template's vCPUs (sockets × cores × threads:
// Wukong renders cpu as sockets of one core since issue 34).
func assertVMCores(c *assert.CollectT, nn types.NamespacedName, cpu int32) {
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(c, k.Get(context.Background(), nn, vm))
	if d := vm.Spec.Template.Spec.Domain.CPU; assert.NotNil(c, d) {
		assert.Equal(c, uint32(cpu), max(d.Sockets, 1)*max(d.Cores, 1)*max(d.Threads, 1), "VM template vCPUs")
	}
}

package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestLocalVirtAPIUnreachable is issue 33's item 5 on real KubeVirt: virt-api
// goes away while a running Wukong changes, as during a KubeVirt upgrade.
// The test scales virt-operator to 0 (it would bring virt-api back) and then
// virt-api to 0, so the API server cannot call KubeVirt's validating
// webhooks (failurePolicy Fail) and refuses the VirtualMachine's update.
// The Wukong keeps what it observed (Running, node, addresses, Ready) and
// says in Reconciling (VMUpdatePending) that the change waits, quoting the
// API server; once virt-api is back the change lands with nothing done.
// Both Deployments get their replicas back when the test ends, pass or
// fail. It changes the cluster for every VM while it runs: it must not run
// in parallel with other tests.
func TestLocalVirtAPIUnreachable(t *testing.T) {
	realKubeVirt(t)
	ctx := ctxT(t)
	ns := newNamespace(t)
	name := "virtapi-" + randSuffix()
	nn := types.NamespacedName{Namespace: ns, Name: name}
	w := newWukong(ns, name)
	create(t, w)
	before := waitRunning(t, nn)
	require.NotEmpty(t, before.Status.NodeName, "status.nodeName")

	const kvNS = "kubevirt"
	scale := func(deployment string, replicas int32) {
		t.Helper()
		d := &appsv1.Deployment{}
		require.NoError(t, k.Get(context.Background(), types.NamespacedName{Namespace: kvNS, Name: deployment}, d))
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Replicas = ptr.To(replicas)
		require.NoError(t, k.Patch(context.Background(), d, patch), "scale %s to %d", deployment, replicas)
	}
	replicasOf := func(deployment string) int32 {
		d := &appsv1.Deployment{}
		require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: kvNS, Name: deployment}, d))
		return ptr.Deref(d.Spec.Replicas, 1)
	}
	operatorReplicas, apiReplicas := replicasOf("virt-operator"), replicasOf("virt-api")
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		scale("virt-api", apiReplicas)
		scale("virt-operator", operatorReplicas)
	}
	t.Cleanup(restore)
	scale("virt-operator", 0)
	scale("virt-api", 0)
	eventually(t, 2, func(c *assert.CollectT) {
		pods := &corev1.PodList{}
		require.NoError(c, k.List(context.Background(), pods, client.InNamespace(kvNS), client.MatchingLabels{kubevirtv1.AppLabel: "virt-api"}))
		assert.Empty(c, pods.Items, "virt-api pods")
	}, "virt-api to be gone")
	gone := time.Now()

	updateWukong(t, nn, func(w *v1alpha1.Wukong) { w.Spec.CPU = 2 })
	var message string
	eventually(t, 2, func(c *assert.CollectT) {
		if rec := assertVMUpdatePending(c, before, getWukong(c, k, nn),
			"the change waits for the VirtualMachine update", "failed calling webhook"); rec != nil {
			message = rec.Message
		}
	}, "the Wukong to keep what it observed and say the change waits")
	t.Logf("virt-api gone %.0f s; Reconciling: %s", time.Since(gone).Seconds(), message)

	restore()
	back := time.Now()
	eventually(t, 4, func(c *assert.CollectT) {
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(c, k.Get(context.Background(), nn, vm))
		if assert.NotNil(c, vm.Spec.Template.Spec.Domain.CPU) {
			assert.Equal(c, uint32(2), vm.Spec.Template.Spec.Domain.CPU.Sockets, "the change landed")
		}
		got := getWukong(c, k, nn)
		assert.Equal(c, got.Generation, got.Status.ObservedGeneration)
		if rec := cond(got, v1alpha1.ReconcilingCondition); rec != nil {
			assert.NotEqual(c, v1alpha1.ReasonVMUpdatePending, rec.Reason, "Reconciling: %s", rec.Message)
		}
	}, "the change to land once virt-api is back")
	t.Logf("the change landed %.0f s after virt-api was scaled back", time.Since(back).Seconds())
}

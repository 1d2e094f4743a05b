package e2e_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// labelAntiAffinity is the label a Wukong VM's pods carry with
// highAvailability.antiAffinity: its value is the antiAffinityGroup
// ("true" for the default group).
const labelAntiAffinity = "vm.novasphere.dev/anti-affinity"

// TestTenantAntiAffinity: another tenant's pods labelled like a Wukong VM's,
// one on every node, do not keep a tenant's HA Wukong off the nodes (the
// rule reaches only its own namespace); within the namespace a VM of the
// same group does, and Ready then quotes the scheduler's own verdict; a VM
// of another group runs next to it, and so do two VMs of a group whose
// antiAffinityMode is Preferred.
func TestTenantAntiAffinity(t *testing.T) {
	requireKinds(t, kindVirtualMachine)
	t.Parallel()
	ctx := ctxT(t)
	teamA, teamB := newNamespace(t), newNamespace(t)
	alice := tenant(t, teamA, "alice-"+randSuffix())
	bob := tenant(t, teamB, "bob-"+randSuffix())

	// Bob, with nothing but edit in his namespace, puts a pod labelled
	// like an HA Wukong VM's on every node.
	nodes := &corev1.NodeList{}
	require.NoError(t, k.List(ctx, nodes))
	require.NotEmpty(t, nodes.Items)
	for _, n := range nodes.Items {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: teamB, Name: "squat-" + n.Name, Labels: map[string]string{labelAntiAffinity: "true"}},
			Spec: corev1.PodSpec{
				NodeName:    n.Name,
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				Containers:  []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
			},
		}
		require.NoError(t, bob.Create(ctx, pod), "bob's pod on %s", n.Name)
		t.Cleanup(func() { _ = k.Delete(context.Background(), pod, client.GracePeriodSeconds(0)) })
	}

	ha := func(name string, mutate func(*v1alpha1.HighAvailability)) *v1alpha1.Wukong {
		w := newWukong(teamA, name)
		w.Spec.HighAvailability = &v1alpha1.HighAvailability{AntiAffinity: true}
		if mutate != nil {
			mutate(w.Spec.HighAvailability)
		}
		require.NoError(t, alice.Create(ctx, w))
		return w
	}

	// Alice's HA Wukong runs: bob's pods are in another namespace.
	first := ha("first", nil)
	node := waitRunning(t, key(first)).Status.NodeName
	onNode := func(h *v1alpha1.HighAvailability) {
		h.NodeSelector = map[string]string{corev1.LabelHostname: node}
	}

	// A second one of the same group, held to the same node, cannot run;
	// Ready quotes the scheduler's verdict (KubeVirt's copy of the launcher
	// pod's PodScheduled=False) and names the field it blames.
	second := ha("second", onNode)
	var scheduler string
	eventually(t, 1, func(c *assert.CollectT) {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, k.Get(ctx, key(second), vmi))
		for _, cond := range vmi.Status.Conditions {
			if cond.Type == kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled) && cond.Status == corev1.ConditionFalse {
				scheduler = cond.Message
			}
		}
		assert.Contains(c, scheduler, "didn't match pod anti-affinity rules", "the VMI's PodScheduled message")
	}, "the scheduler to refuse %s", key(second))
	eventually(t, 1, func(c *assert.CollectT) {
		w := getWukong(c, alice, key(second))
		ready, stalled := cond(w, v1alpha1.ReadyCondition), cond(w, v1alpha1.StalledCondition)
		if assert.NotNil(c, ready, "Ready") && assert.NotNil(c, stalled, "Stalled") {
			assert.Equal(c, v1alpha1.ReasonUnschedulable, ready.Reason)
			assert.Equal(c, metav1.ConditionTrue, stalled.Status)
			assert.Contains(c, ready.Message, scheduler, "Ready quotes the scheduler")
			assert.Contains(c, ready.Message, "spec.highAvailability.antiAffinity")
			assert.NotContains(c, ready.Message, "spec.memory", "the scheduler blamed no resource")
		}
	}, "%s to be Unschedulable quoting the scheduler", key(second))

	// Another group shares the node; so do two of a group whose rule is
	// Preferred. (A Required member's rule would keep Preferred members of
	// its own group off its node too: the scheduler applies the running
	// pods' required anti-affinity to an incoming pod.)
	other := ha("other-group", func(h *v1alpha1.HighAvailability) { onNode(h); h.AntiAffinityGroup = "db" })
	soft := func(h *v1alpha1.HighAvailability) {
		onNode(h)
		h.AntiAffinityGroup, h.AntiAffinityMode = "web", v1alpha1.AntiAffinityPreferred
	}
	soft1, soft2 := ha("soft-1", soft), ha("soft-2", soft)
	for _, w := range []*v1alpha1.Wukong{other, soft1, soft2} {
		assert.Equal(t, node, waitRunning(t, key(w)).Status.NodeName, "%s runs on %s", w.Name, node)
	}
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, k.Get(ctx, types.NamespacedName{Namespace: teamA, Name: other.Name}, vm))
	assert.Equal(t, "db", vm.Spec.Template.ObjectMeta.Labels[labelAntiAffinity])
}

package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func TestRemovedDisks(t *testing.T) {
	w := testWukong()
	w.Spec.Disks = []v1alpha1.DiskSpec{{Name: "root"}}
	w.Status.Volumes = []v1alpha1.VolumeStatus{
		{Name: "root", Claim: v1alpha1.VolumeClaimOwned},
		{Name: "gone", Claim: v1alpha1.VolumeClaimOwned},
		{Name: "kept", Claim: v1alpha1.VolumeClaimRetained},
		{Name: "users", Claim: v1alpha1.VolumeClaimExisting},
	}
	var names []string
	for _, v := range removedDisks(w) {
		names = append(names, v.Name)
	}
	assert.Equal(t, []string{"gone", "kept"}, names, "removed disks whose claim Wukong made; never a user's claim")
	assert.Equal(t, []storage.Disk{{Name: "kept", Retain: true}}, removedRetainDisks(w), "the Retain one is released")
}

func TestHotplugStatuses(t *testing.T) {
	vmi := runningVMI("n1")
	vmi.Spec.Volumes = []kubevirtv1.Volume{{Name: "data"}}
	vmi.Status.VolumeStatus = []kubevirtv1.VolumeStatus{
		{Name: "root"},
		{Name: "data", Phase: kubevirtv1.HotplugVolumeAttachedToNode, Message: "Created hotplug attachment pod hp-volume-x, for volume data",
			HotplugVolume: &kubevirtv1.HotplugVolumeStatus{AttachPodName: "hp-volume-x"}},
	}
	vols := []v1alpha1.VolumeStatus{{Name: "root"}, {Name: "data"}}
	hotplugStatuses(vols, kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, true), vmi))
	assert.Nil(t, vols[0].Hotplug, "a disk attached at start has no hotplug status")
	require.NotNil(t, vols[1].Hotplug)
	assert.Equal(t, v1alpha1.HotplugStatus{Phase: "AttachedToNode", Message: "Created hotplug attachment pod hp-volume-x, for volume data"}, *vols[1].Hotplug)
}

func TestRestartRequiredListsWhy(t *testing.T) {
	w := testWukong()
	vm := kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, true), runningVMI("n1")).
		WithLivePlan(kubevirt.LivePlan{Restart: []string{"disk data: attached at the next start: KubeVirt's vmRolloutStrategy is Stage"}})
	setRestartRequired(w, &scope{vm: vm, volsDone: true})
	c := conditions.Get(w, v1alpha1.RestartRequiredCondition)
	require.NotNil(t, c, "Wukong's own knowledge: KubeVirt says nothing (a macvtap NIC, a staged disk)")
	assert.Equal(t, metav1.ConditionTrue, c.Status)
	assert.Contains(t, c.Message, "disk data: attached at the next start: KubeVirt's vmRolloutStrategy is Stage")

	w = testWukong()
	setRestartRequired(w, &scope{vm: kubevirt.Observe(vmWith(kubevirtv1.RunStrategyAlways, true), runningVMI("n1")), volsDone: true})
	assert.Nil(t, conditions.Get(w, v1alpha1.RestartRequiredCondition), "nothing waits: no condition")
}

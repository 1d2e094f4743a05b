package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// hotplugVMI is vm1's instance as KubeVirt's VMI mutator makes it with the
// default maxHotplugRatio 4 (pkg/defaults setupCPUHotplug,
// setupMemoryHotplug): cpu sockets of one core, maxSockets 4 × sockets,
// maxGuest 4 × guest, status.currentCPUTopology and status.memory.
func hotplugVMI(sockets uint32, guest string) *kubevirtv1.VirtualMachineInstance {
	vmi := runningVMI("n1")
	g := resource.MustParse(guest)
	mg := *resource.NewQuantity(4*g.Value(), resource.BinarySI)
	vmi.Spec.Domain.CPU = &kubevirtv1.CPU{Sockets: sockets, Cores: 1, Threads: 1, MaxSockets: 4 * sockets}
	vmi.Spec.Domain.Memory = &kubevirtv1.Memory{Guest: &g, MaxGuest: &mg}
	vmi.Status.CurrentCPUTopology = &kubevirtv1.CPUTopology{Sockets: sockets, Cores: 1, Threads: 1}
	vmi.Status.Memory = &kubevirtv1.MemoryStatus{GuestAtBoot: &g, GuestCurrent: &g, GuestRequested: &g}
	return vmi
}

func TestHotplugStatus(t *testing.T) {
	lu := kubevirt.LiveUpdate{Migrate: true, CRs: 1}
	w := func(cpu int32, mem string) *v1alpha1.Wukong {
		o := testWukong()
		o.Spec.CPU, o.Spec.Memory = cpu, resource.MustParse(mem)
		return o
	}
	cases := []struct {
		name string
		w    *v1alpha1.Wukong
		vm   func() kubevirt.Observation
		// restart is "" for no RestartRequired, else a part of its message.
		restart []string
	}{
		{name: "cpu grows within the maximum: applied live, no RestartRequired",
			w: w(2, "2Gi"), vm: func() kubevirt.Observation { return observeRunning(hotplugVMI(1, "2Gi")) }},
		{name: "memory grows within the maximum: live",
			w: w(1, "4Gi"), vm: func() kubevirt.Observation { return observeRunning(hotplugVMI(1, "2Gi")) }},
		{name: "cpu past the maximum: RestartRequired naming the field and the maximum",
			w: w(6, "2Gi"), vm: func() kubevirt.Observation { return observeRunning(hotplugVMI(1, "2Gi")) },
			restart: []string{"virtctl restart vm1", "spec.cpu 1 → 6", "hot-plug maximum of 4 vCPUs"}},
		{name: "cpu shrinks: RestartRequired",
			w: w(1, "2Gi"), vm: func() kubevirt.Observation { return observeRunning(hotplugVMI(2, "2Gi")) },
			restart: []string{"spec.cpu 2 → 1", "removes CPUs only at a restart"}},
		{name: "both wait, each listed",
			w: w(1, "1Gi"), vm: func() kubevirt.Observation { return observeRunning(hotplugVMI(2, "2Gi")) },
			restart: []string{"spec.cpu 2 → 1", "; spec.memory 2Gi → 1Gi"}},
		{name: "not migratable: the Migratable reason's message",
			w: w(2, "2Gi"), vm: func() kubevirt.Observation {
				vmi := hotplugVMI(1, "2Gi")
				vmi.Status.Conditions = append(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceCondition{Type: kubevirtv1.VirtualMachineInstanceIsMigratable,
					Status: corev1.ConditionFalse, Reason: kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable, Message: "cannot migrate VMI: PVC vm1-root is not shared"})
				return observeRunning(vmi)
			}, restart: []string{"spec.cpu 1 → 2", "cannot live-migrate (cannot migrate VMI: PVC vm1-root"}},
		{name: "KubeVirt's own RestartRequired for another field is listed as KubeVirt's",
			w: w(1, "2Gi"), vm: func() kubevirt.Observation {
				vm := vmWith(kubevirtv1.RunStrategyAlways, true)
				vm.Status.Conditions = []kubevirtv1.VirtualMachineCondition{{Type: kubevirtv1.VirtualMachineRestartRequired, Status: corev1.ConditionTrue, Message: kubevirt.MessageNonLiveChange}}
				return kubevirt.Observe(vm, hotplugVMI(1, "2Gi"))
			}, restart: []string{"KubeVirt: " + kubevirt.MessageNonLiveChange}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := runningScope(tc.w, nil)
			s.vm = tc.vm()
			s.res.changes = kubevirt.PlanResources(s.vm, tc.w.Spec.CPU, tc.w.Spec.Memory, lu)
			computeStatus(tc.w, s)
			c := conditions.Get(tc.w, v1alpha1.RestartRequiredCondition)
			if len(tc.restart) == 0 {
				assert.Nil(t, c, "no RestartRequired")
			} else {
				require.NotNil(t, c)
				for _, part := range tc.restart {
					assert.Contains(t, c.Message, part)
				}
			}
			require.NotNil(t, tc.w.Status.Resources, "a running guest has status.resources")
			assert.Equal(t, int32(kubevirt.VCPUs(&kubevirtv1.CPU{Sockets: s.vm.Instance().Status.CurrentCPUTopology.Sockets})), tc.w.Status.Resources.CPU)
		})
	}

	t.Run("status.resources: what the guest has and its maxima", func(t *testing.T) {
		o := w(2, "2Gi")
		vmi := hotplugVMI(1, "2Gi")
		vmi.Spec.Domain.CPU.Sockets = 2 // KubeVirt took the change; the guest has not got it yet
		s := runningScope(o, vmi)
		computeStatus(o, s)
		r := o.Status.Resources
		require.NotNil(t, r)
		assert.Equal(t, int32(1), r.CPU, "the guest's, not the spec's")
		assert.Equal(t, int32(4), r.MaxCPU)
		assert.Equal(t, "2Gi", r.Memory.String())
		assert.Equal(t, "8Gi", r.MaxMemory.String())
	})

	t.Run("no running instance: the spec's size, no maxima", func(t *testing.T) {
		o := w(1, "2Gi")
		o.Status.Resources = &v1alpha1.ResourcesStatus{CPU: 1, MaxCPU: 4}
		s := runningScope(o, nil)
		s.vm = kubevirt.Observe(vmWith(kubevirtv1.RunStrategyHalted, false), nil)
		computeStatus(o, s)
		r := o.Status.Resources
		require.NotNil(t, r)
		assert.Equal(t, v1alpha1.ResourcesFromSpec, r.Source)
		assert.Equal(t, int32(1), r.CPU)
		assert.Equal(t, "2Gi", r.Memory.String())
		assert.Zero(t, r.MaxCPU, "no maxima without a running instance")
		assert.Nil(t, r.MaxMemory)
	})
}

func TestResourceEvents(t *testing.T) {
	res := func(cpu int32, mem string) *v1alpha1.ResourcesStatus {
		return &v1alpha1.ResourcesStatus{CPU: cpu, MaxCPU: 4, Memory: ptrQuantity(resource.MustParse(mem))}
	}
	migrated := &v1alpha1.MigrationStatus{State: string(kubevirt.MigrationSucceeded)}
	build := func(r *v1alpha1.ResourcesStatus, m *v1alpha1.MigrationStatus) *v1alpha1.Wukong {
		return &v1alpha1.Wukong{Status: v1alpha1.WukongStatus{Resources: r, Migration: m}}
	}
	cases := []struct {
		name          string
		before, after *v1alpha1.Wukong
		want          []event
	}{
		{"cpu grew on a live-migrated instance", build(res(1, "2Gi"), nil), build(res(2, "2Gi"), migrated),
			[]event{{corev1.EventTypeNormal, v1alpha1.ReasonResourcesUpdated, "Resources", "cpu 1 → 2 applied to the running guest without a restart (KubeVirt hotplug through a live migration)"}}},
		{"cpu and memory", build(res(1, "2Gi"), migrated), build(res(2, "4Gi"), migrated),
			[]event{{corev1.EventTypeNormal, v1alpha1.ReasonResourcesUpdated, "Resources", "cpu 1 → 2, memory 2Gi → 4Gi applied to the running guest without a restart (KubeVirt hotplug through a live migration)"}}},
		{"a restarted instance (no migration record): none", build(res(2, "2Gi"), nil), build(res(1, "2Gi"), nil), nil},
		{"nothing changed: none", build(res(1, "2Gi"), migrated), build(res(1, "2Gi"), migrated), nil},
		{"no running instance before: none", build(nil, nil), build(res(2, "2Gi"), migrated), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, resourceEvents(tc.before, tc.after))
		})
	}
}

package kubevirt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/apply"
)

func TestLiveUpdatesOf(t *testing.T) {
	stage := kubevirtv1.VMRolloutStrategyStage
	live := kubevirtv1.VMRolloutStrategyLiveUpdate
	kv := func(rs *kubevirtv1.VMRolloutStrategy, dc *kubevirtv1.DeveloperConfiguration) []kubevirtv1.KubeVirt {
		k := kubevirtv1.KubeVirt{}
		k.Spec.Configuration.VMRolloutStrategy = rs
		k.Spec.Configuration.DeveloperConfiguration = dc
		return []kubevirtv1.KubeVirt{k}
	}
	cases := []struct {
		name   string
		kvs    []kubevirtv1.KubeVirt
		want   bool
		whyNot string
	}{
		{name: "no KubeVirt CR", whyNot: "no KubeVirt CR (kubevirt.io/v1 KubeVirt) was found"},
		{name: "defaults: LiveUpdate and the Beta gate on", kvs: kv(nil, nil), want: true},
		{name: "LiveUpdate set", kvs: kv(&live, &kubevirtv1.DeveloperConfiguration{}), want: true},
		{name: "Stage", kvs: kv(&stage, nil), whyNot: "KubeVirt's vmRolloutStrategy is Stage"},
		{name: "gate disabled", kvs: kv(nil, &kubevirtv1.DeveloperConfiguration{DisabledFeatureGates: []string{GateDeclarativeHotplugVolumes}}),
			whyNot: "KubeVirt's DeclarativeHotplugVolumes feature gate is disabled"},
		{name: "gate both enabled and disabled: enabled wins (featuregate.IsEnabled)", kvs: kv(nil, &kubevirtv1.DeveloperConfiguration{
			FeatureGates: []string{GateDeclarativeHotplugVolumes}, DisabledFeatureGates: []string{GateDeclarativeHotplugVolumes}}), want: true},
		{name: "deprecated HotplugVolumes on", kvs: kv(nil, &kubevirtv1.DeveloperConfiguration{FeatureGates: []string{GateHotplugVolumes}}),
			whyNot: "KubeVirt's deprecated HotplugVolumes feature gate is enabled, which turns declarative volume hotplug off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := LiveUpdatesOf(tc.kvs)
			assert.Equal(t, tc.want, got.Volumes)
			assert.Equal(t, tc.whyNot, got.VolumesWhyNot)
		})
	}
}

// runningVMI is the instance of BuildVM(m) as KubeVirt runs it.
func runningVMI(t *testing.T, m Machine) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	vm := BuildVM(apply.Identity{FieldManager: "t", Domain: "example.com"}, testOwner(), m)
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: "prod"}, Spec: vm.Spec.Template.Spec}
	vmi.Status.Phase = kubevirtv1.Running
	return vmi
}

func builtVM(t *testing.T, m Machine) *kubevirtv1.VirtualMachine {
	t.Helper()
	return BuildVM(apply.Identity{FieldManager: "t", Domain: "example.com"}, testOwner(), m)
}

func hotpluggable(m Machine) map[string]bool {
	out := map[string]bool{}
	for _, d := range m.Disks {
		out[d.Name] = d.Hotpluggable
	}
	return out
}

func TestPlanLiveDisks(t *testing.T) {
	data := Disk{Name: "data", ClaimName: "web-data", DataVolume: true}
	withData := with(func(m *Machine) { m.Disks = append(m.Disks, data) })
	allow := LiveUpdates{Volumes: true}
	stage := LiveUpdates{VolumesWhyNot: "KubeVirt's vmRolloutStrategy is Stage"}

	t.Run("a disk added to a running machine is hot-plugged", func(t *testing.T) {
		started := baseMachine()
		got, plan := PlanLive(withData, builtVM(t, started), runningVMI(t, started), allow)
		assert.Equal(t, map[string]bool{"root": false, "data": true}, hotpluggable(got))
		assert.Equal(t, []LiveChange{{Kind: LiveDisk, Name: "data", Action: LiveAttach}}, plan.Live)
		assert.Empty(t, plan.Restart)
		vol := volume(t, BuildVM(apply.Identity{FieldManager: "t", Domain: "example.com"}, testOwner(), got), "data")
		require.NotNil(t, vol.DataVolume)
		assert.True(t, vol.DataVolume.Hotpluggable, "hotpluggable: true on the volume")
	})
	t.Run("not allowed: an ordinary disk and the reason", func(t *testing.T) {
		started := baseMachine()
		got, plan := PlanLive(withData, builtVM(t, started), runningVMI(t, started), stage)
		assert.False(t, hotpluggable(got)["data"])
		assert.Empty(t, plan.Live)
		assert.Equal(t, []string{"disk data: attached at the next start: KubeVirt's vmRolloutStrategy is Stage"}, plan.Restart)
	})
	t.Run("stopped machine: an ordinary disk, no plan", func(t *testing.T) {
		got, plan := PlanLive(withData, builtVM(t, baseMachine()), nil, allow)
		assert.False(t, hotpluggable(got)["data"])
		assert.Equal(t, LivePlan{}, plan)
	})
	t.Run("a hot-plugged disk stays hotpluggable once the machine stops", func(t *testing.T) {
		hot := withData
		hot.Disks = []Disk{hot.Disks[0], {Name: "data", ClaimName: "web-data", DataVolume: true, Hotpluggable: true}}
		got, _ := PlanLive(withData, builtVM(t, hot), nil, LiveUpdates{})
		assert.True(t, hotpluggable(got)["data"])
	})
	t.Run("the boot disk is never hot-plugged", func(t *testing.T) {
		newBoot := with(func(m *Machine) {
			m.Disks = []Disk{{Name: "root", ClaimName: "web-root"}, {Name: "other", ClaimName: "web-other", Boot: true}}
		})
		started := baseMachine()
		got, plan := PlanLive(newBoot, builtVM(t, started), runningVMI(t, started), allow)
		assert.False(t, hotpluggable(got)["other"])
		assert.Equal(t, []string{"disk other: a new boot disk is used from the next start"}, plan.Restart)
	})
	t.Run("a hot-plugged disk removed is detached live", func(t *testing.T) {
		hot := withData
		hot.Disks = []Disk{hot.Disks[0], {Name: "data", ClaimName: "web-data", DataVolume: true, Hotpluggable: true}}
		_, plan := PlanLive(baseMachine(), builtVM(t, hot), runningVMI(t, hot), allow)
		assert.Equal(t, []LiveChange{{Kind: LiveDisk, Name: "data", Action: LiveDetach}}, plan.Live)
		assert.Empty(t, plan.Restart)
	})
	t.Run("a disk attached at start removed waits for a restart", func(t *testing.T) {
		_, plan := PlanLive(baseMachine(), builtVM(t, withData), runningVMI(t, withData), allow)
		assert.Empty(t, plan.Live)
		assert.Equal(t, []string{"disk data: it was attached when the machine started; KubeVirt detaches only hot-plugged disks"}, plan.Restart)
	})
}

func TestPlanLiveNICs(t *testing.T) {
	nic := NIC{Name: "lan", NAD: "lan-net", MAC: "02:00:00:00:00:01"}
	withNIC := with(func(m *Machine) { m.NICs = []NIC{nic} })
	allow := LiveUpdates{Volumes: true}

	t.Run("a bridge NIC added is hot-plugged", func(t *testing.T) {
		started := baseMachine()
		_, plan := PlanLive(withNIC, builtVM(t, started), runningVMI(t, started), allow)
		assert.Equal(t, []LiveChange{{Kind: LiveNIC, Name: "lan", Action: LiveAttach}}, plan.Live)
		assert.Empty(t, plan.Restart)
	})
	t.Run("a macvtap NIC added waits for a restart", func(t *testing.T) {
		mv := with(func(m *Machine) { m.NICs = []NIC{{Name: "lan", NAD: "lan-net", Binding: BindingMacvtap}} })
		started := baseMachine()
		_, plan := PlanLive(mv, builtVM(t, started), runningVMI(t, started), allow)
		assert.Empty(t, plan.Live)
		assert.Equal(t, []string{"NIC lan: KubeVirt hot-plugs only bridge- and SR-IOV-bound interfaces, not macvtap"}, plan.Restart)
	})
	t.Run("a bridge NIC removed is kept absent until KubeVirt unplugged it", func(t *testing.T) {
		vmi := runningVMI(t, withNIC)
		vmi.Status.Interfaces = []kubevirtv1.VirtualMachineInstanceNetworkInterface{{Name: "lan", InfoSource: "domain, multus-status"}}
		got, plan := PlanLive(baseMachine(), builtVM(t, withNIC), vmi, allow)
		assert.Equal(t, []LiveChange{{Kind: LiveNIC, Name: "lan", Action: LiveDetach}}, plan.Live)
		vm := BuildVM(apply.Identity{FieldManager: "t", Domain: "example.com"}, testOwner(), got)
		ifaces := vm.Spec.Template.Spec.Domain.Devices.Interfaces
		require.Len(t, ifaces, 2, "pod network and the NIC being unplugged")
		assert.Equal(t, kubevirtv1.InterfaceStateAbsent, ifaces[1].State)
		assert.Equal(t, "lan", ifaces[1].Name)
		nets := vm.Spec.Template.Spec.Networks
		require.Len(t, nets, 2)
		assert.Equal(t, &kubevirtv1.MultusNetwork{NetworkName: "lan-net"}, nets[1].Multus, "network of the NIC being unplugged")
	})
	t.Run("once the instance dropped it, the NIC goes from the template", func(t *testing.T) {
		started := baseMachine()
		got, plan := PlanLive(baseMachine(), builtVM(t, withNIC), runningVMI(t, started), allow)
		assert.Empty(t, got.Unplug)
		assert.Empty(t, plan.Live)
	})
	t.Run("a macvtap NIC removed waits for a restart", func(t *testing.T) {
		mv := with(func(m *Machine) { m.NICs = []NIC{{Name: "lan", NAD: "lan-net", Binding: BindingMacvtap}} })
		got, plan := PlanLive(baseMachine(), builtVM(t, mv), runningVMI(t, mv), allow)
		assert.Empty(t, got.Unplug)
		assert.Equal(t, []string{"NIC lan: KubeVirt unplugs only bridge-bound interfaces"}, plan.Restart)
	})
}

func TestObservationHotplugVolumes(t *testing.T) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	vmi.Spec.Volumes = []kubevirtv1.Volume{{Name: "data"}}
	vmi.Status.VolumeStatus = []kubevirtv1.VolumeStatus{
		{Name: "root"},
		{Name: "data", Phase: kubevirtv1.HotplugVolumeMounted, HotplugVolume: &kubevirtv1.HotplugVolumeStatus{AttachPodName: "hp-volume-x"}},
		{Name: "old", Phase: kubevirtv1.HotplugVolumeDetaching, HotplugVolume: &kubevirtv1.HotplugVolumeStatus{}},
	}
	o := Observe(&kubevirtv1.VirtualMachine{}, vmi)
	want := map[string]HotplugVolume{
		"data": {Name: "data", Phase: kubevirtv1.HotplugVolumeMounted, InSpec: true},
		"old":  {Name: "old", Phase: kubevirtv1.HotplugVolumeDetaching},
	}
	assert.Equal(t, want, o.HotplugVolumes())
	assert.True(t, o.HasVolume("old"), "status still reports it")
	assert.False(t, o.HasVolume("gone"))
}

package sandbox

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

func dvVolume(name string, hot bool) kubevirtv1.Volume {
	return kubevirtv1.Volume{Name: name, VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: "w-" + name, Hotpluggable: hot}}}
}

func disk(name string) kubevirtv1.Disk {
	return kubevirtv1.Disk{Name: name, DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}}}
}

func vmAndVMI(tmplVols, vmiVols []kubevirtv1.Volume) (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
	vm := &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{}}}
	vm.Spec.Template.Spec.Volumes = tmplVols
	for _, v := range tmplVols {
		vm.Spec.Template.Spec.Domain.Devices.Disks = append(vm.Spec.Template.Spec.Domain.Devices.Disks, disk(v.Name))
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	vmi.Spec.Volumes = vmiVols
	for _, v := range vmiVols {
		vmi.Spec.Domain.Devices.Disks = append(vmi.Spec.Domain.Devices.Disks, disk(v.Name))
	}
	return vm, vmi
}

func volNames(vols []kubevirtv1.Volume) []string {
	var out []string
	for _, v := range vols {
		out = append(out, v.Name)
	}
	return out
}

// TestHotplugVolumes follows KubeVirt's patchHotplugVolumes
// (pkg/storage/hotplug/hotplug.go, v1.9.0).
func TestHotplugVolumes(t *testing.T) {
	root := dvVolume("root", false)
	t.Run("a hotpluggable volume added to the template goes into the VMI", func(t *testing.T) {
		vm, vmi := vmAndVMI([]kubevirtv1.Volume{root, dvVolume("data", true)}, []kubevirtv1.Volume{root})
		vols, disks := hotplugVolumes(vm, vmi)
		assert.Equal(t, []string{"root", "data"}, volNames(vols))
		assert.Len(t, disks, 2)
	})
	t.Run("an ordinary volume added to the template does not", func(t *testing.T) {
		vm, vmi := vmAndVMI([]kubevirtv1.Volume{root, dvVolume("data", false)}, []kubevirtv1.Volume{root})
		vols, _ := hotplugVolumes(vm, vmi)
		assert.Equal(t, []string{"root"}, volNames(vols))
	})
	t.Run("a hotplugged volume the template dropped leaves the VMI", func(t *testing.T) {
		vm, vmi := vmAndVMI([]kubevirtv1.Volume{root}, []kubevirtv1.Volume{root, dvVolume("data", true)})
		vols, disks := hotplugVolumes(vm, vmi)
		assert.Equal(t, []string{"root"}, volNames(vols))
		assert.Len(t, disks, 1)
	})
	t.Run("a volume still unplugging (status) is not added again", func(t *testing.T) {
		vm, vmi := vmAndVMI([]kubevirtv1.Volume{root, dvVolume("data", true)}, []kubevirtv1.Volume{root})
		vmi.Status.VolumeStatus = []kubevirtv1.VolumeStatus{{Name: "data", Phase: kubevirtv1.HotplugVolumeDetaching, HotplugVolume: &kubevirtv1.HotplugVolumeStatus{}}}
		vols, _ := hotplugVolumes(vm, vmi)
		assert.Equal(t, []string{"root"}, volNames(vols))
	})
}

// TestSyncInterfaces follows pkg/network/controllers/vm.go (v1.9.0).
func TestSyncInterfaces(t *testing.T) {
	bridge := func(name string, state kubevirtv1.InterfaceState) kubevirtv1.Interface {
		return kubevirtv1.Interface{Name: name, State: state, InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}}}
	}
	multus := func(name string) kubevirtv1.Network {
		return kubevirtv1.Network{Name: name, NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: name}}}
	}
	vm := &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{}}}
	vmi := &kubevirtv1.VirtualMachineInstance{}

	// Hotplug: a bridge interface the VMI lacks is added with its network;
	// a plugin-bound one is not.
	vm.Spec.Template.Spec.Domain.Devices.Interfaces = []kubevirtv1.Interface{bridge("a", ""), {Name: "m", Binding: &kubevirtv1.PluginBinding{Name: "macvtap"}}}
	vm.Spec.Template.Spec.Networks = []kubevirtv1.Network{multus("a"), multus("m")}
	ifaces, nets := syncInterfaces(vm, vmi, &vmi.Spec)
	assert.Equal(t, []kubevirtv1.Interface{bridge("a", "")}, ifaces)
	assert.Equal(t, []kubevirtv1.Network{multus("a")}, nets)

	// Unplug: the absent state is copied while the status lists it...
	vm.Spec.Template.Spec.Domain.Devices.Interfaces = []kubevirtv1.Interface{bridge("a", kubevirtv1.InterfaceStateAbsent)}
	vm.Spec.Template.Spec.Networks = []kubevirtv1.Network{multus("a")}
	vmi.Spec.Domain.Devices.Interfaces, vmi.Spec.Networks = ifaces, nets
	vmi.Status.Interfaces = []kubevirtv1.VirtualMachineInstanceNetworkInterface{{Name: "a"}}
	ifaces, _ = syncInterfaces(vm, vmi, &vmi.Spec)
	assert.Equal(t, []kubevirtv1.Interface{bridge("a", kubevirtv1.InterfaceStateAbsent)}, ifaces)
	// ...then dropped once the status no longer does, and from the VM once
	// the VMI has it nowhere.
	vmi.Spec.Domain.Devices.Interfaces = ifaces
	vmi.Status.Interfaces = nil
	ifaces, nets = syncInterfaces(vm, vmi, &vmi.Spec)
	assert.Empty(t, ifaces)
	assert.Empty(t, nets)
	tmplIfaces, _ := clearDetachedFromVM(vm, vmi)
	assert.Len(t, tmplIfaces, 1, "the VMI spec still has it")
	vmi.Spec.Domain.Devices.Interfaces, vmi.Spec.Networks = nil, nil
	tmplIfaces, tmplNets := clearDetachedFromVM(vm, vmi)
	assert.Empty(t, tmplIfaces)
	assert.Empty(t, tmplNets)
}

// TestDevicesNeedRestart: syncRestartRequired's volume and interface rules.
func TestDevicesNeedRestart(t *testing.T) {
	spec := func(vols []kubevirtv1.Volume, ifaces ...string) *kubevirtv1.VirtualMachineInstanceSpec {
		s := &kubevirtv1.VirtualMachineInstanceSpec{Volumes: vols}
		for _, n := range ifaces {
			s.Domain.Devices.Interfaces = append(s.Domain.Devices.Interfaces, kubevirtv1.Interface{Name: n})
			s.Networks = append(s.Networks, kubevirtv1.Network{Name: n})
		}
		return s
	}
	root := dvVolume("root", false)
	cases := []struct {
		name          string
		tmpl, running *kubevirtv1.VirtualMachineInstanceSpec
		want          bool
	}{
		{"unchanged", spec([]kubevirtv1.Volume{root}, "a"), spec([]kubevirtv1.Volume{root}, "a"), false},
		{"hotpluggable volume added", spec([]kubevirtv1.Volume{root, dvVolume("d", true)}), spec([]kubevirtv1.Volume{root}), false},
		{"ordinary volume added", spec([]kubevirtv1.Volume{root, dvVolume("d", false)}), spec([]kubevirtv1.Volume{root}), true},
		{"hotplugged volume removed", spec([]kubevirtv1.Volume{root}), spec([]kubevirtv1.Volume{root, dvVolume("d", true)}), false},
		{"volume from start removed", spec([]kubevirtv1.Volume{root}), spec([]kubevirtv1.Volume{root, dvVolume("d", false)}), true},
		{"interface added", spec(nil, "a", "b"), spec(nil, "a"), false},
		{"interface removed", spec(nil), spec(nil, "a"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, devicesNeedRestart(tc.tmpl, tc.running))
		})
	}
}

// TestWithHotplugStatus: hotplug fields survive the claim status rewrite;
// a new hotpluggable volume starts Bound; an unplugged one stays listed.
func TestWithHotplugStatus(t *testing.T) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	vmi.Spec.Volumes = []kubevirtv1.Volume{dvVolume("root", false), dvVolume("a", true), dvVolume("b", true)}
	vmi.Status.VolumeStatus = []kubevirtv1.VolumeStatus{
		{Name: "a", Phase: kubevirtv1.VolumeReady, Target: "vdb", HotplugVolume: &kubevirtv1.HotplugVolumeStatus{AttachPodName: "hp-volume-a"}},
		{Name: "old", Phase: kubevirtv1.HotplugVolumeDetaching, HotplugVolume: &kubevirtv1.HotplugVolumeStatus{}},
	}
	claims := []kubevirtv1.VolumeStatus{
		{Name: "root", PersistentVolumeClaimInfo: &kubevirtv1.PersistentVolumeClaimInfo{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}},
		{Name: "a"}, {Name: "b"},
	}
	got := withHotplugStatus(vmi, claims)
	byName := map[string]kubevirtv1.VolumeStatus{}
	var names []string
	for _, s := range got {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{"a", "b", "old", "root"}, names, "sorted by name")
	assert.Nil(t, byName["root"].HotplugVolume, "permanent")
	assert.Equal(t, kubevirtv1.VolumeReady, byName["a"].Phase)
	assert.Equal(t, "vdb", byName["a"].Target)
	assert.Equal(t, kubevirtv1.VolumeBound, byName["b"].Phase)
	assert.NotNil(t, byName["b"].HotplugVolume)
	assert.Equal(t, kubevirtv1.HotplugVolumeDetaching, byName["old"].Phase)
}

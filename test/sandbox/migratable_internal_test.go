package sandbox

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// TestLiveMigratable checks the LiveMigratable condition and migration
// method against virt-handler's calculateLiveMigrationCondition
// (pkg/virt-handler/vm.go, KubeVirt v1.9.0) and the cases of its unit
// tests (pkg/virt-handler/vm_test.go "LiveMigratable condition").
func TestLiveMigratable(t *testing.T) {
	masquerade := kubevirtv1.Interface{Name: "default", InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}}}
	bridge := kubevirtv1.Interface{Name: "default", InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}}}
	plugin := kubevirtv1.Interface{Name: "default", Binding: &kubevirtv1.PluginBinding{Name: "mig"}}
	podNet := kubevirtv1.Network{Name: "default", NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}}
	claim := func(name string, modes ...corev1.PersistentVolumeAccessMode) (kubevirtv1.Volume, kubevirtv1.VolumeStatus) {
		return kubevirtv1.Volume{Name: name, VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: name + "-dv"}}},
			kubevirtv1.VolumeStatus{Name: name, PersistentVolumeClaimInfo: &kubevirtv1.PersistentVolumeClaimInfo{ClaimName: name + "-dv", AccessModes: modes}}
	}
	type want struct {
		status kubevirtv1.VirtualMachineInstanceCondition
		method kubevirtv1.VirtualMachineInstanceMigrationMethod
	}
	ok := kubevirtv1.VirtualMachineInstanceCondition{Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionTrue}
	not := func(reason, msg string) kubevirtv1.VirtualMachineInstanceCondition {
		return kubevirtv1.VirtualMachineInstanceCondition{Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
	}
	rwx, rwxStatus := claim("data", corev1.ReadWriteMany)
	rwo, rwoStatus := claim("root", corev1.ReadWriteOnce)
	cases := []struct {
		name     string
		iface    kubevirtv1.Interface
		annotate bool
		volumes  []kubevirtv1.Volume
		statuses []kubevirtv1.VolumeStatus
		cdrom    bool
		gpu      bool
		want     want
	}{
		{name: "masquerade, no volumes", iface: masquerade, want: want{ok, kubevirtv1.LiveMigration}},
		{name: "RWX DataVolume", iface: masquerade, volumes: []kubevirtv1.Volume{rwx}, statuses: []kubevirtv1.VolumeStatus{rwxStatus},
			want: want{ok, kubevirtv1.LiveMigration}},
		{name: "RWO DataVolume is not shared", iface: masquerade, volumes: []kubevirtv1.Volume{rwx, rwo}, statuses: []kubevirtv1.VolumeStatus{rwxStatus, rwoStatus},
			want: want{not(kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable,
				"cannot migrate VMI: PVC root-dv is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)"), kubevirtv1.BlockMigration}},
		{name: "claim without volume status", iface: masquerade, volumes: []kubevirtv1.Volume{rwx},
			want: want{not(kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable,
				"cannot migrate VMI: Unable to determine if PVC data-dv is shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)"), kubevirtv1.BlockMigration}},
		{name: "container disk: block migration, still migratable", iface: masquerade,
			volumes: []kubevirtv1.Volume{{Name: "os", VolumeSource: kubevirtv1.VolumeSource{ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: "x"}}}},
			want:    want{ok, kubevirtv1.BlockMigration}},
		{name: "read-only CD-ROM does not block", iface: masquerade, cdrom: true,
			volumes: []kubevirtv1.Volume{{Name: "os", VolumeSource: kubevirtv1.VolumeSource{ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: "x"}}}},
			want:    want{ok, kubevirtv1.LiveMigration}},
		{name: "bridge on the pod network", iface: bridge,
			want: want{not(kubevirtv1.VirtualMachineInstanceReasonInterfaceNotMigratable, MessageInterfaceNotMigratable), kubevirtv1.LiveMigration}},
		{name: "bridge allowed by annotation", iface: bridge, annotate: true, want: want{ok, kubevirtv1.LiveMigration}},
		{name: "interface wins over disks", iface: bridge, volumes: []kubevirtv1.Volume{rwo}, statuses: []kubevirtv1.VolumeStatus{rwoStatus},
			want: want{not(kubevirtv1.VirtualMachineInstanceReasonInterfaceNotMigratable, MessageInterfaceNotMigratable), kubevirtv1.BlockMigration}},
		{name: "binding plugin without migration", iface: plugin,
			want: want{not(kubevirtv1.VirtualMachineInstanceReasonInterfaceNotMigratable, MessageInterfaceNotMigratable), kubevirtv1.LiveMigration}},
		{name: "GPU without the feature gate", iface: masquerade, gpu: true,
			want: want{not(kubevirtv1.VirtualMachineInstanceReasonHostDeviceNotMigratable, "VMI specifies a GPU but feature gate VGPULiveMigration is not enabled"), kubevirtv1.LiveMigration}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vmi := &kubevirtv1.VirtualMachineInstance{}
			vmi.Spec.Domain.Devices.Interfaces = []kubevirtv1.Interface{tc.iface}
			vmi.Spec.Networks = []kubevirtv1.Network{podNet}
			vmi.Spec.Volumes = tc.volumes
			vmi.Status.VolumeStatus = tc.statuses
			if tc.annotate {
				vmi.Annotations = map[string]string{kubevirtv1.AllowPodBridgeNetworkLiveMigrationAnnotation: ""}
			}
			if tc.cdrom {
				vmi.Spec.Domain.Devices.Disks = []kubevirtv1.Disk{{Name: "os", DiskDevice: kubevirtv1.DiskDevice{CDRom: &kubevirtv1.CDRomTarget{ReadOnly: ptr.To(true)}}}}
			}
			if tc.gpu {
				vmi.Spec.Domain.Devices.GPUs = []kubevirtv1.GPU{{Name: "gpu", DeviceName: "nvidia.com/GP"}}
			}
			cond, method := liveMigratable(vmi, map[string]kubevirtv1.InterfaceBindingPlugin{"mig": {}}, nil)
			if diff := cmp.Diff(tc.want, want{cond, method}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("liveMigratable (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEvictionStrategy checks migrations.VMIEvictionStrategy and
// VMIMigratableOnEviction (pkg/util/migrations/migrations.go).
func TestEvictionStrategy(t *testing.T) {
	none, live, ifPossible, external := kubevirtv1.EvictionStrategyNone, kubevirtv1.EvictionStrategyLiveMigrate,
		kubevirtv1.EvictionStrategyLiveMigrateIfPossible, kubevirtv1.EvictionStrategyExternal
	migratable := []kubevirtv1.VirtualMachineInstanceCondition{{Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionTrue}}
	cases := []struct {
		name       string
		cluster    kubevirtv1.EvictionStrategy
		vmi        *kubevirtv1.EvictionStrategy
		migratable bool
		want       bool
	}{
		{"cluster default None", none, nil, true, false},
		{"cluster LiveMigrate", live, nil, false, true},
		{"VMI None over cluster LiveMigrate", live, &none, true, false},
		{"VMI LiveMigrateIfPossible, migratable", none, &ifPossible, true, true},
		{"VMI LiveMigrateIfPossible, not migratable", none, &ifPossible, false, false},
		{"External never migrates", none, &external, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vmi := &kubevirtv1.VirtualMachineInstance{}
			vmi.Spec.EvictionStrategy = tc.vmi
			if tc.migratable {
				vmi.Status.Conditions = migratable
			}
			cfg := clusterConfig{eviction: &tc.cluster}
			if got := cfg.migratableOnEviction(vmi); got != tc.want {
				t.Errorf("migratableOnEviction = %v, want %v (strategy %v)", got, tc.want, *cfg.evictionStrategy(vmi))
			}
		})
	}
}

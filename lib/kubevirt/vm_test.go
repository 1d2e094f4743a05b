package kubevirt

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/apply"
)

func testOwner() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "3c7d1a9e-0000-4000-8000-000000000001"},
	}
}

func baseMachine() Machine {
	return Machine{
		Name:       "web",
		CPU:        2,
		Memory:     resource.MustParse("4096Mi"),
		PodNetwork: true,
		Disks:      []Disk{{Name: "root", ClaimName: "web-root", Boot: true}},
	}
}

func with(f func(*Machine)) Machine {
	m := baseMachine()
	f(&m)
	return m
}

// requireInvalid requires err to be an *InvalidInputError naming field
// and returns its message.
func requireInvalid(t *testing.T, err error, field string) string {
	t.Helper()
	var inv *InvalidInputError
	require.True(t, errors.As(err, &inv), "want *InvalidInputError, got %v", err)
	assert.Equal(t, field, inv.Field)
	return inv.Message
}

func diskNames(vm *kubevirtv1.VirtualMachine) []string {
	var out []string
	for _, d := range vm.Spec.Template.Spec.Domain.Devices.Disks {
		out = append(out, d.Name)
	}
	return out
}

func volume(t *testing.T, vm *kubevirtv1.VirtualMachine, name string) kubevirtv1.Volume {
	t.Helper()
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return kubevirtv1.Volume{}
}

func TestBuildVM(t *testing.T) {
	tests := []struct {
		name  string
		m     Machine
		check func(t *testing.T, vm *kubevirtv1.VirtualMachine)
	}{
		{
			name: "minimal machine: metadata, run strategy, cpu, memory, boot disk, cloud-init, pod network",
			m:    baseMachine(),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, "web", vm.Name)
				assert.Equal(t, "prod", vm.Namespace)
				want := map[string]string{apply.LabelManagedBy: "wukong", testID.OwnerLabelKey(): "web"}
				assert.Equal(t, want, vm.Labels)
				assert.Equal(t, want, vm.Spec.Template.ObjectMeta.Labels)
				require.Len(t, vm.OwnerReferences, 1)
				ref := vm.OwnerReferences[0]
				assert.Equal(t, "v1", ref.APIVersion)
				assert.Equal(t, "ConfigMap", ref.Kind)
				assert.Equal(t, "web", ref.Name)
				assert.True(t, *ref.Controller)
				assert.Nil(t, vm.Spec.Running, "deprecated spec.running must never be set")
				require.NotNil(t, vm.Spec.RunStrategy)
				assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
				assert.Equal(t, map[string]string{testID.Key(KeyAppliedRunStrategy): "Always"}, vm.Annotations,
					"the applied run strategy is recorded")

				d := vm.Spec.Template.Spec.Domain
				assert.Equal(t, kubevirtv1.CPU{Sockets: 2, Cores: 1, Threads: 1}, *d.CPU, "cpu as sockets, KubeVirt's hot-pluggable unit")
				assert.Equal(t, "4Gi", d.Memory.Guest.String())
				assert.Nil(t, d.Memory.MaxGuest, "KubeVirt's VMI mutator sets the maximum")
				assert.Empty(t, d.Resources.Requests, "no memory request: KubeVirt requests the guest memory, and a request is not live-updatable")

				assert.Equal(t, []string{"root", CloudInitDiskName}, diskNames(vm))
				for _, disk := range d.Devices.Disks {
					assert.Equal(t, kubevirtv1.DiskBusVirtio, disk.Disk.Bus, disk.Name)
				}
				require.NotNil(t, d.Devices.Disks[0].BootOrder)
				assert.Equal(t, uint(1), *d.Devices.Disks[0].BootOrder)
				assert.Nil(t, d.Devices.Disks[1].BootOrder)
				assert.Equal(t, "web-root", volume(t, vm, "root").PersistentVolumeClaim.ClaimName)
				ci := volume(t, vm, CloudInitDiskName).CloudInitNoCloud
				require.NotNil(t, ci)
				assert.Equal(t, "web-cloudinit", ci.UserDataSecretRef.Name)
				assert.Equal(t, "web-cloudinit", ci.NetworkDataSecretRef.Name)
				assert.Empty(t, ci.UserData)

				require.Len(t, d.Devices.Interfaces, 1)
				assert.Equal(t, PodNetworkName, d.Devices.Interfaces[0].Name)
				assert.NotNil(t, d.Devices.Interfaces[0].Masquerade)
				assert.Equal(t, PodNetworkMAC("prod", "web"), d.Devices.Interfaces[0].MacAddress)
				require.Len(t, vm.Spec.Template.Spec.Networks, 1)
				assert.NotNil(t, vm.Spec.Template.Spec.Networks[0].Pod)
				assert.Nil(t, d.Devices.AutoattachPodInterface)
				assert.Nil(t, vm.Spec.Template.Spec.Affinity)
			},
		},
		{
			name: "boot disk is moved first, others keep their order; DataVolume source",
			m: with(func(m *Machine) {
				m.Disks = []Disk{
					{Name: "data", ClaimName: "web-data"},
					{Name: "logs", ClaimName: "web-logs", DataVolume: true},
					{Name: "root", ClaimName: "web-root", DataVolume: true, Boot: true},
				}
			}),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, []string{"root", "data", "logs", CloudInitDiskName}, diskNames(vm))
				assert.Equal(t, uint(1), *vm.Spec.Template.Spec.Domain.Devices.Disks[0].BootOrder)
				assert.Nil(t, vm.Spec.Template.Spec.Domain.Devices.Disks[1].BootOrder)
				assert.Equal(t, "web-root", volume(t, vm, "root").DataVolume.Name)
				assert.Nil(t, volume(t, vm, "root").PersistentVolumeClaim)
				assert.Equal(t, "web-logs", volume(t, vm, "logs").DataVolume.Name)
				assert.Equal(t, "web-data", volume(t, vm, "data").PersistentVolumeClaim.ClaimName)
			},
		},
		{
			name: "no boot flag: first disk boots",
			m: with(func(m *Machine) {
				m.Disks = []Disk{{Name: "a", ClaimName: "ca"}, {Name: "b", ClaimName: "cb"}}
			}),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, []string{"a", "b", CloudInitDiskName}, diskNames(vm))
				assert.Equal(t, uint(1), *vm.Spec.Template.Spec.Domain.Devices.Disks[0].BootOrder)
			},
		},
		{
			name: "container disk when there are no disks",
			m: with(func(m *Machine) {
				m.Disks = nil
				m.ContainerDiskImage = "quay.io/containerdisks/fedora:41"
			}),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, []string{ContainerDiskName, CloudInitDiskName}, diskNames(vm))
				assert.Equal(t, uint(1), *vm.Spec.Template.Spec.Domain.Devices.Disks[0].BootOrder)
				assert.Equal(t, "quay.io/containerdisks/fedora:41", volume(t, vm, ContainerDiskName).ContainerDisk.Image)
			},
		},
		{
			name: "container disk ignored when disks exist",
			m:    with(func(m *Machine) { m.ContainerDiskImage = "quay.io/x:1" }),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, []string{"root", CloudInitDiskName}, diskNames(vm))
			},
		},
		{
			name: "multus NICs: bridge and sriov with canonical MACs, no pod network",
			m: with(func(m *Machine) {
				m.PodNetwork = false
				m.NICs = []NIC{
					{Name: "lan", NAD: "net/lan", MAC: "02:AA:BB:CC:DD:01"},
					{Name: "fast", NAD: "net/sriov", MAC: "02-aa-bb-cc-dd-02", Binding: BindingSRIOV},
					{Name: "nomac", NAD: "other", Binding: BindingBridge},
				}
			}),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				spec := vm.Spec.Template.Spec
				require.NotNil(t, spec.Domain.Devices.AutoattachPodInterface)
				assert.False(t, *spec.Domain.Devices.AutoattachPodInterface)
				ifs := spec.Domain.Devices.Interfaces
				require.Len(t, ifs, 3)
				assert.Equal(t, "lan", ifs[0].Name)
				assert.NotNil(t, ifs[0].Bridge)
				assert.Equal(t, "02:aa:bb:cc:dd:01", ifs[0].MacAddress)
				assert.NotNil(t, ifs[1].SRIOV)
				assert.Nil(t, ifs[1].Bridge)
				assert.Equal(t, "02:aa:bb:cc:dd:02", ifs[1].MacAddress)
				assert.NotNil(t, ifs[2].Bridge)
				assert.Empty(t, ifs[2].MacAddress)
				require.Len(t, spec.Networks, 3)
				assert.Equal(t, "net/lan", spec.Networks[0].Multus.NetworkName)
				assert.Equal(t, "net/sriov", spec.Networks[1].Multus.NetworkName)
				assert.Equal(t, "other", spec.Networks[2].Multus.NetworkName)
				for _, n := range spec.Networks {
					assert.Nil(t, n.Pod)
				}
			},
		},
		{
			// KubeVirt user guide, macvtap binding: `binding: {name: macvtap}` and
			// no core binding method (the admitter refuses both at once).
			name: "macvtap NIC uses the macvtap binding plugin, never the bridge binding",
			m: with(func(m *Machine) {
				m.NICs = []NIC{{Name: "lan", NAD: "net/lan-tap", MAC: "02:aa:bb:cc:dd:03", Binding: BindingMacvtap}}
			}),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				ifs := vm.Spec.Template.Spec.Domain.Devices.Interfaces
				require.Len(t, ifs, 2)
				assert.Equal(t, "lan", ifs[1].Name)
				assert.Equal(t, &kubevirtv1.PluginBinding{Name: "macvtap"}, ifs[1].Binding)
				assert.Equal(t, kubevirtv1.InterfaceBindingMethod{}, ifs[1].InterfaceBindingMethod, "no bridge, sriov or masquerade")
				assert.Equal(t, "02:aa:bb:cc:dd:03", ifs[1].MacAddress)
				assert.Equal(t, "net/lan-tap", vm.Spec.Template.Spec.Networks[1].Multus.NetworkName)
			},
		},
		{
			name: "halted machine: run strategy and its annotation",
			m:    with(func(m *Machine) { m.RunStrategy = kubevirtv1.RunStrategyHalted }),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				require.NotNil(t, vm.Spec.RunStrategy)
				assert.Equal(t, kubevirtv1.RunStrategyHalted, *vm.Spec.RunStrategy)
				assert.Equal(t, "Halted", vm.Annotations[testID.Key(KeyAppliedRunStrategy)])
			},
		},
		{
			name: "pod network first, then multus NICs",
			m:    with(func(m *Machine) { m.NICs = []NIC{{Name: "lan", NAD: "net/lan"}} }),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				ifs := vm.Spec.Template.Spec.Domain.Devices.Interfaces
				require.Len(t, ifs, 2)
				assert.Equal(t, PodNetworkName, ifs[0].Name)
				assert.Equal(t, "lan", ifs[1].Name)
			},
		},
		{
			name: "anti-affinity: template label and a required term over the own namespace only",
			m:    with(func(m *Machine) { m.AntiAffinity = true }),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, "true", vm.Spec.Template.ObjectMeta.Labels[testID.Key(KeyAntiAffinity)])
				assert.NotContains(t, vm.Labels, testID.Key(KeyAntiAffinity))
				aff := vm.Spec.Template.Spec.Affinity
				require.NotNil(t, aff)
				want := &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{testID.Key(KeyAntiAffinity): "true"}},
					TopologyKey:   "kubernetes.io/hostname",
				}}}
				assert.Equal(t, want, aff.PodAntiAffinity)
				// "null or empty namespaces list and null namespaceSelector
				// means this pod's namespace": an empty selector ({}) would
				// span every namespace.
				term := aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
				assert.Nil(t, term.NamespaceSelector, "namespaceSelector")
				assert.Empty(t, term.Namespaces, "namespaces")
				assert.Nil(t, aff.NodeAffinity)
				assert.Nil(t, aff.PodAffinity)
			},
		},
		{
			name: "anti-affinity group: the label value and the selector are the group",
			m:    with(func(m *Machine) { m.AntiAffinity, m.AntiAffinityGroup = true, "db-primary" }),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, "db-primary", vm.Spec.Template.ObjectMeta.Labels[testID.Key(KeyAntiAffinity)])
				terms := vm.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
				require.Len(t, terms, 1)
				assert.Equal(t, map[string]string{testID.Key(KeyAntiAffinity): "db-primary"}, terms[0].LabelSelector.MatchLabels)
				assert.Nil(t, terms[0].NamespaceSelector)
				assert.Empty(t, terms[0].Namespaces)
			},
		},
		{
			name: "anti-affinity preferred: one weighted term, nothing required",
			m: with(func(m *Machine) {
				m.AntiAffinity, m.AntiAffinityPreferred, m.AntiAffinityGroup = true, true, "web"
			}),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, "web", vm.Spec.Template.ObjectMeta.Labels[testID.Key(KeyAntiAffinity)])
				want := &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 100,
					PodAffinityTerm: corev1.PodAffinityTerm{
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{testID.Key(KeyAntiAffinity): "web"}},
						TopologyKey:   "kubernetes.io/hostname",
					},
				}}}
				assert.Equal(t, want, vm.Spec.Template.Spec.Affinity.PodAntiAffinity)
			},
		},
		{
			name: "no anti-affinity: no label, no affinity, whatever the group and mode say",
			m:    with(func(m *Machine) { m.AntiAffinityGroup, m.AntiAffinityPreferred = "web", true }),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.NotContains(t, vm.Spec.Template.ObjectMeta.Labels, testID.Key(KeyAntiAffinity))
				assert.Nil(t, vm.Spec.Template.Spec.Affinity)
			},
		},
		{
			name: "node selector, tolerations and run strategy are copied",
			m: with(func(m *Machine) {
				m.RunStrategy = kubevirtv1.RunStrategyHalted
				m.NodeSelector = map[string]string{"zone": "a", "disk": "ssd"}
				m.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "vm", Effect: corev1.TaintEffectNoSchedule}}
			}),
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, kubevirtv1.RunStrategyHalted, *vm.Spec.RunStrategy)
				assert.Equal(t, map[string]string{"zone": "a", "disk": "ssd"}, vm.Spec.Template.Spec.NodeSelector)
				require.Len(t, vm.Spec.Template.Spec.Tolerations, 1)
				assert.Equal(t, "dedicated", vm.Spec.Template.Spec.Tolerations[0].Key)
			},
		},
		{
			name: "owner without TypeMeta gets no owner reference",
			m:    baseMachine(),
			check: func(t *testing.T, _ *kubevirtv1.VirtualMachine) {
				o := testOwner()
				o.TypeMeta = metav1.TypeMeta{}
				assert.Empty(t, BuildVM(testID, o, baseMachine()).OwnerReferences)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := BuildVM(testID, testOwner(), tt.m)
			tt.check(t, vm)
			// Deterministic: building again gives the same bytes.
			a, err := json.Marshal(vm)
			require.NoError(t, err)
			b, err := json.Marshal(BuildVM(testID, testOwner(), tt.m))
			require.NoError(t, err)
			assert.Equal(t, string(a), string(b))
		})
	}
}

func TestBuildVMDoesNotAliasInput(t *testing.T) {
	m := with(func(m *Machine) {
		m.NodeSelector = map[string]string{"zone": "a"}
		m.Tolerations = []corev1.Toleration{{Key: "k"}}
	})
	vm := BuildVM(testID, testOwner(), m)
	m.NodeSelector["zone"] = "b"
	m.Tolerations[0].Key = "changed"
	assert.Equal(t, "a", vm.Spec.Template.Spec.NodeSelector["zone"])
	assert.Equal(t, "k", vm.Spec.Template.Spec.Tolerations[0].Key)
}

func TestPodNetworkMAC(t *testing.T) {
	a := PodNetworkMAC("prod", "web")
	assert.Equal(t, a, PodNetworkMAC("prod", "web"))
	assert.NotEqual(t, a, PodNetworkMAC("prod", "db"))
	assert.NotEqual(t, a, PodNetworkMAC("dev", "web"))
	assert.Regexp(t, `^[0-9a-f][26ae](:[0-9a-f]{2}){5}$`, a, "locally administered unicast")
}

// validateCase is a Machine and the field Validate names, "" for a valid one.
type validateCase struct {
	name      string
	m         Machine
	wantField string
}

// testValidate runs Validate on each case: nil for a valid one, else an
// *InvalidInputError naming wantField.
func testValidate(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			requireInvalid(t, err, tt.wantField)
		})
	}
}

func TestValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", baseMachine(), ""},
		{"valid container disk", with(func(m *Machine) { m.Disks = nil; m.ContainerDiskImage = "img" }), ""},
		{"empty name", with(func(m *Machine) { m.Name = "" }), "name"},
		{"no cpu", with(func(m *Machine) { m.CPU = 0 }), "cpu"},
		{"no memory", with(func(m *Machine) { m.Memory = resource.Quantity{} }), "memory"},
		{"bad run strategy", with(func(m *Machine) { m.RunStrategy = "Sometimes" }), "runStrategy"},
		{"no disk at all", with(func(m *Machine) { m.Disks = nil }), "disks"},
		{"duplicate disk", with(func(m *Machine) { m.Disks = append(m.Disks, Disk{Name: "root", ClaimName: "x"}) }), "disks[1].name"},
		{"disk named like cloud-init", with(func(m *Machine) { m.Disks[0].Name = CloudInitDiskName }), "disks[0].name"},
		{"disk without claim", with(func(m *Machine) { m.Disks[0].ClaimName = "" }), "disks[0].claimName"},
		{"two boot disks", with(func(m *Machine) { m.Disks = append(m.Disks, Disk{Name: "b", ClaimName: "x", Boot: true}) }), "disks"},
		{"nic named default", with(func(m *Machine) { m.NICs = []NIC{{Name: "default", NAD: "a/b"}} }), "nics[0].name"},
		{"nic without NAD", with(func(m *Machine) { m.NICs = []NIC{{Name: "lan"}} }), "nics[0].nad"},
		{"bad MAC", with(func(m *Machine) { m.NICs = []NIC{{Name: "lan", NAD: "a/b", MAC: "zz"}} }), "nics[0].mac"},
		{"bad binding", with(func(m *Machine) { m.NICs = []NIC{{Name: "lan", NAD: "a/b", Binding: "passt"}} }), "nics[0].binding"},
		{"macvtap binding", with(func(m *Machine) { m.NICs = []NIC{{Name: "lan", NAD: "a/b", Binding: BindingMacvtap}} }), ""},
		{"anti-affinity group", with(func(m *Machine) { m.AntiAffinity, m.AntiAffinityGroup = true, "db_1.a" }), ""},
		{"anti-affinity group not a label value", with(func(m *Machine) { m.AntiAffinity, m.AntiAffinityGroup = true, "a b" }), "antiAffinityGroup"},
		{"eviction strategy", with(func(m *Machine) { m.EvictionStrategy = kubevirtv1.EvictionStrategyLiveMigrateIfPossible }), ""},
		{"bad eviction strategy", with(func(m *Machine) { m.EvictionStrategy = "Migrate" }), "evictionStrategy"},
	})
}

// The eviction strategy is KubeVirt's VMI field; without one the VM leaves
// it unset, so the KubeVirt CR's spec.configuration.evictionStrategy
// applies (the JSON has no evictionStrategy key at all).
func TestBuildVMEvictionStrategy(t *testing.T) {
	for _, es := range []kubevirtv1.EvictionStrategy{
		kubevirtv1.EvictionStrategyNone, kubevirtv1.EvictionStrategyLiveMigrate,
		kubevirtv1.EvictionStrategyLiveMigrateIfPossible, kubevirtv1.EvictionStrategyExternal,
	} {
		vm := BuildVM(testID, testOwner(), with(func(m *Machine) { m.EvictionStrategy = es }))
		require.NotNil(t, vm.Spec.Template.Spec.EvictionStrategy, es)
		assert.Equal(t, es, *vm.Spec.Template.Spec.EvictionStrategy)
	}
	vm := BuildVM(testID, testOwner(), baseMachine())
	assert.Nil(t, vm.Spec.Template.Spec.EvictionStrategy)
	raw, err := json.Marshal(vm)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "evictionStrategy")
}

// Nothing BuildVM writes pins the instance to a node: a migration (virtctl
// migrate, a drain) moves the VMI and its pod, and the next apply of the
// same Machine must not write anything that would move it back.
func TestBuildVMHasNoPlacementOfTheInstance(t *testing.T) {
	vm := BuildVM(testID, testOwner(), baseMachine())
	raw, err := json.Marshal(vm)
	require.NoError(t, err)
	for _, key := range []string{"nodeName", "migration", "evacuationNodeName"} {
		assert.NotContains(t, string(raw), key)
	}
	assert.Nil(t, vm.Spec.Template.Spec.NodeSelector)
	assert.Nil(t, vm.Spec.Template.Spec.Affinity)
}

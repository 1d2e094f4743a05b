package sandbox_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/test/sandbox"
)

// TestAdmissionRunsRealCode: both admission servers run here; a sandbox
// without them would admit everything the tests below expect refused.
func TestAdmissionRunsRealCode(t *testing.T) {
	assert.Empty(t, sb.AdmissionUnavailable, "the sandbox runs without KubeVirt's or CDI's admission")
}

func withInterface(iface kubevirtv1.Interface) func(*kubevirtv1.VirtualMachine) {
	return func(v *kubevirtv1.VirtualMachine) {
		d := &v.Spec.Template.Spec.Domain.Devices
		d.Interfaces = append(d.Interfaces, iface)
	}
}

func withNetwork(n kubevirtv1.Network) func(*kubevirtv1.VirtualMachine) {
	return func(v *kubevirtv1.VirtualMachine) {
		v.Spec.Template.Spec.Networks = append(v.Spec.Template.Spec.Networks, n)
	}
}

func multus(name, nad string) kubevirtv1.Network {
	return kubevirtv1.Network{Name: name, NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: nad}}}
}

func bridge(name string) kubevirtv1.Interface {
	return kubevirtv1.Interface{Name: name, InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}}}
}

func bootOrder(name string, order uint) func(*kubevirtv1.VirtualMachine) {
	return func(v *kubevirtv1.VirtualMachine) {
		for i := range v.Spec.Template.Spec.Domain.Devices.Disks {
			if d := &v.Spec.Template.Spec.Domain.Devices.Disks[i]; d.Name == name {
				d.BootOrder = ptr.To(order)
			}
		}
	}
}

func containerDisk(image string) kubevirtv1.VolumeSource {
	return kubevirtv1.VolumeSource{ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: image}}
}

// vmi is the VMI a user would create directly from vm's template.
func vmi(v *kubevirtv1.VirtualMachine) *kubevirtv1.VirtualMachineInstance {
	return &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{Name: v.Name, Namespace: v.Namespace},
		Spec:       *v.Spec.Template.Spec.DeepCopy(),
	}
}

// TestAdmissionRefusesWhatRealSystemsRefuse feeds the sandbox objects
// KubeVirt's and CDI's admission refuse on a real cluster and expects their
// webhooks' own messages (kubevirt.io/kubevirt pkg/network/admitter,
// pkg/storage/admitters, pkg/virt-api/webhooks/validating-webhook/admitters;
// containerized-data-importer pkg/apiserver/webhooks).
func TestAdmissionRefusesWhatRealSystemsRefuse(t *testing.T) {
	ns := namespace(t)
	const (
		vmWebhook  = `admission webhook "virtualmachine-validator.kubevirt.io" denied the request: `
		vmiWebhook = `admission webhook "virtualmachineinstances-create-validator.kubevirt.io" denied the request: `
		dvWebhook  = `admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request: `
	)
	invalidURL := httpDV(ns, "bad-url", sandbox.StorageClassStandard, "not a url")
	ftpURL := httpDV(ns, "ftp-url", sandbox.StorageClassStandard, "ftp://images.example.com/disk.qcow2")
	noSource := httpDV(ns, "no-source", sandbox.StorageClassStandard, "")
	noSource.Spec.Source = nil
	twoSources := httpDV(ns, "two-sources", sandbox.StorageClassStandard, "https://images.example.com/disk.qcow2")
	twoSources.Spec.Source.Blank = &cdiv1.DataVolumeBlankImage{}
	noRunStrategy := vm(ns, "no-run-strategy")
	noRunStrategy.Spec.RunStrategy = nil

	for _, tc := range []struct {
		name string
		obj  client.Object
		want string
	}{{
		name: "VM interface without a network",
		obj:  vm(ns, "iface-no-net", withInterface(bridge("data"))),
		want: vmWebhook + "spec.template.spec.domain.devices.interfaces[1].name 'data' not found.",
	}, {
		name: "VM network without an interface",
		obj:  vm(ns, "net-no-iface", withNetwork(multus("data", "br1"))),
		want: vmWebhook + "spec.template.spec.networks[1].name 'data' not found.",
	}, {
		name: "VM with duplicate disk names",
		obj: vm(ns, "dup-disks", withVolume("root", containerDisk("quay.io/containerdisks/fedora:41")),
			func(v *kubevirtv1.VirtualMachine) {
				d := &v.Spec.Template.Spec.Domain.Devices
				d.Disks = append(d.Disks, kubevirtv1.Disk{Name: "root"})
			}),
		want: vmWebhook + "spec.template.spec.domain.devices.disks[1] and spec.template.spec.domain.devices.disks[0] must not have the same Name.",
	}, {
		name: "VM disk without a volume",
		obj: vm(ns, "disk-no-volume", func(v *kubevirtv1.VirtualMachine) {
			d := &v.Spec.Template.Spec.Domain.Devices
			d.Disks = append(d.Disks, kubevirtv1.Disk{Name: "data"})
		}),
		want: vmWebhook + "spec.template.spec.domain.devices.disks[0].Name 'data' not found.",
	}, {
		name: "VM masquerade on a Multus network",
		obj: vm(ns, "masquerade-multus", withNetwork(multus("data", "br1")), withInterface(kubevirtv1.Interface{
			Name: "data", InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}},
		})),
		want: "Masquerade interface only implemented with pod network",
	}, {
		name: "VM without a run strategy",
		obj:  noRunStrategy,
		want: vmWebhook + "RunStrategy must be specified",
	}, {
		name: "VMI with two boot disks of the same order",
		obj: vmi(vm(ns, "same-boot-order",
			withVolume("a", containerDisk("quay.io/containerdisks/fedora:41")),
			withVolume("b", containerDisk("quay.io/containerdisks/fedora:41")),
			bootOrder("a", 1), bootOrder("b", 1))),
		want: vmiWebhook + "Boot order for spec.domain.devices.disks[1].bootOrder already set for a different device.",
	}, {
		name: "DataVolume whose http source URL is not a URL",
		obj:  invalidURL,
		want: dvWebhook + " spec.source Invalid source URL: not a url",
	}, {
		name: "DataVolume with an ftp source URL",
		obj:  ftpURL,
		want: dvWebhook + " spec.source Invalid source URL scheme: ftp://images.example.com/disk.qcow2",
	}, {
		name: "DataVolume without a source",
		obj:  noSource,
		want: dvWebhook + " Data volume should have either Source or SourceRef, or be externally populated",
	}, {
		name: "DataVolume with two sources",
		obj:  twoSources,
		want: dvWebhook + " Multiple Data volume sources",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			err := sb.Client.Create(ctx, tc.obj)
			require.Error(t, err, "admitted")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestAdmissionKeepsSpecsAsRealSystemsDo: CDI refuses any change of a
// DataVolume's spec; KubeVirt refuses a user's change of a VMI's spec and
// reverts a user's change of its status (only KubeVirt's service accounts,
// here the simulators, write it).
func TestAdmissionKeepsSpecsAsRealSystemsDo(t *testing.T) {
	ns := namespace(t)
	dv := httpDV(ns, "image", sandbox.StorageClassStandard, "https://images.example.com/disk.qcow2")
	require.NoError(t, sb.Client.Create(ctx, dv))
	dv.Spec.Source.HTTP.URL = "https://images.example.com/other.qcow2"
	err := sb.Client.Update(ctx, dv)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request:  Cannot update DataVolume Spec`)

	inst := vmi(vm(ns, "standalone"))
	require.NoError(t, sb.Client.Create(ctx, inst))
	assert.Contains(t, inst.Finalizers, kubevirtv1.VirtualMachineInstanceFinalizer, "KubeVirt's VMI mutator adds its finalizer")
	assert.Equal(t, kubevirtv1.Pending, inst.Status.Phase, "KubeVirt's VMI mutator sets the phase")

	changed := inst.DeepCopy()
	changed.Spec.Domain.CPU.Cores = 4
	err = sb.Client.Update(ctx, changed)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `admission webhook "virtualmachineinstances-update-validator.kubevirt.io" denied the request: update of VMI object is restricted`)

	changed = inst.DeepCopy()
	changed.Status.Phase = kubevirtv1.Running
	require.NoError(t, sb.Client.Update(ctx, changed))
	assert.Equal(t, kubevirtv1.Pending, changed.Status.Phase, "a user's status change is reverted")

	// Deleted, the VMI is released as virt-controller releases it.
	require.NoError(t, sb.Client.Delete(ctx, inst))
	gone(t, inst)
}

// TestAdmissionMutatesAsRealSystemsDo: KubeVirt's VM mutator fills in the
// defaults a VM gets on a real cluster (firmware UUID and serial on
// create, architecture and machine type from the cluster config).
func TestAdmissionMutatesAsRealSystemsDo(t *testing.T) {
	ns := namespace(t)
	v := vm(ns, "defaults")
	require.NoError(t, sb.Client.Create(ctx, v))
	spec := v.Spec.Template.Spec
	require.NotNil(t, spec.Domain.Firmware)
	assert.NotEmpty(t, spec.Domain.Firmware.UUID)
	assert.NotEmpty(t, spec.Domain.Firmware.Serial)
	assert.Equal(t, "amd64", spec.Architecture)
	require.NotNil(t, spec.Domain.Machine)
	assert.Equal(t, "q35", spec.Domain.Machine.Type)
	eventually(t, v, vmRunning, "VM not running")
}

// TestAdmissionAcceptsBindingPlugin: an interface bound by the network
// binding plugin the sandbox's KubeVirt CR registers (macvtap) on a Multus
// network is admitted and runs.
func TestAdmissionAcceptsBindingPlugin(t *testing.T) {
	ns := namespace(t)
	v := vm(ns, "macvtap", withNetwork(multus("data", "macvtap-net")), withInterface(kubevirtv1.Interface{
		Name: "data", Binding: &kubevirtv1.PluginBinding{Name: sandbox.MacvtapBinding},
	}))
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, vmRunning, "VM not running")
}

// TestKubeVirtAndCDIResourcesAsInstalled: the CRDs are the ones
// virt-operator and cdi-operator install, so `kubectl get vm` (a short
// name expanded from discovery, as kubectl's RESTMapper does), the
// category `all` and the printer columns work as on a real cluster.
func TestKubeVirtAndCDIResourcesAsInstalled(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(sb.Config)
	require.NoError(t, err)
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)
	for short, want := range map[string]schema.GroupVersionResource{
		"vm":  {Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines"},
		"vms": {Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines"},
		"vmi": {Group: "kubevirt.io", Version: "v1", Resource: "virtualmachineinstances"},
		"kv":  {Group: "kubevirt.io", Version: "v1", Resource: "kubevirts"},
		"dv":  {Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "datavolumes"},
	} {
		got, err := mapper.ResourceFor(schema.GroupVersionResource{Resource: short})
		require.NoError(t, err, "kubectl get %s", short)
		assert.Equal(t, want, got, "kubectl get %s", short)
	}

	resources, err := dc.ServerResourcesForGroupVersion("kubevirt.io/v1")
	require.NoError(t, err)
	byName := map[string]metav1.APIResource{}
	for _, r := range resources.APIResources {
		byName[r.Name] = r
	}
	assert.Contains(t, byName["virtualmachines"].Categories, "all")
	assert.Contains(t, byName["virtualmachineinstances"].Categories, "all")
	assert.Contains(t, byName, "virtualmachines/status", "VMs have a status subresource")
	assert.NotContains(t, byName, "virtualmachineinstances/status", "KubeVirt's VMI CRD has no status subresource")

	// The columns `kubectl get vm` prints: the server renders a Table.
	ns := namespace(t)
	require.NoError(t, sb.Client.Create(ctx, vm(ns, "columns")))
	assert.Equal(t, []string{"Name", "Age", "Status", "Ready"}, tableColumns(t, "/apis/kubevirt.io/v1/namespaces/"+ns+"/virtualmachines"))
	dv := httpDV(ns, "columns", sandbox.StorageClassStandard, "https://images.example.com/disk.qcow2")
	require.NoError(t, sb.Client.Create(ctx, dv))
	assert.Equal(t, []string{"Name", "Phase", "Progress", "Restarts", "Age"}, tableColumns(t, "/apis/cdi.kubevirt.io/v1beta1/namespaces/"+ns+"/datavolumes"))
}

// tableColumns lists path as kubectl does (as a meta.k8s.io Table) and
// returns the names of the columns it prints by default (priority 0).
func tableColumns(t *testing.T, path string) []string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(sb.Config)
	require.NoError(t, err)
	body, err := cs.CoreV1().RESTClient().Get().AbsPath(path).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(context.Background())
	require.NoError(t, err)
	var table metav1.Table
	require.NoError(t, json.Unmarshal(body, &table))
	var names []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	require.NotEmpty(t, table.Rows)
	return names
}

// TestCDIConfigAsInstalled: CDI's webhook reads CDIConfig "config" (its
// feature gates) when a claim of a DataVolume's name exists, as
// cdi-operator creates it; a DataVolume over a foreign claim is refused.
func TestCDIConfigAsInstalled(t *testing.T) {
	ns := namespace(t)
	require.NoError(t, sb.Client.Create(ctx, pvc(ns, "taken", sandbox.StorageClassStandard, "1Gi")))
	dv := httpDV(ns, "taken", sandbox.StorageClassStandard, "https://images.example.com/disk.qcow2")
	dv.Spec.Storage.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	err := sb.Client.Create(ctx, dv)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Destination PVC "+ns+"/taken already exists")
}

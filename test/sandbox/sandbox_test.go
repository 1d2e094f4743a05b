package sandbox_test

import (
	"context"
	"fmt"
	"k8s.io/client-go/util/retry"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/novasphere/wukong/test/sandbox"
)

const (
	timeout = 30 * time.Second
	tick    = 50 * time.Millisecond
)

var (
	sb  *sandbox.Sandbox
	ctx = context.Background()
	nsN atomic.Int32
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // the simulators log through Options.LogWriter
	var err error
	sb, err = sandbox.Start(ctx, sandbox.Options{ImportInterval: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting sandbox:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := sb.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping sandbox:", err)
	}
	os.Exit(code)
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("t%d-%s", nsN.Add(1), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))}}
	if len(ns.Name) > 60 {
		ns.Name = ns.Name[:60]
	}
	ns.Name = strings.TrimRight(strings.ReplaceAll(ns.Name, "_", "-"), "-")
	require.NoError(t, sb.Client.Create(ctx, ns))
	return ns.Name
}

// eventually polls get until cond holds, failing with the last object seen.
func eventually[T client.Object](t *testing.T, obj T, cond func(T) bool, msg string) {
	t.Helper()
	require.Eventually(t, func() bool {
		if err := sb.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false
		}
		return cond(obj)
	}, timeout, tick, "%s; last seen: %+v", msg, obj)
}

func gone(t *testing.T, obj client.Object) {
	t.Helper()
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(sb.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj))
	}, timeout, tick, "%T %s still exists", obj, obj.GetName())
}

func pvc(ns, name, class, size string) *corev1.PersistentVolumeClaim {
	p := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	p.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	if class != "" {
		p.Spec.StorageClassName = ptr.To(class)
	}
	return p
}

func httpDV(ns, name, class, url string) *cdiv1.DataVolume {
	dv := &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	dv.Spec.Source = &cdiv1.DataVolumeSource{HTTP: &cdiv1.DataVolumeSourceHTTP{URL: url}}
	dv.Spec.Storage = &cdiv1.StorageSpec{
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}},
	}
	if class != "" {
		dv.Spec.Storage.StorageClassName = ptr.To(class)
	}
	return dv
}

// vm is a VirtualMachine with a pod NIC and no disks; options add more.
func vm(ns, name string, opts ...func(*kubevirtv1.VirtualMachine)) *kubevirtv1.VirtualMachine {
	v := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	v.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyAlways)
	v.Spec.Template = &kubevirtv1.VirtualMachineInstanceTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec: kubevirtv1.VirtualMachineInstanceSpec{
			Domain: kubevirtv1.DomainSpec{
				CPU:    &kubevirtv1.CPU{Cores: 2},
				Memory: &kubevirtv1.Memory{Guest: ptr.To(resource.MustParse("2Gi"))},
				Devices: kubevirtv1.Devices{Interfaces: []kubevirtv1.Interface{{
					Name: "default", InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}},
				}}},
			},
			Networks: []kubevirtv1.Network{{Name: "default", NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}}},
		},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func withVolume(name string, src kubevirtv1.VolumeSource) func(*kubevirtv1.VirtualMachine) {
	return func(v *kubevirtv1.VirtualMachine) {
		s := &v.Spec.Template.Spec
		s.Volumes = append(s.Volumes, kubevirtv1.Volume{Name: name, VolumeSource: src})
		s.Domain.Devices.Disks = append(s.Domain.Devices.Disks, kubevirtv1.Disk{Name: name})
	}
}

func pvcVolume(claim string) kubevirtv1.VolumeSource {
	return kubevirtv1.VolumeSource{PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{
		PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
	}}
}

func vmRunning(v *kubevirtv1.VirtualMachine) bool {
	return v.Status.Ready && v.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusRunning
}

func TestFixtures(t *testing.T) {
	nodes := &corev1.NodeList{}
	require.NoError(t, sb.Client.List(ctx, nodes))
	require.Len(t, nodes.Items, 3)
	assert.Equal(t, []string{"node-1", "node-2", "node-3"}, sb.Nodes)
	for _, n := range nodes.Items {
		assert.Equal(t, n.Name, n.Labels[corev1.LabelHostname])
		assert.Equal(t, "true", n.Annotations[sandbox.SimulatedAnnotation])
		require.NotEmpty(t, n.Status.Conditions)
		assert.Equal(t, corev1.ConditionTrue, n.Status.Conditions[0].Status)
	}
	assert.Equal(t, sandbox.TaintKey, nodes.Items[2].Spec.Taints[0].Key)

	// The kubeconfig file works for clients such as kubectl.
	cfg, err := clientcmd.BuildConfigFromFlags("", sb.KubeconfigPath)
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: sb.Scheme})
	require.NoError(t, err)
	require.NoError(t, c.List(ctx, &corev1.NodeList{}))
}

func TestGarbageCollector(t *testing.T) {
	ns := namespace(t)
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: ns}}
	require.NoError(t, sb.Client.Create(ctx, owner))
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dependent", Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}}}
	require.NoError(t, sb.Client.Create(ctx, dependent))

	require.NoError(t, sb.Client.Delete(ctx, owner))
	gone(t, dependent)
}

func TestStorageBindsClaims(t *testing.T) {
	ns := namespace(t)
	for _, tc := range []struct{ name, class, wantClass string }{
		{name: "standard", class: sandbox.StorageClassStandard, wantClass: sandbox.StorageClassStandard},
		{name: "no class uses default", class: "", wantClass: sandbox.StorageClassStandard},
		{name: "fixed", class: sandbox.StorageClassFixed, wantClass: sandbox.StorageClassFixed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claim := pvc(ns, strings.ReplaceAll(tc.name, " ", "-"), tc.class, "3Gi")
			require.NoError(t, sb.Client.Create(ctx, claim))
			eventually(t, claim, func(p *corev1.PersistentVolumeClaim) bool { return p.Status.Phase == corev1.ClaimBound }, "claim not bound")
			assert.Equal(t, "3Gi", ptr.To(claim.Status.Capacity[corev1.ResourceStorage]).String())
			assert.Equal(t, claim.Spec.AccessModes, claim.Status.AccessModes)
			assert.Equal(t, tc.wantClass, ptr.Deref(claim.Spec.StorageClassName, ""))
			pv := &corev1.PersistentVolume{}
			require.NoError(t, sb.Client.Get(ctx, client.ObjectKey{Name: claim.Spec.VolumeName}, pv))
			assert.Equal(t, claim.UID, pv.Spec.ClaimRef.UID)
			assert.Equal(t, "true", pv.Annotations[sandbox.SimulatedAnnotation])
		})
	}
}

func TestStorageExpandsClaims(t *testing.T) {
	ns := namespace(t)
	claim := pvc(ns, "grow", sandbox.StorageClassStandard, "1Gi")
	require.NoError(t, sb.Client.Create(ctx, claim))
	eventually(t, claim, func(p *corev1.PersistentVolumeClaim) bool { return p.Status.Phase == corev1.ClaimBound }, "claim not bound")

	// The storage simulator may still be writing the claim it just bound.
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := sb.Client.Get(ctx, client.ObjectKeyFromObject(claim), claim); err != nil {
			return err
		}
		claim.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("5Gi")
		return sb.Client.Update(ctx, claim)
	}))
	eventually(t, claim, func(p *corev1.PersistentVolumeClaim) bool {
		return ptr.To(p.Status.Capacity[corev1.ResourceStorage]).String() == "5Gi"
	}, "capacity not grown")

	// The API server's admission refuses to grow a claim of a class that
	// does not allow expansion.
	fixed := pvc(ns, "fixed", sandbox.StorageClassFixed, "1Gi")
	require.NoError(t, sb.Client.Create(ctx, fixed))
	eventually(t, fixed, func(p *corev1.PersistentVolumeClaim) bool { return p.Status.Phase == corev1.ClaimBound }, "claim not bound")
	fixed.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("5Gi")
	require.Error(t, sb.Client.Update(ctx, fixed))
}

func TestStorageWaitsForFirstConsumer(t *testing.T) {
	ns := namespace(t)
	claim := pvc(ns, "late", sandbox.StorageClassWFFC, "1Gi")
	require.NoError(t, sb.Client.Create(ctx, claim))
	time.Sleep(time.Second)
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(claim), claim))
	require.Equal(t, corev1.ClaimPending, claim.Status.Phase, "bound without a consumer")

	v := vm(ns, "consumer", withVolume("disk", pvcVolume(claim.Name)))
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, claim, func(p *corev1.PersistentVolumeClaim) bool { return p.Status.Phase == corev1.ClaimBound }, "claim not bound")
	eventually(t, v, vmRunning, "VM not running")
}

func TestCDIImports(t *testing.T) {
	ns := namespace(t)
	dv := httpDV(ns, "image", sandbox.StorageClassStandard, "https://images.example.com/disk.qcow2")
	require.NoError(t, sb.Client.Create(ctx, dv))

	var seen []string
	eventually(t, dv, func(d *cdiv1.DataVolume) bool {
		if p := string(d.Status.Progress); d.Status.Phase == cdiv1.ImportInProgress && (len(seen) == 0 || seen[len(seen)-1] != p) {
			seen = append(seen, p)
		}
		return d.Status.Phase == cdiv1.Succeeded
	}, "import did not succeed")
	assert.Equal(t, cdiv1.DataVolumeProgress("100.0%"), dv.Status.Progress)
	require.GreaterOrEqual(t, len(seen), 3, "progress steps seen: %v", seen)
	for i := 1; i < len(seen); i++ {
		var prev, cur float64
		_, _ = fmt.Sscanf(seen[i-1], "%f%%", &prev)
		_, _ = fmt.Sscanf(seen[i], "%f%%", &cur)
		assert.Greater(t, cur, prev, "progress went backwards: %v", seen)
	}
	conds := map[cdiv1.DataVolumeConditionType]corev1.ConditionStatus{}
	for _, c := range dv.Status.Conditions {
		conds[c.Type] = c.Status
	}
	assert.Equal(t, map[cdiv1.DataVolumeConditionType]corev1.ConditionStatus{
		cdiv1.DataVolumeBound: corev1.ConditionTrue, cdiv1.DataVolumeReady: corev1.ConditionTrue, cdiv1.DataVolumeRunning: corev1.ConditionFalse,
	}, conds)

	claim := &corev1.PersistentVolumeClaim{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(dv), claim))
	assert.Equal(t, corev1.ClaimBound, claim.Status.Phase)
	assert.Equal(t, "2Gi", ptr.To(claim.Status.Capacity[corev1.ResourceStorage]).String())
	require.NotNil(t, metav1.GetControllerOf(claim))
	assert.Equal(t, dv.UID, metav1.GetControllerOf(claim).UID)

	// Deleting the DataVolume deletes its claim (garbage collector) and the
	// volume (reclaim policy Delete).
	require.NoError(t, sb.Client.Delete(ctx, dv))
	gone(t, claim)
	gone(t, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: claim.Spec.VolumeName}})
}

// TestCDIClaimOwnership: as CDI, the DataVolume controls the claim it makes
// (annotated with the DataVolume's UID); a claim whose controller reference
// someone removed is taken back only while it says it is populated for the
// DataVolume (AnnPopulatedFor), which is why a claim handed over must lose
// that annotation first.
func TestCDIClaimOwnership(t *testing.T) {
	ns := namespace(t)
	dv := httpDV(ns, "owned", sandbox.StorageClassStandard, "https://images.example.com/disk.qcow2")
	require.NoError(t, sb.Client.Create(ctx, dv))
	eventually(t, dv, func(d *cdiv1.DataVolume) bool { return d.Status.Phase == cdiv1.Succeeded }, "import did not succeed")
	claim := &corev1.PersistentVolumeClaim{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(dv), claim))
	require.NotNil(t, metav1.GetControllerOf(claim))
	assert.Equal(t, dv.UID, metav1.GetControllerOf(claim).UID)
	assert.Equal(t, string(dv.UID), claim.Annotations["cdi.kubevirt.io/createdForDataVolume"])

	// Populated for the DataVolume: taken back on its next pass (a label
	// change of the DataVolume starts one).
	claim.OwnerReferences = nil
	claim.Annotations["cdi.kubevirt.io/storage.populatedFor"] = dv.Name
	require.NoError(t, sb.Client.Update(ctx, claim))
	dv.Labels = map[string]string{"poke": "1"}
	require.NoError(t, sb.Client.Update(ctx, dv))
	eventually(t, claim, func(c *corev1.PersistentVolumeClaim) bool {
		ref := metav1.GetControllerOf(c)
		return ref != nil && ref.UID == dv.UID
	}, "a claim populated for the DataVolume is not taken back")
}

func TestCDIReportsUnreachableSource(t *testing.T) {
	ns := namespace(t)
	registry := &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Name: "registry", Namespace: ns}}
	registry.Spec.Source = &cdiv1.DataVolumeSource{Registry: &cdiv1.DataVolumeSourceRegistry{URL: ptr.To("docker://unreachable.example.com/os:1")}}
	// CDI's webhook refuses a DataVolume without a size unless it clones.
	registry.Spec.Storage = &cdiv1.StorageSpec{Resources: corev1.VolumeResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
	}}
	for _, dv := range []*cdiv1.DataVolume{httpDV(ns, "http", "", "https://nowhere.invalid/disk.img"), registry} {
		t.Run(dv.Name, func(t *testing.T) {
			require.NoError(t, sb.Client.Create(ctx, dv))
			eventually(t, dv, func(d *cdiv1.DataVolume) bool { return d.Status.RestartCount >= 2 }, "importer not restarting")
			assert.Equal(t, cdiv1.ImportInProgress, dv.Status.Phase)
			var running cdiv1.DataVolumeCondition
			for _, c := range dv.Status.Conditions {
				if c.Type == cdiv1.DataVolumeRunning {
					running = c
				}
			}
			assert.Equal(t, corev1.ConditionFalse, running.Status)
			assert.Equal(t, sandbox.ReasonImportError, running.Reason)
			assert.Contains(t, running.Message, "no such host")
		})
	}
}

func TestCDIWaitsForFirstConsumer(t *testing.T) {
	ns := namespace(t)
	dv := httpDV(ns, "root", sandbox.StorageClassWFFC, "https://images.example.com/disk.qcow2")
	require.NoError(t, sb.Client.Create(ctx, dv))
	eventually(t, dv, func(d *cdiv1.DataVolume) bool { return d.Status.Phase == cdiv1.WaitForFirstConsumer }, "not waiting for consumer")

	v := vm(ns, "vm", withVolume("root", kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: dv.Name}}))
	require.NoError(t, sb.Client.Create(ctx, v))
	statuses := map[kubevirtv1.VirtualMachinePrintableStatus]bool{}
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool {
		statuses[v.Status.PrintableStatus] = true
		return vmRunning(v)
	}, "VM not running")
	assert.True(t, statuses[kubevirtv1.VirtualMachineStatusProvisioning], "VM never Provisioning: %v", statuses)
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(dv), dv))
	assert.Equal(t, cdiv1.Succeeded, dv.Status.Phase)
}

func TestKubeVirtRunsVM(t *testing.T) {
	ns := namespace(t)
	const mac = "02:AA:BB:CC:DD:01"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cloudinit", Namespace: ns}, Data: map[string][]byte{
		"userdata": []byte("#cloud-config\npackages: [qemu-guest-agent]\n"),
		"networkdata": []byte(`version: 2
ethernets:
  eth1:
    match: {macaddress: "02:aa:bb:cc:dd:01"}
    addresses: [192.168.50.10/24]
    dhcp4: false
`),
	}}
	require.NoError(t, sb.Client.Create(ctx, secret))
	claim := pvc(ns, "root", "", "1Gi")
	require.NoError(t, sb.Client.Create(ctx, claim))

	v := vm(ns, "web",
		withVolume("root", pvcVolume("root")),
		withVolume("cloudinit", kubevirtv1.VolumeSource{CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{
			UserDataSecretRef: &corev1.LocalObjectReference{Name: secret.Name}, NetworkDataSecretRef: &corev1.LocalObjectReference{Name: secret.Name},
		}}),
		func(v *kubevirtv1.VirtualMachine) {
			s := &v.Spec.Template.Spec
			for _, n := range []string{"data", "dhcp"} {
				iface := kubevirtv1.Interface{Name: n, InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}}}
				if n == "data" {
					iface.MacAddress = mac
				}
				s.Domain.Devices.Interfaces = append(s.Domain.Devices.Interfaces, iface)
				s.Networks = append(s.Networks, kubevirtv1.Network{Name: n, NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: ns + "/" + n}}})
			}
		})
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, vmRunning, "VM not running")
	assert.True(t, v.Status.Created)
	require.NotEmpty(t, v.Status.Conditions)
	assert.Equal(t, kubevirtv1.VirtualMachineReady, v.Status.Conditions[0].Type)
	assert.Equal(t, corev1.ConditionTrue, v.Status.Conditions[0].Status)

	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(v), vmi))
	assert.Equal(t, kubevirtv1.Running, vmi.Status.Phase)
	assert.Contains(t, []string{"node-1", "node-2"}, vmi.Status.NodeName, "node-3 is tainted")
	assert.Equal(t, "web", vmi.Labels["app"])
	assert.Equal(t, "true", vmi.Annotations[sandbox.SimulatedAnnotation])
	assert.Equal(t, v.UID, metav1.GetControllerOf(vmi).UID)
	require.Len(t, vmi.Status.Interfaces, 3)
	pod, data, dhcp := vmi.Status.Interfaces[0], vmi.Status.Interfaces[1], vmi.Status.Interfaces[2]
	assert.Equal(t, []string{"default", "eth0"}, []string{pod.Name, pod.InterfaceName})
	assert.True(t, strings.HasPrefix(pod.IP, sandbox.PodNetworkPrefix+"."), pod.IP)
	assert.Regexp(t, `^02(:[0-9a-f]{2}){5}$`, pod.MAC)
	assert.Equal(t, []string{"data", "eth1", "02:aa:bb:cc:dd:01", "192.168.50.10"}, []string{data.Name, data.InterfaceName, data.MAC, data.IP})
	assert.Equal(t, []string{"192.168.50.10"}, data.IPs)
	assert.True(t, strings.HasPrefix(dhcp.IP, sandbox.DHCPPoolPrefix+"."), dhcp.IP)
	assert.Contains(t, data.InfoSource, "guest-agent")
	agent := false
	for _, c := range vmi.Status.Conditions {
		agent = agent || (c.Type == kubevirtv1.VirtualMachineInstanceAgentConnected && c.Status == corev1.ConditionTrue)
	}
	assert.True(t, agent, "AgentConnected: the user data installs qemu-guest-agent")

	// Deleting the VM deletes the VMI (garbage collector).
	require.NoError(t, sb.Client.Delete(ctx, v))
	gone(t, vmi)
}

func TestKubeVirtWaitsForVolumes(t *testing.T) {
	ns := namespace(t)
	v := vm(ns, "nodisk", withVolume("root", pvcVolume("missing")))
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool {
		return v.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusPvcNotFound
	}, "VM not ErrorPvcNotFound")
	assert.False(t, v.Status.Ready)

	require.NoError(t, sb.Client.Create(ctx, pvc(ns, "missing", "", "1Gi")))
	eventually(t, v, vmRunning, "VM not running once the claim exists")
}

func TestKubeVirtScheduling(t *testing.T) {
	ns := namespace(t)
	tolerate := func(v *kubevirtv1.VirtualMachine) {
		v.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: sandbox.TaintKey, Operator: corev1.TolerationOpEqual, Value: sandbox.TaintValue, Effect: corev1.TaintEffectNoSchedule}}
	}
	onNode3 := func(v *kubevirtv1.VirtualMachine) {
		v.Spec.Template.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "node-3"}
	}
	for _, tc := range []struct {
		name     string
		opts     []func(*kubevirtv1.VirtualMachine)
		wantNode string
		wantMsg  string
	}{
		{name: "no-such-node", opts: []func(*kubevirtv1.VirtualMachine){func(v *kubevirtv1.VirtualMachine) {
			v.Spec.Template.Spec.NodeSelector = map[string]string{"gpu": "true"}
		}}, wantMsg: "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node affinity/selector."},
		{name: "tainted-untolerated", opts: []func(*kubevirtv1.VirtualMachine){onNode3},
			wantMsg: "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node affinity/selector."},
		{name: "tainted-tolerated", opts: []func(*kubevirtv1.VirtualMachine){onNode3, tolerate}, wantNode: "node-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vm(ns, tc.name, tc.opts...)
			require.NoError(t, sb.Client.Create(ctx, v))
			vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: v.ObjectMeta}
			if tc.wantNode != "" {
				eventually(t, v, vmRunning, "VM not running")
				require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(v), vmi))
				assert.Equal(t, tc.wantNode, vmi.Status.NodeName)
				return
			}
			eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool {
				return v.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusUnschedulable
			}, "VM not unschedulable")
			require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(v), vmi))
			assert.Equal(t, kubevirtv1.Scheduling, vmi.Status.Phase)
			assert.Empty(t, vmi.Status.NodeName)
			var scheduled kubevirtv1.VirtualMachineInstanceCondition
			for _, c := range vmi.Status.Conditions {
				if c.Type == "PodScheduled" {
					scheduled = c
				}
			}
			assert.Equal(t, corev1.ConditionFalse, scheduled.Status)
			assert.Equal(t, sandbox.ReasonUnschedulable, scheduled.Reason)
			// The real kube-scheduler's message (it goes on with what
			// preemption would do).
			assert.True(t, strings.HasPrefix(scheduled.Message, tc.wantMsg), "scheduler message %q", scheduled.Message)
		})
	}
}

func TestKubeVirtAntiAffinitySpreads(t *testing.T) {
	ns := namespace(t)
	spread := func(v *kubevirtv1.VirtualMachine) {
		v.Spec.Template.ObjectMeta.Labels = map[string]string{"tier": "db"}
		v.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}},
				TopologyKey:   corev1.LabelHostname,
			}},
		}}
	}
	var vms []*kubevirtv1.VirtualMachine
	for i := range 3 {
		v := vm(ns, fmt.Sprintf("db-%d", i), spread)
		require.NoError(t, sb.Client.Create(ctx, v))
		vms = append(vms, v)
	}
	// Two untainted nodes: two VMs run on different nodes, the third cannot.
	var running, unschedulable []*kubevirtv1.VirtualMachine
	require.Eventually(t, func() bool {
		running, unschedulable = nil, nil
		for _, v := range vms {
			if err := sb.Client.Get(ctx, client.ObjectKeyFromObject(v), v); err != nil {
				return false
			}
			switch v.Status.PrintableStatus {
			case kubevirtv1.VirtualMachineStatusRunning:
				running = append(running, v)
			case kubevirtv1.VirtualMachineStatusUnschedulable:
				unschedulable = append(unschedulable, v)
			}
		}
		return len(running) == 2 && len(unschedulable) == 1
	}, timeout, tick)
	nodes := map[string]bool{}
	for _, v := range running {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(v), vmi))
		nodes[vmi.Status.NodeName] = true
	}
	assert.Equal(t, map[string]bool{"node-1": true, "node-2": true}, nodes)

	// Stopping one frees its node for the waiting VM.
	running[0].Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyHalted)
	require.NoError(t, sb.Client.Update(ctx, running[0]))
	eventually(t, unschedulable[0], vmRunning, "waiting VM not scheduled after a node was freed")
}

func TestKubeVirtHaltedVM(t *testing.T) {
	ns := namespace(t)
	v := vm(ns, "halted", func(v *kubevirtv1.VirtualMachine) { v.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyHalted) })
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool {
		return v.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusStopped
	}, "VM not Stopped")
	assert.False(t, v.Status.Ready)
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: v.Name, Namespace: ns}}
	require.True(t, apierrors.IsNotFound(sb.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi)))

	v.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyAlways)
	require.NoError(t, sb.Client.Update(ctx, v))
	eventually(t, v, vmRunning, "VM not running after start")

	v.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyHalted)
	require.NoError(t, sb.Client.Update(ctx, v))
	gone(t, vmi)
	eventually(t, v, func(v *kubevirtv1.VirtualMachine) bool {
		return v.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusStopped && !v.Status.Ready && !v.Status.Created
	}, "VM not Stopped after stop")
}

func TestKubeVirtRestartRequired(t *testing.T) {
	ns := namespace(t)
	v := vm(ns, "resize")
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, vmRunning, "VM not running")
	restartRequired := func(v *kubevirtv1.VirtualMachine) bool {
		for _, c := range v.Status.Conditions {
			if c.Type == kubevirtv1.VirtualMachineRestartRequired && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}
	require.False(t, restartRequired(v))

	v.Spec.Template.Spec.Domain.CPU.Cores = 4
	require.NoError(t, sb.Client.Update(ctx, v))
	eventually(t, v, restartRequired, "no RestartRequired")
	assert.True(t, v.Status.Ready, "the VM keeps running")
	assert.Greater(t, v.Status.DesiredGeneration, v.Status.ObservedGeneration)
}

func TestNMStateConfiguresPolicies(t *testing.T) {
	for _, tc := range []struct {
		name     string
		selector map[string]string
		wantMsg  string
	}{
		{name: "all-nodes", wantMsg: "3/3 nodes successfully configured"},
		{name: "one-node", selector: map[string]string{corev1.LabelHostname: "node-2"}, wantMsg: "1/1 nodes successfully configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &nmstatev1.NodeNetworkConfigurationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "br-" + tc.name}}
			p.Spec.NodeSelector = tc.selector
			p.Spec.DesiredState = shared.State{Raw: []byte(`{"interfaces":[{"name":"br1","type":"linux-bridge","state":"up"}]}`)}
			require.NoError(t, sb.Client.Create(ctx, p))
			t.Cleanup(func() { _ = sb.Client.Delete(ctx, p) })
			sawProgressing := false
			eventually(t, p, func(p *nmstatev1.NodeNetworkConfigurationPolicy) bool {
				for _, c := range p.Status.Conditions {
					if c.Type == shared.NodeNetworkConfigurationPolicyConditionProgressing && c.Status == corev1.ConditionTrue {
						sawProgressing = true
					}
					if c.Type == shared.NodeNetworkConfigurationPolicyConditionAvailable && c.Status == corev1.ConditionTrue {
						assert.Equal(t, shared.NodeNetworkConfigurationPolicyConditionSuccessfullyConfigured, c.Reason)
						assert.Equal(t, tc.wantMsg, c.Message)
						return true
					}
				}
				return false
			}, "policy not Available")
			assert.True(t, sawProgressing, "never saw Progressing")
		})
	}
}

// TestKubeVirtNetworkBindingPlugin: the sandbox's KubeVirt CR registers the
// macvtap binding, so a macvtap NIC runs; a binding no KubeVirt CR registers
// keeps the VMI Pending (FailedCreate) with the VM condition Failure until a
// KubeVirt CR registers it.
func TestKubeVirtNetworkBindingPlugin(t *testing.T) {
	ns := namespace(t)
	kv := &kubevirtv1.KubeVirt{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKey{Namespace: sandbox.KubeVirtNamespace, Name: sandbox.KubeVirtName}, kv))
	require.NotNil(t, kv.Spec.Configuration.NetworkConfiguration)
	assert.Equal(t, kubevirtv1.Tap, kv.Spec.Configuration.NetworkConfiguration.Binding[sandbox.MacvtapBinding].DomainAttachmentType)
	assert.Equal(t, kubevirtv1.KubeVirtPhaseDeployed, kv.Status.Phase)

	withPlugin := func(binding string) func(*kubevirtv1.VirtualMachine) {
		return func(v *kubevirtv1.VirtualMachine) {
			s := &v.Spec.Template.Spec
			s.Domain.Devices.Interfaces = append(s.Domain.Devices.Interfaces, kubevirtv1.Interface{
				Name: "direct", Binding: &kubevirtv1.PluginBinding{Name: binding}, MacAddress: "02:00:00:00:00:42",
			})
			s.Networks = append(s.Networks, kubevirtv1.Network{Name: "direct", NetworkSource: kubevirtv1.NetworkSource{
				Multus: &kubevirtv1.MultusNetwork{NetworkName: ns + "/direct"},
			}})
		}
	}
	tap := vm(ns, "tap", withPlugin(sandbox.MacvtapBinding))
	require.NoError(t, sb.Client.Create(ctx, tap))
	eventually(t, tap, vmRunning, "a macvtap VM does not run")

	other := vm(ns, "other", withPlugin("sandbox-unregistered"))
	require.NoError(t, sb.Client.Create(ctx, other))
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: other.Name, Namespace: ns}}
	eventually(t, vmi, func(v *kubevirtv1.VirtualMachineInstance) bool {
		for _, c := range v.Status.Conditions {
			if c.Type == kubevirtv1.VirtualMachineInstanceSynchronized && c.Status == corev1.ConditionFalse && c.Reason == "FailedCreate" {
				return v.Status.Phase == kubevirtv1.Pending && strings.Contains(c.Message, "unable to find the network binding plugin 'sandbox-unregistered'")
			}
		}
		return false
	}, "VMI with an unregistered binding not FailedCreate")
	eventually(t, other, func(v *kubevirtv1.VirtualMachine) bool {
		for _, c := range v.Status.Conditions {
			if c.Type == kubevirtv1.VirtualMachineFailure && c.Status == corev1.ConditionTrue {
				return !v.Status.Ready
			}
		}
		return false
	}, "VM with an unregistered binding has no Failure condition")

	second := &kubevirtv1.KubeVirt{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: ns}}
	second.Spec.Configuration.NetworkConfiguration = &kubevirtv1.NetworkConfiguration{
		Binding: map[string]kubevirtv1.InterfaceBindingPlugin{"sandbox-unregistered": {DomainAttachmentType: kubevirtv1.Tap}},
	}
	require.NoError(t, sb.Client.Create(ctx, second))
	t.Cleanup(func() { _ = sb.Client.Delete(ctx, second) })
	eventually(t, other, vmRunning, "the VM does not run once a KubeVirt CR registers its binding")
}

// TestKubeVirtSecondaryIPsNeedGuestAgent: without the guest agent KubeVirt
// knows a bridge-bound secondary NIC's MAC but not its addresses.
func TestKubeVirtSecondaryIPsNeedGuestAgent(t *testing.T) {
	ns := namespace(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cloudinit", Namespace: ns}, Data: map[string][]byte{
		"userdata": []byte("#cloud-config\n"),
		"networkdata": []byte(`version: 2
ethernets:
  data:
    match: {macaddress: "02:aa:bb:cc:dd:02"}
    addresses: [192.168.50.11/24]
`),
	}}
	require.NoError(t, sb.Client.Create(ctx, secret))
	v := vm(ns, "noagent", func(v *kubevirtv1.VirtualMachine) {
		spec := &v.Spec.Template.Spec
		spec.Domain.Devices.Interfaces = append(spec.Domain.Devices.Interfaces,
			kubevirtv1.Interface{Name: "data", MacAddress: "02:aa:bb:cc:dd:02", InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}}})
		spec.Networks = append(spec.Networks, kubevirtv1.Network{Name: "data", NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: "data"}}})
		spec.Volumes = append(spec.Volumes, kubevirtv1.Volume{Name: "cloudinit", VolumeSource: kubevirtv1.VolumeSource{CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{
			UserDataSecretRef: &corev1.LocalObjectReference{Name: secret.Name}, NetworkDataSecretRef: &corev1.LocalObjectReference{Name: secret.Name},
		}}})
	})
	require.NoError(t, sb.Client.Create(ctx, v))
	eventually(t, v, vmRunning, "VM not running")
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(v), vmi))
	var data *kubevirtv1.VirtualMachineInstanceNetworkInterface
	for i := range vmi.Status.Interfaces {
		if vmi.Status.Interfaces[i].Name == "data" {
			data = &vmi.Status.Interfaces[i]
		}
	}
	require.NotNil(t, data)
	assert.Equal(t, "02:aa:bb:cc:dd:02", data.MAC)
	assert.Empty(t, data.IPs, "no guest agent: no address for a bridge-bound secondary NIC")
	assert.NotContains(t, data.InfoSource, "guest-agent")
	for _, c := range vmi.Status.Conditions {
		assert.NotEqual(t, kubevirtv1.VirtualMachineInstanceAgentConnected, c.Type)
	}
}

// TestCDIImportFailsLikeCDI: an image the server does not have fails like
// CDI's importer on a 404; one bigger than its claim like CDI's space check
// ("A larger PVC is required"). Both retry (restartCount grows), neither
// becomes Failed.
func TestCDIImportFailsLikeCDI(t *testing.T) {
	ns := namespace(t)
	missing := httpDV(ns, "missing", sandbox.StorageClassStandard, "https://images.example.com/no-such.qcow2")
	small := httpDV(ns, "small", sandbox.StorageClassStandard, "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img")
	for _, dv := range []*cdiv1.DataVolume{missing, small} {
		require.NoError(t, sb.Client.Create(ctx, dv))
	}
	for dv, want := range map[*cdiv1.DataVolume]string{
		missing: "expected status code 200, got 404",
		small:   "is larger than the reported available storage 2147483648. A larger PVC is required.",
	} {
		eventually(t, dv, func(dv *cdiv1.DataVolume) bool {
			for _, c := range dv.Status.Conditions {
				if c.Type == cdiv1.DataVolumeRunning && c.Reason == sandbox.ReasonImportError && strings.Contains(c.Message, want) {
					return dv.Status.RestartCount > 0 && dv.Status.Phase == cdiv1.ImportInProgress
				}
			}
			return false
		}, "import error "+want)
	}
}

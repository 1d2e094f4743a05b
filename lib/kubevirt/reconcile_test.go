package kubevirt

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/testenv"
)

// TestReconcileSchema applies a table of machines against the real
// VirtualMachine CRD: the API server must accept each, and the stored VM
// must hold every field that was built.
func TestReconcileSchema(t *testing.T) {
	tests := []struct {
		name string
		m    Machine
	}{
		{"minimal", baseMachine()},
		{"everything", func() Machine {
			m := cloudInitMachine()
			m.AntiAffinity = true
			m.RunStrategy = kubevirtv1.RunStrategyRerunOnFailure
			m.NodeSelector = map[string]string{"kubernetes.io/arch": "amd64", "zone": "a"}
			m.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "vm", Effect: corev1.TaintEffectNoSchedule}}
			m.NICs[1].Binding = BindingSRIOV
			m.Disks = append(m.Disks, Disk{Name: "data", ClaimName: "web-data", DataVolume: true})
			return m
		}()},
		{"anti-affinity", with(func(m *Machine) { m.AntiAffinity = true })},
		{"anti-affinity preferred, grouped", with(func(m *Machine) { m.AntiAffinity, m.AntiAffinityPreferred, m.AntiAffinityGroup = true, true, "db" })},
		{"tolerations", with(func(m *Machine) {
			m.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		})},
		{"sriov without pod network", with(func(m *Machine) {
			m.PodNetwork = false
			m.NICs = []NIC{{Name: "fast", NAD: "net/sriov", MAC: "02:00:00:00:00:10", Binding: BindingSRIOV}}
		})},
		{"no network at all", with(func(m *Machine) { m.PodNetwork = false })},
		{"DataVolume disks", with(func(m *Machine) {
			m.Disks = []Disk{{Name: "root", ClaimName: "web-root", DataVolume: true, Boot: true}, {Name: "data", ClaimName: "web-data", DataVolume: true}}
		})},
		{"container disk, halted", with(func(m *Machine) {
			m.Disks = nil
			m.ContainerDiskImage = "quay.io/containerdisks/fedora:41"
			m.RunStrategy = kubevirtv1.RunStrategyHalted
		})},
		{"decimal memory, manual", with(func(m *Machine) {
			m.Memory = resource.MustParse("2G")
			m.RunStrategy = kubevirtv1.RunStrategyManual
		})},
	}
	c := env.Client
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, owner := newNamespace(t, c)
			obs, err := Reconcile(ctx, c, testID, owner, tt.m)
			require.NoError(t, err)
			assert.True(t, obs.Exists())
			assert.False(t, obs.HasInstance(), "no controller creates a VMI in envtest")

			live := &kubevirtv1.VirtualMachine{}
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: tt.m.Name}, live))
			owner.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
			want := BuildVM(testID, owner, tt.m)
			assert.True(t, contains(t, live, want), "stored VM lacks built fields")
			require.Len(t, live.OwnerReferences, 1)
			assert.Equal(t, owner.UID, live.OwnerReferences[0].UID)
			assert.Nil(t, live.Spec.Running)

			secret := &corev1.Secret{}
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-cloudinit"}, secret))
			wantSecret, err := BuildCloudInitSecret(testID, owner, tt.m)
			require.NoError(t, err)
			assert.Equal(t, wantSecret.Data, secret.Data)
		})
	}
}

func contains(t *testing.T, live, want runtime.Object) bool {
	t.Helper()
	l, err := apply.Desired(live, "kubevirt.io/v1", "VirtualMachine")
	require.NoError(t, err)
	w, err := apply.Desired(want, "kubevirt.io/v1", "VirtualMachine")
	require.NoError(t, err)
	return apply.Contains(l.Object, w.Object)
}

// TestReconcileIdempotent: a second Reconcile with the same input writes
// nothing (resourceVersions unchanged), and a hand edit is restored.
func TestReconcileIdempotent(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, owner := newNamespace(t, c)
	m := cloudInitMachine()
	m.AntiAffinity = true
	m.NodeSelector = map[string]string{"b": "2", "a": "1"}

	_, err := Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vmKey := client.ObjectKey{Namespace: ns, Name: m.Name}
	secretKey := client.ObjectKey{Namespace: ns, Name: "web-cloudinit"}
	vm1, s1 := &kubevirtv1.VirtualMachine{}, &corev1.Secret{}
	require.NoError(t, c.Get(ctx, vmKey, vm1))
	require.NoError(t, c.Get(ctx, secretKey, s1))

	for range 2 {
		_, err = Reconcile(ctx, c, testID, owner, m)
		require.NoError(t, err)
	}
	vm2, s2 := &kubevirtv1.VirtualMachine{}, &corev1.Secret{}
	require.NoError(t, c.Get(ctx, vmKey, vm2))
	require.NoError(t, c.Get(ctx, secretKey, s2))
	assert.Equal(t, vm1.ResourceVersion, vm2.ResourceVersion, "VM rewritten")
	assert.Equal(t, s1.ResourceVersion, s2.ResourceVersion, "Secret rewritten")

	// A hand edit of an owned field is put back (spec.runStrategy is the
	// exception: see TestReconcileKeepsPowerActions).
	vm2.Spec.Template.Spec.Domain.CPU.Sockets = 7
	require.NoError(t, c.Update(ctx, vm2))
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm3 := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(ctx, vmKey, vm3))
	assert.Equal(t, uint32(m.CPU), vm3.Spec.Template.Spec.Domain.CPU.Sockets)

	// A changed input is applied.
	m.CPU = 4
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	require.NoError(t, c.Get(ctx, vmKey, vm3))
	assert.Equal(t, uint32(4), vm3.Spec.Template.Spec.Domain.CPU.Sockets)
}

// TestReconcileObserves sets VM and VMI statuses the way KubeVirt would and
// checks what Reconcile reports.
func TestReconcileObserves(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, owner := newNamespace(t, c)
	m := with(func(m *Machine) { m.NICs = []NIC{{Name: "lan", NAD: "net/lan", MAC: "02:aa:bb:cc:dd:01"}} })

	obs, err := Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	assert.False(t, obs.Ready())
	reason, _ := obs.NotReadyReason()
	assert.Equal(t, ReasonStarting, reason)

	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.Name}, vm))
	// As virt-controller creates it: controlled by the VM (a VMI without
	// that reference is an orphan Reconcile refuses to write a VM over).
	vmi := &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: ns, Labels: vm.Spec.Template.ObjectMeta.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(vm, kubevirtv1.VirtualMachineGroupVersionKind)}},
		Spec: vm.Spec.Template.Spec,
	}
	require.NoError(t, c.Create(ctx, vmi))

	steps := []struct {
		name            string
		phase           kubevirtv1.VirtualMachineInstancePhase
		node            string
		conds           []kubevirtv1.VirtualMachineInstanceCondition
		ready           bool
		reason, message string
	}{
		{name: "unschedulable", phase: kubevirtv1.Scheduling,
			conds:  []kubevirtv1.VirtualMachineInstanceCondition{vmiCond("PodScheduled", corev1.ConditionFalse, "Unschedulable", "0/1 nodes are available: 1 Insufficient memory.")},
			reason: ReasonUnschedulable, message: "0/1 nodes are available: 1 Insufficient memory."},
		{name: "booting", phase: kubevirtv1.Running, node: "node-a",
			conds:  []kubevirtv1.VirtualMachineInstanceCondition{vmiCond(kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "", "")},
			reason: ReasonGuestNotReady, message: "the guest is not ready"},
		{name: "ready", phase: kubevirtv1.Running, node: "node-a",
			conds: []kubevirtv1.VirtualMachineInstanceCondition{vmiCond(kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue, "", "")},
			ready: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(vmi), vmi))
			vmi.Status.Phase = st.phase
			vmi.Status.NodeName = st.node
			vmi.Status.Conditions = st.conds
			vmi.Status.Interfaces = []kubevirtv1.VirtualMachineInstanceNetworkInterface{
				{Name: "default", InterfaceName: "eth0", IP: "10.244.1.9", IPs: []string{"10.244.1.9"}, MAC: PodNetworkMAC(ns, m.Name)},
				{Name: "lan", InterfaceName: "lan", IP: "192.168.10.5", IPs: []string{"192.168.10.5"}, MAC: "02:aa:bb:cc:dd:01"},
			}
			// KubeVirt's VMI CRD has no status subresource: virt-handler
			// writes the whole object.
			require.NoError(t, c.Update(ctx, vmi))

			obs, err := Reconcile(ctx, c, testID, owner, m)
			require.NoError(t, err)
			assert.Equal(t, st.ready, obs.Ready())
			assert.Equal(t, st.phase, obs.Phase())
			assert.Equal(t, st.node, obs.Node())
			reason, message := obs.NotReadyReason()
			assert.Equal(t, st.reason, reason)
			assert.Equal(t, st.message, message)
			ifs := obs.Interfaces()
			require.Len(t, ifs, 2)
			assert.Equal(t, Interface{Name: "lan", InterfaceName: "lan", IP: "192.168.10.5", IPs: []string{"192.168.10.5"}, MAC: "02:aa:bb:cc:dd:01"}, ifs[1])
		})
	}

	t.Run("VM status: printable status and RestartRequired", func(t *testing.T) {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(vm), vm))
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusRunning
		vm.Status.Conditions = []kubevirtv1.VirtualMachineCondition{
			vmCond(kubevirtv1.VirtualMachineRestartRequired, corev1.ConditionTrue, "", "a non-live-updatable field was changed"),
		}
		require.NoError(t, c.Status().Update(ctx, vm))
		rv := vm.ResourceVersion

		obs, err := Reconcile(ctx, c, testID, owner, m)
		require.NoError(t, err)
		assert.Equal(t, kubevirtv1.VirtualMachineStatusRunning, obs.PrintableStatus())
		assert.True(t, obs.RestartRequired())
		assert.True(t, obs.Ready())
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(vm), vm))
		assert.Equal(t, rv, vm.ResourceVersion, "status written by others does not trigger an apply")
	})
}

func TestReconcileInvalidInput(t *testing.T) {
	c := env.Client
	ns, owner := newNamespace(t, c)
	_, err := Reconcile(context.Background(), c, testID, owner, with(func(m *Machine) { m.CPU = 0 }))
	var inv *InvalidInputError
	require.True(t, errors.As(err, &inv), "got %v", err)
	s := &corev1.Secret{}
	err = c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web-cloudinit"}, s)
	assert.True(t, apierrors.IsNotFound(err), "nothing is written for invalid input: %v", err)
}

// TestReconcileWithoutKubeVirt uses a second API server without any CRD.
func TestReconcileWithoutKubeVirt(t *testing.T) {
	bare, err := testenv.Start(testScheme())
	require.NoError(t, err)
	t.Cleanup(func() { _ = bare.Stop() })
	ns, owner := newNamespace(t, bare.Client)
	_, err = Reconcile(context.Background(), bare.Client, testID, owner, baseMachine())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrKubeVirtNotInstalled)
	assert.Contains(t, err.Error(), errApplyVM)
	_ = ns
}

// TestGetObservesWithoutWriting: Get reports a missing VM as not existing,
// then the VM Reconcile created, and writes nothing.
func TestGetObservesWithoutWriting(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, owner := newNamespace(t, c)
	m := baseMachine()

	obs, err := Get(ctx, c, ns, m.Name)
	require.NoError(t, err)
	assert.False(t, obs.Exists())

	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.Name}, vm))

	obs, err = Get(ctx, c, ns, m.Name)
	require.NoError(t, err)
	assert.True(t, obs.Exists())
	assert.False(t, obs.HasInstance(), "no VMI in envtest")
	again := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.Name}, again))
	assert.Equal(t, vm.ResourceVersion, again.ResourceVersion, "Get writes nothing")
}

// TestReconcileMacvtapBinding: a macvtap NIC needs the macvtap binding
// plugin registered in a KubeVirt CR. Without one Reconcile writes nothing
// and says what is missing; once registered the VM is created with
// `binding: {name: macvtap}` and accepted by the real CRD schema.
func TestReconcileMacvtapBinding(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, owner := newNamespace(t, c)
	m := baseMachine()
	m.NICs = []NIC{
		{Name: "lan", NAD: ns + "/web-lan", MAC: "02:aa:bb:cc:dd:01"},
		{Name: "direct", NAD: ns + "/web-direct", MAC: "02:aa:bb:cc:dd:02", Binding: BindingMacvtap},
	}
	vmKey := client.ObjectKey{Namespace: ns, Name: m.Name}

	nothingWritten := func(t *testing.T) {
		t.Helper()
		err := c.Get(ctx, vmKey, &kubevirtv1.VirtualMachine{})
		assert.True(t, apierrors.IsNotFound(err), "no VM: %v", err)
		err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: CloudInitSecretName(owner)}, &corev1.Secret{})
		assert.True(t, apierrors.IsNotFound(err), "no cloud-init Secret: %v", err)
	}

	_, err := Reconcile(ctx, c, testID, owner, m)
	var notRegistered *BindingNotRegisteredError
	require.True(t, errors.As(err, &notRegistered), "got %v", err)
	assert.Equal(t, "direct", notRegistered.NIC)
	assert.Equal(t, "macvtap", notRegistered.Binding)
	assert.Equal(t, 0, notRegistered.KubeVirtCRs)
	assert.Contains(t, err.Error(), "no KubeVirt CR")
	assert.Contains(t, err.Error(), "spec.configuration.network.binding.macvtap")
	nothingWritten(t)

	kv := &kubevirtv1.KubeVirt{ObjectMeta: metav1.ObjectMeta{Name: "kubevirt", Namespace: ns}}
	require.NoError(t, c.Create(ctx, kv))
	t.Cleanup(func() { _ = c.Delete(context.Background(), kv) })
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.True(t, errors.As(err, &notRegistered), "got %v", err)
	assert.Equal(t, 1, notRegistered.KubeVirtCRs)
	assert.Contains(t, err.Error(), "the KubeVirt CR does not register it")
	nothingWritten(t)

	kv.Spec.Configuration.NetworkConfiguration = &kubevirtv1.NetworkConfiguration{
		Binding: map[string]kubevirtv1.InterfaceBindingPlugin{
			"passt":   {SidecarImage: "quay.io/kubevirt/network-passt-binding:v1.5.0"},
			"macvtap": {DomainAttachmentType: kubevirtv1.Tap},
		},
	}
	require.NoError(t, c.Update(ctx, kv))
	names, crs, err := RegisteredBindings(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, []string{"macvtap", "passt"}, names)
	assert.Equal(t, 1, crs)

	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(ctx, vmKey, vm))
	ifs := vm.Spec.Template.Spec.Domain.Devices.Interfaces
	require.Len(t, ifs, 3)
	assert.NotNil(t, ifs[1].Bridge, "a bridge NIC keeps the bridge binding")
	assert.Equal(t, &kubevirtv1.PluginBinding{Name: "macvtap"}, ifs[2].Binding)
	assert.Nil(t, ifs[2].Bridge, "never the bridge binding for macvtap")
}

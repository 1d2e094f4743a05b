package kubevirt

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// legacyVM is a VM as Wukong rendered it before CPU and memory hotplug:
// cpu as cores on one socket, the guest memory also requested.
func legacyVM(cores uint32, mem string) *kubevirtv1.VirtualMachine {
	vm := BuildVM(testID, testOwner(), baseMachine())
	d := &vm.Spec.Template.Spec.Domain
	q := resource.MustParse(mem)
	d.CPU = &kubevirtv1.CPU{Cores: cores, Sockets: 1, Threads: 1}
	d.Memory = &kubevirtv1.Memory{Guest: &q}
	d.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: q}
	return vm
}

// mutatedVMI is the instance KubeVirt's VMI mutator makes from tmpl's
// template (pkg/defaults: maxSockets = sockets × 4 and maxGuest = guest × 4
// with the default maxHotplugRatio; status.currentCPUTopology and
// status.memory from the spec), Running.
func mutatedVMI(tmpl *kubevirtv1.VirtualMachine) *kubevirtv1.VirtualMachineInstance {
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: tmpl.Name, Namespace: tmpl.Namespace}}
	vmi.Spec = *tmpl.Spec.Template.Spec.DeepCopy()
	d := &vmi.Spec.Domain
	d.CPU.MaxSockets = d.CPU.Sockets * 4
	g := d.Memory.Guest.DeepCopy()
	if g.Value() >= 1<<30 {
		mg := *resource.NewQuantity(g.Value()*4, resource.BinarySI)
		d.Memory.MaxGuest = &mg
	}
	vmi.Status.Phase = kubevirtv1.Running
	vmi.Status.CurrentCPUTopology = &kubevirtv1.CPUTopology{Sockets: d.CPU.Sockets, Cores: d.CPU.Cores, Threads: d.CPU.Threads}
	vmi.Status.Memory = &kubevirtv1.MemoryStatus{GuestAtBoot: &g, GuestCurrent: &g, GuestRequested: &g}
	return vmi
}

func withCPUMem(cpu int32, mem string) Machine {
	return with(func(m *Machine) { m.CPU, m.Memory = cpu, resource.MustParse(mem) })
}

func TestKeepRunningTopology(t *testing.T) {
	restartRequired := func(vm *kubevirtv1.VirtualMachine) {
		vm.Status.Conditions = []kubevirtv1.VirtualMachineCondition{{Type: kubevirtv1.VirtualMachineRestartRequired, Status: corev1.ConditionTrue, Message: MessageNonLiveChange}}
	}
	tests := []struct {
		name string
		live *kubevirtv1.VirtualMachine
		// running: the live VM's instance runs.
		running bool
		m       Machine
		wantCPU kubevirtv1.CPU
		// wantRequest is the memory request sent ("" for none).
		wantRequest string
		wantGuest   string
	}{
		{name: "an existing VM rendered with cores keeps them while it runs (operator upgrade: no restart)",
			live: legacyVM(2, "4Gi"), running: true, m: withCPUMem(2, "4Gi"),
			wantCPU: kubevirtv1.CPU{Cores: 2, Sockets: 1, Threads: 1}, wantRequest: "4Gi", wantGuest: "4Gi"},
		{name: "stopped, the same VM gets sockets: its next start boots with them",
			live: legacyVM(2, "4Gi"), running: false, m: withCPUMem(2, "4Gi"),
			wantCPU: kubevirtv1.CPU{Sockets: 2, Cores: 1, Threads: 1}, wantGuest: "4Gi"},
		{name: "a restart pending anyway switches it to sockets (the restart applies both)",
			live: func() *kubevirtv1.VirtualMachine { vm := legacyVM(2, "4Gi"); restartRequired(vm); return vm }(), running: true,
			m: withCPUMem(2, "4Gi"), wantCPU: kubevirtv1.CPU{Sockets: 2, Cores: 1, Threads: 1}, wantGuest: "4Gi"},
		{name: "a stop request (virtctl restart) switches it before KubeVirt starts the next instance",
			live: func() *kubevirtv1.VirtualMachine {
				vm := legacyVM(2, "4Gi")
				vm.Status.StateChangeRequests = []kubevirtv1.VirtualMachineStateChangeRequest{{Action: kubevirtv1.StopRequest}, {Action: kubevirtv1.StartRequest}}
				return vm
			}(), running: true,
			m: withCPUMem(2, "4Gi"), wantCPU: kubevirtv1.CPU{Sockets: 2, Cores: 1, Threads: 1}, wantGuest: "4Gi"},
		{name: "cores kept, cpu a multiple of them: more sockets of those cores (live)",
			live: legacyVM(2, "4Gi"), running: true, m: withCPUMem(4, "4Gi"),
			wantCPU: kubevirtv1.CPU{Cores: 2, Sockets: 2, Threads: 1}, wantRequest: "4Gi", wantGuest: "4Gi"},
		{name: "cores kept, cpu not a multiple: sockets form (KubeVirt then requires the restart)",
			live: legacyVM(2, "4Gi"), running: true, m: withCPUMem(3, "4Gi"),
			wantCPU: kubevirtv1.CPU{Sockets: 3, Cores: 1, Threads: 1}, wantRequest: "4Gi", wantGuest: "4Gi"},
		{name: "a legacy memory request goes with a memory change (the restart applies it)",
			live: legacyVM(2, "4Gi"), running: true, m: withCPUMem(2, "8Gi"),
			wantCPU: kubevirtv1.CPU{Cores: 2, Sockets: 1, Threads: 1}, wantGuest: "8Gi"},
		{name: "a sockets VM grows sockets and guest memory, nothing else",
			live: BuildVM(testID, testOwner(), withCPUMem(1, "2Gi")), running: true, m: withCPUMem(2, "3Gi"),
			wantCPU: kubevirtv1.CPU{Sockets: 2, Cores: 1, Threads: 1}, wantGuest: "3Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vmi *kubevirtv1.VirtualMachineInstance
			if tt.running {
				vmi = mutatedVMI(tt.live)
			}
			vm := BuildVM(testID, testOwner(), tt.m)
			keepRunningTopology(vm, tt.live, vmi)
			d := vm.Spec.Template.Spec.Domain
			assert.Equal(t, tt.wantCPU, *d.CPU)
			assert.Equal(t, tt.wantGuest, d.Memory.Guest.String())
			if tt.wantRequest == "" {
				assert.NotContains(t, d.Resources.Requests, corev1.ResourceMemory)
			} else {
				q := d.Resources.Requests[corev1.ResourceMemory]
				assert.Equal(t, tt.wantRequest, q.String())
			}
			assert.Equal(t, tt.m.CPU, int32(VCPUs(d.CPU)), "the VM always asks for the machine's vCPUs")
		})
	}

	t.Run("a sockets VM keeps the maxGuest it was given", func(t *testing.T) {
		live := BuildVM(testID, testOwner(), withCPUMem(1, "2Gi"))
		mg := resource.MustParse("16Gi")
		live.Spec.Template.Spec.Domain.Memory.MaxGuest = &mg
		vm := BuildVM(testID, testOwner(), withCPUMem(1, "4Gi"))
		keepRunningTopology(vm, live, mutatedVMI(live))
		require.NotNil(t, vm.Spec.Template.Spec.Domain.Memory.MaxGuest)
		assert.Equal(t, "16Gi", vm.Spec.Template.Spec.Domain.Memory.MaxGuest.String())
	})
}

func TestPlanResources(t *testing.T) {
	migrate := LiveUpdate{Migrate: true, CRs: 1}
	// running is a VM and its running instance, made by build.
	type running = func() (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance)
	withVMI := func(build func() *kubevirtv1.VirtualMachine) running {
		return func() (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
			vm := build()
			return vm, mutatedVMI(vm)
		}
	}
	sockets := func(cpu int32, mem string) running {
		return withVMI(func() *kubevirtv1.VirtualMachine { return BuildVM(testID, testOwner(), withCPUMem(cpu, mem)) })
	}
	legacy := func(cores uint32, mem string) running {
		return withVMI(func() *kubevirtv1.VirtualMachine { return legacyVM(cores, mem) })
	}
	type tc struct {
		name string
		vm   running
		cpu  int32
		mem  string
		lu   LiveUpdate
		// want is "<field>:live" or "<field>:restart:<part of Why>", in order.
		want []string
	}
	notMigratable := func(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
		vmi.Status.Conditions = append(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceCondition{
			Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionFalse,
			Reason: kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable, Message: "cannot migrate VMI: PVC web-root is not shared"})
		return vm, vmi
	}
	tests := []tc{
		{name: "nothing changed: nothing to say", vm: sockets(1, "2Gi"),
			cpu: 1, mem: "2Gi", lu: migrate, want: nil},
		{name: "cpu grows within maxSockets: live", vm: sockets(1, "2Gi"),
			cpu: 2, mem: "2Gi", lu: migrate, want: []string{"cpu:live"}},
		{name: "cpu past maxSockets: restart, naming the maximum", vm: sockets(1, "2Gi"),
			cpu: 5, mem: "2Gi", lu: migrate, want: []string{"cpu:restart:hot-plug maximum of 4 vCPUs"}},
		{name: "cpu shrinks: restart", vm: sockets(2, "2Gi"),
			cpu: 1, mem: "2Gi", lu: migrate, want: []string{"cpu:restart:KubeVirt removes CPUs only at a restart"}},
		{name: "memory grows within maxGuest: live", vm: sockets(1, "2Gi"),
			cpu: 1, mem: "4Gi", lu: migrate, want: []string{"memory:live"}},
		{name: "memory past maxGuest: restart", vm: sockets(1, "2Gi"),
			cpu: 1, mem: "10Gi", lu: migrate, want: []string{"memory:restart:hot-plug maximum of 8Gi"}},
		{name: "memory below what it booted with: restart", vm: sockets(1, "2Gi"),
			cpu: 1, mem: "1Gi", lu: migrate, want: []string{"memory:restart:less than the 2Gi the guest started with"}},
		{name: "a guest under 1Gi has no memory hotplug", vm: sockets(1, "512Mi"),
			cpu: 1, mem: "768Mi", lu: migrate, want: []string{"memory:restart:did not set up memory hotplug"}},
		{name: "not live-migratable: both wait, saying why", vm: func() (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
			return notMigratable(sockets(1, "2Gi")())
		},
			cpu: 2, mem: "4Gi", lu: migrate, want: []string{"cpu:restart:cannot live-migrate (cannot migrate VMI: PVC web-root", "memory:restart:cannot live-migrate"}},
		{name: "the KubeVirt CR does not let the workload updater migrate", vm: sockets(1, "2Gi"),
			cpu: 2, mem: "2Gi", lu: LiveUpdate{CRs: 1}, want: []string{"cpu:restart:workloadUpdateMethods lists LiveMigrate"}},
		{name: "vmRolloutStrategy Stage", vm: sockets(1, "2Gi"),
			cpu: 2, mem: "2Gi", lu: LiveUpdate{Rollout: kubevirtv1.VMRolloutStrategyStage, Migrate: true}, want: []string{"cpu:restart:vmRolloutStrategy Stage"}},
		{name: "another change already needs a restart", vm: func() (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
			vm, vmi := sockets(1, "2Gi")()
			vm.Status.Conditions = []kubevirtv1.VirtualMachineCondition{{Type: kubevirtv1.VirtualMachineRestartRequired, Status: corev1.ConditionTrue, Message: MessageNonLiveChange}}
			return vm, vmi
		}, cpu: 2, mem: "2Gi", lu: migrate, want: []string{"cpu:restart:already requires a restart for another change"}},
		{name: "a VM with cores grows by whole sockets live", vm: legacy(2, "2Gi"), cpu: 4, mem: "2Gi", lu: migrate, want: []string{"cpu:live"}},
		{name: "a VM with cores: a cpu not a multiple of them waits for the restart that moves it to sockets", vm: legacy(2, "2Gi"), cpu: 3, mem: "2Gi", lu: migrate, want: []string{"cpu:restart:2 cores per socket"}},
		{name: "a VM with a memory request: memory waits for the restart that drops it", vm: legacy(1, "2Gi"), cpu: 1, mem: "4Gi", lu: migrate, want: []string{"memory:restart:memory request of a Wukong before memory hotplug"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm, vmi := tt.vm()
			var got []string
			for _, c := range PlanResources(Observe(vm, vmi), tt.cpu, resource.MustParse(tt.mem), tt.lu) {
				if c.Live {
					assert.Empty(t, c.Why)
					got = append(got, c.Field+":live")
					continue
				}
				got = append(got, c.Field+":restart:"+c.Why)
			}
			require.Len(t, got, len(tt.want), "%v", got)
			for i, w := range tt.want {
				parts := strings.SplitN(w, ":", 3)
				prefix := parts[0] + ":" + parts[1]
				assert.True(t, strings.HasPrefix(got[i], prefix), "%s: want %s", got[i], prefix)
				if len(parts) == 3 {
					assert.Contains(t, got[i], parts[2])
				}
			}
		})
	}

	t.Run("no running instance: a start applies everything", func(t *testing.T) {
		vm := BuildVM(testID, testOwner(), withCPUMem(1, "2Gi"))
		assert.Empty(t, PlanResources(Observe(vm, nil), 4, resource.MustParse("8Gi"), migrate))
	})
}

func TestObservationResources(t *testing.T) {
	vm := BuildVM(testID, testOwner(), withCPUMem(1, "2Gi"))
	vmi := mutatedVMI(vm)
	// Mid-hotplug: KubeVirt set the VMI's spec; the guest has not got it.
	vmi.Spec.Domain.CPU.Sockets = 2
	r, ok := Observe(vm, vmi).Resources()
	require.True(t, ok)
	assert.Equal(t, int64(1), r.CPU, "what the guest has: status.currentCPUTopology")
	assert.Equal(t, int64(4), r.MaxCPU)
	assert.Equal(t, "2Gi", r.Memory.String())
	assert.Equal(t, "8Gi", r.MaxMemory.String())

	vmi.Status.Phase = kubevirtv1.Scheduling
	_, ok = Observe(vm, vmi).Resources()
	assert.False(t, ok, "only a running instance has resources")
}

// TestReconcileKeepsCoresUntilRestart: a VM an earlier Wukong rendered
// (cpu as cores, a memory request) whose instance runs is left as it is by
// Reconcile, so an operator upgrade forces no restart; once the instance
// is gone (a restart, a stop), the VM gets sockets and no request, which
// the next start boots with.
func TestReconcileKeepsCoresUntilRestart(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	ns, owner := newNamespace(t, c)
	m := baseMachine() // cpu 2, memory 4Gi
	_, err := Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	key := client.ObjectKey{Namespace: ns, Name: m.Name}

	// What the earlier version applied, under the same field manager.
	withKind, err := apply.OwnerWithKind(owner, c.Scheme())
	require.NoError(t, err)
	legacy := BuildVM(testID, withKind, m)
	legacy.Spec.RunStrategy = liveVM(t, c, key).Spec.RunStrategy
	d := &legacy.Spec.Template.Spec.Domain
	d.CPU = &kubevirtv1.CPU{Cores: 2, Sockets: 1, Threads: 1}
	d.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi")}
	_, err = apply.Apply(ctx, c, legacy, testID)
	require.NoError(t, err)
	vm := liveVM(t, c, key)
	require.Equal(t, uint32(2), vm.Spec.Template.Spec.Domain.CPU.Cores, "the legacy render is in place")

	// Its instance runs (as KubeVirt's VM controller made it).
	vmi := mutatedVMI(vm)
	vmi.Namespace = ns
	vmi.OwnerReferences = []metav1.OwnerReference{{APIVersion: kubevirtv1.GroupVersion.String(), Kind: "VirtualMachine", Name: vm.Name, UID: vm.UID, Controller: ptr.To(true)}}
	require.NoError(t, c.Create(ctx, vmi))

	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	after := liveVM(t, c, key)
	assert.Equal(t, vm.ResourceVersion, after.ResourceVersion, "the running VM is not rewritten: no RestartRequired on upgrade")
	assert.Equal(t, kubevirtv1.CPU{Cores: 2, Sockets: 1, Threads: 1}, *after.Spec.Template.Spec.Domain.CPU)

	// KubeVirt restarts it: the instance goes; the next start boots with sockets.
	require.NoError(t, c.Delete(ctx, vmi))
	_, err = Reconcile(ctx, c, testID, owner, m)
	require.NoError(t, err)
	after = liveVM(t, c, key)
	assert.Equal(t, kubevirtv1.CPU{Sockets: 2, Cores: 1, Threads: 1}, *after.Spec.Template.Spec.Domain.CPU, "sockets after the restart")
	assert.NotContains(t, after.Spec.Template.Spec.Domain.Resources.Requests, corev1.ResourceMemory, "the memory request is dropped")
	assert.Equal(t, "4Gi", after.Spec.Template.Spec.Domain.Memory.Guest.String())
}

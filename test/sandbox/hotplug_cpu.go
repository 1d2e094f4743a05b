package sandbox

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// CPU and memory hotplug (issue #34), played as KubeVirt v1.9.0 plays it.
// KubeVirt's own VMI mutator (the real virt-api admission the sandbox
// runs) gives each new VMI spec.domain.cpu.maxSockets and, for a guest it
// can hotplug, spec.domain.memory.maxGuest, plus status.currentCPUTopology
// and status.memory (pkg/defaults/defaults.go setupHotplug,
// setCurrentCPUTopologyStatus, setGuestMemoryStatus). Then, on a running
// VMI, with the KubeVirt CR's vmRolloutStrategy LiveUpdate (or unset):
//
//   - the VM controller (pkg/virt-controller/watch/vm/vm.go
//     handleCPUChangeRequest, handleMemoryHotplugRequest), when the VM has
//     no RestartRequired for a non-live field: a template with more
//     sockets than the VMI, up to its maxSockets, is copied to the VMI's
//     spec (VMICPUsPatch, a JSON patch with a test of the old value); more
//     than maxSockets sets the VM condition RestartRequired "CPU sockets
//     updated in template spec to a value higher than what's available",
//     fewer "Reduction of CPU socket count requires a restart". Guest
//     memory likewise (only for a migratable VMI with maxGuest: below
//     status.memory.guestAtBoot "memory updated in template spec to a
//     value lower than what the VM started with", above maxGuest "... to a
//     value higher than what's available", not migratable
//     "memory updated in template spec. Memory-hotplug is only available
//     for migratable VMs", no maxGuest "... is not available for this VM
//     configuration").
//   - the VMI controller (pkg/virt-controller/watch/vmi/lifecycle.go
//     requireCPUHotplug, requireMemoryHotplug): a VMI whose spec vCPUs
//     differ from status.currentCPUTopology gets the condition
//     HotVCPUChange=True; one whose guest memory differs from
//     status.memory.guestRequested HotMemoryChange=True.
//   - the workload updater (pkg/virt-controller/watch/workload-updater/
//     workload-updater.go): when the KubeVirt CR's
//     spec.workloadUpdateStrategy.workloadUpdateMethods lists LiveMigrate,
//     a running, migratable VMI with such a condition and no unfinished
//     migration gets a VirtualMachineInstanceMigration generateName
//     kubevirt-workload-update-, annotated kubevirt.io/workloadUpdateMigration
//     "", priority user-triggered, and the Event SuccessfulCreate "Created
//     Migration <name> for automated workload update" on the VMI. A VMI
//     that cannot migrate keeps its condition and is never migrated.
//   - the target virt-handler (pkg/virt-handler/migration-target.go
//     hotplugCPU, hotplugMemory), when the migration completes:
//     status.currentCPUTopology takes the spec's sockets, cores and
//     threads and HotVCPUChange goes; status.memory.guestRequested (and,
//     as the guest takes it, guestCurrent) takes the spec's guest memory
//     and HotMemoryChange goes.
//
// With vmRolloutStrategy Stage a change of sockets or guest memory is a
// non-live change like any other (RestartRequired, MessageRestartRequired).

// Messages of the VM condition RestartRequired set by KubeVirt's CPU and
// memory handlers (pkg/virt-controller/watch/vm/vm.go, v1.9.0).
const (
	MessageCPUAboveMax       = "CPU sockets updated in template spec to a value higher than what's available"
	MessageCPUReduction      = "Reduction of CPU socket count requires a restart"
	MessageMemoryBelowBoot   = "memory updated in template spec to a value lower than what the VM started with"
	MessageMemoryAboveMax    = "memory updated in template spec to a value higher than what's available"
	MessageMemoryNotMigrates = "memory updated in template spec. Memory-hotplug is only available for migratable VMs"
	MessageMemoryNoHotplug   = "memory updated in template spec. Memory-hotplug is not available for this VM configuration"
)

// Names KubeVirt gives what the workload updater makes.
const (
	// WorkloadUpdateMigrationPrefix is the generateName of its migrations.
	WorkloadUpdateMigrationPrefix = "kubevirt-workload-update-"
	// conditionHotVCPUChange and conditionHotMemoryChange are the VMI
	// conditions of a pending hotplug.
	conditionHotVCPUChange   = kubevirtv1.VirtualMachineInstanceVCPUChange
	conditionHotMemoryChange = kubevirtv1.VirtualMachineInstanceMemoryChange
)

// cpuMemoryRestartRequired: the template changed a CPU or memory field the
// running VMI cannot take live whatever the rollout strategy: cores,
// threads, or the memory request (KubeVirt's syncRestartRequired copies
// only sockets and guest memory over before comparing). Sockets and guest
// memory are hotplugResources'.
func cpuMemoryRestartRequired(tmpl, running *kubevirtv1.VirtualMachineInstanceSpec) bool {
	cpu := func(s *kubevirtv1.VirtualMachineInstanceSpec) [2]uint32 {
		if s.Domain.CPU == nil {
			return [2]uint32{}
		}
		return [2]uint32{s.Domain.CPU.Cores, s.Domain.CPU.Threads}
	}
	req := func(s *kubevirtv1.VirtualMachineInstanceSpec) string {
		q, ok := s.Domain.Resources.Requests[corev1.ResourceMemory]
		if !ok {
			return ""
		}
		return q.String()
	}
	return cpu(tmpl) != cpu(running) || req(tmpl) != req(running)
}

// hotplugConfig is what KubeVirt's controllers read from the KubeVirt CR
// for hotplug: the rollout strategy (LiveUpdate when unset) and whether
// the workload updater may migrate.
type hotplugConfig struct {
	liveUpdate, migrate bool
}

func readHotplugConfig(ctx context.Context, c client.Reader) (hotplugConfig, error) {
	list := &kubevirtv1.KubeVirtList{}
	if err := c.List(ctx, list, client.InNamespace(KubeVirtNamespace)); err != nil {
		return hotplugConfig{}, err
	}
	cfg := hotplugConfig{liveUpdate: true}
	for _, kv := range list.Items {
		if rs := kv.Spec.Configuration.VMRolloutStrategy; rs != nil {
			cfg.liveUpdate = *rs == kubevirtv1.VMRolloutStrategyLiveUpdate
		}
		if slices.Contains(kv.Spec.WorkloadUpdateStrategy.WorkloadUpdateMethods, kubevirtv1.WorkloadUpdateMethodLiveMigrate) {
			cfg.migrate = true
		}
	}
	return cfg, nil
}

// hotplugResources plays the VM controller's CPU and memory handlers, the
// VMI controller's hotplug conditions and the workload updater for a
// running vmi of vm (see above). vm's status (RestartRequired) is changed
// in place; the VMI is written when its spec or conditions change.
func (r *kubevirtSim) hotplugResources(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) error {
	// The VM controller's handlers look at any VMI that is not being
	// deleted (handleCPUChangeRequest, handleMemoryHotplugRequest); the
	// VMI controller's conditions and the workload updater only at a
	// running one.
	if vm.Spec.Template == nil || vmi.DeletionTimestamp != nil || vmi.IsFinal() {
		return nil
	}
	if vm.Spec.Instancetype != nil {
		// Sized by an instance type: the template has no cpu or memory to
		// compare (KubeVirt hot-plugs a changed instance type reference,
		// which the sandbox does not play).
		return nil
	}
	running := vmi.Status.Phase == kubevirtv1.Running
	cfg, err := readHotplugConfig(ctx, r.c)
	if err != nil {
		return err
	}
	tmpl := &vm.Spec.Template.Spec.Domain
	d := &vmi.Spec.Domain
	sockets := func(c *kubevirtv1.CPU) uint32 {
		if c == nil {
			return 0
		}
		return c.Sockets
	}
	cpuChanged := sockets(tmpl.CPU) != sockets(d.CPU)
	memChanged := tmpl.Memory != nil && tmpl.Memory.Guest != nil && d.Memory != nil && d.Memory.Guest != nil &&
		!tmpl.Memory.Guest.Equal(*d.Memory.Guest)
	if !cfg.liveUpdate {
		if cpuChanged || memChanged {
			setVMCondition(vm, kubevirtv1.VirtualMachineRestartRequired, corev1.ConditionTrue, "", MessageRestartRequired)
		}
		return nil
	}
	if c := findCondition(vm.Status.Conditions, vmCondFields, kubevirtv1.VirtualMachineRestartRequired); c != nil && c.Message == MessageRestartRequired {
		return nil // a non-live change is pending: the handlers are skipped
	}
	before := vmi.DeepCopy()
	restart := func(msg string) {
		setVMCondition(vm, kubevirtv1.VirtualMachineRestartRequired, corev1.ConditionTrue, "", msg)
	}
	if cpuChanged && d.CPU != nil && !migrating(vmi) && vmiCondition(vmi, conditionHotVCPUChange).Status != corev1.ConditionTrue {
		switch want := sockets(tmpl.CPU); {
		case want > d.CPU.MaxSockets:
			restart(MessageCPUAboveMax)
		case want < d.CPU.Sockets:
			restart(MessageCPUReduction)
		default:
			d.CPU.Sockets = want
			log.FromContext(ctx).Info("virt-controller: hotplugging cpu", "sockets", want)
		}
	}
	if memChanged && !migrating(vmi) && vmiCondition(vmi, conditionHotMemoryChange).Status != corev1.ConditionTrue {
		want := tmpl.Memory.Guest
		st := vmi.Status.Memory
		switch {
		case !vmi.IsMigratable():
			restart(MessageMemoryNotMigrates)
		case d.Memory.MaxGuest == nil:
			restart(MessageMemoryNoHotplug)
		case st != nil && st.GuestAtBoot != nil && want.Cmp(*st.GuestAtBoot) < 0:
			restart(MessageMemoryBelowBoot)
		case want.Cmp(*d.Memory.MaxGuest) > 0:
			restart(MessageMemoryAboveMax)
		default:
			g := want.DeepCopy()
			d.Memory.Guest = &g
			log.FromContext(ctx).Info("virt-controller: hotplugging memory", "guest", g.String())
		}
	}
	// The VMI controller's conditions.
	if t := vmi.Status.CurrentCPUTopology; running && t != nil && d.CPU != nil && d.CPU.MaxSockets > 0 &&
		vcpusOfCPU(d.CPU) != vcpusOfCPU(&kubevirtv1.CPU{Sockets: t.Sockets, Cores: t.Cores, Threads: t.Threads}) {
		if vmiCondition(vmi, conditionHotVCPUChange).Type == "" {
			setVMICondition(vmi, conditionHotVCPUChange, corev1.ConditionTrue, "", "")
		}
	}
	if st := vmi.Status.Memory; running && st != nil && st.GuestRequested != nil && d.Memory != nil && d.Memory.Guest != nil && d.Memory.MaxGuest != nil &&
		d.Memory.Guest.Value() != st.GuestRequested.Value() {
		if vmiCondition(vmi, conditionHotMemoryChange).Type == "" {
			setVMICondition(vmi, conditionHotMemoryChange, corev1.ConditionTrue, "", "")
		}
	}
	if !equalVMI(before, vmi) {
		if err := r.c.Update(ctx, vmi); err != nil {
			return err
		}
	}
	if !running {
		return nil
	}
	return r.workloadUpdate(ctx, vmi, cfg)
}

func equalVMI(a, b *kubevirtv1.VirtualMachineInstance) bool {
	return equality.Semantic.DeepEqual(a.Spec, b.Spec) && equality.Semantic.DeepEqual(a.Status.Conditions, b.Status.Conditions)
}

// vcpusOfCPU is hardware.GetNumberOfVCPUs.
func vcpusOfCPU(c *kubevirtv1.CPU) int64 {
	n := int64(0)
	for _, f := range []uint32{c.Sockets, c.Cores, c.Threads} {
		switch {
		case f == 0:
		case n == 0:
			n = int64(f)
		default:
			n *= int64(f)
		}
	}
	return n
}

// workloadUpdate is the workload updater for one VMI with a pending CPU or
// memory hotplug (isHotplugInProgress): a migration when the KubeVirt CR
// allows LiveMigrate, the VMI is migratable and no migration of it is
// unfinished.
func (r *kubevirtSim) workloadUpdate(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, cfg hotplugConfig) error {
	pending := vmiCondition(vmi, conditionHotVCPUChange).Type != "" || vmiCondition(vmi, conditionHotMemoryChange).Status == corev1.ConditionTrue
	if !pending || !cfg.migrate || !vmi.IsMigratable() || migrating(vmi) {
		return nil
	}
	list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
	if err := r.live.List(ctx, list, client.InNamespace(vmi.Namespace)); err != nil {
		return err
	}
	for _, m := range list.Items {
		if m.Spec.VMIName == vmi.Name && !m.IsFinal() {
			return nil
		}
	}
	m := &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: WorkloadUpdateMigrationPrefix,
			Namespace:    vmi.Namespace,
			Annotations: map[string]string{
				kubevirtv1.WorkloadUpdateMigrationAnnotation: "",
				SimulatedAnnotation:                          "true",
			},
		},
		Spec: kubevirtv1.VirtualMachineInstanceMigrationSpec{
			VMIName:  vmi.Name,
			Priority: ptr.To(kubevirtv1.PriorityUserTriggered),
		},
	}
	if err := r.c.Create(ctx, m); err != nil {
		return fmt.Errorf("creating workload update migration: %w", err)
	}
	log.FromContext(ctx).Info("workload updater: created migration for a hotplug", "vmi", vmi.Name, "migration", m.Name)
	return recordEvent(ctx, r.c, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", corev1.EventTypeNormal,
		"SuccessfulCreate", fmt.Sprintf("Created Migration %s for automated workload update", m.Name), "workload-update-controller", "")
}

// hotplugOnTarget is the target virt-handler's hotplugCPU and
// hotplugMemory as the migration completes: the guest takes the VMI's
// spec.
func hotplugOnTarget(vmi *kubevirtv1.VirtualMachineInstance) {
	if vmiCondition(vmi, conditionHotVCPUChange).Type != "" && vmi.Spec.Domain.CPU != nil {
		c := vmi.Spec.Domain.CPU
		vmi.Status.CurrentCPUTopology = &kubevirtv1.CPUTopology{Sockets: c.Sockets, Cores: c.Cores, Threads: c.Threads}
		removeVMICondition(vmi, conditionHotVCPUChange)
	}
	if vmiCondition(vmi, conditionHotMemoryChange).Type != "" && vmi.Spec.Domain.Memory != nil && vmi.Spec.Domain.Memory.Guest != nil {
		if vmi.Status.Memory == nil {
			vmi.Status.Memory = &kubevirtv1.MemoryStatus{}
		}
		g := vmi.Spec.Domain.Memory.Guest.DeepCopy()
		vmi.Status.Memory.GuestRequested = &g
		cur := resource.MustParse(g.String())
		vmi.Status.Memory.GuestCurrent = &cur
		removeVMICondition(vmi, conditionHotMemoryChange)
	}
}

package kubevirt

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CPU and memory hotplug (issue #34), as KubeVirt v1.9.0 does it.
//
// KubeVirt models hot-pluggable CPUs as sockets and hot-pluggable memory as
// spec.domain.memory.guest under a maximum: with the KubeVirt CR's
// spec.configuration.vmRolloutStrategy LiveUpdate (the default when unset,
// pkg/virt-config/virt-config.go IsVMRolloutStrategyLiveUpdate), the VMI
// mutator gives each new VMI spec.domain.cpu.maxSockets (the CR's
// liveUpdateConfiguration.maxCpuSockets, else sockets × maxHotplugRatio,
// default 4, at most 512 vCPUs) and, for guests it can hotplug,
// spec.domain.memory.maxGuest (the CR's maxGuest, else guest ×
// maxHotplugRatio) (pkg/defaults/defaults.go setupCPUHotplug,
// setupMemoryHotplug). A change of the VM template's sockets or guest memory
// on a running VM is then copied to the VMI by the VM controller
// (pkg/virt-controller/watch/vm/vm.go handleCPUChangeRequest,
// handleMemoryHotplugRequest), which sets the VMI condition HotVCPUChange or
// HotMemoryChange (pkg/virt-controller/watch/vmi/lifecycle.go); the
// workload updater migrates such a VMI (a VirtualMachineInstanceMigration
// generateName kubevirt-workload-update-, annotated
// kubevirt.io/workloadUpdateMigration, pkg/virt-controller/watch/
// workload-updater/workload-updater.go) when the KubeVirt CR's
// workloadUpdateStrategy.workloadUpdateMethods lists LiveMigrate and the VMI
// is migratable, and the target virt-handler gives the guest the new size
// (pkg/virt-handler/migration-target.go hotplugCPU, hotplugMemory:
// status.currentCPUTopology, status.memory.guestRequested). Anything else
// in the template (cores, threads, maxSockets, maxGuest,
// resources.requests) is not live-updatable: the VM gets the condition
// RestartRequired (syncRestartRequired), and while it has it KubeVirt
// applies no CPU or memory change live.
//
// So BuildVM renders cpu as sockets (one core, one thread each) and memory
// as the guest memory alone, and Reconcile keeps what a running VM booted
// with where changing it would force a restart (keepRunningTopology).

// LiveUpdate is what the cluster's KubeVirt CR says about applying CPU and
// memory changes to running VMs (ClusterLiveUpdate).
type LiveUpdate struct {
	// Rollout is spec.configuration.vmRolloutStrategy; empty when unset
	// (KubeVirt then uses LiveUpdate).
	Rollout kubevirtv1.VMRolloutStrategy
	// Migrate: spec.workloadUpdateStrategy.workloadUpdateMethods lists
	// LiveMigrate, so KubeVirt migrates a VMI to apply a CPU or memory
	// change (an empty list means no automated workload updates, KubeVirt
	// CRD).
	Migrate bool
	// CRs is how many KubeVirt CRs were found.
	CRs int
}

// LiveUpdateAllowed: the rollout strategy is LiveUpdate (or unset).
func (l LiveUpdate) LiveUpdateAllowed() bool {
	return l.Rollout == "" || l.Rollout == kubevirtv1.VMRolloutStrategyLiveUpdate
}

// ClusterLiveUpdate reads the KubeVirt CRs (the first one that sets a field
// wins, as ClusterEvictionStrategy does). A cluster without the KubeVirt
// kind gives an error wrapping ErrKubeVirtNotInstalled.
func ClusterLiveUpdate(ctx context.Context, c client.Reader) (LiveUpdate, error) {
	list := &kubevirtv1.KubeVirtList{}
	if err := c.List(ctx, list); err != nil {
		return LiveUpdate{}, wrapKubeVirt(errListKubeVirt, err)
	}
	out := LiveUpdate{CRs: len(list.Items)}
	for _, kv := range list.Items {
		if rs := kv.Spec.Configuration.VMRolloutStrategy; rs != nil && out.Rollout == "" {
			out.Rollout = *rs
		}
		if slices.Contains(kv.Spec.WorkloadUpdateStrategy.WorkloadUpdateMethods, kubevirtv1.WorkloadUpdateMethodLiveMigrate) {
			out.Migrate = true
		}
	}
	return out, nil
}

// VCPUs is the number of vCPUs of a topology, as KubeVirt counts them
// (pkg/util/hardware GetNumberOfVCPUs: sockets × cores × threads, a zero
// field not counted); 0 for nil.
func VCPUs(c *kubevirtv1.CPU) int64 {
	if c == nil {
		return 0
	}
	return vcpusOf(c.Sockets, c.Cores, c.Threads)
}

func vcpusOf(fields ...uint32) int64 {
	n := int64(0)
	for _, f := range fields {
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

// legacyMemory: the template carries resources.requests.memory, as every
// VM rendered before CPU and memory hotplug did (the guest memory was also
// the pod's request). A request is not live-updatable, so such a VM keeps
// it until a restart.
func legacyMemory(spec *kubevirtv1.VirtualMachineInstanceSpec) bool {
	_, ok := spec.Domain.Resources.Requests[corev1.ResourceMemory]
	return ok
}

// keepRunningTopology rewrites the CPU and memory of vm (built by BuildVM)
// so that applying it does not force a restart of the live VM's running
// instance: the live template's cores, threads, maxSockets, maxGuest and
// memory request are kept, and only what KubeVirt updates live (sockets,
// guest memory) follows the machine. That is what keeps a VM rendered
// before hotplug (cpu as cores on one socket, a memory request) running
// through an operator upgrade.
//
// It keeps them only while they cost nothing: the live VM has an instance
// that runs (not final, not being deleted), no stop is requested
// (virtctl stop/restart put one in status.stateChangeRequests) and KubeVirt
// does not already require a restart (VM condition RestartRequired). A
// stopped VM, or one whose restart is pending anyway, gets BuildVM's form,
// which the next start applies. Within a running VM:
//
//   - cpu: kept as sockets × the live cores × threads when cpu is a
//     multiple of cores × threads; otherwise BuildVM's sockets form (the
//     change then needs the restart KubeVirt asks for, and the restart
//     moves the VM to sockets).
//   - memory: a template with a memory request (legacy) keeps guest and
//     request unless memory changed; with a change BuildVM's form (no
//     request) goes out and the restart applies it. A template without one
//     keeps its maxGuest and takes the new guest memory.
func keepRunningTopology(vm, live *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
	if !keepsWhatItBooted(live, vmi) {
		return
	}
	want, was := &vm.Spec.Template.Spec.Domain, &live.Spec.Template.Spec.Domain
	if was.CPU != nil && want.CPU != nil {
		per := vcpusOf(was.CPU.Cores, was.CPU.Threads)
		if per < 1 {
			per = 1
		}
		if n := VCPUs(want.CPU); n%per == 0 {
			// Only the fields Wukong renders: others (a model a webhook
			// set) stay whoever's they are.
			want.CPU = &kubevirtv1.CPU{Sockets: uint32(n / per), Cores: was.CPU.Cores, Threads: was.CPU.Threads, MaxSockets: was.CPU.MaxSockets}
		}
	}
	if was.Memory == nil || was.Memory.Guest == nil || want.Memory == nil || want.Memory.Guest == nil {
		return
	}
	if legacyMemory(&live.Spec.Template.Spec) {
		if was.Memory.Guest.Cmp(*want.Memory.Guest) == 0 {
			g := was.Memory.Guest.DeepCopy()
			want.Memory.Guest = &g
			if was.Memory.MaxGuest != nil {
				mg := was.Memory.MaxGuest.DeepCopy()
				want.Memory.MaxGuest = &mg
			}
			want.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: was.Resources.Requests[corev1.ResourceMemory].DeepCopy()}
		}
		return
	}
	if was.Memory.MaxGuest != nil {
		mg := was.Memory.MaxGuest.DeepCopy()
		want.Memory.MaxGuest = &mg
	}
}

// keepsWhatItBooted: the live VM's instance runs (not final, not being
// deleted), no stop is requested and KubeVirt does not require a restart
// already, so a template change KubeVirt cannot apply live would cost a
// restart that nothing else asks for.
func keepsWhatItBooted(live *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
	return live != nil && live.Spec.Template != nil && vmi != nil && !vmi.IsFinal() && vmi.DeletionTimestamp == nil &&
		!restartPending(live) && !stopPending(live)
}

// keepRunningAccessCredentials leaves the access credentials out of vm
// (built by BuildVM) while the live VM's running instance was started
// without any (a VM rendered before SSH key propagation): KubeVirt applies
// spec.accessCredentials only when an instance starts and reports adding
// them as RestartRequired, so an operator upgrade would flag every
// running VM. Under keepsWhatItBooted's conditions they are kept out; a
// stopped VM, or one whose restart is pending anyway, gets them, and its
// next start applies them. Until then the keys of the running guest are
// cloud-init's (Observation.AccessCredentials reports none configured).
func keepRunningAccessCredentials(vm, live *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
	if !keepsWhatItBooted(live, vmi) || len(live.Spec.Template.Spec.AccessCredentials) > 0 || len(vmi.Spec.AccessCredentials) > 0 {
		return
	}
	vm.Spec.Template.Spec.AccessCredentials = nil
}

// restartPending: KubeVirt reports the VM RestartRequired.
func restartPending(vm *kubevirtv1.VirtualMachine) bool {
	return Observe(vm, nil).RestartRequired()
}

// stopPending: a stop request (virtctl stop or restart) waits in
// status.stateChangeRequests.
func stopPending(vm *kubevirtv1.VirtualMachine) bool {
	for _, r := range vm.Status.StateChangeRequests {
		if r.Action == kubevirtv1.StopRequest {
			return true
		}
	}
	return false
}

// Resources is the CPU and memory of the running instance.
type Resources struct {
	// CPU is the vCPUs the guest has (status.currentCPUTopology, which the
	// target virt-handler updates after a hotplug; the spec's before
	// KubeVirt reported one).
	CPU int64
	// MaxCPU is how far CPU can grow live in this instance: maxSockets ×
	// cores × threads, fixed when it started; 0 without CPU hotplug.
	MaxCPU int64
	// Memory is the guest memory the guest was given
	// (status.memory.guestRequested, else the spec's guest memory); nil
	// when unknown.
	Memory *resource.Quantity
	// MaxMemory is how far Memory can grow live (spec.domain.memory.maxGuest,
	// fixed when it started); nil without memory hotplug.
	MaxMemory *resource.Quantity
	// BootMemory is the guest memory it started with
	// (status.memory.guestAtBoot): below it only a restart goes.
	BootMemory *resource.Quantity
	// CoresPerSocket is cores × threads of the running topology (1 for
	// Wukong's sockets form; more for a VM rendered before hotplug).
	CoresPerSocket int64
	// LegacyMemory: the instance booted with a memory request (a VM
	// rendered before hotplug).
	LegacyMemory bool
}

// Resources reads the running instance's CPU and memory; ok is false
// without an instance that runs.
func (o Observation) Resources() (r Resources, ok bool) {
	if o.vmi == nil || o.vmi.IsFinal() || o.vmi.Status.Phase != kubevirtv1.Running {
		return Resources{}, false
	}
	d := o.vmi.Spec.Domain
	st := o.vmi.Status
	r.CPU = VCPUs(d.CPU)
	if t := st.CurrentCPUTopology; t != nil {
		r.CPU = vcpusOf(t.Sockets, t.Cores, t.Threads)
	}
	if d.CPU != nil {
		r.CoresPerSocket = max(vcpusOf(d.CPU.Cores, d.CPU.Threads), 1)
		if d.CPU.MaxSockets > 0 {
			r.MaxCPU = int64(d.CPU.MaxSockets) * r.CoresPerSocket
		}
	}
	if d.Memory != nil && d.Memory.Guest != nil {
		r.Memory = ptrQuantity(*d.Memory.Guest)
	}
	if st.Memory != nil {
		if st.Memory.GuestRequested != nil {
			r.Memory = ptrQuantity(*st.Memory.GuestRequested)
		}
		if st.Memory.GuestAtBoot != nil {
			r.BootMemory = ptrQuantity(*st.Memory.GuestAtBoot)
		}
	}
	if d.Memory != nil && d.Memory.MaxGuest != nil {
		r.MaxMemory = ptrQuantity(*d.Memory.MaxGuest)
	}
	r.LegacyMemory = legacyMemory(&o.vmi.Spec)
	return r, true
}

func ptrQuantity(q resource.Quantity) *resource.Quantity {
	c := canonicalQuantity(q)
	return &c
}

// ResourceChange is one of cpu and memory differing between what the
// machine asks for and what its running guest has.
type ResourceChange struct {
	// Field is "cpu" or "memory" (the Machine field).
	Field string
	// From is what the guest has, To what the machine asks for (a vCPU
	// count, or a quantity).
	From, To string
	// Live: KubeVirt applies it to the running guest (through a live
	// migration), no restart; Why is then empty.
	Live bool
	// Why says why it waits for a restart, and what the limit is.
	Why string
}

// PlanResources compares the machine's cpu and memory with the running
// instance o observed and says, for each that differs, whether KubeVirt
// applies it live or only at a restart, following KubeVirt v1.9.0's rules
// (pkg/virt-controller/watch/vm/vm.go handleCPUChangeRequest,
// handleMemoryHotplugRequest, syncRestartRequired; the workload updater
// for the migration). It returns nothing without a running instance
// (a start applies everything). lu is the cluster's KubeVirt CR
// (ClusterLiveUpdate).
func PlanResources(o Observation, cpu int32, memory resource.Quantity, lu LiveUpdate) []ResourceChange {
	r, ok := o.Resources()
	if !ok {
		return nil
	}
	var out []ResourceChange
	// What blocks every live change, in KubeVirt's order of checks.
	common := func() string {
		switch {
		case !lu.LiveUpdateAllowed():
			return fmt.Sprintf("the KubeVirt CR sets vmRolloutStrategy %s, so KubeVirt applies changes only at a restart "+
				"(an administrator sets spec.configuration.vmRolloutStrategy: LiveUpdate)", lu.Rollout)
		case o.otherRestartPending():
			return "KubeVirt already requires a restart for another change, and applies no CPU or memory change live until then"
		}
		return ""
	}
	migration := func() string {
		if st, _, msg, known := o.LiveMigratable(); known && st == corev1.ConditionFalse {
			return "KubeVirt applies it through a live migration and the VM cannot live-migrate (" + or(msg, "LiveMigratable is False") + ")"
		}
		if !lu.Migrate {
			return "KubeVirt applies it through a live migration, which it starts only when the KubeVirt CR's " +
				"spec.workloadUpdateStrategy.workloadUpdateMethods lists LiveMigrate (an administrator adds it)"
		}
		return ""
	}
	if want := int64(cpu); want != r.CPU && want > 0 {
		c := ResourceChange{Field: "cpu", From: fmt.Sprint(r.CPU), To: fmt.Sprint(want)}
		switch {
		case want < r.CPU:
			c.Why = fmt.Sprintf("cpu %d is less than the %d the guest has: KubeVirt removes CPUs only at a restart", want, r.CPU)
		case want%r.CoresPerSocket != 0:
			c.Why = fmt.Sprintf("the VM runs with %d cores per socket (rendered before CPU hotplug) and cpu %d is not a multiple of it: "+
				"the restart moves it to one core per socket, after which cpu grows live", r.CoresPerSocket, want)
		case common() != "":
			c.Why = common()
		case r.MaxCPU == 0:
			c.Why = "KubeVirt did not set up CPU hotplug for this instance (no maxSockets)"
		case want > r.MaxCPU:
			c.Why = fmt.Sprintf("cpu %d is above this instance's hot-plug maximum of %d vCPUs (maxSockets, fixed when it started: the KubeVirt CR's "+
				"liveUpdateConfiguration.maxCpuSockets, else maxHotplugRatio × sockets)", want, r.MaxCPU)
		case migration() != "":
			c.Why = migration()
		default:
			c.Live = true
		}
		out = append(out, c)
	}
	if r.Memory != nil && !memory.IsZero() && memory.Cmp(*r.Memory) != 0 {
		to := canonicalQuantity(memory)
		c := ResourceChange{Field: "memory", From: r.Memory.String(), To: to.String()}
		switch {
		case r.BootMemory != nil && memory.Cmp(*r.BootMemory) < 0:
			c.Why = fmt.Sprintf("memory %s is less than the %s the guest started with: KubeVirt goes below it only at a restart",
				c.To, r.BootMemory.String())
		case r.LegacyMemory:
			c.Why = "the VM runs with the memory request of a Wukong before memory hotplug: the restart drops it, after which memory grows live"
		case common() != "":
			c.Why = common()
		case r.MaxMemory == nil:
			c.Why = "KubeVirt did not set up memory hotplug for this instance (it does for x86_64 guests of at least 1Gi, in 2Mi steps)"
		case memory.Cmp(*r.MaxMemory) > 0:
			c.Why = fmt.Sprintf("memory %s is above this instance's hot-plug maximum of %s (maxGuest, fixed when it started: the KubeVirt CR's "+
				"liveUpdateConfiguration.maxGuest, else maxHotplugRatio × guest memory)", c.To, r.MaxMemory.String())
		case memory.Value()%hotplugBlock != 0:
			c.Why = fmt.Sprintf("memory %s is not a multiple of 2Mi, the block KubeVirt hot-plugs memory in", c.To)
		case migration() != "":
			c.Why = migration()
		default:
			c.Live = true
		}
		out = append(out, c)
	}
	return out
}

// hotplugBlock is KubeVirt's memory hotplug alignment (pkg/liveupdate/memory
// HotplugBlockAlignmentBytes, 2MiB).
const hotplugBlock = 2 << 20

// MessageNonLiveChange is the message of the VM condition RestartRequired
// KubeVirt sets when a template field it cannot update live changed
// (pkg/virt-controller/watch/vm/vm.go syncRestartRequired).
const MessageNonLiveChange = "a non-live-updatable field was changed in the template spec"

// otherRestartPending: KubeVirt's VM has RestartRequired for a template
// field it cannot update live (MessageNonLiveChange), so its VM controller
// skips the CPU and memory handlers until the restart. (RestartRequired set
// by those handlers themselves, for a shrink or a change past the maximum,
// carries their own messages and is re-evaluated on every sync.) Callers
// rule out first the changes that explain the condition themselves (a
// legacy topology or memory request being replaced).
func (o Observation) otherRestartPending() bool {
	c := o.vmCondition(kubevirtv1.VirtualMachineRestartRequired)
	return c != nil && c.Status == corev1.ConditionTrue && c.Message == MessageNonLiveChange
}

// RestartRequiredMessage is the message of KubeVirt's VM condition
// RestartRequired ("" when it is not True).
func (o Observation) RestartRequiredMessage() string {
	c := o.vmCondition(kubevirtv1.VirtualMachineRestartRequired)
	if c == nil || c.Status != corev1.ConditionTrue {
		return ""
	}
	return c.Message
}

// dropLegacyRequest removes the memory request of a legacy template
// (legacyMemory) from the live VM when vm, the one about to be applied, has
// none, and returns the resourceVersion the VM has then ("" when nothing
// was written: rv stays). Server-Side Apply cannot do it: removing the
// last field Wukong owns in spec.template.spec.domain.resources leaves the
// object null, which the VirtualMachine CRD refuses ("resources in body
// must be of type object: null", kubernetes/kubernetes#117447). So a JSON
// patch, conditional on rv, removes the whole resources object when the
// request is all it holds (the legacy render), else only the request.
func dropLegacyRequest(ctx context.Context, c client.Client, vm, live *kubevirtv1.VirtualMachine, rv string) (string, error) {
	if live == nil || live.Spec.Template == nil || !legacyMemory(&live.Spec.Template.Spec) || legacyMemory(&vm.Spec.Template.Spec) {
		return "", nil
	}
	res := live.Spec.Template.Spec.Domain.Resources
	path := "/spec/template/spec/domain/resources"
	if len(res.Requests) > 1 || len(res.Limits) > 0 || res.OvercommitGuestOverhead {
		path += "/requests/memory"
	}
	patch := fmt.Sprintf(`[{"op":"test","path":"/metadata/resourceVersion","value":%q},{"op":"remove","path":%q}]`, rv, path)
	obj := live.DeepCopy()
	if err := c.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, []byte(patch))); err != nil {
		return "", wrapKubeVirt(errApplyVM, err)
	}
	return obj.ResourceVersion, nil
}

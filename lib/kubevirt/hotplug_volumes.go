package kubevirt

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KubeVirt feature gates that decide volume hotplug (kubevirt
// pkg/virt-config/featuregate active.go and inactive.go, v1.9.0).
const (
	// GateDeclarativeHotplugVolumes lets virt-controller hot-plug a
	// hotpluggable DataVolume or PVC volume added to a running VM's
	// template, and unplug one removed from it. Beta in v1.9.0: on unless
	// the KubeVirt CR lists it in disabledFeatureGates.
	GateDeclarativeHotplugVolumes = "DeclarativeHotplugVolumes"
	// GateHotplugVolumes is the deprecated imperative hotplug (virtctl
	// addvolume); with it enabled virt-controller skips declarative hotplug
	// (pkg/virt-controller/watch/vm/vm.go handleDeclarativeVolumeHotplug).
	GateHotplugVolumes = "HotplugVolumes"
)

// LiveUpdates says which changes to a running machine the cluster's KubeVirt
// applies without a restart, as read from the KubeVirt CR
// (ReadLiveUpdates). The zero value allows nothing.
type LiveUpdates struct {
	// Volumes: a disk added to a running machine is hot-plugged, and a
	// hot-plugged disk removed from it is unplugged.
	Volumes bool
	// VolumesWhyNot says why Volumes is false, naming the KubeVirt CR
	// setting (e.g. "KubeVirt's vmRolloutStrategy is Stage").
	VolumesWhyNot string
	// RolloutStrategy is spec.configuration.vmRolloutStrategy, LiveUpdate
	// when unset (KubeVirt v1.9's default: virt-config
	// DefaultVMRolloutStrategy, IsVMRolloutStrategyLiveUpdate).
	RolloutStrategy kubevirtv1.VMRolloutStrategy
}

// gateEnabled is KubeVirt's featuregate.IsEnabled for a Beta gate (v1.9.0
// pkg/virt-config/featuregate/feature-gates.go): listed in featureGates
// wins, then listed in disabledFeatureGates, else on.
func gateEnabledBeta(dc *kubevirtv1.DeveloperConfiguration, gate string) bool {
	if dc == nil {
		return true
	}
	if slices.Contains(dc.FeatureGates, gate) {
		return true
	}
	return !slices.Contains(dc.DisabledFeatureGates, gate)
}

// LiveUpdatesOf is what the KubeVirt CRs kvs allow (the first CR not being
// deleted; KubeVirt runs with one). Without a CR nothing is allowed.
//
// Volumes needs, in KubeVirt v1.9.0 terms: GateDeclarativeHotplugVolumes
// enabled and GateHotplugVolumes not (vm.go handleDeclarativeVolumeHotplug,
// which patches the hotpluggable volumes of the VM template into the
// running VMI: pkg/storage/hotplug/hotplug.go HandleDeclarativeVolumes),
// and vmRolloutStrategy LiveUpdate. KubeVirt itself hot-plugs a
// hotpluggable volume whatever the rollout strategy (syncRestartRequired's
// validLiveUpdateVolumes accepts it); Wukong follows an administrator's
// Stage and writes such a disk as an ordinary one, so it waits for the
// restart like every other staged change.
func LiveUpdatesOf(kvs []kubevirtv1.KubeVirt) LiveUpdates {
	var kv *kubevirtv1.KubeVirt
	for i := range kvs {
		if kvs[i].DeletionTimestamp == nil {
			kv = &kvs[i]
			break
		}
	}
	if kv == nil {
		return LiveUpdates{VolumesWhyNot: "no KubeVirt CR (kubevirt.io/v1 KubeVirt) was found"}
	}
	conf := kv.Spec.Configuration
	lu := LiveUpdates{RolloutStrategy: kubevirtv1.VMRolloutStrategyLiveUpdate}
	if conf.VMRolloutStrategy != nil && *conf.VMRolloutStrategy != "" {
		lu.RolloutStrategy = *conf.VMRolloutStrategy
	}
	dc := conf.DeveloperConfiguration
	switch {
	case lu.RolloutStrategy != kubevirtv1.VMRolloutStrategyLiveUpdate:
		lu.VolumesWhyNot = fmt.Sprintf("KubeVirt's vmRolloutStrategy is %s", lu.RolloutStrategy)
	case !gateEnabledBeta(dc, GateDeclarativeHotplugVolumes):
		lu.VolumesWhyNot = "KubeVirt's DeclarativeHotplugVolumes feature gate is disabled"
	case dc != nil && slices.Contains(dc.FeatureGates, GateHotplugVolumes):
		lu.VolumesWhyNot = "KubeVirt's deprecated HotplugVolumes feature gate is enabled, which turns declarative volume hotplug off"
	default:
		lu.Volumes = true
	}
	return lu
}

// ReadLiveUpdates lists the KubeVirt CRs (every namespace) and returns
// LiveUpdatesOf them. A cluster that does not serve the KubeVirt kind
// allows nothing (no error).
func ReadLiveUpdates(ctx context.Context, c client.Reader) (LiveUpdates, error) {
	list := &kubevirtv1.KubeVirtList{}
	if err := c.List(ctx, list); err != nil {
		if meta.IsNoMatchError(err) {
			return LiveUpdatesOf(nil), nil
		}
		return LiveUpdates{}, fmt.Errorf("%s: %w", errListKubeVirt, err)
	}
	return LiveUpdatesOf(list.Items), nil
}

// Kinds of LiveChange.
const (
	LiveDisk = "disk"
	LiveNIC  = "nic"
)

// Actions of LiveChange.
const (
	LiveAttach = "attach"
	LiveDetach = "detach"
)

// LiveChange is one device a running machine gains or loses without a
// restart.
type LiveChange struct {
	// Kind is LiveDisk or LiveNIC.
	Kind string
	// Name is the disk's or NIC's name.
	Name string
	// Action is LiveAttach or LiveDetach.
	Action string
}

func (c LiveChange) String() string {
	what := "disk"
	if c.Kind == LiveNIC {
		what = "NIC"
	}
	if c.Action == LiveDetach {
		return fmt.Sprintf("detaching %s %s from the running machine", what, c.Name)
	}
	return fmt.Sprintf("attaching %s %s to the running machine", what, c.Name)
}

// LivePlan is how the difference between a Machine and its running
// instance reaches the guest: Live lists the devices attached or detached
// without a restart, Restart the changes of disks and NICs that wait for
// one, each saying why (sorted). Both are empty when no instance runs.
type LivePlan struct {
	Live    []LiveChange
	Restart []string
}

// Unplug is a NIC the running instance still has but the Machine no
// longer lists: BuildVM keeps its interface, with state absent, and its
// network in the VM template until KubeVirt has unplugged it (KubeVirt's
// unplug: pkg/network/controllers/vm.go; the VM controller drops the
// interface from the template itself once the VMI no longer has it,
// clearDetachedIfacesFromVM).
type Unplug struct {
	Interface kubevirtv1.Interface
	Network   kubevirtv1.Network
}

// running reports whether vmi is an instance KubeVirt can change live: it
// exists, is not being deleted and has not finished.
func running(vmi *kubevirtv1.VirtualMachineInstance) bool {
	return vmi != nil && vmi.DeletionTimestamp == nil && !vmi.IsFinal()
}

// isHotpluggable reports whether v is a DataVolume or PVC volume marked
// hotpluggable (KubeVirt pkg/storage/types IsDeclarativeHotplugVolume).
func isHotpluggable(v *kubevirtv1.Volume) bool {
	if v == nil {
		return false
	}
	return (v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.Hotpluggable) ||
		(v.DataVolume != nil && v.DataVolume.Hotpluggable)
}

func volumesByName(vols []kubevirtv1.Volume) map[string]*kubevirtv1.Volume {
	out := make(map[string]*kubevirtv1.Volume, len(vols))
	for i := range vols {
		out[vols[i].Name] = &vols[i]
	}
	return out
}

// PlanLive decides how m's disks and NICs reach a VM whose live object is
// live (nil before it exists) and instance vmi (nil when none), on a
// cluster that allows lu. It returns m with Disk.Hotpluggable set and
// Machine.Unplug filled, and the plan.
//
// Disks: a disk the live template has keeps its form (hotpluggable or
// not), so a restart never moves a disk between the two. A disk the
// template does not have yet becomes hotpluggable only while an instance
// runs, the cluster allows it (lu.Volumes) and it is not the boot disk;
// otherwise it is an ordinary disk that the instance gets at its next
// start (KubeVirt reports RestartRequired: validLiveUpdateVolumes in
// pkg/virt-controller/watch/vm/vm.go refuses a new volume that is not
// hotpluggable). A removed disk is detached live only if the instance has
// it as a hotpluggable volume; one attached when the instance started
// stays until a restart (validLiveUpdateVolumes again).
//
// NICs: a NIC the instance does not have is hot-plugged when bound by
// bridge or SR-IOV (KubeVirt's applyDynamicIfaceRequestOnVMI,
// pkg/network/controllers/vm.go v1.9.0, whatever the rollout strategy;
// SR-IOV through a live migration); other bindings wait for a restart, and
// KubeVirt does not say so itself (its netvmliveupdate.IsRestartRequired
// looks only at interfaces the instance has), so the plan does. A removed
// NIC the instance has is unplugged when bridge-bound (state absent is
// "supported only for bridge binding": pkg/network/admitter/admit.go);
// other bindings wait for a restart.
func PlanLive(m Machine, live *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, lu LiveUpdates) (Machine, LivePlan) {
	var tmpl map[string]*kubevirtv1.Volume
	if live != nil && live.Spec.Template != nil {
		tmpl = volumesByName(live.Spec.Template.Spec.Volumes)
	}
	disks := slices.Clone(m.Disks)
	m.Disks = disks
	m.Unplug = nil
	run := running(vmi)
	boot := bootDisk(m)
	for i := range disks {
		d := &disks[i]
		if v, ok := tmpl[d.Name]; ok {
			d.Hotpluggable = isHotpluggable(v)
			continue
		}
		d.Hotpluggable = run && lu.Volumes && d.Name != boot
	}
	if !run {
		return m, LivePlan{}
	}
	var plan LivePlan
	planDisks(m, vmi, boot, lu, &plan)
	m.Unplug = planNICs(m, vmi, &plan)
	sort.Strings(plan.Restart)
	return m, plan
}

// bootDisk is the name of m's boot disk (the one with Boot, else the
// first), "" without disks.
func bootDisk(m Machine) string {
	for _, d := range m.Disks {
		if d.Boot {
			return d.Name
		}
	}
	if len(m.Disks) > 0 {
		return m.Disks[0].Name
	}
	return ""
}

func planDisks(m Machine, vmi *kubevirtv1.VirtualMachineInstance, boot string, lu LiveUpdates, plan *LivePlan) {
	have := volumesByName(vmi.Spec.Volumes)
	want := map[string]bool{}
	for _, d := range m.Disks {
		want[d.Name] = true
		if _, ok := have[d.Name]; ok {
			continue
		}
		switch {
		case d.Hotpluggable:
			plan.Live = append(plan.Live, LiveChange{Kind: LiveDisk, Name: d.Name, Action: LiveAttach})
		case d.Name == boot:
			plan.Restart = append(plan.Restart, fmt.Sprintf("disk %s: a new boot disk is used from the next start", d.Name))
		case lu.Volumes:
			// Added while no instance ran, then the instance started
			// without it (an ordinary disk keeps its form).
			plan.Restart = append(plan.Restart, fmt.Sprintf("disk %s: it was written as an ordinary disk before the machine started", d.Name))
		default:
			plan.Restart = append(plan.Restart, fmt.Sprintf("disk %s: attached at the next start: %s", d.Name, lu.VolumesWhyNot))
		}
	}
	for _, v := range vmi.Spec.Volumes {
		if want[v.Name] || (v.PersistentVolumeClaim == nil && v.DataVolume == nil) {
			continue
		}
		if isHotpluggable(&v) {
			plan.Live = append(plan.Live, LiveChange{Kind: LiveDisk, Name: v.Name, Action: LiveDetach})
			continue
		}
		plan.Restart = append(plan.Restart, fmt.Sprintf("disk %s: it was attached when the machine started; KubeVirt detaches only hot-plugged disks", v.Name))
	}
}

func planNICs(m Machine, vmi *kubevirtv1.VirtualMachineInstance, plan *LivePlan) []Unplug {
	have := map[string]kubevirtv1.Interface{}
	for _, i := range vmi.Spec.Domain.Devices.Interfaces {
		have[i.Name] = i
	}
	want := map[string]bool{PodNetworkName: true}
	for _, n := range m.NICs {
		want[n.Name] = true
		if _, ok := have[n.Name]; ok {
			continue
		}
		switch n.Binding {
		case "", BindingBridge, BindingSRIOV:
			plan.Live = append(plan.Live, LiveChange{Kind: LiveNIC, Name: n.Name, Action: LiveAttach})
		default:
			plan.Restart = append(plan.Restart, fmt.Sprintf("NIC %s: KubeVirt hot-plugs only bridge- and SR-IOV-bound interfaces, not %s", n.Name, n.Binding))
		}
	}
	nets := map[string]kubevirtv1.Network{}
	for _, n := range vmi.Spec.Networks {
		nets[n.Name] = n
	}
	var out []Unplug
	for _, i := range vmi.Spec.Domain.Devices.Interfaces {
		if want[i.Name] {
			continue
		}
		if i.Bridge == nil {
			plan.Restart = append(plan.Restart, fmt.Sprintf("NIC %s: KubeVirt unplugs only bridge-bound interfaces", i.Name))
			continue
		}
		iface := *i.DeepCopy()
		iface.State = kubevirtv1.InterfaceStateAbsent
		network := nets[i.Name]
		out = append(out, Unplug{Interface: iface, Network: *network.DeepCopy()})
		if i.State != kubevirtv1.InterfaceStateAbsent || hasInterfaceStatus(vmi, i.Name) {
			plan.Live = append(plan.Live, LiveChange{Kind: LiveNIC, Name: i.Name, Action: LiveDetach})
		}
	}
	return out
}

func hasInterfaceStatus(vmi *kubevirtv1.VirtualMachineInstance, name string) bool {
	for _, s := range vmi.Status.Interfaces {
		if s.Name == name {
			return true
		}
	}
	return false
}

// HotplugVolume is a hot-plugged disk as the instance reports it
// (vmi.status.volumeStatus entries with hotplugVolume set).
type HotplugVolume struct {
	// Name of the disk.
	Name string
	// Phase is KubeVirt's volume phase: Pending, Bound, AttachedToNode
	// (virt-controller made the attachment pod), MountedToPod and Ready
	// (virt-handler mounted it and attached it to the domain), then on
	// removal UnMountedFromPod and Detaching
	// (pkg/virt-controller/watch/vmi/storage.go updateVolumeStatus,
	// pkg/virt-handler/vm.go updateHotplugVolumeStatus, v1.9.0).
	Phase kubevirtv1.VolumePhase
	// Message is KubeVirt's.
	Message string
	// InSpec: the instance's spec still lists the volume (false while it
	// is being unplugged).
	InSpec bool
}

// HotplugVolumes lists the instance's hot-plugged volumes by name (nil
// without an instance).
func (o Observation) HotplugVolumes() map[string]HotplugVolume {
	if o.vmi == nil {
		return nil
	}
	inSpec := map[string]bool{}
	for _, v := range o.vmi.Spec.Volumes {
		inSpec[v.Name] = true
	}
	out := map[string]HotplugVolume{}
	for _, s := range o.vmi.Status.VolumeStatus {
		if s.HotplugVolume == nil {
			continue
		}
		out[s.Name] = HotplugVolume{Name: s.Name, Phase: s.Phase, Message: s.Message, InSpec: inSpec[s.Name]}
	}
	return out
}

// HasVolume reports whether the instance still uses the volume name: its
// spec lists it, or its status still reports it (KubeVirt keeps the status
// of an unplugged volume until the attachment pod is gone).
func (o Observation) HasVolume(name string) bool {
	if o.vmi == nil {
		return false
	}
	for _, v := range o.vmi.Spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	for _, s := range o.vmi.Status.VolumeStatus {
		if s.Name == name {
			return true
		}
	}
	return false
}

// WithLivePlan returns o with plan p, as Reconcile records it (for
// callers that build an Observation themselves, e.g. in tests).
func (o Observation) WithLivePlan(p LivePlan) Observation {
	o.plan = p
	return o
}

// LivePlan is the plan Reconcile made (PlanLive) for this pass.
func (o Observation) LivePlan() LivePlan { return o.plan }

// LiveRequested lists the live changes the VirtualMachine write of this
// pass asked KubeVirt for (empty when nothing was written): one Event
// each is enough.
func (o Observation) LiveRequested() []LiveChange { return o.requested }

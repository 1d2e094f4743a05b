package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// What makes a running VMI live-migratable, as KubeVirt v1.9.0 computes it.
// virt-handler writes the VMI condition LiveMigratable and
// status.migrationMethod on every sync of a running VMI
// (updateLiveMigrationConditions and calculateLiveMigrationCondition,
// pkg/virt-handler/vm.go); virt-controller fills status.volumeStatus[].
// persistentVolumeClaimInfo from the claims (updateVolumeStatus,
// pkg/virt-controller/watch/vmi), which the volume check reads. KubeVirt's
// eviction admitter (IsMigratable), evacuation controller and migration
// create admitter read the condition.

// Messages virt-handler writes on LiveMigratable=False (pkg/virt-handler/vm.go,
// pkg/network/vmispec/interface.go VerifyVMIMigratable).
const (
	// MessageInterfaceNotMigratable: the pod-network interface is neither
	// masquerade, passt nor a binding plugin registered with migration
	// support (bridge only with the
	// kubevirt.io/allow-pod-bridge-network-live-migration annotation).
	MessageInterfaceNotMigratable = "cannot migrate VMI which does not use masquerade or a migratable plugin to connect to the pod network"
	// messageClaimNotShared is the DisksNotLiveMigratable message for a
	// claim (PVC or DataVolume) without ReadWriteMany; %s is its name.
	messageClaimNotShared = "cannot migrate VMI: PVC %v is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)"
	// messageClaimUnknown: a claim with no volume status (not found).
	messageClaimUnknown = "cannot migrate VMI: Unable to determine if PVC %v is shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)"
)

// liveMigratable is virt-handler's calculateLiveMigrationCondition for vmi
// given its status.volumeStatus and the cluster's network binding plugins
// and feature gates: the LiveMigratable condition (False with the first
// reason found in KubeVirt's order: interface, host devices and GPUs, SEV,
// Hyper-V passthrough, then disks; True otherwise) and the migration method
// (BlockMigration when a volume is not shared storage: a container disk, a
// cloud-init or other local volume that is not a read-only CD-ROM, or a
// claim that is not ReadWriteMany; LiveMigration otherwise).
// Not modelled: host-model CPU node labels, TSC frequency, TDX and
// Secure Execution, virtiofs filesystems, hotplugged and migrated volumes.
func liveMigratable(vmi *kubevirtv1.VirtualMachineInstance, bindings map[string]kubevirtv1.InterfaceBindingPlugin, gates []string) (kubevirtv1.VirtualMachineInstanceCondition, kubevirtv1.VirtualMachineInstanceMigrationMethod) {
	block, blockErr := volumesBlockMigration(vmi)
	method := kubevirtv1.LiveMigration
	if block {
		method = kubevirtv1.BlockMigration
	}
	notMigratable := func(reason, msg string) (kubevirtv1.VirtualMachineInstanceCondition, kubevirtv1.VirtualMachineInstanceMigrationMethod) {
		return kubevirtv1.VirtualMachineInstanceCondition{
			Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionFalse, Reason: reason, Message: msg,
		}, method
	}
	if err := interfacesBlockMigration(vmi, bindings); err != nil {
		return notMigratable(kubevirtv1.VirtualMachineInstanceReasonInterfaceNotMigratable, err.Error())
	}
	devices := vmi.Spec.Domain.Devices
	switch {
	case len(devices.HostDevices) > 0:
		return notMigratable(kubevirtv1.VirtualMachineInstanceReasonHostDeviceNotMigratable, "VMI specifies non-migratable generic PCI host device")
	case len(devices.GPUs) > 1:
		return notMigratable(kubevirtv1.VirtualMachineInstanceReasonHostDeviceNotMigratable, "VMI specifies too many GPUs")
	case len(devices.GPUs) == 1 && !slices.Contains(gates, "VGPULiveMigration"):
		return notMigratable(kubevirtv1.VirtualMachineInstanceReasonHostDeviceNotMigratable, "VMI specifies a GPU but feature gate VGPULiveMigration is not enabled")
	}
	if ls := vmi.Spec.Domain.LaunchSecurity; ls != nil && ls.SEV != nil {
		return notMigratable(kubevirtv1.VirtualMachineInstanceReasonSEVNotMigratable, "VMI uses SEV")
	}
	if f := vmi.Spec.Domain.Features; f != nil && f.HypervPassthrough != nil && f.HypervPassthrough.Enabled != nil && *f.HypervPassthrough.Enabled {
		return notMigratable(kubevirtv1.VirtualMachineInstanceReasonHypervPassthroughNotMigratable, "VMI uses hyperv passthrough")
	}
	if blockErr != nil {
		return notMigratable(kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable, blockErr.Error())
	}
	return kubevirtv1.VirtualMachineInstanceCondition{Type: kubevirtv1.VirtualMachineInstanceIsMigratable, Status: corev1.ConditionTrue}, method
}

// interfacesBlockMigration is VerifyVMIMigratable
// (pkg/network/vmispec/interface.go): only the interface on the pod
// network matters.
func interfacesBlockMigration(vmi *kubevirtv1.VirtualMachineInstance, bindings map[string]kubevirtv1.InterfaceBindingPlugin) error {
	ifaces := vmi.Spec.Domain.Devices.Interfaces
	if len(ifaces) == 0 {
		return nil
	}
	var pod *kubevirtv1.Network
	for i := range vmi.Spec.Networks {
		if vmi.Spec.Networks[i].Pod != nil {
			pod = &vmi.Spec.Networks[i]
			break
		}
	}
	if pod == nil {
		return nil
	}
	var primary *kubevirtv1.Interface
	for i := range ifaces {
		if ifaces[i].Name == pod.Name {
			primary = &ifaces[i]
			break
		}
	}
	switch {
	case primary == nil:
		return fmt.Errorf("no primary interface found for network %s", pod.Name)
	case primary.Masquerade != nil || primary.PasstBinding != nil:
		return nil
	case primary.Bridge != nil:
		if _, ok := vmi.Annotations[kubevirtv1.AllowPodBridgeNetworkLiveMigrationAnnotation]; ok {
			return nil
		}
	case primary.Binding != nil:
		if b, ok := bindings[primary.Binding.Name]; ok && b.Migration != nil {
			return nil
		}
	}
	return errors.New(MessageInterfaceNotMigratable)
}

// volumesBlockMigration is virt-handler's checkVolumesForMigration: a claim
// (PVC or DataVolume) must be ReadWriteMany (per its volume status), else
// the VMI is not migratable; any other volume that is not a read-only
// CD-ROM makes the migration a block migration.
func volumesBlockMigration(vmi *kubevirtv1.VirtualMachineInstance) (bool, error) {
	statuses := map[string]kubevirtv1.VolumeStatus{}
	for _, s := range vmi.Status.VolumeStatus {
		statuses[s.Name] = s
	}
	block := false
	for _, v := range vmi.Spec.Volumes {
		var claim string
		switch {
		case v.PersistentVolumeClaim != nil:
			claim = v.PersistentVolumeClaim.ClaimName
		case v.DataVolume != nil:
			claim = v.DataVolume.Name
		}
		if claim != "" {
			s, ok := statuses[v.Name]
			if !ok || s.PersistentVolumeClaimInfo == nil {
				return true, fmt.Errorf(messageClaimUnknown, claim)
			}
			if !slices.Contains(s.PersistentVolumeClaimInfo.AccessModes, corev1.ReadWriteMany) {
				return true, fmt.Errorf(messageClaimNotShared, claim)
			}
			continue
		}
		readOnly := false
		for _, d := range vmi.Spec.Domain.Devices.Disks {
			if d.Name == v.Name && d.CDRom != nil && (d.CDRom.ReadOnly == nil || *d.CDRom.ReadOnly) {
				readOnly = true
			}
		}
		if !readOnly {
			block = true
		}
	}
	return block, nil
}

// volumeStatus is virt-controller's status.volumeStatus for the claims of
// vmi (updateVolumeStatus): name and persistentVolumeClaimInfo (claim name,
// the claim's access and volume modes, capacity and requests). A claim
// that does not exist gets no entry.
func (r *kubevirtSim) volumeStatus(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) ([]kubevirtv1.VolumeStatus, error) {
	var out []kubevirtv1.VolumeStatus
	for _, v := range vmi.Spec.Volumes {
		var claim string
		switch {
		case v.PersistentVolumeClaim != nil:
			claim = v.PersistentVolumeClaim.ClaimName
		case v.DataVolume != nil:
			claim = v.DataVolume.Name
		default:
			continue
		}
		pvc := &corev1.PersistentVolumeClaim{}
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: vmi.Namespace, Name: claim}, pvc); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		out = append(out, kubevirtv1.VolumeStatus{
			Name: v.Name,
			PersistentVolumeClaimInfo: &kubevirtv1.PersistentVolumeClaimInfo{
				ClaimName:   claim,
				AccessModes: pvc.Spec.AccessModes,
				VolumeMode:  pvc.Spec.VolumeMode,
				Capacity:    pvc.Status.Capacity,
				Requests:    pvc.Spec.Resources.Requests,
			},
		})
	}
	return out, nil
}

// clusterConfig is what the simulators read from the KubeVirt CR, as
// virt-controller and virt-handler read virtconfig.ClusterConfig: the
// network binding plugins, the feature gates and the cluster-wide eviction
// strategy (spec.configuration.evictionStrategy; None when unset, as
// virt-config defaults it).
type clusterConfig struct {
	bindings      map[string]kubevirtv1.InterfaceBindingPlugin
	gates         []string
	disabledGates []string
	eviction      *kubevirtv1.EvictionStrategy
}

func readClusterConfig(ctx context.Context, c client.Reader) (clusterConfig, error) {
	list := &kubevirtv1.KubeVirtList{}
	if err := c.List(ctx, list, client.InNamespace(KubeVirtNamespace)); err != nil {
		return clusterConfig{}, err
	}
	// virt-config's default is None (pkg/virt-config/configuration.go).
	none := kubevirtv1.EvictionStrategyNone
	cfg := clusterConfig{bindings: map[string]kubevirtv1.InterfaceBindingPlugin{}, eviction: &none}
	for _, kv := range list.Items {
		conf := kv.Spec.Configuration
		if nc := conf.NetworkConfiguration; nc != nil {
			for name, b := range nc.Binding {
				cfg.bindings[name] = b
			}
		}
		if dc := conf.DeveloperConfiguration; dc != nil {
			cfg.gates = append(cfg.gates, dc.FeatureGates...)
			cfg.disabledGates = append(cfg.disabledGates, dc.DisabledFeatureGates...)
		}
		if conf.EvictionStrategy != nil {
			cfg.eviction = conf.EvictionStrategy
		}
	}
	return cfg, nil
}

// evictionStrategy is KubeVirt's migrations.VMIEvictionStrategy
// (pkg/util/migrations/migrations.go): the VMI's spec.evictionStrategy,
// else the cluster's.
func (c clusterConfig) evictionStrategy(vmi *kubevirtv1.VirtualMachineInstance) *kubevirtv1.EvictionStrategy {
	if vmi.Spec.EvictionStrategy != nil {
		return vmi.Spec.EvictionStrategy
	}
	return c.eviction
}

// migratableOnEviction is migrations.VMIMigratableOnEviction: LiveMigrate,
// or LiveMigrateIfPossible on a migratable VMI. External and None never
// migrate on eviction.
func (c clusterConfig) migratableOnEviction(vmi *kubevirtv1.VirtualMachineInstance) bool {
	s := c.evictionStrategy(vmi)
	if s == nil {
		return false
	}
	switch *s {
	case kubevirtv1.EvictionStrategyLiveMigrate:
		return true
	case kubevirtv1.EvictionStrategyLiveMigrateIfPossible:
		return vmi.IsMigratable()
	}
	return false
}

// syncRunningVMI plays virt-controller and virt-handler on a running VMI.
// A VMI whose launcher pod on its node is gone (deleted, evicted, force
// deleted on a lost node) becomes Failed, as virt-controller sets it
// ("setting VMI to failed while running because pod does not exist",
// pkg/virt-controller/watch/vmi/lifecycle.go); the VM controller then
// restarts it per its run strategy. Otherwise its volume status,
// LiveMigratable condition and migration method are kept current
// (migrationStatus).
func (r *kubevirtSim) syncRunningVMI(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) error {
	before := vmi.Status.DeepCopy()
	// The cache: a pod event brings the VM back here (a pod shows in the
	// cache before its binding moves the VMI to Running).
	pods := &corev1.PodList{}
	if err := r.c.List(ctx, pods, client.InNamespace(vmi.Namespace), client.MatchingLabels{labelCreatedBy: string(vmi.UID)}); err != nil {
		return err
	}
	alive := false
	for _, p := range pods.Items {
		if p.Spec.NodeName == vmi.Status.NodeName && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			alive = true
		}
	}
	if !alive {
		vmi.Status.Phase = kubevirtv1.Failed
		setPhaseTransition(vmi, kubevirtv1.Failed)
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "PodTerminating", "")
		log.FromContext(ctx).Info("VMI failed: its launcher pod does not exist", "node", vmi.Status.NodeName)
		return r.updateVMIStatus(ctx, vmi, before)
	}
	if err := r.migrationStatus(ctx, vmi); err != nil {
		return err
	}
	if err := r.syncGuestAgent(ctx, vmi); err != nil {
		return err
	}
	return r.updateVMIStatus(ctx, vmi, before)
}

// migrationStatus sets vmi's status.volumeStatus, its LiveMigratable
// condition and status.migrationMethod (liveMigratable), and records
// virt-handler's Warning Event Migrated "EvictionStrategy is set but vmi is
// not migratable; <message>" when the condition turns False on a VMI whose
// eviction strategy migrates (updateLiveMigrationConditions).
func (r *kubevirtSim) migrationStatus(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) error {
	vs, err := r.volumeStatus(ctx, vmi)
	if err != nil {
		return err
	}
	vmi.Status.VolumeStatus = withHotplugStatus(vmi, vs)
	cfg, err := readClusterConfig(ctx, r.c)
	if err != nil {
		return err
	}
	prev := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceIsMigratable)
	cond, method := liveMigratable(vmi, cfg.bindings, cfg.gates)
	setVMICondition(vmi, cond.Type, cond.Status, cond.Reason, cond.Message)
	vmi.Status.MigrationMethod = method
	if cond.Status == corev1.ConditionFalse && (prev.Status != cond.Status || prev.Message != cond.Message) && cfg.migratableOnEviction(vmi) {
		return r.recordWarning(ctx, vmi, kubevirtv1.GroupVersion.String(), "VirtualMachineInstance", string(kubevirtv1.Migrated),
			"EvictionStrategy is set but vmi is not migratable; "+cond.Message, "virt-handler", vmi.Status.NodeName)
	}
	return nil
}

// setPhaseTransition records when vmi entered phase
// (status.phaseTransitionTimestamps, as virt-controller and virt-handler
// keep them).
func setPhaseTransition(vmi *kubevirtv1.VirtualMachineInstance, phase kubevirtv1.VirtualMachineInstancePhase) {
	vmi.Status.PhaseTransitionTimestamps = append(vmi.Status.PhaseTransitionTimestamps,
		kubevirtv1.VirtualMachineInstancePhaseTransitionTimestamp{Phase: phase, PhaseTransitionTimestamp: metav1.Now()})
}

// wasRunning is the VM controller's wasVMIInRunningPhase: the VMI reached
// Running once.
func wasRunning(vmi *kubevirtv1.VirtualMachineInstance) bool {
	for _, t := range vmi.Status.PhaseTransitionTimestamps {
		if t.Phase == kubevirtv1.Running {
			return true
		}
	}
	return false
}

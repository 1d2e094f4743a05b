package kubevirt

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MigrationState is where a live migration of the instance stands, read
// from the VMI's status.migrationState.
type MigrationState string

// Migration states. KubeVirt writes status.migrationState when the target
// pod is handed off (virt-controller's migration controller), sets
// startTimestamp when virt-handler starts migrating, and completed or failed
// (with endTimestamp) when it ends; it keeps the last migration's state on
// the VMI until the next one.
const (
	// MigrationPending: the target is chosen, the transfer has not started.
	MigrationPending MigrationState = "Pending"
	// MigrationRunning: the guest's memory (and any disk) is being copied.
	MigrationRunning MigrationState = "Running"
	// MigrationSucceeded: the guest runs on the target node.
	MigrationSucceeded MigrationState = "Succeeded"
	// MigrationFailed: the migration failed or was aborted; the guest still
	// runs on the source node.
	MigrationFailed MigrationState = "Failed"
)

// Migration is the instance's last (or current) live migration.
type Migration struct {
	State      MigrationState
	SourceNode string
	TargetNode string
	// StartTime and EndTime are KubeVirt's startTimestamp and endTimestamp
	// (nil until set).
	StartTime, EndTime *metav1.Time
	// FailureReason is KubeVirt's failureReason; for an aborted migration
	// without one, "aborted".
	FailureReason string
	// UID is the VirtualMachineInstanceMigration's UID (migrationUid).
	UID string
}

// Migration returns the VMI's status.migrationState as a Migration, nil
// without a VMI or a migration. Failed wins over completed: KubeVirt
// marks an aborted migration both.
func (o Observation) Migration() *Migration {
	if o.vmi == nil || o.vmi.Status.MigrationState == nil {
		return nil
	}
	ms := o.vmi.Status.MigrationState
	m := &Migration{
		SourceNode: ms.SourceNode, TargetNode: ms.TargetNode,
		StartTime: ms.StartTimestamp, EndTime: ms.EndTimestamp,
		FailureReason: ms.FailureReason, UID: string(ms.MigrationUID),
	}
	switch {
	case ms.Failed || ms.AbortStatus == kubevirtv1.MigrationAbortSucceeded:
		m.State = MigrationFailed
		if m.FailureReason == "" && ms.AbortStatus == kubevirtv1.MigrationAbortSucceeded {
			m.FailureReason = "aborted"
		}
	case ms.Completed:
		m.State = MigrationSucceeded
	case ms.StartTimestamp != nil:
		m.State = MigrationRunning
	default:
		m.State = MigrationPending
	}
	return m
}

// Migrating reports whether a live migration of a live instance is under
// way (Pending or Running).
func (o Observation) Migrating() bool {
	m := o.Migration()
	return m != nil && (m.State == MigrationPending || m.State == MigrationRunning) && !o.vmi.IsFinal()
}

// MigrationSettling reports a live migration whose guest runs while
// KubeVirt does not report the instance Ready: the VMI is Running, its
// migration Pending, Running or Succeeded, and its Ready condition False,
// which follows the virt-launcher pods' readiness around the handover
// (seen on real KubeVirt v1.9.0 across two nodes, both while the migration
// ran and right after it succeeded). The guest never stopped, so this is
// not a start.
func (o Observation) MigrationSettling() bool {
	m := o.Migration()
	return o.vmi != nil && o.vmi.Status.Phase == kubevirtv1.Running && m != nil &&
		(m.State == MigrationPending || m.State == MigrationRunning || m.State == MigrationSucceeded) &&
		!o.Ready() && !o.Stopping()
}

// LiveMigratable is the VMI's LiveMigratable condition as KubeVirt's
// virt-controller computes it (kubevirtv1.VirtualMachineInstanceIsMigratable;
// reasons such as kubevirtv1.VirtualMachineInstanceReasonDisksNotMigratable,
// with a message like "cannot migrate VMI: PVC <claim> is not shared, live
// migration requires that all PVCs must be shared (using ReadWriteMany
// access mode)"). ok is false without a VMI or the condition.
func (o Observation) LiveMigratable() (status corev1.ConditionStatus, reason, message string, ok bool) {
	c := o.vmiCondition(kubevirtv1.VirtualMachineInstanceIsMigratable)
	if c == nil {
		return "", "", "", false
	}
	return c.Status, c.Reason, c.Message, true
}

// EvacuationNode is the VMI's status.evacuationNodeName: the node an
// eviction (a drain) asked the instance to leave, set by KubeVirt's
// eviction admitter for LiveMigrate, LiveMigrateIfPossible (when
// migratable) and External; empty otherwise.
func (o Observation) EvacuationNode() string {
	if o.vmi == nil {
		return ""
	}
	return o.vmi.Status.EvacuationNodeName
}

// EvictionStrategy is the strategy the instance carries (the VMI's
// spec.evictionStrategy, else the VM template's); empty when neither sets
// one, and KubeVirt then uses the KubeVirt CR's (ClusterEvictionStrategy),
// as kubevirt pkg/util/migrations VMIEvictionStrategy does.
func (o Observation) EvictionStrategy() kubevirtv1.EvictionStrategy {
	if o.vmi != nil && o.vmi.Spec.EvictionStrategy != nil {
		return *o.vmi.Spec.EvictionStrategy
	}
	if o.vm != nil && o.vm.Spec.Template != nil && o.vm.Spec.Template.Spec.EvictionStrategy != nil {
		return *o.vm.Spec.Template.Spec.EvictionStrategy
	}
	return ""
}

// ClusterEvictionStrategy reads the KubeVirt CR's
// spec.configuration.evictionStrategy (empty when unset or when no
// KubeVirt CR exists; with several, the first listed that sets one).
func ClusterEvictionStrategy(ctx context.Context, c client.Reader) (kubevirtv1.EvictionStrategy, error) {
	list := &kubevirtv1.KubeVirtList{}
	if err := c.List(ctx, list); err != nil {
		return "", wrapKubeVirt(fmt.Sprintf("cannot list %s", "KubeVirt CRs"), err)
	}
	for _, kv := range list.Items {
		if es := kv.Spec.Configuration.EvictionStrategy; es != nil && *es != "" {
			return *es, nil
		}
	}
	return "", nil
}

// Instance is the VirtualMachineInstance read (nil without one); callers
// must not modify it.
func (o Observation) Instance() *kubevirtv1.VirtualMachineInstance { return o.vmi }

// VirtualMachine is the VirtualMachine read (nil without one); callers
// must not modify it.
func (o Observation) VirtualMachine() *kubevirtv1.VirtualMachine { return o.vm }

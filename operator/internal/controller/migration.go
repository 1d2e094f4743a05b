package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// maintenance is what a pass observed about drains, live migrations and
// node loss (issue #30); observeMaintenance fills it, computeStatus reads it.
type maintenance struct {
	// evictionStrategy is the strategy KubeVirt applies to the running
	// instance on a drain and where it comes from ("the Wukong", "the
	// operator's default", "the KubeVirt CR"); empty when none is set
	// anywhere (KubeVirt then evicts as for None).
	evictionStrategy kubevirtv1.EvictionStrategy
	evictionSource   string
	// node is the lost-node finding (zero when the node is Ready or not
	// read); policy the node-loss policy it was decided under.
	node   nodeLoss
	policy NodeLossPolicy
}

// withEvictionDefault gives m the operator's default eviction strategy
// when the Wukong sets none (spec.evictionStrategy wins; without either the
// VM field stays unset so the KubeVirt CR's applies).
func (r *WukongReconciler) withEvictionDefault(m *kubevirt.Machine) {
	if m.EvictionStrategy == "" {
		m.EvictionStrategy = r.DefaultEvictionStrategy
	}
}

// observeMaintenance is the step after reconcileMachine: for a VM with an
// instance it works out the eviction strategy in effect (the instance's,
// else the KubeVirt CR's, as KubeVirt's pkg/util/migrations
// VMIEvictionStrategy does) and reads the instance's node for node loss
// (observeNodeLoss, which may act under the node-loss policy). It changes
// nothing else; migrations KubeVirt runs (virtctl migrate, a drain) are
// only observed. Feeds Migratable, NodeLost, status.migration, the
// Migrating phase and Ready's drain note.
func (r *WukongReconciler) observeMaintenance(ctx context.Context, s *scope) error {
	s.maint.policy = r.NodeLoss
	if !s.vm.HasInstance() {
		return nil
	}
	s.maint.evictionStrategy = s.vm.EvictionStrategy()
	switch {
	case s.maint.evictionStrategy == "":
	case s.w.Spec.EvictionStrategy != "":
		s.maint.evictionSource = "spec.evictionStrategy"
	case s.maint.evictionStrategy == r.DefaultEvictionStrategy:
		s.maint.evictionSource = "the operator's default (--default-eviction-strategy)"
	default:
		s.maint.evictionSource = "the VirtualMachine"
	}
	if s.maint.evictionStrategy == "" && notMigratable(s.vm) {
		// Only needed for Ready's drain note, so only read then.
		es, err := kubevirt.ClusterEvictionStrategy(ctx, r.Client)
		if err != nil {
			return err
		}
		s.maint.evictionStrategy, s.maint.evictionSource = es, "the KubeVirt CR (spec.configuration.evictionStrategy)"
	}
	return r.observeNodeLoss(ctx, s)
}

// notMigratable: KubeVirt reports the instance's LiveMigratable False.
func notMigratable(o kubevirt.Observation) bool {
	st, _, _, ok := o.LiveMigratable()
	return ok && st == corev1.ConditionFalse
}

// setMigration writes status.migration from the instance's migration state
// (kept while the instance lives, so the last move stays on record) and
// the Migratable condition mirroring KubeVirt's LiveMigratable.
func setMigration(o *v1alpha1.Wukong, s *scope) {
	if m := s.vm.Migration(); m != nil {
		o.Status.Migration = &v1alpha1.MigrationStatus{
			State: string(m.State), SourceNode: m.SourceNode, TargetNode: m.TargetNode,
			StartTime: m.StartTime, EndTime: m.EndTime, FailureReason: m.FailureReason,
		}
	} else if s.vm.Exists() || s.volsDone {
		o.Status.Migration = nil
	}
	const t = v1alpha1.MigratableCondition
	st, reason, msg, ok := s.vm.LiveMigratable()
	if !ok {
		if s.vm.Exists() || s.volsDone {
			conditions.Delete(o, t)
		}
		return
	}
	switch st {
	case corev1.ConditionTrue:
		conditions.MarkTrue(o, t, or(reason, v1alpha1.ReasonMigratable), "%s", or(msg, "KubeVirt can live-migrate the VM"))
	case corev1.ConditionFalse:
		conditions.MarkFalse(o, t, or(reason, "NotLiveMigratable"), "%s", migratableMessage(o, s.vols, msg))
	default:
		conditions.MarkUnknown(o, t, or(reason, "Unknown"), "%s", msg)
	}
}

// migratableMessage is KubeVirt's LiveMigratable message with the claims it
// names ("PVC <claim>", pkg/virt-controller/watch/vmi.go
// checkVolumesForMigration: "cannot migrate VMI: PVC <claim> is not
// shared, live migration requires that all PVCs must be shared (using
// ReadWriteMany access mode)") replaced by the Wukong's disks, then what
// the disk's claim is and why (its access modes; a plain claim written
// without CDI or by an earlier version does not follow the StorageProfile).
func migratableMessage(w *v1alpha1.Wukong, vols []storage.Observation, msg string) string {
	var notes []string
	for _, claim := range claimsNamed(msg) {
		i, ok := mapping.DiskOfClaim(w, claim)
		if !ok {
			continue
		}
		d := w.Spec.Disks[i]
		field := fmt.Sprintf("spec.disks[%d]", i)
		msg = strings.ReplaceAll(msg, "PVC "+claim, fmt.Sprintf("disk %s (%s, claim %s)", field, d.Name, claim))
		for _, v := range vols {
			if v.Name != d.Name {
				continue
			}
			note := fmt.Sprintf("%s's claim has access modes %v", field, v.AccessModes)
			switch {
			case v.Existing:
				note += " (the existing claim claimName names: its access modes are its own, Wukong never changes them)"
			case v.NoCDI:
				note += " (a plain ReadWriteOnce claim: CDI was not installed when the disk was made)"
			case v.PlainClaim:
				note += " (a plain ReadWriteOnce claim made before blank disks followed the StorageProfile; it is kept as it is)"
			default:
				note += fmt.Sprintf(" (from the StorageProfile of StorageClass %s: a class whose profile gives ReadWriteMany lets the VM migrate)", v.StorageClassName)
			}
			notes = append(notes, note)
		}
	}
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	return msg
}

// claimsNamed are the words after "PVC " in a KubeVirt message.
func claimsNamed(msg string) []string {
	var out []string
	for rest := msg; ; {
		_, after, found := strings.Cut(rest, "PVC ")
		if !found {
			return out
		}
		name, _, _ := strings.Cut(after, " ")
		out = append(out, strings.TrimRight(name, ",.;:"))
		rest = after
	}
}

// migratingReady is Ready (True) while a live migration runs, or "" when
// none does.
func migratingReady(s *scope) string {
	if !s.vm.Migrating() {
		return ""
	}
	m := s.vm.Migration()
	return fmt.Sprintf("running on node %s, live-migrating to node %s (%s)", m.SourceNode, m.TargetNode, m.State)
}

// drainNote is what Ready's message adds for a running VM a drain of its
// node would be refused for: its eviction strategy in effect is
// LiveMigrate and KubeVirt reports it not live-migratable (KubeVirt's
// eviction admitter then refuses the launcher pod's eviction,
// pkg/virt-api/webhooks/validating-webhook/admitters
// pod-eviction-admitter.go); "" otherwise.
func drainNote(w *v1alpha1.Wukong, s *scope) string {
	if n := s.vm.EvacuationNode(); n != "" && s.maint.evictionStrategy == kubevirtv1.EvictionStrategyExternal {
		// KubeVirt's eviction admitter marked the instance for an external
		// controller (status.evacuationNodeName); nothing moves by itself.
		return fmt.Sprintf("; a drain asked the VM to leave node %s (eviction strategy External, from %s): it stays until whatever handles "+
			"External evictions stops or moves it", n, s.maint.evictionSource)
	}
	if n := s.vm.EvacuationNode(); n != "" && !s.vm.Migrating() {
		// LiveMigrate or LiveMigrateIfPossible (migratable): the admitter
		// marked the instance and KubeVirt's evacuation controller creates
		// a migration (pkg/virt-controller/watch/drain/evacuation), whose
		// state reaches the VMI only once a target pod is scheduled
		// (migrationState). Until then the drain waits: a target no node
		// can take (node selector, tolerations, anti-affinity, capacity)
		// keeps the migration Scheduling, and the drain with it.
		return fmt.Sprintf("; a drain asked the VM to leave node %s (eviction strategy %s, from %s): its live migration has not started; "+
			"the drain waits until a target node can take the VM (a migration that stays Scheduling means none can: node selector, "+
			"tolerations, anti-affinity or capacity)", n, or(string(s.maint.evictionStrategy), "unknown"), or(s.maint.evictionSource, "the cluster"))
	}
	if s.maint.evictionStrategy != kubevirtv1.EvictionStrategyLiveMigrate || !notMigratable(s.vm) {
		return ""
	}
	_, reason, _, _ := s.vm.LiveMigratable()
	return fmt.Sprintf("; a drain of node %s is refused while the VM runs there: its eviction strategy is LiveMigrate (from %s) "+
		"but it cannot live-migrate (%s, see the Migratable condition); make its disks ReadWriteMany, or set spec.evictionStrategy "+
		"LiveMigrateIfPossible or None to let a drain shut it down", s.vm.Node(), s.maint.evictionSource, reason)
}

func or(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// CPU and memory changes on a running Wukong (issue #34). KubeVirt applies
// a grow of sockets or guest memory live, through a live migration, when
// its KubeVirt CR allows it; the lib renders cpu and memory so that it can
// (lib/kubevirt hotplug_cpu.go) and says which change goes live and why
// the others wait (kubevirt.PlanResources). This file turns that into
// status.resources, the RestartRequired condition's list and an Event.

// resourcesObs is what observeResources saw.
type resourcesObs struct {
	// changes are the cpu and memory changes between the spec and the
	// running guest, each live or waiting for a restart (with why).
	changes []kubevirt.ResourceChange
}

// observeResources is the step after reconcileMachine: for a running
// instance whose cpu or memory differs from the spec it reads the KubeVirt
// CR (vmRolloutStrategy, workloadUpdateMethods; only then, so a steady
// Wukong costs no read) and records, per change, whether KubeVirt applies
// it live. Feeds RestartRequired; status.resources comes from the
// instance itself (setResources). It never returns early on a problem:
// a cluster without KubeVirt was reported by reconcileMachine.
func (r *WukongReconciler) observeResources(ctx context.Context, s *scope) error {
	s.res = resourcesObs{}
	got, ok := s.vm.Resources()
	if !ok {
		return nil
	}
	cpu, mem := s.w.Spec.CPU, s.w.Spec.Memory
	if int64(cpu) == got.CPU && (got.Memory == nil || mem.Cmp(*got.Memory) == 0) {
		return nil
	}
	lu, err := kubevirt.ClusterLiveUpdate(ctx, r.Client)
	if err != nil {
		return err
	}
	s.res.changes = kubevirt.PlanResources(s.vm, cpu, mem, lu)
	return nil
}

// setResources completes status.resources (resourcesStatus resolved it)
// with what the running instance has: its vCPUs and guest memory as
// KubeVirt reports them and how far each grows live. Without a running
// instance the resolved size stays, without maxima.
func setResources(o *v1alpha1.Wukong, s *scope) {
	got, ok := s.vm.Resources()
	if !ok {
		return
	}
	rs := o.Status.Resources
	if rs == nil {
		rs = &v1alpha1.ResourcesStatus{}
		o.Status.Resources = rs
	}
	rs.CPU, rs.MaxCPU, rs.MaxMemory = int32(got.CPU), int32(got.MaxCPU), nil
	rs.Source = v1alpha1.ResourcesFromVirtualMachineInstance
	if got.Memory != nil {
		rs.Memory = ptrQuantity(*got.Memory)
	}
	if got.MaxMemory != nil {
		rs.MaxMemory = ptrQuantity(*got.MaxMemory)
	}
}

func ptrQuantity(q resource.Quantity) *resource.Quantity { return &q }

// restartItems lists what waits for a restart, one entry per spec field
// ("spec.cpu 2 → 1: <why>"), then KubeVirt's own RestartRequired message
// when none of Wukong's entries accounts for it (another field KubeVirt
// cannot update live). Empty when nothing waits.
func restartItems(s *scope) []string {
	var out []string
	topology := false
	for _, c := range s.res.changes {
		if c.Live {
			continue
		}
		out = append(out, fmt.Sprintf("spec.%s %s → %s: %s", c.Field, c.From, c.To, c.Why))
		if strings.Contains(c.Why, "before CPU hotplug") || strings.Contains(c.Why, "before memory hotplug") {
			topology = true // the template change KubeVirt flags is this one
		}
	}
	if s.vm.Exists() && s.vm.RestartRequired() {
		msg := s.vm.RestartRequiredMessage()
		if !topology && (len(out) == 0 || msg == kubevirt.MessageNonLiveChange) {
			out = append(out, "KubeVirt: "+or(msg, "a change waits for a restart"))
		}
	}
	return out
}

// resourceEvents is the Normal Event ReasonResourcesUpdated for a guest
// that got a new cpu or memory without a restart: status.resources
// changed between two running observations of an instance that was live
// migrated (status.migration Succeeded; a restarted instance has no
// migration record, KubeVirt keeping it per instance).
func resourceEvents(before, after *v1alpha1.Wukong) []event {
	b, a := before.Status.Resources, after.Status.Resources
	if b == nil || a == nil || after.Status.Migration == nil || after.Status.Migration.State != string(kubevirt.MigrationSucceeded) {
		return nil
	}
	var parts []string
	if b.CPU != a.CPU && b.CPU > 0 {
		parts = append(parts, fmt.Sprintf("cpu %d → %d", b.CPU, a.CPU))
	}
	if b.Memory != nil && a.Memory != nil && b.Memory.Cmp(*a.Memory) != 0 {
		parts = append(parts, fmt.Sprintf("memory %s → %s", b.Memory.String(), a.Memory.String()))
	}
	if len(parts) == 0 {
		return nil
	}
	return []event{{kind: corev1.EventTypeNormal, reason: v1alpha1.ReasonResourcesUpdated, condition: "Resources",
		message: strings.Join(parts, ", ") + " applied to the running guest without a restart (KubeVirt hotplug through a live migration)"}}
}

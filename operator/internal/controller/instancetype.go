package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/novasphere/wukong/lib/kubevirt"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/mapping"
)

// Instance types and preferences a Wukong names (spec.instancetype,
// spec.preference) are read, never written: the cluster-scoped kinds
// anywhere, through the cache (and watched: SetupWithManager), the
// namespaced ones in the Wukong's namespace, from the API server only
// (UncachedKind), so get is all they need.
// +kubebuilder:rbac:groups=instancetype.kubevirt.io,resources=virtualmachineclusterinstancetypes;virtualmachineclusterpreferences,verbs=get;list;watch
// +kubebuilder:rbac:groups=instancetype.kubevirt.io,resources=virtualmachineinstancetypes;virtualmachinepreferences,verbs=get,namespace=watched

// restrictInstancetypes gives m the cluster instance types the Wukong's
// namespace may name: the Namespace's annotation
// v1alpha1.AnnotationAllowedClusterInstancetypes (comma-separated names;
// blanks ignored; an empty value allows none), set by an administrator.
// Without the annotation every one is allowed, as in KubeVirt. lib/kubevirt
// refuses any other before looking it up (InstancetypeNotAllowed), so the
// refusal reads the same whether it exists. Nothing is read without an
// instance type of the cluster kind.
func (r *WukongReconciler) restrictInstancetypes(ctx context.Context, namespace string, m *kubevirt.Machine) error {
	it := m.Instancetype
	if it == nil || (it.Kind != "" && it.Kind != kubevirt.KindClusterInstancetype) {
		return nil
	}
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return fmt.Errorf("cannot read namespace %s for its allowed instance types: %w", namespace, err)
	}
	allowed, ok := ns.Annotations[v1alpha1.AnnotationAllowedClusterInstancetypes]
	if !ok {
		return nil
	}
	m.RestrictClusterInstancetypes = true
	m.AllowedClusterInstancetypes = nil
	for _, name := range strings.Split(allowed, ",") {
		if name = strings.TrimSpace(name); name != "" {
			m.AllowedClusterInstancetypes = append(m.AllowedClusterInstancetypes, name)
		}
	}
	return nil
}

// resourcesStatus is status.resources: what lib/kubevirt resolved when it
// applied the VM (the running VMI's domain, else the instance type's guest
// cpu and memory, else spec.cpu and spec.memory). Without that (the VM was
// not applied in this pass) a Wukong without an instance type shows its
// spec (defaults included), and one with an instance type keeps what was
// shown before while it still names the same one.
func resourcesStatus(w *v1alpha1.Wukong, s *scope) *v1alpha1.ResourcesStatus {
	size := s.vm.Size()
	var it *v1alpha1.InstancetypeRef
	if w.Spec.Instancetype != nil {
		ref := *w.Spec.Instancetype
		if ref.Kind == "" {
			ref.Kind = v1alpha1.KindClusterInstancetype
		}
		it = &ref
	}
	if size.From == "" {
		if it == nil {
			mem := w.Spec.Memory.DeepCopy()
			if mem.IsZero() {
				mem = resource.MustParse(mapping.DefaultMemory)
			}
			return &v1alpha1.ResourcesStatus{CPU: max(w.Spec.CPU, mapping.DefaultCPU), Memory: &mem, Source: v1alpha1.ResourcesFromSpec}
		}
		if old := w.Status.Resources; old != nil && old.Instancetype != nil && *old.Instancetype == *it {
			return old
		}
		return nil
	}
	mem := size.Memory.DeepCopy()
	out := &v1alpha1.ResourcesStatus{CPU: size.CPU, Memory: &mem, Instancetype: it, RevisionName: size.RevisionName}
	switch size.From {
	case kubevirt.SizeFromInstance:
		out.Source = v1alpha1.ResourcesFromVirtualMachineInstance
	case kubevirt.SizeFromInstancetype:
		out.Source = v1alpha1.ResourcesFromInstancetype
	default:
		out.Source = v1alpha1.ResourcesFromSpec
	}
	return out
}

package kubevirt

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kinds a Matcher names (kubevirt.io/api instancetype/v1beta1). An empty
// Kind is the cluster-scoped one, as KubeVirt reads an empty matcher kind
// (pkg/instancetype/find and revision, v1.9.0).
const (
	KindClusterInstancetype = "VirtualMachineClusterInstancetype"
	KindInstancetype        = "VirtualMachineInstancetype"
	KindClusterPreference   = "VirtualMachineClusterPreference"
	KindPreference          = "VirtualMachinePreference"
)

// Matcher names a KubeVirt instance type or preference: the VM's
// spec.instancetype or spec.preference (core/v1 InstancetypeMatcher,
// PreferenceMatcher) without revisionName, which the lib never sets (in
// KubeVirt v1.9 virt-controller records the captured ControllerRevision in
// the VM's status.instancetypeRef / status.preferenceRef, and a revisionName
// a user set stays: the lib's apply does not send the field).
type Matcher struct {
	// Kind is one of the Kind constants; empty is the cluster kind. A
	// namespaced kind is looked up in the owner's namespace.
	Kind string
	// Name of the object.
	Name string
}

func (m *Matcher) cluster() bool {
	return m.Kind == "" || m.Kind == KindClusterInstancetype || m.Kind == KindClusterPreference
}

// InstancetypeNotAllowedError: the machine names a cluster instance type
// its AllowedClusterInstancetypes does not hold. It is returned before any
// lookup, so it reads the same whether the instance type exists or not.
type InstancetypeNotAllowedError struct{ Name string }

func (e *InstancetypeNotAllowedError) Error() string {
	return fmt.Sprintf("VirtualMachineClusterInstancetype %q is not allowed in this namespace", e.Name)
}

// ReferenceNotFoundError: the instance type or preference the machine
// names does not exist (or its kind is not served).
type ReferenceNotFoundError struct {
	// Field is the Machine field: "instancetype" or "preference".
	Field string
	Kind  string
	Name  string
}

func (e *ReferenceNotFoundError) Error() string {
	return fmt.Sprintf("%s %q not found", e.Kind, e.Name)
}

// SizeSource says where a Size was read.
type SizeSource string

// Values of Size.From.
const (
	SizeFromMachine      SizeSource = "Machine"
	SizeFromInstancetype SizeSource = "Instancetype"
	SizeFromInstance     SizeSource = "VirtualMachineInstance"
)

// Size is the guest's resolved cpu and memory.
type Size struct {
	// CPU is the number of vCPUs (cores x sockets x threads).
	CPU int32
	// Memory is the guest memory.
	Memory resource.Quantity
	// From is where CPU and Memory were read.
	From SizeSource
	// RevisionName is the ControllerRevision KubeVirt captured the instance
	// type in (the VM's status.instancetypeRef.controllerRevisionRef.name),
	// empty until virt-controller stored it or without an instance type.
	RevisionName string
}

// resolveReferences checks the machine's instance type and preference: an
// instance type of the cluster kind that AllowedClusterInstancetypes does
// not hold (when RestrictClusterInstancetypes) is an
// *InstancetypeNotAllowedError; one that does not exist, or a missing
// preference, a *ReferenceNotFoundError. It returns the instance type's
// spec (nil without one).
func resolveReferences(ctx context.Context, c client.Reader, namespace string, m Machine) (*instancetypev1beta1.VirtualMachineInstancetypeSpec, error) {
	var spec *instancetypev1beta1.VirtualMachineInstancetypeSpec
	if it := m.Instancetype; it != nil {
		if it.cluster() && m.RestrictClusterInstancetypes && !slices.Contains(m.AllowedClusterInstancetypes, it.Name) {
			return nil, &InstancetypeNotAllowedError{Name: it.Name}
		}
		var obj client.Object
		key := types.NamespacedName{Name: it.Name}
		kind := KindClusterInstancetype
		if it.cluster() {
			cit := &instancetypev1beta1.VirtualMachineClusterInstancetype{}
			obj, spec = cit, &cit.Spec
		} else {
			nit := &instancetypev1beta1.VirtualMachineInstancetype{}
			obj, spec, key.Namespace, kind = nit, &nit.Spec, namespace, KindInstancetype
		}
		if err := get(ctx, c, key, obj, &ReferenceNotFoundError{Field: "instancetype", Kind: kind, Name: it.Name}); err != nil {
			return nil, err
		}
	}
	if p := m.Preference; p != nil {
		var obj client.Object = &instancetypev1beta1.VirtualMachineClusterPreference{}
		key := types.NamespacedName{Name: p.Name}
		kind := KindClusterPreference
		if !p.cluster() {
			obj, key.Namespace, kind = &instancetypev1beta1.VirtualMachinePreference{}, namespace, KindPreference
		}
		if err := get(ctx, c, key, obj, &ReferenceNotFoundError{Field: "preference", Kind: kind, Name: p.Name}); err != nil {
			return nil, err
		}
	}
	return spec, nil
}

// get reads key into obj; a missing object or an unserved kind is notFound.
func get(ctx context.Context, c client.Reader, key types.NamespacedName, obj client.Object, notFound error) error {
	err := c.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return notFound
	}
	return err
}

// resolveSize is the guest's size: the running instance's domain when a
// VMI exists, else the instance type's guest cpu and memory (it), else the
// machine's own.
func resolveSize(m Machine, it *instancetypev1beta1.VirtualMachineInstancetypeSpec, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) Size {
	s := Size{CPU: m.CPU, Memory: canonicalQuantity(m.Memory), From: SizeFromMachine}
	if it != nil {
		s = Size{CPU: int32(it.CPU.Guest), Memory: canonicalQuantity(it.Memory.Guest), From: SizeFromInstancetype} //nolint:gosec // a guest vCPU count
	}
	if vm != nil && vm.Status.InstancetypeRef != nil && vm.Status.InstancetypeRef.ControllerRevisionRef != nil {
		s.RevisionName = vm.Status.InstancetypeRef.ControllerRevisionRef.Name
	}
	if vmi != nil {
		d := vmi.Spec.Domain
		if d.CPU != nil && d.Memory != nil && d.Memory.Guest != nil {
			n := max(d.CPU.Cores, 1) * max(d.CPU.Sockets, 1) * max(d.CPU.Threads, 1)
			s.CPU, s.Memory, s.From = int32(n), canonicalQuantity(*d.Memory.Guest), SizeFromInstance //nolint:gosec // a guest vCPU count
		}
	}
	return s
}

// validateSize: CPU at least 1 and Memory positive, unless an Instancetype
// sizes the machine; a Matcher needs a name and one of its kinds.
func (m Machine) validateSize() error {
	invalid := func(field, msg string) error { return &InvalidInputError{Field: field, Message: msg} }
	if it := m.Instancetype; it != nil {
		if it.Name == "" {
			return invalid("instancetype.name", "must not be empty")
		}
		if it.Kind != "" && it.Kind != KindClusterInstancetype && it.Kind != KindInstancetype {
			return invalid("instancetype.kind", fmt.Sprintf("unsupported value %q (%s or %s)", it.Kind, KindClusterInstancetype, KindInstancetype))
		}
	} else {
		if m.CPU < 1 {
			return invalid("cpu", "must be at least 1")
		}
		if m.Memory.Sign() <= 0 {
			return invalid("memory", "must be positive")
		}
	}
	if p := m.Preference; p != nil {
		if p.Name == "" {
			return invalid("preference.name", "must not be empty")
		}
		if p.Kind != "" && p.Kind != KindClusterPreference && p.Kind != KindPreference {
			return invalid("preference.kind", fmt.Sprintf("unsupported value %q (%s or %s)", p.Kind, KindClusterPreference, KindPreference))
		}
	}
	return nil
}

// setReferences gives vm the machine's instance type and preference
// matchers. With an instance type the template keeps no cpu, guest memory
// or memory request: KubeVirt's VM admitter refuses those as conflicts
// (pkg/instancetype/apply validateCPU, validateMemory), and virt-controller
// fills them into the VMI from the captured instance type.
func setReferences(vm *kubevirtv1.VirtualMachine, m Machine) {
	if it := m.Instancetype; it != nil {
		kind := it.Kind
		if kind == "" {
			kind = KindClusterInstancetype
		}
		vm.Spec.Instancetype = &kubevirtv1.InstancetypeMatcher{Kind: kind, Name: it.Name}
		d := &vm.Spec.Template.Spec.Domain
		d.CPU, d.Memory, d.Resources.Requests = nil, nil, nil
	}
	if p := m.Preference; p != nil {
		kind := p.Kind
		if kind == "" {
			kind = KindClusterPreference
		}
		vm.Spec.Preference = &kubevirtv1.PreferenceMatcher{Kind: kind, Name: p.Name}
	}
}

// dropSizing removes the template's cpu, guest memory and memory request
// from the live VM key before the apply that first references an instance
// type. The apply alone would leave spec.template.spec.domain.resources
// null when it stops owning requests.memory (the API server's merge of an
// empty resources object; the VM schema refuses null), and KubeVirt refuses
// an instance type next to any of the three. Nothing is written when none
// is set, or when there is no VM.
func dropSizing(ctx context.Context, c client.Client, key client.ObjectKey, m Machine) error {
	if m.Instancetype == nil {
		return nil
	}
	live := &kubevirtv1.VirtualMachine{}
	if err := c.Get(ctx, key, live); err != nil {
		return client.IgnoreNotFound(err)
	}
	if live.Spec.Template == nil {
		return nil
	}
	d := live.Spec.Template.Spec.Domain
	_, request := d.Resources.Requests[corev1.ResourceMemory]
	if d.CPU == nil && d.Memory == nil && !request {
		return nil
	}
	patch := []byte(`{"spec":{"template":{"spec":{"domain":{"cpu":null,"memory":null,"resources":{"requests":{"memory":null}}}}}}}`)
	if err := c.Patch(ctx, live, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("%s: removing cpu and memory for the instance type: %w", errApplyVM, err)
	}
	return nil
}

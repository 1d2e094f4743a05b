package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypeapi "kubevirt.io/api/instancetype"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Reasons of the VM's Failure condition when a referenced instance type or
// preference cannot be found (pkg/instancetype/controller/vm
// checkResourcesExist, v1.9.0).
const (
	ReasonFailedFindInstancetype = "FailedFindInstancetype"
	ReasonFailedFindPreference   = "FailedFindPreference"
)

// syncFailure is why virt-controller's instancetype sync refused the VM:
// it sets the VM's Failure condition with it and creates no VMI.
type syncFailure struct{ reason, message string }

// syncInstancetype plays virt-controller's instancetype controller with
// KubeVirt's default reference policy, Reference (pkg/instancetype/
// controller/vm Sync, v1.9.0): each referenced object must exist
// (checkResourcesExist; else the VM's Failure condition, reason
// FailedFindInstancetype or FailedFindPreference, and no VMI); then a
// ControllerRevision holding a copy of each is stored once, named
// <vm>-<object>-<version>-<uid>-<generation> and controlled by the VM
// (pkg/instancetype/revision CreateControllerRevision), and recorded in the
// VM's status.instancetypeRef / status.preferenceRef controllerRevisionRef
// (revision syncStatusWithMatcher; a new name or kind clears it, a
// spec revisionName wins). From then on the revision, not the live object,
// sizes the VM (pkg/instancetype/find: the revision when the status names
// one). It returns the VM's template with the instance type applied as
// virt-controller does when it creates the VMI (instancetype/apply
// applyCPU, applyMemory: guest vCPUs as sockets, PreferSockets being the
// default topology without a preference, and guest memory); preferences'
// own settings are not applied here. vm.Status is changed in place; the
// caller writes it.
func (r *kubevirtSim) syncInstancetype(ctx context.Context, vm *kubevirtv1.VirtualMachine) (*kubevirtv1.VirtualMachineInstanceSpec, *syncFailure, error) {
	if vm.Spec.Template == nil || (vm.Spec.Instancetype == nil && vm.Spec.Preference == nil) {
		return nil, nil, nil
	}
	tmpl := vm.Spec.Template.Spec.DeepCopy()
	if m := vm.Spec.Instancetype; m != nil {
		if vm.Status.InstancetypeRef == nil {
			vm.Status.InstancetypeRef = &kubevirtv1.InstancetypeStatusRef{}
		}
		raw, failure, err := r.captured(ctx, vm, vm.Status.InstancetypeRef, m.Name, m.Kind, m.RevisionName, true)
		if failure != nil || err != nil {
			return nil, failure, err
		}
		var it struct {
			Spec instancetypev1beta1.VirtualMachineInstancetypeSpec `json:"spec"`
		}
		if err := json.Unmarshal(raw, &it); err != nil {
			return nil, nil, fmt.Errorf("decoding ControllerRevision %s: %w", vm.Status.InstancetypeRef.ControllerRevisionRef.Name, err)
		}
		tmpl.Domain.CPU = &kubevirtv1.CPU{Sockets: max(it.Spec.CPU.Guest, 1), Cores: 1, Threads: 1}
		guest := it.Spec.Memory.Guest.DeepCopy()
		tmpl.Domain.Memory = &kubevirtv1.Memory{Guest: &guest}
	}
	if m := vm.Spec.Preference; m != nil {
		if vm.Status.PreferenceRef == nil {
			vm.Status.PreferenceRef = &kubevirtv1.InstancetypeStatusRef{}
		}
		if _, failure, err := r.captured(ctx, vm, vm.Status.PreferenceRef, m.Name, m.Kind, m.RevisionName, false); failure != nil || err != nil {
			return nil, failure, err
		}
	}
	return tmpl, nil, nil
}

// captured returns the data of the ControllerRevision ref names, storing
// one from the live object first when ref names none (or another object).
func (r *kubevirtSim) captured(ctx context.Context, vm *kubevirtv1.VirtualMachine, ref *kubevirtv1.InstancetypeStatusRef,
	name, kind, revisionName string, instancetype bool,
) ([]byte, *syncFailure, error) {
	if ref.Name != name || ref.Kind != kind {
		ref.Name, ref.Kind, ref.ControllerRevisionRef = name, kind, nil
	}
	if revisionName != "" {
		ref.ControllerRevisionRef = &kubevirtv1.ControllerRevisionRef{Name: revisionName}
	}
	if ref.ControllerRevisionRef != nil {
		rev := &appsv1.ControllerRevision{}
		err := r.live.Get(ctx, types.NamespacedName{Namespace: vm.Namespace, Name: ref.ControllerRevisionRef.Name}, rev)
		if err == nil {
			return rev.Data.Raw, nil, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, nil, err
		}
		ref.ControllerRevisionRef = nil // gone: captured again below
	}
	obj, failure, err := r.findReferenced(ctx, vm.Namespace, name, kind, instancetype)
	if failure != nil || err != nil {
		ref.Name, ref.Kind = "", "" // nothing captured
		return nil, failure, err
	}
	rev, err := controllerRevision(vm, obj, r.c.Scheme())
	if err != nil {
		return nil, nil, err
	}
	if err := r.c.Create(ctx, rev); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, nil, fmt.Errorf("failed to create ControllerRevision: %w", err)
	}
	log.FromContext(ctx).Info("stored ControllerRevision", "name", rev.Name)
	ref.ControllerRevisionRef = &kubevirtv1.ControllerRevisionRef{Name: rev.Name}
	return rev.Data.Raw, nil, nil
}

// findReferenced reads the instance type (or preference) a matcher names:
// the cluster kind for an empty kind, as KubeVirt does.
func (r *kubevirtSim) findReferenced(ctx context.Context, namespace, name, kind string, instancetype bool) (client.Object, *syncFailure, error) {
	var (
		obj    client.Object
		key    = types.NamespacedName{Name: name}
		reason = ReasonFailedFindPreference
	)
	switch {
	case instancetype && (kind == "" || kind == "VirtualMachineClusterInstancetype"):
		obj, reason = &instancetypev1beta1.VirtualMachineClusterInstancetype{}, ReasonFailedFindInstancetype
	case instancetype:
		obj, key.Namespace, reason = &instancetypev1beta1.VirtualMachineInstancetype{}, namespace, ReasonFailedFindInstancetype
	case kind == "" || kind == "VirtualMachineClusterPreference":
		obj = &instancetypev1beta1.VirtualMachineClusterPreference{}
	default:
		obj, key.Namespace = &instancetypev1beta1.VirtualMachinePreference{}, namespace
	}
	err := r.live.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		return nil, &syncFailure{reason: reason, message: err.Error()}, nil
	}
	return obj, nil, err
}

// controllerRevision is KubeVirt's copy of obj for vm
// (pkg/instancetype/revision CreateControllerRevision, v1.9.0): the object
// with its kind, without labels, annotations, finalizers, owner references
// or managed fields, in a ControllerRevision controlled by the VM and
// labelled with the object's kind, name, UID, version and generation.
func controllerRevision(vm *kubevirtv1.VirtualMachine, obj client.Object, scheme *runtime.Scheme) (*appsv1.ControllerRevision, error) {
	gvks, _, err := scheme.ObjectKinds(obj)
	if err != nil {
		return nil, err
	}
	gvk := gvks[0]
	obj = obj.DeepCopyObject().(client.Object) //nolint:forcetypeassert // a copy of a client.Object
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	generation := strconv.FormatInt(obj.GetGeneration(), 10)
	name := fmt.Sprintf("%s-%s-%s-%s-%s", vm.Name, obj.GetName(), gvk.Version, obj.GetUID(), generation)
	labels := map[string]string{
		instancetypeapi.ControllerRevisionObjectGenerationLabel: generation,
		instancetypeapi.ControllerRevisionObjectKindLabel:       gvk.Kind,
		instancetypeapi.ControllerRevisionObjectNameLabel:       obj.GetName(),
		instancetypeapi.ControllerRevisionObjectUIDLabel:        string(obj.GetUID()),
		instancetypeapi.ControllerRevisionObjectVersionLabel:    gvk.Version,
	}
	obj.SetLabels(nil)
	obj.SetAnnotations(nil)
	obj.SetFinalizers(nil)
	obj.SetOwnerReferences(nil)
	obj.SetManagedFields(nil)
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: vm.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(vm, kubevirtv1.VirtualMachineGroupVersionKind)},
		},
		Data: runtime.RawExtension{Raw: raw},
	}, nil
}

// failedInstancetypeSync is the VM's status when the instancetype sync
// refused it: the Failure condition with the sync's reason and message
// (pkg/virt-controller/watch/vm processFailureCondition), no VMI.
func failedInstancetypeSync(vm *kubevirtv1.VirtualMachine, f *syncFailure) {
	setVMCondition(vm, kubevirtv1.VirtualMachineFailure, corev1.ConditionTrue, f.reason, f.message)
}

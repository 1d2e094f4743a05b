package manager

import (
	"context"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
)

// StubAnnotation marks an object the manager's cache holds as a
// metadata-only stub (see ChildTransform): FallbackClient reads such an
// object from the API server instead. The transform removes the key from
// every object it keeps whole, so only its own stubs carry it.
const StubAnnotation = "vm.novasphere.dev/cache-stub"

// ownerWait bounds how long ChildTransform waits for the VirtualMachine or
// DataVolume informer to sync before it decides about an instance or a
// CDI-made claim (only at start, while the informers list).
const ownerWait = 30 * time.Second

// StripManagedFields is the cache's transform for every kind: nothing in
// the operator reads metadata.managedFields, which is often the largest
// part of an object's metadata.
func StripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok && o.GetManagedFields() != nil {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// ChildTransform is the cache's transform for the kinds it selects by
// Wukong's managed-by label (controller.CachedKinds, Labelled). That label
// is only a filter: anyone who may write a Secret, a PVC or a VMI can set
// it. So the cache keeps an object whole (without managedFields) only when
// the operator controls it:
//
//   - its controller reference names a Wukong or a NodeBridge (group
//     vm.novasphere.dev) and it has a name the operator gives that kind
//     (childName): what lib/storage, lib/network and lib/kubevirt create
//     (apply.ControllerRef);
//   - a VirtualMachineInstance whose controller is a VirtualMachine that
//     the cache holds (same UID) and that a Wukong controls (KubeVirt
//     creates the instance and copies the VM's labels onto it);
//   - a PersistentVolumeClaim whose controller is a DataVolume the cache
//     holds (same UID) and that a Wukong controls (CDI creates it).
//
// Anything else becomes a stub: name, namespace, uid, resourceVersion,
// generation, timestamps, the controller reference, Wukong's own labels
// (managed-by and vm.novasphere.dev/*, which map its events to a Wukong)
// and StubAnnotation; no data, spec, status, other labels, annotations,
// finalizers or other owner references. The reconciler still sees that it
// exists and whose it is (lib/apply's no-adoption check reads only the
// controller reference), and FallbackClient reads the whole object from
// the API server when a reconcile asks for it (an sshKeySecret or a
// NetworkAttachmentDefinition the user labelled).
//
// reader is the manager's cache (set once the manager exists, before it
// starts); installed says which optional kinds are cached, so the lookup
// never starts an informer of its own.
type ChildTransform struct {
	Reader    client.Reader
	Installed func(schema.GroupVersionKind) bool
}

// Transform implements toolscache.TransformFunc.
func (t *ChildTransform) Transform(in any) (any, error) {
	obj, ok := in.(client.Object)
	if !ok {
		// A DeletedFinalStateUnknown or other marker: pass it on.
		return in, nil
	}
	obj.SetManagedFields(nil)
	if t.controlled(obj) {
		if a := obj.GetAnnotations(); a != nil {
			delete(a, StubAnnotation)
		}
		return obj, nil
	}
	return stub(obj), nil
}

var _ toolscache.TransformFunc = (&ChildTransform{}).Transform

// ownGroup is the API group of the kinds that control Wukong's children.
var ownGroup = v1alpha1.GroupVersion.Group

func (t *ChildTransform) controlled(obj client.Object) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil {
		return false
	}
	group := groupOf(ref.APIVersion)
	if group == ownGroup && (ref.Kind == "Wukong" || ref.Kind == "NodeBridge") {
		return childName(obj, *ref)
	}
	if obj.GetName() != ref.Name {
		return false // KubeVirt names an instance, CDI a claim, after its owner
	}
	switch obj.(type) {
	case *kubevirtv1.VirtualMachineInstance:
		if group == kubevirtv1.GroupVersion.Group && ref.Kind == "VirtualMachine" {
			return t.ownerControlled(obj.GetNamespace(), *ref, kubevirtv1.GroupVersion.WithKind("VirtualMachine"), &kubevirtv1.VirtualMachine{})
		}
	case *corev1.PersistentVolumeClaim:
		if group == cdiv1.SchemeGroupVersion.Group && ref.Kind == "DataVolume" {
			return t.ownerControlled(obj.GetNamespace(), *ref, cdiv1.SchemeGroupVersion.WithKind("DataVolume"), &cdiv1.DataVolume{})
		}
	}
	return false
}

// childName reports whether obj has a name the operator gives a child of
// that kind of the owner ref names: the cloud-init Secret <wukong>-cloudinit,
// the SSH key Secret <wukong>-sshkeys and the VirtualMachine <wukong> (one
// per Wukong), a PVC, DataVolume or
// NAD <wukong>-<disk or NIC>, the policy of a NodeBridge
// wukong-br-<bridge>. An owner reference is all a tenant needs to forge
// (to one of its own Wukongs); the name rule keeps such objects from being
// held whole beyond the few names a Wukong's children may take.
func childName(obj client.Object, ref metav1.OwnerReference) bool {
	name := obj.GetName()
	if ref.Kind == "NodeBridge" {
		return name == network.PolicyName(identity.Wukong, ref.Name)
	}
	switch obj.(type) {
	case *corev1.Secret:
		return name == ref.Name+"-"+kubevirt.CloudInitSecretSuffix || name == ref.Name+"-"+kubevirt.SSHKeysSecretSuffix
	case *kubevirtv1.VirtualMachine:
		return name == ref.Name
	case *kubevirtv1.VirtualMachineInstance:
		return false // KubeVirt's VM controls it, never a Wukong
	default:
		return strings.HasPrefix(name, ref.Name+"-")
	}
}

// ownerControlled reports whether the owner ref names (by UID) an object of
// gvk the cache holds, controlled by a Wukong. The cache's Get waits for
// that kind's informer to sync, at most ownerWait.
func (t *ChildTransform) ownerControlled(namespace string, ref metav1.OwnerReference, gvk schema.GroupVersionKind, owner client.Object) bool {
	if t.Reader == nil || (t.Installed != nil && !t.Installed(gvk)) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), ownerWait)
	defer cancel()
	if err := t.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, owner); err != nil {
		return false
	}
	if owner.GetUID() != ref.UID || owner.GetAnnotations()[StubAnnotation] != "" {
		return false
	}
	oref := metav1.GetControllerOfNoCopy(owner)
	return oref != nil && groupOf(oref.APIVersion) == ownGroup && oref.Kind == "Wukong" && childName(owner, *oref)
}

// stub returns an empty object of obj's type carrying only what
// ChildTransform keeps.
func stub(obj client.Object) client.Object {
	// A zero object of the same Go type: obj's spec, data and status are
	// dropped by copying nothing but metadata into it.
	out, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	if !ok {
		return obj
	}
	out.GetObjectKind().SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
	out.SetName(obj.GetName())
	out.SetNamespace(obj.GetNamespace())
	out.SetUID(obj.GetUID())
	out.SetResourceVersion(obj.GetResourceVersion())
	out.SetGeneration(obj.GetGeneration())
	out.SetCreationTimestamp(obj.GetCreationTimestamp())
	out.SetDeletionTimestamp(obj.GetDeletionTimestamp())
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		out.SetOwnerReferences([]metav1.OwnerReference{*ref.DeepCopy()})
	}
	labels := map[string]string{}
	for k, v := range obj.GetLabels() {
		if k == apply.LabelManagedBy || strings.HasPrefix(k, identity.Wukong.Domain+"/") {
			labels[k] = v
		}
	}
	out.SetLabels(labels)
	out.SetAnnotations(map[string]string{StubAnnotation: "true"})
	return out
}

// IsStub reports whether obj is a stub ChildTransform made.
func IsStub(obj client.Object) bool { return obj.GetAnnotations()[StubAnnotation] != "" }

func groupOf(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return apiVersion
	}
	return gv.Group
}

// TrimNode is the cache's transform for Nodes, which the controller reads
// only for their Ready condition (node loss, issue #30): it keeps the
// metadata (without managedFields) and status.conditions, and drops the
// rest (status.images, the largest part of a Node, addresses, capacity,
// spec), so the cache's memory per node stays small.
func TrimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return StripManagedFields(obj)
	}
	n.SetManagedFields(nil)
	n.Spec = corev1.NodeSpec{}
	n.Status = corev1.NodeStatus{Conditions: n.Status.Conditions}
	return n, nil
}

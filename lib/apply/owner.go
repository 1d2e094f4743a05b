package apply

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// errOwnerKind prefixes OwnerWithKind's errors.
const errOwnerKind = "cannot determine the owner's apiVersion/kind"

// OwnerWithKind returns owner with apiVersion and kind set, so builders can
// write an owner reference. Typed objects read through a client usually
// have their TypeMeta cleared; the kind is then looked up in s. owner itself
// is not modified. Its errors (a kind s does not know) start with "cannot
// determine the owner's apiVersion/kind", so a lib returns them as they are.
func OwnerWithKind(owner client.Object, s *runtime.Scheme) (client.Object, error) {
	if owner.GetObjectKind().GroupVersionKind().Kind != "" {
		return owner, nil
	}
	gvk, err := apiutil.GVKForObject(owner, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errOwnerKind, err)
	}
	cp, ok := owner.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not a client.Object", errOwnerKind, owner)
	}
	cp.GetObjectKind().SetGroupVersionKind(gvk)
	return cp, nil
}

// ControllerRef is a controller owner reference to owner (controller and
// blockOwnerDeletion true), so the garbage collector deletes the object
// with its owner. apiVersion and kind come from owner's TypeMeta (see
// OwnerWithKind): a typed object read through a client may have them
// cleared.
func ControllerRef(owner client.Object) metav1.OwnerReference {
	gvk := owner.GetObjectKind().GroupVersionKind()
	return metav1.OwnerReference{
		APIVersion:         gvk.GroupVersion().String(),
		Kind:               gvk.Kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

package apply

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// OwnerWithKind returns owner with apiVersion and kind set, so builders can
// write an owner reference. Typed objects read through a client usually
// have their TypeMeta cleared; the kind is then looked up in s. owner itself
// is not modified.
func OwnerWithKind(owner client.Object, s *runtime.Scheme) (client.Object, error) {
	if owner.GetObjectKind().GroupVersionKind().Kind != "" {
		return owner, nil
	}
	gvk, err := apiutil.GVKForObject(owner, s)
	if err != nil {
		return nil, err
	}
	cp, ok := owner.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not a client.Object", owner)
	}
	cp.GetObjectKind().SetGroupVersionKind(gvk)
	return cp, nil
}

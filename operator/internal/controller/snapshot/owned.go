package snapshot

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
)

// wukongVM reads the VirtualMachine of Wukong w (its namespace and name).
// It returns nil and no error when there is none, when KubeVirt is not
// installed (NoMatch), or when w does not control it (a name conflict the
// Wukong itself reports); a failed read is wrapped in errGetVM.
func wukongVM(ctx context.Context, c client.Client, w *v1alpha1.Wukong) (*kubevirtv1.VirtualMachine, error) {
	vm := &kubevirtv1.VirtualMachine{}
	switch err := c.Get(ctx, client.ObjectKeyFromObject(w), vm); {
	case kerrors.IsNotFound(err), meta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%s: %w", errGetVM, err)
	}
	if !metav1.IsControlledBy(vm, w) {
		return nil, nil
	}
	return vm, nil
}

// readOwned reads into obj the KubeVirt object named like owner (its
// namespace and name). found: it exists and owner controls it. One that
// owner does not control sets *conflict and is left alone. absent: none
// exists (NotFound), so creating it may be due; KubeVirt not installed
// (NoMatch) is neither found nor absent. Other read errors are returned.
func readOwned(ctx context.Context, c client.Client, owner, obj client.Object, conflict *bool) (found, absent bool, err error) {
	err = c.Get(ctx, client.ObjectKeyFromObject(owner), obj)
	switch {
	case err == nil:
		*conflict = !metav1.IsControlledBy(obj, owner)
		return !*conflict, false, nil
	case meta.IsNoMatchError(err):
		return false, false, nil
	case kerrors.IsNotFound(err):
		return false, true, nil
	}
	return false, false, err
}

// createOwned creates obj with owner as its controller. created is false,
// with no error, when an object of that name exists already (AlreadyExists:
// the cache was behind; the next pass reads it). A failed create is
// wrapped in errCreate.
func createOwned(ctx context.Context, c client.Client, owner, obj client.Object, errCreate string) (created bool, err error) {
	if err := controllerutil.SetControllerReference(owner, obj, c.Scheme()); err != nil {
		return false, err
	}
	if err := c.Create(ctx, obj); err != nil {
		if kerrors.IsAlreadyExists(err) {
			return false, nil
		}
		return false, fmt.Errorf("%s: %w", errCreate, err)
	}
	return true, nil
}

// ownedMeta names the KubeVirt object of owner like it (same namespace and
// name) and labels it as Wukong wukongName's.
func ownedMeta(owner client.Object, wukongName string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: owner.GetName(), Namespace: owner.GetNamespace(),
		Labels: identity.Wukong.OwnerLabels(wukongName),
	}
}

// vmRef refers to the KubeVirt VirtualMachine name of the namespace (the
// source of a VirtualMachineSnapshot, the target of a
// VirtualMachineRestore).
func vmRef(name string) corev1.TypedLocalObjectReference {
	group := kubevirtv1.GroupVersion.Group
	return corev1.TypedLocalObjectReference{APIGroup: &group, Kind: "VirtualMachine", Name: name}
}

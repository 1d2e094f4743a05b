package statuspass

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Pass is one reconcile pass of a controller over an object of type T
// (*v1alpha1.ClusterImage, *v1alpha1.WukongSnapshot, ...) with a scope of
// type S: observe into the scope, compute the status from it, write the
// status in one patch.
type Pass[T client.Object, S any] struct {
	// Final reports that nothing is left to do for the object (optional).
	Final func(T) bool
	// Scope returns the empty scope of the object.
	Scope func(T) S
	// Steps observe and act, filling the scope; the first error ends the
	// pass and nothing is written.
	Steps []func(context.Context, S) error
	// Compute sets the object's status, observedGeneration included, from
	// the scope alone and returns the requeue its state needs.
	Compute func(S) ctrl.Result
	// Status is the part of the object the pass writes (its Status).
	Status func(T) any
}

// Run reads the object of key into obj (a missing one is no error), stops
// when it is being deleted or final, runs the steps and compute, and
// patches the status (PatchIfChanged).
func (p Pass[T, S]) Run(ctx context.Context, c client.Client, key client.ObjectKey, obj T) (ctrl.Result, error) {
	if err := c.Get(ctx, key, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() || (p.Final != nil && p.Final(obj)) {
		return ctrl.Result{}, nil
	}
	base, _ := obj.DeepCopyObject().(T) // DeepCopyObject of a T is a T
	s := p.Scope(obj)
	for _, step := range p.Steps {
		if err := step(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	result := p.Compute(s)
	if err := PatchIfChanged(ctx, c, base, obj, p.Status(base), p.Status(obj)); err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

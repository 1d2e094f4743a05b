package snapshot

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/operator/internal/statuspatch"
)

// pass is one reconcile pass of a controller of this package over an
// object of type T (*v1alpha1.WukongSnapshot, *v1alpha1.WukongRestore)
// with a scope of type S: observe into the scope, compute the status from
// it, write the status in one patch.
type pass[T client.Object, S any] struct {
	// final reports that nothing is left to do for the object (optional).
	final func(T) bool
	// scope returns the empty scope of the object.
	scope func(T) S
	// steps observe and act, filling the scope; the first error ends the
	// pass and nothing is written.
	steps []func(context.Context, S) error
	// compute sets the object's status, observedGeneration included, from
	// the scope alone and returns the requeue its state needs.
	compute func(S) ctrl.Result
	// status is the part of the object the pass writes (its Status).
	status func(T) any
}

// run reads the object of key into obj (a missing one is no error), stops
// when it is being deleted or final, runs the steps and compute, and
// patches the status (a merge patch against the object as read) when it
// changed; an object deleted meanwhile (NotFound on the patch) is no error.
func (p pass[T, S]) run(ctx context.Context, c client.Client, key client.ObjectKey, obj T) (ctrl.Result, error) {
	if err := c.Get(ctx, key, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() || (p.final != nil && p.final(obj)) {
		return ctrl.Result{}, nil
	}
	base, _ := obj.DeepCopyObject().(T) // DeepCopyObject of a T is a T
	s := p.scope(obj)
	for _, step := range p.steps {
		if err := step(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	result := p.compute(s)
	if err := statuspatch.IfChanged(ctx, c, base, obj, p.status(base), p.status(obj)); err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

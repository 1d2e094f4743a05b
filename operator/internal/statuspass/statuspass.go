// Package statuspass holds the reconcile pass the ClusterImage,
// WukongSnapshot and WukongRestore controllers run (Pass: observe into a
// scope, compute the status from it, write it in one patch) and the one
// status write it and the NodeBridge controller end with
// (PatchIfChanged).
package statuspass

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PatchIfChanged patches obj's status subresource, a merge patch against
// base (the object as read), when the status before (base's) and after
// (obj's) differ semantically; an object deleted meanwhile (NotFound) is
// no error.
func PatchIfChanged(ctx context.Context, c client.Client, base, obj client.Object, before, after any) error {
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

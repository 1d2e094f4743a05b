package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// pullSecret checks spec.osImagePullSecret of a Wukong booting osImage as a
// container disk (no disks): the Secret must be in the Wukong's namespace,
// else the problem SecretNotFound naming spec.osImagePullSecret (External:
// Secrets a user brings are not watched, so it is looked at again after
// StalledRetry) and the VM is not written: the node would fail to pull the
// image (kubelet ErrImagePull) with no word on the Wukong. Only its
// metadata is read, from the API server when an uncached reader is there:
// nothing of it is kept or copied. It returns an error only when the read
// fails.
func (r *WukongReconciler) pullSecret(ctx context.Context, s *scope) error {
	name := s.w.Spec.OSImagePullSecret
	if name == "" || len(s.w.Spec.Disks) > 0 {
		return nil
	}
	key := client.ObjectKey{Namespace: s.w.Namespace, Name: name}
	var err error
	if r.APIReader != nil {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		err = r.APIReader.Get(ctx, key, meta)
	} else {
		err = r.Client.Get(ctx, key, &corev1.Secret{})
	}
	switch {
	case apierrors.IsNotFound(err):
		s.addProblem(problem{Condition: v1alpha1.ReadyCondition, Reason: v1alpha1.ReasonSecretNotFound, Field: "spec.osImagePullSecret", External: true,
			Message: fmt.Sprintf("no Secret %s in this namespace: the node pulls osImage (a container disk) with it; create it "+
				"(type kubernetes.io/dockerconfigjson, e.g. kubectl create secret docker-registry) or change spec.osImagePullSecret", name)})
		return nil
	case err != nil:
		return fmt.Errorf("cannot get Secret %s: %w", name, err)
	}
	return nil
}

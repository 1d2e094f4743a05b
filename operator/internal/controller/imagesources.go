package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/imagesource"
	"github.com/novasphere/wukong/operator/mapping"
)

// checkImageSources checks every source CDI's importer or a node's
// container runtime would fetch (each disk's image, osImage on the boot
// disk, osImage as the container disk of a Wukong without disks) against
// the administrator's image sources (r.ImageSources). A refused source is
// a problem ImageSourceNotAllowed naming spec.disks[i].image or
// spec.osImage, and its disk is not written (reconcileDisks skips it; with
// a problem the VM is not written either). A source that is not a valid
// http(s) URL or image reference is left to the step that refuses it
// (InvalidSpec). A source refused after its disk was imported (the list
// changed) stalls the Wukong the same way: the disk is left as it is and an
// existing VM is observed, not changed. It returns an error only when the
// Namespace lookup fails (the sources are then not written either).
func (r *WukongReconciler) checkImageSources(ctx context.Context, s *scope) error {
	var lookupErr error
	isNamespace := func(name string) bool {
		err := r.Client.Get(ctx, types.NamespacedName{Name: name}, &corev1.Namespace{})
		if err != nil && !apierrors.IsNotFound(err) {
			lookupErr = errors.Join(lookupErr, err)
			return true // refused until the lookup works: fail closed
		}
		return err == nil
	}
	// refused records a refused source as a problem (not while a lookup
	// fails: the pass is retried) and says whether it was refused.
	refused := func(condition, field, source string) bool {
		if _, err := storage.SourceKind(source); err != nil {
			return false // refused as InvalidSpec by the disk or machine step
		}
		err := r.ImageSources.Check(source, isNamespace)
		var no *imagesource.RefusedError
		if !errors.As(err, &no) {
			return false
		}
		if lookupErr == nil {
			s.addProblem(problem{Condition: condition, Reason: v1alpha1.ReasonImageSourceNotAllowed, Field: field, Message: no.Error()})
		}
		s.sourceBlocked = true
		return true
	}
	boot := mapping.BootIndex(s.w)
	for i, d := range mapping.Disks(s.w) {
		field := fmt.Sprintf("spec.disks[%d].image", i)
		if i == boot && s.w.Spec.Disks[i].Image == "" {
			field = "spec.osImage"
		}
		if refused(v1alpha1.VolumesBoundCondition, field, d.Source) {
			if s.sourceRefused == nil {
				s.sourceRefused = map[string]bool{}
			}
			s.sourceRefused[d.Name] = true
		}
	}
	if len(s.w.Spec.Disks) == 0 && s.w.Spec.OSImage != "" {
		refused(v1alpha1.ReadyCondition, "spec.osImage", s.w.Spec.OSImage)
	}
	if lookupErr != nil {
		return fmt.Errorf("cannot check image sources: %w", lookupErr)
	}
	return nil
}

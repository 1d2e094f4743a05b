package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/kubevirt"
)

// How the Wukong controller lives with KubeVirt's restores (issue #31;
// operator/internal/controller/snapshot RestoreReconciler says what KubeVirt
// does). Wukong never undoes a restore:
//
//   - While the VM's status.restoreInProgress names a VirtualMachineRestore,
//     reconcileMachine applies neither the VM nor its cloud-init Secret: it
//     only observes (phase Restoring, Ready False reason Restoring).
//     KubeVirt deletes and recreates the disks' claims and replaces the
//     VM's spec meanwhile; an apply would put Wukong's fields back over a
//     half-restored VM.
//   - Afterwards the VM is applied again from the Wukong's spec, with one
//     difference KubeVirt's restore leaves: a disk's dataVolume volume that
//     is no dataVolumeTemplate comes back as a persistentVolumeClaim volume
//     of the same claim (generateRestoredVMSpec). keepRestoredClaimVolumes
//     keeps that form, so the volumes KubeVirt restored stay exactly as it
//     wrote them, the claim names (and the disk names in status) are
//     unchanged, and no volume ends up with two sources.

// liveVM reads the Wukong's VirtualMachine (through the cache: it carries
// Wukong's label), nil when it does not exist, KubeVirt is not installed or
// it is not the Wukong's.
func (r *WukongReconciler) liveVM(ctx context.Context, s *scope) (*kubevirtv1.VirtualMachine, error) {
	vm := &kubevirtv1.VirtualMachine{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.w.Namespace, Name: s.w.Name}, vm)
	switch {
	case apierrors.IsNotFound(err), meta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if !metav1.IsControlledBy(vm, s.w) {
		return nil, nil
	}
	return vm, nil
}

// keepRestoredClaimVolumes sets DataVolume false on each disk of m whose
// volume in live is a persistentVolumeClaim volume of the disk's own claim
// (what KubeVirt's restore makes of a dataVolume volume): the same claim,
// so the form KubeVirt wrote is kept rather than undone. A live volume of
// another claim, or of another kind, changes nothing (the Wukong's spec
// wins, as for any drift).
func keepRestoredClaimVolumes(m *kubevirt.Machine, live *kubevirtv1.VirtualMachine) {
	if live == nil || live.Spec.Template == nil {
		return
	}
	claims := map[string]string{}
	for _, v := range live.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
	}
	for i := range m.Disks {
		d := &m.Disks[i]
		if d.DataVolume && claims[d.Name] == d.ClaimName {
			d.DataVolume = false
		}
	}
}

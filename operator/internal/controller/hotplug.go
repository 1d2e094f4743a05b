package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
)

// Live changes of disks and NICs (issue #34). The lib decides what reaches
// the running machine live (kubevirt.PlanLive); this file records the
// Events for it, carries out a removed disk's deletionPolicy once the
// machine no longer uses it, and words RestartRequired for the changes
// that wait for a restart.

// liveEvents records one Normal Event per live change the VM write of this
// pass asked KubeVirt for (LiveAttach, LiveDetach).
func (r *WukongReconciler) liveEvents(s *scope) {
	if r.Recorder == nil {
		return
	}
	for _, c := range s.vm.LiveRequested() {
		reason := v1alpha1.ReasonLiveAttach
		if c.Action == kubevirt.LiveDetach {
			reason = v1alpha1.ReasonLiveDetach
		}
		r.Recorder.Eventf(s.w, nil, corev1.EventTypeNormal, reason, "HotPlug", "%s (no restart)", upperFirst(c.String()))
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// removedDisks are the entries of the Wukong's last written status.volumes
// whose disk is no longer in spec.disks and whose claim Wukong created
// (Owned or Retained): their deletionPolicy is still to be carried out.
func removedDisks(w *v1alpha1.Wukong) []v1alpha1.VolumeStatus {
	inSpec := map[string]bool{}
	for _, d := range w.Spec.Disks {
		inSpec[d.Name] = true
	}
	var out []v1alpha1.VolumeStatus
	for _, v := range w.Status.Volumes {
		if inSpec[v.Name] || v.Claim == v1alpha1.VolumeClaimExisting || v.Claim == "" {
			continue
		}
		out = append(out, v)
	}
	return out
}

// removedRetainDisks are the removed disks with deletionPolicy Retain
// still to release, as storage.Disk values for storage.Release: the
// Wukong keeps retainFinalizer for them, and its deletion releases them.
func removedRetainDisks(w *v1alpha1.Wukong) []storage.Disk {
	var out []storage.Disk
	for _, v := range removedDisks(w) {
		if v.Claim == v1alpha1.VolumeClaimRetained {
			out = append(out, storage.Disk{Name: v.Name, Retain: true})
		}
	}
	return out
}

// inUse reports whether the VirtualMachine's template or its running
// instance still has the volume name.
func inUse(obs kubevirt.Observation, name string) bool {
	if obs.HasVolume(name) {
		return true
	}
	vm := obs.VirtualMachine()
	if vm == nil || vm.Spec.Template == nil {
		return false
	}
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	return false
}

// releaseRemovedDisks carries out the deletionPolicy of each disk removed
// from spec.disks (removedDisks) once neither the VirtualMachine's
// template nor its instance uses it (a hot-plugged disk is unplugged by
// KubeVirt; one attached at start stays until the restart KubeVirt asks
// for): Delete deletes its DataVolume and claim (only those this Wukong
// controls, with their UID as precondition), Retain releases the claim as
// a Wukong's deletion does (storage.Release). Until then the disk keeps
// its status.volumes entry, with its hotplug phase (s.detaching), so the
// policy is not forgotten. The VirtualMachine and its instance are read
// afresh (kubevirt.Get).
func (r *WukongReconciler) releaseRemovedDisks(ctx context.Context, s *scope) error {
	removed := removedDisks(s.w)
	if len(removed) == 0 {
		return nil
	}
	// A fresh read: this pass may not have seen the machine (a step
	// failed or was refused), and a claim must never go while used.
	obs, err := kubevirt.Get(ctx, r.Client, s.w.Namespace, s.w.Name)
	if err != nil && !errors.Is(err, kubevirt.ErrKubeVirtNotInstalled) {
		s.detaching = append(s.detaching, removed...)
		return err
	}
	hot := obs.HotplugVolumes()
	for _, v := range removed {
		if inUse(obs, v.Name) {
			v.Hotplug = &v1alpha1.HotplugStatus{Phase: string(kubevirtv1.HotplugVolumeDetaching),
				Message: "waiting for the running machine to stop using the disk (a disk attached at start goes at the next restart)"}
			if h, ok := hot[v.Name]; ok {
				v.Hotplug = &v1alpha1.HotplugStatus{Phase: string(h.Phase), Message: h.Message}
			}
			s.detaching = append(s.detaching, v)
			continue
		}
		var err error
		if v.Claim == v1alpha1.VolumeClaimRetained {
			err = r.retainRemoved(ctx, s, v)
		} else {
			err = r.deleteRemoved(ctx, s, v)
		}
		if err != nil {
			v.Hotplug = &v1alpha1.HotplugStatus{Phase: v1alpha1.HotplugPhaseDetached, Message: err.Error()}
			s.detaching = append(s.detaching, v)
			return err
		}
	}
	return nil
}

func (r *WukongReconciler) retainRemoved(ctx context.Context, s *scope, v v1alpha1.VolumeStatus) error {
	released, err := storage.Release(ctx, r.Client, identity.Wukong, s.w, []storage.Disk{{Name: v.Name, Retain: true}})
	if err != nil {
		return err
	}
	if r.Recorder != nil {
		from := storage.RetainedFromKey(identity.Wukong, "Wukong")
		for _, rel := range released {
			r.Recorder.Eventf(s.w, nil, corev1.EventTypeNormal, v1alpha1.ReasonRemovedDiskRetained, "Release",
				"disk %s was removed: PersistentVolumeClaim %s is kept (%s; labels %s=%s, %s=%s)",
				rel.Disk, rel.ClaimName, rel.Outcome, from, s.w.Name, identity.Wukong.Key(storage.KeyRetainedFromDisk), rel.Disk)
		}
	}
	return nil
}

// A removed disk with deletionPolicy Delete loses its claim (a blank disk's
// claim is the Wukong's own child; an image disk's goes with its DataVolume).
// +kubebuilder:rbac:groups=core,resources=persistentvolumeclaims,verbs=delete,namespace=watched

// deleteRemoved deletes the removed disk's DataVolume and claim when this
// Wukong controls them (a claim CDI made is controlled by the DataVolume,
// and goes with it).
func (r *WukongReconciler) deleteRemoved(ctx context.Context, s *scope, v v1alpha1.VolumeStatus) error {
	name := v.PVCName
	if name == "" {
		name = storage.ClaimName(s.w.Name, v.Name)
	}
	key := client.ObjectKey{Namespace: s.w.Namespace, Name: name}
	var deleted []string
	for _, o := range []struct {
		kind string
		obj  client.Object
	}{{"DataVolume", &cdiv1.DataVolume{}}, {"PersistentVolumeClaim", &corev1.PersistentVolumeClaim{}}} {
		obj := o.obj
		err := r.Client.Get(ctx, key, obj)
		switch {
		case apierrors.IsNotFound(err), meta.IsNoMatchError(err):
			continue
		case err != nil:
			return fmt.Errorf("cannot get the claim of removed disk %s: %w", v.Name, err)
		}
		if !metav1.IsControlledBy(obj, s.w) || obj.GetDeletionTimestamp() != nil {
			continue
		}
		uid := obj.GetUID()
		if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete the claim of removed disk %s: %w", v.Name, err)
		}
		deleted = append(deleted, o.kind)
	}
	if r.Recorder != nil && len(deleted) > 0 {
		r.Recorder.Eventf(s.w, nil, corev1.EventTypeNormal, v1alpha1.ReasonRemovedDiskDeleted, "Delete",
			"disk %s was removed (deletionPolicy Delete): deleted %s %s", v.Name, strings.Join(deleted, " and "), name)
	}
	return nil
}

// hotplugStatuses puts KubeVirt's hotplug phase on the status.volumes
// entries of disks attached live (kubevirt.Observation.HotplugVolumes).
func hotplugStatuses(vols []v1alpha1.VolumeStatus, obs kubevirt.Observation) {
	hot := obs.HotplugVolumes()
	for i := range vols {
		if h, ok := hot[vols[i].Name]; ok {
			vols[i].Hotplug = &v1alpha1.HotplugStatus{Phase: string(h.Phase), Message: h.Message}
		}
	}
}

// restartReasons is what RestartRequired lists: the disk and NIC changes
// that wait for a restart (kubevirt.LivePlan.Restart), "" when none.
func restartReasons(s *scope) []string {
	if !s.vm.Exists() {
		return nil
	}
	return append([]string(nil), s.vm.LivePlan().Restart...)
}

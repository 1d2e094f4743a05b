package sandbox

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Snapshots and restores in the sandbox (simulated, issue #31).
//
// KubeVirt's own VirtualMachineSnapshot and VirtualMachineRestore admission
// (VMSnapshotAdmitter, VMRestoreAdmitter) runs for real in
// hack/kubevirt-admission. Three simulators play, in this order, the
// controllers of a cluster:
//
//   - snapshotSim plays KubeVirt's snapshot controller (kubevirt.io/kubevirt
//     v1.9.0 pkg/storage/snapshot/snapshot.go, VMSnapshotController): a
//     VirtualMachineSnapshot gets status phase InProgress, then a
//     VirtualMachineSnapshotContent named vmsnapshot-content-<snapshot UID>
//     (getVMSnapshotContentName) with one volumeBackup per PVC or
//     DataVolume volume (the claim as it was, volumeSnapshotName
//     vmsnapshot-<snapshot UID>-volume-<volume>), and one VolumeSnapshot per
//     backup (createVolumeSnapshot, in the class KubeVirt picks:
//     getVolumeSnapshotClassName, the VolumeSnapshotClass whose driver is
//     the StorageClass's provisioner). A running VM is frozen while they
//     are taken when its VMI's AgentConnected condition is True; the
//     indications are updateSnapshotSourceIndications': Online, plus
//     GuestAgent or NoGuestAgent (Paused for a paused VMI). Once every
//     VolumeSnapshot is readyToUse the content and the snapshot are
//     readyToUse and the snapshot Succeeded. It also keeps each VM's
//     status.volumeSnapshotStatuses (updateVolumeSnapshotStatuses,
//     getVolumeSnapshotStatus: enabled false with "No VolumeSnapshotClass:
//     Volume snapshots are not configured for this StorageClass [sc]
//     [volume]" when no class has the driver). Not played: the snapshot
//     and content finalizers, failureDeadline, online snapshots of
//     hotplugged volumes, memory dumps.
//   - volumeSnapshotSim plays external-snapshotter's snapshot-controller
//     and CSI snapshotter sidecar for the sandbox's driver: a VolumeSnapshot
//     of a bound claim gets status boundVolumeSnapshotContentName
//     (snapcontent-<VolumeSnapshot UID>, as snapshot-controller names it),
//     creationTime, restoreSize (the claim's capacity: the size CSI
//     CreateSnapshot reports for a volume) and readyToUse true. The
//     VolumeSnapshotContent itself is not created.
//   - restoreSim plays KubeVirt's restore controller (restore.go,
//     VMRestoreController.updateVMRestore) for volumeRestorePolicy InPlace:
//     it waits while a VMI exists (vmRestoreTarget.Ready), stopping the VM
//     first for targetReadinessPolicy StopTarget (runStrategy Halted, what
//     virt-api's stop subresource does to an Always VM); sets the VM's
//     status.restoreInProgress; per volume backup marks the DataVolume that
//     controls the claim cdi.kubevirt.io/storage.prePopulated
//     (prepopulateDataVolume), deletes the claim and creates one of the
//     same name from the VolumeSnapshot (CreateRestorePVCDef: the old
//     claim's labels and annotations, dataSource and dataSourceRef the
//     VolumeSnapshot, size the larger of the request and restoreSize,
//     cdi.kubevirt.io/storage.populatedFor: <DataVolume> so CDI takes it
//     back, restore.kubevirt.io/lastRestoreUID); then writes the
//     snapshot's VM spec into the VM (generateRestoredVMSpec: run strategy
//     kept, a dataVolume volume that is no dataVolumeTemplate turned into
//     a persistentVolumeClaim volume, firmware UUID set), clears
//     status.restoreInProgress and reports complete.

const (
	annRestoreName       = "restore.kubevirt.io/name"
	annLastRestore       = "restore.kubevirt.io/lastRestoreUID"
	labelRestoreSourceVM = "restore.kubevirt.io/source-vm-name"
	labelRestoreSourceNS = "restore.kubevirt.io/source-vm-namespace"
	// VolumeSnapshotClassName is the sandbox's VolumeSnapshotClass, for
	// Provisioner; SnapshotlessProvisioner has none.
	VolumeSnapshotClassName = "sandbox-snapshots"
	// SnapshotlessProvisioner is a second simulated CSI driver the
	// storage simulator provisions but that has no VolumeSnapshotClass:
	// KubeVirt cannot snapshot claims of its classes.
	SnapshotlessProvisioner = "nosnapshot.csi.sandbox.novasphere.dev"
	snapshotPoll            = 200 * time.Millisecond
)

var (
	gvkVolumeSnapshot      = schema.GroupVersionKind{Group: "snapshot.storage.k8s.io", Version: "v1", Kind: "VolumeSnapshot"}
	gvkVolumeSnapshotClass = schema.GroupVersionKind{Group: "snapshot.storage.k8s.io", Version: "v1", Kind: "VolumeSnapshotClass"}
)

// createVolumeSnapshotClass creates the sandbox driver's
// VolumeSnapshotClass (as a CSI driver's deployment does).
func (s *Sandbox) createVolumeSnapshotClass(ctx context.Context) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkVolumeSnapshotClass)
	u.SetName(VolumeSnapshotClassName)
	u.SetAnnotations(map[string]string{SimulatedAnnotation: "true", "snapshot.storage.kubernetes.io/is-default-class": "true"})
	u.Object["driver"] = Provisioner
	u.Object["deletionPolicy"] = "Delete"
	if err := s.Client.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating VolumeSnapshotClass: %w", err)
	}
	return nil
}

// snapshotClassFor is KubeVirt's getVolumeSnapshotClassName: the
// VolumeSnapshotClass whose driver is the class's provisioner, "" if none.
func snapshotClassFor(ctx context.Context, c client.Client, storageClass string) (string, error) {
	sc := &storagev1.StorageClass{}
	if err := c.Get(ctx, client.ObjectKey{Name: storageClass}, sc); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvkVolumeSnapshotClass.GroupVersion().WithKind("VolumeSnapshotClassList"))
	if err := c.List(ctx, list); err != nil {
		return "", err
	}
	for _, vsc := range list.Items {
		if d, _, _ := unstructured.NestedString(vsc.Object, "driver"); d == sc.Provisioner {
			return vsc.GetName(), nil
		}
	}
	return "", nil
}

// claimOfVolume is the claim a VM volume uses ("" for other sources).
func claimOfVolume(v kubevirtv1.Volume) string {
	switch {
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ClaimName
	case v.DataVolume != nil:
		return v.DataVolume.Name
	}
	return ""
}

// snapshotSim plays KubeVirt's VMSnapshotController (see above).
type snapshotSim struct{ c client.Client }

func (r *snapshotSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	if err := ctrl.NewControllerManagedBy(mgr).Named("sim-vmsnapshot").
		For(&snapshotv1.VirtualMachineSnapshot{}).
		Owns(&snapshotv1.VirtualMachineSnapshotContent{}).
		Complete(r); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("sim-vm-volumesnapshotstatus").
		For(&kubevirtv1.VirtualMachine{}).
		Complete(ctrlFunc(r.volumeSnapshotStatuses))
}

// ctrlFunc adapts a function to a reconciler.
type ctrlFunc func(context.Context, ctrl.Request) (ctrl.Result, error)

func (f ctrlFunc) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(f(ctx, req))
}

// volumeSnapshotStatuses keeps the VM's status.volumeSnapshotStatuses
// (getVolumeSnapshotStatus).
func (r *snapshotSim) volumeSnapshotStatuses(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vm := &kubevirtv1.VirtualMachine{}
	if err := r.c.Get(ctx, req.NamespacedName, vm); err != nil || vm.Spec.Template == nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var statuses []kubevirtv1.VolumeSnapshotStatus
	for _, v := range vm.Spec.Template.Spec.Volumes {
		claim := claimOfVolume(v)
		if claim == "" {
			statuses = append(statuses, kubevirtv1.VolumeSnapshotStatus{Name: v.Name, Reason: fmt.Sprintf("Snapshot is not supported for this volumeSource type [%s]", v.Name)})
			continue
		}
		pvc := &corev1.PersistentVolumeClaim{}
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: claim}, pvc); err != nil {
			if apierrors.IsNotFound(err) {
				// KubeVirt reports the lookup error; the claim comes later.
				statuses = append(statuses, kubevirtv1.VolumeSnapshotStatus{Name: v.Name, Reason: "PVC not found"})
				continue
			}
			return ctrl.Result{}, err
		}
		sc := deref(pvc.Spec.StorageClassName)
		class, err := snapshotClassFor(ctx, r.c, sc)
		if err != nil {
			return ctrl.Result{}, err
		}
		if class == "" {
			statuses = append(statuses, kubevirtv1.VolumeSnapshotStatus{Name: v.Name,
				Reason: fmt.Sprintf("No VolumeSnapshotClass: Volume snapshots are not configured for this StorageClass [%s] [%s]", sc, v.Name)})
			continue
		}
		statuses = append(statuses, kubevirtv1.VolumeSnapshotStatus{Name: v.Name, Enabled: true})
	}
	if equality.Semantic.DeepEqual(statuses, vm.Status.VolumeSnapshotStatuses) {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	patch := client.MergeFrom(vm.DeepCopy())
	vm.Status.VolumeSnapshotStatuses = statuses
	if err := r.c.Status().Patch(ctx, vm, patch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// Claims bind after the VM is written: look again.
	return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
}

func (r *snapshotSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

func (r *snapshotSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	snap := &snapshotv1.VirtualMachineSnapshot{}
	if err := r.c.Get(ctx, req.NamespacedName, snap); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if snap.DeletionTimestamp != nil || (snap.Status != nil && snap.Status.Phase == snapshotv1.Succeeded) {
		return ctrl.Result{}, nil
	}
	before := snap.Status.DeepCopy()
	if snap.Status == nil {
		snap.Status = &snapshotv1.VirtualMachineSnapshotStatus{Phase: snapshotv1.InProgress, ReadyToUse: ptr.To(false)}
	}
	vm := &kubevirtv1.VirtualMachine{}
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: snap.Namespace, Name: snap.Spec.Source.Name}, vm); err != nil {
		if apierrors.IsNotFound(err) {
			snap.Status.Conditions = snapConditions(corev1.ConditionFalse, "Source does not exist")
			return ctrl.Result{RequeueAfter: snapshotPoll}, r.updateSnapshotStatus(ctx, snap, before)
		}
		return ctrl.Result{}, err
	}
	snap.Status.SourceUID = ptr.To(vm.UID)
	contentName := "vmsnapshot-content-" + string(snap.UID)
	content := &snapshotv1.VirtualMachineSnapshotContent{}
	err := r.c.Get(ctx, client.ObjectKey{Namespace: snap.Namespace, Name: contentName}, content)
	switch {
	case apierrors.IsNotFound(err):
		if content, err = r.createContent(ctx, snap, vm, contentName); err != nil {
			return ctrl.Result{}, err
		}
	case err != nil:
		return ctrl.Result{}, err
	}
	snap.Status.VirtualMachineSnapshotContentName = ptr.To(contentName)
	ready, err := r.syncContent(ctx, content)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !ready {
		snap.Status.Conditions = snapConditions(corev1.ConditionFalse, "Source locked and operation in progress")
		return ctrl.Result{RequeueAfter: snapshotPoll}, r.updateSnapshotStatus(ctx, snap, before)
	}
	snap.Status.Phase = snapshotv1.Succeeded
	snap.Status.ReadyToUse = ptr.To(true)
	snap.Status.CreationTime = content.Status.CreationTime
	snap.Status.Conditions = snapConditions(corev1.ConditionTrue, "Operation complete")
	log.FromContext(ctx).Info("VirtualMachineSnapshot succeeded", "indications", snap.Status.Indications) //nolint:staticcheck // KubeVirt v1.9 still writes the deprecated field beside sourceIndications; the sandbox plays both
	return ctrl.Result{}, r.updateSnapshotStatus(ctx, snap, before)
}

// snapConditions are KubeVirt's Ready and Progressing conditions.
func snapConditions(ready corev1.ConditionStatus, reason string) []snapshotv1.Condition {
	progressing := corev1.ConditionTrue
	if ready == corev1.ConditionTrue {
		progressing = corev1.ConditionFalse
	}
	now := metav1.Now()
	return []snapshotv1.Condition{
		{Type: snapshotv1.ConditionProgressing, Status: progressing, Reason: reason, LastTransitionTime: now},
		{Type: snapshotv1.ConditionReady, Status: ready, Reason: reason, LastTransitionTime: now},
	}
}

func (r *snapshotSim) updateSnapshotStatus(ctx context.Context, snap *snapshotv1.VirtualMachineSnapshot, before *snapshotv1.VirtualMachineSnapshotStatus) error {
	if before != nil && equality.Semantic.DeepEqual(before.Phase, snap.Status.Phase) && equality.Semantic.DeepEqual(before.ReadyToUse, snap.Status.ReadyToUse) &&
		equality.Semantic.DeepEqual(before.VirtualMachineSnapshotContentName, snap.Status.VirtualMachineSnapshotContentName) &&
		equality.Semantic.DeepEqual(before.Indications, snap.Status.Indications) { //nolint:staticcheck // as above
		return nil
	}
	return r.c.Status().Update(ctx, snap)
}

// createContent decides the indications (freezing a running guest with an
// agent), writes the content and creates the VolumeSnapshots.
func (r *snapshotSim) createContent(ctx context.Context, snap *snapshotv1.VirtualMachineSnapshot, vm *kubevirtv1.VirtualMachine, name string) (*snapshotv1.VirtualMachineSnapshotContent, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	online := true
	if err := r.c.Get(ctx, client.ObjectKeyFromObject(vm), vmi); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		online = false
	}
	var ind []snapshotv1.Indication
	if online {
		ind = append(ind, snapshotv1.VMSnapshotOnlineSnapshotIndication)
		switch {
		case vmi.Status.Phase == kubevirtv1.Running && vmiConditionTrue(vmi, kubevirtv1.VirtualMachineInstancePaused):
			ind = append(ind, snapshotv1.VMSnapshotPausedIndication)
		case vmiConditionTrue(vmi, kubevirtv1.VirtualMachineInstanceAgentConnected):
			// virt-controller asks virt-handler to fsfreeze the guest
			// through the agent before the VolumeSnapshots are created and
			// thaws it after (source.go Freeze/Unfreeze).
			ind = append(ind, snapshotv1.VMSnapshotGuestAgentIndication)
			log.FromContext(ctx).Info("froze the guest through its agent (simulated)", "vmi", vmi.Name)
		default:
			ind = append(ind, snapshotv1.VMSnapshotNoGuestAgentIndication)
		}
		slices.Sort(ind)
		for _, i := range ind {
			snap.Status.SourceIndications = append(snap.Status.SourceIndications, snapshotv1.SourceIndication{Indication: i})
		}
	}
	snap.Status.Indications = ind //nolint:staticcheck // virt-controller v1.9 writes both (updateSnapshotSourceIndications)
	content := &snapshotv1.VirtualMachineSnapshotContent{ObjectMeta: simulatedMeta(name, snap.Namespace)}
	content.Spec.VirtualMachineSnapshotName = ptr.To(snap.Name)
	source := &snapshotv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{
		Name: vm.Name, Namespace: vm.Namespace, UID: vm.UID, Labels: vm.Labels, Annotations: vm.Annotations,
	}, Spec: *vm.Spec.DeepCopy()}
	content.Spec.Source.VirtualMachine = source
	for _, v := range vm.Spec.Template.Spec.Volumes {
		claim := claimOfVolume(v)
		if claim == "" {
			continue
		}
		pvc := &corev1.PersistentVolumeClaim{}
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: claim}, pvc); err != nil {
			return nil, err
		}
		class, err := snapshotClassFor(ctx, r.c, deref(pvc.Spec.StorageClassName))
		if err != nil {
			return nil, err
		}
		if class == "" {
			continue // KubeVirt leaves it out (PartialSnapshot); Wukong never asks for that
		}
		vsName := fmt.Sprintf("vmsnapshot-%s-volume-%s", snap.UID, v.Name)
		content.Spec.VolumeBackups = append(content.Spec.VolumeBackups, snapshotv1.VolumeBackup{
			VolumeName: v.Name,
			PersistentVolumeClaim: snapshotv1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: pvc.Name, Namespace: pvc.Namespace, Labels: pvc.Labels, Annotations: pvc.Annotations, OwnerReferences: pvc.OwnerReferences},
				Spec:       *pvc.Spec.DeepCopy(),
			},
			VolumeSnapshotName: ptr.To(vsName),
		})
		vs := &unstructured.Unstructured{}
		vs.SetGroupVersionKind(gvkVolumeSnapshot)
		vs.SetName(vsName)
		vs.SetNamespace(snap.Namespace)
		vs.SetAnnotations(map[string]string{SimulatedAnnotation: "true"})
		vs.Object["spec"] = map[string]any{
			"source":                  map[string]any{"persistentVolumeClaimName": pvc.Name},
			"volumeSnapshotClassName": class,
		}
		if err := r.c.Create(ctx, vs); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating VolumeSnapshot: %w", err)
		}
	}
	if err := controllerutil.SetControllerReference(snap, content, r.c.Scheme()); err != nil {
		return nil, err
	}
	if err := r.c.Create(ctx, content); err != nil {
		return nil, fmt.Errorf("creating VirtualMachineSnapshotContent: %w", err)
	}
	return content, nil
}

func vmiConditionTrue(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType) bool {
	return vmiCondition(vmi, t).Status == corev1.ConditionTrue
}

// syncContent copies each VolumeSnapshot's readiness into the content's
// status; it reports whether all are ready.
func (r *snapshotSim) syncContent(ctx context.Context, content *snapshotv1.VirtualMachineSnapshotContent) (bool, error) {
	before := content.Status.DeepCopy()
	if content.Status == nil {
		content.Status = &snapshotv1.VirtualMachineSnapshotContentStatus{}
	}
	all := true
	var statuses []snapshotv1.VolumeSnapshotStatus
	var created *metav1.Time
	for _, vb := range content.Spec.VolumeBackups {
		vs := &unstructured.Unstructured{}
		vs.SetGroupVersionKind(gvkVolumeSnapshot)
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: content.Namespace, Name: *vb.VolumeSnapshotName}, vs); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		ready, _, _ := unstructured.NestedBool(vs.Object, "status", "readyToUse")
		all = all && ready
		st := snapshotv1.VolumeSnapshotStatus{VolumeSnapshotName: vs.GetName(), ReadyToUse: ptr.To(ready)}
		if ts, ok, _ := unstructured.NestedString(vs.Object, "status", "creationTime"); ok {
			if t, err := time.Parse(time.RFC3339, ts); err == nil {
				st.CreationTime = ptr.To(metav1.NewTime(t))
				created = st.CreationTime
			}
		}
		statuses = append(statuses, st)
	}
	content.Status.VolumeSnapshotStatus = statuses
	content.Status.ReadyToUse = ptr.To(all)
	if all && content.Status.CreationTime == nil {
		if created == nil {
			created = ptr.To(metav1.Now())
		}
		content.Status.CreationTime = created
	}
	if !equality.Semantic.DeepEqual(before, content.Status) {
		if err := r.c.Status().Update(ctx, content); err != nil {
			return false, err
		}
	}
	return all, nil
}

// volumeSnapshotSim plays snapshot-controller + the CSI snapshotter
// sidecar (see above).
type volumeSnapshotSim struct{ c client.Client }

func (r *volumeSnapshotSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkVolumeSnapshot)
	return ctrl.NewControllerManagedBy(mgr).Named("sim-volumesnapshot").For(u).Complete(ctrlFunc(r.reconcile))
}

func (r *volumeSnapshotSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(gvkVolumeSnapshot)
	if err := r.c.Get(ctx, req.NamespacedName, vs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ready, _, _ := unstructured.NestedBool(vs.Object, "status", "readyToUse"); ready {
		return ctrl.Result{}, nil
	}
	claim, _, _ := unstructured.NestedString(vs.Object, "spec", "source", "persistentVolumeClaimName")
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: vs.GetNamespace(), Name: claim}, pvc); err != nil || pvc.Status.Phase != corev1.ClaimBound {
		// snapshot-controller waits for a bound claim.
		return ctrl.Result{RequeueAfter: snapshotPoll}, client.IgnoreNotFound(err)
	}
	size := pvc.Status.Capacity[corev1.ResourceStorage]
	status := map[string]any{
		"boundVolumeSnapshotContentName": "snapcontent-" + string(vs.GetUID()),
		"creationTime":                   time.Now().UTC().Format(time.RFC3339),
		"readyToUse":                     true,
		"restoreSize":                    size.String(),
	}
	if err := unstructured.SetNestedField(vs.Object, status, "status"); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.c.Status().Update(ctx, vs); err != nil {
		return ctrl.Result{}, err
	}
	log.FromContext(ctx).Info("VolumeSnapshot ready", "claim", claim, "restoreSize", size.String())
	return ctrl.Result{}, nil
}

// restoreSim plays KubeVirt's VMRestoreController for InPlace restores
// (see above).
type restoreSim struct{ c client.Client }

func (r *restoreSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-vmrestore").
		For(&snapshotv1.VirtualMachineRestore{}).
		Complete(ctrlFunc(r.reconcile))
}

func (r *restoreSim) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rst := &snapshotv1.VirtualMachineRestore{}
	if err := r.c.Get(ctx, req.NamespacedName, rst); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if rst.DeletionTimestamp != nil || (rst.Status != nil && ptr.Deref(rst.Status.Complete, false)) {
		return ctrl.Result{}, nil
	}
	if rst.Status == nil {
		rst.Status = &snapshotv1.VirtualMachineRestoreStatus{Complete: ptr.To(false),
			Conditions: snapConditions(corev1.ConditionFalse, "Initializing VirtualMachineRestore")}
		return ctrl.Result{RequeueAfter: snapshotPoll}, r.c.Status().Update(ctx, rst)
	}
	if !isInPlace(rst) {
		return ctrl.Result{}, nil // only InPlace is played here
	}
	vm := &kubevirtv1.VirtualMachine{}
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: rst.Namespace, Name: rst.Spec.Target.Name}, vm); err != nil {
		return ctrl.Result{RequeueAfter: snapshotPoll}, client.IgnoreNotFound(err)
	}
	// vmRestoreTarget.Ready: no VMI.
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.c.Get(ctx, client.ObjectKeyFromObject(vm), vmi); err == nil {
		if ptr.Deref(rst.Spec.TargetReadinessPolicy, snapshotv1.VirtualMachineRestoreWaitGracePeriodAndFail) == snapshotv1.VirtualMachineRestoreStopTarget &&
			ptr.Deref(vm.Spec.RunStrategy, "") != kubevirtv1.RunStrategyHalted {
			patch := client.MergeFrom(vm.DeepCopy())
			vm.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyHalted)
			if err := r.c.Patch(ctx, vm, patch); err != nil {
				return ctrl.Result{}, err
			}
			log.FromContext(ctx).Info("stopping VM before restore", "vm", vm.Name)
		}
		rst.Status.Conditions = snapConditions(corev1.ConditionFalse, "Waiting for target to be ready")
		return ctrl.Result{RequeueAfter: snapshotPoll}, r.c.Status().Update(ctx, rst)
	} else if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	vmSnap := &snapshotv1.VirtualMachineSnapshot{}
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: rst.Namespace, Name: rst.Spec.VirtualMachineSnapshotName}, vmSnap); err != nil {
		return ctrl.Result{RequeueAfter: snapshotPoll}, client.IgnoreNotFound(err)
	}
	if vmSnap.Status == nil || vmSnap.Status.VirtualMachineSnapshotContentName == nil {
		return ctrl.Result{RequeueAfter: snapshotPoll}, nil
	}
	content := &snapshotv1.VirtualMachineSnapshotContent{}
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: rst.Namespace, Name: *vmSnap.Status.VirtualMachineSnapshotContentName}, content); err != nil {
		return ctrl.Result{RequeueAfter: snapshotPoll}, client.IgnoreNotFound(err)
	}
	mark := rst.Name + "-" + string(rst.UID)
	// UpdateRestoreInProgress.
	if vm.Annotations[annLastRestore] != mark && vm.Status.RestoreInProgress == nil {
		patch := client.MergeFrom(vm.DeepCopy())
		vm.Status.RestoreInProgress = ptr.To(rst.Name)
		if err := r.c.Status().Patch(ctx, vm, patch); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: snapshotPoll}, nil
	}
	// reconcileVolumeRestores.
	var restores []snapshotv1.VolumeRestore
	waiting := false
	for _, vb := range content.Spec.VolumeBackups {
		vr := snapshotv1.VolumeRestore{VolumeName: vb.VolumeName, PersistentVolumeClaimName: vb.PersistentVolumeClaim.Name, VolumeSnapshotName: ptr.Deref(vb.VolumeSnapshotName, "")}
		pvc := &corev1.PersistentVolumeClaim{}
		err := r.c.Get(ctx, client.ObjectKey{Namespace: rst.Namespace, Name: vr.PersistentVolumeClaimName}, pvc)
		var dvOwner string
		if ref := metav1.GetControllerOf(&vb.PersistentVolumeClaim); ref != nil && ref.Kind == "DataVolume" {
			dvOwner = ref.Name
			vr.DataVolumeName = ptr.To(dvOwner)
		}
		switch {
		case apierrors.IsNotFound(err):
			if err := r.createRestoreClaim(ctx, rst, vm, vb, dvOwner, mark); err != nil {
				return ctrl.Result{}, err
			}
			waiting = true
		case err != nil:
			return ctrl.Result{}, err
		case pvc.Annotations[annLastRestore] != mark:
			if pvc.DeletionTimestamp == nil {
				if dvOwner != "" {
					dv := &cdiv1.DataVolume{}
					if err := r.c.Get(ctx, client.ObjectKey{Namespace: rst.Namespace, Name: dvOwner}, dv); err == nil {
						patch := client.MergeFrom(dv.DeepCopy())
						if dv.Annotations == nil {
							dv.Annotations = map[string]string{}
						}
						dv.Annotations[annRestoreName] = rst.Name
						dv.Annotations[cdiv1.AnnPrePopulated] = dvOwner
						if err := r.c.Patch(ctx, dv, patch); err != nil {
							return ctrl.Result{}, err
						}
					}
				}
				log.FromContext(ctx).Info("deleting claim to replace it (InPlace)", "claim", pvc.Name)
				if err := r.c.Delete(ctx, pvc); client.IgnoreNotFound(err) != nil {
					return ctrl.Result{}, err
				}
			}
			waiting = true
		case pvc.Status.Phase != corev1.ClaimBound:
			waiting = true
		}
		restores = append(restores, vr)
	}
	rst.Status.Restores = restores
	if waiting {
		rst.Status.Conditions = snapConditions(corev1.ConditionFalse, "Waiting for new PVCs")
		return ctrl.Result{RequeueAfter: snapshotPoll}, r.c.Status().Update(ctx, rst)
	}
	// Reconcile: the snapshot's spec into the VM.
	if vm.Annotations[annLastRestore] != mark {
		restored := vm.DeepCopy()
		restored.Spec = *content.Spec.Source.VirtualMachine.Spec.DeepCopy()
		restored.Spec.RunStrategy = vm.Spec.RunStrategy // "keeps the same run strategy as before the restore"
		for i, v := range restored.Spec.Template.Spec.Volumes {
			if v.DataVolume != nil && !hasDVTemplate(restored, v.DataVolume.Name) {
				restored.Spec.Template.Spec.Volumes[i].VolumeSource = kubevirtv1.VolumeSource{
					PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{
						PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.DataVolume.Name},
					},
				}
			}
		}
		if restored.Annotations == nil {
			restored.Annotations = map[string]string{}
		}
		restored.Annotations[annLastRestore] = mark
		if restored.Spec.Template.Spec.Domain.Firmware == nil {
			restored.Spec.Template.Spec.Domain.Firmware = &kubevirtv1.Firmware{}
		}
		if restored.Spec.Template.Spec.Domain.Firmware.UUID == "" {
			restored.Spec.Template.Spec.Domain.Firmware.UUID = legacyFirmwareUUID(vm.Name)
		}
		if err := r.c.Update(ctx, restored); err != nil {
			return ctrl.Result{}, err
		}
		rst.Status.Conditions = snapConditions(corev1.ConditionFalse, "Updating target spec")
		return ctrl.Result{RequeueAfter: snapshotPoll}, r.c.Status().Update(ctx, rst)
	}
	// UpdateDoneRestore.
	if vm.Status.RestoreInProgress != nil {
		patch := client.MergeFrom(vm.DeepCopy())
		vm.Status.RestoreInProgress = nil
		if err := r.c.Status().Patch(ctx, vm, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	rst.Status.Complete = ptr.To(true)
	rst.Status.RestoreTime = ptr.To(metav1.Now())
	rst.Status.Conditions = snapConditions(corev1.ConditionTrue, "Operation complete")
	log.FromContext(ctx).Info("VirtualMachineRestore complete", "vm", vm.Name)
	return ctrl.Result{}, r.c.Status().Update(ctx, rst)
}

func isInPlace(rst *snapshotv1.VirtualMachineRestore) bool {
	return ptr.Deref(rst.Spec.VolumeRestorePolicy, "") == snapshotv1.VolumeRestorePolicyInPlace
}

func hasDVTemplate(vm *kubevirtv1.VirtualMachine, name string) bool {
	for _, t := range vm.Spec.DataVolumeTemplates {
		if t.Name == name {
			return true
		}
	}
	return false
}

// legacyFirmwareUUID is KubeVirt's uuid.NewSHA1 of the VM name in its
// firmware namespace (setLegacyFirmwareUUID); any stable value serves here.
func legacyFirmwareUUID(name string) types.UID {
	return types.UID(fmt.Sprintf("%08x-0000-5000-8000-%012x", hash(name), len(name)))
}

// createRestoreClaim is CreateRestorePVCDef + createRestorePVC.
func (r *restoreSim) createRestoreClaim(ctx context.Context, rst *snapshotv1.VirtualMachineRestore, vm *kubevirtv1.VirtualMachine, vb snapshotv1.VolumeBackup, dvOwner, mark string) error {
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(gvkVolumeSnapshot)
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: rst.Namespace, Name: ptr.Deref(vb.VolumeSnapshotName, "")}, vs); err != nil {
		return fmt.Errorf("missing volumeSnapshot %s: %w", ptr.Deref(vb.VolumeSnapshotName, ""), err)
	}
	group := "snapshot.storage.k8s.io"
	src := vb.PersistentVolumeClaim
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
		Name: src.Name, Namespace: rst.Namespace,
		Labels: maps.Clone(src.Labels), Annotations: map[string]string{},
	}}
	for k, v := range src.Annotations {
		// restoreAnnotationsToDelete: the binding and provisioning marks.
		if strings.HasPrefix(k, "pv.kubernetes.io") || strings.HasPrefix(k, "volume.beta.kubernetes.io") ||
			strings.HasPrefix(k, "volume.kubernetes.io") || strings.HasPrefix(k, "cdi.kubevirt.io") {
			continue
		}
		pvc.Annotations[k] = v
	}
	if pvc.Labels == nil {
		pvc.Labels = map[string]string{}
	}
	pvc.Labels[labelRestoreSourceVM] = vm.Name
	pvc.Labels[labelRestoreSourceNS] = vm.Namespace
	pvc.Annotations[annRestoreName] = rst.Name
	pvc.Annotations[annLastRestore] = mark
	pvc.Annotations[SimulatedAnnotation] = "true"
	if dvOwner != "" {
		pvc.Annotations[annPopulatedFor] = dvOwner
	}
	pvc.Spec = corev1.PersistentVolumeClaimSpec{
		AccessModes: src.Spec.AccessModes, Resources: *src.Spec.Resources.DeepCopy(),
		StorageClassName: src.Spec.StorageClassName, VolumeMode: src.Spec.VolumeMode,
		DataSource:    &corev1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: vs.GetName()},
		DataSourceRef: &corev1.TypedObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: vs.GetName()},
	}
	if rs, ok, _ := unstructured.NestedString(vs.Object, "status", "restoreSize"); ok {
		if q, err := resource.ParseQuantity(rs); err == nil {
			if cur, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || cur.Cmp(q) < 0 {
				pvc.Spec.Resources.Requests[corev1.ResourceStorage] = q
			}
		}
	}
	if err := r.c.Create(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating restore claim: %w", err)
	}
	log.FromContext(ctx).Info("created claim from VolumeSnapshot (InPlace)", "claim", pvc.Name, "volumeSnapshot", vs.GetName())
	return nil
}

// Package storage turns a virtual machine's disks into PersistentVolumeClaims
// (blank disks) and CDI DataVolumes (disks imported from an http(s) URL or a
// container registry, or cloned by CDI from a claim or a VolumeSnapshot of
// the owner's namespace: Disk.Clone), and reports what the cluster says about them: bound,
// import phase and progress, capacity, resize state, and CDI's failure reason.
//
// # How a controller uses it
//
// Map your own spec to []Disk and call Reconcile once per reconcile with
// your identity and the owning object (any namespaced client.Object; the
// PVCs and DataVolumes are created in its namespace with a controller owner
// reference to it, so deleting the owner deletes them through the garbage
// collector). The package has no names of its own: the field manager, the
// managed-by value and the label and annotation keys come from the
// apply.Identity you pass:
//
//	id := apply.Identity{FieldManager: "my-controller", Domain: "vm.example.com"}
//	obs, err := storage.Reconcile(ctx, c, id, owner, disks)
//	var shrink *storage.ShrinkError
//	switch {
//	case errors.Is(err, storage.ErrCDINotInstalled): // image disks need CDI
//	case errors.As(err, &shrink):                   // user asked for a smaller disk
//	}
//	for _, o := range obs {
//	    if !o.ConsumerCanStart() { /* do not create the VM yet */ }
//	}
//
// Reconcile returns one Observation per disk, in input order, even when some
// disks fail: per-disk errors (typed: *ShrinkError, *NotExpandableError,
// *ClassNotFoundError, ErrNoDefaultClass, ErrCDINotInstalled, ErrInvalidDisk)
// are joined with errors.Join and also recorded in that disk's Observation
// (Reason, Message); so is what CDI reports without an error (a failed
// import, an image bigger than the disk, a claim CDI cannot render, a lost
// claim). Each is an *apply.Failure wrapping the typed error: its
// Reason, whether someone must act (Stalled; only ReasonPredecessor is not:
// it waits, RequeueAfter) and the event type, with Subject the disk and Field the Disk field at
// fault, so a caller classifies every failure in one place (apply.AsFailure). A second call with the same input writes nothing.
//
// The owner's apiVersion and kind for the owner reference come from the
// owner's TypeMeta when set, else from the client's scheme. The pure builders
// (BuildPVC, BuildDataVolume) take the owner as given: set its TypeMeta (or
// use Reconcile) before calling them.
//
// # Rules worth knowing
//
//   - Names are deterministic: ClaimName(owner, disk) = "<owner>-<disk>" for
//     both the PVC and the DataVolume (CDI names the DataVolume's PVC the same).
//   - DataVolumes use spec.storage, so CDI's StorageProfile chooses access and
//     volume modes. Their spec is never changed after creation (CDI rejects
//     spec updates): later changes to Source or StorageClassName are not
//     applied, and growth is applied to the DataVolume's PVC instead. The
//     logical disk size after such growth is kept in the PVC annotation
//     annotation id.Key(KeyDiskSize), because CDI adds file system overhead to the PVC
//     request, which therefore is not the disk size.
//   - A clone (Disk.Clone) is a DataVolume with source.pvc or
//     source.snapshot in the owner's namespace; the caller resolves which
//     claim or VolumeSnapshot and checks the size (CDI refuses a target
//     smaller than its source). Observation.CloneType is the strategy CDI
//     recorded (AnnCloneType: csi-clone, snapshot or copy), CloneWaiting
//     whether CDI has not started the copy yet (it waits, for instance,
//     while a running pod uses the source claim).
//   - If a DataVolume is gone but its PVC exists (CDI before v1.62
//     garbage-collects a completed DataVolume annotated
//     cdi.kubevirt.io/storage.deleteAfterCompletion "true", which its
//     webhook set while CDIConfig spec.dataVolumeTTLSeconds was not
//     negative: pkg/controller/datavolume/garbagecollect.go), the PVC, which
//     CDI handed to the DataVolume's owner, is used as is: the DataVolume
//     is not recreated (that would import again over a booted disk) and
//     growth is applied to the PVC. The disk's size is read from the
//     annotation id.Key(KeyDiskSize), which every DataVolume carries and
//     CDI copies onto the PVC it makes (written onto the PVC of an older
//     DataVolume while it exists), never from the PVC's request, which
//     includes CDI's file system overhead. A PVC collected before either
//     (no annotation) is read by its request.
//   - Growing a disk needs a bound PVC and a StorageClass with
//     allowVolumeExpansion; until the PVC is bound the growth waits (Reason
//     ExpansionPendingBind, no error). Shrinking is refused.
//   - Binding mode is left to the StorageClass. On a WaitForFirstConsumer
//     class a Pending disk reports Phase WaitForFirstConsumer and
//     ConsumerCanStart() is true: the VM must be created for binding to
//     happen, so waiting for Bound would deadlock.
//   - A disk whose StorageClass does not exist is not created (its class
//     could not be changed later); the other disks go on.
//   - A disk naming an existing claim (Disk.ClaimName) is only read: it must
//     exist and have no controller, and is never created, labelled, resized
//     or deleted (Observation.Existing).
//   - Owner references delete a disk's claim with its owner. To keep the
//     claims of the disks with Retain, hold the owner with a finalizer and
//     call Release while it is being deleted: it hands each claim over to
//     nobody, as CDI's DataVolume garbage collection did, and deletes its
//     DataVolume.
package storage

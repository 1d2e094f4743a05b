package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/novasphere/wukong/lib/apply"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Reconcile writes the PVC or DataVolume of every disk in the owner's
// namespace with Server-Side Apply under id (only when a field differs;
// labels and field manager from id, see Labels) and returns
// one Observation per disk, in input order. c's scheme must know core/v1,
// storage/v1 and, for image disks, cdi.kubevirt.io/v1beta1. A blank disk is
// a DataVolume with a blank source when CDI is served and in the scheme,
// else a plain PVC (Observation.PlainClaim, NoCDI); a blank disk's existing
// plain PVC is kept as it is.
//
// A disk that fails (invalid, shrink refused, not expandable, class or CDI
// missing, a failed import CDI reports, a claim a ResourceQuota refuses:
// ReasonQuotaExceeded wrapping a *QuotaExceededError, whether the API
// server refused this package's write or CDI's) does not stop the others: its
// *apply.Failure (Reason one of the Reason* constants) is joined into the returned
// error (test with errors.Is / errors.As) and its Observation carries Reason
// and Message. A StorageClass named by several disks is read once.
func Reconcile(ctx context.Context, c client.Client, id apply.Identity, owner client.Object, disks []Disk, opts ...Option) ([]Observation, error) {
	var cfg options
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	owner, err := apply.OwnerWithKind(owner, c.Scheme())
	if err != nil {
		return nil, err
	}
	if owner.GetNamespace() == "" {
		return nil, fmt.Errorf("%s: owner %q is not namespaced", errOwner, owner.GetName())
	}
	obs := make([]Observation, 0, len(disks))
	var errs []error
	classes := &classReader{c: c}
	short := &shortCut{cache: cfg.cache, classes: classes}
	for _, d := range disks {
		kind, invalid := d.validate() // once for the checks, the short cut and the claim kind
		if invalid == nil && d.ClaimName == "" {
			if ob, done, err := short.try(ctx, owner, d, kind); done {
				obs = append(obs, ob)
				errs = append(errs, fmt.Errorf("disk %q: %w", d.Name, err))
				continue
			}
		}
		o, err := reconcileDisk(ctx, c, classes, id, owner, d, kind, invalid, cfg.refs)
		obs = append(obs, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("disk %q: %w", d.Name, err))
		}
	}
	return obs, errors.Join(errs...)
}

// diskState is what reconcileDisk read and decided for one disk.
type diskState struct {
	id apply.Identity
	d  Disk
	// kind is d's source kind, decided once by validate.
	kind     Kind
	key      client.ObjectKey
	pvc      *corev1.PersistentVolumeClaim
	dv       *cdiv1.DataVolume
	class    *storagev1.StorageClass
	classErr error
	// sizeErr / sizeReason: why the requested size is not applied.
	sizeErr    error
	sizeReason string
}

// Option tunes Reconcile.
type Option func(*options)

type options struct {
	cache client.Reader
	// refs reads the ConfigMaps and Secrets disks name (WithReferenceReader).
	refs client.Reader
}

// WithCache gives Reconcile a reader that answers from a cache holding the
// owner's own claims and DataVolumes (for example an informer cache
// filtered by Labels), while c may read through to the API server. A disk
// with neither in the cache is then reported at once, without reading its
// claim and DataVolume from c, when nothing would be written for it
// whatever they are: its StorageClass is missing (or, when it names none,
// the cluster has no default): StorageClassNotFound; it is an image disk
// and CDI is not installed: CDINotInstalled (asked once per call). A name
// taken by an object the owner did not create is reported once that is
// fixed. A Stalled owner with many disks then costs no API request per
// pass.
func WithCache(r client.Reader) Option { return func(o *options) { o.cache = r } }

// shortCut is WithCache's early answer for the disks of one Reconcile.
type shortCut struct {
	cache   client.Reader
	classes *classReader
	// noCDI: the cache said the DataVolume kind is not served.
	noCDI bool
}

// try returns done when the disk has neither claim nor DataVolume in the
// cache and its class or CDI is missing; its Observation and error are
// then those reconcileDisk would give with none found. Any other error
// reading the cache leaves the disk to reconcileDisk.
func (sc *shortCut) try(ctx context.Context, owner client.Object, d Disk, kind Kind) (Observation, bool, error) {
	if sc.cache == nil {
		return Observation{}, false, nil
	}
	key := client.ObjectKey{Namespace: owner.GetNamespace(), Name: ClaimName(owner.GetName(), d.Name)}
	o := Observation{Name: d.Name, ClaimName: key.Name, Phase: PhasePending, Requested: d.Size, DataVolume: kind != KindBlank}
	fail := func(reason, field string, err error) (Observation, bool, error) {
		o.Reason, o.Message = reason, err.Error()
		return o, true, failure(reason, err).On(d.Name, field)
	}
	if o.DataVolume {
		if sc.noCDI {
			return fail(ReasonCDINotInstalled, "source", ErrCDINotInstalled)
		}
		dv, err := apply.GetOptional(ctx, sc.cache, key, &cdiv1.DataVolume{})
		if meta.IsNoMatchError(err) {
			sc.noCDI = true
			return fail(ReasonCDINotInstalled, "source", ErrCDINotInstalled)
		}
		if err != nil || dv != nil {
			return Observation{}, false, nil
		}
	} else if !sc.noCDI {
		// A blank disk may have a DataVolume already (its claim not made
		// yet): then it is not short-cut. Without CDI it has none.
		dv, err := apply.GetOptional(ctx, sc.cache, key, &cdiv1.DataVolume{})
		if meta.IsNoMatchError(err) {
			sc.noCDI = true
		} else if err != nil || dv != nil {
			return Observation{}, false, nil
		}
	}
	if pvc, err := apply.GetOptional(ctx, sc.cache, key, &corev1.PersistentVolumeClaim{}); err != nil || pvc != nil {
		return Observation{}, false, nil
	}
	_, err := sc.classes.resolve(ctx, d.StorageClassName)
	if !classMissing(err) {
		return Observation{}, false, nil
	}
	return fail(ReasonStorageClassNotFound, "storageClassName", err)
}

// classReader resolves StorageClasses once per Reconcile.
type classReader struct {
	c    client.Reader
	seen map[string]classResult
}

type classResult struct {
	sc  *storagev1.StorageClass
	err error
}

func (r *classReader) resolve(ctx context.Context, name string) (*storagev1.StorageClass, error) {
	if res, ok := r.seen[name]; ok {
		return res.sc, res.err
	}
	sc, err := resolveClass(ctx, r.c, name)
	if r.seen == nil {
		r.seen = map[string]classResult{}
	}
	r.seen[name] = classResult{sc, err}
	return sc, err
}

// reconcileDisk reconciles one disk of source kind, or reports it invalid
// (d.validate's error).
func reconcileDisk(ctx context.Context, c client.Client, classes *classReader, id apply.Identity, owner client.Object, d Disk, kind Kind, invalid error, refs client.Reader) (Observation, error) {
	o := Observation{Name: d.Name, ClaimName: ClaimName(owner.GetName(), d.Name), Phase: PhasePending, Requested: d.Size}
	fail := func(reason, field string, err error) (Observation, error) {
		o.Reason, o.Message = reason, err.Error()
		return o, failure(reason, err).On(d.Name, field)
	}
	if invalid != nil {
		return fail(ReasonInvalidDisk, "", invalid)
	}
	if d.ClaimName != "" {
		return reconcileExisting(ctx, c, classes, owner, d)
	}
	blank := kind == KindBlank
	s := &diskState{id: id, d: d, kind: kind, key: client.ObjectKey{Namespace: owner.GetNamespace(), Name: o.ClaimName}}

	var err error
	if s.pvc, err = apply.GetOptional(ctx, c, s.key, &corev1.PersistentVolumeClaim{}); err != nil {
		return o, fmt.Errorf("%s: %w", errGetPVC, err)
	}
	// A blank disk whose plain claim exists keeps it as it is (a claim's
	// access and volume modes cannot change); any other disk is a
	// DataVolume.
	o.DataVolume = !blank || !plainClaim(s.pvc)
	if o.DataVolume {
		s.dv, err = apply.GetOptional(ctx, c, s.key, &cdiv1.DataVolume{})
		switch {
		case blank && (meta.IsNoMatchError(err) || runtime.IsNotRegisteredError(err)):
			// Without CDI (not served, or not in the caller's scheme) a
			// blank disk still works, as a plain claim.
			o.DataVolume, o.NoCDI = false, true
		case meta.IsNoMatchError(err):
			return fail(ReasonCDINotInstalled, "source", ErrCDINotInstalled)
		case err != nil:
			return o, fmt.Errorf("%s: %w", errGetDataVolume, err)
		}
	}
	o.PlainClaim = !o.DataVolume
	exists := s.pvc != nil || s.dv != nil
	if err := checkOwnership(owner, s); err != nil {
		reason := ReasonNameConflict
		var conflict *apply.ConflictError
		if errors.As(err, &conflict) && conflict.Predecessor {
			reason = ReasonPredecessor
		}
		return fail(reason, "name", err)
	}

	s.class, s.classErr = classOf(ctx, classes, d, s.pvc, s.dv)
	if s.classErr != nil {
		if !classMissing(s.classErr) {
			return o, s.classErr
		}
		if !exists {
			// Not created: a claim's class cannot be changed later.
			return fail(ReasonStorageClassNotFound, "storageClassName", s.classErr)
		}
	}
	switch {
	case s.class != nil:
		o.StorageClassName = s.class.Name
	case s.pvc != nil && s.pvc.Spec.StorageClassName != nil:
		o.StorageClassName = *s.pvc.Spec.StorageClassName
	case s.dv != nil && s.dv.Spec.Storage != nil && s.dv.Spec.Storage.StorageClassName != nil:
		o.StorageClassName = *s.dv.Spec.Storage.StorageClassName
	}

	if blank && s.dv != nil && s.pvc == nil && s.dv.Status.Phase == cdiv1.Succeeded && s.dv.DeletionTimestamp == nil && !prePopulated(s.dv) {
		// The claim of a blank disk's finished DataVolume was deleted
		// (its data with it). Nothing relies on CDI making the claim of
		// a finished DataVolume again: the DataVolume (this owner's own
		// child) goes, and the next pass writes a new one, which makes a
		// new empty disk. An image disk's is left to the user (a new
		// import may not be wanted). A DataVolume marked prePopulated is
		// left alone: someone else makes its claim (KubeVirt's in-place
		// restore marks it, deletes the claim and creates one from the
		// snapshot, pkg/storage/snapshot/restore.go prepopulateDataVolume),
		// and deleting it would lose the restored data.
		uid := s.dv.UID
		if err := c.Delete(ctx, s.dv, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return o, fmt.Errorf("cannot delete DataVolume %s whose claim is gone: %w", s.key.Name, err)
		}
		o.DataVolume = true
		o.Message = "the disk's claim was deleted: its DataVolume is written again"
		return o, nil
	}
	if o.DataVolume && s.dv != nil && s.pvc == nil && s.dv.DeletionTimestamp == nil && quotaRefusedDataVolume(s.dv) &&
		s.d.Size.Cmp(logicalSize(s.id, s.dv, nil)) != 0 {
		// CDI could not make the claim (a quota) and the disk's size
		// changed since: no data exists yet, and CDI does not let a
		// DataVolume's spec change, so the DataVolume (this owner's own
		// child) goes and the next pass writes it with the new size.
		uid := s.dv.UID
		if err := c.Delete(ctx, s.dv, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return o, fmt.Errorf("cannot delete DataVolume %s to resize it: %w", s.key.Name, err)
		}
		o.Message = "the disk's size changed before the quota let CDI make its claim: its DataVolume is written again"
		return o, nil
	}
	if o.DataVolume && s.dv != nil && accessChanged(d, s.dv) {
		// The CA ConfigMap or login Secret changed before the import
		// succeeded (nothing imported yet; CDI refuses a DataVolume spec
		// change): the DataVolume goes, its claim first (foreground), and
		// a later pass writes it with the new source.
		uid := s.dv.UID
		if err := c.Delete(ctx, s.dv, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil && !apierrors.IsNotFound(err) {
			return o, fmt.Errorf("cannot delete DataVolume %s to change its image access: %w", s.key.Name, err)
		}
		o.Message = "the disk's CA ConfigMap or login Secret changed before its import succeeded: its DataVolume is written again"
		return o, nil
	}
	if o.DataVolume && (s.dv == nil && s.pvc == nil || s.dv != nil && s.dv.Status.Phase != cdiv1.Succeeded) {
		// CDI's importer needs them until the import succeeds.
		if refs == nil {
			refs = c
		}
		if err := checkAccess(ctx, refs, s.key.Namespace, d); err != nil {
			var nf *ImageAccessNotFoundError
			if errors.As(err, &nf) {
				return fail(ReasonImageAccessNotFound, nf.Field(), err)
			}
			return o, err
		}
	}
	if o.DataVolume {
		err = reconcileImage(ctx, c, owner, s, &o)
	} else {
		err = reconcileBlank(ctx, c, owner, s, &o)
	}
	if errors.Is(err, ErrCDINotInstalled) {
		return o, failure(ReasonCDINotInstalled, err).On(d.Name, "source")
	}
	if err != nil {
		return o, err
	}

	Observe(&o, s.dv, s.pvc, isWFFC(s.class))
	switch {
	case s.sizeErr != nil:
		o.Reason, o.Message = s.sizeReason, s.sizeErr.Error()
	case s.sizeReason != "" && o.Reason == "":
		o.Reason, o.Message = s.sizeReason, fmt.Sprintf("growing to %s waits until the claim is bound", d.Size.String())
	}
	if s.sizeErr != nil {
		field := "size"
		var q *QuotaExceededError
		switch {
		case s.sizeReason == ReasonStorageClassNotFound:
			field = "storageClassName"
		case errors.As(s.sizeErr, &q):
			field = q.Field()
		}
		return o, failure(s.sizeReason, s.sizeErr).On(d.Name, field)
	}
	return o, observedFailure(d.Name, o)
}

// reconcileExisting observes the claim a disk names (Disk.ClaimName)
// without writing anything: it must exist and not be being deleted
// (ReasonClaimNotFound), have no controller (ReasonClaimInUse: never take a
// DataVolume's or another owner's claim, the no-adoption rule) and request
// at least the disk's size when one is given (ReasonClaimTooSmall). Each is
// stalled: someone must create, free or grow the claim. The Observation's
// Requested is the claim's request. A claim without a controller is what
// KubeVirt takes as populated (containerized-data-importer-api v1beta1
// IsPopulated: only a claim a DataVolume controls waits for its import), so
// the VM uses it at once.
func reconcileExisting(ctx context.Context, c client.Client, classes *classReader, owner client.Object, d Disk) (Observation, error) {
	o := Observation{Name: d.Name, ClaimName: d.ClaimName, Existing: true, Phase: PhasePending, Requested: d.Size}
	fail := func(reason, field string, err error) (Observation, error) {
		o.Reason, o.Message = reason, err.Error()
		return o, failure(reason, err).On(d.Name, field)
	}
	pvc, err := apply.GetOptional(ctx, c, client.ObjectKey{Namespace: owner.GetNamespace(), Name: d.ClaimName}, &corev1.PersistentVolumeClaim{})
	switch {
	case err != nil:
		return o, fmt.Errorf("%s: %w", errGetPVC, err)
	case pvc == nil:
		return fail(ReasonClaimNotFound, "claimName", &ClaimNotFoundError{Name: d.ClaimName})
	case pvc.DeletionTimestamp != nil:
		return fail(ReasonClaimNotFound, "claimName", &ClaimNotFoundError{Name: d.ClaimName, Deleting: true})
	}
	if ref := metav1.GetControllerOfNoCopy(pvc); ref != nil {
		return fail(ReasonClaimInUse, "claimName", &ClaimInUseError{Name: d.ClaimName, Kind: ref.Kind, Controller: ref.Name})
	}
	request := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	o.Requested = request
	if d.Size.Sign() > 0 && request.Cmp(d.Size) < 0 {
		return fail(ReasonClaimTooSmall, "size", &ClaimTooSmallError{Name: d.ClaimName, Request: request, Size: d.Size})
	}
	// The class only tells whether binding waits for the VM (a claim
	// without one, or with one that is gone, binds as it can).
	var class *storagev1.StorageClass
	if name := pvc.Spec.StorageClassName; name != nil && *name != "" {
		o.StorageClassName = *name
		class, _ = classes.resolve(ctx, *name)
	}
	Observe(&o, nil, pvc, isWFFC(class))
	return o, observedFailure(d.Name, o)
}

// observedFailure is what CDI or the claim reports without an API error,
// as a stalled *apply.Failure, nil when nothing failed: CDI cannot render
// the claim (ReasonClaimNotValid, field storageClassName), a ResourceQuota
// has no room for the claim (ReasonQuotaExceeded, field size or none, see
// QuotaExceededError.Field; CDI retries), the image is
// bigger than the disk (ReasonDiskTooSmall, field size), the claim's
// volume is lost (ReasonClaimLost), any other failed import
// (ReasonImportFailed, field source; CDI retries, so a fix of the source or
// the registry lets it pass). The message is the observation's.
func observedFailure(disk string, o Observation) error {
	msg := o.Message
	if msg == "" {
		msg = "the disk failed: " + o.Reason
	}
	err := errors.New(msg)
	if q := parseQuota(disk, msg); o.Reason == ReasonQuotaExceeded && q != nil {
		return failure(ReasonQuotaExceeded, q).On(disk, q.Field())
	}
	switch {
	case o.Reason == ReasonClaimNotValid:
		return failure(ReasonClaimNotValid, err).On(disk, "storageClassName")
	case o.Phase != PhaseFailed:
		return nil
	case o.Reason == ReasonDiskTooSmall:
		return failure(ReasonDiskTooSmall, err).On(disk, "size")
	case o.Reason == ReasonClaimLost:
		return failure(ReasonClaimLost, err).On(disk, "")
	}
	if reason, field := accessFailure(msg); reason != "" {
		return failure(reason, err).On(disk, field)
	}
	return failure(ReasonImportFailed, err).On(disk, "source")
}

// cdiLabelKey and cdiLabelValue are the label CDI puts on every PVC it
// creates for a DataVolume (containerized-data-importer
// pkg/controller/common: CDILabelKey "app", CDILabelValue
// "containerized-data-importer"); BuildPVC never writes it.
const (
	cdiLabelKey   = "app"
	cdiLabelValue = "containerized-data-importer"
)

// plainClaim reports whether a disk's existing PVC is one BuildPVC wrote
// (no DataVolume's: CDI's label is absent), so a blank disk keeps using it.
// A CDI-made claim whose DataVolume CDI garbage-collected is not plain.
func plainClaim(pvc *corev1.PersistentVolumeClaim) bool {
	return pvc != nil && pvc.Labels[cdiLabelKey] != cdiLabelValue
}

// failure classifies one of this package's reasons as an *apply.Failure:
// every reason it reports with an error needs someone to act (stalled),
// except ReasonPredecessor, which waits apply.PredecessorRetry: it passes
// once the garbage collector has removed the deleted owner's object.
func failure(reason string, err error) *apply.Failure {
	if reason == ReasonPredecessor {
		return apply.Waiting(reason, apply.PredecessorRetry, err)
	}
	return apply.Stalled(reason, err)
}

// checkOwnership refuses a disk whose claim or DataVolume exists and was not
// created for owner (never adopt: lib/apply's rule). A DataVolume must be
// controlled by owner; its PVC by that DataVolume (CDI creates it) or, once
// CDI garbage-collected the DataVolume and handed the PVC to the
// DataVolume's owner, by owner. Without a DataVolume, the PVC must be
// owner's: creating a DataVolume over someone else's PVC would let CDI
// adopt it (DataVolume claim adoption).
func checkOwnership(owner client.Object, s *diskState) error {
	gvk := owner.GetObjectKind().GroupVersionKind()
	ownerRef := metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: owner.GetName(), UID: owner.GetUID()}
	if s.dv != nil {
		if err := apply.CheckControlled(s.dv, "DataVolume", ownerRef); err != nil {
			return err
		}
		if s.pvc == nil {
			return nil
		}
		dvRef := metav1.OwnerReference{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume", Name: s.dv.Name, UID: s.dv.UID}
		if apply.CheckControlled(s.pvc, "PersistentVolumeClaim", dvRef) == nil {
			return nil
		}
	}
	if s.pvc != nil {
		return apply.CheckControlled(s.pvc, "PersistentVolumeClaim", ownerRef)
	}
	return nil
}

// checkGrowth compares the requested size with current and records a refusal
// in s; it reports whether the PVC may be grown now.
func (s *diskState) checkGrowth(current resource.Quantity, className string) bool {
	switch s.d.Size.Cmp(current) {
	case -1:
		s.sizeErr, s.sizeReason = &ShrinkError{Disk: s.d.Name, From: current, To: s.d.Size}, ReasonShrinkRefused
	case 1:
		switch {
		case s.classErr != nil:
			s.sizeErr, s.sizeReason = s.classErr, ReasonStorageClassNotFound
		case !expandable(s.class):
			s.sizeErr, s.sizeReason = &NotExpandableError{Disk: s.d.Name, StorageClass: className}, ReasonExpansionNotAllowed
		case s.pvc == nil || s.pvc.Status.Phase != corev1.ClaimBound:
			s.sizeReason = ReasonExpansionPendingBind
		default:
			return true
		}
	}
	return false
}

func reconcileBlank(ctx context.Context, c client.Client, owner client.Object, s *diskState, o *Observation) error {
	want := s.d
	if s.pvc != nil {
		current := s.pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		if !s.checkGrowth(current, o.StorageClassName) {
			want.Size = current
		}
		// Keep sending the live class: it is immutable, and dropping a field
		// this manager owns would try to clear it.
		want.StorageClassName = ""
		if s.pvc.Spec.StorageClassName != nil {
			want.StorageClassName = *s.pvc.Spec.StorageClassName
		}
	} else if want.StorageClassName == "" && s.class != nil {
		// Name the default class the API server's DefaultStorageClass
		// admission would fill in: the claim then reads back as it was
		// sent, and the next pass (which sends the live class) writes
		// nothing.
		want.StorageClassName = s.class.Name
	}
	pvc := BuildPVC(s.id, owner, want)
	if err := applyAndRead(ctx, c, s.id, pvc); err != nil {
		if q := quotaRefusal(s.d.Name, err); q != nil {
			s.sizeErr, s.sizeReason = q, ReasonQuotaExceeded // s.pvc is what exists
			return nil
		}
		return fmt.Errorf("%s: %w", errApplyPVC, err)
	}
	s.pvc = pvc
	o.Requested = pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	return nil
}

func reconcileImage(ctx context.Context, c client.Client, owner client.Object, s *diskState, o *Observation) error {
	size := s.d.Size
	grow := false
	existed := s.pvc != nil || s.dv != nil
	if existed {
		size = logicalSize(s.id, s.dv, s.pvc)
		grow = s.checkGrowth(size, o.StorageClassName)
	}
	// Create the DataVolume, or re-apply its metadata with the spec it has
	// (CDI rejects spec updates). When only its PVC is left (CDI garbage
	// collection), leave it gone.
	if s.dv != nil || s.pvc == nil {
		dv, err := buildDataVolume(s.id, owner, s.d, s.kind)
		if err != nil {
			return err
		}
		if s.dv != nil {
			dv.Spec = *s.dv.Spec.DeepCopy()
			// The size it was made with, as it recorded it (an older
			// DataVolume without the annotation: its request).
			recorded, ok := s.dv.Annotations[s.id.Key(KeyDiskSize)]
			if !ok {
				q := logicalSize(s.id, s.dv, nil)
				recorded = q.String()
			}
			dv.Annotations[s.id.Key(KeyDiskSize)] = recorded
		}
		if err := applyAndRead(ctx, c, s.id, dv); err != nil {
			if meta.IsNoMatchError(err) {
				o.Reason, o.Message = ReasonCDINotInstalled, ErrCDINotInstalled.Error()
				return ErrCDINotInstalled
			}
			return fmt.Errorf("%s: %w", errApplyDataVolume, err)
		}
		s.dv = dv
		if !existed {
			// As the API server wrote it, so every pass reports the same
			// quantity (e.g. 2048Mi reads back as 2Gi).
			size = logicalSize(s.id, s.dv, nil)
		}
	}
	if !grow && s.dv != nil && s.pvc != nil && s.pvc.DeletionTimestamp == nil {
		if _, ok := s.pvc.Annotations[s.id.Key(KeyDiskSize)]; !ok {
			// A claim CDI made before its DataVolume carried the size
			// (CDI copies the DataVolume's annotations only when it makes
			// the claim): record it now, so the size survives CDI
			// garbage-collecting the DataVolume. Only the annotation is
			// sent: without it this manager never wrote to the claim.
			if err := s.recordSize(ctx, c, size); err != nil {
				return err
			}
		}
	}
	if grow {
		// The PVC request includes CDI's file system overhead: add the growth.
		req := s.pvc.Spec.Resources.Requests[corev1.ResourceStorage].DeepCopy()
		req.Add(s.d.Size)
		req.Sub(size)
		patch := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Name: s.key.Name, Namespace: s.key.Namespace,
				Annotations: map[string]string{s.id.Key(KeyDiskSize): s.d.Size.String()},
			},
			Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(req.String())},
			}},
		}
		if err := applyAndRead(ctx, c, s.id, patch); err != nil {
			if q := quotaRefusal(s.d.Name, err); q != nil {
				s.sizeErr, s.sizeReason = q, ReasonQuotaExceeded // the claim keeps its size
				o.Requested = size
				return nil
			}
			return fmt.Errorf("%s: %w", errApplyPVC, err)
		}
		s.pvc = patch
		size = s.d.Size
	}
	o.Requested = size
	return nil
}

// recordSize writes the annotation id.Key(KeyDiskSize) = size on the disk's
// claim, and nothing else. A quota cannot refuse it (no request changes).
func (s *diskState) recordSize(ctx context.Context, c client.Client, size resource.Quantity) error {
	patch := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
		Name: s.key.Name, Namespace: s.key.Namespace,
		Annotations: map[string]string{s.id.Key(KeyDiskSize): size.String()},
	}}
	if err := applyAndRead(ctx, c, s.id, patch); err != nil {
		return fmt.Errorf("%s: %w", errApplyPVC, err)
	}
	s.pvc = patch
	return nil
}

// logicalSize is an image disk's size in effect: the size last grown to
// (PVC annotation), else the DataVolume's request, else the PVC's request.
func logicalSize(id apply.Identity, dv *cdiv1.DataVolume, pvc *corev1.PersistentVolumeClaim) resource.Quantity {
	if pvc != nil {
		if v, ok := pvc.Annotations[id.Key(KeyDiskSize)]; ok {
			if q, err := resource.ParseQuantity(v); err == nil {
				return q
			}
		}
	}
	if dv != nil {
		if dv.Spec.Storage != nil {
			if q, ok := dv.Spec.Storage.Resources.Requests[corev1.ResourceStorage]; ok {
				return q
			}
		}
		if dv.Spec.PVC != nil {
			if q, ok := dv.Spec.PVC.Resources.Requests[corev1.ResourceStorage]; ok {
				return q
			}
		}
	}
	if pvc != nil {
		return pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	}
	return resource.Quantity{}
}

// classOf resolves the class that governs a disk: the live PVC's (none when
// it has no class), else the live DataVolume's, else the disk's.
func classOf(ctx context.Context, classes *classReader, d Disk, pvc *corev1.PersistentVolumeClaim, dv *cdiv1.DataVolume) (*storagev1.StorageClass, error) {
	switch {
	case pvc != nil:
		if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
			return nil, nil
		}
		return classes.resolve(ctx, *pvc.Spec.StorageClassName)
	case dv != nil && dv.Spec.Storage != nil && dv.Spec.Storage.StorageClassName != nil:
		return classes.resolve(ctx, *dv.Spec.Storage.StorageClassName)
	default:
		return classes.resolve(ctx, d.StorageClassName)
	}
}

// applyAndRead applies obj and leaves the live object (with status) in it:
// apply.Apply returns the server's answer, or the object it read when
// nothing needed writing.
func applyAndRead(ctx context.Context, c client.Client, id apply.Identity, obj client.Object) error {
	_, err := apply.Apply(ctx, c, obj, id)
	return err
}

// prePopulated: the DataVolume carries CDI's
// cdi.kubevirt.io/storage.prePopulated annotation, with which CDI leaves
// its claim to whoever set it (CDI dvIsPrePopulated: no claim is made for
// it, whatever the value).
func prePopulated(dv *cdiv1.DataVolume) bool {
	_, ok := dv.Annotations[cdiv1.AnnPrePopulated]
	return ok
}

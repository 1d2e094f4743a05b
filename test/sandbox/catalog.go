package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// CDI's golden image kinds, played as CDI v1.65.0 does
// (kubevirt.io/containerized-data-importer pkg/controller/
// datasource-controller.go, dataimportcron-controller.go), and the
// DataVolume spec.sourceRef a clone of a DataSource uses
// (pkg/controller/datavolume/clone-controller-base.go
// populateSourceIfSourceRef), which the cdiSim then clones with its
// strategy choice (clone.go).

const (
	// labelDataImportCron is the label CDI puts on what a DataImportCron
	// creates (pkg/common DataImportCronLabel).
	labelDataImportCron = "cdi.kubevirt.io/dataImportCron"
	// labelDataImportCronCleanup marks them for deletion with the cron
	// when its retentionPolicy is None (DataImportCronCleanupLabel).
	labelDataImportCronCleanup = labelDataImportCron + ".cleanup"
	// annSourceDesiredDigest is the digest the cron's poller found
	// (dataimportcron-controller.go AnnSourceDesiredDigest).
	annSourceDesiredDigest = "cdi.kubevirt.io/storage.import.sourceDesiredDigest"
	// annLastUseTime orders a cron's imports for garbage collection
	// (AnnLastUseTime).
	annLastUseTime = "cdi.kubevirt.io/storage.import.lastUseTime"
	// AnnRegistryDigest is the sandbox's stand-in for a registry: the
	// digest the poller of the DataImportCron carrying it finds (a test
	// sets it to play a new push of the image). Without it the digest is
	// the SHA-256 of the image reference. Real clusters have no such
	// annotation.
	AnnRegistryDigest = "sandbox.novasphere.dev/registry-digest"
	// defaultImportsToKeep is CDI's default of spec.importsToKeep
	// (defaultImportsToKeepPerCron).
	defaultImportsToKeep = 3
	// digestDvNameSuffixLength: a cron's DataVolume is named
	// <managedDataSource>-<first 12 hex digits of the digest> (createDvName).
	digestDvNameSuffixLength = 12
)

// populateSourceRef resolves a DataVolume's spec.sourceRef (a DataSource,
// possibly of another namespace) into spec.source in memory, as CDI's clone
// controllers do on every pass (populateSourceIfSourceRef): the
// DataSource's spec.source.pvc or .snapshot. It returns false when the
// DataSource is missing or points at nothing yet ("Empty source field …
// DataSource may not be ready yet"): CDI then retries and the DataVolume
// stays Pending. The resolved source is never written back (CDI nils it
// out before updating the DataVolume).
func (r *cdiSim) populateSourceRef(ctx context.Context, dv *cdiv1.DataVolume) (bool, error) {
	ref := dv.Spec.SourceRef
	if ref == nil || dv.Spec.Source != nil || ref.Kind != cdiv1.DataVolumeDataSource {
		return true, nil
	}
	ns := dv.Namespace
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = *ref.Namespace
	}
	ds := &cdiv1.DataSource{}
	if err := r.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, ds); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	src := ds.Spec.Source
	if src.DataSource != nil {
		src = ds.Status.Source
	}
	if src.PVC == nil && src.Snapshot == nil {
		return false, nil
	}
	dv.Spec.Source = &cdiv1.DataVolumeSource{PVC: src.PVC.DeepCopy(), Snapshot: src.Snapshot.DeepCopy()}
	if s := dv.Spec.Source.PVC; s != nil && s.Namespace == "" {
		s.Namespace = ns
	}
	if s := dv.Spec.Source.Snapshot; s != nil && s.Namespace == "" {
		s.Namespace = ns
	}
	return true, nil
}

// dataSourceSim plays CDI's DataSource controller for pvc sources
// (datasource-controller.go handlePvcSource): Ready True ("DataSource is
// ready to be consumed") once the claim exists and its DataVolume, if any,
// Succeeded; else Ready False with the DataVolume's phase or "PVC not
// found", and status.source empty. status.source copies spec.source while
// Ready. (CDI writes the whole object: the CRD has no status subresource.)
type dataSourceSim struct{ c client.Client }

func (r *dataSourceSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-cdi-datasource").
		For(&cdiv1.DataSource{}).
		// A source DataVolume's phase decides readiness.
		Watches(&cdiv1.DataVolume{}, handler.EnqueueRequestsFromMapFunc(r.sourcesOf)).
		Complete(r)
}

// sourcesOf maps a DataVolume to the DataSources of its namespace whose
// source it is.
func (r *dataSourceSim) sourcesOf(ctx context.Context, o client.Object) []reconcile.Request {
	list := &cdiv1.DataSourceList{}
	if err := r.c.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, ds := range list.Items {
		if p := ds.Spec.Source.PVC; p != nil && p.Name == o.GetName() && (p.Namespace == "" || p.Namespace == o.GetNamespace()) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ds)})
		}
	}
	return reqs
}

func (r *dataSourceSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ds := &cdiv1.DataSource{}
	if err := r.c.Get(ctx, req.NamespacedName, ds); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := ds.DeepCopy()
	ready, reason, msg := false, "NoSource", "No source PVC set"
	ds.Status.Source = *ds.Spec.Source.DeepCopy()
	if p := ds.Spec.Source.PVC; p != nil {
		ns := p.Namespace
		if ns == "" {
			ns = ds.Namespace
		}
		key := types.NamespacedName{Namespace: ns, Name: p.Name}
		pvcErr := r.c.Get(ctx, key, &corev1.PersistentVolumeClaim{})
		if pvcErr != nil && !apierrors.IsNotFound(pvcErr) {
			return ctrl.Result{}, pvcErr
		}
		dv := &cdiv1.DataVolume{}
		switch err := r.c.Get(ctx, key, dv); {
		case apierrors.IsNotFound(err) && pvcErr != nil:
			reason, msg = "NotFound", "PVC not found"
		case apierrors.IsNotFound(err):
			ready = true
		case err != nil:
			return ctrl.Result{}, err
		case dv.Status.Phase == cdiv1.Succeeded:
			ready = true
		default:
			reason, msg = string(dv.Status.Phase), "Import DataVolume phase "+string(dv.Status.Phase)
		}
	}
	status := corev1.ConditionFalse
	if ready {
		status, reason, msg = corev1.ConditionTrue, "Ready", "DataSource is ready to be consumed"
	} else {
		ds.Status.Source = cdiv1.DataSourceSource{}
	}
	setDSCondition(ds, cdiv1.DataSourceReady, status, reason, msg)
	if equality.Semantic.DeepEqual(before, ds) {
		return ctrl.Result{}, nil
	}
	return requeueOnConflict(ctrl.Result{}, r.c.Update(ctx, ds))
}

// dataImportCronSim plays CDI's DataImportCron controller for registry
// URL sources (dataimportcron-controller.go update):
//
//  1. The poller (a CronJob CDI creates only when spec.schedule is set:
//     initCron) records the image's digest in annotation
//     cdi.kubevirt.io/storage.import.sourceDesiredDigest; here at once,
//     from AnnRegistryDigest (else the SHA-256 of the reference).
//  2. A desired digest no current import has creates a DataVolume
//     <managedDataSource>-<12 hex digits of the digest> (createDvName) from
//     spec.template with the digested URL, labelled
//     cdi.kubevirt.io/dataImportCron=<cron> (and .cleanup with
//     retentionPolicy None), annotated for immediate binding and last use
//     (newSourceDataVolume); status.currentImports names it.
//  3. Once it Succeeded: status.lastImportedPVC and lastImportTimestamp
//     (updateDataImportCronOnSuccess), the DataSource managedDataSource
//     created (labelled with the cron) or pointed at the claim
//     (updateDataSource), and the cron's claims beyond importsToKeep
//     (default 3) deleted, least recently used first (garbageCollectPVCs;
//     their DataVolumes with them).
//  4. Deleted with retentionPolicy None: its DataVolumes, claims and
//     DataSource go too (cleanup).
type dataImportCronSim struct{ c client.Client }

func (r *dataImportCronSim) setup(mgr ctrl.Manager) error {
	r.c = mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).Named("sim-cdi-dataimportcron").
		For(&cdiv1.DataImportCron{}).
		Watches(&cdiv1.DataVolume{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if cron := o.GetLabels()[labelDataImportCron]; cron != "" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: cron}}}
			}
			return nil
		})).
		Complete(r)
}

func (r *dataImportCronSim) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cron := &cdiv1.DataImportCron{}
	if err := r.c.Get(ctx, req.NamespacedName, cron); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.cleanup(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if cron.DeletionTimestamp != nil {
		return ctrl.Result{}, r.cleanup(ctx, req.NamespacedName)
	}
	src := cron.Spec.Template.Spec.Source
	if src == nil || src.Registry == nil || src.Registry.URL == nil || cron.Spec.Schedule == "" {
		return ctrl.Result{}, nil // no poller: nothing is ever imported (initCron)
	}
	digest := cron.Annotations[AnnRegistryDigest]
	if digest == "" {
		sum := sha256.Sum256([]byte(*src.Registry.URL))
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	if cron.Annotations[annSourceDesiredDigest] != digest {
		patch := client.MergeFrom(cron.DeepCopy())
		if cron.Annotations == nil {
			cron.Annotations = map[string]string{}
		}
		cron.Annotations[annSourceDesiredDigest] = digest
		if err := r.c.Patch(ctx, cron, patch); err != nil {
			return requeueOnConflict(ctrl.Result{}, err)
		}
	}
	before := cron.Status.DeepCopy()
	imports := cron.Status.CurrentImports
	if len(imports) > 0 {
		dv := &cdiv1.DataVolume{}
		err := r.c.Get(ctx, types.NamespacedName{Namespace: cron.Namespace, Name: imports[0].DataVolumeName}, dv)
		switch {
		case err == nil && dv.Status.Phase == cdiv1.Succeeded:
			pvc := &cdiv1.DataVolumeSourcePVC{Namespace: cron.Namespace, Name: dv.Name}
			if last := cron.Status.LastImportedPVC; last == nil || *last != *pvc {
				now := metav1.Now()
				cron.Status.LastImportedPVC, cron.Status.LastImportTimestamp = pvc, &now
			}
			if err := r.updateDataSource(ctx, cron); err != nil {
				return ctrl.Result{}, err
			}
			if err := r.garbageCollect(ctx, cron); err != nil {
				return ctrl.Result{}, err
			}
		case err != nil && !apierrors.IsNotFound(err):
			return ctrl.Result{}, err
		}
	}
	if len(imports) == 0 || imports[0].Digest != digest {
		name := cron.Spec.ManagedDataSource + "-" + digest[len("sha256:"):len("sha256:")+digestDvNameSuffixLength]
		if err := r.createImport(ctx, cron, name, digest); err != nil {
			return ctrl.Result{}, err
		}
		cron.Status.CurrentImports = []cdiv1.ImportStatus{{DataVolumeName: name, Digest: digest}}
	}
	if equality.Semantic.DeepEqual(before, &cron.Status) {
		return ctrl.Result{}, nil
	}
	log.FromContext(ctx).Info("DataImportCron", "currentImports", cron.Status.CurrentImports, "lastImportedPVC", cron.Status.LastImportedPVC)
	// The CRD has no status subresource: CDI updates the whole object.
	return requeueOnConflict(ctrl.Result{}, r.c.Update(ctx, cron))
}

// cronLabels are the labels of what a cron creates.
func cronLabels(cron *cdiv1.DataImportCron) map[string]string {
	l := map[string]string{labelDataImportCron: cron.Name}
	if p := cron.Spec.RetentionPolicy; p != nil && *p == cdiv1.DataImportCronRetainNone {
		l[labelDataImportCronCleanup] = "true"
	}
	return l
}

// createImport creates the import DataVolume of a digest (step 2).
func (r *dataImportCronSim) createImport(ctx context.Context, cron *cdiv1.DataImportCron, name, digest string) error {
	dv := cron.Spec.Template.DeepCopy()
	dv.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: cron.Namespace, Labels: cronLabels(cron),
		Annotations: map[string]string{
			"cdi.kubevirt.io/storage.bind.immediate.requested": "true",
			annLastUseTime: time.Now().UTC().Format(time.RFC3339Nano),
		}}
	url := untagged(*dv.Spec.Source.Registry.URL) + "@" + digest
	dv.Spec.Source.Registry.URL = &url
	dv.Status = cdiv1.DataVolumeStatus{}
	if err := r.c.Create(ctx, dv); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// untagged drops a reference's tag (untagDigestedDockerURL): the digest
// names the image.
func untagged(ref string) string {
	scheme, rest := "", ref
	if i := len("docker://"); len(ref) > i && ref[:i] == "docker://" {
		scheme, rest = ref[:i], ref[i:]
	}
	slash := 0
	for i := range rest {
		if rest[i] == '/' {
			slash = i
		}
	}
	for i := len(rest) - 1; i > slash; i-- {
		if rest[i] == ':' {
			return scheme + rest[:i]
		}
	}
	return ref
}

// updateDataSource creates the cron's DataSource or points it at the last
// import (step 3).
func (r *dataImportCronSim) updateDataSource(ctx context.Context, cron *cdiv1.DataImportCron) error {
	ds := &cdiv1.DataSource{}
	err := r.c.Get(ctx, types.NamespacedName{Namespace: cron.Namespace, Name: cron.Spec.ManagedDataSource}, ds)
	if apierrors.IsNotFound(err) {
		ds = &cdiv1.DataSource{ObjectMeta: metav1.ObjectMeta{Name: cron.Spec.ManagedDataSource, Namespace: cron.Namespace, Labels: cronLabels(cron)}}
		ds.Spec.Source.PVC = cron.Status.LastImportedPVC.DeepCopy()
		return r.c.Create(ctx, ds)
	}
	if err != nil {
		return err
	}
	if owner := ds.Labels[labelDataImportCron]; owner != "" && owner != cron.Name {
		return nil // another cron's (ErrNotManagedByCron)
	}
	before := ds.DeepCopy()
	if ds.Labels == nil {
		ds.Labels = map[string]string{}
	}
	ds.Labels[labelDataImportCron] = cron.Name
	ds.Spec.Source = cdiv1.DataSourceSource{PVC: cron.Status.LastImportedPVC.DeepCopy()}
	if equality.Semantic.DeepEqual(before, ds) {
		return nil
	}
	return r.c.Update(ctx, ds)
}

// garbageCollect deletes the cron's claims (and DataVolumes) beyond
// importsToKeep, keeping the most recently used; CDI orders by the
// annotation cdi.kubevirt.io/storage.import.lastUseTime, which the sandbox
// reads from the claim's DataVolume, else by creation time.
func (r *dataImportCronSim) garbageCollect(ctx context.Context, cron *cdiv1.DataImportCron) error {
	if gc := cron.Spec.GarbageCollect; gc != nil && *gc != cdiv1.DataImportCronGarbageCollectOutdated {
		return nil
	}
	keep := defaultImportsToKeep
	if k := cron.Spec.ImportsToKeep; k != nil && *k >= 0 {
		keep = int(*k)
	}
	dvs := &cdiv1.DataVolumeList{}
	if err := r.c.List(ctx, dvs, client.InNamespace(cron.Namespace), client.MatchingLabels{labelDataImportCron: cron.Name}); err != nil {
		return err
	}
	if len(dvs.Items) <= keep {
		return nil
	}
	used := func(dv *cdiv1.DataVolume) string {
		if t := dv.Annotations[annLastUseTime]; t != "" {
			return t
		}
		return dv.CreationTimestamp.UTC().Format(time.RFC3339Nano)
	}
	slices.SortFunc(dvs.Items, func(a, b cdiv1.DataVolume) int {
		if ua, ub := used(&a), used(&b); ua != ub {
			if ua > ub {
				return -1
			}
			return 1
		}
		return 0
	})
	for i := range dvs.Items[keep:] {
		dv := &dvs.Items[keep+i]
		if cron.Status.LastImportedPVC != nil && dv.Name == cron.Status.LastImportedPVC.Name {
			continue // the DataSource's
		}
		if err := r.deleteImport(ctx, dv.Namespace, dv.Name); err != nil {
			return err
		}
		log.FromContext(ctx).Info("DataImportCron garbage-collected an import", "dataVolume", dv.Name)
	}
	return nil
}

// deleteImport deletes an import's DataVolume and claim (deleteDvPvc).
func (r *dataImportCronSim) deleteImport(ctx context.Context, ns, name string) error {
	om := metav1.ObjectMeta{Namespace: ns, Name: name}
	if err := r.c.Delete(ctx, &cdiv1.DataVolume{ObjectMeta: om}); client.IgnoreNotFound(err) != nil {
		return err
	}
	return client.IgnoreNotFound(r.c.Delete(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: om}))
}

// cleanup deletes what a deleted cron created with retentionPolicy None
// (CDI's cleanup: the objects labelled .cleanup).
func (r *dataImportCronSim) cleanup(ctx context.Context, key types.NamespacedName) error {
	sel := client.MatchingLabels{labelDataImportCron: key.Name, labelDataImportCronCleanup: "true"}
	var errs []error
	for _, o := range []client.Object{&cdiv1.DataVolume{}, &cdiv1.DataSource{}, &corev1.PersistentVolumeClaim{}} {
		errs = append(errs, client.IgnoreNotFound(r.c.DeleteAllOf(ctx, o, client.InNamespace(key.Namespace), sel)))
	}
	return errors.Join(errs...)
}

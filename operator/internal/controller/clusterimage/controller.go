// Package clusterimage is the ClusterImage controller: it turns each
// administrator's golden image into CDI objects in the catalog namespace,
// one golden copy per StorageClass, and mirrors what CDI reports into the
// ClusterImage's status. It has the NodeBridge controller's shape: observe
// into a scope, compute the status from it with plain functions, write it
// in one patch.
//
// Per StorageClass, named catalog.DataSourceName(image, class):
//
//   - without schedule (http(s) sources, and registry sources imported
//     once): a DataVolume importing the source (spec.storage with the class
//     and the image's size, annotation
//     cdi.kubevirt.io/storage.bind.immediate.requested so a
//     WaitForFirstConsumer class binds without a consumer, as CDI's own
//     DataImportCron does: newSourceDataVolume) and a DataSource whose
//     spec.source.pvc is that DataVolume's claim; CDI's DataSource
//     controller makes it Ready once the DataVolume Succeeded
//     (pkg/controller/datasource-controller.go handlePvcSource);
//   - with schedule (registry sources only): a DataImportCron with the
//     schedule, importsToKeep, garbageCollect Outdated and retentionPolicy
//     None (CDI deletes its DataVolumes and DataSource with it), whose
//     managedDataSource CDI creates and points at each new import
//     (pkg/controller/dataimportcron-controller.go). CDI polls registry
//     sources only: an http(s) source with a schedule is refused at
//     admission by the CRD.
//
// Every object is controlled by the ClusterImage (a cluster-scoped owner
// may own namespaced objects), so deleting the image deletes its copies.
package clusterimage

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/conditions"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
	"github.com/novasphere/wukong/operator/internal/catalog"
	"github.com/novasphere/wukong/operator/internal/statuspass"
)

// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=clusterimages,verbs=get;list;watch
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=clusterimages/status,verbs=get;update;patch
// Owner references with blockOwnerDeletion on the golden objects.
// +kubebuilder:rbac:groups=vm.novasphere.dev,resources=clusterimages/finalizers,verbs=update
// The golden objects, in the catalog namespace only.
// +kubebuilder:rbac:groups=cdi.kubevirt.io,resources=datavolumes,verbs=get;list;watch;create;patch;delete,namespace=catalog
// +kubebuilder:rbac:groups=cdi.kubevirt.io,resources=datasources,verbs=get;list;watch;create;patch;delete,namespace=catalog
// +kubebuilder:rbac:groups=cdi.kubevirt.io,resources=dataimportcrons,verbs=get;list;watch;create;patch;delete,namespace=catalog
// The golden claims' capacity.
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get,namespace=catalog

// reasonCatalogNamespaceMissing: the operator's image catalog namespace
// does not exist.
const reasonCatalogNamespaceMissing = "CatalogNamespaceNotFound"

// Label keys on the golden objects (under identity.Wukong's domain).
const (
	// keyImage is the label carrying the ClusterImage's name.
	keyImage = "cluster-image"
)

// Retries: CDI's objects in the catalog namespace are read from the API
// server (the manager's cache holds only the watched namespaces), so
// progress is polled.
const (
	// importPoll: a golden copy being imported.
	importPoll = 10 * time.Second
	// readyPoll: every copy ready; a schedule's re-imports and a copy
	// deleted behind the operator's back are noticed this late.
	readyPoll = 10 * time.Minute
	// stalledRetry: a missing StorageClass or CDI.
	stalledRetry = time.Minute
)

// annImmediateBinding asks CDI to bind a claim at once even on a
// WaitForFirstConsumer class (pkg/controller/common AnnImmediateBinding).
const annImmediateBinding = "cdi.kubevirt.io/storage.bind.immediate.requested"

// Reconciler turns each ClusterImage into its golden copies.
type Reconciler struct {
	// Client writes, and reads the ClusterImage and StorageClasses.
	Client client.Client
	// Reader reads the catalog namespace from the API server (uncached).
	Reader client.Reader
	// Namespace is the catalog namespace holding the golden copies.
	Namespace string
}

// scope is what one pass observed; status is computed from it at the end.
type scope struct {
	img *v1alpha1.ClusterImage
	// invalid: the source or the class list cannot work (Stalled, with
	// reason and message).
	invalidReason, invalid string
	// cdiMissing: CDI's kinds are not served.
	cdiMissing bool
	// conflict: a golden object's name is taken by an object the image
	// does not control (apply.ConflictFailure: stalled NameConflict, or
	// waiting WaitingForPredecessor while it belongs to a deleted
	// ClusterImage of the same name).
	conflict *apply.Failure
	copies   []v1alpha1.ClusterImageCopy
}

// Reconcile observes the golden copies (reconcileCopies), computes the
// status (computeStatus) and writes it in one patch when it changed,
// stamping observedGeneration. Conditions: Ready (every copy ready),
// Reconciling while importing or while a deleted ClusterImage's golden
// object of the same name is still being garbage-collected
// (WaitingForPredecessor), Stalled for a bad source, a missing
// StorageClass, a name conflict or a missing CDI.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// An image being deleted is left alone: the garbage collector deletes
	// the copies.
	return statuspass.Pass[*v1alpha1.ClusterImage, *scope]{
		Scope: func(img *v1alpha1.ClusterImage) *scope { return &scope{img: img} },
		Steps: []func(context.Context, *scope) error{r.reconcileCopies},
		Compute: func(s *scope) ctrl.Result {
			result := computeStatus(s)
			s.img.Status.ObservedGeneration = s.img.Generation
			return result
		},
		Status: func(img *v1alpha1.ClusterImage) any { return img.Status },
	}.Run(ctx, r.Client, req.NamespacedName, &v1alpha1.ClusterImage{})
}

// classes are the StorageClasses that get a copy: spec.storageClassNames,
// else the cluster default; a missing one (storage.ResolveClass's
// StorageClassNotFound failure) is an invalid scope.
func (r *Reconciler) classes(ctx context.Context, s *scope) ([]string, error) {
	names := s.img.Spec.StorageClassNames
	if len(names) == 0 {
		sc, err := storage.ResolveClass(ctx, r.Client, "")
		if classNotFound(err) {
			s.invalidReason, s.invalid = v1alpha1.ReasonStorageClassNotFound, "the cluster has no default StorageClass: name the classes in spec.storageClassNames"
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []string{sc.Name}, nil
	}
	for _, n := range names {
		_, err := storage.ResolveClass(ctx, r.Client, n)
		if classNotFound(err) {
			s.invalidReason, s.invalid = v1alpha1.ReasonStorageClassNotFound, fmt.Sprintf("StorageClass %s of spec.storageClassNames not found", n)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return names, nil
}

// classNotFound reports whether err is storage.ResolveClass's failure for
// a class that does not exist (a named one, or no default).
func classNotFound(err error) bool {
	f, ok := apply.AsFailure(err)
	return ok && f.Reason == storage.ReasonStorageClassNotFound
}

// reconcileCopies applies the golden objects of every class, deletes
// those of classes no longer listed, and observes each copy.
func (r *Reconciler) reconcileCopies(ctx context.Context, s *scope) error {
	kind, err := storage.SourceKind(s.img.Spec.Source)
	if err != nil || (kind != storage.KindHTTP && kind != storage.KindRegistry) {
		s.invalidReason, s.invalid = v1alpha1.ReasonInvalidImage, fmt.Sprintf("spec.source %q is not an http(s) URL or a registry image", s.img.Spec.Source)
		return nil
	}
	if err := r.Reader.Get(ctx, client.ObjectKey{Name: r.Namespace}, &corev1.Namespace{}); err != nil {
		if apierrors.IsNotFound(err) {
			s.invalidReason, s.invalid = reasonCatalogNamespaceMissing, fmt.Sprintf("the image catalog namespace %s does not exist: create it (the operator's --image-catalog-namespace)", r.Namespace)
			return nil
		}
		return err
	}
	classes, err := r.classes(ctx, s)
	if err != nil || s.invalid != "" {
		return err
	}
	owner, err := apply.OwnerWithKind(s.img, r.Client.Scheme())
	if err != nil {
		return err
	}
	var wanted []string
	for _, class := range classes {
		name := catalog.DataSourceName(s.img.Name, class)
		wanted = append(wanted, name)
		var cp v1alpha1.ClusterImageCopy
		if s.img.Spec.Schedule != "" {
			cp, err = r.reconcileCron(ctx, owner, name, class)
		} else {
			cp, err = r.reconcileImport(ctx, owner, name, class, kind)
		}
		conflict := apply.ConflictFailure(err)
		switch {
		case meta.IsNoMatchError(err):
			s.cdiMissing = true
			return nil
		case conflict != nil:
			s.conflict = conflict
			return nil
		case err != nil:
			return err
		}
		s.copies = append(s.copies, cp)
	}
	return r.deleteUnwanted(ctx, s.img, wanted)
}

// labels are the golden objects' labels: managed by Wukong, owned by the
// image.
func labels(img client.Object) map[string]string {
	l := identity.Wukong.ManagedByLabels()
	l[identity.Wukong.Key(keyImage)] = img.GetName()
	return l
}

func objectMeta(owner client.Object, ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(owner),
		OwnerReferences: []metav1.OwnerReference{apply.ControllerRef(owner)}}
}

// storageSpec is a golden copy's spec.storage: the image's size in class.
func storageSpec(img *v1alpha1.ClusterImage, class string) *cdiv1.StorageSpec {
	return &cdiv1.StorageSpec{
		StorageClassName: &class,
		Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: img.Spec.Size.DeepCopy()}},
	}
}

// importSource is the DataVolume source of the image.
func importSource(src string, kind storage.Kind) *cdiv1.DataVolumeSource {
	if kind == storage.KindHTTP {
		return &cdiv1.DataVolumeSource{HTTP: &cdiv1.DataVolumeSourceHTTP{URL: src}}
	}
	u := storage.RegistryURL(src)
	return &cdiv1.DataVolumeSource{Registry: &cdiv1.DataVolumeSourceRegistry{URL: &u}}
}

// buildImport returns the golden DataVolume and DataSource of an image
// imported once into class (see the package doc). owner must carry its
// apiVersion and kind.
func buildImport(owner *v1alpha1.ClusterImage, ns, name, class string, kind storage.Kind) (*cdiv1.DataVolume, *cdiv1.DataSource) {
	dv := &cdiv1.DataVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume"},
		ObjectMeta: objectMeta(owner, ns, name),
		Spec:       cdiv1.DataVolumeSpec{Source: importSource(owner.Spec.Source, kind), Storage: storageSpec(owner, class)},
	}
	dv.Annotations = map[string]string{annImmediateBinding: "true"}
	ds := &cdiv1.DataSource{
		TypeMeta:   metav1.TypeMeta{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataSource"},
		ObjectMeta: objectMeta(owner, ns, name),
		Spec:       cdiv1.DataSourceSpec{Source: cdiv1.DataSourceSource{PVC: &cdiv1.DataVolumeSourcePVC{Namespace: ns, Name: name}}},
	}
	return dv, ds
}

// buildCron returns the golden DataImportCron of a registry image
// re-imported on its schedule into class (see the package doc).
func buildCron(owner *v1alpha1.ClusterImage, ns, name, class string) *cdiv1.DataImportCron {
	gc, retain := cdiv1.DataImportCronGarbageCollectOutdated, cdiv1.DataImportCronRetainNone
	u := storage.RegistryURL(owner.Spec.Source)
	return &cdiv1.DataImportCron{
		TypeMeta:   metav1.TypeMeta{APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataImportCron"},
		ObjectMeta: objectMeta(owner, ns, name),
		Spec: cdiv1.DataImportCronSpec{
			Template: cdiv1.DataVolume{Spec: cdiv1.DataVolumeSpec{
				Source:  &cdiv1.DataVolumeSource{Registry: &cdiv1.DataVolumeSourceRegistry{URL: &u}},
				Storage: storageSpec(owner, class),
			}},
			Schedule:          owner.Spec.Schedule,
			GarbageCollect:    &gc,
			ImportsToKeep:     owner.Spec.ImportsToKeep,
			ManagedDataSource: name,
			RetentionPolicy:   &retain,
		},
	}
}

// reconcileImport applies the DataVolume and DataSource of a copy imported
// once and observes them.
func (r *Reconciler) reconcileImport(ctx context.Context, owner client.Object, name, class string, kind storage.Kind) (v1alpha1.ClusterImageCopy, error) {
	img := owner.(*v1alpha1.ClusterImage)
	cp := v1alpha1.ClusterImageCopy{StorageClassName: class, DataSourceName: name}
	dv, ds := buildImport(img, r.Namespace, name, class, kind)
	if _, err := apply.Apply(ctx, r.applier(), dv, identity.Wukong); err != nil {
		return cp, err
	}
	if _, err := apply.Apply(ctx, r.applier(), ds, identity.Wukong); err != nil {
		return cp, err
	}
	observeDataVolume(&cp, dv)
	if dv.Status.Phase == cdiv1.Succeeded {
		for _, c := range dv.Status.Conditions {
			if c.Type == cdiv1.DataVolumeReady && c.Status == corev1.ConditionTrue {
				cp.LastImportTime = &metav1.Time{Time: c.LastTransitionTime.Time}
			}
		}
	}
	return cp, r.observeDataSource(ctx, &cp, ds)
}

// reconcileCron applies the DataImportCron of a scheduled copy and
// observes it, its current import and the DataSource CDI manages.
func (r *Reconciler) reconcileCron(ctx context.Context, owner client.Object, name, class string) (v1alpha1.ClusterImageCopy, error) {
	img := owner.(*v1alpha1.ClusterImage)
	cp := v1alpha1.ClusterImageCopy{StorageClassName: class, DataSourceName: name}
	cron := buildCron(img, r.Namespace, name, class)
	if _, err := apply.Apply(ctx, r.applier(), cron, identity.Wukong); err != nil {
		return cp, err
	}
	cp.LastImportTime = cron.Status.LastImportTimestamp
	if imports := cron.Status.CurrentImports; len(imports) > 0 {
		dv := &cdiv1.DataVolume{}
		if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: imports[0].DataVolumeName}, dv); err == nil {
			observeDataVolume(&cp, dv)
		} else if !apierrors.IsNotFound(err) {
			return cp, err
		}
	}
	ds := &cdiv1.DataSource{}
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			cp.Message = "CDI has not created the DataSource of the DataImportCron yet"
			return cp, nil
		}
		return cp, err
	}
	return cp, r.observeDataSource(ctx, &cp, ds)
}

// applier is the client apply.Apply reads and writes the catalog
// namespace with: writes through Client, reads from the API server.
func (r *Reconciler) applier() client.Client {
	return readThrough{Client: r.Client, reader: r.Reader}
}

// readThrough is a client whose reads go to reader.
type readThrough struct {
	client.Client
	reader client.Reader
}

func (c readThrough) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return c.reader.Get(ctx, key, obj, opts...)
}

// observeDataVolume copies an import's phase and progress.
func observeDataVolume(cp *v1alpha1.ClusterImageCopy, dv *cdiv1.DataVolume) {
	cp.Phase = string(dv.Status.Phase)
	if p := string(dv.Status.Progress); p != "N/A" {
		cp.Progress = p
	}
	for _, c := range dv.Status.Conditions {
		if c.Type == cdiv1.DataVolumeRunning && c.Status == corev1.ConditionFalse && c.Reason != "" && c.Reason != "Completed" {
			cp.Message = c.Message
			if cp.Message == "" {
				cp.Message = c.Reason
			}
		}
	}
}

// observeDataSource reads the DataSource's Ready condition (CDI's
// DataSource controller) and the capacity of the claim it points at.
func (r *Reconciler) observeDataSource(ctx context.Context, cp *v1alpha1.ClusterImageCopy, ds *cdiv1.DataSource) error {
	for _, c := range ds.Status.Conditions {
		if c.Type == cdiv1.DataSourceReady {
			cp.Ready = c.Status == corev1.ConditionTrue
			if !cp.Ready && cp.Message == "" {
				cp.Message = c.Message
			}
		}
	}
	if cp.Ready {
		cp.Message = ""
	}
	src := ds.Status.Source.PVC
	if src == nil {
		src = ds.Spec.Source.PVC
	}
	if src == nil {
		return nil
	}
	ns := src.Namespace
	if ns == "" {
		ns = ds.Namespace
	}
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: src.Name}, pvc); err != nil {
		return client.IgnoreNotFound(err)
	}
	if q, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok {
		cp.Size = q.String()
	}
	return nil
}

// deleteUnwanted deletes the golden objects of the image in the catalog
// namespace whose name is not wanted (a class removed from
// storageClassNames).
func (r *Reconciler) deleteUnwanted(ctx context.Context, img *v1alpha1.ClusterImage, wanted []string) error {
	sel := client.MatchingLabels{identity.Wukong.Key(keyImage): img.Name}
	lists := []client.ObjectList{&cdiv1.DataVolumeList{}, &cdiv1.DataSourceList{}, &cdiv1.DataImportCronList{}}
	for _, l := range lists {
		if err := r.Reader.List(ctx, l, client.InNamespace(r.Namespace), sel); err != nil {
			return err
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return err
		}
		for _, it := range items {
			o, ok := it.(client.Object)
			if !ok || slices.Contains(wanted, o.GetName()) || !controlledBy(o, img) {
				continue
			}
			if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	return nil
}

func controlledBy(o client.Object, img *v1alpha1.ClusterImage) bool {
	ref := metav1.GetControllerOfNoCopy(o)
	return ref != nil && ref.UID == img.UID
}

// computeStatus sets the ClusterImage's status from the scope and returns
// the requeue its state needs. It reads nothing but the scope.
func computeStatus(s *scope) ctrl.Result {
	img := s.img
	img.Status.Copies = s.copies
	stalled := func(reason, msg string) ctrl.Result {
		conditions.MarkFalse(img, v1alpha1.ReadyCondition, reason, "%s", msg)
		conditions.MarkStalled(img, reason, "%s", msg)
		return ctrl.Result{RequeueAfter: stalledRetry}
	}
	switch {
	case s.invalid != "":
		img.Status.Copies = nil
		return stalled(s.invalidReason, s.invalid)
	case s.cdiMissing:
		img.Status.Copies = nil
		return stalled(v1alpha1.ReasonCDIMissing, "CDI is not installed: DataVolume, DataSource or DataImportCron (cdi.kubevirt.io/v1beta1) is not served")
	case s.conflict != nil && s.conflict.Reason == apply.ReasonPredecessor:
		conditions.MarkFalse(img, v1alpha1.ReadyCondition, v1alpha1.ReasonWaitingForPredecessor, "waiting for a deleted ClusterImage's golden objects to go: %s", s.conflict.Error())
		conditions.MarkReconciling(img, v1alpha1.ReasonWaitingForPredecessor, "%s", conditions.GetMessage(img, v1alpha1.ReadyCondition))
		return ctrl.Result{RequeueAfter: s.conflict.RequeueAfter}
	case s.conflict != nil:
		return stalled(v1alpha1.ReasonNameConflict, s.conflict.Error()+": remove it or rename this ClusterImage")
	}
	var pending []string
	for _, cp := range s.copies {
		if !cp.Ready {
			pending = append(pending, cp.StorageClassName)
		}
	}
	if len(pending) == 0 {
		conditions.MarkTrue(img, v1alpha1.ReadyCondition, v1alpha1.ReasonGoldenCopyReady, "golden copies ready in %d StorageClass(es)", len(s.copies))
		conditions.ClearProgress(img)
		return ctrl.Result{RequeueAfter: readyPoll}
	}
	conditions.MarkFalse(img, v1alpha1.ReadyCondition, v1alpha1.ReasonGoldenCopyPending, "importing the golden copy in StorageClass %v", pending)
	conditions.MarkReconciling(img, v1alpha1.ReasonGoldenCopyPending, "%s", conditions.GetMessage(img, v1alpha1.ReadyCondition))
	return ctrl.Result{RequeueAfter: importPoll}
}

// SetupWithManager registers the controller: its own objects and, where
// CDI is served, the golden DataVolumes it controls (events arrive when
// the manager's cache holds the catalog namespace; progress is polled
// otherwise).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, installed func(schema.GroupVersionKind) bool) error {
	b := ctrl.NewControllerManagedBy(mgr).Named("clusterimage").For(&v1alpha1.ClusterImage{})
	if installed == nil || installed(cdiv1.SchemeGroupVersion.WithKind("DataVolume")) {
		b = b.Owns(&cdiv1.DataVolume{})
	}
	return b.Complete(r)
}

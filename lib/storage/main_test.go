package storage

import (
	"context"
	"testing"

	"github.com/novasphere/wukong/testenv"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/apply"
)

// testID is the identity the tests write under: Wukong's, so the assertions
// read as the operator's objects do.
var testID = apply.Identity{FieldManager: "wukong", Domain: "vm.novasphere.dev", OwnerLabel: "vm.novasphere.dev/wukong", NamePrefix: "wukong-"}

// env is the one API server of this package's integration tests, with the
// real CRDs from test/crds.
var env *testenv.Env

func newScheme() *runtime.Scheme { return testenv.Scheme(cdiv1.AddToScheme) }

func TestMain(m *testing.M) {
	testenv.Main(m, newScheme(), func(e *testenv.Env) { env = e })
}

// fixture is one test's namespace and owner on env (or another env).
type fixture struct {
	t     *testing.T
	ctx   context.Context
	c     client.Client
	ns    string
	owner *corev1.ConfigMap
}

func newFixture(t *testing.T, c client.Client) *fixture {
	// The owner has no TypeMeta: Reconcile takes its kind from the scheme.
	owner := testenv.Owner(t, c, "storage-", "vm")
	return &fixture{t: t, ctx: context.Background(), c: c, ns: owner.Namespace, owner: owner}
}

// class creates a StorageClass removed at the end of the test (classes are
// cluster-scoped and shared by all tests of the package).
func (f *fixture) class(name string, wffc, expand, isDefault bool) *storagev1.StorageClass {
	f.t.Helper()
	mode := storagev1.VolumeBindingImmediate
	if wffc {
		mode = storagev1.VolumeBindingWaitForFirstConsumer
	}
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: name},
		Provisioner:          "csi.example.org",
		VolumeBindingMode:    &mode,
		AllowVolumeExpansion: &expand,
	}
	if isDefault {
		sc.Annotations = map[string]string{AnnotationDefaultClass: "true"}
	}
	require.NoError(f.t, f.c.Create(f.ctx, sc))
	f.t.Cleanup(func() { _ = f.c.Delete(context.Background(), sc) })
	return sc
}

func (f *fixture) key(disk string) client.ObjectKey {
	return client.ObjectKey{Namespace: f.ns, Name: ClaimName("vm", disk)}
}

func (f *fixture) reconcile(disks ...Disk) ([]Observation, error) {
	return Reconcile(f.ctx, f.c, testID, f.owner, disks)
}

func (f *fixture) pvc(disk string) *corev1.PersistentVolumeClaim {
	f.t.Helper()
	p := &corev1.PersistentVolumeClaim{}
	require.NoError(f.t, f.c.Get(f.ctx, f.key(disk), p))
	return p
}

func (f *fixture) dv(disk string) *cdiv1.DataVolume {
	f.t.Helper()
	d := &cdiv1.DataVolume{}
	require.NoError(f.t, f.c.Get(f.ctx, f.key(disk), d))
	return d
}

// bind plays the PV controller: volumeName, then phase Bound with capacity.
func (f *fixture) bind(disk, capacity string) {
	f.t.Helper()
	p := f.pvc(disk)
	p.Spec.VolumeName = "pv-" + f.ns + "-" + disk
	require.NoError(f.t, f.c.Update(f.ctx, p))
	p.Status.Phase = corev1.ClaimBound
	p.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(capacity)}
	require.NoError(f.t, f.c.Status().Update(f.ctx, p))
}

// cdiClaim is a DataVolume's PVC as CDI makes it: same name, CDI's label,
// controlled by the DataVolume, and a request that includes the file
// system overhead (request).
func (f *fixture) cdiClaim(disk, class, request string) *corev1.PersistentVolumeClaim {
	f.t.Helper()
	dv := f.dv(disk)
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: dv.Name, Namespace: f.ns, Labels: map[string]string{cdiLabelKey: cdiLabelValue}, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: cdiv1.SchemeGroupVersion.String(), Kind: "DataVolume", Name: dv.Name, UID: dv.UID, Controller: ptr(true)}}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(request)}},
		},
	}
}

// createCDIClaim creates a DataVolume's PVC as CDI does (cdiClaim), with
// none of the DataVolume's annotations.
func (f *fixture) createCDIClaim(disk, class, request string) {
	f.t.Helper()
	require.NoError(f.t, f.c.Create(f.ctx, f.cdiClaim(disk, class, request)))
}

// imageDiskFixture is a fixture with an expandable StorageClass class and
// the 10Gi image disk root on it, reconciled once (its DataVolume written).
func imageDiskFixture(t *testing.T, class string) (*fixture, Disk) {
	t.Helper()
	f := newFixture(t, env.Client)
	f.class(class, false, true, false)
	disk := Disk{Name: "root", Size: gi("10Gi"), StorageClassName: class, Source: "https://example.org/f.qcow2"}
	_, err := f.reconcile(disk)
	require.NoError(t, err)
	return f, disk
}

func (f *fixture) setDVStatus(disk string, st cdiv1.DataVolumeStatus) {
	f.t.Helper()
	d := f.dv(disk)
	d.Status = st
	require.NoError(f.t, f.c.Status().Update(f.ctx, d))
}

func gi(s string) resource.Quantity { return resource.MustParse(s) }

// foreignClaim creates a 1Gi ReadWriteOnce PVC named like disk's claim
// that someone else wrote (label team: data, none of Wukong's) and returns
// it as created.
func (f *fixture) foreignClaim(disk string) *corev1.PersistentVolumeClaim {
	f.t.Helper()
	p := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: f.key(disk).Name, Namespace: f.ns, Labels: map[string]string{"team": "data"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: gi("1Gi")}},
		},
	}
	require.NoError(f.t, f.c.Create(f.ctx, p))
	return p
}

// plainClaims writes the plain PVCs of blank disks as versions before blank
// DataVolumes did (BuildPVC under testID, with the class the first write
// named).
func (f *fixture) plainClaims(disks ...Disk) {
	f.t.Helper()
	owner := f.owner.DeepCopy()
	owner.APIVersion, owner.Kind = "v1", "ConfigMap"
	for _, d := range disks {
		_, err := apply.Apply(f.ctx, f.c, BuildPVC(testID, owner, d), testID)
		require.NoError(f.t, err)
	}
}

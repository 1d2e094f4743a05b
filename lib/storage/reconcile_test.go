package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestReconcileCreatesObjectsIdempotently(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("idem-std", false, false, false)
	disks := []Disk{
		{Name: "data", Size: gi("2048Mi"), StorageClassName: "idem-std"},
		{Name: "root", Size: gi("10Gi"), StorageClassName: "idem-std", Source: "https://example.org/fedora.qcow2"},
		{Name: "img", Size: gi("5Gi"), StorageClassName: "idem-std", Source: "quay.io/containerdisks/fedora:40"},
	}
	obs, err := f.reconcile(disks...)
	require.NoError(t, err)
	require.Len(t, obs, 3)
	for i, want := range []struct {
		name string
		dv   bool
	}{{"data", true}, {"root", true}, {"img", true}} {
		assert.Equal(t, want.name, obs[i].Name)
		assert.Equal(t, "vm-"+want.name, obs[i].ClaimName)
		assert.Equal(t, want.dv, obs[i].DataVolume)
		assert.Equal(t, PhasePending, obs[i].Phase)
		assert.Equal(t, "idem-std", obs[i].StorageClassName)
	}

	// A blank disk is a DataVolume with a blank source and spec.storage:
	// CDI takes access and volume modes from the StorageProfile.
	data := f.dv("data")
	require.NotNil(t, data.Spec.Source.Blank)
	require.NotNil(t, data.Spec.Storage)
	assert.Equal(t, "2Gi", data.Spec.Storage.Resources.Requests.Storage().String())
	assert.Empty(t, data.Spec.Storage.AccessModes)
	assert.Equal(t, map[string]string{apply.LabelManagedBy: "wukong", testID.OwnerLabelKey(): "vm", testID.Key(KeyDisk): "data"}, data.Labels)
	require.Len(t, data.OwnerReferences, 1)
	assert.Equal(t, "ConfigMap", data.OwnerReferences[0].Kind)
	assert.Equal(t, f.owner.UID, data.OwnerReferences[0].UID)
	assert.True(t, *data.OwnerReferences[0].Controller)
	assert.False(t, obs[0].PlainClaim)
	_, err = apply.GetOptional(f.ctx, f.c, f.key("data"), &corev1.PersistentVolumeClaim{})
	require.NoError(t, err)

	root := f.dv("root")
	require.NotNil(t, root.Spec.Source.HTTP)
	assert.Equal(t, "https://example.org/fedora.qcow2", root.Spec.Source.HTTP.URL)
	require.NotNil(t, root.Spec.Storage)
	assert.Equal(t, "10Gi", root.Spec.Storage.Resources.Requests.Storage().String())
	assert.Equal(t, "vm", root.Labels[testID.OwnerLabelKey()])
	img := f.dv("img")
	require.NotNil(t, img.Spec.Source.Registry)
	assert.Equal(t, "docker://quay.io/containerdisks/fedora:40", *img.Spec.Source.Registry.URL)

	rvs := []string{data.ResourceVersion, root.ResourceVersion, img.ResourceVersion}
	obs2, err := f.reconcile(disks...)
	require.NoError(t, err)
	assert.Equal(t, obs, obs2)
	assert.Equal(t, rvs, []string{f.dv("data").ResourceVersion, f.dv("root").ResourceVersion, f.dv("img").ResourceVersion},
		"a second pass with the same input must write nothing")

	// A hand edit of a label is restored.
	d := f.dv("data")
	d.Labels[testID.OwnerLabelKey()] = "someone-else"
	require.NoError(t, f.c.Update(f.ctx, d))
	_, err = f.reconcile(disks...)
	require.NoError(t, err)
	assert.Equal(t, "vm", f.dv("data").Labels[testID.OwnerLabelKey()])
}

// A blank disk whose plain PVC an earlier version wrote (BuildPVC, no
// DataVolume) keeps it: no DataVolume is made over it (CDI would adopt
// the claim), its access modes stay, it still grows.
func TestReconcileKeepsExistingPlainBlankClaim(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("plain-blank", false, true, false)
	disk := Disk{Name: "data", Size: gi("1Gi"), StorageClassName: "plain-blank"}
	f.plainClaims(disk)
	rv := f.pvc("data").ResourceVersion

	obs, err := f.reconcile(disk)
	require.NoError(t, err)
	assert.True(t, obs[0].PlainClaim)
	assert.False(t, obs[0].DataVolume, "the VM refers to the claim, not a DataVolume")
	assert.False(t, obs[0].NoCDI)
	assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, obs[0].AccessModes)
	_, err = apply.GetOptional(f.ctx, f.c, f.key("data"), &cdiv1.DataVolume{})
	require.NoError(t, err)
	dv, _ := apply.GetOptional(f.ctx, f.c, f.key("data"), &cdiv1.DataVolume{})
	assert.Nil(t, dv, "no DataVolume over an existing plain claim")
	assert.Equal(t, rv, f.pvc("data").ResourceVersion, "the plain claim is not rewritten")
}

func TestReconcileObservesDataVolumeAndClaim(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("obs-imm", false, true, false)
	f.class("obs-wffc", true, true, false)
	disks := []Disk{
		{Name: "root", Size: gi("10Gi"), StorageClassName: "obs-imm", Source: "https://example.org/f.qcow2"},
		{Name: "scratch", Size: gi("1Gi"), StorageClassName: "obs-wffc"},
		{Name: "lazy", Size: gi("3Gi"), StorageClassName: "obs-wffc", Source: "docker://fedora:40"},
	}
	_, err := f.reconcile(disks...)
	require.NoError(t, err)
	f.createCDIClaim("root", "obs-imm", "10752Mi")
	f.bind("root", "11Gi")
	f.setDVStatus("root", cdiv1.DataVolumeStatus{Phase: cdiv1.ImportInProgress, Progress: "45.50%"})
	f.setDVStatus("lazy", cdiv1.DataVolumeStatus{Phase: cdiv1.PendingPopulation})
	// A blank disk is a DataVolume too: CDI reports WaitForFirstConsumer
	// while its claim waits for the VM.
	f.setDVStatus("scratch", cdiv1.DataVolumeStatus{Phase: cdiv1.WaitForFirstConsumer})

	obs, err := f.reconcile(disks...)
	require.NoError(t, err)
	assert.Equal(t, PhaseImporting, obs[0].Phase)
	assert.Equal(t, "45.50%", obs[0].Progress)
	assert.True(t, obs[0].Bound)
	assert.Equal(t, "11Gi", obs[0].Capacity.String())
	assert.Equal(t, "10Gi", obs[0].Requested.String(), "the disk size, not the PVC request with overhead")
	assert.False(t, obs[0].ConsumerCanStart(), "immediate class: wait for the import")

	assert.Equal(t, PhaseWaitForFirstConsumer, obs[1].Phase, "blank DataVolume waiting on a WFFC class")
	assert.True(t, obs[1].DataVolume)
	assert.True(t, obs[1].ConsumerCanStart())
	assert.False(t, obs[1].Ready())
	assert.Equal(t, PhaseWaitForFirstConsumer, obs[2].Phase, "PendingPopulation on a WFFC class")
	assert.True(t, obs[2].ConsumerCanStart())

	// Importer failure.
	f.setDVStatus("root", cdiv1.DataVolumeStatus{Phase: cdiv1.ImportInProgress, Progress: "0.00%", RestartCount: 2,
		Conditions: []cdiv1.DataVolumeCondition{{Type: cdiv1.DataVolumeRunning, Status: corev1.ConditionFalse, Reason: "Error",
			Message: "Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found"}}})
	obs, err = f.reconcile(disks...)
	assert.Contains(t, requireStalled(t, err, ReasonImportFailed, "root", "source"), "got 404")
	assert.Equal(t, PhaseFailed, obs[0].Phase)
	assert.Equal(t, "Error", obs[0].Reason)
	assert.Contains(t, obs[0].Message, "got 404")

	// Success, and the PVC resize conditions.
	f.setDVStatus("root", cdiv1.DataVolumeStatus{Phase: cdiv1.Succeeded, Progress: "100.0%"})
	p := f.pvc("root")
	p.Status.Conditions = []corev1.PersistentVolumeClaimCondition{
		{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue},
		{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue},
	}
	require.NoError(t, f.c.Status().Update(f.ctx, p))
	obs, err = f.reconcile(disks...)
	require.NoError(t, err)
	assert.Equal(t, PhaseBound, obs[0].Phase)
	assert.True(t, obs[0].Ready())
	assert.Empty(t, obs[0].Reason)
	assert.True(t, obs[0].Resizing)
	assert.True(t, obs[0].FileSystemResizePending)
}

func TestReconcileExpandsBlankDisk(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("grow-blank", false, true, false)
	disk := Disk{Name: "data", Size: gi("1Gi"), StorageClassName: "grow-blank"}
	f.plainClaims(disk) // as versions before blank DataVolumes wrote it
	_, err := f.reconcile(disk)
	require.NoError(t, err)

	disk.Size = gi("2Gi")
	obs, err := f.reconcile(disk)
	require.NoError(t, err, "growth before binding waits, it is no error")
	assert.Equal(t, ReasonExpansionPendingBind, obs[0].Reason)
	assert.Equal(t, "1Gi", f.pvc("data").Spec.Resources.Requests.Storage().String())

	f.bind("data", "1Gi")
	obs, err = f.reconcile(disk)
	require.NoError(t, err)
	assert.Equal(t, "2Gi", f.pvc("data").Spec.Resources.Requests.Storage().String())
	assert.Equal(t, "2Gi", obs[0].Requested.String())
	assert.Equal(t, "1Gi", obs[0].Capacity.String(), "capacity is what the PVC status says")
	assert.Empty(t, obs[0].Reason)

	rv := f.pvc("data").ResourceVersion
	_, err = f.reconcile(disk)
	require.NoError(t, err)
	assert.Equal(t, rv, f.pvc("data").ResourceVersion)
}

func TestReconcileExpandsDataVolumeClaimOnly(t *testing.T) {
	f, disk := imageDiskFixture(t, "grow-dv")
	f.createCDIClaim("root", "grow-dv", "10752Mi") // 10Gi plus CDI's overhead
	f.bind("root", "10752Mi")
	f.setDVStatus("root", cdiv1.DataVolumeStatus{Phase: cdiv1.Succeeded, Progress: "100.0%"})
	dvRV := f.dv("root").ResourceVersion

	disk.Size = gi("12Gi")
	obs, err := f.reconcile(disk)
	require.NoError(t, err)
	pvc := f.pvc("root")
	assert.Equal(t, "12800Mi", pvc.Spec.Resources.Requests.Storage().String(), "grown by 2Gi, overhead kept")
	assert.Equal(t, "12Gi", pvc.Annotations[testID.Key(KeyDiskSize)])
	dv := f.dv("root")
	assert.Equal(t, "10Gi", dv.Spec.Storage.Resources.Requests.Storage().String(), "DataVolume spec never changes")
	assert.Equal(t, dvRV, dv.ResourceVersion)
	assert.Equal(t, "12Gi", obs[0].Requested.String())
	assert.Equal(t, PhaseBound, obs[0].Phase)

	_, err = f.reconcile(disk)
	require.NoError(t, err)
	assert.Equal(t, pvc.ResourceVersion, f.pvc("root").ResourceVersion)
	assert.Equal(t, dvRV, f.dv("root").ResourceVersion)

	// Shrinking below the grown size is refused.
	disk.Size = gi("11Gi")
	obs, err = f.reconcile(disk)
	var shrink *ShrinkError
	require.ErrorAs(t, err, &shrink)
	assert.Equal(t, "12Gi", shrink.From.String())
	assert.Equal(t, ReasonShrinkRefused, obs[0].Reason)
	assert.Equal(t, "12800Mi", f.pvc("root").Spec.Resources.Requests.Storage().String())
}

func TestReconcileRefusesShrinkAndNonExpandableClass(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("refuse-exp", false, true, false)
	f.class("refuse-fixed", false, false, false)
	a := Disk{Name: "a", Size: gi("2Gi"), StorageClassName: "refuse-exp"}
	b := Disk{Name: "b", Size: gi("1Gi"), StorageClassName: "refuse-fixed"}
	f.plainClaims(a, b)
	_, err := f.reconcile(a, b)
	require.NoError(t, err)
	f.bind("a", "2Gi")
	f.bind("b", "1Gi")

	a.Size, b.Size = gi("1Gi"), gi("2Gi")
	c := Disk{Name: "c", Size: gi("1Gi"), StorageClassName: "refuse-exp"}
	obs, err := f.reconcile(a, b, c)
	require.Error(t, err)
	var shrink *ShrinkError
	require.ErrorAs(t, err, &shrink)
	assert.Equal(t, ShrinkError{Disk: "a", From: gi("2Gi"), To: gi("1Gi")}.Disk, shrink.Disk)
	assert.Equal(t, "2Gi", shrink.From.String())
	assert.Equal(t, "1Gi", shrink.To.String())
	var fixed *NotExpandableError
	require.ErrorAs(t, err, &fixed)
	assert.Equal(t, &NotExpandableError{Disk: "b", StorageClass: "refuse-fixed"}, fixed)

	require.Len(t, obs, 3)
	assert.Equal(t, ReasonShrinkRefused, obs[0].Reason)
	assert.Equal(t, shrink.Error(), obs[0].Message)
	assert.Equal(t, "2Gi", obs[0].Requested.String())
	assert.Equal(t, ReasonExpansionNotAllowed, obs[1].Reason)
	assert.Equal(t, PhaseBound, obs[1].Phase, "the refusal does not hide the facts")
	assert.Empty(t, obs[2].Reason)
	assert.Equal(t, "2Gi", f.pvc("a").Spec.Resources.Requests.Storage().String())
	assert.Equal(t, "1Gi", f.pvc("b").Spec.Resources.Requests.Storage().String())
	f.dv("c") // the other disk was still created
}

func TestReconcileMissingAndDefaultClass(t *testing.T) {
	f := newFixture(t, env.Client)

	_, err := ResolveClass(f.ctx, f.c, "missing-class")
	var nf *ClassNotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "missing-class", nf.Name)
	fl, ok := apply.AsFailure(err)
	require.True(t, ok, "an *apply.Failure")
	assert.Equal(t, &apply.Failure{Reason: ReasonStorageClassNotFound, Stalled: true, Subject: "missing-class", Err: nf}, fl)
	_, err = ResolveClass(f.ctx, f.c, "")
	require.ErrorIs(t, err, ErrNoDefaultClass)
	fl, ok = apply.AsFailure(err)
	require.True(t, ok, "an *apply.Failure")
	assert.Equal(t, &apply.Failure{Reason: ReasonStorageClassNotFound, Stalled: true, Err: ErrNoDefaultClass}, fl)

	f.class("present", false, false, false)
	obs, err := f.reconcile(
		Disk{Name: "a", Size: gi("1Gi"), StorageClassName: "missing-class"},
		Disk{Name: "b", Size: gi("1Gi"), StorageClassName: "present"},
		Disk{Name: "c", Size: gi("1Gi")},
	)
	require.ErrorAs(t, err, &nf)
	require.ErrorIs(t, err, ErrNoDefaultClass)
	require.Len(t, obs, 3)
	assert.Equal(t, ReasonStorageClassNotFound, obs[0].Reason)
	assert.Equal(t, `StorageClass "missing-class" not found`, obs[0].Message)
	assert.Equal(t, ReasonStorageClassNotFound, obs[2].Reason)
	assert.True(t, apierrors.IsNotFound(f.c.Get(f.ctx, f.key("a"), &corev1.PersistentVolumeClaim{})), "not created without its class")
	assert.Empty(t, obs[1].Reason)
	f.dv("b")
	assert.True(t, apierrors.IsNotFound(f.c.Get(f.ctx, f.key("a"), &cdiv1.DataVolume{})), "not created without its class")

	// With a default (WaitForFirstConsumer) class, the classless disk uses
	// it: the DataVolume names no class (CDI takes the default), the
	// observation the resolved one.
	f.class("the-default", true, true, true)
	sc, err := ResolveClass(f.ctx, f.c, "")
	require.NoError(t, err)
	assert.Equal(t, "the-default", sc.Name)
	obs, err = f.reconcile(Disk{Name: "c", Size: gi("1Gi")})
	require.NoError(t, err)
	assert.Equal(t, "the-default", obs[0].StorageClassName)
	c := f.dv("c")
	assert.Nil(t, c.Spec.Storage.StorageClassName)
	f.setDVStatus("c", cdiv1.DataVolumeStatus{Phase: cdiv1.WaitForFirstConsumer})
	obs, err = f.reconcile(Disk{Name: "c", Size: gi("1Gi")})
	require.NoError(t, err)
	assert.Equal(t, PhaseWaitForFirstConsumer, obs[0].Phase)
	assert.True(t, obs[0].ConsumerCanStart())
	rv := f.dv("c").ResourceVersion
	_, err = f.reconcile(Disk{Name: "c", Size: gi("1Gi")})
	require.NoError(t, err)
	assert.Equal(t, rv, f.dv("c").ResourceVersion, "a second pass over a default-class disk wrote")

	// A plain claim (an earlier version's) without a class gets the
	// default's name from its first write, so the next pass writes nothing.
	d := Disk{Name: "d", Size: gi("1Gi")}
	f.plainClaims(d)
	_, err = f.reconcile(d)
	require.NoError(t, err)
	pd := f.pvc("d")
	_, err = f.reconcile(d)
	require.NoError(t, err)
	assert.Equal(t, pd.ResourceVersion, f.pvc("d").ResourceVersion, "a second pass over a plain default-class claim wrote")
}

func TestReconcileInvalidDiskDoesNotStopOthers(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("inv-std", false, false, false)
	obs, err := f.reconcile(
		Disk{Name: "bad", Size: gi("1Gi"), StorageClassName: "inv-std", Source: "ftp://example.org/x.img"},
		Disk{Name: "good", Size: gi("1Gi"), StorageClassName: "inv-std"},
	)
	require.ErrorIs(t, err, ErrInvalidDisk)
	assert.Equal(t, ReasonInvalidDisk, obs[0].Reason)
	assert.Contains(t, obs[0].Message, `unsupported scheme "ftp"`)
	f.dv("good")
}

func TestReconcileWithoutCDI(t *testing.T) {
	bare, err := testenv.Start(newScheme())
	require.NoError(t, err)
	defer func() { require.NoError(t, bare.Stop()) }()
	f := newFixture(t, bare.Client)
	f.class("nocdi", false, false, false)

	obs, err := f.reconcile(
		Disk{Name: "root", Size: gi("10Gi"), StorageClassName: "nocdi", Source: "quay.io/containerdisks/fedora:40"},
		Disk{Name: "data", Size: gi("1Gi"), StorageClassName: "nocdi"},
	)
	require.ErrorIs(t, err, ErrCDINotInstalled)
	assert.Equal(t, ReasonCDINotInstalled, obs[0].Reason)
	assert.True(t, obs[0].DataVolume)
	assert.Empty(t, obs[1].Reason)
	assert.Equal(t, PhasePending, obs[1].Phase)
	// Without CDI a blank disk is still written, as a plain claim, and says so.
	assert.False(t, obs[1].DataVolume)
	assert.True(t, obs[1].PlainClaim)
	assert.True(t, obs[1].NoCDI)
	assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, f.pvc("data").Spec.AccessModes)

	// With WithCache, the image disks' claims are not read, and whether CDI
	// is served is asked once.
	counting := &countingClient{Client: f.c, gets: map[string]int{}}
	cache := &countingReader{Reader: labelledCache{f.c}, gets: map[string]int{}}
	images := []Disk{
		{Name: "img1", Size: gi("1Gi"), StorageClassName: "nocdi", Source: "quay.io/containerdisks/fedora:40"},
		{Name: "img2", Size: gi("1Gi"), StorageClassName: "nocdi", Source: "https://example.org/f.qcow2"},
		{Name: "img3", Size: gi("1Gi"), StorageClassName: "nocdi", Source: "https://example.org/g.qcow2"},
	}
	obs, err = Reconcile(f.ctx, counting, testID, f.owner, images, WithCache(cache))
	require.ErrorIs(t, err, ErrCDINotInstalled)
	for _, o := range obs {
		assert.Equal(t, ReasonCDINotInstalled, o.Reason, o.Name)
		assert.True(t, o.DataVolume, o.Name)
	}
	assert.Empty(t, counting.gets, "nothing read through c")
	assert.Equal(t, map[string]int{"*v1beta1.DataVolume": 1}, cache.gets, "the cache asked once")
}

// countingReader counts the Gets that reach it, by object type.
type countingReader struct {
	client.Reader
	gets map[string]int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets[fmt.Sprintf("%T", obj)]++
	return c.Reader.Get(ctx, key, obj, opts...)
}

func TestReconcileRequiresNamespacedOwner(t *testing.T) {
	owner := &corev1.Namespace{}
	owner.Name = "cluster-scoped"
	_, err := Reconcile(context.Background(), env.Client, testID, owner, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), errOwner)
	assert.False(t, errors.Is(err, ErrInvalidDisk))
}

// TestReconcileNeverAdopts: a PVC or DataVolume named like a disk's claim
// that the owner did not create is left untouched and reported; no
// DataVolume is created over a foreign PVC (CDI would adopt it).
func TestReconcileNeverAdopts(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("na-imm", false, true, false)
	blank := f.foreignClaim("data")
	image := f.foreignClaim("root")
	obs, err := f.reconcile(
		Disk{Name: "data", Size: gi("5Gi"), StorageClassName: "na-imm"},
		Disk{Name: "root", Size: gi("5Gi"), StorageClassName: "na-imm", Source: "https://example.org/f.qcow2"},
	)
	var conflict *apply.ConflictError
	require.ErrorAs(t, err, &conflict)
	for i, o := range obs {
		assert.Equal(t, ReasonNameConflict, o.Reason, o.Name)
		assert.Contains(t, o.Message, "PersistentVolumeClaim "+f.ns+"/"+[]string{"vm-data", "vm-root"}[i])
	}
	for _, p := range []*corev1.PersistentVolumeClaim{blank, image} {
		live := &corev1.PersistentVolumeClaim{}
		require.NoError(t, f.c.Get(f.ctx, client.ObjectKeyFromObject(p), live))
		assert.Equal(t, p.ResourceVersion, live.ResourceVersion, "%s untouched", p.Name)
		assert.Empty(t, live.OwnerReferences)
	}
	err = f.c.Get(f.ctx, f.key("root"), &cdiv1.DataVolume{})
	assert.True(t, apierrors.IsNotFound(err), "no DataVolume over a foreign PVC: %v", err)
}

// countingClient counts the Gets that reach it, by object type.
type countingClient struct {
	client.Client
	gets map[string]int
}

func (c *countingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets[fmt.Sprintf("%T", obj)]++
	return c.Client.Get(ctx, key, obj, opts...)
}

// labelledCache plays an informer cache filtered on Wukong's managed-by
// label: it finds only the objects carrying it.
type labelledCache struct{ client.Reader }

func (c labelledCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Reader.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if obj.GetLabels()[apply.LabelManagedBy] != testID.FieldManager {
		return apierrors.NewNotFound(corev1.Resource("cached"), key.Name)
	}
	return nil
}

// TestReconcileWithCacheSkipsReadsWithoutClass: with WithCache, disks whose
// class is missing and which have nothing in the cache cost no claim or
// DataVolume read, and their class is read once; a disk with a claim in the
// cache goes the usual way.
func TestReconcileWithCacheSkipsReadsWithoutClass(t *testing.T) {
	f := newFixture(t, env.Client)
	counting := &countingClient{Client: f.c, gets: map[string]int{}}
	cache := labelledCache{f.c}
	var disks []Disk
	for i := range 8 {
		d := Disk{Name: fmt.Sprintf("d%d", i), Size: gi("1Gi"), StorageClassName: "wc-missing"}
		if i%2 == 1 {
			d.Source = "https://example.org/f.qcow2"
		}
		disks = append(disks, d)
	}
	// A foreign claim under a disk's name is not read either: nothing is
	// written, and the conflict shows once the class exists.
	f.foreignClaim("d0")
	obs, err := Reconcile(f.ctx, counting, testID, f.owner, disks, WithCache(cache))
	var nf *ClassNotFoundError
	require.ErrorAs(t, err, &nf)
	require.Len(t, obs, len(disks))
	for i, o := range obs {
		assert.Equal(t, ReasonStorageClassNotFound, o.Reason, o.Name)
		assert.Equal(t, `StorageClass "wc-missing" not found`, o.Message, o.Name)
		assert.Equal(t, "vm-"+disks[i].Name, o.ClaimName)
		assert.Equal(t, i%2 == 1, o.DataVolume, o.Name)
	}
	assert.Equal(t, map[string]int{"*v1.StorageClass": 1}, counting.gets, "reads through c: the class once, no claim or DataVolume")

	// Without the cache, every disk's claim (and DataVolume) is read.
	counting.gets = map[string]int{}
	obs2, err := Reconcile(f.ctx, counting, testID, f.owner, disks)
	require.Error(t, err)
	assert.Equal(t, 8, counting.gets["*v1.PersistentVolumeClaim"])
	// The four image disks' DataVolumes, and the blank disks' but d0's,
	// whose (foreign, plain) claim is kept as a claim.
	assert.Equal(t, 7, counting.gets["*v1beta1.DataVolume"])
	assert.Equal(t, 1, counting.gets["*v1.StorageClass"], "a class named by several disks is read once")
	assert.Equal(t, ReasonNameConflict, obs2[0].Reason, "the live read finds the foreign claim")

	// A disk whose claim the cache holds is reconciled as usual, even when
	// its class is gone.
	f.class("wc-tmp", false, false, false)
	kept := Disk{Name: "kept", Size: gi("1Gi"), StorageClassName: "wc-tmp"}
	_, err = Reconcile(f.ctx, counting, testID, f.owner, []Disk{kept}, WithCache(cache))
	require.NoError(t, err)
	require.NoError(t, f.c.Delete(f.ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "wc-tmp"}}))
	counting.gets = map[string]int{}
	obs, err = Reconcile(f.ctx, counting, testID, f.owner, []Disk{kept}, WithCache(cache))
	require.NoError(t, err)
	assert.Positive(t, counting.gets["*v1.PersistentVolumeClaim"], "the claim is read")
	assert.Equal(t, "wc-tmp", obs[0].StorageClassName)
	assert.Empty(t, obs[0].Reason)
}

// TestReconcileClonesIdempotently: clone disks are DataVolumes with a pvc
// or snapshot source in the owner's namespace, written once; a second pass
// writes nothing, and CDI's clone type on the DataVolume is observed.
func TestReconcileClonesIdempotently(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("clone-std", false, false, false)
	disks := []Disk{
		{Name: "root", Size: gi("3Gi"), StorageClassName: "clone-std", Clone: &CloneSource{ClaimName: "src-root"}},
		{Name: "data", Size: gi("1Gi"), StorageClassName: "clone-std", Clone: &CloneSource{SnapshotName: "snap-data"}},
	}
	obs, err := f.reconcile(disks...)
	require.NoError(t, err)
	require.Len(t, obs, 2)
	root, data := f.dv("root"), f.dv("data")
	require.NotNil(t, root.Spec.Source.PVC)
	assert.Equal(t, cdiv1.DataVolumeSourcePVC{Namespace: f.owner.Namespace, Name: "src-root"}, *root.Spec.Source.PVC)
	require.NotNil(t, data.Spec.Source.Snapshot)
	assert.Equal(t, cdiv1.DataVolumeSourceSnapshot{Namespace: f.owner.Namespace, Name: "snap-data"}, *data.Spec.Source.Snapshot)
	assert.Equal(t, "3Gi", root.Spec.Storage.Resources.Requests.Storage().String())
	assert.True(t, obs[0].DataVolume)

	// CDI records its strategy and has not started the copy.
	root.Annotations[AnnCloneType] = "csi-clone" // beside the apply hash
	require.NoError(t, f.c.Update(f.ctx, root))
	root = f.dv("root")
	root.Status.Phase = cdiv1.CloneScheduled
	require.NoError(t, f.c.Status().Update(f.ctx, root))
	rvs := []string{f.dv("root").ResourceVersion, f.dv("data").ResourceVersion}
	obs, err = f.reconcile(disks...)
	require.NoError(t, err)
	assert.Equal(t, rvs, []string{f.dv("root").ResourceVersion, f.dv("data").ResourceVersion}, "a second pass writes nothing")
	assert.Equal(t, "csi-clone", obs[0].CloneType)
	assert.True(t, obs[0].CloneWaiting)
	assert.Equal(t, PhaseImporting, obs[0].Phase)
}

// TestReconcileLeavesPrePopulatedDataVolume: a finished blank DataVolume
// whose claim is gone is written again, unless it is marked
// cdi.kubevirt.io/storage.prePopulated (KubeVirt's in-place restore: the
// claim is being recreated from a snapshot); then it is kept.
func TestReconcileLeavesPrePopulatedDataVolume(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("prepop", false, true, false)
	disks := []Disk{{Name: "data", Size: gi("1Gi"), StorageClassName: "prepop"}, {Name: "other", Size: gi("1Gi"), StorageClassName: "prepop"}}
	_, err := f.reconcile(disks...)
	require.NoError(t, err)
	for _, d := range disks {
		f.setDVStatus(d.Name, cdiv1.DataVolumeStatus{Phase: cdiv1.Succeeded, Progress: "100.0%"})
	}
	marked := f.dv("data")
	marked.Annotations[cdiv1.AnnPrePopulated] = "data"
	require.NoError(t, env.Client.Update(context.Background(), marked))
	uidMarked, uidOther := marked.UID, f.dv("other").UID

	_, err = f.reconcile(disks...)
	require.NoError(t, err)
	kept := &cdiv1.DataVolume{}
	require.NoError(t, env.Client.Get(context.Background(), f.key("data"), kept))
	assert.Equal(t, uidMarked, kept.UID, "the prePopulated DataVolume is kept")
	assert.Nil(t, kept.DeletionTimestamp)
	gone := &cdiv1.DataVolume{}
	err = env.Client.Get(context.Background(), f.key("other"), gone)
	assert.True(t, apierrors.IsNotFound(err) || gone.UID != uidOther || gone.DeletionTimestamp != nil, "the unmarked one is written again")
}

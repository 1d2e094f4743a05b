package storage

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// claimAsCDI creates a DataVolume's claim as CDI's newPersistentVolumeClaim
// does (containerized-data-importer v1.65.0
// pkg/controller/datavolume/controller-base.go): CDI's label, every
// annotation of the DataVolume copied, controlled by the DataVolume, and a
// request that includes the file system overhead (request).
func (f *fixture) claimAsCDI(disk, class, request string) {
	f.t.Helper()
	p := f.cdiClaim(disk, class, request)
	p.Annotations = map[string]string{}
	for k, v := range f.dv(disk).Annotations {
		p.Annotations[k] = v
	}
	require.NoError(f.t, f.c.Create(f.ctx, p))
}

// collect plays CDI's DataVolume garbage collection (CDI before v1.62,
// pkg/controller/datavolume/garbagecollect.go detachPvcDeleteDv and
// updatePvcOwnerRefs): the claim loses the DataVolume's owner reference and
// the annotation cdi.kubevirt.io/storage.populatedFor, takes the
// DataVolume's own owner references, and the DataVolume is deleted.
func (f *fixture) collect(disk string) {
	f.t.Helper()
	dv := f.dv(disk)
	p := f.pvc(disk)
	var refs []metav1.OwnerReference
	for _, r := range p.OwnerReferences {
		if r.UID != dv.UID {
			refs = append(refs, r)
		}
	}
	p.OwnerReferences = append(refs, dv.OwnerReferences...)
	delete(p.Annotations, "cdi.kubevirt.io/storage.populatedFor")
	require.NoError(f.t, f.c.Update(f.ctx, p))
	require.NoError(f.t, f.c.Delete(f.ctx, dv))
	err := f.c.Get(f.ctx, f.key(disk), &cdiv1.DataVolume{})
	require.True(f.t, apierrors.IsNotFound(err), "the DataVolume is gone: %v", err)
}

// An image disk whose DataVolume CDI garbage-collected: its claim (with
// CDI's overhead in the request) is the disk; no DataVolume is written again
// (a new import over a booted disk), the inflated request is not read as a
// shrink, and growing the disk grows the claim directly.
func TestReconcileCollectedDataVolume(t *testing.T) {
	f, disk := imageDiskFixture(t, "gc-grow")
	assert.Equal(t, "10Gi", f.dv("root").Annotations[testID.Key(KeyDiskSize)], "the DataVolume carries the disk's size for CDI to copy")
	f.claimAsCDI("root", "gc-grow", "10752Mi") // 10Gi plus CDI's overhead
	f.bind("root", "10752Mi")
	f.setDVStatus("root", cdiv1.DataVolumeStatus{Phase: cdiv1.Succeeded, Progress: "100.0%"})
	_, err := f.reconcile(disk)
	require.NoError(t, err)

	f.collect("root")
	rv := f.pvc("root").ResourceVersion
	obs, err := f.reconcile(disk)
	require.NoError(t, err, "the claim's request includes CDI's overhead: not a shrink")
	assert.Equal(t, PhaseBound, obs[0].Phase)
	assert.Equal(t, "10Gi", obs[0].Requested.String())
	assert.Empty(t, obs[0].Reason)
	assert.True(t, obs[0].DataVolume)
	err = f.c.Get(f.ctx, f.key("root"), &cdiv1.DataVolume{})
	assert.True(t, apierrors.IsNotFound(err), "no DataVolume is written again over the imported disk: %v", err)
	assert.Equal(t, rv, f.pvc("root").ResourceVersion, "nothing is written to the claim")

	disk.Size = gi("12Gi")
	obs, err = f.reconcile(disk)
	require.NoError(t, err)
	pvc := f.pvc("root")
	assert.Equal(t, "12800Mi", pvc.Spec.Resources.Requests.Storage().String(), "grown by 2Gi, overhead kept")
	assert.Equal(t, "12Gi", pvc.Annotations[testID.Key(KeyDiskSize)])
	assert.Equal(t, "12Gi", obs[0].Requested.String())
	err = f.c.Get(f.ctx, f.key("root"), &cdiv1.DataVolume{})
	assert.True(t, apierrors.IsNotFound(err), "growing writes no DataVolume: %v", err)

	disk.Size = gi("11Gi")
	_, err = f.reconcile(disk)
	var shrink *ShrinkError
	require.ErrorAs(t, err, &shrink, "a real shrink is still refused")
	assert.Equal(t, "12Gi", shrink.From.String())
}

// A claim CDI made before DataVolumes carried the disk's size (an upgrade
// of the operator): the size is recorded on the claim while the
// DataVolume is still there, so a later collection is read right.
func TestReconcileRecordsSizeBeforeCollection(t *testing.T) {
	f, disk := imageDiskFixture(t, "gc-old")
	f.createCDIClaim("root", "gc-old", "10752Mi") // no annotation copied
	f.bind("root", "10752Mi")
	f.setDVStatus("root", cdiv1.DataVolumeStatus{Phase: cdiv1.Succeeded, Progress: "100.0%"})

	_, err := f.reconcile(disk)
	require.NoError(t, err)
	pvc := f.pvc("root")
	assert.Equal(t, "10Gi", pvc.Annotations[testID.Key(KeyDiskSize)])
	assert.Equal(t, "10752Mi", pvc.Spec.Resources.Requests.Storage().String(), "only the annotation is written")
	rv := pvc.ResourceVersion
	_, err = f.reconcile(disk)
	require.NoError(t, err)
	assert.Equal(t, rv, f.pvc("root").ResourceVersion, "recorded once")

	f.collect("root")
	obs, err := f.reconcile(disk)
	require.NoError(t, err)
	assert.Equal(t, "10Gi", obs[0].Requested.String())
	assert.Equal(t, PhaseBound, obs[0].Phase)
}

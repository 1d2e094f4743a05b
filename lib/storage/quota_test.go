package storage

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// cdiQuotaMessage is the message CDI v1.65.0 puts on a DataVolume whose
// claim the API server refused for a quota (the API server's own error).
const cdiQuotaMessage = `persistentvolumeclaims "vm-root" is forbidden: exceeded quota: storage, ` +
	`requested: requests.storage=10Gi, used: requests.storage=0, limited: requests.storage=5Gi`

func TestParseQuota(t *testing.T) {
	q := parseQuota("root", cdiQuotaMessage)
	require.NotNil(t, q)
	assert.Equal(t, &QuotaExceededError{Disk: "root", Storage: true,
		Message: "exceeded quota: storage, requested: requests.storage=10Gi, used: requests.storage=0, limited: requests.storage=5Gi"}, q)
	assert.Equal(t, "size", q.Field())

	class := parseQuota("root", `exceeded quota: q, requested: fast.storageclass.storage.k8s.io/requests.storage=10Gi, used: fast.storageclass.storage.k8s.io/requests.storage=0, limited: fast.storageclass.storage.k8s.io/requests.storage=1Gi`)
	require.NotNil(t, class)
	assert.True(t, class.Storage, "a per-class storage quota")

	count := parseQuota("root", `exceeded quota: q, requested: persistentvolumeclaims=1, used: persistentvolumeclaims=2, limited: persistentvolumeclaims=2`)
	require.NotNil(t, count)
	assert.False(t, count.Storage)
	assert.Empty(t, count.Field(), "a smaller disk does not help: the disk itself")

	assert.Nil(t, parseQuota("root", "PVC vm-root Pending"))
}

// TestObservedQuotaFailure: CDI's ErrExceededQuota on a DataVolume (phase
// Pending) is a stalled failure naming the size.
func TestObservedQuotaFailure(t *testing.T) {
	err := observedFailure("root", Observation{Phase: PhasePending, Reason: ReasonQuotaExceeded, Message: cdiQuotaMessage})
	requireStalled(t, err, ReasonQuotaExceeded, "root", "size")
	var q *QuotaExceededError
	require.ErrorAs(t, err, &q)
	assert.Contains(t, q.Message, "limited: requests.storage=5Gi")
}

// quota creates a ResourceQuota on requests.storage with its usage already
// counted (no quota controller runs under envtest; the API server's quota
// admission refuses what a quota without usage covers).
func (f *fixture) quota(hard, used string) {
	f.t.Helper()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "storage"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsStorage: resource.MustParse(hard)}}}
	require.NoError(f.t, f.c.Create(f.ctx, q))
	q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard,
		Used: corev1.ResourceList{corev1.ResourceRequestsStorage: resource.MustParse(used)}}
	require.NoError(f.t, f.c.Status().Update(f.ctx, q))
}

// TestReconcileQuotaRefusesGrowth: the API server's quota admission refuses
// growing a claim: a stalled ReasonQuotaExceeded naming the size, the claim
// keeps its size and the disk stays observed as it is (Bound).
func TestReconcileQuotaRefusesGrowth(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("grow-quota", false, true, false)
	disk := Disk{Name: "data", Size: gi("1Gi"), StorageClassName: "grow-quota"}
	f.plainClaims(disk)
	f.bind("data", "1Gi")
	f.quota("1536Mi", "1Gi")

	disk.Size = gi("2Gi")
	obs, err := f.reconcile(disk)
	requireStalled(t, err, ReasonQuotaExceeded, "data", "size")
	assert.Contains(t, err.Error(), "exceeded quota: storage, requested: requests.storage=1Gi, used: requests.storage=1Gi, limited: requests.storage=1536Mi")
	assert.Equal(t, "1Gi", f.pvc("data").Spec.Resources.Requests.Storage().String())
	assert.Equal(t, PhaseBound, obs[0].Phase, "what exists is still observed")
	assert.Equal(t, ReasonQuotaExceeded, obs[0].Reason)
}

// TestReconcileQuotaResizesRefusedDataVolume: a DataVolume whose claim CDI
// could not make (ErrExceededQuota) is written again when the disk's size
// changes (no data exists yet; CDI does not let its spec change).
func TestReconcileQuotaResizesRefusedDataVolume(t *testing.T) {
	f, disk := imageDiskFixture(t, "quota-dv")
	refused := cdiv1.DataVolumeStatus{Phase: cdiv1.Pending, Conditions: []cdiv1.DataVolumeCondition{
		{Type: cdiv1.DataVolumeBound, Status: corev1.ConditionFalse, Reason: ReasonQuotaExceeded, Message: cdiQuotaMessage},
		{Type: cdiv1.DataVolumeReady, Status: corev1.ConditionFalse, Reason: ReasonQuotaExceeded, Message: cdiQuotaMessage},
	}}
	f.setDVStatus("root", refused)
	_, err := f.reconcile(disk)
	requireStalled(t, err, ReasonQuotaExceeded, "root", "size")
	uid := f.dv("root").UID

	disk.Size = gi("4Gi")
	obs, err := f.reconcile(disk)
	require.NoError(t, err)
	assert.Contains(t, obs[0].Message, "its DataVolume is written again")
	_, err = f.reconcile(disk)
	require.NoError(t, err)
	dv := f.dv("root")
	assert.NotEqual(t, uid, dv.UID, "a new DataVolume")
	assert.Equal(t, "4Gi", dv.Spec.Storage.Resources.Requests.Storage().String())
}

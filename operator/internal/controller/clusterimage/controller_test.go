package clusterimage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

func testImage() *v1alpha1.ClusterImage {
	img := &v1alpha1.ClusterImage{
		ObjectMeta: metav1.ObjectMeta{Name: "ubuntu", UID: "u1", Generation: 2},
		Spec:       v1alpha1.ClusterImageSpec{Source: "https://images.example.com/u.qcow2", Size: resource.MustParse("10Gi")},
	}
	img.APIVersion, img.Kind = v1alpha1.GroupVersion.String(), "ClusterImage"
	return img
}

// TestBuildImport: the golden DataVolume imports the source into the class
// at the image's size, binds at once (CDI's immediate-binding annotation),
// and the DataSource points at its claim; both are the image's.
func TestBuildImport(t *testing.T) {
	img := testImage()
	dv, ds := buildImport(img, "wukong-images", "ubuntu-standard", "standard", storage.KindHTTP)
	assert.Equal(t, "wukong-images", dv.Namespace)
	assert.Equal(t, "https://images.example.com/u.qcow2", dv.Spec.Source.HTTP.URL)
	assert.Equal(t, ptr.To("standard"), dv.Spec.Storage.StorageClassName)
	assert.Equal(t, "10Gi", dv.Spec.Storage.Resources.Requests.Storage().String())
	assert.Equal(t, "true", dv.Annotations[annImmediateBinding])
	assert.True(t, metav1.IsControlledBy(dv, img) && metav1.IsControlledBy(ds, img), "controlled by the image")
	assert.Equal(t, "ubuntu", dv.Labels["vm.novasphere.dev/"+keyImage])
	assert.Equal(t, &cdiv1.DataVolumeSourcePVC{Namespace: "wukong-images", Name: "ubuntu-standard"}, ds.Spec.Source.PVC)

	img.Spec.Source = "quay.io/containerdisks/ubuntu:24.04"
	reg, _ := buildImport(img, "ns", "n", "c", storage.KindRegistry)
	require.NotNil(t, reg.Spec.Source.Registry)
	assert.Equal(t, "docker://quay.io/containerdisks/ubuntu:24.04", *reg.Spec.Source.Registry.URL, "CDI's docker:// form")
}

// TestBuildCron: a scheduled image is a DataImportCron managing the
// DataSource of the copy's name, garbage-collecting outdated imports and
// taking them along when deleted (retentionPolicy None).
func TestBuildCron(t *testing.T) {
	img := testImage()
	img.Spec.Source, img.Spec.Schedule, img.Spec.ImportsToKeep = "quay.io/containerdisks/ubuntu:24.04", "0 */12 * * *", ptr.To[int32](2)
	cron := buildCron(img, "wukong-images", "ubuntu-standard", "standard")
	assert.Equal(t, "0 */12 * * *", cron.Spec.Schedule)
	assert.Equal(t, "ubuntu-standard", cron.Spec.ManagedDataSource)
	assert.Equal(t, ptr.To[int32](2), cron.Spec.ImportsToKeep)
	assert.Equal(t, ptr.To(cdiv1.DataImportCronGarbageCollectOutdated), cron.Spec.GarbageCollect)
	assert.Equal(t, ptr.To(cdiv1.DataImportCronRetainNone), cron.Spec.RetentionPolicy)
	assert.Equal(t, "docker://quay.io/containerdisks/ubuntu:24.04", *cron.Spec.Template.Spec.Source.Registry.URL)
	assert.Nil(t, cron.Spec.Template.Spec.SourceRef, "CDI's DataImportCron admission refuses sourceRef in the template")
	assert.True(t, metav1.IsControlledBy(cron, img))
}

func TestComputeStatus(t *testing.T) {
	ready := v1alpha1.ClusterImageCopy{StorageClassName: "standard", DataSourceName: "ubuntu-standard", Ready: true, Size: "10Gi",
		LastImportTime: &metav1.Time{Time: time.Unix(1700000000, 0)}}
	importing := v1alpha1.ClusterImageCopy{StorageClassName: "fast", DataSourceName: "ubuntu-fast", Phase: "ImportInProgress", Progress: "40.00%"}
	cases := []struct {
		name        string
		scope       scope
		wantReady   metav1.ConditionStatus
		wantReason  string
		wantStalled bool
		wantRecon   bool
		wantCopies  int
		wantRequeue time.Duration
	}{
		{name: "every copy ready", scope: scope{copies: []v1alpha1.ClusterImageCopy{ready}},
			wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonGoldenCopyReady, wantCopies: 1, wantRequeue: readyPoll},
		{name: "one importing", scope: scope{copies: []v1alpha1.ClusterImageCopy{ready, importing}},
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonGoldenCopyPending, wantRecon: true, wantCopies: 2, wantRequeue: importPoll},
		{name: "bad source", scope: scope{invalidReason: v1alpha1.ReasonInvalidImage, invalid: "spec.source is bad", copies: []v1alpha1.ClusterImageCopy{ready}},
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonInvalidImage, wantStalled: true, wantRequeue: stalledRetry},
		{name: "no CDI", scope: scope{cdiMissing: true},
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonCDIMissing, wantStalled: true, wantRequeue: stalledRetry},
		{name: "name taken by another object", scope: scope{conflict: apply.ConflictFailure(&apply.ConflictError{Kind: "DataVolume", Namespace: "wukong-images", Name: "ubuntu-standard"})},
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonNameConflict, wantStalled: true, wantRequeue: stalledRetry},
		{name: "a deleted image's object still there", scope: scope{conflict: apply.ConflictFailure(&apply.ConflictError{Kind: "DataVolume", Namespace: "wukong-images", Name: "ubuntu-standard",
			Controller: &metav1.OwnerReference{Kind: "ClusterImage", Name: "ubuntu", UID: "u0"}, Predecessor: true})},
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonWaitingForPredecessor, wantRecon: true, wantRequeue: apply.PredecessorRetry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.scope
			s.img = testImage()
			res := computeStatus(&s)
			assert.Equal(t, tc.wantRequeue, res.RequeueAfter)
			r := meta.FindStatusCondition(s.img.Status.Conditions, v1alpha1.ReadyCondition)
			require.NotNil(t, r)
			assert.Equal(t, tc.wantReady, r.Status)
			assert.Equal(t, tc.wantReason, r.Reason)
			assert.Equal(t, tc.wantStalled, meta.IsStatusConditionTrue(s.img.Status.Conditions, v1alpha1.StalledCondition), "Stalled")
			assert.Equal(t, tc.wantRecon, meta.IsStatusConditionTrue(s.img.Status.Conditions, v1alpha1.ReconcilingCondition), "Reconciling")
			assert.Len(t, s.img.Status.Copies, tc.wantCopies)
			if tc.wantReason == v1alpha1.ReasonGoldenCopyPending {
				assert.Contains(t, r.Message, "fast", "names the class still importing")
				assert.NotContains(t, r.Message, "standard")
			}
		})
	}
}

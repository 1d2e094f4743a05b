package v1alpha1_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// TestWukongSnapshotValidation checks the CRD's schema and CEL rules of
// WukongSnapshot and WukongRestore on a real API server.
func TestWukongSnapshotValidation(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()

	const api = "apiVersion: vm.novasphere.dev/v1alpha1\n"
	for _, tc := range []struct{ name, manifest, field string }{
		{"wukongName is required", api + "kind: WukongSnapshot\nmetadata:\n  name: no-wukong\nspec: {}\n", "spec.wukongName"},
		{"deletionPolicy is Delete or Retain", api + "kind: WukongSnapshot\nmetadata:\n  name: bad-policy\nspec:\n  wukongName: vm\n  deletionPolicy: Keep\n", "spec.deletionPolicy"},
		{"targetReadinessPolicy is WaitEventually or StopTarget", api + "kind: WukongRestore\nmetadata:\n  name: bad\nspec:\n  wukongName: vm\n  snapshotName: snap\n  targetReadinessPolicy: FailImmediate\n", "spec.targetReadinessPolicy"},
	} {
		t.Run(tc.name, func(t *testing.T) { requireAdmission(t, create(t, ns, tc.manifest), false, tc.field) })
	}

	snap := &v1alpha1.WukongSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: ns},
		Spec:       v1alpha1.WukongSnapshotSpec{WukongName: "vm"},
	}
	require.NoError(t, k8s.Create(ctx, snap))
	assert.Equal(t, v1alpha1.SnapshotDeletePolicy, snap.Spec.DeletionPolicy, "deletionPolicy defaults to Delete")

	// wukongName is immutable; deletionPolicy is not.
	snap.Spec.WukongName = "other"
	requireAdmission(t, k8s.Update(ctx, snap), false, "wukongName is immutable")
	snap.Spec.WukongName = "vm"
	snap.Spec.DeletionPolicy = v1alpha1.SnapshotRetainPolicy
	require.NoError(t, k8s.Update(ctx, snap))

	// The status holds a full copy of a Wukong's spec (its CEL rules,
	// transition rules included, pass on a status write).
	size := resourceMust("10Gi")
	snap.Status = v1alpha1.WukongSnapshotStatus{
		Phase:       v1alpha1.SnapshotSucceeded,
		ReadyToUse:  ptr.To(true),
		Indications: []v1alpha1.SnapshotIndication{v1alpha1.IndicationOnline, v1alpha1.IndicationGuestAgent},
		Frozen:      ptr.To(true),
		Consistency: v1alpha1.ConsistencyFrozen,
		Disks:       []v1alpha1.SnapshotDisk{{Name: "root", ClaimName: "vm-root", VolumeSnapshotName: "vmsnapshot-x-volume-root", RestoreSize: &size}},
		Size:        &size,
		WukongSpec: &v1alpha1.WukongSpec{
			CPU: 2, Memory: resourceMust("2Gi"), OSImage: "https://example.com/disk.qcow2",
			Disks: []v1alpha1.DiskSpec{{Name: "root", Size: resourceMust("10Gi"), Boot: true}},
		},
	}
	require.NoError(t, k8s.Status().Update(ctx, snap))
	got := &v1alpha1.WukongSnapshot{}
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(snap), got))
	require.NotNil(t, got.Status.WukongSpec)
	assert.Equal(t, "https://example.com/disk.qcow2", got.Status.WukongSpec.OSImage)
	assert.Equal(t, "vm-root", got.Status.Disks[0].ClaimName)

	rst := &v1alpha1.WukongRestore{
		ObjectMeta: metav1.ObjectMeta{Name: "rst", Namespace: ns},
		Spec:       v1alpha1.WukongRestoreSpec{WukongName: "vm", SnapshotName: "snap"},
	}
	require.NoError(t, k8s.Create(ctx, rst))
	assert.Equal(t, v1alpha1.RestoreWaitEventually, rst.Spec.TargetReadinessPolicy, "targetReadinessPolicy defaults to WaitEventually")
	rst.Spec.SnapshotName = "other"
	requireAdmission(t, k8s.Update(ctx, rst), false, "snapshotName is immutable")
}

package sandbox_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/test/sandbox"
)

// TestCDIClonesAsCDIPlans: a clone of an imported claim takes the strategy
// CDI's planner gives (snapshot where the target class's profile says so
// and a VolumeSnapshotClass serves the shared driver; copy across drivers,
// or into a bigger claim of a class that cannot expand), records it in
// cdi.kubevirt.io/cloneType, succeeds and carries the source's data.
func TestCDIClonesAsCDIPlans(t *testing.T) {
	ns := namespace(t)
	src := httpDV(ns, "src", sandbox.StorageClassStandard, "https://images.example.com/disk.qcow2")
	require.NoError(t, sb.Client.Create(ctx, src))
	eventually(t, src, func(d *cdiv1.DataVolume) bool { return d.Status.Phase == cdiv1.Succeeded }, "import did not succeed")

	// Classes as an administrator makes them: the clone strategy in CDI's
	// StorageClass annotation, which CDI's StorageProfile controller copies
	// into the profile's status.cloneStrategy.
	class := func(name, provisioner string, strategy cdiv1.CDICloneStrategy, expand bool) string {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name + "-" + ns},
			Provisioner: provisioner, VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate), AllowVolumeExpansion: ptr.To(expand)}
		if strategy != "" {
			sc.Annotations = map[string]string{"cdi.kubevirt.io/clone-strategy": string(strategy)}
		}
		require.NoError(t, sb.Client.Create(ctx, sc))
		t.Cleanup(func() { _ = sb.Client.Delete(ctx, sc) })
		sp := &cdiv1.StorageProfile{ObjectMeta: metav1.ObjectMeta{Name: sc.Name}}
		eventually(t, sp, func(p *cdiv1.StorageProfile) bool {
			return p.Status.CloneStrategy != nil && (strategy == "" || *p.Status.CloneStrategy == strategy)
		}, "CDI did not profile class "+sc.Name)
		return sc.Name
	}
	snap := class("snap", sandbox.Provisioner, cdiv1.CloneStrategySnapshot, true)
	csi := class("csi", sandbox.Provisioner, cdiv1.CloneStrategyCsiClone, true)
	csiFixed := class("csi-fixed", sandbox.Provisioner, cdiv1.CloneStrategyCsiClone, false)
	other := class("other", sandbox.SnapshotlessProvisioner, cdiv1.CloneStrategyCsiClone, true)

	cases := []struct {
		name, class, size string
		want              cdiv1.CDICloneStrategy
	}{
		{"snapshot: a VolumeSnapshotClass serves the driver", snap, "2Gi", cdiv1.CloneStrategySnapshot},
		{"csi-clone on the source's driver", csi, "2Gi", cdiv1.CloneStrategyCsiClone},
		{"csi-clone to a bigger claim where the class expands", csi, "3Gi", cdiv1.CloneStrategyCsiClone},
		{"csi-clone to a bigger claim of a class that cannot expand: host-assisted", csiFixed, "3Gi", cdiv1.CloneStrategyHostAssisted},
		{"csi-clone across drivers: host-assisted", other, "2Gi", cdiv1.CloneStrategyHostAssisted},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dv := &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Name: "clone-" + string(rune('a'+i)), Namespace: ns}}
			dv.Spec.Source = &cdiv1.DataVolumeSource{PVC: &cdiv1.DataVolumeSourcePVC{Namespace: ns, Name: "src"}}
			dv.Spec.Storage = &cdiv1.StorageSpec{
				StorageClassName: ptr.To(tc.class),
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				VolumeMode:       ptr.To(corev1.PersistentVolumeFilesystem),
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(tc.size)}},
			}
			require.NoError(t, sb.Client.Create(ctx, dv))
			eventually(t, dv, func(d *cdiv1.DataVolume) bool { return d.Status.Phase == cdiv1.Succeeded }, "clone did not succeed")
			assert.Equal(t, string(tc.want), dv.Annotations["cdi.kubevirt.io/cloneType"])
			claim := &corev1.PersistentVolumeClaim{}
			require.NoError(t, sb.Client.Get(ctx, client.ObjectKeyFromObject(dv), claim))
			assert.Equal(t, string(tc.want), claim.Annotations["cdi.kubevirt.io/cloneType"])
			assert.Equal(t, "https://images.example.com/disk.qcow2", claim.Annotations[sandbox.AnnData], "the clone holds the source's data")
		})
	}
}

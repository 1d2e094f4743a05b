package storage

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"github.com/novasphere/wukong/lib/apply"
)

func testOwner() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "vm1", Namespace: "ns1", UID: types.UID("uid-1")},
	}
}

func wantMeta(disk string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      "vm1-" + disk,
		Namespace: "ns1",
		Labels:    map[string]string{apply.LabelManagedBy: "wukong", testID.OwnerLabelKey(): "vm1", testID.Key(KeyDisk): disk},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: "vm1", UID: "uid-1",
			Controller: ptr(true), BlockOwnerDeletion: ptr(true),
		}},
	}
}

func TestClaimName(t *testing.T) {
	assert.Equal(t, "web-root", ClaimName("web", "root"))
}

func TestBuildPVC(t *testing.T) {
	cases := []struct {
		name string
		disk Disk
		want corev1.PersistentVolumeClaimSpec
	}{
		{
			name: "default class left unset",
			disk: Disk{Name: "data", Size: resource.MustParse("4096Mi")},
			want: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				VolumeMode:  ptr(corev1.PersistentVolumeFilesystem),
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("4Gi")}},
			},
		},
		{
			name: "named class",
			disk: Disk{Name: "scratch", Size: resource.MustParse("1Gi"), StorageClassName: "fast"},
			want: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				VolumeMode:       ptr(corev1.PersistentVolumeFilesystem),
				StorageClassName: ptr("fast"),
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := BuildPVC(testID, testOwner(), tc.disk)
			assert.Equal(t, wantMeta(tc.disk.Name), got.ObjectMeta)
			assert.Equal(t, tc.want.AccessModes, got.Spec.AccessModes)
			assert.Equal(t, tc.want.VolumeMode, got.Spec.VolumeMode)
			assert.Equal(t, tc.want.StorageClassName, got.Spec.StorageClassName)
			// Canonical size: what the server would store.
			q := got.Spec.Resources.Requests[corev1.ResourceStorage]
			assert.Equal(t, tc.want.Resources.Requests.Storage().String(), q.String())
		})
	}
}

// wantDVMeta is a DataVolume's metadata: wantMeta's and the disk's size,
// which CDI copies onto the claim it makes.
func wantDVMeta(disk, size string) metav1.ObjectMeta {
	m := wantMeta(disk)
	m.Annotations = map[string]string{testID.Key(KeyDiskSize): size}
	return m
}

func TestBuildDataVolume(t *testing.T) {
	cases := []struct {
		name      string
		disk      Disk
		wantHTTP  string
		wantReg   string
		wantClass *string
		wantErr   bool
		wantBlank bool
	}{
		{name: "http", disk: Disk{Name: "root", Size: resource.MustParse("10Gi"), Source: "https://example.org/f.qcow2"}, wantHTTP: "https://example.org/f.qcow2"},
		{name: "bare image gets docker scheme", disk: Disk{Name: "root", Size: resource.MustParse("10Gi"), Source: "quay.io/containerdisks/fedora:40", StorageClassName: "ceph"}, wantReg: "docker://quay.io/containerdisks/fedora:40", wantClass: ptr("ceph")},
		{name: "docker scheme kept", disk: Disk{Name: "root", Size: resource.MustParse("10Gi"), Source: "docker://fedora:40"}, wantReg: "docker://fedora:40"},
		{name: "blank source", disk: Disk{Name: "data", Size: resource.MustParse("1Gi"), StorageClassName: "rwx"}, wantBlank: true, wantClass: ptr("rwx")},
		{name: "bad source", disk: Disk{Name: "root", Size: resource.MustParse("1Gi"), Source: "ftp://x/y"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BuildDataVolume(testID, testOwner(), tc.disk)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrInvalidDisk)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, wantDVMeta(tc.disk.Name, tc.disk.Size.String()), got.ObjectMeta)
			assert.Equal(t, "cdi.kubevirt.io/v1beta1", got.APIVersion)
			assert.Equal(t, "DataVolume", got.Kind)
			require.NotNil(t, got.Spec.Storage, "uses spec.storage")
			assert.Nil(t, got.Spec.PVC, "must not use spec.pvc")
			assert.Empty(t, got.Spec.Storage.AccessModes, "left to the StorageProfile")
			assert.Nil(t, got.Spec.Storage.VolumeMode, "left to the StorageProfile")
			assert.Equal(t, tc.wantClass, got.Spec.Storage.StorageClassName)
			assert.Equal(t, tc.disk.Size.String(), got.Spec.Storage.Resources.Requests.Storage().String())
			require.NotNil(t, got.Spec.Source)
			if tc.wantBlank {
				require.NotNil(t, got.Spec.Source.Blank, "CDI's blank source")
				assert.Nil(t, got.Spec.Source.HTTP)
				assert.Nil(t, got.Spec.Source.Registry)
				return
			}
			if tc.wantHTTP != "" {
				require.NotNil(t, got.Spec.Source.HTTP)
				assert.Equal(t, tc.wantHTTP, got.Spec.Source.HTTP.URL)
				assert.Nil(t, got.Spec.Source.Registry)
			} else {
				require.NotNil(t, got.Spec.Source.Registry)
				assert.Equal(t, tc.wantReg, *got.Spec.Source.Registry.URL)
				assert.Nil(t, got.Spec.Source.HTTP)
			}
		})
	}
}

func TestBuildDataVolumeClone(t *testing.T) {
	cases := []struct {
		name     string
		clone    CloneSource
		source   string
		wantPVC  *cdiv1.DataVolumeSourcePVC
		wantSnap *cdiv1.DataVolumeSourceSnapshot
		wantErr  bool
	}{
		{name: "from a claim, in the owner's namespace", clone: CloneSource{ClaimName: "src-root"},
			wantPVC: &cdiv1.DataVolumeSourcePVC{Namespace: "ns1", Name: "src-root"}},
		{name: "from a snapshot, in the owner's namespace", clone: CloneSource{SnapshotName: "snap-1-root"},
			wantSnap: &cdiv1.DataVolumeSourceSnapshot{Namespace: "ns1", Name: "snap-1-root"}},
		{name: "neither", clone: CloneSource{}, wantErr: true},
		{name: "both", clone: CloneSource{ClaimName: "a", SnapshotName: "b"}, wantErr: true},
		{name: "bad name", clone: CloneSource{ClaimName: "A_B"}, wantErr: true},
		{name: "an image beside it", clone: CloneSource{ClaimName: "a"}, source: "fedora", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Disk{Name: "root", Size: resource.MustParse("3Gi"), StorageClassName: "ceph", Source: tc.source, Clone: &tc.clone}
			got, err := BuildDataVolume(testID, testOwner(), d)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrInvalidDisk)
				require.ErrorIs(t, d.Validate(), ErrInvalidDisk)
				return
			}
			require.NoError(t, err)
			require.NoError(t, d.Validate())
			assert.Equal(t, wantDVMeta("root", "3Gi"), got.ObjectMeta)
			require.NotNil(t, got.Spec.Storage, "uses spec.storage")
			assert.Equal(t, "3Gi", got.Spec.Storage.Resources.Requests.Storage().String(), "the disk's size: CDI needs it at least the source's")
			assert.Equal(t, ptr("ceph"), got.Spec.Storage.StorageClassName)
			assert.Empty(t, got.Spec.Storage.AccessModes, "left to the StorageProfile")
			assert.Equal(t, &cdiv1.DataVolumeSource{PVC: tc.wantPVC, Snapshot: tc.wantSnap}, got.Spec.Source)
		})
	}
}

// TestBuildDataVolumeDataSource: a DataSource clone (a catalog image) is a
// DataVolume with spec.sourceRef and no spec.source (CDI's DataVolume
// admission refuses both: pkg/apiserver/webhooks/datavolume-validate.go
// "Data volume should have either Source or SourceRef"), with the
// DataSource's namespace, the owner's when empty.
func TestBuildDataVolumeDataSource(t *testing.T) {
	cases := []struct {
		name    string
		clone   CloneSource
		wantNS  string
		wantErr bool
	}{
		{name: "another namespace", clone: CloneSource{DataSource: &DataSourceRef{Namespace: "wukong-images", Name: "ubuntu-standard"}}, wantNS: "wukong-images"},
		{name: "the owner's namespace", clone: CloneSource{DataSource: &DataSourceRef{Name: "ubuntu-standard"}}, wantNS: "ns1"},
		{name: "with a claim too", clone: CloneSource{ClaimName: "a", DataSource: &DataSourceRef{Name: "b"}}, wantErr: true},
		{name: "bad namespace", clone: CloneSource{DataSource: &DataSourceRef{Namespace: "A.B", Name: "b"}}, wantErr: true},
		{name: "no name", clone: CloneSource{DataSource: &DataSourceRef{Namespace: "x"}}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Disk{Name: "root", Size: resource.MustParse("12Gi"), Clone: &tc.clone}
			got, err := BuildDataVolume(testID, testOwner(), d)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrInvalidDisk)
				return
			}
			require.NoError(t, err)
			assert.Nil(t, got.Spec.Source, "sourceRef only")
			assert.Equal(t, &cdiv1.DataVolumeSourceRef{Kind: cdiv1.DataVolumeDataSource, Namespace: ptr(tc.wantNS), Name: tc.clone.DataSource.Name}, got.Spec.SourceRef)
			assert.Equal(t, "12Gi", got.Spec.Storage.Resources.Requests.Storage().String())
			assert.Nil(t, got.Spec.Storage.StorageClassName, "the cluster default class")
		})
	}
}

func TestBuildersDoNotAliasInput(t *testing.T) {
	d := Disk{Name: "root", Size: resource.MustParse("1Gi"), Source: "fedora"}
	dv, err := BuildDataVolume(testID, testOwner(), d)
	require.NoError(t, err)
	q := dv.Spec.Storage.Resources.Requests[corev1.ResourceStorage]
	q.Add(resource.MustParse("1Gi"))
	assert.Equal(t, "1Gi", d.Size.String())
}

func TestDiskValidate(t *testing.T) {
	cases := []struct {
		name string
		disk Disk
		ok   bool
	}{
		{name: "ok", disk: Disk{Name: "root", Size: resource.MustParse("1Gi")}, ok: true},
		{name: "bad name", disk: Disk{Name: "Root_Disk", Size: resource.MustParse("1Gi")}},
		{name: "zero size", disk: Disk{Name: "root"}},
		{name: "bad source", disk: Disk{Name: "root", Size: resource.MustParse("1Gi"), Source: "a b"}},
		{name: "existing claim without size", disk: Disk{Name: "root", ClaimName: "kept.root"}, ok: true},
		{name: "existing claim with size", disk: Disk{Name: "root", ClaimName: "kept", Size: resource.MustParse("1Gi")}, ok: true},
		{name: "existing claim, bad name", disk: Disk{Name: "root", ClaimName: "Kept_Root"}},
		{name: "existing claim and source", disk: Disk{Name: "root", ClaimName: "kept", Source: "docker://fedora:40"}},
		{name: "existing claim and class", disk: Disk{Name: "root", ClaimName: "kept", StorageClassName: "fast"}},
		{name: "existing claim, negative size", disk: Disk{Name: "root", ClaimName: "kept", Size: resource.MustParse("-1Gi")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.disk.Validate()
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidDisk)
			}
		})
	}
}

var sinkDV *cdiv1.DataVolume

func BenchmarkBuildDataVolume(b *testing.B) {
	owner := testOwner()
	d := Disk{Name: "root", Size: resource.MustParse("20Gi"), Source: "quay.io/containerdisks/fedora:40", StorageClassName: "ceph"}
	b.ReportAllocs()
	for b.Loop() {
		dv, err := BuildDataVolume(testID, owner, d)
		if err != nil {
			b.Fatal(err)
		}
		sinkDV = dv
	}
}

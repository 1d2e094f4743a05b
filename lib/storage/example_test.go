package storage_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/novasphere/wukong/lib/apply"
	"github.com/novasphere/wukong/lib/storage"
)

// myID is the calling controller's identity: its field manager, managed-by
// value and label domain. The package has none of its own.
var myID = apply.Identity{FieldManager: "my-controller", Domain: "vm.example.com"}

func Example() {
	// Any namespaced object can own the disks; the builders need its TypeMeta.
	owner := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "1234"},
	}
	root := storage.Disk{Name: "root", Size: resource.MustParse("20Gi"), Source: "quay.io/containerdisks/fedora:40"}
	data := storage.Disk{Name: "data", Size: resource.MustParse("4096Mi"), StorageClassName: "fast"}

	kind, _ := storage.SourceKind(root.Source)
	dv, _ := storage.BuildDataVolume(myID, owner, root)
	fmt.Println(kind, dv.Kind, dv.Name, *dv.Spec.Source.Registry.URL, dv.Spec.Storage.Resources.Requests.Storage())

	pvc := storage.BuildPVC(myID, owner, data)
	fmt.Println(pvc.Kind, pvc.Name, *pvc.Spec.StorageClassName, pvc.Spec.Resources.Requests.Storage(), pvc.Labels[myID.OwnerLabelKey()])

	_, err := storage.SourceKind("ftp://example.org/disk.img")
	fmt.Println(err)

	o := storage.Observation{Phase: storage.PhaseWaitForFirstConsumer}
	fmt.Println(o.Ready(), o.ConsumerCanStart())
	// Output:
	// registry DataVolume web-root docker://quay.io/containerdisks/fedora:40 20Gi
	// PersistentVolumeClaim web-data fast 4Gi web
	// invalid disk: source "ftp://example.org/disk.img" has unsupported scheme "ftp" (want http, https or docker)
	// false true
}

// Reconcile writes a blank disk under the caller's identity and reports
// what the cluster says; a second call writes nothing. The fake client
// stands in for a manager's client (its scheme must know core/v1,
// storage/v1 and, for image disks, CDI's v1beta1). Its scheme here has no
// CDI kinds, so the blank disk is a plain PVC (with CDI, a DataVolume with
// a blank source).
func ExampleReconcile() {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "1234"}}
	immediate := storagev1.VolumeBindingImmediate
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "csi.example.com",
		VolumeBindingMode: &immediate}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(owner, class).Build()

	disks := []storage.Disk{{Name: "data", Size: resource.MustParse("4Gi"), StorageClassName: "fast"}}
	obs, err := storage.Reconcile(ctx, c, myID, owner, disks)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range obs {
		fmt.Println(o.Name, o.ClaimName, o.StorageClassName, o.Phase, o.Requested.String(), o.ConsumerCanStart())
	}
	pvc := &corev1.PersistentVolumeClaim{}
	_ = c.Get(ctx, client.ObjectKey{Namespace: "prod", Name: "web-data"}, pvc)
	fmt.Println(pvc.Labels)

	_, err = storage.Reconcile(ctx, c, myID, owner, []storage.Disk{{Name: "data", Size: resource.MustParse("1Gi"), StorageClassName: "fast"}})
	fmt.Println(err)
	// Output:
	// data web-data fast Pending 4Gi false
	// map[app.kubernetes.io/managed-by:my-controller vm.example.com/disk:data vm.example.com/owner:web]
	// disk "data": disk "data" cannot shrink from 4Gi to 1Gi
}

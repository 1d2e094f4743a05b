package storage_test

import (
	"fmt"

	"github.com/novasphere/wukong/lib/storage"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func Example() {
	// Any namespaced object can own the disks; the builders need its TypeMeta.
	owner := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "1234"},
	}
	root := storage.Disk{Name: "root", Size: resource.MustParse("20Gi"), Source: "quay.io/containerdisks/fedora:40", Boot: true}
	data := storage.Disk{Name: "data", Size: resource.MustParse("4096Mi"), StorageClassName: "fast"}

	kind, _ := storage.SourceKind(root.Source)
	dv, _ := storage.BuildDataVolume(owner, root)
	fmt.Println(kind, dv.Kind, dv.Name, *dv.Spec.Source.Registry.URL, dv.Spec.Storage.Resources.Requests.Storage())

	pvc := storage.BuildPVC(owner, data)
	fmt.Println(pvc.Kind, pvc.Name, *pvc.Spec.StorageClassName, pvc.Spec.Resources.Requests.Storage(), pvc.Labels[storage.LabelOwner])

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

package bench

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/novasphere/wukong/lib/kubevirt"
	"github.com/novasphere/wukong/lib/network"
	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/identity"
)

// The benchmark's machine: a registry-image boot disk, a blank data disk and
// one bridge NIC on node bridge br-bench, which an administrator declares
// once for the operator's namespace (nodeBridge: one NMState policy, not
// one per Wukong).
const (
	BootImage  = "docker://quay.io/containerdisks/fedora:40"
	BridgeName = "br-bench"
	nicName    = "nic1"
	bootDisk   = "root"
	dataDisk   = "data"
)

var (
	bootSize = resource.MustParse("10Gi")
	dataSize = resource.MustParse("5Gi")
	memory   = resource.MustParse("1Gi")
)

// objName is the name of the i-th Wukong (or floor machine).
func objName(prefix string, i int) string { return fmt.Sprintf("%s-%04d", prefix, i) }

// newWukong is the i-th benchmark Wukong in namespace ns.
func newWukong(ns string, i int) *v1alpha1.Wukong {
	return &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Name: objName("wk", i), Namespace: ns},
		Spec: v1alpha1.WukongSpec{
			CPU:    1,
			Memory: memory.DeepCopy(),
			Disks: []v1alpha1.DiskSpec{
				{Name: bootDisk, Size: bootSize.DeepCopy(), Boot: true, Image: BootImage},
				{Name: dataDisk, Size: dataSize.DeepCopy()},
			},
			Networks: []v1alpha1.NetworkSpec{{Name: nicName, Type: v1alpha1.NetworkTypeBridge, BridgeName: BridgeName}},
		},
	}
}

// MissingClass is the StorageClass the Stalled Wukongs' disks name; it
// never exists.
const MissingClass = "bench-missing-class"

// stalledWukong is the i-th Stalled Wukong in ns: disks blank disks naming
// MissingClass.
func stalledWukong(ns string, i, disks int) *v1alpha1.Wukong {
	w := &v1alpha1.Wukong{
		ObjectMeta: metav1.ObjectMeta{Name: objName("stalled", i), Namespace: ns},
		Spec:       v1alpha1.WukongSpec{CPU: 1, Memory: memory.DeepCopy()},
	}
	for d := range disks {
		w.Spec.Disks = append(w.Spec.Disks, v1alpha1.DiskSpec{Name: fmt.Sprintf("d%d", d), Size: dataSize.DeepCopy(), StorageClassName: MissingClass})
	}
	return w
}

// nodeBridge is the administrator's declaration of br-bench (uplink eth1)
// for the Wukongs in namespace ns.
func nodeBridge(ns string) *v1alpha1.NodeBridge {
	return &v1alpha1.NodeBridge{
		ObjectMeta: metav1.ObjectMeta{Name: BridgeName},
		Spec: v1alpha1.NodeBridgeSpec{
			Uplinks:           []string{"eth1"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
		},
	}
}

// floorObjects are the children the operator would write for the i-th
// Wukong, built with the same lib builders and the same inputs the operator
// maps the Wukong's spec to (operator/mapping), in
// creation order: NAD, DataVolume (boot), DataVolume (blank data disk, as
// the operator writes blank disks since #30), cloud-init Secret,
// VirtualMachine.
// The owner references are dropped: there is no Wukong to own them (the
// garbage collector would delete children of a missing owner).
func floorObjects(ns string, i int) ([]client.Object, error) {
	name := objName("fl", i)
	owner := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: "00000000-0000-0000-0000-000000000000"}}
	owner.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Wukong"))

	att := network.Attachment{Name: nicName, Type: network.TypeBridge, Bridge: BridgeName}
	nad, err := network.BuildNAD(identity.Wukong, owner, att)
	if err != nil {
		return nil, err
	}
	boot := storage.Disk{Name: bootDisk, Size: bootSize.DeepCopy(), Source: BootImage}
	data := storage.Disk{Name: dataDisk, Size: dataSize.DeepCopy()}
	dv, err := storage.BuildDataVolume(identity.Wukong, owner, boot)
	if err != nil {
		return nil, err
	}
	dataDV, err := storage.BuildDataVolume(identity.Wukong, owner, data)
	if err != nil {
		return nil, err
	}
	rs := kubevirtv1.RunStrategyAlways // the operator's run strategy when startStrategy and highAvailability are unset
	m := kubevirt.Machine{
		Name: name, CPU: 1, Memory: memory.DeepCopy(), RunStrategy: rs, PodNetwork: true,
		CloudInit: kubevirt.CloudInit{Hostname: name},
		Disks: []kubevirt.Disk{
			{Name: bootDisk, ClaimName: storage.ClaimName(name, bootDisk), DataVolume: true, Boot: true},
			{Name: dataDisk, ClaimName: storage.ClaimName(name, dataDisk), DataVolume: true},
		},
		NICs: []kubevirt.NIC{{
			Name: nicName, NAD: ns + "/" + network.NADName(name, nicName),
			MAC: network.MAC(ns, name, nicName), Binding: kubevirt.BindingBridge,
		}},
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	secret, err := kubevirt.BuildCloudInitSecret(identity.Wukong, owner, m)
	if err != nil {
		return nil, err
	}
	vm := kubevirt.BuildVM(identity.Wukong, owner, m)
	objs := []client.Object{nad, dv, dataDV, secret, vm}
	for _, o := range objs {
		o.SetOwnerReferences(nil)
	}
	return objs, nil
}

// noiseSecret and noisePVC are unrelated objects the manager must not cache.
func noiseSecret(ns string, i, size int) *corev1.Secret {
	data := make([]byte, size)
	for j := range data {
		data[j] = byte('a' + (i+j)%26)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: objName("noise", i), Namespace: ns},
		Data:       map[string][]byte{"blob": data},
	}
}

// noisePVC uses the WaitForFirstConsumer class: with no VM using it, it stays
// Pending and the storage simulator leaves it alone.
func noisePVC(ns string, i int, class string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: objName("noise", i), Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

package manager

import (
	"testing"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func ctrlRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}
}

var (
	wukongRef = ctrlRef("vm.novasphere.dev/v1alpha1", "Wukong", "web", "w-uid")
	managed   = map[string]string{"app.kubernetes.io/managed-by": "wukong", "vm.novasphere.dev/wukong": "web"}
)

func objMeta(name string, refs ...metav1.OwnerReference) metav1.ObjectMeta {
	labels := map[string]string{"tenant": "x"}
	for k, v := range managed {
		labels[k] = v
	}
	return metav1.ObjectMeta{
		Name: name, Namespace: "ns", UID: types.UID(name + "-uid"), ResourceVersion: "7",
		Labels: labels, Annotations: map[string]string{"note": "big", StubAnnotation: "forged"},
		Finalizers:      []string{"example.com/keep"},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		OwnerReferences: append([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "other", UID: "o"}}, refs...),
	}
}

// TestChildTransform: the cache keeps whole (minus managedFields) exactly
// the objects a Wukong or NodeBridge controls, directly or through a
// VirtualMachine / DataVolume it controls (by UID); everything else
// carrying the managed-by label becomes a metadata-only stub that still
// says whose it is.
func TestChildTransform(t *testing.T) {
	scheme := mustScheme(t)
	vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "vm-uid", OwnerReferences: []metav1.OwnerReference{wukongRef}}}
	tenantVM := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "ns", UID: "mine-uid"}}
	dv := &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Name: "web-root", Namespace: "ns", UID: "dv-uid", OwnerReferences: []metav1.OwnerReference{wukongRef}}}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(vm, tenantVM, dv).Build()
	all := func(schema.GroupVersionKind) bool { return true }
	noCDI := func(gvk schema.GroupVersionKind) bool { return gvk.Group != cdiv1.SchemeGroupVersion.Group }

	data := map[string][]byte{"userdata": make([]byte, 1<<20)}
	cases := []struct {
		name      string
		installed func(schema.GroupVersionKind) bool
		in        client.Object
		whole     bool
	}{
		{"secret a Wukong controls", all, &corev1.Secret{ObjectMeta: objMeta("web-cloudinit", wukongRef), Data: data}, true},
		{"policy a NodeBridge controls", all, &nmstatev1.NodeNetworkConfigurationPolicy{ObjectMeta: objMeta("wukong-br-br1", ctrlRef("vm.novasphere.dev/v1alpha1", "NodeBridge", "br1", "b-uid"))}, true},
		{"policy of a NodeBridge under another name", all, &nmstatev1.NodeNetworkConfigurationPolicy{ObjectMeta: objMeta("br1", ctrlRef("vm.novasphere.dev/v1alpha1", "NodeBridge", "br1", "b-uid"))}, false},
		{"secret naming the Wukong as controller under another name", all, &corev1.Secret{ObjectMeta: objMeta("web-blob-7", wukongRef), Data: data}, false},
		{"VM a Wukong controls", all, &kubevirtv1.VirtualMachine{ObjectMeta: objMeta("web", wukongRef)}, true},
		{"VM naming the Wukong under another name", all, &kubevirtv1.VirtualMachine{ObjectMeta: objMeta("web2", wukongRef)}, false},
		{"PVC of a Wukong's disk", all, &corev1.PersistentVolumeClaim{ObjectMeta: objMeta("web-data", wukongRef)}, true},
		{"PVC naming the Wukong without its prefix", all, &corev1.PersistentVolumeClaim{ObjectMeta: objMeta("data", wukongRef)}, false},
		{"claim named otherwise than its DataVolume", all, &corev1.PersistentVolumeClaim{ObjectMeta: objMeta("copy", ctrlRef("cdi.kubevirt.io/v1beta1", "DataVolume", "web-root", "dv-uid"))}, false},
		{"labelled secret without controller", all, &corev1.Secret{ObjectMeta: objMeta("keys"), Data: data}, false},
		{"labelled secret another kind controls", all, &corev1.Secret{ObjectMeta: objMeta("s", ctrlRef("apps/v1", "Deployment", "d", "d-uid")), Data: data}, false},
		{"Wukong kind of another group", all, &corev1.Secret{ObjectMeta: objMeta("s", ctrlRef("example.com/v1", "Wukong", "web", "w-uid")), Data: data}, false},
		{"instance of the Wukong's VM", all, &kubevirtv1.VirtualMachineInstance{ObjectMeta: objMeta("web", ctrlRef("kubevirt.io/v1", "VirtualMachine", "web", "vm-uid"))}, true},
		{"instance naming the VM with another UID", all, &kubevirtv1.VirtualMachineInstance{ObjectMeta: objMeta("web", ctrlRef("kubevirt.io/v1", "VirtualMachine", "web", "old-uid"))}, false},
		{"instance of a tenant's VM", all, &kubevirtv1.VirtualMachineInstance{ObjectMeta: objMeta("mine", ctrlRef("kubevirt.io/v1", "VirtualMachine", "mine", "mine-uid"))}, false},
		{"instance of a VM not cached", all, &kubevirtv1.VirtualMachineInstance{ObjectMeta: objMeta("gone", ctrlRef("kubevirt.io/v1", "VirtualMachine", "gone", "g-uid"))}, false},
		{"claim of the Wukong's DataVolume", all, &corev1.PersistentVolumeClaim{ObjectMeta: objMeta("web-root", ctrlRef("cdi.kubevirt.io/v1beta1", "DataVolume", "web-root", "dv-uid"))}, true},
		{"claim of a DataVolume, CDI not served", noCDI, &corev1.PersistentVolumeClaim{ObjectMeta: objMeta("web-root", ctrlRef("cdi.kubevirt.io/v1beta1", "DataVolume", "web-root", "dv-uid"))}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &ChildTransform{Reader: reader, Installed: tc.installed}
			before := tc.in.DeepCopyObject().(client.Object)
			outAny, err := tr.Transform(tc.in)
			require.NoError(t, err)
			out := outAny.(client.Object)
			assert.Nil(t, out.GetManagedFields())
			assert.Equal(t, before.GetName(), out.GetName())
			assert.Equal(t, before.GetNamespace(), out.GetNamespace())
			assert.Equal(t, before.GetUID(), out.GetUID())
			assert.Equal(t, before.GetResourceVersion(), out.GetResourceVersion())
			assert.Equal(t, metav1.GetControllerOf(before), metav1.GetControllerOf(out), "the controller reference decides adoption")
			if tc.whole {
				assert.False(t, IsStub(out))
				assert.NotContains(t, out.GetAnnotations(), StubAnnotation, "a forged stub mark is dropped")
				assert.Equal(t, before.GetLabels(), out.GetLabels())
				assert.Len(t, out.GetOwnerReferences(), len(before.GetOwnerReferences()))
				if s, ok := out.(*corev1.Secret); ok {
					assert.Equal(t, data, s.Data)
				}
				return
			}
			assert.True(t, IsStub(out))
			assert.Equal(t, map[string]string{StubAnnotation: "true"}, out.GetAnnotations())
			assert.Equal(t, managed, out.GetLabels(), "only Wukong's own labels stay")
			assert.Empty(t, out.GetFinalizers())
			assert.LessOrEqual(t, len(out.GetOwnerReferences()), 1)
			if s, ok := out.(*corev1.Secret); ok {
				assert.Nil(t, s.Data)
			}
		})
	}
	t.Run("not an object", func(t *testing.T) {
		tomb := toolscache.DeletedFinalStateUnknown{Key: "ns/x"}
		out, err := (&ChildTransform{}).Transform(tomb)
		require.NoError(t, err)
		assert.Equal(t, tomb, out)
	})
}

// TestStripManagedFields: the transform of every other kind only drops
// managedFields.
func TestStripManagedFields(t *testing.T) {
	s := &corev1.Namespace{ObjectMeta: objMeta("n")}
	out, err := StripManagedFields(s)
	require.NoError(t, err)
	assert.Nil(t, out.(*corev1.Namespace).ManagedFields)
	assert.Equal(t, "big", out.(*corev1.Namespace).Annotations["note"])
}

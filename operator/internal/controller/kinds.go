package controller

import (
	"reflect"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The kinds of CachedKinds, by name where a caller needs one (GVKDataVolume
// and GVKNAD also operator/manager's tests).
var (
	gvkSecret                 = corev1.SchemeGroupVersion.WithKind("Secret")
	gvkPersistentVolumeClaim  = corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim")
	gvkVirtualMachine         = kubevirtv1.GroupVersion.WithKind("VirtualMachine")
	gvkVirtualMachineInstance = kubevirtv1.GroupVersion.WithKind("VirtualMachineInstance")
	GVKDataVolume             = cdiv1.SchemeGroupVersion.WithKind("DataVolume")
	GVKNAD                    = nadv1.SchemeGroupVersion.WithKind("NetworkAttachmentDefinition")
	gvkNNCP                   = nmstatev1.GroupVersion.WithKind("NodeNetworkConfigurationPolicy")
	// gvkKubeVirt is the KubeVirt CR: it says which network binding
	// plugins are registered (see bindingMessage).
	gvkKubeVirt = kubevirtv1.GroupVersion.WithKind("KubeVirt")
	// The cluster instance types and preferences a Wukong may name
	// (watched when served, see SetupWithManager).
	gvkClusterInstancetype = instancetypev1beta1.SchemeGroupVersion.WithKind("VirtualMachineClusterInstancetype")
	gvkClusterPreference   = instancetypev1beta1.SchemeGroupVersion.WithKind("VirtualMachineClusterPreference")
)

// UncachedKind reports whether obj is of a kind the reconcilers read from
// the API server, never through an informer: the namespaced instance types
// and preferences a Wukong names. Any tenant can create any number of
// them, and an informer would keep every one of every namespace in the
// operator's memory (one tenant's objects costing all; the same reason
// NADs and password Secrets are not cached). One API request per read.
func UncachedKind(obj client.Object) bool {
	switch obj.(type) {
	case *instancetypev1beta1.VirtualMachineInstancetype, *instancetypev1beta1.VirtualMachinePreference:
		return true
	}
	return false
}

// CachedKind is a kind the controllers read through the manager's cache
// with a setting of its own.
type CachedKind struct {
	GVK schema.GroupVersionKind
	// New returns an empty object of the kind.
	New func() client.Object
	// Optional: served only when its CRD is installed (KubeVirt, CDI,
	// Multus, NMState). A kind that is not served is neither cached nor
	// watched, so the operator starts (and deletes Wukongs) on a cluster
	// without it and reports what is missing in conditions instead.
	Optional bool
	// Labelled: Wukong writes the kind (or, for the VMI, KubeVirt copies
	// the VM's labels onto it), so the cache holds only the objects
	// carrying Wukong's managed-by label, and a read the cache misses goes
	// to the API server (an object the user brings, or one someone else
	// made under a name Wukong wants, is unlabelled). Of those, only the
	// ones a Wukong or NodeBridge controls are held whole; one someone else
	// labelled is a metadata stub, read from the API server when a
	// reconcile asks for it (operator/manager ChildTransform,
	// FallbackClient). Otherwise the kind is cached whole, from every
	// namespace.
	Labelled bool
}

// CachedKinds is the one list of those kinds: the manager configures its
// cache from it, FallbackClient its API-server reads, and the controllers
// their watches (SetupWithManager).
var CachedKinds = []CachedKind{
	{GVK: gvkSecret, New: func() client.Object { return &corev1.Secret{} }, Labelled: true},
	{GVK: gvkPersistentVolumeClaim, New: func() client.Object { return &corev1.PersistentVolumeClaim{} }, Labelled: true},
	{GVK: gvkVirtualMachine, New: func() client.Object { return &kubevirtv1.VirtualMachine{} }, Optional: true, Labelled: true},
	{GVK: gvkVirtualMachineInstance, New: func() client.Object { return &kubevirtv1.VirtualMachineInstance{} }, Optional: true, Labelled: true},
	{GVK: GVKDataVolume, New: func() client.Object { return &cdiv1.DataVolume{} }, Optional: true, Labelled: true},
	{GVK: GVKNAD, New: func() client.Object { return &nadv1.NetworkAttachmentDefinition{} }, Optional: true, Labelled: true},
	{GVK: gvkNNCP, New: func() client.Object { return &nmstatev1.NodeNetworkConfigurationPolicy{} }, Optional: true, Labelled: true},
	// One per cluster, usually in namespace kubevirt: cached from every
	// namespace even when the manager watches only some.
	{GVK: gvkKubeVirt, New: func() client.Object { return &kubevirtv1.KubeVirt{} }, Optional: true},
}

// Served reports whether k is served, given installed (which answers for
// optional kinds; nil means every kind is served).
func (k CachedKind) Served(installed func(schema.GroupVersionKind) bool) bool {
	return !k.Optional || installed == nil || installed(k.GVK)
}

// labelledTypes are the Go types of the Labelled kinds.
var labelledTypes = func() map[reflect.Type]bool {
	out := map[reflect.Type]bool{}
	for _, k := range CachedKinds {
		if k.Labelled {
			out[reflect.TypeOf(k.New())] = true
		}
	}
	return out
}()

// IsLabelledKind reports whether obj is of a Labelled kind of CachedKinds.
func IsLabelledKind(obj client.Object) bool { return labelledTypes[reflect.TypeOf(obj)] }

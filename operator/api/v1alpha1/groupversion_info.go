// Package v1alpha1 is the Wukong API: one small custom resource that becomes a
// KubeVirt virtual machine with its disks and networks.
//
// +kubebuilder:object:generate=true
// +groupName=vm.novasphere.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the Wukong API.
	GroupVersion = schema.GroupVersion{Group: "vm.novasphere.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API types with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the API types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Wukong{}, &WukongList{}, &NodeBridge{}, &NodeBridgeList{},
		&WukongSnapshot{}, &WukongSnapshotList{}, &WukongRestore{}, &WukongRestoreList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Package v1alpha1 is the Wukong API: one small custom resource that becomes a
// KubeVirt virtual machine with its disks and networks.
//
// +kubebuilder:object:generate=true
// +groupName=vm.novasphere.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the Wukong API.
	GroupVersion = schema.GroupVersion{Group: "vm.novasphere.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

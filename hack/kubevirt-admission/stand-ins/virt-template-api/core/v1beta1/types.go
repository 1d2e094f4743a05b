// Package v1beta1 is a stand-in for the template.kubevirt.io/v1beta1 API:
// the VirtualMachineTemplate type KubeVirt's informer factory decodes into,
// with object metadata only.
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is template.kubevirt.io/v1beta1.
var SchemeGroupVersion = schema.GroupVersion{Group: "template.kubevirt.io", Version: "v1beta1"}

// VirtualMachineTemplate carries only type and object metadata; its spec
// is kept as raw JSON.
type VirtualMachineTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              runtime.RawExtension `json:"spec,omitempty"`
}

// VirtualMachineTemplateList is a list of VirtualMachineTemplates.
type VirtualMachineTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualMachineTemplate `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (in *VirtualMachineTemplate) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(VirtualMachineTemplate)
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *VirtualMachineTemplateList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(VirtualMachineTemplateList)
	out.TypeMeta = in.TypeMeta
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range in.Items {
		out.Items = append(out.Items, *in.Items[i].DeepCopyObject().(*VirtualMachineTemplate))
	}
	return out
}

// AddToScheme registers both types under SchemeGroupVersion.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &VirtualMachineTemplate{}, &VirtualMachineTemplateList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}

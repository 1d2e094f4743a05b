// Package v1beta1 is a stand-in for the template.kubevirt.io/v1beta1 API:
// the VirtualMachineTemplate type KubeVirt's informer factory decodes into
// and the spec and status fields virt-controller's export controller reads.
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is template.kubevirt.io/v1beta1.
var SchemeGroupVersion = schema.GroupVersion{Group: "template.kubevirt.io", Version: "v1beta1"}

// VirtualMachineTemplate is a parameterised VirtualMachine
// (https://github.com/kubevirt/virt-template): the fields KubeVirt v1.9.0's
// informers and its VirtualMachineExport controller
// (pkg/storage/export/export/vmtemplate-source.go) read.
type VirtualMachineTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualMachineTemplateSpec   `json:"spec,omitempty"`
	Status            VirtualMachineTemplateStatus `json:"status,omitempty"`
}

// VirtualMachineTemplateSpec is the VirtualMachine (raw JSON, with ${NAME}
// placeholders) and the parameters that fill it.
type VirtualMachineTemplateSpec struct {
	VirtualMachine *runtime.RawExtension `json:"virtualMachine,omitempty"`
	Parameters     []Parameter           `json:"parameters,omitempty"`
}

// Parameter is one ${Name} placeholder of a template: Value is its default;
// Generate and From ask for a generated value; Required rejects processing
// without a value.
type Parameter struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
	Value       string `json:"value,omitempty"`
	Generate    string `json:"generate,omitempty"`
	From        string `json:"from,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// VirtualMachineTemplateStatus carries the template's conditions.
type VirtualMachineTemplateStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ConditionReady is the condition type true once a template can be used.
const ConditionReady = "Ready"

// DeepCopy returns a deep copy of in (nil for nil).
func (in *VirtualMachineTemplate) DeepCopy() *VirtualMachineTemplate {
	if in == nil {
		return nil
	}
	out := new(VirtualMachineTemplate)
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.VirtualMachine != nil {
		out.Spec.VirtualMachine = in.Spec.VirtualMachine.DeepCopy()
	}
	out.Spec.Parameters = append([]Parameter(nil), in.Spec.Parameters...)
	for _, c := range in.Status.Conditions {
		out.Status.Conditions = append(out.Status.Conditions, *c.DeepCopy())
	}
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *VirtualMachineTemplate) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	return in.DeepCopy()
}

// VirtualMachineTemplateList is a list of VirtualMachineTemplates.
type VirtualMachineTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualMachineTemplate `json:"items"`
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

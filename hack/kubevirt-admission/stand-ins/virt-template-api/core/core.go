// Package core holds the API group and resource names of KubeVirt's
// VirtualMachineTemplate (https://github.com/kubevirt/virt-template).
package core

const (
	// GroupName is the API group of VirtualMachineTemplates.
	GroupName = "template.kubevirt.io"
	// SingularResourceName is the singular resource name, also the name of
	// KubeVirt's VirtualMachineExport index over template sources.
	SingularResourceName = "virtualmachinetemplate"
	// PluralResourceName is the resource served by the API server.
	PluralResourceName = "virtualmachinetemplates"
)

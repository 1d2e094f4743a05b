// Stand-in for kubevirt.io/virt-template-engine v0.2.0 (not served by the Go
// module proxy). Only virtctl imports it; kubevirt-admission does not, but
// KubeVirt's go.mod requires the module. See ../README.md.
module kubevirt.io/virt-template-engine

go 1.24.0

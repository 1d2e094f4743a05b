// Stand-in for kubevirt.io/virt-template-api v0.2.0 (not served by the Go
// module proxy): only the names KubeVirt v1.9.0's admission and informer
// code refers to. See ../README.md.
module kubevirt.io/virt-template-api

go 1.24.0

require k8s.io/apimachinery v0.34.2

// Stand-in for libguestfs.org/libnbd (the Go bindings of libnbd), which the
// Go module proxy refuses to serve (403). Only the part of the API that
// KubeVirt v1.9.0's pkg/storage/nbdclient calls, bound by cgo to the libnbd
// C library (Debian's libnbd-dev). See ../../README.md.
module libguestfs.org/libnbd

go 1.24.0

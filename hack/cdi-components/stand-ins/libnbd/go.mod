// Stand-in for libguestfs.org/libnbd v1.11.5, which the Go module proxy does
// not serve (403 Forbidden): pure Go, every handle fails (libnbd.go).
module libguestfs.org/libnbd

go 1.24.0

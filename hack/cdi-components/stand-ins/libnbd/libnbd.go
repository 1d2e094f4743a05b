// Package libnbd stands in for the Go bindings of libnbd
// (libguestfs.org/libnbd v1.11.5) that CDI v1.65.0's importer imports, with
// the names and signatures that pkg/importer/vddk-datasource_amd64.go uses.
//
// The real bindings are not served by the Go module proxy and Debian packages
// only the C library. CDI calls libnbd only for VDDK imports (VMware disks
// through nbdkit's vddk plugin, which needs VMware's proprietary VDDK
// library and is not available here), so this stand-in is pure Go and every
// handle fails at Create with ErrUnavailable: a VDDK DataVolume fails with a
// clear error instead of the importer failing to build. HTTP, registry,
// upload and blank imports, which Wukong uses, never reach this package.
package libnbd

import "errors"

// ErrUnavailable is the error of Create and of every method: this build has
// no libnbd (hack/cdi-components/stand-ins/libnbd).
var ErrUnavailable = errors.New("libnbd is not available in this CDI build (VDDK imports are unsupported; see docs/notes/real-cdi-multus.md)")

// Flags and states of the NBD protocol's block status, as libnbd names them
// (libnbd's generated bindings.go: CMD_FLAG_REQ_ONE = 0x08,
// STATE_HOLE = 1, STATE_ZERO = 2).
const (
	CMD_FLAG_REQ_ONE = uint32(0x08) //nolint:revive // libnbd's name
	STATE_HOLE       = uint32(1)    //nolint:revive // libnbd's name
	STATE_ZERO       = uint32(2)    //nolint:revive // libnbd's name
)

// LibnbdError is libnbd's error type: a message and an errno.
type LibnbdError struct {
	Op     string
	Errmsg string
	Errno  int
}

// Error returns "<op>: <message>".
func (e *LibnbdError) Error() string { return e.Op + ": " + e.Errmsg }

// Libnbd is a handle; none is ever created by this stand-in.
type Libnbd struct{}

// ExtentCallback is called once per metadata context with pairs of
// (length, flags) in entries; it returns 0 or a negative errno.
type ExtentCallback func(metacontext string, offset uint64, entries []uint32, err *int) int

// PreadOptargs are nbd_pread's optional arguments.
type PreadOptargs struct {
	FlagsSet bool
	Flags    uint32
}

// BlockStatusOptargs are nbd_block_status's optional arguments.
type BlockStatusOptargs struct {
	FlagsSet bool
	Flags    uint32
}

// Create always fails with ErrUnavailable.
func Create() (*Libnbd, error) { return nil, ErrUnavailable }

// Close releases nothing and returns nil.
func (*Libnbd) Close() *LibnbdError { return nil }

// AddMetaContext fails with ErrUnavailable.
func (*Libnbd) AddMetaContext(string) error { return ErrUnavailable }

// ConnectUri fails with ErrUnavailable.
func (*Libnbd) ConnectUri(string) error { return ErrUnavailable } //nolint:revive // libnbd's name

// GetSize fails with ErrUnavailable.
func (*Libnbd) GetSize() (uint64, error) { return 0, ErrUnavailable }

// Pread fails with ErrUnavailable.
func (*Libnbd) Pread([]byte, uint64, *PreadOptargs) error { return ErrUnavailable }

// BlockStatus fails with ErrUnavailable.
func (*Libnbd) BlockStatus(uint64, uint64, ExtentCallback, *BlockStatusOptargs) error {
	return ErrUnavailable
}

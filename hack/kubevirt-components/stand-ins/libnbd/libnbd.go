// Package libnbd binds the part of libnbd's C API
// (https://libguestfs.org/libnbd.3.html) that KubeVirt v1.9.0's
// pkg/storage/nbdclient uses, with the names and signatures of libnbd's own
// Go bindings (golang/bindings.go in libnbd's repository): Create, Close,
// SetExportName, ConnectUnix, AddMetaContext, CanMetaContext, GetSize,
// Pread and BlockStatus64. It needs libnbd >= 1.18 (nbd_block_status_64;
// Debian trixie ships 1.22) and cgo.
package libnbd

/*
#cgo pkg-config: libnbd
#include <stdlib.h>
#include <libnbd.h>

int64_t wukong_block_status_64(struct nbd_handle *h, uint64_t count, uint64_t offset, uintptr_t handle);
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// Meta contexts (NBD protocol, libnbd.h LIBNBD_CONTEXT_*).
const (
	CONTEXT_BASE_ALLOCATION   = "base:allocation"
	CONTEXT_QEMU_DIRTY_BITMAP = "qemu:dirty-bitmap:"
)

// Extent flags (libnbd.h LIBNBD_STATE_*): HOLE and ZERO in base:allocation,
// DIRTY in qemu:dirty-bitmap:*.
const (
	STATE_HOLE  uint32 = 1
	STATE_ZERO  uint32 = 2
	STATE_DIRTY uint32 = 1
)

// LibnbdExtent is one extent of a block-status reply (nbd_extent): Length
// bytes with Flags (STATE_*).
type LibnbdExtent struct {
	Length uint64
	Flags  uint64
}

// ExtentCallback64 receives the extents of a block-status reply for one meta
// context, starting at offset. It returns 0, or -1 after setting *error to
// an errno value.
type ExtentCallback64 func(metacontext string, offset uint64, entries []LibnbdExtent, error *int) int

// PreadOptargs and BlockStatus64Optargs are the optional arguments; nil
// means none (flags 0).
type (
	PreadOptargs         struct{}
	BlockStatus64Optargs struct{}
)

// Libnbd is a libnbd handle (struct nbd_handle); not safe for use after
// Close.
type Libnbd struct{ h *C.struct_nbd_handle }

// LibnbdError is libnbd's last error on this thread (nbd_get_error,
// nbd_get_errno) with the call that failed.
type LibnbdError struct {
	Op     string
	Errmsg string
	Errno  int
}

func (e *LibnbdError) Error() string {
	return fmt.Sprintf("libnbd: %s: %s (errno %d)", e.Op, e.Errmsg, e.Errno)
}

func lastError(op string) error {
	return &LibnbdError{Op: op, Errmsg: C.GoString(C.nbd_get_error()), Errno: int(C.nbd_get_errno())}
}

var errClosed = errors.New("libnbd: handle is closed")

// Create makes a handle (nbd_create).
func Create() (*Libnbd, error) {
	h := C.nbd_create()
	if h == nil {
		return nil, lastError("create")
	}
	return &Libnbd{h: h}, nil
}

// Close closes the connection and frees the handle (nbd_close).
func (l *Libnbd) Close() error {
	if l.h == nil {
		return errClosed
	}
	C.nbd_close(l.h)
	l.h = nil
	return nil
}

func (l *Libnbd) cstring(op, s string, f func(*C.char) C.int) error {
	if l.h == nil {
		return errClosed
	}
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	if f(cs) == -1 {
		return lastError(op)
	}
	return nil
}

// SetExportName selects the export to connect to (nbd_set_export_name).
func (l *Libnbd) SetExportName(name string) error {
	return l.cstring("set_export_name", name, func(c *C.char) C.int { return C.nbd_set_export_name(l.h, c) })
}

// ConnectUnix connects to the NBD server on a Unix socket (nbd_connect_unix).
func (l *Libnbd) ConnectUnix(path string) error {
	return l.cstring("connect_unix", path, func(c *C.char) C.int { return C.nbd_connect_unix(l.h, c) })
}

// AddMetaContext asks for a meta context before connecting
// (nbd_add_meta_context).
func (l *Libnbd) AddMetaContext(name string) error {
	return l.cstring("add_meta_context", name, func(c *C.char) C.int { return C.nbd_add_meta_context(l.h, c) })
}

// CanMetaContext tells whether the server agreed to a meta context
// (nbd_can_meta_context).
func (l *Libnbd) CanMetaContext(name string) (bool, error) {
	if l.h == nil {
		return false, errClosed
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	r := C.nbd_can_meta_context(l.h, cs)
	if r == -1 {
		return false, lastError("can_meta_context")
	}
	return r == 1, nil
}

// GetSize returns the export's size in bytes (nbd_get_size).
func (l *Libnbd) GetSize() (uint64, error) {
	if l.h == nil {
		return 0, errClosed
	}
	r := C.nbd_get_size(l.h)
	if r == -1 {
		return 0, lastError("get_size")
	}
	return uint64(r), nil
}

// Pread reads len(buf) bytes at offset (nbd_pread, flags 0).
func (l *Libnbd) Pread(buf []byte, offset uint64, _ *PreadOptargs) error {
	if l.h == nil {
		return errClosed
	}
	if len(buf) == 0 {
		return nil
	}
	p := C.malloc(C.size_t(len(buf)))
	defer C.free(p)
	if C.nbd_pread(l.h, p, C.size_t(len(buf)), C.uint64_t(offset), 0) == -1 {
		return lastError("pread")
	}
	copy(buf, unsafe.Slice((*byte)(p), len(buf)))
	return nil
}

// BlockStatus64 asks for the extents of count bytes at offset and calls
// extent once per meta context in the reply (nbd_block_status_64, flags 0).
func (l *Libnbd) BlockStatus64(count, offset uint64, extent ExtentCallback64, _ *BlockStatus64Optargs) error {
	if l.h == nil {
		return errClosed
	}
	handle := cgo.NewHandle(extent)
	defer handle.Delete()
	if C.wukong_block_status_64(l.h, C.uint64_t(count), C.uint64_t(offset), C.uintptr_t(handle)) == -1 {
		return lastError("block_status_64")
	}
	return nil
}

package libnbd

/*
#include <stdint.h>
#include <libnbd.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// wukongExtent64 is the Go side of the nbd_extent64_callback that
// wukong_block_status_64 (trampoline.c) passes to libnbd: userData is the
// cgo.Handle of the ExtentCallback64.
//
//export wukongExtent64
func wukongExtent64(userData C.uintptr_t, metacontext *C.char, offset C.uint64_t, entries *C.nbd_extent, n C.size_t, cerr *C.int) C.int {
	cb := cgo.Handle(userData).Value().(ExtentCallback64)
	raw := unsafe.Slice(entries, int(n))
	ext := make([]LibnbdExtent, len(raw))
	for i := range raw {
		ext[i] = LibnbdExtent{Length: uint64(raw[i].length), Flags: uint64(raw[i].flags)}
	}
	e := int(*cerr)
	r := cb(C.GoString(metacontext), uint64(offset), ext, &e)
	*cerr = C.int(e)
	return C.int(r)
}

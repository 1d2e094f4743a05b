// C side of BlockStatus64: libnbd calls extent64 with the cgo.Handle of the
// Go callback as user_data.
#include <stdint.h>
#include <libnbd.h>
#include "_cgo_export.h"

static int extent64(void *user_data, const char *metacontext, uint64_t offset,
                    nbd_extent *entries, size_t nr_entries, int *error)
{
	return wukongExtent64((uintptr_t)user_data, (char *)metacontext, offset,
	                      entries, nr_entries, error);
}

int64_t wukong_block_status_64(struct nbd_handle *h, uint64_t count,
                               uint64_t offset, uintptr_t handle)
{
	nbd_extent64_callback cb = {
		.callback = extent64,
		.user_data = (void *)handle,
		.free = NULL,
	};
	return nbd_block_status_64(h, count, offset, cb, 0);
}

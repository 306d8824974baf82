// SPDX-License-Identifier: MIT
/*
 * Small library-wide helpers: version and error strings (pure functions, any context), and
 * line-aligned zeroed allocation (not for signal handlers: it calls the allocator).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *evr_version_string(void)
{
	return STR(EVR_VERSION_MAJOR) "." STR(EVR_VERSION_MINOR) "." STR(EVR_VERSION_PATCH);
}

const char *evr_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "success";
	case EINVAL:
		return "invalid argument";
	case ENOMEM:
		return "out of memory";
	case ENOSPC:
		return "ring full (record counted as lost)";
	case EMSGSIZE:
		return "record too large for the ring";
	case EDEADLK:
		return "writers nested too deep";
	case ESHUTDOWN:
		return "ring disabled";
	case EBADMSG:
		return "corrupt ring contents (skipped and counted)";
	case ETIMEDOUT:
		return "timed out";
	case EBADF:
		return "bad file descriptor";
	case ENOENT:
		return "no such object";
	case EACCES:
		return "permission denied";
	case EPROTO:
		return "incompatible layout version";
	default:
		return "unknown error";
	}
}

/*
 * Zeroed memory on cache lines of its own (64-byte aligned, size rounded up to whole lines):
 * for structures one thread writes per record while another CPU works next to them.
 */
void *evr__zalloc_lines(size_t size)
{
	size_t len = (size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, len ? len : 64);

	if (p)
		memset(p, 0, len ? len : 64);
	return p;
}

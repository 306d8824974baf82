// SPDX-License-Identifier: MIT
/*
 * Small library-wide helpers: version and error strings. Pure functions, any context.
 */
#define _GNU_SOURCE
#include <errno.h>

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

// SPDX-License-Identifier: MIT
/*
 * Memory behind rings: anonymous mappings, and memfds whose data area is mapped twice back to
 * back (the mirror) so that no record ever wraps for the writer or the reader.
 * Called at creation and destruction only; not on any hot path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

size_t evr__page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

int evr__map_anon(size_t page, uint64_t data_size, void **map, size_t *len)
{
	size_t n = page + (size_t)data_size;
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	*map = p;
	*len = n;
	return 0;
}

/*
 * Layout of the memfd: [control page][data]. Layout of the mapping:
 *
 *   base        base+page          base+page+size        base+page+2*size
 *   | control   | data (file page..)| data again (alias)  |
 */
int evr__map_mirror(size_t page, uint64_t data_size, int *fd_out, void **map, size_t *len)
{
	size_t size = (size_t)data_size, n = page + 2 * size;
	int fd, err;
	uint8_t *base;

	fd = memfd_create("evring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(page + size)) < 0 || evr__seal_size(fd) < 0)
		goto fail_errno;
	/* Reserve the whole range first so the two data views are adjacent. */
	base = mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		goto fail_errno;
	if (mmap(base, page + size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
		    MAP_FAILED ||
	    mmap(base + page + size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 (off_t)page) == MAP_FAILED) {
		err = -errno;
		munmap(base, n);
		close(fd);
		return err;
	}
	*fd_out = fd;
	*map = base;
	*len = n;
	return 0;
fail_errno:
	err = -errno;
	close(fd);
	return err;
}

/*
 * Whoever holds the fd could otherwise shrink the object under every mapping, and both sides
 * would die of SIGBUS. Named POSIX shm objects cannot be sealed: prefer memfds between
 * processes that do not trust each other (docs/design.md).
 */
int evr__seal_size(int fd)
{
	return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

void evr__unmap(void *map, size_t len, int fd)
{
	if (map)
		munmap(map, len);
	if (fd >= 0)
		close(fd);
}

/* Map one ring of a session at @at: control page and data from @file_off, then the data again. */
int evr__map_ring_views(int fd, uint64_t file_off, size_t page, uint64_t data_size, uint8_t *at)
{
	size_t size = (size_t)data_size;

	if (mmap(at, page + size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 (off_t)file_off) == MAP_FAILED ||
	    mmap(at + page + size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 (off_t)(file_off + page)) == MAP_FAILED)
		return -errno;
	return 0;
}

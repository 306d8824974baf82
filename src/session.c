// SPDX-License-Identifier: MIT
/*
 * Sessions: one shared-memory object (memfd or POSIX shm, mode 0600) holding a directory of
 * rings, created by one process and opened by others. Open validates every field against the
 * object's real size, copies the directory and never reads it again. Not async-signal-safe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

#define EVR_SESSION_SIZE_MAX (1ull << 40)

struct evr_session {
	int fd;
	uint32_t flags; /* EVR_SESSION_READER | EVR_SESSION_WRITER */
	size_t page;
	struct evr_session_hdr *hdr; /* the directory mapping: never read after open */
	size_t dir_size;
	uint8_t *rings_map; /* every ring: control page, data, data again */
	size_t rings_len;
	uint32_t nr_rings;
	struct evr_session_entry *dir; /* private, validated copy of the directory */
	struct evr_ring *rings;
	uint8_t *taken; /* writer role taken per ring */
	char *name; /* set if this handle created a named object */
	uint32_t policy; /* EVR_CHAN_* from the header, validated */
	struct evr_flight **flights; /* [nr_rings]: the handle of each flight ring, else NULL */
};

uint32_t evr__session_policy(const struct evr_session *s)
{
	return s->policy;
}

static int check_name(const char *name)
{
	size_t n;

	if (!name || name[0] != '/')
		return -EINVAL;
	n = strlen(name);
	if (n < 2 || n > 200 || strchr(name + 1, '/'))
		return -EINVAL;
	return 0;
}

/* Bytes of the object a ring takes, from its control page on. */
static size_t file_span(size_t page, const struct evr_session_entry *e)
{
	if (e->kind == EVR_KIND_FLIGHT)
		return evr__flight_span(page, e->data_size,
					evr__flight_page_size(e->flags, e->data_size));
	return page + (size_t)e->data_size;
}

/* Bytes of address space a ring's mapping takes: the data twice when mirrored. */
static size_t ring_span(size_t page, const struct evr_session_entry *e)
{
	if (e->kind == EVR_KIND_FLIGHT)
		return file_span(page, e);
	return page + 2 * (size_t)e->data_size;
}

/* Map every ring's control page and mirrored data from @fd, per the validated directory. */
static int map_rings(struct evr_session *s)
{
	size_t total = 0, at = 0;
	int err;

	for (uint32_t i = 0; i < s->nr_rings; i++)
		total += ring_span(s->page, &s->dir[i]);
	s->rings_map = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			    0);
	if (s->rings_map == MAP_FAILED) {
		s->rings_map = NULL;
		return -errno;
	}
	s->rings_len = total;
	for (uint32_t i = 0; i < s->nr_rings; i++) {
		const struct evr_session_entry *e = &s->dir[i];
		uint8_t *base = s->rings_map + at;
		uint32_t rflags = EVR_RING_MIRROR;

		if (e->kind == EVR_KIND_FLIGHT) {
			/* one plain view: records never cross a page, nothing wraps */
			if (mmap(base, file_span(s->page, e), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, s->fd, (off_t)e->offset) == MAP_FAILED)
				return -errno;
			s->rings[i].ctrl = (struct evr_ctrl *)base;
			s->rings[i].fd = -1;
			at += ring_span(s->page, e);
			continue;
		}
		err = evr__map_ring_views(s->fd, e->offset, s->page, e->data_size, base);
		if (err)
			return err;
		if (e->flags & EVR_CTRL_BACKWARD)
			rflags |= EVR_RING_OVERWRITE;
		if (e->kind == EVR_KIND_MPSC)
			rflags |= EVR_RING_MULTI;
		evr__ring_bind(&s->rings[i], (struct evr_ctrl *)base, base + s->page, e->data_size,
			       rflags);
		s->rings[i].fd = -1;
		at += ring_span(s->page, e);
	}
	return 0;
}

static struct evr_session *session_alloc(uint32_t nr_rings)
{
	struct evr_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = -1;
	s->page = evr__page_size();
	s->nr_rings = nr_rings;
	s->dir = calloc(nr_rings, sizeof(*s->dir));
	s->taken = calloc(nr_rings, 1);
	s->flights = calloc(nr_rings, sizeof(*s->flights));
	s->rings = evr__zalloc_lines(nr_rings * sizeof(*s->rings));
	if (!s->dir || !s->taken || !s->rings || !s->flights) {
		free(s->dir);
		free(s->taken);
		free(s->flights);
		free(s->rings);
		free(s);
		return NULL;
	}
	for (uint32_t i = 0; i < nr_rings; i++) {
		s->rings[i].fd = -1;
		s->rings[i].efd = -1;
	}
	return s;
}

void evr_session_close(struct evr_session *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->nr_rings; i++) {
		if (s->rings[i].efd >= 0)
			close(s->rings[i].efd);
		evr__flight_free(s->flights[i]);
	}
	if (s->rings_map)
		munmap(s->rings_map, s->rings_len);
	if (s->hdr)
		munmap(s->hdr, s->dir_size);
	if (s->fd >= 0)
		close(s->fd);
	free(s->name);
	free(s->dir);
	free(s->taken);
	free(s->flights);
	free(s->rings);
	free(s);
}

/* Make a handle for every flight ring, once its pages are laid out. */
static int bind_flights(struct evr_session *s)
{
	for (uint32_t i = 0; i < s->nr_rings; i++) {
		const struct evr_session_entry *e = &s->dir[i];
		int err;

		if (e->kind != EVR_KIND_FLIGHT)
			continue;
		err = evr__flight_bind(s->rings[i].ctrl, file_span(s->page, e), s->page,
				       e->data_size, e->flags, !!(s->flags & EVR_SESSION_WRITER),
				       !!(s->flags & EVR_SESSION_READER), &s->flights[i]);
		if (err)
			return err;
	}
	return 0;
}

/* Check one ring's flags, size and page size as create and every attacher see them. */
static int entry_check(size_t page, const struct evr_session_entry *e)
{
	if (e->kind == EVR_KIND_FLIGHT)
		return (e->flags & ~(EVR_CTRL_OVERWRITE | EVR_CTRL_STAMP |
				     EVR_CTRL_PAGE_SHIFT_MASK)) ||
				       !evr__flight_page_size(e->flags, e->data_size) ||
				       e->data_size > EVR_DATA_MAX ?
			       -EBADMSG :
			       0;
	if ((e->kind != EVR_KIND_SPSC && e->kind != EVR_KIND_MPSC) ||
	    !(e->flags & EVR_CTRL_MIRROR) || (e->flags & ~(EVR_CTRL_MIRROR | EVR_CTRL_BACKWARD)) ||
	    (e->kind == EVR_KIND_MPSC && (e->flags & EVR_CTRL_BACKWARD)))
		return -EBADMSG;
	if (!evr__is_pow2(e->data_size) || e->data_size < page || e->data_size > EVR_DATA_MAX)
		return -EBADMSG;
	return 0;
}

/* The directory entry for ring flags @rf (EVR_RING_*), or -EINVAL. */
static int entry_make(size_t page, uint32_t rf, uint64_t data_size, uint32_t fps,
		      struct evr_session_entry *e)
{
	const uint32_t plain = EVR_RING_OVERWRITE | EVR_RING_MULTI;

	memset(e, 0, sizeof(*e));
	e->data_size = data_size;
	if (rf & EVR_RING_FLIGHT) {
		if (rf & ~(EVR_RING_FLIGHT | EVR_RING_OVERWRITE | EVR_RING_STAMP) ||
		    !evr__is_pow2(fps) || fps < EVR_FLIGHT_PAGE_MIN || fps > EVR_FLIGHT_PAGE_MAX)
			return -EINVAL;
		e->kind = EVR_KIND_FLIGHT;
		e->flags = ((uint32_t)__builtin_ctz(fps) << 16) |
			   ((rf & EVR_RING_OVERWRITE) ? EVR_CTRL_OVERWRITE : 0) |
			   ((rf & EVR_RING_STAMP) ? EVR_CTRL_STAMP : 0);
	} else {
		if ((rf & ~plain) || (rf & plain) == plain)
			return -EINVAL;
		e->kind = (rf & EVR_RING_MULTI) ? EVR_KIND_MPSC : EVR_KIND_SPSC;
		e->flags = EVR_CTRL_MIRROR | ((rf & EVR_RING_OVERWRITE) ? EVR_CTRL_BACKWARD : 0);
	}
	return entry_check(page, e) ? -EINVAL : 0;
}

int evr_session_destroy(struct evr_session *s)
{
	int err = 0;

	if (!s)
		return -EINVAL;
	if (s->name && shm_unlink(s->name) < 0)
		err = -errno;
	evr_session_close(s);
	return err;
}

int evr_session_create(const struct evr_session_opts *o, struct evr_session **out)
{
	return evr__session_create(o, NULL, 0, out);
}

/* @ring_flags: per-ring EVR_RING_* (NULL: o->ring_flags for all); @policy: EVR_CHAN_* or 0 */
int evr__session_create(const struct evr_session_opts *o, const uint32_t *ring_flags,
			uint32_t policy, struct evr_session **out)
{
	struct evr_session *s;
	size_t page = evr__page_size(), dir_size, total, off;
	struct evr_session_entry e;
	uint32_t fps = 4096;
	struct timespec now;
	int err;

	if (!o || !out || o->sz < offsetof(struct evr_session_opts, data_size) + 8 || o->sz > 4096)
		return -EINVAL;
	for (size_t i = sizeof(*o); i < o->sz; i++)
		if (((const uint8_t *)o)[i])
			return -EINVAL;
	if (o->sz >= offsetof(struct evr_session_opts, pad) + 4 &&
	    (o->flight_page_size || o->pad)) {
		if (o->pad)
			return -EINVAL;
		fps = o->flight_page_size;
	}
	if (!o->nr_rings || o->nr_rings > EVR_SESSION_MAX_RINGS)
		return -EINVAL;
	if (o->name && check_name(o->name))
		return -EINVAL;
	dir_size = sizeof(struct evr_session_hdr) + o->nr_rings * sizeof(struct evr_session_entry);
	dir_size = (dir_size + page - 1) & ~(page - 1);
	total = dir_size;
	for (uint32_t i = 0; i < o->nr_rings; i++) {
		if (entry_make(page, ring_flags ? ring_flags[i] : o->ring_flags, o->data_size, fps,
			       &e))
			return -EINVAL;
		total += file_span(page, &e);
		if (total > EVR_SESSION_SIZE_MAX)
			return -EINVAL;
	}

	s = session_alloc(o->nr_rings);
	if (!s)
		return -ENOMEM;
	s->flags = EVR_SESSION_READER | EVR_SESSION_WRITER;
	if (o->name) {
		s->fd = shm_open(o->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (s->fd < 0) {
			err = -errno;
			goto fail;
		}
		s->name = strdup(o->name);
		if (!s->name) {
			shm_unlink(o->name);
			err = -ENOMEM;
			goto fail;
		}
	} else {
		s->fd = memfd_create("evring-session", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (s->fd < 0) {
			err = -errno;
			goto fail;
		}
		if (fchmod(s->fd, 0600) < 0) {
			err = -errno;
			goto fail;
		}
	}
	if (ftruncate(s->fd, (off_t)total) < 0 || (!o->name && evr__seal_size(s->fd) < 0)) {
		err = -errno;
		goto fail_unlink;
	}
	s->dir_size = dir_size;
	s->hdr = mmap(NULL, dir_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->hdr == MAP_FAILED) {
		s->hdr = NULL;
		err = -errno;
		goto fail_unlink;
	}
	off = dir_size;
	for (uint32_t i = 0; i < o->nr_rings; i++) {
		struct evr_session_entry *d = &s->dir[i];

		entry_make(page, ring_flags ? ring_flags[i] : o->ring_flags, o->data_size, fps, d);
		d->offset = off;
		d->ring_id = i;
		off += file_span(page, d);
	}
	memcpy(s->hdr->entries, s->dir, o->nr_rings * sizeof(*s->dir));
	err = map_rings(s);
	if (err)
		goto fail_unlink;
	for (uint32_t i = 0; i < o->nr_rings; i++) {
		if (s->dir[i].kind == EVR_KIND_FLIGHT) {
			evr__flight_init(s->rings[i].ctrl, page, o->data_size, s->dir[i].flags, i);
			evr__clock_publish(s->rings[i].ctrl);
			continue;
		}
		evr__ring_init_ctrl(s->rings[i].ctrl, page, o->data_size, s->rings[i].flags, i);
		evr__clock_publish(s->rings[i].ctrl);
		evr__ring_take_writer(&s->rings[i]);
		s->taken[i] = 1;
	}
	err = bind_flights(s);
	if (err)
		goto fail_unlink;
	s->policy = policy;
	s->hdr->chan_policy = policy;
	clock_gettime(CLOCK_REALTIME, &now);
	s->hdr->version = EVR_SESSION_VERSION;
	s->hdr->compat = EVR_SESSION_COMPAT;
	s->hdr->size = total;
	s->hdr->created_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	s->hdr->creator_pid = getpid();
	s->hdr->page_size = (uint32_t)page;
	s->hdr->nr_rings = o->nr_rings;
	s->hdr->dir_size = (uint32_t)dir_size;
	/* release: pairs with the acquire in session_validate(); everything above is visible */
	store_release(&s->hdr->magic, EVR_SESSION_MAGIC);
	*out = s;
	return 0;
fail_unlink:
	if (s->name)
		shm_unlink(s->name);
fail:
	evr_session_close(s);
	return err;
}

static int entries_check(size_t page, const struct evr_session_entry *dir, uint32_t n,
			 uint64_t dir_size, uint64_t size);

/* Check the directory of an object of @size bytes mapped at @h; fill @s->dir on success. */
static int session_validate(struct evr_session *s, const struct evr_session_hdr *h, uint64_t size)
{
	uint64_t magic = load_acquire(&h->magic); /* pairs with the release in create */
	uint32_t n;

	if (magic == 0)
		return -EAGAIN; /* the creator has not finished */
	if (magic != EVR_SESSION_MAGIC)
		return -EBADMSG;
	if (READ_ONCE(h->compat) > EVR_SESSION_VERSION || READ_ONCE(h->version) < 1)
		return -EPROTO;
	if (READ_ONCE(h->size) != size || READ_ONCE(h->page_size) != s->page)
		return -EBADMSG; /* truncated, grown, or made on another page size */
	n = READ_ONCE(h->nr_rings);
	if (n == 0 || n > EVR_SESSION_MAX_RINGS || n > s->nr_rings)
		return -EBADMSG;
	if (READ_ONCE(h->dir_size) != s->dir_size)
		return -EBADMSG;
	s->policy = READ_ONCE(h->chan_policy);
	if (s->policy > EVR_CHAN_THREAD)
		return -EBADMSG;
	memcpy(s->dir, (const void *)h->entries, n * sizeof(*s->dir));
	s->nr_rings = n;
	return entries_check(s->page, s->dir, n, s->dir_size, size);
}

/* Rings lie in order, inside the object, never overlapping; each one well formed. */
static int entries_check(size_t page, const struct evr_session_entry *dir, uint32_t n,
			 uint64_t dir_size, uint64_t size)
{
	uint64_t end = dir_size;

	for (uint32_t i = 0; i < n; i++) {
		const struct evr_session_entry *e = &dir[i];

		if (entry_check(page, e))
			return -EBADMSG;
		if (e->offset % page || e->offset < end || e->offset > size ||
		    size - e->offset < file_span(page, e))
			return -EBADMSG;
		end = e->offset + file_span(page, e);
	}
	return 0;
}

/*
 * The directory of a session image (post-mortem, evr_flight_recover()): the same checks as
 * open, over bytes in memory. @dir is allocated.
 */
int evr__session_dir(const uint8_t *img, uint64_t size, size_t page,
		     struct evr_session_entry **dir, uint32_t *n_out)
{
	const struct evr_session_hdr *h = (const void *)img;
	uint64_t dir_size;
	uint32_t n;

	if (size < sizeof(*h) || size < page)
		return -EBADMSG;
	if (READ_ONCE(h->magic) != EVR_SESSION_MAGIC)
		return -EBADMSG;
	if (READ_ONCE(h->compat) > EVR_SESSION_VERSION || READ_ONCE(h->version) < 1)
		return -EPROTO;
	n = READ_ONCE(h->nr_rings);
	dir_size = READ_ONCE(h->dir_size);
	if (READ_ONCE(h->size) != size || READ_ONCE(h->page_size) != page || n == 0 ||
	    n > EVR_SESSION_MAX_RINGS || dir_size % page ||
	    dir_size < sizeof(*h) + (uint64_t)n * sizeof(struct evr_session_entry) ||
	    dir_size > size)
		return -EBADMSG;
	*dir = malloc(n * sizeof(**dir));
	if (!*dir)
		return -ENOMEM;
	memcpy(*dir, h->entries, n * sizeof(**dir));
	if (entries_check(page, *dir, n, dir_size, size)) {
		free(*dir);
		*dir = NULL;
		return -EBADMSG;
	}
	*n_out = n;
	return 0;
}

int evr_session_open_fd(int fd, uint32_t flags, struct evr_session **out)
{
	struct evr_session *s;
	struct stat st;
	uint64_t size, dir_size;
	const struct evr_session_hdr *h;
	int err;

	if (fd < 0 || !out || !flags || (flags & ~(EVR_SESSION_READER | EVR_SESSION_WRITER)))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	size = (uint64_t)st.st_size;
	if (size == 0 && S_ISREG(st.st_mode))
		return -EAGAIN; /* created, not yet sized */
	if (!S_ISREG(st.st_mode) || size < evr__page_size() || size > EVR_SESSION_SIZE_MAX)
		return -EBADMSG;
	/* a first look at the header alone, to learn how much directory there is */
	h = mmap(NULL, evr__page_size(), PROT_READ, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		return -errno;
	{
		/* acquire: pairs with the release store of magic in evr__session_create() */
		uint64_t magic = load_acquire(&h->magic);
		uint32_t n = READ_ONCE(h->nr_rings);

		dir_size = READ_ONCE(h->dir_size);
		munmap((void *)h, evr__page_size());
		if (magic == 0)
			return -EAGAIN;
		if (magic != EVR_SESSION_MAGIC)
			return -EBADMSG;
		if (n == 0 || n > EVR_SESSION_MAX_RINGS || dir_size % evr__page_size() ||
		    dir_size < sizeof(*h) + (uint64_t)n * sizeof(struct evr_session_entry) ||
		    dir_size > size)
			return -EBADMSG;
		s = session_alloc(n);
	}
	if (!s)
		return -ENOMEM;
	s->flags = flags;
	s->dir_size = dir_size;
	s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (s->fd < 0) {
		err = -errno;
		goto fail;
	}
	s->hdr = mmap(NULL, dir_size, PROT_READ, MAP_SHARED, s->fd, 0);
	if (s->hdr == MAP_FAILED) {
		s->hdr = NULL;
		err = -errno;
		goto fail;
	}
	err = session_validate(s, s->hdr, size);
	if (err)
		goto fail;
	err = map_rings(s);
	if (err)
		goto fail;
	for (uint32_t i = 0; i < s->nr_rings; i++) {
		const struct evr_ctrl *c = s->rings[i].ctrl;

		/* the ring's own page must agree with the directory; later changes are ignored */
		if (READ_ONCE(c->magic) != EVR_CTRL_MAGIC || READ_ONCE(c->kind) != s->dir[i].kind ||
		    READ_ONCE(c->data_size) != s->dir[i].data_size ||
		    READ_ONCE(c->evr_compat) > EVR_ABI_VERSION) {
			err = -EBADMSG;
			goto fail;
		}
		if (s->dir[i].kind == EVR_KIND_FLIGHT)
			continue; /* checked by bind_flights() */
		if (READ_ONCE(c->data_offset) != s->page) {
			err = -EBADMSG;
			goto fail;
		}
		if (!(flags & EVR_SESSION_WRITER))
			evr__ring_set_flags(&s->rings[i], s->rings[i].flags | EVR__RING_RDONLY);
	}
	err = bind_flights(s);
	if (err)
		goto fail;
	*out = s;
	return 0;
fail:
	evr_session_close(s);
	return err;
}

int evr_session_open(const char *name, uint32_t flags, struct evr_session **out)
{
	int fd, err;

	if (check_name(name) || !out)
		return -EINVAL;
	fd = shm_open(name, O_RDWR | O_CLOEXEC, 0); /* readers write data_tail too */
	if (fd < 0)
		return -errno;
	err = evr_session_open_fd(fd, flags, out);
	close(fd);
	return err;
}

int evr_session_unlink(const char *name)
{
	if (check_name(name))
		return -EINVAL;
	return shm_unlink(name) < 0 ? -errno : 0;
}

int evr_session_get_fd(const struct evr_session *s)
{
	return s ? s->fd : -EINVAL;
}

int evr_session_get_nr_rings(const struct evr_session *s)
{
	return s ? (int)s->nr_rings : -EINVAL;
}

/* A ring's handle without taking the writer role: channels hand slots out themselves. */
int evr__session_ring(struct evr_session *s, uint32_t idx, struct evr_ring **out)
{
	if (!s || !out || idx >= s->nr_rings || s->dir[idx].kind == EVR_KIND_FLIGHT)
		return -EINVAL;
	*out = &s->rings[idx];
	return 0;
}

int evr_session_get_flight(struct evr_session *s, uint32_t idx, struct evr_flight **out)
{
	if (!s || !out || idx >= s->nr_rings)
		return -EINVAL;
	if (!s->flights[idx])
		return -EPROTO;
	*out = s->flights[idx];
	return 0;
}

int evr_session_get_ring(struct evr_session *s, uint32_t idx, struct evr_ring **out)
{
	if (!s || !out || idx >= s->nr_rings)
		return -EINVAL;
	if (s->dir[idx].kind == EVR_KIND_FLIGHT)
		return -EPROTO;
	if ((s->flags & EVR_SESSION_WRITER) && !s->taken[idx]) {
		evr__ring_take_writer(&s->rings[idx]);
		s->taken[idx] = 1;
	}
	*out = &s->rings[idx];
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * Channels: a session of rings with one policy (shared, per-CPU, per-thread) and one write call
 * that stamps each event. Writers: lock-free and async-signal-safe; a thread's first write on a
 * per-thread channel claims a slot by cmpxchg (no malloc, no lock; see docs/ordering.md). The
 * reader: chanread.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"
#include "chan.h"

/*
 * The per-thread cache: one channel per thread in initial-exec TLS (no allocation, usable from
 * a signal handler); a thread writing to several channels falls back to pthread_getspecific()
 * for the others. serial (unique per channel handle) and fork_gen (bumped in a child after
 * fork) keep a stale cache from being used.
 */
struct tls_cache {
	uint64_t serial;
	uint32_t fork_gen;
	uint32_t fallback_left; /* writes to the shared fallback before trying to claim again */
	struct evr_ring *ring;
	int claiming; /* a claim is in progress: a handler that interrupts it takes the fallback */
	int tid;
};

static __thread struct tls_cache tls __attribute__((tls_model("initial-exec")));
static uint32_t fork_gen;
static uint64_t next_serial = 1;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct evr_chan *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

#define FALLBACK_RETRY 4096

/* In the child after fork(): nothing the parent's threads claimed belongs to us. */
static void atfork_child(void)
{
	__atomic_fetch_add(&fork_gen, 1, __ATOMIC_RELAXED);
	for (struct evr_chan *ch = registry; ch; ch = ch->next)
		if (ch->key_ok)
			pthread_setspecific(ch->key, NULL);
	memset(&tls, 0, sizeof(tls));
	/* the lock was taken in the parent's prepare handler: this thread owns it */
	pthread_mutex_unlock(&registry_lock);
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&registry_lock);
}

static void install_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* A thread that claimed a slot exits: its slot becomes an orphan the reader recycles. */
static void slot_release(void *p)
{
	struct evr_ring *r = p;

	evr_ring_flush(r); /* still this thread's writer context: report pending losses */
	/* release: pairs with the acquire load in evr__chan_recycle(); our records come first */
	store_release(&r->ctrl->slot_state, EVR_SLOT_ORPHAN);
}

static int chan_setup(struct evr_chan *ch, struct evr_session *s)
{
	int n = evr_session_get_nr_rings(s);

	ch->s = s;
	ch->policy = evr__session_policy(s);
	if (ch->policy < EVR_CHAN_SHARED || ch->policy > EVR_CHAN_THREAD || n < 1)
		return -EPROTO;
	ch->nr_rings = (uint32_t)n;
	ch->nr_slots = ch->policy == EVR_CHAN_THREAD ? ch->nr_rings - 1 : 0;
	if (ch->policy == EVR_CHAN_THREAD && ch->nr_slots < 1)
		return -EPROTO;
	ch->rings = calloc(ch->nr_rings, sizeof(*ch->rings));
	if (!ch->rings)
		return -ENOMEM;
	for (uint32_t i = 0; i < ch->nr_rings; i++) {
		int err = evr__session_ring(s, i, &ch->rings[i]);

		if (err)
			return err;
		/* the per-thread slots are single-writer rings, the rest multi-producer */
		if ((ch->policy == EVR_CHAN_THREAD && i < ch->nr_slots) !=
		    !(ch->rings[i]->flags & EVR_RING_MULTI))
			return -EPROTO;
	}
	ch->rdonly = !!(ch->rings[0]->flags & EVR__RING_RDONLY);
	ch->clk = evr__clock();
	evr__membarrier_register();
	pthread_once(&atfork_once, install_atfork);
	if (ch->policy == EVR_CHAN_THREAD) {
		if (pthread_key_create(&ch->key, slot_release))
			return -EAGAIN;
		ch->key_ok = 1;
	}
	pthread_mutex_lock(&registry_lock);
	ch->serial = next_serial++;
	ch->next = registry;
	registry = ch;
	pthread_mutex_unlock(&registry_lock);
	return 0;
}

int evr_chan_create(const struct evr_chan_opts *o, struct evr_chan **out)
{
	struct evr_session *s;
	struct evr_chan *ch;
	uint32_t *flags, n;
	int err;

	if (!o || !out || o->sz < offsetof(struct evr_chan_opts, data_size) + 8 || o->sz > 4096)
		return -EINVAL;
	for (size_t i = sizeof(*o); i < o->sz; i++)
		if (((const uint8_t *)o)[i])
			return -EINVAL;
	switch (o->policy) {
	case EVR_CHAN_SHARED:
		n = 1;
		break;
	case EVR_CHAN_PERCPU: {
		long cpus = sysconf(_SC_NPROCESSORS_CONF);

		n = cpus > 0 && cpus < (long)EVR_SESSION_MAX_RINGS ? (uint32_t)cpus : 1;
		break;
	}
	case EVR_CHAN_THREAD:
		n = (o->nr_slots ? o->nr_slots : 64) + 1;
		if (n > EVR_SESSION_MAX_RINGS)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	flags = calloc(n, sizeof(*flags));
	ch = calloc(1, sizeof(*ch));
	if (!flags || !ch) {
		free(flags);
		free(ch);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		flags[i] = (o->policy == EVR_CHAN_THREAD && i < n - 1) ? 0 : EVR_RING_MULTI;
	{
		EVR_OPTS(evr_session_opts, so, .name = o->name, .nr_rings = n,
			 .data_size = o->data_size);

		err = evr__session_create(&so, flags, o->policy, &s);
	}
	free(flags);
	if (err) {
		free(ch);
		return err;
	}
	ch->owner = 1;
	err = chan_setup(ch, s);
	if (err) {
		evr_chan_destroy(ch);
		return err;
	}
	/* the creator wrote nothing yet: every slot starts free */
	for (uint32_t i = 0; i < ch->nr_slots; i++) /* release: pairs with the acquire in claim() */
		store_release(&ch->rings[i]->ctrl->slot_state, EVR_SLOT_FREE);
	*out = ch;
	return 0;
}

int evr_chan_open_fd(int fd, uint32_t flags, struct evr_chan **out)
{
	struct evr_session *s;
	struct evr_chan *ch;
	int err;

	if (!out)
		return -EINVAL;
	err = evr_session_open_fd(fd, flags, &s);
	if (err)
		return err;
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		evr_session_close(s);
		return -ENOMEM;
	}
	err = chan_setup(ch, s);
	if (err) {
		evr_chan_close(ch);
		return err;
	}
	*out = ch;
	return 0;
}

int evr_chan_open(const char *name, uint32_t flags, struct evr_chan **out)
{
	struct evr_session *s;
	int fd, err;

	if (!out)
		return -EINVAL;
	err = evr_session_open(name, flags, &s);
	if (err)
		return err;
	fd = evr_session_get_fd(s);
	err = evr_chan_open_fd(fd, flags, out);
	evr_session_close(s);
	return err;
}

static void chan_free(struct evr_chan *ch, int unlink)
{
	pthread_mutex_lock(&registry_lock);
	for (struct evr_chan **p = &registry; *p; p = &(*p)->next)
		if (*p == ch) {
			*p = ch->next;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
	if (ch->key_ok)
		pthread_key_delete(ch->key); /* no destructor runs for it any more */
	if (ch->s) {
		if (unlink)
			evr_session_destroy(ch->s);
		else
			evr_session_close(ch->s);
	}
	free(ch->rings);
	free(ch);
}

void evr_chan_close(struct evr_chan *ch)
{
	if (ch)
		chan_free(ch, 0);
}

int evr_chan_destroy(struct evr_chan *ch)
{
	if (!ch)
		return -EINVAL;
	chan_free(ch, ch->owner);
	return 0;
}

struct evr_session *evr_chan_get_session(const struct evr_chan *ch)
{
	return ch ? ch->s : NULL;
}

/*
 * A thread's first write on a per-thread channel (or one after fork, or after a while on the
 * fallback). Lock-free: slots are taken by cmpxchg FREE -> OWNED. Not reentrant by design: a
 * handler that interrupts a claim writes to the fallback ring, so one thread never ends up
 * holding two slots.
 */
static struct evr_ring *claim(struct evr_chan *ch)
{
	struct evr_ring *fallback = ch->rings[ch->nr_slots], *r;

	if (tls.claiming)
		return fallback;
	tls.claiming = 1;
	barrier();
	if (tls.fork_gen != READ_ONCE(fork_gen) || !tls.tid)
		tls.tid = (int)syscall(SYS_gettid);
	r = pthread_getspecific(ch->key);
	if (r && READ_ONCE(r->ctrl->slot_state) == EVR_SLOT_OWNED &&
	    READ_ONCE(r->ctrl->writer_tid) == tls.tid)
		goto got;
	for (uint32_t i = 0; i < ch->nr_slots; i++) {
		uint32_t st = EVR_SLOT_FREE;

		r = ch->rings[i];
		if (READ_ONCE(r->ctrl->slot_state) != EVR_SLOT_FREE)
			continue;
		/* acquire: pairs with the reader's release in evr__chan_recycle() */
		if (__atomic_compare_exchange_n(&r->ctrl->slot_state, &st, EVR_SLOT_OWNED, 0,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			evr__ring_take_writer(r);
			WRITE_ONCE(r->ctrl->writer_tid, tls.tid);
			__atomic_fetch_add(&r->ctrl->slot_gen, 1, __ATOMIC_RELAXED);
			pthread_setspecific(ch->key, r);
			goto got;
		}
	}
	r = fallback;
	tls.fallback_left = FALLBACK_RETRY;
got:
	tls.serial = ch->serial;
	tls.fork_gen = READ_ONCE(fork_gen);
	tls.ring = r;
	barrier();
	tls.claiming = 0;
	return r;
}

static inline struct evr_ring *pick(struct evr_chan *ch)
{
	switch (ch->policy) {
	case EVR_CHAN_THREAD:
		if (likely(tls.serial == ch->serial && tls.fork_gen == READ_ONCE(fork_gen))) {
			struct evr_ring *r = tls.ring;

			if (likely(r != ch->rings[ch->nr_slots]))
				return r;
			if (--tls.fallback_left) {
				__atomic_fetch_add(&r->ctrl->fallback_writes, 1, __ATOMIC_RELAXED);
				return r;
			}
		}
		{
			struct evr_ring *r = claim(ch);

			if (r == ch->rings[ch->nr_slots])
				__atomic_fetch_add(&r->ctrl->fallback_writes, 1, __ATOMIC_RELAXED);
			return r;
		}
	case EVR_CHAN_PERCPU: {
		int cpu = sched_getcpu();

		return ch->rings[cpu > 0 ? (uint32_t)cpu % ch->nr_rings : 0];
	}
	default:
		return ch->rings[0];
	}
}

int evr_chan_write(struct evr_chan *ch, uint32_t id, const void *data, size_t len)
{
	struct evr_ring *r;

	if (unlikely(!ch || id > EVR_APP_ID_MAX || (!data && len) || ch->rdonly))
		return -EINVAL; /* a read-only handle must not even claim a slot */
	r = pick(ch);
	/*
	 * The stamp is read after the ring is picked, never before: a thread preempted between a
	 * stamp and the claim of a recycled slot would otherwise put a stamp older than the last
	 * record of the slot's previous owner into the slot.
	 */
	barrier();
	return evr__ring_write_ts(r, EVR_TYPE_APP + id, evr__clock_read(ch->clk), data, len);
}

int evr_chan_flush(struct evr_chan *ch)
{
	int ret = 0, err;

	if (!ch)
		return -EINVAL;
	if (ch->rdonly)
		return -EINVAL;
	if (ch->policy == EVR_CHAN_THREAD) {
		/* this thread's slot for this channel, if it holds one, and the shared fallback */
		struct evr_ring *mine = pthread_getspecific(ch->key);

		if (mine && tls.fork_gen == READ_ONCE(fork_gen)) {
			err = evr_ring_flush(mine);
			ret = err < 0 ? err : ret + err;
		}
		err = evr_ring_flush(ch->rings[ch->nr_slots]);
		return ret < 0 ? ret : (err < 0 ? err : ret + err);
	}
	for (uint32_t i = 0; i < ch->nr_rings; i++) {
		err = evr_ring_flush(ch->rings[i]);
		if (err < 0)
			return err;
		ret += err;
	}
	return ret;
}

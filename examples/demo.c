// SPDX-License-Identifier: MIT
/*
 * evring in two seconds: writer threads each log into their own ring while a timer signal
 * interrupts them and its handler logs too; one reader thread drains every ring and checks
 * each record byte for byte. Exit 0 only if nothing was corrupted, reordered or miscounted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evring.h"
#include "oracle.h"
#include "test.h"

#define WRITERS 3
#define STREAMS 2 /* per writer: 0 = the thread, 1 = its signal handler */
#define SECONDS 2.5

static const struct t_lenmix mix = { 120, 3000, 50 }; /* mostly small, some a few KiB */

struct writer {
	pthread_t thread;
	struct evr_ring *ring;
	struct t_wstream w[STREAMS]; /* the thread's stream and its handler's */
	struct t_oracle o; /* the reader's view of this ring */
	uint64_t seed;
	int err; /* first unexpected error in the writer context */
};

static struct writer writers[WRITERS];
static int stop_writers, writers_done;
static const char *failure; /* the reader's first complaint */
static __thread struct writer *me; /* the ring of the thread a handler interrupts */

/* Log one record of @stream; also called from the signal handler, so async-signal-safe. */
static void log_one(struct writer *wr, uint32_t stream)
{
	static __thread uint8_t buf[STREAMS][4096];
	struct t_wstream *w = &wr->w[stream];
	uint32_t len = t_payload_len(&mix, wr->seed, stream, w->next_seq);
	int err;

	t_payload_fill(buf[stream], len, wr->seed, stream, w->next_seq);
	err = evr_ring_write(wr->ring, stream, buf[stream], len); /* -ENOSPC: full, counted */
	if (t_wstream_done(w, err) && !wr->err)
		wr->err = err;
}

static void on_timer(int sig)
{
	int saved = errno;

	if (me)
		log_one(me, 1); /* nests inside whatever the thread was writing */
	errno = saved;
}

static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGALRM };
	struct itimerspec it = { { 0, 50000 }, { 0, 50000 } }; /* every 50 us */
	timer_t timer;
	sigset_t set;
	int err;

	me = wr;
	sev._sigev_un._tid = gettid();
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) || timer_settime(timer, 0, &it, NULL))
		wr->err = -errno;
	while (!__atomic_load_n(&stop_writers, __ATOMIC_RELAXED) && !wr->err)
		log_one(wr, 0);
	timer_delete(timer);
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* the records lost to a full ring are reported by a LOST record; make sure it is out */
	while ((err = evr_ring_flush(wr->ring)) == -ENOSPC &&
	       !__atomic_load_n(&failure, __ATOMIC_ACQUIRE))
		sched_yield(); /* the reader is making room */
	if (err < 0 && !wr->err)
		wr->err = err;
	return NULL;
}

static void fail(const char *what)
{
	__atomic_store_n(&failure, what, __ATOMIC_RELEASE);
}

/* One reader for all rings: drain each in turn, checking every record. */
static void *reader_main(void *arg)
{
	struct evr_reader *rd[WRITERS];
	struct evr_record rec;

	for (int i = 0; i < WRITERS; i++)
		if (evr_reader_create(writers[i].ring, NULL, &rd[i])) {
			fail("evr_reader_create failed");
			return NULL;
		}
	for (;;) {
		int done = __atomic_load_n(&writers_done, __ATOMIC_ACQUIRE), got = 0;

		for (int i = 0; i < WRITERS; i++) {
			struct t_oracle *o = &writers[i].o;
			int n = evr_reader_begin(rd[i]), k;

			if (n < 0) {
				fail("evr_reader_begin: corrupt ring");
				return NULL;
			}
			got += n;
			while ((k = evr_reader_next(rd[i], &rec)) == 1)
				if (t_oracle_record(o, &rec)) {
					fail(o->what);
					return NULL;
				}
			if (k < 0) {
				fail("evr_reader_next: corrupt record");
				return NULL;
			}
			evr_reader_end(rd[i]);
		}
		if (!got) {
			struct timespec nap = { 0, 100000 };

			if (done)
				break;
			nanosleep(&nap, NULL); /* a real reader would use evr_reader_wait() */
		}
	}
	for (int i = 0; i < WRITERS; i++)
		evr_reader_destroy(rd[i]);
	return NULL;
}

int main(void)
{
	uint64_t tot_w = 0, tot_r = 0, tot_l = 0, bytes = 0;
	struct sigaction sa;
	pthread_t reader;
	double t0, el;
	int ok = 1;

	t_init("demo");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	printf("evring %s demo: %d writer threads, each with its own 64 KiB ring; a timer signal\n"
	       "interrupts each writer every 50 us and its handler writes too. One reader drains\n"
	       "all rings and re-derives every payload (seed 0x%016" PRIx64 ").\n\n",
	       evr_version_string(), WRITERS, t_seed);
	for (int i = 0; i < WRITERS; i++) {
		EVR_OPTS(evr_ring_opts, ro, .data_size = 1u << 16, .flags = EVR_RING_MIRROR,
			 .ring_id = (uint64_t)i);
		struct writer *wr = &writers[i];
		int err = evr_ring_create(&ro, &wr->ring);

		if (err) {
			fprintf(stderr, "demo: evr_ring_create: %s\n", evr_strerror(err));
			return 1;
		}
		wr->seed = t_mix(t_seed + (uint64_t)i);
		if (t_oracle_init(&wr->o, wr->seed, ro.ring_id, STREAMS, &mix))
			return 1;
	}
	t0 = t_now();
	pthread_create(&reader, NULL, reader_main, NULL);
	for (int i = 0; i < WRITERS; i++)
		pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]);
	while (t_now() - t0 < SECONDS && !__atomic_load_n(&failure, __ATOMIC_RELAXED))
		usleep(20000);
	__atomic_store_n(&stop_writers, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(writers[i].thread, NULL);
	__atomic_store_n(&writers_done, 1, __ATOMIC_RELEASE);
	pthread_join(reader, NULL);
	el = t_now() - t0;

	printf("%-8s %12s %12s %12s %12s   %s\n", "writer", "written", "read", "lost",
	       "by handler", "check");
	for (int i = 0; i < WRITERS; i++) {
		struct writer *wr = &writers[i];
		struct evr_ring_stats rs = { .sz = sizeof(rs) };
		uint64_t written = 0, lost = 0;
		const char *verdict = "ok";

		for (int s = 0; s < STREAMS; s++) {
			written += wr->w[s].attempted;
			lost += wr->w[s].lost;
		}
		evr_ring_get_stats(wr->ring, &rs);
		if (wr->err) {
			verdict = evr_strerror(wr->err);
		} else if (!failure && t_oracle_conserve(&wr->o, wr->w)) {
			verdict = wr->o.what;
		} else if (rs.lost_full != wr->o.lost) {
			verdict = "ring's loss counter disagrees";
		}
		if (strcmp(verdict, "ok"))
			ok = 0;
		printf("%-8d %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "   %s\n", i,
		       written, wr->o.read, wr->o.lost, wr->w[1].attempted, verdict);
		tot_w += written;
		tot_r += wr->o.read;
		tot_l += wr->o.lost;
		bytes += rs.data_head;
	}
	printf("%-8s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n\n", "total", tot_w, tot_r, tot_l);
	printf("throughput: %.2f M records/s written, %.2f M records/s read (%.0f MB/s)\n",
	       tot_w / el / 1e6, tot_r / el / 1e6, bytes / el / 1e6);
	if (failure) {
		ok = 0;
		printf("FAILED: %s\n", failure);
		ok = 0;
	}
	if (ok)
		printf("OK: written == read + lost for every writer, every payload byte-exact, "
		       "every sequence in order\n");
	else
		printf("NOT OK: see above (seed 0x%016" PRIx64 ")\n", t_seed);
	for (int i = 0; i < WRITERS; i++) {
		t_oracle_fini(&writers[i].o);
		evr_ring_destroy(writers[i].ring);
	}
	return ok ? 0 : 1;
}

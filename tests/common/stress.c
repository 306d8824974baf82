// SPDX-License-Identifier: MIT
/* The thread harness of the single-writer-context stress oracles: see stress.h. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "stress.h"
#include "test.h"

void t_pause_ns(uint64_t ns)
{
	double end = t_now() + (double)ns * 1e-9;

	while (t_now() < end)
		t_cpu_relax();
}

static void *sender_main(void *arg)
{
	struct t_stress *st = arg;
	uint64_t i = 0;

	t_pin(1); /* with the reader: each signal crosses CPUs, as an interprocessor interrupt */
	while (!__atomic_load_n(&st->stop_sender, __ATOMIC_RELAXED)) {
		int sig = st->usr2_every && ++i % st->usr2_every == 0 ? SIGUSR2 : SIGUSR1;

		if (pthread_kill(st->writer, sig))
			break;
		st->sent++;
		t_pause_ns(st->gap_ns);
	}
	return NULL;
}

int t_stress_run(struct t_stress *st, void *(*writer)(void *), void *(*reader)(void *), void *rarg,
		 double seconds)
{
	pthread_t rd, sender;

	st->t_start = t_now();
	if (pthread_create(&st->writer, NULL, writer, NULL))
		return -1;
	if (pthread_create(&rd, NULL, reader, rarg)) {
		__atomic_store_n(&st->stop_writer, 1, __ATOMIC_RELAXED);
		pthread_join(st->writer, NULL);
		return -1;
	}
	while (!__atomic_load_n(&st->writer_ready, __ATOMIC_ACQUIRE))
		sched_yield();
	if (pthread_create(&sender, NULL, sender_main, st)) {
		__atomic_store_n(&st->stop_writer, 1, __ATOMIC_RELAXED);
		pthread_join(st->writer, NULL);
		pthread_join(rd, NULL);
		return -1;
	}
	while (t_now() - st->t_start < seconds && !__atomic_load_n(&st->werr, __ATOMIC_RELAXED)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&st->stop_sender, 1, __ATOMIC_RELAXED);
	pthread_join(sender, NULL);
	if (st->have_timer)
		timer_delete(st->timer);
	__atomic_store_n(&st->stop_writer, 1, __ATOMIC_RELAXED);
	pthread_join(st->writer, NULL);
	pthread_join(rd, NULL);
	st->t_end = t_now();
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The threads of the single-writer-context stress oracles (ring-stress, flight-stress): a
 * writer thread whose SIGUSR1/SIGUSR2 handlers also write, a reader thread, and a sender thread
 * that signals the writer from the reader's CPU, as an interprocessor interrupt would. main
 * runs them for a while, then stops and joins them.
 */
#ifndef EVR_TEST_STRESS_H
#define EVR_TEST_STRESS_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

struct t_stress {
	/* set by the test before t_stress_run() */
	uint32_t usr2_every; /* the sender sends SIGUSR2 instead of SIGUSR1 once in N (0: never) */
	uint32_t gap_ns; /* the sender's pause between two signals */

	pthread_t writer;
	timer_t timer; /* the writer's, if have_timer; main deletes it, should handlers starve it */
	int have_timer;

	int writer_ready; /* atomics: the writer sets it once its handlers are installed */
	int stop_sender;
	int stop_writer;
	int werr; /* first disallowed return in the writer context (atomic), and where */
	uint32_t werr_stream;

	uint64_t sent; /* signals sent: sender thread, main after join */
	double t_start, t_end; /* of the run, set by t_stress_run() */
};

/* Spin for @ns nanoseconds. */
void t_pause_ns(uint64_t ns);

/*
 * Start @writer (argument NULL) and @reader (argument @rarg); once the writer says it is ready,
 * the sender. Let them run for @seconds or until the writer reports an error (werr), then stop
 * the sender, delete the writer's timer, stop the writer and join all three. Returns 0, or -1 if
 * a thread could not be started (the threads that were started are stopped and joined).
 */
int t_stress_run(struct t_stress *st, void *(*writer)(void *), void *(*reader)(void *), void *rarg,
		 double seconds);

#endif /* EVR_TEST_STRESS_H */

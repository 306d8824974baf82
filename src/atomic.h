/* SPDX-License-Identifier: MIT */
/*
 * The only place evring spells atomics: the Linux kernel memory model's names over C11.
 * Shared fields are touched only through these; every use site names its pairing partner.
 */
#ifndef EVR_ATOMIC_H
#define EVR_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * READ_ONCE/WRITE_ONCE: a single, untorn access the compiler may not fuse, split or invent.
 * Spelled as relaxed C11 atomics so ThreadSanitizer sees them as atomic.
 */
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/*
 * The "relaxed head store" must-fail control (EVR_BROKEN_RELAXED_HEAD) demotes the one
 * publishing store of data_head (B) to relaxed; ThreadSanitizer must then report the payload
 * reads as races.
 */
#ifdef EVR_BROKEN_RELAXED_HEAD
#define store_release_head(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#define store_release_head(p, v) store_release(p, v)
#endif

/* Compiler barrier: orders against a signal handler on this thread, emits no instruction. */
#define barrier() atomic_signal_fence(memory_order_seq_cst)


/* Cross-thread RMW, for the multi-producer paths. */
#define cmpxchg_acq_rel(p, oldp, v)                                                              \
	__atomic_compare_exchange_n((p), (oldp), (v), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define cmpxchg_relaxed(p, oldp, v)                                                              \
	__atomic_compare_exchange_n((p), (oldp), (v), 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)

/*
 * Signal-atomic ("local") operations: atomic against signal handlers that interrupt this thread,
 * not against other threads; the user-space twin of the kernel's local_t.
 *
 * On x86-64 a single read-modify-write instruction without the lock prefix cannot be split by a
 * signal (signals are taken between instructions), and costs a few cycles instead of the ~20 of a
 * locked one: bench/ measures both (W1, EVR_LOCAL_C11=1 builds the alternative) and the unlocked
 * form won, so it is the default here. Elsewhere, and under ThreadSanitizer (which does not see
 * inline asm), a relaxed C11 RMW does the job.
 */
#if defined(__SANITIZE_THREAD__)
#define EVR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EVR_TSAN 1
#endif
#endif

/*
 * Full barrier: orders earlier stores before later loads (the fallbacks of the store-load
 * pairs, when membarrier() is unavailable). ThreadSanitizer does not model fences; a seq_cst
 * RMW on a private word is a full barrier it understands.
 */
#ifdef EVR_TSAN
static int evr_fence_word __attribute__((unused));
#define smp_mb() ((void)__atomic_fetch_or(&evr_fence_word, 0, __ATOMIC_SEQ_CST))
#else
#define smp_mb() atomic_thread_fence(memory_order_seq_cst)
#endif

#if defined(__x86_64__) && !defined(EVR_LOCAL_C11) && !defined(EVR_TSAN)
#define EVR_LOCAL_ASM 1
static inline uint64_t local_cmpxchg(uint64_t *p, uint64_t old, uint64_t new)
{
	uint64_t prev;

	__asm__ __volatile__("cmpxchgq %2, %1"
			     : "=a"(prev), "+m"(*p)
			     : "r"(new), "0"(old)
			     : "memory");
	return prev;
}

static inline uint64_t local_xchg(uint64_t *p, uint64_t v)
{
	/* xchg with memory is implicitly locked; a load/cmpxchg loop stays unlocked */
	uint64_t old = *(volatile uint64_t *)p;
	uint64_t prev;

	while ((prev = local_cmpxchg(p, old, v)) != old)
		old = prev;
	return old;
}

static inline void local_add(uint64_t *p, uint64_t v)
{
	__asm__ __volatile__("addq %1, %0" : "+m"(*p) : "er"(v) : "memory");
}

/* add and return the old value: xadd without lock, one instruction */
static inline uint64_t local_fetch_add(uint64_t *p, uint64_t v)
{
	__asm__ __volatile__("xaddq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

#else
static inline uint64_t local_cmpxchg(uint64_t *p, uint64_t old, uint64_t new)
{
	__atomic_compare_exchange_n(p, &old, new, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	return old;
}

static inline uint64_t local_xchg(uint64_t *p, uint64_t v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}

static inline void local_add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t local_fetch_add(uint64_t *p, uint64_t v)
{
	return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

#endif

static inline uint64_t local_read(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

#endif /* EVR_ATOMIC_H */

/* The two atomic instructions of the threads' barrier (mixing.pxi), as gcc and clang spell
   them, the spin-wait hint, and giving the core away. */
#ifndef DELTAPROP_SYNC_H
#define DELTAPROP_SYNC_H
#include <sched.h>
#include <stdint.h>

/* *p += v as one instruction, sequentially consistent; the value before the addition. */
static inline int64_t sync_fetch_add(int64_t* p, int64_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}

/* *p with acquire ordering: writes made before another thread's sync_fetch_add are visible. */
static inline int64_t sync_load(const int64_t* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Tell the core it is spinning (x86 PAUSE); nothing elsewhere. */
static inline void sync_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Let another runnable thread have this core (sched_yield(2)). */
static inline void sync_yield(void) {
    sched_yield();
}
#endif

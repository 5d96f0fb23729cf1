/* smp_guest.h: helpers for the multi-CPU guests of every architecture
 * (aarch64/smp.c, ppc64/smp.c, ppc64/xics_smp.c, ppc64/xive_smp.c).
 * Header only; include after "rt.h" (guests/common is on the include path
 * of every guest). */
#ifndef SMP_GUEST_H
#define SMP_GUEST_H
#include "rt.h"

/* Poll the firmware (cpu_state) until every CPU but `me` is stopped, for at
 * most `seconds`; returns 1 if they all are. */
static inline int wait_others_stopped(int me, u64 seconds)
{
    int n = ncpus();
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    int stopped;
    do {
        stopped = 1;
        for (int i = 0; i < n; i++)
            if (i != me && cpu_state(i) != 0)
                stopped = 0;
    } while (!stopped && rt_ticks() - t0 < seconds * hz);
    return stopped;
}

#endif

/* ipi_ring.h: the cross-CPU IPI protocol shared by xics_smp.c (IPIs through
 * H_IPI) and xive_smp.c (IPIs through ESB trigger pages).  Header only;
 * include after "rt.h".
 *
 * The guest defines
 *   static void ring_cpu_setup(int me)  make CPU `me` ready for IPIs (CPPR
 *                                       open, MSR[EE] on); run by each CPU
 *   static s64 ring_send(int to)        raise an IPI on CPU `to`; returns
 *                                       the hcall status (0 if none)
 * and calls ring_on_ipi() from its handler for every IPI taken.
 *
 * Boot CPU: ring_n = ncpus(), then ring_start_all() (every CPU set up and
 * ready), ring_run() (phase 1: an IPI to each other CPU in turn, waiting for
 * its handler's acknowledgement; phase 2: a token goes round the ring
 * boot -> boot+1 -> ... -> boot, each CPU passing it on from its idle loop;
 * phase 3: no IPI expected), ring_stop_secondaries(), and after printing the
 * results wait_others_stopped() (smp_guest.h). */
#ifndef IPI_RING_H
#define IPI_RING_H
#include "rt.h"
#include "xics_guest.h"
#include "smp_guest.h"

/* defined by the including guest */
static void ring_cpu_setup(int me);
static s64 ring_send(int to);

/* per-CPU results, written by the CPU itself (handler or idle loop) */
static u32 ring_ready[MAX_CPUS];
static u32 p1_ack[MAX_CPUS];        /* phase 1: IPI from the boot CPU seen */
static s64 p1_rc[MAX_CPUS];         /* phase 1: ring_send status (boot CPU) */
static u32 ring_got[MAX_CPUS];      /* phase 2: ring token seen */
static u32 ring_fwd[MAX_CPUS];      /* phase 2: token passed on */
static s64 ring_fwd_rc[MAX_CPUS];
static u32 ring_phase;              /* 1, 2, then 3 */
static u32 ring_stop;
static int ring_n;                  /* ncpus() */

/* From the handler, once per IPI taken by CPU `me`: records it for the
 * current phase; returns 0 if no phase expects an IPI. */
static inline int ring_on_ipi(int me)
{
    u32 ph = __atomic_load_n(&ring_phase, __ATOMIC_ACQUIRE);
    if (ph == 1)
        __atomic_store_n(&p1_ack[me], 1, __ATOMIC_RELEASE);
    else if (ph == 2)
        __atomic_store_n(&ring_got[me], 1, __ATOMIC_RELEASE);
    else
        return 0;
    return 1;
}

/* Pass the ring token on once this CPU has it. */
static inline void ring_step(int me)
{
    if (__atomic_load_n(&ring_got[me], __ATOMIC_ACQUIRE) && !ring_fwd[me]) {
        ring_fwd[me] = 1;
        ring_fwd_rc[me] = ring_send((me + 1) % ring_n);
    }
}

static void ring_secondary(u64 idx)
{
    int me = cpu_index();
    ring_cpu_setup(me);
    __atomic_store_n(&ring_ready[me], (u32)idx + 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&ring_stop, __ATOMIC_ACQUIRE)) {
        ring_step(me);
        cpu_relax();
    }
    local_irq_disable();
}

/* Boot CPU `me`: set itself up, start every other CPU, wait until all are
 * ready ("all cpus ready"). */
static inline void ring_start_all(int me)
{
    ring_cpu_setup(me);
    ring_ready[me] = (u32)me + 1;
    for (int i = 0; i < ring_n; i++) {
        if (i == me)
            continue;
        s64 r = cpu_start(i, ring_secondary, (u64)i);
        if (r != 0) {
            char buf[96];
            xg_cpu_name(buf, i, " start-cpu");
            check_eq(buf, (u64)r, 0);
        }
    }
    int all = 1;
    for (int i = 0; i < ring_n; i++) {
        wait_flag(&ring_ready[i], 30);
        if (READ_ONCE(ring_ready[i]) != (u32)i + 1)
            all = 0;
    }
    check(all, "all cpus ready");
}

/* Boot CPU `me`: phases 1, 2 and 3; returns the status of the ring_send
 * that started the ring. */
static inline s64 ring_run(int me)
{
    /* phase 1: the boot CPU IPIs each other CPU in turn */
    __atomic_store_n(&ring_phase, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < ring_n; i++) {
        if (i == me)
            continue;
        p1_rc[i] = ring_send(i);
        wait_flag(&p1_ack[i], 10);
    }
    /* phase 2: the ring */
    __atomic_store_n(&ring_phase, 2, __ATOMIC_SEQ_CST);
    s64 rc = ring_send((me + 1) % ring_n);
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (!__atomic_load_n(&ring_got[me], __ATOMIC_ACQUIRE) && rt_ticks() - t0 < 30 * hz)
        cpu_relax();       /* with one CPU the ring start IPI is to self */
    __atomic_store_n(&ring_phase, 3, __ATOMIC_SEQ_CST);
    return rc;
}

/* Boot CPU: let the secondaries leave their idle loops (they stop
 * themselves), and take no more interrupts here. */
static inline void ring_stop_secondaries(void)
{
    __atomic_store_n(&ring_stop, 1, __ATOMIC_SEQ_CST);
    local_irq_disable();
}

#endif

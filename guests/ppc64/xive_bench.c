/* xive_bench: XIVE exploitation-mode interrupt round trips for
 * tools/bench.py (section 7); the XIVE counterpart of xics_bench.c.
 *
 * CAS to XIVE, then this CPU's event queue (priority 6, always notify) and
 * its IPI LISN (EISN 0x4242, unmasked with SET_PQ_00), CPPR 0xff through the
 * TIMA, MSR[EE] on.  Each round trip is: ESB trigger store -> external
 * interrupt at 0x500 -> on_irq: TIMA ack (2-byte load at OS + 0x810, must be
 * 0x8006), drain the queue (exactly one entry, EISN 0x4242), ESB EOI (8-byte
 * load at management page offset 0, must return 0), CPPR 0xff (1-byte TIMA
 * store), count++.  The main loop waits for each round trip to finish before
 * the next trigger.  tools/bench.py patches `bench_iters` in a copy of the
 * ELF.  Only the boot CPU runs, so the transcript is the same at any -smp. */
#include "rt.h"
#include "xive_guest.h"

#define EISN 0x4242

volatile u64 bench_iters __attribute__((used, section(".data"))) = 1000;
/* The guest clock (rt_ticks) before and after the timed loop, and its
 * frequency: tools/bench.py reads them from RAM after the run (section
 * 11); never printed, so the transcript does not depend on them. */
volatile u64 bench_clock[3] __attribute__((used, section(".data")));

static int me;
static struct xive_src src;
static u8 qpage[65536] __attribute__((aligned(65536)));

static volatile u64 n_done;       /* completed round trips */
static volatile u64 n_bad_ack, bad_ack;
static volatile u64 n_bad_ev, bad_ev;      /* entries != EISN, or != 1 entry */
static volatile u64 n_bad_eoi, bad_eoi;
static volatile u32 n_other;

void on_irq(struct exc_frame *f)
{
    if (!irq_is_external(f, &n_other))
        return;
    u64 ack = tima_ack();
    if (ack != (0x8000 | XIVE_PRIO)) {
        n_bad_ack++;
        bad_ack = ack;
    }
    u32 raw, e, got = 0;
    while ((e = xive_q_pop(&xive_qs[me], &raw)) != 0) {
        got++;
        if (e != EISN) {
            n_bad_ev++;
            bad_ev = raw;
        }
    }
    if (got != 1) {
        n_bad_ev++;
        bad_ev = 0x100000000ull | got;
    }
    u64 eoi = esb_load(&src, ESB_EOI);
    if (eoi != 0) {
        n_bad_eoi++;
        bad_eoi = eoi;
    }
    tima_set_cppr(0xff);
    n_done++;
}

static void kick(void) { esb_trigger(&src); }

int main(void)
{
    me = cpu_index();
    u64 server = cpu_hwid(me);
    mtdec(0x7fffffff);

    expect_s("xive bench cas", xive_cas(0x40), 0);
    check(xive_adopt_cas_fdt(), "xive bench cas reply fdt");
    check(xive_find_tima(), "xive bench tima");
    u64 lisn = xive_ipi_lisn(me);
    expect_s("xive bench H_INT_GET_SOURCE_INFO", h_int_get_source_info(0, lisn, &src), 0);
    expect_s("xive bench H_INT_SET_QUEUE_CONFIG",
             xive_setup_queue(server, XIVE_PRIO, qpage, 16, &xive_qs[me]), 0);
    expect_s("xive bench H_INT_SET_SOURCE_CONFIG",
             h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO, EISN), 0);
    check_eq("xive bench set-pq-00 old pq", esb_load(&src, ESB_SET_PQ_00), 1);
    tima_set_cppr(0xff);

    bench_clock[2] = rt_ticks_hz();
    bench_clock[0] = rt_ticks();
    u64 timeouts = bench_round_trips(bench_iters, &n_done, kick);
    bench_clock[1] = rt_ticks();

    check_eq("xive bench timeouts", timeouts, 0);
    check_eq("xive bench bad acks", n_bad_ack, 0);
    if (n_bad_ack)
        ok_val("xive bench bad ack", bad_ack);
    check_eq("xive bench bad queue entries", n_bad_ev, 0);
    if (n_bad_ev)
        ok_val("xive bench bad entry", bad_ev);
    check_eq("xive bench bad eoi loads", n_bad_eoi, 0);
    if (n_bad_eoi)
        ok_val("xive bench bad eoi", bad_eoi);
    check_eq("xive bench other interrupts", n_other, 0);
    check_eq("xive bench esb pq after", esb_load(&src, ESB_GET), 0);
    bench_report("xive bench", n_done);
    return 0;
}

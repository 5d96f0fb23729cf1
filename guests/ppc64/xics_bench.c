/* xics_bench: XICS interrupt round trips for tools/bench.py (section 6).
 *
 * With CPPR 0xff and MSR[EE] set, each round trip is: H_IPI(self, 4) ->
 * external interrupt at 0x500 -> on_irq: H_XIRR (XISR must be 2, the IPI),
 * H_IPI(self, 0xff) to reset MFRR, H_EOI(xirr), count++.  The main loop
 * waits for each round trip to finish before sending the next IPI.
 * tools/bench.py patches `bench_iters` in a copy of the ELF.  Only the boot
 * CPU runs, so the transcript is the same at any -smp. */
#include "rt.h"
#include "xics_guest.h"

volatile u64 bench_iters __attribute__((used, section(".data"))) = 1000;
/* The guest clock (rt_ticks) before and after the timed loop, and its
 * frequency: tools/bench.py reads them from RAM after the run (section
 * 11); never printed, so the transcript does not depend on them. */
volatile u64 bench_clock[3] __attribute__((used, section(".data")));

static u64 me_server;
static volatile u64 n_done;       /* completed round trips */
static volatile u64 n_bad;        /* deliveries that were not our IPI */
static volatile u64 bad_xirr;
static volatile u32 n_other;

void on_irq(struct exc_frame *f)
{
    if (!irq_is_external(f, &n_other))
        return;
    u64 xirr = 0;
    h_xirr(&xirr);
    if (XISR(xirr) != 2) {
        n_bad++;
        bad_xirr = xirr;
    }
    h_ipi(me_server, 0xff);           /* reset MFRR */
    h_eoi(xirr);
    n_done++;
}

static void kick(void) { h_ipi(me_server, 4); }

int main(void)
{
    me_server = cpu_hwid(cpu_index());
    mtdec(0x7fffffff);

    check_eq("xics bench H_CPPR 0xff status", (u64)h_cppr(0xff), 0);
    bench_clock[2] = rt_ticks_hz();
    bench_clock[0] = rt_ticks();
    u64 timeouts = bench_round_trips(bench_iters, &n_done, kick);
    bench_clock[1] = rt_ticks();

    check_eq("xics bench timeouts", timeouts, 0);
    check_eq("xics bench deliveries that were not the IPI", n_bad, 0);
    if (n_bad)
        ok_val("xics bench bad xirr", bad_xirr);
    check_eq("xics bench other interrupts", n_other, 0);
    bench_report("xics bench", n_done);
    return 0;
}

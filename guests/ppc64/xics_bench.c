/* xics_bench: XICS interrupt round trips for tools/bench.py (section 6).
 *
 * With CPPR 0xff and MSR[EE] set, each round trip is: H_IPI(self, 4) ->
 * external interrupt at 0x500 -> on_irq: H_XIRR (XISR must be 2, the IPI),
 * H_IPI(self, 0xff) to reset MFRR, H_EOI(xirr), count++.  The main loop
 * waits for each round trip to finish before sending the next IPI.
 * tools/bench.py patches `bench_iters` in a copy of the ELF.  Only the boot
 * CPU runs, so the transcript is the same at any -smp. */
#include "rt.h"

#define H_EOI 0x64
#define H_CPPR 0x68
#define H_IPI 0x6c
#define H_XIRR 0x74

#define XISR(x) ((x) & 0xffffffull)

volatile u64 bench_iters __attribute__((used, section(".data"))) = 1000;

static u64 me_server;
static volatile u64 n_done;       /* completed round trips */
static volatile u64 n_bad;        /* deliveries that were not our IPI */
static volatile u64 bad_xirr;
static volatile u32 n_other;

static long h_cppr(u64 cppr) { u64 a[9] = { cppr }; return hcall(H_CPPR, a); }
static long h_ipi(u64 server, u64 mfrr) { u64 a[9] = { server, mfrr }; return hcall(H_IPI, a); }
static long h_eoi(u64 xirr) { u64 a[9] = { xirr }; return hcall(H_EOI, a); }

static u64 h_xirr(void)
{
    u64 a[9] = { 0 };
    hcall(H_XIRR, a);
    return a[0];
}

void on_irq(struct exc_frame *f)
{
    if (f->vec == 0x900) {            /* DEC (pending from reset): re-arm far away */
        mtdec(0x7fffffff);
        return;
    }
    if (f->vec != 0x500) {
        n_other++;
        return;
    }
    u64 xirr = h_xirr();
    if (XISR(xirr) != 2) {
        n_bad++;
        bad_xirr = xirr;
    }
    h_ipi(me_server, 0xff);           /* reset MFRR */
    h_eoi(xirr);
    n_done++;
}

int main(void)
{
    me_server = cpu_hwid(cpu_index());
    mtdec(0x7fffffff);
    u64 n = bench_iters;
    u64 hz = rt_ticks_hz();
    u64 timeouts = 0;

    check_eq("xics bench H_CPPR 0xff status", (u64)h_cppr(0xff), 0);
    local_irq_enable();
    for (u64 i = 0; i < n; i++) {
        u64 before = READ_ONCE(n_done);
        h_ipi(me_server, 4);
        u64 t0 = rt_ticks();
        while (READ_ONCE(n_done) == before) {
            if (rt_ticks() - t0 > 5 * hz) {
                timeouts++;
                break;
            }
            cpu_relax();
        }
        if (timeouts)
            break;
    }
    local_irq_disable();

    check_eq("xics bench timeouts", timeouts, 0);
    check_eq("xics bench deliveries that were not the IPI", n_bad, 0);
    if (n_bad)
        ok_val("xics bench bad xirr", bad_xirr);
    check_eq("xics bench other interrupts", n_other, 0);
    console_lock();
    puts("ok xics bench ");
    put_dec(n_done);
    puts(" round trips\n");
    console_unlock();
    return 0;
}

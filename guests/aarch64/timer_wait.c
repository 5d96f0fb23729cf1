/* timer_wait: the boot CPU waits `wait_ms` of guest time (CNTVCT_EL0) for
 * a virtual-timer interrupt that never reaches it, for tools/bench.py
 * (section 12: host time of a long guest-time wait).
 *
 * spin (wait_mode bit 0): CNTV armed wait_ms ahead with IMASK set (its
 *   interrupt can never come), the CPU spins on CNTVCT_EL0 (isb + mrs, as
 *   rt_ticks()) until wait_ms have passed.
 * wfi (wait_mode bit 1): PPI 27 enabled in the GIC and the CPU interface
 *   on, but PSTATE.I masked; CNTV armed wait_ms ahead, unmasked; WFI until
 *   wait_ms have passed (the pending PPI wakes WFI; the exception is never
 *   taken, so on_irq never runs).
 * The default (both, 10 ms) keeps the differential tests short;
 * tools/bench.py patches wait_ms and wait_mode in copies of the ELF. The
 * transcript depends only on those two values; the elapsed time is never
 * printed. Only the boot CPU runs, so -smp does not change it. */
#include "rt.h"
#include "gic_guest.h"

volatile u64 wait_ms __attribute__((used, section(".data"))) = 10;
volatile u64 wait_mode __attribute__((used, section(".data"))) = 3;

#define CTL_ENABLE 1
#define CTL_IMASK 2
#define CTL_ISTATUS 4
#define PPI_VTIMER 27

static volatile u32 n_irq;

void on_irq(struct exc_frame *f)
{
    (void)f;
    n_irq++;                     /* never: PSTATE.I stays masked */
}

static void report(const char *what, u64 ms)
{
    console_lock();
    puts("ok timer wait ");
    puts(what);
    puts(" ");
    put_dec(ms);
    puts(" ms\n");
    console_unlock();
}

int main(void)
{
    u64 ms = wait_ms, mode = wait_mode;
    u64 hz = rt_ticks_hz();
    u64 ticks = hz / 1000 * ms;
    irq_disable();

    if (mode & 1) {
        write_sysreg(cntv_ctl_el0, 0);
        u64 t0 = rt_ticks();
        write_sysreg(cntv_cval_el0, t0 + ticks);
        write_sysreg(cntv_ctl_el0, CTL_ENABLE | CTL_IMASK);
        isb();
        u64 t;
        while ((t = rt_ticks()) - t0 < ticks)
            ;
        check(t - t0 >= ticks, "timer wait spin elapsed");
        /* (No ISTATUS check here: QEMU sets it from a host timer, which on a
         * loaded host lags the counter by an unbounded amount; the timer
         * guest checks ISTATUS.) */
        write_sysreg(cntv_ctl_el0, 0);
        isb();
        report("spin", ms);
    }

    if (mode & 2) {
        if (gic_discover() < 0) {
            not_ok("timer wait gic discover", "no intc node");
            return 0;
        }
        gic_dist_init();
        check(gic_cpu_init() == 0, "timer wait gic cpu init");
        irq_disable();
        gic_set_prio(PPI_VTIMER, 0x80);
        gic_enable(PPI_VTIMER);
        write_sysreg(cntv_ctl_el0, 0);
        u64 t0 = rt_ticks();
        write_sysreg(cntv_cval_el0, t0 + ticks);
        write_sysreg(cntv_ctl_el0, CTL_ENABLE);
        isb();
        u64 t;
        while ((t = rt_ticks()) - t0 < ticks)
            __asm__ __volatile__("wfi" ::: "memory");
        check(t - t0 >= ticks, "timer wait wfi elapsed");
        /* (No ISTATUS check either: as above.) */
        write_sysreg(cntv_ctl_el0, 0);
        isb();
        gic_disable(PPI_VTIMER);
        report("wfi", ms);
    }
    check_eq("timer wait interrupts taken", n_irq, 0);
    return 0;
}

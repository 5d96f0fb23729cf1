/* timer_wait: the boot CPU waits `wait_ms` of guest time (the timebase)
 * for tools/bench.py (section 12: host time of a long guest-time wait).
 *
 * spin (wait_mode bit 0): the decrementer armed wait_ms ahead with MSR[EE]
 *   clear (its interrupt can never come), the CPU spins on mftb until
 *   wait_ms have passed; the decrementer must then have expired (bit 0 set).
 * cede (wait_mode bit 1): the decrementer armed wait_ms ahead, H_CEDE until
 *   wait_ms have passed (PAPR idle: H_CEDE sets MSR[EE], the decrementer
 *   interrupt wakes the CPU and is taken exactly once at 0x900).
 * The default (both, 10 ms) keeps the differential tests short;
 * tools/bench.py patches wait_ms (at most 4000: the decrementer is 32 bits
 * at 512 MHz) and wait_mode in copies of the ELF. The transcript depends
 * only on those two values; the elapsed time is never printed. Only the
 * boot CPU runs, so -smp does not change it. */
#include "rt.h"

volatile u64 wait_ms __attribute__((used, section(".data"))) = 10;
volatile u64 wait_mode __attribute__((used, section(".data"))) = 3;

#define H_CEDE 0xe0
#define DEC_FAR 0x7fffffff

static volatile u32 n_dec, n_other;

void on_irq(struct exc_frame *f)
{
    if (f->vec == 0x900) {
        n_dec++;
        mtdec(DEC_FAR);          /* the DEC signal is level: re-arm far away */
    } else {
        n_other++;
    }
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
    if (ms > 4000)
        ms = 4000;
    u64 hz = rt_ticks_hz();
    u64 ticks = hz / 1000 * ms;
    local_irq_disable();
    mtdec(DEC_FAR);

    if (mode & 1) {
        u64 t0 = mftb();
        mtdec(ticks);
        u64 t;
        while ((t = mftb()) - t0 < ticks)
            ;
        check(t - t0 >= ticks, "timer wait spin elapsed");
        check((mfdec() & 0x80000000ull) != 0, "timer wait spin decrementer expired");
        mtdec(DEC_FAR);
        check_eq("timer wait spin decrementer interrupts", n_dec, 0);
        report("spin", ms);
    }

    if (mode & 2) {
        n_dec = 0;
        u64 t0 = mftb();
        mtdec(ticks);            /* fires after t0 + ticks: one wake-up ends the wait */
        u64 t, a[9];
        while ((t = mftb()) - t0 < ticks) {
            for (int i = 0; i < 9; i++)
                a[i] = 0;
            hcall(H_CEDE, a);
        }
        local_irq_disable();
        check(t - t0 >= ticks, "timer wait cede elapsed");
        check_eq("timer wait cede decrementer interrupts", n_dec, 1);
        report("cede", ms);
    }
    check_eq("timer wait other interrupts", n_other, 0);
    return 0;
}

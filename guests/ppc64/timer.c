/* timer: timebase runs, decrementer counts down and interrupts at 0x900. */
#include "rt.h"

static volatile u32 n_dec;
static volatile u64 dec_srr1;

void on_irq(struct exc_frame *f)
{
    if (f->vec != 0x900) {
        not_ok("unexpected interrupt", "");
        poweroff();
    }
    n_dec++;
    dec_srr1 = f->srr1;
    mtdec(0x7fffffff);          /* re-arm far away: the DEC signal is level */
}

int main(void)
{
    u64 hz = rt_ticks_hz();
    ok_val("timebase-frequency", hz);

    u64 t0 = mftb();
    for (volatile int i = 0; i < 100000; i++)
        ;
    u64 t1 = mftb();
    check(t1 > t0, "timebase increases");

    mtdec(0x7fffffff);
    u64 d0 = mfdec();
    for (volatile int i = 0; i < 100000; i++)
        ;
    u64 d1 = mfdec();
    check((u32)d1 < (u32)d0, "decrementer counts down");

    /* with MSR[EE] clear nothing is delivered */
    mtdec(100);
    u64 start = mftb();
    while (mftb() - start < hz / 1000)
        ;
    check_eq("no decrementer interrupt with EE=0", n_dec, 0);

    /* enable: the pending decrementer exception is taken */
    local_irq_enable();
    start = mftb();
    while (!n_dec && mftb() - start < 10 * hz)
        ;
    local_irq_disable();
    check_eq("decrementer interrupt taken once", n_dec, 1);
    check((dec_srr1 & MSR_EE) != 0, "decrementer srr1 has EE");

    /* a short fresh countdown */
    n_dec = 0;
    mtdec(10000);
    local_irq_enable();
    start = mftb();
    while (!n_dec && mftb() - start < 10 * hz)
        ;
    local_irq_disable();
    check_eq("second decrementer interrupt", n_dec, 1);
    check((mfmsr() & MSR_EE) == 0, "EE off again");
    return 0;
}

/* timer: generic timer counts, the virtual and physical timers fire
 * (ISTATUS, polled with IMASK set: no GIC needed). */
#include "rt.h"

#define CTL_ENABLE 1
#define CTL_IMASK 2
#define CTL_ISTATUS 4

int main(void)
{
    u64 hz = read_sysreg(cntfrq_el0);
    check(hz != 0, "cntfrq nonzero");
    ok_val("cntfrq", hz);

    isb();
    u64 c0 = read_sysreg(cntvct_el0);
    for (volatile int i = 0; i < 100000; i++)
        ;
    isb();
    u64 c1 = read_sysreg(cntvct_el0);
    check(c1 > c0, "cntvct increases");
    isb();
    check(read_sysreg(cntpct_el0) >= c1, "cntpct not behind cntvct");

    /* virtual timer */
    write_sysreg(cntv_ctl_el0, 0);
    write_sysreg(cntv_tval_el0, hz / 1000);
    write_sysreg(cntv_ctl_el0, CTL_ENABLE | CTL_IMASK);
    isb();
    u64 start = rt_ticks();
    while (!(read_sysreg(cntv_ctl_el0) & CTL_ISTATUS) && rt_ticks() - start < 10 * hz)
        ;
    check((read_sysreg(cntv_ctl_el0) & CTL_ISTATUS) != 0, "virtual timer istatus");
    check((s32)read_sysreg(cntv_tval_el0) <= 0, "virtual tval expired");
    write_sysreg(cntv_ctl_el0, 0);
    isb();
    check((read_sysreg(cntv_ctl_el0) & CTL_ISTATUS) == 0, "virtual timer istatus clear when disabled");

    /* compare value far in the future: no ISTATUS */
    write_sysreg(cntv_cval_el0, read_sysreg(cntvct_el0) + 1000 * hz);
    write_sysreg(cntv_ctl_el0, CTL_ENABLE | CTL_IMASK);
    isb();
    check((read_sysreg(cntv_ctl_el0) & CTL_ISTATUS) == 0, "virtual timer not yet");
    write_sysreg(cntv_ctl_el0, 0);

    /* physical timer */
    write_sysreg(cntp_ctl_el0, 0);
    write_sysreg(cntp_tval_el0, hz / 1000);
    write_sysreg(cntp_ctl_el0, CTL_ENABLE | CTL_IMASK);
    isb();
    start = rt_ticks();
    while (!(read_sysreg(cntp_ctl_el0) & CTL_ISTATUS) && rt_ticks() - start < 10 * hz)
        ;
    check((read_sysreg(cntp_ctl_el0) & CTL_ISTATUS) != 0, "physical timer istatus");
    write_sysreg(cntp_ctl_el0, 0);
    return 0;
}

/* gic_timer: the generic timer PPIs through the GIC.  Virtual timer PPI 27
 * (and physical PPI 30) enabled in GICR_ISENABLER0: the pending state follows
 * the timer's level output, IAR1 returns 27, the handler masks the timer
 * (IMASK) and EOIs, it does not refire until IMASK is cleared.  Then every
 * CPU takes its own (banked) PPI 27 once; results in CPU order. */
#include "rt.h"
#include "gic_guest.h"

#define CTL_ENABLE 1
#define CTL_IMASK 2
#define CTL_ISTATUS 4
#define PPI_VTIMER 27
#define PPI_PTIMER 30

struct tstate {
    u32 n;                      /* interrupts taken */
    u32 last;                   /* last IAR1 */
    u64 pend_in, act_in;        /* GICR_ISPENDR0/ISACTIVER0 bit, right after IAR1 */
    u64 pend_masked;            /* pending bit after IMASK */
    u64 act_eoi;                /* active bit after EOI */
    u64 rpr;
    int disable;                /* handler: CTL = 0 instead of IMASK */
};
static struct tstate ts[MAX_CPUS];
static volatile u32 ready[MAX_CPUS], done[MAX_CPUS];

static u64 bitof(u64 reg, u32 intid) { return (reg >> intid) & 1; }

void on_irq(struct exc_frame *f)
{
    int me = cpu_index();
    struct tstate *t = &ts[me];
    u64 sgi = gicr_sgi();
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    t->last = intid;
    if (intid >= 1020)
        return;
    t->pend_in = bitof(mmio_r32(sgi + GICR_ISPENDR0), intid);
    t->act_in = bitof(mmio_r32(sgi + GICR_ISACTIVER0), intid);
    t->rpr = icc_rpr();
    if (intid == PPI_VTIMER) {
        write_sysreg(cntv_ctl_el0, t->disable ? 0 : (CTL_ENABLE | CTL_IMASK));
    } else if (intid == PPI_PTIMER) {
        write_sysreg(cntp_ctl_el0, t->disable ? 0 : (CTL_ENABLE | CTL_IMASK));
    }
    isb();
    t->pend_masked = bitof(mmio_r32(sgi + GICR_ISPENDR0), intid);
    icc_eoir1(intid);
    t->act_eoi = bitof(mmio_r32(sgi + GICR_ISACTIVER0), intid);
    __atomic_store_n(&t->n, t->n + 1, __ATOMIC_RELEASE);
    (void)f;
}

static int wait_n(struct tstate *t, u32 want)
{
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (READ_ONCE(t->n) < want && rt_ticks() - t0 < 10 * hz)
        cpu_relax();
    return READ_ONCE(t->n) >= want;
}

/* every CPU: arm its virtual timer, take PPI 27 once, check no refire */
static void vtimer_once(void)
{
    int me = cpu_index();
    struct tstate *t = &ts[me];
    u64 hz = rt_ticks_hz();
    gic_set_prio(PPI_VTIMER, 0x80);
    gic_enable(PPI_VTIMER);
    t->disable = 0;
    write_sysreg(cntv_ctl_el0, 0);
    write_sysreg(cntv_tval_el0, hz / 1000);
    write_sysreg(cntv_ctl_el0, CTL_ENABLE);
    isb();
    irq_enable();
    wait_n(t, 1);
    gic_settle(100000);
    irq_disable();
}

static void secondary(u64 arg)
{
    (void)arg;
    int me = cpu_index();
    if (gic_cpu_init() == 0) {
        __atomic_store_n(&ready[me], 1, __ATOMIC_RELEASE);
        vtimer_once();
    }
    write_sysreg(cntv_ctl_el0, 0);
    __atomic_store_n(&done[me], 1, __ATOMIC_RELEASE);
}

int main(void)
{
    struct gline l;
    int me = boot_cpu(), n = ncpus();
    struct tstate *t = &ts[me];
    u64 hz = rt_ticks_hz();
    if (gic_discover() < 0) {
        not_ok("gic discover", "no intc node");
        return 0;
    }
    gic_dist_init();
    check(gic_cpu_init() == 0, "gic cpu init");
    irq_disable();
    u64 sgi = gicr_sgi();
    ok_val("gicr icfgr1 (ppis)", mmio_r32(sgi + GICR_ICFGR1));

    /* ---- timer fires with IRQs masked: PPI 27 pending ---- */
    gic_set_prio(PPI_VTIMER, 0x80);
    write_sysreg(cntv_ctl_el0, 0);
    isb();
    ok_val("ppi 27 pending, timer off, not enabled", bitof(mmio_r32(sgi + GICR_ISPENDR0), PPI_VTIMER));
    write_sysreg(cntv_tval_el0, hz / 1000);
    write_sysreg(cntv_ctl_el0, CTL_ENABLE);
    isb();
    u64 t0 = rt_ticks();
    while (!(read_sysreg(cntv_ctl_el0) & CTL_ISTATUS) && rt_ticks() - t0 < 10 * hz)
        ;
    check((read_sysreg(cntv_ctl_el0) & CTL_ISTATUS) != 0, "virtual timer istatus");
    ok_val("ppi 27 pending while disabled in gicr", bitof(mmio_r32(sgi + GICR_ISPENDR0), PPI_VTIMER));
    ok_val("hppir1 while ppi 27 disabled", icc_hppir1());
    gic_enable(PPI_VTIMER);
    ok_val("ppi 27 isenabler0", bitof(mmio_r32(sgi + GICR_ISENABLER0), PPI_VTIMER));
    ok_val("hppir1 with ppi 27 enabled", icc_hppir1());
    check_eq("not taken with irqs masked", t->n, 0);

    /* ---- unmask: taken once, handler masks the timer ---- */
    irq_enable();
    wait_n(t, 1);
    gic_settle(100000);
    irq_disable();
    check_eq("virtual timer irq taken once", t->n, 1);
    ok_val("virtual timer iar1", t->last);
    ok_val("ppi 27 pending in handler (level, active)", t->pend_in);
    ok_val("ppi 27 active in handler", t->act_in);
    ok_val("rpr in timer handler", t->rpr);
    ok_val("ppi 27 pending after imask", t->pend_masked);
    ok_val("ppi 27 active after eoi", t->act_eoi);
    ok_val("cntv_ctl after handler", read_sysreg(cntv_ctl_el0));
    ok_val("ppi 27 pending with imask", bitof(mmio_r32(sgi + GICR_ISPENDR0), PPI_VTIMER));
    ok_val("hppir1 with imask", icc_hppir1());

    /* ---- clearing IMASK raises the level again ---- */
    t->disable = 1;
    write_sysreg(cntv_ctl_el0, CTL_ENABLE);
    isb();
    ok_val("ppi 27 pending after imask cleared", bitof(mmio_r32(sgi + GICR_ISPENDR0), PPI_VTIMER));
    irq_enable();
    wait_n(t, 2);
    gic_settle(100000);
    irq_disable();
    check_eq("virtual timer refires after imask cleared", t->n, 2);
    ok_val("cntv_ctl after disable in handler", read_sysreg(cntv_ctl_el0));
    ok_val("ppi 27 pending with timer disabled", bitof(mmio_r32(sgi + GICR_ISPENDR0), PPI_VTIMER));

    /* ---- ICPENDR0 cannot clear a level that is still high ---- */
    write_sysreg(cntv_tval_el0, 0);
    write_sysreg(cntv_ctl_el0, CTL_ENABLE);
    isb();
    mmio_w32(sgi + GICR_ICPENDR0, 1u << PPI_VTIMER);
    ok_val("ppi 27 pending after icpendr0 with level high", bitof(mmio_r32(sgi + GICR_ISPENDR0), PPI_VTIMER));
    write_sysreg(cntv_ctl_el0, 0);
    isb();
    ok_val("ppi 27 pending after timer off", bitof(mmio_r32(sgi + GICR_ISPENDR0), PPI_VTIMER));
    gic_disable(PPI_VTIMER);

    /* ---- physical timer, PPI 30 ---- */
    t->disable = 1;
    gic_set_prio(PPI_PTIMER, 0x90);
    gic_enable(PPI_PTIMER);
    write_sysreg(cntp_ctl_el0, 0);
    write_sysreg(cntp_tval_el0, hz / 1000);
    write_sysreg(cntp_ctl_el0, CTL_ENABLE);
    isb();
    irq_enable();
    wait_n(t, 3);
    gic_settle(100000);
    irq_disable();
    check_eq("physical timer irq taken once", t->n, 3);
    ok_val("physical timer iar1", t->last);
    ok_val("rpr in physical timer handler", t->rpr);
    gic_disable(PPI_PTIMER);

    /* ---- every CPU, its own PPI 27 ---- */
    t->n = 0;
    vtimer_once();
    write_sysreg(cntv_ctl_el0, 0);
    done[me] = ready[me] = 1;
    for (int i = 0; i < n; i++)
        if (i != me && cpu_start(i, secondary, 0) != 0)
            not_ok(gname(&l, "start cpu ", (u64)i, ""), "cpu_on failed");
    for (int i = 0; i < n; i++)
        wait_flag(&done[i], 30);
    for (int i = 0; i < n; i++) {
        l.n = 0;
        gl_s(&l, "cpu ");
        gl_d(&l, (u64)i);
        gl_s(&l, " virtual timer ppi taken ");
        gl_d(&l, ts[i].n);
        gl_s(&l, " time(s), iar1 ");
        gl_d(&l, ts[i].last);
        if (ready[i] && done[i] && ts[i].n == 1 && ts[i].last == PPI_VTIMER &&
            ts[i].pend_masked == 0 && ts[i].act_eoi == 0)
            ok(l.b);
        else
            not_ok(l.b, "unexpected");
    }
    return 0;
}

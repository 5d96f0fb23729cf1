/* gic_sgi: SGIs to self through ICC_SGI1R_EL1 on the boot CPU: IRQ vector,
 * IAR1/EOIR1/DIR, pending and active state around ack and EOI (EOImode 0
 * and 1), spurious 1023, PMR / enable / group masking, HPPIR1, RPR. */
#include "rt.h"
#include "gic_guest.h"

struct rec {
    u64 vec, iar, rpr, hppir, pend, act;        /* right after IAR1 */
    u64 pend2, act2;                            /* after a resend in the handler */
    u64 rpr_eoi, act_eoi, pend_eoi, hppir_eoi;  /* after EOIR1 */
    u64 act_dir;                                /* after DIR (EOImode 1) */
};
static struct rec recs[16];
static volatile u32 nrec;
static volatile u32 got;            /* set by the handler for wait_flag */
static volatile int resend_once;    /* handler re-sends the SGI it took */

static u64 me;                      /* MPIDR of the boot CPU */

static u32 pendr(void) { return mmio_r32(gicr_sgi() + GICR_ISPENDR0); }
static u32 actr(void) { return mmio_r32(gicr_sgi() + GICR_ISACTIVER0); }

void on_irq(struct exc_frame *f)
{
    u32 n = nrec;
    struct rec *r = &recs[n < 15 ? n : 15];
    r->vec = f->vec;
    r->iar = icc_iar1();
    u32 intid = (u32)(r->iar & 0xffffff);
    r->rpr = icc_rpr();
    r->hppir = icc_hppir1();
    r->pend = pendr();
    r->act = actr();
    if (intid >= 1020) {
        nrec = n + 1;
        __atomic_store_n(&got, 1, __ATOMIC_RELEASE);
        return;
    }
    if (resend_once) {
        resend_once = 0;
        gic_send_sgi(me, intid);
        r->pend2 = pendr();
        r->act2 = actr();
    }
    icc_eoir1(intid);
    r->rpr_eoi = icc_rpr();
    r->act_eoi = actr();
    r->pend_eoi = pendr();
    r->hppir_eoi = icc_hppir1();
    if (icc_ctlr() & ICC_CTLR_EOIMODE) {
        icc_dir(intid);
        r->act_dir = actr();
    }
    nrec = n + 1;
    __atomic_store_n(&got, 1, __ATOMIC_RELEASE);
}

static void reset_log(void)
{
    memset(recs, 0, sizeof(recs));
    nrec = 0;
    got = 0;
}

static void wait_irq(void) { wait_flag(&got, 5); }

struct others_ctx { u32 bit; int self_pend, others_pend, others; u64 self_rd; };
static int others_cb(u64 rd, u64 typer, void *c)
{
    struct others_ctx *o = c;
    u32 p = mmio_r32(rd + GICR_SGI_OFFSET + GICR_ISPENDR0) & o->bit;
    if (rd == o->self_rd) {
        o->self_pend += p != 0;
    } else {
        o->others++;
        o->others_pend += p != 0;
        mmio_w32(rd + GICR_SGI_OFFSET + GICR_ICPENDR0, o->bit);
    }
    (void)typer;
    return 0;
}

/* other CPUs' redistributors: count ProcessorSleep, make SGI 15 Group 1 */
static int group1_cb(u64 rd, u64 typer, void *c)
{
    struct others_ctx *o = c;
    if (rd != o->self_rd) {
        o->others++;
        o->others_pend += mmio_r32(rd + GICR_WAKER) == 0x6;
        mmio_w32(rd + GICR_SGI_OFFSET + GICR_IGROUPR0, 1u << 15);
    }
    (void)typer;
    return 0;
}

int main(void)
{
    struct gline l;
    me = read_sysreg(mpidr_el1);
    if (gic_discover() < 0) {
        not_ok("gic discover", "no intc node");
        return 0;
    }
    gic_dist_init();
    check(gic_cpu_init() == 0, "gic cpu init");
    u64 sgi = gicr_sgi();

    /* every SGI used here: priority 0x80, enabled */
    for (u32 i = 0; i < 16; i++)
        gic_set_prio(i, 0x80);
    mmio_w32(sgi + GICR_ISENABLER0, 0xffff);
    ok_val("sgi1r value for self sgi 3", sgi1r_for(me, 3));

    /* ---- spurious ---- */
    ok_val("iar1 nothing pending", icc_iar1());
    ok_val("hppir1 nothing pending", icc_hppir1());

    /* ---- SGI 3 sent with IRQs masked, then taken ---- */
    reset_log();
    irq_disable();
    gic_send_sgi(me, 3);
    ok_val("sgi 3 ispendr0 before ack", pendr());
    ok_val("sgi 3 isactiver0 before ack", actr());
    ok_val("sgi 3 hppir1 before ack", icc_hppir1());
    check_eq("sgi 3 not taken while masked", nrec, 0);
    irq_enable();
    wait_irq();
    irq_disable();
    check_eq("sgi 3 taken once", nrec, 1);
    check_eq("sgi 3 vector entry (irq, el1h)", recs[0].vec, 5);
    ok_val("sgi 3 iar1", recs[0].iar);
    ok_val("sgi 3 rpr in handler", recs[0].rpr);
    ok_val("sgi 3 hppir1 in handler", recs[0].hppir);
    ok_val("sgi 3 ispendr0 after ack", recs[0].pend);
    ok_val("sgi 3 isactiver0 after ack", recs[0].act);
    ok_val("sgi 3 rpr after eoi", recs[0].rpr_eoi);
    ok_val("sgi 3 isactiver0 after eoi", recs[0].act_eoi);
    ok_val("sgi 3 ispendr0 after eoi", recs[0].pend_eoi);
    ok_val("rpr idle", icc_rpr());
    ok_val("iar1 after handling", icc_iar1());

    /* ---- SGI 4 with IRQs unmasked: taken at once ---- */
    reset_log();
    irq_enable();
    gic_send_sgi(me, 4);
    wait_irq();
    irq_disable();
    check_eq("sgi 4 unmasked taken once", nrec, 1);
    ok_val("sgi 4 iar1", recs[0].iar);

    /* ---- EOImode 1: EOIR1 drops priority, DIR deactivates ---- */
    icc_set_ctlr(ICC_CTLR_EOIMODE);
    reset_log();
    gic_send_sgi(me, 5);
    irq_enable();
    wait_irq();
    irq_disable();
    check_eq("eoimode1 sgi 5 taken once", nrec, 1);
    ok_val("eoimode1 sgi 5 iar1", recs[0].iar);
    ok_val("eoimode1 isactiver0 after ack", recs[0].act);
    ok_val("eoimode1 rpr after eoir1", recs[0].rpr_eoi);
    ok_val("eoimode1 isactiver0 after eoir1", recs[0].act_eoi);
    ok_val("eoimode1 isactiver0 after dir", recs[0].act_dir);
    ok_val("eoimode1 rpr idle", icc_rpr());
    icc_set_ctlr(0);

    /* EOImode 1 without DIR: stays active, blocks the next one */
    icc_set_ctlr(ICC_CTLR_EOIMODE);
    gic_send_sgi(me, 6);
    u64 iar = icc_iar1();
    ok_val("eoimode1 manual iar1", iar);
    icc_eoir1(iar);
    ok_val("eoimode1 manual rpr after eoir1", icc_rpr());
    ok_val("eoimode1 manual isactiver0 before dir", actr());
    gic_send_sgi(me, 6);
    ok_val("eoimode1 active+pending ispendr0", pendr());
    ok_val("eoimode1 active+pending hppir1", icc_hppir1());
    ok_val("eoimode1 active+pending iar1", icc_iar1());
    icc_dir(6);
    ok_val("eoimode1 after dir hppir1", icc_hppir1());
    iar = icc_iar1();
    ok_val("eoimode1 after dir iar1", iar);
    icc_eoir1(iar);
    icc_dir(iar);
    ok_val("eoimode1 manual isactiver0 at end", actr());
    icc_set_ctlr(0);

    /* ---- re-sent while active (EOImode 0): active+pending, taken again ---- */
    reset_log();
    resend_once = 1;
    gic_send_sgi(me, 7);
    irq_enable();
    wait_irq();
    for (int i = 0; i < 100 && nrec < 2; i++)
        wait_irq(), gic_settle(1000);
    irq_disable();
    check_eq("resent sgi 7 taken twice", nrec, 2);
    ok_val("resent sgi 7 ispendr0 while active", recs[0].pend2);
    ok_val("resent sgi 7 isactiver0 while active", recs[0].act2);
    ok_val("resent sgi 7 hppir1 after eoi", recs[0].hppir_eoi);
    ok_val("resent sgi 7 second iar1", recs[1].iar);

    /* ---- PMR masking ---- */
    reset_log();
    icc_set_pmr(0x80);              /* priority 0x80 is not < 0x80: masked */
    irq_enable();
    gic_send_sgi(me, 8);
    gic_settle(100000);
    irq_disable();
    check_eq("pmr 0x80 masks priority 0x80", nrec, 0);
    ok_val("pmr masked ispendr0", pendr());
    ok_val("pmr masked hppir1", icc_hppir1());
    ok_val("pmr masked iar1", icc_iar1());
    ok_val("pmr masked ispendr0 after iar1", pendr());
    icc_set_pmr(0x88);
    irq_enable();
    wait_irq();
    irq_disable();
    check_eq("pmr 0x88 delivers", nrec, 1);
    ok_val("pmr 0x88 iar1", recs[0].iar);
    ok_val("pmr 0x88 rpr in handler", recs[0].rpr);
    icc_set_pmr(0xf0);

    /* ---- disabled SGI: pending, not signalled ---- */
    reset_log();
    mmio_w32(sgi + GICR_ICENABLER0, 1u << 9);
    irq_enable();
    gic_send_sgi(me, 9);
    gic_settle(100000);
    irq_disable();
    check_eq("disabled sgi 9 not taken", nrec, 0);
    ok_val("disabled sgi 9 ispendr0", pendr());
    ok_val("disabled sgi 9 hppir1", icc_hppir1());
    ok_val("disabled sgi 9 iar1", icc_iar1());
    mmio_w32(sgi + GICR_ISENABLER0, 1u << 9);
    irq_enable();
    wait_irq();
    irq_disable();
    check_eq("sgi 9 taken after enable", nrec, 1);
    ok_val("sgi 9 iar1", recs[0].iar);

    /* ---- ICC_IGRPEN1_EL1 = 0 ---- */
    reset_log();
    gic_wr(ICC_IGRPEN1_EL1, 0);
    isb();
    irq_enable();
    gic_send_sgi(me, 10);
    gic_settle(100000);
    irq_disable();
    check_eq("igrpen1 0 sgi 10 not taken", nrec, 0);
    ok_val("igrpen1 0 ispendr0", pendr());
    ok_val("igrpen1 0 hppir1", icc_hppir1());
    ok_val("igrpen1 0 iar1", icc_iar1());
    gic_wr(ICC_IGRPEN1_EL1, 1);
    isb();
    irq_enable();
    wait_irq();
    irq_disable();
    check_eq("sgi 10 taken after igrpen1 1", nrec, 1);
    ok_val("sgi 10 iar1", recs[0].iar);

    /* ---- GICD_CTLR.EnableGrp1 = 0 also gates SGIs (ARE) ---- */
    reset_log();
    mmio_w32(gicd_base + GICD_CTLR, GICD_CTLR_ARE_NS);
    irq_enable();
    gic_send_sgi(me, 11);
    gic_settle(100000);
    irq_disable();
    ok_val("gicd grp1 disabled sgi 11 taken count", nrec);
    ok_val("gicd grp1 disabled ispendr0", pendr());
    ok_val("gicd grp1 disabled hppir1", icc_hppir1());
    mmio_w32(gicd_base + GICD_CTLR, GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1);
    irq_enable();
    wait_irq();
    gic_settle(1000);
    irq_disable();
    check_eq("sgi 11 taken after gicd grp1 enable", nrec, 1);
    ok_val("sgi 11 iar1", recs[0].iar);

    /* ---- ICPENDR0 clears a pending SGI ---- */
    gic_send_sgi(me, 12);
    ok_val("sgi 12 ispendr0", pendr());
    mmio_w32(sgi + GICR_ICPENDR0, 1u << 12);
    ok_val("sgi 12 ispendr0 after icpendr0", pendr());
    /* ISPENDR0 write makes an SGI pending too */
    reset_log();
    mmio_w32(sgi + GICR_ISPENDR0, 1u << 13);
    ok_val("sgi 13 ispendr0 after ispendr0 write", pendr());
    irq_enable();
    wait_irq();
    irq_disable();
    check_eq("sgi 13 via ispendr0 taken", nrec, 1);
    ok_val("sgi 13 iar1", recs[0].iar);

    /* ---- Group 0 SGI ---- */
    mmio_w32(sgi + GICR_IGROUPR0, ~(1u << 14));
    gic_send_sgi(me, 14);
    ok_val("group 0 sgi 14 via sgi1r ispendr0", pendr());
    gic_wr(ICC_SGI0R_EL1, sgi1r_for(me, 14));
    isb();
    ok_val("group 0 sgi 14 via sgi0r ispendr0", pendr());
    ok_val("group 0 sgi 14 hppir1", icc_hppir1());
    ok_val("group 0 sgi 14 iar1", icc_iar1());
    mmio_w32(sgi + GICR_ICPENDR0, 1u << 14);
    mmio_w32(sgi + GICR_IGROUPR0, ~0u);
    ok_val("group 0 sgi 14 cleared", pendr());

    /* ---- target lists that miss this CPU ---- */
    u64 nowhere = (0xffull << 16) | (15ull << 24) | 1;   /* Aff1 0xff */
    gic_wr(ICC_SGI1R_EL1, nowhere);
    isb();
    ok_val("sgi to aff1 0xff ispendr0", pendr());
    gic_wr(ICC_SGI1R_EL1, (15ull << 24) | (me & 0xff00) << 8);   /* empty list */
    isb();
    ok_val("sgi empty target list ispendr0", pendr());

    /* ---- IRM = 1: every other CPU, not self.  The other CPUs are still
     * powered off and their redistributors untouched (Group 0 SGIs,
     * ProcessorSleep set), so SGI1R first finds only Group 0 SGIs there. ---- */
    gic_send_sgi_others(15);
    struct others_ctx o = { 1u << 15, 0, 0, 0, gicr_rd() };
    gic_walk_rdists(others_cb, &o);
    check_eq("irm=1 sgi 15 not pending on self", (u64)o.self_pend, 0);
    check_eq("irm=1 group 0 sgi 15 pending on no other redistributor", (u64)o.others_pend, 0);
    check_eq("irm=1 other redistributors", (u64)o.others, (u64)ncpus() - 1);
    struct others_ctx g = { 1u << 15, 0, 0, 0, gicr_rd() };
    gic_walk_rdists(group1_cb, &g);
    check_eq("other redistributors asleep (waker 0x6)", (u64)g.others_pend, (u64)g.others);
    gic_send_sgi_others(15);
    struct others_ctx o2 = { 1u << 15, 0, 0, 0, gicr_rd() };
    gic_walk_rdists(others_cb, &o2);
    check_eq("irm=1 group 1 sgi 15 not pending on self", (u64)o2.self_pend, 0);
    check_eq("irm=1 group 1 sgi 15 pending on every other (sleeping) redistributor", (u64)o2.others_pend, (u64)o2.others);
    ok_val("ispendr0 at end", pendr());
    ok_val("isactiver0 at end", actr());
    (void)l;
    return 0;
}

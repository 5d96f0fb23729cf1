/* gic_priority: which pending interrupt IAR1 returns (priority, then lowest
 * INTID), SGIs and SPIs mixed, priority bits beyond PRIbits; preemption of a
 * running handler (nested IRQ) as allowed or forbidden by ICC_BPR1_EL1. */
#include "rt.h"
#include "gic_guest.h"

static u64 me;

/* ---- nested-IRQ scenario state ---- */
static volatile int nest_src = -1, nest_dst = -1, expect_nested;
static volatile u32 nested_done, exits;
static volatile int depth, max_depth;
static char order[128];
static volatile int order_n;
static volatile u64 inner_rpr, inner_ap1r0, outer_hppir, outer_rpr, outer_ap1r0;

static void log_ev(char kind, u32 intid)
{
    int n = order_n;
    if (n > 100)
        return;
    if (n)
        order[n++] = ' ';
    order[n++] = kind;
    if (intid >= 10)
        order[n++] = (char)('0' + intid / 10);
    order[n++] = (char)('0' + intid % 10);
    order[n] = 0;
    order_n = n;
}

void on_irq(struct exc_frame *f)
{
    u64 iar = icc_iar1();
    u32 intid = (u32)(iar & 0xffffff);
    if (intid >= 1020) {
        log_ev('s', 0);
        return;
    }
    log_ev('+', intid);
    int dp = ++depth;
    if (dp > max_depth)
        max_depth = dp;
    if ((int)intid == nest_src) {
        nest_src = -1;
        outer_rpr = icc_rpr();
        gic_send_sgi(me, (u32)nest_dst);
        outer_hppir = icc_hppir1();
        irq_enable();
        if (expect_nested)
            wait_flag(&nested_done, 5);
        else
            gic_settle(100000);
        irq_disable();
        outer_ap1r0 = gic_rd(ICC_AP1R0_EL1);
    } else {
        inner_rpr = icc_rpr();
        inner_ap1r0 = gic_rd(ICC_AP1R0_EL1);
    }
    log_ev('-', intid);
    depth--;
    icc_eoir1(intid);
    if ((int)intid == nest_dst)
        __atomic_store_n(&nested_done, 1, __ATOMIC_RELEASE);
    exits++;
    (void)f;
}

static void print_order(const char *name)
{
    struct gline l;
    l.n = 0;
    gl_s(&l, name);
    gl_s(&l, " order ");
    gl_s(&l, order);
    ok(l.b);
}

/* Outer SGI `a` (priority pa) sends SGI `b` (priority pb) from its handler
 * and unmasks IRQs. */
static void nest(const char *name, u32 bpr1, u32 a, u8 pa, u32 b, u8 pb, int expect)
{
    struct gline l;
    icc_set_bpr1(bpr1);
    gic_set_prio(a, pa);
    gic_set_prio(b, pb);
    order_n = 0;
    order[0] = 0;
    depth = max_depth = 0;
    nested_done = 0;
    exits = 0;
    inner_rpr = inner_ap1r0 = outer_hppir = outer_rpr = outer_ap1r0 = 0;
    nest_src = (int)a;
    nest_dst = (int)b;
    expect_nested = expect;
    irq_enable();
    gic_send_sgi(me, a);
    wait_flag(&nested_done, 5);
    for (int i = 0; i < 1000 && exits < 2; i++)
        gic_settle(1000);
    irq_disable();
    print_order(name);
    ok_val(gname2(&l, name, " max nesting depth"), (u64)max_depth);
    check_eq(gname2(&l, name, " nesting as expected"), (u64)max_depth, expect ? 2 : 1);
    ok_val(gname2(&l, name, " outer rpr"), outer_rpr);
    ok_val(gname2(&l, name, " outer hppir1 after send"), outer_hppir);
    ok_val(gname2(&l, name, " inner rpr"), inner_rpr);
    ok_val(gname2(&l, name, " inner ap1r0"), inner_ap1r0);
    ok_val(gname2(&l, name, " outer ap1r0 before eoi"), outer_ap1r0);
    check_eq(gname2(&l, name, " rpr idle after"), icc_rpr(), 0xff);
    icc_set_bpr1(0);
}

static u64 ack(void) { return icc_iar1() & 0xffffff; }

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
    mmio_w32(sgi + GICR_ISENABLER0, 0xffff);
    gic_enable(96);
    gic_enable(97);
    gic_set_edge(96, 1);
    gic_set_edge(97, 1);
    irq_disable();

    /* ---- two SGIs, different priority ---- */
    gic_set_prio(1, 0xa0);
    gic_set_prio(2, 0x40);
    gic_send_sgi(me, 1);
    gic_send_sgi(me, 2);
    ok_val("sgi 1 (0xa0) + sgi 2 (0x40) hppir1", icc_hppir1());
    u64 first = ack();
    ok_val("sgi 1 (0xa0) + sgi 2 (0x40) first iar1", first);
    ok_val("rpr while sgi 2 active", icc_rpr());
    ok_val("hppir1 while sgi 2 active", icc_hppir1());
    ok_val("iar1 while sgi 2 active (lower priority pending)", ack());
    icc_eoir1(first);
    u64 second = ack();
    ok_val("second iar1", second);
    ok_val("rpr while sgi 1 active", icc_rpr());
    icc_eoir1(second);
    ok_val("iar1 after both", ack());

    /* ---- equal priority: lowest INTID first ---- */
    gic_set_prio(3, 0x80);
    gic_set_prio(5, 0x80);
    gic_send_sgi(me, 5);
    gic_send_sgi(me, 3);
    first = ack();
    icc_eoir1(first);
    second = ack();
    icc_eoir1(second);
    ok_val("equal priority sgi 5 + sgi 3 first", first);
    ok_val("equal priority sgi 5 + sgi 3 second", second);

    /* ---- SGI and SPI, equal priority ---- */
    gic_set_prio(7, 0x80);
    gic_set_prio(96, 0x80);
    gic_set_pending(96);
    gic_send_sgi(me, 7);
    first = ack();
    icc_eoir1(first);
    second = ack();
    icc_eoir1(second);
    ok_val("equal priority spi 96 + sgi 7 first", first);
    ok_val("equal priority spi 96 + sgi 7 second", second);

    /* ---- three at once: SPI 97 0x40, SGI 7 0x60, SPI 96 0x80 ---- */
    gic_set_prio(97, 0x40);
    gic_set_prio(7, 0x60);
    gic_set_pending(96);
    gic_set_pending(97);
    gic_send_sgi(me, 7);
    u64 seq[4];
    for (int i = 0; i < 4; i++) {
        seq[i] = ack();
        if (seq[i] < 1020)
            icc_eoir1(seq[i]);
    }
    for (int i = 0; i < 4; i++)
        ok_val(gname(&l, "three pending ack ", (u64)i, ""), seq[i]);

    /* ---- nested acks: ack all three without EOI, EOI in reverse ---- */
    gic_set_pending(96);
    gic_set_pending(97);
    gic_send_sgi(me, 7);
    u64 a0 = ack();
    ok_val("nested ack 0", a0);
    ok_val("nested ack 1 while 0x40 active", ack());
    icc_eoir1(a0);
    u64 a1 = ack();
    ok_val("nested ack 1", a1);
    icc_eoir1(a1);
    u64 a2 = ack();
    ok_val("nested ack 2", a2);
    icc_eoir1(a2);

    /* ---- priority bits below PRIbits (5): 0x41 vs 0x40 ---- */
    gic_set_prio(8, 0x41);
    gic_set_prio(9, 0x40);
    gic_send_sgi(me, 8);
    gic_send_sgi(me, 9);
    first = ack();
    ok_val("sgi 8 (0x41) + sgi 9 (0x40) first", first);
    ok_val("sgi 8 (0x41) + sgi 9 (0x40) rpr", icc_rpr());
    ok_val("iar1 while first active", ack());
    icc_eoir1(first);
    second = ack();
    ok_val("sgi 8 (0x41) + sgi 9 (0x40) second", second);
    ok_val("rpr while 0x41 active or 0x40", icc_rpr());
    icc_eoir1(second);
    gic_set_prio(10, 0x47);
    gic_send_sgi(me, 10);
    first = ack();
    ok_val("sgi 10 priority 0x47 rpr", icc_rpr());
    icc_eoir1(first);
    ok_val("sgi 10 iar1", first);

    /* ---- preemption ---- */
    ok_val("bpr1 minimum", (icc_set_bpr1(0), icc_bpr1()));
    nest("bpr1 3 0xa0 preempted by 0x40", 3, 1, 0xa0, 2, 0x40, 1);
    nest("bpr1 7 0x60 not preempted by 0x20", 7, 1, 0x60, 2, 0x20, 0);
    nest("bpr1 3 0x58 preempted by 0x50", 3, 3, 0x58, 4, 0x50, 1);
    nest("bpr1 4 0x58 not preempted by 0x50", 4, 3, 0x58, 4, 0x50, 0);
    nest("bpr1 4 0x60 preempted by 0x50", 4, 5, 0x60, 6, 0x50, 1);
    nest("equal priority 0x40 not preempted", 3, 11, 0x40, 12, 0x40, 0);
    nest("lower priority 0x40 not preempted by 0x80", 3, 13, 0x40, 12, 0x80, 0);

    ok_val("ispendr0 at end", mmio_r32(sgi + GICR_ISPENDR0));
    ok_val("isactiver0 at end", mmio_r32(sgi + GICR_ISACTIVER0));
    ok_val("gicd ispendr3 at end", mmio_r32(gicd_base + GICD_ISPENDR + 12));
    ok_val("gicd isactiver3 at end", mmio_r32(gicd_base + GICD_ISACTIVER + 12));
    return 0;
}

/* gic_spi: SPIs made pending by the guest through GICD_ISPENDR (edge and
 * level via ICFGR), routed with GICD_IROUTER to the boot CPU, to CPU 1 and
 * the last CPU (-smp >= 2) and back; a route to an affinity with no CPU keeps
 * the SPI pending and undelivered until it is re-routed. */
#include "rt.h"
#include "gic_guest.h"

#define NSPI 256
static volatile u32 took_by[NSPI];      /* cpu index + 1 of the last taker */
static volatile u32 ntaken[NSPI];
static volatile u32 cpu_count[MAX_CPUS];
static volatile u64 in_pend[NSPI], in_act[NSPI];
static volatile u32 ready[MAX_CPUS];

static u32 bit(u32 intid) { return 1u << (intid % 32); }
static u64 pend_reg(u32 intid) { return gicd_base + GICD_ISPENDR + intid / 32 * 4; }
static u64 act_reg(u32 intid) { return gicd_base + GICD_ISACTIVER + intid / 32 * 4; }

void on_irq(struct exc_frame *f)
{
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    int me = cpu_index();
    if (intid >= NSPI)
        return;
    if (intid >= 32) {
        in_pend[intid] = (mmio_r32(pend_reg(intid)) & bit(intid)) != 0;
        in_act[intid] = (mmio_r32(act_reg(intid)) & bit(intid)) != 0;
    }
    took_by[intid] = (u32)me + 1;
    cpu_count[me]++;
    icc_eoir1(intid);
    __atomic_add_fetch(&ntaken[intid], 1, __ATOMIC_RELEASE);
    (void)f;
}

static void secondary(u64 arg)
{
    (void)arg;
    if (gic_cpu_init() != 0)
        return;
    irq_disable();
    __atomic_store_n(&ready[cpu_index()], 1, __ATOMIC_RELEASE);
    for (;;) {
        __asm__ __volatile__("wfi" ::: "memory");
        irq_enable();
        irq_disable();
    }
}

static void route(u32 intid, u64 irouter) { mmio_w64(gicd_base + GICD_IROUTER + intid * 8, irouter); }

/* unmask IRQs here (optionally making `intid` pending first), wait until
 * someone takes it */
static void wait_taken(u32 intid, int pend)
{
    u32 before = ntaken[intid];
    irq_enable();
    if (pend)
        gic_set_pending(intid);
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (READ_ONCE(ntaken[intid]) == before && rt_ticks() - t0 < 5 * hz)
        cpu_relax();
    irq_disable();
}

static void pend_and_wait(u32 intid) { wait_taken(intid, 1); }

static int start_target(int cpu)
{
    s64 r = cpu_start(cpu, secondary, 0);
    if (r != 0)
        return -1;
    return wait_flag(&ready[cpu], 30) ? 0 : -1;
}

int main(void)
{
    struct gline l;
    if (gic_discover() < 0) {
        not_ok("gic discover", "no intc node");
        return 0;
    }
    gic_dist_init();
    check(gic_cpu_init() == 0, "gic cpu init");
    irq_disable();
    u64 self = mpidr_to_irouter(read_sysreg(mpidr_el1));
    u64 d = gicd_base;
    for (u32 i = 96; i < 104; i++) {
        gic_set_prio(i, 0x80);
        gic_enable(i);
    }
    gic_set_edge(96, 1);
    gic_set_edge(97, 1);
    gic_set_edge(99, 1);
    gic_set_edge(100, 1);
    gic_set_edge(101, 1);
    ok_val("icfgr 96..111", mmio_r32(d + GICD_ICFGR + 96 / 4));
    ok_val("irouter 96", mmio_r64(d + GICD_IROUTER + 96 * 8));

    /* ---- edge SPI 96 to self ---- */
    gic_set_pending(96);
    ok_val("edge spi 96 ispendr3", mmio_r32(pend_reg(96)));
    ok_val("edge spi 96 hppir1", icc_hppir1());
    wait_taken(96, 0);      /* already pending: taken on unmask */
    check_eq("edge spi 96 taken once", ntaken[96], 1);
    check_eq("edge spi 96 taken by cpu 0", took_by[96], 1);
    ok_val("edge spi 96 pending in handler", in_pend[96]);
    ok_val("edge spi 96 active in handler", in_act[96]);
    ok_val("edge spi 96 ispendr3 after", mmio_r32(pend_reg(96)));
    ok_val("edge spi 96 isactiver3 after", mmio_r32(act_reg(96)));

    /* ---- level SPI 98: the ISPENDR latch ---- */
    gic_set_pending(98);
    ok_val("level spi 98 ispendr3", mmio_r32(pend_reg(98)));
    gic_clear_pending(98);
    ok_val("level spi 98 ispendr3 after icpendr", mmio_r32(pend_reg(98)));
    pend_and_wait(98);
    irq_enable();
    gic_settle(100000);
    irq_disable();
    check_eq("level spi 98 taken once", ntaken[98], 1);
    ok_val("level spi 98 pending in handler", in_pend[98]);
    ok_val("level spi 98 active in handler", in_act[98]);
    ok_val("level spi 98 ispendr3 after", mmio_r32(pend_reg(98)));

    /* ---- pending while disabled, then enabled ---- */
    gic_disable(97);
    irq_enable();
    gic_set_pending(97);
    gic_settle(100000);
    irq_disable();
    check_eq("disabled spi 97 not taken", ntaken[97], 0);
    ok_val("disabled spi 97 ispendr3", mmio_r32(pend_reg(97)));
    ok_val("disabled spi 97 hppir1", icc_hppir1());
    irq_enable();
    gic_enable(97);
    for (int i = 0; i < 1000 && !ntaken[97]; i++)
        gic_settle(1000);
    irq_disable();
    check_eq("spi 97 taken after enable", ntaken[97], 1);

    /* ---- route to an affinity without a CPU ---- */
    u64 nowhere = (0xffull << 8) | 0xff;            /* Aff1 0xff, Aff0 0xff */
    route(100, nowhere);
    ok_val("irouter 100 nowhere", mmio_r64(d + GICD_IROUTER + 100 * 8));
    irq_enable();
    gic_set_pending(100);
    gic_settle(100000);
    irq_disable();
    check_eq("spi 100 routed nowhere not taken", ntaken[100], 0);
    ok_val("spi 100 routed nowhere ispendr3", mmio_r32(pend_reg(100)));
    ok_val("spi 100 routed nowhere hppir1", icc_hppir1());
    ok_val("spi 100 routed nowhere iar1", icc_iar1());
    irq_enable();
    route(100, self);
    for (int i = 0; i < 1000 && !ntaken[100]; i++)
        gic_settle(1000);
    irq_disable();
    check_eq("spi 100 taken after re-route to self", ntaken[100], 1);
    check_eq("spi 100 taken by cpu 0", took_by[100], 1);

    /* ---- other CPUs ---- */
    int n = ncpus();
    if (n >= 2) {
        int tgt[2] = { 1, n - 1 };
        for (int k = 0; k < 2; k++) {
            int c = tgt[k];
            if (k == 1 && c == 1)
                break;
            int st = start_target(c);
            check(st == 0, gname(&l, "cpu ", (u64)c, " ready"));
            if (st)
                continue;
            /* edge SPI 99 to cpu c */
            u32 before = ntaken[99];
            route(99, mpidr_to_irouter(cpu_hwid(c)));
            pend_and_wait(99);
            check_eq(gname(&l, "edge spi 99 routed to cpu ", (u64)c, " taken"), ntaken[99] - before, 1);
            check_eq(gname(&l, "edge spi 99 routed to cpu ", (u64)c, " taken by that cpu"), took_by[99], (u64)c + 1);
            /* level SPI 101 */
            gic_set_edge(101, 0);
            route(101, mpidr_to_irouter(cpu_hwid(c)));
            before = ntaken[101];
            pend_and_wait(101);
            check_eq(gname(&l, "level spi 101 routed to cpu ", (u64)c, " taken"), ntaken[101] - before, 1);
            check_eq(gname(&l, "level spi 101 routed to cpu ", (u64)c, " taken by that cpu"), took_by[101], (u64)c + 1);
            gic_set_edge(101, 1);
            /* pending on cpu 0 (masked here), moved to cpu c while pending */
            route(102, self);
            before = ntaken[102];
            gic_set_pending(102);
            ok_val(gname(&l, "spi 102 pending for cpu 0 before move to cpu ", (u64)c, " hppir1"), icc_hppir1());
            route(102, mpidr_to_irouter(cpu_hwid(c)));
            u64 t0 = rt_ticks(), hz = rt_ticks_hz();
            while (READ_ONCE(ntaken[102]) == before && rt_ticks() - t0 < 5 * hz)
                cpu_relax();
            check_eq(gname(&l, "spi 102 moved while pending to cpu ", (u64)c, " taken"), ntaken[102] - before, 1);
            check_eq(gname(&l, "spi 102 moved while pending to cpu ", (u64)c, " taken by that cpu"), took_by[102], (u64)c + 1);
            ok_val(gname(&l, "hppir1 on cpu 0 after move to cpu ", (u64)c, ""), icc_hppir1());
            /* and back to cpu 0 */
            route(99, self);
            before = ntaken[99];
            pend_and_wait(99);
            check_eq(gname(&l, "edge spi 99 back from cpu ", (u64)c, " taken"), ntaken[99] - before, 1);
            check_eq(gname(&l, "edge spi 99 back from cpu ", (u64)c, " taken by cpu 0"), took_by[99], 1);
            /* nowhere, then re-routed to cpu c */
            route(103, nowhere);
            before = ntaken[103];
            gic_set_pending(103);
            gic_settle(100000);
            check_eq(gname(&l, "spi 103 nowhere (round ", (u64)k, ") not taken"), ntaken[103] - before, 0);
            ok_val(gname(&l, "spi 103 nowhere (round ", (u64)k, ") ispendr3"), mmio_r32(pend_reg(103)) & bit(103));
            route(103, mpidr_to_irouter(cpu_hwid(c)));
            t0 = rt_ticks();
            while (READ_ONCE(ntaken[103]) == before && rt_ticks() - t0 < 5 * hz)
                cpu_relax();
            check_eq(gname(&l, "spi 103 re-routed to cpu ", (u64)c, " taken"), ntaken[103] - before, 1);
            check_eq(gname(&l, "spi 103 re-routed to cpu ", (u64)c, " taken by that cpu"), took_by[103], (u64)c + 1);
        }
    }

    /* ---- IRM = 1 (1-of-N) with the affinity fields naming the last CPU ---- */
    route(101, (1ull << 31) | mpidr_to_irouter(cpu_hwid(n - 1)));
    ok_val("irouter 101 irm", mmio_r64(d + GICD_IROUTER + 101 * 8) >> 31);
    u32 before = ntaken[101];
    pend_and_wait(101);
    irq_enable();
    gic_settle(100000);
    irq_disable();
    check_eq("irm=1 spi 101 taken once", ntaken[101] - before, 1);
    check(took_by[101] == (u32)n, "irm=1 spi 101 taken by the cpu its affinity fields name");

    /* per-CPU totals, in CPU order */
    for (int i = 0; i < n; i++)
        if (cpu_count[i] || i == 0 || i == 1 || i == n - 1)
            ok_val(gname(&l, "cpu ", (u64)i, " spis taken"), cpu_count[i]);
    ok_val("ispendr3 at end", mmio_r32(d + GICD_ISPENDR + 12));
    ok_val("isactiver3 at end", mmio_r32(d + GICD_ISACTIVER + 12));
    return 0;
}

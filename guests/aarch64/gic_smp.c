/* gic_smp: every CPU finds its redistributor and initialises it and its CPU
 * interface; the boot CPU sends an SGI to each CPU by target list, one SGI
 * per Aff1 cluster with a multi-CPU target list, an IRM=1 broadcast to all
 * but itself; then an SGI ring 0 -> 1 -> ... -> n-1 -> 0.  Every CPU counts
 * what it takes; results are printed in CPU order at the end. */
#include "rt.h"
#include "gic_guest.h"

#define SGI_ONE 1       /* target list, one CPU per write */
#define SGI_BCAST 2     /* IRM = 1 */
#define SGI_RING 3
#define SGI_CLUSTER 4   /* one write per Aff1 cluster */

static volatile u32 counts[MAX_CPUS][16];
static volatile u32 ready[MAX_CPUS];
static volatile u32 init_ok[MAX_CPUS];
static volatile u64 procnum[MAX_CPUS];
static volatile u64 rdbase[MAX_CPUS];
static volatile u64 waker[MAX_CPUS];
static volatile u64 pmr[MAX_CPUS];
static volatile u32 ring_done;
static volatile u32 spurious[MAX_CPUS];

void on_irq(struct exc_frame *f)
{
    int me = cpu_index();
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    if (intid >= 16) {
        spurious[me]++;
        return;
    }
    __atomic_add_fetch(&counts[me][intid], 1, __ATOMIC_RELEASE);
    if (intid == SGI_RING) {
        if (me == boot_cpu())
            __atomic_store_n(&ring_done, 1, __ATOMIC_RELEASE);
        else
            gic_send_sgi(cpu_hwid((me + 1) % ncpus()), SGI_RING);
    }
    icc_eoir1(intid);
    (void)f;
}

static void percpu_init(void)
{
    int me = cpu_index();
    if (gic_cpu_init() != 0)
        return;
    u64 sgi = gicr_sgi();
    for (u32 i = 0; i < 16; i++)
        gic_set_prio(i, 0x80);
    mmio_w32(sgi + GICR_ISENABLER0, 0xffff);
    procnum[me] = (gic_rd_typer_of[me] >> 8) & 0xffff;
    rdbase[me] = gicr_rd();
    waker[me] = mmio_r32(gicr_rd() + GICR_WAKER);
    pmr[me] = icc_pmr();
    init_ok[me] = 1;
}

static void secondary(u64 arg)
{
    (void)arg;
    percpu_init();
    irq_disable();
    __atomic_store_n(&ready[cpu_index()], 1, __ATOMIC_RELEASE);
    for (;;) {
        __asm__ __volatile__("wfi" ::: "memory");
        irq_enable();
        irq_disable();
    }
}

static int wait_count(int cpu, u32 intid, u32 want)
{
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (READ_ONCE(counts[cpu][intid]) < want && rt_ticks() - t0 < 10 * hz)
        cpu_relax();
    return READ_ONCE(counts[cpu][intid]) >= want;
}

int main(void)
{
    struct gline l;
    int n = ncpus(), me = boot_cpu();
    if (gic_discover() < 0) {
        not_ok("gic discover", "no intc node");
        return 0;
    }
    ok_val("gic #redistributor-regions", (u64)gic_nregions);
    for (int r = 0; r < gic_nregions; r++) {
        ok_val(gname(&l, "gicr region ", (u64)r, " base"), gic_region_base[r]);
        ok_val(gname(&l, "gicr region ", (u64)r, " size"), gic_region_size[r]);
    }
    check_eq("gicr frames == ncpus", (u64)gic_walk_rdists(NULL, NULL), (u64)n);
    gic_dist_init();
    percpu_init();
    irq_disable();
    ready[me] = 1;

    for (int i = 0; i < n; i++) {
        if (i == me)
            continue;
        s64 r = cpu_start(i, secondary, 0);
        if (r != 0)
            not_ok(gname(&l, "start cpu ", (u64)i, ""), "cpu_on failed");
    }
    int all_ready = 1;
    for (int i = 0; i < n; i++)
        if (!wait_flag(&ready[i], 30))
            all_ready = 0;
    check(all_ready, "all cpus initialised their gic");

    irq_enable();
    /* SGI 1 to each CPU by target list, one at a time */
    int one_ok = 1;
    for (int i = 0; i < n; i++) {
        gic_send_sgi(cpu_hwid(i), SGI_ONE);
        if (!wait_count(i, SGI_ONE, 1))
            one_ok = 0;
    }
    check(one_ok, "sgi 1 to every cpu by target list");

    /* SGI 4: one write per Aff1 cluster, every existing CPU of it listed */
    for (int i = 0; i < n; i++) {
        u64 aff = cpu_hwid(i) & ~0xffull;
        int first = 1;
        for (int j = 0; j < i; j++)
            if ((cpu_hwid(j) & ~0xffull) == aff)
                first = 0;
        if (!first)
            continue;
        u64 v = sgi1r_for(cpu_hwid(i), SGI_CLUSTER) & ~0xffffull;
        for (int j = 0; j < n; j++)
            if ((cpu_hwid(j) & ~0xffull) == aff)
                v |= 1ull << (cpu_hwid(j) & 0xf);
        dsb_sy();
        gic_wr(ICC_SGI1R_EL1, v);
        isb();
    }
    int cl_ok = 1;
    for (int i = 0; i < n; i++)
        if (!wait_count(i, SGI_CLUSTER, 1))
            cl_ok = 0;
    check(cl_ok, "sgi 4 to every cpu by cluster target lists");

    /* SGI 2: IRM = 1, everyone but me */
    gic_send_sgi_others(SGI_BCAST);
    int bc_ok = 1;
    for (int i = 0; i < n; i++)
        if (i != me && !wait_count(i, SGI_BCAST, 1))
            bc_ok = 0;
    gic_settle(100000);
    check(bc_ok, "irm=1 sgi 2 reached every other cpu");

    /* ring */
    gic_send_sgi(cpu_hwid((me + 1) % n), SGI_RING);
    check(wait_flag(&ring_done, 30) != 0, "sgi ring came back");
    gic_settle(100000);
    irq_disable();

    /* per-CPU results, CPU order */
    for (int i = 0; i < n; i++) {
        l.n = 0;
        gl_s(&l, "cpu ");
        gl_d(&l, (u64)i);
        gl_s(&l, " init ");
        gl_s(&l, init_ok[i] ? "ok" : "failed");
        gl_s(&l, ", procnum ");
        gl_d(&l, procnum[i]);
        gl_s(&l, ", waker ");
        gl_d(&l, waker[i]);
        gl_s(&l, ", pmr ");
        gl_d(&l, pmr[i]);
        gl_s(&l, ", sgi counts");
        for (int s = 1; s <= 4; s++) {
            gl_s(&l, " ");
            gl_d(&l, counts[i][s]);
        }
        u32 other = 0;
        for (int s = 0; s < 16; s++)
            if (s < 1 || s > 4)
                other += counts[i][s];
        gl_s(&l, ", other ");
        gl_d(&l, other);
        gl_s(&l, ", spurious ");
        gl_d(&l, spurious[i]);
        int good = init_ok[i] && procnum[i] == (u64)i && waker[i] == 0 &&
                   counts[i][SGI_ONE] == 1 && counts[i][SGI_CLUSTER] == 1 &&
                   counts[i][SGI_BCAST] == (i == me ? 0u : 1u) &&
                   counts[i][SGI_RING] == 1 && other == 0 && spurious[i] == 0;
        if (good)
            ok(l.b);
        else
            not_ok(l.b, "unexpected");
    }
    int frames_ok = 1;
    for (int i = 0; i < n; i++)
        if (rdbase[i] == 0)
            frames_ok = 0;
        else
            for (int j = 0; j < i; j++)
                if (rdbase[j] == rdbase[i])
                    frames_ok = 0;
    check(frames_ok, "every cpu found its own redistributor frame");
    return 0;
}

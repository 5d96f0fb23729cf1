/* its_move: LPIs across CPUs through the ITS.  Every CPU initialises its
 * redistributor, CPU interface and LPI tables (shared property table, own
 * pending table); the boot CPU sets up the ITS, maps one collection per CPU
 * (MAPC + SYNC) and one event per CPU on device 0.  Then:
 *  - INT of every CPU's event: each CPU takes its own LPI
 *  - MOVI of an event from the boot CPU's collection to the target CPU's
 *  - MOVI of an LPI that is pending (boot CPU masked): the pending state
 *    follows the event to the target
 *  - MOVALL boot RD -> target RD of pending LPIs (after MAPC of the boot
 *    collection to the target, as CPU hot-unplug does)
 *  - INVALL: disable / re-enable an LPI of the target collection
 *  - INT of every CPU's event again
 * The target CPU is boot + 1 (mod ncpus): at -smp 1 it is the boot CPU
 * itself, so the global lines are the same at any -smp; who took what is
 * in the per-CPU lines printed in CPU order at the end. */
#include "rt.h"
#include "gic_guest.h"
#include "its_guest.h"

#define NEV 256                 /* device 0: 8 event bits */
#define EV_MOVI 200
#define EV_PMOVI 201
#define EV_MOVALL 210           /* .. 213 */
#define NMOVALL 4
#define EV_INVALL 220

static volatile u32 counts[MAX_CPUS][NEV];
static volatile u32 other[MAX_CPUS], spurious[MAX_CPUS];
static volatile u32 ready[MAX_CPUS], init_ok[MAX_CPUS];
static volatile u64 procnum[MAX_CPUS];

void on_irq(struct exc_frame *f)
{
    int me = cpu_index();
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    if (intid >= 1020 && intid < 1024) {
        spurious[me]++;
        return;
    }
    if (intid >= LPI_BASE && intid < LPI_BASE + NEV)
        __atomic_add_fetch(&counts[me][intid - LPI_BASE], 1, __ATOMIC_RELEASE);
    else
        other[me]++;
    icc_eoir1(intid);
    (void)f;
}

static void percpu_init(void)
{
    int me = cpu_index();
    if (gic_cpu_init() != 0)
        return;
    if (its_cpu_init_lpis() != 0)
        return;
    procnum[me] = (gic_rd_typer_of[me] >> 8) & 0xffff;
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

static int wait_count(int cpu, u32 ev, u32 want)
{
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (READ_ONCE(counts[cpu][ev]) < want && rt_ticks() - t0 < 10 * hz)
        cpu_relax();
    return READ_ONCE(counts[cpu][ev]) >= want;
}

static u32 total(u32 ev)
{
    u32 t = 0;
    for (int i = 0; i < ncpus(); i++)
        t += READ_ONCE(counts[i][ev]);
    return t;
}

int main(void)
{
    struct gline l;
    int n = ncpus(), me = boot_cpu();
    int tgt = (me + 1) % n;
    int gnode = gic_discover();
    if (gnode < 0) {
        not_ok("gic discover", "no intc node");
        return 0;
    }
    if (its_discover(gnode) < 0) {
        not_ok("its discover", "no arm,gic-v3-its child of the gic node");
        return 0;
    }
    ok_val("its base", its_base);
    gic_dist_init();
    lpi_prop_init();
    for (u32 e = 0; e < NEV; e++)
        lpi_set_enabled(LPI_BASE + e, 1);
    check(its_init() == 0, "its enabled");
    percpu_init();
    irq_disable();
    ready[me] = 1;
    for (int i = 0; i < n; i++) {
        if (i == me)
            continue;
        if (cpu_start(i, secondary, 0) != 0)
            not_ok(gname(&l, "start cpu ", (u64)i, ""), "cpu_on failed");
    }
    int all_ready = 1;
    for (int i = 0; i < n; i++)
        if (!wait_flag(&ready[i], 30))
            all_ready = 0;
    check(all_ready, "every cpu enabled its lpis");

    /* one collection per CPU (ICID = CPU index), MAPD device 0 */
    int cmd_ok = 1;
    for (int i = 0; i < n; i++) {
        if (its_mapc((u32)i, i, 1) != 0)
            cmd_ok = 0;
        if (its_sync(i) != 0)
            cmd_ok = 0;
    }
    check(cmd_ok, "mapc + sync of a collection per cpu");
    mem_zero(its_itt_small(0), 0x1000);
    check(its_mapd(0, 7, its_itt_small(0), 1) == 0, "mapd device 0, 8 event bits");
    cmd_ok = 1;
    for (int i = 0; i < n; i++)
        if (its_mapti(0, (u32)i, LPI_BASE + (u32)i, (u32)i) != 0)
            cmd_ok = 0;
    for (int i = 0; i < n; i++)
        if (its_invall((u32)i) != 0)
            cmd_ok = 0;
    check(cmd_ok, "mapti event i -> lpi 8192+i, collection i; invall each");

    /* ---- every CPU's own LPI ---- */
    irq_enable();
    for (int i = 0; i < n; i++)
        its_int(0, (u32)i);
    int own_ok = 1;
    for (int i = 0; i < n; i++)
        if (!wait_count(i, (u32)i, 1))
            own_ok = 0;
    check(own_ok, "int of every cpu's event: each cpu took its lpi");

    /* ---- MOVI ---- */
    its_mapti(0, EV_MOVI, LPI_BASE + EV_MOVI, (u32)me);
    its_int(0, EV_MOVI);
    check(wait_count(me, EV_MOVI, 1), "movi event before the move: delivered on the boot cpu");
    check(its_movi(0, EV_MOVI, (u32)tgt) == 0, "movi event 200 to the target cpu's collection");
    its_sync(tgt);
    its_int(0, EV_MOVI);
    u32 want = tgt == me ? 2 : 1;
    check(wait_count(tgt, EV_MOVI, want), "int after movi: delivered on the target cpu");
    gic_settle(100000);
    check_eq("movi event: deliveries in all", total(EV_MOVI), 2);

    /* ---- MOVI of a pending LPI ---- */
    irq_disable();
    its_mapti(0, EV_PMOVI, LPI_BASE + EV_PMOVI, (u32)me);
    its_int(0, EV_PMOVI);
    ok_val("pending movi: bit in the boot cpu's pending table before", lpi_pending_in_table(me, LPI_BASE + EV_PMOVI));
    check(its_movi(0, EV_PMOVI, (u32)tgt) == 0, "movi of a pending lpi to the target collection");
    its_sync(tgt);
    if (tgt != me)
        wait_count(tgt, EV_PMOVI, 1);
    u32 src_after = tgt != me ? (u32)lpi_pending_in_table(me, LPI_BASE + EV_PMOVI) : 0;
    irq_enable();
    check(wait_count(tgt, EV_PMOVI, 1), "pending movi: delivered on the target cpu");
    gic_settle(100000);
    check_eq("pending movi: deliveries in all", total(EV_PMOVI), 1);
    check_eq("pending movi: left pending at the source (other cpu only)", src_after, 0);

    /* ---- MOVALL ---- */
    irq_disable();
    for (u32 e = 0; e < NMOVALL; e++)
        its_mapti(0, EV_MOVALL + e, LPI_BASE + EV_MOVALL + e, (u32)me);
    for (u32 e = 0; e < NMOVALL; e++)
        its_int(0, EV_MOVALL + e);
    u32 pend_before = 0;
    for (u32 e = 0; e < NMOVALL; e++)
        pend_before += (u32)lpi_pending_in_table(me, LPI_BASE + EV_MOVALL + e);
    ok_val("movall: lpis pending on the boot cpu before", pend_before);
    check(its_mapc((u32)me, tgt, 1) == 0, "mapc boot collection -> target cpu");
    check(its_movall(me, tgt) == 0, "movall boot rd -> target rd");
    its_sync(tgt);
    for (u32 e = 0; e < NMOVALL; e++)
        if (tgt != me)
            wait_count(tgt, EV_MOVALL + e, 1);
    u32 src_left = 0;
    if (tgt != me)
        for (u32 e = 0; e < NMOVALL; e++)
            src_left += (u32)lpi_pending_in_table(me, LPI_BASE + EV_MOVALL + e);
    irq_enable();
    int mv_ok = 1;
    for (u32 e = 0; e < NMOVALL; e++)
        if (!wait_count(tgt, EV_MOVALL + e, 1))
            mv_ok = 0;
    gic_settle(100000);
    check(mv_ok, "movall: every moved lpi delivered on the target cpu");
    u32 mv_total = 0;
    for (u32 e = 0; e < NMOVALL; e++)
        mv_total += total(EV_MOVALL + e);
    check_eq("movall: deliveries in all", mv_total, NMOVALL);
    check_eq("movall: left pending at the source (other cpu only)", src_left, 0);
    /* the boot collection now targets the target CPU: an INT goes there */
    its_int(0, EV_MOVALL);
    check(wait_count(tgt, EV_MOVALL, 2), "int after movall: delivered on the target cpu");
    check(its_mapc((u32)me, me, 1) == 0, "mapc boot collection back to the boot cpu");
    its_sync(me);

    /* ---- INVALL ---- */
    its_mapti(0, EV_INVALL, LPI_BASE + EV_INVALL, (u32)tgt);
    lpi_set_enabled(LPI_BASE + EV_INVALL, 0);
    check(its_invall((u32)tgt) == 0, "invall of the target collection after disabling lpi 8412");
    its_int(0, EV_INVALL);
    its_sync(tgt);
    gic_settle(200000);
    check_eq("disabled lpi: deliveries", total(EV_INVALL), 0);
    ok_val("disabled lpi: bit in the target's pending table", lpi_pending_in_table(tgt, LPI_BASE + EV_INVALL));
    lpi_set_enabled(LPI_BASE + EV_INVALL, 1);
    check(its_invall((u32)tgt) == 0, "invall of the target collection after re-enabling");
    check(wait_count(tgt, EV_INVALL, 1), "re-enabled lpi: delivered on the target cpu");
    gic_settle(100000);
    check_eq("re-enabled lpi: deliveries in all", total(EV_INVALL), 1);

    /* ---- every CPU's own LPI again ---- */
    for (int i = 0; i < n; i++)
        its_int(0, (u32)i);
    own_ok = 1;
    for (int i = 0; i < n; i++)
        if (!wait_count(i, (u32)i, 2))
            own_ok = 0;
    gic_settle(100000);
    check(own_ok, "int of every cpu's event again: each cpu took its lpi");
    irq_disable();

    /* ---- per-CPU results, CPU order ---- */
    for (int i = 0; i < n; i++) {
        u32 own = counts[i][i], mv = counts[i][EV_MOVI], pmv = counts[i][EV_PMOVI];
        u32 all = 0, others = 0;
        for (u32 e = 0; e < NMOVALL; e++)
            all += counts[i][EV_MOVALL + e];
        u32 inv = counts[i][EV_INVALL];
        for (int e = 0; e < NEV; e++)
            if (e != i && e != EV_MOVI && e != EV_PMOVI && e != EV_INVALL &&
                (e < EV_MOVALL || e >= EV_MOVALL + NMOVALL))
                others += counts[i][e];
        l.n = 0;
        gl_s(&l, "cpu ");
        gl_d(&l, (u64)i);
        gl_s(&l, init_ok[i] ? " init ok" : " init failed");
        gl_s(&l, ", procnum ");
        gl_d(&l, procnum[i]);
        gl_s(&l, ", lpis: own ");
        gl_d(&l, own);
        gl_s(&l, ", movi ");
        gl_d(&l, mv);
        gl_s(&l, ", pending movi ");
        gl_d(&l, pmv);
        gl_s(&l, ", movall ");
        gl_d(&l, all);
        gl_s(&l, ", invall ");
        gl_d(&l, inv);
        gl_s(&l, ", others ");
        gl_d(&l, others + other[i]);
        gl_s(&l, ", spurious ");
        gl_d(&l, spurious[i]);
        u32 w_mv = (i == me) + (i == tgt), w_t = i == tgt;
        int good = init_ok[i] && procnum[i] == (u64)i && own == 2 && mv == w_mv &&
                   pmv == w_t && all == (w_t ? NMOVALL + 1 : 0) && inv == w_t &&
                   others + other[i] == 0 && spurious[i] == 0;
        if (good)
            ok(l.b);
        else
            not_ok(l.b, "unexpected");
    }
    return 0;
}

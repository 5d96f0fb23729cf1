/* its_bench: GICv3 ITS LPI round trips for tools/bench.py (section 9).
 *
 * Set-up as its_basic.c on the boot CPU (GIC, ITS tables in Linux order,
 * LPI property/pending tables, GICR_CTLR.EnableLPIs, MAPC collection 0 ->
 * this CPU, SYNC, MAPD device 0, MAPTI device 0 event 0 -> LPI 8192, INV).
 * Then `bench_events` extra events are mapped on device 1 (MAPD with just
 * enough EventID bits, ITT at ITS_BENCH_ITT, MAPTI event e -> LPI
 * 8193 + e % 8191, all disabled in the property table; the commands are
 * queued in batches of 64 per CWRITER write), so that the timed loop runs
 * with 16 or 65,536 mapped events.
 *
 * Timed loop: `bench_iters` round trips: a 32-bit store of EventID 0 to
 * GITS_TRANSLATER (a CPU store is DeviceID 0) -> IRQ -> ICC_IAR1_EL1
 * (LPI 8192) -> ICC_EOIR1_EL1; the main loop waits for each one.
 * tools/bench.py patches bench_iters and bench_events in copies of the ELF.
 * With bench_host > 0 (host MSI benchmark only, never in the default
 * transcript) the guest then prints "ok its bench waiting for host msis"
 * and takes LPI 8192 until bench_host more have been acknowledged (the
 * host injects them through vmachine's GsiRouting / IrqFd).
 * Only the boot CPU runs, so the transcript does not depend on -smp; it
 * depends only on the two counts. */
#include "rt.h"
#include "gic_guest.h"
#include "its_guest.h"

volatile u64 bench_iters __attribute__((used, section(".data"))) = 100;
volatile u64 bench_events __attribute__((used, section(".data"))) = 16;
volatile u64 bench_host __attribute__((used, section(".data"))) = 0;
/* The guest clock (rt_ticks) before and after the timed loop, and its
 * frequency: tools/bench.py reads them from RAM after the run (section
 * 11); never printed, so the transcript does not depend on them. */
volatile u64 bench_clock[3] __attribute__((used, section(".data")));

#define LPI0 8192u
#define BENCH_MAX_EVENTS 65536u
/* 65,536 x 12-byte ITEs = 768 KiB, well past every per-CPU pending table */
#define ITS_BENCH_ITT (ITS_MEM + 0x1000000ull)
#define BATCH 64u

static volatile u64 n_lpi;
static volatile u32 n_spurious, n_other;

void on_irq(struct exc_frame *f)
{
    (void)f;
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    if (intid >= 1020 && intid < 1024) {
        __atomic_add_fetch(&n_spurious, 1, __ATOMIC_RELAXED);
        return;
    }
    if (intid == LPI0)
        n_lpi++;
    else
        __atomic_add_fetch(&n_other, 1, __ATOMIC_RELAXED);
    icc_eoir1(intid);
}

/* Poll until *v >= want; 0 after 30 s (clock read only every 1024 polls,
 * as gic_bench.c). */
static int wait_ge(volatile u64 *v, u64 want)
{
    for (int i = 0; i < 1024; i++) {
        if (*v >= want)
            return 1;
        cpu_relax();
    }
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (*v < want) {
        for (int i = 0; i < 1024 && *v < want; i++)
            cpu_relax();
        if (*v < want && rt_ticks() - t0 > 30 * hz)
            return 0;
    }
    return 1;
}

/* Queue MAPTI device 1 events [first, first + n) (n <= BATCH) with one
 * CWRITER write; 0 when CREADR caught up. */
static int map_batch(u32 first, u32 n)
{
    for (u32 k = 0; k < n; k++) {
        struct its_cmd c;
        u32 e = first + k;
        its_cmd_init(&c, ITS_CMD_MAPTI);
        enc_devid(&c, 1);
        enc_event(&c, e);
        enc_pintid(&c, LPI0 + 1 + e % 8191);
        enc_icid(&c, 0);
        u64 slot = ITS_CMDQ + its_cwriter;
        for (int i = 0; i < 4; i++)
            *(volatile u64 *)(uintptr_t)(slot + 8 * i) = c.dw[i];
        its_cwriter = (its_cwriter + 32) % ITS_CMDQ_SIZE;
    }
    dsb_sy();
    its_w64(GITS_CWRITER, its_cwriter);
    for (int i = 0; i < 1000000; i++) {
        u64 r = its_r64(GITS_CREADR);
        if ((r & 0xfffe0) == its_cwriter)
            return 0;
        if (r & 1)
            return -1;
        cpu_relax();
    }
    return -1;
}

int main(void)
{
    u64 iters = bench_iters, events = bench_events;
    int me = boot_cpu();
    int gnode = gic_discover();
    if (gnode < 0 || its_discover(gnode) < 0) {
        not_ok("its bench discover", "no intc node or no its child");
        return 0;
    }
    if (events > BENCH_MAX_EVENTS)
        events = BENCH_MAX_EVENTS;
    gic_dist_init();
    check(gic_cpu_init() == 0, "its bench gic cpu init");
    lpi_prop_init();
    check(its_init() == 0, "its bench its enabled");
    check(its_cpu_init_lpis() == 0, "its bench gicr enable lpis");
    int fails = 0;
    fails += its_mapc(0, me, 1) != 0;
    fails += its_sync(me) != 0;
    fails += its_mapd(0, 4, its_itt_small(0), 1) != 0;
    fails += its_mapti(0, 0, LPI0, 0) != 0;
    lpi_set_enabled(LPI0, 1);
    fails += its_inv(0, 0) != 0;
    check_eq("its bench set-up command failures", (u64)fails, 0);

    /* extra mapped events on device 1 */
    u32 bits = 1;
    while (bits < 16 && (1ull << bits) < events)
        bits++;
    u64 map_fail = 0;
    if (events) {
        map_fail += its_mapd(1, bits - 1, ITS_BENCH_ITT, 1) != 0;
        for (u32 e = 0; e < events; e += BATCH)
            map_fail += map_batch(e, events - e < BATCH ? (u32)(events - e) : BATCH) != 0;
        map_fail += its_sync(me) != 0;
    }
    check_eq("its bench extra mapping failures", map_fail, 0);

    /* timed loop */
    u64 timeouts = 0;
    irq_enable();
    bench_clock[2] = rt_ticks_hz();
    bench_clock[0] = rt_ticks();
    for (u64 i = 0; i < iters; i++) {
        u64 before = n_lpi;
        mmio_w32(its_base + GITS_TRANSLATER, 0);
        if (!wait_ge(&n_lpi, before + 1)) {
            timeouts++;
            break;
        }
    }
    bench_clock[1] = rt_ticks();
    u64 host = bench_host, host_acked = 0;
    if (host && !timeouts) {
        puts("ok its bench waiting for host msis\n");
        u64 before = n_lpi;
        if (!wait_ge(&n_lpi, before + host))
            timeouts++;
        host_acked = n_lpi - before;
    }
    irq_disable();

    check_eq("its bench timeouts", timeouts, 0);
    if (host) {
        puts("ok its bench ");
        put_dec(host_acked);
        puts(" host lpis acked\n");
    }
    puts("ok its bench ");
    put_dec(events);
    puts(" extra events mapped on device 1\n");
    puts("ok its bench ");
    put_dec(n_lpi - host_acked);
    puts(" round trips\n");
    check_eq("its bench spurious iar1", n_spurious, 0);
    check_eq("its bench other intids", n_other, 0);
    check_eq("its bench lpi pending after the last ack", (u64)lpi_pending_in_table(me, LPI0), 0);
    return 0;
}

/* its_host: LPIs raised by the host through the ITS while the guest runs
 * (tests/test_its_host.py drives `m.board.its.signal_msi(...)` and irqfds
 * from vmachine.intc.msi_routing); QEMU cannot do that from outside, so
 * without the harness the guest only prints
 * "ok its host skipped (no host harness)".
 *
 * The guest sets up the ITS (its_guest.h), maps collection 0 to the boot
 * CPU, device 5 with 4 events (MAPD Size 1), event e -> LPI 8192 + e on
 * collection 0, enables LPIs 8192..8195 (priority 0xa0, Group 1).
 *
 * Handshake through its_host_mailbox (an ELF symbol; the guest runs at its
 * link address, so the symbol value is the guest physical address), 32-bit
 * little-endian words:
 *   [0] host -> guest: MB_HOST before the guest starts = a harness is there
 *       (anything else: skip and power off, as on QEMU and plain runs).
 *   [1] guest -> host: step k the guest asks for.
 *   [2] host -> guest: k when the host has done step k.
 *   [3..6] guest: deliveries of LPI 8192..8195, [7]: total deliveries,
 *   [8] guest: last INTID acknowledged, [9]: other/spurious IARs.
 * Steps (H = host action):
 *   1 H signal_msi(event 0)                     -> 8192 once
 *   2 H signal_msi(event 2) twice (masked)      -> one pending bit, one delivery
 *   3 H route-every-time irqfd (event 3) fire() -> 8195 once
 *   4 H translate-once irqfd (event 1) trigger() -> 8193 once (next round)
 *   -   guest: DISCARD device 5 event 1
 *   5 H translate-once fire() fails, trigger() records an error;
 *       a route-every-time irqfd on event 1 fails the same way;
 *       signal_msi(event 1) fails                -> nothing delivered
 *   -   guest: MAPTI device 5 event 1 -> LPI 8194
 *   6 H translate-once fire() fails (remapped, ESTALE); rebind(); fire()
 *                                               -> 8194 once
 *   7 H route-every-time irqfd (event 1) fire() -> 8194 once more */
#include "rt.h"
#include "gic_guest.h"
#include "its_guest.h"

#define MB_HOST 0x484f5354u         /* "HOST" */
#define MB_GUEST 0x49545330u        /* "ITS0": initial value, not the host's */
#define MB_MAGIC 0
#define MB_ASK 1
#define MB_DONE 2
#define MB_N0 3                     /* .. 6 */
#define MB_TOTAL 7
#define MB_LAST 8
#define MB_OTHER 9

#define DEV 5
#define LPI0 8192u
#define NLPI 4
#define SETTLE 20000

volatile u32 its_host_mailbox[16] __attribute__((used, aligned(64))) =
    { MB_GUEST, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

static volatile u32 n_lpi[NLPI], n_other, n_total;
static volatile u32 host_timeouts;
static volatile u32 order[16];

static void host_step(u32 k)
{
    __atomic_store_n(&its_host_mailbox[MB_ASK], k, __ATOMIC_SEQ_CST);
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (__atomic_load_n(&its_host_mailbox[MB_DONE], __ATOMIC_ACQUIRE) < k) {
        if (rt_ticks() - t0 > 20 * hz) {
            host_timeouts++;
            return;
        }
        for (int i = 0; i < 256; i++)
            cpu_relax();
    }
}

void on_irq(struct exc_frame *f)
{
    (void)f;
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    if (intid >= 1020 && intid < 1024) {
        n_other++;
        its_host_mailbox[MB_OTHER] = n_other;
        return;
    }
    if (intid >= LPI0 && intid < LPI0 + NLPI) {
        u32 k = n_lpi[intid - LPI0] + 1;
        n_lpi[intid - LPI0] = k;
        its_host_mailbox[MB_N0 + intid - LPI0] = k;
        u32 t = n_total;
        if (t < 16)
            order[t] = intid;
        n_total = t + 1;
        its_host_mailbox[MB_TOTAL] = t + 1;
        its_host_mailbox[MB_LAST] = intid;
    } else {
        n_other++;
        its_host_mailbox[MB_OTHER] = n_other;
    }
    icc_eoir1(intid);
}

static void counts_line(const char *what)
{
    struct gline l;
    l.n = 0;
    gl_s(&l, what);
    gl_s(&l, ": lpi 8192..8195 deliveries");
    for (int i = 0; i < NLPI; i++) {
        gl_s(&l, " ");
        gl_d(&l, n_lpi[i]);
    }
    ok(l.b);
}

int main(void)
{
    struct gline l;
    if (__atomic_load_n(&its_host_mailbox[MB_MAGIC], __ATOMIC_ACQUIRE) != MB_HOST) {
        ok("its host skipped (no host harness)");
        return 0;
    }
    int me = boot_cpu();
    int gnode = gic_discover();
    if (gnode < 0) {
        not_ok("gic discover", "no intc node");
        return 0;
    }
    if (its_discover(gnode) < 0) {
        not_ok("its discover", "no arm,gic-v3-its child of the gic node");
        return 0;
    }
    irq_disable();
    gic_dist_init();
    check(gic_cpu_init() == 0, "gic cpu init");
    lpi_prop_init();
    for (u32 i = 0; i < NLPI; i++)
        lpi_set_enabled(LPI0 + i, 1);
    check(its_init() == 0, "its enabled");
    check(its_cpu_init_lpis() == 0, "gicr enable lpis");
    check(its_mapc(0, me, 1) == 0, "mapc collection 0 -> boot cpu");
    check(its_sync(me) == 0, "sync");
    check(its_mapd(DEV, 1, its_itt_small(DEV), 1) == 0, "mapd device 5, 2 event bits");
    for (u32 e = 0; e < NLPI; e++)
        check(its_mapti(DEV, e, LPI0 + e, 0) == 0, gname(&l, "mapti device 5 event ", e, ""));
    check(its_invall(0) == 0, "invall");
    ok_val("gits ctlr", its_r32(GITS_CTLR));
    ok_val("gits creadr", its_r64(GITS_CREADR));
    ok_val("its base", its_base);
    irq_enable();
    ok("its host ready");

    /* 1: signal_msi event 0 */
    host_step(1);
    gic_settle(SETTLE);
    counts_line("signal_msi event 0");
    check_eq("signal_msi event 0: lpi 8192 once", n_lpi[0], 1);

    /* 2: two MSIs of event 2 while masked: one pending bit */
    irq_disable();
    host_step(2);
    ok_val("two msis masked: pending table bit 8194", lpi_pending_in_table(me, LPI0 + 2));
    ok_val("two msis masked: hppir1", icc_hppir1());
    check_eq("two msis masked: not taken", n_lpi[2], 0);
    irq_enable();
    gic_settle(SETTLE);
    check_eq("two msis masked: one delivery", n_lpi[2], 1);
    ok_val("two msis: pending table bit 8194 after delivery", lpi_pending_in_table(me, LPI0 + 2));

    /* 3: route-every-time irqfd on event 3 */
    host_step(3);
    gic_settle(SETTLE);
    check_eq("route-every-time irqfd event 3: lpi 8195 once", n_lpi[3], 1);

    /* 4: translate-once irqfd on event 1, triggered */
    host_step(4);
    gic_settle(SETTLE);
    check_eq("translate-once irqfd event 1: lpi 8193 once", n_lpi[1], 1);

    /* DISCARD event 1, then the host tries everything on it */
    check(its_discard(DEV, 1) == 0, "discard device 5 event 1");
    host_step(5);
    gic_settle(SETTLE);
    counts_line("after discard, host irqfds and msi on event 1");
    check_eq("after discard: lpi 8193 not delivered again", n_lpi[1], 1);
    ok_val("after discard: pending table bit 8193", lpi_pending_in_table(me, LPI0 + 1));

    /* remap event 1 to LPI 8194: the translate-once binding is stale */
    check(its_mapti(DEV, 1, LPI0 + 2, 0) == 0, "mapti device 5 event 1 -> lpi 8194");
    host_step(6);
    gic_settle(SETTLE);
    check_eq("stale translate-once then rebind: lpi 8194 once more", n_lpi[2], 2);
    check_eq("stale translate-once then rebind: lpi 8193 unchanged", n_lpi[1], 1);

    host_step(7);
    gic_settle(SETTLE);
    check_eq("route-every-time irqfd event 1 after remap: lpi 8194", n_lpi[2], 3);

    /* ---- summary ---- */
    irq_disable();
    check_eq("host steps timed out", host_timeouts, 0);
    check_eq("other or spurious iar1", n_other, 0);
    counts_line("at end");
    l.n = 0;
    gl_s(&l, "delivery order");
    for (u32 i = 0; i < n_total && i < 16; i++) {
        gl_s(&l, " ");
        gl_d(&l, order[i]);
    }
    ok(l.b);
    ok_val("hppir1 at end", icc_hppir1());
    return 0;
}

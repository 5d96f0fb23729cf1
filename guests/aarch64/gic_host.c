/* gic_host: SPIs raised and lowered by the host while the guest runs
 * (tests/test_gic_host.py drives `m.board.gic.irq_line(gsi, level)`, SPI
 * INTID = gsi + 32); QEMU cannot do that from outside, so without the
 * harness the guest only prints "ok gic host skipped (no host harness)".
 *
 * gsi 10 = INTID 42 is edge-triggered, gsi 11 = INTID 43 level-sensitive,
 * both priority 0x80, routed to CPU 0 (IROUTER), enabled, Group 1.
 *
 * Handshake through gic_host_mailbox (an ELF symbol; the guest runs at its
 * link address, so the symbol value is the guest physical address), 32-bit
 * little-endian words:
 *   [0] host -> guest: MB_HOST before the guest starts = a harness is there
 *       (anything else: skip and power off, as on QEMU and plain runs).
 *   [1] guest -> host: step k the guest asks for (see the list below).
 *   [2] host -> guest: k when the host has done step k.
 *   [3] guest: INTID 42 deliveries, [4]: INTID 43 deliveries,
 *   [5] guest: last INTID acknowledged, [6]: other/spurious IARs,
 *   [7] guest: total deliveries.
 * Steps (H = host action; "masked" = PSTATE.I set by the guest meanwhile):
 *   1 H pulses gsi 10 once                    -> delivered exactly once
 *   2 H pulses gsi 10 twice (masked)          -> one pending latch, one delivery
 *   3 H pulses gsi 10 once; the handler of that delivery asks for
 *   4 H pulses gsi 10 twice while 42 is active -> pending+active, one more
 *   5 H raises gsi 11                         -> delivered; EOI with the line
 *                                                high -> delivered again; that
 *                                                handler asks for
 *   6 H lowers gsi 11 (before its EOI)        -> no third delivery
 *   7 H raises gsi 11 (masked): ISPENDR shows it; ICPENDR cannot clear it
 *   8 H lowers gsi 11 (masked): pending drops; unmasked -> not delivered
 *   9 H raises gsi 11 (masked): ICPENDR, unmask -> delivered; the handler
 *  10 H lowers gsi 11 (before its EOI)
 *  11 H raises gsi 10 and holds it high        -> one delivery, no more
 *  12 H lowers gsi 10                          -> nothing */
#include "rt.h"
#include "gic_guest.h"

#define MB_HOST 0x484f5354u         /* "HOST" */
#define MB_GUEST 0x47494330u        /* "GIC0": initial value, not the host's */
#define MB_MAGIC 0
#define MB_ASK 1
#define MB_DONE 2
#define MB_N42 3
#define MB_N43 4
#define MB_LAST 5
#define MB_OTHER 6
#define MB_TOTAL 7

#define SPI_EDGE 42                 /* gsi 10 */
#define SPI_LEVEL 43                /* gsi 11 */
#define PRIO 0x80
#define SETTLE 20000                /* loop iterations: "nothing more happens" */

volatile u32 gic_host_mailbox[8] __attribute__((used, aligned(32))) =
    { MB_GUEST, 0, 0, 0, 0, 0, 0, 0 };

static volatile u32 n42, n43, n_other, n_total;
static volatile u32 host_timeouts;
static volatile u32 order[16];      /* INTIDs in delivery order */
/* values seen inside handlers */
static volatile u32 h42_pend[8], h42_act[8], h43_pend[8], h43_act[8];
static volatile u64 h42_hppir[8], h43_hppir[8], h42_rpr;
static volatile u32 h42_pend_after_pulses, h42_act_after_pulses;
static volatile u64 h42_hppir_after_pulses;
static volatile u32 h43_pend_after_lower[8], h43_act_after_lower[8];

static u32 spi_pend(u32 intid) { return (u32)gic_is_pending(intid); }
static u32 spi_act(u32 intid) { return (u32)gic_is_active(intid); }

/* Ask the host for step k and wait until it has done it (20 s of guest
 * time).  Steps only grow, and a handler may ask for the next step while
 * main still waits for the current one, so wait for DONE >= k. */
static void host_step(u32 k)
{
    __atomic_store_n(&gic_host_mailbox[MB_ASK], k, __ATOMIC_SEQ_CST);
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (__atomic_load_n(&gic_host_mailbox[MB_DONE], __ATOMIC_ACQUIRE) < k) {
        if (rt_ticks() - t0 > 20 * hz) {
            host_timeouts++;
            return;
        }
        for (int i = 0; i < 256; i++)
            cpu_relax();
    }
}

static void log_intid(u32 intid)
{
    u32 t = n_total;
    if (t < 16)
        order[t] = intid;
    n_total = t + 1;
    gic_host_mailbox[MB_TOTAL] = t + 1;
    gic_host_mailbox[MB_LAST] = intid;
}

void on_irq(struct exc_frame *f)
{
    (void)f;
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    if (intid >= 1020) {
        n_other++;
        gic_host_mailbox[MB_OTHER] = n_other;
        return;
    }
    log_intid(intid);
    if (intid == SPI_EDGE) {
        u32 k = n42;
        n42 = k + 1;
        gic_host_mailbox[MB_N42] = k + 1;
        if (k < 8) {
            h42_pend[k] = spi_pend(SPI_EDGE);
            h42_act[k] = spi_act(SPI_EDGE);
            h42_hppir[k] = icc_hppir1();
        }
        if (k == 0)
            h42_rpr = icc_rpr();
        if (k == 2) {
            /* third delivery (step 3): two pulses while it is active */
            host_step(4);
            h42_pend_after_pulses = spi_pend(SPI_EDGE);
            h42_act_after_pulses = spi_act(SPI_EDGE);
            h42_hppir_after_pulses = icc_hppir1();
        }
        if (k >= 8)                 /* runaway: stop it */
            gic_disable(SPI_EDGE);
    } else if (intid == SPI_LEVEL) {
        u32 k = n43;
        n43 = k + 1;
        gic_host_mailbox[MB_N43] = k + 1;
        if (k < 8) {
            h43_pend[k] = spi_pend(SPI_LEVEL);
            h43_act[k] = spi_act(SPI_LEVEL);
            h43_hppir[k] = icc_hppir1();
        }
        /* second delivery (step 5 re-delivery) and third (step 9): the
         * host lowers the line before this EOI */
        if (k == 1 || k == 2) {
            host_step(k == 1 ? 6 : 10);
            h43_pend_after_lower[k] = spi_pend(SPI_LEVEL);
            h43_act_after_lower[k] = spi_act(SPI_LEVEL);
        }
        if (k >= 8)
            gic_disable(SPI_LEVEL);
    } else {
        n_other++;
        gic_host_mailbox[MB_OTHER] = n_other;
    }
    icc_eoir1(intid);
}

static const char *nm(struct gline *l, const char *a, u32 k, const char *b)
{
    return gname(l, a, (u64)k, b);
}

int main(void)
{
    struct gline l;
    if (__atomic_load_n(&gic_host_mailbox[MB_MAGIC], __ATOMIC_ACQUIRE) != MB_HOST) {
        ok("gic host skipped (no host harness)");
        return 0;
    }
    if (gic_discover() < 0) {
        not_ok("gic discover", "no intc node");
        return 0;
    }
    irq_disable();
    gic_dist_init();
    check(gic_cpu_init() == 0, "gic cpu init");

    /* INTID 42 edge, 43 level; priority 0x80; routed to CPU 0; enabled */
    u64 cpu0 = mpidr_to_irouter(cpu_hwid(0));
    gic_set_edge(SPI_EDGE, 1);
    gic_set_edge(SPI_LEVEL, 0);
    gic_set_prio(SPI_EDGE, PRIO);
    gic_set_prio(SPI_LEVEL, PRIO);
    mmio_w64(gicd_base + GICD_IROUTER + SPI_EDGE * 8, cpu0);
    mmio_w64(gicd_base + GICD_IROUTER + SPI_LEVEL * 8, cpu0);
    gic_enable(SPI_EDGE);
    gic_enable(SPI_LEVEL);
    ok_val("icfgr 32..47", mmio_r32(gicd_base + GICD_ICFGR + 8));
    ok_val("irouter 42", mmio_r64(gicd_base + GICD_IROUTER + SPI_EDGE * 8));
    ok_val("irouter 43", mmio_r64(gicd_base + GICD_IROUTER + SPI_LEVEL * 8));
    ok_val("isenabler1", mmio_r32(gicd_base + GICD_ISENABLER + 4));
    ok_val("ispendr1 before the host", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    irq_enable();
    ok("gic host ready");

    /* ---- edge ---- */
    host_step(1);                                   /* one pulse */
    gic_settle(SETTLE);
    check_eq("edge pulse delivered once", n42, 1);
    ok_val("edge first delivery pending in handler", h42_pend[0]);
    ok_val("edge first delivery active in handler", h42_act[0]);
    ok_val("edge first delivery hppir1 in handler", h42_hppir[0]);
    ok_val("edge first delivery rpr in handler", h42_rpr);
    ok_val("edge after eoi ispendr1", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    ok_val("edge after eoi isactiver1", mmio_r32(gicd_base + GICD_ISACTIVER + 4));

    irq_disable();
    host_step(2);                                   /* two pulses, masked */
    ok_val("edge two pulses masked ispendr1", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    ok_val("edge two pulses masked hppir1", icc_hppir1());
    check_eq("edge two pulses masked not taken", n42, 1);
    irq_enable();
    gic_settle(SETTLE);
    check_eq("edge two pulses coalesce into one delivery", n42, 2);

    host_step(3);                                   /* one pulse; handler asks step 4 */
    gic_settle(SETTLE);
    ok_val("edge pulses while active pending", h42_pend_after_pulses);
    ok_val("edge pulses while active active", h42_act_after_pulses);
    ok_val("edge pulses while active hppir1", h42_hppir_after_pulses);
    check_eq("edge two pulses while active: one more delivery", n42, 4);
    ok_val("edge re-delivery pending in handler", h42_pend[3]);
    ok_val("edge re-delivery active in handler", h42_act[3]);

    /* ---- level ---- */
    host_step(5);                                   /* raise; re-delivery asks step 6 */
    gic_settle(SETTLE);
    check_eq("level delivered, again after eoi with the line high, then lowered", n43, 2);
    for (u32 k = 0; k < 2; k++) {
        ok_val(nm(&l, "level delivery ", k + 1, " pending in handler"), h43_pend[k]);
        ok_val(nm(&l, "level delivery ", k + 1, " active in handler"), h43_act[k]);
        ok_val(nm(&l, "level delivery ", k + 1, " hppir1 in handler"), h43_hppir[k]);
    }
    ok_val("level pending after the host lowered it (in handler)", h43_pend_after_lower[1]);
    ok_val("level active after the host lowered it (in handler)", h43_act_after_lower[1]);
    ok_val("level after lowering ispendr1", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    ok_val("level after lowering isactiver1", mmio_r32(gicd_base + GICD_ISACTIVER + 4));

    irq_disable();
    host_step(7);                                   /* raise, masked */
    ok_val("level high masked ispendr1", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    ok_val("level high masked hppir1", icc_hppir1());
    gic_clear_pending(SPI_LEVEL);
    ok_val("level high after icpendr ispendr1", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    ok_val("level high after icpendr hppir1", icc_hppir1());
    host_step(8);                                   /* lower, masked */
    ok_val("level lowered masked ispendr1", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    ok_val("level lowered masked hppir1", icc_hppir1());
    irq_enable();
    gic_settle(SETTLE);
    check_eq("level raised and lowered while masked: not delivered", n43, 2);

    irq_disable();
    host_step(9);                                   /* raise, masked */
    gic_clear_pending(SPI_LEVEL);
    ok_val("level icpendr then unmask ispendr1", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    irq_enable();                                   /* handler asks step 10 */
    gic_settle(SETTLE);
    check_eq("level still high after icpendr: delivered once", n43, 3);
    ok_val("level delivery 3 pending in handler", h43_pend[2]);
    ok_val("level pending after the host lowered it (delivery 3)", h43_pend_after_lower[2]);

    /* ---- edge line held high ---- */
    host_step(11);                                  /* raise and hold */
    gic_settle(SETTLE);
    check_eq("edge line held high: delivered once", n42, 5);
    ok_val("edge line held high ispendr1", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    host_step(12);                                  /* lower */
    gic_settle(SETTLE);
    check_eq("edge line lowered: nothing more", n42, 5);
    irq_disable();

    /* ---- summary ---- */
    check_eq("host steps timed out", host_timeouts, 0);
    check_eq("other or spurious iar1", n_other, 0);
    l.n = 0;
    gl_s(&l, "delivery order");
    for (u32 i = 0; i < n_total && i < 16; i++) {
        gl_s(&l, " ");
        gl_d(&l, order[i]);
    }
    ok(l.b);
    ok_val("ispendr1 at end", mmio_r32(gicd_base + GICD_ISPENDR + 4));
    ok_val("isactiver1 at end", mmio_r32(gicd_base + GICD_ISACTIVER + 4));
    gic_disable(SPI_EDGE);
    gic_disable(SPI_LEVEL);
    return 0;
}

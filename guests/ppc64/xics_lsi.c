/* xics_lsi: a level-sensitive source (0x1200, the first PCI INTx) driven by
 * a host-side harness (tests/test_xics_guests.py); QEMU cannot raise it.
 *
 * Handshake through xics_lsi_mailbox (an ELF symbol; the guest runs at its
 * link address, so the symbol value is the guest physical address), all
 * words 32-bit big-endian:
 *   [0] host -> guest: MB_HOST before the guest starts = a harness is there.
 *       Anything else: the guest prints "ok lsi skipped (no host harness)"
 *       and powers off (that is what QEMU and plain runs see).
 *   [1] guest -> host: 1 = "please lower the line" (asked from the handler
 *       of the second delivery, before its EOI).
 *   [2] host -> guest: 1 = "line lowered".
 *   [3] guest -> host: deliveries so far (information only).
 * After "ok lsi ready" the host asserts the line (set_irq(0x1200, 1)). */
#include "rt.h"
#include "xics_guest.h"

#define LSI 0x1200u
#define LSI_PRIO 5
#define MB_HOST 0x484f5354u         /* "HOST" */
#define MB_GUEST 0x4c534930u        /* "LSI0": initial value, not the host's */

volatile u32 xics_lsi_mailbox[4] __attribute__((used, aligned(16))) = { MB_GUEST, 0, 0, 0 };

static volatile u32 n_ext, n_other, n_xirr_fail;
static volatile u64 xirrs[8];
static volatile u32 lowered_seen;   /* handler 2 saw the host's answer */
static volatile u64 ipoll_before_eoi2;
static u64 me_server;

static u32 wait_word(volatile u32 *w, u32 want, u64 seconds)
{
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    u32 v;
    while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != want && rt_ticks() - t0 < seconds * hz)
        cpu_relax();
    return v;
}

void on_irq(struct exc_frame *f)
{
    if (!irq_is_external(f, &n_other))
        return;
    u64 xirr = 0;
    if (h_xirr(&xirr) != 0)
        n_xirr_fail++;
    u32 k = n_ext;
    if (k < 8)
        xirrs[k] = xirr;
    n_ext = k + 1;
    xics_lsi_mailbox[3] = k + 1;
    if (k == 1) {
        /* second delivery: ask the host to lower the line, wait, then EOI */
        __atomic_store_n(&xics_lsi_mailbox[1], 1, __ATOMIC_SEQ_CST);
        lowered_seen = wait_word(&xics_lsi_mailbox[2], 1, 20) == 1;
        u64 x, m;
        h_ipoll(me_server, &x, &m);
        ipoll_before_eoi2 = x;
    }
    if (k >= 4)                 /* runaway: mask the source */
        h_cppr(0);
    if (XISR(xirr))
        h_eoi(xirr);            /* first delivery: EOI with the line still high */
}

int main(void)
{
    me_server = cpu_hwid(cpu_index());
    mtdec(0x7fffffff);
    if (__atomic_load_n(&xics_lsi_mailbox[0], __ATOMIC_ACQUIRE) != MB_HOST) {
        ok("lsi skipped (no host harness)");
        return 0;
    }

    u32 args[3] = { LSI, (u32)me_server, LSI_PRIO };
    check_eq("lsi set-xive", (u64)(s64)rtas_call("ibm,set-xive", 3, 1, args, NULL), 0);
    u32 a1[1] = { LSI }, r3[3] = { 0, 0, 0 };
    rtas_call("ibm,get-xive", 1, 3, a1, r3);
    check_eq("lsi get-xive priority", r3[2], LSI_PRIO);
    check_eq("lsi H_CPPR 0xff", (u64)h_cppr(0xff), 0);
    local_irq_enable();
    ok("lsi ready");

    /* the host asserts the line: delivery 1, EOI while high -> delivery 2,
     * whose handler has the host lower the line before its EOI */
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (READ_ONCE(n_ext) < 2 && rt_ticks() - t0 < 60 * hz)
        cpu_relax();
    /* a further while: a third delivery would be a bug */
    t0 = rt_ticks();
    while (rt_ticks() - t0 < hz / 100)
        cpu_relax();
    local_irq_disable();

    u32 n = READ_ONCE(n_ext);
    check(n >= 1, "lsi delivered when the host asserted the line");
    check_eq("lsi no other interrupts", n_other, 0);
    check_eq("lsi H_XIRR failures", n_xirr_fail, 0);
    if (n >= 1) {
        ok_val("lsi first xirr", xirrs[0]);
        check_eq("lsi first xisr", XISR(xirrs[0]), LSI);
    }
    check(n >= 2, "lsi re-delivered after EOI with the line high");
    if (n >= 2) {
        ok_val("lsi second xirr", xirrs[1]);
        check_eq("lsi second xisr", XISR(xirrs[1]), LSI);
        check(lowered_seen, "lsi host lowered the line");
        ok_val("lsi ipoll in second handler", ipoll_before_eoi2);
    }
    check_eq("lsi deliveries", n, 2);
    u64 x, m;
    h_ipoll(me_server, &x, &m);
    ok_val("lsi final ipoll xirr", x);
    ok_val("lsi final ipoll mfrr", m);

    /* leave the source masked */
    u32 off[3] = { LSI, (u32)me_server, 0xff };
    rtas_call("ibm,set-xive", 3, 1, off, NULL);
    return 0;
}

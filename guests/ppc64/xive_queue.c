/* xive_queue: a 4 KiB XIVE event queue (shift 12, 1024 entries) wrapping
 * through its generation bit (CAS to XIVE first).
 *  phase 1: 1500 IPIs to self, one at a time, each with a new EISN (set by
 *           H_INT_SET_SOURCE_CONFIG), each taken and drained by the 0x500
 *           handler: one interrupt per event, the queue wraps once.
 *  phase 2: with EE off, 1000 trigger + EOI-by-hand pairs put 1000 entries
 *           in the queue (always-notify: IPB just stays set); one interrupt
 *           then drains all of them across the next wrap.
 * The reader is Linux's xive_read_eq: consume while entry>>31 != toggle,
 * flip toggle when the index wraps.  Every EISN must arrive once, in order,
 * with the generation bit of its lap.  Boot CPU only: any -smp gives the
 * same transcript. */
#include "rt.h"
#include "xive_guest.h"

#define QSHIFT 12
#define QENTRIES (1u << (QSHIFT - 2))
#define N1 1500
#define N2 1000
#define EISN_BASE 0x100

static u64 server;
static int me;
static struct xive_src src;
static u8 qpage[1 << QSHIFT] __attribute__((aligned(1 << QSHIFT)));

static volatile u32 n_ev, n_other;
static u32 next_seq;          /* expected sequence number of the next event */
static u32 bad_eisn, bad_gen, first_bad_seq, first_bad_entry;
static int eoi_in_handler;

static void on_event(int cpu, u32 eisn, u32 raw)
{
    (void)cpu;
    u32 seq = next_seq++;
    u32 want_gen = ((seq / QENTRIES) & 1) ? 0 : 1;
    if (eisn != EISN_BASE + seq) {
        if (!bad_eisn && !bad_gen) {
            first_bad_seq = seq;
            first_bad_entry = raw;
        }
        bad_eisn++;
    }
    if ((raw >> 31) != want_gen) {
        if (!bad_eisn && !bad_gen) {
            first_bad_seq = seq;
            first_bad_entry = raw;
        }
        bad_gen++;
    }
    if (eoi_in_handler)
        esb_load(&src, ESB_EOI);
    n_ev++;
}

void on_irq(struct exc_frame *f)
{
    if (!irq_is_external(f, &n_other))
        return;
    xive_handle_ext(me, on_event);
}

static void phase_report(const char *pfx, u32 irq0, u32 ev0)
{
    char buf[96];
    char *p = xg_cat(buf, pfx);
    xg_cat(p, " interrupts");
    ok_val(buf, xive_st[me].n_irq - irq0);
    p = xg_cat(buf, pfx);
    xg_cat(p, " events");
    ok_val(buf, n_ev - ev0);
    p = xg_cat(buf, pfx);
    xg_cat(p, " eisn mismatches");
    check_eq(buf, bad_eisn, 0);
    p = xg_cat(buf, pfx);
    xg_cat(p, " generation mismatches");
    check_eq(buf, bad_gen, 0);
    if (bad_eisn || bad_gen) {
        console_lock();
        puts("not ok first bad event seq ");
        put_dec(first_bad_seq);
        puts(" entry ");
        put_hex(first_bad_entry);
        puts("\n");
        console_unlock();
    }
    p = xg_cat(buf, pfx);
    xg_cat(p, " reader index");
    ok_val(buf, xive_qs[me].idx);
    p = xg_cat(buf, pfx);
    xg_cat(p, " reader toggle");
    ok_val(buf, xive_qs[me].toggle);
    p = xg_cat(buf, pfx);
    xg_cat(p, " reader wraps");
    ok_val(buf, xive_qs[me].wraps);
    u64 qc[4];
    p = xg_cat(buf, pfx);
    xg_cat(p, " H_INT_GET_QUEUE_CONFIG debug");
    expect_s(buf, h_int_get_queue_config(XIVE_EQ_DEBUG, server, XIVE_PRIO, qc), 0);
    p = xg_cat(buf, pfx);
    xg_cat(p, " queue debug flags");
    ok_val(buf, qc[0]);
    p = xg_cat(buf, pfx);
    xg_cat(p, " queue debug offset");
    ok_val(buf, qc[3]);
}

int main(void)
{
    me = cpu_index();
    server = cpu_hwid(me);
    mtdec(0x7fffffff);
    u64 qc[4];

    expect_s("cas xive", xive_cas(0x40), 0);
    check(xive_adopt_cas_fdt(), "cas reply fdt");
    check(xive_find_tima(), "xive node tima");
    u64 lisn = xive_ipi_lisn(me);
    expect_s("H_INT_GET_SOURCE_INFO", h_int_get_source_info(0, lisn, &src), 0);
    expect_s("H_INT_SET_QUEUE_CONFIG shift 12",
             xive_setup_queue(server, XIVE_PRIO, qpage, QSHIFT, &xive_qs[me]), 0);
    expect_s("H_INT_GET_QUEUE_CONFIG", h_int_get_queue_config(0, server, XIVE_PRIO, qc), 0);
    ok_val("queue flags", qc[0]);
    check(qc[1] == (u64)(uintptr_t)qpage, "queue qpage read back");
    ok_val("queue shift", qc[2]);
    expect_s("H_INT_SET_SOURCE_CONFIG", h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO, EISN_BASE), 0);
    ok_val("set-pq-00 old pq", esb_load(&src, ESB_SET_PQ_00));
    tima_set_cppr(0xff);

    /* ---- phase 1: one event per interrupt ---- */
    u64 hz = rt_ticks_hz();
    u32 timeouts = 0, hcall_fail = 0;
    eoi_in_handler = 1;
    local_irq_enable();
    for (u32 i = 0; i < N1; i++) {
        if (h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO, EISN_BASE + i) != 0)
            hcall_fail++;
        esb_trigger(&src);
        u64 t0 = rt_ticks();
        while (READ_ONCE(n_ev) < i + 1 && rt_ticks() - t0 < 2 * hz)
            cpu_relax();
        if (READ_ONCE(n_ev) < i + 1) {
            timeouts++;
            break;
        }
    }
    local_irq_disable();
    check_eq("phase 1 timeouts", timeouts, 0);
    check_eq("phase 1 hcall failures", hcall_fail, 0);
    phase_report("phase 1", 0, 0);
    ok_val("phase 1 empty acks", xive_st[me].n_empty + xive_st[me].n_noeo);
    ok_val("phase 1 esb pq", esb_load(&src, ESB_GET));

    /* ---- phase 2: fill with EE off, drain in one interrupt ---- */
    u32 irq0 = xive_st[me].n_irq, ev0 = n_ev;
    u32 eoi_ret = 0;
    eoi_in_handler = 0;
    for (u32 i = 0; i < N2; i++) {
        if (h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO, EISN_BASE + N1 + i) != 0)
            hcall_fail++;
        esb_trigger(&src);
        eoi_ret |= (u32)esb_load(&src, ESB_EOI);   /* PQ 10 -> 00, entry stays queued */
    }
    check_eq("phase 2 hcall failures", hcall_fail, 0);
    ok_val("phase 2 eoi returns (or)", eoi_ret);
    ok_val("phase 2 tima os word0 before", tima_os_word0());
    ok_val("phase 2 tima os word1 before", tima_os_word1());
    check_eq("phase 2 nothing consumed yet", n_ev - ev0, 0);
    xg_window(&n_ev, ev0 + N2);
    check_eq("phase 2 no other interrupts", n_other, 0);
    phase_report("phase 2", irq0, ev0);
    ok_val("phase 2 empty acks", xive_st[me].n_empty + xive_st[me].n_noeo);
    ok_val("total events", n_ev);
    return 0;
}

/* xive_ipi: XIVE exploitation-mode IPI on the boot CPU (CAS to XIVE first).
 * Round trip through the ESB trigger page, the event queue and the TIMA OS
 * ring; ESB PQ state machine (SET_PQ_xx loads, a trigger while pending,
 * a masked trigger, a remembered event released by an EOI); CPPR masking;
 * TIMA set-OS-pending; H_INT_ESB / H_INT_SYNC on a live source.
 * Only the boot CPU runs: every -smp gives the same transcript. */
#include "rt.h"
#include "xive_guest.h"

#define EISN 0x1234

static u64 server;
static int me;
static struct xive_src src;
static u8 qpage[65536] __attribute__((aligned(65536)));

static volatile u32 n_ev, n_other;
static volatile u32 ev_eisn[16], ev_raw[16];
static volatile u64 ev_eoi[16];
static volatile u32 acks[16];
static volatile u32 n_ack;

static void on_event(int cpu, u32 eisn, u32 raw)
{
    (void)cpu;
    u32 k = n_ev;
    u64 e = esb_load(&src, ESB_EOI);
    if (k < 16) {
        ev_eisn[k] = eisn;
        ev_raw[k] = raw;
        ev_eoi[k] = e;
    }
    n_ev = k + 1;
}

void on_irq(struct exc_frame *f)
{
    if (!irq_is_external(f, &n_other))
        return;
    xive_handle_ext(me, on_event);
    if (n_ack < 16)
        acks[n_ack] = xive_st[me].last_ack;
    n_ack++;
    if (xive_st[me].n_irq > 12)
        tima_set_cppr(0);       /* runaway: stop it */
}

static void reset_log(void)
{
    n_ev = 0;
    n_ack = 0;
    n_other = 0;
    for (int i = 0; i < 16; i++) {
        ev_eisn[i] = ev_raw[i] = acks[i] = 0;
        ev_eoi[i] = 0;
    }
    xive_st[me].n_irq = xive_st[me].n_noeo = xive_st[me].n_ev = xive_st[me].n_empty = 0;
}

static void name_i(char *buf, const char *pfx, int i, const char *sfx)
{
    char *p = xg_cat(buf, pfx);
    p = xg_cat_dec(p, (u64)i);
    xg_cat(p, sfx);
}

/* print the whole log of one scenario */
static void report(const char *pfx)
{
    char buf[96];
    char *p = xg_cat(buf, pfx);
    xg_cat(p, " interrupts");
    ok_val(buf, xive_st[me].n_irq);
    p = xg_cat(buf, pfx);
    xg_cat(p, " empty acks");
    ok_val(buf, xive_st[me].n_empty + xive_st[me].n_noeo);
    for (u32 i = 0; i < n_ack && i < 16; i++) {
        char b2[96];
        p = xg_cat(b2, pfx);
        name_i(p, " ack ", (int)i, "");
        ok_val(b2, acks[i]);
    }
    p = xg_cat(buf, pfx);
    xg_cat(p, " events");
    ok_val(buf, n_ev);
    for (u32 i = 0; i < n_ev && i < 16; i++) {
        char b2[96];
        p = xg_cat(b2, pfx);
        name_i(p, " event ", (int)i, " entry");
        ok_val(b2, ev_raw[i]);
        p = xg_cat(b2, pfx);
        name_i(p, " event ", (int)i, " eoi returned");
        ok_val(b2, ev_eoi[i]);
    }
    check_eq("no other interrupts", n_other, 0);
}

int main(void)
{
    me = cpu_index();
    server = cpu_hwid(me);
    mtdec(0x7fffffff);
    u64 a, b, c;

    /* ---- CAS to XIVE, new tree ---- */
    expect_s("cas xive", xive_cas(0x40), 0);
    check(xive_adopt_cas_fdt(), "cas reply fdt");
    check(xive_find_tima(), "xive node tima");
    ok_val("tima os page", tima_os);
    u64 lisn = xive_ipi_lisn(me);
    ok_val("ipi lisn", lisn);

    /* ---- configuration ---- */
    expect_s("H_INT_GET_SOURCE_INFO", h_int_get_source_info(0, lisn, &src), 0);
    xive_print_src("source", &src);
    expect_s("H_INT_GET_QUEUE_INFO", h_int_get_queue_info(0, server, XIVE_PRIO, &a, &b), 0);
    ok_val("queue info esn page", a);
    ok_val("queue info shift", b);
    u64 qc[4];
    expect_s("H_INT_GET_QUEUE_CONFIG unset", h_int_get_queue_config(0, server, XIVE_PRIO, qc), 0);
    ok_val("unset queue flags", qc[0]);
    ok_val("unset queue qpage", qc[1]);
    ok_val("unset queue shift", qc[2]);
    expect_s("H_INT_SET_QUEUE_CONFIG", xive_setup_queue(server, XIVE_PRIO, qpage, 16, &xive_qs[me]), 0);
    expect_s("H_INT_GET_QUEUE_CONFIG", h_int_get_queue_config(0, server, XIVE_PRIO, qc), 0);
    ok_val("queue flags", qc[0]);
    check(qc[1] == (u64)(uintptr_t)qpage, "queue qpage read back");
    ok_val("queue shift", qc[2]);
    ok_val("queue offset (no debug flag)", qc[3]);
    expect_s("H_INT_GET_QUEUE_CONFIG debug", h_int_get_queue_config(XIVE_EQ_DEBUG, server, XIVE_PRIO, qc), 0);
    ok_val("fresh queue debug flags", qc[0]);
    ok_val("fresh queue debug offset", qc[3]);
    expect_s("H_INT_SET_SOURCE_CONFIG", h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO, EISN), 0);
    expect_s("H_INT_GET_SOURCE_CONFIG", h_int_get_source_config(0, lisn, &a, &b, &c), 0);
    check(a == server, "source target read back");
    ok_val("source prio", b);
    ok_val("source eisn", c);

    /* ---- 1. round trip ---- */
    ok_val("tima os word0 at reset", tima_os_word0());
    ok_val("tima os word1 at reset", tima_os_word1());
    ok_val("esb pq at reset", esb_load(&src, ESB_GET));
    ok_val("set-pq-00 old pq", esb_load(&src, ESB_SET_PQ_00));
    ok_val("esb pq unmasked", esb_load(&src, ESB_GET));
    tima_set_cppr(0xff);
    ok_val("tima os word0 cppr 0xff", tima_os_word0());
    reset_log();
    esb_trigger(&src);
    ok_val("trigger: esb pq", esb_load(&src, ESB_GET));
    ok_val("trigger: tima os word0", tima_os_word0());
    ok_val("trigger: tima os word1", tima_os_word1());
    check_eq("trigger: nothing taken with EE off", xive_st[me].n_irq, 0);
    ok_val("trigger: queue entry 0 before the interrupt", fdt_be32(qpage));
    xg_window(&n_ev, 1);
    report("round trip");
    ok_val("round trip: esb pq after", esb_load(&src, ESB_GET));
    ok_val("round trip: tima os word0 after", tima_os_word0());
    ok_val("round trip: tima os word1 after", tima_os_word1());

    /* ---- 2. second trigger while pending (P=1): Q remembers it, the
     * handler's EOI re-forwards it (returns 1) ---- */
    reset_log();
    esb_trigger(&src);
    ok_val("double trigger: pq after first", esb_load(&src, ESB_GET));
    esb_trigger(&src);
    ok_val("double trigger: pq after second", esb_load(&src, ESB_GET));
    ok_val("double trigger: tima os word0", tima_os_word0());
    xg_window(&n_ev, 2);
    report("double trigger");
    ok_val("double trigger: esb pq after", esb_load(&src, ESB_GET));
    ok_val("double trigger: tima os word0 after", tima_os_word0());

    /* ---- 3. masked (PQ 01): the trigger is dropped ---- */
    reset_log();
    ok_val("mask: set-pq-01 old pq", esb_load(&src, ESB_SET_PQ_01));
    esb_trigger(&src);
    ok_val("mask: pq after trigger", esb_load(&src, ESB_GET));
    ok_val("mask: tima os word0", tima_os_word0());
    xg_window(&n_ev, 0);
    check_eq("mask: no interrupt", xive_st[me].n_irq, 0);
    ok_val("mask: eoi load while masked", esb_load(&src, ESB_EOI));
    ok_val("mask: pq after eoi", esb_load(&src, ESB_GET));
    ok_val("unmask: set-pq-00 old pq", esb_load(&src, ESB_SET_PQ_00));
    xg_window(&n_ev, 0);
    check_eq("unmask: dropped trigger stays dropped", xive_st[me].n_irq, 0);

    /* ---- 4. PQ 10 (pending) + trigger -> 11; the EOI releases it ---- */
    reset_log();
    ok_val("remember: set-pq-10 old pq", esb_load(&src, ESB_SET_PQ_10));
    esb_trigger(&src);
    ok_val("remember: pq after trigger", esb_load(&src, ESB_GET));
    xg_window(&n_ev, 0);
    check_eq("remember: no interrupt yet", xive_st[me].n_irq, 0);
    ok_val("remember: eoi load returns", esb_load(&src, ESB_EOI));
    ok_val("remember: pq after eoi", esb_load(&src, ESB_GET));
    ok_val("remember: tima os word0", tima_os_word0());
    xg_window(&n_ev, 1);
    report("remember");
    ok_val("remember: esb pq after", esb_load(&src, ESB_GET));

    /* ---- 5. PQ 11 set by hand: EOI forwards an event ---- */
    reset_log();
    ok_val("pq11: set-pq-11 old pq", esb_load(&src, ESB_SET_PQ_11));
    ok_val("pq11: eoi load returns", esb_load(&src, ESB_EOI));
    ok_val("pq11: pq after eoi", esb_load(&src, ESB_GET));
    xg_window(&n_ev, 1);
    report("pq11");
    ok_val("pq11: esb pq after", esb_load(&src, ESB_GET));

    /* ---- 6. CPPR 5 hides priority 6; CPPR 0xff lets it in ---- */
    reset_log();
    tima_set_cppr(5);
    ok_val("cppr 5: tima os word0", tima_os_word0());
    esb_trigger(&src);
    ok_val("cppr 5: tima os word0 after trigger", tima_os_word0());
    ok_val("cppr 5: tima os word1 after trigger", tima_os_word1());
    xg_window(&n_ev, 0);
    check_eq("cppr 5: no interrupt", xive_st[me].n_irq, 0);
    tima_set_cppr(0xff);
    ok_val("cppr 0xff: tima os word0", tima_os_word0());
    xg_window(&n_ev, 1);
    report("cppr");

    /* ---- 7. CPPR values > 7 ---- */
    tima_set_cppr(7);
    ok_val("cppr 7: tima os word0", tima_os_word0());
    tima_set_cppr(8);
    ok_val("cppr 8: tima os word0", tima_os_word0());
    tima_set_cppr(0x80);
    ok_val("cppr 0x80: tima os word0", tima_os_word0());
    tima_set_cppr(0xff);

    /* ---- 8. TIMA set-OS-pending: IPB without a queue entry ---- */
    reset_log();
    mmio_st8(tima_os + TM_SPC_SET_OS_PENDING, XIVE_PRIO);
    ok_val("set-os-pending: tima os word0", tima_os_word0());
    ok_val("set-os-pending: tima os word1", tima_os_word1());
    xg_window(&xive_st[me].n_irq, 1);
    report("set-os-pending");
    ok_val("set-os-pending: tima os word0 after", tima_os_word0());

    /* ---- 9. ack with nothing pending ---- */
    ok_val("idle ack", tima_ack());
    ok_val("idle ack: tima os word0", tima_os_word0());

    /* ---- 10. H_INT_ESB and H_INT_SYNC on the live source ---- */
    expect_s("H_INT_ESB get", h_int_esb(0, lisn, ESB_GET, 0, &a), 0);
    ok_val("H_INT_ESB get value", a);
    expect_s("H_INT_ESB set-pq-01", h_int_esb(0, lisn, ESB_SET_PQ_01, 0, &a), 0);
    ok_val("H_INT_ESB set-pq-01 value", a);
    ok_val("esb pq after H_INT_ESB set-pq-01", esb_load(&src, ESB_GET));
    expect_s("H_INT_ESB set-pq-00", h_int_esb(0, lisn, ESB_SET_PQ_00, 0, &a), 0);
    ok_val("H_INT_ESB set-pq-00 value", a);
    reset_log();
    expect_s("H_INT_ESB store trigger", h_int_esb(XIVE_ESB_STORE, lisn, 0, 0, &a), 0);
    ok_val("H_INT_ESB store: pq", esb_load(&src, ESB_GET));
    xg_window(&n_ev, 1);
    report("H_INT_ESB trigger");
    expect_s("H_INT_SYNC", h_int_sync(0, lisn), 0);
    ok_val("final esb pq", esb_load(&src, ESB_GET));
    expect_s("final H_INT_GET_QUEUE_CONFIG debug", h_int_get_queue_config(XIVE_EQ_DEBUG, server, XIVE_PRIO, qc), 0);
    ok_val("final queue debug flags", qc[0]);
    ok_val("final queue debug offset", qc[3]);
    return 0;
}

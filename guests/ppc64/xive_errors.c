/* xive_errors: H_INT_* argument checking (CAS to XIVE first).  Every line
 * is "ok NAME = <status>" with the status QEMU 7.2 returns; a different
 * status prints "not ok NAME got X want Y".  Boot CPU only: any -smp gives
 * the same transcript (bad targets are chosen beyond any -smp). */
#include "rt.h"
#include "xive_guest.h"

#define BAD_LISN 0x7fffffffull
#define UNCLAIMED_LISN 0x1fffull        /* inside the source space, never claimed */
#define BAD_TARGET 0x10000ull
#define BAD_TARGET2 0xffffffffull

static u8 qpage[65536] __attribute__((aligned(65536)));

int main(void)
{
    int me = cpu_index();
    u64 server = cpu_hwid(me);
    u64 a, b, c, qc[4];
    struct xive_src s;
    u64 qp = (u64)(uintptr_t)qpage;

    expect_s("cas xive", xive_cas(0x40), 0);
    check(xive_adopt_cas_fdt(), "cas reply fdt");
    u64 lisn = xive_ipi_lisn(me);

    /* ---- H_INT_GET_SOURCE_INFO ---- */
    expect_s("GET_SOURCE_INFO ok", h_int_get_source_info(0, lisn, &s), H_SUCCESS);
    expect_s("GET_SOURCE_INFO bad lisn", h_int_get_source_info(0, BAD_LISN, &s), H_P2);
    expect_s("GET_SOURCE_INFO unclaimed lisn", h_int_get_source_info(0, UNCLAIMED_LISN, &s), H_P2);
    expect_s("GET_SOURCE_INFO flags 1", h_int_get_source_info(1, lisn, &s), H_PARAMETER);
    expect_s("GET_SOURCE_INFO flags 1<<63", h_int_get_source_info(1ull << 63, lisn, &s), H_PARAMETER);

    /* ---- H_INT_SET_SOURCE_CONFIG ----
     * (GET_SOURCE_CONFIG reports the priority of the END the EAS points
     * to, which only H_INT_SET_QUEUE_CONFIG sets: 0 while no queue was
     * ever configured for (target, prio), 0xff when the EAS is masked) */
    expect_s("SET_SOURCE_CONFIG bad lisn", h_int_set_source_config(0, BAD_LISN, server, XIVE_PRIO, 0), H_P2);
    expect_s("SET_SOURCE_CONFIG unclaimed lisn", h_int_set_source_config(0, UNCLAIMED_LISN, server, XIVE_PRIO, 0), H_P2);
    expect_s("SET_SOURCE_CONFIG prio 7", h_int_set_source_config(0, lisn, server, 7, 0), H_P4);
    expect_s("SET_SOURCE_CONFIG prio 0xf8", h_int_set_source_config(0, lisn, server, 0xf8, 0), H_P4);
    expect_s("SET_SOURCE_CONFIG prio 0xfe", h_int_set_source_config(0, lisn, server, 0xfe, 0), H_P4);
    /* QEMU keeps only the low byte of the priority: 0x100 is priority 0 */
    expect_s("SET_SOURCE_CONFIG prio 0x100", h_int_set_source_config(0, lisn, server, 0x100, 0), H_SUCCESS);
    expect_s("GET_SOURCE_CONFIG prio 0x100", h_int_get_source_config(0, lisn, &a, &b, &c), H_SUCCESS);
    ok_val("prio 0x100: target", a);
    ok_val("prio 0x100: prio", b);
    expect_s("SET_SOURCE_CONFIG prio 0x1ff", h_int_set_source_config(0, lisn, server, 0x1ff, 0), H_P4);
    expect_s("GET_SOURCE_CONFIG prio 0x1ff", h_int_get_source_config(0, lisn, &a, &b, &c), H_SUCCESS);
    ok_val("prio 0x1ff: prio", b);
    expect_s("SET_SOURCE_CONFIG bad target", h_int_set_source_config(0, lisn, BAD_TARGET, XIVE_PRIO, 0), H_P3);
    expect_s("SET_SOURCE_CONFIG bad target 0xffffffff", h_int_set_source_config(0, lisn, BAD_TARGET2, XIVE_PRIO, 0), H_P3);
    expect_s("SET_SOURCE_CONFIG bad target prio 0xff", h_int_set_source_config(0, lisn, BAD_TARGET, 0xff, 0), H_SUCCESS);
    expect_s("SET_SOURCE_CONFIG flags 1<<2", h_int_set_source_config(1ull << 2, lisn, server, XIVE_PRIO, 0), H_PARAMETER);
    expect_s("SET_SOURCE_CONFIG mask flag", h_int_set_source_config(XIVE_SRC_MASK, lisn, server, XIVE_PRIO, 0), H_SUCCESS);
    expect_s("GET_SOURCE_CONFIG after mask flag", h_int_get_source_config(0, lisn, &a, &b, &c), H_SUCCESS);
    ok_val("mask flag: prio", b);
    expect_s("SET_SOURCE_CONFIG prio 0", h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, 0, 0x42), H_SUCCESS);
    expect_s("GET_SOURCE_CONFIG prio 0", h_int_get_source_config(0, lisn, &a, &b, &c), H_SUCCESS);
    ok_val("prio 0: prio", b);
    ok_val("prio 0: eisn", c);
    expect_s("SET_SOURCE_CONFIG without set-eisn", h_int_set_source_config(0, lisn, server, XIVE_PRIO, 0x99), H_SUCCESS);
    expect_s("GET_SOURCE_CONFIG without set-eisn", h_int_get_source_config(0, lisn, &a, &b, &c), H_SUCCESS);
    ok_val("without set-eisn: prio", b);
    ok_val("without set-eisn: eisn", c);
    expect_s("SET_SOURCE_CONFIG eisn 0xffffffff", h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO, 0xffffffffull), H_SUCCESS);
    expect_s("GET_SOURCE_CONFIG eisn 0xffffffff", h_int_get_source_config(0, lisn, &a, &b, &c), H_SUCCESS);
    ok_val("eisn 0xffffffff: eisn", c);

    /* ---- H_INT_GET_SOURCE_CONFIG ---- */
    expect_s("GET_SOURCE_CONFIG bad lisn", h_int_get_source_config(0, BAD_LISN, &a, &b, &c), H_P2);
    expect_s("GET_SOURCE_CONFIG unclaimed lisn", h_int_get_source_config(0, UNCLAIMED_LISN, &a, &b, &c), H_P2);
    expect_s("GET_SOURCE_CONFIG flags 1", h_int_get_source_config(1, lisn, &a, &b, &c), H_PARAMETER);

    /* ---- H_INT_GET_QUEUE_INFO ---- */
    expect_s("GET_QUEUE_INFO ok", h_int_get_queue_info(0, server, XIVE_PRIO, &a, &b), H_SUCCESS);
    expect_s("GET_QUEUE_INFO prio 0", h_int_get_queue_info(0, server, 0, &a, &b), H_SUCCESS);
    expect_s("GET_QUEUE_INFO prio 7", h_int_get_queue_info(0, server, 7, &a, &b), H_P3);
    expect_s("GET_QUEUE_INFO prio 0xff", h_int_get_queue_info(0, server, 0xff, &a, &b), H_P3);
    expect_s("GET_QUEUE_INFO bad target", h_int_get_queue_info(0, BAD_TARGET, XIVE_PRIO, &a, &b), H_P2);
    expect_s("GET_QUEUE_INFO flags 1", h_int_get_queue_info(1, server, XIVE_PRIO, &a, &b), H_PARAMETER);

    /* ---- H_INT_SET_QUEUE_CONFIG ---- */
    expect_s("SET_QUEUE_CONFIG misaligned qpage", h_int_set_queue_config(0, server, XIVE_PRIO, qp + 4096, 16), H_P4);
    expect_s("SET_QUEUE_CONFIG qpage beyond ram", h_int_set_queue_config(0, server, XIVE_PRIO, 0x100000000ull, 16), H_P4);
    expect_s("SET_QUEUE_CONFIG size 13", h_int_set_queue_config(0, server, XIVE_PRIO, qp, 13), H_P5);
    expect_s("SET_QUEUE_CONFIG size 15", h_int_set_queue_config(0, server, XIVE_PRIO, qp, 15), H_P5);
    expect_s("SET_QUEUE_CONFIG size 11", h_int_set_queue_config(0, server, XIVE_PRIO, qp, 11), H_P5);
    expect_s("SET_QUEUE_CONFIG prio 7", h_int_set_queue_config(0, server, 7, qp, 16), H_P3);
    expect_s("SET_QUEUE_CONFIG bad target", h_int_set_queue_config(0, BAD_TARGET, XIVE_PRIO, qp, 16), H_P2);
    expect_s("SET_QUEUE_CONFIG flags 1<<1", h_int_set_queue_config(1ull << 1, server, XIVE_PRIO, qp, 16), H_PARAMETER);
    expect_s("SET_QUEUE_CONFIG shift 12 on 64K page", h_int_set_queue_config(0, server, XIVE_PRIO, qp, 12), H_SUCCESS);
    expect_s("GET_QUEUE_CONFIG shift 12", h_int_get_queue_config(0, server, XIVE_PRIO, qc), H_SUCCESS);
    ok_val("shift 12: flags (no always-notify)", qc[0]);
    ok_val("shift 12: shift", qc[2]);
    expect_s("SET_QUEUE_CONFIG shift 0 with qpage", h_int_set_queue_config(0, server, XIVE_PRIO, qp, 0), H_SUCCESS);
    expect_s("GET_QUEUE_CONFIG shift 0", h_int_get_queue_config(0, server, XIVE_PRIO, qc), H_SUCCESS);
    ok_val("shift 0: flags", qc[0]);
    ok_val("shift 0: qpage", qc[1]);
    ok_val("shift 0: shift", qc[2]);

    /* ---- H_INT_GET_QUEUE_CONFIG ---- */
    expect_s("GET_QUEUE_CONFIG prio 7", h_int_get_queue_config(0, server, 7, qc), H_P3);
    expect_s("GET_QUEUE_CONFIG bad target", h_int_get_queue_config(0, BAD_TARGET, XIVE_PRIO, qc), H_P2);
    expect_s("GET_QUEUE_CONFIG flags 1<<1", h_int_get_queue_config(1ull << 1, server, XIVE_PRIO, qc), H_PARAMETER);

    /* ---- OS reporting line ---- */
    {
        u64 r[9] = { 0, server };
        expect_s("SET_OS_REPORTING_LINE", hcall(H_INT_SET_OS_REPORTING_LINE, r), H_FUNCTION);
        u64 g[9] = { 0, server };
        expect_s("GET_OS_REPORTING_LINE", hcall(H_INT_GET_OS_REPORTING_LINE, g), H_FUNCTION);
    }

    /* ---- H_INT_ESB ---- */
    expect_s("ESB get ok", h_int_esb(0, lisn, ESB_GET, 0, &a), H_SUCCESS);
    ok_val("ESB get value (PQ 01, host byte order)", a);
    expect_s("ESB bad lisn", h_int_esb(0, BAD_LISN, ESB_GET, 0, &a), H_P2);
    expect_s("ESB unclaimed lisn", h_int_esb(0, UNCLAIMED_LISN, ESB_GET, 0, &a), H_P2);
    expect_s("ESB flags 1<<1", h_int_esb(1ull << 1, lisn, ESB_GET, 0, &a), H_PARAMETER);
    expect_s("ESB offset 0xff8", h_int_esb(0, lisn, 0xff8, 0, &a), H_SUCCESS);
    ok_val("ESB offset 0xff8 value", a);
    /* the offset is added to the management page and checked against
     * 2^esb_shift = 128K, so up to 0x20000 reaches the next LISN's pages */
    expect_s("ESB offset 0x10000", h_int_esb(0, lisn, 0x10000, 0, &a), H_SUCCESS);
    ok_val("ESB offset 0x10000 value (next lisn trigger page)", a);
    expect_s("ESB offset 0x10808", h_int_esb(0, lisn, 0x10808, 0, &a), H_SUCCESS);
    ok_val("ESB offset 0x10808 value", a);
    expect_s("ESB offset 0x20000", h_int_esb(0, lisn, 0x20000, 0, &a), H_SUCCESS);
    ok_val("ESB offset 0x20000 value (next lisn eoi)", a);
    expect_s("ESB offset 0x20001", h_int_esb(0, lisn, 0x20001, 0, &a), H_P3);
    expect_s("ESB offset 0x20008", h_int_esb(0, lisn, 0x20008, 0, &a), H_P3);
    expect_s("ESB offset -8", h_int_esb(0, lisn, (u64)-8, 0, &a), H_P3);
    a = 0;
    expect_s("ESB store set-pq-01", h_int_esb(XIVE_ESB_STORE, lisn, ESB_SET_PQ_01, 0, &a), H_SUCCESS);
    ok_val("ESB store r4", a);

    /* ---- H_INT_SYNC ---- */
    expect_s("SYNC ok", h_int_sync(0, lisn), H_SUCCESS);
    expect_s("SYNC bad lisn", h_int_sync(0, BAD_LISN), H_P2);
    expect_s("SYNC unclaimed lisn", h_int_sync(0, UNCLAIMED_LISN), H_P2);
    expect_s("SYNC flags 1", h_int_sync(1, lisn), H_PARAMETER);

    /* ---- H_INT_RESET ---- */
    expect_s("RESET flags 1", h_int_reset(1), H_PARAMETER);
    expect_s("SET_QUEUE_CONFIG before reset", h_int_set_queue_config(XIVE_EQ_ALWAYS_NOTIFY, server, XIVE_PRIO, qp, 16), H_SUCCESS);
    expect_s("SET_SOURCE_CONFIG before reset", h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO, 0x77), H_SUCCESS);
    expect_s("RESET", h_int_reset(0), H_SUCCESS);
    expect_s("GET_QUEUE_CONFIG after reset", h_int_get_queue_config(0, server, XIVE_PRIO, qc), H_SUCCESS);
    ok_val("after reset: queue flags", qc[0]);
    ok_val("after reset: queue shift", qc[2]);
    expect_s("GET_SOURCE_CONFIG after reset", h_int_get_source_config(0, lisn, &a, &b, &c), H_SUCCESS);
    ok_val("after reset: source prio", b);
    ok_val("after reset: source eisn", c);
    return 0;
}

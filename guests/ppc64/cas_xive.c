/* cas_xive: client-architecture-support negotiating XIVE exploitation mode
 * (OV5 byte 23 = 0x40) on the boot CPU.
 *  - before CAS: the boot tree, H_INT_* answer H_FUNCTION, XICS works
 *    (H_IPOLL, RTAS ibm,get-xive, an IPI to self through H_IPI/H_XIRR/H_EOI)
 *  - CAS: status, reply = 4-byte header + the new FDT, which has the XIVE
 *    node and no XICS node
 *  - after CAS: XICS hcalls H_HARDWARE, XICS RTAS calls -1, and one full
 *    XIVE IPI round trip (source info, queue, source config, ESB unmask,
 *    TIMA CPPR, trigger, ack at 0x810, queue entry, ESB EOI).
 * Only the boot CPU runs, so every -smp gives the same transcript.
 * Needs ic-mode=dual (the default) or ic-mode=xive. */
#include "rt.h"
#include "xive_guest.h"

#define EISN 0x1234

static u64 server;
static volatile u32 mode;         /* 0 XICS, 1 XIVE */
static volatile u32 n_xics;
static volatile u64 xics_xirr;
static volatile u32 n_other;
static volatile u32 n_ev;
static volatile u32 ev_eisn, ev_raw;
static volatile u64 ev_eoi;
static struct xive_src ipi_src;
static u8 qpage[65536] __attribute__((aligned(65536)));

static void on_event(int cpu, u32 eisn, u32 raw)
{
    (void)cpu;
    if (n_ev == 0) {
        ev_eisn = eisn;
        ev_raw = raw;
        ev_eoi = esb_load(&ipi_src, ESB_EOI);
    } else {
        esb_load(&ipi_src, ESB_EOI);
    }
    n_ev++;
}

void on_irq(struct exc_frame *f)
{
    if (!irq_is_external(f, &n_other))
        return;
    if (mode == 0) {
        xics_self_ipi_irq(server, &n_xics, &xics_xirr);
        return;
    }
    xive_handle_ext(cpu_index(), on_event);
    if (xive_st[cpu_index()].n_irq > 8)
        tima_set_cppr(0);       /* runaway: stop it */
}

static void print_prop_bytes(const char *name, const char *path, const char *prop)
{
    int n = fdt_path(path), len = 0;
    const u8 *p = n >= 0 ? fdt_prop(n, prop, &len) : NULL;
    console_lock();
    if (!p) {
        puts("ok ");
        puts(name);
        puts(" absent\n");
    } else {
        puts("ok ");
        puts(name);
        puts(" =");
        for (int i = 0; i < len; i++) {
            puts(" ");
            put_hex(p[i]);
        }
        puts("\n");
    }
    console_unlock();
}

static void print_node_name(const char *what, int node)
{
    console_lock();
    puts("ok ");
    puts(what);
    puts(" ");
    puts(node >= 0 ? fdt_name(node) : "(none)");
    puts("\n");
    console_unlock();
}

static void print_str_prop(const char *what, int node, const char *prop)
{
    int len;
    const char *s = node >= 0 ? fdt_prop(node, prop, &len) : NULL;
    console_lock();
    puts(s ? "ok " : "not ok ");
    puts(what);
    puts(" ");
    puts(s ? s : "missing");
    puts("\n");
    console_unlock();
}

int main(void)
{
    int me = cpu_index();
    server = cpu_hwid(me);
    mtdec(0x7fffffff);
    u64 x = 0, m = 0, a, b, c;
    /* ic-mode=dual boots with XICS (node, hcalls, RTAS tokens); with
     * ic-mode=xive the XICS hcalls are not registered (H_FUNCTION) and the
     * RTAS tokens are absent (rtas_call gives -9999). */
    int dual = xics_node() >= 0;
    long xh_pre = dual ? H_SUCCESS : H_FUNCTION;
    long xh_post = dual ? H_HARDWARE : H_FUNCTION;
    s32 xr_pre = dual ? 0 : -9999;
    s32 xr_post = dual ? -1 : -9999;

    /* ---- 1. boot tree ---- */
    ok_val("boot platform-support ov5 23", (u64)ov5_pair_lookup("/chosen", "ibm,arch-vec-5-platform-support", 23));
    ok_val("boot platform-support ov5 24", (u64)ov5_pair_lookup("/chosen", "ibm,arch-vec-5-platform-support", 24));
    print_prop_bytes("boot ibm,architecture-vec-5", "/chosen", "ibm,architecture-vec-5");
    print_node_name("boot xics node", xics_node());
    print_node_name("boot xive node", xive_node());

    /* ---- 2. before CAS: XIVE hcalls are H_FUNCTION ---- */
    struct xive_src s;
    expect_s("pre-cas H_INT_GET_SOURCE_INFO", h_int_get_source_info(0, server, &s), H_FUNCTION);
    expect_s("pre-cas H_INT_GET_QUEUE_INFO", h_int_get_queue_info(0, server, XIVE_PRIO, &a, &b), H_FUNCTION);
    expect_s("pre-cas H_INT_RESET", h_int_reset(0), H_FUNCTION);
    expect_s("pre-cas H_INT_ESB", h_int_esb(0, server, ESB_GET, 0, &a), H_FUNCTION);

    /* ---- 3. before CAS: XICS works ---- */
    long r = h_ipoll(server, &x, &m);
    expect_s("pre-cas H_IPOLL", r, xh_pre);
    ok_val("pre-cas H_IPOLL xirr", x);
    ok_val("pre-cas H_IPOLL mfrr", m);
    {
        u32 args[1] = { 0x1100 };
        u32 rets[3] = { 0 };
        s32 st = rtas_call("ibm,get-xive", 1, 3, args, rets);
        expect_s("pre-cas ibm,get-xive 0x1100 status", st, xr_pre);
        if (st == 0) {
            ok_val("pre-cas ibm,get-xive 0x1100 server", rets[1]);
            ok_val("pre-cas ibm,get-xive 0x1100 priority", rets[2]);
        }
    }
    mode = 0;
    expect_s("pre-cas H_CPPR 0xff", h_cppr(0xff), xh_pre);
    expect_s("pre-cas H_IPI self", h_ipi(server, 4), xh_pre);
    xg_window(&n_xics, dual ? 1 : 0);
    expect_x("pre-cas xics ipi deliveries", n_xics, dual ? 1 : 0);
    if (dual)
        expect_x("pre-cas xics ipi xirr", xics_xirr, 0xff000002ull);

    /* ---- 4. CAS asking for XIVE ---- */
    r = xive_cas(0x40);
    expect_s("cas ov5 23 = 0x40", r, 0);
    if (r != 0)
        return 0;
    /* version_id = 1 written in QEMU's host byte order */
    ok_val("cas reply header", fdt_be32(cas_reply));
    check(fdt_be32(cas_reply + 4) == 0xd00dfeed, "cas reply fdt magic");
    check(xive_adopt_cas_fdt(), "cas reply fdt valid");

    /* ---- 5. the new tree ---- */
    int xn = xive_node();
    print_node_name("new xive node", xn);
    print_node_name("new xics node", xics_node());
    check(xn >= 0 && fdt_streq(fdt_name(xn), "interrupt-controller@60302031b0000"),
          "new xive node name");
    print_str_prop("new xive compatible", xn, "compatible");
    print_str_prop("new xive device_type", xn, "device_type");
    for (int i = 0; i < 2; i++) {
        u64 ra = 0, rs = 0;
        int okr = xn >= 0 && fdt_reg(xn, i, &ra, &rs) == 0;
        check(okr, i ? "new xive reg 1 present" : "new xive reg 0 present");
        ok_val(i ? "new xive reg 1 addr" : "new xive reg 0 addr", ra);
        ok_val(i ? "new xive reg 1 size" : "new xive reg 0 size", rs);
    }
    {
        int len = 0;
        const u8 *p = xn >= 0 ? fdt_prop(xn, "ibm,xive-lisn-ranges", &len) : NULL;
        check(p && len == 8, "new xive lisn-ranges length");
        if (p && len == 8) {
            ok_val("new xive lisn-ranges base", fdt_be32(p));
            check(fdt_be32(p + 4) >= (u32)ncpus(), "new xive lisn-ranges covers all cpus");
        }
        p = xn >= 0 ? fdt_prop(xn, "ibm,xive-eq-sizes", &len) : NULL;
        check(p && len == 4, "new xive eq-sizes length");
        if (p && len == 4)
            ok_val("new xive eq-sizes", fdt_be32(p));
        ok_val("new xive #interrupt-cells", fdt_prop_u32(xn, "#interrupt-cells", 0));
        ok_val("new xive phandle", fdt_prop_u32(xn, "phandle", 0));
        check(fdt_prop(xn, "interrupt-controller", &len) != NULL, "new xive interrupt-controller");
    }
    print_prop_bytes("new root ibm,plat-res-int-priorities", "/", "ibm,plat-res-int-priorities");
    print_prop_bytes("new ibm,architecture-vec-5", "/chosen", "ibm,architecture-vec-5");
    print_prop_bytes("new platform-support", "/chosen", "ibm,arch-vec-5-platform-support");
    {
        int len;
        check(xive_find_tima(), "tima os page from reg 1");
        ok_val("tima os page", tima_os);
        int cpun = fdt_path("/cpus/PowerPC,POWER9");
        check(cpun >= 0 && fdt_prop(cpun, "ibm,ppc-interrupt-server#s", &len) != NULL,
              "new tree cpu interrupt-server#s");
        ok_val("new tree cpu-version", fdt_prop_u32(cpun, "cpu-version", 0));
    }
    {
        s64 tk = rtas_token("ibm,get-xive");
        ok_val("new tree has ibm,get-xive token", tk >= 0);
        /* the boot tree in memory is not touched by CAS */
        const void *nt = fdt;
        fdt = boot_fdt;
        print_node_name("boot tree after cas xics node", xics_node());
        fdt = nt;
    }

    /* ---- 6. after CAS: XICS is gone ---- */
    expect_s("post-cas H_CPPR", h_cppr(0xff), xh_post);
    expect_s("post-cas H_IPI", h_ipi(server, 4), xh_post);
    expect_s("post-cas H_XIRR", h_xirr(&x), xh_post);
    expect_s("post-cas H_XIRR_X", h_xirr_x(&x), xh_post);
    expect_s("post-cas H_EOI", h_eoi(0xff000002ull), xh_post);
    expect_s("post-cas H_IPOLL", h_ipoll(server, &x, &m), xh_post);
    {
        u32 args[3] = { 0x1100, (u32)server, 5 };
        u32 rets[3] = { 0 };
        expect_s("post-cas ibm,get-xive status", rtas_call("ibm,get-xive", 1, 3, args, rets), xr_post);
        expect_s("post-cas ibm,set-xive status", rtas_call("ibm,set-xive", 3, 1, args, rets), xr_post);
        expect_s("post-cas ibm,int-off status", rtas_call("ibm,int-off", 1, 1, args, rets), xr_post);
        expect_s("post-cas ibm,int-on status", rtas_call("ibm,int-on", 1, 1, args, rets), xr_post);
    }

    /* ---- 7. XIVE IPI round trip ---- */
    u64 lisn = xive_ipi_lisn(me);
    ok_val("ipi lisn", lisn);
    expect_s("H_INT_GET_SOURCE_INFO ipi", h_int_get_source_info(0, lisn, &ipi_src), 0);
    xive_print_src("ipi source", &ipi_src);
    expect_s("H_INT_GET_SOURCE_INFO vty 0x1100", h_int_get_source_info(0, 0x1100, &s), 0);
    xive_print_src("vty source", &s);

    expect_s("H_INT_GET_QUEUE_INFO", h_int_get_queue_info(0, server, XIVE_PRIO, &a, &b), 0);
    ok_val("queue info esn page", a);
    ok_val("queue info shift", b);

    struct xive_q *q = &xive_qs[me];
    expect_s("H_INT_SET_QUEUE_CONFIG", xive_setup_queue(server, XIVE_PRIO, qpage, 16, q), 0);
    u64 qc[4];
    expect_s("H_INT_GET_QUEUE_CONFIG", h_int_get_queue_config(0, server, XIVE_PRIO, qc), 0);
    ok_val("queue config flags", qc[0]);
    check(qc[1] == (u64)(uintptr_t)qpage, "queue config qpage");
    ok_val("queue config shift", qc[2]);

    expect_s("H_INT_GET_SOURCE_CONFIG before", h_int_get_source_config(0, lisn, &a, &b, &c), 0);
    ok_val("source config before target", a);
    ok_val("source config before prio", b);
    ok_val("source config before eisn", c);
    expect_s("H_INT_SET_SOURCE_CONFIG", h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO, EISN), 0);
    expect_s("H_INT_GET_SOURCE_CONFIG", h_int_get_source_config(0, lisn, &a, &b, &c), 0);
    check(a == server, "source config target");
    ok_val("source config prio", b);
    ok_val("source config eisn", c);

    ok_val("esb pq at reset", esb_load(&ipi_src, ESB_GET));
    ok_val("esb set-pq-00 old pq", esb_load(&ipi_src, ESB_SET_PQ_00));
    ok_val("tima os word0 at reset", tima_os_word0());
    ok_val("tima os word1 at reset", tima_os_word1());
    tima_set_cppr(0xff);
    ok_val("tima os word0 cppr 0xff", tima_os_word0());

    mode = 1;
    esb_trigger(&ipi_src);
    ok_val("esb pq after trigger", esb_load(&ipi_src, ESB_GET));
    ok_val("tima os word0 pending", tima_os_word0());
    ok_val("tima os word1 pending", tima_os_word1());
    check_eq("no delivery with EE off", xive_st[me].n_irq, 0);
    xg_window(&n_ev, 1);
    expect_x("xive ipi interrupts", xive_st[me].n_irq, 1);
    expect_x("xive ipi ack", xive_st[me].last_ack, 0x8006);
    expect_x("xive ipi events", n_ev, 1);
    expect_x("xive ipi eisn", ev_eisn, EISN);
    expect_x("xive ipi queue entry", ev_raw, 0x80000000u | EISN);
    ok_val("xive ipi eoi returned", ev_eoi);
    ok_val("esb pq after eoi", esb_load(&ipi_src, ESB_GET));
    ok_val("tima os word0 after", tima_os_word0());
    check_eq("no other interrupts", n_other, 0);
    check_eq("no empty acks", xive_st[me].n_empty + xive_st[me].n_noeo, 0);
    expect_s("H_INT_GET_QUEUE_CONFIG debug", h_int_get_queue_config(XIVE_EQ_DEBUG, server, XIVE_PRIO, qc), 0);
    ok_val("queue config debug flags", qc[0]);
    ok_val("queue config debug offset", qc[3]);

    /* quiesce: mask the source (prio 0xff) and drop the queue */
    expect_s("H_INT_SET_SOURCE_CONFIG prio 0xff", h_int_set_source_config(0, lisn, server, 0xff, 0), 0);
    expect_s("H_INT_GET_SOURCE_CONFIG masked", h_int_get_source_config(0, lisn, &a, &b, &c), 0);
    ok_val("masked source config prio", b);
    ok_val("masked source config eisn", c);
    expect_s("H_INT_SET_QUEUE_CONFIG disable", h_int_set_queue_config(0, server, XIVE_PRIO, 0, 0), 0);
    expect_s("H_INT_GET_QUEUE_CONFIG disabled", h_int_get_queue_config(0, server, XIVE_PRIO, qc), 0);
    ok_val("disabled queue config flags", qc[0]);
    ok_val("disabled queue config qpage", qc[1]);
    ok_val("disabled queue config shift", qc[2]);
    return 0;
}

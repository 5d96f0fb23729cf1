/* cas_xics: client-architecture-support keeping XICS (OV5 byte 23 = 0x00).
 * Malformed vectors first (H_PARAMETER without OV5; nothing changes), then
 * a CAS while a secondary runs (H_MULTI_THREADS_ACTIVE, -smp >= 2 only),
 * then the real CAS: the new tree has the XICS node and no XIVE node,
 * H_INT_* stay H_FUNCTION, and an XICS IPI to self still works.
 * Needs ic-mode=dual (the default) or ic-mode=xics: with ic-mode=xive QEMU
 * exits on this CAS. */
#include "rt.h"
#include "xive_guest.h"

static u64 server;
static volatile u32 n_xics, n_other;
static volatile u64 xics_xirr;
static u32 spin_started, spin_stop;

void on_irq(struct exc_frame *f)
{
    if (!irq_is_external(f, &n_other))
        return;
    xics_self_ipi_irq(server, &n_xics, &xics_xirr);
}

static void spinner(u64 arg)
{
    (void)arg;
    __atomic_store_n(&spin_started, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&spin_stop, __ATOMIC_ACQUIRE))
        cpu_relax();
}

int main(void)
{
    int me = cpu_index();
    server = cpu_hwid(me);
    mtdec(0x7fffffff);
    u64 x, m, a, b;
    struct xive_src s;

    /* ---- malformed vectors (QEMU warns on stderr, returns H_PARAMETER) ---- */
    cas_build_vector(0x40);
    cas_vec[16] = 0;                    /* option vector count - 1 = 0: only OV1 */
    expect_s("cas without ov5", cas_call(), H_PARAMETER);
    expect_s("after bad cas: H_INT_GET_SOURCE_INFO", h_int_get_source_info(0, server, &s), H_FUNCTION);
    expect_s("after bad cas: H_IPOLL", h_ipoll(server, &x, &m), H_SUCCESS);

    /* ---- CAS with a secondary running ---- */
    if (ncpus() > 1) {
        int t = (me + 1) % ncpus();
        check_eq("start spinner", (u64)cpu_start(t, spinner, 0), 0);
        wait_flag(&spin_started, 10);
        expect_s("cas with a secondary running", xive_cas(0x00), H_MULTI_THREADS_ACTIVE);
        __atomic_store_n(&spin_stop, 1, __ATOMIC_SEQ_CST);
        u64 hz = rt_ticks_hz(), t0 = rt_ticks();
        while (cpu_state(t) != 0 && rt_ticks() - t0 < 10 * hz)
            cpu_relax();
        check_eq("spinner stopped", (u64)cpu_state(t), 0);
    }

    /* ---- the real CAS: XICS ---- */
    expect_s("cas ov5 23 = 0x00", xive_cas(0x00), H_SUCCESS);
    ok_val("cas reply header", fdt_be32(cas_reply));
    check(xive_adopt_cas_fdt(), "cas reply fdt valid");
    check(xics_node() >= 0, "new tree has the xics node");
    check(xive_node() < 0, "new tree has no xive node");
    {
        int n = fdt_path("/chosen"), len;
        const u8 *p = n >= 0 ? fdt_prop(n, "ibm,architecture-vec-5", &len) : NULL;
        check(p != NULL, "new ibm,architecture-vec-5 present");
        ok_val("new ibm,architecture-vec-5 length", p ? (u64)len : 0);
        for (int i = 0; p && i < len; i++)
            if (p[i])
                not_ok("new ibm,architecture-vec-5 all zero", "nonzero byte");
        int xn = xics_node();
        const u8 *r = xn >= 0 ? fdt_prop(xn, "ibm,interrupt-server-ranges", &len) : NULL;
        check(r && len == 8 && fdt_be32(r + 4) >= (u32)ncpus(), "new xics server ranges");
        ok_val("new tree has ibm,get-xive token", rtas_token("ibm,get-xive") >= 0);
    }

    /* ---- XIVE stays off ---- */
    expect_s("post-cas H_INT_GET_SOURCE_INFO", h_int_get_source_info(0, server, &s), H_FUNCTION);
    expect_s("post-cas H_INT_GET_QUEUE_INFO", h_int_get_queue_info(0, server, XIVE_PRIO, &a, &b), H_FUNCTION);
    expect_s("post-cas H_INT_RESET", h_int_reset(0), H_FUNCTION);
    expect_s("post-cas H_INT_SYNC", h_int_sync(0, server), H_FUNCTION);

    /* ---- XICS still works ---- */
    {
        u32 args[1] = { 0x1100 };
        u32 rets[3] = { 0 };
        expect_s("post-cas ibm,get-xive 0x1100", rtas_call("ibm,get-xive", 1, 3, args, rets), 0);
        ok_val("post-cas ibm,get-xive 0x1100 priority", rets[2]);
    }
    expect_s("post-cas H_IPOLL", h_ipoll(server, &x, &m), H_SUCCESS);
    ok_val("post-cas H_IPOLL xirr", x);
    ok_val("post-cas H_IPOLL mfrr", m);
    expect_s("post-cas H_CPPR 0xff", h_cppr(0xff), H_SUCCESS);
    expect_s("post-cas H_IPI self", h_ipi(server, 4), H_SUCCESS);
    xg_window(&n_xics, 1);
    expect_x("post-cas xics ipi deliveries", n_xics, 1);
    expect_x("post-cas xics ipi xirr", xics_xirr, 0xff000002ull);
    check_eq("no other interrupts", n_other, 0);
    h_ipoll(server, &x, &m);
    ok_val("final H_IPOLL xirr", x);
    ok_val("final H_IPOLL mfrr", m);
    return 0;
}

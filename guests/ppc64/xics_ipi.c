/* xics_ipi: XICS presenter hcalls on the calling CPU only (H_CPPR, H_IPI,
 * H_XIRR, H_XIRR_X, H_EOI, H_IPOLL): IPI to self delivered at 0x500,
 * re-delivery after an EOI that left MFRR set, CPPR masking and withdrawal,
 * bad server numbers.  Only the boot CPU runs, so -smp 1 and -smp N give the
 * same transcript. */
#include "rt.h"
#include "xics_guest.h"

/* ---- interrupt handler ---- */
enum { MODE_NORMAL, MODE_XIRR_X, MODE_NO_MFRR_RESET, MODE_NO_EOI_RESET_ONCE };

static u64 me_server;
static volatile u32 mode;
static volatile u32 n_ext, n_other;
static volatile u64 xirrs[8];
static volatile long hrets[8];
static volatile u64 ext_srr1;

void on_irq(struct exc_frame *f)
{
    if (!irq_is_external(f, &n_other))
        return;
    u32 k = n_ext;
    u64 xirr = 0;
    long r = mode == MODE_XIRR_X ? h_xirr_x(&xirr) : h_xirr(&xirr);
    if (k < 8) {
        xirrs[k] = xirr;
        hrets[k] = r;
    }
    ext_srr1 = f->srr1;
    n_ext = k + 1;
    /* MODE_NO_MFRR_RESET: the first EOI leaves MFRR at its value, so the
     * IPI is presented again; the second delivery cleans up. */
    if (XISR(xirr) == 2 && !(mode == MODE_NO_MFRR_RESET && k == 0))
        h_ipi(me_server, 0xff);
    h_eoi(xirr);
    if (n_ext > 6) {                        /* runaway: stop it */
        h_ipi(me_server, 0xff);
        h_cppr(0);
    }
}

static void reset_counts(void)
{
    n_ext = 0;
    n_other = 0;
    for (int i = 0; i < 8; i++) {
        xirrs[i] = 0;
        hrets[i] = 0;
    }
    ext_srr1 = 0;
}

/* Let pending interrupts in for a short (timebase) while, then turn EE off. */
static void open_window(u32 want)
{
    u64 hz = rt_ticks_hz();
    local_irq_enable();
    u64 t0 = rt_ticks();
    while (READ_ONCE(n_ext) < want && rt_ticks() - t0 < 5 * hz)
        cpu_relax();
    /* a little longer, to catch deliveries beyond `want` */
    t0 = rt_ticks();
    while (rt_ticks() - t0 < hz / 1000)
        cpu_relax();
    local_irq_disable();
}

static void ipoll_rec(const char *xname, const char *mname, u64 server)
{
    u64 x = 0, m = 0;
    long r = h_ipoll(server, &x, &m);
    if (r != 0) {
        console_lock();
        puts("not ok ");
        puts(xname);
        puts(" H_IPOLL returned ");
        put_sdec(r);
        puts("\n");
        console_unlock();
        return;
    }
    ok_val(xname, x);
    ok_val(mname, m);
}

int main(void)
{
    me_server = cpu_hwid(cpu_index());
    mtdec(0x7fffffff);

    /* 1. reset state and H_XIRR with nothing pending */
    ipoll_rec("reset ipoll xirr", "reset ipoll mfrr", me_server);
    u64 x = 0;
    long r = h_xirr(&x);
    check_eq("idle H_XIRR status", (u64)r, 0);
    ok_val("idle H_XIRR xirr (reset cppr)", x);
    ipoll_rec("after idle H_XIRR ipoll xirr", "after idle H_XIRR ipoll mfrr", me_server);
    r = h_xirr(&x);
    ok_val("second idle H_XIRR xirr", x);
    r = h_xirr_x(&x);
    check_eq("idle H_XIRR_X status", (u64)r, 0);
    ok_val("idle H_XIRR_X xirr", x);

    /* 2. CPPR 0xff */
    check_eq("H_CPPR 0xff status", (u64)h_cppr(0xff), 0);
    ipoll_rec("cppr 0xff ipoll xirr", "cppr 0xff ipoll mfrr", me_server);

    /* 3. IPI to self with EE off: presented, not taken */
    reset_counts();
    mode = MODE_NORMAL;
    check_eq("H_IPI self mfrr 4 status", (u64)h_ipi(me_server, 4), 0);
    ipoll_rec("ipi pending ipoll xirr", "ipi pending ipoll mfrr", me_server);
    check_eq("no delivery with EE off", n_ext, 0);

    /* 4. enable EE: taken at 0x500, handler accepts, resets MFRR, EOIs */
    open_window(1);
    check_eq("ipi delivered once", n_ext, 1);
    check_eq("no other interrupt", n_other, 0);
    check_eq("ipi H_XIRR status", (u64)hrets[0], 0);
    ok_val("ipi H_XIRR xirr", xirrs[0]);
    check_eq("ipi xisr", XISR(xirrs[0]), 2);
    check((ext_srr1 & MSR_EE) != 0, "ipi srr1 has EE");
    ipoll_rec("after eoi ipoll xirr", "after eoi ipoll mfrr", me_server);

    /* 5. IPI raised while EE is on: taken right away */
    reset_counts();
    mode = MODE_NORMAL;
    local_irq_enable();
    h_ipi(me_server, 4);
    {
        u64 hz = rt_ticks_hz(), t0 = rt_ticks();
        while (READ_ONCE(n_ext) < 1 && rt_ticks() - t0 < 5 * hz)
            cpu_relax();
    }
    local_irq_disable();
    check_eq("ipi with EE on delivered once", n_ext, 1);
    ok_val("ipi with EE on xirr", xirrs[0]);

    /* 6. the same with H_XIRR_X in the handler */
    reset_counts();
    mode = MODE_XIRR_X;
    h_ipi(me_server, 4);
    open_window(1);
    check_eq("H_XIRR_X ipi delivered once", n_ext, 1);
    check_eq("H_XIRR_X status", (u64)hrets[0], 0);
    ok_val("H_XIRR_X xirr", xirrs[0]);
    mode = MODE_NORMAL;

    /* 7. EOI without resetting MFRR: the IPI is presented again */
    reset_counts();
    mode = MODE_NO_MFRR_RESET;
    h_ipi(me_server, 4);
    open_window(2);
    mode = MODE_NORMAL;
    check_eq("eoi without mfrr reset: delivered twice", n_ext, 2);
    ok_val("eoi without mfrr reset: first xirr", xirrs[0]);
    ok_val("eoi without mfrr reset: second xirr", xirrs[1]);
    ipoll_rec("after re-delivery ipoll xirr", "after re-delivery ipoll mfrr", me_server);

    /* 8. a less favoured MFRR than CPPR is not presented */
    reset_counts();
    check_eq("H_CPPR 4 status", (u64)h_cppr(4), 0);
    h_ipi(me_server, 4);
    ipoll_rec("cppr 4 mfrr 4 ipoll xirr", "cppr 4 mfrr 4 ipoll mfrr", me_server);
    open_window(0);
    check_eq("cppr 4 mfrr 4 not delivered", n_ext, 0);
    /* raising CPPR above MFRR presents it */
    check_eq("H_CPPR 5 status", (u64)h_cppr(5), 0);
    ipoll_rec("cppr 5 mfrr 4 ipoll xirr", "cppr 5 mfrr 4 ipoll mfrr", me_server);
    /* accept by hand with EE off */
    r = h_xirr(&x);
    ok_val("cppr 5 H_XIRR xirr", x);
    ipoll_rec("accepted ipoll xirr", "accepted ipoll mfrr", me_server);
    h_ipi(me_server, 0xff);
    check_eq("manual H_EOI status", (u64)h_eoi(x), 0);
    ipoll_rec("manual eoi ipoll xirr", "manual eoi ipoll mfrr", me_server);
    h_cppr(0xff);

    /* 9. lowering CPPR withdraws a presented IPI, raising it presents again */
    h_ipi(me_server, 4);
    ipoll_rec("presented ipoll xirr", "presented ipoll mfrr", me_server);
    h_cppr(3);
    ipoll_rec("cppr 3 withdrawn ipoll xirr", "cppr 3 withdrawn ipoll mfrr", me_server);
    h_cppr(0xff);
    ipoll_rec("cppr 0xff again ipoll xirr", "cppr 0xff again ipoll mfrr", me_server);

    /* 10. MFRR back to 0xff while the IPI is presented: XISR stays (QEMU
     * icp_set_mfrr only ever presents), so the interrupt is still taken */
    h_ipi(me_server, 0xff);
    ipoll_rec("mfrr reset while presented ipoll xirr",
              "mfrr reset while presented ipoll mfrr", me_server);
    reset_counts();
    open_window(1);
    ok_val("mfrr reset while presented: deliveries", n_ext);
    if (n_ext)
        ok_val("mfrr reset while presented: xirr", xirrs[0]);
    ipoll_rec("final ipoll xirr", "final ipoll mfrr", me_server);

    /* 11. MFRR more favoured than a CPPR of 0: never presented */
    h_cppr(0);
    h_ipi(me_server, 0);
    ipoll_rec("cppr 0 mfrr 0 ipoll xirr", "cppr 0 mfrr 0 ipoll mfrr", me_server);
    h_ipi(me_server, 0xff);
    h_cppr(0xff);

    /* 12. a more favoured MFRR upgrades a presented IPI; a less favoured
     * one leaves the presented priority alone */
    h_ipi(me_server, 4);
    h_ipi(me_server, 2);
    ipoll_rec("mfrr 4 then 2 ipoll xirr", "mfrr 4 then 2 ipoll mfrr", me_server);
    h_ipi(me_server, 6);
    ipoll_rec("then mfrr 6 ipoll xirr", "then mfrr 6 ipoll mfrr", me_server);
    h_xirr(&x);
    ok_val("upgraded ipi H_XIRR xirr", x);
    ipoll_rec("upgraded ipi accepted ipoll xirr", "upgraded ipi accepted ipoll mfrr", me_server);
    /* EOI restores CPPR 0xff; MFRR 6 is still set, so it comes back */
    h_eoi(x);
    ipoll_rec("upgraded ipi eoi ipoll xirr", "upgraded ipi eoi ipoll mfrr", me_server);
    h_xirr(&x);
    ok_val("mfrr 6 H_XIRR xirr", x);
    h_ipi(me_server, 0xff);
    h_eoi(x);
    ipoll_rec("mfrr 6 eoi ipoll xirr", "mfrr 6 eoi ipoll mfrr", me_server);

    /* 13. only the low byte of CPPR/MFRR and the low word of XIRR count */
    h_cppr(0x105);
    ipoll_rec("H_CPPR 0x105 ipoll xirr", "H_CPPR 0x105 ipoll mfrr", me_server);
    h_ipi(me_server, 0x103);
    ipoll_rec("H_IPI 0x103 ipoll xirr", "H_IPI 0x103 ipoll mfrr", me_server);
    h_xirr(&x);
    ok_val("H_IPI 0x103 H_XIRR xirr", x);
    h_ipi(me_server, 0xff);
    check_eq("H_EOI 0x1ff0000000 status", (u64)h_eoi(0x1ff0000000ull | (x & 0xffffffull)), 0);
    ipoll_rec("H_EOI 0x1ff0000000 ipoll xirr", "H_EOI 0x1ff0000000 ipoll mfrr", me_server);

    /* 14. EOI of sources nobody raised: only CPPR changes */
    check_eq("H_EOI unraised source 0x1fff status", (u64)h_eoi(0x07001fffull), 0);
    ipoll_rec("H_EOI 0x1fff ipoll xirr", "H_EOI 0x1fff ipoll mfrr", me_server);
    check_eq("H_EOI outside ics 0x5000 status", (u64)h_eoi(0x08005000ull), 0);
    ipoll_rec("H_EOI 0x5000 ipoll xirr", "H_EOI 0x5000 ipoll mfrr", me_server);
    check_eq("H_EOI xisr 0 status", (u64)h_eoi(0xff000000ull), 0);
    ipoll_rec("H_EOI xisr 0 ipoll xirr", "H_EOI xisr 0 ipoll mfrr", me_server);

    /* 15. bad server numbers */
    u64 m = 0;
    u64 bad[3] = { (u64)ncpus(), 9999, 0xffffffffull };
    const char *bn[3] = { "ncpus", "9999", "0xffffffff" };
    for (int i = 0; i < 3; i++) {
        char name[48];
        const char *p = "H_IPOLL bad server ";
        int k = 0;
        while (*p) name[k++] = *p++;
        for (p = bn[i]; *p;) name[k++] = *p++;
        name[k] = 0;
        check_eq(name, (u64)h_ipoll(bad[i], &x, &m), (u64)H_PARAMETER);
        p = "H_IPI bad server ";
        k = 0;
        while (*p) name[k++] = *p++;
        for (p = bn[i]; *p;) name[k++] = *p++;
        name[k] = 0;
        check_eq(name, (u64)h_ipi(bad[i], 4), (u64)H_PARAMETER);
    }
    ipoll_rec("bad server left self alone ipoll xirr",
              "bad server left self alone ipoll mfrr", me_server);
    return 0;
}

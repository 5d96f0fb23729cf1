/* xics_rtas: ibm,set-xive / get-xive / int-off / int-on on real sources
 * (the vty's interrupt and the first PCI LSI, 0x1200), then every error
 * the calls check.  Nothing is delivered: CPPR stays 0 and EE off. */
#include "rt.h"
#include "xics_guest.h"

static s64 tok_set, tok_get, tok_off, tok_on;

/* name = pre + what (into a static buffer each call: only used immediately) */
static const char *nm(const char *pre, const char *what)
{
    static char buf[128];
    char *p = xg_cat(buf, pre);
    xg_cat(p, what);
    return buf;
}

static const char *nmx(const char *pre, const char *what, u64 v)
{
    static char buf[128];
    char *p = xg_cat(buf, pre);
    p = xg_cat(p, what);
    xg_cat_hex(p, v);
    return buf;
}

static s32 call(s64 tok, int nargs, int nret, const u32 *args, u32 *rets)
{
    return rtas_call_token((u32)tok, nargs, nret, args, rets, NULL);
}

static s32 set_xive(u32 irq, u32 server, u32 prio)
{
    u32 a[3] = { irq, server, prio };
    return call(tok_set, 3, 1, a, NULL);
}

static s32 get_xive(u32 irq, u32 *server, u32 *prio)
{
    u32 a[1] = { irq }, r[3] = { 0x55, 0x55, 0x55 };
    s32 st = call(tok_get, 1, 3, a, r);
    *server = r[1];
    *prio = r[2];
    return st;
}

static s32 int_off(u32 irq) { u32 a[1] = { irq }; return call(tok_off, 1, 1, a, NULL); }
static s32 int_on(u32 irq) { u32 a[1] = { irq }; return call(tok_on, 1, 1, a, NULL); }

#define S(v) ((u64)(s64)(v))

static void source_tests(const char *pre, u32 irq)
{
    u32 srv, prio;
    s32 st;
    u32 last = (u32)cpu_hwid(ncpus() - 1);

    st = get_xive(irq, &srv, &prio);
    check_eq(nm(pre, " get-xive default status"), S(st), 0);
    ok_val(nm(pre, " get-xive default server"), srv);
    ok_val(nm(pre, " get-xive default priority"), prio);

    check_eq(nm(pre, " set-xive server 0 prio 5"), S(set_xive(irq, 0, 5)), 0);
    st = get_xive(irq, &srv, &prio);
    check_eq(nm(pre, " get-xive status"), S(st), 0);
    check_eq(nm(pre, " get-xive server after set"), srv, 0);
    check_eq(nm(pre, " get-xive priority after set"), prio, 5);

    check_eq(nm(pre, " int-off"), S(int_off(irq)), 0);
    get_xive(irq, &srv, &prio);
    ok_val(nm(pre, " int-off priority"), prio);
    check_eq(nm(pre, " int-off keeps server"), srv, 0);
    check_eq(nm(pre, " int-on"), S(int_on(irq)), 0);
    get_xive(irq, &srv, &prio);
    ok_val(nm(pre, " int-on priority"), prio);
    check_eq(nm(pre, " int-on keeps server"), srv, 0);

    /* int-on when already on: nothing changes */
    check_eq(nm(pre, " int-on again"), S(int_on(irq)), 0);
    get_xive(irq, &srv, &prio);
    ok_val(nm(pre, " int-on again priority"), prio);

    /* int-off twice: the second saves the masked priority */
    int_off(irq);
    check_eq(nm(pre, " int-off twice"), S(int_off(irq)), 0);
    int_on(irq);
    get_xive(irq, &srv, &prio);
    ok_val(nm(pre, " int-on after int-off twice priority"), prio);

    /* set-xive while off replaces the saved priority */
    set_xive(irq, 0, 5);
    int_off(irq);
    check_eq(nm(pre, " set-xive while off"), S(set_xive(irq, 0, 7)), 0);
    get_xive(irq, &srv, &prio);
    ok_val(nm(pre, " set-xive while off priority"), prio);
    int_off(irq);
    int_on(irq);
    get_xive(irq, &srv, &prio);
    ok_val(nm(pre, " int-on after set-xive while off priority"), prio);

    /* priority 0xff through set-xive, and the extremes */
    check_eq(nm(pre, " set-xive prio 0xff"), S(set_xive(irq, 0, 0xff)), 0);
    int_on(irq);
    get_xive(irq, &srv, &prio);
    ok_val(nm(pre, " int-on after set-xive 0xff priority"), prio);
    check_eq(nm(pre, " set-xive prio 0"), S(set_xive(irq, 0, 0)), 0);
    get_xive(irq, &srv, &prio);
    check_eq(nm(pre, " get-xive prio 0"), prio, 0);

    /* another server (the last CPU; server 0 again with -smp 1) */
    check_eq(nm(pre, " set-xive last cpu"), S(set_xive(irq, last, 6)), 0);
    get_xive(irq, &srv, &prio);
    check_eq(nm(pre, " get-xive server last cpu"), srv, last);
    check_eq(nm(pre, " get-xive priority 6"), prio, 6);

    /* errors leave the source alone */
    check_eq(nm(pre, " set-xive bad server 9999"), S(set_xive(irq, 9999, 5)), S(-3));
    check_eq(nm(pre, " set-xive bad server ncpus"), S(set_xive(irq, (u32)ncpus(), 5)), S(-3));
    check_eq(nm(pre, " set-xive bad server 0xffffffff"), S(set_xive(irq, 0xffffffffu, 5)), S(-3));
    check_eq(nm(pre, " set-xive prio 0x100"), S(set_xive(irq, 0, 0x100)), S(-3));
    check_eq(nm(pre, " set-xive prio 0xffffffff"), S(set_xive(irq, 0, 0xffffffffu)), S(-3));
    get_xive(irq, &srv, &prio);
    check_eq(nm(pre, " server unchanged by errors"), srv, last);
    check_eq(nm(pre, " priority unchanged by errors"), prio, 6);

    /* wrong nargs / nret */
    u32 a4[4] = { irq, 0, 5, 0 }, r4[4];
    check_eq(nm(pre, " set-xive nargs 2"), S(call(tok_set, 2, 1, a4, r4)), S(-3));
    check_eq(nm(pre, " set-xive nargs 4"), S(call(tok_set, 4, 1, a4, r4)), S(-3));
    check_eq(nm(pre, " set-xive nret 2"), S(call(tok_set, 3, 2, a4, r4)), S(-3));
    check_eq(nm(pre, " get-xive nret 2"), S(call(tok_get, 1, 2, a4, r4)), S(-3));
    check_eq(nm(pre, " get-xive nret 4"), S(call(tok_get, 1, 4, a4, r4)), S(-3));
    check_eq(nm(pre, " get-xive nargs 2"), S(call(tok_get, 2, 3, a4, r4)), S(-3));
    check_eq(nm(pre, " int-off nargs 2"), S(call(tok_off, 2, 1, a4, r4)), S(-3));
    check_eq(nm(pre, " int-off nret 2"), S(call(tok_off, 1, 2, a4, r4)), S(-3));
    check_eq(nm(pre, " int-on nargs 2"), S(call(tok_on, 2, 1, a4, r4)), S(-3));
    check_eq(nm(pre, " int-on nret 3"), S(call(tok_on, 1, 3, a4, r4)), S(-3));
    get_xive(irq, &srv, &prio);
    check_eq(nm(pre, " server unchanged by bad nargs"), srv, last);
    check_eq(nm(pre, " priority unchanged by bad nargs"), prio, 6);

    /* leave it masked, as at reset */
    set_xive(irq, 0, 0xff);
}

int main(void)
{
    tok_set = rtas_token("ibm,set-xive");
    tok_get = rtas_token("ibm,get-xive");
    tok_off = rtas_token("ibm,int-off");
    tok_on = rtas_token("ibm,int-on");
    check(tok_set >= 0, "token ibm,set-xive");
    check(tok_get >= 0, "token ibm,get-xive");
    check(tok_off >= 0, "token ibm,int-off");
    check(tok_on >= 0, "token ibm,int-on");
    if (tok_set < 0 || tok_get < 0 || tok_off < 0 || tok_on < 0)
        return 0;

    /* the interrupt controller node */
    int ic = fdt_path("/interrupt-controller");
    check(ic >= 0, "fdt /interrupt-controller");
    if (ic >= 0) {
        int len;
        const char *c = fdt_prop(ic, "compatible", &len);
        check(c && fdt_streq(c, "IBM,ppc-xicp"), "xicp compatible");
        const u8 *r = fdt_prop(ic, "ibm,interrupt-server-ranges", &len);
        check(r && len == 8 && fdt_be32(r) == 0 && fdt_be32(r + 4) == (u32)ncpus(),
              "interrupt-server-ranges = <0 ncpus>");
        ok_val("#interrupt-cells", fdt_prop_u32(ic, "#interrupt-cells", 0));
    }

    /* the vty's source number */
    u32 vty_irq = 0x1100;
    int vty = fdt_path("/vdevice/vty@71000000");
    check(vty >= 0, "fdt /vdevice/vty@71000000");
    if (vty >= 0) {
        int len;
        const u8 *p = fdt_prop(vty, "interrupts", &len);
        if (p && len >= 4) {
            vty_irq = fdt_be32(p);
            ok_val("vty interrupts[0]", vty_irq);
            if (len >= 8)
                ok_val("vty interrupts[1]", fdt_be32(p + 4));
        } else {
            not_ok("vty interrupts", "missing");
        }
    }

    source_tests("vty", vty_irq);
    source_tests("lsi 0x1200", 0x1200);

    /* other sources at the edges of the ICS range */
    static const u32 good[] = { 0x1000, 0x1001, 0x1300, 0x1fff };
    for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        u32 srv, prio;
        s32 st = get_xive(good[i], &srv, &prio);
        check_eq(nmx("get-xive", " source ", good[i]), S(st), 0);
        ok_val(nmx("get-xive default priority", " source ", good[i]), prio);
        check_eq(nmx("set-xive", " source ", good[i]), S(set_xive(good[i], 0, 5)), 0);
        get_xive(good[i], &srv, &prio);
        check_eq(nmx("get-xive after set", " source ", good[i]), prio, 5);
        set_xive(good[i], 0, 0xff);
    }

    /* bad source numbers: -3 from every call */
    static const u32 bad[] = { 0, 2, 0x10, 0xfff, 0x2000, 0x5000, 0xffffff, 0xffffffffu };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        u32 b = bad[i], srv, prio;
        check_eq(nmx("get-xive", " bad source ", b), S(get_xive(b, &srv, &prio)), S(-3));
        check_eq(nmx("set-xive", " bad source ", b), S(set_xive(b, 0, 5)), S(-3));
        check_eq(nmx("int-off", " bad source ", b), S(int_off(b)), S(-3));
        check_eq(nmx("int-on", " bad source ", b), S(int_on(b)), S(-3));
    }

    /* hcall status for a good call and for a call that fails */
    long h = 0;
    u32 a1[1] = { 0x5000 }, r3[3];
    rtas_call_token((u32)tok_get, 1, 3, a1, r3, &h);
    ok_sval("get-xive bad source hcall ret", h);
    a1[0] = vty_irq;
    rtas_call_token((u32)tok_get, 1, 3, a1, r3, &h);
    ok_sval("get-xive good source hcall ret", h);
    return 0;
}

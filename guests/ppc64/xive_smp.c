/* xive_smp: cross-CPU XIVE IPIs.  The boot CPU negotiates XIVE by CAS
 * (secondaries must still be stopped), then every CPU configures its own
 * 4 KiB event queue (its server, priority 6) and its own IPI LISN (targeting
 * itself, EISN 0x1000 + cpu index), unmasks it with a SET_PQ_00 load,
 * writes CPPR 0xff and enables EE.  Phase 1: the boot CPU triggers every
 * other CPU's IPI through that CPU's ESB trigger page and waits for the
 * handler's acknowledgement.  Phase 2: a token goes round the ring
 * boot -> boot+1 -> ... -> boot, each CPU triggering the next one's IPI.
 * Results are printed in CPU order at the end. */
#include "rt.h"
#include "xive_guest.h"

#define QSHIFT 12
#define EISN_BASE 0x1000

static u8 qpages[MAX_CPUS][1 << QSHIFT] __attribute__((aligned(1 << QSHIFT)));
static struct xive_src srcs[MAX_CPUS];
static u64 lisns[MAX_CPUS];

static u32 ready[MAX_CPUS];
static s64 setup_rc[MAX_CPUS];       /* first failing hcall status, 0 if none */
static u32 setup_step[MAX_CPUS];     /* which step failed */
static u32 p1_ack[MAX_CPUS];
static u32 ring_got[MAX_CPUS];
static u32 ring_fwd[MAX_CPUS];
static u32 n_bad[MAX_CPUS];
static u32 last_eisn[MAX_CPUS];
static u64 last_eoi[MAX_CPUS];
static u32 phase;
static u32 stop;
static int n;

static void on_event(int cpu, u32 eisn, u32 raw)
{
    (void)raw;
    last_eisn[cpu] = eisn;
    if (eisn != EISN_BASE + (u32)cpu) {
        n_bad[cpu]++;
        return;
    }
    last_eoi[cpu] = esb_load(&srcs[cpu], ESB_EOI);
    u32 ph = __atomic_load_n(&phase, __ATOMIC_ACQUIRE);
    if (ph == 1)
        __atomic_store_n(&p1_ack[cpu], 1, __ATOMIC_RELEASE);
    else if (ph == 2)
        __atomic_store_n(&ring_got[cpu], 1, __ATOMIC_RELEASE);
    else
        n_bad[cpu]++;
}

void on_irq(struct exc_frame *f)
{
    int me = cpu_index();
    if (f->vec == 0x900) {
        mtdec(0x7fffffff);
        return;
    }
    if (f->vec != 0x500) {
        n_bad[me]++;
        return;
    }
    xive_handle_ext(me, on_event);
}

/* per-CPU configuration, run by the CPU itself */
static void cpu_setup(int me)
{
    u64 server = cpu_hwid(me);
    u64 lisn = lisns[me];
    long r;
    mtdec(0x7fffffff);
    if ((r = h_int_get_source_info(0, lisn, &srcs[me])) != 0) {
        setup_rc[me] = r;
        setup_step[me] = 1;
        return;
    }
    if ((r = xive_setup_queue(server, XIVE_PRIO, qpages[me], QSHIFT, &xive_qs[me])) != 0) {
        setup_rc[me] = r;
        setup_step[me] = 2;
        return;
    }
    if ((r = h_int_set_source_config(XIVE_SRC_SET_EISN, lisn, server, XIVE_PRIO,
                                     EISN_BASE + (u64)me)) != 0) {
        setup_rc[me] = r;
        setup_step[me] = 3;
        return;
    }
    esb_load(&srcs[me], ESB_SET_PQ_00);
    tima_set_cppr(0xff);
    local_irq_enable();
}

static void ring_step(int me)
{
    if (__atomic_load_n(&ring_got[me], __ATOMIC_ACQUIRE) && !ring_fwd[me]) {
        ring_fwd[me] = 1;
        esb_trigger(&srcs[(me + 1) % n]);
    }
}

static void secondary(u64 idx)
{
    int me = cpu_index();
    cpu_setup(me);
    __atomic_store_n(&ready[me], (u32)idx + 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        ring_step(me);
        cpu_relax();
    }
    local_irq_disable();
}

static void cpu_name(char *buf, int i, const char *what)
{
    char *p = xg_cat(buf, "cpu ");
    p = xg_cat_dec(p, (u64)i);
    xg_cat(p, what);
}

int main(void)
{
    n = ncpus();
    int me = boot_cpu();
    char buf[96];

    /* CAS with every secondary still stopped */
    expect_s("cas xive", xive_cas(0x40), 0);
    check(xive_adopt_cas_fdt(), "cas reply fdt");
    check(xive_find_tima(), "xive node tima");
    int xn = xive_node(), len = 0;
    const u8 *lr = xn >= 0 ? fdt_prop(xn, "ibm,xive-lisn-ranges", &len) : NULL;
    check(lr && len == 8 && fdt_be32(lr + 4) >= (u32)n, "lisn ranges cover every cpu");
    int lisn_ok = 1;
    for (int i = 0; i < n; i++) {
        lisns[i] = xive_ipi_lisn(i);
        if (lisns[i] != cpu_hwid(i))
            lisn_ok = 0;
    }
    check(lisn_ok, "ipi lisn = server number for every cpu");

    cpu_setup(me);
    ready[me] = (u32)me + 1;
    for (int i = 0; i < n; i++) {
        if (i == me)
            continue;
        s64 r = cpu_start(i, secondary, (u64)i);
        if (r != 0) {
            cpu_name(buf, i, " start-cpu");
            check_eq(buf, (u64)r, 0);
        }
    }
    int all = 1;
    for (int i = 0; i < n; i++) {
        wait_flag(&ready[i], 30);
        if (READ_ONCE(ready[i]) != (u32)i + 1)
            all = 0;
    }
    check(all, "all cpus ready");

    /* every CPU's IPI source, seen from the boot CPU */
    int cfg_ok = 1;
    for (int i = 0; i < n; i++) {
        u64 t, p, e;
        if (h_int_get_source_config(0, lisns[i], &t, &p, &e) != 0 || t != cpu_hwid(i) ||
            p != XIVE_PRIO || e != EISN_BASE + (u64)i)
            cfg_ok = 0;
        if (esb_load(&srcs[i], ESB_GET) != 0)
            cfg_ok = 0;
    }
    check(cfg_ok, "every ipi source routed to its cpu, PQ 00");

    /* phase 1: boot CPU -> each other CPU */
    __atomic_store_n(&phase, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < n; i++) {
        if (i == me)
            continue;
        esb_trigger(&srcs[i]);
        wait_flag(&p1_ack[i], 10);
    }
    /* phase 2: the ring */
    __atomic_store_n(&phase, 2, __ATOMIC_SEQ_CST);
    esb_trigger(&srcs[(me + 1) % n]);
    {
        u64 hz = rt_ticks_hz(), t0 = rt_ticks();
        while (!__atomic_load_n(&ring_got[me], __ATOMIC_ACQUIRE) && rt_ticks() - t0 < 30 * hz)
            cpu_relax();
    }
    __atomic_store_n(&phase, 3, __ATOMIC_SEQ_CST);

    /* every source idle again */
    int idle = 1;
    for (int i = 0; i < n; i++)
        if (esb_load(&srcs[i], ESB_GET) != 0)
            idle = 0;
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    local_irq_disable();

    /* results, in CPU order */
    for (int i = 0; i < n; i++) {
        cpu_name(buf, i, " setup");
        check_eq(buf, (u64)setup_rc[i], 0);
        if (setup_rc[i]) {
            cpu_name(buf, i, " setup failing step");
            ok_val(buf, setup_step[i]);
        }
        if (i != me) {
            cpu_name(buf, i, " acked IPI from boot");
            check(READ_ONCE(p1_ack[i]) == 1, buf);
        }
        cpu_name(buf, i, " got ring IPI");
        check(READ_ONCE(ring_got[i]) == 1, buf);
        cpu_name(buf, i, " interrupts");
        check_eq(buf, READ_ONCE(xive_st[i].n_irq), i == me ? 1 : 2);
        cpu_name(buf, i, " events");
        check_eq(buf, READ_ONCE(xive_st[i].n_ev), i == me ? 1 : 2);
        cpu_name(buf, i, " last ack");
        check_eq(buf, READ_ONCE(xive_st[i].last_ack), 0x8006);
        cpu_name(buf, i, " last eisn");
        check_eq(buf, READ_ONCE(last_eisn[i]), EISN_BASE + (u64)i);
        cpu_name(buf, i, " last eoi");
        check_eq(buf, READ_ONCE(last_eoi[i]), 0);
        cpu_name(buf, i, " empty acks");
        check_eq(buf, READ_ONCE(xive_st[i].n_empty) + READ_ONCE(xive_st[i].n_noeo), 0);
        cpu_name(buf, i, " bad events");
        check_eq(buf, READ_ONCE(n_bad[i]), 0);
    }
    check(idle, "every ipi source idle at the end");

    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    int stopped;
    do {
        stopped = 1;
        for (int i = 0; i < n; i++)
            if (i != me && cpu_state(i) != 0)
                stopped = 0;
    } while (!stopped && rt_ticks() - t0 < 30 * hz);
    check(stopped, "secondaries stopped");
    return 0;
}

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
#include "ipi_ring.h"

#define QSHIFT 12
#define EISN_BASE 0x1000

static u8 qpages[MAX_CPUS][1 << QSHIFT] __attribute__((aligned(1 << QSHIFT)));
static struct xive_src srcs[MAX_CPUS];
static u64 lisns[MAX_CPUS];

static s64 setup_rc[MAX_CPUS];       /* first failing hcall status, 0 if none */
static u32 setup_step[MAX_CPUS];     /* which step failed */
static u32 n_bad[MAX_CPUS];
static u32 last_eisn[MAX_CPUS];
static u64 last_eoi[MAX_CPUS];

static void on_event(int cpu, u32 eisn, u32 raw)
{
    (void)raw;
    last_eisn[cpu] = eisn;
    if (eisn != EISN_BASE + (u32)cpu) {
        n_bad[cpu]++;
        return;
    }
    last_eoi[cpu] = esb_load(&srcs[cpu], ESB_EOI);
    if (!ring_on_ipi(cpu))
        n_bad[cpu]++;
}

void on_irq(struct exc_frame *f)
{
    int me = cpu_index();
    if (!irq_is_external(f, &n_bad[me]))
        return;
    xive_handle_ext(me, on_event);
}

/* per-CPU configuration, run by the CPU itself */
static void ring_cpu_setup(int me)
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

static s64 ring_send(int to)
{
    esb_trigger(&srcs[to]);
    return 0;
}

int main(void)
{
    int n = ring_n = ncpus();
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

    ring_start_all(me);

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

    ring_run(me);

    /* every source idle again */
    int idle = 1;
    for (int i = 0; i < n; i++)
        if (esb_load(&srcs[i], ESB_GET) != 0)
            idle = 0;
    ring_stop_secondaries();

    /* results, in CPU order */
    for (int i = 0; i < n; i++) {
        xg_cpu_name(buf, i, " setup");
        check_eq(buf, (u64)setup_rc[i], 0);
        if (setup_rc[i]) {
            xg_cpu_name(buf, i, " setup failing step");
            ok_val(buf, setup_step[i]);
        }
        if (i != me) {
            xg_cpu_name(buf, i, " acked IPI from boot");
            check(READ_ONCE(p1_ack[i]) == 1, buf);
        }
        xg_cpu_name(buf, i, " got ring IPI");
        check(READ_ONCE(ring_got[i]) == 1, buf);
        xg_cpu_name(buf, i, " interrupts");
        check_eq(buf, READ_ONCE(xive_st[i].n_irq), i == me ? 1 : 2);
        xg_cpu_name(buf, i, " events");
        check_eq(buf, READ_ONCE(xive_st[i].n_ev), i == me ? 1 : 2);
        xg_cpu_name(buf, i, " last ack");
        check_eq(buf, READ_ONCE(xive_st[i].last_ack), 0x8006);
        xg_cpu_name(buf, i, " last eisn");
        check_eq(buf, READ_ONCE(last_eisn[i]), EISN_BASE + (u64)i);
        xg_cpu_name(buf, i, " last eoi");
        check_eq(buf, READ_ONCE(last_eoi[i]), 0);
        xg_cpu_name(buf, i, " empty acks");
        check_eq(buf, READ_ONCE(xive_st[i].n_empty) + READ_ONCE(xive_st[i].n_noeo), 0);
        xg_cpu_name(buf, i, " bad events");
        check_eq(buf, READ_ONCE(n_bad[i]), 0);
    }
    check(idle, "every ipi source idle at the end");

    check(wait_others_stopped(me, 30), "secondaries stopped");
    return 0;
}

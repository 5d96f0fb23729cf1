/* xics_smp: cross-CPU IPIs through XICS.  Every CPU opens its CPPR and
 * enables EE; the boot CPU IPIs every other CPU in turn and waits for that
 * CPU's handler to acknowledge; then an IPI token goes round the ring
 * boot -> boot+1 -> ... -> boot.  Results are printed in CPU order at the
 * end (nothing depends on arrival order). */
#include "rt.h"
#include "xics_guest.h"
#include "ipi_ring.h"

#define IPI_PRIO 4

/* per-CPU results, written by the CPU itself (handler) */
static u32 n_irq[MAX_CPUS];
static u32 n_bad[MAX_CPUS];         /* wrong XISR / failed hcall / odd vector */
static u64 last_xirr[MAX_CPUS];

void on_irq(struct exc_frame *f)
{
    int me = cpu_index();
    if (!irq_is_external(f, &n_bad[me]))
        return;
    u64 xirr = 0;
    if (h_xirr(&xirr) != 0)
        n_bad[me]++;
    last_xirr[me] = xirr;
    n_irq[me]++;
    if (XISR(xirr) == 2) {
        h_ipi(cpu_hwid(me), 0xff);      /* reset MFRR before the EOI */
        if (h_eoi(xirr) != 0)
            n_bad[me]++;
        if (!ring_on_ipi(me))
            n_bad[me]++;
    } else {
        n_bad[me]++;
        if (XISR(xirr))
            h_eoi(xirr);
    }
}

static void ring_cpu_setup(int me)
{
    (void)me;
    mtdec(0x7fffffff);
    h_cppr(0xff);
    local_irq_enable();
}

static s64 ring_send(int to) { return h_ipi(cpu_hwid(to), IPI_PRIO); }

static void cpu_check(int cond, int i, const char *what)
{
    char buf[96];
    xg_cpu_name(buf, i, what);
    check(cond, buf);
}

static void cpu_check_eq(int i, const char *what, u64 got, u64 want)
{
    char buf[96];
    xg_cpu_name(buf, i, what);
    check_eq(buf, got, want);
}

int main(void)
{
    int n = ring_n = ncpus();
    int me = boot_cpu();
    u64 x, m;

    /* A CPU that has not been started still has CPPR 0: an IPI is not
     * presented to it, only its MFRR changes. */
    if (n > 1) {
        int t = (me + 1) % n;
        check_eq("H_IPI to a stopped cpu", (u64)h_ipi(cpu_hwid(t), IPI_PRIO), 0);
        h_ipoll(cpu_hwid(t), &x, &m);
        ok_val("stopped cpu ipoll xirr", x);
        ok_val("stopped cpu ipoll mfrr", m);
        h_ipi(cpu_hwid(t), 0xff);
        h_ipoll(cpu_hwid(t), &x, &m);
        ok_val("stopped cpu ipoll mfrr after reset", m);
    }

    ring_start_all(me);

    /* every CPU now has CPPR 0xff: H_IPOLL from here shows it */
    int idle = 1;
    for (int i = 0; i < n; i++) {
        h_ipoll(cpu_hwid(i), &x, &m);
        if (x != 0xff000000ull || m != 0xff)
            idle = 0;
    }
    check(idle, "ipoll: every cpu idle with cppr 0xff");

    s64 ring_start_rc = ring_run(me);

    /* everyone should be idle again */
    idle = 1;
    static u64 end_x[MAX_CPUS], end_m[MAX_CPUS];
    for (int i = 0; i < n; i++) {
        h_ipoll(cpu_hwid(i), &end_x[i], &end_m[i]);
        if (end_x[i] != 0xff000000ull || end_m[i] != 0xff)
            idle = 0;
    }
    ring_stop_secondaries();

    /* results, in CPU order */
    check_eq("ring start H_IPI", (u64)ring_start_rc, 0);
    for (int i = 0; i < n; i++) {
        if (i != me) {
            cpu_check_eq(i, " H_IPI from boot", (u64)p1_rc[i], 0);
            cpu_check(READ_ONCE(p1_ack[i]) == 1, i, " acked IPI from boot");
        }
        cpu_check(READ_ONCE(ring_got[i]) == 1, i, " got ring IPI");
        if (i != me)
            cpu_check_eq(i, " ring forward H_IPI", (u64)ring_fwd_rc[i], 0);
        cpu_check_eq(i, " interrupts", READ_ONCE(n_irq[i]), i == me ? 1 : 2);
        cpu_check_eq(i, " last xirr", READ_ONCE(last_xirr[i]), 0xff000002ull);
        cpu_check_eq(i, " bad events", READ_ONCE(n_bad[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        if (end_x[i] != 0xff000000ull || end_m[i] != 0xff) {
            console_lock();
            puts("not ok cpu ");
            put_dec((u64)i);
            puts(" ipoll at the end xirr ");
            put_hex(end_x[i]);
            puts(" mfrr ");
            put_hex(end_m[i]);
            puts(" irqs ");
            put_dec(n_irq[i]);
            puts("\n");
            console_unlock();
        }
    }
    check(idle, "ipoll: every cpu idle at the end");

    check(wait_others_stopped(me, 30), "secondaries stopped");
    return 0;
}

/* xics_smp: cross-CPU IPIs through XICS.  Every CPU opens its CPPR and
 * enables EE; the boot CPU IPIs every other CPU in turn and waits for that
 * CPU's handler to acknowledge; then an IPI token goes round the ring
 * boot -> boot+1 -> ... -> boot.  Results are printed in CPU order at the
 * end (nothing depends on arrival order). */
#include "rt.h"

#define H_EOI 0x64
#define H_CPPR 0x68
#define H_IPI 0x6c
#define H_IPOLL 0x70
#define H_XIRR 0x74

#define XISR(x) ((x) & 0xffffffull)
#define IPI_PRIO 4

static long h_cppr(u64 cppr) { u64 a[9] = { cppr }; return hcall(H_CPPR, a); }
static long h_ipi(u64 server, u64 mfrr) { u64 a[9] = { server, mfrr }; return hcall(H_IPI, a); }
static long h_eoi(u64 xirr) { u64 a[9] = { xirr }; return hcall(H_EOI, a); }

static long h_xirr(u64 *xirr)
{
    u64 a[9] = { 0 };
    long r = hcall(H_XIRR, a);
    *xirr = a[0];
    return r;
}

static long h_ipoll(u64 server, u64 *xirr, u64 *mfrr)
{
    u64 a[9] = { server };
    long r = hcall(H_IPOLL, a);
    *xirr = a[0];
    *mfrr = a[1];
    return r;
}

/* per-CPU results, written by the CPU itself (handler or loop) */
static u32 ready[MAX_CPUS];
static u32 p1_ack[MAX_CPUS];        /* phase 1: IPI from the boot CPU seen */
static u32 ring_got[MAX_CPUS];      /* phase 2: ring token seen */
static u32 ring_fwd[MAX_CPUS];      /* phase 2: token passed on */
static s64 ring_fwd_rc[MAX_CPUS];
static u32 n_irq[MAX_CPUS];
static u32 n_bad[MAX_CPUS];         /* wrong XISR / failed hcall / odd vector */
static u64 last_xirr[MAX_CPUS];
static u32 phase;                   /* 1 or 2 */
static u32 stop;

static int n;

static void on_ipi(int me)
{
    u32 ph = __atomic_load_n(&phase, __ATOMIC_ACQUIRE);
    if (ph == 1)
        __atomic_store_n(&p1_ack[me], 1, __ATOMIC_RELEASE);
    else if (ph == 2)
        __atomic_store_n(&ring_got[me], 1, __ATOMIC_RELEASE);
    else
        n_bad[me]++;
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
    u64 xirr = 0;
    if (h_xirr(&xirr) != 0)
        n_bad[me]++;
    last_xirr[me] = xirr;
    n_irq[me]++;
    if (XISR(xirr) == 2) {
        h_ipi(cpu_hwid(me), 0xff);      /* reset MFRR before the EOI */
        if (h_eoi(xirr) != 0)
            n_bad[me]++;
        on_ipi(me);
    } else {
        n_bad[me]++;
        if (XISR(xirr))
            h_eoi(xirr);
    }
}

static void cpu_setup(void)
{
    mtdec(0x7fffffff);
    h_cppr(0xff);
    local_irq_enable();
}

/* Pass the ring token on once this CPU has it. */
static void ring_step(int me)
{
    if (__atomic_load_n(&ring_got[me], __ATOMIC_ACQUIRE) && !ring_fwd[me]) {
        ring_fwd[me] = 1;
        ring_fwd_rc[me] = h_ipi(cpu_hwid((me + 1) % n), IPI_PRIO);
    }
}

static void secondary(u64 idx)
{
    int me = cpu_index();
    cpu_setup();
    __atomic_store_n(&ready[me], (u32)idx + 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        ring_step(me);
        cpu_relax();
    }
    local_irq_disable();
}

static char *cat(char *d, const char *s) { while (*s) *d++ = *s++; *d = 0; return d; }

static char *cat_dec(char *d, u64 v)
{
    char t[24];
    int k = 0;
    do { t[k++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (k)
        *d++ = t[--k];
    *d = 0;
    return d;
}

static void cpu_check(int cond, int i, const char *what)
{
    char buf[96];
    char *p = cat(buf, "cpu ");
    p = cat_dec(p, (u64)i);
    cat(p, what);
    check(cond, buf);
}

static void cpu_check_eq(int i, const char *what, u64 got, u64 want)
{
    char buf[96];
    char *p = cat(buf, "cpu ");
    p = cat_dec(p, (u64)i);
    cat(p, what);
    check_eq(buf, got, want);
}

int main(void)
{
    n = ncpus();
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

    cpu_setup();
    ready[me] = (u32)me + 1;
    for (int i = 0; i < n; i++) {
        if (i == me)
            continue;
        s64 r = cpu_start(i, secondary, (u64)i);
        if (r != 0)
            cpu_check_eq(i, " start-cpu", (u64)r, 0);
    }
    int all = 1;
    for (int i = 0; i < n; i++) {
        wait_flag(&ready[i], 30);
        if (READ_ONCE(ready[i]) != (u32)i + 1)
            all = 0;
    }
    check(all, "all cpus ready");

    /* every CPU now has CPPR 0xff: H_IPOLL from here shows it */
    int idle = 1;
    for (int i = 0; i < n; i++) {
        h_ipoll(cpu_hwid(i), &x, &m);
        if (x != 0xff000000ull || m != 0xff)
            idle = 0;
    }
    check(idle, "ipoll: every cpu idle with cppr 0xff");

    /* phase 1: the boot CPU IPIs each other CPU in turn */
    __atomic_store_n(&phase, 1, __ATOMIC_SEQ_CST);
    static s64 p1_rc[MAX_CPUS];
    for (int i = 0; i < n; i++) {
        if (i == me)
            continue;
        p1_rc[i] = h_ipi(cpu_hwid(i), IPI_PRIO);
        wait_flag(&p1_ack[i], 10);
    }
    /* phase 2: the ring */
    __atomic_store_n(&phase, 2, __ATOMIC_SEQ_CST);
    s64 ring_start_rc = h_ipi(cpu_hwid((me + 1) % n), IPI_PRIO);
    {
        u64 hz = rt_ticks_hz(), t0 = rt_ticks();
        while (!__atomic_load_n(&ring_got[me], __ATOMIC_ACQUIRE) && rt_ticks() - t0 < 30 * hz) {
            cpu_relax();       /* with one CPU the ring start IPI is to self */
        }
    }
    __atomic_store_n(&phase, 3, __ATOMIC_SEQ_CST);

    /* everyone should be idle again */
    idle = 1;
    static u64 end_x[MAX_CPUS], end_m[MAX_CPUS];
    for (int i = 0; i < n; i++) {
        h_ipoll(cpu_hwid(i), &end_x[i], &end_m[i]);
        if (end_x[i] != 0xff000000ull || end_m[i] != 0xff)
            idle = 0;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    local_irq_disable();

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

    /* let the secondaries stop themselves */
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

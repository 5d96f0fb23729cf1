/* xics_guest.h: helpers for the pseries interrupt guests (xics_*.c, and
 * through xive_guest.h the cas_*.c and xive_*.c guests).  Header only;
 * include after "rt.h".  A guest in guests/ppc64/ finds it with
 * #include "xics_guest.h" (the including file's own directory).
 *
 * - hcall wrappers for the XICS presenter (H_CPPR, H_IPI, H_EOI, H_XIRR,
 *   H_XIRR_X, H_IPOLL)
 * - the common head of an on_irq() handler (decrementer re-arm, anything
 *   other than 0x500 counted), and the handler body for an IPI to self
 * - the driver loop of the interrupt round-trip benchmarks
 * - small string builders for per-CPU / per-item result names */
#ifndef XICS_GUEST_H
#define XICS_GUEST_H
#include "rt.h"

/* ---- XICS presenter hcalls ---- */
#define H_EOI 0x64
#define H_CPPR 0x68
#define H_IPI 0x6c
#define H_IPOLL 0x70
#define H_XIRR 0x74
#define H_XIRR_X 0x2fc

#define XISR(x) ((x) & 0xffffffull)

static inline long h_cppr(u64 cppr) { u64 a[9] = { cppr }; return hcall(H_CPPR, a); }
static inline long h_ipi(u64 server, u64 mfrr) { u64 a[9] = { server, mfrr }; return hcall(H_IPI, a); }
static inline long h_eoi(u64 xirr) { u64 a[9] = { xirr }; return hcall(H_EOI, a); }

static inline long h_xirr(u64 *xirr)
{
    u64 a[9] = { 0 };
    long r = hcall(H_XIRR, a);
    *xirr = a[0];
    return r;
}

static inline long h_xirr_x(u64 *xirr)
{
    u64 a[9] = { 0 };
    long r = hcall(H_XIRR_X, a);
    *xirr = a[0];                 /* a[1] is a timestamp: never printed */
    return r;
}

static inline long h_ipoll(u64 server, u64 *xirr, u64 *mfrr)
{
    u64 a[9] = { server };
    long r = hcall(H_IPOLL, a);
    *xirr = a[0];
    *mfrr = a[1];
    return r;
}

/* ---- on_irq() head ----
 * 0x900 (the decrementer, pending from reset and level): re-arm it far
 * away.  Any vector other than 0x500 is counted in *other.  Returns 1 for
 * an external interrupt (0x500), which the caller then handles. */
static inline int irq_is_external(struct exc_frame *f, volatile u32 *other)
{
    if (f->vec == 0x900) {
        mtdec(0x7fffffff);
        return 0;
    }
    if (f->vec != 0x500) {
        (*other)++;
        return 0;
    }
    return 1;
}

/* 0x500 handler body for an IPI to self (cas_xics, cas_xive before CAS):
 * H_XIRR, record it in *last, count it in *n, reset MFRR, H_EOI; after 4
 * deliveries close CPPR so a runaway stops. */
static inline void xics_self_ipi_irq(u64 server, volatile u32 *n, volatile u64 *last)
{
    u64 x = 0;
    h_xirr(&x);
    *last = x;
    (*n)++;
    h_ipi(server, 0xff);
    h_eoi(x);
    if (*n > 4)
        h_cppr(0);
}

/* ---- interrupt round-trip benchmark driver (xics_bench, xive_bench) ----
 * With EE on, n times: kick() (raise one interrupt), then wait until the
 * handler has incremented *done (5 s timeout: stop at the first).  Returns
 * the number of timeouts (0 or 1). */
static inline u64 bench_round_trips(u64 n, volatile u64 *done, void (*kick)(void))
{
    u64 hz = rt_ticks_hz();
    u64 timeouts = 0;
    local_irq_enable();
    for (u64 i = 0; i < n; i++) {
        u64 before = *done;
        kick();
        u64 t0 = rt_ticks();
        while (*done == before) {
            if (rt_ticks() - t0 > 5 * hz) {
                timeouts++;
                break;
            }
            cpu_relax();
        }
        if (timeouts)
            break;
    }
    local_irq_disable();
    return timeouts;
}

/* "ok <what> N round trips" */
static inline void bench_report(const char *what, u64 n_done)
{
    console_lock();
    puts("ok ");
    puts(what);
    puts(" ");
    put_dec(n_done);
    puts(" round trips\n");
    console_unlock();
}

/* ---- small string helpers for per-CPU / per-item result names ---- */
static inline char *xg_cat(char *d, const char *s) { while (*s) *d++ = *s++; *d = 0; return d; }
static inline char *xg_cat_dec(char *d, u64 v)
{
    char t[24];
    int k = 0;
    do { t[k++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (k)
        *d++ = t[--k];
    *d = 0;
    return d;
}
static inline char *xg_cat_hex(char *d, u64 v)
{
    static const char hx[] = "0123456789abcdef";
    char t[20];
    int k = 0;
    do { t[k++] = hx[v & 15]; v >>= 4; } while (v);
    d = xg_cat(d, "0x");
    while (k)
        *d++ = t[--k];
    *d = 0;
    return d;
}

/* buf = "cpu " + i + what */
static inline void xg_cpu_name(char *buf, int i, const char *what)
{
    char *p = xg_cat(buf, "cpu ");
    p = xg_cat_dec(p, (u64)i);
    xg_cat(p, what);
}

#endif

/* xive_guest.h: helpers for the pseries XIVE exploitation-mode and CAS
 * guests (cas_*.c, xive_*.c).  Header only; include after "rt.h".
 *
 * - hcall wrappers for the H_INT_* family (the XICS ones, the on_irq()
 *   head and the name builders are in xics_guest.h, included here)
 * - CAS (KVMPPC_H_CAS) with a Linux-style vector; the reply (4-byte header +
 *   new FDT) lands in cas_reply[]; xive_adopt_cas_fdt() points the runtime's
 *   `fdt` at the new tree
 * - XIVE DT lookup (TIMA OS page = reg entry 1), ESB/TIMA MMIO accessors
 * - a per-CPU event queue reader (Linux xive_read_eq) and a 0x500 handler
 *   core (ack at TIMA OS + 0x810, drain the queue, CPPR := 0xff)
 * See guests/XIVE_NOTES.md for what QEMU 7.2 answers. */
#ifndef XIVE_GUEST_H
#define XIVE_GUEST_H
#include "rt.h"
#include "xics_guest.h"

/* ---- status codes ---- */
#define H_HARDWARE (-1)
#define H_P2 (-55)
#define H_P3 (-56)
#define H_P4 (-57)
#define H_P5 (-58)
#define H_MULTI_THREADS_ACTIVE (-9005)

/* ---- XIVE exploitation ---- */
#define H_INT_GET_SOURCE_INFO 0x3a8
#define H_INT_SET_SOURCE_CONFIG 0x3ac
#define H_INT_GET_SOURCE_CONFIG 0x3b0
#define H_INT_GET_QUEUE_INFO 0x3b4
#define H_INT_SET_QUEUE_CONFIG 0x3b8
#define H_INT_GET_QUEUE_CONFIG 0x3bc
#define H_INT_SET_OS_REPORTING_LINE 0x3c0
#define H_INT_GET_OS_REPORTING_LINE 0x3c4
#define H_INT_ESB 0x3c8
#define H_INT_SYNC 0x3cc
#define H_INT_RESET 0x3d0
#define KVMPPC_H_CAS 0xf002

/* flags (IBM bit n = 1 << (63 - n)) */
#define XIVE_SRC_H_INT_ESB   (1ull << 3)   /* bit 60 */
#define XIVE_SRC_LSI         (1ull << 2)   /* bit 61 */
#define XIVE_SRC_TRIGGER     (1ull << 1)   /* bit 62 */
#define XIVE_SRC_STORE_EOI   (1ull << 0)   /* bit 63 */
#define XIVE_SRC_SET_EISN    (1ull << 1)   /* bit 62, SET_SOURCE_CONFIG */
#define XIVE_SRC_MASK        (1ull << 0)   /* bit 63, SET_SOURCE_CONFIG */
#define XIVE_EQ_ALWAYS_NOTIFY (1ull << 0)  /* bit 63, SET/GET_QUEUE_CONFIG */
#define XIVE_EQ_DEBUG        (1ull << 0)   /* bit 63, GET_QUEUE_CONFIG input */
#define XIVE_ESB_STORE       (1ull << 0)   /* bit 63, H_INT_ESB */

/* ESB management page offsets (8-byte loads) */
#define ESB_EOI       0x000
#define ESB_GET       0x800
#define ESB_SET_PQ_00 0xc00
#define ESB_SET_PQ_01 0xd00
#define ESB_SET_PQ_10 0xe00
#define ESB_SET_PQ_11 0xf00

/* TIMA OS page offsets (OS ring QW1) */
#define TM_QW1_OS     0x10
#define TM_OS_CPPR    0x11
#define TM_OS_IPB     0x12
#define TM_SPC_ACK_OS_REG 0x810
#define TM_SPC_SET_OS_PENDING 0x812

#define XIVE_PRIO 6          /* Linux: highest usable priority below 7 */

/* "ok NAME = <signed>" if got == want, else "not ok NAME got X want Y" */
static inline void expect_s(const char *name, s64 got, s64 want)
{
    if (got == want) {
        ok_sval(name, got);
        return;
    }
    console_lock();
    puts("not ok ");
    puts(name);
    puts(" got ");
    put_sdec(got);
    puts(" want ");
    put_sdec(want);
    puts("\n");
    console_unlock();
}

/* "ok NAME = 0x.." if got == want, else "not ok NAME got 0x.. want 0x.." */
static inline void expect_x(const char *name, u64 got, u64 want)
{
    if (got == want) {
        ok_val(name, got);
        return;
    }
    console_lock();
    puts("not ok ");
    puts(name);
    puts(" got ");
    put_hex(got);
    puts(" want ");
    put_hex(want);
    puts("\n");
    console_unlock();
}

struct xive_src {
    u64 flags, eoi_page, trig_page, shift;
};

static inline long h_int_get_source_info(u64 flags, u64 lisn, struct xive_src *s)
{
    u64 a[9] = { flags, lisn };
    long r = hcall(H_INT_GET_SOURCE_INFO, a);
    s->flags = a[0];
    s->eoi_page = a[1];
    s->trig_page = a[2];
    s->shift = a[3];
    return r;
}

static inline long h_int_set_source_config(u64 flags, u64 lisn, u64 target,
                                           u64 prio, u64 eisn)
{
    u64 a[9] = { flags, lisn, target, prio, eisn };
    return hcall(H_INT_SET_SOURCE_CONFIG, a);
}

static inline long h_int_get_source_config(u64 flags, u64 lisn, u64 *target,
                                           u64 *prio, u64 *eisn)
{
    u64 a[9] = { flags, lisn };
    long r = hcall(H_INT_GET_SOURCE_CONFIG, a);
    *target = a[0];
    *prio = a[1];
    *eisn = a[2];
    return r;
}

static inline long h_int_get_queue_info(u64 flags, u64 target, u64 prio,
                                        u64 *esn_page, u64 *shift)
{
    u64 a[9] = { flags, target, prio };
    long r = hcall(H_INT_GET_QUEUE_INFO, a);
    *esn_page = a[0];
    *shift = a[1];
    return r;
}

static inline long h_int_set_queue_config(u64 flags, u64 target, u64 prio,
                                          u64 qpage, u64 shift)
{
    u64 a[9] = { flags, target, prio, qpage, shift };
    return hcall(H_INT_SET_QUEUE_CONFIG, a);
}

/* out[0] flags, out[1] qpage, out[2] shift, out[3] offset (debug) */
static inline long h_int_get_queue_config(u64 flags, u64 target, u64 prio, u64 out[4])
{
    u64 a[9] = { flags, target, prio };
    long r = hcall(H_INT_GET_QUEUE_CONFIG, a);
    for (int i = 0; i < 4; i++)
        out[i] = a[i];
    return r;
}

static inline long h_int_esb(u64 flags, u64 lisn, u64 offset, u64 data, u64 *out)
{
    u64 a[9] = { flags, lisn, offset, data };
    long r = hcall(H_INT_ESB, a);
    if (out)
        *out = a[0];
    return r;
}

static inline long h_int_sync(u64 flags, u64 lisn) { u64 a[9] = { flags, lisn }; return hcall(H_INT_SYNC, a); }
static inline long h_int_reset(u64 flags) { u64 a[9] = { flags }; return hcall(H_INT_RESET, a); }

/* "ok PFX flags = ..", then PFX eoi page, trigger page, page shift */
static inline void xive_print_src(const char *pfx, const struct xive_src *s)
{
    static const char *const what[4] = { " flags", " eoi page", " trigger page", " page shift" };
    const u64 v[4] = { s->flags, s->eoi_page, s->trig_page, s->shift };
    char buf[96];
    for (int i = 0; i < 4; i++) {
        xg_cat(xg_cat(buf, pfx), what[i]);
        ok_val(buf, v[i]);
    }
}

/* ---- MMIO (real mode; QEMU's ESB and TIMA regions are big-endian) ---- */
static inline u64 mmio_ld64(u64 addr)
{
    u64 v;
    __asm__ __volatile__("sync; ld %0,0(%1); sync" : "=r"(v) : "b"(addr) : "memory");
    return v;
}
static inline u64 mmio_ld32(u64 addr)
{
    u64 v;
    __asm__ __volatile__("sync; lwz %0,0(%1); sync" : "=r"(v) : "b"(addr) : "memory");
    return v;
}
static inline u64 mmio_ld16(u64 addr)
{
    u64 v;
    __asm__ __volatile__("sync; lhz %0,0(%1); sync" : "=r"(v) : "b"(addr) : "memory");
    return v;
}
static inline u64 mmio_ld8(u64 addr)
{
    u64 v;
    __asm__ __volatile__("sync; lbz %0,0(%1); sync" : "=r"(v) : "b"(addr) : "memory");
    return v;
}
static inline void mmio_st64(u64 addr, u64 v)
{
    __asm__ __volatile__("sync; std %0,0(%1); sync" :: "r"(v), "b"(addr) : "memory");
}
static inline void mmio_st8(u64 addr, u64 v)
{
    __asm__ __volatile__("sync; stb %0,0(%1); sync" :: "r"(v), "b"(addr) : "memory");
}

/* ESB management page access (8-byte load at offset) / trigger (8-byte store) */
static inline u64 esb_load(const struct xive_src *s, u64 off) { return mmio_ld64(s->eoi_page + off); }
static inline void esb_trigger(const struct xive_src *s) { mmio_st64(s->trig_page, 0); }

/* ---- CAS ----
 * Vector: PVR pairs (POWER9 raw: 0xffff0000/0x004e0000; terminator
 * 0xfffffffe/0x0f000001), then count-1 = 4 (QEMU finds option vector N
 * positionally, so OV2..OV4 must be present to reach OV5), OV1 (3 bytes,
 * byte 3 = 0x80: ISA 3.00), OV2..OV4 (one zero byte each), OV5 (23 bytes,
 * byte 23 = interrupt mode). OV5 byte 24 = 0: hash MMU (harmless in real
 * mode). */
#define CAS_REPLY_SIZE (256 * 1024)
static u8 cas_vec[128] __attribute__((aligned(16)));
static u8 cas_reply[CAS_REPLY_SIZE] __attribute__((aligned(4096)));
static const void *boot_fdt;

static inline int cas_build_vector(u8 ov5_23)
{
    int k = 0;
    static const u32 pvrs[] = { 0xffff0000u, 0x004e0000u, 0xfffffffeu, 0x0f000001u };
    for (unsigned i = 0; i < sizeof(pvrs) / 4; i++) {
        cas_vec[k++] = (u8)(pvrs[i] >> 24);
        cas_vec[k++] = (u8)(pvrs[i] >> 16);
        cas_vec[k++] = (u8)(pvrs[i] >> 8);
        cas_vec[k++] = (u8)pvrs[i];
    }
    cas_vec[k++] = 4;                   /* 5 option vectors */
    cas_vec[k++] = 2;                   /* OV1: 3 bytes */
    cas_vec[k++] = 0;
    cas_vec[k++] = 0;
    cas_vec[k++] = 0x80;                /* byte 3: ISA 3.00 */
    for (int v = 2; v <= 4; v++) {      /* OV2..OV4: 1 zero byte */
        cas_vec[k++] = 0;
        cas_vec[k++] = 0;
    }
    cas_vec[k++] = 22;                  /* OV5: 23 bytes */
    for (int b = 1; b <= 23; b++)
        cas_vec[k++] = b == 23 ? ov5_23 : 0;
    return k;
}

/* KVMPPC_H_CAS with the vector cas_vec[] holds now (cas_build_vector(),
 * possibly edited by the caller); returns the hcall status. */
static inline long cas_call(void)
{
    u64 a[9] = { (u64)(uintptr_t)cas_vec, (u64)(uintptr_t)cas_reply, CAS_REPLY_SIZE };
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    long r = hcall(KVMPPC_H_CAS, a);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return r;
}

/* Returns the hcall status; the reply is in cas_reply[]. */
static inline long xive_cas(u8 ov5_23)
{
    cas_build_vector(ov5_23);
    for (int i = 0; i < 16; i++)
        cas_reply[i] = 0;
    return cas_call();
}

/* Use the tree QEMU returned in the CAS reply from now on. */
static inline int xive_adopt_cas_fdt(void)
{
    const void *nt = cas_reply + 4;
    if (!fdt_valid(nt) || fdt_be32((const u8 *)nt + 4) > CAS_REPLY_SIZE - 4)
        return 0;
    if (!boot_fdt)
        boot_fdt = fdt;
    fdt = nt;
    return 1;
}

/* ---- device tree ---- */
static inline int fdt_compat_has(int node, const char *want)
{
    int len;
    const char *c = fdt_prop(node, "compatible", &len);
    if (!c)
        return 0;
    const char *end = c + len;
    while (c < end) {
        if (fdt_streq(c, want))
            return 1;
        c += strlen(c) + 1;
    }
    return 0;
}

/* first child of / with the given compatible, or -1 */
static inline int fdt_root_child_compat(const char *want)
{
    for (int c = fdt_first_child(fdt_root()); c >= 0; c = fdt_next_sibling(c))
        if (fdt_compat_has(c, want))
            return c;
    return -1;
}

static inline int xive_node(void) { return fdt_root_child_compat("ibm,power-ivpe"); }
static inline int xics_node(void) { return fdt_root_child_compat("IBM,ppc-xicp"); }

static u64 tima_os;          /* TIMA OS page (XIVE node reg entry 1) */

static inline int xive_find_tima(void)
{
    int n = xive_node();
    u64 a = 0, sz = 0;
    if (n < 0 || fdt_reg(n, 1, &a, &sz) != 0)
        return 0;
    tima_os = a;
    return 1;
}

/* IPI LISN of CPU idx: ibm,xive-lisn-ranges start + server number
 * (QEMU: <0 nr_servers>, IPI LISN = vcpu id) */
static inline u64 xive_ipi_lisn(int idx)
{
    int n = xive_node();
    int len;
    const u8 *r = n >= 0 ? fdt_prop(n, "ibm,xive-lisn-ranges", &len) : NULL;
    u64 base = r && len >= 8 ? fdt_be32(r) : 0;
    return base + cpu_hwid(idx);
}

/* ---- TIMA OS ring ---- */
static inline void tima_set_cppr(u64 cppr) { mmio_st8(tima_os + TM_OS_CPPR, cppr); }
static inline u64 tima_ack(void) { return mmio_ld16(tima_os + TM_SPC_ACK_OS_REG); }
static inline u64 tima_os_word0(void) { return mmio_ld32(tima_os + TM_QW1_OS); }      /* NSR CPPR IPB LSMFB */
static inline u64 tima_os_word1(void) { return mmio_ld32(tima_os + TM_QW1_OS + 4); }  /* ACK# INC AGE PIPR */

/* ---- event queues ---- */
struct xive_q {
    volatile u32 *qpage;
    u32 msk;         /* entries - 1 */
    u32 idx;
    u32 toggle;
    u32 wraps;       /* times idx wrapped to 0 */
};

static inline void xive_q_init(struct xive_q *q, void *page, int shift)
{
    q->qpage = (volatile u32 *)page;
    q->msk = (1u << (shift - 2)) - 1;
    q->idx = 0;
    q->toggle = 0;
    q->wraps = 0;
}

/* Linux xive_read_eq: 0 if empty, else the entry (EISN, bits 30..0) */
static inline u32 xive_q_pop(struct xive_q *q, u32 *raw)
{
    u32 cur = q->qpage[q->idx];          /* big-endian guest: native order */
    if ((cur >> 31) == q->toggle)
        return 0;
    if (raw)
        *raw = cur;
    q->idx = (q->idx + 1) & q->msk;
    if (q->idx == 0) {
        q->toggle ^= 1;
        q->wraps++;
    }
    return cur & 0x7fffffff;
}

/* Program a queue for (target, prio) on the guest page and read it back. */
static inline long xive_setup_queue(u64 target, u64 prio, void *page, int shift,
                                    struct xive_q *q)
{
    xive_q_init(q, page, shift);
    return h_int_set_queue_config(XIVE_EQ_ALWAYS_NOTIFY, target, prio,
                                  (u64)(uintptr_t)page, (u64)shift);
}

/* ---- 0x500 handler core ----
 * ack (2-byte load at TIMA OS + 0x810), and when NSR.EO is set drain this
 * CPU's queue calling ev(cpu, eisn, raw) per entry (the guest EOIs the
 * source), then CPPR := 0xff. */
struct xive_irq_stats {
    u32 n_irq;       /* 0x500 taken */
    u32 n_noeo;      /* ack without NSR.EO */
    u32 n_ev;        /* queue entries consumed */
    u32 n_empty;     /* ack with EO but nothing in the queue */
    u32 last_ack;
    u32 bad_prio;    /* acked CPPR != XIVE_PRIO */
};

static struct xive_q xive_qs[MAX_CPUS];
static struct xive_irq_stats xive_st[MAX_CPUS];

static inline void xive_handle_ext(int cpu, void (*ev)(int cpu, u32 eisn, u32 raw))
{
    struct xive_irq_stats *st = &xive_st[cpu];
    u64 ack = tima_ack();
    st->n_irq++;
    st->last_ack = (u32)ack;
    if (!((ack >> 8) & 0x80)) {
        st->n_noeo++;
    } else {
        if ((ack & 0xff) != XIVE_PRIO)
            st->bad_prio++;
        u32 raw, e, got = 0;
        while ((e = xive_q_pop(&xive_qs[cpu], &raw)) != 0) {
            st->n_ev++;
            got++;
            ev(cpu, e, raw);
        }
        if (!got)
            st->n_empty++;
    }
    tima_set_cppr(0xff);
}

/* Enable EE until *cnt reaches want (5 s timeout), stay open ~1 ms more to
 * catch extra deliveries, then disable EE. */
static inline void xg_window(volatile u32 *cnt, u32 want)
{
    u64 hz = rt_ticks_hz();
    local_irq_enable();
    u64 t0 = rt_ticks();
    while (READ_ONCE(*cnt) < want && rt_ticks() - t0 < 5 * hz)
        cpu_relax();
    t0 = rt_ticks();
    while (rt_ticks() - t0 < hz / 1000)
        cpu_relax();
    local_irq_disable();
}

/* value of OV5 byte `idx` in a (index, value) pair list such as
 * /chosen/ibm,arch-vec-5-platform-support; -1 if absent */
static inline int ov5_pair_lookup(const char *path, const char *prop, int idx)
{
    int n = fdt_path(path), len;
    const u8 *p = n >= 0 ? fdt_prop(n, prop, &len) : NULL;
    for (int i = 0; p && i + 1 < len; i += 2)
        if (p[i] == idx)
            return p[i + 1];
    return -1;
}

#endif

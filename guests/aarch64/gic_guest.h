/* gic_guest.h: GICv3 helpers for the aarch64 virt GIC guests (gic_*.c).
 * Header only; include after "rt.h".
 *
 * - DT discovery of the `intc@8000000` node ("arm,gic-v3"): GICD base from
 *   reg[0], #redistributor-regions regions from reg[1..], optional
 *   redistributor-stride
 * - redistributor walk as Linux gic_iterate_rdists() does: PIDR2.ArchRev
 *   3/4, GICR_TYPER[63:32] against MPIDR Aff3.Aff2.Aff1.Aff0, 128 KiB frame
 *   pairs (256 KiB with VLPIS), stop at GICR_TYPER.Last
 * - GICD init (gic_dist_init) and per-CPU GICR + CPU interface init
 *   (gic_cpu_init + gic_cpu_sys_reg_init) as Linux irq-gic-v3.c does
 * - ICC_* system register accessors by their S3_0_Cn_Cm_op2 names
 * - small line/name builders for per-CPU result lines
 * See guests/GIC_NOTES.md for what QEMU 7.2 answers. */
#ifndef GIC_GUEST_H
#define GIC_GUEST_H
#include "rt.h"

/* ---- distributor (GICD) ---- */
#define GICD_CTLR        0x0000
#define GICD_TYPER       0x0004
#define GICD_IIDR        0x0008
#define GICD_IGROUPR     0x0080
#define GICD_ISENABLER   0x0100
#define GICD_ICENABLER   0x0180
#define GICD_ISPENDR     0x0200
#define GICD_ICPENDR     0x0280
#define GICD_ISACTIVER   0x0300
#define GICD_ICACTIVER   0x0380
#define GICD_IPRIORITYR  0x0400
#define GICD_ITARGETSR   0x0800
#define GICD_ICFGR       0x0c00
#define GICD_IGRPMODR    0x0d00
#define GICD_SGIR        0x0f00
#define GICD_IROUTER     0x6000
#define GICD_PIDR2       0xffe8

#define GICD_CTLR_RWP        (1u << 31)
#define GICD_CTLR_DS         (1u << 6)
#define GICD_CTLR_ARE_NS     (1u << 4)
#define GICD_CTLR_ENABLE_G1A (1u << 1)
#define GICD_CTLR_ENABLE_G1  (1u << 0)

#define GICD_INT_DEF_PRI 0xa0
#define GICD_INT_DEF_PRI_X4 0xa0a0a0a0u

/* ---- redistributor: RD_base frame ---- */
#define GICR_CTLR        0x0000
#define GICR_IIDR        0x0004
#define GICR_TYPER       0x0008
#define GICR_WAKER       0x0014
#define GICR_PIDR2       0xffe8
#define GICR_WAKER_ProcessorSleep (1u << 1)
#define GICR_WAKER_ChildrenAsleep (1u << 2)
#define GICR_TYPER_PLPIS  (1ull << 0)
#define GICR_TYPER_VLPIS  (1ull << 1)
#define GICR_TYPER_LAST   (1ull << 4)

/* ---- redistributor: SGI_base frame (RD_base + 64 KiB) ---- */
#define GICR_SGI_OFFSET  0x10000
#define GICR_IGROUPR0    0x0080
#define GICR_ISENABLER0  0x0100
#define GICR_ICENABLER0  0x0180
#define GICR_ISPENDR0    0x0200
#define GICR_ICPENDR0    0x0280
#define GICR_ISACTIVER0  0x0300
#define GICR_ICACTIVER0  0x0380
#define GICR_IPRIORITYR0 0x0400
#define GICR_ICFGR0      0x0c00
#define GICR_ICFGR1      0x0c04

#define GIC_PIDR2_ARCH(v) (((v) >> 4) & 0xf)
#define INTID_SPURIOUS 1023

/* ---- CPU interface system registers ---- */
#define ICC_PMR_EL1      S3_0_C4_C6_0
#define ICC_BPR0_EL1     S3_0_C12_C8_3
#define ICC_AP0R0_EL1    S3_0_C12_C8_4
#define ICC_AP1R0_EL1    S3_0_C12_C9_0
#define ICC_DIR_EL1      S3_0_C12_C11_1
#define ICC_RPR_EL1      S3_0_C12_C11_3
#define ICC_SGI1R_EL1    S3_0_C12_C11_5
#define ICC_ASGI1R_EL1   S3_0_C12_C11_6
#define ICC_SGI0R_EL1    S3_0_C12_C11_7
#define ICC_IAR1_EL1     S3_0_C12_C12_0
#define ICC_EOIR1_EL1    S3_0_C12_C12_1
#define ICC_HPPIR1_EL1   S3_0_C12_C12_2
#define ICC_BPR1_EL1     S3_0_C12_C12_3
#define ICC_CTLR_EL1     S3_0_C12_C12_4
#define ICC_SRE_EL1      S3_0_C12_C12_5
#define ICC_IGRPEN0_EL1  S3_0_C12_C12_6
#define ICC_IGRPEN1_EL1  S3_0_C12_C12_7

#define ICC_CTLR_EOIMODE (1u << 1)
#define ICC_SRE_SRE      (1u << 0)

/* read_sysreg() stringifies its argument, so expand the name first */
#define gic_rd(r) read_sysreg_x(r)
#define gic_wr(r, v) write_sysreg_x(r, v)
#define read_sysreg_x(r) read_sysreg(r)
#define write_sysreg_x(r, v) write_sysreg(r, v)

static inline u64 icc_iar1(void) { u64 v = gic_rd(ICC_IAR1_EL1); __asm__ __volatile__("dsb sy" ::: "memory"); return v; }
static inline void icc_eoir1(u64 intid) { gic_wr(ICC_EOIR1_EL1, intid); isb(); }
static inline void icc_dir(u64 intid) { gic_wr(ICC_DIR_EL1, intid); isb(); }
static inline u64 icc_hppir1(void) { return gic_rd(ICC_HPPIR1_EL1); }
static inline u64 icc_rpr(void) { return gic_rd(ICC_RPR_EL1); }
static inline u64 icc_pmr(void) { return gic_rd(ICC_PMR_EL1); }
static inline void icc_set_pmr(u64 v) { gic_wr(ICC_PMR_EL1, v); isb(); }
static inline u64 icc_bpr1(void) { return gic_rd(ICC_BPR1_EL1); }
static inline void icc_set_bpr1(u64 v) { gic_wr(ICC_BPR1_EL1, v); isb(); }
static inline u64 icc_ctlr(void) { return gic_rd(ICC_CTLR_EL1); }
static inline void icc_set_ctlr(u64 v) { gic_wr(ICC_CTLR_EL1, v); isb(); }

static inline void irq_enable(void) { __asm__ __volatile__("msr daifclr, #2\n\tisb" ::: "memory"); }
static inline void irq_disable(void) { __asm__ __volatile__("msr daifset, #2" ::: "memory"); }
static inline void dsb_sy(void) { __asm__ __volatile__("dsb sy" ::: "memory"); }

/* ---- MMIO ---- */
static inline u32 mmio_r32(u64 a) { return *(volatile u32 *)(uintptr_t)a; }
static inline void mmio_w32(u64 a, u32 v) { *(volatile u32 *)(uintptr_t)a = v; }
static inline u64 mmio_r64(u64 a) { return *(volatile u64 *)(uintptr_t)a; }
static inline void mmio_w64(u64 a, u64 v) { *(volatile u64 *)(uintptr_t)a = v; }
static inline u8 mmio_r8(u64 a) { return *(volatile u8 *)(uintptr_t)a; }
static inline void mmio_w8(u64 a, u8 v) { *(volatile u8 *)(uintptr_t)a = v; }

/* ---- discovered layout ---- */
#define GIC_MAX_REGIONS 4
static u64 gicd_base;
static int gic_nregions;
static u64 gic_region_base[GIC_MAX_REGIONS], gic_region_size[GIC_MAX_REGIONS];
static u64 gic_rd_stride;                 /* 0 = from GICR_TYPER.VLPIS */
static u64 gic_rd_base_of[MAX_CPUS];      /* per cpu_index(), RD_base */
static u64 gic_rd_typer_of[MAX_CPUS];
static u32 gic_nlines;                    /* Linux GIC_LINE_NR */

static inline u64 gicr_rd(void) { return gic_rd_base_of[cpu_index()]; }
static inline u64 gicr_sgi(void) { return gic_rd_base_of[cpu_index()] + GICR_SGI_OFFSET; }
static inline u64 gicr_sgi_of(int cpu) { return gic_rd_base_of[cpu] + GICR_SGI_OFFSET; }

/* MPIDR -> Aff3.Aff2.Aff1.Aff0 packed as in GICR_TYPER[63:32] */
static inline u32 mpidr_to_typer_aff(u64 mpidr)
{
    return (u32)(((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xffffff));
}
/* MPIDR -> GICD_IROUTER affinity (Aff3 at [39:32], IRM 0) */
static inline u64 mpidr_to_irouter(u64 mpidr)
{
    return mpidr & 0xff00ffffffull;
}
/* ICC_SGI1R_EL1 value for one target CPU (by MPIDR affinity) */
static inline u64 sgi1r_for(u64 mpidr, u32 intid)
{
    u64 aff0 = mpidr & 0xff;
    return ((mpidr >> 32) & 0xff) << 48 | ((mpidr >> 16) & 0xff) << 32 |
           (aff0 / 16) << 44 | ((mpidr >> 8) & 0xff) << 16 |
           (u64)(intid & 0xf) << 24 | (1ull << (aff0 % 16));
}
static inline void gic_send_sgi(u64 mpidr, u32 intid)
{
    dsb_sy();                   /* as Linux: make prior stores visible */
    gic_wr(ICC_SGI1R_EL1, sgi1r_for(mpidr, intid));
    isb();
}
static inline void gic_send_sgi_others(u32 intid)    /* IRM = 1 */
{
    dsb_sy();
    gic_wr(ICC_SGI1R_EL1, (1ull << 40) | (u64)(intid & 0xf) << 24);
    isb();
}

/* Find intc@8000000, fill gicd_base and the redistributor regions.
 * Returns the node offset or -1. */
static int gic_discover(void)
{
    int root = fdt_root();
    int node = -1;
    for (int c = fdt_first_child(root); c >= 0; c = fdt_next_sibling(c)) {
        int len;
        const char *comp = fdt_prop(c, "compatible", &len);
        if (comp && fdt_prop(c, "interrupt-controller", NULL) &&
            fdt_streq(comp, "arm,gic-v3")) {
            node = c;
            break;
        }
    }
    if (node < 0)
        return -1;
    u64 size;
    if (fdt_reg(node, 0, &gicd_base, &size) != 0)
        return -1;
    gic_nregions = (int)fdt_prop_u32(node, "#redistributor-regions", 1);
    if (gic_nregions > GIC_MAX_REGIONS)
        gic_nregions = GIC_MAX_REGIONS;
    for (int i = 0; i < gic_nregions; i++)
        if (fdt_reg(node, 1 + i, &gic_region_base[i], &gic_region_size[i]) != 0)
            return -1;
    gic_rd_stride = fdt_prop_u64(node, "redistributor-stride", 0);
    u32 typer = mmio_r32(gicd_base + GICD_TYPER);
    gic_nlines = ((typer & 0x1f) + 1) * 32;
    if (gic_nlines > 1020)
        gic_nlines = 1020;
    return node;
}

/* Walk every redistributor frame (Linux gic_iterate_rdists); fn returns 1
 * to stop.  Returns the number of frames visited. */
static int gic_walk_rdists(int (*fn)(u64 rd, u64 typer, void *ctx), void *ctx)
{
    int n = 0;
    for (int r = 0; r < gic_nregions; r++) {
        u64 ptr = gic_region_base[r];
        u64 typer;
        do {
            u32 arch = GIC_PIDR2_ARCH(mmio_r32(ptr + GICR_PIDR2));
            if (arch != 3 && arch != 4)
                break;
            typer = mmio_r64(ptr + GICR_TYPER);
            n++;
            if (fn && fn(ptr, typer, ctx))
                return n;
            if (gic_rd_stride)
                ptr += gic_rd_stride;
            else
                ptr += (typer & GICR_TYPER_VLPIS) ? 0x40000 : 0x20000;
        } while (!(typer & GICR_TYPER_LAST));
    }
    return n;
}

struct gic_find_ctx { u32 aff; u64 rd, typer; };
static int gic_find_cb(u64 rd, u64 typer, void *c)
{
    struct gic_find_ctx *ctx = c;
    if ((u32)(typer >> 32) != ctx->aff)
        return 0;
    ctx->rd = rd;
    ctx->typer = typer;
    return 1;
}

/* Locate this CPU's redistributor; returns 0 on success. */
static int gic_find_my_rdist(void)
{
    struct gic_find_ctx ctx = { mpidr_to_typer_aff(read_sysreg(mpidr_el1)), 0, 0 };
    gic_walk_rdists(gic_find_cb, &ctx);
    if (!ctx.rd)
        return -1;
    gic_rd_base_of[cpu_index()] = ctx.rd;
    gic_rd_typer_of[cpu_index()] = ctx.typer;
    return 0;
}

static void gic_dist_wait_for_rwp(void)
{
    for (int i = 0; i < 1000000 && (mmio_r32(gicd_base + GICD_CTLR) & GICD_CTLR_RWP); i++)
        cpu_relax();
}
static void gic_redist_wait_for_rwp(void)
{
    for (int i = 0; i < 1000000 && (mmio_r32(gicr_rd() + GICR_CTLR) & (1u << 3)); i++)
        cpu_relax();
}

/* Linux gic_dist_init(): all SPIs Group 1, level, priority 0xa0, disabled
 * and inactive; CTLR = ARE_NS | EnableGrp1A | EnableGrp1; every SPI routed
 * to the calling CPU. */
static void gic_dist_init(void)
{
    u64 d = gicd_base;
    mmio_w32(d + GICD_CTLR, 0);
    gic_dist_wait_for_rwp();
    for (u32 i = 32; i < gic_nlines; i += 32)
        mmio_w32(d + GICD_IGROUPR + i / 8, ~0u);
    for (u32 i = 32; i < gic_nlines; i += 16)
        mmio_w32(d + GICD_ICFGR + i / 4, 0);
    for (u32 i = 32; i < gic_nlines; i += 4)
        mmio_w32(d + GICD_IPRIORITYR + i, GICD_INT_DEF_PRI_X4);
    for (u32 i = 32; i < gic_nlines; i += 32) {
        mmio_w32(d + GICD_ICACTIVER + i / 8, ~0u);
        mmio_w32(d + GICD_ICENABLER + i / 8, ~0u);
    }
    gic_dist_wait_for_rwp();
    mmio_w32(d + GICD_CTLR, GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1);
    gic_dist_wait_for_rwp();
    u64 aff = mpidr_to_irouter(read_sysreg(mpidr_el1));
    for (u32 i = 32; i < gic_nlines; i++)
        mmio_w64(d + GICD_IROUTER + i * 8, aff);
}

/* Linux gic_enable_redist(true): clear ProcessorSleep, wait for
 * ChildrenAsleep to clear.  Returns the polls needed (0 = at once). */
static int gic_wake_redist(void)
{
    u64 rd = gicr_rd();
    u32 v = mmio_r32(rd + GICR_WAKER);
    mmio_w32(rd + GICR_WAKER, v & ~GICR_WAKER_ProcessorSleep);
    int n = 0;
    while (n < 1000000 && (mmio_r32(rd + GICR_WAKER) & GICR_WAKER_ChildrenAsleep)) {
        n++;
        cpu_relax();
    }
    return n;
}

/* Linux gic_cpu_sys_reg_init() (EL1, no EL2: EOImode 0, Group 1 only) */
static void gic_cpu_sys_reg_init(void)
{
    u64 sre = gic_rd(ICC_SRE_EL1);
    if (!(sre & ICC_SRE_SRE)) {
        gic_wr(ICC_SRE_EL1, sre | ICC_SRE_SRE);
        isb();
    }
    gic_wr(ICC_PMR_EL1, 0xf0);          /* DEFAULT_PMR_VALUE */
    gic_wr(ICC_BPR1_EL1, 0);            /* back to the reset (minimum) value */
    gic_wr(ICC_CTLR_EL1, 0);            /* EOImode_drop_dir */
    gic_wr(ICC_AP1R0_EL1, 0);           /* 5 priority bits: only AP1R0 */
    isb();
    gic_wr(ICC_IGRPEN1_EL1, 1);
    isb();
}

/* Linux gic_cpu_init(): wake the redistributor, SGIs/PPIs Group 1,
 * disabled, inactive, priority 0xa0; then the CPU interface. */
static int gic_cpu_init(void)
{
    if (gic_find_my_rdist() != 0)
        return -1;
    gic_wake_redist();
    u64 sgi = gicr_sgi();
    mmio_w32(sgi + GICR_IGROUPR0, ~0u);
    mmio_w32(sgi + GICR_ICACTIVER0, ~0u);
    mmio_w32(sgi + GICR_ICENABLER0, ~0u);
    for (int i = 0; i < 32; i += 4)
        mmio_w32(sgi + GICR_IPRIORITYR0 + i, GICD_INT_DEF_PRI_X4);
    gic_redist_wait_for_rwp();
    gic_cpu_sys_reg_init();
    return 0;
}

/* Per-interrupt helpers on the banked (INTID < 32) or shared range */
static inline u64 gic_bank(u32 intid) { return intid < 32 ? gicr_sgi() : gicd_base; }
static inline void gic_set_prio(u32 intid, u8 p) { mmio_w8(gic_bank(intid) + GICD_IPRIORITYR + intid, p); }
static inline void gic_enable(u32 intid) { mmio_w32(gic_bank(intid) + GICD_ISENABLER + intid / 32 * 4, 1u << (intid % 32)); }
static inline void gic_disable(u32 intid) { mmio_w32(gic_bank(intid) + GICD_ICENABLER + intid / 32 * 4, 1u << (intid % 32)); }
static inline void gic_set_pending(u32 intid) { mmio_w32(gic_bank(intid) + GICD_ISPENDR + intid / 32 * 4, 1u << (intid % 32)); }
static inline void gic_clear_pending(u32 intid) { mmio_w32(gic_bank(intid) + GICD_ICPENDR + intid / 32 * 4, 1u << (intid % 32)); }
static inline void gic_clear_active(u32 intid) { mmio_w32(gic_bank(intid) + GICD_ICACTIVER + intid / 32 * 4, 1u << (intid % 32)); }
static inline int gic_is_pending(u32 intid) { return (mmio_r32(gic_bank(intid) + GICD_ISPENDR + intid / 32 * 4) >> (intid % 32)) & 1; }
static inline int gic_is_active(u32 intid) { return (mmio_r32(gic_bank(intid) + GICD_ISACTIVER + intid / 32 * 4) >> (intid % 32)) & 1; }
static inline int gic_is_enabled(u32 intid) { return (mmio_r32(gic_bank(intid) + GICD_ISENABLER + intid / 32 * 4) >> (intid % 32)) & 1; }
/* ICFGR: edge = 1 sets bit 2k+1 */
static inline void gic_set_edge(u32 intid, int edge)
{
    u64 a = gic_bank(intid) + GICD_ICFGR + intid / 16 * 4;
    u32 v = mmio_r32(a), bit = 2u << ((intid % 16) * 2);
    mmio_w32(a, edge ? (v | bit) : (v & ~bit));
}

/* Bounded spin for "nothing happens": a fixed number of iterations, not a
 * time, so the answer never depends on host speed for a correct model. */
static inline void gic_settle(int n)
{
    for (volatile int i = 0; i < n; i++)
        ;
    isb();
}

/* ---- line builders ---- */
struct gline { char b[160]; int n; };
static inline void gl_s(struct gline *l, const char *s) { while (*s && l->n < 150) l->b[l->n++] = *s++; l->b[l->n] = 0; }
static inline void gl_d(struct gline *l, u64 v)
{
    char t[24];
    int d = 0;
    do { t[d++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (d && l->n < 150)
        l->b[l->n++] = t[--d];
    l->b[l->n] = 0;
}
/* "PRE<n>POST" */
static inline const char *gname(struct gline *l, const char *pre, u64 n, const char *post)
{
    l->n = 0;
    gl_s(l, pre);
    gl_d(l, n);
    gl_s(l, post);
    return l->b;
}

/* "A" + "B" */
static inline const char *gname2(struct gline *l, const char *a, const char *b)
{
    l->n = 0;
    gl_s(l, a);
    gl_s(l, b);
    return l->b;
}

#endif

/* its_guest.h: GICv3 ITS + LPI helpers for the aarch64 virt ITS guests
 * (its_*.c).  Header only; include after "rt.h" and "gic_guest.h".
 *
 * - DT discovery of the ITS: the "arm,gic-v3-its" child (its@8080000) of
 *   the GIC node
 * - fixed table memory at ITS_MEM (RAM + 64 MiB, well above the image):
 *   LPI property table, device / collection tables, command queue, ITTs,
 *   one 64 KiB-aligned pending table per CPU
 * - ITS set-up in Linux order (its_alloc_tables: BASERn with page-size
 *   fallback 64K -> 16K -> 4K; CBASER; CWRITER = 0; GITS_CTLR.Enabled)
 * - per-CPU LPI set-up (its_cpu_init_lpis: PROPBASER, PENDBASER,
 *   GICR_CTLR.EnableLPIs)
 * - command encoders (L its_encode_*) and a synchronous queue writer
 * See guests/ITS_NOTES.md for what QEMU 7.2 answers. */
#ifndef ITS_GUEST_H
#define ITS_GUEST_H
#include "rt.h"
#include "gic_guest.h"

/* ---- ITS control frame ---- */
#define GITS_CTLR        0x0000
#define GITS_IIDR        0x0004
#define GITS_TYPER       0x0008
#define GITS_CBASER      0x0080
#define GITS_CWRITER     0x0088
#define GITS_CREADR      0x0090
#define GITS_BASER(n)    (0x0100 + 8 * (n))
#define GITS_PIDR2       0xffe8
#define GITS_TRANSLATER  0x10040

#define GITS_CTLR_ENABLED    (1u << 0)
#define GITS_CTLR_QUIESCENT  (1u << 31)

#define GITS_BASER_VALID     (1ull << 63)
#define GITS_BASER_INDIRECT  (1ull << 62)
#define GITS_BASER_TYPE(v)   (((v) >> 56) & 7)
#define GITS_BASER_ESZ(v)    ((((v) >> 48) & 0x1f) + 1)
#define GITS_BASER_RaWaWb    (7ull << 59)        /* InnerCache */
#define GITS_BASER_InnerShareable (1ull << 10)
#define GITS_BASER_PSZ_SHIFT 8
#define GITS_BASER_PSZ_MASK  (3ull << 8)
#define GITS_BASER_PAGES_MAX 256

#define GITS_CBASER_VALID    (1ull << 63)
#define GITS_CBASER_RaWaWb   (7ull << 59)
#define GITS_CBASER_InnerShareable (1ull << 10)

/* ---- GICR LPI registers (RD_base) ---- */
#define GICR_CTLR_ENABLE_LPIS (1u << 0)
#define GICR_PROPBASER   0x0070
#define GICR_PENDBASER   0x0078
#define GICR_PROPBASER_InnerShareable (1ull << 10)
#define GICR_PROPBASER_RaWaWb (7ull << 7)
#define GICR_PENDBASER_InnerShareable (1ull << 10)
#define GICR_PENDBASER_RaWaWb (7ull << 7)

/* ---- LPI configuration bytes (L LPI_PROP_*) ---- */
#define LPI_PROP_GROUP1   (1u << 1)     /* RES1 */
#define LPI_PROP_ENABLED  (1u << 0)
#define LPI_PRIO          0xa0
#define LPI_BASE          8192
#define LPI_IDBITS        13            /* PROPBASER.IDbits: INTIDs < 16384 */
#define LPI_NR            (1u << (LPI_IDBITS + 1))

/* ---- commands ---- */
#define ITS_CMD_MOVI    0x01
#define ITS_CMD_INT     0x03
#define ITS_CMD_CLEAR   0x04
#define ITS_CMD_SYNC    0x05
#define ITS_CMD_MAPD    0x08
#define ITS_CMD_MAPC    0x09
#define ITS_CMD_MAPTI   0x0a
#define ITS_CMD_MAPI    0x0b
#define ITS_CMD_INV     0x0c
#define ITS_CMD_INVALL  0x0d
#define ITS_CMD_MOVALL  0x0e
#define ITS_CMD_DISCARD 0x0f

/* ---- table memory (fixed, deterministic addresses) ---- */
#define ITS_MEM          0x44000000ull
#define ITS_PROP         (ITS_MEM + 0x000000)   /* 64 KiB */
#define ITS_DEVTAB       (ITS_MEM + 0x010000)   /* 64 KiB */
#define ITS_COLLTAB      (ITS_MEM + 0x020000)   /* 64 KiB */
#define ITS_CMDQ         (ITS_MEM + 0x030000)   /* 4 KiB */
#define ITS_CMDQ_SIZE    0x1000
#define ITS_ITT_SMALL    (ITS_MEM + 0x040000)   /* 16 x 4 KiB */
#define ITS_ITT_BIG      (ITS_MEM + 0x100000)   /* 256 KiB */
#define ITS_PEND         (ITS_MEM + 0x200000)   /* 64 KiB per CPU */
#define ITS_PEND_OF(c)   (ITS_PEND + 0x10000ull * (u64)(c))

static inline u64 its_itt_small(u32 dev) { return ITS_ITT_SMALL + 0x1000ull * dev; }

static u64 its_base;
static u64 its_typer;
static u32 its_cwriter;             /* byte offset of the next free slot */
static u64 its_baser_val[8];        /* what was written */

static inline void mem_zero(u64 a, u64 n)
{
    for (u64 o = 0; o < n; o += 8)
        *(volatile u64 *)(uintptr_t)(a + o) = 0;
}
static inline void mmio_w16(u64 a, u16 v) { *(volatile u16 *)(uintptr_t)a = v; }
static inline u8 mem_r8(u64 a) { return *(volatile u8 *)(uintptr_t)a; }
static inline void mem_w8(u64 a, u8 v) { *(volatile u8 *)(uintptr_t)a = v; }

/* Find the "arm,gic-v3-its" child of the GIC node; needs gic_discover()'s
 * node offset.  Returns the child's offset or -1. */
static int its_discover(int gic_node)
{
    for (int c = fdt_first_child(gic_node); c >= 0; c = fdt_next_sibling(c)) {
        const char *comp = fdt_prop(c, "compatible", NULL);
        if (comp && fdt_streq(comp, "arm,gic-v3-its") && fdt_prop(c, "msi-controller", NULL)) {
            u64 size;
            if (fdt_reg(c, 0, &its_base, &size) != 0)
                return -1;
            return c;
        }
    }
    return -1;
}

static inline u32 its_r32(u32 off) { return mmio_r32(its_base + off); }
static inline u64 its_r64(u32 off) { return mmio_r64(its_base + off); }
static inline void its_w32(u32 off, u32 v) { mmio_w32(its_base + off, v); }
static inline void its_w64(u32 off, u64 v) { mmio_w64(its_base + off, v); }

/* Linux its_setup_baser(): try the page size, read back, fall back to a
 * smaller one if it did not stick.  Returns the value read back. */
static u64 its_setup_baser(int n, u64 pa, u64 bytes)
{
    u64 cur = its_r64(GITS_BASER(n));
    u64 psz_code = 2, psz = 0x10000;        /* 64K first, as Linux */
    u64 rb = 0;
    for (;;) {
        u64 pages = (bytes + psz - 1) / psz;
        if (pages > GITS_BASER_PAGES_MAX)
            pages = GITS_BASER_PAGES_MAX;
        u64 v = GITS_BASER_VALID | GITS_BASER_RaWaWb |
                (cur & (7ull << 56)) | (cur & (0x1full << 48)) |
                GITS_BASER_InnerShareable | (pa & 0x0000fffffffff000ull) |
                (psz_code << GITS_BASER_PSZ_SHIFT) | (pages - 1);
        its_w64(GITS_BASER(n), v);
        rb = its_r64(GITS_BASER(n));
        its_baser_val[n] = v;
        if (((rb ^ v) & GITS_BASER_PSZ_MASK) == 0 || psz_code == 0)
            break;
        psz_code--;
        psz = psz_code == 1 ? 0x4000 : 0x1000;
    }
    return rb;
}

/* ---- command queue ---- */
struct its_cmd { u64 dw[4]; };

static inline void its_cmd_init(struct its_cmd *c, u32 cmd) { c->dw[0] = cmd; c->dw[1] = c->dw[2] = c->dw[3] = 0; }
static inline void enc_devid(struct its_cmd *c, u32 d) { c->dw[0] |= (u64)d << 32; }
static inline void enc_event(struct its_cmd *c, u32 e) { c->dw[1] = (c->dw[1] & ~0xffffffffull) | e; }
static inline void enc_pintid(struct its_cmd *c, u32 p) { c->dw[1] = (c->dw[1] & 0xffffffffull) | (u64)p << 32; }
static inline void enc_size(struct its_cmd *c, u32 s) { c->dw[1] = (c->dw[1] & ~0x1full) | (s & 0x1f); }
static inline void enc_itt(struct its_cmd *c, u64 itt) { c->dw[2] |= itt & 0x000fffffffffff00ull; }
static inline void enc_valid(struct its_cmd *c, int v) { c->dw[2] |= (u64)(v != 0) << 63; }
static inline void enc_icid(struct its_cmd *c, u32 icid) { c->dw[2] |= icid & 0xffff; }
static inline void enc_target(struct its_cmd *c, u64 rdbase) { c->dw[2] |= rdbase & 0x000fffffffff0000ull; }
static inline void enc_target2(struct its_cmd *c, u64 rdbase) { c->dw[3] |= rdbase & 0x000fffffffff0000ull; }

/* RDbase field for a CPU with GITS_TYPER.PTA = 0 (processor number << 16)
 * or PTA = 1 (the RD_base physical address). */
static inline u64 its_rdbase_of(int cpu)
{
    if (its_typer & (1ull << 19))
        return gic_rd_base_of[cpu];
    return ((gic_rd_typer_of[cpu] >> 8) & 0xffff) << 16;
}

/* Write one command at CWRITER, advance CWRITER and wait (bounded) for
 * CREADR to catch up.  Returns 0 if it caught up, -1 otherwise (stalled). */
static int its_send(const struct its_cmd *c)
{
    u64 slot = ITS_CMDQ + its_cwriter;
    for (int i = 0; i < 4; i++)
        *(volatile u64 *)(uintptr_t)(slot + 8 * i) = c->dw[i];
    dsb_sy();
    its_cwriter = (its_cwriter + 32) % ITS_CMDQ_SIZE;
    its_w64(GITS_CWRITER, its_cwriter);
    for (int i = 0; i < 1000000; i++) {
        u64 r = its_r64(GITS_CREADR);
        if ((r & 0xfffe0) == its_cwriter)
            return 0;
        if (r & 1)
            return -1;
        cpu_relax();
    }
    return -1;
}

static int its_mapc(u32 icid, int cpu, int valid)
{
    struct its_cmd c;
    its_cmd_init(&c, ITS_CMD_MAPC);
    enc_icid(&c, icid);
    enc_target(&c, its_rdbase_of(cpu));
    enc_valid(&c, valid);
    return its_send(&c);
}
static int its_sync(int cpu)
{
    struct its_cmd c;
    its_cmd_init(&c, ITS_CMD_SYNC);
    enc_target(&c, its_rdbase_of(cpu));
    return its_send(&c);
}
static int its_mapd(u32 dev, u32 size, u64 itt, int valid)
{
    struct its_cmd c;
    its_cmd_init(&c, ITS_CMD_MAPD);
    enc_devid(&c, dev);
    enc_size(&c, size);
    enc_itt(&c, itt);
    enc_valid(&c, valid);
    return its_send(&c);
}
static int its_mapti(u32 dev, u32 event, u32 lpi, u32 icid)
{
    struct its_cmd c;
    its_cmd_init(&c, ITS_CMD_MAPTI);
    enc_devid(&c, dev);
    enc_event(&c, event);
    enc_pintid(&c, lpi);
    enc_icid(&c, icid);
    return its_send(&c);
}
static int its_mapi(u32 dev, u32 event, u32 icid)
{
    struct its_cmd c;
    its_cmd_init(&c, ITS_CMD_MAPI);
    enc_devid(&c, dev);
    enc_event(&c, event);
    enc_icid(&c, icid);
    return its_send(&c);
}
static int its_movi(u32 dev, u32 event, u32 icid)
{
    struct its_cmd c;
    its_cmd_init(&c, ITS_CMD_MOVI);
    enc_devid(&c, dev);
    enc_event(&c, event);
    enc_icid(&c, icid);
    return its_send(&c);
}
/* INT, CLEAR, INV, DISCARD: DeviceID + EventID only */
static int its_devev(u32 cmd, u32 dev, u32 event)
{
    struct its_cmd c;
    its_cmd_init(&c, cmd);
    enc_devid(&c, dev);
    enc_event(&c, event);
    return its_send(&c);
}
static int its_int(u32 dev, u32 event) { return its_devev(ITS_CMD_INT, dev, event); }
static int its_clear(u32 dev, u32 event) { return its_devev(ITS_CMD_CLEAR, dev, event); }
static int its_inv(u32 dev, u32 event) { return its_devev(ITS_CMD_INV, dev, event); }
static int its_discard(u32 dev, u32 event) { return its_devev(ITS_CMD_DISCARD, dev, event); }
static int its_invall(u32 icid)
{
    struct its_cmd c;
    its_cmd_init(&c, ITS_CMD_INVALL);
    enc_icid(&c, icid);
    return its_send(&c);
}
static int its_movall(int from_cpu, int to_cpu)
{
    struct its_cmd c;
    its_cmd_init(&c, ITS_CMD_MOVALL);
    enc_target(&c, its_rdbase_of(from_cpu));
    enc_target2(&c, its_rdbase_of(to_cpu));
    return its_send(&c);
}

/* Linux its_probe_one()/its_alloc_tables() order: BASER0 device table,
 * BASER1 collection table, CBASER (4 KiB queue), CWRITER = 0, Enabled.
 * Zeroes the tables first.  Returns 0 on success. */
static u64 its_baser_reset[8], its_baser_rb[8], its_cbaser_rb;
static int its_init(void)
{
    its_typer = its_r64(GITS_TYPER);
    mem_zero(ITS_DEVTAB, 0x10000);
    mem_zero(ITS_COLLTAB, 0x10000);
    mem_zero(ITS_CMDQ, ITS_CMDQ_SIZE);
    for (int n = 0; n < 8; n++) {
        u64 v = its_r64(GITS_BASER(n));
        its_baser_reset[n] = v;
        u64 type = GITS_BASER_TYPE(v);
        if (type == 1)                      /* device */
            its_baser_rb[n] = its_setup_baser(n, ITS_DEVTAB, 0x10000);
        else if (type == 4)                 /* collection */
            its_baser_rb[n] = its_setup_baser(n, ITS_COLLTAB, 0x10000);
    }
    its_w64(GITS_CBASER, GITS_CBASER_VALID | GITS_CBASER_RaWaWb |
            GITS_CBASER_InnerShareable | ITS_CMDQ | (ITS_CMDQ_SIZE / 0x1000 - 1));
    its_cbaser_rb = its_r64(GITS_CBASER);
    its_cwriter = 0;
    its_w64(GITS_CWRITER, 0);
    its_w32(GITS_CTLR, its_r32(GITS_CTLR) | GITS_CTLR_ENABLED);
    return (its_r32(GITS_CTLR) & GITS_CTLR_ENABLED) ? 0 : -1;
}

/* The property table: every LPI priority 0xa0, Group1 bit, disabled. */
static void lpi_prop_init(void)
{
    for (u64 i = 0; i < LPI_NR - LPI_BASE; i++)
        mem_w8(ITS_PROP + i, LPI_PRIO | LPI_PROP_GROUP1);
    dsb_sy();
}
static inline void lpi_set_enabled(u32 lpi, int en)
{
    mem_w8(ITS_PROP + lpi - LPI_BASE, LPI_PRIO | LPI_PROP_GROUP1 | (en ? LPI_PROP_ENABLED : 0));
    dsb_sy();
}
static inline int lpi_pending_in_table(int cpu, u32 lpi)
{
    return (mem_r8(ITS_PEND_OF(cpu) + lpi / 8) >> (lpi % 8)) & 1;
}

/* Linux its_cpu_init_lpis() for the calling CPU (gic_cpu_init() first). */
static u64 its_propbaser_rb[MAX_CPUS], its_pendbaser_rb[MAX_CPUS];
static int its_cpu_init_lpis(void)
{
    int me = cpu_index();
    u64 rd = gicr_rd();
    mem_zero(ITS_PEND_OF(me), LPI_NR / 8);
    dsb_sy();
    mmio_w64(rd + GICR_PROPBASER, ITS_PROP | GICR_PROPBASER_InnerShareable |
             GICR_PROPBASER_RaWaWb | (LPI_IDBITS));
    its_propbaser_rb[me] = mmio_r64(rd + GICR_PROPBASER);
    mmio_w64(rd + GICR_PENDBASER, ITS_PEND_OF(me) | GICR_PENDBASER_InnerShareable |
             GICR_PENDBASER_RaWaWb);
    its_pendbaser_rb[me] = mmio_r64(rd + GICR_PENDBASER);
    mmio_w32(rd + GICR_CTLR, mmio_r32(rd + GICR_CTLR) | GICR_CTLR_ENABLE_LPIS);
    dsb_sy();
    return (mmio_r32(rd + GICR_CTLR) & GICR_CTLR_ENABLE_LPIS) ? 0 : -1;
}

#endif

/* gic_init: GICv3 discovery from the device tree, redistributor walk and
 * Linux-style init on the boot CPU; identification registers, reset values,
 * read-only / RAZ-WI fields and which bits stick. */
#include "rt.h"
#include "gic_guest.h"

struct walk_ctx { int n, bad_procnum, bad_aff, bad_last, nlast; };
static int walk_cb(u64 rd, u64 typer, void *c)
{
    struct walk_ctx *w = c;
    int i = w->n++;
    if (((typer >> 8) & 0xffff) != (u64)i)
        w->bad_procnum++;
    if (i < ncpus() && (u32)(typer >> 32) != mpidr_to_typer_aff(cpu_hwid(i)))
        w->bad_aff++;
    if (typer & GICR_TYPER_LAST)
        w->nlast++;
    if (i == ncpus() - 1 && !(typer & GICR_TYPER_LAST))
        w->bad_last++;
    (void)rd;
    return 0;
}

int main(void)
{
    struct gline l;

    /* ---- discovery ---- */
    int node = gic_discover();
    check(node >= 0, "gic node found");
    if (node < 0)
        return 0;
    check(fdt_streq(fdt_name(node), "intc@8000000"), "gic node name intc@8000000");
    check(fdt_prop(node, "interrupt-controller", NULL) != NULL, "gic interrupt-controller");
    ok_val("gic #interrupt-cells", fdt_prop_u32(node, "#interrupt-cells", 0));
    ok_val("gicd base", gicd_base);
    u64 b, s;
    fdt_reg(node, 0, &b, &s);
    ok_val("gicd size", s);
    ok_val("gic #redistributor-regions", (u64)gic_nregions);
    ok_val("gicr region 0 base", gic_region_base[0]);
    ok_val("gicr region 0 size", gic_region_size[0]);
    check(fdt_prop(node, "redistributor-stride", NULL) == NULL, "no redistributor-stride");
    /* The ITS child node (its@8080000) is the ITS guests' business. */

    /* ---- distributor identification and reset state ---- */
    u64 d = gicd_base;
    ok_val("gicd ctlr reset", mmio_r32(d + GICD_CTLR));
    u32 typer = mmio_r32(d + GICD_TYPER);
    ok_val("gicd typer", typer);
    ok_val("gicd typer itlines", typer & 0x1f);
    ok_val("gicd typer idbits", (typer >> 19) & 0x1f);
    ok_val("gicd iidr", mmio_r32(d + GICD_IIDR));
    ok_val("gicd pidr2", mmio_r32(d + GICD_PIDR2));
    mmio_w32(d + GICD_TYPER, 0);
    check_eq("gicd typer read-only", mmio_r32(d + GICD_TYPER), typer);
    ok_val("gicd igroupr1 reset", mmio_r32(d + GICD_IGROUPR + 4));
    ok_val("gicd ipriorityr spi 32 reset", mmio_r32(d + GICD_IPRIORITYR + 32));
    ok_val("gicd irouter 32 reset", mmio_r64(d + GICD_IROUTER + 32 * 8));

    /* ---- redistributor walk (all frames, also of CPUs still off) ---- */
    struct walk_ctx w = { 0 };
    gic_walk_rdists(walk_cb, &w);
    check_eq("gicr frames == ncpus", (u64)w.n, (u64)ncpus());
    check_eq("gicr frames processor number == index", (u64)w.bad_procnum, 0);
    check_eq("gicr frames affinity == cpu reg", (u64)w.bad_aff, 0);
    check_eq("gicr one last frame per region", (u64)w.nlast, (u64)gic_nregions);
    check_eq("gicr last set on the last cpu frame", (u64)w.bad_last, 0);

    check(gic_find_my_rdist() == 0, "gicr found for boot cpu");
    u64 rd = gicr_rd(), sgi = gicr_sgi();
    check_eq("gicr boot cpu frame is frame 0", rd, gic_region_base[0]);
    u64 rtyper = mmio_r64(rd + GICR_TYPER);
    ok_val("gicr typer", rtyper);
    check_eq("gicr typer affinity == mpidr", rtyper >> 32, mpidr_to_typer_aff(read_sysreg(mpidr_el1)));
    ok_val("gicr typer processor number", (rtyper >> 8) & 0xffff);
    check_eq("gicr typer last iff 1 cpu", (rtyper >> 4) & 1, ncpus() == 1);
    ok_val("gicr typer low bits (plpis vlpis dirty commonlpiaff)", rtyper & 0x3000027);
    ok_val("gicr typer upper half via 32-bit read", mmio_r32(rd + GICR_TYPER + 4));
    ok_val("gicr iidr", mmio_r32(rd + GICR_IIDR));
    ok_val("gicr pidr2", mmio_r32(rd + GICR_PIDR2));
    ok_val("gicr ctlr reset", mmio_r32(rd + GICR_CTLR));
    mmio_w64(rd + GICR_TYPER, 0);
    check_eq("gicr typer read-only", mmio_r64(rd + GICR_TYPER), rtyper);

    /* ---- GICR_WAKER ---- */
    ok_val("gicr waker reset", mmio_r32(rd + GICR_WAKER));
    int polls = gic_wake_redist();
    check_eq("gicr waker children awake without polling", (u64)polls, 0);
    ok_val("gicr waker after wake", mmio_r32(rd + GICR_WAKER));
    mmio_w32(rd + GICR_WAKER, GICR_WAKER_ProcessorSleep);
    ok_val("gicr waker after sleep", mmio_r32(rd + GICR_WAKER));
    mmio_w32(rd + GICR_WAKER, GICR_WAKER_ChildrenAsleep);
    ok_val("gicr waker write childrenasleep only", mmio_r32(rd + GICR_WAKER));
    gic_wake_redist();
    check_eq("gicr waker awake again", mmio_r32(rd + GICR_WAKER), 0);

    /* ---- SGI/PPI bank reset state ---- */
    ok_val("gicr igroupr0 reset", mmio_r32(sgi + GICR_IGROUPR0));
    ok_val("gicr isenabler0 reset", mmio_r32(sgi + GICR_ISENABLER0));
    ok_val("gicr ipriorityr0 reset", mmio_r32(sgi + GICR_IPRIORITYR0));
    ok_val("gicr icfgr0", mmio_r32(sgi + GICR_ICFGR0));
    ok_val("gicr icfgr1 reset", mmio_r32(sgi + GICR_ICFGR1));

    /* ---- CPU interface reset values ---- */
    ok_val("icc sre_el1", gic_rd(ICC_SRE_EL1));
    gic_wr(ICC_SRE_EL1, 0);
    isb();
    ok_val("icc sre_el1 after writing 0", gic_rd(ICC_SRE_EL1));
    ok_val("icc ctlr_el1 reset", icc_ctlr());
    ok_val("icc ctlr_el1 pribits", (icc_ctlr() >> 8) & 7);
    ok_val("icc ctlr_el1 idbits", (icc_ctlr() >> 11) & 7);
    ok_val("icc pmr reset", icc_pmr());
    ok_val("icc bpr1 reset", icc_bpr1());
    ok_val("icc bpr0 reset", gic_rd(ICC_BPR0_EL1));
    ok_val("icc igrpen1 reset", gic_rd(ICC_IGRPEN1_EL1));
    ok_val("icc rpr idle", icc_rpr());
    ok_val("icc hppir1 idle", icc_hppir1());

    /* ---- Linux init ---- */
    gic_dist_init();
    ok_val("gicd ctlr after init", mmio_r32(d + GICD_CTLR));
    check_eq("gicd ctlr rwp clear", mmio_r32(d + GICD_CTLR) & GICD_CTLR_RWP, 0);
    check(gic_cpu_init() == 0, "gic cpu init");
    ok_val("gicr waker after init", mmio_r32(rd + GICR_WAKER));
    ok_val("icc sre_el1 after init", gic_rd(ICC_SRE_EL1));
    ok_val("icc ctlr_el1 after init", icc_ctlr());
    ok_val("icc pmr after init", icc_pmr());
    ok_val("icc bpr1 after writing 0", icc_bpr1());
    ok_val("icc igrpen1 after init", gic_rd(ICC_IGRPEN1_EL1));
    ok_val("icc iar1 nothing pending", icc_iar1());

    /* GICD_CTLR: ARE and DS are RAO/WI */
    mmio_w32(d + GICD_CTLR, 0);
    ok_val("gicd ctlr after writing 0", mmio_r32(d + GICD_CTLR));
    mmio_w32(d + GICD_CTLR, GICD_CTLR_ENABLE_G1);
    ok_val("gicd ctlr after writing grp0 bit only", mmio_r32(d + GICD_CTLR));
    mmio_w32(d + GICD_CTLR, 0xffffffffu);
    ok_val("gicd ctlr after writing all ones", mmio_r32(d + GICD_CTLR));
    mmio_w32(d + GICD_CTLR, GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1);
    ok_val("gicd ctlr restored", mmio_r32(d + GICD_CTLR));

    /* ---- IGROUPR ---- */
    ok_val("gicd igroupr1 after init", mmio_r32(d + GICD_IGROUPR + 4));
    mmio_w32(d + GICD_IGROUPR + 4, 0x12345678);
    ok_val("gicd igroupr1 pattern", mmio_r32(d + GICD_IGROUPR + 4));
    mmio_w32(d + GICD_IGROUPR + 4, ~0u);
    mmio_w32(d + GICD_IGROUPR, ~0u);
    ok_val("gicd igroupr0 raz/wi", mmio_r32(d + GICD_IGROUPR));
    ok_val("gicr igroupr0 after init", mmio_r32(sgi + GICR_IGROUPR0));
    mmio_w32(sgi + GICR_IGROUPR0, 0x0000ffff);
    ok_val("gicr igroupr0 pattern", mmio_r32(sgi + GICR_IGROUPR0));
    mmio_w32(sgi + GICR_IGROUPR0, ~0u);

    /* ---- IPRIORITYR: byte writes, how many bits stick ---- */
    mmio_w8(d + GICD_IPRIORITYR + 97, 0xff);
    ok_val("gicd ipriorityr byte 0xff reads", mmio_r8(d + GICD_IPRIORITYR + 97));
    mmio_w8(d + GICD_IPRIORITYR + 98, 0x5a);
    ok_val("gicd ipriorityr byte 0x5a reads", mmio_r8(d + GICD_IPRIORITYR + 98));
    ok_val("gicd ipriorityr word 96", mmio_r32(d + GICD_IPRIORITYR + 96));
    ok_val("gicd ipriorityr halfword 98", *(volatile u16 *)(uintptr_t)(d + GICD_IPRIORITYR + 98));
    mmio_w32(d + GICD_IPRIORITYR + 96, 0x01234567);
    ok_val("gicd ipriorityr word write", mmio_r32(d + GICD_IPRIORITYR + 96));
    mmio_w32(d + GICD_IPRIORITYR + 96, GICD_INT_DEF_PRI_X4);
    mmio_w8(sgi + GICR_IPRIORITYR0 + 5, 0xff);
    ok_val("gicr ipriorityr sgi 5 byte 0xff reads", mmio_r8(sgi + GICR_IPRIORITYR0 + 5));
    mmio_w8(sgi + GICR_IPRIORITYR0 + 27, 0x13);
    ok_val("gicr ipriorityr ppi 27 byte 0x13 reads", mmio_r8(sgi + GICR_IPRIORITYR0 + 27));
    ok_val("gicr ipriorityr0 word 4", mmio_r32(sgi + GICR_IPRIORITYR0 + 4));
    mmio_w32(sgi + GICR_IPRIORITYR0 + 4, GICD_INT_DEF_PRI_X4);
    mmio_w32(sgi + GICR_IPRIORITYR0 + 24, GICD_INT_DEF_PRI_X4);

    /* ---- ICFGR ---- */
    ok_val("gicr icfgr0 after init", mmio_r32(sgi + GICR_ICFGR0));
    mmio_w32(sgi + GICR_ICFGR0, 0);
    ok_val("gicr icfgr0 sgi read-only", mmio_r32(sgi + GICR_ICFGR0));
    mmio_w32(sgi + GICR_ICFGR1, ~0u);
    ok_val("gicr icfgr1 all ones", mmio_r32(sgi + GICR_ICFGR1));
    mmio_w32(sgi + GICR_ICFGR1, 0);
    ok_val("gicr icfgr1 zero", mmio_r32(sgi + GICR_ICFGR1));
    ok_val("gicd icfgr 96 after init", mmio_r32(d + GICD_ICFGR + 96 / 4));
    mmio_w32(d + GICD_ICFGR + 96 / 4, ~0u);
    ok_val("gicd icfgr 96 all ones", mmio_r32(d + GICD_ICFGR + 96 / 4));
    mmio_w32(d + GICD_ICFGR + 96 / 4, 0);
    mmio_w32(d + GICD_ICFGR, 0);
    ok_val("gicd icfgr0 (sgi) raz/wi", mmio_r32(d + GICD_ICFGR));

    /* ---- enables ---- */
    mmio_w32(sgi + GICR_ISENABLER0, ~0u);
    ok_val("gicr isenabler0 all ones", mmio_r32(sgi + GICR_ISENABLER0));
    mmio_w32(sgi + GICR_ICENABLER0, ~0u);
    ok_val("gicr isenabler0 after icenabler0", mmio_r32(sgi + GICR_ISENABLER0));
    mmio_w32(d + GICD_ISENABLER, ~0u);
    ok_val("gicd isenabler0 (private) raz/wi", mmio_r32(d + GICD_ISENABLER));
    gic_enable(96);
    ok_val("gicd isenabler3 after enabling 96", mmio_r32(d + GICD_ISENABLER + 12));
    ok_val("gicd icenabler3 reads enables", mmio_r32(d + GICD_ICENABLER + 12));
    gic_disable(96);
    ok_val("gicd isenabler3 after disabling 96", mmio_r32(d + GICD_ISENABLER + 12));
    /* INTIDs 256..287: beyond GICD_TYPER.ITLinesNumber */
    mmio_w32(d + GICD_ISENABLER + 32, ~0u);
    ok_val("gicd isenabler8 (intid 256..287) all ones", mmio_r32(d + GICD_ISENABLER + 32));
    mmio_w32(d + GICD_ICENABLER + 32, ~0u);
    mmio_w8(d + GICD_IPRIORITYR + 260, 0x40);
    ok_val("gicd ipriorityr 260", mmio_r8(d + GICD_IPRIORITYR + 260));
    mmio_w32(d + GICD_ISENABLER + 36, ~0u);
    ok_val("gicd isenabler9 (intid 288..319)", mmio_r32(d + GICD_ISENABLER + 36));
    mmio_w32(d + GICD_ICENABLER + 36, ~0u);

    /* ---- legacy / RAZ-WI with ARE ---- */
    mmio_w32(d + GICD_ITARGETSR + 96, 0x01010101);
    ok_val("gicd itargetsr raz/wi", mmio_r32(d + GICD_ITARGETSR + 96));
    mmio_w32(d + GICD_IGRPMODR + 12, ~0u);
    ok_val("gicd igrpmodr raz/wi", mmio_r32(d + GICD_IGRPMODR + 12));

    /* ---- IROUTER ---- */
    ok_val("gicd irouter 96 after init", mmio_r64(d + GICD_IROUTER + 96 * 8));
    mmio_w64(d + GICD_IROUTER + 100 * 8, ~0ull);
    ok_val("gicd irouter all ones reads", mmio_r64(d + GICD_IROUTER + 100 * 8));
    mmio_w32(d + GICD_IROUTER + 100 * 8, 0x00000102);
    ok_val("gicd irouter low half write", mmio_r64(d + GICD_IROUTER + 100 * 8));
    ok_val("gicd irouter high half read", mmio_r32(d + GICD_IROUTER + 100 * 8 + 4));
    mmio_w64(d + GICD_IROUTER + 100 * 8, mpidr_to_irouter(read_sysreg(mpidr_el1)));
    ok_val("gicd irouter 0..31 raz", mmio_r64(d + GICD_IROUTER));

    /* ---- CPU interface writable bits ---- */
    icc_set_pmr(0xff);
    ok_val("icc pmr 0xff reads", icc_pmr());
    icc_set_pmr(0x0f);
    ok_val("icc pmr 0x0f reads", icc_pmr());
    icc_set_pmr(0xa4);
    ok_val("icc pmr 0xa4 reads", icc_pmr());
    icc_set_pmr(0xf0);
    icc_set_bpr1(7);
    ok_val("icc bpr1 7 reads", icc_bpr1());
    icc_set_bpr1(0xff);
    ok_val("icc bpr1 0xff reads", icc_bpr1());
    icc_set_bpr1(1);
    ok_val("icc bpr1 1 reads", icc_bpr1());
    icc_set_bpr1(0);
    icc_set_ctlr(ICC_CTLR_EOIMODE);
    ok_val("icc ctlr_el1 eoimode 1", icc_ctlr());
    icc_set_ctlr(0xffffffffu);
    ok_val("icc ctlr_el1 all ones", icc_ctlr());
    icc_set_ctlr(0);
    ok_val("icc ctlr_el1 back to 0", icc_ctlr());
    gic_wr(ICC_IGRPEN1_EL1, 0xff);
    isb();
    ok_val("icc igrpen1 0xff reads", gic_rd(ICC_IGRPEN1_EL1));
    gic_wr(ICC_IGRPEN1_EL1, 1);
    isb();
    ok_val("icc ap1r0 idle", gic_rd(ICC_AP1R0_EL1));

    (void)l;
    return 0;
}

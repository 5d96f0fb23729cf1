/* its_basic: the GICv3 ITS on the boot CPU.  DT discovery of its@8080000,
 * ID/type registers, tables set up in Linux order (BASER0 device table,
 * BASER1 collection table, CBASER, CWRITER, CTLR.Enabled), LPI property
 * and pending tables + GICR_CTLR.EnableLPIs, then commands: MAPC, SYNC,
 * MAPD, MAPTI, INT, a GITS_TRANSLATER store, CLEAR, INV, DISCARD, MAPI,
 * CREADR advancing and wrapping, and malformed commands (what QEMU does
 * with them is printed).  Only the boot CPU runs, so the output does not
 * depend on -smp. */
#include "rt.h"
#include "gic_guest.h"
#include "its_guest.h"

#define LPI0 8192u

static volatile u32 deliv;          /* LPIs taken */
static volatile u32 last_intid;
static volatile u32 spurious;
static volatile u32 other_intids;

void on_irq(struct exc_frame *f)
{
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    if (intid >= 1020 && intid < 1024) {
        spurious++;
        return;
    }
    if (intid >= LPI_BASE) {
        last_intid = intid;
        __atomic_add_fetch(&deliv, 1, __ATOMIC_RELEASE);
    } else {
        other_intids++;
    }
    icc_eoir1(intid);
    (void)f;
}

/* wait (bounded, 5 s) for the delivery count to reach want */
static int wait_deliv(u32 want)
{
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (READ_ONCE(deliv) < want && rt_ticks() - t0 < 5 * hz)
        cpu_relax();
    return READ_ONCE(deliv) >= want;
}

/* deliveries since mark(), after a fixed settle with IRQs unmasked */
static u32 deliv_mark;
static void mark(void) { deliv_mark = READ_ONCE(deliv); }
static u32 settle_deliv(void)
{
    irq_enable();
    gic_settle(200000);
    return READ_ONCE(deliv) - deliv_mark;
}

static u64 creadr(void) { return its_r64(GITS_CREADR); }

/* A command whose outcome is recorded: CREADR advance (in slots) and the
 * Stalled bit.  Unlike its_send() this does not insist on CREADR catching
 * up. */
struct obs { u64 adv, stalled; };
static struct obs send_obs(const struct its_cmd *c)
{
    struct obs o;
    u64 before = creadr() & 0xfffe0;
    its_send(c);
    u64 after = creadr();
    o.adv = (((after & 0xfffe0) + ITS_CMDQ_SIZE - before) % ITS_CMDQ_SIZE) / 32;
    o.stalled = after & 1;
    return o;
}

/* If the queue stalled: disable, reprogram CBASER (CREADR -> 0), CWRITER
 * = 0, enable again. */
static void queue_recover(void)
{
    if (!(creadr() & 1))
        return;
    its_w32(GITS_CTLR, its_r32(GITS_CTLR) & ~GITS_CTLR_ENABLED);
    its_w64(GITS_CBASER, GITS_CBASER_VALID | GITS_CBASER_RaWaWb |
            GITS_CBASER_InnerShareable | ITS_CMDQ | (ITS_CMDQ_SIZE / 0x1000 - 1));
    its_cwriter = 0;
    its_w64(GITS_CWRITER, 0);
    its_w32(GITS_CTLR, its_r32(GITS_CTLR) | GITS_CTLR_ENABLED);
}

static void report_bad(const char *what, struct obs o, u32 delivered)
{
    struct gline l;
    l.n = 0;
    gl_s(&l, what);
    gl_s(&l, ": creadr advanced ");
    gl_d(&l, o.adv);
    gl_s(&l, ", stalled ");
    gl_d(&l, o.stalled);
    gl_s(&l, ", lpis delivered ");
    gl_d(&l, delivered);
    ok(l.b);
}

int main(void)
{
    struct gline l;
    int me = boot_cpu();
    int gnode = gic_discover();
    if (gnode < 0) {
        not_ok("gic discover", "no intc node");
        return 0;
    }
    int inode = its_discover(gnode);
    if (inode < 0) {
        not_ok("its discover", "no arm,gic-v3-its child of the gic node");
        return 0;
    }
    ok(gname2(&l, "its node ", fdt_name(inode)));
    ok_val("its base", its_base);
    u64 isz = 0;
    fdt_reg(inode, 0, &its_base, &isz);
    ok_val("its reg size", isz);
    ok_val("its #msi-cells", fdt_prop_u32(inode, "#msi-cells", 0));
    ok_val("gicd typer", mmio_r32(gicd_base + GICD_TYPER));

    /* ---- ID / type registers before anything is set up ---- */
    ok_val("gits iidr", its_r32(GITS_IIDR));
    ok_val("gits pidr2", its_r32(GITS_PIDR2));
    u64 typer = its_r64(GITS_TYPER);
    ok_val("gits typer", typer);
    ok_val("gits typer physical", typer & 1);
    ok_val("gits typer itt entry size", ((typer >> 4) & 0xf) + 1);
    ok_val("gits typer idbits", ((typer >> 8) & 0x1f) + 1);
    ok_val("gits typer devbits", ((typer >> 13) & 0x1f) + 1);
    ok_val("gits typer pta", (typer >> 19) & 1);
    ok_val("gits typer cidbits", ((typer >> 32) & 0xf) + 1);
    ok_val("gits typer cil", (typer >> 36) & 1);
    ok_val("gits ctlr at reset", its_r32(GITS_CTLR));
    ok_val("gits cbaser at reset", its_r64(GITS_CBASER));
    ok_val("gits cwriter at reset", its_r64(GITS_CWRITER));
    ok_val("gits creadr at reset", its_r64(GITS_CREADR));
    for (int n = 0; n < 8; n++)
        ok_val(gname(&l, "gits baser", (u64)n, " at reset"), its_r64(GITS_BASER(n)));

    /* ---- GIC, then the ITS, then this CPU's LPI tables ---- */
    gic_dist_init();
    check(gic_cpu_init() == 0, "gic cpu init");
    lpi_prop_init();
    check(its_init() == 0, "its enabled");
    for (int n = 0; n < 8; n++)
        if (its_baser_val[n]) {
            ok_val(gname(&l, "gits baser", (u64)n, " written"), its_baser_val[n]);
            ok_val(gname(&l, "gits baser", (u64)n, " read back"), its_baser_rb[n]);
            u64 t = GITS_BASER_TYPE(its_baser_rb[n]);
            ok_val(gname(&l, "gits baser", (u64)n, " type"), t);
            ok_val(gname(&l, "gits baser", (u64)n, " entry size"), GITS_BASER_ESZ(its_baser_rb[n]));
        }
    ok_val("gits cbaser read back", its_cbaser_rb);
    ok_val("gits ctlr enabled", its_r32(GITS_CTLR));
    ok_val("gits cwriter", its_r64(GITS_CWRITER));
    ok_val("gits creadr", its_r64(GITS_CREADR));
    /* BASER / CBASER while enabled: written, then read back */
    its_w64(GITS_BASER(0), 0);
    ok_val("gits baser0 after write 0 while enabled", its_r64(GITS_BASER(0)));
    its_w64(GITS_CBASER, 0);
    ok_val("gits cbaser after write 0 while enabled", its_r64(GITS_CBASER));

    ok_val("gicr ctlr before lpis", mmio_r32(gicr_rd() + GICR_CTLR));
    check(its_cpu_init_lpis() == 0, "gicr enable lpis");
    ok_val("gicr propbaser read back", its_propbaser_rb[me]);
    ok_val("gicr pendbaser read back", its_pendbaser_rb[me]);
    ok_val("gicr ctlr after enable lpis", mmio_r32(gicr_rd() + GICR_CTLR));
    ok_val("its rdbase field for this cpu", its_rdbase_of(me));

    /* ---- MAPC + SYNC, MAPD, MAPTI ---- */
    check(its_mapc(0, me, 1) == 0, "mapc collection 0 -> this cpu");
    check(its_sync(me) == 0, "sync");
    ok_val("creadr after mapc+sync", creadr());
    check(its_mapd(0, 4, its_itt_small(0), 1) == 0, "mapd device 0, 5 event bits");
    check(its_mapti(0, 0, LPI0, 0) == 0, "mapti device 0 event 0 -> lpi 8192, collection 0");
    lpi_set_enabled(LPI0, 1);
    check(its_inv(0, 0) == 0, "inv device 0 event 0");
    ok_val("creadr after mapd+mapti+inv", creadr());
    ok_val("iar1 before int", icc_iar1());

    /* ---- INT ---- */
    irq_enable();
    its_int(0, 0);
    check(wait_deliv(1), "int: lpi delivered");
    check_eq("int: iar1 intid", last_intid, LPI0);
    ok_val("int: pending table bit after ack", lpi_pending_in_table(me, LPI0));

    /* ---- GITS_TRANSLATER (CPU store = DeviceID 0) ---- */
    mmio_w32(its_base + GITS_TRANSLATER, 0);
    dsb_sy();
    check(wait_deliv(2), "translater store of event 0: lpi delivered");
    check_eq("translater: iar1 intid", last_intid, LPI0);
    ok_val("translater reads", mmio_r32(its_base + GITS_TRANSLATER));
    mmio_w16(its_base + GITS_TRANSLATER, 0);
    dsb_sy();
    check(wait_deliv(3), "16-bit translater store: lpi delivered");
    /* event 1 is unmapped on device 0 */
    mark();
    mmio_w32(its_base + GITS_TRANSLATER, 1);
    ok_val("translater store of unmapped event 1: lpis delivered", settle_deliv());

    /* ---- CLEAR with IRQs masked ---- */
    irq_disable();
    u32 before = deliv;
    mark();
    its_int(0, 0);
    ok_val("masked int: pending table bit", lpi_pending_in_table(me, LPI0));
    ok_val("masked int: hppir1", icc_hppir1());
    check(its_clear(0, 0) == 0, "clear device 0 event 0");
    ok_val("after clear: pending table bit", lpi_pending_in_table(me, LPI0));
    ok_val("after clear: hppir1", icc_hppir1());
    ok_val("after clear: lpis delivered on unmask", settle_deliv());
    check_eq("clear: nothing delivered", deliv - before, 0);

    /* ---- disable in the property table + INV ---- */
    lpi_set_enabled(LPI0, 0);
    check(its_inv(0, 0) == 0, "inv after disabling lpi 8192");
    before = deliv;
    mark();
    its_int(0, 0);
    ok_val("disabled lpi: lpis delivered after int", settle_deliv());
    ok_val("disabled lpi: pending table bit", lpi_pending_in_table(me, LPI0));
    ok_val("disabled lpi: hppir1", icc_hppir1());
    lpi_set_enabled(LPI0, 1);
    check(its_inv(0, 0) == 0, "inv after re-enabling lpi 8192");
    check(wait_deliv(before + 1), "re-enabled lpi: pending lpi delivered");
    ok_val("re-enabled lpi: pending table bit", lpi_pending_in_table(me, LPI0));

    /* ---- DISCARD ---- */
    check(its_discard(0, 0) == 0, "discard device 0 event 0");
    mark();
    its_int(0, 0);
    ok_val("after discard: int delivers", settle_deliv());
    mark();
    mmio_w32(its_base + GITS_TRANSLATER, 0);
    ok_val("after discard: translater store delivers", settle_deliv());
    ok_val("after discard: pending table bit", lpi_pending_in_table(me, LPI0));
    /* DISCARD of a pending LPI clears it */
    check(its_mapti(0, 0, LPI0, 0) == 0, "mapti device 0 event 0 again");
    irq_disable();
    mark();
    its_int(0, 0);
    ok_val("pending before discard: pending table bit", lpi_pending_in_table(me, LPI0));
    check(its_discard(0, 0) == 0, "discard a pending lpi");
    ok_val("discarded pending lpi: pending table bit", lpi_pending_in_table(me, LPI0));
    ok_val("discarded pending lpi: delivered on unmask", settle_deliv());

    /* ---- MAPI (EventID = pINTID), device 2 with 14 event bits ---- */
    mem_zero(ITS_ITT_BIG, 0x40000);
    check(its_mapd(2, 13, ITS_ITT_BIG, 1) == 0, "mapd device 2, 14 event bits");
    check(its_mapi(2, 8200, 0) == 0, "mapi device 2 event 8200, collection 0");
    lpi_set_enabled(8200, 1);
    check(its_inv(2, 8200) == 0, "inv device 2 event 8200");
    before = deliv;
    irq_enable();
    its_int(2, 8200);
    check(wait_deliv(before + 1), "mapi: lpi delivered");
    check_eq("mapi: iar1 intid", last_intid, 8200);

    /* ---- CREADR advancing and wrapping ---- */
    u64 c0 = creadr();
    ok_val("creadr now", c0);
    its_sync(me);
    ok_val("creadr after one sync", creadr());
    int all = 1;
    u64 seen_zero = 0;
    for (int i = 0; i < ITS_CMDQ_SIZE / 32 + 3; i++) {
        if (its_sync(me) != 0)
            all = 0;
        if ((creadr() & 0xfffe0) == 0)
            seen_zero++;
    }
    check(all, "131 syncs processed through the 4 KiB queue");
    ok_val("creadr after 131 more syncs (wrapped)", creadr());
    ok_val("creadr wrapped to 0 times", seen_zero);
    ok_val("cwriter after wrap", its_r64(GITS_CWRITER));

    /* ---- malformed commands: what QEMU does ---- */
    struct its_cmd c;
    struct obs o;
    irq_enable();

    /* MAPTI with pINTID < 8192 */
    its_cmd_init(&c, ITS_CMD_MAPTI);
    enc_devid(&c, 0);
    enc_event(&c, 1);
    enc_pintid(&c, 100);
    mark();
    o = send_obs(&c);
    queue_recover();
    its_int(0, 1);
    report_bad("mapti pintid 100", o, settle_deliv());

    /* MAPTI with pINTID beyond PROPBASER.IDbits (16384 INTIDs) but < 2^16 */
    lpi_set_enabled(LPI0 + 1, 1);
    its_cmd_init(&c, ITS_CMD_MAPTI);
    enc_devid(&c, 0);
    enc_event(&c, 2);
    enc_pintid(&c, 20000);
    mark();
    o = send_obs(&c);
    queue_recover();
    its_int(0, 2);
    report_bad("mapti pintid 20000 (beyond propbaser idbits)", o, settle_deliv());

    /* MAPTI with an EventID beyond the device's 32 events */
    its_cmd_init(&c, ITS_CMD_MAPTI);
    enc_devid(&c, 0);
    enc_event(&c, 40);
    enc_pintid(&c, LPI0 + 1);
    mark();
    o = send_obs(&c);
    queue_recover();
    its_int(0, 40);
    report_bad("mapti eventid 40 on a 32-event device", o, settle_deliv());

    /* MAPTI on an unmapped device */
    its_cmd_init(&c, ITS_CMD_MAPTI);
    enc_devid(&c, 7);
    enc_event(&c, 0);
    enc_pintid(&c, LPI0 + 1);
    mark();
    o = send_obs(&c);
    queue_recover();
    its_int(7, 0);
    report_bad("mapti on unmapped device 7", o, settle_deliv());

    /* MAPD with Size (EventID bits - 1) above GITS_TYPER.IDbits */
    its_cmd_init(&c, ITS_CMD_MAPD);
    enc_devid(&c, 3);
    enc_size(&c, ((typer >> 8) & 0x1f) + 1);
    enc_itt(&c, its_itt_small(3));
    enc_valid(&c, 1);
    mark();
    o = send_obs(&c);
    queue_recover();
    its_mapti(3, 0, LPI0 + 1, 0);
    its_int(3, 0);
    report_bad("mapd size above typer idbits, then mapti+int", o, settle_deliv());

    /* MAPD with a DeviceID at the edge of the 64 KiB device table (8192
     * 8-byte entries): 8191 is inside, 8192 outside */
    its_cmd_init(&c, ITS_CMD_MAPD);
    enc_devid(&c, 8192);
    enc_size(&c, 4);
    enc_itt(&c, its_itt_small(4));
    enc_valid(&c, 1);
    mark();
    o = send_obs(&c);
    queue_recover();
    its_mapti(8192, 0, LPI0 + 1, 0);
    its_int(8192, 0);
    report_bad("mapd deviceid 8192 beyond the device table", o, settle_deliv());
    its_cmd_init(&c, ITS_CMD_MAPD);
    enc_devid(&c, 8191);
    enc_size(&c, 4);
    enc_itt(&c, its_itt_small(4));
    enc_valid(&c, 1);
    mark();
    o = send_obs(&c);
    queue_recover();
    its_mapti(8191, 0, LPI0 + 1, 0);
    its_int(8191, 0);
    report_bad("mapd deviceid 8191 (last table entry), then mapti+int", o, settle_deliv());

    /* MAPC with an RDbase (processor number) no CPU has */
    its_cmd_init(&c, ITS_CMD_MAPC);
    enc_icid(&c, 5);
    enc_target(&c, 200ull << 16);
    enc_valid(&c, 1);
    mark();
    o = send_obs(&c);
    queue_recover();
    its_mapti(0, 3, LPI0 + 1, 5);
    its_int(0, 3);
    report_bad("mapc rdbase processor 200", o, settle_deliv());

    /* INT to an event whose collection was never mapped */
    its_mapti(0, 4, LPI0 + 1, 6);
    its_cmd_init(&c, ITS_CMD_INT);
    enc_devid(&c, 0);
    enc_event(&c, 4);
    mark();
    o = send_obs(&c);
    queue_recover();
    report_bad("int via unmapped collection 6", o, settle_deliv());

    /* unknown command numbers */
    its_cmd_init(&c, 0xff);
    mark();
    o = send_obs(&c);
    queue_recover();
    report_bad("unknown command 0xff", o, settle_deliv());
    its_cmd_init(&c, 0x00);
    mark();
    o = send_obs(&c);
    queue_recover();
    report_bad("command 0x00", o, settle_deliv());
    its_cmd_init(&c, 0x21);         /* VMOVI: GICv4 only */
    mark();
    o = send_obs(&c);
    queue_recover();
    report_bad("gicv4 command 0x21 (vmovi) on gicv3", o, settle_deliv());

    /* the queue still works: remap event 0 and deliver it */
    check(its_mapti(0, 0, LPI0, 0) == 0, "mapti device 0 event 0 after the bad commands");
    before = deliv;
    its_int(0, 0);
    check(wait_deliv(before + 1), "int after the bad commands: delivered");
    check_eq("int after the bad commands: intid", last_intid, LPI0);
    ok_val("creadr at end", creadr());
    ok_val("gits ctlr at end", its_r32(GITS_CTLR));

    /* a command queued while GITS_CTLR.Enabled = 0 runs on enabling */
    its_w32(GITS_CTLR, its_r32(GITS_CTLR) & ~GITS_CTLR_ENABLED);
    ok_val("gits ctlr disabled", its_r32(GITS_CTLR));
    u64 cr0 = creadr();
    its_cmd_init(&c, ITS_CMD_INT);
    enc_devid(&c, 0);
    for (int i = 0; i < 4; i++)
        *(volatile u64 *)(uintptr_t)(ITS_CMDQ + its_cwriter + 8 * i) = c.dw[i];
    dsb_sy();
    its_cwriter = (its_cwriter + 32) % ITS_CMDQ_SIZE;
    mark();
    its_w64(GITS_CWRITER, its_cwriter);
    ok_val("its disabled: creadr slots advanced after cwriter write", ((creadr() + ITS_CMDQ_SIZE - cr0) % ITS_CMDQ_SIZE) / 32);
    ok_val("its disabled: lpis delivered", settle_deliv());
    mmio_w32(its_base + GITS_TRANSLATER, 0);
    ok_val("its disabled: lpis delivered after translater store", settle_deliv());
    mark();
    its_w32(GITS_CTLR, its_r32(GITS_CTLR) | GITS_CTLR_ENABLED);
    ok_val("its re-enabled: creadr slots advanced", ((creadr() + ITS_CMDQ_SIZE - cr0) % ITS_CMDQ_SIZE) / 32);
    ok_val("its re-enabled: lpis delivered", settle_deliv());

    /* GICR_CTLR.EnableLPIs cleared again: an INT stays pending in the table */
    irq_disable();
    mmio_w32(gicr_rd() + GICR_CTLR, mmio_r32(gicr_rd() + GICR_CTLR) & ~GICR_CTLR_ENABLE_LPIS);
    ok_val("gicr ctlr after clearing enable lpis", mmio_r32(gicr_rd() + GICR_CTLR));
    before = deliv;
    mark();
    its_int(0, 0);
    ok_val("enable lpis 0: lpis delivered after int", settle_deliv());
    ok_val("enable lpis 0: pending table bit", lpi_pending_in_table(me, LPI0));
    irq_disable();
    mark();
    mmio_w32(gicr_rd() + GICR_CTLR, mmio_r32(gicr_rd() + GICR_CTLR) | GICR_CTLR_ENABLE_LPIS);
    ok_val("enable lpis 1 again: lpis delivered", settle_deliv());
    irq_disable();

    ok_val("spurious interrupts", spurious);
    ok_val("non-lpi interrupts", other_intids);
    return 0;
}

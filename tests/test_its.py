"""GICv3 ITS (vmachine/intc/its.py) and LPIs in the redistributors / CPU
interface (vmachine/intc/gicv3.py), driven directly, as QEMU 7.2 models them
(hw/intc/arm_gicv3_its.c, arm_gicv3_redist.c, arm_gicv3_cpuif.c): register
reset values, every command's encoding and its errors, the tables QEMU
writes into guest RAM, stalls on addresses outside RAM, LPI delivery through
ICC_IAR1/EOIR1, EnableLPIs, INV/INVALL, the host MSI interface, save/load."""
from __future__ import annotations

import json

import pytest

from gicrig import CT, DT, ITS, ITT, LPI, OUTSIDE, PEND, PROP, RAM, RAM_SIZE, ItsRig
from vmachine.errors import ConfigError, DeviceError
from vmachine.memory import GuestRAM


# ---- registers -------------------------------------------------------------------------------
def test_reset_registers_as_qemu():
    r = ItsRig()
    assert r.r(0x0) == 0x8000_0000                           # Quiescent, disabled
    assert r.r(0x4) == 0x43B
    assert r.r(0x8, 8) == 0x1F_0001_EFB1 and r.r(0x8) == 0x0001_EFB1 and r.r(0xC) == 0x1F
    assert r.r(0x100, 8) == 0x0107_0000_0000_0200            # Device, 8-byte entries, 64 KiB
    assert r.r(0x108, 8) == 0x0407_0000_0000_0200            # Collection
    for n in range(2, 8):
        r.w(0x100 + 8 * n, 0xFFFF_FFFF_FFFF_FFFF, 8)         # unimplemented: RAZ/WI
        assert r.r(0x100 + 8 * n, 8) == 0
    assert r.r(0xFFE8) == 0x3B and r.r(0xFFE0) == 0x94       # PIDR2, PIDR0 (ITS)
    assert r.r(0x1_0040) == 0 and r.r(0x1_0040, 2) == 0      # TRANSLATER reads 0
    assert not r.errors


def test_baser_type_and_entry_size_are_read_only_and_registers_lock_when_enabled():
    r = ItsRig()
    r.w(0x100, 0xFFFF_FFFF_FFFF_FFFF, 8)
    assert r.r(0x100, 8) == 0xF8E0_FFFF_FFFF_FFFF | (1 << 56) | (7 << 48)
    r.w(0x104, 0)                                            # high half only
    assert r.r(0x100, 8) == 0x0107_0000_FFFF_FFFF
    r.w(0x80, 0x1234_5000 | (1 << 63), 8)
    r.w(0x90, 0x40, 8)                                       # CREADR writable (DS = 1)
    assert r.creadr() == 0x40
    r.w(0x84, 0x8000_0000)                                   # CBASER write resets CREADR
    assert r.creadr() == 0
    r.w(0x0, 1)
    r.w(0x80, 0, 8)
    r.w(0x100, 0, 8)
    assert r.r(0x80, 8) == (1 << 63) | 0x1234_5000 and r.r(0x100, 8) == 0x0107_0000_FFFF_FFFF
    r.w(0x0, 0)
    assert r.r(0x0) == 0x8000_0000


def test_bad_accesses_are_logged_raz_wi():
    r = ItsRig()
    assert r.r(0x0, 8) == 0 and r.r(0x40) == 0 and r.r(0x1_0040, 8) == 0 and r.r(0x2, 2) == 0
    r.w(0x8, 5)                                              # 4-byte TYPER write: invalid
    r.w(0x1_0040, 1, 1)
    assert len(r.errors) == 6


# ---- commands and tables ---------------------------------------------------------------------
def test_map_commands_write_qemus_table_layout(its_rig):
    its_rig.mapc(3, 1)
    its_rig.mapd(7, 4, ITT + 0x100)
    its_rig.mapti(7, 5, LPI + 3, 3)
    its_rig.mapi(7, 6, 3)                                        # pINTID = EventID: 6 is no LPI
    assert its_rig.creadr() == 4 * 32
    assert its_rig.ram.read_int(CT + 3 * 8, 8, "little") == 1 | 1 << 1
    assert its_rig.ram.read_int(DT + 7 * 8, 8, "little") == 1 | 4 << 1 | ((ITT + 0x100) >> 8) << 6
    ite = ITT + 0x100 + 5 * 12
    assert its_rig.ram.read_int(ite, 8, "little") == 1 | 1 << 1 | (LPI + 3) << 2 | 3 << 32
    assert its_rig.ram.read_int(ite + 8, 4, "little") == 1023    # doorbell: none
    assert its_rig.ram.read_int(ite + 12, 8, "little") == 0      # MAPI with EventID 6 refused
    assert any("MAPI" in w and "not an LPI" in w for w, _ in its_rig.errors)
    its_rig.mapd(7, 4, 0, v=0)                                   # unmap
    assert its_rig.ram.read_int(DT + 7 * 8, 8, "little") == 0


@pytest.mark.parametrize("issue,needle", [
    (lambda r: r.mapd(0x1_0000, 4, ITT), "MAPD: DeviceID"),          # 64 KiB page / 8 B = 8192
    (lambda r: r.mapd(1, 16, ITT), "MAPD: Size"),
    (lambda r: r.mapc(0x2000, 0), "MAPC: ICID"),
    (lambda r: r.mapc(1, 2), "MAPC: RDbase"),
    (lambda r: r.mapti(2, 0, LPI, 0), "MAPTI: no valid DTE"),
    (lambda r: (r.mapd(2, 1, ITT), r.mapti(2, 4, LPI, 0)), "MAPTI: EventID"),
    (lambda r: (r.mapd(2, 1, ITT), r.mapti(2, 0, 8191, 0)), "not an LPI"),
    (lambda r: (r.mapd(2, 1, ITT), r.mapti(2, 0, 1 << 16, 0)), "not an LPI"),
    (lambda r: (r.mapd(2, 1, ITT), r.mapti(2, 0, LPI, 0x2000)), "MAPTI: ICID"),
    (lambda r: r.dev_ev(0x03, 2, 0), "INT: no valid DTE"),
    (lambda r: (r.mapd(2, 1, ITT), r.dev_ev(0x03, 2, 0)), "INT: no valid ITE"),
    (lambda r: (r.mapd(2, 1, ITT), r.mapti(2, 0, LPI, 9), r.dev_ev(0x03, 2, 0)), "INT: no valid CTE"),
    (lambda r: r.dev_ev(0x04, 2, 0), "CLEAR: no valid DTE"),
    (lambda r: r.dev_ev(0x0F, 2, 0), "DISCARD: no valid DTE"),
    (lambda r: r.dev_ev(0x0C, 2, 0), "INV: no valid DTE"),
    (lambda r: r.dev_ev(0x01, 2, 0), "MOVI: no valid DTE"),
    (lambda r: r.cmd(0x0E, 0, 5 << 16, 0), "MOVALL: RDbase"),
])
def test_bad_parameters_skip_the_command(its_rig, issue, needle):
    issue(its_rig)
    assert its_rig.creadr() == its_rig.wptr                           # queue fully consumed, not stalled
    assert any(needle in w for w, _ in its_rig.errors), its_rig.errors
    assert its_rig.g.lpi_pending(0) == [] and not its_rig.irq[0]


def test_unknown_and_gicv4_commands_are_skipped_and_sync_is_a_no_op(its_rig):
    for op in (0x00, 0x05, 0x21, 0x25, 0x29, 0xFF):
        its_rig.cmd(op)
    assert its_rig.creadr() == 6 * 32 and not its_rig.errors


def test_int_makes_the_lpi_pending_and_iar_eoi_flow(its_rig):
    its_rig.full(dev=1, ev=3, intid=LPI + 9, prio=0x80)
    assert not its_rig.irq[0]
    its_rig.dev_ev(0x03, 1, 3)
    assert its_rig.irq[0] and its_rig.pend_bit(0, LPI + 9)
    assert its_rig.sr(0, "ICC_HPPIR1_EL1") == LPI + 9
    assert its_rig.sr(0, "ICC_IAR1_EL1") == LPI + 9
    assert not its_rig.irq[0] and not its_rig.pend_bit(0, LPI + 9)   # no active state
    assert its_rig.sr(0, "ICC_RPR_EL1") == 0x80
    its_rig.dev_ev(0x03, 1, 3)                                   # pending again while "handled":
    assert its_rig.g.lpi_pending(0) == [LPI + 9] and not its_rig.irq[0]   # same priority cannot preempt
    its_rig.sw(0, "ICC_EOIR1_EL1", LPI + 9)
    assert its_rig.sr(0, "ICC_RPR_EL1") == 0xFF and its_rig.irq[0]
    assert its_rig.sr(0, "ICC_IAR1_EL1") == LPI + 9
    its_rig.sw(0, "ICC_EOIR1_EL1", LPI + 9)
    assert its_rig.sr(0, "ICC_IAR1_EL1") == 1023 and not its_rig.errors


def test_lpi_priority_order_and_ties_with_spis(its_rig):
    its_rig.full(dev=1, ev=0, intid=LPI + 1, prio=0xA0)
    its_rig.mapti(1, 1, LPI + 2, 0)
    its_rig.prop(LPI + 2, 0x90)
    its_rig.dev_ev(0x03, 1, 0)
    its_rig.dev_ev(0x03, 1, 1)
    assert its_rig.sr(0, "ICC_IAR1_EL1") == LPI + 2              # lower priority value first
    # an SPI of equal priority beats an LPI (lower INTID wins a tie)
    its_rig.dist.mmio_write(0, 0x0084, 4, 1)                     # SPI 32 -> Group 1
    its_rig.dist.mmio_write(0, 0x0400 + 32, 1, 0xA0)
    its_rig.dist.mmio_write(0, 0x0104, 4, 1)
    its_rig.dist.mmio_write(0, 0x0204, 4, 1)                     # pending
    its_rig.sw(0, "ICC_EOIR1_EL1", LPI + 2)
    assert its_rig.sr(0, "ICC_IAR1_EL1") == 32


def test_disabled_lpi_config_and_global_enables_gate_delivery(its_rig):
    its_rig.full(intid=LPI + 4)
    its_rig.prop(LPI + 4, 0xA0, enable=False)
    its_rig.dev_ev(0x0C, 1, 0)                                   # INV
    its_rig.dev_ev(0x03, 1, 0)
    assert its_rig.g.lpi_pending(0) == [LPI + 4] and not its_rig.irq[0]
    its_rig.prop(LPI + 4, 0xA0, enable=True)
    assert not its_rig.irq[0]                                    # cached until INV
    its_rig.dev_ev(0x0C, 1, 0)
    assert its_rig.irq[0]
    its_rig.dist.mmio_write(0, 0, 4, 0)                          # GICD_CTLR.EnableGrp1NS = 0
    assert not its_rig.irq[0]
    its_rig.dist.mmio_write(0, 0, 4, 2)
    its_rig.gicr_w(0, 0x0, 0)                                    # EnableLPIs = 0
    assert not its_rig.irq[0]


def test_inv_and_invall_reread_priority(its_rig):
    its_rig.full(dev=1, ev=0, intid=LPI + 1, prio=0xA0)
    its_rig.mapti(1, 1, LPI + 2, 0)
    its_rig.prop(LPI + 2, 0xB0)
    its_rig.dev_ev(0x03, 1, 0)
    its_rig.dev_ev(0x03, 1, 1)
    its_rig.prop(LPI + 2, 0x10)
    assert its_rig.sr(0, "ICC_HPPIR1_EL1") == LPI + 1
    its_rig.cmd(0x0D, 0, 0)                                      # INVALL (ICID 0)
    assert its_rig.sr(0, "ICC_HPPIR1_EL1") == LPI + 2
    its_rig.prop(LPI + 2, 0xF0)
    its_rig.dev_ev(0x0C, 1, 1)                                   # INV
    assert its_rig.sr(0, "ICC_HPPIR1_EL1") == LPI + 1


def test_enable_lpis_fires_preset_pending_table_bits():
    r = ItsRig()
    r.setup_cpus(enable_lpis=False)
    r.prop(LPI + 100, 0x60)
    r.prop(LPI + 7, 0x70)
    r.ram.write(PEND + (LPI + 100) // 8, bytes([1 << ((LPI + 100) % 8)]))
    r.ram.write(PEND + (LPI + 7) // 8, bytes([1 << ((LPI + 7) % 8)]))
    r.ram.write(PEND + 5, b"\xff")                            # first 1 KiB: not LPIs
    assert not r.irq[0]
    r.gicr_w(0, 0x0, 1)
    assert r.gicr_r(0, 0x0) == 3                              # EnableLPIs | CES
    assert r.g.lpi_pending(0) == [LPI + 7, LPI + 100] and r.irq[0]
    assert r.sr(0, "ICC_IAR1_EL1") == LPI + 100
    assert not r.pend_bit(0, LPI + 100) and r.pend_bit(0, LPI + 7)
    assert r.sr(0, "ICC_IAR1_EL1") == 1023                    # 0x70 cannot preempt 0x60
    r.sw(0, "ICC_EOIR1_EL1", LPI + 100)
    assert r.sr(0, "ICC_IAR1_EL1") == LPI + 7


def test_lpis_beyond_propbaser_idbits_are_ignored(its_rig):
    its_rig.gicr_w(0, 0x70, PROP | 13, 8)                         # 14 bits: LPIs up to 16383
    its_rig.full(intid=LPI + 8192)
    its_rig.dev_ev(0x03, 1, 0)
    assert its_rig.g.lpi_pending(0) == []


def test_clear_and_discard(its_rig):
    its_rig.full(intid=LPI + 1)
    its_rig.dev_ev(0x03, 1, 0)
    its_rig.dev_ev(0x04, 1, 0)                                   # CLEAR
    assert its_rig.g.lpi_pending(0) == [] and not its_rig.pend_bit(0, LPI + 1) and not its_rig.irq[0]
    its_rig.dev_ev(0x03, 1, 0)
    its_rig.dev_ev(0x0F, 1, 0)                                   # DISCARD: clear + unmap
    assert its_rig.g.lpi_pending(0) == []
    assert its_rig.ram.read(ITT, 12) == bytes(12)
    its_rig.dev_ev(0x03, 1, 0)
    assert any("INT: no valid ITE" in w for w, _ in its_rig.errors)


def test_movi_moves_pending_state_and_the_ite(its_rig):
    its_rig.full(intid=LPI + 1, cpu=0)
    its_rig.mapc(1, 1)
    its_rig.dev_ev(0x03, 1, 0)
    its_rig.dev_ev(0x01, 1, 0, dw2=1)                            # MOVI to ICID 1
    assert its_rig.g.lpi_pending(0) == [] and its_rig.g.lpi_pending(1) == [LPI + 1]
    assert its_rig.irq == [False, True] and its_rig.pend_bit(1, LPI + 1) and not its_rig.pend_bit(0, LPI + 1)
    assert (its_rig.ram.read_int(ITT, 8, "little") >> 32) & 0xFFFF == 1
    assert its_rig.its.translate_msi(its_rig.its.doorbell, 0, 1) == (LPI + 1, 1)


def test_movall_moves_every_pending_lpi(its_rig):
    its_rig.full(intid=LPI + 1)
    its_rig.mapti(1, 1, LPI + 2, 0)
    its_rig.prop(LPI + 2)
    its_rig.dev_ev(0x03, 1, 0)
    its_rig.dev_ev(0x03, 1, 1)
    its_rig.cmd(0x0E, 0, 0 << 16, 1 << 16)                       # MOVALL rd 0 -> rd 1
    assert its_rig.g.lpi_pending(0) == [] and its_rig.g.lpi_pending(1) == [LPI + 1, LPI + 2]
    its_rig.cmd(0x0E, 0, 1 << 16, 1 << 16)                       # same RD: no-op
    assert its_rig.g.lpi_pending(1) == [LPI + 1, LPI + 2] and not its_rig.errors


def test_translater_store_from_a_cpu_is_device_0(its_rig):
    its_rig.full(dev=0, ev=2, intid=LPI + 5)
    its_rig.its.mmio_write(0, 0x1_0040, 4, 2)
    assert its_rig.g.lpi_pending(0) == [LPI + 5]
    its_rig.its.mmio_write(0, 0x1_0040, 2, 7)                    # unmapped event: logged, dropped
    assert any("MSI dropped" in w for w, _ in its_rig.errors)
    its_rig.w(0x0, 0)
    its_rig.its.mmio_write(0, 0x1_0040, 4, 2)                     # disabled ITS: ignored


def test_indirect_device_table():
    r = ItsRig()
    r.setup_cpus()
    l1 = DT
    r.ram.write_int(l1, 8, (1 << 63) | (DT + 0x1_0000), "little")   # L1 entry 0 valid
    r.setup_its(dt_baser=(1 << 63) | (1 << 62) | DT | (2 << 8))
    r.mapc(0, 0)
    r.mapd(5, 4, ITT)
    assert r.ram.read_int(DT + 0x1_0000 + 5 * 8, 8, "little") & 1
    r.mapd(8192 + 3, 4, ITT)                                 # L1 entry 1 invalid: write discarded
    assert r.creadr() == 3 * 32 and not r.errors
    r.mapti(5, 1, LPI, 0)
    assert r.its.translate_msi(r.its.doorbell, 1, 5) == (LPI, 0)
    with pytest.raises(DeviceError) as e:
        r.its.translate_msi(r.its.doorbell, 1, 8192 + 3)
    assert e.value.errno_name == "ENOENT"


# ---- addresses outside RAM: stall, never an access outside RAM --------------------------------
def test_command_queue_outside_ram_stalls():
    r = ItsRig()
    r.setup_cpus()
    r.setup_its(cq=OUTSIDE)
    r.w(0x88, 0x20, 8)
    assert r.creadr() == 1                                   # Stalled, offset 0
    assert any("command outside RAM" in w for w, _ in r.errors)


@pytest.mark.parametrize("table", ["dt", "ct", "itt"])
def test_tables_outside_ram_stall_and_retry(table):
    r = ItsRig()
    r.setup_cpus()
    bad = (1 << 63) | OUTSIDE | (2 << 8)
    r.setup_its(dt_baser=bad if table == "dt" else None, ct_baser=bad if table == "ct" else None)
    r.prop(LPI)
    if table == "dt":
        r.mapd(1, 4, ITT)
    elif table == "ct":
        r.mapc(0, 0)
    else:
        r.mapd(1, 4, OUTSIDE)
        r.mapti(1, 0, LPI, 0)
    stalled_at = r.wptr - 32
    assert r.creadr() == stalled_at | 1
    assert any("outside RAM, queue stalled" in w for w, _ in r.errors)
    n = len(r.errors)
    r.w(0x88, r.wptr, 8)                                     # CWRITER write retries it
    assert r.creadr() == stalled_at | 1 and len(r.errors) == n + 1


def test_lpi_tables_outside_ram_are_guest_errors():
    r = ItsRig()
    r.setup_cpus()
    r.setup_its()
    r.full(intid=LPI)
    r.gicr_w(0, 0x78, OUTSIDE, 8)                            # pending table outside RAM
    r.dev_ev(0x03, 1, 0)
    assert r.g.lpi_pending(0) == [] and any("pending table" in w for w, _ in r.errors)
    r.gicr_w(0, 0x78, PEND, 8)
    r.gicr_w(0, 0x70, OUTSIDE | 15, 8)                       # property table outside RAM
    r.dev_ev(0x03, 1, 0)
    assert r.g.lpi_pending(0) == [LPI] and not r.irq[0]      # config reads 0: disabled
    r.gicr_w(0, 0x78, OUTSIDE, 8)
    r.gicr_w(0, 0x0, 1)                                      # EnableLPIs rescan outside RAM
    assert r.g.lpi_pending(0) == []


# ---- host interface ----------------------------------------------------------------------------
def test_translate_msi_has_no_side_effects_and_matches_signal_msi(its_rig):
    its_rig.full(dev=3, ev=1, intid=LPI + 42, cpu=1)
    before = bytes(its_rig.ram.buf)
    n_err, n_ev = len(its_rig.errors), len(its_rig.events)
    assert its_rig.its.translate_msi(its_rig.its.doorbell, 1, 3) == (LPI + 42, 1)
    assert bytes(its_rig.ram.buf) == before and len(its_rig.errors) == n_err and len(its_rig.events) == n_ev
    assert its_rig.g.lpi_pending(1) == []
    its_rig.its.signal_msi(its_rig.its.doorbell, 1, 3)
    assert its_rig.g.lpi_pending(1) == [LPI + 42] and its_rig.irq[1]
    assert its_rig.sr(1, "ICC_IAR1_EL1") == LPI + 42


@pytest.mark.parametrize("args,errno", [
    ((0x0809_0044, 1, 3), "EINVAL"),          # not GITS_TRANSLATER
    ((None, -1, 3), "EINVAL"),
    ((None, 1, 1 << 32), "EINVAL"),
    ((None, 1, 8192), "EINVAL"),              # DeviceID beyond the device table
    ((None, 1, 4), "ENOENT"),                 # unmapped device
    ((None, 2, 3), "ENOENT"),                 # unmapped event
    ((None, 1 << 10, 3), "ENOENT"),           # event beyond the device's size
])
def test_msi_errors(its_rig, args, errno):
    its_rig.full(dev=3, ev=1, intid=LPI + 42)
    a = (its_rig.its.doorbell if args[0] is None else args[0],) + args[1:]
    for f in (its_rig.its.translate_msi, its_rig.its.signal_msi):
        with pytest.raises(DeviceError) as e:
            f(*a)
        assert e.value.errno_name == errno
    assert its_rig.g.lpi_pending(0) == []


def test_msi_errors_disabled_and_fault():
    r = ItsRig()
    with pytest.raises(DeviceError, match="Enabled"):
        r.its.translate_msi(r.its.doorbell, 0, 0)
    r.setup_cpus()
    r.setup_its()
    r.full(dev=1, ev=0)
    r.ram.write_int(DT + 8, 8, 1 | 4 << 1 | (OUTSIDE >> 8) << 6, "little")   # ITT outside RAM
    with pytest.raises(DeviceError, match="outside RAM"):
        r.its.translate_msi(r.its.doorbell, 0, 1)


# ---- save / load -------------------------------------------------------------------------------
def test_save_load_round_trip(its_rig):
    its_rig.full(dev=1, ev=0, intid=LPI + 1, prio=0x90)
    its_rig.dev_ev(0x03, 1, 0)
    its_rig.prop(LPI + 1, 0x40)                                  # not yet INV'd: cached 0x90 travels
    secs = {s["name"]: s for s in json.loads(json.dumps([its_rig.g.save_state(), its_rig.its.save_state()]))}
    ram = GuestRAM(RAM, RAM_SIZE)
    ram.write(RAM, bytes(its_rig.ram.buf))
    b = ItsRig(ram=ram)
    b.g.load_state(secs)
    b.its.load_state(secs)
    b.sys = [b.g.sysregs(i) for i in range(2)]
    assert b.g.lpi_pending(0) == [LPI + 1] and b.irq[0]
    assert b.r(0x90, 8) == its_rig.creadr()
    assert b.its.translate_msi(b.its.doorbell, 0, 1) == (LPI + 1, 0)
    assert b.sr(0, "ICC_IAR1_EL1") == LPI + 1 and b.sr(0, "ICC_RPR_EL1") == 0x90
    # the restored ITS keeps processing commands where it stopped
    b.wptr = its_rig.wptr
    b.mapti(1, 1, LPI + 2, 0)
    assert b.r(0x90, 8) == b.wptr


def test_load_refuses_bad_its_sections(its_rig):
    s = its_rig.its.save_state()
    for k, v in (("baser", [0] * 8), ("ctlr", -1), ("base", 0)):
        bad = json.loads(json.dumps(s))
        bad["fields"][k] = v
        with pytest.raises(ConfigError):
            its_rig.its.load_state({"gicv3-its": bad})


# ---- the virt board ----------------------------------------------------------------------------
def test_virt_board_has_the_its_window_and_dt_node():
    import libfdt
    from vmachine import create_machine
    m = create_machine("virt,gic-version=3", smp=2)
    assert any(r.name == "gicv3-its" and r.base == ITS and r.size == 0x2_0000 for r in m.mmio.regions)
    fdt = libfdt.Fdt(m.board.dtb())
    node = fdt.path_offset("/intc@8000000/its@8080000")
    assert fdt.getprop(node, "compatible").as_str() == "arm,gic-v3-its"
    assert fdt.getprop(node, "#msi-cells").as_uint32() == 1
    assert fdt.getprop(node, "phandle").as_uint32() == 0x8003
    assert len(fdt.getprop(node, "msi-controller")) == 0
    assert bytes(fdt.getprop(node, "reg")) == (ITS).to_bytes(8, "big") + (0x2_0000).to_bytes(8, "big")
    assert {s["name"] for s in m.board.save_state()} >= {"gicv3", "gicv3-its"}

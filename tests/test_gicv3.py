"""GICv3 model (vmachine/intc/gicv3.py) driven directly: register tables,
delivery and the CPU interface as QEMU 7.2 models them for a non-secure EL1
guest on `-M virt,gic-version=3`, and the KVM-style host lifecycle.
Fake vCPUs are objects with `index` and `mpidr`; IRQ/FIQ lines are recorded."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from gicrig import DIST, ICC, REDIST, REDIST_HIGH, SGI, GicRig, fake_cpus, mpidr
from vmachine.errors import ConfigError, DeviceError
from vmachine.intc import gicv3 as G
from vmachine.intc.gicv3 import GicV3


# ---- register tables ------------------------------------------------------------------------------

@pytest.mark.parametrize("reg", [r for r in G.GICD_REGS if isinstance(r.reset, int)],
                         ids=lambda r: r.name)
def test_gicd_reset_values_from_the_table(reg):
    """Every word of every distributor register reads its table reset value
    (at every width the table gives), without a guest error."""
    rig = GicRig(2)
    for off in range(reg.offset, reg.offset + reg.length, 4):
        for size in sorted(reg.widths):
            if (off - reg.offset) % size:
                continue
            if reg.name == "GICD_SGIR":
                assert rig.dr(off) == 0 and rig.errors          # write-only: logged
                return
            assert rig.dr(off, size) == (reg.reset if size == 4 else 0 if reg.reset == 0
                                         else reg.reset & 0xFF)
    assert not rig.errors


def test_gicd_fixed_values():
    rig = GicRig(1)
    assert rig.dr(0x0000) == 0x50                                   # DS | ARE
    assert rig.dr(0x0004) == 0x037A_0007
    assert rig.dr(0x0008) == 0x43B
    ids = [rig.dr(0xFFD0 + 4 * i) for i in range(12)]
    assert ids == [0x44, 0, 0, 0, 0x92, 0xB4, 0x3B, 0, 0x0D, 0xF0, 0x05, 0xB1]


@pytest.mark.parametrize("reg", G.GICD_REGS + G.GICR_REGS, ids=lambda r: r.name)
def test_bad_widths_are_logged_raz_wi(reg):
    """Every width a register does not take: guest error, reads 0, no effect."""
    rig = GicRig(1)
    for size in (1, 2, 4, 8):
        if size in reg.widths:
            continue
        rig.errors.clear()
        off = reg.offset
        if reg in G.GICD_REGS:
            before = rig.dr(reg.offset) if 4 in reg.widths else None
            rig.errors.clear()
            assert rig.dr(off, size) == 0
            rig.dw(off, (1 << (8 * size)) - 1, size)
            assert len(rig.errors) == 2
            if before is not None and reg.name not in ("GICD_SGIR",):
                assert rig.dr(reg.offset) == before
        else:
            before = rig.rr(0, reg.offset) if 4 in reg.widths else None
            assert rig.rr(0, off, size) == 0
            rig.rw(0, off, (1 << (8 * size)) - 1, size)
            assert len(rig.errors) == 2
            if before is not None:
                assert rig.rr(0, reg.offset) == before


@pytest.mark.parametrize("off", [0x000C, 0x0040, 0x0048, 0x0020, 0x5000, 0x7FE0, 0xFFC0, 0x0002])
def test_gicd_unknown_offsets_logged_raz_wi(off):
    rig = GicRig(1)
    size = 4 if off % 4 == 0 else 2
    assert rig.dr(off, size) == 0
    rig.dw(off, 0xFFFF, size)
    assert len(rig.errors) == 2
    assert rig.dr(0) == 0x50


def test_gicd_ctlr_only_group_enables_writable():
    rig = GicRig(1)
    rig.dw(0, 0xFFFF_FFFF)
    assert rig.dr(0) == 0x53
    rig.dw(0, 0)
    assert rig.dr(0) == 0x50


@pytest.mark.parametrize("off", [0x0004, 0x0008, 0xFFE8])
def test_gicd_read_only_registers_ignore_and_log_writes(off):
    rig = GicRig(1)
    before = rig.dr(off)
    rig.dw(off, 0x1234_5678)
    assert rig.dr(off) == before and len(rig.errors) == 1


@pytest.mark.parametrize("base", [0x0080, 0x0100, 0x0180, 0x0200, 0x0280, 0x0300, 0x0380])
def test_gicd_bitmap_word0_and_past_288_are_raz_wi(base):
    rig = GicRig(1)
    for word in (0, 9, 31):
        rig.dw(base + 4 * word, 0xFFFF_FFFF)
        assert rig.dr(base + 4 * word) == 0
    assert not rig.errors


def test_gicd_set_clear_pairs():
    rig = GicRig(1)
    rig.dw(0x0104, 0x0000_00F0)                          # ISENABLER1: 36..39
    assert rig.dr(0x0104) == rig.dr(0x0184) == 0xF0
    rig.dw(0x0184, 0x30)
    assert rig.dr(0x0104) == 0xC0
    rig.dw(0x0208, 0x5)                                  # ISPENDR2: 64, 66
    assert rig.dr(0x0288) == 0x5
    rig.dw(0x0288, 0x1)
    assert rig.dr(0x0208) == 0x4
    rig.dw(0x0320, 0x8000_0000)                          # ISACTIVER8: 287
    assert rig.dr(0x03A0) == 0x8000_0000
    rig.dw(0x03A0, 0x8000_0000)
    assert rig.dr(0x0320) == 0


def test_gicd_ipriorityr_bytes_words_and_ranges():
    rig = GicRig(1)
    rig.dw(0x0400 + 51, 0xA5, size=1)
    assert rig.dr(0x0430) == 0xA500_0000
    rig.dw(0x0434, 0x0403_02FF)                          # 8 bits stored as written
    assert [rig.dr(0x0434 + i, 1) for i in range(4)] == [0xFF, 0x02, 0x03, 0x04]
    rig.dw(0x0400, 0xFFFF_FFFF)                          # SGIs/PPIs: RAZ/WI
    rig.dw(0x0400 + 31, 0xFF, size=1)
    assert rig.dr(0x0400) == 0 and rig.dr(0x041C) == 0
    rig.dw(0x0400 + 288, 0xFF, size=1)                   # past the last line
    assert rig.dr(0x0400 + 288, 1) == 0
    assert rig.dr(0x0400 + 284) == 0
    assert not rig.errors


def test_gicd_icfgr_odd_bits_only():
    rig = GicRig(1)
    rig.dw(0x0C08, 0xFFFF_FFFF)                          # INTIDs 32..47
    assert rig.dr(0x0C08) == 0xAAAA_AAAA
    rig.dw(0x0C0C, 0x0000_0008)                          # INTID 49 edge
    assert rig.dr(0x0C0C) == 0x8
    for off in (0x0C00, 0x0C04, 0x0C48):                 # SGI/PPI words, past 288
        rig.dw(off, 0xFFFF_FFFF)
        assert rig.dr(off) == 0


@pytest.mark.parametrize("off,size", [(0x0D04, 4), (0x0E08, 4), (0x0804, 4), (0x0805, 1),
                                      (0x0F10, 4), (0x0F2F, 1)])
def test_gicd_raz_wi_with_ds_and_are(off, size):
    rig = GicRig(1)
    rig.dw(off, 0xFF, size)
    assert rig.dr(off, size) == 0 and not rig.errors


def test_gicd_sgir_is_write_ignored():
    rig = GicRig(2)
    rig.linux_setup()
    rig.dw(0x0F00, 0x0001_0001)
    assert not any(rig.irq) and not rig.errors


def test_gicd_irouter_64bit_and_halves():
    rig = GicRig(1)
    off = 0x6000 + 8 * 40
    rig.dw(off, 0x0000_00AB_8012_3456, size=8)           # stored as written
    assert rig.dr(off, 8) == 0x0000_00AB_8012_3456
    assert rig.dr(off) == 0x8012_3456 and rig.dr(off + 4) == 0xAB
    rig.dw(off + 4, 0x7)
    assert rig.dr(off, 8) == 0x0000_0007_8012_3456
    rig.dw(off, 0x0)
    assert rig.dr(off, 8) == 0x0000_0007_0000_0000
    rig.dw(0x6000 + 8 * 5, 0x1, size=8)                  # IROUTER<32: RAZ/WI
    assert rig.dr(0x6000 + 8 * 5, 8) == 0
    assert not rig.errors


# ---- redistributor ------------------------------------------------------------------------------

def test_gicr_reset_values_and_fixed_registers():
    rig = GicRig(3)
    for f in range(3):
        assert rig.rr(f, 0x0000) == 0x2                   # CES (QEMU with LPIs)
        assert rig.rr(f, 0x0004) == 0x43B
        assert rig.rr(f, 0x0014) == 0x6
        assert rig.rr(f, 0x0070, 8) == rig.rr(f, 0x0078, 8) == 0
        assert rig.rr(f, SGI + 0x0C00) == 0xAAAA_AAAA
        for off in (0x0080, 0x0100, 0x0180, 0x0200, 0x0280, 0x0300, 0x0380, 0x0C04,
                    0x0D00, 0x0E00, 0x0400, 0x041C):
            assert rig.rr(f, SGI + off) == 0
        assert [rig.rr(f, 0xFFD0 + 4 * i) for i in range(12)] == \
            [0x44, 0, 0, 0, 0x93, 0xB4, 0x3B, 0, 0x0D, 0xF0, 0x05, 0xB1]
    assert not rig.errors


def test_gicr_typer_per_frame_64bit_and_halves():
    rig = GicRig(20)
    for f in (0, 5, 17, 19):
        aff = mpidr(f) & 0xFF_FFFF
        expect = aff << 32 | 1 << 24 | f << 8 | 1 | (0x10 if f == 19 else 0)
        assert rig.rr(f, 0x0008, 8) == expect
        assert rig.rr(f, 0x0008) == expect & 0xFFFF_FFFF
        assert rig.rr(f, 0x000C) == expect >> 32
    rig.rw(0, 0x0008, 0, size=8)
    rig.rw(0, 0x0008, 0)
    rig.rw(0, 0x000C, 0)
    assert rig.rr(0, 0x0008, 8) == (1 << 24 | 1) and len(rig.errors) == 3


def test_gicr_ctlr_enable_lpis_and_waker():
    rig = GicRig(1)
    rig.rw(0, 0x0000, 0xFFFF_FFFF)
    assert rig.rr(0, 0x0000) == 0x3
    rig.rw(0, 0x0000, 0)
    assert rig.rr(0, 0x0000) == 0x2
    rig.rw(0, 0x0014, 0)
    assert rig.rr(0, 0x0014) == 0
    rig.rw(0, 0x0014, 0x4)                                # ChildrenAsleep is RO
    assert rig.rr(0, 0x0014) == 0
    rig.rw(0, 0x0014, 0x2)
    assert rig.rr(0, 0x0014) == 0x6


def test_gicr_propbaser_pendbaser_stored_as_written():
    rig = GicRig(1)
    rig.rw(0, 0x0070, 0x0700_0000_4010_078F, size=8)
    assert rig.rr(0, 0x0070, 8) == 0x0700_0000_4010_078F
    rig.rw(0, 0x007C, 0x4000_0000)
    rig.rw(0, 0x0078, 0x4002_0000)
    assert rig.rr(0, 0x0078, 8) == 0x4000_0000_4002_0000
    assert rig.rr(0, 0x007C) == 0x4000_0000


def test_gicr_sgi_frame_registers():
    rig = GicRig(2)
    rig.rw(1, SGI + 0x0080, 0x1234_5678)
    assert rig.rr(1, SGI + 0x0080) == 0x1234_5678 and rig.rr(0, SGI + 0x0080) == 0
    rig.rw(1, SGI + 0x0100, 0x0001_0003)
    rig.rw(1, SGI + 0x0180, 0x1)
    assert rig.rr(1, SGI + 0x0100) == 0x0001_0002
    rig.rw(1, SGI + 0x041B, 0x80, size=1)
    assert rig.rr(1, SGI + 0x0418) == 0x8000_0000
    rig.rw(1, SGI + 0x0C00, 0)                            # ICFGR0: SGIs always edge
    assert rig.rr(1, SGI + 0x0C00) == 0xAAAA_AAAA
    rig.rw(1, SGI + 0x0C04, 0xFFFF_FFFF)
    assert rig.rr(1, SGI + 0x0C04) == 0xAAAA_AAAA
    rig.rw(1, SGI + 0x0D00, 0xFFFF_FFFF)
    rig.rw(1, SGI + 0x0E00, 0xFFFF_FFFF)
    assert rig.rr(1, SGI + 0x0D00) == rig.rr(1, SGI + 0x0E00) == 0
    assert not rig.errors
    assert rig.rr(1, SGI + 0x0084) == 0 and rig.errors      # reserved offset: logged


# ---- CPU interface registers ------------------------------------------------------------------

@pytest.mark.parametrize("reg", [r for r in G.ICC_REGS if r.read and r.reset is not None],
                         ids=lambda r: r.name)
def test_icc_reset_values_from_the_table(reg):
    rig = GicRig(1)
    assert rig.sr(0, reg.name) == reg.reset


def test_icc_register_directions():
    rig = GicRig(1)
    regs = rig.sys[0]
    for r in G.ICC_REGS:
        rd, wr = regs[r.key]
        assert (rd is None) == (r.read is None) and (wr is None) == (r.write is None)
    assert regs[ICC["ICC_IAR1_EL1"]][1] is None and regs[ICC["ICC_SGI1R_EL1"]][0] is None


def test_icc_widths_and_raz_wi_bits():
    rig = GicRig(1)
    rig.sw(0, "ICC_PMR_EL1", 0xFF)
    assert rig.sr(0, "ICC_PMR_EL1") == 0xF8              # 5 priority bits
    rig.sw(0, "ICC_PMR_EL1", 0x1_0087)
    assert rig.sr(0, "ICC_PMR_EL1") == 0x80
    rig.sw(0, "ICC_CTLR_EL1", 0xFFFF_FFFF)
    assert rig.sr(0, "ICC_CTLR_EL1") == 0x8C03           # CBPR, EOImode writable
    rig.sw(0, "ICC_CTLR_EL1", 0)
    assert rig.sr(0, "ICC_CTLR_EL1") == 0x8C00
    rig.sw(0, "ICC_SRE_EL1", 0)
    assert rig.sr(0, "ICC_SRE_EL1") == 0x7
    rig.sw(0, "ICC_IGRPEN1_EL1", 3)
    rig.sw(0, "ICC_IGRPEN0_EL1", 2)
    assert rig.sr(0, "ICC_IGRPEN1_EL1") == 1 and rig.sr(0, "ICC_IGRPEN0_EL1") == 0
    rig.sw(0, "ICC_AP1R0_EL1", 0x1_0000_0003)
    assert rig.sr(0, "ICC_AP1R0_EL1") == 3 and rig.sr(0, "ICC_RPR_EL1") == 0
    rig.sw(0, "ICC_AP1R0_EL1", 0)
    assert rig.sr(0, "ICC_RPR_EL1") == 0xFF


def test_icc_bpr_minimums_and_cbpr():
    rig = GicRig(1)
    rig.sw(0, "ICC_BPR0_EL1", 0)
    rig.sw(0, "ICC_BPR1_EL1", 0)
    assert (rig.sr(0, "ICC_BPR0_EL1"), rig.sr(0, "ICC_BPR1_EL1")) == (2, 3)
    rig.sw(0, "ICC_BPR0_EL1", 5)
    rig.sw(0, "ICC_BPR1_EL1", 6)
    assert (rig.sr(0, "ICC_BPR0_EL1"), rig.sr(0, "ICC_BPR1_EL1")) == (5, 6)
    rig.sw(0, "ICC_CTLR_EL1", 1)                         # CBPR
    assert rig.sr(0, "ICC_BPR1_EL1") == 6                # BPR0 + 1
    rig.sw(0, "ICC_BPR1_EL1", 4)                         # ignored
    rig.sw(0, "ICC_BPR0_EL1", 7)
    assert rig.sr(0, "ICC_BPR1_EL1") == 7                # saturates
    rig.sw(0, "ICC_CTLR_EL1", 0)
    assert rig.sr(0, "ICC_BPR1_EL1") == 6


# ---- SGIs ------------------------------------------------------------------------------------------

def sgi1r(intid, targets=0, aff1=0, aff2=0, aff3=0, irm=0):
    return targets | aff1 << 16 | intid << 24 | aff2 << 32 | irm << 40 | aff3 << 48


def pending_sgis(rig, frame):
    return rig.rr(frame, SGI + 0x0200) & 0xFFFF


def test_sgi_target_list_and_aff1():
    rig = GicRig(40)
    rig.linux_setup()
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(5, targets=0b1001, aff1=1))
    hit = [f for f in range(40) if pending_sgis(rig, f)]
    assert hit == [16, 19] and pending_sgis(rig, 16) == 1 << 5
    rig.sw(3, "ICC_SGI1R_EL1", sgi1r(2, targets=0xFFFF, aff1=2))  # cluster 2 has 32..39
    assert [f for f in range(40) if pending_sgis(rig, f) & 4] == list(range(32, 40))


def test_sgi_aff2_aff3_and_rs_mismatch_reach_nobody():
    rig = GicRig(4)
    rig.linux_setup()
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(1, targets=0xF, aff2=1))
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(1, targets=0xF, aff3=1))
    assert not any(pending_sgis(rig, f) for f in range(4))
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(1, targets=0x2) | 1 << 44)   # RS ignored (QEMU)
    assert pending_sgis(rig, 1) == 2


def test_sgi_irm_broadcast_to_all_but_self():
    rig = GicRig(5)
    rig.linux_setup()
    for f in range(5):
        rig.rw(f, SGI + 0x0100, 1 << 7)
    rig.sw(2, "ICC_SGI1R_EL1", sgi1r(7, targets=0x1, irm=1))
    assert [bool(pending_sgis(rig, f)) for f in range(5)] == [True, True, False, True, True]
    assert rig.irq == [True, True, False, True, True]


def test_sgi_group_must_match_at_the_target():
    rig = GicRig(2)
    rig.dw(0, 0x3)
    rig.rw(1, SGI + 0x0080, 1 << 3)                        # SGI 3 Group 1, others Group 0
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(4, targets=0x2))      # G1 SGI to a G0 SGI: dropped
    assert pending_sgis(rig, 1) == 0
    rig.sw(0, "ICC_SGI0R_EL1", sgi1r(4, targets=0x2))      # G0 SGI: accepted
    assert pending_sgis(rig, 1) == 1 << 4
    rig.sw(0, "ICC_SGI0R_EL1", sgi1r(3, targets=0x2))      # G0 SGI to a G1 SGI: dropped
    assert pending_sgis(rig, 1) == 1 << 4
    rig.sw(0, "ICC_ASGI1R_EL1", sgi1r(5, targets=0x2))     # other state's G1 -> G0 (DS)
    assert pending_sgis(rig, 1) == 1 << 4 | 1 << 5
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(3, targets=0x2))
    assert pending_sgis(rig, 1) == 1 << 4 | 1 << 5 | 1 << 3


def test_sgi_round_trip_ack_eoi_and_coalescing():
    rig = GicRig(2)
    rig.linux_setup()
    rig.rw(1, SGI + 0x0100, 0xFFFF)                       # enable SGIs on CPU 1
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(9, targets=0x2))
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(9, targets=0x2))      # coalesces
    assert rig.irq == [False, True]
    assert rig.sr(1, "ICC_IAR1_EL1") == 9
    assert rig.irq == [False, False]
    assert rig.sr(1, "ICC_IAR1_EL1") == 1023
    rig.sw(1, "ICC_EOIR1_EL1", 9)
    assert rig.rr(1, SGI + 0x0300) == 0 and rig.sr(1, "ICC_RPR_EL1") == 0xFF


# ---- priorities, PMR, preemption ------------------------------------------------------------------

def test_priority_order_and_lowest_intid_on_ties():
    rig = GicRig(1)
    rig.linux_setup(spis=(40, 35, 50), ppis=((0, 27),))
    for irq, p in ((40, 0x40), (35, 0x40), (50, 0x80)):
        rig.dw(0x0400 + irq, p, size=1)
    rig.rw(0, SGI + 0x0400 + 27, 0x40, size=1)
    rig.dw(0x0204, 1 << 8 | 1 << 3 | 1 << 18)            # pend 40, 35, 50
    rig.rw(0, SGI + 0x0200, 1 << 27)
    assert rig.sr(0, "ICC_HPPIR1_EL1") == 27
    order = []
    for _ in range(4):
        intid = rig.sr(0, "ICC_IAR1_EL1")
        assert intid != 1023                               # nothing preempts an equal group prio...
        order.append(intid)
        assert rig.sr(0, "ICC_IAR1_EL1") == 1023           # ...while it runs
        rig.sw(0, "ICC_EOIR1_EL1", intid)
    assert order == [27, 35, 40, 50]
    assert rig.sr(0, "ICC_IAR1_EL1") == 1023


def test_pmr_masks_but_hppir_does_not():
    rig = GicRig(1)
    rig.linux_setup(spis=(33,), prio=0x80)
    rig.spi_route(33, 0)
    rig.sw(0, "ICC_PMR_EL1", 0x80)
    rig.g.irq_line(1, 1)
    assert not rig.irq[0]
    assert rig.sr(0, "ICC_HPPIR1_EL1") == 33
    assert rig.sr(0, "ICC_IAR1_EL1") == 1023
    rig.sw(0, "ICC_PMR_EL1", 0x88)
    assert rig.irq[0]
    assert rig.sr(0, "ICC_IAR1_EL1") == 33


def test_priority_0xff_is_never_signalled():
    rig = GicRig(1)
    rig.linux_setup(spis=(33,), prio=0xFF)
    rig.g.irq_line(1, 1)
    assert rig.sr(0, "ICC_HPPIR1_EL1") == 1023 and not rig.irq[0]


@pytest.mark.parametrize("bpr1,preempts", [(3, True), (4, False)])
def test_preemption_follows_the_binary_point(bpr1, preempts):
    rig = GicRig(1)
    rig.linux_setup(spis=(40, 41))
    rig.dw(0x0400 + 40, 0x48, size=1)
    rig.dw(0x0400 + 41, 0x40, size=1)
    rig.sw(0, "ICC_BPR1_EL1", bpr1)
    rig.dw(0x0204, 1 << 8)
    assert rig.sr(0, "ICC_IAR1_EL1") == 40
    assert rig.sr(0, "ICC_RPR_EL1") == (0x48 if bpr1 == 3 else 0x40)
    rig.dw(0x0204, 1 << 9)
    assert rig.irq[0] is preempts
    assert rig.sr(0, "ICC_IAR1_EL1") == (41 if preempts else 1023)
    if preempts:                                          # nested: EOI inner then outer
        assert rig.sr(0, "ICC_AP1R0_EL1") == (1 << 9) | (1 << 8)
        rig.sw(0, "ICC_EOIR1_EL1", 41)
        assert rig.sr(0, "ICC_RPR_EL1") == 0x48
        rig.sw(0, "ICC_EOIR1_EL1", 40)
    assert rig.sr(0, "ICC_RPR_EL1") == (0xFF if preempts else 0x40)


def test_cbpr_uses_bpr0_for_group1_preemption():
    rig = GicRig(1)
    rig.linux_setup(spis=(40, 41))
    rig.dw(0x0400 + 40, 0x48, size=1)
    rig.dw(0x0400 + 41, 0x40, size=1)
    rig.sw(0, "ICC_BPR0_EL1", 3)                           # group prio bits [7:4]
    rig.sw(0, "ICC_CTLR_EL1", 1)
    rig.dw(0x0204, 1 << 8)
    assert rig.sr(0, "ICC_IAR1_EL1") == 40
    rig.dw(0x0204, 1 << 9)
    assert not rig.irq[0]


def test_group_enables_gate_delivery():
    rig = GicRig(1)
    rig.linux_setup(spis=(33,))
    rig.g.irq_line(1, 1)
    assert rig.irq[0]
    rig.sw(0, "ICC_IGRPEN1_EL1", 0)
    assert not rig.irq[0] and rig.sr(0, "ICC_HPPIR1_EL1") == 1023
    rig.sw(0, "ICC_IGRPEN1_EL1", 1)
    rig.dw(0, 0)                                           # GICD EnableGrp1 off
    assert not rig.irq[0] and rig.sr(0, "ICC_HPPIR1_EL1") == 1023
    rig.dw(0, 2)
    assert rig.irq[0]


def test_group0_is_fiq_not_irq():
    rig = GicRig(1)
    rig.dw(0, 0x1)                                        # EnableGrp0 only
    rig.dw(0x0104, 1 << 1)
    rig.sw(0, "ICC_PMR_EL1", 0xFF)
    rig.sw(0, "ICC_IGRPEN0_EL1", 1)
    rig.g.irq_line(1, 1)
    assert rig.fiq[0] and not rig.irq[0]
    assert rig.g.fiq_level(0) and not rig.g.irq_level(0)
    assert rig.sr(0, "ICC_HPPIR1_EL1") == 1023 and rig.sr(0, "ICC_IAR1_EL1") == 1023
    assert rig.sr(0, "ICC_HPPIR0_EL1") == 33
    assert rig.sr(0, "ICC_IAR0_EL1") == 33
    assert not rig.fiq[0] and rig.sr(0, "ICC_AP0R0_EL1") == 1
    rig.sw(0, "ICC_EOIR1_EL1", 33)                         # wrong group: ignored
    assert rig.sr(0, "ICC_RPR_EL1") == 0
    rig.sw(0, "ICC_EOIR0_EL1", 33)
    assert rig.sr(0, "ICC_RPR_EL1") == 0xFF and rig.dr(0x0304) == 0


# ---- ack / EOI / deactivate -------------------------------------------------------------------

def test_eoimode0_eoi_drops_and_deactivates():
    rig = GicRig(1)
    rig.linux_setup(spis=(45,))
    rig.dw(0x0204, 1 << 13)
    assert rig.sr(0, "ICC_IAR1_EL1") == 45
    assert rig.dr(0x0304) == 1 << 13 and rig.dr(0x0204) == 0
    assert rig.sr(0, "ICC_RPR_EL1") == 0xA0
    rig.sw(0, "ICC_EOIR1_EL1", 45)
    assert rig.dr(0x0304) == 0 and rig.sr(0, "ICC_RPR_EL1") == 0xFF


def test_eoimode1_eoi_drops_dir_deactivates():
    rig = GicRig(1)
    rig.linux_setup(spis=(45,))
    rig.sw(0, "ICC_CTLR_EL1", 2)
    rig.dw(0x0204, 1 << 13)
    assert rig.sr(0, "ICC_IAR1_EL1") == 45
    rig.sw(0, "ICC_EOIR1_EL1", 45)
    assert rig.sr(0, "ICC_RPR_EL1") == 0xFF and rig.dr(0x0304) == 1 << 13
    rig.dw(0x0204, 1 << 13)                               # pending again: active blocks it
    assert not rig.irq[0] and rig.dr(0x0204) == 1 << 13
    rig.sw(0, "ICC_DIR_EL1", 45)
    assert rig.dr(0x0304) == 0 and rig.irq[0]


def test_dir_ignored_with_eoimode0_and_eoi_without_active_logged():
    rig = GicRig(1)
    rig.linux_setup(spis=(45,))
    rig.dw(0x0304, 1 << 13)
    rig.sw(0, "ICC_DIR_EL1", 45)
    assert rig.dr(0x0304) == 1 << 13
    rig.sw(0, "ICC_EOIR1_EL1", 45)
    assert rig.dr(0x0304) == 1 << 13 and len(rig.errors) == 1
    rig.sw(0, "ICC_EOIR1_EL1", 1023)                      # spurious: silently ignored
    assert len(rig.errors) == 1


def test_ppi_via_ppi_line_level_sensitive():
    rig = GicRig(2)
    rig.linux_setup(ppis=((1, 27),))
    line = rig.g.ppi_line(1, 27)
    line(1)
    assert rig.irq == [False, True]
    assert rig.sr(1, "ICC_IAR1_EL1") == 27
    assert rig.rr(1, SGI + 0x0200) & 1 << 27                # level still high
    rig.sw(1, "ICC_EOIR1_EL1", 27)
    assert rig.irq[1]                                       # still asserted: pending again
    line(0)
    assert not rig.irq[1] and not rig.rr(1, SGI + 0x0200) & 1 << 27


# ---- SPIs through the host interface ----------------------------------------------------------

def test_level_spi_via_irq_line():
    rig = GicRig(1)
    rig.linux_setup(spis=(33,))
    rig.g.irq_line(1, 1)
    assert rig.irq[0] and rig.dr(0x0204) & 2
    assert rig.sr(0, "ICC_IAR1_EL1") == 33
    assert rig.dr(0x0204) & 2 and rig.dr(0x0304) & 2      # active + (level) pending
    rig.g.irq_line(1, 0)
    assert rig.dr(0x0204) == 0
    rig.sw(0, "ICC_EOIR1_EL1", 33)
    assert not rig.irq[0]
    rig.g.irq_line(1, 1)
    rig.dw(0x0284, 2)                                      # ICPENDR cannot clear a level
    assert rig.dr(0x0204) & 2 and rig.irq[0]


def test_edge_spi_via_irq_line():
    rig = GicRig(1)
    rig.linux_setup(spis=(33,))
    rig.dw(0x0C08, 1 << 3)                                # INTID 33 edge
    rig.g.irq_line(1, 1)
    rig.g.irq_line(1, 0)
    assert rig.dr(0x0204) == 2 and rig.irq[0]              # latched
    assert rig.sr(0, "ICC_IAR1_EL1") == 33
    assert rig.dr(0x0204) == 0
    rig.g.irq_line(1, 1)                                   # new edge while active
    rig.g.irq_line(1, 1)                                   # no edge: same level
    assert rig.dr(0x0204) == 2 and not rig.irq[0]
    rig.sw(0, "ICC_EOIR1_EL1", 33)
    assert rig.irq[0] and rig.sr(0, "ICC_IAR1_EL1") == 33
    rig.sw(0, "ICC_EOIR1_EL1", 33)
    assert not rig.irq[0]


def test_irouter_targets_by_affinity():
    rig = GicRig(20)
    rig.linux_setup(spis=(60,))
    rig.spi_route(60, 17)                                  # Aff1 = 1, Aff0 = 1
    rig.g.irq_line(28, 1)
    assert [i for i, v in enumerate(rig.irq) if v] == [17]
    assert rig.sr(0, "ICC_HPPIR1_EL1") == 1023
    rig.dw(0x6000 + 8 * 60, 0x0000_0305, size=8)           # nobody has 3.5: stays pending
    assert not any(rig.irq) and rig.dr(0x0204) & 1 << 28
    rig.dw(0x6000 + 8 * 60 + 4, 0)                         # (high half) still nobody
    rig.dw(0x6000 + 8 * 60, 0x0000_0003)                   # CPU 3
    assert [i for i, v in enumerate(rig.irq) if v] == [3]
    rig.dw(0x6000 + 8 * 60, 0x8000_0000 | 0x0000_0102)     # IRM set: affinity still decides
    assert [i for i, v in enumerate(rig.irq) if v] == [18]
    assert rig.sr(18, "ICC_IAR1_EL1") == 60


def test_ppi_and_spi_numbers_checked():
    rig = GicRig(2)
    for bad in (-1, 256, 1000):
        with pytest.raises(DeviceError) as e:
            rig.g.irq_line(bad, 1)
        assert e.value.errno_name == "EINVAL"
    for intid, cpu in ((15, 0), (32, 0), (27, 2), (27, -1)):
        with pytest.raises(DeviceError) as e:
            rig.g.irq_line(intid, 1, cpu=cpu)
        assert e.value.errno_name == "EINVAL"
    with pytest.raises(DeviceError):
        rig.g.ppi_line(0, 3)
    rig.g.irq_line(30, 1, cpu=1)
    assert rig.rr(1, SGI + 0x0200) == 1 << 30 and rig.rr(0, SGI + 0x0200) == 0


# ---- lifecycle ----------------------------------------------------------------------------------

def errno_of(fn, *a, **k):
    with pytest.raises(DeviceError) as e:
        fn(*a, **k)
    return e.value.errno_name


def test_lifecycle_errors():
    g = GicV3()
    assert errno_of(g.init, fake_cpus(2)) == "ENXIO"            # no addresses
    g.set_dist_addr(DIST)
    assert errno_of(g.set_dist_addr, DIST + 0x10_0000) == "EEXIST"
    assert errno_of(g.init, fake_cpus(2)) == "ENXIO"            # no redistributors
    g.add_redist_region(REDIST, 1)
    assert errno_of(g.init, fake_cpus(2)) == "ENXIO"            # one frame for two vCPUs
    assert errno_of(g.add_redist_region, REDIST + 0x8000, 1) == "EINVAL"   # misaligned
    assert errno_of(g.add_redist_region, DIST, 1) == "EINVAL"              # overlaps GICD
    assert errno_of(g.add_redist_region, REDIST + 0x2_0000, 0) == "EINVAL"
    for fn, args in ((g.mmio_windows, ()), (g.sysregs, (0,)), (g.connect, (0, print)),
                     (g.irq_line, (1, 1)), (g.irq_line, (27, 1, 0)), (g.ppi_line, (0, 27)),
                     (g.save_state, ())):
        assert errno_of(fn, *args) == "ENXIO"
    g.add_redist_region(REDIST + 0x2_0000, 1)
    g.init(fake_cpus(2))
    assert errno_of(g.init, fake_cpus(2)) == "EBUSY"
    assert errno_of(g.add_redist_region, REDIST_HIGH, 1) == "EBUSY"
    assert errno_of(g.sysregs, 2) == "EINVAL"
    assert [(n, b, s) for n, b, s, _ in g.mmio_windows()] == [
        ("gicv3-dist", DIST, 0x1_0000), ("gicv3-redist0", REDIST, 0x2_0000),
        ("gicv3-redist1", REDIST + 0x2_0000, 0x2_0000)]


def test_init_checks_vcpus():
    g = GicV3()
    g.set_dist_addr(DIST)
    g.add_redist_region(REDIST, 4)
    assert errno_of(g.init, []) == "EINVAL"
    assert errno_of(g.init, [SimpleNamespace(index=1, mpidr=0)]) == "EINVAL"
    assert errno_of(g.init, [SimpleNamespace(index=0, mpidr=0),
                             SimpleNamespace(index=1, mpidr=0)]) == "EINVAL"
    g.init(fake_cpus(2))                                        # still possible after failures


def test_redistributor_frames_without_a_vcpu_are_raz_wi():
    rig = GicRig(2, regions=[(REDIST, 4)])
    assert rig.rr(1, 0x0008, 8) & 0x10                     # Last on the last vCPU
    assert rig.rr(3, 0x0008, 8) == 0 and rig.errors
    rig.rw(2, 0x0014, 0)
    assert len(rig.errors) == 2


# ---- 512 vCPUs, two regions ---------------------------------------------------------------------

def test_512_vcpus_in_two_regions():
    rig = GicRig(512, regions=[(REDIST, 123), (REDIST_HIGH, 389)])
    assert [(b, s) for _, b, s, _ in rig.windows[1:]] == [(REDIST, 123 * 0x2_0000),
                                                          (REDIST_HIGH, 389 * 0x2_0000)]
    for cpu in (0, 122, 123, 300, 511):
        region, frame = (0, cpu) if cpu < 123 else (1, cpu - 123)
        t = rig.rr(frame, 0x0008, 8, region=region)
        assert t >> 32 == mpidr(cpu) & 0xFF_FFFF
        assert (t >> 8) & 0xFFFF == cpu
        assert bool(t & 0x10) == (cpu in (122, 511))
        assert t & 0x0300_0001 == 0x0100_0001
    rig.linux_setup(spis=(100,))
    rig.spi_route(100, 509)
    rig.g.irq_line(68, 1)
    assert [i for i, v in enumerate(rig.irq) if v] == [509]
    rig.rw(511 - 123, SGI + 0x0100, 0xFFFF, region=1)      # SGIs enabled on CPU 511
    rig.sw(0, "ICC_SGI1R_EL1", sgi1r(6, targets=1 << 15, aff1=31))
    assert [i for i, v in enumerate(rig.irq) if v] == [509, 511]
    assert rig.sr(511, "ICC_IAR1_EL1") == 6
    rig.sw(5, "ICC_SGI1R_EL1", sgi1r(1, irm=1))
    assert sum(bool(rig.rr(f, SGI + 0x0200, region=r) & 2)
               for r, n in ((0, 123), (1, 389)) for f in range(n)) == 511


# ---- save / load ----------------------------------------------------------------------------------

def test_save_load_mid_flow_pending_and_active():
    rig = GicRig(3)
    rig.linux_setup(spis=(40, 41), ppis=((1, 27),))
    rig.spi_route(40, 1)
    rig.spi_route(41, 1)
    rig.dw(0x0400 + 41, 0xB0, size=1)
    rig.sw(1, "ICC_CTLR_EL1", 2)                           # EOImode 1 on CPU 1
    rig.g.ppi_line(1, 27)(1)
    assert rig.sr(1, "ICC_IAR1_EL1") == 27                 # active (PPI)
    rig.g.irq_line(9, 1)                                   # 41 pending (level), masked by RPR
    rig.dw(0x0C08, 1 << 17)                                # 40 edge
    rig.g.irq_line(8, 1)                                   # 40 pending (latched)
    assert not rig.irq[1]
    before = json.loads(json.dumps(rig.g.save_state()))
    assert before["name"] == "gicv3" and before["version"] == 1

    other = GicRig(3)
    other.irq[1] = "stale"
    other.g.load_state({"gicv3": before})
    assert other.irq == [False, False, False]
    assert json.loads(json.dumps(other.g.save_state())) == before
    for r in (rig, other):
        assert r.sr(1, "ICC_RPR_EL1") == 0xA0
        r.sw(1, "ICC_EOIR1_EL1", 27)                       # drop only (EOImode 1)
        assert r.irq[1] and r.sr(1, "ICC_IAR1_EL1") == 40
        r.sw(1, "ICC_EOIR1_EL1", 40)
        r.sw(1, "ICC_DIR_EL1", 40)
        assert r.sr(1, "ICC_IAR1_EL1") == 41
        assert r.rr(1, SGI + 0x0300) == 1 << 27            # PPI still active until DIR
        r.sw(1, "ICC_DIR_EL1", 27)
        r.sw(1, "ICC_EOIR1_EL1", 41)
        assert r.sr(1, "ICC_RPR_EL1") == 0xFF
    assert rig.g.save_state() == other.g.save_state()


def test_load_state_rejects_mismatch_and_garbage():
    rig = GicRig(2)
    sec = rig.g.save_state()
    with pytest.raises(ConfigError):
        GicRig(3).g.load_state({"gicv3": sec})
    bad = json.loads(json.dumps(sec))
    bad["fields"]["dist"]["priority"][40] = 300
    with pytest.raises(ConfigError):
        GicRig(2).g.load_state({"gicv3": bad})
    bad = json.loads(json.dumps(sec))
    del bad["fields"]["cpuif"][1]["pmr"]
    with pytest.raises(ConfigError):
        GicRig(2).g.load_state({"gicv3": bad})
    with pytest.raises(ConfigError):
        GicRig(2).g.load_state({})


def test_reset_returns_to_reset_state_and_lowers_lines():
    rig = GicRig(2)
    rig.linux_setup(spis=(33,))
    rig.g.irq_line(1, 1)
    assert rig.irq[0]
    fresh = GicRig(2).g.save_state()
    rig.g.reset()
    assert not rig.irq[0]
    assert rig.g.save_state() == fresh

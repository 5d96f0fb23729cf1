"""The CPU interface (ICC_*_EL1 system registers, QEMU arm_gicv3_cpuif.c):
priority mask and binary points, preemption, acknowledge / EOI / deactivate,
SGI generation, and the IRQ/FIQ outputs (Group 1 NS -> IRQ, Group 0 -> FIQ,
QEMU gicv3_cpuif_update)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...regs import SysReg, SysRegBank
from ...state import Field, U32
from .common import (APR_SHIFT, FULLPRIO_MASK, G0, G1NS, G1S, GIC_INTERNAL, ICC_CTLR_CBPR,
                     ICC_CTLR_EOIMODE, ICC_CTLR_RESET, ICC_CTLR_WRITABLE, ICC_SRE_VALUE,
                     INTID_SPURIOUS, LPI_INTID_START, MASK32, MIN_BPR0, MIN_BPR1, NUM_IRQ, CpuState,
                     bits)

if TYPE_CHECKING:
    from .common import GicCore


class CpuInterface:
    """Every vCPU's CPU interface; a register access's context is the vCPU's
    CpuState, whose HPPI cache the GIC keeps current."""

    __slots__ = ("gic", "sgi_clusters")

    def __init__(self, gic: "GicCore"):
        self.gic = gic
        self.sgi_clusters: dict[int, list[int]] = {}   # Aff3.Aff2.Aff1 -> 16 x vCPU (-1)

    @staticmethod
    def reset(cs: CpuState) -> None:
        """QEMU icc_reset (the CPU interface is in the CPU's reset domain):
        the ICC_* table's reset column."""
        ICC_BANK.reset(cs)

    # ---- outputs and preemption --------------------------------------------------------------------
    def update(self, cs: CpuState) -> None:
        """QEMU gicv3_cpuif_update: Group 0 -> FIQ, Group 1 NS -> IRQ."""
        irq = fiq = False
        if self.hppi_can_preempt(cs):
            if cs.hppi_grp == G0:
                fiq = True
            else:
                irq = True
        if fiq != cs.fiq_level:
            cs.fiq_level = fiq
            cs.fiq_out(fiq)
        if irq != cs.irq_level:
            cs.irq_level = irq
            cs.irq_out(irq)

    @staticmethod
    def _no_enabled_hppi(cs: CpuState) -> bool:
        """Nothing pending, or the HPPI's group disabled in ICC_IGRPEN<n>."""
        if cs.hppi_prio == 0xFF:
            return True
        return not (cs.igrpen0 if cs.hppi_grp == G0 else cs.igrpen1)

    @staticmethod
    def _highest_active_prio(cs: CpuState) -> int:
        """Running priority from the active-priority bits (0xFF: idle)."""
        apr = cs.ap0r0 | cs.ap1r0
        if not apr:
            return 0xFF
        return ((apr & -apr).bit_length() - 1) << APR_SHIFT

    @staticmethod
    def _gprio_mask(cs: CpuState, grp: int) -> int:
        """Group-priority mask from the binary point (QEMU icc_gprio_mask):
        BPR0 = n keeps bits [7:n+1], BPR1 = n keeps bits [7:n]; CBPR makes
        group 1 use BPR0. (A BPR1 of 0, reachable by writing 8, keeps all bits;
        QEMU would assert there.)"""
        if grp == G1NS and cs.icc_ctlr & ICC_CTLR_CBPR:
            grp = G0
        if grp == G0:
            bpr = cs.bpr0 & 7
        else:
            bpr = max((cs.bpr1 & 7) - 1, -1)
        return (0xFF << (bpr + 1)) & 0xFF if bpr >= 0 else 0xFF

    def hppi_can_preempt(self, cs: CpuState) -> bool:
        """QEMU icc_hppi_can_preempt: enabled, below PMR, and its group
        priority beats the running priority."""
        if self._no_enabled_hppi(cs):
            return False
        if cs.hppi_prio >= cs.pmr:
            return False
        rprio = self._highest_active_prio(cs)
        if rprio == 0xFF:
            return True
        mask = self._gprio_mask(cs, cs.hppi_grp)
        return (cs.hppi_prio & mask) < (rprio & mask)

    # ---- acknowledge, priority drop, deactivate -----------------------------------------------------
    def _activate(self, cs: CpuState, irq: int) -> None:
        """QEMU icc_activate_irq: set the active-priority bit, pending -> active."""
        prio = cs.hppi_prio & self._gprio_mask(cs, cs.hppi_grp)
        bit = 1 << (prio >> APR_SHIFT)
        if cs.hppi_grp == G0:
            cs.ap0r0 |= bit
        else:
            cs.ap1r0 |= bit
        gic = self.gic
        if irq >= LPI_INTID_START:
            # No active state: acknowledging clears pending (in the set and the
            # pending table), QEMU icc_activate_irq -> gicv3_redist_lpi_pending(0).
            gic.redist.lpi_set_pending(cs, irq, False)
            gic.update_cpu(cs)
        elif irq < GIC_INTERNAL:
            cs.active |= 1 << irq
            cs.pending &= ~(1 << irq)
            gic.update_cpu(cs)
        else:
            dist = gic.dist
            dist.active |= 1 << irq
            dist.pending &= ~(1 << irq)
            dist.update_spis(1 << irq)
            if dist.target[irq] != cs.index:
                gic.update_cpu(cs)

    def _deactivate(self, cs: CpuState, irq: int) -> None:
        """QEMU icc_deactivate_irq: SGI/PPI on this vCPU, SPI in the distributor."""
        if irq < GIC_INTERNAL:
            cs.active &= ~(1 << irq)
            self.gic.update_cpu(cs)
        elif irq < NUM_IRQ:
            dist = self.gic.dist
            dist.active &= ~(1 << irq)
            dist.update_spis(1 << irq)

    @staticmethod
    def _highest_active_group(cs: CpuState) -> int:
        """The group owning the lowest set active-priority bit (G0 on a tie), -1 if none."""
        g0 = (cs.ap0r0 & -cs.ap0r0).bit_length() - 1 if cs.ap0r0 else 32
        g1 = (cs.ap1r0 & -cs.ap1r0).bit_length() - 1 if cs.ap1r0 else 32
        if g1 < g0:
            return G1NS
        if g0 < 32:
            return G0
        return -1

    def _drop_prio(self, cs: CpuState, grp: int) -> None:
        if grp == G0:
            cs.ap0r0 &= cs.ap0r0 - 1
        else:
            cs.ap1r0 &= cs.ap1r0 - 1
        self.update(cs)

    def _hppir(self, cs: CpuState, grp: int) -> int:
        """The HPPI if it is of group `grp` (G0 or G1NS) and enabled, else spurious."""
        if self._no_enabled_hppi(cs) or (cs.hppi_grp == G0) != (grp == G0):
            return INTID_SPURIOUS
        return cs.hppi_irq

    def _iar(self, cs: CpuState, grp: int) -> int:
        intid = self._hppir(cs, grp) if self.hppi_can_preempt(cs) else INTID_SPURIOUS
        if intid < 1020 or intid >= LPI_INTID_START:     # not a special INTID
            self._activate(cs, intid)
        return intid

    def _eoir(self, cs: CpuState, v: int, grp: int) -> None:
        """QEMU icc_eoir_write: drop the running priority of `grp` if it owns
        the highest active priority; deactivate too unless EOImode = 1."""
        irq = v & 0xFF_FFFF
        if irq >= NUM_IRQ and irq < LPI_INTID_START:
            return                                     # spurious IDs, nonexistent INTIDs
        active = self._highest_active_group(cs)
        if active < 0:
            self.gic.guest_error("GICv3: EOI with no active interrupt", cpu=cs.index, intid=irq)
            return
        if active != grp:
            return
        self._drop_prio(cs, grp)
        if not cs.icc_ctlr & ICC_CTLR_EOIMODE:
            self._deactivate(cs, irq)                  # (LPIs have no active state)

    # ---- SGI generation -----------------------------------------------------------------------------
    def _generate_sgi(self, src: CpuState, v: int, grp: int) -> None:
        """ICC_SGI1R layout: TargetList [15:0] (bit = Aff0), Aff1 [23:16],
        INTID [27:24], Aff2 [39:32], IRM [40] (all but self), Aff3 [55:48];
        RS [47:44] is ignored as by QEMU (Aff0 > 15 cannot be targeted)."""
        if grp == G1S:
            grp = G0
        irq = (v >> 24) & 0xF
        cpus = self.gic.cpus
        if (v >> 40) & 1:
            targets = [cs for cs in cpus if cs is not src]
        else:
            cluster = self.sgi_clusters.get(((v >> 48) & 0xFF) << 16 | ((v >> 32) & 0xFF) << 8
                                            | ((v >> 16) & 0xFF))
            if cluster is None:
                return
            targets = [cpus[cluster[a0]] for a0 in bits(v & 0xFFFF) if cluster[a0] >= 0]
        gic = self.gic
        for cs in targets:
            # QEMU gicv3_redist_send_sgi: the SGI must be of the requested group
            # at the target, otherwise it is dropped.
            if gic.irq_group(cs, irq) != grp:
                continue
            cs.pending |= 1 << irq
            gic.update_cpu(cs)

    # ---- registers (SysReg handlers: read(self, cs), write(self, cs, v)) ------------------------------
    def read_pmr(self, cs: CpuState) -> int:
        return cs.pmr

    def write_pmr(self, cs: CpuState, v: int) -> None:
        cs.pmr = v & FULLPRIO_MASK
        self.update(cs)

    def read_iar0(self, cs: CpuState) -> int:
        return self._iar(cs, G0)

    def read_iar1(self, cs: CpuState) -> int:
        return self._iar(cs, G1NS)

    def read_hppir0(self, cs: CpuState) -> int:
        return self._hppir(cs, G0)

    def read_hppir1(self, cs: CpuState) -> int:
        return self._hppir(cs, G1NS)

    def write_eoir0(self, cs: CpuState, v: int) -> None:
        self._eoir(cs, v, G0)

    def write_eoir1(self, cs: CpuState, v: int) -> None:
        self._eoir(cs, v, G1NS)

    def write_dir(self, cs: CpuState, v: int) -> None:
        """Deactivate (only with EOImode = 1; any group may be deactivated from
        NS EL1 when DS = 1 and there is no EL2/EL3)."""
        irq = v & 0xFF_FFFF
        if irq >= NUM_IRQ or not cs.icc_ctlr & ICC_CTLR_EOIMODE:
            return
        self._deactivate(cs, irq)

    def read_rpr(self, cs: CpuState) -> int:
        return self._highest_active_prio(cs)

    def read_bpr0(self, cs: CpuState) -> int:
        return cs.bpr0

    def write_bpr0(self, cs: CpuState, v: int) -> None:
        cs.bpr0 = max(v, MIN_BPR0) & 7
        self.update(cs)

    def read_bpr1(self, cs: CpuState) -> int:
        if cs.icc_ctlr & ICC_CTLR_CBPR:
            return min(cs.bpr0 + 1, 7)
        return cs.bpr1

    def write_bpr1(self, cs: CpuState, v: int) -> None:
        if cs.icc_ctlr & ICC_CTLR_CBPR:
            return                                     # CBPR: BPR1 writes ignored
        cs.bpr1 = max(v, MIN_BPR1) & 7
        self.update(cs)

    def read_ap0r0(self, cs: CpuState) -> int:
        return cs.ap0r0

    def write_ap0r0(self, cs: CpuState, v: int) -> None:
        cs.ap0r0 = v & MASK32
        self.update(cs)

    def read_ap1r0(self, cs: CpuState) -> int:
        return cs.ap1r0

    def write_ap1r0(self, cs: CpuState, v: int) -> None:
        cs.ap1r0 = v & MASK32
        self.update(cs)

    def read_ctlr(self, cs: CpuState) -> int:
        return cs.icc_ctlr

    def write_ctlr(self, cs: CpuState, v: int) -> None:
        cs.icc_ctlr = (cs.icc_ctlr & ~ICC_CTLR_WRITABLE) | (v & ICC_CTLR_WRITABLE)
        self.update(cs)

    def read_sre(self, cs: CpuState) -> int:
        return ICC_SRE_VALUE

    def write_sre(self, cs: CpuState, v: int) -> None:
        """SRE, DFB, DIB are RAO/WI."""

    def read_igrpen0(self, cs: CpuState) -> int:
        return cs.igrpen0

    def write_igrpen0(self, cs: CpuState, v: int) -> None:
        cs.igrpen0 = v & 1
        self.update(cs)

    def read_igrpen1(self, cs: CpuState) -> int:
        return cs.igrpen1

    def write_igrpen1(self, cs: CpuState, v: int) -> None:
        cs.igrpen1 = v & 1
        self.update(cs)

    def write_sgi1r(self, cs: CpuState, v: int) -> None:
        self._generate_sgi(cs, v, G1NS)

    def write_asgi1r(self, cs: CpuState, v: int) -> None:
        # Group 1 of the other security state = Secure Group 1, which DS = 1
        # turns into Group 0 (QEMU icc_generate_sgi).
        self._generate_sgi(cs, v, G1S)

    def write_sgi0r(self, cs: CpuState, v: int) -> None:
        self._generate_sgi(cs, v, G0)


C = CpuInterface
# The EL1 CPU interface (GIC spec 12.2). Only AP0R0/AP1R0 exist (5 preemption
# bits: one APR each); EL2/EL3 registers (ICC_SRE_EL2, ICC_CTLR_EL3, ...) are
# not offered: the guest runs at EL1 only, where they are UNDEFINED. The reset
# of RPR (idle) and SRE (RAO/WI) is what they read, not stored state.
ICC_REGS: tuple[SysReg, ...] = (
    SysReg("ICC_PMR_EL1", (3, 0, 4, 6, 0), C.read_pmr, C.write_pmr, 0, "pmr"),
    SysReg("ICC_IAR0_EL1", (3, 0, 12, 8, 0), C.read_iar0, None, side_effects=True),
    SysReg("ICC_EOIR0_EL1", (3, 0, 12, 8, 1), None, C.write_eoir0),
    SysReg("ICC_HPPIR0_EL1", (3, 0, 12, 8, 2), C.read_hppir0, None),
    SysReg("ICC_BPR0_EL1", (3, 0, 12, 8, 3), C.read_bpr0, C.write_bpr0, MIN_BPR0, "bpr0"),
    SysReg("ICC_AP0R0_EL1", (3, 0, 12, 8, 4), C.read_ap0r0, C.write_ap0r0, 0, "ap0r0"),
    SysReg("ICC_AP1R0_EL1", (3, 0, 12, 9, 0), C.read_ap1r0, C.write_ap1r0, 0, "ap1r0"),
    SysReg("ICC_DIR_EL1", (3, 0, 12, 11, 1), None, C.write_dir),
    SysReg("ICC_RPR_EL1", (3, 0, 12, 11, 3), C.read_rpr, None, 0xFF),
    SysReg("ICC_SGI1R_EL1", (3, 0, 12, 11, 5), None, C.write_sgi1r),
    SysReg("ICC_ASGI1R_EL1", (3, 0, 12, 11, 6), None, C.write_asgi1r),
    SysReg("ICC_SGI0R_EL1", (3, 0, 12, 11, 7), None, C.write_sgi0r),
    SysReg("ICC_IAR1_EL1", (3, 0, 12, 12, 0), C.read_iar1, None, side_effects=True),
    SysReg("ICC_EOIR1_EL1", (3, 0, 12, 12, 1), None, C.write_eoir1),
    SysReg("ICC_HPPIR1_EL1", (3, 0, 12, 12, 2), C.read_hppir1, None),
    SysReg("ICC_BPR1_EL1", (3, 0, 12, 12, 3), C.read_bpr1, C.write_bpr1, MIN_BPR1, "bpr1"),
    SysReg("ICC_CTLR_EL1", (3, 0, 12, 12, 4), C.read_ctlr, C.write_ctlr, ICC_CTLR_RESET, "icc_ctlr"),
    SysReg("ICC_SRE_EL1", (3, 0, 12, 12, 5), C.read_sre, C.write_sre, ICC_SRE_VALUE),
    SysReg("ICC_IGRPEN0_EL1", (3, 0, 12, 12, 6), C.read_igrpen0, C.write_igrpen0, 0, "igrpen0"),
    SysReg("ICC_IGRPEN1_EL1", (3, 0, 12, 12, 7), C.read_igrpen1, C.write_igrpen1, 0, "igrpen1"),
)
ICC_BANK = SysRegBank("GICv3 ICC", ICC_REGS)
del C

# ---- migration: the per-vCPU CPU interface record of section "gicv3" --------------------------------
CPUIF_FIELDS: tuple[Field, ...] = tuple(
    Field(name, U32) for name in ("icc_ctlr", "pmr", "bpr0", "bpr1", "ap0r0", "ap1r0",
                                  "igrpen0", "igrpen1"))

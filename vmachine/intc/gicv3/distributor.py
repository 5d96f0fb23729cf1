"""The distributor (GICD, QEMU arm_gicv3_dist.c): SPI state, routing by
GICD_IROUTER and the 64 KiB register frame.

State: one Python int per bitmap (bit n = INTID n; bits 0..31 are always 0:
with ARE = 1 SGIs/PPIs live in the redistributors), a bytearray of
priorities and the IROUTER words. Each SPI's target vCPU is cached
(QEMU gicv3_cache_target_cpustate) with, per vCPU, the bitmap of SPIs routed
to it, so a line change re-evaluates only the vCPU it can affect.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...regs import WIDTHS_32, WIDTHS_64, WIDTHS_BYTE, Register, RegisterBank, deposit, extract, raz, wi
from ...state import Array, Bitmap, Bytes, Field, U32, U64
from .common import (GIC_INTERNAL, GICD_CTLR_EN_GRP0, GICD_CTLR_EN_GRP1NS, GICD_CTLR_RESET,
                     GICD_CTLR_WRITABLE, GICD_TYPER_VALUE, GIC_IIDR, IDREGS_LENGTH, IDREGS_OFFSET,
                     MASK64, NUM_IRQ, PIDR0_DIST, SPI_ALL, bits, idreg, read_iidr, ro_write)
from .irqregs import (IrqFrame, IrqRegister, bitmap_registers, config_register, priority_register,
                      reset_irq_state, set_line)

if TYPE_CHECKING:
    from .common import GicCore


class Distributor:
    """GICD: SPIs 32..287, their routing, and the register frame (this object
    is the MMIO window)."""

    __slots__ = ("gic", "guest_error", "ctlr", "group", "enabled", "pending", "active", "level",
                 "edge_trigger", "priority", "irouter", "target", "spi_mask", "cpu_of_affinity",
                 "eligible", "bank")

    def __init__(self, gic: "GicCore"):
        self.gic = gic
        self.guest_error = gic.guest_error
        self.ctlr = self.group = self.enabled = self.pending = self.active = 0   # until reset()
        self.level = self.edge_trigger = 0
        self.priority = bytearray(NUM_IRQ)
        self.irouter = [0] * NUM_IRQ
        self.target = [-1] * NUM_IRQ
        self.spi_mask: list[int] = []                  # per vCPU: SPIs routed to it
        self.cpu_of_affinity: dict[int, int] = {}      # Aff3.Aff2.Aff1.Aff0 -> vCPU
        self.eligible = 0                              # SPIs that may be signalled
        self.bank = RegisterBank("GICv3 GICD", GICD_REGS, gic.guest_error)
        self.reset()

    def reset(self) -> None:
        """The register tables' reset; line levels (no register) go low."""
        self.bank.reset(self)
        reset_irq_state(GICD_IRQ, GICD_REGS, self)
        self.level = 0
        self.eligible = 0

    # ---- the MMIO window ------------------------------------------------------------------------
    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        return self.bank.read(self, None, offset, size, cpu)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        self.bank.write(self, None, offset, size, value, cpu)

    # ---- routing and eligibility ------------------------------------------------------------------
    def retarget_all(self) -> None:
        self.spi_mask = [0] * len(self.gic.cpus)
        for irq in range(GIC_INTERNAL, NUM_IRQ):
            self.target[irq] = -1
            self.route(irq)

    def route(self, irq: int) -> int:
        """QEMU gicv3_cache_target_cpustate: IROUTER Aff3.Aff2.Aff1.Aff0 names
        the target (IRM is not acted on: the affinity decides); no match =
        no target (the SPI stays pending). Returns the old target."""
        old = self.target[irq]
        r = self.irouter[irq]
        new = self.cpu_of_affinity.get(((r >> 32) & 0xFF) << 24 | (r & 0xFF_FFFF), -1)
        if old != new:
            if old >= 0:
                self.spi_mask[old] &= ~(1 << irq)
            if new >= 0:
                self.spi_mask[new] |= 1 << irq
            self.target[irq] = new
        return old

    def refresh(self) -> None:
        """SPIs that may be signalled: (latch | level-sensitive line) & enabled
        & !active & group enabled in GICD_CTLR (QEMU gicd_int_pending)."""
        grpmask = 0
        if self.ctlr & GICD_CTLR_EN_GRP1NS:
            grpmask |= self.group
        if self.ctlr & GICD_CTLR_EN_GRP0:
            grpmask |= ~self.group & SPI_ALL
        self.eligible = ((self.pending | (self.level & ~self.edge_trigger)) & self.enabled
                         & ~self.active & grpmask)

    def update_spis(self, mask: int) -> None:
        """Distributor state changed for the SPIs in `mask`: refresh their
        targets (lowest vCPU first)."""
        self.refresh()
        mask &= SPI_ALL
        gic = self.gic
        if not mask & (mask - 1):                      # one SPI (or none): the common case
            t = self.target[mask.bit_length() - 1] if mask else -1
            if t >= 0:
                gic.update_cpu(gic.cpus[t])
            return
        targets = {self.target[i] for i in bits(mask)}
        targets.discard(-1)
        for t in sorted(targets):
            gic.update_cpu(gic.cpus[t])

    def set_irq(self, irq: int, level: bool) -> None:
        """An SPI line (QEMU gicv3_dist_set_irq)."""
        if set_line(self, irq, level):
            self.update_spis(1 << irq)

    # ---- registers --------------------------------------------------------------------------------
    def read_ctlr(self, ctx: None, rel: int, size: int) -> int:
        return self.ctlr

    def write_ctlr(self, ctx: None, rel: int, size: int, v: int) -> None:
        self.ctlr = (self.ctlr & ~GICD_CTLR_WRITABLE) | (v & GICD_CTLR_WRITABLE)
        self.refresh()
        self.gic.update_all()

    def read_typer(self, ctx: None, rel: int, size: int) -> int:
        return GICD_TYPER_VALUE

    def read_sgir(self, ctx: None, rel: int, size: int) -> int:
        self.guest_error("GICv3: read of write-only GICD_SGIR")
        return 0

    def read_irouter(self, ctx: None, rel: int, size: int) -> int:
        irq = rel // 8
        r = self.irouter[irq] if GIC_INTERNAL <= irq < NUM_IRQ else 0
        return extract(r, rel & 7, size)

    def write_irouter(self, ctx: None, rel: int, size: int, v: int) -> None:
        """Stored as written (QEMU); the old and the new target re-evaluate."""
        irq = rel // 8
        if not GIC_INTERNAL <= irq < NUM_IRQ:
            return
        self.irouter[irq] = deposit(self.irouter[irq], rel & 7, size, v) & MASK64
        old = self.route(irq)
        self.update_spis(1 << irq)
        if old >= 0 and old != self.target[irq]:
            self.gic.update_cpu(self.gic.cpus[old])


def _store_irouter(d: Distributor, irq: int, v: int) -> None:
    d.irouter[irq] = v


def _spis_changed(d: Distributor, ctx: None, mask: int) -> None:
    d.update_spis(mask)


def _config_changed(d: Distributor, ctx: None) -> None:
    # QEMU re-evaluates nothing on an ICFGR write (the next event does); only
    # the eligibility bitmap used by that next evaluation is refreshed.
    d.refresh()


# INTIDs 0..31 (word 0 of each bitmap, IPRIORITYR0-7, ICFGR0-1, IROUTER0-31)
# and >= 288 are RAZ/WI: with ARE = 1 SGIs/PPIs live in the redistributors.
GICD_IRQ = IrqFrame(lo=GIC_INTERNAL, hi=NUM_IRQ, cfg_lo=GIC_INTERNAL, per_cpu=False,
                    changed=_spis_changed, config_changed=_config_changed)

# The distributor frame (GIC spec 12.9; QEMU gicv3_dist_read/write).
GICD_REGS: tuple[Register, ...] = (
    Register("GICD_CTLR", 0x0000, Distributor.read_ctlr, Distributor.write_ctlr, length=4,
             reset=GICD_CTLR_RESET, field="ctlr"),
    Register("GICD_TYPER", 0x0004, Distributor.read_typer, ro_write, length=4,
             reset=GICD_TYPER_VALUE),
    Register("GICD_IIDR", 0x0008, read_iidr, ro_write, length=4, reset=GIC_IIDR),
    # 0x000C GICD_TYPER2 is reserved in QEMU 7.2: logged, RAZ/WI (RegisterBank).
    Register("GICD_STATUSR", 0x0010, raz, wi, length=4, reset=0),
    # 0x0040..0x0058 SETSPI/CLRSPI: reserved (TYPER.MBIS = 0): logged RAZ/WI.
    *bitmap_registers(GICD_IRQ, "GICD", 0x0080, 0x80, "<n>"),
    priority_register(GICD_IRQ, "GICD_IPRIORITYR<n>", 0x0400, 0x400),
    Register("GICD_ITARGETSR<n>", 0x0800, raz, wi, WIDTHS_BYTE, 0x400, reset=0),
    config_register(GICD_IRQ, "GICD_ICFGR<n>", 0x0C00, 0x100),
    Register("GICD_IGRPMODR<n>", 0x0D00, raz, wi, WIDTHS_32, 0x100, reset=0),
    Register("GICD_NSACR<n>", 0x0E00, raz, wi, WIDTHS_32, 0x100, reset=0),
    Register("GICD_SGIR", 0x0F00, Distributor.read_sgir, wi, length=4, reset=0,
             side_effects=True),                  # the read is a logged guest error
    Register("GICD_CPENDSGIR<n>", 0x0F10, raz, wi, WIDTHS_BYTE, 0x10, reset=0),
    Register("GICD_SPENDSGIR<n>", 0x0F20, raz, wi, WIDTHS_BYTE, 0x10, reset=0),
    IrqRegister("GICD_IROUTER<n>", 0x6000, Distributor.read_irouter, Distributor.write_irouter,
                WIDTHS_64, 0x1FE0, reset=0, bits=64, store=_store_irouter),
    Register("GICD_PIDR4..CIDR3", IDREGS_OFFSET, idreg(PIDR0_DIST), ro_write, length=IDREGS_LENGTH),
)


# ---- migration: the distributor record of section "gicv3" -------------------------------------------
def _put_ctlr(d: Distributor, v: int) -> None:
    d.ctlr = (v & GICD_CTLR_WRITABLE) | GICD_CTLR_RESET


def _spi_bitmap(name: str) -> Field:
    """An SPI bitmap as 9 words for INTIDs 0..287 (bits 0..31 load as 0)."""
    return Field(name, Bitmap(NUM_IRQ), put_fn=lambda d, v: setattr(d, name, v & SPI_ALL))


def _put_priority(d: Distributor, v: bytes) -> None:
    d.priority[:] = v


def _put_irouter(d: Distributor, v: list[int]) -> None:
    d.irouter[:] = v


DIST_FIELDS: tuple[Field, ...] = (
    Field("ctlr", U32, put_fn=_put_ctlr),
    _spi_bitmap("group"), _spi_bitmap("enabled"), _spi_bitmap("pending"),
    _spi_bitmap("active"), _spi_bitmap("level"), _spi_bitmap("edge_trigger"),
    Field("priority", Bytes(NUM_IRQ), put_fn=_put_priority),
    Field("irouter", Array(U64, NUM_IRQ), put_fn=_put_irouter),
)

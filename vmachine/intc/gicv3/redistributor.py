"""The redistributors (GICR, QEMU arm_gicv3_redist.c): each vCPU's SGI/PPI
state, GICR_* registers and LPIs, and the regions of RD_base + SGI_base frame
pairs that map them.

LPIs (QEMU 7.2, with a pending set instead of rescans): each redistributor
keeps its pending LPIs in `lpi_pending` and writes every change through to
its pending table in guest RAM (bit INTID % 8 of byte INTID / 8 at
PENDBASER.PA), so RAM always shows the state the architecture says it holds.
The config byte is read from the property table (PROPBASER.PA + INTID -
8192) when an LPI becomes pending and again on INV/INVALL/EnableLPIs (what
QEMU's rescans pick up); the pending table itself is read only when
EnableLPIs is written with 1. A table address outside RAM is a logged guest
error: a config byte reads as 0 (disabled), a pending bit that cannot be
written is dropped.

INV and INVALL cost what changed, not what exists (a queue of INVALLs with
tens of thousands of LPIs pending must not stall the host): INVALL compares
the property table with the copy the previous INVALL kept (one bytes
comparison) and re-reads only the pending LPIs whose byte changed or whose
config was read since (`lpi_fresh`). The copy is a host-side cache, not
state: the first INVALL after EnableLPIs, a PROPBASER.PA change or a restore
examines every pending LPI once. The highest pending LPI comes from a heap
of (priority, INTID) whose stale entries are dropped when they reach the
top, so an acknowledge, a CLEAR or a worse config of the highest LPI costs
O(log n), not a scan of every pending LPI.
"""
from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from ...regs import WIDTHS_64, Register, RegisterBank, deposit, extract, raz, wi
from ...state import Array, Bytes, Field, StateError, U16, U32, U64
from .common import (GIC_INTERNAL, GICD_TYPER_IDBITS, GICR_CTLR_ENABLE_LPIS, GICR_CTLR_RESET,
                     GICR_ICFGR0_RESET, GICR_ICFGR1_RESET, GICR_WAKER_CHILDREN_ASLEEP,
                     GICR_WAKER_PROCESSOR_SLEEP, GICR_WAKER_RESET, GIC_IIDR, IDREGS_LENGTH,
                     IDREGS_OFFSET, INTID_SPURIOUS, LPI_CFG_ENABLE, LPI_INTID_START,
                     LPI_PRIORITY_MASK, PENDBASER_PA_MASK, PIDR0_REDIST, PROPBASER_IDBITS_MASK,
                     PROPBASER_PA_MASK, REDIST_FRAME_SHIFT, REDIST_FRAME_SIZE, SGI_OFFSET, CpuState,
                     idreg, read_iidr, ro_write)
from .irqregs import (IrqFrame, bitmap_registers, config_register, priority_register,
                      reset_irq_state, set_line)

if TYPE_CHECKING:
    from .common import GicCore


# property-table bytes of INTIDs 8192..65535
PROP_SPAN = (1 << (GICD_TYPER_IDBITS + 1)) - LPI_INTID_START
_BLOCK = 256


def lpi_heap_rebuild(cs: CpuState) -> None:
    """The heap from lpi_cfg alone (after a reload, a restore, or when stale
    entries outnumber live ones)."""
    cs.lpi_heap = [(c & LPI_PRIORITY_MASK, irq) for irq, c in cs.lpi_cfg.items()
                   if c & LPI_CFG_ENABLE]
    heapq.heapify(cs.lpi_heap)


def lpi_heap_push(cs: CpuState, irq: int, c: int) -> None:
    """An LPI became pending or its config changed: a new heap entry (the
    old one, if any, goes stale); compacted when mostly stale."""
    if c & LPI_CFG_ENABLE:
        heapq.heappush(cs.lpi_heap, (c & LPI_PRIORITY_MASK, irq))
        if len(cs.lpi_heap) > 2 * len(cs.lpi_cfg) + 64:
            lpi_heap_rebuild(cs)


def forget_prop_copy(cs: CpuState) -> None:
    """Drop INVALL's copy of the property table (its LPI configs no longer
    match it): the next INVALL examines every pending LPI."""
    cs.lpi_prop_key, cs.lpi_prop_seen, cs.lpi_fresh = None, b"", set()


def changed_offsets(old: bytes, new: bytes) -> list[int]:
    """Offsets at which two equal-length byte strings differ: one comparison
    when equal, then per 256-byte block, bytes only in differing blocks."""
    if old == new:
        return []
    out: list[int] = []
    for b in range(0, len(new), _BLOCK):
        if old[b:b + _BLOCK] != new[b:b + _BLOCK]:
            out.extend(i for i in range(b, min(b + _BLOCK, len(new))) if old[i] != new[i])
    return out


class Redistributor:
    """Every vCPU's redistributor; a register access's context is the
    CpuState of the frame's vCPU."""

    __slots__ = ("gic", "guest_error", "bank", "inv_work")

    def __init__(self, gic: "GicCore"):
        self.gic = gic
        self.guest_error = gic.guest_error
        self.bank = RegisterBank("GICv3 GICR", GICR_REGS, gic.guest_error)
        # LPIs whose config INV/INVALL examined one by one: a work count for
        # tests and tools/its_queue_repro.py (host-side, never guest-visible).
        self.inv_work = 0

    def reset(self, cs: CpuState) -> None:
        """The register tables' reset (QEMU arm_gicv3_common_reset, per CPU);
        line levels and LPI state (no register) are cleared."""
        self.bank.reset(cs)
        reset_irq_state(GICR_IRQ, GICR_REGS, cs)
        cs.level = 0
        cs.lpi_pending = set()
        cs.lpi_cfg = {}
        cs.lpi_heap = []
        cs.hpplpi_irq, cs.hpplpi_prio = INTID_SPURIOUS, 0xFF
        forget_prop_copy(cs)

    def set_irq(self, cs: CpuState, irq: int, level: bool) -> None:
        """A PPI line (QEMU gicv3_redist_set_irq)."""
        if set_line(cs, irq, level):
            self.gic.update_cpu(cs)

    # ---- RD_base registers ------------------------------------------------------------------------
    def read_ctlr(self, cs: CpuState, rel: int, size: int) -> int:
        return cs.gicr_ctlr

    def write_ctlr(self, cs: CpuState, rel: int, size: int, v: int) -> None:
        if v & GICR_CTLR_ENABLE_LPIS:
            cs.gicr_ctlr |= GICR_CTLR_ENABLE_LPIS
            # QEMU gicv3_redist_update_lpi: pending-table bits set by the
            # guest before (or while disabled) become pending LPIs.
            self._lpi_load_pending_table(cs)
        else:
            cs.gicr_ctlr &= ~GICR_CTLR_ENABLE_LPIS
        self.gic.update_cpu(cs)

    def read_typer(self, cs: CpuState, rel: int, size: int) -> int:
        return extract(cs.typer, rel, size)

    def read_waker(self, cs: CpuState, rel: int, size: int) -> int:
        return cs.waker

    def write_waker(self, cs: CpuState, rel: int, size: int, v: int) -> None:
        # Only ProcessorSleep is writable; ChildrenAsleep follows it at once.
        v &= GICR_WAKER_PROCESSOR_SLEEP
        cs.waker = v | (GICR_WAKER_CHILDREN_ASLEEP if v else 0)

    def read_propbaser(self, cs: CpuState, rel: int, size: int) -> int:
        return extract(cs.propbaser, rel, size)

    def write_propbaser(self, cs: CpuState, rel: int, size: int, v: int) -> None:
        cs.propbaser = deposit(cs.propbaser, rel, size, v)

    def read_pendbaser(self, cs: CpuState, rel: int, size: int) -> int:
        return extract(cs.pendbaser, rel, size)

    def write_pendbaser(self, cs: CpuState, rel: int, size: int, v: int) -> None:
        cs.pendbaser = deposit(cs.pendbaser, rel, size, v)

    # ---- LPIs -------------------------------------------------------------------------------------
    def _table_read(self, cs: CpuState, addr: int, length: int, what: str) -> bytes | None:
        ram = self.gic.ram
        if ram is None or not ram.contains(addr, length):
            self.guest_error(f"GICv3: LPI {what} outside RAM", cpu=cs.index, addr=addr, length=length)
            return None
        return ram.read(addr, length)

    @staticmethod
    def lpi_limit(cs: CpuState) -> int:
        """One past the highest LPI INTID the redistributor accepts:
        2^(min(PROPBASER.IDbits, GICD_TYPER.IDbits) + 1)."""
        return 1 << (min(cs.propbaser & PROPBASER_IDBITS_MASK, GICD_TYPER_IDBITS) + 1)

    def _lpi_read_cfg(self, cs: CpuState, irq: int) -> int:
        data = self._table_read(cs, (cs.propbaser & PROPBASER_PA_MASK) + irq - LPI_INTID_START, 1,
                                "property table entry")
        return 0 if data is None else data[0]

    def _lpi_write_pending_bit(self, cs: CpuState, irq: int, level: bool) -> bool:
        addr = (cs.pendbaser & PENDBASER_PA_MASK) + irq // 8
        data = self._table_read(cs, addr, 1, "pending table byte")
        if data is None:
            return False
        bit = 1 << (irq & 7)
        self.gic.ram.write(addr, bytes([data[0] | bit if level else data[0] & ~bit]))
        return True

    @staticmethod
    def lpi_recompute(cs: CpuState) -> None:
        """Highest-priority enabled pending LPI (lowest INTID on a tie): the
        heap's top once the entries that no longer match lpi_cfg are dropped."""
        heap, cfg = cs.lpi_heap, cs.lpi_cfg
        while heap:
            p, irq = heap[0]
            c = cfg.get(irq)
            if c is not None and c & LPI_CFG_ENABLE and c & LPI_PRIORITY_MASK == p:
                cs.hpplpi_prio, cs.hpplpi_irq = p, irq
                return
            heapq.heappop(heap)
        cs.hpplpi_prio, cs.hpplpi_irq = 0xFF, INTID_SPURIOUS

    def lpi_set_pending(self, cs: CpuState, irq: int, level: bool) -> None:
        """Make one LPI pending / not pending (QEMU gicv3_redist_lpi_pending);
        the caller re-evaluates the CPU interface."""
        if level:
            if irq in cs.lpi_pending or not self._lpi_write_pending_bit(cs, irq, True):
                return
            c = self._lpi_read_cfg(cs, irq)
            cs.lpi_pending.add(irq)
            cs.lpi_cfg[irq] = c
            cs.lpi_fresh.add(irq)
            lpi_heap_push(cs, irq, c)
            p = c & LPI_PRIORITY_MASK
            if c & LPI_CFG_ENABLE and (p < cs.hpplpi_prio
                                       or (p == cs.hpplpi_prio and irq < cs.hpplpi_irq)):
                cs.hpplpi_prio, cs.hpplpi_irq = p, irq
        else:
            if irq not in cs.lpi_pending:
                return
            cs.lpi_pending.discard(irq)
            cs.lpi_fresh.discard(irq)
            del cs.lpi_cfg[irq]
            self._lpi_write_pending_bit(cs, irq, False)
            if irq == cs.hpplpi_irq:
                self.lpi_recompute(cs)

    def lpi_process(self, cs: CpuState, irq: int, level: bool) -> None:
        """An LPI from the ITS (QEMU gicv3_redist_process_lpi): ignored unless
        EnableLPIs and the INTID is within PROPBASER.IDbits."""
        if not cs.gicr_ctlr & GICR_CTLR_ENABLE_LPIS or not LPI_INTID_START <= irq < self.lpi_limit(cs):
            return
        self.lpi_set_pending(cs, irq, level)
        self.gic.update_cpu(cs)

    def _lpi_load_pending_table(self, cs: CpuState) -> None:
        """EnableLPIs written with 1: the pending table's LPI bits become the
        pending set, with their config bytes read afresh."""
        limit = self.lpi_limit(cs)
        pending: set[int] = set()
        if limit > LPI_INTID_START:
            start = LPI_INTID_START // 8
            data = self._table_read(cs, (cs.pendbaser & PENDBASER_PA_MASK) + start,
                                    limit // 8 - start, "pending table")
            if data is not None:
                for i, b in enumerate(data):
                    if b:
                        base = (start + i) * 8
                        pending.update(base + k for k in range(8) if b >> k & 1)
        cs.lpi_pending = pending
        cs.lpi_cfg = {irq: self._lpi_read_cfg(cs, irq) for irq in sorted(pending)}
        forget_prop_copy(cs)
        lpi_heap_rebuild(cs)
        self.lpi_recompute(cs)

    def lpi_inv(self, cs: CpuState, irq: int | None, memo: dict | None = None) -> None:
        """INV (one LPI) / INVALL (irq None): re-read the config of pending
        LPIs (QEMU gicv3_redist_inv_lpi / gicv3_redist_update_lpi: only with
        EnableLPIs), at a cost of what changed. `memo` shares the table reads
        and comparisons of one INVALL among redistributors."""
        if not cs.gicr_ctlr & GICR_CTLR_ENABLE_LPIS:
            return
        if irq is None:
            changed = self.lpi_invall(cs, {} if memo is None else memo)
        elif irq in cs.lpi_pending:
            self.inv_work += 1
            c = self._lpi_read_cfg(cs, irq)
            cs.lpi_fresh.add(irq)
            changed = [irq] if c != cs.lpi_cfg[irq] else []
            cs.lpi_cfg[irq] = c
        else:
            changed = []
        if changed:
            self._lpi_reconsider(cs, changed)
        self.gic.update_cpu(cs)

    def lpi_invall(self, cs: CpuState, memo: dict) -> list[int]:
        """Bring every pending LPI's config up to date with the property
        table; the LPIs whose config changed. Examines only the LPIs whose
        byte differs from the last INVALL's copy or that were read since."""
        base = cs.propbaser & PROPBASER_PA_MASK
        if base not in memo:
            memo[base] = self._prop_window(base)
        lo, now = memo[base]
        if cs.lpi_prop_key != base:
            check = sorted(cs.lpi_pending)                   # no usable copy: every LPI once
        else:
            seen = cs.lpi_prop_seen
            key = (base, id(seen))                           # redistributors share one copy
            if key not in memo:
                memo[key] = (seen, changed_offsets(seen, now))
            pending = cs.lpi_pending
            check = sorted({lo + off for off in memo[key][1] if lo + off in pending}
                           | (cs.lpi_fresh & pending))
        cs.lpi_prop_key, cs.lpi_prop_seen, cs.lpi_fresh = base, now, set()
        self.inv_work += len(check)
        changed = []
        for irq in check:
            off = irq - lo
            if 0 <= off < len(now):
                c = now[off]
            else:                                            # outside RAM: logged, reads 0
                c = self._lpi_read_cfg(cs, irq)
            if c != cs.lpi_cfg[irq]:
                cs.lpi_cfg[irq] = c
                changed.append(irq)
        return changed

    def _prop_window(self, base: int) -> tuple[int, bytes]:
        """(INTID of the first byte, bytes): the part of the property table
        for INTIDs 8192..65535 that lies in RAM (fixed for a given base)."""
        ram = self.gic.ram
        start, end = base, base + PROP_SPAN
        if ram is not None:
            start, end = max(start, ram.base), min(end, ram.base + ram.size)
        if ram is None or start >= end:
            return LPI_INTID_START, b""
        return LPI_INTID_START + start - base, ram.read(start, end - start)

    @staticmethod
    def _lpi_reconsider(cs: CpuState, changed: list[int]) -> None:
        """The highest pending LPI after `changed` LPIs' config bytes changed:
        each goes on the heap with its new priority (the old entry is stale)."""
        for irq in changed:
            lpi_heap_push(cs, irq, cs.lpi_cfg[irq])
        Redistributor.lpi_recompute(cs)

    def lpi_move(self, src: CpuState, dst: CpuState, irq: int | None) -> None:
        """MOVI (one LPI) / MOVALL (irq None): pending state moves from one
        redistributor to another (QEMU gicv3_redist_mov_lpi/_movall_lpis:
        nothing unless both have EnableLPIs)."""
        if src is dst or not (src.gicr_ctlr & dst.gicr_ctlr & GICR_CTLR_ENABLE_LPIS):
            return
        moving = sorted(src.lpi_pending) if irq is None else \
            ([irq] if irq in src.lpi_pending else [])
        dst_limit = self.lpi_limit(dst)
        for i in moving:
            self.lpi_set_pending(src, i, False)
            if i < dst_limit:
                self.lpi_set_pending(dst, i, True)
        self.gic.update_cpu(src)
        self.gic.update_cpu(dst)


class RedistRegion:
    """One redistributor region (an MMIO window) of frame pairs, the first
    belonging to vCPU `first_cpu` (frame -> vCPU by offset >> 17, O(1))."""

    def __init__(self, redist: Redistributor, first_cpu: int):
        self.redist, self.first_cpu = redist, first_cpu
        self.cpus, self.bank = redist.gic.cpus, redist.bank

    def _cs(self, cpu: int, offset: int, write: bool) -> CpuState | None:
        idx = self.first_cpu + (offset >> REDIST_FRAME_SHIFT)
        if idx < len(self.cpus):
            return self.cpus[idx]
        self.redist.guest_error(f"GICv3 GICR: {'write to' if write else 'read of'} a frame with no vCPU",
                                cpu=cpu, offset=offset)
        return None

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        cs = self._cs(cpu, offset, False)
        if cs is None:
            return 0
        return self.bank.read(self.redist, cs, offset & (REDIST_FRAME_SIZE - 1), size, cpu)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        cs = self._cs(cpu, offset, True)
        if cs is not None:
            self.bank.write(self.redist, cs, offset & (REDIST_FRAME_SIZE - 1), size, value, cpu)


def _cpu_changed(r: Redistributor, cs: CpuState, mask: int) -> None:
    r.gic.update_cpu(cs)


def _cpu_config_changed(r: Redistributor, cs: CpuState) -> None:
    r.gic.update_cpu(cs)


# SGIs/PPIs 0..31, every one held here; SGIs are always edge-triggered.
GICR_IRQ = IrqFrame(lo=0, hi=GIC_INTERNAL, cfg_lo=16, per_cpu=True,
                    changed=_cpu_changed, config_changed=_cpu_config_changed)

# The frame pair: RD_base at +0, SGI_base at +0x1_0000 (GIC spec 12.10, 12.11).
GICR_REGS: tuple[Register, ...] = (
    Register("GICR_CTLR", 0x0000, Redistributor.read_ctlr, Redistributor.write_ctlr, length=4,
             reset=GICR_CTLR_RESET, field="gicr_ctlr"),
    Register("GICR_IIDR", 0x0004, read_iidr, ro_write, length=4, reset=GIC_IIDR),
    Register("GICR_TYPER", 0x0008, Redistributor.read_typer, ro_write, WIDTHS_64, 8),  # per frame
    Register("GICR_STATUSR", 0x0010, raz, wi, length=4, reset=0),
    Register("GICR_WAKER", 0x0014, Redistributor.read_waker, Redistributor.write_waker, length=4,
             reset=GICR_WAKER_RESET, field="waker"),
    Register("GICR_PROPBASER", 0x0070, Redistributor.read_propbaser,
             Redistributor.write_propbaser, WIDTHS_64, 8, reset=0, field="propbaser"),
    Register("GICR_PENDBASER", 0x0078, Redistributor.read_pendbaser,
             Redistributor.write_pendbaser, WIDTHS_64, 8, reset=0, field="pendbaser"),
    Register("GICR_PIDR4..CIDR3", IDREGS_OFFSET, idreg(PIDR0_REDIST), ro_write, length=IDREGS_LENGTH),
    *bitmap_registers(GICR_IRQ, "GICR", SGI_OFFSET + 0x0080, 4, "0"),
    priority_register(GICR_IRQ, "GICR_IPRIORITYR<n>", SGI_OFFSET + 0x0400, 0x20),
    config_register(GICR_IRQ, "GICR_ICFGR0", SGI_OFFSET + 0x0C00, 4, 0, GICR_ICFGR0_RESET),
    config_register(GICR_IRQ, "GICR_ICFGR1", SGI_OFFSET + 0x0C04, 4, 16, GICR_ICFGR1_RESET),
    Register("GICR_IGRPMODR0", SGI_OFFSET + 0x0D00, raz, wi, length=4, reset=0),
    Register("GICR_NSACR", SGI_OFFSET + 0x0E00, raz, wi, length=4, reset=0),
)


# ---- migration: the per-vCPU redistributor record of section "gicv3" -----------------------------
def _put_priority(cs: CpuState, v: bytes) -> None:
    cs.priority[:] = v


def _get_lpis(cs: CpuState) -> list[list[int]]:
    return [[i, cs.lpi_cfg[i]] for i in sorted(cs.lpi_pending)]


def _put_lpis(cs: CpuState, pairs: list[list[int]]) -> None:
    cs.lpi_pending = {i for i, _ in pairs}
    cs.lpi_cfg = {i: c for i, c in pairs}
    forget_prop_copy(cs)
    lpi_heap_rebuild(cs)


def check_lpis(pairs: list[list[int]], where: str, propbaser: int | None = None) -> None:
    """(INTID, config byte) pairs: LPI INTIDs in ascending order, each once,
    below the limit PROPBASER.IDbits sets (when `propbaser` is given), 8-bit
    config."""
    limit = 1 << 16 if propbaser is None else \
        1 << (min(propbaser & PROPBASER_IDBITS_MASK, GICD_TYPER_IDBITS) + 1)
    last = -1
    for irq, c in pairs:
        if irq < LPI_INTID_START or c > 0xFF or irq >= limit or irq <= last:
            raise StateError(f"snapshot field {where} has a bad LPI entry [{irq}, {c}] (LPIs "
                             f"{LPI_INTID_START}..{limit - 1}, ascending, each once)")
        last = irq


# Names as saved since version 1 (the register names of QEMU's GICv3CPUState).
REDIST_FIELDS: tuple[Field, ...] = (
    Field("gicr_ctlr", U32), Field("waker", U32), Field("propbaser", U64), Field("pendbaser", U64),
    Field("igroupr0", U32, attr="group"), Field("ienabler0", U32, attr="enabled"),
    Field("ipendr0", U32, attr="pending"), Field("iactiver0", U32, attr="active"),
    Field("edge_trigger", U32), Field("level", U32),
    Field("priority", Bytes(GIC_INTERNAL), put_fn=_put_priority),
    # pending LPIs with their config bytes as last read; absent in snapshots
    # written before LPIs existed (same version): none pending
    Field("lpis", Array(Array(U16, 2)), get_fn=_get_lpis, put_fn=_put_lpis, default=[]),
)

"""Per-INTID register kinds, described once and used by the distributor (SPIs)
and by every redistributor (SGIs/PPIs): the IGROUPR and set/clear bitmaps
(1 bit per INTID), IPRIORITYR (1 byte), ICFGR (2 bits), each with its RAZ/WI
rule for INTIDs the frame does not hold (GICD word 0 and INTIDs >= 288 when
ARE = 1; QEMU gicd_readl/gicr_readl).

Both frames keep the state under the same names (`group`, `enabled`,
`pending`, `active`, `level`, `edge_trigger`, `priority`, bit or byte n =
INTID n): the distributor on itself, a redistributor on its vCPU's CpuState.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ...regs import WIDTHS_32, WIDTHS_BYTE, Register
from .common import MASK32, gather16, spread16

# per-INTID state operations: (state, first INTID of the word, value)
WordRead = Callable[[Any, int], int]
WordWrite = Callable[[Any, int, int], int]      # returns the INTIDs whose delivery may change


@dataclass(frozen=True)
class IrqFrame:
    """Where one frame's per-INTID registers find their state and what a
    change means. INTIDs `lo`..`hi`-1 are held by the frame, all others are
    RAZ/WI; ICFGR fields below `cfg_lo` are read-only (SGIs are edge).
    `per_cpu`: the state is the access context (a redistributor's CpuState),
    else the bank's owner. `changed(owner, ctx, mask)` follows a write that
    may change delivery; `config_changed(owner, ctx)` an ICFGR write."""
    lo: int
    hi: int
    cfg_lo: int
    per_cpu: bool
    changed: Callable[[Any, Any, int], None]
    config_changed: Callable[[Any, Any], None]


@dataclass(frozen=True)
class IrqRegister(Register):
    """A per-INTID register: `bits` bits per INTID from INTID `first`;
    `store(state, intid, reset)` puts the reset value of the word (or of the
    whole register, when wider) at `intid` into the state without side
    effects: that is how `reset_irq_state` applies the reset column."""
    first: int = 0
    bits: int = 1
    store: Callable[[Any, int, int], Any] | None = None

    def intid(self, rel: int) -> int:
        """The first INTID at byte `rel` of the register."""
        return self.first + rel * 8 // self.bits


def set_line(s: Any, irq: int, level: bool) -> bool:
    """An input line's level (QEMU gicv3_dist_set_irq, gicv3_redist_set_irq):
    a rising edge latches pending when edge-triggered. False: no change."""
    bit = 1 << irq
    if bool(s.level & bit) == level:
        return False
    if level:
        s.level |= bit
        if s.edge_trigger & bit:
            s.pending |= bit
    else:
        s.level &= ~bit
    return True


# ---- the bitmaps (1 bit per INTID) -----------------------------------------------------------------
def _read_group(s: Any, irq: int) -> int:
    return (s.group >> irq) & MASK32


def _write_group(s: Any, irq: int, v: int) -> int:
    s.group = (s.group & ~(MASK32 << irq)) | (v << irq)
    return MASK32 << irq


def _read_enabled(s: Any, irq: int) -> int:
    return (s.enabled >> irq) & MASK32


def _set_enabled(s: Any, irq: int, v: int) -> int:
    s.enabled |= v << irq
    return v << irq


def _clear_enabled(s: Any, irq: int, v: int) -> int:
    s.enabled &= ~(v << irq)
    return v << irq


def _read_pending(s: Any, irq: int) -> int:
    """The latch, or a level-sensitive line that is high."""
    return ((s.pending | (s.level & ~s.edge_trigger)) >> irq) & MASK32


def _set_pending(s: Any, irq: int, v: int) -> int:
    s.pending |= v << irq
    return v << irq


def _clear_pending(s: Any, irq: int, v: int) -> int:
    s.pending &= ~(v << irq)
    return v << irq


def _read_active(s: Any, irq: int) -> int:
    return (s.active >> irq) & MASK32


def _set_active(s: Any, irq: int, v: int) -> int:
    s.active |= v << irq
    return v << irq


def _clear_active(s: Any, irq: int, v: int) -> int:
    s.active &= ~(v << irq)
    return v << irq


def _store(set_bits: WordWrite, clear_bits: WordWrite) -> Callable[[Any, int, int], None]:
    """A whole word of a set/clear pair's state, without side effects."""
    def store(s: Any, irq: int, v: int) -> None:
        clear_bits(s, irq, MASK32)
        set_bits(s, irq, v)
    return store


_store_enabled = _store(_set_enabled, _clear_enabled)
_store_pending = _store(_set_pending, _clear_pending)
_store_active = _store(_set_active, _clear_active)

# (register, offset in the block, read, write, store): GIC spec 12.9 / 12.11
_BITMAPS = (
    ("IGROUPR", 0x000, _read_group, _write_group, _write_group),
    ("ISENABLER", 0x080, _read_enabled, _set_enabled, _store_enabled),
    ("ICENABLER", 0x100, _read_enabled, _clear_enabled, _store_enabled),
    ("ISPENDR", 0x180, _read_pending, _set_pending, _store_pending),
    ("ICPENDR", 0x200, _read_pending, _clear_pending, _store_pending),
    ("ISACTIVER", 0x280, _read_active, _set_active, _store_active),
    ("ICACTIVER", 0x300, _read_active, _clear_active, _store_active),
)


def _bitmap(frame: IrqFrame, name: str, offset: int, length: int, read_word: WordRead,
            write_word: WordWrite, store: Callable[[Any, int, int], Any]) -> IrqRegister:
    lo, hi, per_cpu, changed = frame.lo, frame.hi, frame.per_cpu, frame.changed

    def read(owner: Any, ctx: Any, rel: int, size: int) -> int:
        irq = rel * 8
        if not lo <= irq < hi:
            return 0
        return read_word(ctx if per_cpu else owner, irq)

    def write(owner: Any, ctx: Any, rel: int, size: int, v: int) -> None:
        irq = rel * 8
        if lo <= irq < hi:
            changed(owner, ctx, write_word(ctx if per_cpu else owner, irq, v))

    return IrqRegister(name, offset, read, write, WIDTHS_32, length, reset=0, store=store)


def bitmap_registers(frame: IrqFrame, prefix: str, base: int, length: int,
                     suffix: str) -> list[IrqRegister]:
    """IGROUPR, I{S,C}ENABLER, I{S,C}PENDR, I{S,C}ACTIVER: `length` bytes each,
    from `base` in steps of 0x80 (GICD: <n> arrays; GICR: the 0 registers)."""
    return [_bitmap(frame, f"{prefix}_{name}{suffix}", base + off, length, rd, wr, st)
            for name, off, rd, wr, st in _BITMAPS]


# ---- IPRIORITYR (1 byte per INTID) ---------------------------------------------------------------
def _store_priority(s: Any, irq: int, v: int) -> None:
    for i in range(4):
        s.priority[irq + i] = (v >> (8 * i)) & 0xFF


def priority_register(frame: IrqFrame, name: str, offset: int, length: int) -> IrqRegister:
    """8 bits per INTID, stored as written (the CPU interface compares all 8
    bits against PMR; preemption uses the group-priority bits). A byte
    access reaches one INTID; a write touching an INTID the frame does not
    hold is ignored whole (QEMU)."""
    lo, hi, per_cpu, changed = frame.lo, frame.hi, frame.per_cpu, frame.changed

    def read(owner: Any, ctx: Any, rel: int, size: int) -> int:
        prio = (ctx if per_cpu else owner).priority
        out = 0
        for i in range(rel + size - 1, rel - 1, -1):
            out = (out << 8) | (prio[i] if lo <= i < hi else 0)
        return out

    def write(owner: Any, ctx: Any, rel: int, size: int, v: int) -> None:
        if rel < lo or rel + size - 1 >= hi:
            return
        prio = (ctx if per_cpu else owner).priority
        for i in range(size):
            prio[rel + i] = (v >> (8 * i)) & 0xFF
        changed(owner, ctx, ((1 << size) - 1) << rel)

    return IrqRegister(name, offset, read, write, WIDTHS_BYTE, length, reset=0, bits=8,
                       store=_store_priority)


# ---- ICFGR (2 bits per INTID: edge or level) -------------------------------------------------------
def _store_config(s: Any, irq: int, v: int) -> None:
    s.edge_trigger = (s.edge_trigger & ~(0xFFFF << irq)) | (gather16(v) << irq)


def config_register(frame: IrqFrame, name: str, offset: int, length: int, first: int = 0,
                    reset: int = 0) -> IrqRegister:
    """Edge (Int_config bit 1) or level for 16 INTIDs a word, from INTID `first`."""
    lo, hi, cfg_lo, per_cpu = frame.lo, frame.hi, frame.cfg_lo, frame.per_cpu
    config_changed = frame.config_changed

    def read(owner: Any, ctx: Any, rel: int, size: int) -> int:
        irq = first + rel * 4
        if not lo <= irq < hi:
            return 0
        return spread16(((ctx if per_cpu else owner).edge_trigger >> irq) & 0xFFFF)

    def write(owner: Any, ctx: Any, rel: int, size: int, v: int) -> None:
        irq = first + rel * 4
        if not cfg_lo <= irq < hi:
            return
        _store_config(ctx if per_cpu else owner, irq, v)
        config_changed(owner, ctx)

    return IrqRegister(name, offset, read, write, WIDTHS_32, length, reset=reset, first=first,
                       bits=2, store=_store_config)


def reset_irq_state(frame: IrqFrame, registers: Iterable[Register], state: Any) -> None:
    """Apply the reset column of every per-INTID register to `state`, for the
    INTIDs the frame holds."""
    for r in registers:
        if isinstance(r, IrqRegister) and r.store is not None and r.reset is not None:
            for rel in range(0, r.size, 4):
                irq = r.intid(rel)
                if frame.lo <= irq < frame.hi:
                    r.store(state, irq, r.reset)

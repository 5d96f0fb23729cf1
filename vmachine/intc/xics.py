"""XICS: the PAPR hcall-driven interrupt controller (ICS sources, ICP presenters).

Semantics follow QEMU 7.2 (hw/intc/xics.c, xics_spapr.c), which follow PAPR:
  * ICP (one per server = vCPU): XIRR = CPPR (31:24) | XISR (23:0), MFRR for
    IPIs (XISR 2), the priority of what XISR holds; output line = XISR != 0
    (raised when something is presented, lowered on accept or withdrawal).
  * ICS (sources): server, priority (0xff = masked), saved priority (for
    ibm,int-off/int-on), LSI or MSI, and the status bits below.
  * A source less favoured than CPPR, or than what XISR already holds, is
    *rejected*; a rejected MSI, or an asserted LSI not yet sent, is *resent*
    when its presenter's CPPR is raised or after an EOI.

Source numbers run to 2^20 - 1; numbers below 16 are reserved (0 = none,
2 = IPI). Sources live in blocks of 1024 created on first use, and a resend
visits only the sources that can be resent (kept in a candidate set), so the
cost of delivery does not depend on how many sources exist. QEMU visits every
source on each resend; the outcome is the same because candidates are
visited in the same (ascending) order.

Migrated state is declared once, XICS_STATE at the end of the file (QEMU's
vmstate_ics_irq / vmstate_icp_server fields, sources as ranges plus the
ones not as created).
"""
from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..errors import DeviceError
from ..state import (Migratable, Array, Field, StateError, Str, Struct, U8, U32, UInt,
                     VMStateDescription)
from .hostargs import host_callable, host_flag, host_index, host_int, host_record

XICS_IPI = 2
XISR_MASK = 0x00FF_FFFF
CPPR_SHIFT = 24
PRIO_MASKED = 0xFF

NR_SOURCES = 1 << 20               # 0 .. 1,048,575
FIRST_SOURCE = 16                  # 0..15 reserved (0 none, 2 IPI)
BLOCK_SHIFT = 10
BLOCK_SIZE = 1 << BLOCK_SHIFT      # sources per lazily created block

# ICS source status (QEMU XICS_STATUS_*)
ST_ASSERTED = 0x1                  # LSI line is high
ST_SENT = 0x2                      # LSI presented, not yet EOId
ST_REJECTED = 0x4                  # MSI rejected by its presenter, to resend
ST_MASKED_PENDING = 0x8            # MSI arrived while masked

# source type (0 = free: not claimed by a device)
TYPE_FREE, TYPE_MSI, TYPE_LSI = 0, 1, 2

# 64-bit host encoding of a source (KVM XICS device attribute)
SRC_SERVER_MASK = 0xFFFF_FFFF
SRC_PRIORITY_SHIFT = 32
SRC_LEVEL_SENSITIVE = 1 << 40
SRC_MASKED = 1 << 41
SRC_PENDING = 1 << 42
SRC_DEFINED_BITS = 43              # bits 43..63 are unknown: refused
U32_MAX = 0xFFFF_FFFF


class SourceBlock:
    """1024 consecutive sources as typed arrays (about 8 KiB)."""

    __slots__ = ("present", "server", "priority", "saved", "status", "type")

    def __init__(self) -> None:
        self.present = bytearray(BLOCK_SIZE)               # 1 = the source exists
        self.server = array("I", bytes(4 * BLOCK_SIZE))
        self.priority = bytearray(b"\xff" * BLOCK_SIZE)
        self.saved = bytearray(b"\xff" * BLOCK_SIZE)
        self.status = bytearray(BLOCK_SIZE)
        self.type = bytearray(BLOCK_SIZE)

    @staticmethod
    def nbytes() -> int:
        return BLOCK_SIZE * (1 + 4 + 1 + 1 + 1 + 1)


@dataclass
class Icp:
    """One presenter. `owner` is the source held in XISR (None for an IPI)."""
    server: int
    output: Callable[[bool], None] = field(default=lambda level: None, repr=False)
    xirr: int = 0
    pending_priority: int = PRIO_MASKED
    mfrr: int = PRIO_MASKED
    owner: int | None = None
    # Accepted (H_XIRR) and not yet EOId, most recent last: only to report an
    # EOI of something that is not in service as a guest error.
    in_service: list[int] = field(default_factory=list)

    @property
    def cppr(self) -> int:
        return self.xirr >> CPPR_SHIFT

    @property
    def xisr(self) -> int:
        return self.xirr & XISR_MASK


@dataclass(frozen=True)
class IcpState:
    """Per-vCPU presenter state for migration (KVM_REG_PPC_ICP_STATE's fields)."""
    xirr: int
    mfrr: int
    pending_priority: int


class Xics(Migratable):
    """The XICS fabric: presenters by server number and the source space."""

    def __init__(self, log_guest_error: Callable[..., None] = lambda *a, **k: None,
                 log_event: Callable[..., None] = lambda *a, **k: None):
        host_callable(log_guest_error, "XICS log_guest_error")
        host_callable(log_event, "XICS log_event")
        self.icps: dict[int, Icp] = {}
        self.blocks: dict[int, SourceBlock] = {}
        self._resend: set[int] = set()
        self.guest_error = log_guest_error
        self.event = log_event

    def reset(self) -> None:
        """Machine reset (QEMU ics_reset/icp_reset): sources masked, presenters idle."""
        for b in self.blocks.values():
            b.priority[:] = b.saved[:] = b"\xff" * BLOCK_SIZE
            b.status[:] = bytes(BLOCK_SIZE)
            b.server[:] = array("I", bytes(4 * BLOCK_SIZE))
        self._resend.clear()
        for icp in self.icps.values():
            icp.xirr, icp.pending_priority, icp.mfrr, icp.owner = 0, PRIO_MASKED, PRIO_MASKED, None
            icp.in_service.clear()
            icp.output(False)

    # ---- presenters ------------------------------------------------------------------
    def add_icp(self, server: int, output: Callable[[bool], None]) -> Icp:
        """A presenter for `server` (a 32-bit server number, once each)."""
        server = host_int(server, "XICS server", 0, U32_MAX)
        host_callable(output, f"XICS presenter {server} output")
        if server in self.icps:
            raise DeviceError("EEXIST", f"XICS server {server} already has a presenter")
        icp = Icp(server, output)
        self.icps[server] = icp
        return icp

    def icp(self, server: int) -> Icp | None:
        """The presenter of `server`, None when there is none (a bool or a
        non-integer names none)."""
        if type(server) is not int:
            if isinstance(server, bool) or not isinstance(server, int):
                return None
            server = int(server)
        return self.icps.get(server)

    # ---- sources ---------------------------------------------------------------------
    @staticmethod
    def check_number(nr: int) -> int:
        """`nr` as a valid source number (EINVAL for a non-integer, a reserved
        or an out-of-range number)."""
        if type(nr) is not int:
            nr = host_index(nr, "XICS source")
        if not FIRST_SOURCE <= nr < NR_SOURCES:
            what = "reserved" if 0 <= nr < FIRST_SOURCE else "out of range"
            raise DeviceError("EINVAL", f"XICS source {nr:#x} is {what} "
                                        f"(valid: {FIRST_SOURCE:#x}..{NR_SOURCES - 1:#x})")
        return nr

    @classmethod
    def _check_run(cls, first: int, count: int) -> tuple[int, int]:
        """A run of `count` (>= 0) sources from `first`, all valid numbers."""
        first = cls.check_number(first)
        count = host_int(count, "XICS source count", 0, NR_SOURCES)
        if count:
            cls.check_number(first + count - 1)
        return first, count

    def _slot(self, nr: int) -> tuple[SourceBlock, int] | None:
        b = self.blocks.get(nr >> BLOCK_SHIFT)
        if b is None:
            return None
        i = nr & (BLOCK_SIZE - 1)
        return (b, i) if b.present[i] else None

    def exists(self, nr: int) -> bool:
        if type(nr) is not int and (isinstance(nr, bool) or not isinstance(nr, int)):
            return False
        return FIRST_SOURCE <= nr < NR_SOURCES and self._slot(int(nr)) is not None

    def create_source(self, nr: int, lsi: bool = False, claim: bool = True) -> None:
        """Make source `nr` exist (a device claims it as LSI or MSI)."""
        nr = self.check_number(nr)
        lsi = host_flag(lsi, "XICS lsi")
        claim = host_flag(claim, "XICS claim")
        self._create(nr, lsi, claim)

    def _create(self, nr: int, lsi: bool, claim: bool) -> None:
        b = self.blocks.get(nr >> BLOCK_SHIFT)
        if b is None:
            b = self.blocks[nr >> BLOCK_SHIFT] = SourceBlock()
        i = nr & (BLOCK_SIZE - 1)
        b.present[i] = 1
        if claim:
            b.type[i] = TYPE_LSI if lsi else TYPE_MSI

    def create_range(self, first: int, count: int) -> None:
        """Make `count` sources from `first` exist, unclaimed (all or none)."""
        first, count = self._check_run(first, count)
        nr, end = first, first + count
        while nr < end:                 # a block at a time (as _create(nr, False, False) each)
            b = self.blocks.get(nr >> BLOCK_SHIFT)
            if b is None:
                b = self.blocks[nr >> BLOCK_SHIFT] = SourceBlock()
            lo = nr & (BLOCK_SIZE - 1)
            hi = min(BLOCK_SIZE, lo + end - nr)
            b.present[lo:hi] = b"\x01" * (hi - lo)
            nr += hi - lo

    def sources_memory(self) -> int:
        """Bytes held by source state (blocks of 1024 created on demand)."""
        return len(self.blocks) * SourceBlock.nbytes()

    def source_numbers(self) -> Iterator[int]:
        for bi in sorted(self.blocks):
            b = self.blocks[bi]
            for i in range(BLOCK_SIZE):
                if b.present[i]:
                    yield (bi << BLOCK_SHIFT) | i

    def _is_lsi(self, b: SourceBlock, i: int) -> bool:
        return b.type[i] == TYPE_LSI

    # ---- ICP operations (QEMU icp_*) ---------------------------------------------------
    def _raise(self, icp: Icp) -> None:
        icp.output(True)

    def _lower(self, icp: Icp) -> None:
        icp.output(False)

    def _check_ipi(self, icp: Icp) -> None:
        if icp.xisr and icp.pending_priority <= icp.mfrr:
            return
        if icp.xisr and icp.owner is not None:
            self._reject(icp.owner)
        icp.xirr = (icp.xirr & ~XISR_MASK) | XICS_IPI
        icp.pending_priority = icp.mfrr
        icp.owner = None
        self._raise(icp)

    def _icp_resend(self, icp: Icp) -> None:
        if icp.mfrr < icp.cppr:
            self._check_ipi(icp)
        self._ics_resend()

    def set_cppr(self, icp: Icp, cppr: int) -> None:
        cppr &= 0xFF
        old = icp.cppr
        icp.xirr = (icp.xirr & XISR_MASK) | (cppr << CPPR_SHIFT)
        if cppr < old:
            if icp.xisr and cppr <= icp.pending_priority:
                old_xisr, owner = icp.xisr, icp.owner
                icp.xirr &= ~XISR_MASK
                icp.pending_priority = PRIO_MASKED
                icp.owner = None
                self._lower(icp)
                if owner is not None:
                    self._reject(old_xisr)
        elif not icp.xisr:
            self._icp_resend(icp)

    def set_mfrr(self, icp: Icp, mfrr: int) -> None:
        icp.mfrr = mfrr & 0xFF
        if icp.mfrr < icp.cppr:
            self._check_ipi(icp)

    def accept(self, icp: Icp) -> int:
        xirr = icp.xirr
        if xirr & XISR_MASK:
            icp.in_service.append(xirr & XISR_MASK)
        self._lower(icp)
        icp.xirr = icp.pending_priority << CPPR_SHIFT
        icp.pending_priority = PRIO_MASKED
        icp.owner = None
        return xirr

    def ipoll(self, icp: Icp) -> tuple[int, int]:
        return icp.xirr, icp.mfrr

    def eoi(self, icp: Icp, xirr: int) -> None:
        icp.xirr = (icp.xirr & XISR_MASK) | (xirr & ~XISR_MASK & 0xFFFF_FFFF)
        nr = xirr & XISR_MASK
        if nr in icp.in_service:
            icp.in_service.remove(nr)
        elif nr:
            self.guest_error("H_EOI of a source that is not in service", server=icp.server, source=nr)
        slot = self._slot(nr) if FIRST_SOURCE <= nr < NR_SOURCES else None
        if slot is not None:
            b, i = slot
            if self._is_lsi(b, i):
                b.status[i] &= ~ST_SENT
                if b.status[i] & ST_ASSERTED:
                    self._resend.add(nr)
        elif nr not in (0, XICS_IPI):
            self.guest_error("H_EOI of a source that does not exist", server=icp.server, source=nr)
        if not icp.xisr:
            self._icp_resend(icp)

    def _present(self, server: int, nr: int, priority: int) -> None:
        """QEMU icp_irq: offer source `nr` to a presenter."""
        icp = self.icps.get(server)
        if icp is None:
            self._reject(nr)
            return
        if priority >= icp.cppr or (icp.xisr and icp.pending_priority <= priority):
            self._reject(nr)
            return
        if icp.xisr and icp.owner is not None:
            self._reject(icp.xisr)
        icp.xirr = (icp.xirr & ~XISR_MASK) | (nr & XISR_MASK)
        icp.owner = nr
        icp.pending_priority = priority
        self._raise(icp)

    # ---- ICS operations (QEMU ics_*) ---------------------------------------------------------
    def _reject(self, nr: int) -> None:
        slot = self._slot(nr)
        if slot is None:
            return
        b, i = slot
        b.status[i] = (b.status[i] | ST_REJECTED) & ~ST_SENT
        self._resend.add(nr)

    def _resend_one(self, nr: int) -> None:
        slot = self._slot(nr)
        if slot is None:
            return
        b, i = slot
        if self._is_lsi(b, i):
            if b.priority[i] != PRIO_MASKED and b.status[i] & ST_ASSERTED \
                    and not b.status[i] & ST_SENT:
                b.status[i] |= ST_SENT
                self._present(b.server[i], nr, b.priority[i])
        elif b.status[i] & ST_REJECTED:
            b.status[i] &= ~ST_REJECTED
            if b.priority[i] != PRIO_MASKED:
                self._present(b.server[i], nr, b.priority[i])

    def _still_candidate(self, nr: int) -> bool:
        slot = self._slot(nr)
        if slot is None:
            return False
        b, i = slot
        st = b.status[i]
        if self._is_lsi(b, i):
            return bool(st & ST_ASSERTED) and not st & ST_SENT
        return bool(st & ST_REJECTED)

    def _ics_resend(self) -> None:
        if not self._resend:
            return
        for nr in sorted(self._resend):
            self._resend_one(nr)
        self._resend = {nr for nr in self._resend if self._still_candidate(nr)}

    def set_irq(self, nr: int, level: int) -> None:
        """A device's line into source `nr` (LSI: level; MSI: a rising edge)."""
        nr = self.check_number(nr)
        if type(level) is not bool:
            level = host_flag(level, f"XICS source {nr:#x} level")
        slot = self._slot(nr)
        if slot is None:
            raise DeviceError("ENOENT", f"XICS source {nr:#x} does not exist")
        b, i = slot
        if self._is_lsi(b, i):
            if level:
                b.status[i] |= ST_ASSERTED
            else:
                b.status[i] &= ~ST_ASSERTED
            self._resend_one(nr)
            if self._still_candidate(nr):
                self._resend.add(nr)
            self.event("irq_line", source=nr, level=int(bool(level)))
        elif level:
            self.event("msi", source=nr)
            if b.priority[i] == PRIO_MASKED:
                b.status[i] |= ST_MASKED_PENDING
            else:
                self._present(b.server[i], nr, b.priority[i])

    def write_xive(self, nr: int, server: int, priority: int, saved_priority: int) -> None:
        """ibm,set-xive / int-off / int-on (the RTAS glue checks the guest's
        arguments first; a host caller gets EINVAL/ENOENT)."""
        b, i = self._existing(nr)
        server = host_int(server, "XICS server", 0, U32_MAX)
        priority = host_int(priority, "XICS priority", 0, PRIO_MASKED)
        saved_priority = host_int(saved_priority, "XICS saved priority", 0, PRIO_MASKED)
        b.server[i] = server
        b.priority[i] = priority
        b.saved[i] = saved_priority
        if self._is_lsi(b, i):
            self._resend_one(nr)
            if self._still_candidate(nr):
                self._resend.add(nr)
        elif b.status[i] & ST_MASKED_PENDING and priority != PRIO_MASKED:
            b.status[i] &= ~ST_MASKED_PENDING
            self._present(server, nr, priority)

    def read_xive(self, nr: int) -> tuple[int, int, int]:
        b, i = self._existing(nr)
        return b.server[i], b.priority[i], b.saved[i]

    def _existing(self, nr: int) -> tuple[SourceBlock, int]:
        nr = self.check_number(nr)
        slot = self._slot(nr)
        if slot is None:
            raise DeviceError("ENOENT", f"XICS source {nr:#x} does not exist")
        return slot

    # ---- host interface: 64-bit source words (KVM XICS attribute layout) -----------------------
    def get_sources(self, first: int, count: int) -> list[int]:
        first, count = self._check_run(first, count)
        words = []
        for nr in range(first, first + count):
            b, i = self._existing(nr)
            prio, masked = b.priority[i], b.priority[i] == PRIO_MASKED
            w = b.server[i] | ((b.saved[i] if masked else prio) << SRC_PRIORITY_SHIFT)
            if masked:
                w |= SRC_MASKED
            st = b.status[i]
            if self._is_lsi(b, i):
                w |= SRC_LEVEL_SENSITIVE
                if st & ST_ASSERTED:
                    w |= SRC_PENDING
            elif st & (ST_MASKED_PENDING | ST_REJECTED):
                w |= SRC_PENDING
            words.append(w)
        return words

    def set_sources(self, first: int, values: list[int]) -> None:
        """Set (creating as needed) one source per word from `first`. Every
        word is checked before any source changes: bits 43..63 are unknown,
        and priority 0xff is only meaningful with MASKED (get_sources would
        report a different word)."""
        if not isinstance(values, (list, tuple, array)):
            raise DeviceError("EINVAL", f"XICS source words must be a list of integers, "
                                        f"not {type(values).__name__}")
        first, count = self._check_run(first, len(values))
        words = []
        for k, w in enumerate(values):
            nr = first + k
            w = host_int(w, f"XICS source {nr:#x} word", 0, (1 << 64) - 1)
            if w >> SRC_DEFINED_BITS:
                raise DeviceError("EINVAL", f"XICS source {nr:#x}: unknown bits in {w:#x}")
            if (w >> SRC_PRIORITY_SHIFT) & 0xFF == PRIO_MASKED and not w & SRC_MASKED:
                raise DeviceError("EINVAL", f"XICS source {nr:#x}: priority 0xff without MASKED "
                                            f"in {w:#x}")
            words.append(w)
        for k, w in enumerate(words):
            nr = first + k
            self._create(nr, bool(w & SRC_LEVEL_SENSITIVE), True)
            b, i = self._slot(nr)  # type: ignore[misc]
            prio = (w >> SRC_PRIORITY_SHIFT) & 0xFF
            b.server[i] = w & SRC_SERVER_MASK
            b.saved[i] = prio
            b.priority[i] = PRIO_MASKED if w & SRC_MASKED else prio
            b.status[i] = 0
            self._resend.discard(nr)
            if w & SRC_PENDING:
                if self._is_lsi(b, i):
                    b.status[i] = ST_ASSERTED
                    self._resend.add(nr)
                elif w & SRC_MASKED:
                    b.status[i] = ST_MASKED_PENDING
                else:
                    b.status[i] = ST_REJECTED
                    self._resend.add(nr)

    # ---- host interface: presenters ----------------------------------------------------
    def get_icp_state(self, server: int) -> IcpState:
        icp = self._host_icp(server)
        return IcpState(icp.xirr, icp.mfrr, icp.pending_priority)

    def set_icp_state(self, server: int, state: IcpState) -> None:
        """Restore a presenter. Refused (EINVAL, nothing changed): a field
        wider than its register (XIRR 32 bits, MFRR and pending priority 8),
        an XISR that names neither the IPI nor an existing source, and a
        pending priority that disagrees with XISR (0xff exactly when nothing
        is presented, as KVM's ICP state requires)."""
        icp = self._host_icp(server)
        host_record(state, IcpState, f"ICP {server} state")
        xirr = host_int(state.xirr, f"ICP {server} XIRR", 0, U32_MAX)
        mfrr = host_int(state.mfrr, f"ICP {server} MFRR", 0, 0xFF)
        pending = host_int(state.pending_priority, f"ICP {server} pending priority", 0, 0xFF)
        xisr = xirr & XISR_MASK
        if xisr and xisr != XICS_IPI and not self.exists(xisr):
            raise DeviceError("EINVAL", f"ICP {server}: XISR {xisr:#x} is not a source")
        if (xisr == 0) != (pending == PRIO_MASKED):
            raise DeviceError("EINVAL", f"ICP {server}: pending priority {pending:#x} with XISR "
                                        f"{xisr:#x} (0xff exactly when nothing is presented)")
        icp.xirr = xirr
        icp.mfrr = mfrr
        icp.pending_priority = pending
        icp.owner = None if xisr in (0, XICS_IPI) else xisr
        icp.output(bool(xisr))

    def _host_icp(self, server: int) -> Icp:
        server = host_int(server, "XICS server", 0, U32_MAX)
        icp = self.icps.get(server)
        if icp is None:
            raise DeviceError("ENOENT", f"no XICS presenter for server {server}")
        return icp

    def resend_all(self) -> None:
        """After a restore: let every presenter pick up what is pending."""
        for server in sorted(self.icps):
            icp = self.icps[server]
            if not icp.xisr:
                self._icp_resend(icp)


# ---- declared migration state (QEMU vmstate_ics_irq / vmstate_icp_server) ------------------------
SOURCE_TYPES = ("free", "msi", "lsi")          # indexed by TYPE_FREE, TYPE_MSI, TYPE_LSI


def _save_ranges(x: Xics) -> list[dict]:
    """The existing sources as runs of consecutive numbers, ascending."""
    runs: list[dict] = []
    for nr in x.source_numbers():
        if runs and runs[-1]["first"] + runs[-1]["count"] == nr:
            runs[-1]["count"] += 1
        else:
            runs.append({"first": nr, "count": 1})
    return runs


def _save_sources(x: Xics) -> list[dict]:
    """Every existing source not as created (unclaimed, server 0, masked,
    nothing pending), ascending."""
    out = []
    for bi in sorted(x.blocks):
        b = x.blocks[bi]
        for i in range(BLOCK_SIZE):
            if b.present[i] and (b.type[i] or b.status[i] or b.server[i]
                                 or b.priority[i] != PRIO_MASKED or b.saved[i] != PRIO_MASKED):
                out.append({"nr": (bi << BLOCK_SHIFT) | i, "server": b.server[i],
                            "priority": b.priority[i], "saved_priority": b.saved[i],
                            "status": b.status[i], "type": SOURCE_TYPES[b.type[i]]})
    return out


def _put_ranges(x: Xics, ranges: list[dict]) -> None:
    """The source space becomes exactly the saved sources, as created."""
    x.blocks.clear()
    x._resend.clear()
    for r in ranges:
        nr, end = r["first"], r["first"] + r["count"]
        while nr < end:                            # a block at a time
            b = x.blocks.get(nr >> BLOCK_SHIFT)
            if b is None:
                b = x.blocks[nr >> BLOCK_SHIFT] = SourceBlock()
            i = nr & (BLOCK_SIZE - 1)
            n = min(BLOCK_SIZE - i, end - nr)
            b.present[i:i + n] = b"\x01" * n
            nr += n


def _put_sources(x: Xics, sources: list[dict]) -> None:
    """Source state; the resend set is recomputed from it."""
    for s in sources:
        nr = s["nr"]
        b, i = x._slot(nr)  # type: ignore[misc]
        b.server[i], b.priority[i], b.saved[i] = s["server"], s["priority"], s["saved_priority"]
        b.status[i], b.type[i] = s["status"], SOURCE_TYPES.index(s["type"])
        if x._still_candidate(nr):
            x._resend.add(nr)


def _save_icps(x: Xics) -> list[Icp]:
    return [x.icps[s] for s in sorted(x.icps)]


def _put_icps(x: Xics, icps: list[dict]) -> None:
    """Presenter registers; the XISR's owner is the source it names (none
    for 0 and the IPI), and the output follows XISR."""
    for rec in icps:
        icp = x.icps[rec["server"]]
        icp.xirr, icp.pending_priority, icp.mfrr = rec["xirr"], rec["pending_priority"], rec["mfrr"]
        icp.in_service = list(rec["in_service"])
        icp.owner = None if icp.xisr in (0, XICS_IPI) else icp.xisr
        icp.output(bool(icp.xisr))


def _check_sources(values: dict) -> Callable[[int], bool]:
    """Ranges are ascending, disjoint and valid; every source record lies in
    one, once. Whether a number is an existing source."""
    firsts: list[int] = []
    ends: list[int] = []
    for r in values["ranges"]:
        if r["first"] < (ends[-1] if ends else FIRST_SOURCE) or r["count"] < 1 \
                or r["first"] + r["count"] > NR_SOURCES:
            raise StateError(f"snapshot section 'xics': source range {r['first']:#x}+{r['count']} "
                             f"is reserved, out of order or out of range")
        firsts.append(r["first"])
        ends.append(r["first"] + r["count"])

    def exists(nr: int) -> bool:
        k = bisect_right(firsts, nr) - 1
        return k >= 0 and nr < ends[k]

    seen: set[int] = set()
    for s in values["sources"]:
        if not exists(s["nr"]) or s["nr"] in seen:
            raise StateError(f"snapshot section 'xics': source {s['nr']:#x} is not in the "
                             f"saved ranges or is listed twice")
        seen.add(s["nr"])
    return exists


def _check(x: Xics, values: dict) -> None:
    """Sources are valid, the presenters are this machine's, and every XISR
    names the IPI or an existing source."""
    exists = _check_sources(values)
    servers = [i["server"] for i in values["icps"]]
    if sorted(servers) != sorted(x.icps):
        raise StateError(f"snapshot section 'xics' has presenters {sorted(servers)}, "
                         f"this machine {sorted(x.icps)}")
    for i in values["icps"]:
        xisr = i["xirr"] & XISR_MASK
        if xisr not in (0, XICS_IPI) and not exists(xisr):
            raise StateError(f"snapshot section 'xics': presenter {i['server']} holds "
                             f"{xisr:#x}, which is not a source")


XICS_SOURCE = Struct((
    Field("nr", UInt(20)),                     # 16 .. 2^20 - 1
    Field("server", U32),
    Field("priority", U8),                     # 0xff = masked
    Field("saved_priority", U8),               # for ibm,int-on
    Field("status", UInt(4)),                  # ST_ASSERTED|ST_SENT|ST_REJECTED|ST_MASKED_PENDING
    Field("type", Str(SOURCE_TYPES)),
))
XICS_ICP = Struct((
    Field("server", U32),
    Field("xirr", U32),                        # CPPR << 24 | XISR
    Field("pending_priority", U8),
    Field("mfrr", U8),
    Field("in_service", Array(UInt(24))),      # accepted XISRs not yet EOId, oldest first
))
XICS_RANGE = Struct((
    Field("first", UInt(20)),                  # 16 .. 2^20 - 1
    Field("count", UInt(21)),
))
XICS_STATE = VMStateDescription(
    "xics", 2,
    (Field("ranges", Array(XICS_RANGE), get_fn=_save_ranges, put_fn=_put_ranges),
     Field("sources", Array(XICS_SOURCE), get_fn=_save_sources, put_fn=_put_sources),
     Field("icps", Array(XICS_ICP), get_fn=_save_icps, put_fn=_put_icps)),
    minimum_version=2,                         # version 1: positional lists and "active"
    check=_check)

Xics.VMSTATE = XICS_STATE

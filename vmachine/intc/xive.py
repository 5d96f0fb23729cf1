"""XIVE: the POWER9 interrupt controller as QEMU 7.2 models it for sPAPR guests.

Semantics follow QEMU 7.2 (hw/intc/xive.c, spapr_xive.c, xive_regs.h); this
module is the board-independent model, `xive_spapr.py` the pseries glue.

  * Sources (IVSE): one status byte per LISN, bits 1..0 = PQ (00 idle,
    10 pending, 11 pending + queued, 01 off), bit 2 = LSI line asserted; a
    per-LISN LSI flag. Reset leaves every source off (PQ = 01).
  * EAS table: one 64-bit word per LISN (architected big-endian layout, kept
    here as its numeric value): valid, END block/index, masked, EISN.
  * END table: eight 32-bit words per END (sPAPR: END = vcpu_id * 8 + prio),
    with the event queue (guest RAM page, size, offset, generation), the
    unconditional-notify bit and the ESn/ESe PQ pairs.
  * Thread contexts (TIMA): 64 bytes of ring registers per vCPU (QW0 user,
    QW1 OS, QW2 pool, QW3 phys; NSR CPPR IPB LSMFB ACK# INC AGE PIPR, word2);
    the OS ring drives the vCPU's external interrupt line.
  * Router: trigger -> EAS -> END enqueue (+ ESn coalescing unless always
    notify) -> presenter: the thread whose OS CAM line holds the END's NVT
    gets the priority's IPB bit, PIPR, NSR.EO and its line raised.

The guest interface is two tables: ESB_OPS (what a load or store does at
each ESB page offset) and TM_OPERATIONS (the TIMA special operations, as
QEMU's xive_tm_operations); raw TIMA register accesses go through the page
views. Migrated state is declared once, XIVE_STATE at the end of the file.

Guest mistakes never raise: they are reported through `guest_error` and get
QEMU's answer. Host-interface misuse raises `DeviceError`.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Callable

from ..errors import DeviceError
from ..state import (Migratable, Array, BOOL, Bytes, Field, StateError, Struct, U32, UInt,
                     VMStateDescription)
from .hostargs import host_bytes, host_callable, host_flag, host_index, host_int, host_record

# ---- ESB (xive.h) -------------------------------------------------------------------------
PQ_RESET, PQ_OFF, PQ_PENDING, PQ_QUEUED = 0x0, 0x1, 0x2, 0x3     # 00, 01, 10, 11
PQ_VAL_P, PQ_VAL_Q = 0x2, 0x1
STATUS_ASSERTED = 0x4                  # QEMU XIVE_STATUS_ASSERTED (LSI level high)

ESB_LOAD_EOI = 0x000                   # loads 0x000..0x7ff: EOI
ESB_STORE_EOI = 0x400                  # stores 0x400..0x7ff: store EOI (if supported)
ESB_GET = 0x800                        # loads 0x800..0xbff: read PQ
ESB_INJECT = 0x800                     # stores 0x800..0xbff: forward the event
ESB_SET_PQ_00, ESB_SET_PQ_01, ESB_SET_PQ_10, ESB_SET_PQ_11 = 0xC00, 0xD00, 0xE00, 0xF00

ESB_SHIFT = 17                         # two 64 KiB pages per LISN (XIVE_ESB_64K_2PAGE)
ESB_PAGE_SHIFT = 16
ALL_ONES = 0xFFFF_FFFF_FFFF_FFFF

# ---- EAS / END / NVT words (xive_regs.h, IBM bit numbering) ---------------------------------
def _bit64(n: int) -> int:
    return 1 << (63 - n)


def _bit32(n: int) -> int:
    return 1 << (31 - n)


EAS_VALID = _bit64(0)
EAS_END_BLOCK_SHIFT, EAS_END_BLOCK_MASK = 56, 0xF        # bits 4..7
EAS_END_INDEX_SHIFT, EAS_END_INDEX_MASK = 32, 0xFF_FFFF  # bits 8..31
EAS_MASKED = _bit64(32)
EAS_END_DATA_MASK = 0x7FFF_FFFF                          # bits 33..63
EAS_DEFINED = (EAS_VALID | EAS_END_BLOCK_MASK << EAS_END_BLOCK_SHIFT
               | EAS_END_INDEX_MASK << EAS_END_INDEX_SHIFT | EAS_MASKED | EAS_END_DATA_MASK)

END_W0_VALID = _bit32(0)
END_W0_ENQUEUE = _bit32(1)
END_W0_UCOND_NOTIFY = _bit32(2)
END_W0_BACKLOG = _bit32(3)
END_W0_ESCALATE_CTL = _bit32(5)
END_W0_QSIZE_SHIFT, END_W0_QSIZE_MASK = 16, 0xF          # bits 12..15
END_W1_ESN_SHIFT = 30                                    # bits 0..1
END_W1_ESE_SHIFT = 28                                    # bits 2..3
END_W1_ESN_Q = _bit32(1)
END_W1_ESE_Q = _bit32(3)
END_W1_GENERATION = _bit32(9)
END_W1_PAGE_OFF_MASK = 0x3F_FFFF                         # bits 10..31
END_W2_OP_DESC_HI_MASK = 0x0FFF_FFFF                     # bits 4..31
END_W6_FORMAT_BIT = _bit32(8)
END_W6_NVT_BLOCK_SHIFT, END_W6_NVT_BLOCK_MASK = 19, 0xF  # bits 9..12
END_W6_NVT_INDEX_MASK = 0x7_FFFF                         # bits 13..31
END_W7_F0_PRIORITY_SHIFT = 16                            # bits 8..15
# Bits xive_regs.h defines in each END word (the rest is reserved): w0 v q n b p e u s,
# QSIZE 12..15, SW0 16, HWDEP 24..31; w1 ESn ESe 0..3, generation 9, page offset 10..31;
# w2 migration register + OP_DESC_HI; w3 OP_DESC_LO; w4 escalation END 4..31; w5
# escalation data 1..31; w6 format, NVT block and index 8..31; w7 (format 0) ignore,
# block grouping, priority 8..15, (format 1) wakez, log server id.
END_W_DEFINED = (0xFF0F_80FF, 0xF07F_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF,
                 0x0FFF_FFFF, 0x7FFF_FFFF, 0x00FF_FFFF, 0xC0FF_0000)
END_W7_F1_DEFINED = 0xFFFF_FFFF

# ---- TIMA (xive_regs.h) ---------------------------------------------------------------------
TM_SHIFT = 16
TM_HW_PAGE, TM_HV_PAGE, TM_OS_PAGE, TM_USER_PAGE = 0, 1, 2, 3
TM_QW0_USER, TM_QW1_OS, TM_QW2_HV_POOL, TM_QW3_HV_PHYS = 0x00, 0x10, 0x20, 0x30
TM_NSR, TM_CPPR, TM_IPB, TM_LSMFB, TM_ACK_CNT, TM_INC, TM_AGE, TM_PIPR = range(8)
TM_WORD2 = 0x8
TM_QW1W2_VO = _bit32(0)
TM_QW1W2_OS_CAM_MASK = 0xFF_FFFF                         # bits 8..31
TM_QW2W2_VP = _bit32(0)
TM_QW3B8_VT = 0x80
TM_QW1_NSR_EO = 0x80
TM_QW3_NSR_HE_PHYS = 2
TM_SPC_ACK_OS_REG = 0x810              # 2-byte load: ack the OS interrupt
TM_SPC_SET_OS_PENDING = 0x812          # 1-byte store: set an IPB bit
TM_SPC_PULL_OS_CTX = 0x818             # 4/8-byte load (HV page): pull the OS context
TM_SPC_PULL_POOL_CTX = 0x828
TM_SPC_ACK_HV_REG = 0x830
TM_RING_SIZE = 0x10
TM_REGS_SIZE = 0x40
PRIORITY_MAX = 7

# Access map of each TIMA page for raw accesses: 1 = write, 2 = read (xive.c xive_tm_*_view).
_TM_VIEWS = (
    bytes([3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,      # HW page
           3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
           0, 0, 3, 3, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
           3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 3, 3, 3, 0]),
    bytes([3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,      # HV page
           3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
           0, 0, 3, 3, 0, 0, 0, 0, 0, 3, 3, 3, 0, 0, 0, 0,
           3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 0, 0, 0, 0]),
    bytes([3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,      # OS page
           2, 3, 2, 2, 2, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]
          + [0] * 32),
    bytes([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]      # user page
          + [0] * 48),
)

# sPAPR numbering (spapr_xive.c)
NVT_BASE = 0x400                       # NVT index = 0x400 + vcpu_id
END_PER_VCPU = 8                       # END index = vcpu_id * 8 + priority
MAX_VCPU_ID = END_W6_NVT_INDEX_MASK - NVT_BASE   # the NVT index is 19 bits
MAX_IRQS = 1 << 28                     # a LISN is the 28-bit index of a notification


def _tm_view_mask(offset: int, size: int, write: bool) -> int:
    """The bytes of a raw TIMA access its page's view lets through, as a
    mask of the (big-endian) access value."""
    view = _TM_VIEWS[(offset >> TM_SHIFT) & 3]
    reg = offset & 0x3F
    bit = 1 if write else 2
    mask = 0
    for i in range(size):
        if reg + i < len(view) and view[reg + i] & bit:
            mask |= 0xFF << (8 * (size - i - 1))
    return mask


def priority_to_ipb(prio: int) -> int:
    """IPB bit of a priority (0 for priorities above 7)."""
    return 0 if prio > PRIORITY_MAX else 1 << (PRIORITY_MAX - prio)


def ipb_to_pipr(ipb: int) -> int:
    """Most favoured pending priority of an IPB, 0xff when empty."""
    if not ipb:
        return 0xFF
    return 8 - (ipb & 0xFF).bit_length()


def nvt_cam_line(blk: int, idx: int) -> int:
    return (blk << 19) | idx


# ---- host-interface records ------------------------------------------------------------------
@dataclass(frozen=True)
class SourceState:
    """One LISN: PQ bits, LSI flag and line level, and its EAS word."""
    pq: int
    lsi: bool
    asserted: bool
    eas: int

    @property
    def valid(self) -> bool:
        return bool(self.eas & EAS_VALID)

    @property
    def masked(self) -> bool:
        return bool(self.eas & EAS_MASKED)

    @property
    def end_index(self) -> int:
        return (self.eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK

    @property
    def eisn(self) -> int:
        return self.eas & EAS_END_DATA_MASK


@dataclass(frozen=True)
class EndState:
    """One END in decoded form (the KVM XIVE device's EQ attribute shape) plus
    its raw words."""
    words: tuple[int, ...]

    @property
    def valid(self) -> bool:
        return bool(self.words[0] & END_W0_VALID)

    @property
    def enqueue(self) -> bool:
        return bool(self.words[0] & END_W0_ENQUEUE)

    @property
    def always_notify(self) -> bool:
        return bool(self.words[0] & END_W0_UCOND_NOTIFY)

    @property
    def qaddr(self) -> int:
        return ((self.words[2] & END_W2_OP_DESC_HI_MASK) << 32) | self.words[3]

    @property
    def qshift(self) -> int:
        """Queue page shift (12, 16, 21, 24), 0 when queueing is off."""
        return ((self.words[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12 if self.enqueue else 0

    @property
    def qindex(self) -> int:
        return self.words[1] & END_W1_PAGE_OFF_MASK

    @property
    def generation(self) -> int:
        return 1 if self.words[1] & END_W1_GENERATION else 0

    @property
    def esn(self) -> int:
        return (self.words[1] >> END_W1_ESN_SHIFT) & 3

    @property
    def ese(self) -> int:
        return (self.words[1] >> END_W1_ESE_SHIFT) & 3

    @property
    def nvt_index(self) -> int:
        return self.words[6] & END_W6_NVT_INDEX_MASK

    @property
    def priority(self) -> int:
        return (self.words[7] >> END_W7_F0_PRIORITY_SHIFT) & 0xFF


@dataclass(frozen=True)
class OsRing:
    """QW1 (OS ring) of one vCPU's thread context."""
    nsr: int
    cppr: int
    ipb: int
    lsmfb: int
    ack_cnt: int
    inc: int
    age: int
    pipr: int
    word2: int            # CAM line with the VO bit

    def to_bytes(self) -> bytes:
        return (bytes([self.nsr, self.cppr, self.ipb, self.lsmfb, self.ack_cnt, self.inc,
                       self.age, self.pipr]) + self.word2.to_bytes(4, "big") + bytes(4))


class Tctx:
    """A vCPU's thread interrupt context: 64 bytes of ring registers and the
    level of its OS-ring output (the vCPU's external interrupt input)."""

    __slots__ = ("vcpu_id", "regs", "line", "hv_line", "output")

    def __init__(self, vcpu_id: int, output: Callable[[bool], None]):
        self.vcpu_id = vcpu_id
        self.regs = bytearray(TM_REGS_SIZE)
        self.line = False
        self.hv_line = False          # QW3 output: not wired on a pseries guest
        self.output = output

    def word2(self, ring: int) -> int:
        return int.from_bytes(self.regs[ring + TM_WORD2:ring + TM_WORD2 + 4], "big")

    def set_word2(self, ring: int, value: int) -> None:
        self.regs[ring + TM_WORD2:ring + TM_WORD2 + 4] = (value & 0xFFFF_FFFF).to_bytes(4, "big")


class XiveHostInterface:
    """The host side of the device, as KVM's XIVE device offers it to QEMU
    (get/set of sources, ENDs and thread contexts for migration and tests).
    Every setter validates everything first and changes nothing when it
    refuses (DeviceError), so that no accepted state can make a later guest
    operation fail. Mixed into Xive, whose tables it reads and writes."""

    status: bytearray
    lsi: bytearray
    eat: array
    endt: array
    nr_ends: int
    tctxs: dict[int, "Tctx"]

    def _check_lisn(self, lisn: int) -> int:           # Xive's
        raise NotImplementedError

    def _set_line(self, t: "Tctx", level: bool) -> None:   # Xive's
        raise NotImplementedError

    def get_source(self, lisn: int) -> SourceState:
        lisn = self._check_lisn(lisn)
        s = self.status[lisn]
        return SourceState(s & 3, bool(self.lsi[lisn]), bool(s & STATUS_ASSERTED), self.eat[lisn])

    def set_source(self, lisn: int, state: SourceState) -> None:
        """Restore a source (no event is generated). Refused (EINVAL, nothing
        changed): PQ past 2 bits, reserved EAS bits, a valid EAS naming an END
        this machine lacks (masked or not: H_INT_GET_SOURCE_CONFIG reads it),
        an asserted MSI, an invalid EAS for a claimed LISN (no source is ever
        freed)."""
        lisn = self._check_lisn(lisn)
        host_record(state, SourceState, f"XIVE LISN {lisn:#x} state")
        pq = host_int(state.pq, f"XIVE LISN {lisn:#x} PQ", 0, 3)
        lsi = host_flag(state.lsi, f"XIVE LISN {lisn:#x} lsi")
        asserted = host_flag(state.asserted, f"XIVE LISN {lisn:#x} asserted")
        eas = host_int(state.eas, f"XIVE LISN {lisn:#x} EAS", 0, ALL_ONES)
        if eas & ~EAS_DEFINED:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x}: reserved EAS bits in {eas:#x}")
        problem = self._eas_problem(eas)
        if problem:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x}: {problem}")
        if asserted and not lsi:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x}: an MSI cannot be asserted")
        if self.eat[lisn] & EAS_VALID and not eas & EAS_VALID:
            # As KVM's XIVE device: a source, once there, cannot be removed (the
            # board's lines into it would raise ENOENT).
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x} is claimed: its EAS must stay valid")
        self.status[lisn] = pq | (STATUS_ASSERTED if asserted else 0)
        self.lsi[lisn] = 1 if lsi else 0
        self.eat[lisn] = eas

    def _eas_problem(self, eas: int) -> str | None:
        """Why an EAS word cannot be used here: a valid EAS, masked or not,
        must name an END of this machine in block 0 (sPAPR has one XIVE
        block), since routing and H_INT_GET_SOURCE_CONFIG both read it."""
        if not eas & EAS_VALID:
            return None
        idx = (eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK
        if idx >= self.nr_ends:
            return f"END {idx:#x} out of range"
        blk = (eas >> EAS_END_BLOCK_SHIFT) & EAS_END_BLOCK_MASK
        if blk:
            return f"END block {blk} (only block 0 exists)"
        return None

    def _check_end(self, idx: int) -> int:
        if type(idx) is not int:
            idx = host_index(idx, "XIVE END")
        if not 0 <= idx < self.nr_ends:
            raise DeviceError("EINVAL", f"XIVE END {idx:#x} out of range (0..{self.nr_ends - 1:#x})")
        return idx * 8

    def get_end(self, idx: int) -> EndState:
        b = self._check_end(idx)
        return EndState(tuple(self.endt[b:b + 8]))

    def set_end(self, idx: int, state: EndState) -> None:
        """Restore an END. Refused (EINVAL, nothing changed): anything but
        eight 32-bit words, reserved bits, a format-0 priority other than
        0..7 or 0xff, a queue that cannot be used (size, alignment, index)."""
        b = self._check_end(idx)
        host_record(state, EndState, f"XIVE END {idx:#x} state")
        words = state.words
        if not isinstance(words, (tuple, list)) or len(words) != 8:
            raise DeviceError("EINVAL", f"XIVE END {idx:#x}: need eight 32-bit words")
        words = tuple(host_int(v, f"XIVE END {idx:#x} word {k}", 0, 0xFFFF_FFFF)
                      for k, v in enumerate(words))
        problem = _end_problem(EndState(words))
        if problem:
            raise DeviceError("EINVAL", f"XIVE END {idx:#x}: {problem}")
        self.endt[b:b + 8] = array("I", words)

    @staticmethod
    def make_end(vcpu_id: int, prio: int, qaddr: int = 0, qshift: int = 0, qindex: int = 0,
                 generation: int = 1, always_notify: bool = True, esn: int = 0, ese: int = 1) -> EndState:
        """An END as H_INT_SET_QUEUE_CONFIG builds it (qshift 0: no queue)."""
        w0 = END_W0_VALID | (END_W0_UCOND_NOTIFY if always_notify else 0)
        if qshift:
            w0 |= END_W0_ENQUEUE | ((qshift - 12) & END_W0_QSIZE_MASK) << END_W0_QSIZE_SHIFT
        w1 = (esn << END_W1_ESN_SHIFT) | (ese << END_W1_ESE_SHIFT) | \
             (END_W1_GENERATION if generation else 0) | qindex
        return EndState((w0, w1, (qaddr >> 32) & END_W2_OP_DESC_HI_MASK, qaddr & 0xFFFF_FFFF,
                         0, 0, NVT_BASE + vcpu_id, prio << END_W7_F0_PRIORITY_SHIFT))

    def _host_tctx(self, vcpu_id: int) -> Tctx:
        vcpu_id = host_int(vcpu_id, "XIVE vCPU id", 0, MAX_VCPU_ID)
        t = self.tctxs.get(vcpu_id)
        if t is None:
            raise DeviceError("ENOENT", f"no XIVE thread context for vCPU {vcpu_id}")
        return t

    def get_os_ring(self, vcpu_id: int) -> OsRing:
        r = self._host_tctx(vcpu_id).regs
        o = TM_QW1_OS
        return OsRing(*r[o:o + 8], int.from_bytes(r[o + 8:o + 12], "big"))

    def set_os_ring(self, vcpu_id: int, ring: OsRing) -> None:
        """Restore the OS ring; the output follows NSR.EO. Refused (EINVAL,
        nothing changed): a field wider than its register (bytes; word2 32
        bits), NSR bits other than EO."""
        t = self._host_tctx(vcpu_id)
        host_record(ring, OsRing, f"XIVE vCPU {vcpu_id} OS ring")
        vals = [host_int(getattr(ring, f), f"XIVE vCPU {vcpu_id} OS ring {f}", 0, 0xFF)
                for f in ("nsr", "cppr", "ipb", "lsmfb", "ack_cnt", "inc", "age", "pipr")]
        word2 = host_int(ring.word2, f"XIVE vCPU {vcpu_id} OS ring word2", 0, 0xFFFF_FFFF)
        if vals[0] & ~TM_QW1_NSR_EO:
            raise DeviceError("EINVAL", f"XIVE vCPU {vcpu_id}: unknown NSR bits {vals[0]:#x}")
        t.regs[TM_QW1_OS:TM_QW1_OS + 16] = OsRing(*vals, word2).to_bytes()
        self._set_line(t, bool(vals[0] & TM_QW1_NSR_EO))

    def get_tctx_regs(self, vcpu_id: int) -> bytes:
        return bytes(self._host_tctx(vcpu_id).regs)

    def set_tctx_regs(self, vcpu_id: int, regs: bytes, line: bool | None = None) -> None:
        """Restore all four rings (64 bytes); the OS-ring output follows
        NSR.EO unless `line` says otherwise."""
        t = self._host_tctx(vcpu_id)
        regs = host_bytes(regs, f"XIVE vCPU {vcpu_id} thread context", TM_REGS_SIZE)
        if line is not None:
            line = host_flag(line, f"XIVE vCPU {vcpu_id} line")
        t.regs[:] = regs
        self._set_line(t, bool(regs[TM_QW1_OS + TM_NSR] & TM_QW1_NSR_EO) if line is None else line)


class Xive(XiveHostInterface, Migratable):
    """The sPAPR XIVE router/presenter with its sources, EAS and END tables.

    `ram` is the guest RAM the event queues live in (needs contains() and
    write()); `vcpu_ids` the vCPUs' ids (DT `reg` / hcall "target")."""

    def __init__(self, nr_irqs: int, vcpu_ids: list[int], ram,
                 guest_error: Callable[..., None] = lambda *a, **k: None,
                 event: Callable[..., None] = lambda *a, **k: None,
                 store_eoi: bool = False):
        if type(nr_irqs) is not bool and isinstance(nr_irqs, int) and nr_irqs <= 0:
            raise DeviceError("EINVAL", "XIVE needs at least one interrupt")
        nr_irqs = host_int(nr_irqs, "XIVE nr_irqs", 1, MAX_IRQS)
        if not isinstance(vcpu_ids, (list, tuple, range)):
            raise DeviceError("EINVAL", f"XIVE vcpu_ids must be a list of integers, "
                                        f"not {type(vcpu_ids).__name__}")
        vcpu_ids = [host_int(v, "XIVE vCPU id", 0, MAX_VCPU_ID) for v in vcpu_ids]
        if len(set(vcpu_ids)) != len(vcpu_ids):
            raise DeviceError("EINVAL", f"XIVE vCPU ids {vcpu_ids} are not unique")
        host_callable(guest_error, "XIVE guest_error")
        host_callable(event, "XIVE event")
        store_eoi = host_flag(store_eoi, "XIVE store_eoi")
        self.nr_irqs = nr_irqs
        self.ram = ram
        self.guest_error = guest_error
        self.event = event
        self.store_eoi = store_eoi
        self.nr_servers = (max(vcpu_ids) + 1) if vcpu_ids else 0
        self.nr_ends = self.nr_servers * END_PER_VCPU
        self.status = bytearray(nr_irqs)
        self.lsi = bytearray(nr_irqs)
        self.eat = array("Q", bytes(8 * nr_irqs))
        self.endt = array("I", bytes(4 * 8 * self.nr_ends))
        self.tctxs: dict[int, Tctx] = {v: Tctx(v, lambda level: None) for v in vcpu_ids}
        self.reset()

    # ---- reset and claims --------------------------------------------------------------------
    def reset(self) -> None:
        """QEMU machine reset: sources off, valid EASs masked, ENDs cleared,
        thread contexts reset with the OS CAM line pushed, lines low."""
        self.status[:] = bytes([PQ_OFF]) * self.nr_irqs            # LSI flags are kept
        if any(self.eat):               # (all zero at start: nothing to mask)
            self.eat[:] = array("Q", [(EAS_VALID | EAS_MASKED) if e & EAS_VALID else 0
                                      for e in self.eat])
        self.endt[:] = array("I", _END_RESET * self.nr_ends)       # every END as _end_reset leaves it
        for t in self.tctxs.values():
            self._tctx_reset(t)

    def _end_reset(self, idx: int) -> None:
        b = idx * 8
        self.endt[b:b + 8] = array("I", [0, END_W1_ESE_Q | END_W1_ESN_Q, 0, 0, 0, 0, 0, 0])

    def _tctx_reset(self, t: Tctx) -> None:
        t.regs[:] = bytes(TM_REGS_SIZE)
        r = t.regs
        r[TM_QW1_OS + TM_LSMFB] = r[TM_QW1_OS + TM_ACK_CNT] = r[TM_QW1_OS + TM_AGE] = 0xFF
        r[TM_QW1_OS + TM_PIPR] = 0xFF
        r[TM_QW3_HV_PHYS + TM_PIPR] = 0xFF
        t.set_word2(TM_QW1_OS, TM_QW1W2_VO | nvt_cam_line(0, NVT_BASE + t.vcpu_id))
        t.hv_line = False
        self._set_line(t, False)

    def claim(self, lisn: int, lsi: bool = False) -> None:
        """Allocate a LISN (QEMU spapr_xive_claim_irq): EAS valid and masked.
        The END the EAS keeps must exist (an EAS restored while free may name
        any)."""
        lisn = self._check_lisn(lisn)
        lsi = host_flag(lsi, "XIVE lsi")
        if self.eat[lisn] & EAS_VALID:
            raise DeviceError("EBUSY", f"XIVE LISN {lisn:#x} is not free")
        eas = self.eat[lisn] | EAS_VALID | EAS_MASKED
        problem = self._eas_problem(eas)
        if problem:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x}: {problem}")
        self.eat[lisn] = eas
        if lsi:
            self.lsi[lisn] = 1

    def set_output(self, vcpu_id: int, output: Callable[[bool], None]) -> None:
        t = self._host_tctx(vcpu_id)
        t.output = host_callable(output, f"XIVE vCPU {vcpu_id} output")

    # ---- numbers -----------------------------------------------------------------------------
    def _check_lisn(self, lisn: int) -> int:
        if type(lisn) is not int:
            lisn = host_index(lisn, "XIVE LISN")
        if not 0 <= lisn < self.nr_irqs:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x} out of range (0..{self.nr_irqs - 1:#x})")
        return lisn

    def end_index(self, vcpu_id: int, prio: int) -> int:
        return vcpu_id * END_PER_VCPU + prio

    # ---- ESB state machine (xive.c xive_esb_*, xive_source_*) ----------------------------------
    @staticmethod
    def pq_trigger(pq: int) -> tuple[int, bool]:
        """(new PQ, forward event) for a trigger."""
        if pq == PQ_RESET:
            return PQ_PENDING, True
        if pq in (PQ_PENDING, PQ_QUEUED):
            return PQ_QUEUED, False
        return PQ_OFF, False

    @staticmethod
    def pq_eoi(pq: int) -> tuple[int, bool]:
        """(new PQ, forward event) for an EOI."""
        if pq in (PQ_RESET, PQ_PENDING):
            return PQ_RESET, False
        if pq == PQ_QUEUED:
            return PQ_PENDING, True
        return PQ_OFF, False

    def esb_get(self, lisn: int) -> int:
        return self.status[lisn] & 3

    def esb_set(self, lisn: int, pq: int) -> int:
        old = self.status[lisn] & 3
        self.status[lisn] = (self.status[lisn] & ~3) | (pq & 3)
        return old

    def _lsi_trigger(self, lisn: int) -> bool:
        old = self.esb_get(lisn)
        self.status[lisn] |= STATUS_ASSERTED
        if old == PQ_RESET:
            self.esb_set(lisn, PQ_PENDING)
            return True
        return False

    def source_trigger(self, lisn: int) -> bool:
        new, fwd = self.pq_trigger(self.esb_get(lisn))
        self.esb_set(lisn, new)
        if self.lsi[lisn] and new == PQ_QUEUED:
            self.guest_error("XIVE: queued an event on LSI", lisn=lisn)
        return fwd

    def source_eoi(self, lisn: int) -> bool:
        new, fwd = self.pq_eoi(self.esb_get(lisn))
        self.esb_set(lisn, new)
        # An LSI still asserted re-triggers at EOI.
        if self.lsi[lisn] and self.status[lisn] & STATUS_ASSERTED:
            fwd = self._lsi_trigger(lisn)
        return fwd

    def set_irq(self, lisn: int, level: int) -> None:
        """A device line: LSI level or MSI edge (xive_source_set_irq)."""
        lisn = self._check_lisn(lisn)
        if type(level) is not bool:
            level = host_flag(level, f"XIVE LISN {lisn:#x} level")
        if not self.eat[lisn] & EAS_VALID:
            raise DeviceError("ENOENT", f"XIVE LISN {lisn:#x} is not allocated")
        fwd = False
        if self.lsi[lisn]:
            if level:
                fwd = self._lsi_trigger(lisn)
            else:
                self.status[lisn] &= ~STATUS_ASSERTED & 0xFF
        elif level:
            fwd = self.source_trigger(lisn)
        if fwd:
            self.notify(lisn)

    # ---- ESB MMIO (window offset = lisn << 17 | page << 16 | offset; ops in ESB_OPS) ---------
    def _esb_bad(self, addr: int, size: int, cpu: int, load: bool) -> None:
        """Log an ESB access that reaches no source: QEMU's ESB region takes
        8-byte accesses only (the memory core refuses others, read as zero),
        and the window ends at nr_irqs."""
        if size != 8:
            self.guest_error("XIVE: invalid ESB access size", cpu=cpu, addr=addr, size=size)
        else:
            what = "load" if load else "store"
            self.guest_error(f"XIVE: ESB {what} outside the sources", cpu=cpu, addr=addr)

    def esb_read(self, addr: int, size: int, cpu: int = -1) -> int:
        """Load from the source ESB window (xive_source_esb_read)."""
        lisn = addr >> ESB_SHIFT
        if size != 8 or lisn >= self.nr_irqs:
            self._esb_bad(addr, size, cpu, True)
            return 0
        slot = (addr >> _ESB_SLOT_SHIFT) & _ESB_SLOT_MASK
        load = _ESB_LOADS[slot]
        if load is None:
            name = _ESB_BY_SLOT[slot].name
            self.guest_error(f"XIVE: invalid load on {name}", cpu=cpu, lisn=lisn, addr=addr)
            return ALL_ONES
        return load(self, lisn, addr & 0xFFF, cpu)

    def esb_write(self, addr: int, size: int, value: int, cpu: int = -1) -> None:
        """Store to the source ESB window (xive_source_esb_write); the value
        is not used."""
        lisn = addr >> ESB_SHIFT
        if size != 8 or lisn >= self.nr_irqs:
            self._esb_bad(addr, size, cpu, False)
            return
        slot = (addr >> _ESB_SLOT_SHIFT) & _ESB_SLOT_MASK
        store = _ESB_STORES[slot]
        if store is None:
            name = _ESB_BY_SLOT[slot].name
            self.guest_error(f"XIVE: invalid store on {name}", cpu=cpu, lisn=lisn, addr=addr)
            return
        store(self, lisn, addr & 0xFFF, cpu)

    # ---- router (xive_router_notify, xive_router_end_notify, xive_end_enqueue) ----------------
    def notify(self, lisn: int) -> None:
        eas = self.eat[lisn]
        if not eas & EAS_VALID:
            self.guest_error("XIVE: invalid LISN", lisn=lisn)
            return
        if eas & EAS_MASKED:
            return
        self.end_notify((eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK, eas & EAS_END_DATA_MASK)

    def end_notify(self, idx: int, data: int) -> None:
        if idx >= self.nr_ends:
            self.guest_error("XIVE: No END", end=idx)
            return
        b = idx * 8
        w = self.endt
        if not w[b] & END_W0_VALID:
            self.guest_error("XIVE: END is invalid", end=idx)
            return
        if w[b] & END_W0_ENQUEUE:
            self._enqueue(idx, data)
        fmt = 1 if w[b + 6] & END_W6_FORMAT_BIT else 0
        prio = (w[b + 7] >> END_W7_F0_PRIORITY_SHIFT) & 0xFF
        if fmt == 0 and prio == 0xFF:
            return                                          # END masked
        if not w[b] & END_W0_UCOND_NOTIFY:
            pq = (w[b + 1] >> END_W1_ESN_SHIFT) & 3
            new, fwd = self.pq_trigger(pq)
            w[b + 1] = (w[b + 1] & ~(3 << END_W1_ESN_SHIFT)) | (new << END_W1_ESN_SHIFT)
            if not fwd:
                return                                      # coalesced by ESn
        nvt_idx = w[b + 6] & END_W6_NVT_INDEX_MASK
        nvt_blk = (w[b + 6] >> END_W6_NVT_BLOCK_SHIFT) & END_W6_NVT_BLOCK_MASK
        self.presenter_notify(nvt_blk, nvt_idx, prio)

    def _enqueue(self, idx: int, data: int) -> None:
        b = idx * 8
        w = self.endt
        qaddr = ((w[b + 2] & END_W2_OP_DESC_HI_MASK) << 32) | w[b + 3]
        qsize = (w[b] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK
        qindex = w[b + 1] & END_W1_PAGE_OFF_MASK
        gen = 1 if w[b + 1] & END_W1_GENERATION else 0
        entries = 1 << (qsize + 10)
        addr = qaddr + (qindex << 2)
        if not self.ram.contains(addr, 4):
            # QEMU: the DMA write fails, the entry is lost, the END is unchanged
            # and the notification still goes on.
            self.guest_error("XIVE: failed to write END data", end=idx, addr=addr)
            return
        self.ram.write(addr, ((gen << 31) | (data & 0x7FFF_FFFF)).to_bytes(4, "big"))
        qindex = (qindex + 1) & (entries - 1)
        w1 = w[b + 1]
        if qindex == 0:
            w1 ^= END_W1_GENERATION
        w[b + 1] = (w1 & ~END_W1_PAGE_OFF_MASK) | qindex
        self.event("enqueue", end=idx, data=data & 0x7FFF_FFFF)

    # ---- presenter (xive_presenter_notify / tctx) -----------------------------------------------
    def presenter_notify(self, nvt_blk: int, nvt_idx: int, prio: int) -> None:
        vcpu_id = nvt_idx - NVT_BASE
        if vcpu_id not in self.tctxs:
            self.guest_error("XIVE: no NVT", nvt=nvt_idx)
            return
        cam = nvt_cam_line(nvt_blk, nvt_idx)
        match = None
        for t in self.tctxs.values():
            w2 = t.word2(TM_QW1_OS)
            if w2 & TM_QW1W2_VO and (w2 & TM_QW1W2_OS_CAM_MASK) == cam:
                if match is not None:
                    self.guest_error("XIVE: already found a thread context", nvt=nvt_idx)
                    return
                match = t
        if match is None:
            # Not dispatched: sPAPR ENDs have no backlog/escalation, the event is lost.
            self.event("nvt not dispatched", nvt=nvt_idx)
            return
        self.ipb_update(match, TM_QW1_OS, priority_to_ipb(prio))

    def ipb_update(self, t: Tctx, ring: int, ipb: int) -> None:
        r = t.regs
        r[ring + TM_IPB] |= ipb & 0xFF
        r[ring + TM_PIPR] = ipb_to_pipr(r[ring + TM_IPB])
        self._tctx_notify(t, ring)

    def _tctx_notify(self, t: Tctx, ring: int) -> None:
        r = t.regs
        if r[ring + TM_PIPR] < r[ring + TM_CPPR]:
            if ring == TM_QW1_OS:
                r[ring + TM_NSR] |= TM_QW1_NSR_EO
                self._set_line(t, True)
            elif ring == TM_QW3_HV_PHYS:
                r[ring + TM_NSR] |= TM_QW3_NSR_HE_PHYS << 6
                t.hv_line = True

    def _set_line(self, t: Tctx, level: bool) -> None:
        t.line = level
        t.output(level)

    def set_cppr(self, t: Tctx, ring: int, cppr: int) -> None:
        if cppr > PRIORITY_MAX:
            cppr = 0xFF
        t.regs[ring + TM_CPPR] = cppr
        self._tctx_notify(t, ring)

    def accept(self, t: Tctx, ring: int) -> int:
        """The ack special load: (old NSR << 8) | new CPPR."""
        r = t.regs
        nsr = r[ring + TM_NSR]
        mask = TM_QW1_NSR_EO if ring == TM_QW1_OS else 0xC0
        if ring == TM_QW1_OS:
            self._set_line(t, False)
        else:
            t.hv_line = False
        if nsr & mask:
            cppr = r[ring + TM_PIPR]
            r[ring + TM_CPPR] = cppr
            r[ring + TM_IPB] &= ~priority_to_ipb(cppr) & 0xFF
            r[ring + TM_PIPR] = ipb_to_pipr(r[ring + TM_IPB])
            r[ring + TM_NSR] &= ~mask & 0xFF
        self.event("ack", vcpu=t.vcpu_id, nsr=nsr, cppr=r[ring + TM_CPPR])
        return (nsr << 8) | r[ring + TM_CPPR]

    # ---- TIMA MMIO (xive_tctx_tm_read / xive_tctx_tm_write; special ops in TM_OPERATIONS) ----
    def _tm_raw_mask(self, t: Tctx, offset: int, size: int, write: bool) -> int:
        """The byte mask a raw register access may touch, or 0 after logging
        it as a guest error (the one place for bad TIMA offsets and widths):
        2K and above is special operations only, raw accesses take 4 or 8
        bytes, never the user ring, and only what the page's view allows."""
        rw = "write" if write else "read"
        if offset & 0x800:
            self.guest_error(f"XIVE: invalid {rw} access to TIMA", vcpu=t.vcpu_id, offset=offset,
                             size=size)
            return 0
        mask = _tm_view_mask(offset, size, write)
        if size < 4 or not mask or (offset & 0x30) == TM_QW0_USER:
            self.guest_error(f"XIVE: invalid {rw} access at TIMA", vcpu=t.vcpu_id, offset=offset,
                             size=size)
            return 0
        return mask

    def tm_read(self, t: Tctx, offset: int, size: int) -> int:
        op = _TM_READ_OPS.get(((offset & _TM_OP_BITS) << 4) | size)
        if op is not None:
            return op(self, t)
        mask = self._tm_raw_mask(t, offset, size, False)
        if not mask:
            return ALL_ONES
        reg = offset & 0x3F
        raw = bytes(t.regs[reg:reg + size]).ljust(size, b"\0")
        return int.from_bytes(raw, "big") & mask

    def tm_write(self, t: Tctx, offset: int, size: int, value: int) -> None:
        op = _TM_WRITE_OPS.get(((offset & _TM_OP_BITS) << 4) | size)
        if op is not None:
            op(self, t, value)
            return
        mask = self._tm_raw_mask(t, offset, size, True)
        if not mask:
            return
        reg = offset & 0x3F
        for i in range(size):
            bm = (mask >> (8 * (size - i - 1))) & 0xFF
            if bm and reg + i < TM_REGS_SIZE:
                t.regs[reg + i] = (value >> (8 * (size - i - 1))) & bm


def _end_problem(end: EndState) -> str | None:
    """Why an END (eight 32-bit words) cannot be stored: reserved bits, a
    format-0 priority other than 0..7 and 0xff (masked), an unusable queue."""
    w = end.words
    f1 = bool(w[6] & END_W6_FORMAT_BIT)
    for k, (v, defined) in enumerate(zip(w, END_W_DEFINED)):
        if k == 7 and f1:
            defined = END_W7_F1_DEFINED
        if v & ~defined:
            return f"reserved bits {v & ~defined:#x} in word {k}"
    if not f1 and PRIORITY_MAX < end.priority < 0xFF:
        return f"priority {end.priority:#x} (0..{PRIORITY_MAX} or 0xff)"
    return _end_queue_problem(end)


def _end_queue_problem(end: EndState) -> str | None:
    """Why an END's event queue cannot be used: a size QEMU offers, a
    naturally aligned page, an index inside it."""
    if not end.enqueue:
        return None
    size = 1 << end.qshift
    if end.qshift not in (12, 16, 21, 24) or end.qaddr % size:
        return f"bad queue {end.qaddr:#x}/{end.qshift}"
    if end.qindex >= size // 4:
        return f"queue index {end.qindex} past the end"
    return None


# ---- ESB operations (xive.h XIVE_ESB_*, xive.c xive_source_esb_read/write) -----------------------
# Handlers: load(xive, lisn, page offset, cpu) -> value, store(xive, lisn, page offset, cpu).

def _esb_load_eoi(x: Xive, lisn: int, off: int, cpu: int) -> int:
    """EOI; 1 when Q was set and the event is forwarded again."""
    fwd = x.source_eoi(lisn)
    if fwd:
        x.notify(lisn)
    return int(fwd)


def _esb_load_get(x: Xive, lisn: int, off: int, cpu: int) -> int:
    return x.esb_get(lisn)


def _esb_load_set_pq(x: Xive, lisn: int, off: int, cpu: int) -> int:
    """SET_PQ_00/01/10/11 (0xc00, 0xd00, 0xe00, 0xf00): the old PQ."""
    return x.esb_set(lisn, (off >> 8) & 3)


def _esb_store_trigger(x: Xive, lisn: int, off: int, cpu: int) -> None:
    if x.source_trigger(lisn):
        x.notify(lisn)


def _esb_store_eoi(x: Xive, lisn: int, off: int, cpu: int) -> None:
    """Store EOI, only where the source offers it (never on sPAPR)."""
    if not x.store_eoi:
        x.guest_error("XIVE: invalid Store EOI", cpu=cpu, lisn=lisn)
        return
    if x.source_eoi(lisn):
        x.notify(lisn)


def _esb_store_inject(x: Xive, lisn: int, off: int, cpu: int) -> None:
    """Forward the event, PQ untouched."""
    x.notify(lisn)


def _esb_store_set_pq(x: Xive, lisn: int, off: int, cpu: int) -> None:
    x.esb_set(lisn, (off >> 8) & 3)


@dataclass(frozen=True)
class EsbOp:
    """A range of ESB page offsets (4 KiB pages: the offset is taken modulo
    4K) and what a load or store there does; None: invalid there."""
    name: str
    page: int                          # 0 trigger, 1 management (EOI)
    first: int
    last: int
    load: Callable[[Xive, int, int, int], int] | None
    store: Callable[[Xive, int, int, int], None] | None


ESB_OPS = (
    EsbOp("trigger page", 0, 0x000, 0xFFF, None, _esb_store_trigger),     # any store triggers
    EsbOp("EOI", 1, ESB_LOAD_EOI, 0x3FF, _esb_load_eoi, _esb_store_trigger),
    EsbOp("store EOI", 1, ESB_STORE_EOI, 0x7FF, _esb_load_eoi, _esb_store_eoi),
    EsbOp("GET/INJECT", 1, ESB_GET, 0xBFF, _esb_load_get, _esb_store_inject),
    EsbOp("SET_PQ", 1, ESB_SET_PQ_00, 0xFFF, _esb_load_set_pq, _esb_store_set_pq),
)

# ESB_OPS by address bits 10..16 (page bit 16, 1 KiB slot 10..11): one index per access.
_ESB_SLOT_SHIFT, _ESB_SLOT_MASK = 10, 0x7F


def _esb_slots() -> tuple[EsbOp, ...]:
    out = []
    for slot in range(_ESB_SLOT_MASK + 1):
        page, off = (slot >> 6) & 1, (slot & 3) << 10
        ops = [o for o in ESB_OPS if o.page == page and o.first <= off <= o.last]
        assert len(ops) == 1, (page, off)
        out.append(ops[0])
    return tuple(out)


_ESB_BY_SLOT = _esb_slots()
_ESB_LOADS = tuple(op.load for op in _ESB_BY_SLOT)
_ESB_STORES = tuple(op.store for op in _ESB_BY_SLOT)


# ---- TIMA special operations (xive.c xive_tm_operations) -----------------------------------------
# Handlers: read(xive, tctx) -> value, write(xive, tctx, value).

def _tm_set_os_cppr(x: Xive, t: Tctx, value: int) -> None:
    x.set_cppr(t, TM_QW1_OS, value & 0xFF)


def _tm_push_os_ctx(x: Xive, t: Tctx, value: int) -> None:
    t.set_word2(TM_QW1_OS, value)
    if value & TM_QW1W2_VO:
        x.ipb_update(t, TM_QW1_OS, 0)                 # sPAPR NVTs hold no IPB


def _tm_set_hv_cppr(x: Xive, t: Tctx, value: int) -> None:
    x.set_cppr(t, TM_QW3_HV_PHYS, value & 0xFF)


def _tm_vt_push(x: Xive, t: Tctx, value: int) -> None:
    t.regs[TM_QW3_HV_PHYS + TM_WORD2] = value & 0xFF


def _tm_vt_poll(x: Xive, t: Tctx) -> int:
    return t.regs[TM_QW3_HV_PHYS + TM_WORD2]


def _tm_ack_os_reg(x: Xive, t: Tctx) -> int:
    return x.accept(t, TM_QW1_OS)


def _tm_set_os_pending(x: Xive, t: Tctx, value: int) -> None:
    x.ipb_update(t, TM_QW1_OS, priority_to_ipb(value & 0xFF))


def _tm_pull_os_ctx(x: Xive, t: Tctx) -> int:
    """The OS CAM line, its valid bit cleared."""
    w2 = t.word2(TM_QW1_OS)
    if not w2 & TM_QW1W2_VO:
        x.guest_error("XIVE: pulling invalid NVT", vcpu=t.vcpu_id)
    t.set_word2(TM_QW1_OS, w2 & ~TM_QW1W2_VO)
    return w2


def _tm_ack_hv_reg(x: Xive, t: Tctx) -> int:
    return x.accept(t, TM_QW3_HV_PHYS)


def _tm_pull_pool_ctx(x: Xive, t: Tctx) -> int:
    w2 = t.word2(TM_QW2_HV_POOL) & ~TM_QW2W2_VP
    t.set_word2(TM_QW2_HV_POOL, w2)
    return w2


@dataclass(frozen=True)
class TmOp:
    """A TIMA special operation: an offset in the page (taken modulo 4K) and
    an access size; allowed from `page` and from the more privileged pages
    below it (HW 0 < HV 1 < OS 2 < user 3)."""
    page: int
    offset: int
    size: int
    name: str
    read: Callable[[Xive, Tctx], int] | None = None
    write: Callable[[Xive, Tctx, int], None] | None = None


TM_OPERATIONS = (
    # below 2K: raw register offsets with a side effect
    TmOp(TM_OS_PAGE, TM_QW1_OS + TM_CPPR, 1, "set OS CPPR", write=_tm_set_os_cppr),
    TmOp(TM_HV_PAGE, TM_QW1_OS + TM_WORD2, 4, "push OS context", write=_tm_push_os_ctx),
    TmOp(TM_HV_PAGE, TM_QW3_HV_PHYS + TM_CPPR, 1, "set HV CPPR", write=_tm_set_hv_cppr),
    TmOp(TM_HV_PAGE, TM_QW3_HV_PHYS + TM_WORD2, 1, "VT push", write=_tm_vt_push),
    TmOp(TM_HV_PAGE, TM_QW3_HV_PHYS + TM_WORD2, 1, "VT poll", read=_tm_vt_poll),
    # 2K and above: special operations
    TmOp(TM_OS_PAGE, TM_SPC_ACK_OS_REG, 2, "ack OS", read=_tm_ack_os_reg),
    TmOp(TM_OS_PAGE, TM_SPC_SET_OS_PENDING, 1, "set OS pending", write=_tm_set_os_pending),
    TmOp(TM_HV_PAGE, TM_SPC_PULL_OS_CTX, 4, "pull OS context", read=_tm_pull_os_ctx),
    TmOp(TM_HV_PAGE, TM_SPC_PULL_OS_CTX, 8, "pull OS context", read=_tm_pull_os_ctx),
    TmOp(TM_HV_PAGE, TM_SPC_ACK_HV_REG, 2, "ack HV", read=_tm_ack_hv_reg),
    TmOp(TM_HV_PAGE, TM_SPC_PULL_POOL_CTX, 4, "pull pool context", read=_tm_pull_pool_ctx),
    TmOp(TM_HV_PAGE, TM_SPC_PULL_POOL_CTX, 8, "pull pool context", read=_tm_pull_pool_ctx),
)

# Handlers by ((page << 16 | offset modulo 4K) << 4 | size), one entry per page allowed.
_TM_OP_BITS = (3 << TM_SHIFT) | 0xFFF


def _tm_lookup(write: bool) -> dict[int, Callable]:
    out: dict[int, Callable] = {}
    for op in TM_OPERATIONS:
        fn = op.write if write else op.read
        if fn is None:
            continue
        for page in range(op.page + 1):
            key = (((page << TM_SHIFT) | op.offset) << 4) | op.size
            assert key not in out, op
            out[key] = fn
    return out


_TM_READ_OPS = _tm_lookup(write=False)
_TM_WRITE_OPS = _tm_lookup(write=True)


# ---- declared migration state --------------------------------------------------------------------
_END_RESET = (0, END_W1_ESE_Q | END_W1_ESN_Q, 0, 0, 0, 0, 0, 0)


def _save_sources(x: Xive) -> list[dict]:
    """Every source not in its reset state (PQ off, MSI)."""
    return [{"lisn": i, "pq": s & 3, "lsi": bool(x.lsi[i]), "asserted": bool(s & STATUS_ASSERTED)}
            for i, s in enumerate(x.status) if s != PQ_OFF or x.lsi[i]]


def _put_sources(x: Xive, sources: list[dict]) -> None:
    x.status[:] = bytes([PQ_OFF]) * x.nr_irqs
    x.lsi[:] = bytes(x.nr_irqs)
    for s in sources:
        x.status[s["lisn"]] = s["pq"] | (STATUS_ASSERTED if s["asserted"] else 0)
        x.lsi[s["lisn"]] = 1 if s["lsi"] else 0


def _save_eas(x: Xive) -> list[dict]:
    """Every EAS in use (non-zero), by field."""
    return [{"lisn": i, "valid": bool(w & EAS_VALID),
             "end_block": (w >> EAS_END_BLOCK_SHIFT) & EAS_END_BLOCK_MASK,
             "end_index": (w >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK,
             "masked": bool(w & EAS_MASKED), "eisn": w & EAS_END_DATA_MASK}
            for i, w in enumerate(x.eat) if w]


def _eas_word(e: dict) -> int:
    return ((EAS_VALID if e["valid"] else 0) | e["end_block"] << EAS_END_BLOCK_SHIFT
            | e["end_index"] << EAS_END_INDEX_SHIFT | (EAS_MASKED if e["masked"] else 0)
            | e["eisn"])


def _put_eas(x: Xive, eas: list[dict]) -> None:
    x.eat[:] = array("Q", bytes(8 * x.nr_irqs))
    for e in eas:
        x.eat[e["lisn"]] = _eas_word(e)


def _save_ends(x: Xive) -> list[dict]:
    """Every END not in its reset state."""
    out = []
    for e in range(x.nr_ends):
        w = tuple(x.endt[e * 8:e * 8 + 8])
        if w != _END_RESET:
            out.append({"index": e, "words": w})
    return out


def _put_ends(x: Xive, ends: list[dict]) -> None:
    x.endt[:] = array("I", _END_RESET * x.nr_ends)
    for e in ends:
        x.endt[e["index"] * 8:e["index"] * 8 + 8] = array("I", e["words"])


def _save_tctxs(x: Xive) -> list[Tctx]:
    return [x.tctxs[v] for v in sorted(x.tctxs)]


def _put_tctxs(x: Xive, tctxs: list[dict]) -> None:
    """Ring registers and output levels; the OS ring drives its vCPU."""
    for rec in tctxs:
        t = x.tctxs[rec["vcpu_id"]]
        t.regs[:] = rec["regs"]
        t.hv_line = rec["hv_line"]
        x._set_line(t, rec["line"])


def _unique(what: str, keys: list[int], limit: int, limit_name: str) -> None:
    if len(set(keys)) != len(keys):
        raise StateError(f"snapshot section 'xive' lists a {what} twice")
    bad = [k for k in keys if k >= limit]
    if bad:
        raise StateError(f"snapshot section 'xive': {what} {bad[0]:#x} is not below {limit_name} "
                         f"({limit:#x})")


def _check(x: Xive, v: dict) -> None:
    """The tables fit this machine: sizes, LISNs < nr_irqs, END indexes <
    nr_ends (also where an EAS routes), usable queues, one context per vCPU."""
    if (v["nr_irqs"], v["nr_ends"]) != (x.nr_irqs, x.nr_ends):
        raise StateError(f"snapshot: XIVE has {v['nr_irqs']} LISNs/{v['nr_ends']} ENDs, "
                         f"this machine {x.nr_irqs}/{x.nr_ends}")
    _unique("source", [s["lisn"] for s in v["sources"]], x.nr_irqs, "nr_irqs")
    for s in v["sources"]:
        if s["asserted"] and not s["lsi"]:
            raise StateError(f"snapshot section 'xive': MSI {s['lisn']:#x} cannot be asserted")
    _unique("EAS", [e["lisn"] for e in v["eas"]], x.nr_irqs, "nr_irqs")
    for e in v["eas"]:
        problem = x._eas_problem(_eas_word(e))
        if problem:
            raise StateError(f"snapshot section 'xive': EAS {e['lisn']:#x}: {problem}")
    _unique("END", [e["index"] for e in v["ends"]], x.nr_ends, "nr_ends")
    for e in v["ends"]:
        problem = _end_problem(EndState(tuple(e["words"])))
        if problem:
            raise StateError(f"snapshot section 'xive': END {e['index']:#x}: {problem}")
    if sorted(t["vcpu_id"] for t in v["tctxs"]) != sorted(x.tctxs):
        raise StateError("snapshot: XIVE thread contexts do not match the vCPUs")


XIVE_SOURCE = Struct((
    Field("lisn", U32),
    Field("pq", UInt(2)),                      # 00 idle, 10 pending, 11 queued, 01 off
    Field("lsi", BOOL),
    Field("asserted", BOOL),                   # LSI line level
))
XIVE_EAS = Struct((
    Field("lisn", U32),
    Field("valid", BOOL),
    Field("end_block", UInt(4)),
    Field("end_index", UInt(24)),
    Field("masked", BOOL),
    Field("eisn", UInt(31)),
))
XIVE_END = Struct((
    Field("index", U32),                       # vcpu_id * 8 + priority
    Field("words", Array(U32, 8)),             # END words 0..7 (xive_regs.h)
))
XIVE_TCTX = Struct((
    Field("vcpu_id", U32),
    Field("regs", Bytes(TM_REGS_SIZE)),        # QW0..QW3 ring registers
    Field("line", BOOL),                       # OS-ring output
    Field("hv_line", BOOL),                    # QW3 output (not wired on pseries)
))


def _ignore(x: Xive, value: int) -> None:
    """Sizes are checked against the machine, never stored."""


XIVE_STATE = VMStateDescription(
    "xive", 2,
    (Field("nr_irqs", U32, put_fn=_ignore),
     Field("nr_ends", U32, put_fn=_ignore),
     Field("sources", Array(XIVE_SOURCE), get_fn=_save_sources, put_fn=_put_sources),
     Field("eas", Array(XIVE_EAS), get_fn=_save_eas, put_fn=_put_eas),
     Field("ends", Array(XIVE_END), get_fn=_save_ends, put_fn=_put_ends),
     Field("tctxs", Array(XIVE_TCTX), get_fn=_save_tctxs, put_fn=_put_tctxs)),
    minimum_version=2,                         # version 1: positional lists and "active"
    check=_check)

Xive.VMSTATE = XIVE_STATE

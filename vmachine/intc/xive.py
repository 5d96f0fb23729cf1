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

Guest mistakes never raise: they are reported through `guest_error` and get
QEMU's answer. Host-interface misuse raises `DeviceError`.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Callable

from ..errors import DeviceError

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


class Xive:
    """The sPAPR XIVE router/presenter with its sources, EAS and END tables.

    `ram` is the guest RAM the event queues live in (needs contains() and
    write()); `vcpu_ids` the vCPUs' ids (DT `reg` / hcall "target")."""

    def __init__(self, nr_irqs: int, vcpu_ids: list[int], ram,
                 guest_error: Callable[..., None] = lambda *a, **k: None,
                 event: Callable[..., None] = lambda *a, **k: None,
                 store_eoi: bool = False):
        if nr_irqs <= 0:
            raise DeviceError("EINVAL", "XIVE needs at least one interrupt")
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
        for i in range(self.nr_irqs):
            self.eat[i] = (EAS_VALID | EAS_MASKED) if self.eat[i] & EAS_VALID else 0
        for e in range(self.nr_ends):
            self._end_reset(e)
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
        """Allocate a LISN (QEMU spapr_xive_claim_irq): EAS valid and masked."""
        self._check_lisn(lisn)
        if self.eat[lisn] & EAS_VALID:
            raise DeviceError("EBUSY", f"XIVE LISN {lisn:#x} is not free")
        self.eat[lisn] |= EAS_VALID | EAS_MASKED
        if lsi:
            self.lsi[lisn] = 1

    def set_output(self, vcpu_id: int, output: Callable[[bool], None]) -> None:
        self._host_tctx(vcpu_id).output = output

    # ---- numbers -----------------------------------------------------------------------------
    def _check_lisn(self, lisn: int) -> None:
        if not 0 <= lisn < self.nr_irqs:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x} out of range (0..{self.nr_irqs - 1:#x})")

    def is_valid(self, lisn: int) -> bool:
        return 0 <= lisn < self.nr_irqs and bool(self.eat[lisn] & EAS_VALID)

    def end_index(self, vcpu_id: int, prio: int) -> int:
        return vcpu_id * END_PER_VCPU + prio

    def has_target(self, vcpu_id: int) -> bool:
        return vcpu_id in self.tctxs

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
        self._check_lisn(lisn)
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

    # ---- ESB MMIO (window offset = lisn << 17 | page << 16 | offset) ---------------------------
    def esb_read(self, addr: int, size: int, cpu: int = -1) -> int:
        """Load from the source ESB window (xive_source_esb_read)."""
        lisn = addr >> ESB_SHIFT
        if size != 8:
            # QEMU's ESB region only accepts 8-byte accesses: the memory core
            # rejects others (read as zero) and logs them.
            self.guest_error("XIVE: invalid ESB access size", cpu=cpu, addr=addr, size=size)
            return 0
        if lisn >= self.nr_irqs:
            self.guest_error("XIVE: ESB load outside the sources", cpu=cpu, addr=addr)
            return 0
        if not (addr >> ESB_PAGE_SHIFT) & 1:
            self.guest_error("XIVE: invalid load on trigger page", cpu=cpu, lisn=lisn, addr=addr)
            return ALL_ONES
        off = addr & 0xFFF
        if off < ESB_GET:                                   # 0x000..0x7ff: EOI
            fwd = self.source_eoi(lisn)
            if fwd:
                self.notify(lisn)
            return int(fwd)
        if off < ESB_SET_PQ_00:                             # 0x800..0xbff: read PQ
            return self.esb_get(lisn)
        if (off & 0xFF) < 0x100:                            # 0xc00..0xfff: set PQ
            return self.esb_set(lisn, (off >> 8) & 3)
        return ALL_ONES                                     # unreachable

    def esb_write(self, addr: int, size: int, value: int, cpu: int = -1) -> None:
        """Store to the source ESB window (xive_source_esb_write)."""
        lisn = addr >> ESB_SHIFT
        if size != 8:
            self.guest_error("XIVE: invalid ESB access size", cpu=cpu, addr=addr, size=size)
            return
        if lisn >= self.nr_irqs:
            self.guest_error("XIVE: ESB store outside the sources", cpu=cpu, addr=addr)
            return
        off = addr & 0xFFF
        if not (addr >> ESB_PAGE_SHIFT) & 1:                # trigger page: any store triggers
            fwd = self.source_trigger(lisn)
        elif off < ESB_STORE_EOI:
            fwd = self.source_trigger(lisn)
        elif off < ESB_INJECT:
            if not self.store_eoi:
                self.guest_error("XIVE: invalid Store EOI", cpu=cpu, lisn=lisn)
                return
            fwd = self.source_eoi(lisn)
        elif off < ESB_SET_PQ_00:
            fwd = True                                      # inject: forward, PQ untouched
        else:
            self.esb_set(lisn, (off >> 8) & 3)
            fwd = False
        if fwd:
            self.notify(lisn)

    # ---- END ESB (disabled on sPAPR: modelled for completeness) ---------------------------------
    def end_esb_read(self, addr: int, size: int, cpu: int = -1) -> int:
        """Load from the END ESB window (xive_end_source_read): even page ESn,
        odd page ESe. QEMU never maps it for sPAPR guests."""
        if size != 8:
            self.guest_error("XIVE: invalid END ESB access size", cpu=cpu, addr=addr, size=size)
            return 0
        idx = addr >> (ESB_PAGE_SHIFT + 1)
        if idx >= self.nr_ends:
            self.guest_error("XIVE: No END", cpu=cpu, end=idx)
            return ALL_ONES
        b = idx * 8
        if not self.endt[b] & END_W0_VALID:
            self.guest_error("XIVE: END is invalid", cpu=cpu, end=idx)
            return ALL_ONES
        shift = END_W1_ESN_SHIFT if not (addr >> ESB_PAGE_SHIFT) & 1 else END_W1_ESE_SHIFT
        w1 = self.endt[b + 1]
        pq = (w1 >> shift) & 3
        off = addr & 0xFFF
        if off < ESB_GET:
            pq, fwd = self.pq_eoi(pq)
            ret = int(fwd)
        elif off < ESB_SET_PQ_00:
            ret = pq
        else:
            ret, pq = pq, (off >> 8) & 3
        self.endt[b + 1] = (w1 & ~(3 << shift)) | (pq << shift)
        return ret

    def end_esb_write(self, addr: int, size: int, value: int, cpu: int = -1) -> None:
        self.guest_error("XIVE: invalid END ESB write", cpu=cpu, addr=addr)

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

    # ---- TIMA MMIO (xive_tctx_tm_read / xive_tctx_tm_write) -------------------------------------
    def _tm_mask(self, offset: int, size: int, write: bool) -> int:
        view = _TM_VIEWS[(offset >> TM_SHIFT) & 3]
        reg = offset & 0x3F
        bit = 1 if write else 2
        mask = 0
        for i in range(size):
            if reg + i < len(view) and view[reg + i] & bit:
                mask |= 0xFF << (8 * (size - i - 1))
        return mask

    def tm_read(self, t: Tctx, offset: int, size: int) -> int:
        page = (offset >> TM_SHIFT) & 3
        op = offset & 0xFFF
        # special operations; an operation of a page is allowed from a more privileged one
        if op == TM_SPC_ACK_OS_REG and size == 2 and page <= TM_OS_PAGE:
            return self.accept(t, TM_QW1_OS)
        if page <= TM_HV_PAGE:
            if op == TM_SPC_PULL_OS_CTX and size in (4, 8):
                w2 = t.word2(TM_QW1_OS)
                if not w2 & TM_QW1W2_VO:
                    self.guest_error("XIVE: pulling invalid NVT", vcpu=t.vcpu_id)
                t.set_word2(TM_QW1_OS, w2 & ~TM_QW1W2_VO)
                return w2
            if op == TM_SPC_ACK_HV_REG and size == 2:
                return self.accept(t, TM_QW3_HV_PHYS)
            if op == TM_SPC_PULL_POOL_CTX and size in (4, 8):
                w2 = t.word2(TM_QW2_HV_POOL) & ~TM_QW2W2_VP
                t.set_word2(TM_QW2_HV_POOL, w2)
                return w2
            if op == TM_QW3_HV_PHYS + TM_WORD2 and size == 1:
                return t.regs[TM_QW3_HV_PHYS + TM_WORD2]
        if offset & 0x800:
            self.guest_error("XIVE: invalid read access to TIMA", vcpu=t.vcpu_id, offset=offset,
                             size=size)
            return ALL_ONES
        mask = self._tm_mask(offset, size, False)
        if size < 4 or not mask or (offset & 0x30) == TM_QW0_USER:
            self.guest_error("XIVE: invalid read access at TIMA", vcpu=t.vcpu_id, offset=offset,
                             size=size)
            return ALL_ONES
        reg = offset & 0x3F
        raw = bytes(t.regs[reg:reg + size]).ljust(size, b"\0")
        return int.from_bytes(raw, "big") & mask

    def tm_write(self, t: Tctx, offset: int, size: int, value: int) -> None:
        page = (offset >> TM_SHIFT) & 3
        op = offset & 0xFFF
        if op == TM_SPC_SET_OS_PENDING and size == 1 and page <= TM_OS_PAGE:
            self.ipb_update(t, TM_QW1_OS, priority_to_ipb(value & 0xFF))
            return
        if op == TM_QW1_OS + TM_CPPR and size == 1 and page <= TM_OS_PAGE:
            self.set_cppr(t, TM_QW1_OS, value & 0xFF)
            return
        if page <= TM_HV_PAGE:
            if op == TM_QW1_OS + TM_WORD2 and size == 4:        # push the OS context
                t.set_word2(TM_QW1_OS, value)
                if value & TM_QW1W2_VO:
                    self.ipb_update(t, TM_QW1_OS, 0)           # sPAPR NVTs hold no IPB
                return
            if op == TM_QW3_HV_PHYS + TM_CPPR and size == 1:
                self.set_cppr(t, TM_QW3_HV_PHYS, value & 0xFF)
                return
            if op == TM_QW3_HV_PHYS + TM_WORD2 and size == 1:
                t.regs[TM_QW3_HV_PHYS + TM_WORD2] = value & 0xFF
                return
        if offset & 0x800:
            self.guest_error("XIVE: invalid write access to TIMA", vcpu=t.vcpu_id, offset=offset,
                             size=size)
            return
        mask = self._tm_mask(offset, size, True)
        if size < 4 or not mask or (offset & 0x30) == TM_QW0_USER:
            self.guest_error("XIVE: invalid write access at TIMA", vcpu=t.vcpu_id, offset=offset,
                             size=size)
            return
        reg = offset & 0x3F
        for i in range(size):
            bm = (mask >> (8 * (size - i - 1))) & 0xFF
            if bm and reg + i < TM_REGS_SIZE:
                t.regs[reg + i] = (value >> (8 * (size - i - 1))) & bm

    # ---- host interface ------------------------------------------------------------------------
    def get_source(self, lisn: int) -> SourceState:
        self._check_lisn(lisn)
        s = self.status[lisn]
        return SourceState(s & 3, bool(self.lsi[lisn]), bool(s & STATUS_ASSERTED), self.eat[lisn])

    def set_source(self, lisn: int, state: SourceState) -> None:
        """Restore a source (no event is generated)."""
        self._check_lisn(lisn)
        if state.eas & ~EAS_DEFINED & 0xFFFF_FFFF_FFFF_FFFF or state.eas >> 64 or state.eas < 0:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x}: reserved EAS bits in {state.eas:#x}")
        if not 0 <= state.pq <= 3:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x}: PQ {state.pq} out of range")
        idx = (state.eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK
        if state.eas & EAS_VALID and not state.eas & EAS_MASKED and idx >= self.nr_ends:
            raise DeviceError("EINVAL", f"XIVE LISN {lisn:#x}: END {idx:#x} out of range")
        self.status[lisn] = state.pq | (STATUS_ASSERTED if state.asserted and state.lsi else 0)
        self.lsi[lisn] = 1 if state.lsi else 0
        self.eat[lisn] = state.eas

    def _check_end(self, idx: int) -> int:
        if not 0 <= idx < self.nr_ends:
            raise DeviceError("EINVAL", f"XIVE END {idx:#x} out of range (0..{self.nr_ends - 1:#x})")
        return idx * 8

    def get_end(self, idx: int) -> EndState:
        b = self._check_end(idx)
        return EndState(tuple(self.endt[b:b + 8]))

    def set_end(self, idx: int, state: EndState) -> None:
        b = self._check_end(idx)
        if len(state.words) != 8 or any(not 0 <= v <= 0xFFFF_FFFF for v in state.words):
            raise DeviceError("EINVAL", f"XIVE END {idx:#x}: need eight 32-bit words")
        if state.enqueue:
            size = 1 << state.qshift
            if state.qshift not in (12, 16, 21, 24) or state.qaddr % size:
                raise DeviceError("EINVAL", f"XIVE END {idx:#x}: bad queue {state.qaddr:#x}/{state.qshift}")
            if state.qindex >= size // 4:
                raise DeviceError("EINVAL", f"XIVE END {idx:#x}: queue index {state.qindex} past the end")
        self.endt[b:b + 8] = array("I", state.words)

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
        t = self.tctxs.get(vcpu_id)
        if t is None:
            raise DeviceError("ENOENT", f"no XIVE thread context for vCPU {vcpu_id}")
        return t

    def get_os_ring(self, vcpu_id: int) -> OsRing:
        r = self._host_tctx(vcpu_id).regs
        o = TM_QW1_OS
        return OsRing(*r[o:o + 8], int.from_bytes(r[o + 8:o + 12], "big"))

    def set_os_ring(self, vcpu_id: int, ring: OsRing) -> None:
        """Restore the OS ring; the output follows NSR.EO."""
        t = self._host_tctx(vcpu_id)
        vals = (ring.nsr, ring.cppr, ring.ipb, ring.lsmfb, ring.ack_cnt, ring.inc, ring.age, ring.pipr)
        if any(not 0 <= v <= 0xFF for v in vals) or not 0 <= ring.word2 <= 0xFFFF_FFFF:
            raise DeviceError("EINVAL", f"XIVE vCPU {vcpu_id}: OS ring field out of range")
        if ring.nsr & ~TM_QW1_NSR_EO:
            raise DeviceError("EINVAL", f"XIVE vCPU {vcpu_id}: unknown NSR bits {ring.nsr:#x}")
        t.regs[TM_QW1_OS:TM_QW1_OS + 16] = ring.to_bytes()
        self._set_line(t, bool(ring.nsr & TM_QW1_NSR_EO))

    def get_tctx_regs(self, vcpu_id: int) -> bytes:
        return bytes(self._host_tctx(vcpu_id).regs)

    def set_tctx_regs(self, vcpu_id: int, regs: bytes, line: bool | None = None) -> None:
        t = self._host_tctx(vcpu_id)
        if len(regs) != TM_REGS_SIZE:
            raise DeviceError("EINVAL", f"XIVE vCPU {vcpu_id}: {TM_REGS_SIZE} register bytes expected")
        t.regs[:] = regs
        self._set_line(t, bool(regs[TM_QW1_OS + TM_NSR] & TM_QW1_NSR_EO) if line is None else line)

    # ---- migration -------------------------------------------------------------------------------
    def save_state(self) -> dict:
        """Named fields: sources [lisn, status, lsi] for every non-default
        source, eas [lisn, word] for every non-zero EAS, ends [idx, w0..w7]
        for every END not in its reset state, tctxs [vcpu_id, 64 register
        bytes, line, hv_line]."""
        reset_w1 = END_W1_ESE_Q | END_W1_ESN_Q
        sources = [[i, self.status[i], self.lsi[i]] for i in range(self.nr_irqs)
                   if self.status[i] != PQ_OFF or self.lsi[i]]
        eas = [[i, self.eat[i]] for i in range(self.nr_irqs) if self.eat[i]]
        ends = []
        for e in range(self.nr_ends):
            w = list(self.endt[e * 8:e * 8 + 8])
            if w != [0, reset_w1, 0, 0, 0, 0, 0, 0]:
                ends.append([e] + w)
        tctxs = [[v, list(t.regs), t.line, t.hv_line] for v, t in sorted(self.tctxs.items())]
        return {"nr_irqs": self.nr_irqs, "nr_ends": self.nr_ends, "sources": sources, "eas": eas,
                "ends": ends, "tctxs": tctxs}

    def load_state(self, f: dict) -> None:
        from ..errors import ConfigError
        if f["nr_irqs"] != self.nr_irqs or f["nr_ends"] != self.nr_ends:
            raise ConfigError(f"snapshot: XIVE has {f['nr_irqs']} LISNs/{f['nr_ends']} ENDs, "
                              f"this machine {self.nr_irqs}/{self.nr_ends}")
        status = bytearray([PQ_OFF]) * self.nr_irqs
        lsi = bytearray(self.nr_irqs)
        eat = array("Q", bytes(8 * self.nr_irqs))
        endt = array("I", [0, END_W1_ESE_Q | END_W1_ESN_Q, 0, 0, 0, 0, 0, 0] * self.nr_ends)
        regs: dict[int, tuple[bytes, bool, bool]] = {}
        try:
            for i, st, l in f["sources"]:
                status[i] = st & (3 | STATUS_ASSERTED)
                lsi[i] = 1 if l else 0
            for i, w in f["eas"]:
                if w & ~EAS_DEFINED or w < 0:
                    raise ValueError(f"EAS {i:#x} has reserved bits")
                eat[i] = w
            for e, *w in f["ends"]:
                if len(w) != 8 or e < 0:
                    raise ValueError(f"END {e} needs 8 words")
                endt[e * 8:e * 8 + 8] = array("I", w)
            for v, rb, line, hv in f["tctxs"]:
                if v not in self.tctxs or len(rb) != TM_REGS_SIZE:
                    raise ValueError(f"thread context {v}")
                regs[v] = (bytes(rb), bool(line), bool(hv))
        except (TypeError, ValueError, IndexError, OverflowError) as e:
            raise ConfigError(f"snapshot: bad XIVE state ({e})") from None
        if set(regs) != set(self.tctxs):
            raise ConfigError("snapshot: XIVE thread contexts do not match the vCPUs")
        self.status, self.lsi, self.eat, self.endt = status, lsi, eat, endt
        for v, (rb, line, hv) in regs.items():
            t = self.tctxs[v]
            t.regs[:] = rb
            t.hv_line = hv
            self._set_line(t, line)

"""GICv3 ITS for `-M virt,gic-version=3`, as QEMU 7.2 models it (hw/intc/arm_gicv3_its.c).

Two 64 KiB frames: the control frame (GITS_CTLR, IIDR, TYPER, CBASER,
CWRITER, CREADR, BASER0..7, ID registers; 4- and 8-byte accesses) and the
translation frame (GITS_TRANSLATER at +0x1_0040; 2- and 4-byte accesses,
everything reads 0). The ITS keeps no state besides its registers: device,
collection and interrupt translation tables live in guest RAM in QEMU's
IMPLEMENTATION DEFINED layout, so a guest (or a snapshot) sees exactly what
QEMU would write:
  * DTE, 8 bytes:  V [0], Size (EventID bits - 1) [5:1], ITT address >> 8 [49:6];
  * CTE, 8 bytes:  V [0], RDbase (processor number) [16:1];
  * ITE, 12 bytes: a little-endian doubleword V [0], IntType [1] (1 = physical),
    INTID [25:2], ICID [47:32], vPEID [63:48], then a word Doorbell [23:0]
    (1023 for a physical mapping).
BASER0 describes the device table and BASER1 the collection table (Type and
Entry_Size read-only, 64 KiB pages at reset); BASER2..7 are RAZ/WI (no GICv4).
BASERn and CBASER are read-only while the ITS is enabled; the table geometry
is taken from them when GITS_CTLR.Enabled is written with 1 (and on restore).

Commands run as QEMU process_cmdq runs them, but not all inside one access:
a CWRITER write (or enabling) starts a run of at most CMD_BUDGET commands,
and a run in progress continues by CMD_BUDGET commands at every CREADR read
and every round boundary (`step_queue`, a machine round hook), with CREADR
advancing as commands complete, as on a real ITS. A guest that polls CREADR
sees what QEMU's synchronous queue shows, and no guest store can cost more
than CMD_BUDGET commands of host time; the run-in-progress flag is migrated.
A command with bad parameters is skipped (logged guest error);
a command queue slot or a table entry outside RAM stalls the queue
(CREADR.Stalled = 1, CREADR stays on the command; the next CWRITER write
retries it). Unknown command numbers and the GICv4 commands are skipped.
Every table access checks the address against RAM first: nothing is ever
read or written outside it.

The frames are register tables (ITS_REGISTERS, TRANSLATION_REGISTERS), the
commands a table by number (ITS_COMMANDS), the migrated registers a declared
section (GICV3_ITS_STATE, "gicv3-its" v2), all at the end of this file.

GITS_TRANSLATER: a CPU store carries DeviceID 0 (QEMU's requester ID for a
CPU); the data is the EventID. Host interface: `translate_msi(address, data,
device_id)` -> (INTID, vCPU) without side effects, `signal_msi(...)` delivers
(KVM_SIGNAL_MSI). Errors (DeviceError): EINVAL for an address other than
GITS_TRANSLATER or an ID out of range, ENOENT for an unmapped device, event
or collection (or an ITE whose INTID is not an LPI), EBUSY while the ITS
is disabled, EFAULT when a table lies outside RAM; `signal_msi` also
refuses what `gic.lpi_process` refuses (EBUSY: the target's EnableLPIs is
0). Every argument is checked (ints, not bool) before anything changes.
The ITS reaches the redistributors through `gic.its_port()`, never the
GIC's host API, so no guest command raises.
"""
from __future__ import annotations

from typing import Callable

from ..errors import DeviceError
from ..regs import CallTable, Register, RegisterBank, WIDTHS_64, deposit, extract, raz
from ..state import Migratable, BOOL, Array, Field, StateError, U32, U64, VMStateDescription
from .gicv3 import _IDREGS, GIC_IIDR, LPI_INTID_START, GICD_TYPER_IDBITS, INTID_SPURIOUS
from .gicv3.common import ADDR_ALIGN, ADDR_LIMIT
from .gicv3.device import GicV3, check_callable, check_ram, is_number

TRANSLATION_FRAME = 0x1_0000
GITS_TRANSLATER = TRANSLATION_FRAME + 0x40
PIDR0_ITS = 0x94

# registers
GITS_CTLR, GITS_IIDR, GITS_TYPER = 0x0000, 0x0004, 0x0008
GITS_CBASER, GITS_CWRITER, GITS_CREADR = 0x0080, 0x0088, 0x0090
GITS_BASER = 0x0100                                   # 8 x 8 bytes
GITS_IDREGS = 0xFFD0

CTLR_ENABLED = 1 << 0
CTLR_QUIESCENT = 1 << 31
CWRITER_RETRY = 1 << 0
CREADR_STALLED = 1 << 0
QUEUE_OFFSET_MASK = 0x7FFF << 5                       # [19:5]
CMD_SIZE = 32
# Commands run per CWRITER store, CREADR read or round boundary: bounds the
# host time one guest access can cost (a full queue is 32,767 commands).
CMD_BUDGET = 64

# GITS_TYPER (QEMU 7.2 realize): Physical, ITT_entry_size 12, IDbits 16,
# Devbits 16, CIDbits 16, CIL; no Virtual, PTA = 0 (RDbase = processor number).
ITT_ENTRY_SIZE = 12
ITS_IDBITS = 15
ITS_DEVBITS = 15
ITS_CIDBITS = 15
GITS_TYPER_VALUE = (1 | ((ITT_ENTRY_SIZE - 1) << 4) | (ITS_IDBITS << 8) | (ITS_DEVBITS << 13)
                    | (ITS_CIDBITS << 32) | (1 << 36))                     # 0x1F_0001_EFB1

# GITS_BASER<n>
BASER_VALID = 1 << 63
BASER_INDIRECT = 1 << 62
BASER_TYPE_SHIFT = 56
BASER_ENTRYSIZE_SHIFT = 48
BASER_RO_MASK = (0x7 << BASER_TYPE_SHIFT) | (0x1F << BASER_ENTRYSIZE_SHIFT)
BASER_TYPE_DEVICE, BASER_TYPE_COLLECTION = 1, 4
PAGE_SIZES = (0x1000, 0x4000, 0x1_0000, 0x1_0000)     # Page_Size 3 treated as 64 KiB (QEMU)
DTE_SIZE = CTE_SIZE = 8
L1_ENTRY_SIZE = 8
L1_VALID = 1 << 63
L1_ADDR_MASK = (1 << 51) - 1
BASER_RESET = (
    (BASER_TYPE_DEVICE << BASER_TYPE_SHIFT) | ((DTE_SIZE - 1) << BASER_ENTRYSIZE_SHIFT) | (2 << 8),
    (BASER_TYPE_COLLECTION << BASER_TYPE_SHIFT) | ((CTE_SIZE - 1) << BASER_ENTRYSIZE_SHIFT) | (2 << 8),
    0, 0, 0, 0, 0, 0)

# commands (DW0 [7:0])
CMD_MOVI, CMD_INT, CMD_CLEAR, CMD_SYNC = 0x01, 0x03, 0x04, 0x05
CMD_MAPD, CMD_MAPC, CMD_MAPTI, CMD_MAPI = 0x08, 0x09, 0x0A, 0x0B
CMD_INV, CMD_INVALL, CMD_MOVALL, CMD_DISCARD = 0x0C, 0x0D, 0x0E, 0x0F

MASK32 = 0xFFFF_FFFF

# command outcomes (QEMU ItsCmdResult; its CMD_STALL is a _MemFault here)
CONTINUE, OK = 1, 2


class _MemFault(Exception):
    """A table or queue access outside guest RAM."""

    def __init__(self, addr: int, length: int):
        super().__init__(f"{addr:#x}+{length}")
        self.addr, self.length = addr, length


class _Table:
    """Geometry of the device or collection table (QEMU TableDesc)."""
    __slots__ = ("valid", "indirect", "page_size", "entry_size", "base", "num_entries")

    def __init__(self, baser: int = 0, idbits: int = 16):
        self.valid = bool(baser & BASER_VALID)
        self.indirect = bool(baser & BASER_INDIRECT)
        self.page_size = PAGE_SIZES[(baser >> 8) & 3]
        self.entry_size = ((baser >> BASER_ENTRYSIZE_SHIFT) & 0x1F) + 1
        if self.page_size == 0x1_0000:
            self.base = (((baser >> 16) & MASK32) << 16) | (((baser >> 12) & 0xF) << 48)
        else:
            self.base = ((baser >> 12) & ((1 << 36) - 1)) << 12
        pages = (baser & 0xFF) + 1
        if not self.valid:
            self.num_entries = 0                     # every lookup fails its bounds check
        elif self.indirect:
            self.num_entries = (pages * self.page_size // L1_ENTRY_SIZE) * (self.page_size // self.entry_size)
        else:
            self.num_entries = pages * self.page_size // self.entry_size
        self.num_entries = min(self.num_entries, 1 << idbits)


class GicV3Its(Migratable):
    """The ITS: registers, command queue, translation, host MSI interface."""

    def __init__(self, gic, ram, base: int,
                 log_guest_error: Callable[..., None] = lambda what, **k: None,
                 log_event: Callable[..., None] = lambda what, **k: None):
        """`gic`: the GicV3 whose redistributors get the LPIs; `ram`: guest
        RAM (contains/read/write/read_int/write_int); `base`: the 128 KiB
        frame pair's address, 64 KiB aligned, below 2^48 (EINVAL otherwise)."""
        if not isinstance(gic, GicV3):
            raise DeviceError("EINVAL", f"ITS: gic {type(gic).__name__} is not a GicV3")
        check_ram(ram, "ITS: guest RAM", ("contains", "read", "write", "read_int", "write_int"))
        if not is_number(base) or base < 0 or base % ADDR_ALIGN \
                or base + 2 * TRANSLATION_FRAME > ADDR_LIMIT:
            raise DeviceError("EINVAL", f"ITS: base {base!r} must be 64 KiB aligned and the "
                                        f"frames below 2^48")
        check_callable(log_guest_error, "ITS: log_guest_error")
        check_callable(log_event, "ITS: log_event")
        # The redistributors' side of the GIC (QEMU gicv3_redist_*_lpi), not
        # its host API: guest commands never raise (gicv3.device.ItsPort).
        self.gic = gic.its_port()
        self.ram = ram
        self.base = base
        self.guest_error = log_guest_error
        self.event = log_event
        self._ctl_regs = RegisterBank("ITS", ITS_REGISTERS, log_guest_error)
        self._translation_regs = RegisterBank("ITS translation frame", TRANSLATION_REGISTERS,
                                              log_guest_error, word=TRANSLATION_FRAME)
        # Bumped whenever a translation may change (remapping commands, CTLR,
        # BASER/CBASER, reset, restore): lets a pre-translated MSI skip re-checking.
        self.mapping_generation = 0
        self.reset()

    # ---- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """QEMU gicv3_its_reset: the registers' reset column (disabled and
        quiescent, queue unset), BASERn as BASER_RESET."""
        self.mapping_generation += 1
        self._ctl_regs.reset(self)
        self.baser = list(BASER_RESET)
        self.busy = False                 # a queue run in progress (CREADR not yet at CWRITER)
        self._derive()

    def _derive(self) -> None:
        """Table and queue geometry from the registers (QEMU extract_table_params
        / extract_cmdq_params, run when the ITS is enabled and on restore)."""
        self.dt = _Table(self.baser[0], ITS_DEVBITS + 1)
        self.ct = _Table(self.baser[1], ITS_CIDBITS + 1)
        if self.cbaser & BASER_VALID:
            self.cq_entries = ((self.cbaser & 0xFF) + 1) * 0x1000 // CMD_SIZE
            self.cq_base = ((self.cbaser >> 12) & ((1 << 40) - 1)) << 12
        else:
            self.cq_entries, self.cq_base = 0, 0

    @property
    def enabled(self) -> bool:
        return bool(self.ctlr & CTLR_ENABLED)

    @property
    def doorbell(self) -> int:
        """Guest physical address of GITS_TRANSLATER (the MSI address)."""
        return self.base + GITS_TRANSLATER

    # ---- guest memory (never outside RAM) ------------------------------------------------------
    def _rd(self, addr: int, size: int) -> int:
        if not self.ram.contains(addr, size):
            raise _MemFault(addr, size)
        return self.ram.read_int(addr, size, "little")

    def _wr(self, addr: int, size: int, value: int) -> None:
        if not self.ram.contains(addr, size):
            raise _MemFault(addr, size)
        self.ram.write_int(addr, size, value, "little")

    def _entry_addr(self, t: _Table, idx: int) -> int | None:
        """QEMU table_entry_addr: flat, or through a level-1 entry (V [63],
        level-2 address [50:0]); None if the level-1 entry is invalid."""
        if not t.indirect:
            return t.base + idx * t.entry_size
        l1 = self._rd(t.base + idx // (t.page_size // L1_ENTRY_SIZE) * L1_ENTRY_SIZE, 8)
        if not l1 & L1_VALID:
            return None
        return (l1 & L1_ADDR_MASK) + idx % (t.page_size // t.entry_size) * t.entry_size

    def _get_dte(self, devid: int) -> tuple[bool, int, int]:
        """(valid, size, ITT address)."""
        a = self._entry_addr(self.dt, devid)
        if a is None:
            return False, 0, 0
        v = self._rd(a, DTE_SIZE)
        return bool(v & 1), (v >> 1) & 0x1F, ((v >> 6) & ((1 << 44) - 1)) << 8

    def _put_dte(self, devid: int, valid: bool, size: int, itt: int) -> None:
        a = self._entry_addr(self.dt, devid)
        if a is not None:                             # no level-2 table: write discarded
            self._wr(a, DTE_SIZE, (1 | size << 1 | (itt >> 8) << 6) if valid else 0)

    def _get_cte(self, icid: int) -> tuple[bool, int]:
        a = self._entry_addr(self.ct, icid)
        if a is None:
            return False, 0
        v = self._rd(a, CTE_SIZE)
        return bool(v & 1), (v >> 1) & 0xFFFF

    def _put_cte(self, icid: int, valid: bool, rdbase: int) -> None:
        a = self._entry_addr(self.ct, icid)
        if a is not None:
            self._wr(a, CTE_SIZE, (1 | rdbase << 1) if valid else 0)

    def _get_ite(self, itt: int, eventid: int) -> dict:
        lo = self._rd(itt + eventid * ITT_ENTRY_SIZE, 8)
        hi = self._rd(itt + eventid * ITT_ENTRY_SIZE + 8, 4)
        return {"valid": bool(lo & 1), "physical": bool(lo >> 1 & 1), "intid": (lo >> 2) & 0xFF_FFFF,
                "icid": (lo >> 32) & 0xFFFF, "vpeid": (lo >> 48) & 0xFFFF, "doorbell": hi & 0xFF_FFFF}

    def _put_ite(self, itt: int, eventid: int, ite: dict | None) -> None:
        lo = hi = 0
        if ite is not None:
            lo = (1 | int(ite["physical"]) << 1 | (ite["intid"] & 0xFF_FFFF) << 2
                  | (ite["icid"] & 0xFFFF) << 32 | (ite["vpeid"] & 0xFFFF) << 48)
            hi = ite["doorbell"] & 0xFF_FFFF
        a = itt + eventid * ITT_ENTRY_SIZE
        self._wr(a, 8, lo)
        self._wr(a + 8, 4, hi)

    # ---- lookups (QEMU lookup_ite / lookup_cte) --------------------------------------------------
    def _lookup_ite(self, devid: int, eventid: int, who: str):
        """(result, reason, itt, ite); result OK, CONTINUE or raises _MemFault."""
        if devid >= self.dt.num_entries:
            return CONTINUE, f"{who}: DeviceID {devid:#x} >= {self.dt.num_entries:#x}", 0, None
        valid, size, itt = self._get_dte(devid)
        if not valid:
            return CONTINUE, f"{who}: no valid DTE for DeviceID {devid:#x}", 0, None
        if eventid >= 1 << (size + 1):
            return CONTINUE, f"{who}: EventID {eventid:#x} >= {1 << (size + 1):#x}", 0, None
        ite = self._get_ite(itt, eventid)
        if not ite["valid"]:
            return CONTINUE, f"{who}: no valid ITE for DeviceID {devid:#x} EventID {eventid:#x}", 0, None
        return OK, "", itt, ite

    def _lookup_cte(self, icid: int, who: str):
        """(result, reason, rdbase)."""
        if icid >= self.ct.num_entries:
            return CONTINUE, f"{who}: ICID {icid:#x} >= {self.ct.num_entries:#x}", 0
        valid, rdbase = self._get_cte(icid)
        if not valid:
            return CONTINUE, f"{who}: no valid CTE for ICID {icid:#x}", 0
        if rdbase >= len(self.gic.cpus):
            return CONTINUE, f"{who}: CTE RDbase {rdbase} names no vCPU", 0   # QEMU: silently
        return OK, "", rdbase

    def _translate(self, devid: int, eventid: int, who: str):
        """(result, reason, intid, vcpu, itt, ite) for a (DeviceID, EventID)."""
        r, why, itt, ite = self._lookup_ite(devid, eventid, who)
        if r != OK:
            return r, why, 0, -1, 0, None
        if not ite["physical"]:
            return CONTINUE, f"{who}: virtual ITE without GICv4 (table corrupted?)", 0, -1, 0, None
        r, why, rd = self._lookup_cte(ite["icid"], who)
        if r != OK:
            return r, why, 0, -1, 0, None
        return OK, "", ite["intid"], rd, itt, ite

    # ---- command queue (QEMU process_cmdq) ------------------------------------------------------
    def _run_command(self, dw: list[int]) -> tuple[int, str]:
        """One command through ITS_COMMANDS; GICv4 commands without Virtual and
        unknown numbers are skipped (QEMU only traces them, logs nothing)."""
        cmd = dw[0] & 0xFF
        if cmd in REMAPPING_COMMANDS:
            self.mapping_generation += 1
        call = ITS_COMMANDS.get(cmd)
        if call is None:
            return CONTINUE, ""
        return call.handler(self, dw)

    def _start_queue(self, cpu: int) -> None:
        """A CWRITER store or enabling starts a run of the queue (QEMU
        process_cmdq); it continues at later accesses and round boundaries."""
        self.busy = True
        self._process_queue(cpu)

    def step_queue(self, cpu: int = -1) -> int:
        """Continue a run in progress by at most CMD_BUDGET commands (a CREADR
        read, a round boundary); the number of commands run."""
        return self._process_queue(cpu) if self.busy else 0

    def _process_queue(self, cpu: int = -1, budget: int | None = None) -> int:
        """Run at most `budget` (CMD_BUDGET) commands from CREADR towards
        CWRITER, so that no single guest access costs more than a bounded
        amount of host time. The run stays in progress (`busy`) until CREADR
        catches up, the queue stalls or its geometry is bad."""
        budget = CMD_BUDGET if budget is None else budget
        wr = (self.cwriter & QUEUE_OFFSET_MASK) >> 5
        rd = (self.creadr & QUEUE_OFFSET_MASK) >> 5
        self.busy = False
        if not self.enabled:
            return 0
        if wr >= self.cq_entries:
            self.guest_error("ITS: CWRITER offset beyond the command queue", cpu=cpu, offset=wr * CMD_SIZE)
            return 0
        if rd >= self.cq_entries:
            self.guest_error("ITS: CREADR offset beyond the command queue", cpu=cpu, offset=rd * CMD_SIZE)
            return 0
        done = 0
        while rd != wr:
            if done == budget:
                self.busy = True
                break
            done += 1
            if not self._one_command(cpu, rd):
                break
            rd = (rd + 1) % self.cq_entries
            self.creadr = (self.creadr & ~QUEUE_OFFSET_MASK) | (rd << 5)
        return done

    def _one_command(self, cpu: int, rd: int) -> bool:
        """Run the command in slot `rd`; False when the queue stalled on it."""
        addr = self.cq_base + rd * CMD_SIZE
        if not self.ram.contains(addr, CMD_SIZE):
            self.creadr |= CREADR_STALLED
            self.guest_error("ITS: command outside RAM, queue stalled", cpu=cpu, addr=addr)
            return False
        raw = self.ram.read(addr, CMD_SIZE)
        dw = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, CMD_SIZE, 8)]
        try:
            result, why = self._run_command(dw)
        except _MemFault as e:
            self.creadr |= CREADR_STALLED
            self.guest_error("ITS: table access outside RAM, queue stalled", cpu=cpu,
                             cmd=dw[0] & 0xFF, addr=e.addr, length=e.length)
            return False
        if result == CONTINUE and why:
            self.guest_error("ITS: command skipped: " + why, cpu=cpu, cmd=dw[0] & 0xFF)
        self.event("its_command", cpu=cpu, cmd=dw[0] & 0xFF, ok=int(result == OK))
        return True

    # ---- MMIO: ITS_REGISTERS and TRANSLATION_REGISTERS, the vCPU as context ----------------------
    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        regs = self._ctl_regs if offset < TRANSLATION_FRAME else self._translation_regs
        return regs.read(self, cpu, offset, size, cpu)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        regs = self._ctl_regs if offset < TRANSLATION_FRAME else self._translation_regs
        regs.write(self, cpu, offset, size, value, cpu)

    def read_ctlr(self, cpu: int, rel: int, size: int) -> int:
        return self.ctlr

    def write_ctlr(self, cpu: int, rel: int, size: int, value: int) -> None:
        """Enabling takes the table and queue geometry from the registers and
        runs the queue (QEMU its_writel); Quiescent stays 1."""
        self.mapping_generation += 1
        if value & CTLR_ENABLED:
            self.ctlr |= CTLR_ENABLED
            self._derive()
            self._start_queue(cpu)
        else:
            self.ctlr &= ~CTLR_ENABLED
            self.busy = False

    def read_iidr(self, cpu: int, rel: int, size: int) -> int:
        return GIC_IIDR

    def write_iidr(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.guest_error("ITS: write to a read-only register", cpu=cpu, offset=GITS_IIDR, value=value)

    def read_typer(self, cpu: int, rel: int, size: int) -> int:
        return extract(GITS_TYPER_VALUE, rel, size)

    def write_typer(self, cpu: int, rel: int, size: int, value: int) -> None:
        """QEMU its_writell calls only the 8-byte write a write to a read-only
        register; a 4-byte one is an invalid access (its_writel default)."""
        if size == 8:
            self.guest_error("ITS: write to read-only GITS_TYPER", cpu=cpu, value=value)
        else:
            self.guest_error("ITS: invalid write", cpu=cpu, offset=GITS_TYPER + rel, size=size,
                             value=value)

    def read_cbaser(self, cpu: int, rel: int, size: int) -> int:
        return extract(self.cbaser, rel, size)

    def write_cbaser(self, cpu: int, rel: int, size: int, value: int) -> None:
        """Read-only while enabled; a write moves CREADR to the queue's start."""
        self.mapping_generation += 1
        if not self.enabled:
            self.cbaser = deposit(self.cbaser, rel, size, value)
            self.creadr = 0

    def read_cwriter(self, cpu: int, rel: int, size: int) -> int:
        return extract(self.cwriter, rel, size)

    def write_cwriter(self, cpu: int, rel: int, size: int, value: int) -> None:
        """A write to the low word starts a run of the queue (Retry reads as 0)."""
        if rel == 0:
            value &= ~CWRITER_RETRY
        self.cwriter = deposit(self.cwriter, rel, size, value)
        if rel == 0 and self.cwriter != self.creadr:
            self._start_queue(cpu)

    def read_creadr(self, cpu: int, rel: int, size: int) -> int:
        """A guest polling CREADR drives a run in progress: each read first
        runs up to CMD_BUDGET more commands (so a guest that only polls, even
        single-stepped, sees the queue complete)."""
        self.step_queue(cpu)
        return extract(self.creadr, rel, size)

    def write_creadr(self, cpu: int, rel: int, size: int, value: int) -> None:
        """Writable because GICD_CTLR.DS = 1 (QEMU); Stalled is not."""
        if rel == 0:
            value &= ~CREADR_STALLED
        self.creadr = deposit(self.creadr, rel, size, value)

    def read_baser(self, cpu: int, rel: int, size: int) -> int:
        return extract(self.baser[rel >> 3], rel & 7, size)

    def write_baser(self, cpu: int, rel: int, size: int, value: int) -> None:
        """Read-only while enabled; an unimplemented BASERn (reset 0) is RAZ/WI;
        Type and Entry_Size are read-only."""
        self.mapping_generation += 1
        i = rel >> 3
        old = self.baser[i]
        if self.enabled or old == 0:
            return
        self.baser[i] = (deposit(old, rel & 7, size, value) & ~BASER_RO_MASK) | (old & BASER_RO_MASK)

    def read_idreg(self, cpu: int, rel: int, size: int) -> int:
        v = _IDREGS[rel >> 2]
        return PIDR0_ITS if v is None else v

    def write_idreg(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.guest_error("ITS: write to a read-only register", cpu=cpu, offset=GITS_IDREGS + rel,
                         value=value)

    def write_translater(self, cpu: int, rel: int, size: int, value: int) -> None:
        """A CPU store: DeviceID 0 (QEMU's requester ID for a CPU), data =
        EventID; ignored while disabled and everywhere else in the frame."""
        if rel == GITS_TRANSLATER - TRANSLATION_FRAME and self.enabled:
            self._translater_write(0, value, cpu)

    # ---- translation ---------------------------------------------------------------------------
    def _translater_write(self, devid: int, eventid: int, cpu: int) -> None:
        try:
            r, why, intid, rd, _, _ = self._translate(devid, eventid, "GITS_TRANSLATER")
        except _MemFault as e:
            # QEMU answers the store with a bus error (MEMTX_ERROR); vmachine's
            # MMIO path cannot abort a store, so it is logged and dropped.
            self.guest_error("ITS: translation table outside RAM", cpu=cpu, device_id=devid,
                             event_id=eventid, addr=e.addr)
            return
        if r != OK:
            self.guest_error("ITS: MSI dropped: " + why, cpu=cpu, device_id=devid, event_id=eventid)
            return
        self.event("its_msi", cpu=cpu, device_id=devid, event_id=eventid, intid=intid, target=rd)
        self.gic.lpi_process(rd, intid, True)

    def translate_msi(self, address: int, data: int, device_id: int) -> tuple[int, int]:
        """(LPI INTID, target vCPU) the MSI (address, data) from `device_id`
        would raise; no side effect (nothing logged, nothing pending). The
        address, data and DeviceID are ints (not bool); an ITE whose INTID
        is not an LPI (guest-written table) is ENOENT."""
        if not is_number(address) or address != self.doorbell:
            raise DeviceError("EINVAL", f"ITS: MSI address {address!r} is not GITS_TRANSLATER "
                                        f"({self.doorbell:#x})")
        for v, what in ((data, "data"), (device_id, "DeviceID")):
            if not is_number(v) or not 0 <= v <= MASK32:
                raise DeviceError("EINVAL", f"ITS: MSI {what} {v!r} is not a 32-bit number")
        if not self.enabled:
            raise DeviceError("EBUSY", "ITS: GITS_CTLR.Enabled is 0")
        if device_id >= self.dt.num_entries:
            raise DeviceError("EINVAL", f"ITS: DeviceID {device_id:#x} >= {self.dt.num_entries:#x}")
        try:
            r, why, intid, rd, _, _ = self._translate(device_id, data, "MSI")
        except _MemFault as e:
            raise DeviceError("EFAULT", f"ITS: translation table at {e.addr:#x} outside RAM") from None
        if r != OK:
            raise DeviceError("ENOENT", f"ITS: {why}")
        if not LPI_INTID_START <= intid < 1 << (GICD_TYPER_IDBITS + 1):
            raise DeviceError("ENOENT", f"ITS: the ITE of DeviceID {device_id:#x} EventID "
                                        f"{data:#x} holds INTID {intid:#x}, not an LPI")
        return intid, rd

    def signal_msi(self, address: int, data: int, device_id: int) -> None:
        """KVM_SIGNAL_MSI: translate (errors as translate_msi, nothing
        changes) and make the LPI pending on its redistributor; refused
        (nothing changes) as `gic.lpi_process` refuses: EBUSY while the
        target's EnableLPIs is 0 (KVM), EINVAL for an LPI beyond its
        PROPBASER.IDbits, EFAULT for a pending table outside RAM."""
        intid, rd = self.translate_msi(address, data, device_id)
        self.gic.lpi_check(rd, intid)
        self.event("its_msi", device_id=device_id, event_id=data, intid=intid, target=rd)
        self.gic.lpi_process(rd, intid, True)

    # ---- migration -----------------------------------------------------------------------------
    def load_state(self, sections: dict) -> None:
        """Validate the whole section first (StateError), then store it;
        `sections`: a dict of sections by name (EINVAL otherwise)."""
        if not isinstance(sections, dict):
            raise DeviceError("EINVAL", f"ITS: snapshot sections {type(sections).__name__} (a dict)")
        super().load_state(sections)

    def _post_load(self) -> None:
        self.mapping_generation += 1
        self._derive()


# ---- the register frames ---------------------------------------------------------------------
ITS_REGISTERS = (
    Register("GITS_CTLR", GITS_CTLR, GicV3Its.read_ctlr, GicV3Its.write_ctlr,
             reset=CTLR_QUIESCENT, field="ctlr"),
    Register("GITS_IIDR", GITS_IIDR, GicV3Its.read_iidr, GicV3Its.write_iidr),
    Register("GITS_TYPER", GITS_TYPER, GicV3Its.read_typer, GicV3Its.write_typer, WIDTHS_64),
    Register("GITS_CBASER", GITS_CBASER, GicV3Its.read_cbaser, GicV3Its.write_cbaser, WIDTHS_64,
             reset=0, field="cbaser"),
    Register("GITS_CWRITER", GITS_CWRITER, GicV3Its.read_cwriter, GicV3Its.write_cwriter, WIDTHS_64,
             reset=0, field="cwriter"),
    Register("GITS_CREADR", GITS_CREADR, GicV3Its.read_creadr, GicV3Its.write_creadr, WIDTHS_64,
             reset=0, field="creadr"),
    Register("GITS_BASER<n>", GITS_BASER, GicV3Its.read_baser, GicV3Its.write_baser, WIDTHS_64,
             length=8 * len(BASER_RESET)),                     # reset: BASER_RESET
    Register("GITS_IDREGS", GITS_IDREGS, GicV3Its.read_idreg, GicV3Its.write_idreg,
             length=4 * len(_IDREGS)),
)

# The translation frame is RES0 but for GITS_TRANSLATER, so one entry covers
# it (2- and 4-byte accesses; reads are 0); its bank is keyed by frame.
TRANSLATION_REGISTERS = (
    Register("GITS_TRANSLATER", TRANSLATION_FRAME, raz, GicV3Its.write_translater,
             frozenset({2, 4}), length=TRANSLATION_FRAME),
)


# ---- the command set (DW0 [7:0]); handlers return (OK | CONTINUE, reason) --------------------
def _lpi_command(its: GicV3Its, dw: list[int], name: str, pending: bool, unmap: bool = False
                 ) -> tuple[int, str]:
    """INT, CLEAR, DISCARD: translate, set or clear the LPI's pending state."""
    eventid = dw[1] & MASK32
    r, why, intid, rd, itt, _ = its._translate(dw[0] >> 32, eventid, name)
    if r != OK:
        return r, why
    its.gic.lpi_process(rd, intid, pending)
    if unmap:
        its._put_ite(itt, eventid, None)
    return OK, ""


def cmd_int(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    return _lpi_command(its, dw, "INT", True)


def cmd_clear(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    return _lpi_command(its, dw, "CLEAR", False)


def cmd_discard(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    return _lpi_command(its, dw, "DISCARD", False, unmap=True)


def cmd_mapd(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    devid, size = dw[0] >> 32, dw[1] & 0x1F
    itt, valid = dw[2] & (((1 << 44) - 1) << 8), bool(dw[2] >> 63)
    if devid >= its.dt.num_entries:
        return CONTINUE, f"MAPD: DeviceID {devid:#x} >= {its.dt.num_entries:#x}"
    if size > ITS_IDBITS:
        return CONTINUE, f"MAPD: Size {size} > {ITS_IDBITS}"
    its._put_dte(devid, valid, size, itt)
    return OK, ""


def cmd_mapc(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    icid, valid = dw[2] & 0xFFFF, bool(dw[2] >> 63)
    rdbase = ((dw[2] >> 16) & 0xFFFF) if valid else 0       # PTA = 0: processor number
    if icid >= its.ct.num_entries:
        return CONTINUE, f"MAPC: ICID {icid:#x} >= {its.ct.num_entries:#x}"
    if valid and rdbase >= len(its.gic.cpus):
        return CONTINUE, f"MAPC: RDbase {rdbase} names no vCPU"
    its._put_cte(icid, valid, rdbase)
    return OK, ""


def _map_event(its: GicV3Its, dw: list[int], name: str, intid: int) -> tuple[int, str]:
    """MAPTI and MAPI (whose pINTID is the EventID): write a physical ITE."""
    devid, eventid, icid = dw[0] >> 32, dw[1] & MASK32, dw[2] & 0xFFFF
    if devid >= its.dt.num_entries:
        return CONTINUE, f"{name}: DeviceID {devid:#x} >= {its.dt.num_entries:#x}"
    valid, size, itt = its._get_dte(devid)
    if icid >= its.ct.num_entries:
        return CONTINUE, f"{name}: ICID {icid:#x} >= {its.ct.num_entries:#x}"
    if not valid:
        return CONTINUE, f"{name}: no valid DTE for DeviceID {devid:#x}"
    if eventid >= 1 << (size + 1):
        return CONTINUE, f"{name}: EventID {eventid:#x} >= {1 << (size + 1):#x}"
    if not LPI_INTID_START <= intid < 1 << (GICD_TYPER_IDBITS + 1):
        return CONTINUE, f"{name}: INTID {intid:#x} is not an LPI"
    its._put_ite(itt, eventid, {"physical": True, "intid": intid, "icid": icid, "vpeid": 0,
                                "doorbell": INTID_SPURIOUS})
    return OK, ""


def cmd_mapti(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    return _map_event(its, dw, "MAPTI", dw[1] >> 32)


def cmd_mapi(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    return _map_event(its, dw, "MAPI", dw[1] & MASK32)


def cmd_inv(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    r, why, intid, rd, _, _ = its._translate(dw[0] >> 32, dw[1] & MASK32, "INV")
    if r != OK:
        return r, why
    its.gic.lpi_inv(rd, intid)
    return OK, ""


def cmd_invall(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    """QEMU does not check the ICID: every redistributor re-reads its configuration."""
    its.gic.lpi_invall_all()
    return OK, ""


def cmd_movi(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    devid, eventid, new_icid = dw[0] >> 32, dw[1] & MASK32, dw[2] & 0xFFFF
    r, why, itt, ite = its._lookup_ite(devid, eventid, "MOVI")
    if r != OK:
        return r, why
    if not ite["physical"]:
        return CONTINUE, "MOVI: virtual ITE"
    r, why, old_rd = its._lookup_cte(ite["icid"], "MOVI")
    if r != OK:
        return r, why
    r, why, new_rd = its._lookup_cte(new_icid, "MOVI")
    if r != OK:
        return r, why
    if old_rd != new_rd:
        its.gic.lpi_move(old_rd, new_rd, ite["intid"])
    ite["icid"] = new_icid
    its._put_ite(itt, eventid, ite)
    return OK, ""


def cmd_movall(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    rd1, rd2 = (dw[2] >> 16) & ((1 << 36) - 1), (dw[3] >> 16) & ((1 << 36) - 1)
    n = len(its.gic.cpus)
    if rd1 >= n or rd2 >= n:
        return CONTINUE, f"MOVALL: RDbase {rd1 if rd1 >= n else rd2} names no vCPU"
    if rd1 != rd2:
        its.gic.lpi_move(rd1, rd2)
    return OK, ""


def cmd_sync(its: GicV3Its, dw: list[int]) -> tuple[int, str]:
    """Commands run in order, each complete before the next: nothing to wait for."""
    return OK, ""


CommandFn = Callable[[GicV3Its, list], tuple[int, str]]
ITS_COMMANDS: CallTable[CommandFn] = CallTable.of("ITS command", [
    (CMD_MOVI, "MOVI", cmd_movi), (CMD_INT, "INT", cmd_int), (CMD_CLEAR, "CLEAR", cmd_clear),
    (CMD_SYNC, "SYNC", cmd_sync), (CMD_MAPD, "MAPD", cmd_mapd), (CMD_MAPC, "MAPC", cmd_mapc),
    (CMD_MAPTI, "MAPTI", cmd_mapti), (CMD_MAPI, "MAPI", cmd_mapi), (CMD_INV, "INV", cmd_inv),
    (CMD_INVALL, "INVALL", cmd_invall), (CMD_MOVALL, "MOVALL", cmd_movall),
    (CMD_DISCARD, "DISCARD", cmd_discard),
])

# Commands that can change what a (DeviceID, EventID) translates to.
REMAPPING_COMMANDS = frozenset({CMD_MAPD, CMD_MAPC, CMD_MAPTI, CMD_MAPI, CMD_MOVI, CMD_DISCARD})


# ---- migrated state --------------------------------------------------------------------------
def _check_state(its: GicV3Its, values: dict) -> None:
    if values["base"] != its.base:
        raise StateError("snapshot: ITS address differs from this machine's")
    if any((b ^ r) & BASER_RO_MASK or (r == 0 and b) for b, r in zip(values["baser"], BASER_RESET)):
        raise StateError("snapshot: ITS BASER types differ from this ITS's")
    if values["busy"] and not values["ctlr"] & CTLR_ENABLED:
        raise StateError("snapshot: ITS command queue run in progress while the ITS is disabled")


def _put_ctlr(its: GicV3Its, ctlr: int) -> None:
    its.ctlr = (ctlr & CTLR_ENABLED) | CTLR_QUIESCENT


def _put_baser(its: GicV3Its, baser: list[int]) -> None:
    its.baser = list(baser)


# v2 adds `busy` (a queue run in progress); a v1 snapshot never has one.
GICV3_ITS_STATE = VMStateDescription("gicv3-its", 2, (
    Field("base", U64, put_fn=lambda its, base: None),      # checked only: the board places the ITS
    Field("ctlr", U32, put_fn=_put_ctlr),
    Field("cbaser", U64), Field("cwriter", U64), Field("creadr", U64),
    Field("baser", Array(U64, count=len(BASER_RESET)), put_fn=_put_baser),
    Field("busy", BOOL, since=2, default=False),
), check=_check_state, post_load=GicV3Its._post_load)

GicV3Its.VMSTATE = GICV3_ITS_STATE

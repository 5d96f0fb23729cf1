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

Commands run synchronously inside the CWRITER write (and on enabling), QEMU
process_cmdq: a command with bad parameters is skipped (logged guest error);
a command queue slot or a table entry outside RAM stalls the queue
(CREADR.Stalled = 1, CREADR stays on the command; the next CWRITER write
retries it). Unknown command numbers and the GICv4 commands are skipped.
Every table access checks the address against RAM first: nothing is ever
read or written outside it.

GITS_TRANSLATER: a CPU store carries DeviceID 0 (QEMU's requester ID for a
CPU); the data is the EventID. Host interface: `translate_msi(address, data,
device_id)` -> (INTID, vCPU) without side effects, `signal_msi(...)` delivers
(KVM_SIGNAL_MSI). Errors (DeviceError): EINVAL for an address other than
GITS_TRANSLATER or an ID out of range, ENOENT for an unmapped device, event
or collection, EBUSY while the ITS is disabled, EFAULT when a table lies
outside RAM.
"""
from __future__ import annotations

from typing import Callable

from ..errors import ConfigError, DeviceError
from .gicv3 import _IDREGS, GIC_IIDR, LPI_INTID_START, GICD_TYPER_IDBITS, INTID_SPURIOUS

ITS_SIZE = 0x2_0000
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
MASK64 = (1 << 64) - 1

# command outcomes (QEMU ItsCmdResult)
STALL, CONTINUE, OK = 0, 1, 2


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


class GicV3Its:
    """The ITS: registers, command queue, translation, host MSI interface."""

    STATE_VERSION = 1

    def __init__(self, gic, ram, base: int,
                 log_guest_error: Callable[..., None] = lambda what, **k: None,
                 log_event: Callable[..., None] = lambda what, **k: None):
        self.gic = gic
        self.ram = ram
        self.base = base
        self.guest_error = log_guest_error
        self.event = log_event
        self.reset()

    # ---- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """QEMU gicv3_its_reset: disabled and quiescent, queue and tables unset."""
        # Bumped whenever a translation may change (remapping commands, CTLR,
        # BASER/CBASER, reset, restore): lets a pre-translated MSI skip re-checking.
        self.mapping_generation = getattr(self, "mapping_generation", 0) + 1
        self.ctlr = CTLR_QUIESCENT
        self.cbaser = self.cwriter = self.creadr = 0
        self.baser = list(BASER_RESET)
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

    # ---- commands ------------------------------------------------------------------------------
    def _cmd_int_clear_discard(self, cmd: int, dw: list[int]) -> tuple[int, str]:
        devid, eventid = dw[0] >> 32, dw[1] & MASK32
        name = {CMD_INT: "INT", CMD_CLEAR: "CLEAR", CMD_DISCARD: "DISCARD"}[cmd]
        r, why, intid, rd, itt, _ = self._translate(devid, eventid, name)
        if r != OK:
            return r, why
        self.gic.lpi_process(rd, intid, cmd == CMD_INT)
        if cmd == CMD_DISCARD:
            self._put_ite(itt, eventid, None)
        return OK, ""

    def _cmd_mapd(self, dw: list[int]) -> tuple[int, str]:
        devid, size = dw[0] >> 32, dw[1] & 0x1F
        itt, valid = dw[2] & (((1 << 44) - 1) << 8), bool(dw[2] >> 63)
        if devid >= self.dt.num_entries:
            return CONTINUE, f"MAPD: DeviceID {devid:#x} >= {self.dt.num_entries:#x}"
        if size > ITS_IDBITS:
            return CONTINUE, f"MAPD: Size {size} > {ITS_IDBITS}"
        self._put_dte(devid, valid, size, itt)
        return OK, ""

    def _cmd_mapc(self, dw: list[int]) -> tuple[int, str]:
        icid, valid = dw[2] & 0xFFFF, bool(dw[2] >> 63)
        rdbase = ((dw[2] >> 16) & 0xFFFF) if valid else 0   # PTA = 0: processor number
        if icid >= self.ct.num_entries:
            return CONTINUE, f"MAPC: ICID {icid:#x} >= {self.ct.num_entries:#x}"
        if valid and rdbase >= len(self.gic.cpus):
            return CONTINUE, f"MAPC: RDbase {rdbase} names no vCPU"
        self._put_cte(icid, valid, rdbase)
        return OK, ""

    def _cmd_mapti(self, dw: list[int], mapi: bool) -> tuple[int, str]:
        name = "MAPI" if mapi else "MAPTI"
        devid, eventid, icid = dw[0] >> 32, dw[1] & MASK32, dw[2] & 0xFFFF
        intid = eventid if mapi else dw[1] >> 32
        if devid >= self.dt.num_entries:
            return CONTINUE, f"{name}: DeviceID {devid:#x} >= {self.dt.num_entries:#x}"
        valid, size, itt = self._get_dte(devid)
        if icid >= self.ct.num_entries:
            return CONTINUE, f"{name}: ICID {icid:#x} >= {self.ct.num_entries:#x}"
        if not valid:
            return CONTINUE, f"{name}: no valid DTE for DeviceID {devid:#x}"
        if eventid >= 1 << (size + 1):
            return CONTINUE, f"{name}: EventID {eventid:#x} >= {1 << (size + 1):#x}"
        if not LPI_INTID_START <= intid < 1 << (GICD_TYPER_IDBITS + 1):
            return CONTINUE, f"{name}: INTID {intid:#x} is not an LPI"
        self._put_ite(itt, eventid, {"physical": True, "intid": intid, "icid": icid, "vpeid": 0,
                                     "doorbell": INTID_SPURIOUS})
        return OK, ""

    def _cmd_inv(self, dw: list[int]) -> tuple[int, str]:
        r, why, intid, rd, _, _ = self._translate(dw[0] >> 32, dw[1] & MASK32, "INV")
        if r != OK:
            return r, why
        self.gic.lpi_inv(rd, intid)
        return OK, ""

    def _cmd_invall(self, dw: list[int]) -> tuple[int, str]:
        # QEMU: the ICID is not checked; every redistributor re-reads its config.
        for i in range(len(self.gic.cpus)):
            self.gic.lpi_inv(i)
        return OK, ""

    def _cmd_movi(self, dw: list[int]) -> tuple[int, str]:
        devid, eventid, new_icid = dw[0] >> 32, dw[1] & MASK32, dw[2] & 0xFFFF
        r, why, itt, ite = self._lookup_ite(devid, eventid, "MOVI")
        if r != OK:
            return r, why
        if not ite["physical"]:
            return CONTINUE, "MOVI: virtual ITE"
        r, why, old_rd = self._lookup_cte(ite["icid"], "MOVI")
        if r != OK:
            return r, why
        r, why, new_rd = self._lookup_cte(new_icid, "MOVI")
        if r != OK:
            return r, why
        if old_rd != new_rd:
            self.gic.lpi_move(old_rd, new_rd, ite["intid"])
        ite["icid"] = new_icid
        self._put_ite(itt, eventid, ite)
        return OK, ""

    def _cmd_movall(self, dw: list[int]) -> tuple[int, str]:
        rd1, rd2 = (dw[2] >> 16) & ((1 << 36) - 1), (dw[3] >> 16) & ((1 << 36) - 1)
        n = len(self.gic.cpus)
        if rd1 >= n or rd2 >= n:
            return CONTINUE, f"MOVALL: RDbase {rd1 if rd1 >= n else rd2} names no vCPU"
        if rd1 != rd2:
            self.gic.lpi_move(rd1, rd2)
        return OK, ""

    # Commands that can change what a (DeviceID, EventID) translates to.
    _REMAPPING = frozenset({CMD_MAPD, CMD_MAPC, CMD_MAPTI, CMD_MAPI, CMD_MOVI, CMD_DISCARD})

    def _run_command(self, dw: list[int]) -> tuple[int, str]:
        cmd = dw[0] & 0xFF
        if cmd in self._REMAPPING:
            self.mapping_generation += 1
        if cmd in (CMD_INT, CMD_CLEAR, CMD_DISCARD):
            return self._cmd_int_clear_discard(cmd, dw)
        if cmd == CMD_MAPD:
            return self._cmd_mapd(dw)
        if cmd == CMD_MAPC:
            return self._cmd_mapc(dw)
        if cmd in (CMD_MAPTI, CMD_MAPI):
            return self._cmd_mapti(dw, cmd == CMD_MAPI)
        if cmd == CMD_INV:
            return self._cmd_inv(dw)
        if cmd == CMD_INVALL:
            return self._cmd_invall(dw)
        if cmd == CMD_MOVI:
            return self._cmd_movi(dw)
        if cmd == CMD_MOVALL:
            return self._cmd_movall(dw)
        if cmd == CMD_SYNC:
            return OK, ""
        # GICv4 commands without Virtual, and unknown numbers: skipped (QEMU
        # logs nothing for an unknown number, only traces it).
        return CONTINUE, ""

    def _process_queue(self, cpu: int = -1) -> None:
        """QEMU process_cmdq: run commands from CREADR up to CWRITER."""
        if not self.enabled:
            return
        wr = (self.cwriter & QUEUE_OFFSET_MASK) >> 5
        rd = (self.creadr & QUEUE_OFFSET_MASK) >> 5
        if wr >= self.cq_entries:
            self.guest_error("ITS: CWRITER offset beyond the command queue", cpu=cpu, offset=wr * CMD_SIZE)
            return
        if rd >= self.cq_entries:
            self.guest_error("ITS: CREADR offset beyond the command queue", cpu=cpu, offset=rd * CMD_SIZE)
            return
        while rd != wr:
            addr = self.cq_base + rd * CMD_SIZE
            if not self.ram.contains(addr, CMD_SIZE):
                self.creadr |= CREADR_STALLED
                self.guest_error("ITS: command outside RAM, queue stalled", cpu=cpu, addr=addr)
                return
            raw = self.ram.read(addr, CMD_SIZE)
            dw = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, CMD_SIZE, 8)]
            try:
                result, why = self._run_command(dw)
            except _MemFault as e:
                self.creadr |= CREADR_STALLED
                self.guest_error("ITS: table access outside RAM, queue stalled", cpu=cpu,
                                 cmd=dw[0] & 0xFF, addr=e.addr, length=e.length)
                return
            if result == CONTINUE and why:
                self.guest_error("ITS: command skipped: " + why, cpu=cpu, cmd=dw[0] & 0xFF)
            self.event("its_command", cpu=cpu, cmd=dw[0] & 0xFF, ok=int(result == OK))
            rd = (rd + 1) % self.cq_entries
            self.creadr = (self.creadr & ~QUEUE_OFFSET_MASK) | (rd << 5)

    # ---- MMIO ----------------------------------------------------------------------------------
    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        if offset >= TRANSLATION_FRAME:
            if size not in (2, 4) or offset % size:
                self.guest_error("ITS: invalid translation-frame read", cpu=cpu, offset=offset, size=size)
            return 0                                  # GITS_TRANSLATER is write-only; RES0 elsewhere
        v = self._ctl_read(offset, size)
        if v is None:
            self.guest_error("ITS: invalid read", cpu=cpu, offset=offset, size=size)
            return 0
        return v

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        if offset < TRANSLATION_FRAME and (offset < GITS_CWRITER or offset >= 0x100):
            self.mapping_generation += 1            # CTLR, CBASER, BASER<n>: tables may move
        if offset >= TRANSLATION_FRAME:
            if size not in (2, 4) or offset % size:
                self.guest_error("ITS: invalid translation-frame write", cpu=cpu, offset=offset,
                                 size=size, value=value)
                return
            if offset == GITS_TRANSLATER and self.enabled:
                self._translater_write(0, value, cpu)   # a CPU's requester ID is 0
            return
        if not self._ctl_write(offset, size, value, cpu):
            self.guest_error("ITS: invalid write", cpu=cpu, offset=offset, size=size, value=value)

    def _ctl_read(self, off: int, size: int) -> int | None:
        if size == 4:
            if off == GITS_CTLR:
                return self.ctlr
            if off == GITS_IIDR:
                return GIC_IIDR
            if GITS_IDREGS <= off < GITS_IDREGS + 0x30 and not off & 3:
                v = _IDREGS[(off - GITS_IDREGS) // 4]
                return PIDR0_ITS if v is None else v
            reg = self._reg64(off & ~7)
            if reg is not None and not off & 3:
                return (reg >> 32) if off & 4 else reg & MASK32
            return None
        if size == 8 and not off & 7:
            return self._reg64(off)
        return None

    def _reg64(self, off: int) -> int | None:
        if off == GITS_TYPER:
            return GITS_TYPER_VALUE
        if off == GITS_CBASER:
            return self.cbaser
        if off == GITS_CWRITER:
            return self.cwriter
        if off == GITS_CREADR:
            return self.creadr
        if GITS_BASER <= off < GITS_BASER + 0x40:
            return self.baser[(off - GITS_BASER) // 8]
        return None

    def _ctl_write(self, off: int, size: int, v: int, cpu: int) -> bool:
        """QEMU its_writel / its_writell; False = not a register (logged RAZ/WI)."""
        if size == 4 and not off & 3:
            if off == GITS_CTLR:
                if v & CTLR_ENABLED:
                    self.ctlr |= CTLR_ENABLED
                    self._derive()
                    self._process_queue(cpu)
                else:
                    self.ctlr &= ~CTLR_ENABLED
                return True
            if off in (GITS_IIDR,) or GITS_IDREGS <= off < GITS_IDREGS + 0x30:
                self.guest_error("ITS: write to a read-only register", cpu=cpu, offset=off, value=v)
                return True
            if off in (GITS_TYPER, GITS_TYPER + 4):
                return False                          # QEMU: only the 8-byte write is "RO"
            sh = 32 if off & 4 else 0
            base = off & ~7
            if base == GITS_CBASER:
                if not self.enabled:
                    self.cbaser = _deposit(self.cbaser, sh, v)
                    self.creadr = 0
                return True
            if base == GITS_CWRITER:
                if sh:
                    self.cwriter = _deposit(self.cwriter, 32, v)
                else:
                    self.cwriter = _deposit(self.cwriter, 0, v & ~CWRITER_RETRY)
                    if self.cwriter != self.creadr:
                        self._process_queue(cpu)
                return True
            if base == GITS_CREADR:                   # writable: GICD_CTLR.DS = 1
                self.creadr = _deposit(self.creadr, sh, v & ~CREADR_STALLED if not sh else v)
                return True
            if GITS_BASER <= base < GITS_BASER + 0x40:
                self._baser_write(base, v << sh, MASK32 << sh)
                return True
            return False
        if size == 8 and not off & 7:
            if GITS_BASER <= off < GITS_BASER + 0x40:
                self._baser_write(off, v, MASK64)
                return True
            if off == GITS_CBASER:
                if not self.enabled:
                    self.cbaser = v
                    self.creadr = 0
                return True
            if off == GITS_CWRITER:
                self.cwriter = v & ~CWRITER_RETRY
                if self.cwriter != self.creadr:
                    self._process_queue(cpu)
                return True
            if off == GITS_CREADR:
                self.creadr = v & ~CREADR_STALLED
                return True
            if off == GITS_TYPER:
                self.guest_error("ITS: write to read-only GITS_TYPER", cpu=cpu, value=v)
                return True
        return False

    def _baser_write(self, off: int, v: int, mask: int) -> None:
        """RO while enabled; unimplemented BASERn RAZ/WI; Type and Entry_Size RO."""
        i = (off - GITS_BASER) // 8
        if self.enabled or self.baser[i] == 0:
            return
        keep = BASER_RO_MASK | (MASK64 & ~mask)
        self.baser[i] = (self.baser[i] & keep) | (v & mask & ~BASER_RO_MASK)

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
        would raise; no side effect (nothing logged, nothing pending)."""
        if address != self.doorbell:
            raise DeviceError("EINVAL", f"ITS: MSI address {address:#x} is not GITS_TRANSLATER "
                                        f"({self.doorbell:#x})")
        for v, what in ((data, "data"), (device_id, "DeviceID")):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MASK32:
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
        return intid, rd

    def signal_msi(self, address: int, data: int, device_id: int) -> None:
        """KVM_SIGNAL_MSI: translate (errors as translate_msi, nothing
        changes) and make the LPI pending on its redistributor."""
        intid, rd = self.translate_msi(address, data, device_id)
        self.event("its_msi", device_id=device_id, event_id=data, intid=intid, target=rd)
        self.gic.lpi_process(rd, intid, True)

    # ---- migration -----------------------------------------------------------------------------
    def save_state(self) -> dict:
        """Section "gicv3-its" v1: the registers (the tables are in guest RAM)."""
        from ..state import section
        return section("gicv3-its", self.STATE_VERSION, base=self.base, ctlr=self.ctlr,
                       cbaser=self.cbaser, cwriter=self.cwriter, creadr=self.creadr,
                       baser=list(self.baser))

    def load_state(self, sections: dict) -> None:
        self.mapping_generation += 1
        from ..state import fields_of
        f = fields_of(sections, "gicv3-its", self.STATE_VERSION,
                      {"base": int, "ctlr": int, "cbaser": int, "cwriter": int, "creadr": int,
                       "baser": list})
        if f["base"] != self.base:
            raise ConfigError("snapshot: ITS address differs from this machine's")
        vals = [f[k] for k in ("ctlr", "cbaser", "cwriter", "creadr")]
        baser = f["baser"]
        if len(baser) != 8 or not all(isinstance(x, int) and not isinstance(x, bool)
                                      and 0 <= x <= MASK64 for x in vals + baser):
            raise ConfigError("snapshot: ITS registers are not 64-bit numbers (8 BASERs)")
        if any((b ^ r) & BASER_RO_MASK or (r == 0 and b) for b, r in zip(baser, BASER_RESET)):
            raise ConfigError("snapshot: ITS BASER types differ from this ITS's")
        self.ctlr = (vals[0] & CTLR_ENABLED) | CTLR_QUIESCENT
        self.cbaser, self.cwriter, self.creadr = vals[1:]
        self.baser = list(baser)
        self._derive()


def _deposit(old: int, shift: int, v: int) -> int:
    return (old & ~(MASK32 << shift)) | ((v & MASK32) << shift)

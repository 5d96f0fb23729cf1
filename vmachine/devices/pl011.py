"""ARM PL011 UART as QEMU's virt has it at 0x0900_0000 (transmit-side model:
every DR write goes to the console and sets RIS.TX; the interrupt line is
RIS & IMSC, level, to SPI 1 once a GIC exists).

The frame is a register table (PL011_REGISTERS, 1-, 2- and 4-byte accesses,
names from the TRM: UARTDR, UARTFR, ...) and the migrated state a declared
section (PL011_STATE, "pl011" v1), both after the class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..regs import Register, RegisterBank, raz, wi
from ..state import Bytes, Field, U8, U16, VMStateDescription

PL011_BASE = 0x0900_0000
PL011_SIZE = 0x1000

UARTDR, UARTRSR, UARTFR, UARTILPR, UARTIBRD, UARTFBRD, UARTLCR_H, UARTCR = \
    0x00, 0x04, 0x18, 0x20, 0x24, 0x28, 0x2C, 0x30
UARTIFLS, UARTIMSC, UARTRIS, UARTMIS, UARTICR, UARTDMACR = 0x34, 0x38, 0x3C, 0x40, 0x44, 0x48
UART_ID = 0xFE0                                             # UARTPeriphID0-3, UARTPCellID0-3
INT_TX, INT_RX = 1 << 5, 1 << 4
FR_RXFE, FR_TXFE = 1 << 4, 1 << 7
PL011_ID = (0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
WIDTHS = frozenset({1, 2, 4})


@dataclass
class Pl011:
    output: Callable[[bytes], None] = lambda data: None
    irq: Callable[[bool], None] = lambda level: None
    log_guest_error: Callable[..., None] = lambda *a, **k: None
    # registers: set from PL011_REGISTERS' reset column
    lcr_h: int = field(init=False)
    cr: int = field(init=False)
    ibrd: int = field(init=False)
    fbrd: int = field(init=False)
    ifls: int = field(init=False)
    imsc: int = field(init=False)
    ris: int = field(init=False)
    dmacr: int = field(init=False)
    ilpr: int = field(init=False)
    rx: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self.regs = RegisterBank("pl011", PL011_REGISTERS,
                                 lambda what, **k: self.log_guest_error(what, **k))
        self.regs.reset(self)

    def _update(self) -> None:
        """Drive the interrupt line: RIS & IMSC."""
        self.irq(bool(self.ris & self.imsc))

    def feed(self, data: bytes) -> None:
        self.rx += data
        self.ris |= INT_RX
        self._update()

    # ---- MMIO: PL011_REGISTERS --------------------------------------------------------------
    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        return self.regs.read(self, cpu, offset, size, cpu)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        """Every write, even a bad one, re-drives the interrupt line."""
        self.regs.write(self, cpu, offset, size, value, cpu)
        self._update()

    def read_dr(self, cpu: int, rel: int, size: int) -> int:
        """Pop a received character; RX clears when the FIFO empties."""
        if not self.rx:
            return 0
        c = self.rx.pop(0)
        if not self.rx:
            self.ris &= ~INT_RX
            self._update()
        return c

    def peek_dr(self, cpu: int, rel: int, size: int) -> int:
        return self.rx[0] if self.rx else 0

    def write_dr(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.output(bytes([value & 0xFF]))
        self.ris |= INT_TX

    def read_fr(self, cpu: int, rel: int, size: int) -> int:
        return FR_TXFE | (FR_RXFE if not self.rx else 0)

    def read_ilpr(self, cpu: int, rel: int, size: int) -> int:
        return self.ilpr

    def write_ilpr(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.ilpr = value & 0xFF

    def read_ibrd(self, cpu: int, rel: int, size: int) -> int:
        return self.ibrd

    def write_ibrd(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.ibrd = value & 0xFFFF

    def read_fbrd(self, cpu: int, rel: int, size: int) -> int:
        return self.fbrd

    def write_fbrd(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.fbrd = value & 0x3F

    def read_lcr_h(self, cpu: int, rel: int, size: int) -> int:
        return self.lcr_h

    def write_lcr_h(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.lcr_h = value & 0xFF

    def read_cr(self, cpu: int, rel: int, size: int) -> int:
        return self.cr

    def write_cr(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.cr = value & 0xFFFF

    def read_ifls(self, cpu: int, rel: int, size: int) -> int:
        return self.ifls

    def write_ifls(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.ifls = value & 0x3F

    def read_imsc(self, cpu: int, rel: int, size: int) -> int:
        return self.imsc

    def write_imsc(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.imsc = value & 0x7FF

    def read_ris(self, cpu: int, rel: int, size: int) -> int:
        return self.ris

    def read_mis(self, cpu: int, rel: int, size: int) -> int:
        return self.ris & self.imsc

    def write_icr(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.ris &= ~value

    def read_dmacr(self, cpu: int, rel: int, size: int) -> int:
        return self.dmacr

    def write_dmacr(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.dmacr = value & 7

    def read_id(self, cpu: int, rel: int, size: int) -> int:
        return PL011_ID[rel >> 2]

    # ---- migration --------------------------------------------------------------------------
    def save_state(self) -> dict:
        """Section "pl011" (PL011_STATE)."""
        return PL011_STATE.save(self)

    def load_state(self, sections: dict) -> None:
        """Validate, then store; the board re-drives the line (`_update`) once
        the interrupt controller it feeds is restored too."""
        PL011_STATE.apply(self, PL011_STATE.decode(self, sections))


def _r(name: str, offset: int, read, write, reset: int | None = None, attr: str | None = None,
       length: int = 4, peek=None) -> Register:
    return Register(name, offset, read, write, WIDTHS, length, reset, attr, peek, peek is not None)


PL011_REGISTERS = (
    _r("UARTDR", UARTDR, Pl011.read_dr, Pl011.write_dr, peek=Pl011.peek_dr),
    _r("UARTRSR", UARTRSR, raz, wi),
    _r("UARTFR", UARTFR, Pl011.read_fr, None),
    _r("UARTILPR", UARTILPR, Pl011.read_ilpr, Pl011.write_ilpr, 0, "ilpr"),
    _r("UARTIBRD", UARTIBRD, Pl011.read_ibrd, Pl011.write_ibrd, 0, "ibrd"),
    _r("UARTFBRD", UARTFBRD, Pl011.read_fbrd, Pl011.write_fbrd, 0, "fbrd"),
    _r("UARTLCR_H", UARTLCR_H, Pl011.read_lcr_h, Pl011.write_lcr_h, 0, "lcr_h"),
    _r("UARTCR", UARTCR, Pl011.read_cr, Pl011.write_cr, 0x300, "cr"),
    _r("UARTIFLS", UARTIFLS, Pl011.read_ifls, Pl011.write_ifls, 0x12, "ifls"),
    _r("UARTIMSC", UARTIMSC, Pl011.read_imsc, Pl011.write_imsc, 0, "imsc"),
    _r("UARTRIS", UARTRIS, Pl011.read_ris, None, 0, "ris"),
    _r("UARTMIS", UARTMIS, Pl011.read_mis, None),
    _r("UARTICR", UARTICR, None, Pl011.write_icr),
    _r("UARTDMACR", UARTDMACR, Pl011.read_dmacr, Pl011.write_dmacr, 0, "dmacr"),
    _r("UARTPeriphID/CellID", UART_ID, Pl011.read_id, None, length=4 * len(PL011_ID)),
)


def _put_rx(uart: Pl011, rx: bytes) -> None:
    uart.rx = bytearray(rx)


PL011_STATE = VMStateDescription("pl011", 1, (
    Field("rx", Bytes(), put_fn=_put_rx),
    Field("lcr_h", U8), Field("cr", U16), Field("ibrd", U16), Field("fbrd", U8),
    Field("ifls", U8), Field("imsc", U16), Field("ris", U16), Field("dmacr", U8), Field("ilpr", U8),
))

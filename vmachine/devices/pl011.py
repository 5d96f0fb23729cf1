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

from ..regs import Register, RegisterBank, raz, stored, wi
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

    def read_ris(self, cpu: int, rel: int, size: int) -> int:
        return self.ris

    def read_mis(self, cpu: int, rel: int, size: int) -> int:
        return self.ris & self.imsc

    def write_icr(self, cpu: int, rel: int, size: int, value: int) -> None:
        self.ris &= ~value

    def read_id(self, cpu: int, rel: int, size: int) -> int:
        return PL011_ID[rel >> 2]

    # ---- migration --------------------------------------------------------------------------
    def save_state(self) -> dict:
        """Section "pl011" (PL011_STATE)."""
        return PL011_STATE.save(self)

    def decode_state(self, sections: dict) -> dict:
        """Validate section "pl011" completely; touches nothing."""
        return PL011_STATE.decode(self, sections)

    def apply_state(self, plan: dict) -> None:
        """Store; the board re-drives the line (`_update`) once the interrupt
        controller it feeds is restored too."""
        PL011_STATE.apply(self, plan)

    def load_state(self, sections: dict) -> None:
        self.apply_state(self.decode_state(sections))


def _r(name: str, offset: int, read, write, reset: int | None = None, attr: str | None = None,
       length: int = 4, peek=None) -> Register:
    return Register(name, offset, read, write, WIDTHS, length, reset, attr, peek, peek is not None)


PL011_REGISTERS = (
    _r("UARTDR", UARTDR, Pl011.read_dr, Pl011.write_dr, peek=Pl011.peek_dr),
    _r("UARTRSR", UARTRSR, raz, wi),
    _r("UARTFR", UARTFR, Pl011.read_fr, None),
    stored("UARTILPR", UARTILPR, "ilpr", 0xFF, 0, WIDTHS),
    stored("UARTIBRD", UARTIBRD, "ibrd", 0xFFFF, 0, WIDTHS),
    stored("UARTFBRD", UARTFBRD, "fbrd", 0x3F, 0, WIDTHS),
    stored("UARTLCR_H", UARTLCR_H, "lcr_h", 0xFF, 0, WIDTHS),
    stored("UARTCR", UARTCR, "cr", 0xFFFF, 0x300, WIDTHS),
    stored("UARTIFLS", UARTIFLS, "ifls", 0x3F, 0x12, WIDTHS),
    stored("UARTIMSC", UARTIMSC, "imsc", 0x7FF, 0, WIDTHS),
    _r("UARTRIS", UARTRIS, Pl011.read_ris, None, 0, "ris"),
    _r("UARTMIS", UARTMIS, Pl011.read_mis, None),
    _r("UARTICR", UARTICR, None, Pl011.write_icr),
    stored("UARTDMACR", UARTDMACR, "dmacr", 7, 0, WIDTHS),
    _r("UARTPeriphID/CellID", UART_ID, Pl011.read_id, None, length=4 * len(PL011_ID)),
)


def _put_rx(uart: Pl011, rx: bytes) -> None:
    uart.rx = bytearray(rx)


PL011_STATE = VMStateDescription("pl011", 1, (
    Field("rx", Bytes(), put_fn=_put_rx),
    Field("lcr_h", U8), Field("cr", U16), Field("ibrd", U16), Field("fbrd", U8),
    Field("ifls", U8), Field("imsc", U16), Field("ris", U16), Field("dmacr", U8), Field("ilpr", U8),
))

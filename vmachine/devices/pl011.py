"""ARM PL011 UART as QEMU's virt has it at 0x0900_0000 (transmit-side model:
every DR write goes to the console and sets RIS.TX; the interrupt line is
RIS & IMSC, level, to SPI 1 once a GIC exists)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

PL011_BASE = 0x0900_0000
PL011_SIZE = 0x1000
PL011_SPI = 1

DR, RSR, FR, ILPR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, RIS, MIS, ICR, DMACR = \
    0x00, 0x04, 0x18, 0x20, 0x24, 0x28, 0x2C, 0x30, 0x34, 0x38, 0x3C, 0x40, 0x44, 0x48
INT_TX, INT_RX = 1 << 5, 1 << 4
FR_RXFE, FR_TXFE = 1 << 4, 1 << 7
PL011_ID = (0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1)    # PeriphID0-3, CellID0-3 at 0xFE0


@dataclass
class Pl011:
    output: Callable[[bytes], None] = lambda data: None
    irq: Callable[[bool], None] = lambda level: None
    log_guest_error: Callable[..., None] = lambda *a, **k: None
    lcr_h: int = 0
    cr: int = 0x300
    ibrd: int = 0
    fbrd: int = 0
    ifls: int = 0x12
    imsc: int = 0
    ris: int = 0
    dmacr: int = 0
    ilpr: int = 0
    rx: bytearray = field(default_factory=bytearray)

    def _update(self) -> None:
        self.irq(bool(self.ris & self.imsc))

    def feed(self, data: bytes) -> None:
        self.rx += data
        self.ris |= INT_RX
        self._update()

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        if offset == DR:
            if not self.rx:
                return 0
            c = self.rx.pop(0)
            if not self.rx:
                self.ris &= ~INT_RX
                self._update()
            return c
        if offset == FR:
            return FR_TXFE | (FR_RXFE if not self.rx else 0)
        regs = {RSR: 0, ILPR: self.ilpr, IBRD: self.ibrd, FBRD: self.fbrd, LCR_H: self.lcr_h,
                CR: self.cr, IFLS: self.ifls, IMSC: self.imsc, RIS: self.ris,
                MIS: self.ris & self.imsc, DMACR: self.dmacr}
        if offset in regs:
            return regs[offset]
        if 0xFE0 <= offset < 0x1000 and offset % 4 == 0:
            return PL011_ID[(offset - 0xFE0) // 4]
        self.log_guest_error("pl011: bad read offset", offset=offset)
        return 0

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        if offset == DR:
            self.output(bytes([value & 0xFF]))
            self.ris |= INT_TX
        elif offset == RSR:
            pass
        elif offset == ILPR:
            self.ilpr = value & 0xFF
        elif offset == IBRD:
            self.ibrd = value & 0xFFFF
        elif offset == FBRD:
            self.fbrd = value & 0x3F
        elif offset == LCR_H:
            self.lcr_h = value & 0xFF
        elif offset == CR:
            self.cr = value & 0xFFFF
        elif offset == IFLS:
            self.ifls = value & 0x3F
        elif offset == IMSC:
            self.imsc = value & 0x7FF
        elif offset == ICR:
            self.ris &= ~value
        elif offset == DMACR:
            self.dmacr = value & 7
        else:
            self.log_guest_error("pl011: bad write offset", offset=offset, value=value)
        self._update()

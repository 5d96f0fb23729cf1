"""sPAPR virtual terminal (`hvterm1`): the console of H_PUT_TERM_CHAR and
H_GET_TERM_CHAR (QEMU hw/char/spapr_vty.c). It has no MMIO; the hcalls move
bytes in and out, so the device owns them, its /vdevice node and its
migration section."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..boards.spapr_hcall import (H_GET_TERM_CHAR, H_PARAMETER, H_PUT_TERM_CHAR, H_SUCCESS, Hcall,
                                  HcallResult)
from ..boards.spapr_irq import SPAPR_IRQ_VIO
from ..cpu.ppc64 import Ppc64Cpu
from ..fdt import Node
from ..state import Migratable, Bytes, Field, VMStateDescription

VTY_REG = 0x71000000          # QEMU's first VIO device address (spapr_vio.c)
VTY_IRQ = SPAPR_IRQ_VIO       # its interrupt source, the first of the VIO range
MAX_CHARS = 16


def _no_log(cpu: int, what: str, **data: object) -> None:
    pass


@dataclass
class SpaprVty(Migratable):
    reg: int = VTY_REG
    irq: int = VTY_IRQ
    output: Callable[[bytes], None] = lambda data: None
    input: bytearray = field(default_factory=bytearray)
    guest_error: Callable[..., None] = _no_log       # (cpu index, what, **data)

    def put_chars(self, data: bytes) -> None:
        self.output(data)

    def get_chars(self, limit: int = MAX_CHARS) -> bytes:
        chunk = bytes(self.input[:limit])
        del self.input[:limit]
        return chunk

    def feed(self, data: bytes) -> None:
        """Host side: characters typed at the console."""
        self.input += data

    # ---- hcalls (h_put_term_char / h_get_term_char) ---------------------------------
    def hcalls(self) -> list[Hcall]:
        return [Hcall(H_PUT_TERM_CHAR, "H_PUT_TERM_CHAR", self.h_put_term_char),
                Hcall(H_GET_TERM_CHAR, "H_GET_TERM_CHAR", self.h_get_term_char)]

    def h_put_term_char(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        reg, length = a[0], a[1]
        if reg not in (0, self.reg):
            self.guest_error(cpu.index, "H_PUT_TERM_CHAR: no such vty", reg=reg)
            return H_PARAMETER, []
        if length > MAX_CHARS:
            self.guest_error(cpu.index, "H_PUT_TERM_CHAR: length > 16", len=length)
            return H_PARAMETER, []
        data = a[2].to_bytes(8, "big") + a[3].to_bytes(8, "big")
        self.put_chars(data[:length])
        return H_SUCCESS, []

    def h_get_term_char(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        if a[0] not in (0, self.reg):
            self.guest_error(cpu.index, "H_GET_TERM_CHAR: no such vty", reg=a[0])
            return H_PARAMETER, []
        data = self.get_chars()
        buf = data.ljust(MAX_CHARS, b"\0")
        return H_SUCCESS, [len(data), int.from_bytes(buf[:8], "big"), int.from_bytes(buf[8:], "big")]

    # ---- device tree and migration ---------------------------------------------------
    @property
    def path(self) -> str:
        return f"/vdevice/vty@{self.reg:x}"

    def dt(self, vdevice: Node) -> None:
        n = vdevice.child(f"vty@{self.reg:x}")
        n.prop("interrupts", [self.irq, 0]).prop("compatible", "hvterm1")
        n.prop("device_type", "serial").prop("reg", self.reg)


VTY_STATE = VMStateDescription("vty", 1, (
    Field("input", Bytes(), put_fn=lambda vty, data: setattr(vty, "input", bytearray(data))),
))

SpaprVty.VMSTATE = VTY_STATE

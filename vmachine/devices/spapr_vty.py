"""sPAPR virtual terminal (`hvterm1`): the console of H_PUT_TERM_CHAR and
H_GET_TERM_CHAR. It has no MMIO; the hcalls move bytes in and out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

VTY_REG = 0x71000000          # QEMU's first VIO device address (spapr_vio.c)
VTY_IRQ = 0x1100              # its interrupt source (VIO range)
MAX_CHARS = 16


@dataclass
class SpaprVty:
    reg: int = VTY_REG
    irq: int = VTY_IRQ
    output: Callable[[bytes], None] = lambda data: None
    input: bytearray = field(default_factory=bytearray)

    def put_chars(self, data: bytes) -> None:
        self.output(data)

    def get_chars(self, limit: int = MAX_CHARS) -> bytes:
        chunk = bytes(self.input[:limit])
        del self.input[:limit]
        return chunk

    def feed(self, data: bytes) -> None:
        """Host side: characters typed at the console."""
        self.input += data

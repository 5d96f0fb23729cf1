"""ibm,client-architecture-support (CAS), reached through KVMPPC_H_CAS, as
QEMU 7.2's spapr_hcall.c does it: the PVR list, the option-vector table, the
negotiated option vector 5 (the interrupt mode lives in its byte 23) and the
`ibm,architecture-vec-5` encoding. Pure functions over guest memory."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

OV_MAXBYTES = 256
# (byte, bit) as PAPR numbers them: byte 1 is the first data byte, bit 0 = 0x80.
OV5_XIVE_EXPLOIT = (23, 1)      # 0x40
OV5_XIVE_BOTH = (23, 0)         # 0x80: platform-side only
OV5_MMU_BOTH = (24, 0)          # 0x80: platform-side only
OV5_MMU_RADIX_300 = (24, 1)     # 0x40

# Logical (compatibility) PVRs a POWER9 accepts (target/ppc/compat.c), ISA 2.05..3.00.
POWER9_PVR = 0x004E1200
COMPAT_PVRS = (0x0F000002, 0x0F000003, 0x0F000004, 0x0F000005)


class CasError(Exception):
    """A CAS request QEMU answers with an hcall error (status in .status)."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


class CasFatal(Exception):
    """A CAS request on which QEMU exits (error_report + exit(1))."""


@dataclass(frozen=True)
class OptionVector:
    data: bytes                                   # data bytes, byte 1 first

    def test(self, bit: tuple[int, int]) -> bool:
        byte, b = bit
        return len(self.data) >= byte and bool(self.data[byte - 1] & (0x80 >> b))


def parse_pvrs(read32: Callable[[int], int], addr: int, cpu_pvr: int = POWER9_PVR
               ) -> tuple[int, int, bool]:
    """Walk (mask, value) pairs up to and including the terminator (a value
    with bits outside its mask). Returns (address after it, best compat PVR
    or 0, explicit match)."""
    best, explicit = 0, False
    for _ in range(512):
        mask, pvr = read32(addr), read32(addr + 4)
        addr += 8
        if ~mask & pvr & 0xFFFF_FFFF:
            break
        if cpu_pvr & mask == pvr & mask:
            explicit = True
        elif pvr in COMPAT_PVRS and pvr > best:
            best = pvr
    return addr, best, explicit


def parse_vector(read8: Callable[[int], int], table: int, vector: int) -> OptionVector | None:
    """Option vector `vector` (1-based) of the table at `table`, None if absent."""
    count = read8(table) + 1
    if vector > count:
        return None
    addr = table + 1
    for _ in range(vector - 1):
        addr += read8(addr) + 2                   # length byte + (len-1 encoded) data
    length = min(read8(addr) + 1, OV_MAXBYTES)
    return OptionVector(bytes(read8(addr + 1 + i) for i in range(length)))


def intersect(platform: OptionVector, guest: OptionVector) -> OptionVector:
    n = max(len(platform.data), len(guest.data))
    p, g = platform.data.ljust(n, b"\0"), guest.data.ljust(n, b"\0")
    return OptionVector(bytes(a & b for a, b in zip(p, g)))


def encode_vector(ov: OptionVector) -> bytes:
    """`ibm,architecture-vec-5` style: [len-1, data...], at least one data byte,
    trailing zero bytes dropped (QEMU spapr_ovec_populate_dt)."""
    data = ov.data.rstrip(b"\0") or b"\0"
    return bytes([len(data) - 1]) + data


def platform_ov5(ic_mode: str) -> OptionVector:
    """What QEMU's pseries offers in OV5 that the guest may request here."""
    data = bytearray(26)
    if ic_mode in ("xive", "dual"):
        data[22] |= 0x40                          # byte 23: XIVE exploitation
    data[23] |= 0x40                              # byte 24: radix MMU (ISA 3.00)
    data[25] |= 0x40                              # byte 26: radix GTSE
    return OptionVector(bytes(data))

"""ibm,client-architecture-support (CAS), reached through KVMPPC_H_CAS, as
QEMU 7.2's spapr_hcall.c does it: the PVR list, the option-vector table, the
negotiated option vector 5 (the interrupt mode lives in its byte 23) and the
`ibm,architecture-vec-5` encoding (pure functions over guest memory), and
`SpaprCas`, the KVMPPC_H_CAS hcall with the negotiated state it leaves: the
compat PVR and OV5, whose interrupt-mode bit switches the active interrupt
controller through `SpaprIrq`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..cpu.base import CpuState
from ..cpu.ppc64 import Ppc64Cpu
from ..fdt import Node
from .spapr_hcall import (H_HARDWARE, H_MULTI_THREADS_ACTIVE, H_PARAMETER, H_SUCCESS, KVMPPC_H_CAS,
                          Hcall, HcallResult, ResetGuard)

if TYPE_CHECKING:
    from ..machine import Machine
    from .spapr_irq import SpaprIrq

OV_MAXBYTES = 256
# (byte, bit) as PAPR numbers them: byte 1 is the first data byte, bit 0 = 0x80.
OV5_XIVE_EXPLOIT = (23, 1)      # 0x40
OV5_XIVE_BOTH = (23, 0)         # 0x80: platform-side only
OV5_MMU_BOTH = (24, 0)          # 0x80: platform-side only
OV5_MMU_RADIX_300 = (24, 1)     # 0x40

# Logical (compatibility) PVRs a POWER9 accepts (target/ppc/compat.c), ISA 2.05..3.00.
POWER9_PVR = 0x004E1200
COMPAT_PVRS = (0x0F000002, 0x0F000003, 0x0F000004, 0x0F000005)


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


class SpaprCas:
    """KVMPPC_H_CAS (QEMU h_client_architecture_support) and what it
    negotiated. `rebuild_fdt` makes the board's post-CAS device tree (and
    keeps it as the machine's tree); the reply buffer gets a copy."""

    def __init__(self, machine: "Machine", irq: "SpaprIrq", guard: ResetGuard,
                 rebuild_fdt: Callable[[], bytes]):
        self.machine = machine
        self.irq = irq
        self.guard = guard
        self.rebuild_fdt = rebuild_fdt
        self.ov5_cas = OptionVector(b"")
        self.compat_pvr = 0

    def reset(self) -> None:
        """Nothing negotiated: the guest runs CAS again after a reset."""
        self.ov5_cas = OptionVector(b"")
        self.compat_pvr = 0

    @property
    def xive_negotiated(self) -> bool:
        return self.ov5_cas.test(OV5_XIVE_EXPLOIT)

    @property
    def negotiated(self) -> bool:
        return bool(self.ov5_cas.data)

    def hcalls(self) -> list[Hcall]:
        return [Hcall(KVMPPC_H_CAS, "KVMPPC_H_CAS", self.h_cas)]

    def apply(self, ov5: OptionVector) -> None:
        """Take the guest's OV5 as negotiated and switch the interrupt
        controller to the mode it asks for (QEMU spapr_irq_update_active_intc)."""
        self.ov5_cas = intersect(platform_ov5(self.irq.ic_mode), ov5)
        self.irq.update_active(self.irq.intcs["xive" if ov5.test(OV5_XIVE_EXPLOIT) else "xics"])

    def chosen_props(self, chosen: Node, after_cas: bool) -> None:
        """/chosen: the negotiated OV5 after CAS; before, (OV5 byte, value)
        pairs the platform supports (interrupt mode, MMU, hash v3/radix GTSE)."""
        chosen.prop("ibm,architecture-vec-5",
                    encode_vector(self.ov5_cas) if after_cas else bytes([0, 0]))
        if not after_cas:
            mode = {"xics": 0x00, "xive": 0x40, "dual": 0x80}[self.irq.ic_mode]
            chosen.prop("ibm,arch-vec-5-platform-support",
                        bytes([23, mode, 24, 0xC0, 25, 0x00, 26, 0x40]))

    def h_cas(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        m = self.machine
        vec, buf, bufsize = a[0] & 0x0FFF_FFFF_FFFF_FFFF, a[1], a[2]
        if bufsize < 4:
            return self._fatal(cpu, f"insufficient CAS buffer {bufsize} (min: 4)")
        if any(c is not cpu and c.state is CpuState.RUNNING for c in m.cpus):
            m.trace.guest_error(cpu.index, "CAS with multiple active vCPUs")
            return H_MULTI_THREADS_ACTIVE, []
        table, best, explicit = parse_pvrs(self._read32, vec)
        if best == 0 and not explicit:
            m.trace.guest_error(cpu.index, "CAS: guest not compatible with this CPU")
            return H_HARDWARE, []
        ov1 = parse_vector(self._read8, table, 1)
        ov5 = parse_vector(self._read8, table, 5)
        if ov1 is None or ov5 is None:
            m.trace.guest_error(cpu.index, "CAS: option vector 1 or 5 missing")
            return H_PARAMETER, []
        why = self._refusal(ov5)
        if why:
            return self._fatal(cpu, why)
        self.compat_pvr = best
        self.apply(ov5)
        return self._reply(cpu, buf, bufsize, best)

    def _read8(self, addr: int) -> int:
        ram = self.machine.ram
        return ram.read_int(addr, 1, "big") if ram.contains(addr, 1) else 0

    def _read32(self, addr: int) -> int:
        ram = self.machine.ram
        return ram.read_int(addr, 4, "big") if ram.contains(addr, 4) else 0

    def _refusal(self, ov5: OptionVector) -> str:
        """Why QEMU exits on this OV5 ("" if it does not)."""
        if ov5.test(OV5_MMU_BOTH):
            return "guest requested hash and radix MMU, which is invalid."
        if ov5.test(OV5_XIVE_BOTH):
            return "guest requested an invalid interrupt mode"
        want_xive = ov5.test(OV5_XIVE_EXPLOIT)
        if want_xive and "xive" not in self.irq.intcs:
            return ("Guest requested unavailable interrupt mode (XIVE), "
                    "try the ic-mode=xive or ic-mode=dual machine property")
        if not want_xive and "xics" not in self.irq.intcs:
            return ("Guest requested unavailable interrupt mode (XICS), "
                    "either don't set the ic-mode machine property or set it to xics or dual")
        return ""

    def _reply(self, cpu: Ppc64Cpu, buf: int, bufsize: int, best: int) -> HcallResult:
        """The new device tree into the guest's buffer, after a 4-byte header."""
        m, ram = self.machine, self.machine.ram
        fdt = self.rebuild_fdt()
        if len(fdt) > bufsize - 4:
            return self._fatal(cpu, f"CAS buffer of {bufsize} bytes too small for the "
                                    f"{len(fdt)}-byte device tree")
        if not ram.contains(buf, 4 + len(fdt)):
            m.trace.guest_error(cpu.index, "CAS reply buffer outside RAM", addr=buf)
            return H_PARAMETER, []
        # SpaprDeviceTreeUpdateHeader {version_id = 1}: QEMU writes it in host
        # byte order; on the usual little-endian hosts that is 01 00 00 00.
        ram.write(buf, (1).to_bytes(4, "little"))
        ram.write(buf + 4, fdt)
        m.trace.log(cpu.index, "cas", "KVMPPC_H_CAS", xive=int(self.xive_negotiated), compat=best)
        return H_SUCCESS, []

    def _fatal(self, cpu: Ppc64Cpu, why: str) -> HcallResult:
        """QEMU error_report()s and exits on these; so does the machine."""
        self.machine.trace.guest_error(cpu.index, "CAS: " + why)
        self.machine.fatal = why
        self.machine.shutdown("error", 1)
        self.guard.tripped = True                # leave the registers alone
        return H_HARDWARE, []

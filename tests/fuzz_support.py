"""Shared support for the fuzz suite (tests/test_fuzz_*.py, issue 15).

Profiles (hypothesis), chosen with the environment variable HYPOTHESIS_PROFILE:

  * ``ci`` (default): derandomized (fixed seeds, no example database), a modest
    number of examples, no shrinking phase (a failing property that CI expects
    to fail, an ``xfail(strict=True)``, must not spend minutes shrinking); each
    known defect also has its minimal failing example pinned with ``@example``,
    so CI reproduces it in milliseconds. The whole suite is meant to add at most
    ~2-3 minutes of wall time on 2 cores.
  * ``long``: random seeds, 25x the examples, shrinking on: the local run that
    looks for new defects (``HYPOTHESIS_PROFILE=long pytest tests/test_fuzz_*.py``).
    Exhaustive MMIO offset sweeps (every offset, not a stride) also run only here.

The suite talks to vmachine through its public interfaces only (README). Every
attribute path that the README does not spell out is looked up in ONE function
below (`xics_host`, `hcall_known`, `psci_known`, ...), so an internal refactor
is a one-line change here.
"""
from __future__ import annotations

import functools
import os
import struct

import libfdt
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from vmachine import create_machine

# ---- profiles ------------------------------------------------------------------------------------
_COMMON = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
settings.register_profile("ci", derandomize=True, database=None,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate), **_COMMON)
settings.register_profile("long", **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
LONG = PROFILE == "long"


def examples(ci: int) -> int:
    """Examples for one property: `ci` in CI, 25x that in the long profile."""
    return ci * 25 if LONG else ci


def fuzz_settings(ci: int, **kw) -> settings:
    return settings(max_examples=examples(ci), **kw)


# ---- machines -----------------------------------------------------------------------------------
PSERIES = "pseries"
VIRT = "virt,gic-version=3"
PSERIES_RAM = 64 << 20
VIRT_RAM = 32 << 20
VIRT_RAM_BASE = 0x4000_0000
MASK64 = (1 << 64) - 1
H_SUCCESS, H_HARDWARE, H_FUNCTION, H_PARAMETER = 0, -1, -2, -4
KVMPPC_H_RTAS, KVMPPC_H_CAS = 0xF000, 0xF002
PSCI_NOT_SUPPORTED = -1
RTAS_BUF = 0x80_0000           # scratch RTAS buffer in pseries RAM (below the kernel-free area)


def s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def s32(v: int) -> int:
    return v - (1 << 32) if v >> 31 else v


def pseries(smp: int = 2, ram: int = PSERIES_RAM, **kw):
    return create_machine(PSERIES, smp=smp, ram_size=ram, **kw)


def virt(smp: int = 2, ram: int = VIRT_RAM, **kw):
    return create_machine(VIRT, smp=smp, ram_size=ram, **kw)


@functools.lru_cache(maxsize=None)
def guest_elf(arch: str, name: str) -> str:
    from vmachine.toolchain import build_guest
    return str(build_guest(arch, name))


# ---- firmware calls, the way a guest makes them (test_firmware_calls.py) -------------------------
def hcall(m, op: int, *args: int, cpu: int = 0) -> int:
    """One `sc 1`: r3 = opcode, r4.. = arguments; returns r3 (signed)."""
    c = m.cpus[cpu]
    c.set_gpr(3, op & MASK64)
    for i in range(9):
        c.set_gpr(4 + i, (args[i] if i < len(args) else 0) & MASK64)
    m.board.firmware_call(c)
    return s64(c.gpr(3))


def psci(m, fn: int, *args: int, cpu: int = 0) -> int:
    c = m.cpus[cpu]
    c.set_x(0, fn & MASK64)
    for i in range(3):
        c.set_x(1 + i, (args[i] if i < len(args) else 0) & MASK64)
    m.board.firmware_call(c)
    return s64(c.x(0))


def rtas_tokens(m) -> dict[str, int]:
    """name -> token, from the board's own /rtas node."""
    fdt = libfdt.Fdt(m.board.dtb())
    node = fdt.path_offset("/rtas")
    out = {}
    off = fdt.first_property_offset(node, libfdt.QUIET_NOTFOUND)
    while off >= 0:
        prop = fdt.get_property_by_offset(off)
        if len(prop) == 4 and not prop.name.startswith(("rtas-", "ibm,max", "linux,")):
            out[prop.name] = int.from_bytes(bytes(prop), "big")
        off = fdt.next_property_offset(off, libfdt.QUIET_NOTFOUND)
    return out


def rtas(m, token: int, args: list[int], nret: int, buf: int = RTAS_BUF, cpu: int = 0,
         fill: int = 0xDEADBEEF) -> tuple[int, list[int]]:
    words = [token & 0xFFFFFFFF, len(args), nret, *[a & 0xFFFFFFFF for a in args]] + [fill] * nret
    m.ram.write(buf, struct.pack(f">{len(words)}I", *words))
    h = hcall(m, KVMPPC_H_RTAS, buf, cpu=cpu)
    rets = struct.unpack(f">{nret}I", m.ram.read(buf + 12 + 4 * len(args), 4 * nret))
    return h, [s32(r) for r in rets]


def cas_vector(ov5_23: int) -> bytes:
    """A CAS vector (PVR list + option vectors 1..5) asking for XICS (0) or XIVE (0x40)."""
    out = b"".join(struct.pack(">II", mk, v) for mk, v in ((0xFFFFFFFF, 0x004E1200),
                                                            (0xFFFFFFFE, 0x0F000001)))
    ov5 = bytearray(26)
    ov5[22] = ov5_23
    vecs = [b"\x00\x00\x80", b"", b"", b"", bytes(ov5)]
    table = bytes([len(vecs) - 1])
    for v in vecs:
        table += bytes([max(len(v), 1) - 1]) + (v or b"\0")
    return out + table


CAS_VEC, CAS_BUF = 0x10_0000, 0x20_0000


def cas(m, xive: bool) -> int:
    """KVMPPC_H_CAS from vCPU 0 (the others stopped): switches XICS <-> XIVE."""
    m.ram.write(CAS_VEC, cas_vector(0x40 if xive else 0))
    return hcall(m, KVMPPC_H_CAS, CAS_VEC, CAS_BUF, 0x10000)


# ---- lookups the README does not spell out (one line each to change after a refactor) ---------
def xics_host(m):
    """The XICS host interface (README: m.board.intcs["xics"].xics)."""
    return m.board.intcs["xics"].xics


def xive_host(m):
    """README: m.board.intcs["xive"].xive."""
    return m.board.intcs["xive"].xive


def gic_host(m):
    return m.board.gic


def its_host(m):
    return m.board.its


def hcall_known(m, nr: int) -> bool:
    """Does the board dispatch hcall `nr` now (README: register_hcall's table)?"""
    table = m.board.hcalls
    if hasattr(table, "lookup"):                 # the sPAPR board split (HcallTable)
        return table.lookup(nr) is not None
    return nr in table


def xive_hcall_range() -> range:
    """H_INT_* (H_FUNCTION until CAS chose XIVE)."""
    return range(0x3A8, 0x3D0 + 1)


def psci_known(fn: int) -> bool:
    from vmachine.boards.psci import PSCI_CALLS
    return PSCI_CALLS.get(fn) is not None


def msi_routing():
    """(GsiRouting, IrqchipRoute, MsiRoute) (README: vmachine/intc/msi_routing.py)."""
    from vmachine.intc.msi_routing import GsiRouting, IrqchipRoute, MsiRoute
    return GsiRouting, IrqchipRoute, MsiRoute


def xics_types():
    from vmachine.intc.xics import IcpState
    return IcpState


def xive_types():
    """(SourceState, EndState, OsRing, make_end)."""
    from vmachine.intc.xive import EndState, OsRing, SourceState, Xive
    return SourceState, EndState, OsRing, Xive.make_end


def snapshot_type():
    from vmachine.state import Snapshot
    return Snapshot


# ---- state fingerprints and RAM watching --------------------------------------------------------
def fingerprint(m) -> bytes:
    """The whole machine as bytes (m.save(): CPUs, devices, RAM, clock)."""
    return m.save().to_bytes()


def sections_json(m) -> str:
    import json
    return json.dumps(m.save().sections, sort_keys=True, default=repr)


class RamWatch:
    """Counts guest-RAM accesses made through `m.ram` (the devices' only way to
    guest memory) and records writes. Installed as instance attributes, so the
    class (and other machines) are untouched."""

    def __init__(self, m):
        self.ram = m.ram
        self.reads = 0
        self.writes: list[tuple[int, int]] = []
        cls = type(m.ram)
        ram = m.ram

        def read(addr, length, _f=cls.read):
            self.reads += 1
            return _f(ram, addr, length)

        def write(addr, data, _f=cls.write):
            self.writes.append((addr, len(data)))
            return _f(ram, addr, data)
        ram.read = read
        ram.write = write

    @property
    def accesses(self) -> int:
        return self.reads + len(self.writes)

    def reset(self) -> None:
        self.reads = 0
        self.writes.clear()


def ram_copy(m) -> bytes:
    return bytes(m.ram.buf)


def ram_diff(m, before: bytes, skip: list[tuple[int, int]] = ()) -> list[int]:
    """Guest addresses of 4 KiB pages that changed, outside `skip` [(addr, len)]."""
    now = bytes(m.ram.buf)
    if now == before:
        return []
    out = []
    for off in range(0, len(now), 0x1000):
        if now[off:off + 0x1000] != before[off:off + 0x1000]:
            a = m.ram.base + off
            if not any(s <= a < s + n for s, n in skip):
                out.append(a)
    return out


# ---- hostile values ----------------------------------------------------------------------------
HOSTILE = st.one_of(
    st.sampled_from([-1, -(1 << 63), 1 << 32, 1 << 63, 1 << 64, (1 << 64) - 1, 1 << 100, 0x7FFFFFFF]),
    st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.none(),
    st.text(max_size=2), st.integers(min_value=-(1 << 70), max_value=1 << 70))


def maybe_hostile(valid: st.SearchStrategy, p_hostile: float = 0.25) -> st.SearchStrategy:
    """Mostly `valid`, sometimes a hostile value."""
    return st.one_of(valid, valid, valid, HOSTILE) if p_hostile else valid


def is_plain_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)

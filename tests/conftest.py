"""Shared helpers for the machine tests: guest builds and QEMU-like runs."""
from __future__ import annotations

import functools

import pytest

from vmachine import create_machine
from vmachine.toolchain import build_guest

# The reference command lines of guests/NOTES.md: -m 512M (pseries), -m 128M (virt).
MACHINES = {
    "ppc64": ("pseries", 512 << 20),
    "aarch64": ("virt,gic-version=3", 128 << 20),
}


@functools.lru_cache(maxsize=None)
def guest_elf(arch: str, name: str) -> str:
    return str(build_guest(arch, name))


def boot(arch: str, name: str, smp: int = 1, **kw):
    """A fresh machine with guest `name` loaded, as the NOTES.md command line."""
    spec, ram = MACHINES[arch]
    return create_machine(spec, kernel=guest_elf(arch, name), smp=smp, ram_size=ram, **kw)


def run_guest(arch: str, name: str, smp: int = 1, max_insns: int = 200_000_000, **kw):
    m = boot(arch, name, smp, **kw)
    r = m.run(max_insns=max_insns, wall_seconds=60)
    return m, r


class RecordingDevice:
    """An MmioDevice that logs every access as (op, offset, size, value).
    A read of `size` bytes at `offset` returns bytes 0xA0+offset, 0xA1+offset, ...
    packed big-endian into one number (distinct values for distinct accesses)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, int, int]] = []

    @staticmethod
    def value(offset: int, size: int) -> int:
        return int.from_bytes(bytes((0xA0 + offset + i) & 0xFF for i in range(size)), "big")

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        v = self.value(offset, size)
        self.log.append(("r", offset, size, v))
        return v

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        self.log.append(("w", offset, size, value))


@pytest.fixture
def recording_device() -> RecordingDevice:
    return RecordingDevice()

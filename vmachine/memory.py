"""Guest RAM (one host buffer shared by every vCPU) and the MMIO map.

Devices register windows in the `MmioMap`; each vCPU maps every window into
its Unicorn instance and routes the callbacks through an `AccessAssembler`,
which turns Unicorn's 4-byte pieces back into the guest's real access (1, 2,
4 or 8 bytes) so that a device sees every access exactly once, at its real
width. The width comes from decoding the instruction at PC (cached per PC and
instruction word): it costs nothing on RAM traffic, unlike a memory hook,
which slows every guest load and store (figures in BENCHMARKS.md).
"""
from __future__ import annotations

import ctypes
import mmap
from dataclasses import dataclass
from typing import Callable, Protocol

from .errors import ConfigError


class MmioDevice(Protocol):
    """What a device offers the MMIO map. Values are register values (the
    number the guest's load returns / its store carries), not byte strings."""

    def mmio_read(self, cpu: int, offset: int, size: int) -> int: ...
    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None: ...


class GuestRAM:
    """Guest physical RAM: a single anonymous mapping of `size` bytes at `base`."""

    def __init__(self, base: int, size: int):
        if size <= 0 or size % 0x1000:
            raise ConfigError(f"RAM size {size:#x} must be a positive multiple of 4 KiB")
        self.base = base
        self.size = size
        self.end = base + size
        self.buf = mmap.mmap(-1, size)
        self.host_addr = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))

    def contains(self, addr: int, length: int = 1) -> bool:
        return self.base <= addr and addr + length <= self.end and length >= 0

    def read(self, addr: int, length: int) -> bytes:
        if not self.contains(addr, length):
            raise IndexError(f"RAM read {addr:#x}+{length:#x} outside RAM")
        o = addr - self.base
        return self.buf[o:o + length]

    def write(self, addr: int, data: bytes) -> None:
        if not self.contains(addr, len(data)):
            raise IndexError(f"RAM write {addr:#x}+{len(data):#x} outside RAM")
        o = addr - self.base
        self.buf[o:o + len(data)] = data

    def read_int(self, addr: int, size: int, byteorder: str) -> int:
        return int.from_bytes(self.read(addr, size), byteorder)

    def write_int(self, addr: int, size: int, value: int, byteorder: str) -> None:
        self.write(addr, (value & ((1 << (8 * size)) - 1)).to_bytes(size, byteorder))

    def clear(self) -> None:
        """Zero all of RAM (machine reset)."""
        chunk = bytes(min(self.size, 1 << 20))
        for o in range(0, self.size, len(chunk)):
            self.buf[o:o + len(chunk)] = chunk[:self.size - o]


@dataclass
class MmioRegion:
    name: str
    base: int
    size: int
    device: MmioDevice

    @property
    def end(self) -> int:
        return self.base + self.size


class MmioMap:
    """The machine's MMIO windows. A window can be added or removed while the
    machine runs (XIVE's ESB/TIMA appear at CAS); listeners (the vCPUs) map
    and unmap it in their Unicorn instances."""

    def __init__(self) -> None:
        self.regions: list[MmioRegion] = []
        self._listeners: list[tuple[Callable[[MmioRegion], None], Callable[[MmioRegion], None]]] = []

    def add(self, name: str, base: int, size: int, device: MmioDevice) -> MmioRegion:
        if base % 0x1000 or size % 0x1000 or size <= 0:
            raise ConfigError(f"MMIO window {name} {base:#x}+{size:#x} is not 4 KiB aligned")
        for r in self.regions:
            if base < r.end and r.base < base + size:
                raise ConfigError(f"MMIO window {name} overlaps {r.name}")
        region = MmioRegion(name, base, size, device)
        self.regions.append(region)
        self.regions.sort(key=lambda r: r.base)
        for on_add, _ in self._listeners:
            on_add(region)
        return region

    def remove(self, region: MmioRegion) -> None:
        self.regions.remove(region)
        for _, on_remove in self._listeners:
            on_remove(region)

    def find(self, addr: int) -> MmioRegion | None:
        for r in self.regions:
            if r.base <= addr < r.end:
                return r
        return None

    def listen(self, on_add: Callable[[MmioRegion], None], on_remove: Callable[[MmioRegion], None]) -> None:
        self._listeners.append((on_add, on_remove))
        for r in self.regions:
            on_add(r)


class AccessAssembler:
    """Reassembles Unicorn's <= 4-byte MMIO callbacks into the guest's access.

    `access_size(pc)` returns the element size of the load/store at `pc`
    (8 for ld/std/ldr x/ldp x...). For an 8-byte element the first callback
    performs the whole device read (or buffers the store), the second one
    completes it; so a device sees one 8-byte access and a side-effecting
    read runs once. `big_endian` says which half sits at the lower address.
    """

    def __init__(self, cpu: int, access_size: Callable[[], int], big_endian: bool):
        self.cpu = cpu
        self.access_size = access_size
        self.big_endian = big_endian
        self._rd: tuple[MmioDevice, int, int] | None = None   # device, next offset, value
        self._wr: tuple[MmioDevice, int, int] | None = None   # device, next offset, first half

    def read(self, dev: MmioDevice, offset: int, size: int) -> int:
        if self._rd is not None:
            d, nxt, value = self._rd
            self._rd = None
            if d is dev and nxt == offset and size == 4:
                return value & 0xFFFFFFFF if self.big_endian else value >> 32
        if size == 4 and self.access_size() == 8:
            value = dev.mmio_read(self.cpu, offset, 8)
            self._rd = (dev, offset + 4, value)
            return value >> 32 if self.big_endian else value & 0xFFFFFFFF
        return dev.mmio_read(self.cpu, offset, size)

    def write(self, dev: MmioDevice, offset: int, size: int, value: int) -> None:
        if self._wr is not None:
            d, nxt, first = self._wr
            self._wr = None
            if d is dev and nxt == offset and size == 4:
                full = (first << 32 | value) if self.big_endian else (value << 32 | first)
                dev.mmio_write(self.cpu, offset - 4, 8, full)
                return
        if size == 4 and self.access_size() == 8:
            self._wr = (dev, offset + 4, value & 0xFFFFFFFF)
            return
        dev.mmio_write(self.cpu, offset, size, value)

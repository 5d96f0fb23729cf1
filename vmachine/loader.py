"""Loading guest images the way QEMU's loaders do: ELF (PT_LOAD segments at
their physical address, after a board-specific translation), arm64 `Image`
files, and raw blobs. Every problem is a one-line `ConfigError`."""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .errors import ConfigError
from .memory import GuestRAM

EM_PPC64 = 21
EM_AARCH64 = 183


@dataclass
class LoadedImage:
    entry: int
    low: int                  # lowest address written
    high: int                 # one past the highest address written
    segments: list[tuple[int, bytes]]     # (address, file bytes) for code scanning
    is_elf: bool


def read_file(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"could not load {what} '{path}': {e.strerror or e}") from None


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def load_elf(ram: GuestRAM, data: bytes, path: str, machine: int,
             translate: Callable[[int], int] = lambda a: a) -> LoadedImage:
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.header["e_machine"] != {EM_PPC64: "EM_PPC64", EM_AARCH64: "EM_AARCH64"}[machine]:
            raise ConfigError(f"could not load kernel '{path}': ELF is for {elf.header['e_machine']}, "
                              f"not this machine's architecture")
        segs = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
                continue
            addr = translate(seg["p_paddr"])
            body = seg.data()
            if len(body) > seg["p_memsz"]:
                raise ConfigError(f"could not load kernel '{path}': segment file size exceeds memory size")
            if not ram.contains(addr, seg["p_memsz"]):
                raise ConfigError(f"could not load kernel '{path}': segment at {addr:#x} "
                                  f"(+{seg['p_memsz']:#x}) is outside RAM "
                                  f"[{ram.base:#x}, {ram.end:#x})")
            segs.append((addr, body, seg["p_memsz"], seg["p_vaddr"]))
        if not segs:
            raise ConfigError(f"could not load kernel '{path}': ELF has no loadable segment")
        entry_v = elf.header["e_entry"]
    except ELFError as e:
        raise ConfigError(f"could not load kernel '{path}': malformed ELF ({e})") from None
    except (struct.error, ValueError, KeyError) as e:
        raise ConfigError(f"could not load kernel '{path}': malformed ELF ({e})") from None
    for addr, body, memsz, _ in segs:
        ram.write(addr, body + bytes(memsz - len(body)))
    # Entry: translate through the segment that contains it (virtual -> load address).
    entry = translate(entry_v)
    for addr, body, memsz, vaddr in segs:
        if vaddr <= entry_v < vaddr + memsz:
            entry = addr + (entry_v - vaddr)
    low = min(s[0] for s in segs)
    high = max(s[0] + s[2] for s in segs)
    return LoadedImage(entry, low, high, [(a, b) for a, b, _, _ in segs], True)


def load_raw(ram: GuestRAM, data: bytes, addr: int, path: str, what: str) -> LoadedImage:
    if not ram.contains(addr, len(data)):
        raise ConfigError(f"could not load {what} '{path}': {len(data)} bytes at {addr:#x} "
                          f"do not fit in RAM")
    ram.write(addr, data)
    return LoadedImage(addr, addr, addr + len(data), [(addr, data)], False)


ARM64_IMAGE_MAGIC = b"ARM\x64"


def arm64_image_offset(data: bytes) -> int | None:
    """text_offset of an arm64 Linux `Image`, None if `data` is not one."""
    if len(data) < 64 or data[56:60] != ARM64_IMAGE_MAGIC:
        return None
    text_offset, image_size = struct.unpack_from("<QQ", data, 8)
    if image_size == 0:
        text_offset = 0x80000
    if text_offset < 4096:
        text_offset += 2 << 20        # QEMU: too-low offsets are moved up by 2 MiB
    return text_offset

"""Loading guest images the way QEMU's loaders do: ELF (PT_LOAD segments at
their physical address, after a board-specific translation), arm64 `Image`
files, and raw blobs. Every problem is a one-line `ConfigError`.

A plain ELF64 image (what the toolchain builds) is read with `struct` alone;
anything else, including every malformed or foreign file, goes through
pyelftools exactly as before, so its results and error messages do not depend
on which reader ran. pyelftools is imported only then (it costs more at start
than the whole boot of a small guest)."""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


# ELF64 identification and header fields the fast reader needs.
_EHDR = {1: struct.Struct("<HHIQQQIHHHHHH"), 2: struct.Struct(">HHIQQQIHHHHHH")}   # from e_type
_PHDR = {1: struct.Struct("<IIQQQQQQ"), 2: struct.Struct(">IIQQQQQQ")}
_PT_LOAD = 1
_PT_SPECIAL = (2, 3, 4)       # PT_DYNAMIC, PT_INTERP, PT_NOTE: pyelftools parses their contents
_PN_XNUM = 0xFFFF


def _simple_elf64(data: bytes, machine: int):
    """(e_entry, [(p_paddr, file bytes, p_memsz, p_vaddr) of the PT_LOAD
    segments with memory]) for an ELF64 file of `machine` whose headers and
    segments all lie inside `data` and which has no segment pyelftools would
    parse further; None for anything else (the caller then uses pyelftools)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] not in (1, 2):
        return None
    order = data[5]
    (_type, e_machine, _version, e_entry, e_phoff, _shoff, _flags, _ehsize, e_phentsize,
     e_phnum, _shentsize, _shnum, _shstrndx) = _EHDR[order].unpack_from(data, 16)
    phdr = _PHDR[order]
    if (e_machine != machine or e_phentsize != phdr.size or e_phnum == 0 or e_phnum >= _PN_XNUM
            or e_phoff < 64 or e_phoff + e_phnum * phdr.size > len(data)):
        return None
    loads = []
    for i in range(e_phnum):
        p_type, _pflags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _align = \
            phdr.unpack_from(data, e_phoff + i * phdr.size)
        if p_type in _PT_SPECIAL:
            return None
        if p_type != _PT_LOAD or p_memsz == 0:
            continue
        if p_offset + p_filesz > len(data):
            return None
        loads.append((p_paddr, data[p_offset:p_offset + p_filesz], p_memsz, p_vaddr))
    return e_entry, loads


def _elf_segments(data: bytes, path: str, machine: int):
    """(e_entry, iterable of (p_paddr, file bytes, p_memsz, p_vaddr)) of the
    PT_LOAD segments with memory, in program-header order."""
    simple = _simple_elf64(data, machine)
    if simple is not None:
        return simple
    from elftools.elf.elffile import ELFFile
    elf = ELFFile(io.BytesIO(data))
    if elf.header["e_machine"] != {EM_PPC64: "EM_PPC64", EM_AARCH64: "EM_AARCH64"}[machine]:
        raise ConfigError(f"could not load kernel '{path}': ELF is for {elf.header['e_machine']}, "
                          f"not this machine's architecture")
    return elf.header["e_entry"], ((seg["p_paddr"], seg.data(), seg["p_memsz"], seg["p_vaddr"])
                                   for seg in elf.iter_segments()
                                   if seg["p_type"] == "PT_LOAD" and seg["p_memsz"] != 0)


def _elf_error():
    """pyelftools' error class, imported only once an exception is being matched."""
    from elftools.common.exceptions import ELFError
    return ELFError


def load_elf(ram: GuestRAM, data: bytes, path: str, machine: int,
             translate: Callable[[int], int] = lambda a: a) -> LoadedImage:
    try:
        entry_v, loads = _elf_segments(data, path, machine)
        segs = []
        for paddr, body, memsz, vaddr in loads:
            addr = translate(paddr)
            if len(body) > memsz:
                raise ConfigError(f"could not load kernel '{path}': segment file size exceeds memory size")
            if not ram.contains(addr, memsz):
                raise ConfigError(f"could not load kernel '{path}': segment at {addr:#x} "
                                  f"(+{memsz:#x}) is outside RAM "
                                  f"[{ram.base:#x}, {ram.end:#x})")
            segs.append((addr, body, memsz, vaddr))
        if not segs:
            raise ConfigError(f"could not load kernel '{path}': ELF has no loadable segment")
    except ConfigError:
        raise
    except (struct.error, ValueError, KeyError) as e:
        raise ConfigError(f"could not load kernel '{path}': malformed ELF ({e})") from None
    except _elf_error() as e:
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

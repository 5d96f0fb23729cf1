"""Versioned save/restore of a whole machine (migration, snapshots).

Every component describes its state as named, typed fields (the spirit of
QEMU's VMStateDescription): `Section(name, version, fields)` where each field
value is an int, bool, str, or a list/dict of those. A snapshot is
    {"format": "vmachine-snapshot", "version": 1, "board": ..., "sections": [...]}
plus guest RAM as its non-zero 64 KiB chunks. On disk: one line of magic, the
JSON header (length-prefixed), then each chunk as (offset, length, zlib data). Loading validates the format, versions,
board, RAM size and vCPU count, and every field's type; only JSON and raw bytes are parsed.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

MAGIC = b"vmachine-snapshot\n"
FORMAT_VERSION = 1
CHUNK = 1 << 16
_ZERO = bytes(CHUNK)


def ram_chunks(buf) -> dict[int, bytes]:
    """The non-zero CHUNK-sized pieces of a RAM buffer, by offset."""
    out = {}
    for off in range(0, len(buf), CHUNK):
        piece = buf[off:off + CHUNK]
        if piece != _ZERO[:len(piece)]:
            out[off] = piece
    return out


@dataclass
class Snapshot:
    board: str
    ram_base: int
    ram_size: int
    ncpus: int
    sections: dict[str, dict[str, Any]]
    ram: dict[int, bytes] = field(repr=False, default_factory=dict)   # offset -> non-zero chunk

    def header(self) -> dict[str, Any]:
        return {"format": "vmachine-snapshot", "version": FORMAT_VERSION, "board": self.board,
                "ram_base": self.ram_base, "ram_size": self.ram_size, "ncpus": self.ncpus,
                "sections": self.sections}

    def to_bytes(self) -> bytes:
        head = json.dumps(self.header(), sort_keys=True).encode()
        parts = [MAGIC, struct.pack(">Q", len(head)), head]
        for off in sorted(self.ram):
            z = zlib.compress(self.ram[off], 1)
            parts += [struct.pack(">QQ", off, len(z)), z]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, origin: str = "snapshot") -> "Snapshot":
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
            raise ConfigError(f"{origin}: not a vmachine snapshot")
        (n,) = struct.unpack_from(">Q", data, len(MAGIC))
        start = len(MAGIC) + 8
        ram: dict[int, bytes] = {}
        try:
            head = json.loads(data[start:start + n].decode())
            pos = start + n
            while pos < len(data):
                off, length = struct.unpack_from(">QQ", data, pos)
                pos += 16
                if pos + length > len(data):
                    raise ValueError("truncated RAM chunk")
                ram[off] = zlib.decompress(data[pos:pos + length])
                pos += length
        except (ValueError, UnicodeDecodeError, zlib.error, struct.error) as e:
            raise ConfigError(f"{origin}: corrupt snapshot ({e})") from None
        if not isinstance(head, dict) or head.get("format") != "vmachine-snapshot":
            raise ConfigError(f"{origin}: not a vmachine snapshot")
        if head.get("version") != FORMAT_VERSION:
            raise ConfigError(f"{origin}: snapshot format version {head.get('version')} "
                              f"(this vmachine reads {FORMAT_VERSION})")
        try:
            snap = cls(str(head["board"]), int(head["ram_base"]), int(head["ram_size"]),
                       int(head["ncpus"]), dict(head["sections"]), ram)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{origin}: malformed snapshot header ({e})") from None
        for off, chunk in ram.items():
            if off % CHUNK or len(chunk) > CHUNK or off + len(chunk) > snap.ram_size:
                raise ConfigError(f"{origin}: RAM image is inconsistent with the header "
                                  f"(chunk at {off:#x} of a {snap.ram_size:#x}-byte RAM)")
        return snap

    def save(self, path: str | Path) -> None:
        try:
            Path(path).write_bytes(self.to_bytes())
        except OSError as e:
            raise ConfigError(f"could not write snapshot '{path}': {e.strerror}") from None

    @classmethod
    def load(cls, path: str | Path) -> "Snapshot":
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ConfigError(f"could not read snapshot '{path}': {e.strerror}") from None
        return cls.from_bytes(data, str(path))


def section(name: str, version: int, **fields: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "fields": fields}


def fields_of(sections: dict[str, dict[str, Any]], name: str, version: int,
              schema: dict[str, type]) -> dict[str, Any]:
    """The fields of section `name`, checked against `version` and `schema`."""
    sec = sections.get(name)
    if not isinstance(sec, dict):
        raise ConfigError(f"snapshot has no section '{name}'")
    if sec.get("version") != version:
        raise ConfigError(f"snapshot section '{name}' is version {sec.get('version')}, "
                          f"expected {version}")
    f = sec.get("fields")
    if not isinstance(f, dict):
        raise ConfigError(f"snapshot section '{name}' has no fields")
    for key, typ in schema.items():
        if key not in f:
            raise ConfigError(f"snapshot section '{name}' lacks field '{key}'")
        v = f[key]
        ok = isinstance(v, typ) and not (typ is int and isinstance(v, bool))
        if not ok:
            raise ConfigError(f"snapshot field '{name}.{key}' should be {typ.__name__}")
    return f

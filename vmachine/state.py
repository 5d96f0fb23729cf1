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
from typing import Any, Callable

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


# ---- declared device state (after QEMU's VMStateDescription) --------------------------------------
#
# A device lists its fields once; saving, validating and loading are derived
# from the list. Loading is two-phase: `decode` checks a section completely
# (every field's type, width, count and the description's own `check`) and
# returns plain values without touching the device; `apply` stores them.
# A restore can therefore decode every section before it changes anything.

class StateError(ConfigError):
    """A snapshot section or field that does not match its declaration."""


class Kind:
    """How one field is represented in a snapshot (JSON) and validated."""
    label = "value"

    def encode(self, value: Any) -> Any:
        return value

    def decode(self, raw: Any, where: str) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class UInt(Kind):
    """An unsigned integer of `bits` bits."""
    bits: int

    @property
    def label(self) -> str:          # type: ignore[override]
        return f"u{self.bits}"

    def encode(self, value: Any) -> int:
        return int(value)

    def decode(self, raw: Any, where: str) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < (1 << self.bits):
            raise StateError(f"snapshot field {where} is not a {self.bits}-bit unsigned number")
        return raw


@dataclass(frozen=True)
class SInt(Kind):
    """A signed integer of `bits` bits (e.g. -1 for "none")."""
    bits: int

    def decode(self, raw: Any, where: str) -> int:
        lim = 1 << (self.bits - 1)
        if isinstance(raw, bool) or not isinstance(raw, int) or not -lim <= raw < lim:
            raise StateError(f"snapshot field {where} is not a {self.bits}-bit signed number")
        return raw


class _Bool(Kind):
    def encode(self, value: Any) -> bool:
        return bool(value)

    def decode(self, raw: Any, where: str) -> bool:
        if not isinstance(raw, bool):
            raise StateError(f"snapshot field {where} is not a boolean")
        return raw


@dataclass(frozen=True)
class Str(Kind):
    """A string, optionally one of `choices`."""
    choices: tuple[str, ...] = ()

    def decode(self, raw: Any, where: str) -> str:
        if not isinstance(raw, str) or (self.choices and raw not in self.choices):
            allowed = f" (one of {', '.join(self.choices)})" if self.choices else ""
            raise StateError(f"snapshot field {where} is not a valid string{allowed}")
        return raw


@dataclass(frozen=True)
class Array(Kind):
    """A list of `item`s: exactly `count` of them, or up to `max_count`."""
    item: Kind
    count: int | None = None
    max_count: int | None = None

    def encode(self, value: Any) -> list:
        return [self.item.encode(v) for v in value]

    def decode(self, raw: Any, where: str) -> list:
        if not isinstance(raw, list):
            raise StateError(f"snapshot field {where} is not a list")
        if self.count is not None and len(raw) != self.count:
            raise StateError(f"snapshot field {where} needs {self.count} entries, has {len(raw)}")
        if self.max_count is not None and len(raw) > self.max_count:
            raise StateError(f"snapshot field {where} has {len(raw)} entries (at most {self.max_count})")
        return [self.item.decode(v, f"{where}[{i}]") for i, v in enumerate(raw)]


@dataclass(frozen=True)
class Bytes(Kind):
    """A byte string of `count` bytes, stored as a list of numbers."""
    count: int | None = None

    def encode(self, value: Any) -> list[int]:
        return list(value)

    def decode(self, raw: Any, where: str) -> bytes:
        return bytes(Array(U8, self.count).decode(raw, where))


@dataclass(frozen=True)
class Bitmap(Kind):
    """A bitmap of `bits` bits held as an int, stored as 32-bit words (word 0
    = bits 0..31), the shape of a GIC register file."""
    bits: int

    def encode(self, value: Any) -> list[int]:
        return [(int(value) >> (32 * i)) & 0xFFFF_FFFF for i in range((self.bits + 31) // 32)]

    def decode(self, raw: Any, where: str) -> int:
        words = Array(U32, (self.bits + 31) // 32).decode(raw, where)
        return sum(w << (32 * i) for i, w in enumerate(words)) & ((1 << self.bits) - 1)


@dataclass(frozen=True)
class Struct(Kind):
    """A record with named fields, itself declared (lists of records: one
    per source, per vCPU, ...). Decodes to a dict."""
    fields: tuple["Field", ...]

    def encode(self, value: Any) -> dict:
        return {f.name: f.kind.encode(f.get(value)) for f in self.fields}

    def decode(self, raw: Any, where: str) -> dict:
        if not isinstance(raw, dict):
            raise StateError(f"snapshot field {where} is not a record")
        out = {}
        for f in self.fields:
            if f.name not in raw:
                raise StateError(f"snapshot field {where} lacks '{f.name}'")
            out[f.name] = f.kind.decode(raw[f.name], f"{where}.{f.name}")
        return out


U8, U16, U32, U64 = UInt(8), UInt(16), UInt(32), UInt(64)
BOOL = _Bool()
STR = Str()


@dataclass(frozen=True)
class Field:
    """One named field of device state.

    By default the value is the owner's attribute `attr` (or `name`); a
    field whose saved form is computed (a sparse list of sources, a record
    per vCPU) gives `get(owner)` and `put(owner, value)` instead. `since` is
    the section version that introduced it; loading an older section gives
    `default` (a field without a default makes older versions unreadable).
    """
    name: str
    kind: Kind
    since: int = 1
    attr: str | None = None
    get_fn: Callable[[Any], Any] | None = None
    put_fn: Callable[[Any, Any], None] | None = None
    default: Any = None

    def get(self, owner: Any) -> Any:
        if self.get_fn is not None:
            return self.get_fn(owner)
        if isinstance(owner, dict):
            return owner[self.attr or self.name]
        return getattr(owner, self.attr or self.name)

    def put(self, owner: Any, value: Any) -> None:
        if self.put_fn is not None:
            self.put_fn(owner, value)
        else:
            setattr(owner, self.attr or self.name, value)


@dataclass(frozen=True)
class Subsection:
    """Optional state saved only when `needed(owner)` (QEMU's subsections):
    a snapshot without it loads with the owner's reset value."""
    desc: "VMStateDescription"
    needed: Callable[[Any], bool]


@dataclass(frozen=True)
class VMStateDescription:
    """A device's whole migrated state: name, version, fields, subsections,
    a cross-field `check(owner, values)` run before anything is stored (raise
    StateError), and `post_load(owner)` to recompute derived state and drive
    output lines after the fields are stored."""
    name: str
    version: int
    fields: tuple[Field, ...]
    minimum_version: int = 1
    subsections: tuple[Subsection, ...] = ()
    check: Callable[[Any, dict], None] | None = None
    post_load: Callable[[Any], None] | None = None

    # ---- save ------------------------------------------------------------------------------------
    def save(self, owner: Any, name: str | None = None) -> dict[str, Any]:
        """The section for `owner` (`name` overrides the section name, for
        several instances: timer0, timer1, ...)."""
        sec = section(name or self.name, self.version,
                      **{f.name: f.kind.encode(f.get(owner)) for f in self.fields})
        subs = {s.desc.name: s.desc.save(owner) for s in self.subsections if s.needed(owner)}
        if subs:
            sec["subsections"] = subs
        return sec

    # ---- load ------------------------------------------------------------------------------------
    def decode(self, owner: Any, sections: dict[str, dict[str, Any]],
               name: str | None = None) -> dict[str, Any]:
        """Validate section `name` completely; the values to `apply`. Touches
        nothing."""
        name = name or self.name
        sec = sections.get(name)
        if not isinstance(sec, dict):
            raise StateError(f"snapshot has no section '{name}'")
        return self._decode_section(owner, sec, name)

    def _decode_section(self, owner: Any, sec: dict, name: str) -> dict[str, Any]:
        ver = sec.get("version")
        if isinstance(ver, bool) or not isinstance(ver, int) \
                or not self.minimum_version <= ver <= self.version:
            raise StateError(f"snapshot section '{name}' is version {ver!r}; this vmachine reads "
                             f"versions {self.minimum_version}..{self.version}")
        raw = sec.get("fields")
        if not isinstance(raw, dict):
            raise StateError(f"snapshot section '{name}' has no fields")
        values: dict[str, Any] = {}
        for f in self.fields:
            if f.name in raw:
                values[f.name] = f.kind.decode(raw[f.name], f"{name}.{f.name}")
            elif ver < f.since and f.default is not None:
                values[f.name] = f.default
            else:
                raise StateError(f"snapshot section '{name}' lacks field '{f.name}'")
        subs_raw = sec.get("subsections", {})
        if not isinstance(subs_raw, dict):
            raise StateError(f"snapshot section '{name}' has malformed subsections")
        subs = {}
        for s in self.subsections:
            if s.desc.name in subs_raw:
                subs[s.desc.name] = s.desc._decode_section(owner, subs_raw[s.desc.name],
                                                           f"{name}/{s.desc.name}")
        if self.check is not None:
            self.check(owner, values)
        return {"fields": values, "subsections": subs}

    def apply(self, owner: Any, decoded: dict[str, Any]) -> None:
        """Store decoded values (never fails on decoded input), then post_load."""
        for f in self.fields:
            f.put(owner, decoded["fields"][f.name])
        for s in self.subsections:
            if s.desc.name in decoded["subsections"]:
                s.desc.apply(owner, decoded["subsections"][s.desc.name])
        if self.post_load is not None:
            self.post_load(owner)

    def load(self, owner: Any, sections: dict[str, dict[str, Any]], name: str | None = None) -> None:
        self.apply(owner, self.decode(owner, sections, name))

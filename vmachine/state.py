"""Versioned save/restore of a whole machine (migration, snapshots).

Every component describes its state as named, typed fields (the spirit of
QEMU's VMStateDescription): `Section(name, version, fields)` where each field
value is an int, bool, str, or a list/dict of those. A snapshot is
    {"format": "vmachine-snapshot", "version": 2, "board": ..., "ram_chunks": N, "sections": [...]}
plus guest RAM as its non-zero 64 KiB chunks. On disk (format version 2):

    MAGIC                      b"vmachine-snapshot\n"
    >Q  n                      length of the JSON header
    n bytes                    the JSON header
    >I  crc32(header)
    N x ( >QQ offset, length   a RAM chunk: its offset in RAM, its zlib data's length,
          >I  crc32(offset, length, data)
          length bytes         zlib data )

Loading checks the framing completely before anything else sees it: every
checksum (a flipped bit anywhere is refused with one line naming the header
or the chunk), the chunk count the header announces (a file cut at a chunk
boundary), chunk offsets (ascending, aligned, inside RAM) and sizes (a whole
chunk each). Only JSON and raw bytes are parsed. Restoring (Machine.restore)
then decodes every section against its declaration before it changes the
machine.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

MAGIC = b"vmachine-snapshot\n"
FORMAT_VERSION = 2              # 1: no checksums (refused: re-save with the vmachine that wrote it)
CHUNK = 1 << 16
_ZERO = bytes(CHUNK)
_U64 = 1 << 64


def ram_chunks(buf) -> dict[int, bytes]:
    """The non-zero CHUNK-sized pieces of a RAM buffer, by offset."""
    out = {}
    for off in range(0, len(buf), CHUNK):
        piece = buf[off:off + CHUNK]
        if piece != _ZERO[:len(piece)]:
            out[off] = piece
    return out


def _plain_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_ram_image(ram: Any, ram_size: int, origin: str = "snapshot") -> None:
    """The chunks of a RAM image: aligned offsets inside a `ram_size`-byte
    RAM, each a whole chunk (the last one may end with the RAM)."""
    if not isinstance(ram, dict):
        raise ConfigError(f"{origin}: RAM image is not a set of chunks")
    for off, chunk in ram.items():
        if not _plain_int(off) or off < 0 or off % CHUNK or off >= ram_size:
            raise ConfigError(f"{origin}: RAM image is inconsistent with the header "
                              f"(chunk at {off!r} of a {ram_size:#x}-byte RAM)")
        if not isinstance(chunk, (bytes, bytearray)) or len(chunk) != min(CHUNK, ram_size - off):
            raise ConfigError(f"{origin}: RAM image is inconsistent with the header "
                              f"(chunk at {off:#x} of a {ram_size:#x}-byte RAM is not a whole chunk)")


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
                "ram_chunks": len(self.ram), "sections": self.sections}

    def to_bytes(self) -> bytes:
        import json                       # only snapshots need it: not imported at start
        try:
            head = json.dumps(self.header(), sort_keys=True, allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError) as e:
            raise ConfigError(f"snapshot cannot be written: its header is not JSON data ({e})") from None
        parts = [MAGIC, struct.pack(">Q", len(head)), head, struct.pack(">I", zlib.crc32(head))]
        for off in sorted(self.ram):
            z = zlib.compress(self.ram[off], 1)
            rec = struct.pack(">QQ", off, len(z))
            parts += [rec, struct.pack(">I", zlib.crc32(z, zlib.crc32(rec))), z]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, origin: str = "snapshot") -> "Snapshot":
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
            raise ConfigError(f"{origin}: not a vmachine snapshot")
        (n,) = struct.unpack_from(">Q", data, len(MAGIC))
        start = len(MAGIC) + 8
        if start + n > len(data):
            raise ConfigError(f"{origin}: corrupt snapshot (truncated header)")
        raw_head = data[start:start + n]
        crc = data[start + n:start + n + 4]
        head_ok = len(crc) == 4 and zlib.crc32(raw_head) == struct.unpack(">I", crc)[0]
        import json
        try:
            head = json.loads(raw_head.decode())
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            if not head_ok:
                raise ConfigError(f"{origin}: header checksum mismatch") from None
            raise ConfigError(f"{origin}: corrupt snapshot ({e})") from None
        if not isinstance(head, dict) or head.get("format") != "vmachine-snapshot":
            raise ConfigError(f"{origin}: not a vmachine snapshot" if head_ok
                              else f"{origin}: header checksum mismatch")
        version = head.get("version")
        if version != FORMAT_VERSION:
            # an older layout cannot be checked with this one's checksums: name the version
            raise ConfigError(f"{origin}: snapshot format version {version!r} "
                              f"(this vmachine reads {FORMAT_VERSION})")
        if len(crc) != 4:
            raise ConfigError(f"{origin}: corrupt snapshot (truncated header)")
        ram = cls._read_chunks(data, start + n + 4, origin)
        snap = cls._from_header(head, ram, origin)
        if not head_ok:
            raise ConfigError(f"{origin}: header checksum mismatch")
        return snap

    @staticmethod
    def _read_chunks(data: bytes, pos: int, origin: str) -> dict[int, bytes]:
        ram: dict[int, bytes] = {}
        last = -1
        while pos < len(data):
            if pos + 20 > len(data):
                raise ConfigError(f"{origin}: corrupt snapshot (truncated RAM chunk header)")
            off, length, crc = struct.unpack_from(">QQI", data, pos)
            z = data[pos + 20:pos + 20 + length]
            if len(z) != length or zlib.crc32(z, zlib.crc32(data[pos:pos + 16])) != crc:
                raise ConfigError(f"{origin}: RAM chunk at {off:#x} is corrupt (checksum mismatch)")
            if off <= last:
                raise ConfigError(f"{origin}: RAM chunk at {off:#x} is out of order")
            try:
                d = zlib.decompressobj()
                chunk = d.decompress(z, CHUNK + 1)
                if len(chunk) > CHUNK or not d.eof or d.unused_data:
                    raise ValueError("not one chunk of zlib data")
            except (ValueError, zlib.error) as e:
                raise ConfigError(f"{origin}: RAM chunk at {off:#x} is corrupt ({e})") from None
            ram[off] = chunk
            last = off
            pos += 20 + length
        return ram

    @classmethod
    def _from_header(cls, head: dict, ram: dict[int, bytes], origin: str) -> "Snapshot":
        def num(key: str, lo: int = 0) -> int:
            v = head.get(key)
            if not _plain_int(v) or not lo <= v < _U64:
                raise ConfigError(f"{origin}: malformed snapshot header ('{key}' is {v!r})")
            return v
        board = head.get("board")
        if not isinstance(board, str):
            raise ConfigError(f"{origin}: malformed snapshot header ('board' is {board!r})")
        ram_base, ram_size, ncpus = num("ram_base"), num("ram_size", 1), num("ncpus", 1)
        sections = head.get("sections")
        if not isinstance(sections, dict):
            raise ConfigError(f"{origin}: malformed snapshot header ('sections' is not a record)")
        if num("ram_chunks") != len(ram):
            raise ConfigError(f"{origin}: corrupt snapshot (the header announces "
                              f"{head['ram_chunks']} RAM chunks, the file holds {len(ram)})")
        unknown = sorted(set(head) - {"format", "version", "board", "ram_base", "ram_size", "ncpus",
                                      "ram_chunks", "sections"})
        if unknown:
            raise ConfigError(f"{origin}: malformed snapshot header (unknown key '{unknown[0]}')")
        check_ram_image(ram, ram_size, origin)
        return cls(board, ram_base, ram_size, ncpus, sections, ram)

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
        _no_unknown(raw, self.fields, f"snapshot field {where}")
        return out


def _no_unknown(raw: dict, fields: tuple["Field", ...], what: str) -> None:
    """A key the declaration does not know is refused: the snapshot is not
    what this vmachine would have written."""
    if len(raw) > len(fields) or any(k not in {f.name for f in fields} for k in raw):
        extra = sorted((str(k) for k in raw if k not in {f.name for f in fields}))
        raise StateError(f"{what} has an unknown field '{extra[0]}'")


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
    optional: bool = False      # saved only when get() is not None; absent loads as None

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
        values = {f.name: f.get(owner) for f in self.fields}
        sec = section(name or self.name, self.version,
                      **{f.name: f.kind.encode(v) for f in self.fields
                         if (v := values[f.name]) is not None or not f.optional})
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

    def _decode_section(self, owner: Any, sec: Any, name: str,
                        own_name: str | None = None) -> dict[str, Any]:
        """`name`: where it is, for messages; `own_name`: the name it must
        carry (a subsection's own, else `name`)."""
        if not isinstance(sec, dict):
            raise StateError(f"snapshot section '{name}' is not a record")
        extra = sorted(str(k) for k in sec if k not in ("name", "version", "fields", "subsections"))
        if extra:
            raise StateError(f"snapshot section '{name}' has an unknown key '{extra[0]}'")
        if "name" in sec and sec["name"] != (own_name or name):
            raise StateError(f"snapshot section '{name}' is named {sec['name']!r}")
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
            elif f.optional:
                values[f.name] = None
            else:
                raise StateError(f"snapshot section '{name}' lacks field '{f.name}'")
        _no_unknown(raw, self.fields, f"snapshot section '{name}'")
        subs_raw = sec.get("subsections", {})
        if not isinstance(subs_raw, dict):
            raise StateError(f"snapshot section '{name}' has malformed subsections")
        unknown = sorted(str(k) for k in subs_raw if k not in {s.desc.name for s in self.subsections})
        if unknown:
            raise StateError(f"snapshot section '{name}' has an unknown subsection '{unknown[0]}'")
        subs = {}
        for s in self.subsections:
            if s.desc.name in subs_raw:
                subs[s.desc.name] = s.desc._decode_section(owner, subs_raw[s.desc.name],
                                                           f"{name}/{s.desc.name}", s.desc.name)
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


# ---- the machine's own section ----------------------------------------------------------------------
EXIT_REASONS = ("poweroff", "reset", "error")


@dataclass(frozen=True)
class _Exit(Kind):
    """Why the machine stopped: [] (it did not) or [reason, status]."""

    def encode(self, value: Any) -> list:
        return [] if value is None else [value[0], value[1]]

    def decode(self, raw: Any, where: str) -> list:
        if raw == [] and isinstance(raw, list):
            return []
        if not isinstance(raw, list) or len(raw) != 2:
            raise StateError(f"snapshot field {where} is not [] or [reason, status]")
        return [Str(EXIT_REASONS).decode(raw[0], f"{where}[0]"), SInt(32).decode(raw[1], f"{where}[1]")]


def _machine_check(m: Any, v: dict) -> None:
    """A position inside a round (saved when the run stopped inside one):
    vCPU indexes still to run, each once, the first of which may be
    `suspended` (its slot stopped for the host); per-vCPU lists of the
    machine's length; no vCPU ahead of the round's limit."""
    n = len(m.cpus)
    for key in ("cpu_time", "slot_end", "suspended", "defer"):
        if len(v[key]) != n:
            raise StateError(f"snapshot field machine.{key} has {len(v[key])} entries, not {n}")
    rnd = v["round"]
    if rnd is not None and (any(i >= n for i in rnd) or len(set(rnd)) != len(rnd)):
        raise StateError("snapshot field machine.round is out of range or repeats a vCPU")
    held = [i for i in range(n) if v["suspended"][i] or v["defer"][i]]
    if held and (rnd is None or held != rnd[:1]):
        raise StateError("snapshot field machine.suspended names a vCPU that is not next in the round")
    if any(t > v["round_limit"] + 4096 for t in v["cpu_time"]) and rnd is not None:
        raise StateError("snapshot field machine.cpu_time is past the round's limit")


def _no_put(m: Any, value: Any) -> None:
    """Stored by Machine.restore's second phase."""


# v2: virtual time counts instructions per vCPU (cpu_time, slot_end, the
# round's limit and end); the suspended slot is the vCPU's own (suspended,
# defer) instead of v1's slot_left and clock_reads.
MACHINE_STATE = VMStateDescription("machine", 2, (
    Field("insns", U64, put_fn=_no_put),
    Field("clock_now", U64, get_fn=lambda m: m.clock.now, put_fn=_no_put),
    Field("exit", _Exit(), attr="_exit", put_fn=_no_put),
    Field("round", Array(UInt(32)), optional=True, put_fn=_no_put,
          get_fn=lambda m: None if m._round is None else [c.index for c in m._round]),
    Field("round_limit", U64, attr="_round_limit", put_fn=_no_put),
    Field("round_end", U64, attr="_round_end", put_fn=_no_put),
    Field("cpu_time", Array(U64), put_fn=_no_put, get_fn=lambda m: [c.time for c in m.cpus]),
    Field("slot_end", Array(U64), put_fn=_no_put, get_fn=lambda m: [c.slot_end for c in m.cpus]),
    Field("suspended", Array(BOOL), put_fn=_no_put,
          get_fn=lambda m: [bool(c.suspended) for c in m.cpus]),
    Field("defer", Array(BOOL), put_fn=_no_put,
          get_fn=lambda m: [bool(c.engine.rec.defer) for c in m.cpus]),
), check=_machine_check)


class Migratable:
    """A device whose migrated state is one declared section: the class sets
    `VMSTATE` (after the class body, where the description can name its
    functions) and gets save_state / decode_state / apply_state / load_state
    derived from it, the interface Machine.save and Machine.restore use
    (restore decodes every section before it applies any)."""

    VMSTATE: "VMStateDescription"

    def save_state(self) -> dict[str, Any]:
        return self.VMSTATE.save(self)

    def decode_state(self, sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Validate this device's section completely; touches nothing."""
        return self.VMSTATE.decode(self, sections)

    def apply_state(self, plan: dict[str, Any]) -> None:
        """Store what decode_state accepted (then the description's post_load)."""
        self.VMSTATE.apply(self, plan)

    def load_state(self, sections: dict[str, dict[str, Any]]) -> None:
        self.apply_state(self.decode_state(sections))


class MigratesThroughModel:
    """A wrapper (the sPAPR glue of XICS or XIVE) whose migrated state is
    its model's: `state_model()` names the Migratable that holds it. The
    board's own section says which controller is active."""

    def state_model(self) -> Migratable:
        raise NotImplementedError

    def save_state(self) -> dict[str, Any]:
        return self.state_model().save_state()

    def decode_state(self, sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return self.state_model().decode_state(sections)

    def apply_state(self, plan: dict[str, Any]) -> None:
        self.state_model().apply_state(plan)

    def load_state(self, sections: dict[str, dict[str, Any]]) -> None:
        self.apply_state(self.decode_state(sections))

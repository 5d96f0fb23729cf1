"""Snapshot mutation (issue 15 item 5): restore never trusts its input.

Two real mid-run snapshots are damaged in every way a careless host program
or a flipped bit could: pseries after CAS switched to XIVE with IPIs pending
(2 vCPUs), virt with the GICv3, the ITS and LPIs pending on both
redistributors (2 vCPUs). Every field of every section is replaced with
hostile values (-1, 2**64, True, None, "x", [], {}, 0), dropped, or given an
unknown sibling; deeper entries (records in lists, register bytes) are
sampled deterministically; header values and RAM chunk offsets are changed;
the file's bits are flipped and the file is cut. Each restore must

  * refuse with one line (ConfigError; StateError is one) and leave the
    target machine exactly as it was (its save() bytes), or
  * succeed, and then save() -> restore() -> save() is byte-identical;

never raise anything else. A flipped bit or a cut anywhere in the file is
always refused (the header and every RAM chunk carry a CRC32).
"""
from __future__ import annotations

import functools
import json
import random
import struct

import pytest

from guestrun import boot
from vmachine.errors import ConfigError
from vmachine.state import CHUNK, MAGIC, Snapshot

HOSTILE = (-1, 1 << 64, True, None, "x", [], {}, 0)
DEEP_SAMPLE = 120          # mutations of entries below the field level, per board


# ---- the two snapshots ----------------------------------------------------------------------------
def _xive_ipis_pending(m) -> bool:
    b = m.board
    if b.active is not b.intcs["xive"]:
        return False
    x = b.active.xive
    return any(x.get_os_ring(c.index).ipb for c in m.cpus) or \
        any(x.get_source(n).pq & 2 for n in range(len(m.cpus)))


def _pseries():
    return boot("ppc64", "xive_smp", 2, quantum=1000, ram_size=32 << 20)


def _virt():
    return boot("aarch64", "its_move", 2, quantum=1000, ram_size=72 << 20)


def _prepare_pseries(m) -> None:
    while not m.exited and not _xive_ipis_pending(m):
        m.run(max_insns=m.insns + m.quantum)
    assert not m.exited and _xive_ipis_pending(m)


def _prepare_virt(m) -> None:
    while not m.exited and not m.board.its.enabled:
        m.run(max_insns=m.insns + m.quantum)
    m.run(max_insns=m.insns + 5 * m.quantum)
    assert not m.exited and m.board.its.enabled
    gic = m.board.gic
    from vmachine.errors import DeviceError
    for _ in range(400):                           # until both redistributors take LPIs
        try:
            for cpu in range(len(m.cpus)):         # LPIs pending on both redistributors
                for irq in (8192 + 3, 8192 + 40, 8192 + 41):
                    gic.lpi_process(cpu, irq, True)
            break
        except DeviceError:                        # EnableLPIs not yet set on that vCPU
            m.run(max_insns=m.insns + m.quantum)
    assert not m.exited and all(gic.lpi_pending(c.index) for c in m.cpus)


BOARDS = {"pseries-xive": (_pseries, _prepare_pseries), "virt-its": (_virt, _prepare_virt)}


@functools.lru_cache(maxsize=None)
def snapshot_bytes(board: str) -> bytes:
    make, prepare = BOARDS[board]
    m = make()
    prepare(m)
    return m.save().to_bytes()


# ---- the property ---------------------------------------------------------------------------------
class Rig:
    """A target machine (reused while restores are refused: it must not
    change) and a second machine for the save -> restore -> save check."""

    def __init__(self, board: str):
        self.make = BOARDS[board][0]
        self.target = self.make()
        self.other = self.make()
        self.before = self.target.save().to_bytes()
        self.outcomes = {"refused": 0, "accepted": 0}
        self.failures: list[str] = []

    def restore(self, what: str, snap) -> str:
        """Restore `snap` (a Snapshot, or file bytes) into the target."""
        try:
            if isinstance(snap, bytes):
                snap = Snapshot.from_bytes(snap)
            self.target.restore(snap)
        except ConfigError as e:
            self.outcomes["refused"] += 1
            if "\n" in str(e):
                self.failures.append(f"{what}: error is not one line: {e!r}")
            if self.target.save().to_bytes() != self.before:
                self.failures.append(f"{what}: refused ({e}) but the target machine changed")
                self.target = self.make()
                self.before = self.target.save().to_bytes()
            return "refused"
        except Exception as e:           # noqa: BLE001 - the property: nothing but ConfigError
            self.failures.append(f"{what}: {type(e).__name__}: {e}")
            self.target = self.make()
            self.before = self.target.save().to_bytes()
            return "crashed"
        self.outcomes["accepted"] += 1
        s1 = self.target.save()
        b1 = s1.to_bytes()
        try:
            self.other.restore(Snapshot.from_bytes(b1))
            if self.other.save().to_bytes() != b1:
                self.failures.append(f"{what}: accepted, but save -> restore -> save differs")
        except Exception as e:           # noqa: BLE001
            self.failures.append(f"{what}: accepted, but its own save is refused: {e!r}")
        self.before = b1
        return "accepted"

    def check(self) -> None:
        assert not self.failures, f"{len(self.failures)} failures:\n" + "\n".join(self.failures[:30])


# ---- mutations of the sections ----------------------------------------------------------------------
def nodes(obj, path=()):
    """Every (path, value) of a JSON value, the root first."""
    yield path, obj
    if isinstance(obj, dict):
        for k in sorted(obj):
            yield from nodes(obj[k], path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from nodes(v, path + (i,))


def mutations(sections: dict):
    """(description, edit) for every field-level node (all of them) and a
    deterministic sample of deeper ones; an edit changes a sections copy."""
    shallow, deep = [], []
    for path, value in nodes(sections):
        if not path:
            continue
        muts = [(f"{path} = {v!r}", ("set", path, v)) for v in HOSTILE if v != value or type(v) is not type(value)]
        muts.append((f"drop {path}", ("drop", path, None)))
        if isinstance(value, dict):
            muts.append((f"unknown key in {path}", ("add", path, None)))
        elif isinstance(value, list):
            muts.append((f"extra entry in {path}", ("append", path, None)))
        # path: (section,), (section, key), (section, "fields", field) are the field level
        (shallow if len(path) <= 3 else deep).extend(muts)
    rng = random.Random(15)
    return shallow + rng.sample(deep, min(DEEP_SAMPLE, len(deep)))


def edited(sections: dict, edit) -> dict:
    kind, path, value = edit
    out = json.loads(json.dumps(sections))
    parent = out
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if kind == "set":
        parent[last] = value
    elif kind == "drop":
        del parent[last]
    elif kind == "add":
        parent[last]["bogus"] = 0
    else:
        lst = parent[last]
        lst.append(json.loads(json.dumps(lst[-1])) if lst else 0)
    return out


def _copy(snap: Snapshot, **changes) -> Snapshot:
    fields = dict(board=snap.board, ram_base=snap.ram_base, ram_size=snap.ram_size,
                  ncpus=snap.ncpus, sections=snap.sections, ram=dict(snap.ram))
    fields.update(changes)
    return Snapshot(**fields)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_every_field_hostile(board):
    snap = Snapshot.from_bytes(snapshot_bytes(board))
    rig = Rig(board)
    # the unmutated snapshot restores and round-trips
    assert rig.restore("unmutated", snap) == "accepted"
    muts = mutations(snap.sections)
    for what, edit in muts:
        rig.restore(what, _copy(snap, sections=edited(snap.sections, edit)))
    # whole sections: missing, unknown, not a record
    for name in sorted(snap.sections):
        secs = dict(snap.sections)
        del secs[name]
        rig.restore(f"no section {name}", _copy(snap, sections=secs))
    rig.restore("unknown section", _copy(snap, sections={**snap.sections, "bogus": {"name": "bogus"}}))
    rig.restore("sections = []", _copy(snap, sections=[]))
    rig.check()
    print(f"{board}: {len(muts)} field mutations, {rig.outcomes}")
    assert len(muts) > 400 and rig.outcomes["refused"] > 300


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_header_and_ram_chunks_hostile(board):
    """Header values (in memory and through the file) and RAM chunk offsets
    (a chunk moved: misaligned, past the RAM, onto a neighbour)."""
    data = snapshot_bytes(board)
    snap = Snapshot.from_bytes(data)
    rig = Rig(board)
    for attr in ("board", "ram_base", "ram_size", "ncpus"):
        for v in HOSTILE + (1, 1 << 63):
            if v == getattr(snap, attr):
                continue
            changed = _copy(snap, **{attr: v})
            assert rig.restore(f"{attr} = {v!r}", changed) == "refused"
            try:
                raw = changed.to_bytes()
            except (TypeError, ValueError):
                continue
            assert rig.restore(f"{attr} = {v!r} (file)", raw) == "refused"
    size = snap.ram_size
    for off in sorted(snap.ram):
        for new in (off + 1, off - 1, off + CHUNK // 2, size, size + CHUNK, 1 << 64, -CHUNK):
            ram = dict(snap.ram)
            ram[new] = ram.pop(off)
            assert rig.restore(f"chunk {off:#x} -> {new:#x}", _copy(snap, ram=ram)) == "refused"
        for new in (off - CHUNK, off + CHUNK):      # a whole chunk elsewhere: a different, valid image
            if 0 <= new < size and new not in snap.ram:
                ram = dict(snap.ram)
                ram[new] = ram.pop(off)
                rig.restore(f"chunk {off:#x} -> {new:#x}", _copy(snap, ram=ram))
        ram = dict(snap.ram)
        ram[off] = ram[off][:-1]
        assert rig.restore(f"chunk {off:#x} one byte short", _copy(snap, ram=ram)) == "refused"
    rig.check()
    print(f"{board}: header and RAM chunk mutations {rig.outcomes}")


# ---- the file framing ---------------------------------------------------------------------------------
def _chunk_records(data: bytes) -> list[tuple[int, int, int]]:
    """(position, offset, length) of each RAM chunk record in a file."""
    (n,) = struct.unpack_from(">Q", data, len(MAGIC))
    pos, out = len(MAGIC) + 8 + n + 4, []
    while pos < len(data):
        off, length = struct.unpack_from(">QQ", data, pos)
        out.append((pos, off, length))
        pos += 20 + length
    return out


def _refused(data: bytes) -> str:
    with pytest.raises(ConfigError) as e:
        Snapshot.from_bytes(data)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_flipped_bits_and_cuts_are_refused(board):
    """Every bit flip tried and every cut is refused by the framing alone,
    one line naming what is damaged."""
    data = snapshot_bytes(board)
    rng = random.Random(15)
    (n,) = struct.unpack_from(">Q", data, len(MAGIC))
    head = len(MAGIC) + 8
    records = _chunk_records(data)
    assert records
    flips = [(p, p % 8) for p in range(head)]                           # magic and length
    flips += [(rng.randrange(head, head + n), rng.randrange(8)) for _ in range(60)]   # header JSON
    flips += [(head + n + i, b) for i in range(4) for b in (0, 7)]        # header CRC
    for pos, off, length in records[:4]:
        flips += [(pos + i, rng.randrange(8)) for i in range(20)]      # offset, length, CRC
        flips += [(pos + 20 + rng.randrange(length), rng.randrange(8)) for _ in range(5)]
    flips += [(records[0][0] + 7 - k // 8, k % 8) for k in range(64)]    # every bit of an offset
    messages = {}
    for pos, bit in flips:
        b = bytearray(data)
        b[pos] ^= 1 << bit
        msg = _refused(bytes(b))
        messages.setdefault(pos >= head + n + 4, set()).add(msg.split(" (")[0])
    pos0, off0, _ = records[0]
    b = bytearray(data)
    b[pos0 + 25] ^= 0x10
    assert f"RAM chunk at {off0:#x} is corrupt" in _refused(bytes(b))
    b = bytearray(data)
    b[head + n // 2] ^= 0x01
    assert "checksum" in _refused(bytes(b)) or "malformed" in _refused(bytes(b))
    cuts = [pos for pos, _, _ in records] + [len(data) - 1, head + n, head + n + 2, head + 3, 5]
    cuts += [rng.randrange(len(data)) for _ in range(20)]
    for cut in cuts:
        _refused(data[:cut])
    assert len(flips) + len(cuts) > 200
    print(f"{board}: {len(flips)} bit flips and {len(cuts)} cuts refused")


def test_older_format_is_refused_naming_its_version():
    """Format 1 (no checksums) is refused with one line naming the version."""
    snap = Snapshot.from_bytes(snapshot_bytes("virt-its"))
    head = snap.header()
    head["version"] = 1
    del head["ram_chunks"]
    raw = json.dumps(head, sort_keys=True).encode()
    v1 = MAGIC + struct.pack(">Q", len(raw)) + raw       # RAM chunks as v1 wrote them: none here
    msg = _refused(v1)
    assert "format version 1" in msg and "reads 2" in msg


def test_refused_restore_leaves_a_running_machine_unchanged():
    """The issue's example: `ncpus` 99 in the gicv3 section was refused after
    PC, RAM and insns had been replaced; now nothing changes, and the machine
    continues as if the restore had not been tried."""
    snap = Snapshot.from_bytes(snapshot_bytes("virt-its"))
    a, b = _virt(), _virt()
    for m in (a, b):
        m.run(max_insns=3 * m.quantum)
    bad = edited(snap.sections, ("set", ("gicv3", "fields", "ncpus"), 99))
    with pytest.raises(ConfigError, match="GICv3 configuration"):
        a.restore(_copy(snap, sections=bad))
    assert a.save().to_bytes() == b.save().to_bytes()
    a.run(max_insns=10**10)
    b.run(max_insns=10**10)
    assert (a.insns, bytes(a.console_out)) == (b.insns, bytes(b.console_out))


# ---- what used to be accepted and silently change the machine -------------------------------------
_OV5_BAD = [0x80] + [0] * 21 + [0x40, 0, 0, 0]


@pytest.mark.parametrize("board,path,value,needle", [
    ("pseries-xive", ("xive", "fields", "eas", 0, "end_index"), 16, "END 0x10 out of range"),
    ("pseries-xive", ("xive", "fields", "sources", 0, "lisn"), 1 << 20, "nr_irqs"),
    ("pseries-xive", ("spapr", "fields", "active"), "xics", "spapr.active"),
    ("pseries-xive", ("spapr", "fields", "lines_high"), [0x1100], "spapr.lines_high"),
    ("pseries-xive", ("spapr", "fields", "lines_high"), [0x1200, 0x1200], "spapr.lines_high"),
    ("pseries-xive", ("spapr", "fields", "ov5_cas"), _OV5_BAD, "spapr.ov5_cas"),
    ("pseries-xive", ("spapr", "fields", "compat_pvr"), 0x0F000001, "spapr.compat_pvr"),
    ("pseries-xive", ("cpu1", "name"), "cpu0", "named"),
    ("virt-its", ("gicv3", "fields", "redist", 0, "lpis"), [[1 << 14, 0xA3]], "bad LPI entry"),
    ("virt-its", ("gicv3", "fields", "redist", 1, "lpis"), [[8195, 0xA3], [8195, 0xA3]], "bad LPI entry"),
    ("virt-its", ("cpu0", "fields", "mpidr"), 0x8000_0001, "cpu0.mpidr"),
    ("virt-its", ("cpu0", "fields", "regs", "pstate"), 0x3C5 | 0x10, "cpu0.regs.pstate"),
    ("virt-its", ("cpu1", "fields", "regs", "pstate"), 0x3C9, "cpu1.regs.pstate"),
    ("virt-its", ("machine", "fields", "exit"), ["halt", 0], "machine.exit"),
    ("virt-its", ("machine", "fields", "exit"), ["poweroff", 1 << 40], "machine.exit"),
    ("virt-its", ("timer1", "fields", "virt"), [0, 0, 0], "timer1.virt"),
])
def test_valid_looking_but_impossible_state_is_refused(board, path, value, needle):
    """Values of the right type that no machine of this configuration can be
    in: refused in one line naming the field, nothing changed."""
    snap = Snapshot.from_bytes(snapshot_bytes(board))
    rig = Rig(board)
    bad = _copy(snap, sections=edited(snap.sections, ("set", path, value)))
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")) as e:
        rig.target.restore(bad)
    assert "\n" not in str(e.value)
    assert rig.target.save().to_bytes() == rig.before


def test_position_inside_a_round_is_checked():
    """A snapshot taken inside a round (Ctrl-C, wall clock, max_insns)
    carries machine.round (vCPUs still to run, each once, in any order: woken
    ones join at the end) and per-vCPU suspended/defer flags, which only the
    next vCPU of the round may have; hostile ones are refused, valid ones
    round-trip."""
    snap = Snapshot.from_bytes(snapshot_bytes("virt-its"))
    rig = Rig("virt-its")

    def with_round(**extra):
        secs = json.loads(json.dumps(snap.sections))
        secs["machine"]["fields"].update(extra)
        return _copy(snap, sections=secs)
    no = [False, False]
    for good in ({"round": [1], "suspended": no, "defer": no},
                 {"round": [0, 1], "suspended": [True, False], "defer": [True, False]},
                 {"round": [1, 0], "suspended": [False, True], "defer": no},
                 {"round": [], "suspended": no, "defer": no}):
        assert rig.restore(f"machine {good}", with_round(**good)) == "accepted"
        assert rig.target.save().sections["machine"]["fields"]["round"] == good["round"]
    for bad in ({"slot_left": 5}, {"round": [2]}, {"round": [1, 1]}, {"round": [-1]},
                {"round": [True]}, {"round": [0, 1], "suspended": [False, True]},
                {"round": [], "suspended": [True, False]},
                {"round": None, "suspended": [True, False]},
                {"suspended": [True]}, {"defer": [False, False, False]}, {"cpu_time": [0]},
                {"round": [0], "cpu_time": [10**15, 0]}):
        assert rig.restore(f"machine {bad}", with_round(**bad)) == "refused", bad
    rig.check()


def test_declared_sections_refuse_what_they_do_not_declare():
    """Unknown fields, record keys, subsections and section keys, and a
    section carrying another's name; an optional field is saved only when
    it has a value and loads as None when absent."""
    from types import SimpleNamespace

    from vmachine.state import Array, Field, StateError, Struct, U8, VMStateDescription
    desc = VMStateDescription("d", 1, (
        Field("a", U8), Field("r", Array(Struct((Field("k", U8),)))),
        Field("opt", U8, optional=True)))
    sec = desc.save(SimpleNamespace(a=1, r=[{"k": 2}], opt=None))
    assert "opt" not in sec["fields"]
    assert desc.decode(None, {"d": sec})["fields"]["opt"] is None
    assert desc.save(SimpleNamespace(a=1, r=[], opt=3))["fields"]["opt"] == 3
    for damage, needle in [
            (lambda s: s["fields"].update(b=0), "unknown field 'b'"),
            (lambda s: s["fields"]["r"][0].update(z=0), "unknown field 'z'"),
            (lambda s: s.update(subsections={"x": {}}), "unknown subsection 'x'"),
            (lambda s: s.update(extra=1), "unknown key 'extra'"),
            (lambda s: s.update(name="e"), "is named 'e'")]:
        bad = json.loads(json.dumps(sec))
        damage(bad)
        with pytest.raises(StateError, match=needle):
            desc.decode(None, {"d": bad})

"""Fuzz (issue 15, property 5): snapshot mutation. A real mid-run snapshot
(pseries XICS, pseries XIVE after the guest's CAS, virt GICv3 + ITS) is
damaged: bits flipped in the file, JSON fields replaced with hostile values,
RAM chunk offsets moved, the file truncated. Restoring it into a fresh
machine either

  * fails with one ConfigError line and leaves the target machine unchanged
    (its m.save() byte for byte), or
  * succeeds, and then save -> restore (another fresh machine) -> save is
    byte-identical.

Profiles: see tests/fuzz_support.py."""
from __future__ import annotations

import copy
import functools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz_support import HOSTILE, fingerprint, fuzz_settings, guest_elf, pseries, snapshot_type, virt
from vmachine.errors import ConfigError

GUESTS = {
    "pseries-xics": ("ppc64", "xics_ipi", lambda e: pseries(smp=2, ram=32 << 20, kernel=e)),
    "pseries-xive": ("ppc64", "xive_ipi", lambda e: pseries(smp=2, ram=32 << 20, kernel=e)),
    "virt-its": ("aarch64", "its_basic", lambda e: virt(smp=2, ram=32 << 20, kernel=e)),
}


def fresh(config: str):
    arch, name, make = GUESTS[config]
    return make(guest_elf(arch, name))


@functools.lru_cache(maxsize=None)
def mid_run_snapshot(config: str) -> bytes:
    ref = fresh(config)
    total = ref.run(max_insns=10**9, wall_seconds=60).insns
    m = fresh(config)
    m.run(max_insns=total // 2)
    assert m.exited is None
    return m.save().to_bytes()


def leaves(obj, path=()):
    """Every path to a scalar (or empty container) in a JSON value."""
    if isinstance(obj, dict) and obj:
        for k in sorted(obj):
            yield from leaves(obj[k], path + (k,))
    elif isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            yield from leaves(v, path + (i,))
    else:
        yield path


def set_path(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("field"), st.integers(0, 1 << 30), HOSTILE | st.sampled_from([[], {}, [0], "x", 0])),
    st.tuples(st.just("header"), st.sampled_from(["ram_base", "ram_size", "ncpus", "board"]),
              HOSTILE | st.sampled_from(["pseries-7.2", "virt-7.2", 0])),
    st.tuples(st.just("chunk"), st.integers(0, 1 << 30), st.sampled_from([-0x10000, 0x10000, 1, 0x20000, -1])),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 30)),
)


def mutate(data: bytes, mut) -> bytes:
    """The snapshot file `data` damaged by `mut` (JSON edits are made on the
    decoded header and written back with Snapshot.to_bytes, as an edited file)."""
    Snapshot = snapshot_type()
    kind = mut[0]
    if kind == "flip":
        _, pos, bit, in_header = mut
        n = len(data)
        head_end = min(n, 18 + 8 + int.from_bytes(data[18:26], "big"))
        pos = pos % head_end if in_header else pos % n
        b = bytearray(data)
        b[pos] ^= 1 << bit
        return bytes(b)
    if kind == "truncate":
        return data[:mut[1] % len(data)]
    snap = Snapshot.from_bytes(data)
    snap = Snapshot(snap.board, snap.ram_base, snap.ram_size, snap.ncpus, copy.deepcopy(snap.sections),
                    dict(snap.ram))
    if kind == "path":                   # a named field (explicit examples); absent: no change
        try:
            set_path(snap.sections, mut[1], mut[2])
        except (KeyError, IndexError, TypeError):
            pass
    elif kind == "field":
        paths = list(leaves(snap.sections))
        set_path(snap.sections, paths[mut[1] % len(paths)], mut[2])
    elif kind == "header":
        setattr(snap, mut[1], mut[2])
    else:
        offs = sorted(snap.ram)
        off = offs[mut[1] % len(offs)]
        chunk = snap.ram.pop(off)
        snap.ram[(off + mut[2]) % (1 << 64)] = chunk
    # back through the file format: what a damaged file would hold
    return snap.to_bytes()


def check(config: str, mut) -> None:
    Snapshot = snapshot_type()
    data = mid_run_snapshot(config)
    target = fresh(config)
    before = fingerprint(target)
    try:
        target.restore(Snapshot.from_bytes(mutate(data, mut)))
    except ConfigError as e:
        assert "\n" not in str(e), f"{mut}: ConfigError is not one line: {e!r}"
        assert fingerprint(target) == before, f"{mut}: refused ({e}) but the target machine was modified"
        return
    except Exception as e:      # noqa: BLE001 - the property: only ConfigError
        raise AssertionError(f"{mut}: restore raised {type(e).__name__}: {e}") from e
    s1 = target.save()
    other = fresh(config)
    other.restore(s1)
    assert other.save().to_bytes() == s1.to_bytes(), f"{mut}: accepted, but save -> restore -> save differs"


# Minimal failing examples (issue 15 item 5), as hypothesis found them (shrunk):
@pytest.mark.parametrize("config", sorted(GUESTS))
@fuzz_settings(12)
@example(mut=("path", ("xics", "fields", "sources", 0, 1), -1))     # pseries: source server -1
@example(mut=("path", ("gicv3", "fields", "ncpus"), 99))            # virt: refused after RAM/PC/insns replaced
@example(mut=("path", ("cpu0", "fields", "arch"), None))            # refused after RAM/clock replaced
@given(mut=MUTATION)
def test_mutated_snapshot_restore(config, mut):
    check(config, mut)

"""Save a running machine at many instruction boundaries, restore it into a
fresh machine, continue: the transcript and final state equal an
uninterrupted run's (CPUs, devices, RAM, virtual clock)."""
from __future__ import annotations

import pytest

from guestrun import boot, final_state
from vmachine.errors import ConfigError
from vmachine.state import Snapshot


def migrate_and_finish(arch, name, smp, stop_insns, via_bytes=True):
    a = boot(arch, name, smp)
    a.run(max_insns=stop_insns)
    snap = a.save()
    if via_bytes:
        snap = Snapshot.from_bytes(snap.to_bytes())
    b = boot(arch, name, smp)
    b.restore(snap)
    b.console_out[:] = a.console_out              # the console is outside the machine
    b.run(max_insns=10**10)
    return b


def restore_and_finish(make, a, check=None):
    """Save `a` (through bytes), restore into `make()`, continue to the end;
    `check(a, b, snapshot)` may look at the fresh machine before it runs."""
    snap = Snapshot.from_bytes(a.save().to_bytes())
    b = make()
    b.restore(snap)
    if check is not None:
        check(a, b, snap)
    b.console_out[:] = a.console_out              # the console is outside the machine
    b.run(max_insns=10**10)
    return final_state(b)


def migrate_at_rounds(make, smp, points, extra=(), observe=None, check=None):
    """Run a reference to the end, then save/restore/continue at about
    `points` evenly spread rounds (plus `extra`); each must end like the
    reference. `observe(a)` sees every stop point."""
    ref = make()
    assert ref.run(max_insns=10**10).reason == "poweroff"
    want = final_state(ref)
    rounds = ref.insns // (ref.quantum * smp)
    for k in sorted(set(range(1, rounds, max(1, rounds // points))) | set(extra)):
        a = make()
        a.run(max_insns=k * a.quantum * smp)
        if a.exited:
            break
        if observe is not None:
            observe(a)
        assert restore_and_finish(make, a, check) == want, f"diverged after a restore at round {k}"


def migrate_when(make, predicate, what, step=None):
    """Save at the first stop, every `step` instructions (default: the
    quantum), where `predicate(machine)` holds; the restored machine must end
    like an uninterrupted run."""
    ref = make()
    ref.run(max_insns=10**10)
    want = final_state(ref)
    a = make()
    while not a.exited and not predicate(a):
        a.run(max_insns=a.insns + (step or a.quantum))
    assert not a.exited, what
    assert restore_and_finish(make, a) == want


@pytest.mark.parametrize("arch,name,smp", [("ppc64", "smp", 4), ("aarch64", "smp", 4),
                                           ("ppc64", "timer", 1), ("aarch64", "timer", 1),
                                           ("ppc64", "exceptions", 1)])
def test_migration_at_many_stop_points(arch, name, smp):
    ref = boot(arch, name, smp)
    assert ref.run(max_insns=10**10).reason == "poweroff"
    want = final_state(ref)
    q = ref.quantum
    total = ref.insns // q
    stops = sorted({1, 2, total // 3, total // 2, (2 * total) // 3, total - 1} - {0})
    for k in stops:
        got = final_state(migrate_and_finish(arch, name, smp, k * q))
        assert got == want, f"diverged after a restore at slot {k} of {total}"


def test_restore_of_a_powered_off_machine_stays_off():
    a = boot("aarch64", "hello", 1)
    a.run()
    b = boot("aarch64", "hello", 1)
    b.restore(a.save())
    assert b.run().reason == "poweroff"


def test_snapshot_file_round_trip(tmp_path):
    a = boot("ppc64", "hello", 2)
    a.run(max_insns=3 * a.quantum)
    path = tmp_path / "m.snap"
    a.save().save(path)
    b = boot("ppc64", "hello", 2)
    b.restore(Snapshot.load(path))
    assert [c.registers() for c in b.cpus] == [c.registers() for c in a.cpus]
    assert bytes(b.ram.buf) == bytes(a.ram.buf)


def _with_header(data: bytes, **changes) -> bytes:
    import json
    import struct
    from vmachine.state import MAGIC
    (n,) = struct.unpack_from(">Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    head = json.loads(data[start:start + n])
    head.update(changes)
    new = json.dumps(head).encode()
    return MAGIC + struct.pack(">Q", len(new)) + new + data[start + n:]


@pytest.mark.parametrize("damage,needle", [
    (lambda d: b"garbage" + d, "not a vmachine snapshot"),
    (lambda d: d[:40], "corrupt snapshot"),
    (lambda d: _with_header(d, version=9), "format version 9"),
    (lambda d: _with_header(d, ram_size=0x1000), "RAM image is inconsistent"),
])
def test_bad_snapshot_files_are_one_line_errors(tmp_path, damage, needle):
    a = boot("aarch64", "hello", 1)
    data = damage(a.save().to_bytes())
    with pytest.raises(ConfigError) as e:
        Snapshot.from_bytes(data)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_restore_into_a_different_machine_is_refused():
    snap = boot("aarch64", "hello", 2).save()
    with pytest.raises(ConfigError, match="vCPUs"):
        boot("aarch64", "hello", 1).restore(snap)
    with pytest.raises(ConfigError, match="not pseries"):
        boot("ppc64", "hello", 2).restore(snap)


def test_bad_field_type_is_refused():
    snap = boot("ppc64", "hello", 1).save()
    snap.sections["xics"]["fields"]["icps"] = "nope"
    with pytest.raises(ConfigError, match="xics.icps"):
        boot("ppc64", "hello", 1).restore(snap)


def _xics_flow_state(m):
    icps = m.board.active.xics.icps.values()
    pending = any(i.xisr for i in icps)
    handling = any(i.cppr != 0xFF and not i.xisr for i in icps)   # accepted, not yet EOId
    return pending, handling


@pytest.mark.parametrize("name,smp", [("xics_smp", 4), ("xics_ipi", 1)])
def test_xics_migration_mid_flow(name, smp):
    """XICS state + CPUs + RAM saved with IPIs pending and being handled."""

    def make():
        return boot("ppc64", name, smp, quantum=2000, ram_size=256 << 20)
    migrate_at_rounds(make, smp, 20)
    # Stops are exact instructions (not round boundaries): look for the short
    # windows with a prime step.
    migrate_when(make, lambda m: _xics_flow_state(m)[0], "never stopped with an IPI pending", step=53)
    migrate_when(make, lambda m: _xics_flow_state(m)[1], "never stopped inside a handler", step=53)


def _xive_flow_state(m):
    """(before CAS, after CAS, a source with Q set, a vCPU between ack and EOI)."""
    b = m.board
    if b.active is not b.intcs["xive"]:
        return True, False, False, False
    x = b.active.xive
    q_set = any(x.get_source(l).pq & 1 for l in range(0x1000) if x.get_source(l).valid)
    acked = any(x.get_os_ring(c.index).cppr != 0xFF for c in m.cpus)
    return False, True, q_set, acked


@pytest.mark.parametrize("name,smp", [("xive_ipi", 1), ("xive_smp", 4), ("xive_queue", 1)])
def test_xive_migration_mid_flow_and_around_cas(name, smp):
    """XIVE state (sources, EAS, ENDs, thread contexts) + CPUs + RAM (event
    queues) saved at many points, before and after CAS switched to XIVE."""

    def make():
        return boot("ppc64", name, smp, quantum=2000, ram_size=256 << 20)
    seen = [False] * 4

    def observe(a):
        seen[:] = [s or f for s, f in zip(seen, _xive_flow_state(a))]
    migrate_at_rounds(make, smp, 24, extra=(1, 2, 3), observe=observe)
    assert seen[0] and seen[1], "stop points before and after CAS"
    if name == "xive_ipi":
        assert seen[3], "a stop point between ack and EOI"


def test_xive_migration_with_q_set():
    """Stop exactly where a source has Q set (a trigger remembered while
    pending), save, restore, continue."""

    def make():
        return boot("ppc64", "xive_ipi", quantum=500, ram_size=256 << 20)
    migrate_when(make, lambda m: _xive_flow_state(m)[2], "the guest never had a source with Q set")


@pytest.mark.parametrize("name,smp", [("gic_sgi", 1), ("gic_smp", 4), ("gic_timer", 1),
                                      ("gic_priority", 1)])
def test_gicv3_migration_mid_flow(name, smp):
    """Distributor, redistributors and CPU interfaces saved with the rest of
    the machine at many points of SGI/PPI flows (pending, active, preempted)."""

    def make():
        return boot("aarch64", name, smp, quantum=2000)
    migrate_at_rounds(make, smp, 20, extra=(1, 2))


def _in_handler(m) -> bool:
    """Some vCPU has an interrupt active (ICC_RPR_EL1 below idle)."""
    return any(m.board.gic.sysregs(c.index)[(3, 0, 12, 11, 3)][0](c) != 0xFF for c in m.cpus)


@pytest.mark.parametrize("name", ["gic_sgi", "gic_priority"])
def test_gicv3_migration_inside_a_handler(name):
    """Stop exactly while an interrupt is active (between IAR and EOIR)."""

    def make():
        return boot("aarch64", name, quantum=100)
    migrate_when(make, _in_handler, "never stopped inside a handler")


# ---- GICv3 ITS ---------------------------------------------------------------------------------
def _lpi_flow_state(m):
    """(an LPI pending on some redistributor, a vCPU inside a handler)."""
    g = m.board.gic
    return any(g.lpi_pending(c.index) for c in m.cpus), _in_handler(m)


@pytest.mark.parametrize("name,smp", [("its_basic", 1), ("its_move", 2)])
def test_its_migration_mid_flow(name, smp):
    """ITS registers (section "gicv3-its"), redistributor LPI state and the
    tables in guest RAM saved at many points of the ITS guests (commands
    queued, LPIs pending, MOVI/MOVALL between vCPUs): the same final state
    as an uninterrupted run."""

    def make():
        return boot("aarch64", name, smp, quantum=2000)
    seen = {"enabled": False, "pending": False}

    def observe(a):
        seen["enabled"] |= a.board.its.enabled
        seen["pending"] |= _lpi_flow_state(a)[0]

    def check(a, b, snap):
        assert "gicv3-its" in snap.sections
        assert b.board.its.save_state() == a.board.its.save_state()
    migrate_at_rounds(make, smp, 24, extra=(1, 2), observe=observe, check=check)
    seen_enabled, seen_pending = seen["enabled"], seen["pending"]
    assert seen_enabled, "no stop point with the ITS enabled"
    if name == "its_basic":
        assert seen_pending, "no stop point with an LPI pending"

"""Ctrl-C and the wall-clock limit stop a run at an instruction boundary, and
the next run() continues exactly: the same console, instruction count, trace
and final snapshot as a run that never stopped (vmachine/machine.py run(),
cpu/slot.c host_stop). SIGINT is sent to this process from host code that
runs inside guest accesses (device MMIO handlers, GIC system registers,
hypercalls, console and trace sinks) and from round hooks, at many points
of a GIC-heavy and an hcall-heavy guest."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from guestrun import boot, guest_elf, machine_args

GUESTS = {"gic": ("aarch64", "gic_smp", 2), "hcall": ("ppc64", "xics_ipi", 2),
          "xive": ("ppc64", "xive_ipi", 2)}


def sigint() -> None:
    os.kill(os.getpid(), signal.SIGINT)


class At:
    """Calls `action` at the listed call numbers (1-based) of whatever it wraps."""

    def __init__(self, points, action=sigint):
        self.points, self.action, self.calls = set(points), action, 0

    def tick(self) -> None:
        self.calls += 1
        if self.calls in self.points:
            self.action()

    def wrap(self, fn):
        def wrapped(*a, **kw):
            self.tick()
            return fn(*a, **kw)
        return wrapped


def outcome(m, r):
    return {"reason": r.reason, "status": r.exit_status, "insns": r.insns, "console": m.console_text,
            "trace": m.trace.text(), "snapshot": m.save().to_bytes()}


_refs: dict = {}


def reference(kind):
    if kind not in _refs:
        arch, name, smp = GUESTS[kind]
        m = boot(arch, name, smp)
        r = m.run(max_insns=10**10)
        assert r.reason == "poweroff" and "not ok" not in m.console_text
        _refs[kind] = outcome(m, r)
    return _refs[kind]


def install(m, kind, at: At) -> None:
    """Route the host callbacks of `kind` through `at`."""
    if kind == "mmio":                  # every MMIO callback, also of windows added later
        for cpu in m.cpus:
            asm = cpu.assembler
            asm.read, asm.write = at.wrap(asm.read), at.wrap(asm.write)
    elif kind in ("sysreg", "icc"):    # "icc": the GIC CPU interface only
        for cpu in m.cpus:
            for key, (rd, wr) in list(cpu.sysregs.items()):
                if kind == "sysreg" or key[:3] == (3, 0, 12):
                    cpu.sysregs[key] = (rd and at.wrap(rd), wr and at.wrap(wr))
    elif kind == "hcall":
        m.board.firmware_call = at.wrap(m.board.firmware_call)
    elif kind == "trace":
        m.trace.echo = at.wrap(lambda line: None)
    elif kind == "round":
        m.round_hooks.append(at.tick)


def run_interrupted(kind, guest, points, action=sigint, **run_kw):
    """Run `guest`, with `action` at the listed calls of the `kind` callbacks,
    calling run() again after each stop; returns (outcome, stops)."""
    arch, name, smp = GUESTS[guest]
    m = boot(arch, name, smp)
    at = At(points, action)
    install(m, kind, at)
    stops = []
    while True:
        try:
            r = m.run(max_insns=10**10, **run_kw)
        except KeyboardInterrupt:
            stops.append("raised")
            continue
        if r.reason in ("interrupted", "wall-clock"):
            stops.append(r.reason)
            continue
        return outcome(m, r), stops


def spread(total, n, offset=0):
    return sorted({max(1, min(total, offset + total * k // n)) for k in range(1, n)})


@pytest.mark.parametrize("kind,guest", [("mmio", "gic"), ("sysreg", "gic"), ("trace", "gic"),
                                        ("round", "gic"), ("hcall", "hcall"), ("trace", "hcall"),
                                        ("round", "hcall"), ("mmio", "xive"), ("hcall", "xive")])
def test_sigint_at_many_points_then_run_again_equals_an_uninterrupted_run(kind, guest):
    want = reference(guest)
    # the number of calls does not depend on the routing: count them once
    m = boot(*GUESTS[guest][:2], GUESTS[guest][2])
    counter = At(())
    install(m, kind, counter)
    m.run(max_insns=10**10)
    total = counter.calls
    assert total > 20, f"{kind}: only {total} calls"
    points = spread(total, 24) + [1, 2, total]
    got, stops = run_interrupted(kind, guest, points)
    assert stops and set(stops) == {"interrupted"}, stops
    assert len(stops) >= len(points) // 2               # stops that fall in one slot merge
    assert got == want


def test_consecutive_calls_each_interrupted():
    """SIGINT at every one of 200 consecutive MMIO callbacks: a stop at each
    instruction boundary after one (an 8-byte access is two callbacks)."""
    want = reference("gic")
    got, stops = run_interrupted("mmio", "gic", range(300, 500))
    assert got == want
    assert len(stops) > 100 and set(stops) == {"interrupted"}


def test_keyboard_interrupt_raised_by_a_round_hook_leaves_the_machine_consistent():
    want = reference("gic")

    def raise_it():
        raise KeyboardInterrupt
    got, stops = run_interrupted("round", "gic", [3, 20, 21, 30], raise_it)
    assert stops == ["raised"] * 4
    assert got == want


def test_keyboard_interrupt_raised_by_a_timer_callback_leaves_the_machine_consistent():
    """Host timers that do nothing, at round ends; the first of two due
    together raises once: the next run() fires the other before going on."""
    def with_timers(raising):
        arch, name, smp = GUESTS["gic"]
        m = boot(arch, name, smp)
        m.fired_at = []
        for k in (3, 10, 25):
            deadline = k * m.quantum
            m.clock.add_timer(deadline, raising.pop(0) if raising else (lambda: None))
            m.clock.add_timer(deadline, lambda: m.fired_at.append((m.clock.peek(), m.insns)))
        return m

    ref = with_timers([])
    r = ref.run(max_insns=10**10)
    want = outcome(ref, r)
    assert len(ref.fired_at) == 3
    fired = []

    def raise_it():
        fired.append(1)
        raise KeyboardInterrupt
    m = with_timers([raise_it, raise_it])
    raised = 0
    while True:
        try:
            r = m.run(max_insns=10**10)
            break
        except KeyboardInterrupt:
            raised += 1
    assert raised == 2 == len(fired)
    assert outcome(m, r) == want and m.fired_at == ref.fired_at


def test_keyboard_interrupt_raised_inside_a_system_register_propagates():
    """Host code raising inside a trapped system register (not a signal):
    the exception leaves run() instead of being swallowed by ctypes; raised
    before the register's handler did anything, the slot goes on exactly
    (the access runs again). That holds for registers Unicorn does not
    implement (the GIC's ICC_*), where Unicorn ends the block at the access;
    for one it implements (MPIDR_EL1, the timer's) the block goes on and the
    access is dropped (slot.c sysreg())."""
    want = reference("gic")
    arch, name, smp = GUESTS["gic"]
    m = boot(arch, name, smp)
    counter = At([])
    install(m, "icc", counter)
    m.run(max_insns=10**10)
    total = counter.calls
    assert total > 20

    def raise_it():
        raise KeyboardInterrupt
    points = [1, 10, 11, total // 2, total]
    got, stops = run_interrupted("icc", "gic", points, raise_it)
    assert stops == ["raised"] * len(points)
    assert got == want


def test_previous_handler_is_back_and_a_late_interrupt_is_not_lost():
    before = signal.getsignal(signal.SIGINT)
    arch, name, smp = GUESTS["hcall"]
    m = boot(arch, name, smp)
    m.run(max_insns=1)
    assert signal.getsignal(signal.SIGINT) is before
    # noted in `until` (between rounds, no vCPU running): reported at the next slot end
    r = m.run(max_insns=10**10, until=lambda _: sigint() or False)
    assert r.reason == "interrupted"
    assert signal.getsignal(signal.SIGINT) is before
    # SIG_IGN is left alone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        r = m.run(max_insns=m.insns + 1, until=lambda _: sigint() or False)
        assert r.reason == "max-insns"
    finally:
        signal.signal(signal.SIGINT, before)


def test_step_finishes_the_instruction_then_raises():
    arch, name, smp = GUESTS["hcall"]
    ref, m = boot(arch, name, smp), boot(arch, name, smp)
    for _ in range(50):
        ref.step(0)
    cpu = m.cpus[0]
    run = cpu.engine.run                 # SIGINT just before the step's instruction runs
    raised = []
    for i in range(50):
        cpu.engine.run = At([1]).wrap(run) if i in (0, 20, 49) else run
        try:
            m.step(0)
        except KeyboardInterrupt:
            raised.append(i)
    assert raised == [0, 20, 49]
    assert m.insns == ref.insns == 50
    assert cpu.registers() == ref.cpus[0].registers()


def test_a_wall_limit_that_does_not_fire_changes_nothing():
    want = reference("gic")
    arch, name, smp = GUESTS["gic"]
    m = boot(arch, name, smp)
    install(m, "round", At(()))
    r = m.run(max_insns=10**10, wall_seconds=3600)
    assert outcome(m, r) == want


def test_wall_limit_is_checked_after_every_slot_and_the_run_continues_exactly(monkeypatch):
    """Host time jumps an hour at every 7th look: the run stops at slot
    ends, inside rounds, and each next run() continues exactly."""
    want = reference("gic")
    real = time.monotonic
    looks = {"n": 0}

    def jumpy():
        looks["n"] += 1
        return real() + (3600.0 * looks["n"] if looks["n"] % 7 == 0 else 0.0)
    monkeypatch.setattr(time, "monotonic", jumpy)
    got, stops = run_interrupted("round", "gic", (), wall_seconds=1800)
    assert len(stops) > 10 and set(stops) == {"wall-clock"}
    assert got == want


def test_wall_limit_stops_inside_a_slot_and_the_run_continues_exactly():
    """The limit's timer thread stops the running vCPU at an instruction
    boundary wherever it is; however often that happens, the end is the same."""
    want = reference("gic")
    got, stops = run_interrupted("round", "gic", (), wall_seconds=0.002)
    assert stops and set(stops) == {"wall-clock"}
    assert got == want


def test_wall_limit_holds_with_a_huge_quantum(tmp_path):
    from vmachine import create_machine
    elf = patched(tmp_path, "aarch64", "loop", "loop_iters", 1 << 60)
    m = create_machine("virt,gic-version=3", kernel=elf, quantum=10**9)
    r = m.run(wall_seconds=0.05)
    assert r.reason == "wall-clock" and 0 < r.insns < 10**9       # inside the first slot
    before = m.insns
    r = m.run(wall_seconds=0.05)
    assert r.reason == "wall-clock" and before < r.insns < 10**9              # the slot went on


def test_snapshot_inside_a_round_restores_the_position():
    from vmachine.state import Snapshot
    want = reference("gic")
    arch, name, smp = GUESTS["gic"]
    m = boot(arch, name, smp)
    install(m, "mmio", At([200]))
    assert m.run(max_insns=10**10).reason == "interrupted"
    snap = Snapshot.from_bytes(m.save().to_bytes())
    assert "round" in snap.sections["machine"]["fields"]
    b = boot(arch, name, smp)
    b.restore(snap)
    b.console_out[:] = m.console_out
    b.trace.events[:] = m.trace.events
    r = b.run(max_insns=10**10)
    got = outcome(b, r)
    assert (got["console"], got["insns"], got["snapshot"]) == (want["console"], want["insns"],
                                                               want["snapshot"])


def patched(tmp_path, arch, name, symbol, value) -> str:
    """A copy of a guest with the `volatile u64` `symbol` in .data set to `value`."""
    from elftools.elf.elffile import ELFFile
    src = guest_elf(arch, name)
    data = bytearray(open(src, "rb").read())
    with open(src, "rb") as f:
        elf = ELFFile(f)
        addr = elf.get_section_by_name(".symtab").get_symbol_by_name(symbol)[0]["st_value"]
        seg = next(s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"
                   and s["p_vaddr"] <= addr < s["p_vaddr"] + s["p_filesz"])
        off = seg["p_offset"] + addr - seg["p_vaddr"]
    data[off:off + 8] = value.to_bytes(8, "big" if arch == "ppc64" else "little")
    p = tmp_path / f"{name}-{value}.elf"
    p.write_bytes(data)
    return str(p)


@pytest.mark.parametrize("guest,symbol,smp,wait", [
    ("gic_bench", "bench_iters", 2, 0.0),         # SGIs for ever: GIC registers trap all the time
    ("gic_bench", "bench_iters", 2, 0.3),
    ("loop", "loop_iters", 1, 0.3),               # pure guest code: no callback for a long time
])
def test_cli_ctrl_c_prints_one_line_and_exits_130(tmp_path, guest, symbol, smp, wait):
    elf = patched(tmp_path, "aarch64", guest, symbol, 1 << 60)
    cmd = [sys.executable, "-m", "vmachine", *machine_args("aarch64", elf, smp)]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        if guest == "gic_bench":
            assert p.stdout.readline().startswith(b"ok ")    # the guest is running
        else:
            time.sleep(1.0)                                   # start-up, then the loop
        time.sleep(wait)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    text = err.decode()
    assert p.returncode == 130, text
    assert text.splitlines() == ["vmachine: interrupted"], text

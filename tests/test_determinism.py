"""Determinism: the scheduler, the virtual clock and single-stepping.

A run must be a pure function of the guest (vmachine/machine.py, clock.py,
trace.py): same console bytes, same trace, same time stamps, whatever the
host does. Transcripts are QEMU 7.2's from guests/NOTES.md."""
from __future__ import annotations

import struct
import time

import pytest

from guestrun import boot, run_guest
from vmachine import create_machine
from vmachine.clock import VirtualClock

SMP4_QEMU = {
    "ppc64": ["ok cpu 0 up", "ok cpu 1 up", "ok cpu 2 up", "ok cpu 3 up", "ok smp all 4 cpus",
              "ok firmware reports all cpus running", "ok start-cpu on running cpu",
              "ok secondaries stopped", "ok boot cpu still running"],
    "aarch64": ["ok cpu 0 up", "ok cpu 1 up", "ok cpu 2 up", "ok cpu 3 up", "ok smp all 4 cpus",
                "ok firmware reports all cpus running", "ok cpu_on on running cpu is ALREADY_ON",
                "ok secondaries stopped", "ok boot cpu still running"],
}

_first_runs: dict = {}


def snapshot(m, r):
    return {"console": bytes(m.console_out), "trace": m.trace.text(), "reason": r.reason,
            "insns": r.insns, "now": m.clock.now, "pcs": [c.pc for c in m.cpus],
            "times": [e.time for e in m.trace.events]}


def first_run(arch):
    if arch not in _first_runs:
        _first_runs[arch] = snapshot(*run_guest(arch, "smp", smp=4))
    return _first_runs[arch]


@pytest.mark.parametrize("arch", ["ppc64", "aarch64"])
def test_smp4_twice_is_byte_identical(arch):
    a = first_run(arch)
    b = snapshot(*run_guest(arch, "smp", smp=4))
    assert a["reason"] == "poweroff"
    assert a["console"].decode().splitlines() == SMP4_QEMU[arch]
    assert b["console"] == a["console"]
    assert b["trace"] == a["trace"]
    assert a["trace"].count("\n") > 10          # the trace is not trivially empty
    assert b == a


@pytest.mark.parametrize("arch", ["ppc64", "aarch64"])
def test_time_stamps_do_not_depend_on_host_time(arch, monkeypatch):
    """Slow the host down (sleeping console and trace sinks) and make every
    host clock jump an hour per call: the run is unchanged."""
    base = first_run(arch)
    jump = {"t": 0.0}

    def hours(*_):
        jump["t"] += 3600.0
        return jump["t"]
    for name in ("time", "monotonic", "perf_counter"):
        monkeypatch.setattr(time, name, hours)
    monkeypatch.setattr(time, "time_ns", lambda: int(hours() * 1e9))
    monkeypatch.setattr(time, "monotonic_ns", lambda: int(hours() * 1e9))
    slept = []

    def slow(_):
        slept.append(1)
        if len(slept) % 8 == 0:
            _sleep(0.002)
    m = boot(arch, "smp", smp=4, console=slow, trace_echo=slow)
    r = m.run(max_insns=200_000_000)
    got = snapshot(m, r)
    assert slept
    assert got["times"] == base["times"]
    assert got == base


_sleep = time.sleep


def test_smp64_twice_is_byte_identical():
    a = snapshot(*run_guest("ppc64", "smp", smp=64))
    b = snapshot(*run_guest("ppc64", "smp", smp=64))
    lines = a["console"].decode().splitlines()
    assert [l for l in lines if l.endswith(" up")] == [f"ok cpu {i} up" for i in range(64)]
    assert "ok smp all 64 cpus" in lines and not any(l.startswith("not ok") for l in lines)
    assert b == a


def test_clock_counts_instructions():
    m, r = run_guest("aarch64", "hello")
    assert r.reason == "poweroff"
    assert m.console_text.startswith("hello from aarch64\n")
    # one vCPU that never waits: its time, and the machine's, are its instructions
    assert m.cpus[0].time == r.insns and 0 < r.insns <= m.clock.now <= r.insns + 1
    times = [e.time for e in m.trace.events]
    assert times == sorted(times) and times[-1] <= m.clock.now


def test_virtual_clock_ignores_the_host():
    c = VirtualClock(quantum=100)
    fired, added = [], []
    c.on_timer_added = added.append
    c.add_timer(150, lambda: fired.append("b"))
    c.add_timer(120, lambda: fired.append("a"))
    c.add_timer(130, lambda: fired.append("cancelled")).cancelled = True
    assert added == [150, 120, 130]                             # the scheduler hears of each
    assert [c.read(), c.read()] == [0, 0]                       # no vCPU ran: no time passed
    _sleep(0.02)
    assert c.peek() == 0 and c.now == 0
    c.now_fn = lambda: 42                                       # the running vCPU's time
    assert c.read() == 42
    assert c.fire_due() == 0 and fired == []
    c.advance(100)
    assert c.fire_due() == 0
    c.advance(100)
    assert c.fire_due() == 2 and fired == ["a", "b"]             # deadline order
    assert c.next_deadline() is None


# ---- single-stepping ---------------------------------------------------------------------------------

def test_step_ppc64_records_the_instruction():
    m = create_machine("pseries", ram_size=64 << 20)
    cpu = m.cpus[0]
    code = [0x38630005,     # addi r3, r3, 5
            0x48000008,     # b    .+8
            0x60000000,     # nop (skipped)
            0x44000022]     # sc 1
    m.ram.write(0x10_0000, struct.pack(">4I", *code))
    cpu.start(0x10_0000, 10)
    rec = m.step(0)
    assert (rec.cpu, rec.pc, rec.insn, rec.next_pc) == (0, 0x10_0000, 0x38630005, 0x10_0004)
    assert rec.changed == {"r3": (10, 15), "pc": (0x10_0000, 0x10_0004)}
    assert rec.events == [] and rec.delivered is None
    rec = m.step(0)
    assert (rec.insn, rec.next_pc) == (0x48000008, 0x10_000C)
    assert rec.changed == {"pc": (0x10_0004, 0x10_000C)}
    cpu.set_gpr(3, 0x1234)                                       # an unknown hcall
    rec = m.step(0)
    assert (rec.insn, rec.next_pc) == (0x44000022, 0x10_0010)
    assert rec.changed["r3"] == (0x1234, (1 << 64) - 2)          # H_FUNCTION
    assert [e.kind for e in rec.events] == ["guest-error"]
    assert m.insns == 3


def test_step_aarch64_records_the_instruction():
    m = create_machine("virt,gic-version=3", ram_size=32 << 20)
    cpu = m.cpus[0]
    base = 0x4010_0000
    m.ram.write(base, struct.pack("<2I", 0x91001421, 0xD4000002))   # add x1,x1,#5; hvc #0
    cpu.start(base, 0x8400_0000)                                   # x0 = PSCI_VERSION
    cpu.set_x(1, 37)
    rec = m.step(0)
    assert (rec.pc, rec.insn, rec.next_pc) == (base, 0x91001421, base + 4)
    assert rec.changed == {"x1": (37, 42), "pc": (base, base + 4)}
    rec = m.step(0)
    assert (rec.insn, rec.next_pc) == (0xD4000002, base + 8)
    assert rec.changed["x0"] == (0x8400_0000, 0x10001)
    assert [(e.kind, e.what) for e in rec.events] == [("psci", "PSCI_VERSION")]


@pytest.mark.parametrize("arch", ["ppc64", "aarch64"])
def test_stepping_equals_running(arch):
    """N single steps of a booting guest leave the CPU where a run of N does."""
    n = 300
    a, b = boot(arch, "hello"), boot(arch, "hello")
    pcs = [a.step(0).pc for _ in range(n)]
    b.cpus[0].run_insns(n)
    assert a.cpus[0].registers() == b.cpus[0].registers()
    assert len(set(pcs)) > 20                                    # it really went somewhere
    assert bytes(a.console_out) == bytes(b.console_out)

"""Fuzz (issue 15, property 6): Ctrl-C at random points. A guest run is
interrupted at its N-th traced event (N random) by a KeyboardInterrupt raised
from a host callback (the trace echo, called inside hcall/PSCI/MMIO/system-
register handlers, i.e. inside Unicorn callbacks), or by a real SIGINT
delivered there (signal.raise_signal with Python's default handler), or at a
round boundary (the `until` callback). The interrupt must be noticed (run()
raises KeyboardInterrupt or returns early, never runs on to the guest's end),
and calling run() again must end exactly like an uninterrupted run: same
console output, same instruction count, same exit.
Profiles: see tests/fuzz_support.py."""
from __future__ import annotations

import functools
import signal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz_support import fuzz_settings, guest_elf, pseries, virt

GUESTS = {
    "ppc64-xics_ipi": ("ppc64", "xics_ipi", lambda e, **k: pseries(smp=2, ram=32 << 20, kernel=e, **k)),
    "aarch64-gic_sgi": ("aarch64", "gic_sgi", lambda e, **k: virt(smp=2, ram=32 << 20, kernel=e, **k)),
}
BUDGET = 10**9


def make(config: str, **kw):
    arch, name, mk = GUESTS[config]
    return mk(guest_elf(arch, name), **kw)


@functools.lru_cache(maxsize=None)
def reference(config: str) -> tuple:
    """(console, insns, exit, traced events, rounds) of an uninterrupted run."""
    events = [0]
    m = make(config, trace_echo=lambda line: events.__setitem__(0, events[0] + 1))
    events[0] = 0                                   # count the run's events only
    rounds = [0]

    def until(_m):
        rounds[0] += 1
        return False
    r = m.run(max_insns=BUDGET, wall_seconds=120, until=until)
    assert r.reason == "poweroff", r
    return m.console_text, m.insns, m.exited, events[0], rounds[0]


def outcome(m) -> tuple:
    return m.console_text, m.insns, m.exited


def interrupted_then_resumed(config: str, how: str, n: int) -> None:
    console, insns, exited, n_events, _ = reference(config)
    state = {"count": 0, "fired": False, "armed": False, "late": False}
    holder: dict = {}

    def fire():
        state["fired"] = True
        # A Ctrl-C after the guest already powered off has nothing left to stop.
        state["late"] = holder["m"].exited is not None
        if how == "signal":
            signal.raise_signal(signal.SIGINT)
        else:
            raise KeyboardInterrupt

    def echo(line):
        if not state["armed"]:
            return
        state["count"] += 1
        if state["count"] == n and how in ("raise", "signal"):
            fire()

    def until(m):
        state["rounds"] = state.get("rounds", 0) + 1
        if how == "round" and state["rounds"] == n:
            fire()
        return False

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        m = holder["m"] = make(config, trace_echo=echo)
        state["armed"] = True
        interrupted = False
        try:
            interrupted = m.run(max_insns=BUDGET, until=until).reason == "interrupted"
        except KeyboardInterrupt:
            interrupted = True
        assert state["fired"], "the interrupt point was never reached"
        state["armed"] = False
        assert interrupted or m.exited is None or state["late"], (
            f"Ctrl-C ({how}) at event/round {n} was lost: the run went on to {m.exited}")
        m.run(max_insns=BUDGET)
    finally:
        signal.signal(signal.SIGINT, old)
    assert outcome(m) == (console, insns, exited), (
        f"Ctrl-C ({how}) at event/round {n}, then run(): ended differently from an uninterrupted run "
        f"(insns {m.insns} vs {insns}; console {'equal' if m.console_text == console else 'differs'})")


def point(config: str):
    _, _, _, n_events, rounds = reference(config)
    return st.integers(1, max(1, n_events))


@pytest.mark.parametrize("config", sorted(GUESTS))
@fuzz_settings(8)
@given(data=st.data())
def test_ctrl_c_at_a_round_boundary(config, data):
    """Interrupting between rounds (the `until` callback) must continue exactly."""
    rounds = reference(config)[4]
    interrupted_then_resumed(config, "round", data.draw(st.integers(1, max(1, rounds - 1)), label="round"))


@pytest.mark.parametrize("config", sorted(GUESTS))
@fuzz_settings(8)
@example(data=None)
@given(data=st.data())
def test_ctrl_c_inside_a_callback(config, data):
    """A real SIGINT delivered inside a Unicorn callback (hcall, PSCI, MMIO,
    system register): noted, acted on at the next instruction boundary."""
    n = 1 if data is None else data.draw(point(config), label="event")
    interrupted_then_resumed(config, "signal", n)


@pytest.mark.parametrize("config", sorted(GUESTS))
@fuzz_settings(8)
@example(data=None)
@given(data=st.data())
@pytest.mark.xfail(strict=True, reason=(
    "issue 15 item 2, left open: a KeyboardInterrupt *raised by host code* inside a Unicorn-binding "
    "callback (hcall/PSCI/MMIO handler; not a signal, which is handled) leaves that guest access "
    "half-done; minimal example: raise at the first traced event (N=1) of ppc64 xics_ipi, then run()"))
def test_keyboard_interrupt_raised_by_host_code_inside_a_callback(config, data):
    n = 1 if data is None else data.draw(point(config), label="event")
    interrupted_then_resumed(config, "raise", n)

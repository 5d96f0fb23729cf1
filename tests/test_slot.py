"""The C slot counter (vmachine/cpu/slot.c) and its fallback give the same runs."""
from __future__ import annotations

import pytest

from guestrun import boot
from vmachine.cpu import slot


def test_c_slot_counter_is_built_and_used():
    assert slot.unavailable_reason() is None
    m = boot("aarch64", "hello")
    assert all(isinstance(c.engine, slot.CSlotEngine) for c in m.cpus)


@pytest.mark.parametrize("arch,name,smp", [("ppc64", "timer", 1), ("aarch64", "timer", 1),
                                           ("ppc64", "xics_smp", 4), ("aarch64", "smp", 4)])
def test_fallback_gives_the_same_run(arch, name, smp):
    runs = []
    for c_hooks in (True, False):
        m = boot(arch, name, smp, c_slot_counter=c_hooks)
        r = m.run(max_insns=10**10)
        assert r.reason == "poweroff"
        runs.append((bytes(m.console_out), m.clock.now, [c.registers() for c in m.cpus]))
    assert runs[0] == runs[1]


def test_exact_stop_counts():
    m = boot("aarch64", "hello")
    cpu = m.cpus[0]
    assert cpu.run_insns(37) == 37
    assert cpu.engine.rec.executed == 37

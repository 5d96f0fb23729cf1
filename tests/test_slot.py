"""The slot engine (vmachine/cpu/slot.c): instructions counted per
translation block, corrected where a block is left early, exact stops on
request, and virtual time that counts instructions."""
from __future__ import annotations

import pytest

from guestrun import boot
from vmachine.cpu import slot


def test_slot_engine_is_built_and_used():
    assert slot.unavailable_reason() is None
    m = boot("aarch64", "hello")
    assert all(isinstance(c.engine, slot.SlotEngine) for c in m.cpus)


def _finish(m):
    r = m.run(max_insns=10**10)
    assert r.reason == "poweroff", r.describe()
    return (bytes(m.console_out), r.insns, m.clock.now, [c.registers() for c in m.cpus])


# Guests with exceptions, hcalls/PSCI, MMIO to every controller, trapped
# system registers and SPRs, WFI/H_CEDE, timers and several vCPUs.
AUDITED = [("ppc64", "exceptions", 1), ("ppc64", "timer", 1), ("ppc64", "xics_smp", 4),
           ("ppc64", "xive_ipi", 2), ("ppc64", "sprs", 1), ("ppc64", "tb_reloc", 1),
           ("aarch64", "exceptions", 1), ("aarch64", "timer", 1), ("aarch64", "gic_smp", 4),
           ("aarch64", "its_basic", 1), ("aarch64", "gic_timer", 2)]


@pytest.mark.parametrize("arch,name,smp", AUDITED)
def test_block_charges_equal_instructions_executed(arch, name, smp):
    """In audit mode a hook on every instruction counts what really ran;
    the per-block charges (with their corrections) must match it exactly,
    and the run must be the same as an ordinary one."""
    plain = _finish(boot(arch, name, smp))
    m = boot(arch, name, smp)
    for c in m.cpus:
        c.engine.audit = True
    audited = _finish(m)
    for c in m.cpus:
        assert c.engine.rec.counted == c.engine.rec.executed, f"cpu{c.index}"
    assert audited == plain


def test_exact_stop_counts():
    m = boot("aarch64", "hello")
    cpu = m.cpus[0]
    assert cpu.run_insns(37) == 37
    assert cpu.engine.rec.executed == 37
    assert cpu.time == 37


@pytest.mark.parametrize("arch", ["ppc64", "aarch64"])
def test_max_insns_stops_exactly_and_continues_identically(arch):
    """run(max_insns=N) stops at instruction N exactly (mid-block, mid-slot);
    continuing gives the run that never stopped."""
    ref = _finish(boot(arch, "timer"))
    m = boot(arch, "timer")
    for n in (1, 100, 12_345, 40_001, 300_007):
        r = m.run(max_insns=n)
        assert (r.reason, r.insns, m.insns) == ("max-insns", n, n)
    assert _finish(m) == ref


@pytest.mark.parametrize("arch", ["ppc64", "aarch64"])
def test_single_vcpu_time_is_its_instruction_count(arch):
    """-icount shift=0: a lone vCPU's clock is the instructions it executed
    (a guest that never waits: no idle skip)."""
    m = boot(arch, "loop")
    r = m.run(max_insns=10**10)
    assert r.reason == "poweroff"
    assert m.cpus[0].time == r.insns


def test_a_vcpu_started_mid_round_runs_in_that_round_from_the_starters_time():
    """PSCI CPU_ON from the boot vCPU's slot: the new vCPU joins the same
    round, its time starting where the boot vCPU's was at the hvc."""
    m = boot("aarch64", "smp", 2)
    cpu0, cpu1 = m.cpus
    starts = []
    real_start = cpu1.start

    def start(entry, x0):
        starts.append((cpu0.local_now(), m.clock.now, m._round_limit))
        real_start(entry, x0)
    cpu1.start = start
    first_slot = []
    real_run_slot = cpu1.run_slot

    def run_slot(exact=None):
        if not first_slot:
            first_slot.append((cpu1.time, m.clock.now))
        return real_run_slot(exact)
    cpu1.run_slot = run_slot
    r = m.run(max_insns=10**10)
    assert r.reason == "poweroff" and "not ok" not in m.console_text
    (t_on, round_start, limit), = starts
    assert round_start < t_on < limit                 # started inside a round...
    assert first_slot == [(t_on, round_start)]        # ...and ran in it, from then


@pytest.mark.parametrize("arch", ["ppc64", "aarch64"])
def test_one_vcpu_runs_the_same_at_any_quantum(arch):
    """With one vCPU the quantum changes nothing the guest can see: rounds
    end at timer deadlines, so the decrementer / generic timer fire at the
    same instruction whatever the quantum."""
    runs = {q: _finish(boot(arch, "timer", quantum=q)) for q in (997, 20_000, 1_000_000)}
    consoles = {q: (r[0], r[1]) for q, r in runs.items()}
    assert len(set(consoles.values())) == 1, consoles.keys()


@pytest.mark.parametrize("quantum", [1000, 20_000])
def test_smp_runs_are_repeatable_at_each_quantum(quantum):
    a = _finish(boot("aarch64", "gic_smp", 4, quantum=quantum))
    b = _finish(boot("aarch64", "gic_smp", 4, quantum=quantum))
    assert a == b

"""The ITS command queue runs in bounded steps (issue 15, item 1): a CWRITER
store runs at most CMD_BUDGET commands, a run in progress continues at CREADR
reads and round boundaries, CREADR advances as commands complete, the result
equals running the whole queue at once, and a run in progress migrates."""
from __future__ import annotations

import json
import random

import pytest

from vmachine.errors import ConfigError
from vmachine.intc import its as I
from vmachine.memory import GuestRAM

from gicrig import CQ, LPI, RAM, RAM_SIZE, ItsRig

FULL_QUEUE = 32_768                      # CBASER.Size 0xFF: 256 x 4 KiB pages
INVALL = [0x0D, 0, 0, 0]


def _big_queue_rig(n: int = 2, pending: int = 2048) -> ItsRig:
    """An ItsRig with a 1 MiB queue, device 1 mapped (32 events) and `pending`
    LPIs pending on every vCPU."""
    r = ItsRig(n)
    r.setup_cpus()
    r.setup_its()
    r.w(0x0, 0)                                               # disable to move the queue
    r.w(0x80, (1 << 63) | CQ | 0xFF, 8)
    r.w(0x88, 0, 8)
    r.w(0x0, 1)
    r.wptr = 0
    r.full(dev=1, ev=0, intid=LPI, cpu=0)
    r.mapc(1, n - 1)
    for i in range(n):
        for k in range(pending):
            r.prop(LPI + 100 + k, 0x80 + (k % 8) * 8)
            r.g.lpi_process(i, LPI + 100 + k, True)
    return r


def _queue(r: ItsRig, cmds: list[list[int]]) -> int:
    """Write `cmds` after CWRITER and store CWRITER once; the slots written."""
    for dw in cmds:
        dw = dw + [0] * (4 - len(dw))
        r.ram.write(CQ + r.wptr, b"".join(d.to_bytes(8, "little") for d in dw))
        r.wptr = (r.wptr + 32) % (FULL_QUEUE * 32)
    r.w(0x88, r.wptr, 8)
    return len(cmds)


def _commands(ev) -> int:
    return sum(1 for what, _ in ev if what == "its_command")


def _mixed_commands(count: int, seed: int = 15) -> list[list[int]]:
    """A deterministic mix of state-changing commands: maps, INT, CLEAR,
    MOVI, MOVALL, DISCARD, INV, INVALL, SYNC."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        ev, icid = rnd.randrange(32), rnd.randrange(2)
        out.append(rnd.choice([
            [0x0A | 1 << 32, ev | (LPI + rnd.randrange(64)) << 32, icid],       # MAPTI
            [0x03 | 1 << 32, ev], [0x04 | 1 << 32, ev], [0x0F | 1 << 32, ev],   # INT CLEAR DISCARD
            [0x01 | 1 << 32, ev, icid], [0x0C | 1 << 32, ev], INVALL,          # MOVI INV INVALL
            [0x0E, 0, rnd.randrange(2) << 16, rnd.randrange(2) << 16],         # MOVALL
            [0x05, 0, rnd.randrange(2) << 16],                                  # SYNC
        ]))
    return out


def _state(r: ItsRig) -> tuple:
    """Everything guest-visible: RAM, GIC and ITS sections."""
    return bytes(r.ram.buf), json.dumps(r.g.save_state(), sort_keys=True), \
        json.dumps(r.its.save_state(), sort_keys=True)


def _drain(r: ItsRig) -> int:
    """Round boundaries until the run ends; how many it took."""
    rounds = 0
    while r.its.busy:
        before = r.its.creadr
        assert r.its.step_queue() <= I.CMD_BUDGET
        assert r.its.creadr != before
        rounds += 1
    return rounds


# ---- bounded processing ------------------------------------------------------------------------
def test_a_full_queue_of_invalls_runs_in_bounded_steps():
    r = _big_queue_rig(pending=2048)
    r.events.clear()
    start = r.its.creadr
    n = _queue(r, [INVALL] * (FULL_QUEUE - 1))
    assert r.wptr == (start - 32) % (FULL_QUEUE * 32)          # every slot but one: full
    assert _commands(r.events) == I.CMD_BUDGET                # the store ran CMD_BUDGET only
    assert r.its.busy and r.its.creadr == start + I.CMD_BUDGET * 32
    rounds = _drain(r)
    assert rounds == -(-(n - I.CMD_BUDGET) // I.CMD_BUDGET)
    assert _commands(r.events) == n and not r.its.busy
    assert r.its.creadr == r.its.cwriter and not r.errors


def test_creadr_reads_drive_a_run_and_small_batches_finish_in_the_store(its_rig):
    rig = its_rig
    rig.full(dev=1, ev=0, intid=LPI)
    rig.events.clear()
    for _ in range(I.CMD_BUDGET):                             # a batch of CMD_BUDGET: done at once
        rig.ram.write(CQ + rig.wptr, bytes([0x05]) + bytes(31))
        rig.wptr = (rig.wptr + 32) % 0x1000
    rig.w(0x88, rig.wptr, 8)
    assert not rig.its.busy and rig.its.creadr == rig.wptr
    for _ in range(127):                                      # 127 more: a polling guest catches up
        rig.ram.write(CQ + rig.wptr, bytes([0x05]) + bytes(31))
        rig.wptr = (rig.wptr + 32) % 0x1000
    rig.w(0x88, rig.wptr, 8)
    assert rig.its.busy and rig.its.creadr == (rig.wptr - 63 * 32) % 0x1000
    assert rig.creadr() == rig.wptr and not rig.its.busy      # the first poll ran the other 63


def test_disabling_ends_a_run_and_enabling_restarts_it():
    r = _big_queue_rig(pending=4)
    _queue(r, [INVALL] * 300)
    at = r.its.creadr
    r.w(0x0, 0)
    assert not r.its.busy and r.its.step_queue() == 0 and r.its.creadr == at
    r.w(0x0, 1)
    assert r.its.busy and r.its.creadr == at + I.CMD_BUDGET * 32


def test_a_stall_ends_the_run_and_a_cwriter_store_retries():
    r = _big_queue_rig(pending=4)
    cmds = [[0x05]] * 100 + [[0x08 | 1 << 32, 4, (0x1_0000_0000 >> 8 << 8) | 1 << 63],
                             [0x0A | 1 << 32, 0 | (LPI + 1) << 32, 0]] + [[0x05]] * 100
    first = r.its.creadr
    _queue(r, cmds)
    _drain(r)
    assert r.its.creadr == (first + 101 * 32) | 1             # stalled: MAPTI, ITT outside RAM
    assert r.its.step_queue() == 0
    r.w(0x88, r.wptr, 8)                                      # retried: stalls again, one command
    assert r.its.creadr == (first + 101 * 32) | 1 and not r.its.busy


def test_bounded_run_ends_in_the_same_state_as_one_unbounded_run(monkeypatch):
    cmds = _mixed_commands(3000)
    a = _big_queue_rig(pending=256)
    b = _big_queue_rig(pending=256)
    for r in (a, b):
        for k in range(0, 256, 3):                            # config changes for INV/INVALL
            r.prop(LPI + 100 + k, 0x20, enable=k % 2 == 0)
        r.events.clear()
    _queue(a, cmds)
    assert a.its.busy
    _drain(a)
    monkeypatch.setattr(I, "CMD_BUDGET", 1 << 20)
    _queue(b, cmds)
    assert not b.its.busy
    assert _state(a) == _state(b)
    for log in ("events", "errors"):                         # the same, but for the vCPU named
        strip = [[(w, {k: v for k, v in d.items() if k != "cpu"}) for w, d in getattr(r, log)]
                 for r in (a, b)]
        assert strip[0] == strip[1]


# ---- migration -----------------------------------------------------------------------------------
def _clone(r: ItsRig) -> ItsRig:
    secs = {s["name"]: s for s in json.loads(json.dumps([r.g.save_state(), r.its.save_state()]))}
    ram = GuestRAM(RAM, RAM_SIZE)
    ram.write(RAM, bytes(r.ram.buf))
    b = ItsRig(r.n, ram=ram)
    b.g.load_state(secs)
    b.its.load_state(secs)
    b.sys = [b.g.sysregs(i) for i in range(r.n)]
    b.wptr = r.wptr
    return b


@pytest.mark.parametrize("steps", [0, 1, 7])
def test_a_run_in_progress_migrates(steps):
    a = _big_queue_rig(pending=256)
    _queue(a, _mixed_commands(2000, seed=steps))
    for _ in range(steps):
        a.its.step_queue()
    assert a.its.save_state()["fields"]["busy"] is True
    b = _clone(a)
    assert b.its.busy and b.its.creadr == a.its.creadr
    _drain(a)
    _drain(b)
    assert _state(a) == _state(b)


def test_version_1_sections_load_and_inconsistent_ones_are_refused(its_rig):
    rig = its_rig
    s = rig.its.save_state()
    assert s["version"] == 2
    old = json.loads(json.dumps(s))
    old["version"] = 1
    del old["fields"]["busy"]
    rig.its.busy = True
    rig.its.load_state({"gicv3-its": old})
    assert rig.its.busy is False and rig.its.creadr == s["fields"]["creadr"]
    bad = json.loads(json.dumps(s))
    bad["fields"].update(busy=True, ctlr=0)
    with pytest.raises(ConfigError, match="in progress while the ITS is disabled"):
        rig.its.load_state({"gicv3-its": bad})
    newer = json.loads(json.dumps(s))
    newer["version"] = 3
    with pytest.raises(ConfigError,
                       match="'gicv3-its' is version 3; this vmachine reads versions 1..2"):
        rig.its.load_state({"gicv3-its": newer})


def test_the_virt_board_continues_a_run_at_round_boundaries_and_across_a_snapshot():
    from vmachine import create_machine

    def make():
        return create_machine("virt,gic-version=3", smp=1)
    m = make()
    its, ram = m.board.its, m.ram
    cq = 0x4400_0000
    its.mmio_write(0, I.GITS_CBASER, 8, (1 << 63) | cq | 0xFF)
    its.mmio_write(0, I.GITS_CTLR, 4, 1)
    for k in range(1000):
        ram.write(cq + 32 * k, bytes([0x05]) + bytes(31))
    its.mmio_write(0, I.GITS_CWRITER, 8, 1000 * 32)
    assert its.creadr == I.CMD_BUDGET * 32
    m.run()                                                   # no vCPU runs: one round, then idle
    assert its.creadr == 2 * I.CMD_BUDGET * 32
    b = make()
    b.restore(m.save())
    for x in (m, b):
        while x.board.its.busy:
            x.run()
    assert b.board.its.save_state() == m.board.its.save_state()
    assert its.creadr == its.cwriter == 1000 * 32


# ---- INV / INVALL cost what changed (issue 15, item 1) -------------------------------------------
def _examined(r: ItsRig) -> int:
    return r.g.redist.inv_work


def _assert_invall_result(r: ItsRig) -> None:
    """After INVALL every pending LPI's config is the property byte in RAM,
    and the highest pending LPI is what a full rescan finds."""
    for cs in r.g.cpus:
        base = cs.propbaser & ((1 << 52) - (1 << 12))
        for irq in cs.lpi_pending:
            a = base + irq - LPI
            want = r.ram.read(a, 1)[0] if r.ram.contains(a, 1) else 0
            assert cs.lpi_cfg[irq] == want, (cs.index, irq)
        _assert_highest(cs)


def _assert_highest(cs) -> None:
    """The highest pending LPI is what a scan of every pending LPI finds."""
    assert set(cs.lpi_cfg) == cs.lpi_pending
    best = min(((c & 0xFC, irq) for irq, c in cs.lpi_cfg.items() if c & 1), default=(0xFF, 1023))
    assert (cs.hpplpi_prio, cs.hpplpi_irq) == best, cs.index


def test_invall_examines_only_changed_or_newly_read_lpis():
    r = _big_queue_rig(n=4, pending=4096)
    total = 4 * 4096
    w0 = _examined(r)
    r.cmd(*INVALL)                                            # first: every pending LPI once
    assert _examined(r) - w0 == total
    for _ in range(50):
        r.cmd(*INVALL)                                        # nothing changed: nothing examined
    assert _examined(r) - w0 == total
    r.prop(LPI + 100 + 7, 0x10)                               # pending on every vCPU
    r.prop(LPI + 60_000 - LPI, 0x10)                          # not pending anywhere
    r.g.lpi_process(1, LPI + 5000, True)                      # newly pending: read since
    r.cmd(*INVALL)
    assert _examined(r) - w0 == total + 4 + 1
    assert all(cs.hpplpi_irq == LPI + 100 + 7 for cs in r.g.cpus)
    _assert_invall_result(r)
    r.prop(LPI + 100 + 7, 0xF0)                               # the highest gets worse: rescan
    r.cmd(*INVALL)
    _assert_invall_result(r)
    assert r.g.cpus[0].hpplpi_irq != LPI + 100 + 7


def test_a_full_queue_of_invalls_with_many_pending_lpis_costs_what_changed():
    r = _big_queue_rig(n=4, pending=8192)
    w0 = _examined(r)
    n = _queue(r, [INVALL] * (FULL_QUEUE - 1))
    assert (r.its.creadr - r.wptr) % (FULL_QUEUE * 32) != 0 and r.its.busy
    rounds = 0
    while r.its.busy:
        r.prop(LPI + 100 + rounds % 8192, 0x04 * (rounds % 60))   # one byte per round
        r.its.step_queue()
        rounds += 1
    assert rounds * I.CMD_BUDGET >= n - I.CMD_BUDGET
    assert _examined(r) - w0 <= 4 * 8192 + 4 * rounds         # first pass + what changed
    _assert_invall_result(r)


def test_inv_reads_one_lpi_and_rescans_only_when_the_highest_gets_worse(its_rig):
    r = its_rig
    r.full(dev=1, ev=0, intid=LPI + 1, prio=0xA0)
    r.mapti(1, 1, LPI + 2, 0)
    r.prop(LPI + 2, 0xB0)
    r.dev_ev(0x03, 1, 0)
    r.dev_ev(0x03, 1, 1)
    w0 = _examined(r)
    r.prop(LPI + 2, 0x10)
    r.dev_ev(0x0C, 1, 1)                                      # INV
    assert _examined(r) - w0 == 1 and r.sr(0, "ICC_HPPIR1_EL1") == LPI + 2
    r.prop(LPI + 2, 0xF0)
    r.dev_ev(0x0C, 1, 1)
    assert r.sr(0, "ICC_HPPIR1_EL1") == LPI + 1
    r.cmd(*INVALL)                                            # both were read since: 2 examined
    assert _examined(r) - w0 == 2 + 2
    _assert_invall_result(r)


@pytest.mark.parametrize("seed", range(6))
def test_invall_matches_a_full_reread_under_random_operations(seed):
    """Property writes, LPIs set, cleared and acknowledged, INV, INVALL, PROPBASER moves
    (one partly outside RAM), EnableLPIs rewritten, a restore: after every
    INVALL the configs equal RAM and the highest pending LPI a rescan's."""
    rnd = random.Random(seed)
    r = ItsRig(3)
    r.setup_cpus()
    prop_bases = [r.g.cpus[0].propbaser & ~0xFFF, RAM + RAM_SIZE - 0x4000, RAM + 0x30_0000]
    for step in range(600):
        op = rnd.randrange(10)
        cpu = rnd.randrange(3)
        irq = LPI + rnd.randrange(600) * rnd.choice([1, 1, 1, 90])
        if op <= 2:
            base = r.g.cpus[cpu].propbaser & ~0xFFF
            if r.ram.contains(base + irq - LPI, 1):
                r.ram.write(base + irq - LPI, bytes([rnd.randrange(256) | 2]))
        elif op <= 4:
            r.g.lpi_process(cpu, irq, rnd.random() < 0.7)
        elif op == 5:
            r.g.lpi_inv(cpu, irq)
        elif op == 6:
            r.g.lpi_invall_all()
            _assert_invall_result(r)
        elif op == 7 and rnd.random() < 0.2:
            r.gicr_w(cpu, 0x70, rnd.choice(prop_bases) | 15, 8)
        elif op == 9:                                         # acknowledge the highest
            got = r.sr(cpu, "ICC_IAR1_EL1")
            if got != 1023:
                r.sw(cpu, "ICC_EOIR1_EL1", got)
        elif op == 8 and rnd.random() < 0.1:
            r.gicr_w(cpu, 0x0, 1)                             # EnableLPIs again: reload
        elif op == 8 and rnd.random() < 0.1:
            r.g.load_state({"gicv3": json.loads(json.dumps(r.g.save_state()))})   # a restore
        for cs in r.g.cpus:
            _assert_highest(cs)
    r.g.lpi_invall_all()
    _assert_invall_result(r)


def test_clearing_or_acknowledging_the_highest_lpi_does_not_scan_the_others(monkeypatch):
    """The highest pending LPI comes from a heap: with 8,192 LPIs pending, a
    CLEAR or an acknowledge of the highest pops a stale entry or two, and the
    heap stays within twice the pending LPIs."""
    import heapq
    r = _big_queue_rig(n=2, pending=8192)
    cs = r.g.cpus[0]
    pops = [0]
    real_pop = heapq.heappop

    def counted(heap):
        pops[0] += 1
        return real_pop(heap)
    monkeypatch.setattr(heapq, "heappop", counted)
    for _ in range(500):
        top = cs.hpplpi_irq
        r.g.lpi_process(0, top, False)                       # CLEAR of the highest
        _assert_highest(cs)
        r.g.lpi_process(0, top, True)
        assert r.sr(0, "ICC_IAR1_EL1") == top                 # acknowledge: no longer pending
        r.sw(0, "ICC_EOIR1_EL1", top)
        r.g.lpi_process(0, top, True)
    assert pops[0] <= 2 * 2 * 500
    assert len(cs.lpi_heap) <= 2 * len(cs.lpi_cfg) + 64
    _assert_highest(cs)

"""Host-side GSI routing and irqfds (vmachine/intc/msi_routing.py) on virt
(GICv3 + ITS, guest tables set up by driving the ITS through tests/gicrig.py's
ItsRig, as tests/test_its.py does) and pseries (XICS)."""
from __future__ import annotations

import threading

import pytest

from gicrig import ITT, LPI, virt_with_its
from vmachine import create_machine
from vmachine.cpu.base import CpuState
from vmachine.errors import DeviceError
from vmachine.intc.xics import IcpState
from vmachine.intc.msi_routing import GsiRouting, IrqchipRoute, MsiRoute

GICD_ISPENDR = 0x200
B_SELF = 0x1400_0000                        # aarch64 "b ."


def spi_pending(r, intid):
    return r.dist.mmio_read(0, GICD_ISPENDR + 4 * (intid // 32), 4) >> (intid % 32) & 1


# ---- the table ---------------------------------------------------------------------------------
def test_irqchip_and_msi_routes_on_virt(virt_its):
    m, r, rt = virt_its
    rt.set_routing([IrqchipRoute(5, 10), MsiRoute(6, r.its.doorbell, 0, 1)])
    rt.irq_line(5, 1)                                  # SPI 10 = INTID 42 (level at reset)
    assert spi_pending(r, 42)
    rt.irq_line(5, 0)
    assert not spi_pending(r, 42)
    rt.irq_line(6, 0)                                  # MSI route: level 0 is ignored
    assert r.g.lpi_pending(1) == []
    rt.irq_line(6, 1)
    assert r.g.lpi_pending(1) == [LPI + 5]
    r.dev_ev(0x04, 1, 0)                               # CLEAR
    rt.signal(6)
    assert r.g.lpi_pending(1) == [LPI + 5] and r.g.lpi_pending(0) == []
    with pytest.raises(DeviceError) as e:
        rt.signal(5)
    assert e.value.errno_name == "EINVAL"
    with pytest.raises(DeviceError) as e:
        rt.irq_line(7, 1)
    assert e.value.errno_name == "ENOENT"
    rt.set_routing([MsiRoute(6, r.its.doorbell, 1, 1)])   # event 1 unmapped: the ITS's error
    with pytest.raises(DeviceError) as e:
        rt.signal(6)
    assert e.value.errno_name == "ENOENT"


@pytest.mark.parametrize("bad", [
    [IrqchipRoute(1, 2), IrqchipRoute(1, 3)],          # one irqchip: a GSI at most once
    [IrqchipRoute(1, 2), MsiRoute(1, 0, 0)],           # an MSI GSI has no other entry
    [IrqchipRoute(4096, 2)],                           # KVM_MAX_IRQ_ROUTES
    [IrqchipRoute(1, 256)],                            # SPIs 0..255
    [MsiRoute(1, 0, 1 << 32)],
    ["not a route"],
])
def test_set_routing_validates_everything_and_is_atomic(virt_its, bad):
    m, r, rt = virt_its
    good = [IrqchipRoute(5, 10)]
    rt.set_routing(good)
    with pytest.raises(DeviceError) as e:
        rt.set_routing([IrqchipRoute(9, 9)] + bad)
    assert e.value.errno_name == "EINVAL"
    assert rt.routes() == good                         # the old table, whole


# ---- translate-once vs route-every-time ----------------------------------------------------------
def test_translate_once_and_route_every_time_are_equivalent():
    states = []
    for once in (False, True):
        m, r = virt_with_its()
        r.full(dev=1, ev=0, intid=LPI + 5, cpu=1)
        r.full(dev=2, ev=3, intid=LPI + 9, cpu=0, prio=0x80)
        rt = GsiRouting(m)
        rt.set_routing([MsiRoute(6, r.its.doorbell, 0, 1), MsiRoute(7, r.its.doorbell, 3, 2)])
        a, b = rt.irqfd(6, translate_once=once), rt.irqfd(7, translate_once=once)
        if once:
            assert a.target == (LPI + 5, 1) and b.target == (LPI + 9, 0)
        for fd in (a, b, a):
            fd.trigger()
        assert rt.drain() == 3 and not a.errors and not b.errors
        iar = [r.sr(0, "ICC_IAR1_EL1"), r.sr(1, "ICC_IAR1_EL1")]
        b.fire()
        states.append((iar, r.g.lpi_pending(0), r.g.lpi_pending(1), bytes(m.ram.buf[0x10_0000:0x30_0000]),
                       r.g.save_state()))
        rt.close()
    assert states[0][0] == [LPI + 9, LPI + 5]
    assert states[0] == states[1]


# ---- remap after translate -----------------------------------------------------------------------
def test_pre_translated_trigger_detects_discard_movi_and_mapd_unmap(virt_its):
    m, r, rt = virt_its
    r.mapc(0, 0)
    rt.set_routing([MsiRoute(6, r.its.doorbell, 0, 1)])
    fd = rt.irqfd(6, translate_once=True)
    assert fd.target == (LPI + 5, 1)
    fd.fire()
    assert r.g.lpi_pending(1) == [LPI + 5]
    r.dev_ev(0x04, 1, 0)                               # CLEAR
    r.dev_ev(0x01, 1, 0, 0)                            # MOVI to collection 0 (vCPU 0)
    with pytest.raises(DeviceError) as e:
        fd.fire()
    assert e.value.errno_name == "ESTALE" and "remapped" in str(e.value)
    assert r.g.lpi_pending(0) == [] and r.g.lpi_pending(1) == []
    assert fd.rebind() == (LPI + 5, 0)                 # follows the move
    fd.fire()
    assert r.g.lpi_pending(0) == [LPI + 5]
    r.dev_ev(0x0F, 1, 0)                               # DISCARD
    assert r.g.lpi_pending(0) == []
    fd.trigger()                                       # a queued delivery: logged, not raised
    rt.drain()
    assert [x.errno_name for x in fd.errors] == ["ENOENT"] and "no longer mapped" in str(fd.errors[0])
    assert r.g.lpi_pending(0) == []
    assert any(e.what == "irqfd error" for e in m.trace.events)
    r.mapti(1, 0, LPI + 6, 0)                          # re-mapped elsewhere: still stale
    with pytest.raises(DeviceError, match="ESTALE"):
        fd.fire()
    fd.rebind()
    r.mapd(1, 4, ITT, v=0)                             # MAPD V=0
    with pytest.raises(DeviceError, match="ENOENT"):
        fd.fire()
    assert r.g.lpi_pending(0) == [] and r.g.lpi_pending(1) == []


def test_new_routing_table_rebinds_a_translate_once_irqfd(virt_its):
    m, r, rt = virt_its
    r.full(dev=2, ev=1, intid=LPI + 7, cpu=0)
    rt.set_routing([MsiRoute(6, r.its.doorbell, 0, 1)])
    fd = rt.irqfd(6, translate_once=True)
    rt.set_routing([MsiRoute(6, r.its.doorbell, 1, 2)])
    fd.fire()
    assert fd.target == (LPI + 7, 0) and r.g.lpi_pending(0) == [LPI + 7]
    rt.set_routing([IrqchipRoute(5, 1)])
    with pytest.raises(DeviceError, match="EINVAL"):
        rt.irqfd(5, translate_once=True)               # not an MSI route


# ---- threads and the round boundary --------------------------------------------------------------
def looping_virt():
    m, r = virt_with_its(smp=1)
    r.full(dev=1, ev=0, intid=LPI + 5, cpu=0)
    cpu = m.cpus[0]
    m.ram.write(cpu.pc, B_SELF.to_bytes(4, "little"))
    cpu.state = CpuState.RUNNING                        # IRQs masked at reset: it keeps looping
    rt = GsiRouting(m)
    rt.set_routing([MsiRoute(6, r.its.doorbell, 0, 1)])
    return m, r, rt


def test_trigger_from_another_thread_is_delivered_at_the_next_round_boundary():
    m, r, rt = looping_virt()
    fd = rt.irqfd(6)
    seen = []

    def until(mm):
        rnd = mm.insns // mm.quantum
        seen.append((rnd, r.g.lpi_pending(0)))
        if rnd == 3:                                   # queued from a host thread, during round 3's end
            t = threading.Thread(target=fd.trigger)
            t.start()
            t.join()
            assert rt.pending() == 1 and r.g.lpi_pending(0) == []
        return rnd == 6

    m.run(until=until, max_insns=10 * m.quantum)
    assert seen == [(1, []), (2, []), (3, []), (4, [LPI + 5]), (5, [LPI + 5]), (6, [LPI + 5])]
    assert not fd.errors and rt.pending() == 0


def test_asynchronous_trigger_lands_on_a_round_boundary():
    m, r, rt = looping_virt()
    fd = rt.irqfd(6, translate_once=True)
    hits = []
    orig = r.g.lpi_process

    def spy(cpu, irq, level):
        hits.append(m.insns)
        orig(cpu, irq, level)
    r.g.lpi_process = spy
    go = threading.Event()
    t = threading.Thread(target=lambda: (go.wait(), fd.trigger()))
    t.start()
    res = m.run(until=lambda mm: go.set() or bool(r.g.lpi_pending(0)), max_insns=100_000 * m.quantum)
    t.join()
    assert res.reason == "event" and r.g.lpi_pending(0) == [LPI + 5] and r.g.irq_level(0)
    # When it lands depends on the host; where it lands does not: between rounds.
    assert len(hits) == 1 and hits[0] % m.quantum == 0
    rt.close()
    assert rt.drain not in m.round_hooks


# ---- resample -----------------------------------------------------------------------------------
def test_resample_asserts_until_ack_then_calls_back(virt_its):
    m, r, rt = virt_its
    r.dist.mmio_write(0, 0x84, 4, 1 << (43 - 32))      # IGROUPR1: INTID 43 in Group 1
    r.dist.mmio_write(0, 0x104, 4, 1 << (43 - 32))     # ISENABLER1
    calls = []
    rt.set_routing([IrqchipRoute(7, 11), MsiRoute(6, r.its.doorbell, 0, 1)])
    fd = rt.irqfd(7, resample=True, on_resample=lambda: calls.append(spi_pending(r, 43)))
    fd.trigger()
    rt.drain()
    assert spi_pending(r, 43) and fd.asserted
    assert r.sr(0, "ICC_IAR1_EL1") == 43
    r.sw(0, "ICC_EOIR1_EL1", 43)                       # EOI: no notifier, the line stays high
    assert spi_pending(r, 43) and calls == []
    fd.ack()
    rt.drain()
    assert calls == [0] and not spi_pending(r, 43) and not fd.asserted
    # a plain irqfd on the same level SPI is a pulse: nothing stays pending
    plain = rt.irqfd(7)
    plain.fire()
    assert not spi_pending(r, 43)
    with pytest.raises(DeviceError, match="EINVAL"):
        rt.irqfd(6, resample=True)                     # MSI route
    with pytest.raises(DeviceError, match="EINVAL"):
        plain.ack()
    fd.fire()
    fd.close()                                         # deassign lowers the line
    assert not spi_pending(r, 43)
    fd.trigger()
    assert rt.pending() == 0


# ---- pseries -------------------------------------------------------------------------------------
def test_pseries_xics_msi_and_irqchip_routes():
    m = create_machine("pseries", smp=1)
    xics = m.board.active.xics
    word = 0 | 5 << 32                                 # server 0, priority 5
    xics.set_sources(0x1100, [word])                   # vty: MSI
    xics.set_sources(0x1200, [word | 1 << 40])         # PCI INTA: LSI
    xics.set_icp_state(0, IcpState(0xFF << 24, 0xFF, 0xFF))   # CPPR 0xff: accept everything
    rt = GsiRouting(m)
    rt.set_routing([MsiRoute(3, 0, 0x1100), IrqchipRoute(4, 0x1200)])
    fd = rt.irqfd(3, translate_once=True)
    assert fd.target == (0x1100, -1)
    fd.trigger()
    rt.drain()
    assert not fd.errors and xics.get_icp_state(0).xirr & 0xFF_FFFF == 0x1100
    rt.irq_line(4, 1)
    assert 0x1200 in m.board.irq.lines_high
    rt.irq_line(4, 0)
    assert 0x1200 not in m.board.irq.lines_high
    rt.set_routing([MsiRoute(3, 0, 0x5000)])           # no such source: XICS's error
    with pytest.raises(DeviceError, match="ENOENT"):
        rt.signal(3)
    rt.close()


# ---- coalescing, bounded queue, order (issue 15, item 3) ----------------------------------------
def spy_host(m):
    """Record every delivery reaching the board's IrqChipHost methods."""
    log, b = [], m.board
    for name in ("irqchip_set_pin", "signal_msi", "inject_translated"):
        orig = getattr(b, name)
        setattr(b, name, lambda *a, _o=orig, _n=name: (log.append((_n,) + a), _o(*a))[1])
    return log


@pytest.mark.parametrize("once", [False, True])
def test_triggers_before_a_drain_are_one_delivery_of_an_edge_msi(virt_its, once):
    m, r, rt = virt_its
    rt.set_routing([MsiRoute(6, r.its.doorbell, 0, 1)])
    fd = rt.irqfd(6, translate_once=once)
    log = spy_host(m)
    assert fd.trigger() is True                        # queued
    assert [fd.trigger() for _ in range(999)] == [False] * 999     # coalesced into it
    assert rt.pending() == 1
    assert rt.drain() == 1000                          # calls consumed ...
    assert len(log) == 1 and r.g.lpi_pending(1) == [LPI + 5]       # ... by one delivery
    assert rt.pending() == 0 and rt.drain() == 0
    assert (fd.triggers, fd.coalesced, fd.deliveries) == (1000, 999, 1)
    st = rt.stats()
    assert (st["calls"], st["coalesced"], st["deliveries"], st["drains"], st["queued"],
            st["max_queued"]) == (1000, 999, 1, 1, 0, 1)
    assert fd.trigger() is True                        # delivered: the next trigger queues again
    rt.drain()
    assert len(log) == 2 and fd.deliveries == 2
    fd.fire()                                          # synchronous: not queued, not counted
    assert len(log) == 3 and fd.deliveries == 2 and rt.stats()["calls"] == 1001


def test_coalescing_on_an_edge_spi_and_on_pseries():
    m, r, rt = looping_virt()
    rt.set_routing([IrqchipRoute(5, 10)])
    fd = rt.irqfd(5)
    log = spy_host(m)
    for _ in range(50):
        fd.trigger()
    rt.drain()
    assert log == [("irqchip_set_pin", 10, 1), ("irqchip_set_pin", 10, 0)]     # one pulse
    rt.close()
    m = create_machine("pseries", smp=1)
    xics = m.board.active.xics
    xics.set_sources(0x1100, [5 << 32])
    xics.set_icp_state(0, IcpState(0xFF << 24, 0xFF, 0xFF))
    rt = GsiRouting(m)
    rt.set_routing([MsiRoute(3, 0, 0x1100)])
    fd = rt.irqfd(3)
    log = spy_host(m)
    for _ in range(50):
        fd.trigger()
    rt.drain()
    assert log == [("signal_msi", 0, 0x1100, 0)] and not fd.errors
    assert xics.get_icp_state(0).xirr & 0xFF_FFFF == 0x1100
    rt.close()


def test_resample_trigger_and_ack_coalesce_in_order(virt_its):
    m, r, rt = virt_its
    calls = []
    rt.set_routing([IrqchipRoute(7, 11)])
    fd = rt.irqfd(7, resample=True, on_resample=lambda: calls.append(spi_pending(r, 43)))
    log = spy_host(m)
    for _ in range(5):
        fd.trigger()
    rt.drain()                                         # one assert
    assert log == [("irqchip_set_pin", 11, 1)] and fd.asserted and spi_pending(r, 43)
    del log[:]
    for _ in range(5):
        fd.ack()
    rt.drain()                                         # one resample
    assert log == [("irqchip_set_pin", 11, 0)] and calls == [0] and not fd.asserted
    del log[:]
    for op in (fd.trigger, fd.ack, fd.trigger, fd.trigger):   # -> ack, trigger
        op()
    assert fd._ops == ("ack", "trigger")
    rt.drain()
    assert log == [("irqchip_set_pin", 11, 0), ("irqchip_set_pin", 11, 1)]
    assert calls == [0, 0] and fd.asserted and spi_pending(r, 43)
    del log[:]
    for op in (fd.ack, fd.trigger, fd.ack, fd.trigger, fd.ack):   # -> trigger, ack
        op()
    assert fd._ops == ("trigger", "ack") and rt.pending() == 1
    rt.drain()
    assert log == [("irqchip_set_pin", 11, 1), ("irqchip_set_pin", 11, 0)]
    assert calls == [0, 0, 0] and not fd.asserted and not spi_pending(r, 43)
    assert fd.triggers == 5 + 3 + 2 and fd.deliveries == 1 + 1 + 2 + 2
    assert fd.coalesced == fd.triggers + 5 + 1 + 3 - fd.deliveries


def test_retrigger_during_a_drain_waits_for_the_next_one(virt_its):
    m, r, rt = virt_its
    rt.set_routing([IrqchipRoute(7, 11)])
    fd = rt.irqfd(7, resample=True)
    fd.on_resample = lambda: fd.trigger()              # the device still needs service
    fd.trigger()
    fd.ack()
    rt.drain()
    assert not fd.asserted and fd._ops == ("trigger",) and rt.pending() == 1
    rt.drain()
    assert fd.asserted and rt.pending() == 0


def test_close_drops_queued_work(virt_its):
    m, r, rt = virt_its
    rt.set_routing([MsiRoute(6, r.its.doorbell, 0, 1)])
    a, b = rt.irqfd(6), rt.irqfd(6)
    a.trigger()
    b.trigger()
    a.close()
    assert rt.pending() == 1 and a.trigger() is False
    assert rt.drain() == 1 and a.deliveries == 0 and b.deliveries == 1
    b.trigger()
    rt.close()
    assert rt.pending() == 0 and rt.drain() == 0


def test_queued_errors_are_bounded(virt_its):
    from vmachine.intc.msi_routing import ERRORS_KEPT
    m, r, rt = virt_its
    rt.set_routing([MsiRoute(6, r.its.doorbell, 9, 1)])     # event 9 is not mapped
    fd = rt.irqfd(6)
    for _ in range(ERRORS_KEPT + 10):
        fd.trigger()
        fd.trigger()
        rt.drain()
    assert len(fd.errors) == ERRORS_KEPT and fd.error_count == ERRORS_KEPT + 10
    assert {e.errno_name for e in fd.errors} == {"ENOENT"}


def test_drain_order_is_creation_order_whatever_the_arrival_order():
    """Triggers from threads arriving in any order: each drain delivers in
    irqfd creation order, so the same drain points give the same deliveries."""
    orders = set()
    for arrival in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        m, r = virt_with_its(smp=2)
        for k in range(4):
            r.full(dev=1, ev=k, intid=LPI + 10 + k, cpu=k % 2)
        rt = GsiRouting(m)
        rt.set_routing([MsiRoute(10 + k, r.its.doorbell, k, 1) for k in range(4)])
        fds = [rt.irqfd(10 + k, translate_once=k % 2 == 1) for k in range(4)]
        log = spy_host(m)
        for k in arrival:                              # one host thread per trigger, in this order
            t = threading.Thread(target=lambda fd=fds[k]: [fd.trigger() for _ in range(k + 1)])
            t.start()
            t.join()
        rt.drain()
        orders.add((tuple(log), tuple(r.g.lpi_pending(0)), tuple(r.g.lpi_pending(1))))
        rt.close()
    assert len(orders) == 1
    log = orders.pop()[0]
    assert [e[0] for e in log] == ["signal_msi", "inject_translated"] * 2
    assert [e[2] if e[0] == "signal_msi" else e[1] - LPI - 10 for e in log] == [0, 1, 2, 3]


def test_drain_limit_bounds_the_work_of_one_drain_round_robin(virt_its):
    m, r, rt = virt_its
    rt.drain_limit = 2
    rt.set_routing([IrqchipRoute(k, k) for k in range(5)])
    fds = [rt.irqfd(k) for k in range(5)]
    log = spy_host(m)

    def drained():
        rt.drain()
        pins = [e[1] for e in log if e[2] == 1]
        del log[:]
        return pins

    for fd in reversed(fds):
        fd.trigger()
    assert drained() == [0, 1] and rt.pending() == 3
    fds[0].trigger()
    assert drained() == [2, 3]                         # continues after the last one delivered
    fds[1].trigger()
    assert drained() == [4, 0] and rt.pending() == 1   # then wraps
    assert drained() == [1] and rt.pending() == 0
    st = rt.stats()
    assert st["deferred"] == 3 + 2 + 1 and st["max_queued"] == 5 and st["deliveries"] == 7
    with pytest.raises(DeviceError, match="EINVAL"):
        GsiRouting(m, drain_limit=0)


def test_trigger_storm_from_threads_keeps_the_queue_bounded_and_the_guest_running():
    """4 host threads call trigger()/ack() in a loop while the guest runs:
    the queue never holds more than one entry per irqfd, every call is
    accounted for (delivered or coalesced), and the guest runs every round."""
    m, r, rt = looping_virt()
    r.full(dev=1, ev=1, intid=LPI + 6, cpu=0)
    rt.set_routing([MsiRoute(6, r.its.doorbell, 0, 1), MsiRoute(7, r.its.doorbell, 1, 1),
                    IrqchipRoute(8, 3), IrqchipRoute(9, 4)])
    resampled = []
    fds = [rt.irqfd(6), rt.irqfd(7, translate_once=True), rt.irqfd(8),
           rt.irqfd(9, resample=True, on_resample=lambda: resampled.append(1))]
    cap = 200_000                                      # per thread: the old FIFO would hold them all
    warm = [threading.Event() for _ in fds]
    stop = threading.Event()
    made = [0] * len(fds)

    def hammer(i):
        fd, n = fds[i], 0
        ops = (fd.trigger, fd.ack) if fd.resample else (fd.trigger,)
        while n < cap and not stop.is_set():
            for op in ops:                             # a resample irqfd ends on an ack
                op()
            n += len(ops)
            if n >= 100:
                warm[i].set()
        warm[i].set()
        made[i] = n

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(fds))]
    for t in threads:
        t.start()
    for w in warm:
        w.wait()
    calls_before = rt.stats()["calls"]
    seen = []

    def sample(mm):
        seen.append(rt.pending())
        return False

    rounds = 100
    try:
        res = m.run(max_insns=m.insns + rounds * m.quantum, until=sample)
        calls_during = rt.stats()["calls"] - calls_before
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert res.reason == "max-insns" and len(seen) == rounds and m.insns == rounds * m.quantum
    assert max(seen) <= len(fds) and rt.stats()["max_queued"] <= len(fds)
    assert all(len(fd._ops) <= 2 for fd in fds)
    assert calls_before >= 4 * 100 and calls_during > 0
    rt.drain()                                         # what the threads left queued
    st = rt.stats()
    assert st["calls"] == sum(made) and st["queued"] == 0
    assert st["coalesced"] >= 3 * 99 + 98              # the warm-up calls met no drain
    for fd, n in zip(fds, made):
        assert not fd.errors and fd.deliveries <= st["drains"] * (2 if fd.resample else 1)
        assert fd.coalesced + fd.deliveries == n
    assert st["deliveries"] == sum(fd.deliveries for fd in fds) < sum(made)
    assert len(resampled) <= st["drains"]
    assert not fds[3].asserted                         # its last call was an ack
    assert r.g.lpi_pending(0) == [LPI + 5, LPI + 6]    # IRQs masked: the LPIs stay pending

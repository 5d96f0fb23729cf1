"""Fuzz (issue 15, property 4): the host APIs of the README (XICS, XIVE, GICv3,
ITS, GSI routing and irqfds, m.board.set_irq) with random and hostile
arguments (negative, huge, bool, float, None, str). Each call either

  * is refused with DeviceError / ValueError / TypeError and leaves the machine
    unchanged (m.save() byte for byte), or
  * is accepted: then its arguments were plain in-range numbers (a bool or a
    float is not a vCPU or source number), a get after a set returns what was
    set (nothing silently masked), and guest operations afterwards (hcalls,
    RTAS, ICC system registers, MMIO loads, a short run) never raise.

Plus irqfd triggers from several host threads: the queue is bounded (an edge
already pending coalesces). Profiles: see tests/fuzz_support.py."""
from __future__ import annotations

import threading

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz_support import (HOSTILE, fingerprint, fuzz_settings, gic_host, hcall, is_plain_int, its_host,
                          maybe_hostile, msi_routing, pseries, rtas, rtas_tokens, virt, xics_host,
                          xics_types, xive_host, xive_types, cas)
from vmachine.errors import DeviceError

REFUSALS = (DeviceError, ValueError, TypeError)
H_EOI, H_CPPR, H_IPI, H_IPOLL, H_XIRR = 0x64, 0x68, 0x6C, 0x70, 0x74
H_INT_GET_SOURCE_CONFIG, H_INT_GET_QUEUE_CONFIG = 0x3B0, 0x3BC
XIVE_TM_BASE = 0x0006_0302_0318_0000
XIVE_ESB_BASE = 0x0006_0100_0000_0000
SMP = 2


class Rejected(Exception):
    pass


def hostile_args(args) -> list:
    """Arguments that are not plain numbers (flattened one level)."""
    out = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out += [x for x in a if not is_plain_int(x)]
        elif not is_plain_int(a):
            out.append(a)
    return out


def call_api(m, name: str, fn, args: tuple, numbers: tuple, guest_ops, roundtrip=None) -> None:
    """One host call and the property. `numbers`: the arguments that must be
    plain ints for the call to be acceptable."""
    before = fingerprint(m)
    try:
        fn(*args)
    except REFUSALS as e:
        after = fingerprint(m)
        assert after == before, f"{name}{args!r} was refused ({type(e).__name__}: {e}) but changed the machine"
        return
    except Exception as e:      # noqa: BLE001 - the property: nothing else escapes
        raise AssertionError(f"{name}{args!r} raised {type(e).__name__}: {e}") from e
    bad = hostile_args(numbers)
    assert not bad, f"{name}{args!r} accepted non-numbers {bad!r} as numbers"
    if roundtrip is not None:
        roundtrip()
    try:
        guest_ops(m)
    except Exception as e:      # noqa: BLE001
        raise AssertionError(f"after {name}{args!r} was accepted, a guest operation raised "
                             f"{type(e).__name__}: {e}") from e


# ---- XICS ----------------------------------------------------------------------------------------
def xics_guest_ops(m) -> None:
    toks = rtas_tokens(m)
    for cpu in range(SMP):
        xirr = hcall(m, H_XIRR, cpu=cpu) and m.cpus[cpu].gpr(4)
        hcall(m, H_IPOLL, cpu=cpu)
        if xirr:
            hcall(m, H_EOI, xirr, cpu=cpu)
        hcall(m, H_CPPR, 0xFF, cpu=cpu)
    for src in (0x1000, 0x1100, 0x1200, 0x1203):
        rtas(m, toks["ibm,get-xive"], [src], 3)
        rtas(m, toks["ibm,int-on"], [src], 1)
    m.run(max_insns=2000)


XICS_NR = maybe_hostile(st.one_of(st.integers(0x1000, 0x1210), st.integers(0, 20), st.integers(0xFFFF0, 0x100010)))
XICS_WORD = maybe_hostile(st.one_of(
    st.tuples(st.integers(0, 3), st.integers(0, 0xFF), st.integers(0, 7)).map(
        lambda t: t[0] | t[1] << 32 | t[2] << 40),
    st.integers(0, (1 << 64) - 1)))
SERVER = maybe_hostile(st.integers(0, 3))
U32 = maybe_hostile(st.one_of(st.integers(0, 0xFF), st.integers(0, 0xFFFF_FFFF), st.integers(0x1000, 0x1203)))
LEVEL = st.one_of(st.integers(0, 1), st.booleans())


@st.composite
def xics_call(draw):
    kind = draw(st.sampled_from(["set_irq", "board_set_irq", "set_sources", "get_sources",
                                 "get_icp_state", "set_icp_state", "resend_all"]))
    if kind in ("set_irq", "board_set_irq"):
        return kind, (draw(XICS_NR), draw(LEVEL))
    if kind == "set_sources":
        return kind, (draw(XICS_NR), draw(st.lists(XICS_WORD, min_size=1, max_size=4)))
    if kind == "get_sources":
        return kind, (draw(XICS_NR), draw(maybe_hostile(st.integers(0, 4))))
    if kind == "get_icp_state":
        return kind, (draw(SERVER),)
    if kind == "set_icp_state":
        return kind, (draw(SERVER), draw(U32), draw(U32), draw(U32))
    return kind, ()


def do_xics(m, kind, args):
    x = xics_host(m)
    IcpState = xics_types()
    rt = None
    if kind == "set_irq":
        fn, nums = x.set_irq, args[:1]
    elif kind == "board_set_irq":
        fn, nums = m.board.set_irq, args[:1]
    elif kind == "set_sources":
        first, words = args
        fn, nums = x.set_sources, (first, words)

        def rt():
            assert x.get_sources(first, len(words)) == list(words), \
                f"set_sources({first:#x}, {words}) then get_sources gives {x.get_sources(first, len(words))}"
    elif kind == "get_sources":
        fn, nums = x.get_sources, args
    elif kind == "get_icp_state":
        fn, nums = x.get_icp_state, args
    elif kind == "set_icp_state":
        server, xirr, mfrr, pp = args
        st_ = IcpState(xirr, mfrr, pp)
        fn, nums, args = x.set_icp_state, args, (server, st_)

        def rt():
            got = x.get_icp_state(server)
            assert got == st_, f"set_icp_state({server}, {st_}) then get_icp_state gives {got}"
    else:
        fn, nums = x.resend_all, ()
    call_api(m, f"xics.{kind}", fn, args, nums, xics_guest_ops, rt)


@fuzz_settings(30)
@example(calls=[("set_sources", (0x1200, [5 << 32 | 1, 1 << 43]))])
@example(calls=[("set_icp_state", (0, 0, 0x100, 0))])
@given(calls=st.lists(xics_call(), min_size=1, max_size=6))
def test_xics_host_api(calls):
    m = pseries(smp=SMP, ram=16 << 20)
    for kind, args in calls:
        do_xics(m, kind, args)


# ---- XIVE ----------------------------------------------------------------------------------------
def xive_guest_ops(m) -> None:
    tima = m.mmio.find(XIVE_TM_BASE)
    for cpu in range(SMP):
        for lisn in (0, 1, 0x1000, 0x1100, 0x1200):
            hcall(m, H_INT_GET_SOURCE_CONFIG, 0, lisn, cpu=cpu)
        for prio in (0, 5, 6, 7):
            hcall(m, H_INT_GET_QUEUE_CONFIG, 0, cpu, prio, cpu=cpu)
        if tima is not None:
            tima.device.mmio_read(cpu, XIVE_TM_BASE - tima.base + 0x2_0000 + 0x810, 2)
    esb = m.mmio.find(XIVE_ESB_BASE)
    if esb is not None:
        for lisn in (0, 1, 0x1100):
            esb.device.mmio_read(0, (lisn << 17) + 0x1_0000 + 0x800, 8)
            esb.device.mmio_read(0, (lisn << 17) + 0x1_0000, 8)   # EOI
    m.run(max_insns=2000)


LISN = maybe_hostile(st.one_of(st.integers(0, 3), st.integers(0x1000, 0x1210), st.integers(0, 0x2100)))
EAS = maybe_hostile(st.one_of(
    st.tuples(st.booleans(), st.booleans(), st.one_of(st.integers(0, 20), st.integers(0, 0xFF_FFFF)),
              st.integers(0, 0x7FFF_FFFF)).map(lambda t: t[0] << 63 | t[1] << 31 | t[2] << 32 | t[3]),
    st.integers(0, (1 << 64) - 1)))
BYTE = maybe_hostile(st.integers(0, 0xFF), 0.1)


@st.composite
def xive_call(draw):
    kind = draw(st.sampled_from(["get_source", "set_source", "get_end", "set_end", "get_os_ring",
                                 "set_os_ring", "set_irq", "board_set_irq"]))
    if kind in ("get_source",):
        return kind, (draw(LISN),)
    if kind == "set_source":
        return kind, (draw(LISN), draw(maybe_hostile(st.integers(0, 3))), draw(st.booleans()),
                      draw(st.booleans()), draw(EAS))
    if kind == "get_end":
        return kind, (draw(maybe_hostile(st.integers(0, 20))),)
    if kind == "set_end":
        return kind, (draw(maybe_hostile(st.integers(0, 20))),
                      draw(st.one_of(
                          st.tuples(st.integers(0, 1), st.integers(0, 7), st.sampled_from([0, 12, 16]),
                                    st.integers(0, 15)).map(lambda t: ("make", t)),
                          st.lists(maybe_hostile(st.integers(0, 0xFFFF_FFFF), 0.1), min_size=7,
                                   max_size=9).map(lambda w: ("words", tuple(w))))))
    if kind == "get_os_ring":
        return kind, (draw(maybe_hostile(st.integers(0, 3))),)
    if kind == "set_os_ring":
        return kind, (draw(maybe_hostile(st.integers(0, 3))),
                      tuple(draw(st.lists(BYTE, min_size=8, max_size=8)))
                      + (draw(maybe_hostile(st.integers(0, 0xFFFF_FFFF))),))
    return kind, (draw(LISN), draw(LEVEL))


def do_xive(m, kind, args):
    x = xive_host(m)
    SourceState, EndState, OsRing, make_end = xive_types()
    rt = None
    nums = args
    if kind == "get_source":
        fn = x.get_source
    elif kind == "set_source":
        lisn, pq, lsi, asserted, eas = args
        state = SourceState(pq, lsi, asserted, eas)
        fn, args, nums = x.set_source, (lisn, state), (lisn, pq, eas)
    elif kind == "get_end":
        fn = x.get_end
    elif kind == "set_end":
        idx, (how, spec) = args
        if how == "make":
            vcpu, prio, qshift, page = spec
            end = make_end(vcpu, prio, qaddr=0x80_0000 + page * (1 << max(qshift, 12)), qshift=qshift)
            nums = (idx,)
        else:
            end = EndState(spec)
            nums = (idx, spec)
        fn, args = x.set_end, (idx, end)

        def rt():
            assert x.get_end(idx) == end
    elif kind == "get_os_ring":
        fn = x.get_os_ring
    elif kind == "set_os_ring":
        vcpu, fields = args
        ring = OsRing(*fields)
        fn, args, nums = x.set_os_ring, (vcpu, ring), (vcpu, fields)

        def rt():
            assert x.get_os_ring(vcpu) == ring
    elif kind == "set_irq":
        fn, nums = x.set_irq, args[:1]
    else:
        fn, nums = m.board.set_irq, args[:1]
    call_api(m, f"xive.{kind}", fn, args, nums, xive_guest_ops, rt)


def xive_machine():
    m = pseries(smp=SMP, ram=16 << 20)
    assert cas(m, xive=True) == 0
    return m


@fuzz_settings(30)
@example(calls=[("set_source", (0, 0, False, False, 1 << 63 | 1 << 31 | 0x1234 << 32))])
@example(calls=[("set_os_ring", (0, (0, 0, 0, 0, 0, 0, 0, 0, 0.5)))])
@given(calls=st.lists(xive_call(), min_size=1, max_size=6))
def test_xive_host_api(calls):
    m = xive_machine()
    for kind, args in calls:
        do_xive(m, kind, args)


# ---- GICv3 ---------------------------------------------------------------------------------------
ICC_IAR1, ICC_EOIR1, ICC_HPPIR1 = (3, 0, 12, 12, 0), (3, 0, 12, 12, 1), (3, 0, 12, 12, 2)


def gic_guest_ops(m) -> None:
    for c in m.cpus:
        rd, _ = c.sysregs[ICC_IAR1]
        intid = rd(c)
        c.sysregs[ICC_HPPIR1][0](c)
        if intid < 1020 or intid >= 8192:
            c.sysregs[ICC_EOIR1][1](c, intid)
    for base in (0x0800_0000, 0x080A_0000, 0x080A_0000 + 0x1_0000):
        r = m.mmio.find(base)
        for off in (0x0, 0x4, 0x8, 0x100, 0x200, 0x400):
            r.device.mmio_read(0, base - r.base + off, 4)
    m.run(max_insns=2000)


CPU = maybe_hostile(st.integers(0, SMP))


@st.composite
def gic_call(draw):
    kind = draw(st.sampled_from(["irq_line_spi", "irq_line_ppi", "ppi_line", "lpi_process", "lpi_pending",
                                 "sysregs", "set_dist_addr", "add_redist_region", "init"]))
    if kind == "irq_line_spi":
        return kind, (draw(maybe_hostile(st.integers(0, 300))), draw(LEVEL))
    if kind == "irq_line_ppi":
        return kind, (draw(maybe_hostile(st.integers(0, 40))), draw(LEVEL), draw(CPU))
    if kind == "ppi_line":
        return kind, (draw(CPU), draw(maybe_hostile(st.integers(10, 35))), draw(LEVEL))
    if kind == "lpi_process":
        return kind, (draw(CPU), draw(maybe_hostile(st.integers(8190, 8300))), draw(LEVEL))
    if kind in ("lpi_pending", "sysregs"):
        return kind, (draw(CPU),)
    if kind == "set_dist_addr":
        return kind, (draw(maybe_hostile(st.integers(0, 1 << 30).map(lambda v: v & ~0xFFFF))),)
    if kind == "add_redist_region":
        return kind, (draw(maybe_hostile(st.integers(0, 1 << 30).map(lambda v: v & ~0xFFFF))),
                      draw(maybe_hostile(st.integers(0, 8))))
    return kind, ()


def enable_lpis(m) -> None:
    """LPI tables in RAM and EnableLPIs on every redistributor (as a guest does)."""
    from test_fuzz_its import NLPI, PEND, PROP, IDBITS, gicr_write
    m.ram.write(PROP, bytes([0xA1]) * NLPI)
    for i in range(SMP):
        gicr_write(m, i, 0x70, PROP | IDBITS)
        gicr_write(m, i, 0x78, PEND + i * 0x1_0000)
        gicr_write(m, i, 0x0, 1, 4)


def do_gic(m, kind, args):
    g = gic_host(m)
    nums = args
    if kind == "irq_line_spi":
        fn, nums = g.irq_line, args[:1]
    elif kind == "irq_line_ppi":
        gsi, level, cpu = args
        # cpu=None is irq_line's documented default: the SPI form (gsi + 32).
        fn, args, nums = (lambda: g.irq_line(gsi, level, cpu=cpu)), (), \
            ((gsi,) if cpu is None else (gsi, cpu))
    elif kind == "ppi_line":
        cpu, intid, level = args
        fn, args, nums = (lambda: g.ppi_line(cpu, intid)(level)), (), (cpu, intid)
    elif kind == "lpi_process":
        fn, nums = g.lpi_process, args[:2]
    elif kind == "lpi_pending":
        fn = g.lpi_pending
    elif kind == "sysregs":
        fn = g.sysregs
    elif kind == "set_dist_addr":
        fn = g.set_dist_addr
    elif kind == "add_redist_region":
        fn = g.add_redist_region
    else:
        fn = (lambda: g.init(m.cpus))
    call_api(m, f"gic.{kind}", fn, args, nums, gic_guest_ops)


@fuzz_settings(30)
@example(calls=[("lpi_process", (SMP, 8192, 1))])
@example(calls=[("irq_line_ppi", (16, 1, False))])
@example(calls=[("irq_line_ppi", (0, 0, None))])     # found by the long profile: cpu=None is the SPI form
@given(calls=st.lists(gic_call(), min_size=1, max_size=6))
def test_gic_host_api(calls):
    m = virt(smp=SMP)
    enable_lpis(m)
    for kind, args in calls:
        do_gic(m, kind, args)


# ---- ITS and GSI routing ---------------------------------------------------------------------------
def its_machine():
    """virt with the ITS enabled, DeviceID 0..1 / EventID 0..3 mapped to LPIs 8192.. on both vCPUs."""
    from test_fuzz_its import CMDS, SCRATCH, setup, its_write
    m = virt(smp=SMP)
    n = setup(m, [], 0xA1, (SCRATCH + 0x4_0000, 1, False), (SCRATCH + 0x6_0000, 1, False), (SCRATCH + 0x8_0000, 1))
    cmds = [[CMDS["MAPC"], 0, 1 << 63 | 0 << 16 | 0, 0], [CMDS["MAPC"], 0, 1 << 63 | 1 << 16 | 1, 0]]
    for dev in (0, 1):
        cmds.append([CMDS["MAPD"] | dev << 32, 3, 1 << 63 | (SCRATCH + 0xA_0000 + dev * 0x1000), 0])
        for ev in range(4):
            cmds.append([CMDS["MAPTI"] | dev << 32, ev | (8192 + 4 * dev + ev) << 32, ev % 2, 0])
    for k, dw in enumerate(cmds):
        m.ram.write(SCRATCH + 0x8_0000 + 32 * k, b"".join(w.to_bytes(8, "little") for w in dw))
    its_write(m, 0x88, len(cmds) << 5)
    assert its_host(m).translate_msi(its_host(m).doorbell, 3, 1) == (8192 + 7, 1)
    return m


ADDR = maybe_hostile(st.one_of(st.just(0x0809_0040), st.integers(0, 1 << 32)))
DATA = maybe_hostile(st.integers(0, 5))


@st.composite
def msi_call(draw):
    kind = draw(st.sampled_from(["signal_msi", "translate_msi", "set_routing", "irq_line", "signal",
                                 "routing_signal_msi", "irqfd"]))
    if kind in ("signal_msi", "translate_msi", "routing_signal_msi"):
        return kind, (draw(ADDR), draw(DATA), draw(maybe_hostile(st.integers(0, 2))))
    if kind == "set_routing":
        entry = st.one_of(
            st.tuples(st.just("chip"), maybe_hostile(st.integers(0, 8)), maybe_hostile(st.integers(0, 300))),
            st.tuples(st.just("msi"), maybe_hostile(st.integers(0, 8)), ADDR, DATA,
                      maybe_hostile(st.integers(0, 2))),
            st.just(("junk",)))
        return kind, (draw(st.lists(entry, max_size=4)),)
    if kind in ("irq_line", "signal"):
        return kind, (draw(maybe_hostile(st.integers(0, 8))), draw(LEVEL))
    return kind, (draw(maybe_hostile(st.integers(0, 8))), draw(st.booleans()), draw(st.booleans()),
                  draw(st.sampled_from(["fire", "trigger", "ack"])))


def do_msi(m, routing, kind, args):
    GsiRouting, IrqchipRoute, MsiRoute = msi_routing()
    its = its_host(m)
    nums = args
    if kind == "signal_msi":
        fn = its.signal_msi
    elif kind == "translate_msi":
        fn = its.translate_msi
    elif kind == "routing_signal_msi":
        fn = routing.signal_msi
    elif kind == "set_routing":
        entries, flat = [], []
        for e in args[0]:
            if e[0] == "chip":
                entries.append(IrqchipRoute(e[1], e[2]))
                flat += e[1:]
            elif e[0] == "msi":
                entries.append(MsiRoute(e[1], e[2], e[3], e[4]))
                flat += e[1:]
            else:
                entries.append(("not", "a route"))
        fn, args, nums = routing.set_routing, (entries,), (flat,)
    elif kind == "irq_line":
        fn, nums = routing.irq_line, args[:1]
    elif kind == "signal":
        fn, args, nums = routing.signal, args[:1], args[:1]
    else:
        gsi, once, resample, op = args

        def fn():
            fd = routing.irqfd(gsi, translate_once=once, resample=resample)
            getattr(fd, op)()
            routing.drain()
        args, nums = (), (gsi,)
    call_api(m, f"msi.{kind}", fn, args, nums, gic_guest_ops)


@fuzz_settings(30)
@given(calls=st.lists(msi_call(), min_size=1, max_size=6))
def test_its_and_gsi_routing_host_api(calls):
    m = its_machine()
    GsiRouting = msi_routing()[0]
    routing = GsiRouting(m)
    for kind, args in calls:
        do_msi(m, routing, kind, args)


# ---- irqfd from several host threads ---------------------------------------------------------------
QUEUE_BOUND = 64        # per machine: far more than distinct triggers (2 here)


@pytest.mark.parametrize("threads,per_thread", [(4, 2000)])
def test_irqfd_triggers_from_threads_are_bounded(threads, per_thread):
    m = its_machine()
    GsiRouting, IrqchipRoute, MsiRoute = msi_routing()
    routing = GsiRouting(m)
    its = its_host(m)
    routing.set_routing([MsiRoute(0, its.doorbell, 0, 0), MsiRoute(1, its.doorbell, 3, 1)])
    fds = [routing.irqfd(0), routing.irqfd(1, translate_once=True)]
    errors: list[BaseException] = []

    def hammer(k):
        try:
            for i in range(per_thread):
                fds[(i + k) % 2].trigger()
        except BaseException as e:   # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=hammer, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    queued = routing.pending()
    before = routing.stats()["deliveries"]
    routing.drain()                       # returns the calls consumed, coalesced ones included
    delivered = routing.stats()["deliveries"] - before
    assert not any(fd.errors for fd in fds)
    assert sorted(gic_host(m).lpi_pending(0) + gic_host(m).lpi_pending(1)) == [8192, 8199]
    assert queued <= QUEUE_BOUND and delivered <= QUEUE_BOUND, (
        f"{threads} threads x {per_thread} trigger(): {queued} queued entries (bound {QUEUE_BOUND})")

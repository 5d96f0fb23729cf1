"""XICS model through its host interface (the KVM XICS device's attributes) and
its presentation rules, checked against QEMU 7.2's xics.c semantics."""
from __future__ import annotations

import pytest

from vmachine.errors import DeviceError
from vmachine.intc.xics import (BLOCK_SIZE, PRIO_MASKED, SRC_LEVEL_SENSITIVE, SRC_MASKED,
                                SRC_PENDING, SourceBlock, Xics, XICS_IPI, IcpState)


def fabric(servers=2):
    lines = {}
    x = Xics()
    for s in range(servers):
        lines[s] = False
        x.add_icp(s, lambda level, s=s: lines.__setitem__(s, level))
    return x, lines


def word(server, prio, lsi=False, masked=False, pending=False):
    return (server | prio << 32 | (SRC_LEVEL_SENSITIVE if lsi else 0)
            | (SRC_MASKED if masked else 0) | (SRC_PENDING if pending else 0))


# ---- 64-bit source encoding ---------------------------------------------------------------

@pytest.mark.parametrize("server", [0, 1, 0xFFFF_FFFF])
@pytest.mark.parametrize("prio", [0, 5, 0xFE])
@pytest.mark.parametrize("lsi", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_source_word_round_trip(server, prio, lsi, masked):
    x, _ = fabric(0)          # no presenters: nothing can be delivered, so state stays put
    w = word(server, prio, lsi, masked)
    x.set_sources(0x2000, [w])
    assert x.get_sources(0x2000, 1) == [w]


@pytest.mark.parametrize("lsi,masked", [(True, False), (True, True), (False, True), (False, False)])
def test_pending_bit_round_trip(lsi, masked):
    x, _ = fabric(0)
    w = word(3, 5, lsi, masked, pending=True)
    x.set_sources(0x2000, [w])
    assert x.get_sources(0x2000, 1) == [w]


def test_pending_msi_is_delivered_on_restore_when_a_presenter_takes_it():
    x, lines = fabric(1)
    x.set_cppr(x.icps[0], 0xFF)
    x.set_sources(0x2000, [word(0, 5, pending=True)])
    x.resend_all()
    assert lines[0] and x.icps[0].xisr == 0x2000
    assert x.get_sources(0x2000, 1) == [word(0, 5)]


def test_masked_word_keeps_priority_for_int_on():
    x, _ = fabric(1)
    x.set_sources(0x1234, [word(0, 6, masked=True)])
    server, prio, saved = x.read_xive(0x1234)
    assert (server, prio, saved) == (0, PRIO_MASKED, 6)


# ---- lazily created blocks ---------------------------------------------------------------------

def test_source_near_top_costs_one_block():
    x, _ = fabric(1)
    assert x.sources_memory() == 0
    x.set_sources(1_048_559, [word(0, 5)])
    assert len(x.blocks) == 1
    assert x.sources_memory() == SourceBlock.nbytes() < 16 * 1024
    assert x.get_sources(1_048_559, 1) == [word(0, 5)]
    x.set_sources(1_048_575, [word(0, 7)])                  # the last valid number, same block
    assert len(x.blocks) == 1


def test_range_spanning_two_blocks():
    x, _ = fabric(1)
    first = 3 * BLOCK_SIZE - 2
    x.set_sources(first, [word(0, p) for p in range(4)])
    assert len(x.blocks) == 2
    assert x.get_sources(first, 4) == [word(0, p) for p in range(4)]


# ---- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("nr", [0, 2, 15, 1 << 20, -1])
def test_reserved_and_out_of_range_numbers(nr):
    x, _ = fabric(1)
    with pytest.raises(DeviceError) as e:
        x.set_sources(nr, [word(0, 5)])
    assert e.value.errno_name == "EINVAL"
    assert ("reserved" in str(e.value)) or ("out of range" in str(e.value))


def test_get_on_a_range_not_all_present():
    x, _ = fabric(1)
    x.set_sources(0x3000, [word(0, 5)])
    with pytest.raises(DeviceError) as e:
        x.get_sources(0x3000, 2)
    assert e.value.errno_name == "ENOENT" and "0x3001" in str(e.value)


def test_unknown_bits_rejected_and_nothing_written():
    x, _ = fabric(1)
    with pytest.raises(DeviceError):
        x.set_sources(0x3000, [1 << 50])
    assert not x.exists(0x3000)


def test_set_sources_validates_the_whole_range_first():
    x, _ = fabric(1)
    with pytest.raises(DeviceError):
        x.set_sources((1 << 20) - 1, [word(0, 5), word(0, 5)])
    assert not x.exists((1 << 20) - 1)


def test_presenter_state_errors():
    x, _ = fabric(1)
    with pytest.raises(DeviceError):
        x.get_icp_state(7)
    with pytest.raises(DeviceError):
        x.set_icp_state(0, IcpState(xirr=0xFF00_4321, mfrr=0xFF, pending_priority=5))


def test_injection_into_missing_source():
    x, _ = fabric(1)
    with pytest.raises(DeviceError) as e:
        x.set_irq(0x4444, 1)
    assert e.value.errno_name == "ENOENT"


# ---- presentation rules (QEMU icp_*/ics_*) --------------------------------------------------------

def test_ipi_presented_only_below_cppr():
    x, lines = fabric(1)
    icp = x.icps[0]
    x.set_cppr(icp, 4)
    x.set_mfrr(icp, 4)
    assert icp.xisr == 0 and not lines[0]
    x.set_cppr(icp, 5)                                      # raising CPPR resends the IPI
    assert icp.xisr == XICS_IPI and icp.pending_priority == 4 and lines[0]
    assert x.accept(icp) == (5 << 24) | XICS_IPI
    assert icp.cppr == 4 and not lines[0]


def test_eoi_without_resetting_mfrr_fires_again():
    x, lines = fabric(1)
    icp = x.icps[0]
    x.set_cppr(icp, 0xFF)
    x.set_mfrr(icp, 4)
    xirr = x.accept(icp)
    x.eoi(icp, xirr)
    assert icp.xisr == XICS_IPI and lines[0]
    x.accept(icp)
    x.set_mfrr(icp, 0xFF)
    x.eoi(icp, xirr)
    assert icp.xisr == 0 and not lines[0]


def test_accept_with_nothing_pending_sets_cppr_ff():
    x, _ = fabric(1)
    icp = x.icps[0]
    x.set_cppr(icp, 5)
    assert x.accept(icp) == 5 << 24
    assert icp.cppr == 0xFF


def test_less_favoured_msi_is_rejected_then_resent_after_eoi():
    x, lines = fabric(1)
    icp = x.icps[0]
    x.set_sources(0x1300, [word(0, 3), word(0, 6)])
    x.set_cppr(icp, 0xFF)
    x.set_irq(0x1300, 1)
    x.set_irq(0x1301, 1)                                    # prio 6 loses to pending prio 3
    assert icp.xisr == 0x1300
    assert x.get_sources(0x1301, 1)[0] & SRC_PENDING
    xirr = x.accept(icp)
    assert icp.cppr == 3
    x.eoi(icp, xirr)                                        # CPPR back to 0xff, resend
    assert icp.xisr == 0x1301 and lines[0]


def test_more_favoured_msi_displaces_and_rejects_the_pending_one():
    x, _ = fabric(1)
    icp = x.icps[0]
    x.set_sources(0x1300, [word(0, 6), word(0, 2)])
    x.set_cppr(icp, 0xFF)
    x.set_irq(0x1300, 1)
    x.set_irq(0x1301, 1)
    assert icp.xisr == 0x1301
    assert x.get_sources(0x1300, 1)[0] & SRC_PENDING        # rejected, waiting for resend


def test_lsi_redelivered_after_eoi_while_asserted():
    x, lines = fabric(1)
    icp = x.icps[0]
    x.set_sources(0x1200, [word(0, 5, lsi=True)])
    x.set_cppr(icp, 0xFF)
    x.set_irq(0x1200, 1)
    xirr = x.accept(icp)
    assert xirr == (0xFF << 24) | 0x1200
    x.eoi(icp, xirr)
    assert icp.xisr == 0x1200 and lines[0]                  # line still high: again
    xirr = x.accept(icp)
    x.set_irq(0x1200, 0)
    x.eoi(icp, xirr)
    assert icp.xisr == 0 and not lines[0]


def test_msi_while_masked_is_remembered_until_unmasked():
    x, lines = fabric(1)
    icp = x.icps[0]
    x.set_sources(0x1300, [word(0, 5, masked=True)])
    x.set_cppr(icp, 0xFF)
    x.set_irq(0x1300, 1)
    assert not lines[0]
    _, _, saved = x.read_xive(0x1300)
    x.write_xive(0x1300, 0, saved, saved)                   # ibm,int-on
    assert icp.xisr == 0x1300 and lines[0]


def test_cppr_lowered_withdraws_the_pending_interrupt():
    x, lines = fabric(1)
    icp = x.icps[0]
    x.set_sources(0x1300, [word(0, 5)])
    x.set_cppr(icp, 0xFF)
    x.set_irq(0x1300, 1)
    x.set_cppr(icp, 5)                                      # 5 <= pending priority: withdrawn
    assert icp.xisr == 0 and not lines[0]
    x.set_cppr(icp, 0xFF)
    assert icp.xisr == 0x1300 and lines[0]


def test_presenter_state_round_trip():
    x, lines = fabric(2)
    x.set_sources(0x1300, [word(1, 5)])
    st = IcpState(xirr=(0x7 << 24) | 0x1300, mfrr=0x10, pending_priority=5)
    x.set_icp_state(1, st)
    assert x.get_icp_state(1) == st and lines[1]


def test_resend_cost_does_not_scan_all_sources():
    """A million configured sources: a resend visits only candidates."""
    x, _ = fabric(1)
    icp = x.icps[0]
    for base in range(16, 1 << 20, BLOCK_SIZE * 64):
        x.set_sources(base, [word(0, 5, masked=True)])
    x.set_sources(0x1300, [word(0, 6)])
    x.set_cppr(icp, 0xFF)
    visited = []
    orig = x._resend_one
    x._resend_one = lambda nr: (visited.append(nr), orig(nr))[1]
    x.set_irq(0x1300, 1)
    x.accept(icp)
    x.eoi(icp, 0xFF00_1300)
    assert len(visited) <= 2


def test_eoi_of_a_source_not_in_service_is_a_guest_error_but_still_sets_cppr():
    errors = []
    x = Xics(log_guest_error=lambda what, **k: errors.append((what, k)))
    x.add_icp(0, lambda level: None)
    x.set_sources(0x1300, [word(0, 5)])
    icp = x.icps[0]
    x.eoi(icp, 0x0700_1300)                                 # never presented
    assert icp.cppr == 7
    assert errors and errors[0][0] == "H_EOI of a source that is not in service"
    errors.clear()
    x.set_cppr(icp, 0xFF)
    x.set_irq(0x1300, 1)
    x.eoi(icp, x.accept(icp))                               # a real round trip: no error
    assert errors == []


# ---- declared migration state -----------------------------------------------------------------

def _busy_fabric():
    x, lines = fabric(2)
    x.create_range(0x1000, 0x100)
    x.set_sources(0x1010, [word(1, 5), word(0, 4, lsi=True, pending=True), word(0, 6, masked=True)])
    x.set_cppr(x.icps[1], 0xFF)
    x.set_irq(0x1010, 1)                      # presented to server 1
    x.set_mfrr(x.icps[0], 3)                  # an IPI on server 0
    x.set_cppr(x.icps[0], 0xFF)
    return x, lines


def test_state_round_trip_and_outputs():
    x, lines = _busy_fabric()
    sec = x.save_state()
    assert (sec["name"], sec["version"]) == ("xics", 2)
    assert sec["fields"]["ranges"] == [{"first": 0x1000, "count": 0x100}]
    assert [s["nr"] for s in sec["fields"]["sources"]] == [0x1010, 0x1011, 0x1012]
    y, ylines = fabric(2)
    y.load_state({"xics": sec})
    assert y.save_state() == sec and ylines == lines == {0: True, 1: True}
    assert y.icps[1].owner == 0x1010 and y.icps[0].owner is None
    assert y.get_sources(0x1000, 0x20) == x.get_sources(0x1000, 0x20)


def test_version_1_snapshot_is_refused_naming_the_version():
    from vmachine.state import StateError
    x, _ = fabric(1)
    old = {"name": "xics", "version": 1,
           "fields": {"active": True, "sources": [[0x1000, 0, 255, 255, 0, 1]], "icps": []}}
    with pytest.raises(StateError) as e:
        x.load_state({"xics": old})
    assert "version 1" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("damage", [
    lambda f: f["ranges"].append({"first": 0x8, "count": 4}),                   # reserved
    lambda f: f["ranges"].append({"first": 0x1080, "count": 4}),                # overlaps
    lambda f: f["sources"].append(dict(f["sources"][0], nr=0x2000)),            # not in a range
    lambda f: f["sources"].append(dict(f["sources"][0])),                       # twice
    lambda f: f["sources"][0].update(type="edge"),
    lambda f: f["sources"][0].update(priority=0x100),
    lambda f: f["icps"].pop(),                                      # a presenter missing
    lambda f: f["icps"][1].update(xirr=0xFF00_3000),                            # XISR not a source
])
def test_bad_state_is_refused_before_anything_changes(damage):
    import copy
    from vmachine.state import StateError
    x, _ = _busy_fabric()
    sec = copy.deepcopy(x.save_state())
    damage(sec["fields"])
    y, ylines = fabric(2)
    y.create_source(0x3000, lsi=True)
    before = y.save_state()
    with pytest.raises(StateError):
        y.load_state({"xics": sec})
    assert y.save_state() == before and ylines == {0: False, 1: False}


# ---- hostile host calls: refused before anything changes (issue 15, item 4) ---------------------
# Every refusal is a DeviceError, and the fabric (sources, presenters, output lines) is unchanged.

BAD_INTS = [-1, 1 << 64, True, False, 1.0, 0.5, None, "16", b"\x10", [16]]
BAD_NUMBERS = BAD_INTS + [0, 2, 15, 1 << 20]           # + reserved and out-of-range sources
BAD_SERVERS = [-1, 1 << 32, True, 1.0, None, "0"]
BAD_FLAGS = [2, -1, 0.5, 1.0, None, "1"]


def _state(x, lines):
    return x.save_state(), dict(lines), sorted(x.icps), {s: i.output for s, i in x.icps.items()}


def _refused(x, lines, call, errno=None):
    before = _state(x, lines)
    with pytest.raises(DeviceError) as e:
        call()
    assert _state(x, lines) == before
    if errno:
        assert e.value.errno_name == errno
    return e.value


@pytest.mark.parametrize("nr", BAD_NUMBERS + [0x4444])
def test_hostile_set_irq_source(nr):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.set_irq(nr, 1))


@pytest.mark.parametrize("level", BAD_FLAGS)
def test_hostile_set_irq_level(level):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.set_irq(0x1011, level), "EINVAL")


@pytest.mark.parametrize("first", BAD_NUMBERS + [(1 << 20) - 1])
def test_hostile_set_sources_first(first):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.set_sources(first, [word(0, 5), word(1, 5)]), "EINVAL")


@pytest.mark.parametrize("values", [
    None, 5, "ab", b"\x00" * 8, {0x1010: 0}, iter([0]),
    [-1], [1 << 43], [1 << 63], [1 << 64], [True], [1.0], [None], ["5"],
    [word(0, 0xFF)],                                     # priority 0xff without MASKED
    [word(1, 6), word(0, 5), 1 << 50],                   # the bad word last: nothing written
])
def test_hostile_set_sources_words(values):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.set_sources(0x1010, values), "EINVAL")


def test_set_sources_reproducer_changes_nothing_when_a_later_word_is_bad():
    """set_sources(0x1200, [5<<32|1, 1<<43]) used to turn 0x1200 into an MSI
    routed to server 1 before refusing the second word."""
    x, lines = fabric(2)
    x.create_range(0x1000, 0x1000)
    x.create_source(0x1200, lsi=True)
    x.create_source(0x1201, lsi=True)
    before = x.get_sources(0x1200, 2)
    _refused(x, lines, lambda: x.set_sources(0x1200, [5 << 32 | 1, 1 << 43]), "EINVAL")
    assert x.get_sources(0x1200, 2) == before


@pytest.mark.parametrize("first,count", [(f, 1) for f in BAD_NUMBERS]
                         + [(0x1010, c) for c in (-1, True, 1.5, None, "1", 1 << 21)]
                         + [(0x1010, 0x100), ((1 << 20) - 1, 2)])
def test_hostile_get_sources(first, count):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.get_sources(first, count))


@pytest.mark.parametrize("server", BAD_SERVERS + [7])
def test_hostile_icp_server(server):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.get_icp_state(server))
    _refused(x, lines, lambda: x.set_icp_state(server, IcpState(0xFF << 24, 0xFF, 0xFF)))


@pytest.mark.parametrize("state", [
    None, (0xFF << 24, 0xFF, 0xFF), 0,
    IcpState(1 << 32, 0xFF, 0xFF), IcpState(-1, 0xFF, 0xFF), IcpState(True, 0xFF, 0xFF),
    IcpState(1.0, 0xFF, 0xFF), IcpState(None, 0xFF, 0xFF),
    IcpState(0xFF << 24, 0x100, 0xFF), IcpState(0xFF << 24, -1, 0xFF),
    IcpState(0xFF << 24, True, 0xFF),
    IcpState(0xFF << 24, 0xFF, 0x1FF), IcpState(0xFF << 24, 0xFF, 0.5),
    IcpState(0xFF00_4321, 0xFF, 5),                      # XISR names no source
    IcpState(0xFF00_0001, 0xFF, 5),                      # a reserved number
    IcpState(0xFF00_0000, 0xFF, 5),                      # nothing presented, priority 5
    IcpState(0xFF00_1010, 0xFF, 0xFF),                   # presented at priority 0xff
    IcpState(0xFF00_0002, 0x10, 0xFF),
])
def test_hostile_set_icp_state(state):
    """Fields wider than their register are refused, not masked."""
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.set_icp_state(0, state), "EINVAL")


@pytest.mark.parametrize("server,output", [(s, lambda level: None) for s in BAD_SERVERS]
                         + [(0, lambda level: None), (5, None), (5, 5)])
def test_hostile_add_icp(server, output):
    x, lines = _busy_fabric()
    e = _refused(x, lines, lambda: x.add_icp(server, output))
    assert e.errno_name == ("EEXIST" if server == 0 and output else "EINVAL")


@pytest.mark.parametrize("args", [(nr,) for nr in BAD_NUMBERS]
                         + [(0x2000, f) for f in BAD_FLAGS]
                         + [(0x2000, False, f) for f in BAD_FLAGS])
def test_hostile_create_source(args):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.create_source(*args), "EINVAL")


@pytest.mark.parametrize("first,count", [(f, 1) for f in BAD_NUMBERS]
                         + [(0x2000, c) for c in (-1, True, 1.5, None)] + [((1 << 20) - 4, 8)])
def test_hostile_create_range(first, count):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.create_range(first, count), "EINVAL")


@pytest.mark.parametrize("args", [(0x4444, 0, 5, 5), (2, 0, 5, 5), (True, 0, 5, 5),
                                  (0x1010, -1, 5, 5), (0x1010, 1 << 32, 5, 5),
                                  (0x1010, True, 5, 5), (0x1010, 0, 0x100, 5),
                                  (0x1010, 0, 5, -1), (0x1010, 0, 5.0, 5), (0x1010, 0, None, 5)])
def test_hostile_write_read_xive(args):
    x, lines = _busy_fabric()
    _refused(x, lines, lambda: x.write_xive(*args))
    if args[0] in (0x4444, 2, True):
        _refused(x, lines, lambda: x.read_xive(args[0]))


def test_hostile_constructor_and_queries():
    with pytest.raises(DeviceError):
        Xics(log_guest_error=None)
    with pytest.raises(DeviceError):
        Xics(log_event=5)
    x, _ = _busy_fabric()
    assert x.icp(True) is None and x.icp(1.0) is None and x.icp("1") is None
    assert x.icp(1) is x.icps[1]
    assert not x.exists(True) and not x.exists(0x1010 + 0.0) and not x.exists(None)
    assert x.exists(0x1010)
    for nr in BAD_NUMBERS:
        with pytest.raises(DeviceError):
            x.check_number(nr)
    assert x.check_number(0x1010) == 0x1010


def test_valid_host_calls_still_accepted_at_their_limits():
    x, lines = fabric(1)
    x.add_icp(0xFFFF_FFFF, lambda level: None)
    x.set_sources(FIRST, [word(0xFFFF_FFFF, 0xFE), word(0, 0xFF, masked=True),
                          word(0, 0, lsi=True)])
    assert x.get_sources(FIRST, 3) == [word(0xFFFF_FFFF, 0xFE), word(0, 0xFF, masked=True),
                                       word(0, 0, lsi=True)]
    x.set_sources((1 << 20) - 1, (word(0, 5),))
    x.set_sources(0x3000, [])
    assert x.get_sources(0x3000, 0) == []
    x.set_irq(FIRST, True)
    x.set_irq(FIRST + 2, 1)
    x.set_irq(FIRST + 2, False)
    x.set_icp_state(0, IcpState(0, 0, 0xFF))
    x.set_icp_state(0, IcpState(0xFFFF_FFFF & ~0xFF_FFFF | 2, 0xFF, 0))
    assert x.get_icp_state(0) == IcpState(0xFF00_0002, 0xFF, 0) and lines[0]


FIRST = 16


def test_guest_calls_never_raise_after_accepted_host_state():
    """Extreme but accepted host state, then every XICS hcall and RTAS call
    with assorted arguments: architected answers, never an exception."""
    from vmachine import create_machine
    from vmachine.boards.spapr_rtas import RtasCall
    from vmachine.intc.xics_spapr import H_CPPR, H_EOI, H_IPI, H_IPOLL, H_XIRR, H_XIRR_X
    m = create_machine("pseries", smp=2)
    sx = m.board.intcs["xics"]
    x = sx.xics
    if not sx.active:
        sx.activate()
    x.set_sources(0x1000, [word(0xFFFF_FFFF, 0), word(1, 0xFE, lsi=True, pending=True),
                           word(7, 0xFF, masked=True, pending=True), word(0, 1, pending=True)])
    x.set_sources((1 << 20) - 2, [word(1, 3, pending=True),
                                  word(0xFFFF_FFFF, 0xFF, True, True, True)])
    x.set_icp_state(0, IcpState(0x0000_1003, 0, 1))
    x.set_icp_state(1, IcpState(0x0100_0002, 0, 0))
    x.resend_all()
    c = m.cpus[0]
    vals = [0, 1, 2, 0xFF, 0x1000, 0x1003, (1 << 20) - 1, 0xFFFF_FFFF, (1 << 64) - 1]
    for nr in (H_CPPR, H_EOI, H_IPI, H_IPOLL, H_XIRR, H_XIRR_X):
        for a in vals:
            for b in (0, 5, 0xFF, (1 << 64) - 1):
                c.set_gpr(3, nr)
                c.set_gpr(4, a)
                c.set_gpr(5, b)
                m.board.firmware_call(c)
    for fn, nargs, nret in ((sx.rtas_set_xive, 3, 1), (sx.rtas_get_xive, 1, 3),
                            (sx.rtas_int_off, 1, 1), (sx.rtas_int_on, 1, 1)):
        for nr in (0, 2, 0x1000, 0x1001, 0x1002, (1 << 20) - 1, 0xFFFF_FFFF):
            for server in (0, 1, 2, 0xFFFF_FFFF):
                for prio in (0, 0xFE, 0xFF, 0x100, 0xFFFF_FFFF):
                    call = RtasCall(c, nargs, nret, [nr, server, prio][:nargs], [None] * nret)
                    fn(call)
                    assert call.rets[0] is not None
    x.resend_all()

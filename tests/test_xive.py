"""XIVE (sPAPR exploitation mode) model and pseries glue, checked against QEMU
7.2's hw/intc/xive.c and spapr_xive.c semantics and the crib sheet (section 6)."""
from __future__ import annotations

import pytest

from vmachine import create_machine
from vmachine.boards.spapr_cas import OptionVector
from vmachine.errors import ConfigError, DeviceError
from vmachine.intc.xive import (ALL_ONES, PQ_OFF, PQ_PENDING, PQ_QUEUED, PQ_RESET, EndState,
                                OsRing, SourceState, Xive, ipb_to_pipr, priority_to_ipb)
from vmachine.intc.xive_spapr import (H_FUNCTION, H_HARDWARE, H_INT_ESB, H_INT_GET_OS_REPORTING_LINE,
                                      H_INT_GET_QUEUE_CONFIG, H_INT_GET_QUEUE_INFO,
                                      H_INT_GET_SOURCE_CONFIG, H_INT_GET_SOURCE_INFO, H_INT_RESET,
                                      H_INT_SET_OS_REPORTING_LINE, H_INT_SET_QUEUE_CONFIG,
                                      H_INT_SET_SOURCE_CONFIG, H_INT_SYNC, H_P2, H_P3, H_P4, H_P5,
                                      H_PARAMETER, H_SUCCESS, SPAPR_XIVE_TM_BASE,
                                      SPAPR_XIVE_VC_BASE)

ALL_HCALLS = (H_INT_GET_SOURCE_INFO, H_INT_SET_SOURCE_CONFIG, H_INT_GET_SOURCE_CONFIG,
              H_INT_GET_QUEUE_INFO, H_INT_SET_QUEUE_CONFIG, H_INT_GET_QUEUE_CONFIG,
              H_INT_SET_OS_REPORTING_LINE, H_INT_GET_OS_REPORTING_LINE, H_INT_ESB, H_INT_SYNC,
              H_INT_RESET)
MASK64 = (1 << 64) - 1
QPAGE = 0x0100_0000            # a 64K-aligned page in guest RAM


# ---- helpers ------------------------------------------------------------------------------------

def machine(smp=2):
    """A pseries machine with XIVE selected, as after CAS chose 0x40."""
    m = create_machine("pseries", smp=smp)
    m.board.cas.apply(OptionVector(bytes(22) + b"\x40"))    # the board's CAS switch
    return m, m.board.active


def hcall(m, nr, *args, cpu=0):
    c = m.cpus[cpu]
    c.set_gpr(3, nr)
    for i in range(9):
        c.set_gpr(4 + i, (args[i] if i < len(args) else 0) & MASK64)
    m.board.firmware_call(c)
    status = c.gpr(3)
    return status - (1 << 64) if status >> 63 else status, [c.gpr(4 + i) for i in range(4)]


def errors(m):
    return [e for e in m.trace.events if e.kind == "guest-error"]


def mgmt(lisn, off):
    return (lisn << 17) + 0x10000 + off


def trig(lisn, off=0):
    return (lisn << 17) + off


def route(m, lisn, target, prio, eisn, qshift=16, notify=True):
    assert hcall(m, H_INT_SET_QUEUE_CONFIG, 1 if notify else 0, target, prio,
                 QPAGE + target * 0x10000 if qshift else 0, qshift)[0] == H_SUCCESS
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 2, lisn, target, prio, eisn)[0] == H_SUCCESS


def qword(m, target, n):
    return m.ram.read_int(QPAGE + target * 0x10000 + 4 * n, 4, "big")


class Ram:
    def __init__(self, size=1 << 20):
        self.buf = bytearray(size)

    def contains(self, addr, length=1):
        return 0 <= addr and addr + length <= len(self.buf)

    def write(self, addr, data):
        self.buf[addr:addr + len(data)] = data


def model(lsi=False):
    errs = []
    x = Xive(64, [0, 1], Ram(), lambda what, **k: errs.append(what))
    x.claim(5, lsi=lsi)
    return x, errs


# ---- PQ state machine ---------------------------------------------------------------------------

@pytest.mark.parametrize("pq,new,fwd", [(PQ_RESET, PQ_PENDING, True), (PQ_PENDING, PQ_QUEUED, False),
                                        (PQ_QUEUED, PQ_QUEUED, False), (PQ_OFF, PQ_OFF, False)])
def test_msi_trigger_table(pq, new, fwd):
    x, _ = model()
    x.esb_set(5, pq)
    assert x.source_trigger(5) is fwd and x.esb_get(5) == new


@pytest.mark.parametrize("pq,new,fwd", [(PQ_RESET, PQ_RESET, False), (PQ_PENDING, PQ_RESET, False),
                                        (PQ_QUEUED, PQ_PENDING, True), (PQ_OFF, PQ_OFF, False)])
def test_msi_eoi_table(pq, new, fwd):
    x, _ = model()
    x.esb_set(5, pq)
    assert x.source_eoi(5) is fwd and x.esb_get(5) == new


@pytest.mark.parametrize("pq,new,fwd", [(PQ_RESET, PQ_PENDING, True), (PQ_PENDING, PQ_PENDING, False),
                                        (PQ_QUEUED, PQ_QUEUED, False), (PQ_OFF, PQ_OFF, False)])
def test_lsi_assert_table(pq, new, fwd):
    x, _ = model(lsi=True)
    x.esb_set(5, pq)
    assert x._lsi_trigger(5) is fwd and x.esb_get(5) == new
    assert x.get_source(5).asserted


@pytest.mark.parametrize("pq,asserted,new,fwd", [
    (PQ_PENDING, False, PQ_RESET, False), (PQ_PENDING, True, PQ_PENDING, True),
    (PQ_RESET, True, PQ_PENDING, True), (PQ_QUEUED, False, PQ_PENDING, True),
    (PQ_OFF, True, PQ_OFF, False)])
def test_lsi_eoi_table(pq, asserted, new, fwd):
    x, _ = model(lsi=True)
    x.set_source(5, SourceState(pq, True, asserted, x.eat[5]))
    assert x.source_eoi(5) is fwd and x.esb_get(5) == new


def test_lsi_trigger_store_queues_and_reports():
    x, errs = model(lsi=True)
    x.esb_set(5, PQ_PENDING)
    assert x.source_trigger(5) is False and x.esb_get(5) == PQ_QUEUED
    assert errs == ["XIVE: queued an event on LSI"]


def test_lsi_level_low_clears_asserted():
    x, _ = model(lsi=True)
    x.esb_set(5, PQ_RESET)
    x.set_irq(5, 1)
    x.set_irq(5, 0)
    assert not x.get_source(5).asserted and x.esb_get(5) == PQ_PENDING
    assert x.source_eoi(5) is False and x.esb_get(5) == PQ_RESET


def test_ipb_pipr_helpers():
    assert [priority_to_ipb(p) for p in (0, 6, 7, 8, 0xFF)] == [0x80, 0x02, 0x01, 0, 0]
    assert ipb_to_pipr(0) == 0xFF and ipb_to_pipr(0x02) == 6 and ipb_to_pipr(0x82) == 0


# ---- ESB pages ------------------------------------------------------------------------------------

@pytest.fixture
def mx():
    return machine()


def test_esb_management_loads(mx):
    m, x = mx
    esb, xv = x.esb_device, x.xive
    assert xv.esb_get(0) == PQ_OFF                               # reset: off
    assert esb.mmio_read(0, mgmt(0, 0xC00), 8) == PQ_OFF        # returns old, sets 00
    assert xv.esb_get(0) == PQ_RESET
    for off, pq in ((0xD00, 1), (0xE00, 2), (0xF00, 3), (0xCFF, 0), (0xEF8, 2)):
        old = xv.esb_get(0)
        assert esb.mmio_read(0, mgmt(0, off), 8) == old and xv.esb_get(0) == pq
    assert esb.mmio_read(0, mgmt(0, 0x800), 8) == 2 and esb.mmio_read(0, mgmt(0, 0xBF8), 8) == 2
    xv.esb_set(0, PQ_QUEUED)
    assert esb.mmio_read(0, mgmt(0, 0x000), 8) == 1 and xv.esb_get(0) == PQ_PENDING
    assert esb.mmio_read(0, mgmt(0, 0x7F8), 8) == 0 and xv.esb_get(0) == PQ_RESET
    xv.esb_set(0, PQ_QUEUED)
    assert esb.mmio_read(0, mgmt(0, 0x400), 8) == 1               # 0x400..0x7ff loads EOI too
    assert esb.mmio_read(0, mgmt(0, 0x1000 + 0x800), 8) == PQ_PENDING   # offset taken mod 4K
    assert not errors(m)


def test_esb_management_stores(mx):
    m, x = mx
    esb, xv = x.esb_device, x.xive
    for off, pq in ((0xC00, 0), (0xD08, 1), (0xE00, 2), (0xF00, 3)):
        esb.mmio_write(0, mgmt(0, off), 8, 0)
        assert xv.esb_get(0) == pq
    xv.esb_set(0, PQ_RESET)
    esb.mmio_write(0, mgmt(0, 0x000), 8, 0)                       # trigger
    assert xv.esb_get(0) == PQ_PENDING
    esb.mmio_write(0, mgmt(0, 0x3F8), 8, 0)
    assert xv.esb_get(0) == PQ_QUEUED
    n = len(errors(m))
    esb.mmio_write(0, mgmt(0, 0x400), 8, 0)                       # no store EOI on sPAPR
    assert xv.esb_get(0) == PQ_QUEUED and len(errors(m)) == n + 1
    assert "Store EOI" in errors(m)[-1].what


def test_esb_trigger_page(mx):
    m, x = mx
    esb, xv = x.esb_device, x.xive
    xv.esb_set(1, PQ_RESET)
    for off in (0, 0x400, 0x800, 0xC00, 0xFF8):
        esb.mmio_write(0, trig(1, off), 8, 0)                     # any store triggers
    assert xv.esb_get(1) == PQ_QUEUED
    assert esb.mmio_read(0, trig(1, 0xC00), 8) == ALL_ONES        # loads: -1, no effect
    assert xv.esb_get(1) == PQ_QUEUED and "trigger page" in errors(m)[-1].what


@pytest.mark.parametrize("size", [1, 2, 4])
def test_esb_other_sizes_raz_wi(mx, size):
    m, x = mx
    esb, xv = x.esb_device, x.xive
    xv.esb_set(0, PQ_QUEUED)
    assert esb.mmio_read(0, mgmt(0, 0xC00), size) == 0
    esb.mmio_write(0, mgmt(0, 0xC00), size, 0)
    esb.mmio_write(0, trig(0), size, 0)
    assert xv.esb_get(0) == PQ_QUEUED
    assert len(errors(m)) == 3 and all("size" in e.what for e in errors(m))


def test_esb_inject_store_forwards_without_pq(mx):
    m, x = mx
    route(m, 0, 0, 6, 0x77)
    x.xive.esb_set(0, PQ_OFF)
    x.esb_device.mmio_write(0, mgmt(0, 0x800), 8, 0)
    assert x.xive.esb_get(0) == PQ_OFF and qword(m, 0, 0) == 0x8000_0077


# ---- routing, queue, presenter ---------------------------------------------------------------------

def tima_read(x, cpu, off, size, page=2):
    return x.tima_device.mmio_read(cpu, (page << 16) + off, size)


def tima_write(x, cpu, off, size, value, page=2):
    x.tima_device.mmio_write(cpu, (page << 16) + off, size, value)


def test_route_ipi_to_cpu1_and_ack(mx):
    m, x = mx
    route(m, 1, 1, 6, 0x1234)
    x.esb_device.mmio_read(1, mgmt(1, 0xC00), 8)                  # unmask (PQ 00)
    tima_write(x, 1, 0x11, 1, 0xFF)                               # CPPR 0xff
    x.esb_device.mmio_write(0, trig(1), 8, 0)                     # cpu0 sends the IPI
    assert qword(m, 1, 0) == 0x8000_1234
    assert m.cpus[1].irq_line and not m.cpus[0].irq_line
    assert tima_read(x, 1, 0x10, 4) == 0x80FF02FF                 # NSR EO, CPPR, IPB bit 6, LSMFB
    assert tima_read(x, 1, 0x10, 8) == 0x80FF02FF_FF000006        # ACK#, INC, AGE (0), PIPR 6
    assert tima_read(x, 1, 0x810, 2) == 0x8006                    # ack: old NSR, new CPPR
    assert not m.cpus[1].irq_line
    r = x.xive.get_os_ring(1)
    assert (r.nsr, r.cppr, r.ipb, r.pipr) == (0, 6, 0, 0xFF)
    assert tima_read(x, 1, 0x810, 2) == 0x0006                    # nothing pending
    assert x.esb_device.mmio_read(1, mgmt(1, 0), 8) == 0          # EOI: P was set, Q clear
    assert x.xive.esb_get(1) == PQ_RESET
    tima_write(x, 1, 0x11, 1, 0xFF)
    assert not m.cpus[1].irq_line


def test_cppr_gates_delivery_and_values_above_7(mx):
    m, x = mx
    route(m, 0, 0, 5, 9)
    x.xive.esb_set(0, PQ_RESET)
    assert x.xive.get_os_ring(0).cppr == 0                        # reset CPPR 0 masks all
    x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert not m.cpus[0].irq_line and x.xive.get_os_ring(0).ipb == 0x04
    tima_write(x, 0, 0x11, 1, 5)                                  # 5 is not < 5
    assert not m.cpus[0].irq_line
    tima_write(x, 0, 0x11, 1, 8)                                  # > 7 becomes 0xff
    assert x.xive.get_os_ring(0).cppr == 0xFF and m.cpus[0].irq_line


def test_ipb_store_sets_pending(mx):
    m, x = mx
    tima_write(x, 0, 0x11, 1, 0xFF)
    tima_write(x, 0, 0x812, 1, 3)
    r = x.xive.get_os_ring(0)
    assert r.ipb == 0x10 and r.pipr == 3 and r.nsr == 0x80 and m.cpus[0].irq_line
    tima_write(x, 0, 0x812, 1, 1)
    assert tima_read(x, 0, 0x810, 2) == 0x8001                    # most favoured first
    assert x.xive.get_os_ring(0).pipr == 3


def test_tima_invalid_accesses(mx):
    m, x = mx
    assert tima_read(x, 0, 0x10, 2) == ALL_ONES                   # raw loads need 4/8 bytes
    assert tima_read(x, 0, 0x18, 4) == ALL_ONES                   # word2 not visible from OS page
    assert tima_read(x, 0, 0x00, 4) == ALL_ONES                   # user ring excluded
    assert tima_read(x, 0, 0x830, 2) == ALL_ONES                  # HV ack not from OS page
    before = x.xive.get_tctx_regs(0)
    tima_write(x, 0, 0x10, 4, 0xFFFF_FFFF)                        # OS page: only CPPR is writable
    assert x.xive.get_os_ring(0).cppr == 0xFF
    assert x.xive.get_tctx_regs(0)[0x10] == before[0x10]
    assert len(errors(m)) == 4
    assert tima_read(x, 0, 0x18, 4, page=1) == 0x8000_0400        # HV page sees the OS CAM


def test_pull_os_context_stops_delivery(mx):
    m, x = mx
    route(m, 0, 0, 6, 1)
    x.xive.esb_set(0, PQ_RESET)
    tima_write(x, 0, 0x11, 1, 0xFF)
    assert tima_read(x, 0, 0x818, 4, page=1) == 0x8000_0400
    x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert qword(m, 0, 0) == 0x8000_0001 and not m.cpus[0].irq_line
    tima_write(x, 0, 0x18, 4, 0x8000_0400, page=1)                # push it back
    x.xive.esb_set(0, PQ_RESET)
    x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert m.cpus[0].irq_line


def test_queue_wraps_with_generation(mx):
    m, x = mx
    route(m, 0, 0, 6, 0, qshift=12)                               # 1024 entries
    tima_write(x, 0, 0x11, 1, 0xFF)
    for n in range(1026):
        x.xive.eat[0] = (x.xive.eat[0] & ~0x7FFF_FFFF) | (n + 1)  # EISN = n + 1
        x.xive.esb_set(0, PQ_RESET)
        x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert qword(m, 0, 2) == 0x8000_0003 and qword(m, 0, 1023) == 0x8000_0400
    assert qword(m, 0, 0) == 1025 and qword(m, 0, 1) == 1026      # generation 0 after the wrap
    st, out = hcall(m, H_INT_GET_QUEUE_CONFIG, 1, 0, 6)
    assert st == H_SUCCESS and out == [1, QPAGE, 12, 2]           # gen 0, offset 2
    assert hcall(m, H_INT_SET_QUEUE_CONFIG, 1, 1, 6, QPAGE + 0x10000, 12)[0] == H_SUCCESS
    st, out = hcall(m, H_INT_GET_QUEUE_CONFIG, 1, 1, 6)
    assert out[0] == 1 | 1 << 62 and out[3] == 0                  # fresh queue: generation 1


def test_coalescing_without_always_notify(mx):
    m, x = mx
    route(m, 0, 0, 6, 7, notify=False)
    tima_write(x, 0, 0x11, 1, 0xFF)
    x.xive.esb_set(0, PQ_RESET)
    x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert m.cpus[0].irq_line and x.xive.get_end(6).esn == PQ_PENDING
    tima_read(x, 0, 0x810, 2)
    tima_write(x, 0, 0x11, 1, 0xFF)
    x.xive.esb_set(0, PQ_RESET)
    x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert qword(m, 0, 1) == 0x8000_0007                          # queued ...
    assert not m.cpus[0].irq_line and x.xive.get_end(6).esn == PQ_QUEUED   # ... not signalled


def test_masked_eas_and_invalid_end(mx):
    m, x = mx
    route(m, 0, 0, 6, 3)
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 1 | 2, 0, 0, 6, 3)[0] == H_SUCCESS   # masked
    x.xive.esb_set(0, PQ_RESET)
    x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert qword(m, 0, 0) == 0
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 0, 0, 1, 5, 0)[0] == H_SUCCESS       # END 13 unset
    x.xive.esb_set(0, PQ_RESET)
    x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert "END is invalid" in errors(m)[-1].what


def test_bad_queue_address_never_written(mx):
    m, x = mx
    route(m, 0, 0, 6, 3)
    x.xive.set_end(6, Xive.make_end(0, 6, qaddr=m.ram.size - 0x1000 + 0x10_0000_0000 * 0,
                                    qshift=12, qindex=1023))
    tima_write(x, 0, 0x11, 1, 0xFF)
    x.xive.esb_set(0, PQ_RESET)
    x.esb_device.mmio_write(0, trig(0), 8, 0)                     # last entry: inside RAM
    assert m.ram.read_int(m.ram.size - 4, 4, "big") == 0x8000_0003
    x.xive.set_end(6, Xive.make_end(0, 6, qaddr=1 << 40, qshift=16))
    x.xive.esb_set(0, PQ_RESET)
    x.esb_device.mmio_write(0, trig(0), 8, 0)
    assert "failed to write END data" in errors(m)[-1].what
    assert x.xive.get_end(6).qindex == 0                          # unchanged, event dropped
    assert m.cpus[0].irq_line                                      # QEMU still notifies


# ---- hcalls ------------------------------------------------------------------------------------------

def test_hcalls_refused_before_activation_and_after_deactivation():
    m = create_machine("pseries", smp=1)
    for nr in ALL_HCALLS:
        assert hcall(m, nr)[0] == H_FUNCTION
    m2, x = machine(1)
    x.deactivate()
    for nr in ALL_HCALLS:
        assert hcall(m2, nr)[0] == H_FUNCTION


def test_get_source_info(mx):
    m, x = mx
    assert hcall(m, H_INT_GET_SOURCE_INFO, 0, 1) == (H_SUCCESS, [
        0, SPAPR_XIVE_VC_BASE + (1 << 17) + 0x10000, SPAPR_XIVE_VC_BASE + (1 << 17), 16])
    vty = m.board.vty.irq
    assert hcall(m, H_INT_GET_SOURCE_INFO, 0, vty)[1][0] == 0
    assert hcall(m, H_INT_GET_SOURCE_INFO, 0, 0x1200) == (H_SUCCESS, [0xC, MASK64, MASK64, 16])
    assert hcall(m, H_INT_GET_SOURCE_INFO, 1, 1)[0] == H_PARAMETER
    assert hcall(m, H_INT_GET_SOURCE_INFO, 0, 2)[0] == H_P2        # not allocated (2 vCPUs)
    assert hcall(m, H_INT_GET_SOURCE_INFO, 0, 0x2000)[0] == H_P2   # out of range


def test_set_get_source_config_errors(mx):
    m, x = mx
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 4, 0, 0, 6, 0)[0] == H_PARAMETER
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 0, 0x1FFF, 0, 6, 0)[0] == H_P2
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 0, 0, 0, 7, 0)[0] == H_P4
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 0, 0, 2, 6, 0)[0] == H_P3
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 0, 0, 2, 0xFF, 0)[0] == H_SUCCESS   # 0xff: reset
    assert hcall(m, H_INT_GET_SOURCE_CONFIG, 1, 0)[0] == H_PARAMETER
    assert hcall(m, H_INT_GET_SOURCE_CONFIG, 0, 0x3000)[0] == H_P2
    route(m, 0x1100, 1, 5, 0x42)
    assert hcall(m, H_INT_GET_SOURCE_CONFIG, 0, 0x1100) == (H_SUCCESS, [1, 5, 0x42, 0])
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 1, 0x1100, 1, 5, 0)[0] == H_SUCCESS  # mask, EISN kept
    assert hcall(m, H_INT_GET_SOURCE_CONFIG, 0, 0x1100)[1][:3] == [1, 0xFF, 0x42]
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 0, 0x1100, 0, 0xFF, 0)[0] == H_SUCCESS
    assert x.xive.get_source(0x1100).eas == (1 << 63) | (1 << 31)


def test_queue_hcall_errors(mx):
    m, x = mx
    for nr in (H_INT_GET_QUEUE_INFO, H_INT_GET_QUEUE_CONFIG, H_INT_SET_QUEUE_CONFIG):
        assert hcall(m, nr, 2, 0, 6)[0] == H_PARAMETER
        assert hcall(m, nr, 0, 0, 7)[0] == H_P3
        assert hcall(m, nr, 0, 5, 6)[0] == H_P2
    assert hcall(m, H_INT_SET_QUEUE_CONFIG, 0, 0, 6, QPAGE, 13)[0] == H_P5
    assert hcall(m, H_INT_SET_QUEUE_CONFIG, 0, 0, 6, QPAGE + 0x1000, 16)[0] == H_P4
    assert hcall(m, H_INT_SET_QUEUE_CONFIG, 0, 0, 6, 1 << 40, 16)[0] == H_P4   # not in RAM
    assert hcall(m, H_INT_SET_QUEUE_CONFIG, 1, 1, 3, QPAGE, 16)[0] == H_SUCCESS
    end_base = SPAPR_XIVE_VC_BASE + (0x2000 << 17)
    st, out = hcall(m, H_INT_GET_QUEUE_INFO, 0, 1, 3)
    assert (st, out[:2]) == (H_SUCCESS, [end_base + (11 << 17), 16])
    assert hcall(m, H_INT_GET_QUEUE_CONFIG, 0, 1, 3) == (H_SUCCESS, [1, QPAGE, 16, 0])
    assert hcall(m, H_INT_SET_QUEUE_CONFIG, 0, 1, 3, 0, 0)[0] == H_SUCCESS      # disable
    assert hcall(m, H_INT_GET_QUEUE_CONFIG, 0, 1, 3) == (H_SUCCESS, [0, 0, 0, 0])
    assert hcall(m, H_INT_GET_QUEUE_INFO, 0, 1, 3)[1][1] == 0


def test_misc_hcalls(mx):
    m, x = mx
    assert hcall(m, H_INT_SET_OS_REPORTING_LINE, 0, 0)[0] == H_FUNCTION
    assert hcall(m, H_INT_GET_OS_REPORTING_LINE, 0, 0, 0)[0] == H_FUNCTION
    assert hcall(m, H_INT_SYNC, 1, 0)[0] == H_PARAMETER
    assert hcall(m, H_INT_SYNC, 0, 5)[0] == H_P2
    assert hcall(m, H_INT_SYNC, 0, 0x1001)[0] == H_SUCCESS
    route(m, 0, 0, 6, 1)
    assert hcall(m, H_INT_RESET, 1)[0] == H_PARAMETER
    assert hcall(m, H_INT_RESET, 0)[0] == H_SUCCESS
    assert hcall(m, H_INT_GET_SOURCE_CONFIG, 0, 0)[1][:3] == [0, 6, 1]          # nothing reset


def test_h_int_esb(mx):
    m, x = mx
    swap = lambda v: int.from_bytes(v.to_bytes(8, "big"), "little")
    x.xive.esb_set(0x1200, PQ_QUEUED)
    st, out = hcall(m, H_INT_ESB, 0, 0x1200, 0x800)
    assert (st, out[0]) == (H_SUCCESS, swap(3))
    assert hcall(m, H_INT_ESB, 0, 0x1200, 0xC00)[1][0] == swap(3)   # host byte order (x86)
    assert x.xive.esb_get(0x1200) == PQ_RESET
    assert hcall(m, H_INT_ESB, 1, 0x1200, 0xF00, 0)[1][0] == MASK64
    assert x.xive.esb_get(0x1200) == PQ_QUEUED
    assert hcall(m, H_INT_ESB, 0, 0x1200, 0)[1][0] == swap(1)      # EOI from 11: re-forwarded
    assert hcall(m, H_INT_ESB, 2, 0x1200, 0)[0] == H_PARAMETER
    assert hcall(m, H_INT_ESB, 0, 0x1300, 0)[0] == H_P2
    assert hcall(m, H_INT_ESB, 0, 0x1200, 0x20001)[0] == H_P3
    assert hcall(m, H_INT_ESB, 0, 0x1203, 0x20000)[0] == H_SUCCESS  # QEMU allows offset == 128K


# ---- DT, lifecycle, reset, migration -----------------------------------------------------------------

def test_fdt_node(mx):
    from vmachine.fdt import Node, cells, u64s
    m, x = mx
    root = Node("")
    x.dt(root)
    n = root.find("interrupt-controller@60302031b0000")
    assert n is not None
    assert list(n.props) == ["device_type", "reg", "compatible", "ibm,xive-eq-sizes",
                             "ibm,xive-lisn-ranges", "interrupt-controller", "#interrupt-cells",
                             "linux,phandle", "phandle"]
    assert n.props["reg"] == u64s(SPAPR_XIVE_TM_BASE + 0x30000, 0x10000, SPAPR_XIVE_TM_BASE + 0x20000,
                                  0x10000)
    assert n.props["ibm,xive-lisn-ranges"] == cells(0, 2)
    assert n.props["ibm,xive-eq-sizes"] == cells(16)
    assert n.props["compatible"] == b"ibm,power-ivpe\0" and n.props["phandle"] == cells(0x1111)
    assert root.props["ibm,plat-res-int-priorities"] == cells(7, 0xF8)


def test_activate_deactivate_cycles():
    m, x = machine()
    names = lambda: {r.name for r in m.mmio.regions}
    for _ in range(3):
        assert {"xive-esb", "xive-tima"} <= names()
        assert m.mmio.find(SPAPR_XIVE_VC_BASE + (0x1FFF << 17)).name == "xive-esb"
        assert m.mmio.find(SPAPR_XIVE_VC_BASE + (0x2000 << 17)) is None    # END ESBs stay off
        assert hcall(m, H_INT_SYNC, 0, 0)[0] == H_SUCCESS
        tima_write(x, 0, 0x812, 1, 2)
        tima_write(x, 0, 0x11, 1, 0xFF)
        assert m.cpus[0].irq_line
        x.deactivate()
        assert not names() & {"xive-esb", "xive-tima"} and not m.cpus[0].irq_line
        assert hcall(m, H_INT_SYNC, 0, 0)[0] == H_FUNCTION
        x.activate()
        assert m.cpus[0].irq_line                                  # state kept, line restored
        tima_read(x, 0, 0x810, 2)


def test_reset_state(mx):
    m, x = mx
    route(m, 0, 0, 6, 1)
    x.xive.esb_set(0, PQ_RESET)
    tima_write(x, 0, 0x11, 1, 0xFF)
    tima_write(x, 0, 0x812, 1, 2)
    x.reset()
    assert x.xive.get_source(0) == SourceState(PQ_OFF, False, False, (1 << 63) | (1 << 31))
    assert x.xive.get_source(2) == SourceState(PQ_OFF, False, False, 0)
    assert x.xive.get_source(0x1201).lsi
    assert x.xive.get_end(6).words == (0, 0x5000_0000, 0, 0, 0, 0, 0, 0)
    assert x.xive.get_os_ring(1) == OsRing(0, 0, 0, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0x8000_0401)
    assert not m.cpus[0].irq_line


def test_save_load_round_trip():
    m, x = machine()
    route(m, 0x1100, 1, 4, 0x99, qshift=12)
    x.xive.esb_set(0x1100, PQ_RESET)
    x.set_irq(0x1201, 1)
    tima_write(x, 1, 0x11, 1, 0xFF)
    x.set_irq(0x1100, 1)
    assert m.cpus[1].irq_line
    saved = x.save_state()
    sections = {"xive": saved}
    m2, x2 = machine()
    x2.load_state(sections)
    assert x2.save_state() == saved
    assert m2.cpus[1].irq_line and not m2.cpus[0].irq_line
    assert x2.xive.get_source(0x1201).asserted
    assert x2.xive.get_end(12).qindex == 1
    bad = {"xive": dict(saved, fields=dict(saved["fields"], nr_irqs=5))}
    with pytest.raises(ConfigError):
        x2.load_state(bad)
    with pytest.raises(ConfigError):
        x2.load_state({"xive": dict(saved, version=saved["version"] + 1)})   # a future version


def test_host_interface_errors(mx):
    m, x = mx
    xv = x.xive
    with pytest.raises(DeviceError) as e:
        xv.get_source(0x2000)
    assert e.value.errno_name == "EINVAL"
    with pytest.raises(DeviceError) as e:
        xv.set_irq(0x1300, 1)
    assert e.value.errno_name == "ENOENT"
    with pytest.raises(DeviceError) as e:
        xv.get_end(16)
    assert e.value.errno_name == "EINVAL"
    with pytest.raises(DeviceError) as e:
        xv.get_os_ring(2)
    assert e.value.errno_name == "ENOENT"
    with pytest.raises(DeviceError):
        xv.set_end(0, Xive.make_end(0, 0, qaddr=0x1234, qshift=16))
    with pytest.raises(DeviceError):
        xv.set_source(0, SourceState(0, False, False, 1 << 62))     # reserved EAS bit
    end = Xive.make_end(0, 6, qaddr=QPAGE, qshift=16, qindex=5, generation=0)
    xv.set_end(6, end)
    assert xv.get_end(6) == end and xv.get_end(6).generation == 0 and xv.get_end(6).qindex == 5
    xv.set_os_ring(0, OsRing(0x80, 0xFF, 0x02, 0xFF, 0xFF, 0, 0xFF, 6, 0x8000_0400))
    assert m.cpus[0].irq_line and xv.get_os_ring(0).pipr == 6


def test_guest_mmio_accesses_through_the_cpu():
    """ld/stb/lhz executed by the vCPU reach the ESB and TIMA windows once each."""
    from vmachine.cpu.ppc64 import MSR_ME, MSR_SF
    m, x = machine()
    x.xive.esb_set(1, PQ_PENDING)
    code = [0xE8A40000,    # ld   r5,0(r4)       ESB SET_PQ_00 (returns old PQ)
            0x98C30011,    # stb  r6,0x11(r3)    CPPR := 0xff
            0x99030812,    # stb  r8,0x812(r3)   IPB bit for priority 6
            0xA0E30810,    # lhz  r7,0x810(r3)   ack
            0x48000000]    # b    .
    base = 0x200000
    for i, w in enumerate(code):
        m.ram.write_int(base + 4 * i, 4, w, "big")
    c = m.cpus[0]
    c.trap_timebase_accesses(m.ram.read(base, 4 * len(code)), base)
    c.start(base, 0, msr=MSR_SF | MSR_ME)
    c.set_gpr(4, SPAPR_XIVE_VC_BASE + mgmt(1, 0xC00))
    c.set_gpr(3, SPAPR_XIVE_TM_BASE + 0x20000)
    c.set_gpr(6, 0xFF)
    c.set_gpr(8, 6)
    m.run(max_insns=8)
    assert c.gpr(5) == PQ_PENDING and x.xive.esb_get(1) == PQ_RESET
    assert c.gpr(7) == 0x8006
    r = x.xive.get_os_ring(0)
    assert (r.cppr, r.ipb, r.nsr) == (6, 0, 0) and not errors(m)


def test_priority_and_target_truncation(mx):
    """QEMU takes the priority as uint8_t and the target as uint32_t."""
    m, x = mx
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 0, 0, 1 << 32 | 1, 0x105, 0)[0] == H_SUCCESS
    assert (x.xive.get_source(0).eas >> 32) & 0xFF_FFFF == 13          # END 1*8 + 5
    assert hcall(m, H_INT_SET_SOURCE_CONFIG, 0, 0, 0, 0x107, 0)[0] == H_P4
    assert hcall(m, H_INT_GET_QUEUE_INFO, 0, 0, 0x1FF)[0] == H_P3


# ---- declared migration state -----------------------------------------------------------------

def test_state_names_its_fields_and_refuses_version_1():
    from vmachine.state import StateError
    m, x = machine()
    route(m, 0x1100, 1, 4, 0x99, qshift=12)
    sec = x.save_state()
    assert (sec["name"], sec["version"]) == ("xive", 2) and "active" not in sec["fields"]
    eas = {e["lisn"]: e for e in sec["fields"]["eas"]}[0x1100]
    assert eas == {"lisn": 0x1100, "valid": True, "end_block": 0, "end_index": 12,
                   "masked": False, "eisn": 0x99}
    with pytest.raises(StateError) as e:
        x.load_state({"xive": dict(sec, version=1)})
    assert "version 1" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("damage", [
    lambda f: f["sources"].append({"lisn": 0x2000, "pq": 0, "lsi": False, "asserted": False}),
    lambda f: f["sources"].append({"lisn": 5, "pq": 0, "lsi": False, "asserted": True}),
    lambda f: f["sources"].append({"lisn": 5, "pq": 4, "lsi": False, "asserted": False}),
    lambda f: f["eas"].append(dict(f["eas"][0])),
    lambda f: f["eas"][0].update(masked=False, end_index=16),
    lambda f: f["eas"][0].update(eisn=1 << 31),
    lambda f: f["ends"].append({"index": 16, "words": [0] * 8}),
    lambda f: f["ends"][0].update(words=f["ends"][0]["words"][:7]),
    lambda f: f["ends"][0]["words"].__setitem__(3, 0x123),                     # queue not aligned
    lambda f: f["tctxs"].pop(),
    lambda f: f["tctxs"][0].update(regs=[0] * 63),
])
def test_bad_state_is_refused_before_anything_changes(damage):
    import copy
    from vmachine.state import StateError
    m, x = machine()
    route(m, 0x1100, 1, 4, 0x99, qshift=12)
    sec = copy.deepcopy(x.save_state())
    damage(sec["fields"])
    m2, x2 = machine()
    before = x2.save_state()
    with pytest.raises(StateError):
        x2.load_state({"xive": sec})
    assert x2.save_state() == before


# ---- hostile host calls: refused before anything changes (issue 15, item 4) ---------------------
# Every refusal is a DeviceError, and the model (save_state, lines, outputs) is unchanged.

EAS_V, EAS_M = 1 << 63, 1 << 31
BAD_INTS = [-1, 1 << 64, True, False, 1.0, 0.5, None, "5", b"\x05", [5]]
BAD_FLAGS = [2, -1, 0.5, 1.0, None, "1"]
RING = OsRing(0x80, 0xFF, 0x02, 0xFF, 0xFF, 0, 0xFF, 6, 0x8000_0400)


def busy_model():
    """64 LISNs, vCPUs 0 and 1 (16 ENDs): IPIs claimed, LSI 5 asserted, LISN 1
    routed to END 11 (vCPU 1, priority 3) with a queue, an interrupt pending."""
    x, errs = model(lsi=True)
    lines = {0: False, 1: False}
    for v in (0, 1):
        x.set_output(v, lambda level, v=v: lines.__setitem__(v, level))
    for lisn in range(4):
        x.claim(lisn)
    x.set_source(1, SourceState(PQ_RESET, False, False, EAS_V | 11 << 32 | 0x42))
    x.set_end(11, Xive.make_end(1, 3, qaddr=0x10000, qshift=12))
    x.set_cppr(x.tctxs[1], 0x10, 0xFF)
    x.set_irq(5, 1)
    x.set_irq(1, 1)
    assert lines[1] and x.get_end(11).qindex == 1
    return x, lines


def _xstate(x, lines):
    return (x.save_state(), dict(lines), {v: t.output for v, t in x.tctxs.items()},
            {v: bytes(t.regs) for v, t in x.tctxs.items()})


def _xrefused(x, lines, call, errno=None):
    before = _xstate(x, lines)
    with pytest.raises(DeviceError) as e:
        call()
    assert _xstate(x, lines) == before
    if errno:
        assert e.value.errno_name == errno
    return e.value


@pytest.mark.parametrize("lisn", BAD_INTS + [64, 1 << 32])
def test_hostile_lisn_everywhere(lisn):
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.get_source(lisn), "EINVAL")
    _xrefused(x, lines, lambda: x.set_source(lisn, SourceState(0, False, False, 0)), "EINVAL")
    _xrefused(x, lines, lambda: x.set_irq(lisn, 1), "EINVAL")
    _xrefused(x, lines, lambda: x.claim(lisn), "EINVAL")


@pytest.mark.parametrize("level", BAD_FLAGS)
def test_hostile_xive_set_irq_level(level):
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.set_irq(1, level), "EINVAL")
    _xrefused(x, lines, lambda: x.set_irq(5, level), "EINVAL")


def test_set_irq_on_a_free_lisn_is_enoent():
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.set_irq(40, 1), "ENOENT")


@pytest.mark.parametrize("state", [
    None, (0, False, False, 0), 0,
    SourceState(-1, False, False, EAS_V), SourceState(4, False, False, EAS_V),
    SourceState(True, False, False, EAS_V), SourceState(1.0, False, False, EAS_V),
    SourceState(None, False, False, EAS_V),
    SourceState(0, 2, False, EAS_V), SourceState(0, None, False, EAS_V),
    SourceState(0, "no", False, EAS_V),
    SourceState(0, True, 0.5, EAS_V), SourceState(0, True, None, EAS_V),
    SourceState(0, False, True, EAS_V | EAS_M),                      # an asserted MSI
    SourceState(0, False, False, -1), SourceState(0, False, False, 1 << 64),
    SourceState(0, False, False, True), SourceState(0, False, False, float(EAS_V)),
    SourceState(0, False, False, None),
    SourceState(0, False, False, EAS_V | 1 << 62),                   # reserved EAS bits
    SourceState(0, False, False, EAS_V | 1 << 56 | EAS_M),           # END block 1
    SourceState(0, False, False, EAS_V | 16 << 32),                  # END 16: nr_ends is 16
    SourceState(0, False, False, EAS_V | EAS_M | 0x1234 << 32),      # masked does not excuse it
    SourceState(0, False, False, EAS_M),                             # frees a claimed LISN
    SourceState(0, False, False, 0),
])
def test_hostile_set_source(state):
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.set_source(2, state), "EINVAL")


def test_set_source_reproducer_end_0x1234_masked():
    """set_source(0, SourceState(..., EAS with END 0x1234, masked)) used to be
    accepted; the guest's next H_INT_GET_SOURCE_CONFIG then raised DeviceError
    out of Machine.run(). Now it is refused, and the hcall answers."""
    m, x = machine()
    before = x.save_state()
    with pytest.raises(DeviceError) as e:
        x.xive.set_source(0, SourceState(PQ_OFF, False, False, EAS_V | EAS_M | 0x1234 << 32))
    assert e.value.errno_name == "EINVAL" and "0x1234" in str(e.value)
    assert x.save_state() == before
    assert hcall(m, H_INT_GET_SOURCE_CONFIG, 0, 0) == (H_SUCCESS, [0xFFFF_FC00, 0xFF, 0, 0])


def test_invalid_eas_may_name_any_end_but_claim_then_refuses():
    x, lines = busy_model()
    x.set_source(40, SourceState(PQ_OFF, False, False, EAS_M | 0x1234 << 32))   # free LISN
    assert x.get_source(40).eas == EAS_M | 0x1234 << 32
    _xrefused(x, lines, lambda: x.claim(40), "EINVAL")
    _xrefused(x, lines, lambda: x.claim(1), "EBUSY")
    _xrefused(x, lines, lambda: x.claim(41, lsi=2), "EINVAL")


@pytest.mark.parametrize("idx", BAD_INTS + [16])
def test_hostile_end_index(idx):
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.get_end(idx), "EINVAL")
    _xrefused(x, lines, lambda: x.set_end(idx, Xive.make_end(0, 0)), "EINVAL")


GOOD_END = Xive.make_end(1, 3, qaddr=0x20000, qshift=16, qindex=7, generation=0)


def _words(k, v):
    w = list(GOOD_END.words)
    w[k] = v
    return EndState(tuple(w))


@pytest.mark.parametrize("state", [
    None, GOOD_END.words, EndState(GOOD_END.words[:7]), EndState(GOOD_END.words + (0,)),
    EndState(None), EndState("abcdefgh"), EndState(5),
    _words(0, -1), _words(1, 1 << 32), _words(2, True), _words(3, 1.0), _words(7, None),
    _words(0, GOOD_END.words[0] | 1 << 20),              # reserved bits, word by word
    _words(1, GOOD_END.words[1] | 1 << 24),
    _words(4, 1 << 31), _words(5, 1 << 31), _words(6, GOOD_END.words[6] | 1 << 24),
    _words(7, 3 << 16 | 1 << 28),
    _words(7, 8 << 16), _words(7, 0xFE << 16),           # format-0 priority 8..0xfe
    Xive.make_end(1, 3, qaddr=0x20000, qshift=13),       # queue size QEMU does not offer
    Xive.make_end(1, 3, qaddr=0x21000, qshift=16),       # not naturally aligned
    Xive.make_end(1, 3, qaddr=0x20000, qshift=12, qindex=1024),   # index past the end
])
def test_hostile_set_end(state):
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.set_end(11, state), "EINVAL")


def test_set_end_accepts_architected_ends():
    x, lines = busy_model()
    for end in (GOOD_END, Xive.make_end(1, 7), Xive.make_end(1, 0xFF), EndState((0,) * 8),
                EndState(GOOD_END.words[:6] + (GOOD_END.words[6] | 1 << 23, 0xFFFF_FFFF)),  # fmt 1
                EndState((0xFF0F_80FF & ~(1 << 30), 0xF07F_FFFF & ~0x3F_FFFF, 0xF000_0000,
                          0, 0x0FFF_FFFF, 0x7FFF_FFFF, 0x00FF_FFFF, 0xC007_0000))):
        x.set_end(11, end)
        assert x.get_end(11) == EndState(tuple(end.words))


@pytest.mark.parametrize("vcpu", BAD_INTS + [2, 1 << 32])
def test_hostile_vcpu_everywhere(vcpu):
    x, lines = busy_model()
    errno = "ENOENT" if vcpu == 2 else "EINVAL"
    _xrefused(x, lines, lambda: x.get_os_ring(vcpu), errno)
    _xrefused(x, lines, lambda: x.set_os_ring(vcpu, RING), errno)
    _xrefused(x, lines, lambda: x.get_tctx_regs(vcpu), errno)
    _xrefused(x, lines, lambda: x.set_tctx_regs(vcpu, bytes(64)), errno)
    _xrefused(x, lines, lambda: x.set_output(vcpu, lambda level: None), errno)


def _ring(**k):
    import dataclasses
    return dataclasses.replace(RING, **k)


@pytest.mark.parametrize("ring", [
    None, tuple(RING.to_bytes()), RING.to_bytes(),
    _ring(nsr=0x40), _ring(nsr=0x100), _ring(cppr=-1), _ring(ipb=True), _ring(lsmfb=1.0),
    _ring(ack_cnt=None), _ring(inc="0"), _ring(age=0x1FF), _ring(pipr=6.0),
    _ring(word2=1 << 32), _ring(word2=-1), _ring(word2=float(0x8000_0400)), _ring(word2=None),
])
def test_hostile_set_os_ring(ring):
    """A float used to raise AttributeError (int.to_bytes on a float)."""
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.set_os_ring(1, ring), "EINVAL")


@pytest.mark.parametrize("regs,line", [(bytes(63), None), (bytes(65), None), ("x" * 64, None),
                                       ([0] * 64, None), (None, None), (5, None),
                                       (bytes(64), 2), (bytes(64), "yes"), (bytes(64), 0.0)])
def test_hostile_set_tctx_regs(regs, line):
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.set_tctx_regs(0, regs, line), "EINVAL")


def test_hostile_set_output():
    x, lines = busy_model()
    _xrefused(x, lines, lambda: x.set_output(0, None), "EINVAL")
    _xrefused(x, lines, lambda: x.set_output(0, 5), "EINVAL")


@pytest.mark.parametrize("args", [(0, [0]), (-1, [0]), (True, [0]), (64.0, [0]), (None, [0]),
                                  (1 << 40, [0]), (64, None), (64, 5), (64, "01"), (64, [True]),
                                  (64, [-1]), (64, [1 << 30]), (64, [0, 0]), (64, [0.0])])
def test_hostile_constructor(args):
    with pytest.raises(DeviceError):
        Xive(*args, Ram())


def test_hostile_constructor_callables_and_flags():
    for kw in ({"guest_error": None}, {"event": 5}, {"store_eoi": 2}, {"store_eoi": None}):
        with pytest.raises(DeviceError):
            Xive(64, [0], Ram(), **kw)


def test_valid_host_calls_still_accepted_at_their_limits():
    x, lines = busy_model()
    x.set_source(63, SourceState(3, True, True, EAS_V | 15 << 32 | 0x7FFF_FFFF))
    assert x.get_source(63) == SourceState(3, True, True, EAS_V | 15 << 32 | 0x7FFF_FFFF)
    x.set_source(62, SourceState(0, 1, 0, EAS_V | EAS_M))            # 0/1 flags are bools
    assert x.get_source(62) == SourceState(0, True, False, EAS_V | EAS_M)
    x.set_source(61, SourceState(1, False, False, EAS_M | 0xFF_FFFF << 32 | 0xF << 56))  # free
    x.set_os_ring(0, OsRing(0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFFFF_FFFF))
    assert lines[0]
    x.set_tctx_regs(0, bytearray(64), line=True)
    x.set_tctx_regs(1, memoryview(bytes(64)))
    assert lines[0] and not lines[1]
    x.set_irq(63, True)
    x.set_irq(63, 0)
    with pytest.raises(DeviceError):
        Xive(1, [0x7FC00], Ram())                     # NVT index 0x400 + id must fit 19 bits


def test_snapshot_with_a_masked_eas_past_the_ends_is_refused():
    """The snapshot check shares the EAS rule: a masked EAS naming END 0x1234
    was accepted by restore too."""
    import copy
    from vmachine.state import StateError
    m, x = machine()
    sec = copy.deepcopy(x.save_state())
    sec["fields"]["eas"][0].update(masked=True, end_index=0x1234)
    before = x.save_state()
    with pytest.raises(StateError):
        x.load_state({"xive": sec})
    assert x.save_state() == before


def test_xive_guest_calls_never_raise_after_accepted_host_state():
    """Extreme but accepted host state, then every H_INT_* hcall with
    assorted arguments, ESB and TIMA accesses: never an exception."""
    m, x = machine()
    xv = x.xive
    last_end = xv.nr_ends - 1
    for lisn in (0, 1, 0x1000, 0x1100, 0x1200):
        xv.set_source(lisn, SourceState(PQ_QUEUED, lisn == 0x1200, lisn == 0x1200,
                                        EAS_V | last_end << 32 | 0x7FFF_FFFF))
    xv.set_source(0x1FFF, SourceState(PQ_RESET, True, False, 0xF << 56 | 0xFF_FFFF << 32))   # free
    xv.set_end(last_end, Xive.make_end(1, 7, qaddr=(1 << 60) - (1 << 24), qshift=24,
                                       qindex=(1 << 22) - 1, generation=0, always_notify=False,
                                       esn=3, ese=3))
    xv.set_end(0, EndState((0xFF0F_80FF & ~(1 << 30), 0xF07F_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF,
                            0x0FFF_FFFF, 0x7FFF_FFFF, 0x00FF_FFFF, 0xFFFF_FFFF)))
    xv.set_os_ring(0, OsRing(0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFFFF_FFFF))
    xv.set_tctx_regs(1, bytes(range(0xC0, 0x100)))
    vals = [0, 1, 6, 7, 0xFF, 0x1000, 0x1200, 0x1FFF, 0x2000, 0xFFFF_FFFF, MASK64]
    for nr in ALL_HCALLS:
        for a in (0, 1, 2, 3, MASK64):
            for b in vals:
                for c in (0, 1, 6, 0xFF, MASK64):
                    hcall(m, nr, a, b, c, c, 0)
    for lisn in (0, 1, 0x1200, 0x1FFF):
        xv.set_irq(lisn, 1) if xv.eat[lisn] & EAS_V else None
        for off in (0, 0x400, 0x800, 0xC00, 0xD00, 0xE00, 0xF00):
            x.esb_device.mmio_read(0, mgmt(lisn, off), 8)
            x.esb_device.mmio_write(0, mgmt(lisn, off), 8, MASK64)
            x.esb_device.mmio_write(1, trig(lisn, off), 8, 0)
    for cpu in (0, 1):
        for page in range(4):
            for off in (0x10, 0x11, 0x12, 0x18, 0x30, 0x38, 0x810, 0x812, 0x818, 0x828, 0x830):
                for size in (1, 2, 4, 8):
                    x.tima_device.mmio_read(cpu, (page << 16) + off, size)
                    x.tima_device.mmio_write(cpu, (page << 16) + off, size,
                                             MASK64 >> (64 - 8 * size))

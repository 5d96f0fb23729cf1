"""KVMPPC_H_CAS: the PVR list, option vectors and what QEMU 7.2 answers."""
from __future__ import annotations

import struct

import libfdt
import pytest

from vmachine import create_machine
from vmachine.boards import spapr_cas as cas

H_SUCCESS, H_HARDWARE, H_PARAMETER, H_FUNCTION, H_MULTI_THREADS_ACTIVE = 0, -1, -4, -2, -9005
VEC, BUF = 0x10_0000, 0x20_0000


def vector(pvrs=((0xFFFFFFFF, 0x004E1200),), ov1=b"\x00\x00\x80", ov5=None, ov5_23=0x00,
           terminator=(0xFFFFFFFE, 0x0F000001)) -> bytes:
    out = b"".join(struct.pack(">II", m, v) for m, v in pvrs + (terminator,))
    vecs = [ov1]
    if ov5 is None:
        ov5 = bytearray(26)
        ov5[22] = ov5_23
        ov5 = bytes(ov5)
    vecs += [b"", b"", b"", ov5] if ov5 != b"-" else []
    table = bytes([len(vecs) - 1])
    for v in vecs:
        table += bytes([max(len(v), 1) - 1]) + (v or b"\0")
    return out + table


def has_prop(fdt, node, name) -> bool:
    return not isinstance(fdt.getprop(node, name, libfdt.QUIET_NOTFOUND), int)


def cas_call(m, vec: bytes, bufsize=0x10000, cpu=0):
    c = m.cpus[cpu]
    m.ram.write(VEC, vec)
    c.state = c.state.RUNNING
    for r, v in ((3, 0xF002), (4, VEC), (5, BUF), (6, bufsize)):
        c.set_gpr(r, v)
    m.board.firmware_call(c)
    return c.gpr(3) - (1 << 64) if c.gpr(3) >> 63 else c.gpr(3)


def test_parse_vector_table():
    table = vector(ov5_23=0x40)[16:]
    mem = dict(enumerate(table))
    ov5 = cas.parse_vector(lambda a: mem.get(a, 0), 0, 5)
    assert ov5.test(cas.OV5_XIVE_EXPLOIT) and not ov5.test(cas.OV5_XIVE_BOTH)
    assert cas.parse_vector(lambda a: mem.get(a, 0), 0, 6) is None
    assert cas.encode_vector(cas.OptionVector(b"")) == b"\x00\x00"
    assert cas.encode_vector(ov5) == bytes([22]) + ov5.data[:23]


def test_pvr_walk_stops_after_the_terminator():
    words = [0xFFFFFFFF, 0x0F000005, 0xFFFF0000, 0x004E0000, 0xFFFFFFFE, 0x0F000001]
    mem = b"".join(struct.pack(">I", w) for w in words)
    after, best, explicit = cas.parse_pvrs(lambda a: struct.unpack_from(">I", mem, a)[0], 0)
    assert (after, best, explicit) == (24, 0x0F000005, True)


def test_cas_xics_in_dual_mode_returns_the_new_tree():
    m = create_machine("pseries", smp=2)
    assert cas_call(m, vector(ov5_23=0x00)) == H_SUCCESS
    assert m.ram.read(BUF, 4) == b"\x01\x00\x00\x00"
    size = struct.unpack(">I", m.ram.read(BUF + 4 + 4, 4))[0]
    fdt = libfdt.Fdt(m.ram.read(BUF + 4, size))
    chosen = fdt.path_offset("/chosen")
    assert has_prop(fdt, chosen, "ibm,architecture-vec-5")
    assert not has_prop(fdt, chosen, "ibm,arch-vec-5-platform-support")
    assert fdt.path_offset("/interrupt-controller") >= 0
    assert m.board.active is m.board.intcs["xics"]


def test_logical_pvr_match_sets_cpu_version():
    m = create_machine("pseries")
    vec = vector(pvrs=((0xFFFFFFFF, 0x0F000005), (0xFFFFFFFF, 0x0F000004)))
    assert cas_call(m, vec) == H_SUCCESS
    fdt = libfdt.Fdt(m.board.dtb())
    assert fdt.getprop(fdt.path_offset("/cpus/PowerPC,POWER9@0"), "cpu-version").as_uint32() == 0x0F000005


def test_no_matching_pvr_is_h_hardware():
    m = create_machine("pseries")
    assert cas_call(m, vector(pvrs=((0xFFFFFFFF, 0x12345678),))) == H_HARDWARE


def test_missing_ov5_is_h_parameter():
    m = create_machine("pseries")
    assert cas_call(m, vector(ov5=b"-")) == H_PARAMETER
    assert any("option vector" in e.what for e in m.trace.of_kind("guest-error"))


def test_secondary_running_is_multi_threads_active():
    m = create_machine("pseries", smp=2)
    m.cpus[1].start(0x400000, 0)
    assert cas_call(m, vector()) == H_MULTI_THREADS_ACTIVE


@pytest.mark.parametrize("mode,ov5_23,why", [
    ("dual", 0x80, "invalid interrupt mode"),
    ("xics", 0x40, "unavailable interrupt mode"),
])
def test_cases_where_qemu_exits_end_the_run(mode, ov5_23, why):
    m = create_machine(f"pseries,ic-mode={mode}")
    cas_call(m, vector(ov5_23=ov5_23))
    assert m.exited == ("error", 1) and why in m.fatal


def test_tiny_buffer_ends_the_run():
    m = create_machine("pseries")
    cas_call(m, vector(), bufsize=3)
    assert m.exited == ("error", 1) and "insufficient CAS buffer" in m.fatal


def test_xive_hcalls_are_h_function_before_cas():
    m = create_machine("pseries")
    c = m.cpus[0]
    c.set_gpr(3, 0x3A8)                                        # H_INT_GET_SOURCE_INFO
    m.board.firmware_call(c)
    assert c.gpr(3) == (1 << 64) + H_FUNCTION


def test_asserted_lsi_survives_the_switch_to_xive_and_back():
    m = create_machine("pseries")
    b = m.board
    b.set_irq(0x1200, 1)                                         # a PCI INTx line held high
    assert b.intcs["xics"].xics.get_sources(0x1200, 1)[0] & (1 << 42)     # PENDING (asserted)
    assert cas_call(m, vector(ov5_23=0x40)) == H_SUCCESS
    assert b.active is b.intcs["xive"] and b.intcs["xive"].xive.get_source(0x1200).asserted
    b.set_irq(0x1200, 0)
    assert not b.intcs["xive"].xive.get_source(0x1200).asserted
    assert cas_call(m, vector(ov5_23=0x00)) == H_SUCCESS        # CAS again: back to XICS
    assert b.active is b.intcs["xics"]


def test_cas_to_xive_maps_esb_and_tima_and_back_unmaps():
    m = create_machine("pseries")
    names = lambda: sorted(r.name for r in m.mmio.regions)
    before = names()
    assert cas_call(m, vector(ov5_23=0x40)) == H_SUCCESS
    assert set(names()) - set(before) == {"xive-esb", "xive-tima"}
    assert cas_call(m, vector(ov5_23=0x00)) == H_SUCCESS
    assert names() == before

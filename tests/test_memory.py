"""Guest memory: MMIO access reassembly, real-Unicorn MMIO widths, unassigned
addresses, the MMIO map.

Expected behaviour comes from ../shared/unicorn-notes.md (Unicorn splits an
8-byte MMIO access into two 4-byte callbacks, lower address first, values as
numbers in guest byte order), vmachine/memory.py's contract (a device sees
each access exactly once at its real width) and guests/NOTES.md (what QEMU 7.2
does for unassigned addresses)."""
from __future__ import annotations

import struct

import pytest
from unicorn import arm64_const as A

from vmachine.cpu.aarch64 import Aarch64Cpu
from vmachine.cpu.base import CpuState
from vmachine.cpu.ppc64 import MSR_ME, MSR_SF, Ppc64Cpu
from vmachine.errors import ConfigError
from vmachine.machine import Machine
from vmachine.memory import AccessAssembler, MmioMap

HI, LO = 0x11223344, 0x55667788
FULL = (HI << 32) | LO


class RecordingDevice:
    """An MmioDevice that logs every access as (op, offset, size, value).
    A read of `size` bytes at `offset` returns bytes 0xA0+offset, 0xA1+offset, ...
    packed big-endian into one number (distinct values for distinct accesses)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, int, int]] = []

    @staticmethod
    def value(offset: int, size: int) -> int:
        return int.from_bytes(bytes((0xA0 + offset + i) & 0xFF for i in range(size)), "big")

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        v = self.value(offset, size)
        self.log.append(("r", offset, size, v))
        return v

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        self.log.append(("w", offset, size, value))


class FixedDevice(RecordingDevice):
    """Returns FULL (masked to the access size) for every read."""

    def mmio_read(self, cpu, offset, size):
        v = FULL & ((1 << (8 * size)) - 1)
        self.log.append(("r", offset, size, v))
        return v


def assembler(big_endian: bool, size: int = 8) -> AccessAssembler:
    return AccessAssembler(3, lambda: size, big_endian)


# ---- AccessAssembler with a fake device ------------------------------------------------

@pytest.mark.parametrize("big_endian,first,second", [(True, HI, LO), (False, LO, HI)],
                         ids=["ppc-big-endian", "aarch64-little-endian"])
def test_split_8_byte_read_is_one_device_read(big_endian, first, second):
    dev, asm = FixedDevice(), assembler(big_endian)
    assert asm.read(dev, 0x10, 4) == first        # lower address first
    assert asm.read(dev, 0x14, 4) == second
    assert dev.log == [("r", 0x10, 8, FULL)]


@pytest.mark.parametrize("big_endian,first,second", [(True, HI, LO), (False, LO, HI)],
                         ids=["ppc-big-endian", "aarch64-little-endian"])
def test_split_8_byte_write_is_one_device_write(big_endian, first, second):
    dev, asm = RecordingDevice(), assembler(big_endian)
    asm.write(dev, 0x20, 4, first)
    assert dev.log == []                           # nothing before the access is whole
    asm.write(dev, 0x24, 4, second)
    assert dev.log == [("w", 0x20, 8, FULL)]


def test_back_to_back_8_byte_reads_of_one_register_each_reach_the_device():
    dev, asm = FixedDevice(), assembler(True)
    for _ in range(3):
        assert (asm.read(dev, 0, 4), asm.read(dev, 4, 4)) == (HI, LO)
    assert dev.log == [("r", 0, 8, FULL)] * 3


@pytest.mark.parametrize("big_endian", [True, False])
@pytest.mark.parametrize("insn_size", [0, 1, 2, 4])
def test_narrow_accesses_pass_straight_through(big_endian, insn_size):
    dev = RecordingDevice()
    asm = assembler(big_endian, insn_size)
    for size, off in ((1, 3), (2, 6), (4, 8)):
        if insn_size and size != insn_size:
            continue
        assert asm.read(dev, off, size) == RecordingDevice.value(off, size)
        asm.write(dev, off, size, 0xAB & ((1 << 8 * size) - 1))
    expect = []
    for size, off in ((1, 3), (2, 6), (4, 8)):
        if insn_size and size != insn_size:
            continue
        expect += [("r", off, size, RecordingDevice.value(off, size)), ("w", off, size, 0xAB)]
    assert dev.log == expect


def test_ldp_x_registers_become_two_8_byte_reads():
    # ldp x1, x2, [x0]: 16 bytes = four 4-byte callbacks, element size 8
    dev, asm = RecordingDevice(), assembler(False)
    got = [asm.read(dev, off, 4) for off in (0, 4, 8, 12)]
    v0, v8 = RecordingDevice.value(0, 8), RecordingDevice.value(8, 8)
    assert got == [v0 & 0xFFFFFFFF, v0 >> 32, v8 & 0xFFFFFFFF, v8 >> 32]
    assert dev.log == [("r", 0, 8, v0), ("r", 8, 8, v8)]


def test_stp_x_registers_become_two_8_byte_writes():
    dev, asm = RecordingDevice(), assembler(False)
    x1, x2 = 0x0102030405060708, 0x1112131415161718
    for off, v in ((0, x1 & 0xFFFFFFFF), (4, x1 >> 32), (8, x2 & 0xFFFFFFFF), (12, x2 >> 32)):
        asm.write(dev, off, 4, v)
    assert dev.log == [("w", 0, 8, x1), ("w", 8, 8, x2)]


def test_halves_of_different_devices_are_not_combined():
    a, b = FixedDevice(), FixedDevice()
    asm = assembler(True)
    asm.read(a, 0, 4)
    asm.read(b, 4, 4)                 # not the second half of a's access
    assert a.log == [("r", 0, 8, FULL)]
    assert b.log == [("r", 4, 8, FULL)]


# ---- real Unicorn: PPC64 -------------------------------------------------------------------

PPC_MMIO = 0x2000_0000                 # above the 16 MiB of RAM
PPC_CODE = 0x1000


def ppc_machine(dev=None):
    m = Machine(0, 16 << 20)
    if dev is not None:
        m.mmio.add("test", PPC_MMIO, 0x1000, dev)      # before the CPU exists
    cpu = Ppc64Cpu(0, m)
    m.cpus.append(cpu)
    return m, cpu


def ppc_run(m, cpu, words, at=PPC_CODE, msr=MSR_SF | MSR_ME):
    m.ram.write(at, struct.pack(f">{len(words)}I", *words))
    cpu.start(at, 0, msr=msr)
    return lambda: cpu.run_insns(len(words))


def test_ppc64_mmio_widths_on_unicorn():
    dev = RecordingDevice()
    m, cpu = ppc_machine(dev)
    run = ppc_run(m, cpu, [
        0xE8640000,       # ld   r3, 0(r4)
        0xF8640008,       # std  r3, 8(r4)
        0x80A40010,       # lwz  r5, 16(r4)
        0x98C40018,       # stb  r6, 24(r4)
        0xA0E40020,       # lhz  r7, 32(r4)
        0xB0E40028,       # sth  r7, 40(r4)
        0x90A40030,       # stw  r5, 48(r4)
    ])
    cpu.set_gpr(4, PPC_MMIO)
    cpu.set_gpr(6, 0x1234)
    run()
    v = RecordingDevice.value
    assert dev.log == [
        ("r", 0, 8, v(0, 8)), ("w", 8, 8, v(0, 8)), ("r", 16, 4, v(16, 4)),
        ("w", 24, 1, 0x34), ("r", 32, 2, v(32, 2)), ("w", 40, 2, v(32, 2)),
        ("w", 48, 4, v(16, 4)),
    ]
    assert cpu.gpr(3) == v(0, 8) == 0xA0A1A2A3A4A5A6A7
    assert cpu.gpr(5) == v(16, 4)
    assert cpu.gpr(7) == v(32, 2)
    assert cpu.pc == PPC_CODE + 7 * 4
    assert m.trace.of_kind("guest-error") == []


def test_ppc64_fp_doubleword_mmio_is_one_access():
    dev = RecordingDevice()
    m, cpu = ppc_machine(dev)
    run = ppc_run(m, cpu, [0xC8240000, 0xD8240008],        # lfd f1,0(r4); stfd f1,8(r4)
                  msr=MSR_SF | MSR_ME | (1 << 13))         # MSR[FP]
    cpu.set_gpr(4, PPC_MMIO)
    run()
    v = RecordingDevice.value(0, 8)
    assert dev.log == [("r", 0, 8, v), ("w", 8, 8, v)]


UNASSIGNED_PPC = 0x10_0000_0000        # guests/NOTES.md: reads 0, stores dropped


def test_ppc64_unassigned_load_reads_zero_store_is_dropped():
    m, cpu = ppc_machine()
    run = ppc_run(m, cpu, [
        0xE8640000,       # ld  r3, 0(r4)
        0xF8A40000,       # std r5, 0(r4)
        0xE8C40000,       # ld  r6, 0(r4)
        0x80E40008,       # lwz r7, 8(r4)
    ])
    cpu.set_gpr(4, UNASSIGNED_PPC)
    cpu.set_gpr(3, 0x5555)
    cpu.set_gpr(5, 0x1122334455667788)
    cpu.set_gpr(6, 0x6666)
    cpu.set_gpr(7, 0x7777)
    run()
    assert (cpu.gpr(3), cpu.gpr(6), cpu.gpr(7)) == (0, 0, 0)
    assert cpu.pc == PPC_CODE + 16                  # no DSI, no machine check
    assert cpu.state is CpuState.RUNNING
    assert not m.trace.of_kind("exception")
    errors = m.trace.of_kind("guest-error")
    assert errors and errors[0].get("addr") == UNASSIGNED_PPC
    assert any(e.get("addr") == UNASSIGNED_PPC + 8 for e in errors)


def test_ppc64_each_unassigned_access_logs_one_event_at_its_width():
    m, cpu = ppc_machine()
    run = ppc_run(m, cpu, [0xE8640000, 0xF8640000, 0x80640008])   # ld; std; lwz +8
    cpu.set_gpr(4, UNASSIGNED_PPC)
    run()
    errors = m.trace.of_kind("guest-error")
    assert [(e.get("addr"), e.get("size")) for e in errors] == \
        [(UNASSIGNED_PPC, 8), (UNASSIGNED_PPC, 8), (UNASSIGNED_PPC + 8, 4)]


def test_ppc64_unassigned_fetch_raises_isi():
    m, cpu = ppc_machine()
    cpu.start(UNASSIGNED_PPC, 0, msr=MSR_SF | MSR_ME)
    cpu.run_insns(1)
    assert cpu.pc == 0x400
    assert cpu.get_srr()[0] == UNASSIGNED_PPC


# ---- real Unicorn: AArch64 -----------------------------------------------------------------

A64_RAM = 0x4000_0000
A64_MMIO = 0x0A00_0000
A64_CODE = A64_RAM + 0x1000
A64_VBAR = A64_RAM + 0x8000


def a64_machine(dev=None):
    m = Machine(A64_RAM, 16 << 20)
    cpu = Aarch64Cpu(0, m, mpidr=0x8000_0000)
    m.cpus.append(cpu)
    if dev is not None:
        m.mmio.add("test", A64_MMIO, 0x1000, dev)       # after the CPU exists
    cpu.uc.reg_write(A.UC_ARM64_REG_VBAR_EL1, A64_VBAR)
    return m, cpu


def a64_run(m, cpu, words, x0, at=A64_CODE):
    m.ram.write(at, struct.pack(f"<{len(words)}I", *words))
    cpu.start(at, x0)
    return lambda: cpu.run_insns(len(words))


def test_aarch64_mmio_widths_on_unicorn():
    dev = RecordingDevice()
    m, cpu = a64_machine(dev)
    run = a64_run(m, cpu, [
        0xF9400001,       # ldr  x1, [x0]
        0xF9000401,       # str  x1, [x0, #8]
        0xA9400801,       # ldp  x1, x2, [x0]
        0xB9401003,       # ldr  w3, [x0, #16]
        0x79003004,       # strh w4, [x0, #24]
        0x39008005,       # strb w5, [x0, #32]
        0xA9030801,       # stp  x1, x2, [x0, #48]
        0x79404006,       # ldrh w6, [x0, #32]
        0x39400007,       # ldrb w7, [x0]
    ], x0=A64_MMIO)
    cpu.set_x(4, 0xFEDC1234)
    cpu.set_x(5, 0x99AB)
    run()
    v = RecordingDevice.value
    assert dev.log == [
        ("r", 0, 8, v(0, 8)), ("w", 8, 8, v(0, 8)),
        ("r", 0, 8, v(0, 8)), ("r", 8, 8, v(8, 8)),
        ("r", 16, 4, v(16, 4)), ("w", 24, 2, 0x1234), ("w", 32, 1, 0xAB),
        ("w", 48, 8, v(0, 8)), ("w", 56, 8, v(8, 8)),
        ("r", 32, 2, v(32, 2)), ("r", 0, 1, v(0, 1)),
    ]
    assert (cpu.x(1), cpu.x(2)) == (v(0, 8), v(8, 8))
    assert cpu.x(3) == v(16, 4)
    assert (cpu.x(6), cpu.x(7)) == (v(32, 2), v(0, 1))
    assert cpu.pc == A64_CODE + 9 * 4


@pytest.mark.parametrize("addr", [0x0910_0000, 0x40_0000_0000])    # both from guests/NOTES.md
def test_aarch64_unassigned_load_is_synchronous_external_abort(addr):
    m, cpu = a64_machine()
    run = a64_run(m, cpu, [0xF9400001], x0=addr)            # ldr x1, [x0]
    run()
    uc = cpu.uc
    assert cpu.pc == A64_VBAR + 0x200                      # current EL, SPx, synchronous
    assert uc.reg_read(A.UC_ARM64_REG_ESR_EL1) == 0x96000010
    assert uc.reg_read(A.UC_ARM64_REG_FAR_EL1) == addr
    assert uc.reg_read(A.UC_ARM64_REG_ELR_EL1) == A64_CODE
    assert cpu.pstate & 0x3C0 == 0x3C0                     # DAIF masked on entry
    assert [e.get("addr") for e in m.trace.of_kind("guest-error")] == [addr]


def test_aarch64_unassigned_store_abort_has_wnr():
    # Same abort as a load, with ESR.ISS.WnR (bit 6) set for the write (ARM ARM ESR_ELx).
    m, cpu = a64_machine()
    run = a64_run(m, cpu, [0xF9000001], x0=0x40_0000_0000)  # str x1, [x0]
    run()
    assert cpu.pc == A64_VBAR + 0x200
    assert cpu.uc.reg_read(A.UC_ARM64_REG_ESR_EL1) == 0x96000050
    assert cpu.uc.reg_read(A.UC_ARM64_REG_FAR_EL1) == 0x40_0000_0000


def test_removed_window_becomes_unassigned():
    dev = RecordingDevice()
    m, cpu = a64_machine(dev)
    run = a64_run(m, cpu, [0xB9400001], x0=A64_MMIO)        # ldr w1, [x0]
    run()
    assert dev.log == [("r", 0, 4, RecordingDevice.value(0, 4))]
    m.mmio.remove(m.mmio.find(A64_MMIO))
    cpu.start(A64_CODE, A64_MMIO)
    cpu.run_insns(1)
    assert len(dev.log) == 1
    assert cpu.pc == A64_VBAR + 0x200
    assert cpu.uc.reg_read(A.UC_ARM64_REG_FAR_EL1) == A64_MMIO


# ---- MmioMap -----------------------------------------------------------------------------------

def test_mmio_overlap_rejected():
    mm = MmioMap()
    mm.add("a", 0x1000_0000, 0x2000, RecordingDevice())
    for base, size in ((0x1000_0000, 0x1000), (0x1000_1000, 0x1000), (0x0FFF_F000, 0x2000),
                       (0x0FFF_0000, 0x10_0000)):
        with pytest.raises(ConfigError):
            mm.add("b", base, size, RecordingDevice())
    # touching windows are fine
    mm.add("below", 0x0FFF_F000, 0x1000, RecordingDevice())
    mm.add("above", 0x1000_2000, 0x1000, RecordingDevice())
    assert [r.name for r in mm.regions] == ["below", "a", "above"]
    assert mm.find(0x1000_1FFF).name == "a"
    assert mm.find(0x1000_3000) is None


@pytest.mark.parametrize("base,size", [(0x1000_0800, 0x1000), (0x1000_0000, 0x800),
                                       (0x1000_0000, 0)])
def test_mmio_misaligned_window_rejected(base, size):
    with pytest.raises(ConfigError):
        MmioMap().add("x", base, size, RecordingDevice())

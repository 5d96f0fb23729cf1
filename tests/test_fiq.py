"""Group 0 interrupts reach an AArch64 vCPU as FIQ (QEMU's GICv3 signals
Group 0 as FIQ for a non-secure guest), gated by PSTATE.F, vector +0x100."""
from __future__ import annotations

import struct

from vmachine import create_machine

BASE = 0x4010_0000
VBAR = 0x4020_0000
ICC_PMR, ICC_IGRPEN0, ICC_SGI0R, ICC_IAR0 = (3, 0, 4, 6, 0), (3, 0, 12, 12, 6), (3, 0, 12, 11, 7), (3, 0, 12, 8, 0)
MOVZ_X5_0x77 = 0xD2800EE5
B_SELF = 0x14000000
MSR_DAIFCLR_F = 0xD50341FF          # msr daifclr, #1 (F)
NOP = 0xD503201F


def machine():
    m = create_machine("virt,gic-version=3", ram_size=64 << 20)
    cpu = m.cpus[0]
    m.ram.write(VBAR + 0x300, struct.pack("<2I", MOVZ_X5_0x77, B_SELF))   # FIQ, current EL SPx
    m.ram.write(VBAR + 0x280, struct.pack("<2I", 0xD2800025, B_SELF))     # IRQ: movz x5,#1
    m.ram.write(BASE, struct.pack("<4I", NOP, MSR_DAIFCLR_F, NOP, B_SELF))
    from unicorn import arm64_const as A
    cpu.uc.reg_write(A.UC_ARM64_REG_VBAR_EL1, VBAR)
    cpu.start(BASE, 0)
    return m, cpu


def test_fiq_line_is_taken_only_when_f_is_clear():
    m, cpu = machine()
    cpu.set_fiq_line(True)
    cpu.run_insns(1)                        # nop, F still masked: nothing
    assert cpu.pc == BASE + 4
    m.run(max_insns=200)
    assert cpu.x(5) == 0x77                 # FIQ vector (+0x300 from EL1h)


def test_group0_sgi_from_the_gic_is_an_fiq():
    m, cpu = machine()
    gic = m.board.gic
    regs = gic.sysregs(0)
    dist = next(dev for name, _, _, dev in gic.mmio_windows() if name == "gicv3-dist")
    redist = next(dev for name, _, _, dev in gic.mmio_windows() if name.startswith("gicv3-redist"))
    dist.mmio_write(0, 0x0, 4, 0x1)                    # GICD_CTLR.EnableGrp0 (ARE/DS are RAO)
    redist.mmio_write(0, 0x1_0000 + 0x100, 4, 1 << 3)  # GICR_ISENABLER0: SGI 3 (Group 0 at reset)
    regs[ICC_PMR][1](cpu, 0xFF)
    regs[ICC_IGRPEN0][1](cpu, 1)
    regs[ICC_SGI0R][1](cpu, (3 << 24) | 1)             # SGI 3 to Aff0 = 0
    assert cpu.fiq_line and not cpu.irq_line
    m.run(max_insns=200)
    assert cpu.x(5) == 0x77
    assert regs[ICC_IAR0][0](cpu) == 3

"""GICv3 for `-M virt,gic-version=3`, as QEMU 7.2 models it for a non-secure EL1 guest.

Semantics follow QEMU 7.2's TCG GIC (hw/intc/arm_gicv3.c, arm_gicv3_dist.c,
arm_gicv3_redist.c, arm_gicv3_cpuif.c, arm_gicv3_common.c) configured as the
virt board configures it: revision 3, no security extensions (GICD_CTLR.DS =
1, ARE = 1, both RAO/WI), 288 interrupt lines (INTIDs 0..287), LPIs advertised
because the board has an ITS (vmachine/intc/its.py), a cortex-a57 CPU
interface (5 priority bits, 5 preemption bits, one AP0R/AP1R register each).
The host side has the KVM vGIC device's lifecycle (addresses, CTRL_INIT,
KVM_IRQ_LINE).

Layout, as the architecture is (hold the tables against IHI 0069 ch. 12):
  * common.py: configuration, spec values, the per-vCPU record `CpuState`
    (QEMU GICv3CPUState), handlers every frame shares;
  * irqregs.py: the per-INTID register kinds (bitmaps, IPRIORITYR, ICFGR)
    with their RAZ/WI rules, described once for GICD and GICR;
  * distributor.py: `Distributor`, `GICD_REGS`: SPI state and routing;
  * redistributor.py: `Redistributor`, `GICR_REGS`: SGI/PPI state, GICR_*,
    LPIs with their property and pending tables;
  * cpuif.py: `CpuInterface`, `ICC_REGS`: priority, preemption, acknowledge,
    EOI, SGI generation, the IRQ/FIQ outputs;
  * device.py: `GicV3`: lifecycle, host API, delivery;
  * vmstate.py: the declared migration section "gicv3".
Every register is a vmachine.regs row; an unknown offset, a width a register
does not take or a misaligned access is a logged guest error and RAZ/WI
(regs.RegisterBank; QEMU gicv3_dist_read/write, gicv3_redist_read/write).

Delivery: each vCPU caches its highest-priority pending interrupt (HPPI,
QEMU's `cs->hppi`); it is recomputed for exactly the vCPUs a change can affect
(the redistributor's own vCPU, the IROUTER target of a changed SPI, old and new
target on re-routing; every vCPU only for GICD_CTLR), from a bitmap of SPIs
routed to that vCPU, so a line change costs the same with 1 or 512 vCPUs.
QEMU updates its cache incrementally and then re-evaluates every CPU's lines;
the resulting HPPI (lowest priority value, then lowest INTID) is the same.

Group 0 is signalled as FIQ (QEMU gicv3_cpuif_update). `connect()` takes an
optional `fiq_output`; without one a group-0 interrupt raises nothing (the
IRQ line is NOT raised for it), though ICC_IAR0/HPPIR0 still return it to a
polling guest. `fiq_level(cpu)` reports what the FIQ line would be.

Host-interface conventions (KVM_IRQ_LINE):
  * `irq_line(gsi, level)`: SPI, INTID = gsi + 32, gsi 0..255;
  * `irq_line(intid, level, cpu=i)`: PPI INTID 16..31 of vCPU i (SGIs cannot
    be injected as lines, as in KVM and QEMU; they come from ICC_SGI*R only).
Callbacks: `log_guest_error(what, **k)` / `log_event(what, **k)` get
`cpu=<vCPU index>` among the keywords when an access or line belongs to a
vCPU (the board uses it as the trace's CPU). Misuse raises DeviceError with
KVM's errno names: ENXIO before init (or when addresses are missing at
init), EBUSY for a second init or address change after it, EEXIST for a
second distributor address, EINVAL for bad numbers.

Every host method checks all its arguments before it changes anything (a
refused call leaves the device, its lines and the trace as they were), and
nothing it accepts can make a later guest access raise:
  * numbers (vCPU indexes, GSIs, INTIDs, addresses, counts, MPIDRs) are
    plain ints; bool, float, None, str are EINVAL (True is not vCPU 1);
  * levels (irq_line, a ppi_line callback, lpi_process) are 0, 1, False or
    True; anything else (2, -1, 1.0, None) is EINVAL;
  * vCPU indexes are 0..n-1 (-1 is EINVAL, not the last vCPU); SPIs gsi
    0..255, PPIs INTID 16..31, LPIs 8192 up to the redistributor's
    PROPBASER.IDbits (EINVAL), on a redistributor with EnableLPIs (EBUSY,
    as KVM's MSI injection) whose pending table is in RAM (EFAULT);
  * addresses are 64 KiB aligned and end below 2^48; callbacks (logs, IRQ
    and FIQ outputs) are callable; guest RAM has the methods used on it.
The ITS does not use this host API: it gets `its_port()`, the
redistributors' LPI interface, which ignores what the architecture ignores
(an INTID read from a guest table that is not an LPI the redistributor
accepts, EnableLPIs 0) so a guest's ITS command never raises.
"""
from .common import (  # the spec values, as `gicv3.NAME`
    NUM_IRQ, GIC_INTERNAL, NUM_SPI, MAX_CPUS, LPI_INTID_START, INTID_SPURIOUS, DIST_SIZE,
    REDIST_FRAME_SIZE, REDIST_FRAME_SHIFT, SGI_OFFSET, ADDR_ALIGN, ADDR_LIMIT, G0, G1S, G1NS,
    SPI_ALL, MASK32, MASK64, GICD_CTLR_EN_GRP0, GICD_CTLR_EN_GRP1NS, GICD_CTLR_ARE,
    GICD_CTLR_DS, GICD_CTLR_WRITABLE, GICD_CTLR_RESET, GICD_TYPER_VALUE, GIC_IIDR, _IDREGS,
    PIDR0_DIST, PIDR0_REDIST, IDREGS_OFFSET, IDREGS_LENGTH, GICR_CTLR_ENABLE_LPIS,
    GICR_CTLR_CES, GICR_CTLR_RESET, GICR_WAKER_PROCESSOR_SLEEP, GICR_WAKER_CHILDREN_ASLEEP,
    GICR_WAKER_RESET, GICR_TYPER_PLPIS, GICR_TYPER_LAST, GICR_TYPER_COMMON_LPI_AFF,
    GICR_ICFGR0_RESET, GICR_ICFGR1_RESET, GICD_TYPER_IDBITS, PROPBASER_IDBITS_MASK,
    PROPBASER_PA_MASK, PENDBASER_PA_MASK, LPI_CFG_ENABLE, LPI_PRIORITY_MASK, PRI_BITS, PRE_BITS,
    FULLPRIO_MASK, MIN_BPR0, MIN_BPR1, ICC_CTLR_CBPR, ICC_CTLR_EOIMODE, ICC_CTLR_WRITABLE,
    ICC_CTLR_A3V, ICC_CTLR_RESET, ICC_SRE_VALUE, APR_SHIFT,
    CpuState)
from .cpuif import ICC_REGS, CpuInterface
from .device import GicV3
from .distributor import GICD_REGS, Distributor
from .redistributor import GICR_REGS, Redistributor

__all__ = ["GicV3", "Distributor", "Redistributor", "CpuInterface", "GICD_REGS", "GICR_REGS",
           "ICC_REGS"]

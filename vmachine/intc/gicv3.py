"""GICv3 for `-M virt,gic-version=3`, as QEMU 7.2 models it for a non-secure EL1 guest.

Semantics follow QEMU 7.2's TCG GIC (hw/intc/arm_gicv3.c, arm_gicv3_dist.c,
arm_gicv3_redist.c, arm_gicv3_cpuif.c, arm_gicv3_common.c) configured as the
virt board configures it: revision 3, no security extensions (GICD_CTLR.DS =
1, ARE = 1, both RAO/WI), 288 interrupt lines (INTIDs 0..287), LPIs advertised
because the board has an ITS (LPIs: see the "LPIs" section of GicV3; the ITS
itself is vmachine/intc/its.py), a cortex-a57 CPU interface
(5 priority bits, 5 preemption bits, one AP0R/AP1R register each). The host
side has the KVM vGIC device's lifecycle (addresses, CTRL_INIT, KVM_IRQ_LINE).

Layout of this module:
  * register TABLES (`GICD_REGS`, `GICR_REGS`, `ICC_REGS`): offset or
    encoding, width(s), name, read handler, write handler, reset value -
    hold them against the GIC spec (IHI 0069) chapter 12;
  * `RegBank`: the one place where an unknown offset, a width a register does
    not take or a misaligned access becomes a logged guest error and RAZ/WI
    (QEMU gicv3_dist_read/write, gicv3_redist_read/write: never an abort);
  * `GicV3`: state, delivery (QEMU gicv3_update / gicv3_redist_update /
    gicv3_cpuif_update), the CPU interface and the host interface.

State: the distributor keeps one Python int per bitmap (bit n = INTID n, bits
0..31 always 0), a bytearray of priorities and the IROUTER words; each vCPU
(`CpuState`) holds its redistributor (32-bit SGI/PPI bitmaps, priorities,
GICR_* registers) and its CPU interface (ICC_* registers, active priorities).

Delivery: each vCPU caches its highest-priority pending interrupt (HPPI,
QEMU's `cs->hppi`); it is recomputed for exactly the vCPUs a change can affect
(the redistributor's own vCPU, the IROUTER target of a changed SPI, old and new
target on re-routing; every vCPU only for GICD_CTLR), from a bitmap of SPIs
routed to that vCPU, so a line change costs the same with 1 or 512 vCPUs.
QEMU updates its cache incrementally and then re-evaluates every CPU's lines;
the resulting HPPI (lowest priority value, then lowest INTID) is the same.

Group 0 is signalled as FIQ (QEMU gicv3_cpuif_update). vmachine's CPUs have
only an IRQ input: `connect()` takes an optional `fiq_output`; without one a
group-0 interrupt raises nothing (the IRQ line is NOT raised for it), though
ICC_IAR0/HPPIR0 still return it to a polling guest. `fiq_level(cpu)` reports
what the FIQ line would be.

Host-interface conventions (KVM_IRQ_LINE):
  * `irq_line(gsi, level)`: SPI, INTID = gsi + 32, gsi 0..255;
  * `irq_line(intid, level, cpu=i)`: PPI INTID 16..31 of vCPU i (SGIs cannot
    be injected as lines, as in KVM and QEMU; they come from ICC_SGI*R only).
Callbacks: `log_guest_error(what, **k)` / `log_event(what, **k)` get
`cpu=<vCPU index>` among the keywords when an access or line belongs to a
vCPU (the board uses it as the trace's CPU). Misuse raises DeviceError with
KVM's errno names: ENXIO before init (or when
addresses are missing at init), EBUSY for a second init or address change
after it, EEXIST for a second distributor address, EINVAL for bad numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ConfigError, DeviceError

# ---- configuration (virt board, QEMU 7.2) --------------------------------------------------------
NUM_IRQ = 288                          # virt.c NUM_IRQS (256) + GIC_INTERNAL
GIC_INTERNAL = 32
NUM_SPI = NUM_IRQ - GIC_INTERNAL
MAX_CPUS = 512
LPI_INTID_START = 8192
INTID_SPURIOUS = 1023
DIST_SIZE = 0x1_0000
REDIST_FRAME_SIZE = 0x2_0000           # RD_base + SGI_base (GICv3)
REDIST_FRAME_SHIFT = 17
SGI_OFFSET = 0x1_0000
ADDR_ALIGN = 0x1_0000                  # KVM: 64 KiB aligned bases
ADDR_LIMIT = 1 << 48

G0, G1S, G1NS = 0, 1, 2                # QEMU GICV3_G0 / GICV3_G1 / GICV3_G1NS

SPI_ALL = ((1 << NUM_IRQ) - 1) & ~0xFFFF_FFFF
MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

# GICD_CTLR with DS = 1
GICD_CTLR_EN_GRP0 = 1 << 0
GICD_CTLR_EN_GRP1NS = 1 << 1
GICD_CTLR_ARE = 1 << 4
GICD_CTLR_DS = 1 << 6
GICD_CTLR_WRITABLE = GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1NS
GICD_CTLR_RESET = GICD_CTLR_DS | GICD_CTLR_ARE                          # 0x50

# GICD_TYPER: No1N, A3V, IDbits 15 (16-bit INTIDs), LPIS, ITLinesNumber as
# QEMU computes it ((lines - 32) / 32 - 1 = 7, so INTIDs 256..287 exist but
# are not advertised), MBIS 0, SecurityExtn 0, DVIS 0 (revision 3).
GICD_TYPER_VALUE = (1 << 25) | (1 << 24) | (0xF << 19) | (1 << 17) | (NUM_SPI // 32 - 1)
GIC_IIDR = 0x43B                       # Arm, r0p0 (as a GIC-500)
# CoreSight ID registers at 0xFFD0..0xFFFC: PIDR4..7, PIDR0..3, CIDR0..3;
# PIDR0 is 0x92 in the distributor, 0x93 in a redistributor; PIDR2 = 0x3B
# (ArchRev 3). QEMU gicv3_idreg().
_IDREGS = (0x44, 0x00, 0x00, 0x00, None, 0xB4, 0x3B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
PIDR0_DIST, PIDR0_REDIST = 0x92, 0x93

# GICR_CTLR / GICR_WAKER / GICR_TYPER
GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_CTLR_CES = 1 << 1                 # QEMU with LPIs: EnableLPIs can be cleared
GICR_CTLR_RESET = GICR_CTLR_CES
GICR_WAKER_PROCESSOR_SLEEP = 1 << 1
GICR_WAKER_CHILDREN_ASLEEP = 1 << 2
GICR_WAKER_RESET = GICR_WAKER_PROCESSOR_SLEEP | GICR_WAKER_CHILDREN_ASLEEP   # 0x6
GICR_TYPER_PLPIS = 1 << 0
GICR_TYPER_LAST = 1 << 4
GICR_TYPER_COMMON_LPI_AFF = 1 << 24
GICR_EDGE_RESET = 0x0000_FFFF          # SGIs edge (RO), PPIs level at reset

# LPIs (GIC ch. 5; QEMU gicv3_internal.h): PROPBASER IDbits [4:0], PA [51:12];
# PENDBASER PA [51:16]; config byte = priority [7:2] | RES1 [1] | enable [0].
GICD_TYPER_IDBITS = 0xF                # 16-bit INTIDs: LPIs 8192..65535
PROPBASER_IDBITS_MASK = 0x1F
PROPBASER_PA_MASK = ((1 << 52) - 1) & ~0xFFF
PENDBASER_PA_MASK = ((1 << 52) - 1) & ~0xFFFF
LPI_CFG_ENABLE = 1 << 0
LPI_PRIORITY_MASK = 0xFC

# CPU interface (cortex-a57: gic_pribits = 5, prebits = 5)
PRI_BITS = 5
PRE_BITS = 5
FULLPRIO_MASK = (0xFF << (8 - PRI_BITS)) & 0xFF                         # 0xF8
MIN_BPR0 = 7 - PRE_BITS                                                 # 2
MIN_BPR1 = MIN_BPR0 + 1                                                 # 3
ICC_CTLR_CBPR = 1 << 0
ICC_CTLR_EOIMODE = 1 << 1
ICC_CTLR_WRITABLE = ICC_CTLR_CBPR | ICC_CTLR_EOIMODE
ICC_CTLR_A3V = 1 << 15
ICC_CTLR_RESET = ICC_CTLR_A3V | (1 << 11) | ((PRI_BITS - 1) << 8)       # 0x8C00
ICC_SRE_VALUE = 0x7                    # SRE, DFB, DIB: RAO/WI
APR_SHIFT = 8 - PRE_BITS               # priority >> 3 = active-priority bit


def _spread16(v: int) -> int:
    """16 edge bits -> ICFGR layout (bit k -> bit 2k+1; even bits read 0)."""
    out = 0
    for k in range(16):
        if v >> k & 1:
            out |= 2 << (2 * k)
    return out


def _gather16(v: int) -> int:
    """ICFGR layout -> 16 edge bits (the odd bits of the word)."""
    out = 0
    for k in range(16):
        if v >> (2 * k + 1) & 1:
            out |= 1 << k
    return out


def _bits(mask: int):
    """Set bit positions of `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


# ---- register tables -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Reg:
    """One register or an array of them: `length` bytes from `offset`, the
    access widths it takes, its handlers (method names of GicV3, called as
    read(cs, rel, size) / write(cs, rel, size, value), rel = offset - start)
    and the reset value as documentation (checked by the tests)."""
    offset: int
    length: int
    sizes: frozenset
    name: str
    read: str
    write: str
    reset: Any


def _r(offset, length, sizes, name, read, write, reset):
    return Reg(offset, length, frozenset(sizes), name, read, write, reset)


# Distributor (64 KiB frame). Words covering INTIDs 0..31 ("word 0" of each
# bitmap, IPRIORITYR0-7, ICFGR0-1, IROUTER0-31) and INTIDs >= 288 are RAZ/WI
# in the handlers (ARE = 1: SGIs/PPIs live in the redistributors).
GICD_REGS = (
    _r(0x0000, 4, {4}, "GICD_CTLR", "_gicd_ctlr_r", "_gicd_ctlr_w", GICD_CTLR_RESET),
    _r(0x0004, 4, {4}, "GICD_TYPER", "_gicd_typer_r", "_ro_w", GICD_TYPER_VALUE),
    _r(0x0008, 4, {4}, "GICD_IIDR", "_iidr_r", "_ro_w", GIC_IIDR),
    # 0x000C GICD_TYPER2 is reserved in QEMU 7.2: logged, RAZ/WI (RegBank).
    _r(0x0010, 4, {4}, "GICD_STATUSR", "_raz", "_wi", 0),
    # 0x0040..0x0058 SETSPI/CLRSPI: reserved (TYPER.MBIS = 0): logged RAZ/WI.
    _r(0x0080, 0x80, {4}, "GICD_IGROUPR<n>", "_gicd_igroupr_r", "_gicd_igroupr_w", 0),
    _r(0x0100, 0x80, {4}, "GICD_ISENABLER<n>", "_gicd_enable_r", "_gicd_isenabler_w", 0),
    _r(0x0180, 0x80, {4}, "GICD_ICENABLER<n>", "_gicd_enable_r", "_gicd_icenabler_w", 0),
    _r(0x0200, 0x80, {4}, "GICD_ISPENDR<n>", "_gicd_pend_r", "_gicd_ispendr_w", 0),
    _r(0x0280, 0x80, {4}, "GICD_ICPENDR<n>", "_gicd_pend_r", "_gicd_icpendr_w", 0),
    _r(0x0300, 0x80, {4}, "GICD_ISACTIVER<n>", "_gicd_active_r", "_gicd_isactiver_w", 0),
    _r(0x0380, 0x80, {4}, "GICD_ICACTIVER<n>", "_gicd_active_r", "_gicd_icactiver_w", 0),
    _r(0x0400, 0x400, {1, 4}, "GICD_IPRIORITYR<n>", "_gicd_ipriorityr_r", "_gicd_ipriorityr_w", 0),
    _r(0x0800, 0x400, {1, 4}, "GICD_ITARGETSR<n>", "_raz", "_wi", 0),
    _r(0x0C00, 0x100, {4}, "GICD_ICFGR<n>", "_gicd_icfgr_r", "_gicd_icfgr_w", 0),
    _r(0x0D00, 0x100, {4}, "GICD_IGRPMODR<n>", "_raz", "_wi", 0),
    _r(0x0E00, 0x100, {4}, "GICD_NSACR<n>", "_raz", "_wi", 0),
    _r(0x0F00, 4, {4}, "GICD_SGIR", "_wo_r", "_wi", 0),
    _r(0x0F10, 0x10, {1, 4}, "GICD_CPENDSGIR<n>", "_raz", "_wi", 0),
    _r(0x0F20, 0x10, {1, 4}, "GICD_SPENDSGIR<n>", "_raz", "_wi", 0),
    _r(0x6000, 0x1FE0, {4, 8}, "GICD_IROUTER<n>", "_gicd_irouter_r", "_gicd_irouter_w", 0),
    _r(0xFFD0, 0x30, {4}, "GICD_PIDR4..CIDR3", "_gicd_idreg_r", "_ro_w", "ID"),
)

# Redistributor frame pair: RD_base at +0, SGI_base at +0x1_0000.
GICR_REGS = (
    _r(0x0000, 4, {4}, "GICR_CTLR", "_gicr_ctlr_r", "_gicr_ctlr_w", GICR_CTLR_RESET),
    _r(0x0004, 4, {4}, "GICR_IIDR", "_iidr_r", "_ro_w", GIC_IIDR),
    _r(0x0008, 8, {4, 8}, "GICR_TYPER", "_gicr_typer_r", "_ro_w", "per frame"),
    _r(0x0010, 4, {4}, "GICR_STATUSR", "_raz", "_wi", 0),
    _r(0x0014, 4, {4}, "GICR_WAKER", "_gicr_waker_r", "_gicr_waker_w", GICR_WAKER_RESET),
    _r(0x0070, 8, {4, 8}, "GICR_PROPBASER", "_gicr_propbaser_r", "_gicr_propbaser_w", 0),
    _r(0x0078, 8, {4, 8}, "GICR_PENDBASER", "_gicr_pendbaser_r", "_gicr_pendbaser_w", 0),
    _r(0xFFD0, 0x30, {4}, "GICR_PIDR4..CIDR3", "_gicr_idreg_r", "_ro_w", "ID"),
    _r(SGI_OFFSET + 0x0080, 4, {4}, "GICR_IGROUPR0", "_gicr_igroupr0_r", "_gicr_igroupr0_w", 0),
    _r(SGI_OFFSET + 0x0100, 4, {4}, "GICR_ISENABLER0", "_gicr_enable_r", "_gicr_isenabler0_w", 0),
    _r(SGI_OFFSET + 0x0180, 4, {4}, "GICR_ICENABLER0", "_gicr_enable_r", "_gicr_icenabler0_w", 0),
    _r(SGI_OFFSET + 0x0200, 4, {4}, "GICR_ISPENDR0", "_gicr_pend_r", "_gicr_ispendr0_w", 0),
    _r(SGI_OFFSET + 0x0280, 4, {4}, "GICR_ICPENDR0", "_gicr_pend_r", "_gicr_icpendr0_w", 0),
    _r(SGI_OFFSET + 0x0300, 4, {4}, "GICR_ISACTIVER0", "_gicr_active_r", "_gicr_isactiver0_w", 0),
    _r(SGI_OFFSET + 0x0380, 4, {4}, "GICR_ICACTIVER0", "_gicr_active_r", "_gicr_icactiver0_w", 0),
    _r(SGI_OFFSET + 0x0400, 0x20, {1, 4}, "GICR_IPRIORITYR<n>", "_gicr_ipriorityr_r", "_gicr_ipriorityr_w", 0),
    _r(SGI_OFFSET + 0x0C00, 4, {4}, "GICR_ICFGR0", "_gicr_icfgr0_r", "_wi", 0xAAAA_AAAA),
    _r(SGI_OFFSET + 0x0C04, 4, {4}, "GICR_ICFGR1", "_gicr_icfgr1_r", "_gicr_icfgr1_w", 0),
    _r(SGI_OFFSET + 0x0D00, 4, {4}, "GICR_IGRPMODR0", "_raz", "_wi", 0),
    _r(SGI_OFFSET + 0x0E00, 4, {4}, "GICR_NSACR", "_raz", "_wi", 0),
)


@dataclass(frozen=True)
class SysReg:
    """An ICC_* system register: encoding, handlers (None: that direction is
    UNDEFINED and left to the CPU), reset value as documentation."""
    key: tuple[int, int, int, int, int]          # (op0, op1, CRn, CRm, op2)
    name: str
    read: str | None
    write: str | None
    reset: Any


# The EL1 CPU interface. Only AP0R0/AP1R0 exist (5 preemption bits: one APR
# each); EL2/EL3 registers (ICC_SRE_EL2, ICC_CTLR_EL3, ...) are not offered:
# the guest runs at EL1 only, where they are UNDEFINED.
ICC_REGS = (
    SysReg((3, 0, 4, 6, 0), "ICC_PMR_EL1", "_icc_pmr_r", "_icc_pmr_w", 0),
    SysReg((3, 0, 12, 8, 0), "ICC_IAR0_EL1", "_icc_iar0_r", None, None),
    SysReg((3, 0, 12, 8, 1), "ICC_EOIR0_EL1", None, "_icc_eoir0_w", None),
    SysReg((3, 0, 12, 8, 2), "ICC_HPPIR0_EL1", "_icc_hppir0_r", None, None),
    SysReg((3, 0, 12, 8, 3), "ICC_BPR0_EL1", "_icc_bpr0_r", "_icc_bpr0_w", MIN_BPR0),
    SysReg((3, 0, 12, 8, 4), "ICC_AP0R0_EL1", "_icc_ap0r0_r", "_icc_ap0r0_w", 0),
    SysReg((3, 0, 12, 9, 0), "ICC_AP1R0_EL1", "_icc_ap1r0_r", "_icc_ap1r0_w", 0),
    SysReg((3, 0, 12, 11, 1), "ICC_DIR_EL1", None, "_icc_dir_w", None),
    SysReg((3, 0, 12, 11, 3), "ICC_RPR_EL1", "_icc_rpr_r", None, 0xFF),
    SysReg((3, 0, 12, 11, 5), "ICC_SGI1R_EL1", None, "_icc_sgi1r_w", None),
    SysReg((3, 0, 12, 11, 6), "ICC_ASGI1R_EL1", None, "_icc_asgi1r_w", None),
    SysReg((3, 0, 12, 11, 7), "ICC_SGI0R_EL1", None, "_icc_sgi0r_w", None),
    SysReg((3, 0, 12, 12, 0), "ICC_IAR1_EL1", "_icc_iar1_r", None, None),
    SysReg((3, 0, 12, 12, 1), "ICC_EOIR1_EL1", None, "_icc_eoir1_w", None),
    SysReg((3, 0, 12, 12, 2), "ICC_HPPIR1_EL1", "_icc_hppir1_r", None, None),
    SysReg((3, 0, 12, 12, 3), "ICC_BPR1_EL1", "_icc_bpr1_r", "_icc_bpr1_w", MIN_BPR1),
    SysReg((3, 0, 12, 12, 4), "ICC_CTLR_EL1", "_icc_ctlr_r", "_icc_ctlr_w", ICC_CTLR_RESET),
    SysReg((3, 0, 12, 12, 5), "ICC_SRE_EL1", "_icc_sre_r", "_icc_sre_w", ICC_SRE_VALUE),
    SysReg((3, 0, 12, 12, 6), "ICC_IGRPEN0_EL1", "_icc_igrpen0_r", "_icc_igrpen0_w", 0),
    SysReg((3, 0, 12, 12, 7), "ICC_IGRPEN1_EL1", "_icc_igrpen1_r", "_icc_igrpen1_w", 0),
)


class RegBank:
    """Offset -> register lookup for one MMIO frame, and the single place
    where bad accesses become logged guest errors with RAZ/WI."""

    def __init__(self, owner: "GicV3", regs: tuple, frame: str):
        self.frame = frame
        self.by_word: dict[int, tuple[Reg, Callable, Callable]] = {}
        for r in regs:
            entry = (r, getattr(owner, r.read), getattr(owner, r.write))
            for w in range(r.offset, r.offset + r.length, 4):
                self.by_word[w] = entry
        self.owner = owner

    def _find(self, offset: int, size: int):
        e = self.by_word.get(offset & ~3)
        if e is None or size not in e[0].sizes or offset % size:
            return None
        return e

    def read(self, cs, offset: int, size: int, cpu: int) -> int:
        e = self._find(offset, size)
        if e is None:
            self.owner.guest_error(f"GICv3 {self.frame}: invalid read", cpu=cpu, offset=offset, size=size)
            return 0
        return e[1](cs, offset - e[0].offset, size) & ((1 << (8 * size)) - 1)

    def write(self, cs, offset: int, size: int, value: int, cpu: int) -> None:
        e = self._find(offset, size)
        if e is None:
            self.owner.guest_error(f"GICv3 {self.frame}: invalid write", cpu=cpu, offset=offset,
                                   size=size, value=value)
            return
        e[2](cs, offset - e[0].offset, size, value & ((1 << (8 * size)) - 1))


class CpuState:
    """One vCPU's redistributor and CPU interface (QEMU GICv3CPUState)."""

    __slots__ = ("index", "affinity", "typer", "irq_out", "fiq_out", "irq_level", "fiq_level",
                 "gicr_ctlr", "waker", "propbaser", "pendbaser", "igroupr0", "ienabler0",
                 "ipendr0", "iactiver0", "edge_trigger", "level", "ipriority",
                 "icc_ctlr", "pmr", "bpr0", "bpr1", "ap0r0", "ap1r0", "igrpen0", "igrpen1",
                 "hppi_irq", "hppi_prio", "hppi_grp",
                 "lpi_pending", "lpi_cfg", "hpplpi_irq", "hpplpi_prio")

    REDIST_FIELDS = ("gicr_ctlr", "waker", "propbaser", "pendbaser", "igroupr0", "ienabler0",
                     "ipendr0", "iactiver0", "edge_trigger", "level")
    CPUIF_FIELDS = ("icc_ctlr", "pmr", "bpr0", "bpr1", "ap0r0", "ap1r0", "igrpen0", "igrpen1")

    def __init__(self, index: int, affinity: int, typer: int):
        self.index = index
        self.affinity = affinity
        self.typer = typer
        self.irq_out: Callable[[bool], None] = lambda level: None
        self.fiq_out: Callable[[bool], None] = lambda level: None
        self.irq_level = self.fiq_level = False
        self.ipriority = bytearray(GIC_INTERNAL)
        self.reset_redist()
        self.reset_cpuif()
        self.hppi_irq, self.hppi_prio, self.hppi_grp = INTID_SPURIOUS, 0xFF, G0

    def reset_redist(self) -> None:
        """QEMU arm_gicv3_common_reset (per CPU)."""
        self.gicr_ctlr = GICR_CTLR_RESET
        self.waker = GICR_WAKER_RESET
        self.propbaser = self.pendbaser = 0
        self.igroupr0 = self.ienabler0 = self.ipendr0 = self.iactiver0 = 0
        self.edge_trigger = GICR_EDGE_RESET
        self.level = 0
        self.ipriority[:] = bytes(GIC_INTERNAL)
        self.lpi_pending: set[int] = set()     # pending LPIs (mirrored in the pending table)
        self.lpi_cfg: dict[int, int] = {}      # config byte of each pending LPI, as last read
        self.hpplpi_irq, self.hpplpi_prio = INTID_SPURIOUS, 0xFF

    def reset_cpuif(self) -> None:
        """QEMU icc_reset (the CPU interface is in the CPU's reset domain)."""
        self.icc_ctlr = ICC_CTLR_RESET
        self.pmr = 0
        self.bpr0, self.bpr1 = MIN_BPR0, MIN_BPR1
        self.ap0r0 = self.ap1r0 = 0
        self.igrpen0 = self.igrpen1 = 0


class _Distributor:
    """The distributor's MMIO window."""

    def __init__(self, gic: "GicV3"):
        self.gic = gic
        self.bank = RegBank(gic, GICD_REGS, "GICD")

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        return self.bank.read(None, offset, size, cpu)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        self.bank.write(None, offset, size, value, cpu)


class _RedistRegion:
    """One redistributor region: `frames` frame pairs, the first belonging to
    vCPU `first_cpu` (frame -> vCPU by offset >> 17, O(1))."""

    def __init__(self, gic: "GicV3", first_cpu: int, frames: int, bank: RegBank):
        self.gic, self.first_cpu, self.frames, self.bank = gic, first_cpu, frames, bank

    def _cs(self, cpu: int, offset: int, write: bool) -> CpuState | None:
        idx = self.first_cpu + (offset >> REDIST_FRAME_SHIFT)
        if idx < len(self.gic.cpus):
            return self.gic.cpus[idx]
        self.gic.guest_error(f"GICv3 GICR: {'write to' if write else 'read of'} a frame with no vCPU",
                             cpu=cpu, offset=offset)
        return None

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        cs = self._cs(cpu, offset, False)
        return 0 if cs is None else self.bank.read(cs, offset & (REDIST_FRAME_SIZE - 1), size, cpu)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        cs = self._cs(cpu, offset, True)
        if cs is not None:
            self.bank.write(cs, offset & (REDIST_FRAME_SIZE - 1), size, value, cpu)


class GicV3:
    """The GICv3 device: distributor, redistributors, CPU interfaces."""

    STATE_VERSION = 1

    def __init__(self, log_guest_error: Callable[..., None] = lambda what, **k: None,
                 log_event: Callable[..., None] = lambda what, **k: None):
        self.guest_error = log_guest_error
        self.event = log_event
        self.dist_base: int | None = None
        self.regions: list[tuple[int, int]] = []          # (base, frames)
        self.initialised = False
        self.cpus: list[CpuState] = []
        self._windows: list[tuple[str, int, int, object]] = []
        self._spi_target: dict[int, int] = {}              # Aff3.Aff2.Aff1.Aff0 -> vCPU
        self._sgi_clusters: dict[int, list[int]] = {}      # Aff3.Aff2.Aff1 -> 16 x vCPU (-1)
        # distributor state (bit n = INTID n)
        self.d_prio = bytearray(NUM_IRQ)
        self.d_irouter = [0] * NUM_IRQ
        self.d_target = [-1] * NUM_IRQ
        self._spi_mask: list[int] = []                     # per vCPU: SPIs routed to it
        self.ram = None                                    # guest RAM for the LPI tables
        self._reset_dist()

    def attach_memory(self, ram) -> None:
        """Guest RAM (contains/read/write) holding the LPI property and pending
        tables; without it every table address is outside RAM."""
        self.ram = ram

    # ---- KVM-style lifecycle ----------------------------------------------------------------------
    def _check_not_init(self, what: str) -> None:
        if self.initialised:
            raise DeviceError("EBUSY", f"GICv3: {what} after KVM_DEV_ARM_VGIC_CTRL_INIT")

    def _check_range(self, base: int, size: int, what: str) -> None:
        if not isinstance(base, int) or base < 0 or base % ADDR_ALIGN or base + size > ADDR_LIMIT:
            raise DeviceError("EINVAL", f"GICv3: {what} base {base!r} must be 64 KiB aligned "
                                        f"and below 2^48")
        spans = [(self.dist_base, DIST_SIZE)] if self.dist_base is not None else []
        spans += [(b, n * REDIST_FRAME_SIZE) for b, n in self.regions]
        for b, s in spans:
            if base < b + s and b < base + size:
                raise DeviceError("EINVAL", f"GICv3: {what} {base:#x}+{size:#x} overlaps "
                                            f"{b:#x}+{s:#x}")

    def set_dist_addr(self, base: int) -> None:
        """KVM_VGIC_V3_ADDR_TYPE_DIST."""
        self._check_not_init("setting the distributor address")
        if self.dist_base is not None:
            raise DeviceError("EEXIST", "GICv3: distributor address already set")
        self._check_range(base, DIST_SIZE, "distributor")
        self.dist_base = base

    def add_redist_region(self, base: int, count: int) -> None:
        """KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION: region index = call order,
        `count` frame pairs (128 KiB each), one per vCPU."""
        self._check_not_init("adding a redistributor region")
        if not isinstance(count, int) or not 1 <= count <= MAX_CPUS:
            raise DeviceError("EINVAL", f"GICv3: redistributor region count {count!r} "
                                        f"(1..{MAX_CPUS})")
        self._check_range(base, count * REDIST_FRAME_SIZE, "redistributor region")
        self.regions.append((base, count))

    def init(self, cpus: list) -> None:
        """KVM_DEV_ARM_VGIC_CTRL_INIT: fix the vCPUs, build per-CPU state."""
        self._check_not_init("second init")
        if self.dist_base is None:
            raise DeviceError("ENXIO", "GICv3: distributor address not set")
        frames = sum(n for _, n in self.regions)
        if not cpus or len(cpus) > MAX_CPUS:
            raise DeviceError("EINVAL", f"GICv3: {len(cpus)} vCPUs (1..{MAX_CPUS})")
        if frames < len(cpus):
            raise DeviceError("ENXIO", f"GICv3: redistributor regions hold {frames} frames "
                                       f"for {len(cpus)} vCPUs")
        states: list[CpuState] = []
        by_aff: dict[int, int] = {}
        for i, cpu in enumerate(cpus):
            if getattr(cpu, "index", None) != i:
                raise DeviceError("EINVAL", f"GICv3: vCPU at position {i} has index "
                                            f"{getattr(cpu, 'index', None)!r}")
            mpidr = int(cpu.mpidr)
            aff = ((mpidr >> 32) & 0xFF) << 24 | (mpidr & 0xFF_FFFF)
            if aff in by_aff:
                raise DeviceError("EINVAL", f"GICv3: vCPUs {by_aff[aff]} and {i} "
                                            f"share affinity {aff:#x}")
            by_aff[aff] = i
            states.append(CpuState(i, aff, (aff << 32) | GICR_TYPER_COMMON_LPI_AFF | (i << 8)
                                   | GICR_TYPER_PLPIS))
        # Last: the last frame of each region (or the last vCPU), as KVM's vGIC.
        first = 0
        self._windows = [("gicv3-dist", self.dist_base, DIST_SIZE, _Distributor(self))]
        rbank = RegBank(self, GICR_REGS, "GICR")
        for r, (base, n) in enumerate(self.regions):
            used = min(n, len(states) - first)
            if used > 0:
                states[first + used - 1].typer |= GICR_TYPER_LAST
            self._windows.append((f"gicv3-redist{r}", base, n * REDIST_FRAME_SIZE,
                                  _RedistRegion(self, first, n, rbank)))
            first += max(used, 0)
        self.cpus = states
        self._spi_target = by_aff
        for cs in states:
            cluster = self._sgi_clusters.setdefault(cs.affinity >> 8, [-1] * 16)
            if cs.affinity & 0xFF < 16:
                cluster[cs.affinity & 0xFF] = cs.index
        self._spi_mask = [0] * len(states)
        self.initialised = True
        self._retarget_all()
        self._refresh_dist()

    def _need_init(self) -> None:
        if not self.initialised:
            raise DeviceError("ENXIO", "GICv3: not initialised (KVM_DEV_ARM_VGIC_CTRL_INIT)")

    def _cpu(self, cpu_index: int) -> CpuState:
        self._need_init()
        if not isinstance(cpu_index, int) or not 0 <= cpu_index < len(self.cpus):
            raise DeviceError("EINVAL", f"GICv3: no vCPU {cpu_index!r}")
        return self.cpus[cpu_index]

    def mmio_windows(self) -> list[tuple[str, int, int, object]]:
        """(name, base, size, device) for machine.mmio.add: the distributor and
        each redistributor region (frames * 128 KiB)."""
        self._need_init()
        return list(self._windows)

    def sysregs(self, cpu_index: int) -> dict:
        """The ICC_* registers of one vCPU: {(op0, op1, CRn, CRm, op2): (read, write)}."""
        cs = self._cpu(cpu_index)
        table = {}
        for r in ICC_REGS:
            rd = getattr(self, r.read) if r.read else None
            wr = getattr(self, r.write) if r.write else None
            table[r.key] = ((lambda _cpu, f=rd: f(cs)) if rd else None,
                            (lambda _cpu, v, f=wr: f(cs, v & MASK64)) if wr else None)
        return table

    def connect(self, cpu_index: int, irq_output: Callable[[bool], None],
                fiq_output: Callable[[bool], None] | None = None) -> None:
        """The vCPU's IRQ input (and optionally FIQ, for group 0); both are
        driven with their current level at once."""
        cs = self._cpu(cpu_index)
        cs.irq_out = irq_output
        cs.fiq_out = fiq_output if fiq_output is not None else (lambda level: None)
        cs.irq_out(cs.irq_level)
        cs.fiq_out(cs.fiq_level)

    def irq_level(self, cpu_index: int) -> bool:
        return self._cpu(cpu_index).irq_level

    def fiq_level(self, cpu_index: int) -> bool:
        return self._cpu(cpu_index).fiq_level

    def irq_line(self, gsi: int, level: int, cpu: int | None = None) -> None:
        """KVM_IRQ_LINE. cpu None: SPI gsi (INTID gsi + 32, gsi 0..255).
        cpu = i: PPI INTID `gsi` (16..31) of vCPU i."""
        self._need_init()
        if cpu is None:
            if not isinstance(gsi, int) or not 0 <= gsi < NUM_SPI:
                raise DeviceError("EINVAL", f"GICv3: SPI {gsi!r} out of range (0..{NUM_SPI - 1})")
            self.event("irq_line", intid=gsi + GIC_INTERNAL, level=int(bool(level)))
            self._dist_set_irq(gsi + GIC_INTERNAL, bool(level))
            return
        cs = self._cpu(cpu)
        if not isinstance(gsi, int) or not 16 <= gsi < GIC_INTERNAL:
            raise DeviceError("EINVAL", f"GICv3: PPI INTID {gsi!r} out of range (16..31)")
        self.event("irq_line", intid=gsi, cpu=cpu, level=int(bool(level)))
        self._redist_set_irq(cs, gsi, bool(level))

    def ppi_line(self, cpu_index: int, intid: int) -> Callable[[int], None]:
        """A level callback for PPI `intid` (16..31) of one vCPU (a timer output)."""
        cs = self._cpu(cpu_index)
        if not isinstance(intid, int) or not 16 <= intid < GIC_INTERNAL:
            raise DeviceError("EINVAL", f"GICv3: PPI INTID {intid!r} out of range (16..31)")
        return lambda level: self._redist_set_irq(cs, intid, bool(level))

    def reset(self) -> None:
        """Machine reset: distributor, redistributors and CPU interfaces (QEMU
        resets the last with the CPU); every output goes low."""
        self._reset_dist()
        for cs in self.cpus:
            cs.reset_redist()
            cs.reset_cpuif()
        if self.initialised:
            self._retarget_all()
            self._refresh_dist()
            self._update_all()

    # ---- distributor state ------------------------------------------------------------------------
    def _reset_dist(self) -> None:
        self.d_ctlr = GICD_CTLR_RESET
        self.d_group = self.d_enabled = self.d_pending = self.d_active = 0
        self.d_level = self.d_edge = 0
        self.d_prio[:] = bytes(NUM_IRQ)
        self.d_irouter[:] = [0] * NUM_IRQ
        self._d_elig = 0

    def _retarget_all(self) -> None:
        self._spi_mask = [0] * len(self.cpus)
        for irq in range(GIC_INTERNAL, NUM_IRQ):
            self.d_target[irq] = -1
            self._route(irq)

    def _route(self, irq: int) -> int:
        """QEMU gicv3_cache_target_cpustate: IROUTER Aff3.Aff2.Aff1.Aff0 names
        the target (IRM is not acted on: the affinity decides); no match =
        no target (the SPI stays pending). Returns the old target."""
        old = self.d_target[irq]
        r = self.d_irouter[irq]
        new = self._spi_target.get(((r >> 32) & 0xFF) << 24 | (r & 0xFF_FFFF), -1)
        if old != new:
            if old >= 0:
                self._spi_mask[old] &= ~(1 << irq)
            if new >= 0:
                self._spi_mask[new] |= 1 << irq
            self.d_target[irq] = new
        return old

    def _refresh_dist(self) -> None:
        """SPIs that may be signalled: (latch | level-sensitive line) & enabled
        & !active & group enabled in GICD_CTLR (QEMU gicd_int_pending)."""
        grpmask = 0
        if self.d_ctlr & GICD_CTLR_EN_GRP1NS:
            grpmask |= self.d_group
        if self.d_ctlr & GICD_CTLR_EN_GRP0:
            grpmask |= ~self.d_group & SPI_ALL
        self._d_elig = ((self.d_pending | (self.d_level & ~self.d_edge)) & self.d_enabled
                        & ~self.d_active & grpmask)

    def _update_spis(self, mask: int) -> None:
        """Distributor state changed for the SPIs in `mask`: refresh their targets."""
        self._refresh_dist()
        targets = {self.d_target[i] for i in _bits(mask & SPI_ALL)}
        targets.discard(-1)
        for t in sorted(targets):
            self._update_cpu(self.cpus[t])

    def _update_all(self) -> None:
        for cs in self.cpus:
            self._update_cpu(cs)

    def _dist_set_irq(self, irq: int, level: bool) -> None:
        """QEMU gicv3_dist_set_irq: a rising edge latches pending when edge-triggered."""
        bit = 1 << irq
        if bool(self.d_level & bit) == level:
            return
        if level:
            self.d_level |= bit
            if self.d_edge & bit:
                self.d_pending |= bit
        else:
            self.d_level &= ~bit
        self._update_spis(bit)

    def _redist_set_irq(self, cs: CpuState, irq: int, level: bool) -> None:
        """QEMU gicv3_redist_set_irq."""
        bit = 1 << irq
        if bool(cs.level & bit) == level:
            return
        if level:
            cs.level |= bit
            if cs.edge_trigger & bit:
                cs.ipendr0 |= bit
        else:
            cs.level &= ~bit
        self._update_cpu(cs)

    # ---- delivery -------------------------------------------------------------------------------------
    def _update_cpu(self, cs: CpuState) -> None:
        self._compute_hppi(cs)
        self._cpuif_update(cs)

    def _compute_hppi(self, cs: CpuState) -> None:
        """Highest-priority pending interrupt for this vCPU among its SGIs/PPIs
        and the SPIs routed to it; ties go to the lowest INTID (QEMU irqbetter).
        Priority 0xFF is never signalled (it is QEMU's "nothing pending")."""
        ctlr = self.d_ctlr
        grpmask = 0
        if ctlr & GICD_CTLR_EN_GRP1NS:
            grpmask |= cs.igroupr0
        if ctlr & GICD_CTLR_EN_GRP0:
            grpmask |= ~cs.igroupr0 & MASK32
        pend = ((cs.ipendr0 | (cs.level & ~cs.edge_trigger)) & cs.ienabler0 & ~cs.iactiver0
                & grpmask)
        best_prio, best_irq = 0xFF, INTID_SPURIOUS
        prio = cs.ipriority
        for i in _bits(pend):
            if prio[i] < best_prio:
                best_prio, best_irq = prio[i], i
        dprio = self.d_prio
        for i in _bits(self._d_elig & self._spi_mask[cs.index]):
            if dprio[i] < best_prio:
                best_prio, best_irq = dprio[i], i
        # LPIs (QEMU gicv3_redist_update_noirqset): Group 1 NS, only with
        # EnableGrp1NS and EnableLPIs; on a priority tie the lower INTID wins,
        # and every SGI/PPI/SPI INTID is lower than an LPI's.
        if cs.hpplpi_prio < best_prio and ctlr & GICD_CTLR_EN_GRP1NS \
                and cs.gicr_ctlr & GICR_CTLR_ENABLE_LPIS:
            best_prio, best_irq = cs.hpplpi_prio, cs.hpplpi_irq
        cs.hppi_prio, cs.hppi_irq = best_prio, best_irq
        if best_prio != 0xFF:
            cs.hppi_grp = self._irq_group(cs, best_irq)

    def _irq_group(self, cs: CpuState, irq: int) -> int:
        """DS = 1: group bit 1 = Group 1 NS, 0 = Group 0 (IGRPMODR is RAZ).
        LPIs are always Group 1 NS."""
        if irq >= LPI_INTID_START:
            return G1NS
        if irq < GIC_INTERNAL:
            return G1NS if cs.igroupr0 >> irq & 1 else G0
        return G1NS if self.d_group >> irq & 1 else G0

    def _cpuif_update(self, cs: CpuState) -> None:
        """QEMU gicv3_cpuif_update: Group 0 -> FIQ, Group 1 NS -> IRQ."""
        irq = fiq = False
        if self._hppi_can_preempt(cs):
            if cs.hppi_grp == G0:
                fiq = True
            else:
                irq = True
        if fiq != cs.fiq_level:
            cs.fiq_level = fiq
            cs.fiq_out(fiq)
        if irq != cs.irq_level:
            cs.irq_level = irq
            cs.irq_out(irq)

    @staticmethod
    def _no_enabled_hppi(cs: CpuState) -> bool:
        """Nothing pending, or the HPPI's group disabled in ICC_IGRPEN<n>."""
        if cs.hppi_prio == 0xFF:
            return True
        return not (cs.igrpen0 if cs.hppi_grp == G0 else cs.igrpen1)

    @staticmethod
    def _highest_active_prio(cs: CpuState) -> int:
        """Running priority from the active-priority bits (0xFF: idle)."""
        apr = cs.ap0r0 | cs.ap1r0
        if not apr:
            return 0xFF
        return ((apr & -apr).bit_length() - 1) << APR_SHIFT

    @staticmethod
    def _gprio_mask(cs: CpuState, grp: int) -> int:
        """Group-priority mask from the binary point (QEMU icc_gprio_mask):
        BPR0 = n keeps bits [7:n+1], BPR1 = n keeps bits [7:n]; CBPR makes
        group 1 use BPR0. (A BPR1 of 0, reachable by writing 8, keeps all bits;
        QEMU would assert there.)"""
        if grp == G1NS and cs.icc_ctlr & ICC_CTLR_CBPR:
            grp = G0
        if grp == G0:
            bpr = cs.bpr0 & 7
        else:
            bpr = max((cs.bpr1 & 7) - 1, -1)
        return (0xFF << (bpr + 1)) & 0xFF if bpr >= 0 else 0xFF

    def _hppi_can_preempt(self, cs: CpuState) -> bool:
        """QEMU icc_hppi_can_preempt: enabled, below PMR, and its group
        priority beats the running priority."""
        if self._no_enabled_hppi(cs):
            return False
        if cs.hppi_prio >= cs.pmr:
            return False
        rprio = self._highest_active_prio(cs)
        if rprio == 0xFF:
            return True
        mask = self._gprio_mask(cs, cs.hppi_grp)
        return (cs.hppi_prio & mask) < (rprio & mask)

    def _activate(self, cs: CpuState, irq: int) -> None:
        """QEMU icc_activate_irq: set the active-priority bit, pending -> active."""
        prio = cs.hppi_prio & self._gprio_mask(cs, cs.hppi_grp)
        bit = 1 << (prio >> APR_SHIFT)
        if cs.hppi_grp == G0:
            cs.ap0r0 |= bit
        else:
            cs.ap1r0 |= bit
        if irq >= LPI_INTID_START:
            # No active state: acknowledging clears pending (in the set and the
            # pending table), QEMU icc_activate_irq -> gicv3_redist_lpi_pending(0).
            self._lpi_set_pending(cs, irq, False)
            self._update_cpu(cs)
        elif irq < GIC_INTERNAL:
            cs.iactiver0 |= 1 << irq
            cs.ipendr0 &= ~(1 << irq)
            self._update_cpu(cs)
        else:
            self.d_active |= 1 << irq
            self.d_pending &= ~(1 << irq)
            self._update_spis(1 << irq)
            if self.d_target[irq] != cs.index:
                self._update_cpu(cs)

    def _deactivate(self, cs: CpuState, irq: int) -> None:
        """QEMU icc_deactivate_irq: SGI/PPI on this vCPU, SPI in the distributor."""
        if irq < GIC_INTERNAL:
            cs.iactiver0 &= ~(1 << irq)
            self._update_cpu(cs)
        elif irq < NUM_IRQ:
            self.d_active &= ~(1 << irq)
            self._update_spis(1 << irq)

    def _highest_active_group(self, cs: CpuState) -> int:
        """The group owning the lowest set active-priority bit (G0 on a tie), -1 if none."""
        g0 = (cs.ap0r0 & -cs.ap0r0).bit_length() - 1 if cs.ap0r0 else 32
        g1 = (cs.ap1r0 & -cs.ap1r0).bit_length() - 1 if cs.ap1r0 else 32
        if g1 < g0:
            return G1NS
        if g0 < 32:
            return G0
        return -1

    def _drop_prio(self, cs: CpuState, grp: int) -> None:
        if grp == G0:
            cs.ap0r0 &= cs.ap0r0 - 1
        else:
            cs.ap1r0 &= cs.ap1r0 - 1
        self._cpuif_update(cs)

    # ---- CPU interface (ICC_*_EL1, QEMU arm_gicv3_cpuif.c) -------------------------------------------
    def _icc_pmr_r(self, cs: CpuState) -> int:
        return cs.pmr

    def _icc_pmr_w(self, cs: CpuState, v: int) -> None:
        cs.pmr = v & FULLPRIO_MASK
        self._cpuif_update(cs)

    def _hppir0_value(self, cs: CpuState) -> int:
        if self._no_enabled_hppi(cs) or cs.hppi_grp != G0:
            return INTID_SPURIOUS
        return cs.hppi_irq

    def _hppir1_value(self, cs: CpuState) -> int:
        if self._no_enabled_hppi(cs) or cs.hppi_grp == G0:
            return INTID_SPURIOUS
        return cs.hppi_irq

    def _icc_iar0_r(self, cs: CpuState) -> int:
        intid = self._hppir0_value(cs) if self._hppi_can_preempt(cs) else INTID_SPURIOUS
        if intid < 1020 or intid >= LPI_INTID_START:     # not a special INTID
            self._activate(cs, intid)
        return intid

    def _icc_iar1_r(self, cs: CpuState) -> int:
        intid = self._hppir1_value(cs) if self._hppi_can_preempt(cs) else INTID_SPURIOUS
        if intid < 1020 or intid >= LPI_INTID_START:     # not a special INTID
            self._activate(cs, intid)
        return intid

    def _icc_hppir0_r(self, cs: CpuState) -> int:
        return self._hppir0_value(cs)

    def _icc_hppir1_r(self, cs: CpuState) -> int:
        return self._hppir1_value(cs)

    def _eoir(self, cs: CpuState, v: int, grp: int) -> None:
        """QEMU icc_eoir_write: drop the running priority of `grp` if it owns
        the highest active priority; deactivate too unless EOImode = 1."""
        irq = v & 0xFF_FFFF
        if irq >= NUM_IRQ and irq < LPI_INTID_START:
            return                                     # spurious IDs, nonexistent INTIDs
        active = self._highest_active_group(cs)
        if active < 0:
            self.guest_error("GICv3: EOI with no active interrupt", cpu=cs.index, intid=irq)
            return
        if active != grp:
            return
        self._drop_prio(cs, grp)
        if not cs.icc_ctlr & ICC_CTLR_EOIMODE:
            self._deactivate(cs, irq)                  # (LPIs have no active state)

    def _icc_eoir0_w(self, cs: CpuState, v: int) -> None:
        self._eoir(cs, v, G0)

    def _icc_eoir1_w(self, cs: CpuState, v: int) -> None:
        self._eoir(cs, v, G1NS)

    def _icc_dir_w(self, cs: CpuState, v: int) -> None:
        """Deactivate (only with EOImode = 1; any group may be deactivated from
        NS EL1 when DS = 1 and there is no EL2/EL3)."""
        irq = v & 0xFF_FFFF
        if irq >= NUM_IRQ or not cs.icc_ctlr & ICC_CTLR_EOIMODE:
            return
        self._deactivate(cs, irq)

    def _icc_rpr_r(self, cs: CpuState) -> int:
        return self._highest_active_prio(cs)

    def _icc_bpr0_r(self, cs: CpuState) -> int:
        return cs.bpr0

    def _icc_bpr0_w(self, cs: CpuState, v: int) -> None:
        cs.bpr0 = max(v, MIN_BPR0) & 7
        self._cpuif_update(cs)

    def _icc_bpr1_r(self, cs: CpuState) -> int:
        if cs.icc_ctlr & ICC_CTLR_CBPR:
            return min(cs.bpr0 + 1, 7)
        return cs.bpr1

    def _icc_bpr1_w(self, cs: CpuState, v: int) -> None:
        if cs.icc_ctlr & ICC_CTLR_CBPR:
            return                                     # CBPR: BPR1 writes ignored
        cs.bpr1 = max(v, MIN_BPR1) & 7
        self._cpuif_update(cs)

    def _icc_ap0r0_r(self, cs: CpuState) -> int:
        return cs.ap0r0

    def _icc_ap0r0_w(self, cs: CpuState, v: int) -> None:
        cs.ap0r0 = v & MASK32
        self._cpuif_update(cs)

    def _icc_ap1r0_r(self, cs: CpuState) -> int:
        return cs.ap1r0

    def _icc_ap1r0_w(self, cs: CpuState, v: int) -> None:
        cs.ap1r0 = v & MASK32
        self._cpuif_update(cs)

    def _icc_ctlr_r(self, cs: CpuState) -> int:
        return cs.icc_ctlr

    def _icc_ctlr_w(self, cs: CpuState, v: int) -> None:
        cs.icc_ctlr = (cs.icc_ctlr & ~ICC_CTLR_WRITABLE) | (v & ICC_CTLR_WRITABLE)
        self._cpuif_update(cs)

    def _icc_sre_r(self, cs: CpuState) -> int:
        return ICC_SRE_VALUE

    def _icc_sre_w(self, cs: CpuState, v: int) -> None:
        pass

    def _icc_igrpen0_r(self, cs: CpuState) -> int:
        return cs.igrpen0

    def _icc_igrpen0_w(self, cs: CpuState, v: int) -> None:
        cs.igrpen0 = v & 1
        self._cpuif_update(cs)

    def _icc_igrpen1_r(self, cs: CpuState) -> int:
        return cs.igrpen1

    def _icc_igrpen1_w(self, cs: CpuState, v: int) -> None:
        cs.igrpen1 = v & 1
        self._cpuif_update(cs)

    def _icc_sgi1r_w(self, cs: CpuState, v: int) -> None:
        self._generate_sgi(cs, v, G1NS)

    def _icc_asgi1r_w(self, cs: CpuState, v: int) -> None:
        # Group 1 of the other security state = Secure Group 1, which DS = 1
        # turns into Group 0 (QEMU icc_generate_sgi).
        self._generate_sgi(cs, v, G1S)

    def _icc_sgi0r_w(self, cs: CpuState, v: int) -> None:
        self._generate_sgi(cs, v, G0)

    def _generate_sgi(self, src: CpuState, v: int, grp: int) -> None:
        """ICC_SGI1R layout: TargetList [15:0] (bit = Aff0), Aff1 [23:16],
        INTID [27:24], Aff2 [39:32], IRM [40] (all but self), Aff3 [55:48];
        RS [47:44] is ignored as by QEMU (Aff0 > 15 cannot be targeted)."""
        if grp == G1S:
            grp = G0
        irq = (v >> 24) & 0xF
        if (v >> 40) & 1:
            targets = [cs for cs in self.cpus if cs is not src]
        else:
            cluster = self._sgi_clusters.get(((v >> 48) & 0xFF) << 16 | ((v >> 32) & 0xFF) << 8
                                             | ((v >> 16) & 0xFF))
            if cluster is None:
                return
            targets = [self.cpus[cluster[a0]] for a0 in _bits(v & 0xFFFF) if cluster[a0] >= 0]
        for cs in targets:
            # QEMU gicv3_redist_send_sgi: the SGI must be of the requested group
            # at the target, otherwise it is dropped.
            if self._irq_group(cs, irq) != grp:
                continue
            cs.ipendr0 |= 1 << irq
            self._update_cpu(cs)

    # ---- LPIs (QEMU 7.2 arm_gicv3_redist.c, with a pending set instead of rescans) ----------------
    # Each redistributor keeps its pending LPIs in `lpi_pending` and writes
    # every change through to its pending table in guest RAM (bit INTID % 8
    # of byte INTID / 8 at PENDBASER.PA), so RAM always shows the state the
    # architecture says it holds. The config byte is read from the property
    # table (PROPBASER.PA + INTID - 8192) when an LPI becomes pending and
    # again on INV/INVALL/EnableLPIs (what QEMU's rescans pick up); the
    # pending table itself is read only when EnableLPIs is written with 1.
    # A table address outside RAM is a logged guest error: a config byte
    # reads as 0 (disabled), a pending bit that cannot be written is dropped.
    def _table_read(self, cs: CpuState, addr: int, length: int, what: str) -> bytes | None:
        ram = self.ram
        if ram is None or not ram.contains(addr, length):
            self.guest_error(f"GICv3: LPI {what} outside RAM", cpu=cs.index, addr=addr, length=length)
            return None
        return ram.read(addr, length)

    @staticmethod
    def lpi_limit(cs: CpuState) -> int:
        """One past the highest LPI INTID the redistributor accepts:
        2^(min(PROPBASER.IDbits, GICD_TYPER.IDbits) + 1)."""
        return 1 << (min(cs.propbaser & PROPBASER_IDBITS_MASK, GICD_TYPER_IDBITS) + 1)

    def _lpi_read_cfg(self, cs: CpuState, irq: int) -> int:
        data = self._table_read(cs, (cs.propbaser & PROPBASER_PA_MASK) + irq - LPI_INTID_START, 1,
                                "property table entry")
        return 0 if data is None else data[0]

    def _lpi_write_pending_bit(self, cs: CpuState, irq: int, level: bool) -> bool:
        addr = (cs.pendbaser & PENDBASER_PA_MASK) + irq // 8
        data = self._table_read(cs, addr, 1, "pending table byte")
        if data is None:
            return False
        bit = 1 << (irq & 7)
        self.ram.write(addr, bytes([data[0] | bit if level else data[0] & ~bit]))
        return True

    def _lpi_recompute(self, cs: CpuState) -> None:
        """Highest-priority enabled pending LPI from the set (lowest INTID on a tie)."""
        best_prio, best_irq = 0xFF, INTID_SPURIOUS
        cfg = cs.lpi_cfg
        for irq in cs.lpi_pending:
            c = cfg[irq]
            if c & LPI_CFG_ENABLE:
                p = c & LPI_PRIORITY_MASK
                if p < best_prio or (p == best_prio and irq < best_irq):
                    best_prio, best_irq = p, irq
        cs.hpplpi_prio, cs.hpplpi_irq = best_prio, best_irq

    def _lpi_set_pending(self, cs: CpuState, irq: int, level: bool) -> None:
        """Make one LPI pending / not pending (QEMU gicv3_redist_lpi_pending);
        the caller re-evaluates the CPU interface."""
        if level:
            if irq in cs.lpi_pending or not self._lpi_write_pending_bit(cs, irq, True):
                return
            c = self._lpi_read_cfg(cs, irq)
            cs.lpi_pending.add(irq)
            cs.lpi_cfg[irq] = c
            p = c & LPI_PRIORITY_MASK
            if c & LPI_CFG_ENABLE and (p < cs.hpplpi_prio
                                       or (p == cs.hpplpi_prio and irq < cs.hpplpi_irq)):
                cs.hpplpi_prio, cs.hpplpi_irq = p, irq
        else:
            if irq not in cs.lpi_pending:
                return
            cs.lpi_pending.discard(irq)
            del cs.lpi_cfg[irq]
            self._lpi_write_pending_bit(cs, irq, False)
            if irq == cs.hpplpi_irq:
                self._lpi_recompute(cs)

    def lpi_process(self, cpu_index: int, irq: int, level: bool) -> None:
        """An LPI from the ITS (QEMU gicv3_redist_process_lpi): set or clear
        its pending state on one redistributor; ignored unless EnableLPIs and
        the INTID is within PROPBASER.IDbits."""
        cs = self.cpus[cpu_index]
        if not cs.gicr_ctlr & GICR_CTLR_ENABLE_LPIS or not LPI_INTID_START <= irq < self.lpi_limit(cs):
            return
        self._lpi_set_pending(cs, irq, level)
        self._update_cpu(cs)

    def _lpi_load_pending_table(self, cs: CpuState) -> None:
        """EnableLPIs written with 1: the pending table's LPI bits become the
        pending set, with their config bytes read afresh."""
        limit = self.lpi_limit(cs)
        pending: set[int] = set()
        if limit > LPI_INTID_START:
            start = LPI_INTID_START // 8
            data = self._table_read(cs, (cs.pendbaser & PENDBASER_PA_MASK) + start,
                                    limit // 8 - start, "pending table")
            if data is not None:
                for i, b in enumerate(data):
                    if b:
                        base = (start + i) * 8
                        pending.update(base + k for k in range(8) if b >> k & 1)
        cs.lpi_pending = pending
        cs.lpi_cfg = {irq: self._lpi_read_cfg(cs, irq) for irq in sorted(pending)}
        self._lpi_recompute(cs)

    def lpi_inv(self, cpu_index: int, irq: int | None = None) -> None:
        """INV (one LPI) / INVALL (irq None): re-read the config of pending
        LPIs (QEMU gicv3_redist_inv_lpi / gicv3_redist_update_lpi: only with
        EnableLPIs)."""
        cs = self.cpus[cpu_index]
        if not cs.gicr_ctlr & GICR_CTLR_ENABLE_LPIS:
            return
        for i in ([irq] if irq is not None else sorted(cs.lpi_pending)):
            if i in cs.lpi_pending:
                cs.lpi_cfg[i] = self._lpi_read_cfg(cs, i)
        self._lpi_recompute(cs)
        self._update_cpu(cs)

    def lpi_move(self, src_index: int, dst_index: int, irq: int | None = None) -> None:
        """MOVI (one LPI) / MOVALL (irq None): pending state moves from one
        redistributor to another (QEMU gicv3_redist_mov_lpi/_movall_lpis:
        nothing unless both have EnableLPIs)."""
        src, dst = self.cpus[src_index], self.cpus[dst_index]
        if src is dst or not (src.gicr_ctlr & dst.gicr_ctlr & GICR_CTLR_ENABLE_LPIS):
            return
        moving = sorted(src.lpi_pending) if irq is None else \
            ([irq] if irq in src.lpi_pending else [])
        dst_limit = self.lpi_limit(dst)
        for i in moving:
            self._lpi_set_pending(src, i, False)
            if i < dst_limit:
                self._lpi_set_pending(dst, i, True)
        self._update_cpu(src)
        self._update_cpu(dst)

    def lpi_pending(self, cpu_index: int) -> list[int]:
        """The pending LPIs of one redistributor (sorted; host/test view)."""
        return sorted(self._cpu(cpu_index).lpi_pending)

    # ---- shared MMIO handlers -------------------------------------------------------------------------
    def _raz(self, cs, rel: int, size: int) -> int:
        return 0

    def _wi(self, cs, rel: int, size: int, v: int) -> None:
        pass

    def _ro_w(self, cs, rel: int, size: int, v: int) -> None:
        self.guest_error("GICv3: write to a read-only register", rel=rel, value=v)

    def _wo_r(self, cs, rel: int, size: int) -> int:
        self.guest_error("GICv3: read of write-only GICD_SGIR")
        return 0

    def _iidr_r(self, cs, rel: int, size: int) -> int:
        return GIC_IIDR

    # ---- distributor registers (QEMU arm_gicv3_dist.c) ------------------------------------------------
    def _gicd_ctlr_r(self, cs, rel, size):
        return self.d_ctlr

    def _gicd_ctlr_w(self, cs, rel, size, v):
        self.d_ctlr = (self.d_ctlr & ~GICD_CTLR_WRITABLE) | (v & GICD_CTLR_WRITABLE)
        self._refresh_dist()
        self._update_all()

    def _gicd_typer_r(self, cs, rel, size):
        return GICD_TYPER_VALUE

    @staticmethod
    def _spi_word(rel: int) -> int | None:
        """First INTID of a 1-bit-per-INTID register word; None if RAZ/WI."""
        irq = rel * 8
        return irq if GIC_INTERNAL <= irq < NUM_IRQ else None

    def _d_bitmap_read(self, value: int, rel: int) -> int:
        irq = self._spi_word(rel)
        return 0 if irq is None else (value >> irq) & MASK32

    def _gicd_igroupr_r(self, cs, rel, size):
        return self._d_bitmap_read(self.d_group, rel)

    def _gicd_igroupr_w(self, cs, rel, size, v):
        irq = self._spi_word(rel)
        if irq is not None:
            self.d_group = (self.d_group & ~(MASK32 << irq)) | (v << irq)
            self._update_spis(MASK32 << irq)

    def _gicd_enable_r(self, cs, rel, size):
        return self._d_bitmap_read(self.d_enabled, rel)

    def _gicd_pend_r(self, cs, rel, size):
        return self._d_bitmap_read(self.d_pending | (self.d_level & ~self.d_edge), rel)

    def _gicd_active_r(self, cs, rel, size):
        return self._d_bitmap_read(self.d_active, rel)

    def _d_set_clear(self, attr: str, rel: int, v: int, set_bits: bool) -> None:
        irq = self._spi_word(rel)
        if irq is None:
            return
        cur = getattr(self, attr)
        setattr(self, attr, cur | (v << irq) if set_bits else cur & ~(v << irq))
        self._update_spis(v << irq)

    def _gicd_isenabler_w(self, cs, rel, size, v):
        self._d_set_clear("d_enabled", rel, v, True)

    def _gicd_icenabler_w(self, cs, rel, size, v):
        self._d_set_clear("d_enabled", rel, v, False)

    def _gicd_ispendr_w(self, cs, rel, size, v):
        self._d_set_clear("d_pending", rel, v, True)

    def _gicd_icpendr_w(self, cs, rel, size, v):
        self._d_set_clear("d_pending", rel, v, False)

    def _gicd_isactiver_w(self, cs, rel, size, v):
        self._d_set_clear("d_active", rel, v, True)

    def _gicd_icactiver_w(self, cs, rel, size, v):
        self._d_set_clear("d_active", rel, v, False)

    def _gicd_ipriorityr_r(self, cs, rel, size):
        """8 bits per INTID, stored as written (the CPU interface compares
        all 8 bits against PMR; preemption uses the group-priority bits)."""
        out = 0
        for i in range(rel + size - 1, rel - 1, -1):
            out = (out << 8) | (self.d_prio[i] if GIC_INTERNAL <= i < NUM_IRQ else 0)
        return out

    def _gicd_ipriorityr_w(self, cs, rel, size, v):
        if rel < GIC_INTERNAL or rel + size - 1 >= NUM_IRQ:
            return                                     # QEMU: whole word ignored
        for i in range(size):
            self.d_prio[rel + i] = (v >> (8 * i)) & 0xFF
        self._update_spis(((1 << size) - 1) << rel)

    def _gicd_icfgr_r(self, cs, rel, size):
        irq = rel * 4
        if not GIC_INTERNAL <= irq < NUM_IRQ:
            return 0
        return _spread16((self.d_edge >> irq) & 0xFFFF)

    def _gicd_icfgr_w(self, cs, rel, size, v):
        irq = rel * 4
        if not GIC_INTERNAL <= irq < NUM_IRQ:
            return
        self.d_edge = (self.d_edge & ~(0xFFFF << irq)) | (_gather16(v) << irq)
        # QEMU re-evaluates nothing on an ICFGR write (the next event does);
        # only the eligibility bitmap used by that next evaluation is refreshed.
        self._refresh_dist()

    def _gicd_irouter_r(self, cs, rel, size):
        irq = rel // 8
        r = self.d_irouter[irq] if GIC_INTERNAL <= irq < NUM_IRQ else 0
        if size == 8:
            return r
        return (r >> 32) if rel & 4 else r & MASK32

    def _gicd_irouter_w(self, cs, rel, size, v):
        irq = rel // 8
        if not GIC_INTERNAL <= irq < NUM_IRQ:
            return
        if size == 4:
            r = self.d_irouter[irq]
            v = (r & MASK32) | (v << 32) if rel & 4 else (r & ~MASK32) | v
        self.d_irouter[irq] = v & MASK64                # stored as written (QEMU)
        old = self._route(irq)
        self._update_spis(1 << irq)
        if old >= 0 and old != self.d_target[irq]:
            self._update_cpu(self.cpus[old])

    def _gicd_idreg_r(self, cs, rel, size):
        i = rel // 4
        return PIDR0_DIST if _IDREGS[i] is None else _IDREGS[i]

    # ---- redistributor registers (QEMU arm_gicv3_redist.c) --------------------------------------------
    def _gicr_ctlr_r(self, cs, rel, size):
        return cs.gicr_ctlr

    def _gicr_ctlr_w(self, cs, rel, size, v):
        if v & GICR_CTLR_ENABLE_LPIS:
            cs.gicr_ctlr |= GICR_CTLR_ENABLE_LPIS
            # QEMU gicv3_redist_update_lpi: pending-table bits set by the
            # guest before (or while disabled) become pending LPIs.
            self._lpi_load_pending_table(cs)
        else:
            cs.gicr_ctlr &= ~GICR_CTLR_ENABLE_LPIS
        self._update_cpu(cs)

    def _gicr_typer_r(self, cs, rel, size):
        return cs.typer if size == 8 else (cs.typer >> (8 * rel)) & MASK32

    def _gicr_waker_r(self, cs, rel, size):
        return cs.waker

    def _gicr_waker_w(self, cs, rel, size, v):
        # Only ProcessorSleep is writable; ChildrenAsleep follows it at once.
        v &= GICR_WAKER_PROCESSOR_SLEEP
        cs.waker = v | (GICR_WAKER_CHILDREN_ASLEEP if v else 0)

    @staticmethod
    def _deposit(old: int, rel: int, size: int, v: int) -> int:
        if size == 8:
            return v & MASK64
        sh = 8 * rel
        return (old & ~(MASK32 << sh)) | (v << sh)

    def _gicr_propbaser_r(self, cs, rel, size):
        return cs.propbaser if size == 8 else (cs.propbaser >> (8 * rel)) & MASK32

    def _gicr_propbaser_w(self, cs, rel, size, v):
        cs.propbaser = self._deposit(cs.propbaser, rel, size, v)

    def _gicr_pendbaser_r(self, cs, rel, size):
        return cs.pendbaser if size == 8 else (cs.pendbaser >> (8 * rel)) & MASK32

    def _gicr_pendbaser_w(self, cs, rel, size, v):
        cs.pendbaser = self._deposit(cs.pendbaser, rel, size, v)

    def _gicr_idreg_r(self, cs, rel, size):
        i = rel // 4
        return PIDR0_REDIST if _IDREGS[i] is None else _IDREGS[i]

    def _gicr_igroupr0_r(self, cs, rel, size):
        return cs.igroupr0

    def _gicr_igroupr0_w(self, cs, rel, size, v):
        cs.igroupr0 = v
        self._update_cpu(cs)

    def _gicr_enable_r(self, cs, rel, size):
        return cs.ienabler0

    def _gicr_pend_r(self, cs, rel, size):
        return cs.ipendr0 | (cs.level & ~cs.edge_trigger & MASK32)

    def _gicr_active_r(self, cs, rel, size):
        return cs.iactiver0

    def _gicr_isenabler0_w(self, cs, rel, size, v):
        cs.ienabler0 |= v
        self._update_cpu(cs)

    def _gicr_icenabler0_w(self, cs, rel, size, v):
        cs.ienabler0 &= ~v
        self._update_cpu(cs)

    def _gicr_ispendr0_w(self, cs, rel, size, v):
        cs.ipendr0 |= v
        self._update_cpu(cs)

    def _gicr_icpendr0_w(self, cs, rel, size, v):
        cs.ipendr0 &= ~v
        self._update_cpu(cs)

    def _gicr_isactiver0_w(self, cs, rel, size, v):
        cs.iactiver0 |= v
        self._update_cpu(cs)

    def _gicr_icactiver0_w(self, cs, rel, size, v):
        cs.iactiver0 &= ~v
        self._update_cpu(cs)

    def _gicr_ipriorityr_r(self, cs, rel, size):
        out = 0
        for i in range(rel + size - 1, rel - 1, -1):
            out = (out << 8) | cs.ipriority[i]
        return out

    def _gicr_ipriorityr_w(self, cs, rel, size, v):
        for i in range(size):
            cs.ipriority[rel + i] = (v >> (8 * i)) & 0xFF
        self._update_cpu(cs)

    def _gicr_icfgr0_r(self, cs, rel, size):
        return _spread16(cs.edge_trigger & 0xFFFF)

    def _gicr_icfgr1_r(self, cs, rel, size):
        return _spread16(cs.edge_trigger >> 16)

    def _gicr_icfgr1_w(self, cs, rel, size, v):
        cs.edge_trigger = (cs.edge_trigger & 0xFFFF) | (_gather16(v) << 16)
        self._update_cpu(cs)

    # ---- migration ------------------------------------------------------------------------------------
    def save_state(self) -> dict:
        """Section "gicv3" v1: the configuration (for checking), the distributor
        (bitmaps as 32-bit words for INTIDs 0..287, priorities, IROUTER), each
        redistributor and each CPU interface as named fields."""
        from ..state import section
        self._need_init()

        def words(x: int) -> list[int]:
            return [(x >> (32 * i)) & MASK32 for i in range(NUM_IRQ // 32)]
        dist = {"ctlr": self.d_ctlr, "group": words(self.d_group), "enabled": words(self.d_enabled),
                "pending": words(self.d_pending), "active": words(self.d_active),
                "level": words(self.d_level), "edge_trigger": words(self.d_edge),
                "priority": list(self.d_prio), "irouter": list(self.d_irouter)}
        redist, cpuif = [], []
        for cs in self.cpus:
            r = {k: getattr(cs, k) for k in CpuState.REDIST_FIELDS}
            r["priority"] = list(cs.ipriority)
            r["lpis"] = [[i, cs.lpi_cfg[i]] for i in sorted(cs.lpi_pending)]
            redist.append(r)
            cpuif.append({k: getattr(cs, k) for k in CpuState.CPUIF_FIELDS})
        return section("gicv3", self.STATE_VERSION, num_irq=NUM_IRQ, ncpus=len(self.cpus),
                       dist_base=self.dist_base, regions=[list(r) for r in self.regions],
                       affinities=[cs.affinity for cs in self.cpus],
                       dist=dist, redist=redist, cpuif=cpuif)

    def load_state(self, sections: dict) -> None:
        """Restore section "gicv3" into this initialised device (same
        configuration), recompute delivery and drive every line."""
        from ..state import fields_of
        self._need_init()
        f = fields_of(sections, "gicv3", self.STATE_VERSION,
                      {"num_irq": int, "ncpus": int, "dist_base": int, "regions": list,
                       "affinities": list, "dist": dict, "redist": list, "cpuif": list})
        if (f["num_irq"], f["ncpus"], f["dist_base"]) != (NUM_IRQ, len(self.cpus), self.dist_base) \
                or [list(r) for r in self.regions] != f["regions"] \
                or f["affinities"] != [cs.affinity for cs in self.cpus]:
            raise ConfigError("snapshot: GICv3 configuration (lines, vCPUs, addresses, "
                              "affinities) differs from this machine's")

        def num(v, bits: int, what: str) -> int:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < (1 << bits):
                raise ConfigError(f"snapshot: GICv3 field {what} is not a {bits}-bit number")
            return v

        def bitmap(v, what: str) -> int:
            if not isinstance(v, list) or len(v) != NUM_IRQ // 32:
                raise ConfigError(f"snapshot: GICv3 field {what} needs {NUM_IRQ // 32} words")
            x = 0
            for i, w in enumerate(v):
                x |= num(w, 32, what) << (32 * i)
            return x & SPI_ALL

        def byte_list(v, n: int, what: str) -> bytearray:
            if not isinstance(v, list) or len(v) != n:
                raise ConfigError(f"snapshot: GICv3 field {what} needs {n} entries")
            return bytearray(num(x, 8, what) for x in v)

        d = f["dist"]
        try:
            ctlr = num(d["ctlr"], 32, "dist.ctlr")
            bm = {k: bitmap(d[k], f"dist.{k}") for k in
                  ("group", "enabled", "pending", "active", "level", "edge_trigger")}
            prio = byte_list(d["priority"], NUM_IRQ, "dist.priority")
            if not isinstance(d["irouter"], list) or len(d["irouter"]) != NUM_IRQ:
                raise ConfigError(f"snapshot: GICv3 field dist.irouter needs {NUM_IRQ} entries")
            irouter = [num(x, 64, "dist.irouter") for x in d["irouter"]]
            if len(f["redist"]) != len(self.cpus) or len(f["cpuif"]) != len(self.cpus):
                raise ConfigError("snapshot: GICv3 per-vCPU state does not match the vCPUs")
            per_cpu = []
            for i, (r, c) in enumerate(zip(f["redist"], f["cpuif"])):
                if not isinstance(r, dict) or not isinstance(c, dict):
                    raise ConfigError(f"snapshot: GICv3 vCPU {i} state is not a record")
                rv = {k: num(r[k], 64 if k.endswith("baser") else 32, f"redist[{i}].{k}")
                      for k in CpuState.REDIST_FIELDS}
                cv = {k: num(c[k], 32, f"cpuif[{i}].{k}") for k in CpuState.CPUIF_FIELDS}
                lpis = r.get("lpis", [])               # absent in snapshots without LPIs
                if not isinstance(lpis, list) or not all(isinstance(e, list) and len(e) == 2
                                                         for e in lpis):
                    raise ConfigError(f"snapshot: GICv3 field redist[{i}].lpis is not a pair list")
                lpi = {}
                for irq, c in lpis:
                    if num(irq, 16, f"redist[{i}].lpis") < LPI_INTID_START:
                        raise ConfigError(f"snapshot: GICv3 field redist[{i}].lpis has INTID {irq}")
                    lpi[irq] = num(c, 8, f"redist[{i}].lpis")
                per_cpu.append((rv, byte_list(r["priority"], GIC_INTERNAL, f"redist[{i}].priority"),
                                cv, lpi))
        except KeyError as e:
            raise ConfigError(f"snapshot: GICv3 state lacks field {e}") from None
        self.d_ctlr = (ctlr & GICD_CTLR_WRITABLE) | GICD_CTLR_RESET
        self.d_group, self.d_enabled = bm["group"], bm["enabled"]
        self.d_pending, self.d_active = bm["pending"], bm["active"]
        self.d_level, self.d_edge = bm["level"], bm["edge_trigger"]
        self.d_prio[:] = prio
        self.d_irouter[:] = irouter
        for cs, (rv, p, cv, lpi) in zip(self.cpus, per_cpu):
            for k, v in rv.items():
                setattr(cs, k, v)
            cs.ipriority[:] = p
            cs.lpi_pending, cs.lpi_cfg = set(lpi), dict(lpi)
            self._lpi_recompute(cs)
            for k, v in cv.items():
                setattr(cs, k, v)
        self._retarget_all()
        self._refresh_dist()
        for cs in self.cpus:
            self._compute_hppi(cs)
            cs.irq_level = cs.fiq_level = None         # force: drive both lines
            self._cpuif_update(cs)

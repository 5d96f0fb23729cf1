"""GICv3 configuration and values from the spec (IHI 0069) as QEMU 7.2's virt
board configures them, bit helpers, the per-vCPU state record and the
register handlers every frame shares."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol

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
IDREGS_OFFSET, IDREGS_LENGTH = 0xFFD0, 0x30

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
GICR_ICFGR0_RESET = 0xAAAA_AAAA        # SGIs edge-triggered (read-only)
GICR_ICFGR1_RESET = 0                  # PPIs level-sensitive at reset

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


def bits(mask: int) -> Iterator[int]:
    """Set bit positions of `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def spread16(v: int) -> int:
    """16 edge bits -> ICFGR layout (bit k -> bit 2k+1; even bits read 0)."""
    out = 0
    for k in range(16):
        if v >> k & 1:
            out |= 2 << (2 * k)
    return out


def gather16(v: int) -> int:
    """ICFGR layout -> 16 edge bits (the odd bits of the word)."""
    out = 0
    for k in range(16):
        if v >> (2 * k + 1) & 1:
            out |= 1 << k
    return out


class CpuState:
    """One vCPU's redistributor and CPU interface (QEMU GICv3CPUState).

    The SGI/PPI state has the same names as the distributor's SPI state
    (`group`, `enabled`, `pending`, `active`, `level`, `edge_trigger`,
    `priority`), so one set of per-INTID register kinds serves both frames.
    Registers are reset by their tables (Redistributor.reset,
    CpuInterface.reset)."""

    __slots__ = ("index", "affinity", "typer", "irq_out", "fiq_out", "irq_level", "fiq_level",
                 # redistributor
                 "gicr_ctlr", "waker", "propbaser", "pendbaser", "group", "enabled",
                 "pending", "active", "edge_trigger", "level", "priority",
                 "lpi_pending", "lpi_cfg", "hpplpi_irq", "hpplpi_prio",
                 "lpi_heap", "lpi_prop_key", "lpi_prop_seen", "lpi_fresh",
                 # CPU interface
                 "icc_ctlr", "pmr", "bpr0", "bpr1", "ap0r0", "ap1r0", "igrpen0", "igrpen1",
                 "hppi_irq", "hppi_prio", "hppi_grp")

    def __init__(self, index: int, affinity: int, typer: int):
        self.index = index
        self.affinity = affinity
        self.typer = typer
        self.irq_out: Callable[[bool], None] = lambda level: None
        self.fiq_out: Callable[[bool], None] = lambda level: None
        self.irq_level = self.fiq_level = False
        self.group = self.enabled = self.pending = self.active = self.edge_trigger = 0
        self.priority = bytearray(GIC_INTERNAL)
        self.level = 0
        self.lpi_pending: set[int] = set()     # pending LPIs (mirrored in the pending table)
        self.lpi_cfg: dict[int, int] = {}      # config byte of each pending LPI, as last read
        # (priority, INTID) of enabled pending LPIs, a heap with stale entries
        # dropped lazily (Redistributor.lpi_recompute): the highest is O(log n)
        self.lpi_heap: list[tuple[int, int]] = []
        # INVALL's cache (host-side, derived; see Redistributor.lpi_invall):
        # the property table as the last INVALL read it, for PROPBASER.PA
        # lpi_prop_key (None: no copy yet), and the pending LPIs whose config
        # was read since then.
        self.lpi_prop_key: int | None = None
        self.lpi_prop_seen = b""
        self.lpi_fresh: set[int] = set()
        self.hpplpi_irq, self.hpplpi_prio = INTID_SPURIOUS, 0xFF
        self.hppi_irq, self.hppi_prio, self.hppi_grp = INTID_SPURIOUS, 0xFF, G0


# ---- handlers shared by the frames (regs.Register read/write signatures) -------------------------
def ro_write(owner: Any, ctx: Any, rel: int, size: int, value: int) -> None:
    """A write to a read-only register: logged, ignored."""
    owner.guest_error("GICv3: write to a read-only register", rel=rel, value=value)


def read_iidr(owner: Any, ctx: Any, rel: int, size: int) -> int:
    return GIC_IIDR


def idreg(pidr0: int) -> Callable[[Any, Any, int, int], int]:
    """The CoreSight ID block of a frame whose PIDR0 is `pidr0`."""
    values = tuple(pidr0 if v is None else v for v in _IDREGS)

    def read_idreg(owner: Any, ctx: Any, rel: int, size: int) -> int:
        return values[rel // 4]
    return read_idreg


class GicCore(Protocol):
    """What the distributor, redistributor, CPU-interface and migration
    modules need of the device that owns them (device.py:GicV3), declared
    here so that the parts and the device do not import each other."""
    cpus: list[CpuState]
    dist: Any
    redist: Any
    cpuif: Any
    dist_base: int | None
    regions: list[tuple[int, int]]
    ram: Any
    guest_error: Callable[..., None]

    def update_all(self) -> None: ...

    def update_cpu(self, cs: CpuState) -> None: ...

    def compute_hppi(self, cs: CpuState) -> None: ...

    def irq_group(self, cs: CpuState, irq: int) -> int: ...

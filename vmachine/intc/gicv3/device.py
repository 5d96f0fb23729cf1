"""The GICv3 device: the KVM vGIC lifecycle and host API, and delivery (each
vCPU's highest-priority pending interrupt from its redistributor, the SPIs
routed to it and its LPIs, handed to its CPU interface)."""
from __future__ import annotations

from typing import Callable

from ...errors import DeviceError
from .common import (ADDR_ALIGN, ADDR_LIMIT, DIST_SIZE, G0, G1NS, GIC_INTERNAL,
                     GICD_CTLR_EN_GRP0, GICD_CTLR_EN_GRP1NS, GICR_CTLR_ENABLE_LPIS,
                     GICR_TYPER_COMMON_LPI_AFF, GICR_TYPER_LAST, GICR_TYPER_PLPIS, INTID_SPURIOUS,
                     LPI_INTID_START, MASK32, MASK64, MAX_CPUS, NUM_SPI, REDIST_FRAME_SIZE, CpuState,
                     bits)
from .cpuif import ICC_BANK, CpuInterface
from .distributor import Distributor
from .redistributor import Redistributor, RedistRegion
from .vmstate import GICV3_STATE


class GicV3:
    """The GICv3 device: distributor, redistributors, CPU interfaces."""

    STATE_VERSION = GICV3_STATE.version

    def __init__(self, log_guest_error: Callable[..., None] = lambda what, **k: None,
                 log_event: Callable[..., None] = lambda what, **k: None):
        self.guest_error = log_guest_error
        self.event = log_event
        self.dist_base: int | None = None
        self.regions: list[tuple[int, int]] = []          # (base, frames)
        self.initialised = False
        self.cpus: list[CpuState] = []
        self.ram = None                                    # guest RAM for the LPI tables
        self._windows: list[tuple[str, int, int, object]] = []
        self.dist = Distributor(self)
        self.redist = Redistributor(self)
        self.cpuif = CpuInterface(self)

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

    def _make_cpu_states(self, cpus: list) -> tuple[list[CpuState], dict[int, int]]:
        """One CpuState per vCPU (index order, distinct affinities), reset."""
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
            cs = CpuState(i, aff, (aff << 32) | GICR_TYPER_COMMON_LPI_AFF | (i << 8)
                          | GICR_TYPER_PLPIS)
            self.redist.reset(cs)
            self.cpuif.reset(cs)
            states.append(cs)
        return states, by_aff

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
        states, by_aff = self._make_cpu_states(cpus)
        self.cpus = states
        # Last: the last frame of each region (or the last vCPU), as KVM's vGIC.
        first = 0
        self._windows = [("gicv3-dist", self.dist_base, DIST_SIZE, self.dist)]
        for r, (base, n) in enumerate(self.regions):
            used = min(n, len(states) - first)
            if used > 0:
                states[first + used - 1].typer |= GICR_TYPER_LAST
            self._windows.append((f"gicv3-redist{r}", base, n * REDIST_FRAME_SIZE,
                                  RedistRegion(self.redist, first)))
            first += max(used, 0)
        self.dist.cpu_of_affinity = by_aff
        for cs in states:
            cluster = self.cpuif.sgi_clusters.setdefault(cs.affinity >> 8, [-1] * 16)
            if cs.affinity & 0xFF < 16:
                cluster[cs.affinity & 0xFF] = cs.index
        self.initialised = True
        self.dist.retarget_all()
        self.dist.refresh()

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
        """The ICC_* registers of one vCPU, as the AArch64 vCPU's trap table
        takes them: {(op0, op1, CRn, CRm, op2): (read(cpu), write(cpu, value))}."""
        cs = self._cpu(cpu_index)
        cif = self.cpuif
        table = {}
        for r in ICC_BANK:
            table[r.key] = ((lambda _cpu, f=r.read: f(cif, cs)) if r.read else None,
                            (lambda _cpu, v, f=r.write: f(cif, cs, v & MASK64)) if r.write else None)
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

    # ---- host interface: lines ----------------------------------------------------------------------
    def irq_line(self, gsi: int, level: int, cpu: int | None = None) -> None:
        """KVM_IRQ_LINE. cpu None: SPI gsi (INTID gsi + 32, gsi 0..255).
        cpu = i: PPI INTID `gsi` (16..31) of vCPU i."""
        self._need_init()
        if cpu is None:
            if not isinstance(gsi, int) or not 0 <= gsi < NUM_SPI:
                raise DeviceError("EINVAL", f"GICv3: SPI {gsi!r} out of range (0..{NUM_SPI - 1})")
            self.event("irq_line", intid=gsi + GIC_INTERNAL, level=int(bool(level)))
            self.dist.set_irq(gsi + GIC_INTERNAL, bool(level))
            return
        cs = self._cpu(cpu)
        if not isinstance(gsi, int) or not 16 <= gsi < GIC_INTERNAL:
            raise DeviceError("EINVAL", f"GICv3: PPI INTID {gsi!r} out of range (16..31)")
        self.event("irq_line", intid=gsi, cpu=cpu, level=int(bool(level)))
        self.redist.set_irq(cs, gsi, bool(level))

    def ppi_line(self, cpu_index: int, intid: int) -> Callable[[int], None]:
        """A level callback for PPI `intid` (16..31) of one vCPU (a timer output)."""
        cs = self._cpu(cpu_index)
        if not isinstance(intid, int) or not 16 <= intid < GIC_INTERNAL:
            raise DeviceError("EINVAL", f"GICv3: PPI INTID {intid!r} out of range (16..31)")
        set_irq = self.redist.set_irq
        return lambda level: set_irq(cs, intid, bool(level))

    def reset(self) -> None:
        """Machine reset: distributor, redistributors and CPU interfaces (QEMU
        resets the last with the CPU); every output goes low."""
        self.dist.reset()
        for cs in self.cpus:
            self.redist.reset(cs)
            self.cpuif.reset(cs)
        if self.initialised:
            self.dist.retarget_all()
            self.dist.refresh()
            self.update_all()

    # ---- delivery -------------------------------------------------------------------------------------
    def update_all(self) -> None:
        for cs in self.cpus:
            self.update_cpu(cs)

    def update_cpu(self, cs: CpuState) -> None:
        self.compute_hppi(cs)
        self.cpuif.update(cs)

    def compute_hppi(self, cs: CpuState) -> None:
        """Highest-priority pending interrupt for this vCPU among its SGIs/PPIs
        and the SPIs routed to it; ties go to the lowest INTID (QEMU irqbetter).
        Priority 0xFF is never signalled (it is QEMU's "nothing pending")."""
        dist = self.dist
        ctlr = dist.ctlr
        grpmask = 0
        if ctlr & GICD_CTLR_EN_GRP1NS:
            grpmask |= cs.group
        if ctlr & GICD_CTLR_EN_GRP0:
            grpmask |= ~cs.group & MASK32
        pend = ((cs.pending | (cs.level & ~cs.edge_trigger)) & cs.enabled & ~cs.active & grpmask)
        best_prio, best_irq = 0xFF, INTID_SPURIOUS
        prio = cs.priority
        for i in bits(pend):
            if prio[i] < best_prio:
                best_prio, best_irq = prio[i], i
        dprio = dist.priority
        for i in bits(dist.eligible & dist.spi_mask[cs.index]):
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
            cs.hppi_grp = self.irq_group(cs, best_irq)

    def irq_group(self, cs: CpuState, irq: int) -> int:
        """DS = 1: group bit 1 = Group 1 NS, 0 = Group 0 (IGRPMODR is RAZ).
        LPIs are always Group 1 NS."""
        if irq >= LPI_INTID_START:
            return G1NS
        if irq < GIC_INTERNAL:
            return G1NS if cs.group >> irq & 1 else G0
        return G1NS if self.dist.group >> irq & 1 else G0

    # ---- LPIs (the ITS's entry points) ----------------------------------------------------------------
    @staticmethod
    def lpi_limit(cs: CpuState) -> int:
        """One past the highest LPI INTID the redistributor accepts."""
        return Redistributor.lpi_limit(cs)

    def lpi_process(self, cpu_index: int, irq: int, level: bool) -> None:
        """An LPI from the ITS: set or clear its pending state on one
        redistributor (ignored unless EnableLPIs and within PROPBASER.IDbits)."""
        self.redist.lpi_process(self.cpus[cpu_index], irq, level)

    def lpi_inv(self, cpu_index: int, irq: int | None = None) -> None:
        """INV (one LPI) / INVALL (irq None): re-read pending LPIs' config."""
        self.redist.lpi_inv(self.cpus[cpu_index], irq)

    def lpi_invall_all(self) -> None:
        """The ITS's INVALL (QEMU checks no ICID): every redistributor, the
        property table read and compared once per distinct PROPBASER.PA."""
        memo: dict = {}
        for cs in self.cpus:
            self.redist.lpi_inv(cs, None, memo)

    def lpi_move(self, src_index: int, dst_index: int, irq: int | None = None) -> None:
        """MOVI (one LPI) / MOVALL (irq None) between redistributors."""
        self.redist.lpi_move(self.cpus[src_index], self.cpus[dst_index], irq)

    def lpi_pending(self, cpu_index: int) -> list[int]:
        """The pending LPIs of one redistributor (sorted; host/test view)."""
        return sorted(self._cpu(cpu_index).lpi_pending)

    # ---- migration ------------------------------------------------------------------------------------
    def save_state(self) -> dict:
        """Section "gicv3" (vmstate.GICV3_STATE)."""
        self._need_init()
        return GICV3_STATE.save(self)

    def decode_state(self, sections: dict) -> dict:
        """Validate section "gicv3" completely against this initialised
        device (same configuration); touches nothing."""
        self._need_init()
        return GICV3_STATE.decode(self, sections)

    def apply_state(self, plan: dict) -> None:
        """Store what decode_state accepted; delivery is recomputed and every
        line driven."""
        GICV3_STATE.apply(self, plan)

    def load_state(self, sections: dict) -> None:
        """Restore section "gicv3" into this initialised device (same
        configuration): everything is validated before anything changes;
        then delivery is recomputed and every line driven."""
        self.apply_state(self.decode_state(sections))

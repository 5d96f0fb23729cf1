"""The GICv3 device: the KVM vGIC lifecycle and host API, and delivery (each
vCPU's highest-priority pending interrupt from its redistributor, the SPIs
routed to it and its LPIs, handed to its CPU interface)."""
from __future__ import annotations

from typing import Callable

from ...errors import DeviceError
from .common import (ADDR_ALIGN, ADDR_LIMIT, DIST_SIZE, G0, G1NS, GIC_INTERNAL,
                     GICD_CTLR_EN_GRP0, GICD_CTLR_EN_GRP1NS, GICR_CTLR_ENABLE_LPIS,
                     GICR_TYPER_COMMON_LPI_AFF, GICR_TYPER_LAST, GICR_TYPER_PLPIS, INTID_SPURIOUS,
                     LPI_INTID_START, MASK32, MAX_CPUS, NUM_SPI, PENDBASER_PA_MASK,
                     REDIST_FRAME_SIZE, CpuState,
                     bits)
from .cpuif import ICC_BANK, CpuInterface
from .distributor import Distributor
from .redistributor import Redistributor, RedistRegion
from .vmstate import GICV3_STATE


# ---- host-API argument checks (DeviceError before anything changes) ------------------------------
def is_number(v: object) -> bool:
    """A plain int where a number is meant (bool is refused: True is not vCPU 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def check_level(level: object, what: str) -> bool:
    """A line level: 0, 1, False or True (anything else is EINVAL)."""
    if isinstance(level, int) and level in (0, 1):
        return bool(level)
    raise DeviceError("EINVAL", f"{what} level {level!r} (0, 1, False or True)")


def check_callable(fn: object, what: str) -> None:
    if not callable(fn):
        raise DeviceError("EINVAL", f"{what} {fn!r} is not callable")


def check_ram(ram: object, what: str, methods: tuple[str, ...]) -> None:
    """Guest RAM: an object with the methods the device calls on it."""
    missing = [m for m in methods if not callable(getattr(ram, m, None))]
    if missing:
        raise DeviceError("EINVAL", f"{what} {type(ram).__name__} has no {', '.join(missing)}")


class GicV3:
    """The GICv3 device: distributor, redistributors, CPU interfaces."""

    STATE_VERSION = GICV3_STATE.version

    def __init__(self, log_guest_error: Callable[..., None] = lambda what, **k: None,
                 log_event: Callable[..., None] = lambda what, **k: None):
        check_callable(log_guest_error, "GICv3: log_guest_error")
        check_callable(log_event, "GICv3: log_event")
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
        tables (contains/read/write); without it (None) every table address
        is outside RAM."""
        if ram is not None:
            check_ram(ram, "GICv3: guest RAM", ("contains", "read", "write"))
        self.ram = ram

    # ---- KVM-style lifecycle ----------------------------------------------------------------------
    def _check_not_init(self, what: str) -> None:
        if self.initialised:
            raise DeviceError("EBUSY", f"GICv3: {what} after KVM_DEV_ARM_VGIC_CTRL_INIT")

    def _check_range(self, base: int, size: int, what: str) -> None:
        if not is_number(base) or base < 0 or base % ADDR_ALIGN or base + size > ADDR_LIMIT:
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
        if not is_number(count) or not 1 <= count <= MAX_CPUS:
            raise DeviceError("EINVAL", f"GICv3: redistributor region count {count!r} "
                                        f"(1..{MAX_CPUS})")
        self._check_range(base, count * REDIST_FRAME_SIZE, "redistributor region")
        self.regions.append((base, count))

    def _make_cpu_states(self, cpus: list) -> tuple[list[CpuState], dict[int, int]]:
        """One CpuState per vCPU (index order, distinct affinities), reset."""
        states: list[CpuState] = []
        by_aff: dict[int, int] = {}
        for i, cpu in enumerate(cpus):
            index = getattr(cpu, "index", None)
            if not is_number(index) or index != i:
                raise DeviceError("EINVAL", f"GICv3: vCPU at position {i} has index {index!r}")
            mpidr = getattr(cpu, "mpidr", None)
            if not is_number(mpidr) or not 0 <= mpidr < 1 << 64:
                raise DeviceError("EINVAL", f"GICv3: vCPU {i} has MPIDR {mpidr!r} "
                                            f"(a 64-bit number)")
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
        """KVM_DEV_ARM_VGIC_CTRL_INIT: fix the vCPUs (a list or tuple of
        objects with `index` = position and a distinct 64-bit `mpidr`), build
        per-CPU state."""
        self._check_not_init("second init")
        if self.dist_base is None:
            raise DeviceError("ENXIO", "GICv3: distributor address not set")
        if not isinstance(cpus, (list, tuple)):
            raise DeviceError("EINVAL", f"GICv3: vCPUs {type(cpus).__name__} (a list of vCPUs)")
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
        if not is_number(cpu_index) or not 0 <= cpu_index < len(self.cpus):
            raise DeviceError("EINVAL", f"GICv3: no vCPU {cpu_index!r} "
                                        f"(0..{len(self.cpus) - 1})")
        return self.cpus[cpu_index]

    def mmio_windows(self) -> list[tuple[str, int, int, object]]:
        """(name, base, size, device) for machine.mmio.add: the distributor and
        each redistributor region (frames * 128 KiB)."""
        self._need_init()
        return list(self._windows)

    def sysregs(self, cpu_index: int) -> dict:
        """The ICC_* registers of one vCPU, as the AArch64 vCPU's trap table
        takes them: {(op0, op1, CRn, CRm, op2): (read(cpu), write(cpu, value))}."""
        return ICC_BANK.bind(self.cpuif, self._cpu(cpu_index))

    def connect(self, cpu_index: int, irq_output: Callable[[bool], None],
                fiq_output: Callable[[bool], None] | None = None) -> None:
        """The vCPU's IRQ input (and optionally FIQ, for group 0); both are
        driven with their current level at once."""
        cs = self._cpu(cpu_index)
        check_callable(irq_output, "GICv3: IRQ output")
        if fiq_output is not None:
            check_callable(fiq_output, "GICv3: FIQ output")
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
        cpu = i: PPI INTID `gsi` (16..31) of vCPU i. level: 0, 1, False or True."""
        self._need_init()
        if cpu is None:
            if not is_number(gsi) or not 0 <= gsi < NUM_SPI:
                raise DeviceError("EINVAL", f"GICv3: SPI {gsi!r} out of range (0..{NUM_SPI - 1})")
            lv = check_level(level, "GICv3: SPI")
            self.event("irq_line", intid=gsi + GIC_INTERNAL, level=int(lv))
            self.dist.set_irq(gsi + GIC_INTERNAL, lv)
            return
        cs = self._cpu(cpu)
        if not is_number(gsi) or not 16 <= gsi < GIC_INTERNAL:
            raise DeviceError("EINVAL", f"GICv3: PPI INTID {gsi!r} out of range (16..31)")
        lv = check_level(level, "GICv3: PPI")
        self.event("irq_line", intid=gsi, cpu=cpu, level=int(lv))
        self.redist.set_irq(cs, gsi, lv)

    def ppi_line(self, cpu_index: int, intid: int) -> Callable[[int], None]:
        """A level callback for PPI `intid` (16..31) of one vCPU (a timer
        output); it takes the levels irq_line takes (0, 1, False, True) and
        refuses others with EINVAL, changing nothing."""
        cs = self._cpu(cpu_index)
        if not is_number(intid) or not 16 <= intid < GIC_INTERNAL:
            raise DeviceError("EINVAL", f"GICv3: PPI INTID {intid!r} out of range (16..31)")
        set_irq = self.redist.set_irq

        def line(level: int) -> None:
            if level is True or level is False:          # the common case (a timer)
                set_irq(cs, intid, level)
            else:
                set_irq(cs, intid, check_level(level, "GICv3: PPI"))
        return line

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

    def _lpi_cpu(self, cpu_index: int, what: str) -> CpuState:
        """A vCPU whose redistributor has EnableLPIs (EBUSY otherwise, as
        KVM's vgic_its_resolve_lpi)."""
        cs = self._cpu(cpu_index)
        if not cs.gicr_ctlr & GICR_CTLR_ENABLE_LPIS:
            raise DeviceError("EBUSY", f"GICv3: {what}: GICR_CTLR.EnableLPIs is 0 on vCPU "
                                       f"{cpu_index}")
        return cs

    def _check_lpi_intid(self, cs: CpuState, irq: object, what: str) -> int:
        """An LPI INTID the redistributor accepts: 8192 up to its
        PROPBASER.IDbits (and GICD_TYPER.IDbits)."""
        limit = self.lpi_limit(cs)
        if not is_number(irq) or not LPI_INTID_START <= irq < limit:
            raise DeviceError("EINVAL", f"GICv3: {what}: INTID {irq!r} is not an LPI vCPU "
                                        f"{cs.index} accepts ({LPI_INTID_START}.."
                                        f"{max(limit, LPI_INTID_START) - 1}, "
                                        f"GICR_PROPBASER.IDbits)")
        return irq

    def lpi_check(self, cpu_index: int, irq: int) -> None:
        """Raise DeviceError if `lpi_process(cpu_index, irq, ...)` would be
        refused (the ITS's signal_msi checks its translation with it)."""
        cs = self._lpi_cpu(cpu_index, "LPI")
        self._check_lpi_intid(cs, irq, "LPI")
        addr = (cs.pendbaser & PENDBASER_PA_MASK) + irq // 8
        if self.ram is None or not self.ram.contains(addr, 1):
            raise DeviceError("EFAULT", f"GICv3: LPI {irq}: vCPU {cpu_index}'s pending table "
                                        f"byte {addr:#x} is outside RAM")

    def lpi_process(self, cpu_index: int, irq: int, level: int) -> None:
        """Host: set (level 1) or clear (0) one LPI's pending state on a
        redistributor, as an ITS would. Refused, changing nothing: EINVAL
        for a bad vCPU, an INTID that is not an LPI this redistributor
        accepts (PROPBASER.IDbits) or a level other than 0/1/False/True;
        EBUSY while its EnableLPIs is 0; EFAULT if its pending table is
        outside RAM."""
        self.lpi_check(cpu_index, irq)
        lv = check_level(level, "GICv3: LPI")
        self.redist.lpi_process(self.cpus[cpu_index], irq, lv)

    def lpi_inv(self, cpu_index: int, irq: int | None = None) -> None:
        """Host INV (one LPI) / INVALL (irq None): re-read pending LPIs'
        config. Checks as lpi_process (no pending-table access)."""
        cs = self._lpi_cpu(cpu_index, "INV")
        if irq is not None:
            self._check_lpi_intid(cs, irq, "INV")
        self.redist.lpi_inv(cs, irq)

    def lpi_invall_all(self) -> None:
        """The ITS's INVALL (QEMU checks no ICID): every redistributor, the
        property table read and compared once per distinct PROPBASER.PA."""
        memo: dict = {}
        for cs in self.cpus:
            self.redist.lpi_inv(cs, None, memo)

    def lpi_move(self, src_index: int, dst_index: int, irq: int | None = None) -> None:
        """Host MOVI (one LPI) / MOVALL (irq None) between redistributors:
        both need EnableLPIs (EBUSY) and a MOVI INTID both accept (EINVAL)."""
        src = self._lpi_cpu(src_index, "MOVI/MOVALL")
        dst = self._lpi_cpu(dst_index, "MOVI/MOVALL")
        if irq is not None:
            self._check_lpi_intid(src, irq, "MOVI")
            self._check_lpi_intid(dst, irq, "MOVI")
        self.redist.lpi_move(src, dst, irq)

    def lpi_pending(self, cpu_index: int) -> list[int]:
        """The pending LPIs of one redistributor (sorted; host/test view)."""
        return sorted(self._cpu(cpu_index).lpi_pending)

    def its_port(self) -> "ItsPort":
        """The GIC as an ITS sees it (GicV3Its takes it from its GicV3)."""
        return ItsPort(self)

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
        then delivery is recomputed and every line driven. `sections` is a
        dict of sections by name (EINVAL otherwise); a bad section raises
        StateError."""
        self._need_init()
        if not isinstance(sections, dict):
            raise DeviceError("EINVAL", f"GICv3: snapshot sections {type(sections).__name__} "
                                        f"(a dict)")
        self.apply_state(self.decode_state(sections))


class ItsPort:
    """The GIC as an ITS sees it: the redistributors' LPI interface (QEMU
    gicv3_redist_process_lpi / inv_lpi / mov_lpi), not the host API. The ITS
    passes vCPU numbers it checked against `cpus` and INTIDs read from guest
    tables; what the redistributor does not accept (not an LPI, beyond
    PROPBASER.IDbits, EnableLPIs 0) is ignored, as the architecture says,
    and never raises out of a guest's command. Anything else is the GicV3's
    own attribute."""

    __slots__ = ("gic",)

    def __init__(self, gic: GicV3):
        self.gic = gic

    def __getattr__(self, name: str):
        if name == "gic":                    # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.gic, name)

    @property
    def cpus(self) -> list[CpuState]:
        return self.gic.cpus

    def lpi_process(self, cpu_index: int, irq: int, level: bool) -> None:
        gic = self.gic
        gic.redist.lpi_process(gic.cpus[cpu_index], irq, level)

    def lpi_inv(self, cpu_index: int, irq: int | None = None) -> None:
        gic = self.gic
        gic.redist.lpi_inv(gic.cpus[cpu_index], irq)

    def lpi_move(self, src_index: int, dst_index: int, irq: int | None = None) -> None:
        gic = self.gic
        gic.redist.lpi_move(gic.cpus[src_index], gic.cpus[dst_index], irq)

"""The `pseries` board (sPAPR), as QEMU 7.2 builds it for what vmachine models:
the machine's wiring and its reset. The board's other jobs live next to it,
one module each: hcall dispatch (spapr_hcall), RTAS (spapr_rtas), CAS
(spapr_cas), the interrupt-controller switch (spapr_irq), the device tree
(spapr_dt); the vty console is devices/spapr_vty.

Boot: firmware (-bios, default: vmachine's boot ROM) at 0, CPU0 entered at
0x100 in real mode with MSR[SF] = 0 and r3 = device-tree address; a -kernel
ELF is placed at (p_paddr & 0x0fffffff) + kernel-addr and announced in
/chosen/qemu,boot-kernel. Firmware services are hypercalls (`sc 1`).
"""
from __future__ import annotations

from ..cpu.base import CpuState
from ..cpu.ppc64 import Ppc64Cpu
from ..devices.spapr_vty import SpaprVty
from ..errors import ConfigError
from ..intc.xics_spapr import SpaprXics
from ..intc.xive_spapr import SpaprXive
from ..loader import EM_PPC64, LoadedImage, is_elf, load_elf, load_raw, read_file
from ..state import Array, Bytes, Field, StateError, Str, U32, VMStateDescription
from .base import Board, BoardConfig
from .spapr_cas import (COMPAT_PVRS, OV5_XIVE_EXPLOIT, OV_MAXBYTES, OptionVector, SpaprCas,
                        platform_ov5)
from .spapr_dt import SpaprFdtParts, build_fdt
from .spapr_hcall import KVMPPC_H_RTAS, CpuHcalls, HcallHandler, HcallTable, ResetGuard
from .spapr_irq import IC_MODES, SpaprInterruptController, SpaprIrq
from .spapr_rtas import MachineRtas, RtasTable

SPAPR_ENTRY_POINT = 0x100
FDT_MAX_SIZE = 0x200000
FDT_MAX_ADDR = 0x80000000
KERNEL_ADDR = 0x400000
FW_MAX_SIZE = 0x400000


class PseriesBoard(Board):
    name = "pseries-7.2"
    ram_base = 0
    default_ram = 512 << 20
    max_cpus = 1024
    known_props = frozenset({"ic-mode", "kernel-addr", "dumpdtb", "cap-cfpc", "cap-sbbc",
                             "cap-ibs", "cap-ccf-assist", "cap-htm", "cap-vsx", "cap-dfp",
                             "cap-large-decr", "cap-hpt-max-page-size", "cap-nested-hv",
                             "cap-fwnmi", "cap-rpt-invalidate", "cap-ail-mode-3",
                             "accel", "x-vof", "max-cpu-compat", "resize-hpt", "vsmt"})

    @classmethod
    def validate(cls, cfg: BoardConfig, ram_size: int) -> None:
        if not 1 <= cfg.smp <= cls.max_cpus:
            raise ConfigError(f"Invalid SMP CPUs {cfg.smp}. The max CPUs supported by machine "
                              f"'{cls.name}' is {cls.max_cpus}")
        if ram_size < (16 << 20) or ram_size % (1 << 20):
            raise ConfigError(f"invalid RAM size {ram_size:#x} for pseries (at least 16 MiB, MiB aligned)")
        if cfg.cpu_model not in (None, "power9", "POWER9", "power9_v2.0", "power10", "POWER10",
                                 "power10_v2.0", "host", "max"):
            raise ConfigError(f"unable to find CPU model '{cfg.cpu_model}'")

    def __init__(self, config: BoardConfig, machine):
        super().__init__(config, machine)
        self.kernel_addr = int(config.props.get("kernel-addr", str(KERNEL_ADDR)), 0)
        self.ic_mode = config.props.get("ic-mode", "dual")
        if self.ic_mode not in IC_MODES:
            raise ConfigError(f"Invalid interrupt controller mode '{self.ic_mode}' "
                              "(expected xics, xive or dual)")
        self.guard = ResetGuard()
        self.hcalls = HcallTable(machine, self.guard)
        self.rtas = RtasTable(machine, self.guard)
        self.vty = SpaprVty(output=machine.console_write, guest_error=machine.trace.guest_error)
        self.kernel: LoadedImage | None = None
        self.firmware: LoadedImage | None = None
        self.fdt_addr = min(machine.ram.size, FDT_MAX_ADDR) - FDT_MAX_SIZE
        self._fdt: bytes = b""

    # ---- construction -----------------------------------------------------------------
    def build(self) -> None:
        m = self.machine
        for i in range(self.config.smp):
            m.cpus.append(Ppc64Cpu(i, m))
        self._create_interrupt_controllers()
        self._register_firmware_services()
        self._bios_image = self._read_bios()
        self._kernel_data = read_file(self.config.kernel, "kernel") if self.config.kernel else None
        m.reset()
        if "dumpdtb" in self.config.props:
            self.dump_dtb(self.config.props["dumpdtb"])

    def _read_bios(self) -> bytes:
        if self.config.bios:
            data = read_file(self.config.bios, "LPAR firmware")
        else:
            from ..toolchain import build_firmware
            data = build_firmware("ppc64/bootrom").read_bytes()
        if not data or len(data) > FW_MAX_SIZE:
            raise ConfigError(f"Could not load LPAR firmware '{self.config.bios or 'bootrom'}'")
        return data

    def _create_interrupt_controllers(self) -> None:
        """ic-mode=xics|xive|dual as QEMU 7.2 (dual, the default, starts in
        XICS and lets CAS pick XIVE); then the machine's interrupt numbers
        are claimed in every controller (spapr_irq_init)."""
        m = self.machine
        intcs: list[SpaprInterruptController] = []
        if self.ic_mode in ("xics", "dual"):
            intcs.append(SpaprXics(m))
        if self.ic_mode in ("xive", "dual"):
            intcs.append(SpaprXive(m, exploitation=lambda: self.cas.xive_negotiated))
        self.irq = SpaprIrq(m, intcs, self.ic_mode)
        self.irq.claim_ipis(len(m.cpus))
        self.irq.claim_machine_irqs(self.vty.irq)
        self.cas = SpaprCas(m, self.irq, self.guard, self._rebuild_fdt_after_cas)

    def _register_firmware_services(self) -> None:
        """Fill the hcall and RTAS tables (every hcall is registered once)."""
        machine_rtas = MachineRtas(self.machine, self.vty.put_chars, self.guest_reset)
        self.hcalls.register_all(self.vty.hcalls())
        self.hcalls.register_all(CpuHcalls(self.machine).hcalls())
        self.hcalls.register(KVMPPC_H_RTAS, "KVMPPC_H_RTAS", self.rtas.h_rtas)
        self.hcalls.register_all(self.cas.hcalls())
        for name, handler in machine_rtas.calls():
            self.rtas.register(name, handler)
        for intc in self.irq.intcs.values():
            self.hcalls.register_all(intc.hcalls())
            for name, handler in intc.rtas_calls():
                self.rtas.register(name, handler)

    # ---- the interfaces other code uses ------------------------------------------------
    @property
    def intcs(self) -> dict[str, SpaprInterruptController]:
        """The machine's interrupt controllers by mode name ("xics", "xive")."""
        return self.irq.intcs

    @property
    def active(self) -> SpaprInterruptController | None:
        """The interrupt controller in charge now (QEMU spapr->active_intc)."""
        return self.irq.active

    def set_irq(self, source: int, level: int) -> None:
        """A device's interrupt line, into whichever controller is active."""
        self.irq.set_irq(source, level)

    # host interrupt API (msi_routing.IrqChipHost): pins and MSI data are
    # interrupt numbers (QEMU spapr_msi_write); a missing one is ENOENT.
    irqchip_pins = range(1 << 32)
    irqchip_pin_kind = "source"

    def irqchip_set_pin(self, pin: int, level: int) -> None:
        self.irq.set_irq(pin, level)

    def signal_msi(self, address: int, data: int, device_id: int) -> None:
        self.irq.set_irq(data, 1)

    def translate_msi(self, address: int, data: int, device_id: int) -> tuple[int, int]:
        return data, -1                             # the source number; no vCPU binding

    def inject_translated(self, irq: int, vcpu: int) -> None:
        self.irq.set_irq(irq, 1)

    def msi_mapping_generation(self) -> int | None:
        return 0                                    # a source number never remaps

    def register_hcall(self, nr: int, name: str, handler: HcallHandler) -> None:
        self.hcalls.register(nr, name, handler)

    def firmware_call(self, cpu) -> None:
        assert isinstance(cpu, Ppc64Cpu)
        self.hcalls.dispatch(cpu)

    # ---- reset and images -------------------------------------------------------------
    def reset(self) -> None:
        m = self.machine
        # RAM keeps its contents across a reset, as on QEMU (images are reloaded).
        # Interrupt controllers: back to the boot mode (CAS is negotiated again).
        self.cas.reset()
        self.irq.reset()
        self._load_images()
        images = [self.firmware] + ([self.kernel] if self.kernel else [])
        self._fdt = build_fdt(self._fdt_parts())
        m.ram.write(self.fdt_addr, self._fdt)
        for cpu in m.cpus:
            assert isinstance(cpu, Ppc64Cpu)
            for img in images:
                for addr, data in img.segments:
                    cpu.trap_timebase_accesses(data, addr)
            cpu.state = CpuState.STOPPED
            cpu.set_irq_line(False)
            cpu.write_dec(0xFFFF_FFFF)
        cpu0 = m.cpus[0]
        assert isinstance(cpu0, Ppc64Cpu)
        for r in range(32):
            cpu0.set_gpr(r, 0)
        cpu0.start(SPAPR_ENTRY_POINT, self.fdt_addr, msr=0)   # real mode, 32-bit (SF = 0)
        self.guard.tripped = True

    def _load_images(self) -> None:
        """Firmware at 0, the kernel at kernel-addr (below the device tree)."""
        m = self.machine
        self.firmware = load_raw(m.ram, self._bios_image, 0, self.config.bios or "bootrom",
                                 "LPAR firmware")
        self.kernel = None
        if self._kernel_data is not None:
            path = self.config.kernel or ""
            if is_elf(self._kernel_data):
                self.kernel = load_elf(m.ram, self._kernel_data, path, EM_PPC64,
                                       lambda a: (a & 0x0FFFFFFF) + self.kernel_addr)
            else:
                self.kernel = load_raw(m.ram, self._kernel_data, self.kernel_addr, path, "kernel")
            if self.kernel.high > self.fdt_addr:
                raise ConfigError(f"could not load kernel '{path}': it overlaps the device tree "
                                  f"at {self.fdt_addr:#x} (use more -m)")

    def dtb(self) -> bytes:
        return self._fdt

    def _fdt_parts(self) -> SpaprFdtParts:
        return SpaprFdtParts(self.config, self.machine, self.vty, self.rtas, self.cas, self.irq,
                             self.kernel_addr, self.kernel)

    def _rebuild_fdt_after_cas(self) -> bytes:
        self._fdt = build_fdt(self._fdt_parts(), after_cas=True)
        return self._fdt

    # ---- migration --------------------------------------------------------------------
    def save_state(self) -> list[dict]:
        return [self.vty.save_state(), SPAPR_STATE.save(self)] + self.irq.save_states()

    def section_names(self) -> list[str]:
        return ["vty", "spapr"] + list(self.irq.intcs)

    def decode_state(self, sections: dict) -> dict:
        """The vty, the board's "spapr" section (CAS and the interrupt plan)
        and every interrupt controller's section, validated; nothing changes
        (the controller switch is apply_state's)."""
        return {"vty": self.vty.decode_state(sections),
                "spapr": SPAPR_STATE.decode(self, sections),
                "intcs": self.irq.decode_states(sections)}

    def apply_state(self, plan: dict) -> None:  # type: ignore[override]
        """spapr_irq_post_load: the console, CAS's result, the snapshot's
        active controller (the switch), every controller's state; then the
        device tree CAS left."""
        self.vty.apply_state(plan["vty"])
        sp = plan["spapr"]
        SPAPR_STATE.apply(self, sp)
        self.irq.apply_states(sp["fields"]["active"], sp["fields"]["lines_high"], plan["intcs"])
        self._fdt = build_fdt(self._fdt_parts(), after_cas=self.cas.negotiated)


# ---- migrated state: section "spapr" v1 (CAS's result and the interrupt plan) ------------------
def _check_spapr(board: PseriesBoard, v: dict) -> None:
    """What CAS can leave: nothing, or OV5 within what the platform offers
    (at most OV_MAXBYTES); a compat PVR CAS picks; the controller OV5 asks
    for (the boot one before CAS); only claimed LSI lines high."""
    ov5 = v["ov5_cas"]
    platform = platform_ov5(board.ic_mode).data
    if ov5 and not len(platform) <= len(ov5) <= OV_MAXBYTES:
        raise StateError(f"snapshot field spapr.ov5_cas has {len(ov5)} bytes "
                         f"(none, or {len(platform)}..{OV_MAXBYTES})")
    if any(b & ~(platform[i] if i < len(platform) else 0) for i, b in enumerate(ov5)):
        raise StateError("snapshot field spapr.ov5_cas has bits this platform does not offer")
    if v["compat_pvr"] not in (0,) + COMPAT_PVRS:
        raise StateError(f"snapshot field spapr.compat_pvr {v['compat_pvr']:#x} is not a "
                         f"compatibility PVR")
    if not ov5:
        want = board.irq.boot.name
    else:
        want = "xive" if OptionVector(ov5).test(OV5_XIVE_EXPLOIT) else "xics"
    if v["active"] != want or want not in board.irq.intcs:
        raise StateError(f"snapshot field spapr.active is {v['active']!r}, but CAS's result "
                         f"makes it {want!r} (ic-mode={board.ic_mode})")
    lines = v["lines_high"]
    if lines != sorted(set(lines)) or any(irq not in board.irq.lsi_lines for irq in lines):
        raise StateError("snapshot field spapr.lines_high names a line twice, out of order, "
                         "or one that is not a claimed LSI")


def _put_ov5(board: PseriesBoard, data: bytes) -> None:
    board.cas.ov5_cas = OptionVector(bytes(data))


def _applied_by_irq(board: PseriesBoard, value: object) -> None:
    """Stored by SpaprIrq.apply_states, with the controller switch."""


SPAPR_STATE = VMStateDescription("spapr", 1, (
    Field("ov5_cas", Bytes(), get_fn=lambda b: b.cas.ov5_cas.data, put_fn=_put_ov5),
    Field("compat_pvr", U32, get_fn=lambda b: b.cas.compat_pvr,
          put_fn=lambda b, v: setattr(b.cas, "compat_pvr", v)),
    Field("lines_high", Array(U32), get_fn=lambda b: sorted(b.irq.lines_high),
          put_fn=_applied_by_irq),
    Field("active", Str(("xics", "xive")), get_fn=lambda b: b.irq.active.name,
          put_fn=_applied_by_irq),
), check=_check_spapr)

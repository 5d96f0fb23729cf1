"""The AArch64 `virt` board, as QEMU 7.2 builds it for what vmachine models.

RAM at 0x4000_0000, PL011 at 0x0900_0000, PSCI through `hvc`, the generic
timer on virtual time. Loading follows hw/arm/boot.c: an ELF's segments go to
their physical addresses and the DTB is copied to the RAM base only if it
fits below the image (x0 = 0); an arm64 `Image` goes to RAM base +
text_offset with x0 = DTB; other raw kernels to RAM base + 0x80000.
"""
from __future__ import annotations

from ..cpu.aarch64 import Aarch64Cpu
from ..cpu.base import CpuState
from ..devices.arm_timer import GenericTimer
from ..devices.pl011 import PL011_BASE, PL011_SIZE, Pl011
from ..errors import ConfigError, DeviceError
from ..fdt import Node, build, cells
from ..loader import EM_AARCH64, LoadedImage, arm64_image_offset, is_elf, load_elf, load_raw, read_file
from . import psci
from .base import Board, BoardConfig

RAM_BASE = 0x4000_0000
GICD_BASE = 0x0800_0000
GICD_SIZE = 0x1_0000
GICR_LOW_BASE = 0x080A_0000
GICR_LOW_SIZE = 0xF6_0000                     # 123 vCPUs x 128 KiB
GICR_HIGH_BASE = 0x40_0000_0000               # VIRT_HIGH_GIC_REDIST2 (with small RAM)
GICR_HIGH_SIZE = 0x400_0000                   # 64 MiB = 512 vCPUs
GICR_FRAME = 0x2_0000
PHANDLE_GIC = 0x8002
ITS_BASE = 0x0808_0000                        # VIRT_GIC_ITS
ITS_SIZE = 0x2_0000
PHANDLE_ITS = 0x8003                          # vms->msi_phandle
INTID_VTIMER, INTID_PTIMER = 27, 30
PL011_SPI_GSI = 1                             # SPI 1 = INTID 33
FDT_MAX_SIZE = 0x10_0000                      # QEMU's virt DTB totalsize (1 MiB)
KERNEL64_LOAD_OFFSET = 0x8_0000
MPIDR_SYS_REGISTER = (3, 0, 0, 0, 5)
PHANDLE_CLK = 0x8000


def virt_mpidr_affinity(index: int) -> int:
    """QEMU virt with GICv3: Aff0 = index % 16, Aff1 = index / 16."""
    return ((index // 16) << 8) | (index % 16)


class VirtBoard(Board):
    name = "virt-7.2"
    ram_base = RAM_BASE
    default_ram = 128 << 20
    max_cpus = 512
    known_props = frozenset({"gic-version", "dumpdtb", "highmem", "its", "accel",
                             "virtualization", "secure", "iommu"})

    @classmethod
    def validate(cls, cfg: BoardConfig, ram_size: int) -> None:
        if not 1 <= cfg.smp <= cls.max_cpus:
            raise ConfigError(f"Invalid SMP CPUs {cfg.smp}. The max CPUs supported by machine "
                              f"'{cls.name}' is {cls.max_cpus}")
        if ram_size < (1 << 20) or ram_size % 0x1000 or ram_size > (255 << 30):
            raise ConfigError(f"invalid RAM size {ram_size:#x} for virt")
        if cfg.cpu_model not in (None, "cortex-a57", "cortex-a53", "cortex-a72", "max", "host"):
            raise ConfigError(f"unable to find CPU model '{cfg.cpu_model}'")
        if cfg.props.get("gic-version", "3") not in ("3", "max", "host"):
            raise ConfigError("gic-version: only GICv3 is modelled (gic-version=3)")
        for p in ("virtualization", "secure"):
            if cfg.props.get(p, "off") not in ("off", "false", "no"):
                raise ConfigError(f"{p}=on is not modelled (EL1 guests only)")
        if cfg.bios:
            raise ConfigError("-bios is not supported on virt (boot with -kernel)")

    def __init__(self, config: BoardConfig, machine):
        super().__init__(config, machine)
        self.uart = Pl011(output=machine.console_write,
                          log_guest_error=lambda what, **k: machine.trace.guest_error(k.pop("cpu", -1),
                                                                                      what, **k))
        self.timers: list[GenericTimer] = []
        self.kernel: LoadedImage | None = None
        self.dtb_addr: int | None = None
        self._fdt = b""
        self.its = None

    def build(self) -> None:
        m = self.machine
        m.mmio.add("pl011", PL011_BASE, PL011_SIZE, self.uart)
        for i in range(self.config.smp):
            cpu = Aarch64Cpu(i, m, 0x8000_0000 | virt_mpidr_affinity(i))
            timer = GenericTimer(m.clock)
            cpu.sysregs.update(timer.sysregs())
            cpu.sysregs[MPIDR_SYS_REGISTER] = (lambda c: c.mpidr, None)
            self.timers.append(timer)
            m.cpus.append(cpu)
        self._create_gic()
        self._kernel_data = read_file(self.config.kernel, "kernel") if self.config.kernel else None
        m.reset()
        if "dumpdtb" in self.config.props:
            self.dump_dtb(self.config.props["dumpdtb"])

    # ---- the GICv3, created and initialised as QEMU drives KVM's vGIC ----------------------
    def redist_regions(self) -> list[tuple[int, int]]:
        """(base, vCPU frames): the low region holds 123 vCPUs, the rest go
        to the high region (hw/arm/virt.c virt_redist_capacity)."""
        n = len(self.machine.cpus)
        low = min(n, GICR_LOW_SIZE // GICR_FRAME)
        regions = [(GICR_LOW_BASE, low)]
        if n > low:
            regions.append((GICR_HIGH_BASE, n - low))
        return regions

    def _create_gic(self) -> None:
        m = self.machine
        self.gic = None
        try:
            from ..intc.gicv3 import GicV3
        except ImportError:
            return                                  # a build without the GIC model
        gic = GicV3(lambda what, **k: m.trace.guest_error(k.pop("cpu", -1), "gicv3: " + what, **k),
                    lambda what, **k: m.trace.log(k.pop("cpu", -1), "irq", what, **k))
        gic.set_dist_addr(GICD_BASE)
        for base, count in self.redist_regions():
            gic.add_redist_region(base, count)
        gic.init(m.cpus)
        for name, base, size, dev in gic.mmio_windows():
            m.mmio.add(name, base, size, dev)
        for cpu, timer in zip(m.cpus, self.timers):
            assert isinstance(cpu, Aarch64Cpu)
            cpu.sysregs.update(gic.sysregs(cpu.index))
            gic.connect(cpu.index, cpu.set_irq_line, cpu.set_fiq_line)
            timer.virt.output = gic.ppi_line(cpu.index, INTID_VTIMER)
            timer.phys.output = gic.ppi_line(cpu.index, INTID_PTIMER)
        self.uart.irq = lambda level: gic.irq_line(PL011_SPI_GSI, int(level))
        self.gic = gic
        self.its = None
        gic.attach_memory(m.ram)
        if self.config.props.get("its", "on") not in ("off", "false", "no"):
            from ..intc.its import GicV3Its
            self.its = GicV3Its(gic, m.ram, ITS_BASE,
                                lambda what, **k: m.trace.guest_error(k.pop("cpu", -1), "its: " + what, **k),
                                lambda what, **k: m.trace.log(k.pop("cpu", -1), "irq", what, **k))
            m.mmio.add("gicv3-its", ITS_BASE, ITS_SIZE, self.its)
            m.round_hooks.append(self.its.step_queue)    # a long command queue runs on

    # ---- host interrupt API (msi_routing.IrqChipHost) --------------------------------------
    irqchip_pin_kind = "SPI"

    @property
    def irqchip_pins(self) -> range:
        """KVM's irqchip pins on a GICv3: gsi = SPI - 32."""
        from ..intc.gicv3 import NUM_SPI
        return range(NUM_SPI)

    def irqchip_set_pin(self, pin: int, level: int) -> None:
        self.gic.irq_line(pin, level)

    def _msi_its(self):
        if self.its is None:
            raise DeviceError("ENODEV", "GSI routing: this virt machine has no ITS")
        return self.its

    def signal_msi(self, address: int, data: int, device_id: int) -> None:
        self._msi_its().signal_msi(address, data, device_id)

    def translate_msi(self, address: int, data: int, device_id: int) -> tuple[int, int]:
        return self._msi_its().translate_msi(address, data, device_id)

    def inject_translated(self, irq: int, vcpu: int) -> None:
        self.gic.lpi_process(vcpu, irq, True)        # the direct-LPI entry point

    def msi_mapping_generation(self) -> int | None:
        return None if self.its is None else self.its.mapping_generation

    def _gic_fdt(self, root) -> None:
        if self.gic is None:
            return
        root.prop("interrupt-parent", PHANDLE_GIC)
        regions = self.redist_regions()
        reg = [0, GICD_BASE, 0, GICD_SIZE]
        for base, count in regions:
            size = GICR_LOW_SIZE if base == GICR_LOW_BASE else GICR_HIGH_SIZE   # whole regions, as QEMU
            reg += [base >> 32, base & 0xFFFF_FFFF, size >> 32, size & 0xFFFF_FFFF]
        n = root.child(f"intc@{GICD_BASE:x}")
        n.prop("phandle", PHANDLE_GIC).prop("reg", reg)
        n.prop("#redistributor-regions", len(regions)).prop("compatible", "arm,gic-v3")
        n.prop("ranges").prop("#size-cells", 2).prop("#address-cells", 2)
        n.prop("interrupt-controller").prop("#interrupt-cells", 3)
        if self.its is not None:                    # QEMU create_its: /intc/its@8080000
            its = n.child(f"its@{ITS_BASE:x}")
            its.prop("phandle", PHANDLE_ITS).prop("reg", [0, ITS_BASE, 0, ITS_SIZE])
            its.prop("#msi-cells", 1).prop("msi-controller").prop("compatible", "arm,gic-v3-its")

    # ---- reset and images -------------------------------------------------------------
    def reset(self) -> None:
        m = self.machine
        # RAM keeps its contents across a reset, as on QEMU (images are reloaded).
        self._fdt = self._build_fdt()
        entry, x0 = RAM_BASE, 0
        self.kernel, self.dtb_addr = None, None
        data, path = self._kernel_data, self.config.kernel or ""
        if data is not None:
            if is_elf(data):
                self.kernel = load_elf(m.ram, data, path, EM_AARCH64)
                entry = self.kernel.entry
                if self.kernel.low >= RAM_BASE + len(self._fdt) or self.kernel.high <= RAM_BASE:
                    self.dtb_addr = RAM_BASE
            else:
                off = arm64_image_offset(data)
                self.kernel = load_raw(m.ram, data, RAM_BASE + (off if off is not None
                                                                else KERNEL64_LOAD_OFFSET),
                                       path, "kernel")
                entry = self.kernel.entry
                initrd_start = RAM_BASE + min(m.ram.size // 2, 128 << 20)
                self.dtb_addr = (initrd_start + (2 << 20) - 1) & ~((2 << 20) - 1)
                x0 = self.dtb_addr
        else:
            self.dtb_addr = RAM_BASE
        if self.dtb_addr is not None:
            if not m.ram.contains(self.dtb_addr, len(self._fdt)):
                raise ConfigError("not enough RAM for the device tree")
            m.ram.write(self.dtb_addr, self._fdt)
        if self.gic is not None:
            self.gic.reset()
        if self.its is not None:
            self.its.reset()
        for cpu, timer in zip(m.cpus, self.timers):
            cpu.state = CpuState.STOPPED
            cpu.set_irq_line(False)
            timer.virt.write_ctl(0)
            timer.phys.write_ctl(0)
        cpu0 = m.cpus[0]
        assert isinstance(cpu0, Aarch64Cpu)
        for r in range(31):
            cpu0.set_x(r, 0)
        cpu0.start(entry, x0)
        if data is None:
            cpu0.state = CpuState.STOPPED          # nothing to run (QEMU would run flash)

    def dtb(self) -> bytes:
        return self._fdt

    # ---- migration --------------------------------------------------------------------
    def save_state(self) -> list[dict]:
        secs = [self.uart.save_state()]
        secs += [t.save_state(f"timer{i}") for i, t in enumerate(self.timers)]
        if self.gic is not None:
            secs.append(self.gic.save_state())
        if self.its is not None:
            secs.append(self.its.save_state())
        return secs

    def section_names(self) -> list[str]:
        return (["pl011"] + [f"timer{i}" for i in range(len(self.timers))]
                + (["gicv3"] if self.gic is not None else [])
                + (["gicv3-its"] if self.its is not None else []))

    def decode_state(self, sections: dict) -> dict:
        """Every device's section validated (the UART, the GIC, the ITS, one
        timer per vCPU); nothing changes."""
        return {"uart": self.uart.decode_state(sections),
                "gic": None if self.gic is None else self.gic.decode_state(sections),
                "its": None if self.its is None else self.its.decode_state(sections),
                "timers": [t.decode_state(sections, f"timer{i}") for i, t in enumerate(self.timers)]}

    def apply_state(self, plan: dict) -> None:  # type: ignore[override]
        self.uart.apply_state(plan["uart"])
        if self.gic is not None:
            self.gic.apply_state(plan["gic"])
        if self.its is not None:
            self.its.apply_state(plan["its"])
        for t, p in zip(self.timers, plan["timers"]):
            t.apply_state(p)
        self.uart._update()                       # into the restored GIC

    def _build_fdt(self) -> bytes:
        cfg, m = self.config, self.machine
        root = Node("")
        root.prop("model", "linux,dummy-virt").prop("#size-cells", 2).prop("#address-cells", 2)
        root.prop("compatible", "linux,dummy-virt")
        ps = root.child("psci")
        ps.prop("migrate", psci.MIGRATE64).prop("cpu_on", psci.CPU_ON64)
        ps.prop("cpu_off", psci.CPU_OFF).prop("cpu_suspend", psci.CPU_SUSPEND64)
        ps.prop("method", "hvc").prop("compatible", ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
        mem = root.child(f"memory@{RAM_BASE:x}")
        mem.prop("reg", cells(0, RAM_BASE, m.ram.size >> 32, m.ram.size & 0xFFFFFFFF))
        mem.prop("device_type", "memory")
        uart = root.child(f"pl011@{PL011_BASE:x}")
        uart.prop("clock-names", ["uartclk", "apb_pclk"]).prop("clocks", [PHANDLE_CLK, PHANDLE_CLK])
        uart.prop("interrupts", [0, 1, 4]).prop("reg", cells(0, PL011_BASE, 0, PL011_SIZE))
        uart.prop("compatible", ["arm,pl011", "arm,primecell"])
        cpus = root.child("cpus")
        cpus.prop("#size-cells", 0).prop("#address-cells", 1)
        for cpu in m.cpus:
            assert isinstance(cpu, Aarch64Cpu)
            aff = cpu.mpidr & 0xFF_FFFF
            n = cpus.child(f"cpu@{aff:x}")
            n.prop("phandle", 0x8001 + cpu.index)
            if cfg.smp > 1:
                n.prop("enable-method", "psci")
            n.prop("reg", aff).prop("compatible", "arm,cortex-a57").prop("device_type", "cpu")
        timer = root.child("timer")
        timer.prop("interrupts", [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4])
        timer.prop("always-on").prop("compatible", ["arm,armv8-timer", "arm,armv7-timer"])
        clk = root.child("apb-pclk")
        clk.prop("phandle", PHANDLE_CLK).prop("clock-output-names", "clk24mhz")
        clk.prop("clock-frequency", 24_000_000).prop("#clock-cells", 0).prop("compatible", "fixed-clock")
        chosen = root.child("chosen")
        if cfg.append:
            chosen.prop("bootargs", cfg.append)
        chosen.prop("stdout-path", f"/pl011@{PL011_BASE:x}")
        self._gic_fdt(root)
        return build(root, total_size=FDT_MAX_SIZE)

    # ---- PSCI ----------------------------------------------------------------------------
    def cpu_by_mpidr(self, mpidr: int) -> Aarch64Cpu | None:
        """QEMU arm_get_cpu_by_id: the argument must equal the affinity exactly
        (bit 31 of MPIDR_EL1 set makes it match nothing)."""
        for cpu in self.machine.cpus:
            assert isinstance(cpu, Aarch64Cpu)
            if cpu.mpidr & 0xFF_00FF_FFFF == mpidr:
                return cpu
        return None

    def firmware_call(self, cpu) -> None:
        """An `hvc` on the PSCI conduit: dispatch through psci.PSCI_CALLS."""
        assert isinstance(cpu, Aarch64Cpu)
        fn = cpu.x(0) & 0xFFFF_FFFF if cpu.x(0) >> 32 == 0 else cpu.x(0)
        a1, a2, a3 = cpu.x(1), cpu.x(2), cpu.x(3)
        call = psci.PSCI_CALLS.get(fn)
        if call is None:
            name, ret = f"PSCI {fn:#x}", psci.NOT_SUPPORTED
        else:
            name, ret = call.name, call.handler(self, cpu, a1, a2, a3)
        self.machine.trace.log(cpu.index, "psci", name, a1=a1, ret=ret if ret is not None else "-")
        if ret is not None:
            cpu.set_x(0, ret)

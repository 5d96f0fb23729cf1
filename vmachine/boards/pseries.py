"""The `pseries` board (sPAPR), as QEMU 7.2 builds it for what vmachine models.

Boot: firmware (-bios, default: vmachine's boot ROM) at 0, CPU0 entered at
0x100 in real mode with MSR[SF] = 0 and r3 = device-tree address; a -kernel
ELF is placed at (p_paddr & 0x0fffffff) + kernel-addr and announced in
/chosen/qemu,boot-kernel. Firmware services are hypercalls (`sc 1`): the
console (H_PUT/GET_TERM_CHAR), RTAS through KVMPPC_H_RTAS, H_CEDE/H_PROD.
Interrupt controllers (XICS, XIVE) register their hcalls and RTAS calls in
the same tables.
"""
from __future__ import annotations

import datetime
from typing import Callable

from ..cpu.base import CpuState
from ..cpu.ppc64 import MSR_EE, Ppc64Cpu
from ..errors import ConfigError
from ..fdt import Node, build, cells, u64s
from ..loader import LoadedImage, is_elf, load_elf, load_raw, read_file, EM_PPC64
from ..devices.spapr_vty import SpaprVty
from . import spapr_cas as cas
from ..intc.xics_spapr import SPAPR_IRQ_PCI_LSI
from .base import Board, BoardConfig
from .spapr_rtas import (RTAS_OUT_HW_ERROR, RTAS_OUT_PARAM_ERROR, RTAS_OUT_SUCCESS, RtasCall,
                         RtasTable)

# hcall status (include/hw/ppc/spapr.h)
H_SUCCESS = 0
H_HARDWARE = -1
H_FUNCTION = -2
H_PRIVILEGE = -3
H_PARAMETER = -4

H_GET_TERM_CHAR = 0x54
H_PUT_TERM_CHAR = 0x58
H_CEDE = 0xE0
H_PROD = 0xE4
KVMPPC_H_RTAS = 0xF000
KVMPPC_H_CAS = 0xF002
H_MULTI_THREADS_ACTIVE = -9005
H_INT_FIRST, H_INT_LAST = 0x3A8, 0x3D0      # the XIVE exploitation hcalls

SPAPR_ENTRY_POINT = 0x100
FDT_MAX_SIZE = 0x200000
FDT_MAX_ADDR = 0x80000000
KERNEL_ADDR = 0x400000
FW_MAX_SIZE = 0x400000
TIMEBASE_FREQ = 512_000_000
RTOD_EPOCH = datetime.datetime(2000, 1, 1)    # virtual time-of-day origin (deterministic)
RTAS_EARLY_DEBUG_TOKEN = 0xA

HcallHandler = Callable[[Ppc64Cpu, list[int]], tuple[int, list[int]]]


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
        self.hcalls: dict[int, tuple[str, HcallHandler]] = {}
        self.rtas = RtasTable()
        self.vty = SpaprVty(output=machine.console_write)
        self.kernel: LoadedImage | None = None
        self.firmware: LoadedImage | None = None
        self.fdt_addr = min(machine.ram.size, FDT_MAX_ADDR) - FDT_MAX_SIZE
        self._fdt: bytes = b""
        self._reset_during_call = False
        # Interrupt controllers add their nodes here (the XICS/XIVE issues).
        self.fdt_hooks: list[Callable[[Node], None]] = []

    # ---- construction -----------------------------------------------------------------
    def build(self) -> None:
        m = self.machine
        for i in range(self.config.smp):
            m.cpus.append(Ppc64Cpu(i, m))
        self._register_firmware_services()
        self._create_interrupt_controllers()
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

    def _register_firmware_services(self) -> None:
        self.register_hcall(H_PUT_TERM_CHAR, "H_PUT_TERM_CHAR", self._h_put_term_char)
        self.register_hcall(H_GET_TERM_CHAR, "H_GET_TERM_CHAR", self._h_get_term_char)
        self.register_hcall(H_CEDE, "H_CEDE", self._h_cede)
        self.register_hcall(H_PROD, "H_PROD", self._h_prod)
        self.register_hcall(KVMPPC_H_RTAS, "KVMPPC_H_RTAS", self._h_rtas)
        r = self.rtas.register
        r("display-character", self._rtas_display_character)
        r("get-time-of-day", self._rtas_get_time_of_day)
        r("power-off", self._rtas_power_off)
        r("system-reboot", self._rtas_system_reboot)
        r("query-cpu-stopped-state", self._rtas_query_cpu_stopped_state)
        r("start-cpu", self._rtas_start_cpu)
        r("stop-self", self._rtas_stop_self)

    # ---- interrupt controllers and CAS ---------------------------------------------
    def _create_interrupt_controllers(self) -> None:
        """ic-mode=xics|xive|dual as QEMU 7.2 (dual, the default, starts in XICS
        and lets CAS pick XIVE). Each device is created through its own
        constructor and switched with activate()/deactivate()."""
        self.ic_mode = self.config.props.get("ic-mode", "dual")
        if self.ic_mode not in ("xics", "xive", "dual"):
            raise ConfigError(f"Invalid interrupt controller mode '{self.ic_mode}' "
                              "(expected xics, xive or dual)")
        self.xics = self.xive = None
        if self.ic_mode in ("xics", "dual"):
            from ..intc.xics_spapr import SpaprXics
            self.xics = SpaprXics(self)
        if self.ic_mode in ("xive", "dual"):
            try:
                from ..intc.xive_spapr import SpaprXive
            except ImportError:
                if self.ic_mode == "xive":
                    raise ConfigError("ic-mode=xive: XIVE is not available in this build") from None
            else:
                self.xive = SpaprXive(self)
        self.register_hcall(KVMPPC_H_CAS, "KVMPPC_H_CAS", self._h_cas)
        self.ov5_cas = cas.OptionVector(b"")
        self.compat_pvr = 0
        self.intc = None
        # Level-sensitive device lines (the PHB's INTx) and which are high: a
        # line stays asserted across a switch of interrupt controller.
        self.lsi_lines = frozenset(range(SPAPR_IRQ_PCI_LSI, SPAPR_IRQ_PCI_LSI + 4))
        self.lines_high: set[int] = set()

    @property
    def xive_negotiated(self) -> bool:
        return self.ov5_cas.test(cas.OV5_XIVE_EXPLOIT)

    def _select_intc(self, want) -> None:
        """Make `want` the active interrupt controller (QEMU
        spapr_irq_update_active_intc): the old one lets go of the CPU lines
        and its MMIO, the new one takes them."""
        if want is self.intc:
            return
        if self.intc is not None:
            self.intc.deactivate()
        self.intc = want
        if want is not None:
            want.activate()
            for source in sorted(self.lines_high):   # levels survive the switch
                want.set_irq(source, 1)
        self.machine.trace.log(-1, "machine", "interrupt controller",
                               active="xive" if want is self.xive and want is not None else "xics")

    def set_irq(self, source: int, level: int) -> None:
        """A device's interrupt line, into whichever controller is active."""
        if source in self.lsi_lines:
            (self.lines_high.add if level else self.lines_high.discard)(source)
        if self.intc is not None:
            self.intc.set_irq(source, level)

    def _h_cas(self, cpu: Ppc64Cpu, a: list[int]) -> tuple[int, list[int]]:
        m, ram = self.machine, self.machine.ram
        vec, buf, bufsize = a[0] & 0x0FFF_FFFF_FFFF_FFFF, a[1], a[2]
        if bufsize < 4:
            return self._cas_fatal(cpu, f"insufficient CAS buffer {bufsize} (min: 4)")
        if any(c is not cpu and c.state is CpuState.RUNNING for c in m.cpus):
            m.trace.guest_error(cpu.index, "CAS with multiple active vCPUs")
            return H_MULTI_THREADS_ACTIVE, []

        def read8(addr: int) -> int:
            return ram.read_int(addr, 1, "big") if ram.contains(addr, 1) else 0

        def read32(addr: int) -> int:
            return ram.read_int(addr, 4, "big") if ram.contains(addr, 4) else 0
        table, best, explicit = cas.parse_pvrs(read32, vec)
        if best == 0 and not explicit:
            m.trace.guest_error(cpu.index, "CAS: guest not compatible with this CPU")
            return H_HARDWARE, []
        ov1 = cas.parse_vector(read8, table, 1)
        ov5 = cas.parse_vector(read8, table, 5)
        if ov1 is None or ov5 is None:
            m.trace.guest_error(cpu.index, "CAS: option vector 1 or 5 missing")
            return H_PARAMETER, []
        if ov5.test(cas.OV5_MMU_BOTH):
            return self._cas_fatal(cpu, "guest requested hash and radix MMU, which is invalid.")
        if ov5.test(cas.OV5_XIVE_BOTH):
            return self._cas_fatal(cpu, "guest requested an invalid interrupt mode")
        want_xive = ov5.test(cas.OV5_XIVE_EXPLOIT)
        if want_xive and self.xive is None:
            return self._cas_fatal(cpu, "Guest requested unavailable interrupt mode (XIVE), "
                                        "try the ic-mode=xive or ic-mode=dual machine property")
        if not want_xive and self.xics is None:
            return self._cas_fatal(cpu, "Guest requested unavailable interrupt mode (XICS), "
                                        "either don't set the ic-mode machine property or "
                                        "set it to xics or dual")
        self.compat_pvr = best
        self.ov5_cas = cas.intersect(cas.platform_ov5(self.ic_mode), ov5)
        self._select_intc(self.xive if want_xive else self.xics)
        self._fdt = self._build_fdt(after_cas=True)
        if len(self._fdt) > bufsize - 4:
            return self._cas_fatal(cpu, f"CAS buffer of {bufsize} bytes too small for the "
                                        f"{len(self._fdt)}-byte device tree")
        if not ram.contains(buf, 4 + len(self._fdt)):
            m.trace.guest_error(cpu.index, "CAS reply buffer outside RAM", addr=buf)
            return H_PARAMETER, []
        # SpaprDeviceTreeUpdateHeader {version_id = 1}: QEMU writes it in host
        # byte order; on the usual little-endian hosts that is 01 00 00 00.
        ram.write(buf, (1).to_bytes(4, "little"))
        ram.write(buf + 4, self._fdt)
        m.trace.log(cpu.index, "cas", "KVMPPC_H_CAS", xive=int(want_xive), compat=best)
        return H_SUCCESS, []

    def _cas_fatal(self, cpu: Ppc64Cpu, why: str) -> tuple[int, list[int]]:
        """QEMU error_report()s and exits on these; so does the machine."""
        self.machine.trace.guest_error(cpu.index, "CAS: " + why)
        self.machine.fatal = why
        self.machine.shutdown("error", 1)
        self._reset_during_call = True           # leave the registers alone
        return H_HARDWARE, []

    def register_hcall(self, nr: int, name: str, handler: HcallHandler) -> None:
        self.hcalls[nr] = (name, handler)

    def unregister_hcall(self, nr: int) -> None:
        self.hcalls.pop(nr, None)

    # ---- reset and images -------------------------------------------------------------
    def reset(self) -> None:
        m = self.machine
        # RAM keeps its contents across a reset, as on QEMU (images are reloaded).
        # Interrupt controllers: back to the boot mode (CAS is negotiated again).
        self.ov5_cas = cas.OptionVector(b"")
        self.compat_pvr = 0
        self.intc = None                          # reactivated below with the lines replayed
        for dev in (self.xics, self.xive):
            if dev is not None:
                dev.deactivate()
        for dev in (self.xics, self.xive):
            if dev is not None:
                dev.reset()
        self._select_intc(self.xive if self.ic_mode == "xive" else self.xics)
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
        images = [self.firmware] + ([self.kernel] if self.kernel else [])
        self._fdt = self._build_fdt()
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
        self._reset_during_call = True

    def dtb(self) -> bytes:
        return self._fdt

    # ---- migration --------------------------------------------------------------------
    def save_state(self) -> list[dict]:
        from ..state import section
        secs = [section("vty", 1, input=list(self.vty.input)),
                section("spapr", 1, ov5_cas=list(self.ov5_cas.data), compat_pvr=self.compat_pvr,
                        lines_high=sorted(self.lines_high),
                        active="xive" if self.intc is not None and self.intc is self.xive else "xics")]
        return secs + [dev.save_state() for dev in (self.xics, self.xive) if dev is not None]

    def load_state(self, sections: dict) -> None:
        from ..state import fields_of
        f = fields_of(sections, "vty", 1, {"input": list})
        self.vty.input = bytearray(int(c) & 0xFF for c in f["input"])
        sp = fields_of(sections, "spapr", 1, {"ov5_cas": list, "compat_pvr": int, "active": str,
                                              "lines_high": list})
        self.lines_high = {int(x) for x in sp["lines_high"] if int(x) in self.lsi_lines}
        self.ov5_cas = cas.OptionVector(bytes(int(b) & 0xFF for b in sp["ov5_cas"]))
        self.compat_pvr = sp["compat_pvr"]
        want = self.xive if sp["active"] == "xive" else self.xics
        if want is None:
            raise ConfigError(f"snapshot: interrupt controller '{sp['active']}' does not exist "
                              f"with ic-mode={self.ic_mode}")
        self._select_intc(want)
        for dev in (self.xics, self.xive):
            if dev is not None:
                dev.load_state(sections)
        self._fdt = self._build_fdt(after_cas=bool(self.ov5_cas.data))

    def _build_fdt(self, after_cas: bool = False) -> bytes:
        cfg, m = self.config, self.machine
        root = Node("")
        root.prop("#size-cells", 2).prop("#address-cells", 2)
        root.prop("vm,uuid", "00000000-0000-0000-0000-000000000000")
        root.prop("compatible", "qemu,pseries").prop("model", "IBM pSeries (emulated by qemu)")
        root.prop("device_type", "chrp")

        chosen = root.child("chosen")
        chosen.prop("ibm,architecture-vec-5",
                    cas.encode_vector(self.ov5_cas) if after_cas else bytes([0, 0]))
        if not after_cas:
            # (OV5 byte, value) pairs the platform supports: interrupt mode,
            # MMU (both), hash v3 / radix GTSE; only in the boot tree.
            mode = {"xics": 0x00, "xive": 0x40, "dual": 0x80}[self.ic_mode]
            chosen.prop("ibm,arch-vec-5-platform-support",
                        bytes([23, mode, 24, 0xC0, 25, 0x00, 26, 0x40]))
        if cfg.append:
            chosen.prop("bootargs", cfg.append)
        if self.kernel is not None:
            chosen.prop("qemu,boot-kernel", u64s(self.kernel_addr, self.kernel.high - self.kernel.low))
        stdout = f"/vdevice/vty@{self.vty.reg:x}"
        chosen.prop("stdout-path", stdout).prop("linux,stdout-path", stdout)

        rtas = root.child("rtas")
        for name, token in self.rtas.tokens():
            rtas.prop(name, token)
        rtas.prop("rtas-size", 0x82C).prop("rtas-error-log-max", 0x800)
        rtas.prop("rtas-event-scan-rate", 1)
        rtas.prop("ibm,hypertas-functions", ["hcall-term", "hcall-splpar", "hcall-interrupt"])

        cpus = root.child("cpus")
        cpus.prop("#size-cells", 0).prop("#address-cells", 1)
        for cpu in m.cpus:
            n = cpus.child(f"PowerPC,POWER9@{cpu.index:x}")
            n.prop("ibm,ppc-interrupt-gserver#s", [cpu.index, 0])
            n.prop("ibm,ppc-interrupt-server#s", cpu.index)
            n.prop("64-bit").prop("status", "okay")
            n.prop("clock-frequency", 1_000_000_000).prop("timebase-frequency", TIMEBASE_FREQ)
            n.prop("cpu-version", self.compat_pvr or 0x4E1200).prop("device_type", "cpu")
            n.prop("reg", cpu.index)

        vdev = root.child("vdevice")
        vdev.prop("interrupt-controller").prop("#interrupt-cells", 2)
        vdev.prop("#size-cells", 0).prop("#address-cells", 1)
        vdev.prop("compatible", "IBM,vdevice").prop("device_type", "vdevice")
        vty = vdev.child(f"vty@{self.vty.reg:x}")
        vty.prop("interrupts", [self.vty.irq, 0]).prop("compatible", "hvterm1")
        vty.prop("device_type", "serial").prop("reg", self.vty.reg)

        mem = root.child("memory@0")
        mem.prop("reg", cells(0, 0, m.ram.size >> 32, m.ram.size & 0xFFFFFFFF))
        mem.prop("device_type", "memory")
        # The interrupt controller node: the active one after CAS; at boot the
        # mode's default (XICS for xics/dual, XIVE for xive).
        node_of = self.intc
        if not after_cas:
            node_of = self.xive if self.ic_mode == "xive" else self.xics
        if node_of is not None:
            node_of.fdt_node(root)
        for hook in self.fdt_hooks:
            hook(root)
        reserve = []
        if self.kernel is not None:
            reserve.append((self.kernel_addr, self.kernel.high - self.kernel.low))
        return build(root, reserve)

    # ---- hypercalls --------------------------------------------------------------------------
    def firmware_call(self, cpu) -> None:
        assert isinstance(cpu, Ppc64Cpu)
        opcode = cpu.gpr(3)
        entry = self.hcalls.get(opcode)
        if H_INT_FIRST <= opcode <= H_INT_LAST and not self.xive_negotiated:
            entry = None          # QEMU: every H_INT_* is H_FUNCTION until CAS chose XIVE
        if entry is None:
            self.machine.trace.guest_error(cpu.index, "unimplemented hcall", opcode=opcode)
            cpu.set_gpr(3, H_FUNCTION)
            return
        name, handler = entry
        args = cpu.gprs(4, 9)
        self._reset_during_call = False
        status, outs = handler(cpu, args)
        if self._reset_during_call:
            return                               # the machine was reset under the call
        self.machine.trace.log(cpu.index, "hcall", name, status=status)
        cpu.set_gpr(3, status)
        for i, v in enumerate(outs):
            cpu.set_gpr(4 + i, v)

    def _h_put_term_char(self, cpu: Ppc64Cpu, a: list[int]) -> tuple[int, list[int]]:
        reg, length = a[0], a[1]
        if reg not in (0, self.vty.reg):
            self.machine.trace.guest_error(cpu.index, "H_PUT_TERM_CHAR: no such vty", reg=reg)
            return H_PARAMETER, []
        if length > 16:
            self.machine.trace.guest_error(cpu.index, "H_PUT_TERM_CHAR: length > 16", len=length)
            return H_PARAMETER, []
        data = a[2].to_bytes(8, "big") + a[3].to_bytes(8, "big")
        self.vty.put_chars(data[:length])
        return H_SUCCESS, []

    def _h_get_term_char(self, cpu: Ppc64Cpu, a: list[int]) -> tuple[int, list[int]]:
        if a[0] not in (0, self.vty.reg):
            self.machine.trace.guest_error(cpu.index, "H_GET_TERM_CHAR: no such vty", reg=a[0])
            return H_PARAMETER, []
        data = self.vty.get_chars()
        buf = data.ljust(16, b"\0")
        return H_SUCCESS, [len(data), int.from_bytes(buf[:8], "big"), int.from_bytes(buf[8:], "big")]

    def _h_cede(self, cpu: Ppc64Cpu, a: list[int]) -> tuple[int, list[int]]:
        # QEMU: MSR[EE] := 1, then sleep unless an interrupt is already there.
        cpu.reset_msr(cpu.msr | MSR_EE)
        if not cpu.wants_interrupt():
            cpu.state = CpuState.HALTED
            cpu.request_stop()
        else:
            cpu.request_stop()            # deliver it after the hcall returns
        return H_SUCCESS, []

    def _h_prod(self, cpu: Ppc64Cpu, a: list[int]) -> tuple[int, list[int]]:
        target = self._cpu_by_id(a[0])
        if target is None:
            return H_PARAMETER, []
        if target.state is CpuState.HALTED:
            target.state = CpuState.RUNNING
        return H_SUCCESS, []

    def _cpu_by_id(self, cpu_id: int) -> Ppc64Cpu | None:
        if 0 <= cpu_id < len(self.machine.cpus):
            cpu = self.machine.cpus[cpu_id]
            assert isinstance(cpu, Ppc64Cpu)
            return cpu
        return None

    # ---- RTAS ------------------------------------------------------------------------------
    def _h_rtas(self, cpu: Ppc64Cpu, a: list[int]) -> tuple[int, list[int]]:
        ram, buf = self.machine.ram, a[0]
        if not ram.contains(buf, 12):
            self.machine.trace.guest_error(cpu.index, "RTAS buffer outside RAM", addr=buf)
            return H_PARAMETER, []
        token, nargs, nret = (ram.read_int(buf + 4 * i, 4, "big") for i in range(3))
        if not ram.contains(buf + 12, 4 * (nargs + nret)) or nargs > 1024 or nret > 1024:
            self.machine.trace.guest_error(cpu.index, "RTAS arguments outside RAM", addr=buf,
                                           nargs=nargs, nret=nret)
            return H_PARAMETER, []
        args = [ram.read_int(buf + 12 + 4 * i, 4, "big") for i in range(nargs)]
        call = RtasCall(cpu, nargs, nret, args, [None] * nret)
        rets_addr = buf + 12 + 4 * nargs
        entry = self.rtas.handlers.get(token)
        if entry is None and token == RTAS_EARLY_DEBUG_TOKEN:
            # QEMU (spapr_rtas_call): token 0xa is display-character, an early-debug hack.
            entry = ("display-character", self._rtas_display_character)
        if entry is None:
            self.machine.trace.guest_error(cpu.index, "unknown RTAS token", token=token)
            if nret:
                ram.write_int(rets_addr, 4, RTAS_OUT_PARAM_ERROR, "big")
            return H_PARAMETER, []
        name, handler = entry
        self.machine.trace.log(cpu.index, "rtas", name, args=tuple(args))
        self._reset_during_call = False
        handler(call)
        if self._reset_during_call:
            return H_SUCCESS, []
        for i, v in enumerate(call.rets):
            if v is not None:
                ram.write_int(rets_addr + 4 * i, 4, v, "big")
        return H_SUCCESS, []

    def _param_error(self, call: RtasCall, why: str) -> None:
        self.machine.trace.guest_error(call.cpu.index, why, nargs=call.nargs, nret=call.nret)
        call.ret(0, RTAS_OUT_PARAM_ERROR)

    def _rtas_display_character(self, call: RtasCall) -> None:
        self.vty.put_chars(bytes([call.arg(0) & 0xFF]))
        call.ret(0, RTAS_OUT_SUCCESS)

    def _rtas_get_time_of_day(self, call: RtasCall) -> None:
        if call.nret != 8:
            return self._param_error(call, "get-time-of-day: nret != 8")
        ns = self.machine.clock.read()
        t = RTOD_EPOCH + datetime.timedelta(microseconds=ns // 1000)
        # QEMU stores the RTC clock's nanoseconds (since 1970), truncated to 32 bits.
        epoch_ns = int((RTOD_EPOCH - datetime.datetime(1970, 1, 1)).total_seconds()) * 1_000_000_000
        for i, v in enumerate((RTAS_OUT_SUCCESS, t.year, t.month, t.day, t.hour, t.minute,
                               t.second, (epoch_ns + ns) & 0xFFFF_FFFF)):
            call.ret(i, v)

    def _rtas_power_off(self, call: RtasCall) -> None:
        if call.nargs != 2 or call.nret != 1:
            return self._param_error(call, "power-off: bad nargs/nret")
        call.ret(0, RTAS_OUT_SUCCESS)
        self.machine.shutdown("poweroff", 0)

    def _rtas_system_reboot(self, call: RtasCall) -> None:
        if call.nargs != 0 or call.nret != 1:
            return self._param_error(call, "system-reboot: bad nargs/nret")
        call.ret(0, RTAS_OUT_SUCCESS)
        self.guest_reset()

    def _rtas_query_cpu_stopped_state(self, call: RtasCall) -> None:
        if call.nargs != 1 or call.nret != 2:
            return self._param_error(call, "query-cpu-stopped-state: bad nargs/nret")
        target = self._cpu_by_id(call.arg(0))
        if target is None:
            return self._param_error(call, "query-cpu-stopped-state: no such cpu")
        call.ret(0, RTAS_OUT_SUCCESS)
        call.ret(1, 2 if target.state is CpuState.RUNNING else 0)

    def _rtas_start_cpu(self, call: RtasCall) -> None:
        if call.nargs != 3 or call.nret != 1:
            return self._param_error(call, "start-cpu: bad nargs/nret")
        target = self._cpu_by_id(call.arg(0))
        if target is None:
            return self._param_error(call, "start-cpu: no such cpu")
        if target.state is not CpuState.STOPPED:
            self.machine.trace.guest_error(call.cpu.index, "start-cpu: cpu not stopped",
                                           target=call.arg(0))
            call.ret(0, RTAS_OUT_HW_ERROR)
            return
        target.start(call.arg(1), call.arg(2))
        self.machine.trace.log(call.cpu.index, "cpu", "start-cpu", target=target.index,
                               entry=call.arg(1))
        call.ret(0, RTAS_OUT_SUCCESS)

    def _rtas_stop_self(self, call: RtasCall) -> None:
        cpu = call.cpu
        cpu.state = CpuState.STOPPED
        cpu.reset_msr(0)
        cpu.request_stop()
        self.machine.trace.log(cpu.index, "cpu", "stop-self")

"""XICS on the pseries board: the guest's hcalls and RTAS calls, the device-tree
node and run-time activation (hw/intc/xics_spapr.c). It implements the
board's `SpaprInterruptController` (boards/spapr_irq.py), which owns the
interrupt-number plan and claims the machine's interrupts through it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..boards.spapr_hcall import H_HARDWARE, H_PARAMETER, H_SUCCESS, Hcall, HcallResult
from ..boards.spapr_irq import PHANDLE_INTC, SPAPR_NR_XIRQS, SPAPR_XIRQ_BASE
from ..boards.spapr_rtas import (RTAS_OUT_HW_ERROR, RTAS_OUT_PARAM_ERROR, RTAS_OUT_SUCCESS, RtasCall,
                                 RtasHandler)
from ..cpu.ppc64 import Ppc64Cpu
from ..fdt import Node
from ..state import MigratesThroughModel
from .xics import PRIO_MASKED, TYPE_FREE, Xics

if TYPE_CHECKING:
    from ..machine import Machine

H_EOI, H_CPPR, H_IPI, H_IPOLL, H_XIRR, H_XIRR_X = 0x64, 0x68, 0x6C, 0x70, 0x74, 0x2FC


class SpaprXics(MigratesThroughModel):
    """The XICS device of a pseries machine, activated and deactivated at run
    time (CAS switches between XICS and XIVE in ic-mode=dual). Its hcalls stay
    registered and answer H_HARDWARE while it is inactive, as QEMU's."""

    name = "xics"
    ipi_sources = False              # IPIs are the presenters' MFRR

    def __init__(self, machine: "Machine"):
        self.machine = m = machine
        self.xics = Xics(lambda what, **k: m.trace.guest_error(-1, "xics: " + what, **k),
                         lambda what, **k: m.trace.log(-1, "irq", what, **k))
        self.active = False
        self.xics.create_range(SPAPR_XIRQ_BASE, SPAPR_NR_XIRQS)   # the ICS's number space
        for cpu in m.cpus:
            self.xics.add_icp(cpu.index, lambda level, cpu=cpu: self._output(cpu, level))

    # ---- SpaprInterruptController ------------------------------------------------------
    def _output(self, cpu, level: bool) -> None:
        """An ICP drives its CPU's interrupt input only while XICS is active."""
        if self.active:
            cpu.set_irq_line(level)

    def activate(self) -> None:
        self.active = True
        for cpu in self.machine.cpus:
            cpu.set_irq_line(bool(self.xics.icps[cpu.index].xisr))

    def deactivate(self) -> None:
        if self.active:
            for cpu in self.machine.cpus:
                cpu.set_irq_line(False)
        self.active = False

    def reset(self) -> None:
        self.xics.reset()

    def claim_irq(self, irq: int, lsi: bool) -> None:
        self.xics.create_source(irq, lsi=lsi)

    def free_irq(self, irq: int) -> None:
        """The source stays in the ICS's range, unclaimed (QEMU xics_spapr_free_irq)."""
        slot = self.xics._slot(irq)
        if slot is not None:
            block, i = slot
            block.type[i] = TYPE_FREE

    def set_irq(self, irq: int, level: int) -> None:
        self.xics.set_irq(irq, level)

    def hcalls(self) -> list[Hcall]:
        return [Hcall(H_CPPR, "H_CPPR", self.h_cppr), Hcall(H_IPI, "H_IPI", self.h_ipi),
                Hcall(H_XIRR, "H_XIRR", self.h_xirr), Hcall(H_XIRR_X, "H_XIRR_X", self.h_xirr_x),
                Hcall(H_EOI, "H_EOI", self.h_eoi), Hcall(H_IPOLL, "H_IPOLL", self.h_ipoll)]

    def rtas_calls(self) -> list[tuple[str, RtasHandler]]:
        return [("ibm,set-xive", self.rtas_set_xive), ("ibm,get-xive", self.rtas_get_xive),
                ("ibm,int-off", self.rtas_int_off), ("ibm,int-on", self.rtas_int_on)]

    def dt(self, root: Node) -> None:
        n = root.child("interrupt-controller")
        n.prop("device_type", "PowerPC-External-Interrupt-Presentation")
        n.prop("compatible", "IBM,ppc-xicp").prop("interrupt-controller")
        n.prop("ibm,interrupt-server-ranges", [0, len(self.machine.cpus)])
        n.prop("#interrupt-cells", 2).prop("linux,phandle", PHANDLE_INTC).prop("phandle", PHANDLE_INTC)

    # ---- helpers -------------------------------------------------------------------------
    def _icp(self, cpu: Ppc64Cpu):
        return self.xics.icps[cpu.index]

    def _inactive(self, cpu: Ppc64Cpu, what: str) -> bool:
        if self.active:
            return False
        self.machine.trace.guest_error(cpu.index, f"{what} must only be called for emulated XICS")
        return True

    def state_model(self):
        """The model holds the whole "xics" section (state.MigratesThroughModel)."""
        return self.xics

    # ---- hcalls (H_* as xics_spapr.c) ------------------------------------------------------
    def h_cppr(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        if self._inactive(cpu, "h_cppr"):
            return H_HARDWARE, []
        self.xics.set_cppr(self._icp(cpu), a[0])
        return H_SUCCESS, []

    def h_ipi(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        if self._inactive(cpu, "h_ipi"):
            return H_HARDWARE, []
        icp = self.xics.icp(a[0])
        if icp is None:
            self.machine.trace.guest_error(cpu.index, "H_IPI: no such server", server=a[0])
            return H_PARAMETER, []
        self.xics.set_mfrr(icp, a[1])
        return H_SUCCESS, []

    def h_xirr(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        xirr = self.xics.accept(self._icp(cpu))        # QEMU accepts before the mode check
        if self._inactive(cpu, "h_xirr"):
            return H_HARDWARE, []
        return H_SUCCESS, [xirr]

    def h_xirr_x(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        xirr = self.xics.accept(self._icp(cpu))
        if self._inactive(cpu, "h_xirr_x"):
            return H_HARDWARE, []
        # QEMU returns the host tick counter; here it is the virtual timebase.
        return H_SUCCESS, [xirr, cpu.timebase()]

    def h_eoi(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        if self._inactive(cpu, "h_eoi"):
            return H_HARDWARE, []
        self.xics.eoi(self._icp(cpu), a[0] & 0xFFFF_FFFF)
        return H_SUCCESS, []

    def h_ipoll(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        if self._inactive(cpu, "h_ipoll"):
            return H_HARDWARE, []
        icp = self.xics.icp(a[0])
        if icp is None:
            self.machine.trace.guest_error(cpu.index, "H_IPOLL: no such server", server=a[0])
            return H_PARAMETER, []
        xirr, mfrr = self.xics.ipoll(icp)
        return H_SUCCESS, [xirr, mfrr]

    # ---- RTAS (rtas_* as xics_spapr.c) -------------------------------------------------------
    def _rtas_check(self, call: RtasCall, nargs: int, nret: int, name: str) -> bool:
        if not self.active:
            self.machine.trace.guest_error(call.cpu.index, f"{name} must only be called for emulated XICS")
            call.ret(0, RTAS_OUT_HW_ERROR)
            return False
        if call.nargs != nargs or call.nret != nret:
            self.machine.trace.guest_error(call.cpu.index, f"{name}: bad nargs/nret",
                                                 nargs=call.nargs, nret=call.nret)
            call.ret(0, RTAS_OUT_PARAM_ERROR)
            return False
        if not self.xics.exists(call.arg(0)):
            self.machine.trace.guest_error(call.cpu.index, f"{name}: bad source", source=call.arg(0))
            call.ret(0, RTAS_OUT_PARAM_ERROR)
            return False
        return True

    def rtas_set_xive(self, call: RtasCall) -> None:
        if not self._rtas_check(call, 3, 1, "ibm,set-xive"):
            return
        nr, server, prio = call.arg(0), call.arg(1), call.arg(2)
        if self.xics.icp(server) is None or prio > 0xFF:
            self.machine.trace.guest_error(call.cpu.index, "ibm,set-xive: bad server/priority",
                                                 server=server, priority=prio)
            call.ret(0, RTAS_OUT_PARAM_ERROR)
            return
        self.xics.write_xive(nr, server, prio, prio)
        call.ret(0, RTAS_OUT_SUCCESS)

    def rtas_get_xive(self, call: RtasCall) -> None:
        if not self._rtas_check(call, 1, 3, "ibm,get-xive"):
            return
        server, prio, _ = self.xics.read_xive(call.arg(0))
        call.ret(0, RTAS_OUT_SUCCESS)
        call.ret(1, server)
        call.ret(2, prio)

    def rtas_int_off(self, call: RtasCall) -> None:
        if not self._rtas_check(call, 1, 1, "ibm,int-off"):
            return
        server, prio, _ = self.xics.read_xive(call.arg(0))
        self.xics.write_xive(call.arg(0), server, PRIO_MASKED, prio)
        call.ret(0, RTAS_OUT_SUCCESS)

    def rtas_int_on(self, call: RtasCall) -> None:
        if not self._rtas_check(call, 1, 1, "ibm,int-on"):
            return
        server, _, saved = self.xics.read_xive(call.arg(0))
        self.xics.write_xive(call.arg(0), server, saved, saved)
        call.ret(0, RTAS_OUT_SUCCESS)

"""RTAS through the KVMPPC_H_RTAS hypercall, as QEMU's spapr_rtas.c does it.

The guest passes the real address of a buffer of 32-bit big-endian words:
token, nargs, nret, args[nargs], rets[nret]. Tokens are numbered from
0x2000 in QEMU's table order (RTAS_CALL_ORDER, the token table) and
published as /rtas properties; calls registered by other devices (XICS)
join the same table. The machine's own calls (console, time of day, power,
CPU start/stop) are `MachineRtas`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..cpu.base import CpuState
from ..cpu.ppc64 import Ppc64Cpu
from ..fdt import Node
from ..regs import Call, CallTable
from .spapr_hcall import H_PARAMETER, H_SUCCESS, HcallResult, ResetGuard, cpu_by_id

if TYPE_CHECKING:
    from ..machine import Machine

RTAS_TOKEN_BASE = 0x2000
RTAS_EARLY_DEBUG_TOKEN = 0xA    # display-character, an early-debug hack (spapr_rtas_call)
RTOD_EPOCH = (2000, 1, 1)      # virtual time-of-day origin (deterministic): datetime(*RTOD_EPOCH)

RTAS_OUT_SUCCESS = 0
RTAS_OUT_NO_ERRORS_FOUND = 1
RTAS_OUT_HW_ERROR = -1
RTAS_OUT_BUSY = -2
RTAS_OUT_PARAM_ERROR = -3
RTAS_OUT_NOT_SUPPORTED = -3

# QEMU 7.2 token order (include/hw/ppc/spapr.h RTAS_* - RTAS_TOKEN_BASE).
RTAS_CALL_ORDER = (
    "display-character", "get-time-of-day", "set-time-of-day", "power-off",
    "system-reboot", "query-cpu-stopped-state", "start-cpu", "stop-self",
    "ibm,get-system-parameter", "ibm,set-system-parameter", "ibm,set-xive",
    "ibm,get-xive", "ibm,int-off", "ibm,int-on", "check-exception", "event-scan",
    "ibm,set-tce-bypass", "quiesce", "nvram-fetch", "nvram-store", "read-pci-config",
    "write-pci-config", "ibm,read-pci-config", "ibm,write-pci-config",
    "ibm,query-interrupt-source-number", "ibm,change-msi", "set-indicator",
    "set-power-level", "get-power-level", "get-sensor-state", "ibm,configure-connector",
    "ibm,os-term", "ibm,set-eeh-option", "ibm,get-config-addr-info2",
    "ibm,read-slot-reset-state2", "ibm,set-slot-reset", "ibm,configure-pe",
    "ibm,slot-error-detail", "ibm,query-pe-dma-window", "ibm,create-pe-dma-window",
    "ibm,remove-pe-dma-window", "ibm,reset-pe-dma-window", "ibm,suspend-me",
    "ibm,nmi-register", "ibm,nmi-interlock",
)


def rtas_token(name: str) -> int:
    return RTAS_TOKEN_BASE + RTAS_CALL_ORDER.index(name)


@dataclass
class RtasCall:
    """One RTAS call in flight: argument and return words in guest memory."""
    cpu: Ppc64Cpu
    nargs: int
    nret: int
    args: list[int]
    rets: list[int | None]

    def arg(self, i: int) -> int:
        return self.args[i] if i < len(self.args) else 0

    def ret(self, i: int, value: int) -> None:
        if i < self.nret:
            self.rets[i] = value & 0xFFFFFFFF


RtasHandler = Callable[[RtasCall], None]


class RtasTable:
    """Token -> (name, handler), and the dispatch of one KVMPPC_H_RTAS call.
    Devices register their calls by name (XICS adds four)."""

    def __init__(self, machine: "Machine", guard: ResetGuard):
        self.machine = machine
        self.guard = guard
        self.handlers: CallTable[RtasHandler] = CallTable("RTAS token")

    def register(self, name: str, handler: RtasHandler) -> int:
        token = rtas_token(name)
        self.handlers.register(token, name, handler)
        return token

    def tokens(self) -> list[tuple[str, int]]:
        """(name, token) in descending token order, as QEMU's tree lists them."""
        return [(c.name, c.number) for c in reversed(list(self.handlers))]

    def dt(self, root: Node) -> None:
        rtas = root.child("rtas")
        for name, token in self.tokens():
            rtas.prop(name, token)
        rtas.prop("rtas-size", 0x82C).prop("rtas-error-log-max", 0x800)
        rtas.prop("rtas-event-scan-rate", 1)
        rtas.prop("ibm,hypertas-functions", ["hcall-term", "hcall-splpar", "hcall-interrupt"])

    def _lookup(self, token: int) -> Call[RtasHandler] | None:
        entry = self.handlers.get(token)
        if entry is None and token == RTAS_EARLY_DEBUG_TOKEN:
            entry = self.handlers.get(rtas_token("display-character"))
        return entry

    def h_rtas(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        """KVMPPC_H_RTAS: r4 = the real address of the argument buffer."""
        ram, trace, buf = self.machine.ram, self.machine.trace, a[0]
        if not ram.contains(buf, 12):
            trace.guest_error(cpu.index, "RTAS buffer outside RAM", addr=buf)
            return H_PARAMETER, []
        token, nargs, nret = (ram.read_int(buf + 4 * i, 4, "big") for i in range(3))
        if not ram.contains(buf + 12, 4 * (nargs + nret)) or nargs > 1024 or nret > 1024:
            trace.guest_error(cpu.index, "RTAS arguments outside RAM", addr=buf,
                              nargs=nargs, nret=nret)
            return H_PARAMETER, []
        args = [ram.read_int(buf + 12 + 4 * i, 4, "big") for i in range(nargs)]
        call = RtasCall(cpu, nargs, nret, args, [None] * nret)
        rets_addr = buf + 12 + 4 * nargs
        entry = self._lookup(token)
        if entry is None:
            trace.guest_error(cpu.index, "unknown RTAS token", token=token)
            if nret:
                ram.write_int(rets_addr, 4, RTAS_OUT_PARAM_ERROR, "big")
            return H_PARAMETER, []
        trace.log(cpu.index, "rtas", entry.name, args=tuple(args))
        self.guard.tripped = False
        entry.handler(call)
        if self.guard.tripped:
            return H_SUCCESS, []
        for i, v in enumerate(call.rets):
            if v is not None:
                ram.write_int(rets_addr + 4 * i, 4, v, "big")
        return H_SUCCESS, []


class MachineRtas:
    """The RTAS calls of the machine itself (QEMU spapr_rtas.c): the console,
    the time of day on the virtual clock, power-off/reboot, CPU start/stop."""

    def __init__(self, machine: "Machine", console_put: Callable[[bytes], None],
                 guest_reset: Callable[[], None]):
        self.machine = machine
        self.console_put = console_put          # the vty's put_chars
        self.guest_reset = guest_reset

    def calls(self) -> list[tuple[str, RtasHandler]]:
        return [("display-character", self.display_character),
                ("get-time-of-day", self.get_time_of_day),
                ("power-off", self.power_off),
                ("system-reboot", self.system_reboot),
                ("query-cpu-stopped-state", self.query_cpu_stopped_state),
                ("start-cpu", self.start_cpu),
                ("stop-self", self.stop_self)]

    def _param_error(self, call: RtasCall, why: str) -> None:
        self.machine.trace.guest_error(call.cpu.index, why, nargs=call.nargs, nret=call.nret)
        call.ret(0, RTAS_OUT_PARAM_ERROR)

    def display_character(self, call: RtasCall) -> None:
        self.console_put(bytes([call.arg(0) & 0xFF]))
        call.ret(0, RTAS_OUT_SUCCESS)

    def get_time_of_day(self, call: RtasCall) -> None:
        if call.nret != 8:
            return self._param_error(call, "get-time-of-day: nret != 8")
        import datetime                   # only this call needs it: not imported at start
        ns = self.machine.clock.read()
        origin = datetime.datetime(*RTOD_EPOCH)
        t = origin + datetime.timedelta(microseconds=ns // 1000)
        # QEMU stores the RTC clock's nanoseconds (since 1970), truncated to 32 bits.
        epoch_ns = int((origin - datetime.datetime(1970, 1, 1)).total_seconds()) * 1_000_000_000
        for i, v in enumerate((RTAS_OUT_SUCCESS, t.year, t.month, t.day, t.hour, t.minute,
                               t.second, (epoch_ns + ns) & 0xFFFF_FFFF)):
            call.ret(i, v)

    def power_off(self, call: RtasCall) -> None:
        if call.nargs != 2 or call.nret != 1:
            return self._param_error(call, "power-off: bad nargs/nret")
        call.ret(0, RTAS_OUT_SUCCESS)
        self.machine.shutdown("poweroff", 0)

    def system_reboot(self, call: RtasCall) -> None:
        if call.nargs != 0 or call.nret != 1:
            return self._param_error(call, "system-reboot: bad nargs/nret")
        call.ret(0, RTAS_OUT_SUCCESS)
        self.guest_reset()

    def query_cpu_stopped_state(self, call: RtasCall) -> None:
        if call.nargs != 1 or call.nret != 2:
            return self._param_error(call, "query-cpu-stopped-state: bad nargs/nret")
        target = cpu_by_id(self.machine, call.arg(0))
        if target is None:
            return self._param_error(call, "query-cpu-stopped-state: no such cpu")
        call.ret(0, RTAS_OUT_SUCCESS)
        call.ret(1, 2 if target.state is CpuState.RUNNING else 0)

    def start_cpu(self, call: RtasCall) -> None:
        if call.nargs != 3 or call.nret != 1:
            return self._param_error(call, "start-cpu: bad nargs/nret")
        target = cpu_by_id(self.machine, call.arg(0))
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

    def stop_self(self, call: RtasCall) -> None:
        cpu = call.cpu
        cpu.state = CpuState.STOPPED
        cpu.reset_msr(0)
        cpu.request_stop()
        self.machine.trace.log(cpu.index, "cpu", "stop-self")

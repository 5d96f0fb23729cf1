"""sPAPR hypercall dispatch (`sc 1`), as QEMU's spapr_hcall.c: a table from
hcall number to (name, handler), filled by the board and by the devices that
own hcalls (the vty, the interrupt controllers, CAS, RTAS).

A handler gets the vCPU and its argument registers r4..r12 and returns
(status, output registers from r4). An entry may carry an `enabled`
predicate: while it is false the hcall answers H_FUNCTION exactly as an
unknown number does. That is how the XIVE exploitation hcalls stay
unavailable until CAS negotiated them (QEMU tests ov5_cas in every h_int_*).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from ..cpu.base import CpuState
from ..cpu.ppc64 import MSR_EE, Ppc64Cpu
from ..regs import Call, CallTable

if TYPE_CHECKING:
    from ..machine import Machine

# hcall status (include/hw/ppc/spapr.h)
H_SUCCESS = 0
H_HARDWARE = -1
H_FUNCTION = -2
H_PRIVILEGE = -3
H_PARAMETER = -4
H_P2, H_P3, H_P4, H_P5 = -55, -56, -57, -58
H_MULTI_THREADS_ACTIVE = -9005

# hcall numbers the board itself answers
H_GET_TERM_CHAR = 0x54
H_PUT_TERM_CHAR = 0x58
H_CEDE = 0xE0
H_PROD = 0xE4
KVMPPC_H_RTAS = 0xF000
KVMPPC_H_CAS = 0xF002

HcallResult = tuple[int, list[int]]
HcallHandler = Callable[[Ppc64Cpu, list[int]], HcallResult]


Hcall = Call[HcallHandler]       # one row: Hcall(nr, name, handler, enabled=None)


class ResetGuard:
    """Set when the machine was reset (or stopped) under a firmware call: the
    call must then leave the vCPU registers alone, they belong to the reset."""

    def __init__(self) -> None:
        self.tripped = False


class HcallTable:
    """Hcall number -> Hcall, and the dispatch of one `sc 1`."""

    def __init__(self, machine: "Machine", guard: ResetGuard):
        self.machine = machine
        self.guard = guard
        self.entries: CallTable[HcallHandler] = CallTable("hcall")

    def register(self, nr: int, name: str, handler: HcallHandler,
                 enabled: Callable[[], bool] | None = None) -> None:
        self.entries.register(nr, name, handler, enabled)

    def register_all(self, hcalls: Iterable[Hcall]) -> None:
        for h in hcalls:
            self.entries.add(h)

    def lookup(self, nr: int) -> Hcall | None:
        """The entry that answers `nr` now (None: H_FUNCTION)."""
        return self.entries.get(nr)

    def dispatch(self, cpu: Ppc64Cpu) -> None:
        """r3 = number, r4.. = arguments; status back in r3, outputs in r4.."""
        opcode = cpu.gpr(3)
        h = self.lookup(opcode)
        if h is None:
            self.machine.trace.guest_error(cpu.index, "unimplemented hcall", opcode=opcode)
            cpu.set_gpr(3, H_FUNCTION)
            return
        args = cpu.gprs(4, 9)
        self.guard.tripped = False
        status, outs = h.handler(cpu, args)
        if self.guard.tripped:
            return                               # the machine was reset under the call
        self.machine.trace.log(cpu.index, "hcall", h.name, status=status)
        cpu.set_gpr(3, status)
        for i, v in enumerate(outs):
            cpu.set_gpr(4 + i, v)


def cpu_by_id(machine: "Machine", cpu_id: int) -> Ppc64Cpu | None:
    """The vCPU with this PAPR cpu id (its index), None if there is none."""
    if 0 <= cpu_id < len(machine.cpus):
        cpu = machine.cpus[cpu_id]
        assert isinstance(cpu, Ppc64Cpu)
        return cpu
    return None


class CpuHcalls:
    """H_CEDE and H_PROD (QEMU spapr_hcall.c h_cede/h_prod)."""

    def __init__(self, machine: "Machine"):
        self.machine = machine

    def hcalls(self) -> list[Hcall]:
        return [Hcall(H_CEDE, "H_CEDE", self.h_cede), Hcall(H_PROD, "H_PROD", self.h_prod)]

    def h_cede(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        # QEMU: MSR[EE] := 1, then sleep unless an interrupt is already there.
        cpu.reset_msr(cpu.msr | MSR_EE)
        if not cpu.wants_interrupt():
            cpu.state = CpuState.HALTED
            cpu.request_stop()
        else:
            cpu.request_stop()            # deliver it after the hcall returns
        return H_SUCCESS, []

    def h_prod(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        target = cpu_by_id(self.machine, a[0])
        if target is None:
            return H_PARAMETER, []
        if target.state is CpuState.HALTED:
            target.state = CpuState.RUNNING
        return H_SUCCESS, []

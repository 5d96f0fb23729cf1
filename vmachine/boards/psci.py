"""PSCI as QEMU 7.2's virt answers it through `hvc #0` (target/arm/psci.c):
the function IDs it recognises and their return codes, and PSCI_CALLS, the
table of function id -> (name, handler) the board dispatches through; any
other function id on the conduit answers NOT_SUPPORTED (seen on QEMU 7.2,
guests/NOTES.md).

A handler is `fn(board, cpu, a1, a2, a3)` and returns the value for x0, or
None when the caller does not return (CPU_OFF, SYSTEM_OFF, SYSTEM_RESET).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

from ..cpu.base import CpuState
from ..regs import CallTable

if TYPE_CHECKING:
    from ..cpu.aarch64 import Aarch64Cpu
    from ..machine import Machine


class VirtBoard(Protocol):
    """What PSCI needs of its board (boards/virt.py), declared here so that
    the board's module and this table do not import each other."""
    machine: "Machine"

    def cpu_by_mpidr(self, mpidr: int) -> "Aarch64Cpu | None": ...

    def guest_reset(self) -> None: ...

PSCI_VERSION = 0x8400_0000
CPU_SUSPEND, CPU_SUSPEND64 = 0x8400_0001, 0xC400_0001
CPU_OFF = 0x8400_0002
CPU_ON, CPU_ON64 = 0x8400_0003, 0xC400_0003
AFFINITY_INFO, AFFINITY_INFO64 = 0x8400_0004, 0xC400_0004
MIGRATE, MIGRATE64 = 0x8400_0005, 0xC400_0005
MIGRATE_INFO_TYPE = 0x8400_0006
SYSTEM_OFF = 0x8400_0008
SYSTEM_RESET = 0x8400_0009
PSCI_FEATURES = 0x8400_000A
# PSCI 0.1 IDs QEMU still accepts (the DT's cpu_on/cpu_off/... values)
CPU_SUSPEND_0_1, CPU_OFF_0_1, CPU_ON_0_1, MIGRATE_0_1 = 0x95C1BA5E, 0x95C1BA5F, 0x95C1BA60, 0x95C1BA61

SUCCESS = 0
NOT_SUPPORTED = -1
INVALID_PARAMS = -2
DENIED = -3
ALREADY_ON = -4
ON_PENDING = -5

VERSION_1_1 = 0x0001_0001
TOS_MIGRATION_NOT_REQUIRED = 2
AFF_ON, AFF_OFF = 0, 1

# PSCI_FEATURES answers 0 for these (QEMU 7.2), NOT_SUPPORTED for anything else.
FEATURES = frozenset({PSCI_VERSION, MIGRATE_INFO_TYPE, AFFINITY_INFO, AFFINITY_INFO64,
                      SYSTEM_RESET, SYSTEM_OFF, CPU_ON, CPU_ON64, CPU_ON_0_1, CPU_OFF,
                      CPU_OFF_0_1, CPU_SUSPEND, CPU_SUSPEND64, CPU_SUSPEND_0_1, PSCI_FEATURES})


def psci_version(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    return VERSION_1_1


def migrate_info_type(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    return TOS_MIGRATION_NOT_REQUIRED


def psci_features(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    return SUCCESS if a1 in FEATURES else NOT_SUPPORTED


def affinity_info(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    """a1 = target affinity, a2 = lowest affinity level."""
    if a2 != 0:
        return AFF_ON                                 # QEMU: everything above level 0 is on
    target = board.cpu_by_mpidr(a1)
    if target is None:
        return INVALID_PARAMS
    return AFF_OFF if target.state is CpuState.STOPPED else AFF_ON


def cpu_on(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    """a1 = target MPIDR, a2 = entry point, a3 = context id (the target's x0)."""
    target = board.cpu_by_mpidr(a1)
    if target is None:
        board.machine.trace.guest_error(cpu.index, "CPU_ON: no such MPIDR", mpidr=a1)
        return INVALID_PARAMS
    if target.state is not CpuState.STOPPED:
        return ALREADY_ON
    target.start(a2, a3)
    return SUCCESS


def _power_off(cpu: Aarch64Cpu) -> None:
    cpu.state = CpuState.STOPPED
    cpu.request_stop()


def cpu_off(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    _power_off(cpu)
    return None


def cpu_suspend(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    """a1 = power state; QEMU treats every suspend as a WFI."""
    if a1 & 0xFFFE_0000:
        return INVALID_PARAMS
    if not cpu.wants_interrupt():
        cpu.state = CpuState.HALTED
        cpu.request_stop()
    return SUCCESS


def system_off(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    _power_off(cpu)
    board.machine.shutdown("poweroff", 0)
    return None


def system_reset(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    _power_off(cpu)
    board.guest_reset()
    return None


def not_supported(board: VirtBoard, cpu: Aarch64Cpu, a1: int, a2: int, a3: int) -> int | None:
    """MIGRATE: QEMU 7.2 answers NOT_SUPPORTED (as for any unknown id)."""
    return NOT_SUPPORTED


PsciFn = Callable[["VirtBoard", "Aarch64Cpu", int, int, int], "int | None"]
PSCI_CALLS: CallTable[PsciFn] = CallTable.of("PSCI function", [
    (PSCI_VERSION, "PSCI_VERSION", psci_version),
    (CPU_SUSPEND, "CPU_SUSPEND", cpu_suspend), (CPU_SUSPEND64, "CPU_SUSPEND", cpu_suspend),
    (CPU_SUSPEND_0_1, "CPU_SUSPEND", cpu_suspend),
    (CPU_OFF, "CPU_OFF", cpu_off), (CPU_OFF_0_1, "CPU_OFF", cpu_off),
    (CPU_ON, "CPU_ON", cpu_on), (CPU_ON64, "CPU_ON", cpu_on), (CPU_ON_0_1, "CPU_ON", cpu_on),
    (AFFINITY_INFO, "AFFINITY_INFO", affinity_info), (AFFINITY_INFO64, "AFFINITY_INFO", affinity_info),
    (MIGRATE, "MIGRATE", not_supported), (MIGRATE64, "MIGRATE", not_supported),
    (MIGRATE_0_1, "MIGRATE", not_supported),
    (MIGRATE_INFO_TYPE, "MIGRATE_INFO_TYPE", migrate_info_type),
    (SYSTEM_OFF, "SYSTEM_OFF", system_off), (SYSTEM_RESET, "SYSTEM_RESET", system_reset),
    (PSCI_FEATURES, "PSCI_FEATURES", psci_features),
])

"""vmachine: a QEMU-compatible pseries/virt emulator for interrupt-controller work."""
from .errors import ConfigError, DeviceError, VMError
from .machine import Machine, RunResult

__all__ = ["ConfigError", "DeviceError", "Machine", "RunResult", "VMError", "create_machine"]


def create_machine(machine: str = "pseries", **options) -> Machine:
    """Build a machine: `create_machine("virt,gic-version=3", smp=4, kernel="g.elf")`."""
    from .boards.registry import create_board
    return create_board(machine, **options)

"""vmachine: a QEMU-compatible pseries/virt emulator for interrupt-controller work."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigError, DeviceError, VMError

if TYPE_CHECKING:
    from .machine import Machine, RunResult

__all__ = ["ConfigError", "DeviceError", "Machine", "RunResult", "VMError", "create_machine"]


def __getattr__(name: str):
    # `Machine` and `RunResult` are imported on first use, so that `import
    # vmachine.cli` (and `vmachine build`, or a command line error) does not
    # load Unicorn and the engine.
    if name in ("Machine", "RunResult"):
        from . import machine
        return getattr(machine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_machine(machine: str = "pseries", **options) -> Machine:
    """Build a machine: `create_machine("virt,gic-version=3", smp=4, kernel="g.elf")`."""
    from .boards.registry import create_board
    return create_board(machine, **options)

"""The machine types by QEMU name (`pseries`, `virt`) and `create_board`, which
builds a Machine with its board. Kept out of the package's __init__ so that
importing one board module does not import every board; a board's module is
imported only when that board is asked for (`vmachine run aarch64/...` never
imports the pseries board and its interrupt controllers, nor the reverse)."""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ..errors import ConfigError
from ..machine import DEFAULT_QUANTUM, Machine
from .base import Board, BoardConfig

# QEMU machine type -> (module under vmachine.boards, class name).
_BOARDS = {"pseries": ("pseries", "PseriesBoard"), "pseries-7.2": ("pseries", "PseriesBoard"),
           "virt": ("virt", "VirtBoard"), "virt-7.2": ("virt", "VirtBoard")}


def parse_machine_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'virt,gic-version=3' -> ('virt', {'gic-version': '3'})."""
    parts = spec.split(",")
    name, props = parts[0], {}
    for p in parts[1:]:
        if not p:
            continue
        key, sep, value = p.partition("=")
        props[key] = value if sep else "on"
    if name.startswith("type="):
        name = name[5:]
    return name, props


def board_class(name: str) -> type[Board]:
    if name not in _BOARDS:
        raise ConfigError(f"unsupported machine type '{name}' (this build has: pseries, virt)")
    module, cls = _BOARDS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def create_board(machine: str = "pseries", *, ram_size: int | None = None, smp: int = 1,
                 kernel: str | None = None, bios: str | None = None, append: str = "",
                 cpu_model: str | None = None, quantum: int | None = None,
                 console: Callable[[bytes], None] | None = None,
                 trace_echo: Callable[[str], None] | None = None, no_reboot: bool = False,
                 **extra_props: Any) -> Machine:
    name, props = parse_machine_spec(machine)
    props.update({k.replace("_", "-"): str(v) for k, v in extra_props.items()})
    cls = board_class(name)
    cfg = BoardConfig(ram_size=ram_size, smp=smp, kernel=kernel, bios=bios, append=append,
                      cpu_model=cpu_model, props=props, quantum=quantum, no_reboot=no_reboot)
    size = ram_size if ram_size is not None else cls.default_ram
    cls.validate(cfg, size)
    m = Machine(cls.ram_base, size, quantum or DEFAULT_QUANTUM, console, trace_echo)
    board = cls(cfg, m)
    m.board = board
    board.build()
    return m


__all__ = ["Board", "BoardConfig", "create_board", "parse_machine_spec"]

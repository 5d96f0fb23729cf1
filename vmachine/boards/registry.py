"""The machine types by QEMU name (`pseries`, `virt`) and `create_board`, which
builds a Machine with its board. Kept out of the package's __init__ so that
importing one board module does not import every board."""
from __future__ import annotations

from typing import Any, Callable

from ..errors import ConfigError
from ..machine import DEFAULT_QUANTUM, Machine
from .base import Board, BoardConfig
from .pseries import PseriesBoard
from .virt import VirtBoard


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
    table: dict[str, type[Board]] = {"pseries": PseriesBoard, "pseries-7.2": PseriesBoard,
                                     "virt": VirtBoard, "virt-7.2": VirtBoard}
    if name not in table:
        raise ConfigError(f"unsupported machine type '{name}' (this build has: pseries, virt)")
    return table[name]


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

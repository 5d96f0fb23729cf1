"""What every board does: configuration, image loading, reset, firmware calls."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..cpu.base import VCpu
from ..errors import ConfigError
from ..machine import Machine


@dataclass
class BoardConfig:
    """The QEMU command-line settings a board models."""
    ram_size: int | None = None             # bytes; None = board default
    smp: int = 1
    kernel: str | None = None
    bios: str | None = None
    append: str = ""
    cpu_model: str | None = None
    props: dict[str, str] = field(default_factory=dict)    # -M name,key=value,...
    quantum: int | None = None
    no_reboot: bool = False


def parse_size(text: str) -> int:
    """QEMU's size syntax for -m: a number with an optional K/M/G/T suffix
    (a bare number means MiB)."""
    t = text.strip()
    if t.lower().startswith("size="):
        t = t[5:]
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    mult = 1 << 20
    if t and t[-1].lower() in units:
        mult = units[t[-1].lower()]
        t = t[:-1]
    elif t.lower().endswith("b"):
        t, mult = t[:-1], 1
    try:
        value = float(t)
    except ValueError:
        raise ConfigError(f"invalid RAM size: {text}") from None
    if value <= 0:
        raise ConfigError(f"invalid RAM size: {text}")
    return int(value * mult)


class Board:
    """A QEMU machine type. Subclasses set up CPUs, devices, the device tree,
    and answer the CPUs' firmware calls (hcalls/RTAS or PSCI)."""

    name = ""
    default_ram = 128 << 20
    max_cpus = 1
    known_props: frozenset[str] = frozenset()

    def __init__(self, config: BoardConfig, machine: Machine):
        self.config = config
        self.machine = machine
        for key in config.props:
            if key not in self.known_props:
                raise ConfigError(f"Property '{self.name}-machine.{key}' not found")

    @property
    def cpus(self) -> list[VCpu]:
        return self.machine.cpus

    def firmware_call(self, cpu: VCpu) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Reload the images and reset the devices; run it as Machine.reset(),
        which first makes the vCPUs forget code translated from the old RAM."""
        raise NotImplementedError

    def dtb(self) -> bytes:
        raise NotImplementedError

    # ---- migration: the board's sections and its devices' ------------------------------------
    def save_state(self) -> list[dict]:
        raise NotImplementedError

    def section_names(self) -> list[str]:
        """The names of the sections save_state() writes (a snapshot with
        any other section is not of this machine)."""
        return [sec["name"] for sec in self.save_state()]

    def decode_state(self, sections: dict) -> object:
        """Validate the board's and its devices' sections completely: the
        plan for apply_state. Touches nothing."""
        raise NotImplementedError

    def apply_state(self, plan: object) -> None:
        """Store what decode_state accepted (cannot fail on it)."""
        raise NotImplementedError

    def load_state(self, sections: dict) -> None:
        self.apply_state(self.decode_state(sections))

    def dump_dtb(self, path: str) -> None:
        try:
            Path(path).write_bytes(self.dtb())
        except OSError as e:
            raise ConfigError(f"could not write dtb '{path}': {e.strerror}") from None

    def guest_reset(self) -> None:
        """A guest-requested reset (RTAS system-reboot, PSCI SYSTEM_RESET):
        restart from the images unless -no-reboot, as QEMU does."""
        if self.config.no_reboot:
            self.machine.shutdown("reset", 0)
            return
        self.machine.trace.log(-1, "machine", "reset")
        self.machine.reset()
        if self.machine._running_cpu is not None:
            self.machine._running_cpu.request_stop()

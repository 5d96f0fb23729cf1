"""Command line: QEMU's spelling for what vmachine models, plus a few verbs.

    vmachine -M pseries -m 512M -smp 4 -kernel guest.elf -nographic
    vmachine run [ARCH/GUEST] [QEMU options]      (no guest: the demo guest)
    vmachine step [-n N] [--cpu I] [ARCH/GUEST] [QEMU options]
    vmachine build ARCH/GUEST | firmware

The guest console goes to stdout; the exit status is the guest's power-off
status (0), or 1 with a one-line report when the run cannot go on.
"""
from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from .errors import ConfigError, VMError

PROG = "vmachine"

# QEMU options that take a value and are accepted because, with the values
# listed, they change nothing a guest or a user can see here.
_IGNORED_WITH_VALUE = {"-serial": {"stdio", "mon:stdio", "none", "null"},
                       "-display": {"none"}, "-accel": {"tcg"}, "-monitor": {"none"},
                       "-name": None, "-boot": None}
_IGNORED_FLAGS = {"-nographic", "-nodefaults", "-no-user-config"}
# QEMU options vmachine does not implement: refused rather than silently ignored.
_UNSUPPORTED = {"-s": "the GDB stub", "-S": "starting stopped for a debugger",
                "-gdb": "the GDB stub", "-d": "QEMU's log items", "-D": "QEMU's log file",
                "-no-shutdown": "staying alive after the guest powers off",
                "-rtc": "a configurable real-time clock (guest time is virtual)"}
MAX_QUANTUM = 1_000_000        # bounds the time between checks of --timeout and Ctrl-C


@dataclass
class Options:
    verb: str = "run"
    machine: str | None = None
    ram: str | None = None
    smp: int = 1
    kernel: str | None = None
    bios: str | None = None
    append: str = ""
    cpu: str | None = None
    guest: str | None = None
    trace: bool = False
    max_insns: int | None = None
    timeout: float | None = None
    quantum: int | None = None
    no_reboot: bool = False
    steps: int = 1
    step_cpu: int = 0
    build_target: str | None = None
    extra: list[str] = field(default_factory=list)


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ConfigError(f"invalid {what}: '{text}'") from None


def _positive_int(text: str, what: str, limit: int | None = None) -> int:
    n = _int(text, what)
    if n < 1 or (limit is not None and n > limit):
        bound = f" from 1 to {limit:,}" if limit is not None else " of at least 1"
        raise ConfigError(f"invalid {what}: '{text}' (a whole number{bound})")
    return n


def _seconds(text: str, what: str) -> float:
    try:
        t = float(text)
    except ValueError:
        t = float("nan")
    if not math.isfinite(t) or t <= 0:
        raise ConfigError(f"invalid {what}: '{text}' (a positive number of seconds)")
    return t


def parse_smp(text: str) -> int:
    """'4', '4,sockets=1', 'cpus=4,maxcpus=8' -> 4."""
    cpus = None
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep and cpus is None:
            cpus = _int(key, "-smp value")
        elif key == "cpus":
            cpus = _int(value, "-smp cpus")
        elif key not in ("maxcpus", "sockets", "cores", "threads", "dies", "clusters"):
            raise ConfigError(f"Invalid parameter '{key}' for -smp")
    if cpus is None or cpus < 1:
        raise ConfigError(f"Invalid SMP CPUs {text}")
    return cpus


def _step_cpu(text: str) -> int:
    n = _int(text, "--cpu")
    if n < 0:
        raise ConfigError(f"invalid --cpu: '{text}' (a vCPU index from 0)")
    return n


def _ignored(opt: str, v: str) -> None:
    allowed = _IGNORED_WITH_VALUE[opt]
    if allowed is not None and v not in allowed:
        raise ConfigError(f"{opt} {v}: not supported (only {', '.join(sorted(allowed))})")


# Options that take a value: option -> (verbs it belongs to, None: all; store).
_WITH_VALUE: dict[str, tuple[tuple[str, ...] | None, Callable[[Options, str, str], None]]] = {
    "-M": (None, lambda o, a, v: setattr(o, "machine", v)),
    "-machine": (None, lambda o, a, v: setattr(o, "machine", v)),
    "-m": (None, lambda o, a, v: setattr(o, "ram", v)),
    "-smp": (None, lambda o, a, v: setattr(o, "smp", parse_smp(v))),
    "-kernel": (None, lambda o, a, v: setattr(o, "kernel", v)),
    "-bios": (None, lambda o, a, v: setattr(o, "bios", v)),
    "-append": (None, lambda o, a, v: setattr(o, "append", v)),
    "-cpu": (None, lambda o, a, v: setattr(o, "cpu", v)),
    "--max-insns": (None, lambda o, a, v: setattr(o, "max_insns", _positive_int(v, a))),
    "--timeout": (None, lambda o, a, v: setattr(o, "timeout", _seconds(v, a))),
    "--quantum": (None, lambda o, a, v: setattr(o, "quantum", _positive_int(v, a, MAX_QUANTUM))),
    "-n": (("step",), lambda o, a, v: setattr(o, "steps", _positive_int(v, a))),
    "--cpu": (("step",), lambda o, a, v: setattr(o, "step_cpu", _step_cpu(v))),
    **{opt: (None, lambda o, a, v: _ignored(a, v)) for opt in _IGNORED_WITH_VALUE},
}
_FLAGS: dict[str, Callable[[Options], None]] = {
    "-no-reboot": lambda o: setattr(o, "no_reboot", True),
    "--trace": lambda o: setattr(o, "trace", True),
    **{opt: (lambda o: None) for opt in _IGNORED_FLAGS},
}
_OWN_LONG = ("--trace", "--max-insns", "--timeout", "--quantum", "--cpu")


def _positional(o: Options, a: str) -> None:
    if o.verb in ("run", "step") and o.guest is None:
        o.guest = a
    elif o.verb == "build" and o.build_target is None:
        o.build_target = a
    else:
        raise ConfigError(f"{a}: unexpected argument")


def parse_args(argv: list[str]) -> Options:
    """QEMU's option spelling (and --opt for -opt) plus vmachine's own."""
    o = Options()
    args = list(argv)
    if args and args[0] in ("run", "step", "build"):
        o.verb = args.pop(0)
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and a not in _OWN_LONG:
            a = a[1:]                        # QEMU accepts --opt as -opt
        spec = _WITH_VALUE.get(a)
        if spec is not None and (spec[0] is None or o.verb in spec[0]):
            if i + 1 >= len(args):
                raise ConfigError(f"{a}: requires an argument")
            i += 1
            spec[1](o, a, args[i])
        elif a in _FLAGS:
            _FLAGS[a](o)
        elif a in _UNSUPPORTED:
            raise ConfigError(f"{a}: not supported by vmachine ({_UNSUPPORTED[a]})")
        elif a.startswith("-"):
            raise ConfigError(f"{a}: invalid option")
        else:
            _positional(o, a)
        i += 1
    return o


def _arch_of(machine: str) -> str:
    return "aarch64" if machine.split(",")[0].startswith("virt") else "ppc64"


def build_machine(o: Options, console=None, trace_echo=None):
    from .boards.registry import create_board
    from .boards.base import parse_size
    machine = o.machine
    kernel = o.kernel
    if o.guest is not None or (o.verb in ("run", "step") and kernel is None and o.bios is None):
        guest = o.guest or ("aarch64/hello" if machine and _arch_of(machine) == "aarch64"
                            else "ppc64/hello")
        arch, _, name = guest.partition("/")
        if arch not in ("ppc64", "aarch64") or not name:
            raise ConfigError(f"guest '{guest}': expected ARCH/NAME with ARCH ppc64 or aarch64")
        if machine is None:
            machine = "pseries" if arch == "ppc64" else "virt,gic-version=3"
        elif _arch_of(machine) != arch:
            raise ConfigError(f"guest '{guest}' does not run on machine '{machine}'")
        kernel = str(_build_guest(arch, name))
    if machine is None:
        raise ConfigError("no machine given (use -M pseries or -M virt)")
    return create_board(machine, ram_size=parse_size(o.ram) if o.ram else None, smp=o.smp,
                        kernel=kernel, bios=o.bios, append=o.append, cpu_model=o.cpu,
                        quantum=o.quantum, console=console, trace_echo=trace_echo,
                        no_reboot=o.no_reboot)


def _build_guest(arch: str, name: str):
    """Build a bundled guest; a missing or broken one is a one-line error."""
    from .toolchain import BuildError, build_guest
    if arch not in ("ppc64", "aarch64") or not name:
        raise ConfigError(f"guest '{arch}/{name}': expected ARCH/NAME with ARCH ppc64 or aarch64")
    try:
        return build_guest(arch, name)
    except FileNotFoundError:
        raise ConfigError(f"no guest '{arch}/{name}' (guests/{arch}/{name}.c or .S)") from None
    except BuildError as e:
        raise ConfigError(f"guest '{arch}/{name}' does not build: {e}") from None


def _stdout_console(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _step(m, o: Options) -> int:
    """`vmachine step`: one record per instruction, bounded by -n, --max-insns
    and --timeout (host time, checked after every instruction)."""
    if o.step_cpu >= len(m.cpus):
        raise ConfigError(f"invalid --cpu: {o.step_cpu} (the machine has {len(m.cpus)} vCPUs)")
    deadline = None if o.timeout is None else time.monotonic() + o.timeout
    steps = o.steps if o.max_insns is None else min(o.steps, o.max_insns)
    for _ in range(steps):
        rec = m.step(o.step_cpu)
        changes = " ".join(f"{k}={v[1]:#x}" for k, v in rec.changed.items() if k != "pc")
        extra = f" deliver={rec.delivered}" if rec.delivered else ""
        print(f"cpu{rec.cpu} pc={rec.pc:#x} insn={rec.insn:08x} -> {rec.next_pc:#x}"
              f"{extra} {changes}".rstrip())
        if deadline is not None and time.monotonic() > deadline:
            print(f"{PROG}: --timeout reached after {m.insns} instructions", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        o = parse_args(argv)
        if o.verb == "build":
            from .toolchain import build_firmware
            t = o.build_target or ""
            if t == "firmware":
                print(build_firmware("ppc64/bootrom"))
            else:
                arch, _, name = t.partition("/")
                print(_build_guest(arch, name))
            return 0
        echo = (lambda line: print(line, file=sys.stderr)) if o.trace else None
        m = build_machine(o, console=_stdout_console, trace_echo=echo)
        if m.board is not None and "dumpdtb" in m.board.config.props:
            # QEMU: -M ...,dumpdtb=FILE writes the tree and exits.
            print(f"{PROG}: info: dtb dumped to {m.board.config.props['dumpdtb']}. Exiting.",
                  file=sys.stderr)
            return 0
        if o.verb == "step":
            return _step(m, o)
        result = m.run(max_insns=o.max_insns, wall_seconds=o.timeout)
        if result.reason == "interrupted":
            raise KeyboardInterrupt
        if result.reason == "poweroff":
            return result.exit_status
        if result.reason == "reset":
            return 0
        if result.reason == "error" and m.fatal:
            print(f"{PROG}: {m.fatal}", file=sys.stderr)
            return result.exit_status or 1
        print(f"{PROG}: {result.describe()}", file=sys.stderr)
        return 1
    except VMError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # One line, once: a second Ctrl-C while exiting must not add a traceback.
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:                # main() called outside the main thread
            pass
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

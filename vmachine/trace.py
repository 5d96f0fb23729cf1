"""Structured event trace of interrupt flows, firmware calls and guest errors.

Events are plain records in a list, stamped with the virtual clock and the
vCPU, never with host time, so two runs of the same guest give byte-identical
traces (`format_event`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Event:
    time: int                 # virtual nanoseconds
    cpu: int                  # vCPU index, -1 for the host/machine
    kind: str                 # "hcall", "rtas", "psci", "irq", "exception", "guest-error", ...
    what: str                 # short name: "H_PUT_TERM_CHAR", "deliver 0x500", ...
    data: tuple[tuple[str, Any], ...] = field(default=())

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.data:
            if k == key:
                return v
        return default


def _fmt(v: Any) -> str:
    return hex(v) if isinstance(v, int) and not isinstance(v, bool) else str(v)


def format_event(e: Event) -> str:
    args = " ".join(f"{k}={_fmt(v)}" for k, v in e.data)
    return f"[{e.time:>12}] cpu{e.cpu:<3} {e.kind:<11} {e.what}{(' ' + args) if args else ''}"


class Trace:
    """Collects events (the first `limit`; later ones are counted in
    `dropped`, still echoed); optionally echoes them (the CLI's --trace)."""

    def __init__(self, clock: Callable[[], int], echo: Callable[[str], None] | None = None,
                 limit: int = 200_000):
        self._clock = clock
        self.events: list[Event] = []
        self.echo = echo
        self.limit = limit
        self.dropped = 0

    def log(self, cpu: int, kind: str, what: str, **data: Any) -> Event:
        ev = Event(self._clock(), cpu, kind, what, tuple(data.items()))
        if len(self.events) < self.limit:
            self.events.append(ev)
        else:
            self.dropped += 1
        if self.echo is not None:
            self.echo(format_event(ev))
        return ev

    def guest_error(self, cpu: int, what: str, **data: Any) -> Event:
        return self.log(cpu, "guest-error", what, **data)

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def text(self) -> str:
        return "\n".join(format_event(e) for e in self.events)

"""Virtual time: derived from instructions retired, never from the host.

One instruction is one virtual nanosecond of the vCPU that executes it, as
QEMU's -icount shift=0 (machine.py says how the scheduler keeps the vCPUs'
times together). `now` is the machine's time at the start of the current
round; `read()` is the time the code running at this moment sees (the
running vCPU's time at its current instruction), which the machine supplies
as `now_fn`. Timers fire, in deadline order, when the machine's time passes
their deadline; arming one inside a round tells the machine (`on_timer_added`),
which ends the round no later than it.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Callable


@dataclass(order=True)
class Timer:
    deadline: int
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class VirtualClock:
    def __init__(self, quantum: int = 20_000) -> None:
        self.quantum = quantum
        self.now = 0            # ns at the start of the current round
        self._timers: list[Timer] = []
        self._seq = 0
        self.now_fn: Callable[[], int] | None = None
        self.on_timer_added: Callable[[int], None] | None = None

    def reset(self) -> None:
        """Forget every timer (a restore re-arms them from device state)."""
        self._timers.clear()
        self.now = 0

    def read(self) -> int:
        """Guest-visible time in ns: the running vCPU's, at this instruction."""
        return self.now_fn() if self.now_fn is not None else self.now

    peek = read             # reading the time has no side effect

    def advance(self, ns: int) -> None:
        self.now += ns

    def add_timer(self, deadline: int, callback: Callable[[], None]) -> Timer:
        self._seq += 1
        t = Timer(deadline, self._seq, callback)
        heapq.heappush(self._timers, t)
        if self.on_timer_added is not None:
            self.on_timer_added(deadline)
        return t

    def next_deadline(self) -> int | None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].deadline if self._timers else None

    def fire_due(self) -> int:
        """Run every timer whose deadline has passed, in deadline order."""
        fired = 0
        while True:
            d = self.next_deadline()
            if d is None or d > self.now:
                return fired
            t = heapq.heappop(self._timers)
            t.callback()
            fired += 1

"""Virtual time: derived from instructions retired, never from the host.

The scheduler gives each running vCPU slots of at most `quantum`
instructions; one round of slots advances the machine clock by the quantum
(one instruction = one virtual nanosecond). Inside a slot a time read returns
the round's start time plus the number of time reads made so far in that slot,
so consecutive reads strictly increase and every value is a pure function of
the guest's own behaviour. A slot in which the guest keeps reading the time
ends early (it is polling; nothing it waits for can happen before the next
round), which saves host time and changes nothing the guest can observe
beyond how far one slot's instructions reach.
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
        self.reads = 0          # time reads in the current slot
        self._timers: list[Timer] = []
        self._seq = 0
        # A guest that reads the time this often in one slot is polling it:
        # time cannot move inside a slot, so the machine ends the slot early.
        self.poll_limit = 64
        self.on_poll: Callable[[], None] | None = None

    def reset(self) -> None:
        """Forget every timer (a restore re-arms them from device state)."""
        self._timers.clear()
        self.now = self.reads = 0

    def read(self) -> int:
        """Guest-visible time in ns (strictly increasing within a slot)."""
        if self.reads < self.quantum - 1:
            self.reads += 1
        if self.reads == self.poll_limit and self.on_poll is not None:
            self.on_poll()
        return self.now + self.reads

    def peek(self) -> int:
        return self.now + self.reads

    def start_slot(self) -> None:
        self.reads = 0

    def advance(self, ns: int) -> None:
        self.now += ns
        self.reads = 0

    def add_timer(self, deadline: int, callback: Callable[[], None]) -> Timer:
        self._seq += 1
        t = Timer(deadline, self._seq, callback)
        heapq.heappush(self._timers, t)
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
            if d is None or d > self.peek():
                return fired
            t = heapq.heappop(self._timers)
            t.callback()
            fired += 1

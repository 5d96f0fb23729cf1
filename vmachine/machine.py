"""The machine: RAM, MMIO map, vCPUs, virtual clock, trace and the run loop.

Virtual time counts instructions: one instruction is one nanosecond of the
vCPU that executes it (QEMU's -icount shift=0, per vCPU). The run loop is a
fixed round-robin of rounds: a round starts at the machine time T and ends
at the latest of T + quantum and the next timer deadline, whichever is
sooner (`_round_limit`); every running vCPU, in index order, gets one slot
from T (its time is set to T) up to that limit, ending on the first
translation-block boundary at or past it. A vCPU woken during the round
(an IPI, PSCI CPU_ON, RTAS start-cpu) joins it at the end, from the waker's
time. The machine clock then moves to the latest time a vCPU reached in the
round (`_round_end`), and due timers fire. So the vCPUs run in parallel in
virtual time, a single vCPU's clock advances exactly by the instructions it
executed, and nothing depends on host time or dict order: a run is a pure
function of the guest, its inputs and the quantum.
(The optional wall-clock limit and Ctrl-C only decide *when run() returns*,
and a run that stops for them says so: they can stop it inside a slot or a
round, and the next run() continues the schedule exactly where it was.)
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from .clock import VirtualClock
from .cpu.base import CpuState, StepRecord, VCpu
from .errors import ConfigError
from .memory import GuestRAM, MmioMap
from .trace import Trace

if TYPE_CHECKING:
    from .state import Snapshot

DEFAULT_QUANTUM = 20_000
SOLO_ROUNDS = 1              # a round with one running vCPU lasts this many quanta (longer
                             # rounds save host time but delay round-boundary host work, which
                             # msi_routing/irqfd users and their tests expect every quantum)


@dataclass
class RunResult:
    reason: str                      # "poweroff", "reset", "max-insns", "wall-clock", "event",
                                     # "idle", "interrupted" (Ctrl-C)
    exit_status: int = 0
    insns: int = 0                   # instructions executed (slot budgets on the count= fallback)
    cpus: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        where = ", ".join(f"cpu{c['index']} {c['state']} pc={c['pc']:#x}" for c in self.cpus)
        return f"stopped ({self.reason}) after {self.insns} instructions: {where}"


CONSOLE_LIMIT = 4 << 20      # console bytes kept in memory (the sink sees them all)


class MachineBoard(Protocol):
    """What the machine asks of its board (boards/base.py:Board). Declared
    here so that the machine does not import the boards, which import it."""

    name: str

    def firmware_call(self, cpu: VCpu) -> None: ...

    def save_state(self) -> list[dict]: ...

    def load_state(self, sections: dict) -> None: ...

    def section_names(self) -> list[str]: ...

    def decode_state(self, sections: dict) -> object: ...

    def apply_state(self, plan: object) -> None: ...


class Machine:
    """A board instance with its CPUs and devices. Build with
    `vmachine.create_machine` (boards.create_board)."""

    def __init__(self, ram_base: int, ram_size: int, quantum: int = DEFAULT_QUANTUM,
                 console: Callable[[bytes], None] | None = None,
                 trace_echo: Callable[[str], None] | None = None):
        if quantum <= 0:
            raise ConfigError("quantum must be positive")
        self.ram = GuestRAM(ram_base, ram_size)
        self.mmio = MmioMap()
        self.clock = VirtualClock(quantum)
        self.trace = Trace(self.clock.peek, trace_echo)
        self.quantum = quantum
        self.cpus: list[VCpu] = []
        self.board: MachineBoard | None = None
        self.console_out = bytearray()          # the last console_limit bytes of output
        self.console_limit = CONSOLE_LIMIT
        self.console_dropped = 0                  # bytes no longer in console_out
        self._console_sink = console
        self.console_in = bytearray()
        self._exit: tuple[str, int] | None = None
        self.insns = 0
        self._running_cpu: VCpu | None = None
        self.fatal: str | None = None           # why the machine had to stop (QEMU would exit)
        # Called at every round boundary (before each round, in list order):
        # host work queued from other threads, e.g. msi_routing irqfd triggers.
        self.round_hooks: list[Callable[[], None]] = []
        # Where run() left the schedule: the vCPUs still to run in this round
        # (None: at a round boundary; empty: the round's end is next; a
        # first vCPU that is `suspended` continues its slot), the round's
        # time limit and the latest time reached in it, a round end whose
        # timers did not all fire, a host stop not yet acted on.
        self._round: list[VCpu] | None = None
        self._round_limit = 0
        self._round_end = 0
        self._timers_due = False
        self._host_stop: str | None = None
        self.clock.now_fn = self._time_now
        self.clock.on_timer_added = self._timer_added

    def _time_now(self) -> int:
        """Virtual time as the code running now sees it: the running vCPU's
        time at its current instruction; between slots, the machine's."""
        cpu = self._running_cpu
        return cpu.local_now() if cpu is not None else self.clock.now

    def _timer_added(self, deadline: int) -> None:
        """A timer armed inside a round: the round, and the running slot,
        end no later than its deadline (on a block boundary)."""
        if self._round is None or deadline >= self._round_limit:
            return
        self._round_limit = max(deadline, self.clock.now)
        cpu = self._running_cpu
        if cpu is not None and deadline < cpu.slot_end:
            cpu.slot_end = deadline
            rec = cpu.engine.rec
            if cpu.engine.running:
                rec.remaining = min(rec.remaining, deadline - rec.time_origin - rec.executed)

    def cpu_runnable(self, cpu: VCpu) -> None:
        """A vCPU woken or started by the running one joins the round, from
        the waker's time (or its own, if later); woken at a round boundary,
        it runs from the next round."""
        waker = self._running_cpu
        if self._round is None or waker is None or cpu.scheduled:
            return
        start = max(waker.local_now(), cpu.time)
        if start < self._round_limit:
            cpu.time = start
            cpu.scheduled = True
            self._round.append(cpu)

    def slot_over(self) -> bool:
        return self._exit is not None

    # ---- services the CPUs and devices use -----------------------------------------------
    def firmware_call(self, cpu: VCpu) -> None:
        assert self.board is not None
        self.board.firmware_call(cpu)

    def console_write(self, data: bytes) -> None:
        """Guest console output: streamed to the sink as it comes; the last
        `console_limit` bytes are kept in `console_out` (a chatty guest must
        not grow the host's memory without bound)."""
        self.console_out += data
        over = len(self.console_out) - self.console_limit
        if over > 0:
            del self.console_out[:over]
            self.console_dropped += over
        if self._console_sink is not None:
            self._console_sink(data)

    @property
    def console_text(self) -> str:
        return self.console_out.decode("utf-8", "replace")

    def reset(self) -> None:
        """System reset: the board reloads its images into RAM behind
        Unicorn's back, so the vCPUs first forget what they translated."""
        assert self.board is not None
        for cpu in self.cpus:
            cpu.reset_translation_state()
        self.board.reset()

    def shutdown(self, reason: str, status: int = 0) -> None:
        """Power-off / reset requested by the guest: the run loop ends."""
        if self._exit is None:
            self._exit = (reason, status)
            self.trace.log(-1, "machine", reason, status=status)
        if self._running_cpu is not None:
            self._running_cpu.request_stop()

    # ---- running ----------------------------------------------------------------------------
    def run(self, max_insns: int | None = None, wall_seconds: float | None = None,
            until: Callable[["Machine"], bool] | None = None) -> RunResult:
        """Run until power-off, `until(machine)` is true, `max_insns`
        instructions (both checked after each round, so a call runs at least
        one round, or finishes the one an earlier call left), `wall_seconds`
        of host time ("wall-clock"), or Ctrl-C ("interrupted").

        Ctrl-C (SIGINT, when called in the main thread): while run() executes,
        a handler that only notes it replaces a Python-level handler (SIG_IGN
        and SIG_DFL are left alone; the previous handler is back when run()
        returns). The wall-clock limit is a timer thread, and host time is
        also checked after every slot. Either stops the running vCPU before
        its next instruction (with the Python engine, no slot.c: at the end
        of its slot), which can be inside a slot or a round. Neither is
        guest-visible: the next run() continues exactly where this one
        stopped (same console, instructions, trace and state as a run that
        never stopped), and save() keeps the position in the round.
        An exception from host code (a round hook, `until`, a timer or
        console callback) propagates, leaving the machine at the boundary
        before it where the loop can tell (round hooks, timers, slot.c's own
        callbacks)."""
        deadline = None if wall_seconds is None else time.monotonic() + wall_seconds
        with self._host_stops(True, wall_seconds):
            result = self._run(max_insns, deadline, until)
            if self._host_stop == "interrupted" and result.reason != "interrupted":
                result = self._take_host_stop()       # Ctrl-C noted after the last check
        return result

    def _run(self, max_insns: int | None, deadline: float | None,
             until: Callable[["Machine"], bool] | None) -> RunResult:
        """Rounds of slots until an exit, a bound or a host stop."""
        while self._exit is None:
            if self._round is None:
                started = self._start_round()
                if isinstance(started, RunResult):
                    return started
                if not started:
                    continue
            stop = self._run_round(self._round, deadline, max_insns)
            if stop is not None:
                return stop
            self._end_round()
            if until is not None and until(self):
                return self._result("event")
            if max_insns is not None and self.insns >= max_insns:
                return self._result("max-insns")
            if deadline is not None and time.monotonic() > deadline:
                return self._result("wall-clock")
        reason, status = self._exit
        return self._result(reason, status)

    def _start_round(self) -> "RunResult | bool":
        """Round-boundary work, then the round's vCPUs (False: none runs,
        virtual time skipped to the next timer; a RunResult: stop)."""
        if self._timers_due:                          # a timer callback raised last time
            self._fire_timers(force=True)
        for hook in self.round_hooks:
            hook()
        runnable = [c for c in self.cpus if c.state is CpuState.RUNNING]
        if not runnable:
            if not self._idle_skip():
                return self._result("idle")
            if self._host_stop is not None:
                return self._take_host_stop()
            return False
        now = self.clock.now
        # A lone running vCPU has no one to take turns with: its round lasts
        # SOLO_ROUNDS quanta (host work queued for round boundaries, such as
        # irqfd triggers, still runs at least that often).
        limit = now + self.quantum * (SOLO_ROUNDS if len(runnable) == 1 else 1)
        d = self.clock.next_deadline()
        if d is not None and now < d < limit:
            limit = d
        self._round_limit, self._round_end = limit, now
        for c in runnable:
            c.time, c.scheduled = now, True
        self._round = runnable
        return True

    def _end_round(self) -> None:
        """The clock moves to the latest time a vCPU reached; timers fire."""
        self._round = None
        for c in self.cpus:
            c.scheduled = False
        now = self.clock.now
        self.clock.advance(max(self._round_end, now + 1) - now)
        self._timers_due = True
        self._fire_timers()

    def _run_round(self, rnd: list[VCpu], deadline: float | None,
                   max_insns: int | None = None) -> RunResult | None:
        """The round's remaining slots, in order; a RunResult when the host
        stops the run inside the round (the round is kept to continue)."""
        while rnd:
            cpu = rnd[0]
            if not self._slot_start(cpu):
                del rnd[0]
                cpu.scheduled = False
                continue
            exact = None
            if max_insns is not None:
                left = max_insns - self.insns
                if left <= 0:
                    return self._result("max-insns")
                if left <= cpu.slot_end - cpu.time + 4096:   # within reach of this slot
                    exact = left
            n = self._run_slot(cpu, rnd, exact)
            self.insns += n
            self._round_end = max(self._round_end, cpu.time)
            if cpu.suspended:
                if self._host_stop is None and exact is None:   # a stale request: do not stop again
                    cpu.clear_host_stop()
                if exact is not None and self.insns >= max_insns:
                    return self._result("max-insns")
            else:
                del rnd[0]
                cpu.scheduled = False
                if self._exit is not None:
                    return None
            if self._host_stop is not None:
                return self._take_host_stop()
            if deadline is not None and time.monotonic() > deadline:
                return self._result("wall-clock")
        return None

    def _slot_start(self, cpu: VCpu) -> bool:
        """Set `cpu` up for its slot: a fresh one ends at the round's limit
        and begins with the interrupts due; a suspended one goes on. False:
        the vCPU no longer runs in this round."""
        if cpu.suspended:
            return cpu.state is CpuState.RUNNING
        if cpu.state is not CpuState.RUNNING or cpu.time >= self._round_limit:
            return False
        cpu.slot_end = self._round_limit
        self._running_cpu = cpu
        try:
            cpu.take_pending_interrupts()
        finally:
            self._running_cpu = None
        return cpu.state is CpuState.RUNNING

    def _run_slot(self, cpu: VCpu, rnd: list[VCpu], exact: int | None) -> int:
        """One slot; an exception from host code in a callback is re-raised
        with the machine at a consistent point (the count charged, the slot
        kept to continue when it stopped on a boundary)."""
        self._running_cpu = cpu
        if self._host_stop is not None:               # noted before the handler could see cpu
            cpu.request_host_stop()
        try:
            return cpu.run_slot(exact)
        except BaseException:
            self.insns += cpu.slot_executed
            self._round_end = max(self._round_end, cpu.time)
            if not cpu.suspended:                     # else: on a boundary, go on later
                del rnd[0]
                cpu.scheduled = False
            raise
        finally:
            self._running_cpu = None

    def _take_host_stop(self) -> RunResult:
        reason, self._host_stop = self._host_stop, None
        return self._result(reason or "interrupted")

    def _host_stop_request(self, reason: str) -> None:
        """Ctrl-C or the wall-clock limit (from a signal handler or a timer
        thread): the running vCPU stops before its next instruction, where
        its engine can, else at the end of its slot; run() then returns."""
        if self._host_stop != "interrupted":
            self._host_stop = reason
        cpu = self._running_cpu
        if cpu is not None:
            cpu.request_host_stop()

    @contextlib.contextmanager
    def _host_stops(self, mid_slot: bool, wall_seconds: float | None = None) -> Iterator[None]:
        """SIGINT while the machine runs: note it (and with `mid_slot`, stop
        the running vCPU before its next instruction) instead of raising
        KeyboardInterrupt, which could surface inside a Unicorn callback,
        half-way through a guest access (ctypes then swallows it). A request
        still pending on the way out goes to the previous handler. With
        `wall_seconds`, a timer thread makes the same kind of stop when they
        have passed (run() also checks after every slot), so that the limit
        holds inside a long slot too."""
        prev = None
        if threading.current_thread() is threading.main_thread():
            prev = signal.getsignal(signal.SIGINT)
            if callable(prev):
                def noted(signum: int, frame: Any) -> None:
                    if mid_slot:
                        self._host_stop_request("interrupted")
                    else:
                        self._host_stop = "interrupted"
                signal.signal(signal.SIGINT, noted)
            else:
                prev = None
        timer = None
        if wall_seconds is not None and mid_slot:
            timer = threading.Timer(max(wall_seconds, 0.0), self._host_stop_request, ("wall-clock",))
            timer.daemon = True
            timer.start()
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
                timer.join()                  # it may be setting a vCPU's flag right now
            if prev is not None:
                signal.signal(signal.SIGINT, prev)
            for c in self.cpus:
                c.clear_host_stop()
            pending, self._host_stop = self._host_stop, None
            if pending == "interrupted" and prev is not None:
                prev(signal.SIGINT, None)

    def _fire_timers(self, force: bool = False) -> None:
        if self.clock.fire_due() or force:
            for c in self.cpus:
                if c.wants_interrupt():
                    c.take_pending_interrupts()
        self._timers_due = False

    def _idle_skip(self) -> bool:
        """No vCPU runs: jump virtual time to the next timer, if any."""
        if not any(c.state is CpuState.HALTED for c in self.cpus):
            return False
        d = self.clock.next_deadline()
        if d is None:
            return False
        if d > self.clock.now:
            self.clock.advance(d - self.clock.now)
        self._fire_timers()
        for c in self.cpus:
            if c.state is CpuState.HALTED and c.wants_interrupt():
                c.take_pending_interrupts()
        return True

    def step(self, cpu_index: int = 0) -> StepRecord:
        """Execute one instruction on one vCPU (the others do not move), or
        take the interrupt due at this boundary. The vCPU's time advances
        by what it executes. Ctrl-C during the step is noted and raised as
        KeyboardInterrupt once the instruction is complete (in the main
        thread)."""
        cpu = self.cpus[cpu_index]
        with self._host_stops(False):
            self._running_cpu = cpu
            before = cpu.time
            try:
                rec = cpu.step()
            finally:
                self._running_cpu = None
            self.insns += cpu.time - before
        return rec

    def _result(self, reason: str, status: int = 0) -> RunResult:
        cpus = [{"index": c.index, "state": c.state.value, "pc": c.pc} for c in self.cpus]
        return RunResult(reason, status, self.insns, cpus)

    @property
    def exited(self) -> tuple[str, int] | None:
        return self._exit

    # ---- migration --------------------------------------------------------------------------
    def save(self) -> "Snapshot":
        """The whole machine at this instruction boundary: CPUs, devices, RAM."""
        from .state import MACHINE_STATE, Snapshot, ram_chunks
        assert self.board is not None
        secs = [MACHINE_STATE.save(self)]
        secs += [cpu.save_state() for cpu in self.cpus]
        secs += self.board.save_state()
        return Snapshot(self.board.name, self.ram.base, self.ram.size, len(self.cpus),
                        {s["name"]: s for s in secs}, ram_chunks(self.ram.buf))

    def restore(self, snap: "Snapshot") -> None:
        """Load a snapshot into this (freshly created, same configuration)
        machine, all or nothing: phase 1 decodes and validates every section
        (the machine's, each vCPU's, the board's and its devices') and the
        RAM image into plain values without touching anything; phase 2
        applies them and cannot fail on what phase 1 accepted. A refused
        snapshot is one line (ConfigError / StateError naming the section and
        field) and leaves the machine exactly as it was."""
        plan = self._decode_snapshot(snap)
        self._apply_snapshot(*plan)

    def _decode_snapshot(self, snap: "Snapshot") -> tuple:
        """Phase 1 of restore: everything checked, nothing changed."""
        from .state import MACHINE_STATE, StateError, Snapshot, check_ram_image
        assert self.board is not None
        if not isinstance(snap, Snapshot):
            raise ConfigError("restore needs a Snapshot")
        if snap.board != self.board.name:
            raise ConfigError(f"snapshot is of a {snap.board!r} machine, not {self.board.name}")
        if (snap.ram_base, snap.ram_size) != (self.ram.base, self.ram.size) \
                or not all(type(v) is int for v in (snap.ram_base, snap.ram_size)):
            raise ConfigError(f"snapshot RAM {snap.ram_size!r}@{snap.ram_base!r} does not match "
                              f"this machine's {self.ram.size:#x}@{self.ram.base:#x}")
        if snap.ncpus != len(self.cpus) or type(snap.ncpus) is not int:
            raise ConfigError(f"snapshot has {snap.ncpus!r} vCPUs, this machine {len(self.cpus)}")
        sections = snap.sections
        if not isinstance(sections, dict):
            raise StateError("snapshot sections are not a record")
        expected = ["machine"] + [f"cpu{c.index}" for c in self.cpus] + self.board.section_names()
        unknown = sorted(str(k) for k in sections if k not in expected)
        if unknown:
            raise StateError(f"snapshot has a section '{unknown[0]}' this machine does not have")
        check_ram_image(snap.ram, self.ram.size)
        mach = MACHINE_STATE.decode(self, sections)
        cpus = [cpu.decode_state(sections) for cpu in self.cpus]
        board = self.board.decode_state(sections)
        return snap.ram, mach["fields"], cpus, board

    def _apply_snapshot(self, ram: dict, mach: dict, cpus: list, board) -> None:
        """Phase 2 of restore: store what phase 1 accepted."""
        from .state import CHUNK
        assert self.board is not None
        zero = bytes(CHUNK)
        for off in range(0, self.ram.size, CHUNK):
            chunk = ram.get(off)
            end = min(off + CHUNK, self.ram.size)
            if chunk is not None:
                self.ram.buf[off:end] = chunk
            elif self.ram.buf[off:end] != zero[:end - off]:
                self.ram.buf[off:end] = zero[:end - off]
        self.clock.reset()
        self.clock.now = mach["clock_now"]
        self.insns = mach["insns"]
        self._exit = tuple(mach["exit"]) if mach["exit"] else None   # type: ignore[assignment]
        self._round_limit, self._round_end = mach["round_limit"], mach["round_end"]
        for i, cpu in enumerate(self.cpus):
            cpu.time, cpu.slot_end = mach["cpu_time"][i], mach["slot_end"][i]
            cpu.suspended, cpu.engine.rec.defer = mach["suspended"][i], int(mach["defer"][i])
            cpu.scheduled = False
        if mach["round"] is None:                  # saved at a round boundary
            self._round = None
        else:                                      # inside a round (Ctrl-C, wall clock, max-insns)
            self._round = [self.cpus[i] for i in mach["round"]]
            for cpu in self._round:
                cpu.scheduled = True
        self._timers_due = False
        for cpu, plan in zip(self.cpus, cpus):
            cpu.set_irq_line(False)
            cpu.reset_translation_state()
            cpu.apply_state(plan)
        self.board.apply_state(board)
        for cpu in self.cpus:
            cpu.update_delivery_watch()

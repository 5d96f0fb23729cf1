"""What every vCPU does regardless of architecture.

A vCPU owns one Unicorn instance, maps the shared RAM buffer and every MMIO
window into it, runs bounded slots for the scheduler, and decides at exact
instruction boundaries whether its interrupt line can be taken. It never
knows which interrupt controller drives that line: devices call
`set_irq_line`, the machine's run loop calls `run_slot`, and the board's
dispatch tables (`CpuServices`) answer hypercalls and system registers.
How Unicorn is made to count, stop and call back is its engine's business
(slot.py): the vCPU says what to watch, never how.

Time: each vCPU has its own virtual time, `time` (ns = instructions executed,
as QEMU's -icount shift=0), which the machine's scheduler sets at the start
of each slot; inside a slot the engine knows how far it is.
"""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from unicorn import (UC_HOOK_MEM_FETCH_UNMAPPED, UC_HOOK_MEM_READ_UNMAPPED, UC_HOOK_MEM_WRITE_UNMAPPED,
                     UC_PROT_ALL, Uc, UcError)

from ..memory import AccessAssembler, GuestRAM, MmioMap, MmioRegion
from .slot import SlotEngine

try:                                   # the binding's C entry points (unicorn 2.1.x)
    from unicorn.unicorn_py3.unicorn import uclib as _uclib
except ImportError:                    # pragma: no cover - other binding layouts
    _uclib = None

if TYPE_CHECKING:
    from ..clock import VirtualClock
    from ..trace import Trace


class CpuState(enum.Enum):
    STOPPED = "stopped"      # powered off / not yet started (RTAS start-cpu, PSCI CPU_ON)
    RUNNING = "running"
    HALTED = "halted"        # waiting for an interrupt (H_CEDE, WFI)


class CpuServices(Protocol):
    """The board's side of a vCPU: dispatch tables, RAM, MMIO, time, trace."""

    ram: GuestRAM
    mmio: MmioMap
    clock: "VirtualClock"
    trace: "Trace"

    def firmware_call(self, cpu: "VCpu") -> None:
        """A hypercall (PPC `sc 1`) or PSCI call (AArch64 hvc): the board reads
        the arguments from the CPU's registers and writes the results."""

    fatal: str | None             # one line: why the machine had to stop

    def shutdown(self, reason: str, status: int = 0) -> None:
        """End the run (reason "error" with `fatal` set: a one-line report)."""

    def cpu_runnable(self, cpu: "VCpu") -> None:
        """`cpu` was halted or stopped and runs now (woken, started)."""

    def slot_over(self) -> bool:
        """The running slot must end now (the machine is exiting)."""


@dataclass
class StepRecord:
    """What one instruction did: for single-stepping and for tests."""
    cpu: int
    pc: int
    insn: int
    next_pc: int
    changed: dict[str, tuple[int, int]] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)
    delivered: str | None = None


class _UnassignedPage:
    """Reads as zero, ignores writes, logs a guest error per access."""

    def __init__(self, page: int, trace: "Trace"):
        self.page, self.trace = page, trace

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        self.trace.guest_error(cpu, "unassigned read", addr=self.page + offset, size=size)
        return 0

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        self.trace.guest_error(cpu, "unassigned write", addr=self.page + offset, size=size)


class FastRegs:
    """64-bit register reads/writes straight through the C API.

    The Python binding's reg_read/reg_write pick a register class on every
    call (several microseconds); trapped system registers and hypercalls
    touch registers on hot paths, so plain 64-bit registers go direct."""

    def __init__(self, uc: Uc):
        self.uc = uc
        self._buf = ctypes.c_uint64()
        self._ref = ctypes.byref(self._buf)
        self._uch = getattr(uc, "_uch", None)
        self.direct = _uclib is not None and self._uch is not None
        self._batches: dict[tuple[int, ...], tuple] = {}

    def read(self, reg: int) -> int:
        if self.direct:
            _uclib.uc_reg_read(self._uch, reg, self._ref)
            return self._buf.value
        return self.uc.reg_read(reg)

    def read_many(self, regs: tuple[int, ...]) -> list[int]:
        """Several 64-bit registers in one C call (uc_reg_read_batch)."""
        if not self.direct:
            return [self.uc.reg_read(r) for r in regs]
        batch = self._batches.get(regs)
        if batch is None:
            n = len(regs)
            ids = (ctypes.c_int * n)(*regs)
            vals = (ctypes.c_uint64 * n)()
            ptrs = (ctypes.c_void_p * n)(*(ctypes.addressof(vals) + 8 * i for i in range(n)))
            batch = self._batches[regs] = (ids, vals, ptrs, n)
        ids, vals, ptrs, n = batch
        _uclib.uc_reg_read_batch(self._uch, ids, ptrs, n)
        return list(vals)

    def write_pc_in_hook(self, reg: int, value: int) -> None:
        """PC written from a Unicorn callback that is not a code hook (an
        exception, a memory access): uc_reg_write2, which leaves the block
        for the new PC without switching off Unicorn's PC sync for later
        memory hooks (uc_reg_write would, until an exit through a code-hook
        check, which such a block never makes)."""
        if self.direct:
            self._buf.value = value & 0xFFFF_FFFF_FFFF_FFFF
            size = ctypes.c_size_t(8)
            _uclib.uc_reg_write2(self._uch, reg, self._ref, ctypes.byref(size))
        else:
            self.uc.reg_write(reg, value & 0xFFFF_FFFF_FFFF_FFFF)

    def write(self, reg: int, value: int) -> None:
        if self.direct:
            self._buf.value = value & 0xFFFF_FFFF_FFFF_FFFF
            _uclib.uc_reg_write(self._uch, reg, self._ref)
        else:
            self.uc.reg_write(reg, value & 0xFFFF_FFFF_FFFF_FFFF)


class VCpu:
    """Architecture-independent vCPU plumbing; subclasses provide the ISA."""

    arch = ""
    big_endian = False
    # (Unicorn register id, mask, value meaning "interrupts enabled"), for the engine
    interrupt_enable_bit: tuple[int, int, int] | None = None

    def __init__(self, index: int, services: CpuServices):
        self.index = index
        self.svc = services
        self._state = CpuState.STOPPED
        self.irq_line = False                  # the controller's output, level
        self.suspended = False                 # the last slot stopped for the host only
        self.time = 0                          # virtual ns at the last boundary (see module doc)
        self.slot_end = 0                      # the time at which the current slot ends
        self.scheduled = False                 # in the machine's current round
        self.delivered: list[str] = []         # interrupts taken in the last run_slot
        self.slot_executed = 0                 # instructions of the last run_slot
        self._unassigned_pages: set[int] = set()
        self.uc = self._create_uc()
        self.regs = FastRegs(self.uc)
        self.engine = SlotEngine(self.uc, self._on_slot_block, self._on_watched,
                                 self.interrupt_enable_bit)
        self.uc.mem_map_ptr(services.ram.base, services.ram.size, UC_PROT_ALL, services.ram.host_addr)
        self.assembler = AccessAssembler(index, self._current_access_size, self.big_endian)
        services.mmio.listen(self._map_region, self._unmap_region)
        self.uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED
                         | UC_HOOK_MEM_FETCH_UNMAPPED, self._on_unmapped)
        self._fault: tuple[int, int, int, bool, bool] | None = None   # pc, addr, size, write, fetch
        self.pending_sync: Callable[[], None] | None = None

    @property
    def state(self) -> CpuState:
        return self._state

    @state.setter
    def state(self, value: CpuState) -> None:
        was, self._state = self._state, value
        if value is CpuState.RUNNING and was is not CpuState.RUNNING:
            self.svc.cpu_runnable(self)

    def local_now(self) -> int:
        """This vCPU's virtual time at the current instruction."""
        return self.time + (self.engine.position() if self.engine.running else 0)

    # ---- architecture hooks -------------------------------------------------
    def _create_uc(self) -> Uc:
        raise NotImplementedError

    @property
    def pc(self) -> int:
        raise NotImplementedError

    @pc.setter
    def pc(self, value: int) -> None:
        raise NotImplementedError

    def interrupts_enabled(self) -> bool:
        raise NotImplementedError

    def deliver_external(self) -> None:
        raise NotImplementedError

    def timer_pending(self) -> bool:
        """An architected CPU-local timer interrupt (PPC decrementer) waits."""
        return False

    def deliver_timer(self) -> None:
        raise NotImplementedError

    def deliver_fault(self, pc: int, addr: int, size: int, is_write: bool, is_fetch: bool) -> None:
        raise NotImplementedError

    def read_insn(self, addr: int) -> int:
        return int.from_bytes(self.uc.mem_read(addr, 4), "big" if self.big_endian else "little")

    def registers(self) -> dict[str, int]:
        raise NotImplementedError

    # ---- MMIO -----------------------------------------------------------------
    def _current_access_size(self) -> int:
        """The size of the guest's access being split into device callbacks
        (slot.c's memory hook on every MMIO window records it)."""
        return self.engine.rec.access_size

    def _map_region(self, region: MmioRegion) -> None:
        for page in [p for p in self._unassigned_pages if region.base <= p < region.end]:
            self.uc.mem_unmap(page, 0x1000)          # a device now decodes it
            self._unassigned_pages.discard(page)
        dev, asm = region.device, self.assembler
        base = region.base
        self.engine.hook_mmio(base, region.end)

        def rd(uc: Uc, offset: int, size: int, _: Any) -> int:
            return asm.read(dev, offset, size)

        def wr(uc: Uc, offset: int, size: int, value: int, _: Any) -> None:
            asm.write(dev, offset, size, value)
        self.uc.mmio_map(base, region.size, rd, None, wr, None)

    def _unmap_region(self, region: MmioRegion) -> None:
        self.uc.mem_unmap(region.base, region.size)

    # Whether a data access to an unassigned address faults (AArch64: external
    # abort) or reads as zero and ignores writes (PPC64 pseries under QEMU).
    unassigned_data_is_fault = True
    # A page Unicorn accepts in mmio_map but never finds on the retry
    # (UC_ERR_MAP): accesses to it reach deliver_fault instead.
    UNMAPPABLE_PAGE = -1

    def _on_unmapped(self, uc: Uc, access: int, addr: int, size: int, value: int, _: Any) -> bool:
        is_fetch = access == 21                  # UC_MEM_FETCH_UNMAPPED
        is_write = access == 20                  # UC_MEM_WRITE_UNMAPPED
        if not is_fetch and not self.unassigned_data_is_fault and addr & ~0xFFF != self.UNMAPPABLE_PAGE:
            self._map_unassigned_page(addr & ~0xFFF)
            return True                          # Unicorn retries; the page logs it
        self._fault = (self.pc, addr, size, is_write, is_fetch)
        return False

    def _map_unassigned_page(self, page: int) -> None:
        """RAZ/WI page for an unassigned address, mapped on first touch; its
        accesses go through the assembler, so each is logged once, at its width."""
        dev, asm = _UnassignedPage(page, self.svc.trace), self.assembler
        self.engine.hook_mmio(page, page + 0x1000)

        def rd(uc: Uc, offset: int, size: int, _: Any) -> int:
            return asm.read(dev, offset, size)

        def wr(uc: Uc, offset: int, size: int, value: int, _: Any) -> None:
            asm.write(dev, offset, size, value)
        self.uc.mmio_map(page, 0x1000, rd, None, wr, None)
        self._unassigned_pages.add(page)

    def reset_translation_state(self) -> None:
        """Forget code translated from RAM and decoded access sizes: the
        host replaced RAM under Unicorn (images reloaded at reset, a snapshot
        restored), which Unicorn cannot see."""
        self.engine.flush_translations(self.svc.ram.base, self.svc.ram.end)

    # ---- interrupt line -------------------------------------------------------
    def set_irq_line(self, level: bool) -> None:
        """The interrupt controller's output to this CPU (level-sensitive)."""
        if level == self.irq_line:
            return
        self.irq_line = level
        if level and self._state is CpuState.HALTED:
            self.state = CpuState.RUNNING
        self.update_delivery_watch()

    def external_pending(self) -> bool:
        """An interrupt controller line is raised (AArch64 adds FIQ)."""
        return self.irq_line

    def wants_interrupt(self) -> bool:
        return self.external_pending() or self.timer_pending()

    def watch_enable_bits(self) -> tuple[int, int] | None:
        """(mask, value) of the enable register meaning "deliverable" for the
        lines now pending, for the engine; None keeps the static setting."""
        return None

    def update_delivery_watch(self) -> None:
        """Stop at the next block boundary if the interrupt can be taken; if
        one is pending but masked (an external line, or the decrementer),
        have slot.c check the enable bit at block starts (unmasking
        instructions end a block) and call back when it allows delivery."""
        if self.wants_interrupt() and self.interrupts_enabled():
            self.request_stop()
        watch = self.wants_interrupt() and not self.interrupts_enabled()
        self.engine.watch_delivery(watch, self.watch_enable_bits() if watch else None)

    def _on_slot_block(self, address: int) -> None:
        """At a block start while a masked interrupt waits: deliverable now?"""
        if self.wants_interrupt() and self.interrupts_enabled():
            self.request_stop()

    def request_stop(self) -> None:
        """A guest-visible stop at the next block boundary (an interrupt to
        take, an exception to deliver); the slot goes on after it."""
        self.engine.request_stop()

    def request_host_stop(self) -> None:
        """The host wants the run back (Ctrl-C, a wall-clock limit): stop
        before the next instruction without ending the slot (`suspended`),
        where the engine can; safe from a signal handler."""
        self.engine.request_host_stop()

    def clear_host_stop(self) -> None:
        self.engine.clear_host_stop()

    # ---- watched instructions (trapped by address: PPC mftb/DEC) ------------------
    def watch_address(self, address: int) -> None:
        """Call `_on_watched(address)` before the instruction there executes."""
        self.engine.watch(address)

    def _on_watched(self, address: int) -> int:
        """Emulate the watched instruction at `address`: the address where
        the current block ends (address + 4: emulated or faulted), or 0 to
        let it run natively."""
        raise NotImplementedError

    def take_pending_interrupts(self) -> str | None:
        """At an instruction boundary: deliver what can be delivered."""
        if self.state is not CpuState.RUNNING and not (
                self.state is CpuState.HALTED and self.wants_interrupt()):
            return None
        if self.wants_interrupt() and self.state is CpuState.HALTED:
            self.state = CpuState.RUNNING
        if not self.interrupts_enabled():
            self.update_delivery_watch()
            return None
        if self.external_pending():
            self.deliver_external()
            what = "external"
        elif self.timer_pending():
            self.deliver_timer()
            what = "timer"
        else:
            return None
        self.delivered.append(what)
        self.update_delivery_watch()
        return what

    # ---- running --------------------------------------------------------------
    def run_slot(self, exact: int | None = None, stop_at_entry: bool = False) -> int:
        """Run until `slot_end` (the first block boundary at or past it), a
        halt, a machine exit, or - with `exact` - exactly that many
        instructions; interrupts and exceptions are taken at block
        boundaries on the way. Returns the instructions executed; `time`
        moved by as many. `suspended` is then True when the slot stopped for
        the host only (Ctrl-C, a wall-clock limit, `exact`): running it again
        continues it exactly. `stop_at_entry`: also end where an exception or
        interrupt was entered (single steps, `run_insns`)."""
        engine = self.engine
        idle = 0
        self.delivered = []
        self.slot_executed = 0                 # (read by the machine if a callback raised)
        while True:
            self._fault = None
            self.suspended = False
            budget = self.slot_end - self.time
            if budget <= 0 and not engine.rec.defer:
                break
            due = self.wants_interrupt() and self.interrupts_enabled()
            try:
                engine.run(self.pc, budget, self.time, exact, stop_first=due)
            except UcError as e:
                if self._fault is None:
                    self._advance(engine.last_count)
                    self.cannot_emulate(f"Unicorn: {e}")
                    break
                engine.cut(self._fault[0] + (0 if self._fault[4] else 4))
                engine.last_count = engine.rec.executed - engine._base
            except BaseException:
                self._advance(engine.last_count)
                self.suspended = engine.host_stopped    # on a boundary: the slot goes on later
                raise
            n = engine.last_count
            self._advance(n)
            if exact is not None:
                exact -= n
            if engine.host_stopped:
                self.suspended = True
                break
            yielded = not engine.rec.stop and engine.rec.remaining > 0 \
                and self._fault is None and self.pending_sync is None
            entered = self._after_run()
            if self.state is not CpuState.RUNNING or self.svc.slot_over():
                break
            if yielded:
                break                          # Unicorn left on its own: a yield (PPC `or 1,1,1`)
            if stop_at_entry and entered:
                break                          # a step ends where an exception was entered
            idle = idle + 1 if n == 0 else 0
            if idle > 2:
                break                          # nothing moves: let the round end
        return self.slot_executed

    def _advance(self, n: int) -> None:
        self.time += n
        self.slot_executed += n

    def cannot_emulate(self, why: str) -> None:
        """The instruction at PC cannot be run (Unicorn gave up on it and
        there is no architected interrupt to give instead): the vCPU stops and
        so does the machine, with a one-line report (QEMU would not leave a
        dead vCPU behind for the others to wait on)."""
        pc = self.pc
        insn = self.read_insn(pc) if self.svc.ram.contains(pc, 4) else None
        self.svc.trace.guest_error(self.index, "cpu fault", pc=pc, why=why)
        self.state = CpuState.STOPPED
        if self.svc.fatal is None:
            where = f"pc {pc:#x}" + ("" if insn is None else f" (instruction {insn:#010x})")
            self.svc.fatal = f"cpu{self.index}: cannot emulate the instruction at {where}: {why}"
        self.svc.shutdown("error", 1)

    def _after_run(self) -> bool:
        """Deliver what the run stopped for; True if an exception or
        interrupt was entered."""
        entered = False
        if self._fault is not None:
            pc, addr, size, is_write, is_fetch = self._fault
            self._fault = None
            self.svc.trace.guest_error(self.index, "unassigned access", pc=pc, addr=addr,
                                       size=size, write=is_write, fetch=is_fetch)
            self.deliver_fault(pc, addr, size, is_write, is_fetch)
            entered = True
        if self.pending_sync is not None:
            action, self.pending_sync = self.pending_sync, None
            action()
            entered = True
        return self.take_pending_interrupts() is not None or entered

    def step(self) -> StepRecord:
        """Execute exactly one instruction (or take one interrupt due at
        this boundary), as a run would at this point."""
        before = self.registers()
        pc = self.pc
        insn = self.read_insn(pc) if self.svc.ram.contains(pc, 4) else 0
        n_events = len(self.svc.trace.events)
        if self.slot_end <= self.time:
            self.slot_end = self.time + 1
        self.run_slot(exact=1, stop_at_entry=True)
        after = self.registers()
        changed = {k: (before[k], v) for k, v in after.items() if before.get(k) != v}
        return StepRecord(self.index, pc, insn, self.pc, changed,
                          list(self.svc.trace.events[n_events:]),
                          self.delivered[0] if self.delivered else None)

    def run_insns(self, n: int) -> int:
        """Exactly `n` instructions unless something stops the CPU first."""
        if self.slot_end < self.time + n:
            self.slot_end = self.time + n
        return self.run_slot(exact=n, stop_at_entry=True)

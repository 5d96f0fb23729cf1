"""How a vCPU runs guest code on Unicorn: the engine interface.

Determinism needs more from Unicorn than `emu_start`: slots that end on an
exact instruction boundary (whatever the translation blocks look like), a way
to end a slot early when an interrupt becomes deliverable, callbacks before
chosen instructions execute (PPC mftb/DEC) and at block starts while a masked
interrupt waits, and the number of instructions a slot executed. An engine is
one way of providing that; the vCPU holds one and never asks which:

  * `slot.CSlotEngine`: the C hooks of slot.c (fast, exact counts);
  * `pyhooks.PythonHookEngine`: `emu_start(count=)` and Python hooks, for
    hosts where slot.c cannot be built (same runs, slower).

A single step is `run(pc, 1)`. Everything architectural (what an instruction
means, which addresses to watch, what a trapped register returns) stays in the
vCPU classes; engines only decide *how* Unicorn is made to stop and call back.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

from unicorn import UC_HOOK_CODE, Uc

NEVER = 0xFFFF_FFFF_FFFF_FFFC        # an `until` address no guest reaches

AddressCallback = Callable[[int], None]
# (Unicorn register id, mask, value meaning "interrupts enabled")
EnableBit = tuple[int, int, int]
# AArch64 MRS/MSR: (Xt register id, uc_arm64_cp_reg-like object) -> 1 if handled
SysRegCallback = Callable[[int, Any], int]


class Engine(ABC):
    """Runs slots of guest code on one Unicorn instance for one vCPU.

    `on_block(address)` is called at block starts while the delivery watch is
    on (and, where the engine can test it, the enable bit allows delivery);
    `on_watch(address)` before a watched instruction executes."""

    def __init__(self, uc: Uc, on_block: AddressCallback, on_watch: AddressCallback):
        self.uc = uc
        self.on_block = on_block
        self.on_watch = on_watch
        self.running = False                # inside run(): stops take effect
        self.last_count = 0                 # instructions executed by the last run()
        self._watch_hooks: dict[int, int] = {}

    # ---- slots --------------------------------------------------------------------------
    @abstractmethod
    def run(self, pc: int, budget: int) -> None:
        """Run from `pc` for `budget` instructions, fewer if `request_stop`
        is called; sets `last_count` (exact, or the budget where the engine
        cannot tell) even when Unicorn raises UcError, which propagates."""

    def end_run(self) -> None:
        """After a run that did not end in an unhandled Unicorn error: work
        deferred until Unicorn has returned."""

    @abstractmethod
    def request_stop(self) -> None:
        """End the current run before the next instruction (no effect outside
        run(): an emu_stop there would make the next emu_start return at once)."""

    # Host stops (Ctrl-C, a wall-clock limit) are not guest-visible: an
    # engine that can stop for the host before an instruction, uncharged,
    # says so in `host_stopped`, and the slot is continued later with its
    # remaining budget as if it had never stopped. One that cannot (it could
    # not count the instructions of a stopped slot) ignores the request, and
    # the machine acts on it at the end of the slot.
    def request_host_stop(self) -> None:
        """Stop for the host before the next instruction, in this run or, if
        none is running, the next one (until `clear_host_stop`). May be
        called from a signal handler, inside any callback."""

    def clear_host_stop(self) -> None:
        """Withdraw `request_host_stop`."""

    @property
    def host_stopped(self) -> bool:
        """The last run ended only because of `request_host_stop` (or an
        exception from a callback, which run() raised), before an
        instruction it did not charge (`last_count` is exact)."""
        return False

    @abstractmethod
    def run_uncounted(self, begin: int, end: int, count: int) -> None:
        """Run the `count` instructions from `begin` to `end` (register stubs
        outside guest RAM) without charging them to a slot or stopping them."""

    # ---- trapping -----------------------------------------------------------------------
    @abstractmethod
    def watch(self, address: int) -> None:
        """Call on_watch(address) before the instruction at `address` executes."""

    @abstractmethod
    def watch_delivery(self, on: bool, enable_bits: tuple[int, int] | None) -> bool:
        """Call on_block at block starts while `on` (instructions that unmask
        interrupts end a block). `enable_bits` = (mask, value) of the enable
        register meaning "deliverable" for the lines now pending, None for
        the static setting. True when the current run must end for the
        change to take effect (the vCPU then requests a stop)."""

    @abstractmethod
    def trap_sysregs(self, on_mrs: SysRegCallback, on_msr: SysRegCallback) -> None:
        """AArch64: send MRS/MSR of the registers named by `emulate_sysreg`
        to Python (others may still reach the callbacks, which return 0)."""

    @abstractmethod
    def emulate_sysreg(self, key: tuple[int, int, int, int, int]) -> None:
        """(op0, op1, CRn, CRm, op2) is emulated by the board."""

    # ---- translated code -----------------------------------------------------------------
    def flush_translations(self, begin: int, end: int) -> None:
        """Drop code Unicorn translated from [begin, end): the host replaced
        it (images reloaded at reset, RAM of a restored snapshot)."""
        self.uc.ctl_remove_cache(begin, end)

    def _hook_address(self, address: int) -> None:
        """A Python code hook on one instruction, for on_watch."""
        if address not in self._watch_hooks:
            self._watch_hooks[address] = self.uc.hook_add(
                UC_HOOK_CODE, lambda uc, a, size, _: self.on_watch(a), None, address, address + 3)

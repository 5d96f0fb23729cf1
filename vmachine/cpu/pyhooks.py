"""The Python fallback engine: `emu_start(count=)` and Python hooks.

Used where slot.c cannot be built (no host compiler) and by tests that check
both engines give identical runs. It reaches the same instruction boundaries
as the C engine, more slowly: Unicorn's count hook bounds the slot, a one-shot
Python code hook makes a requested stop exact, and Python hooks watch
addresses and block starts. It cannot tell how many instructions a stopped
slot executed, so `last_count` is the budget.
"""
from __future__ import annotations

from typing import Any

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_INSN, Uc

from .engine import until_for, AddressCallback, EnableBit, Engine, SysRegCallback


class PythonHookEngine(Engine):
    """Slots bounded by Unicorn's count=, stops and watches in Python."""

    def __init__(self, uc: Uc, on_block: AddressCallback, on_watch: AddressCallback,
                 enable: EnableBit | None = None):
        # `enable` is not needed: on_block itself checks whether delivery is possible.
        super().__init__(uc, on_block, on_watch)
        self._stop_hook: int | None = None
        self._block_hook: int | None = None
        self._flush_pending = False

    # ---- slots --------------------------------------------------------------------------
    def run(self, pc: int, budget: int) -> None:
        self.last_count = budget
        self.running = True
        try:
            self.uc.emu_start(pc, until_for(pc), count=budget)
        finally:
            self.running = False
            self._drop_stop_hook()

    def end_run(self) -> None:
        if self._flush_pending:
            self._flush_pending = False
            self.uc.ctl_flush_tb()

    def request_stop(self) -> None:
        """uc.emu_stop() alone takes effect where Unicorn next checks for an
        exit, which depends on how the code happens to be split into
        translation blocks (history); a one-shot code hook stops before the
        next instruction whatever the blocks are."""
        if not self.running:
            return
        self.uc.emu_stop()
        if self._stop_hook is None:
            self._stop_hook = self.uc.hook_add(UC_HOOK_CODE, self._on_stop_hook)

    def _on_stop_hook(self, uc: Uc, address: int, size: int, _: Any) -> None:
        uc.emu_stop()

    def _drop_stop_hook(self) -> None:
        if self._stop_hook is not None:
            self.uc.hook_del(self._stop_hook)
            self._stop_hook = None

    def run_uncounted(self, begin: int, end: int, count: int) -> None:
        # count= keeps Unicorn's count hook (an uncounted emu_start drops it
        # and flushes every translation, so runs with and without register
        # reads would differ).
        self.uc.emu_start(begin, end, count=count)

    # ---- trapping -----------------------------------------------------------------------
    def watch(self, address: int) -> None:
        self._hook_address(address)

    def watch_delivery(self, on: bool, enable_bits: tuple[int, int] | None) -> bool:
        if on and self._block_hook is None:
            self._block_hook = self.uc.hook_add(UC_HOOK_BLOCK, self._on_block)
            # Blocks translated before this Python hook existed do not call it,
            # and which blocks exist depends on history (a restored machine has
            # none): drop them all so the watch points are the same in every run.
            if self.running:
                self._flush_pending = True
                return True
            self.uc.ctl_flush_tb()
        elif not on and self._block_hook is not None:
            self.uc.hook_del(self._block_hook)
            self._block_hook = None
        return False

    def _on_block(self, uc: Uc, address: int, size: int, _: Any) -> None:
        self.on_block(address)

    def trap_sysregs(self, on_mrs: SysRegCallback, on_msr: SysRegCallback) -> None:
        """Every MRS/MSR reaches Python; the callbacks return 0 for registers
        the board does not emulate."""
        from unicorn import arm64_const as A
        self.uc.hook_add(UC_HOOK_INSN, lambda uc, reg, cp, _: on_mrs(reg, cp), None, 1, 0,
                         A.UC_ARM64_INS_MRS)
        self.uc.hook_add(UC_HOOK_INSN, lambda uc, reg, cp, _: on_msr(reg, cp), None, 1, 0,
                         A.UC_ARM64_INS_MSR)

    def emulate_sysreg(self, key: tuple[int, int, int, int, int]) -> None:
        """Nothing to do: the callbacks look every register up."""

"""The slot engine: slot.c's hooks, shared with Python through one struct.

`SlotEngine(uc, ...)` builds (once, cached) and loads slot.c and installs its
block hook on the Unicorn instance. Counting is per translation block, guest
stops land on block boundaries, and time reads are answered in C (slot.c's
header says how and why). Python is called only for what it must decide:
a masked interrupt that may be deliverable at a block start, a watched
instruction that is not a plain time-base read, a system register the board
emulates. Without slot.c there is no engine: `SlotEngineUnavailable` says why
in one line (the host compiler comes with the `ziglang` package).
"""
from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from unicorn import (UC_ARCH_ARM64, UC_ARCH_PPC, UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_EDGE_GENERATED,
                     UC_HOOK_INSN, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, Uc)
from unicorn.arm64_const import UC_ARM64_REG_PC
from unicorn.ppc_const import UC_PPC_REG_PC

from ..errors import VMError

ADDR_CB = ctypes.CFUNCTYPE(None, ctypes.c_uint64)
WATCH_CB = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)
SYSREG_CB = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
WATCH_SLOTS = 4096
SYSREG_SLOTS = 256

# slot.c sysreg flags
SR_KNOWN_READ = 2     # Unicorn implements MRS of the register: a skipped one goes on in the block
SR_COUNTER = 4        # CNTVCT_EL0 / CNTPCT_EL0: answered in C from the vCPU's time
SR_KNOWN_WRITE = 8    # Unicorn implements MSR to it


class SlotEngineUnavailable(VMError):
    """slot.c cannot be built or loaded on this host."""


class _Slot(ctypes.Structure):
    _fields_ = [("remaining", ctypes.c_int64), ("executed", ctypes.c_int64),
                ("block_pc", ctypes.c_uint64), ("block_end", ctypes.c_uint64),
                ("stop", ctypes.c_int32), ("defer", ctypes.c_int32),
                ("enabled", ctypes.c_int32), ("host_stop", ctypes.c_int32),
                ("host_stopped", ctypes.c_int32), ("exact", ctypes.c_int32),
                ("exact_left", ctypes.c_int64),
                ("retranslate", ctypes.c_int32), ("watch_blocks", ctypes.c_int32),
                ("new_code_pc", ctypes.c_uint64), ("new_code_end", ctypes.c_uint64),
                ("emu_stop", ctypes.c_void_p), ("reg_read", ctypes.c_void_p),
                ("reg_write", ctypes.c_void_p), ("reg_write2", ctypes.c_void_p),
                ("on_block", ADDR_CB), ("on_watch", WATCH_CB), ("on_sysreg", SYSREG_CB),
                ("pc_reg", ctypes.c_int32), ("enable_reg", ctypes.c_int32),
                ("enable_mask", ctypes.c_uint64), ("enable_want", ctypes.c_uint64),
                ("time_origin", ctypes.c_int64), ("tb_fast", ctypes.c_int32), ("gpr0_reg", ctypes.c_int32),
                ("tb_guest_offset", ctypes.c_uint64),
                ("ram", ctypes.c_void_p), ("ram_base", ctypes.c_uint64), ("ram_size", ctypes.c_uint64),
                ("spr_trap", (ctypes.c_uint32 * 32) * 2),
                ("nwatch", ctypes.c_int32), ("nsysreg", ctypes.c_int32),
                ("watch", ctypes.c_uint64 * WATCH_SLOTS),
                ("sysreg", ctypes.c_uint32 * SYSREG_SLOTS),
                ("sysreg_flags", ctypes.c_uint8 * SYSREG_SLOTS),
                ("access_size", ctypes.c_int32), ("pad", ctypes.c_int32),
                ("counted", ctypes.c_int64)]


class CpReg(ctypes.Structure):
    """Unicorn's uc_arm64_cp_reg (what the C MRS/MSR hook hands over)."""
    _fields_ = [("crn", ctypes.c_uint32), ("crm", ctypes.c_uint32), ("op0", ctypes.c_uint32),
                ("op1", ctypes.c_uint32), ("op2", ctypes.c_uint32), ("val", ctypes.c_uint64)]


_lib: ctypes.CDLL | None = None
_lib_error: str | None = None


def _library() -> ctypes.CDLL:
    global _lib, _lib_error
    if _lib is None and _lib_error is None:
        try:
            from ..toolchain import build_host_library
            lib = ctypes.CDLL(str(build_host_library(Path(__file__).with_name("slot.c"),
                                                     "vmachine-slot")))
            lib.vm_watch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
            lib.vm_watch_add.restype = ctypes.c_int
            lib.vm_sysreg_add.argtypes = [ctypes.c_void_p] + [ctypes.c_uint32] * 6
            lib.vm_sysreg_add.restype = ctypes.c_int
            lib.vm_cut.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
            lib.vm_cut.restype = None
            lib.vm_position.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
            lib.vm_position.restype = ctypes.c_int64
            _lib = lib
        except Exception as e:      # no compiler, unsupported host
            _lib_error = str(e).splitlines()[0] if str(e) else type(e).__name__
    if _lib is None:
        raise SlotEngineUnavailable(f"the slot engine (vmachine/cpu/slot.c) cannot be built here: "
                                    f"{_lib_error}")
    return _lib


def unavailable_reason() -> str | None:
    """Why slot.c cannot be used (None when it can)."""
    try:
        _library()
    except SlotEngineUnavailable:
        return _lib_error
    return None


_PC = {UC_ARCH_ARM64: UC_ARM64_REG_PC, UC_ARCH_PPC: UC_PPC_REG_PC}
NEVER = 0xFFFF_FFFF_FFFF_FFFC        # an `until` address no guest reaches...


def until_for(pc: int) -> int:
    """...except one that jumps there: emu_start(pc, until=pc) returns at once
    without executing (or faulting), and the vCPU would never move again.
    Such a run stops at another address no code can run at (its fetch faults)."""
    return NEVER if pc != NEVER else NEVER - 4


def _uclib():
    from unicorn.unicorn_py3.unicorn import uclib
    return uclib


class SlotEngine:
    """Runs slots of guest code on one Unicorn instance for one vCPU.

    `on_block(address)`: at a block start while a masked interrupt waits and
    the enable bit allows delivery. `on_watch(address) -> int`: before a
    watched instruction that slot.c does not answer itself; returns the
    address where the current block ends (the instruction was emulated or
    faulted: address + 4), or 0 to let it run natively."""

    def __init__(self, uc: Uc, on_block: Any, on_watch: Any,
                 enable: tuple[int, int, int]):
        lib = _library()
        uclib = _uclib()
        self.uc = uc
        self._lib = lib
        self.running = False                 # inside run(): stops take effect
        self.last_count = 0                  # instructions executed by the last run()
        self.on_new_code: Any = None         # PPC: (begin, end) of new code needing watches
        # Every run in exact mode, its per-instruction hook counting what
        # really executed into rec.counted: tests hold the block charges
        # against it (same guest behaviour, slower).
        self.audit = False
        self._error: BaseException | None = None      # raised by a callback during run()
        self._base = 0                       # `executed` when the current run started
        self._pc_reg = _PC[uc._arch]
        self._callbacks = (ADDR_CB(self._guarded(on_block, lambda address: None)),
                           WATCH_CB(self._guarded(on_watch, self._watch_failed)))
        self.rec = _Slot()
        s = self.rec
        s.enabled = 1
        s.pc_reg = self._pc_reg
        s.emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        s.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value
        s.reg_write = ctypes.cast(uclib.uc_reg_write, ctypes.c_void_p).value
        s.reg_write2 = ctypes.cast(uclib.uc_reg_write2, ctypes.c_void_p).value
        s.on_block, s.on_watch = self._callbacks
        s.enable_reg, s.enable_mask, s.enable_want = enable   # (register, mask, value when enabled)
        self._handles: list[ctypes.c_size_t] = []
        self._exact_hook: ctypes.c_size_t | None = None
        self._watch_hooks: dict[int, ctypes.c_size_t] = {}
        self._add_c_hook(UC_HOOK_BLOCK, lib.vm_block)

    def _add_c_hook(self, kind: int, fn: Any, *aux: Any, begin: int = 1, end: int = 0) -> ctypes.c_size_t:
        """uc_hook_add with a C function and `rec` as its user data."""
        h = ctypes.c_size_t()
        err = _uclib().uc_hook_add(self.uc._uch, ctypes.byref(h), kind, ctypes.cast(fn, ctypes.c_void_p),
                                   ctypes.byref(self.rec), ctypes.c_uint64(begin), ctypes.c_uint64(end),
                                   *aux)
        if err:
            raise OSError(f"uc_hook_add({kind}) failed ({err})")
        self._handles.append(h)
        return h

    def _guarded(self, fn: Any, on_error: Any) -> Any:
        """A Python callback for a C hook. ctypes cannot pass an exception
        through C (it prints "Exception ignored" and goes on): keep it, stop
        at the next block boundary and raise it from run(), as the Unicorn
        binding does for its own hooks; `on_error(*args)` is what the C hook
        gets back."""
        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except BaseException as e:          # re-raised by run()
                if self._error is None:
                    self._error = e
                    self.rec.stop = 1
                return on_error(*args)
        return call

    def _watch_failed(self, address: int) -> int:
        """The watched instruction must not run: Unicorn leaves right after
        the hook, with PC on it (uncharged)."""
        self.uc.emu_stop()
        return address

    # ---- slots --------------------------------------------------------------------------
    def run(self, pc: int, budget: int, time_origin: int, exact: int | None = None,
            stop_first: bool = False) -> None:
        """Run from `pc` until `budget` instructions are charged (on a block
        boundary), a guest stop (`request_stop`), a host stop, or - with
        `exact` - exactly `exact` instructions (a host stop). The vCPU's time
        at `pc` is `time_origin`. `stop_first`: a guest stop is already due
        (it lands at the first block boundary this run may stop at).
        `last_count` is exact, also when a callback raised (re-raised here
        with PC on the instruction to continue at) or Unicorn failed."""
        s = self.rec
        if exact is None and self.audit:
            exact = 1 << 62
        self._set_exact(exact is not None)
        s.exact_left = exact or 0
        s.remaining, s.stop, s.host_stopped = budget, int(stop_first), 0
        s.block_pc = s.block_end = 0
        before = self._base = s.executed
        s.time_origin = time_origin - before
        self._error = None
        self.running = True
        try:
            while True:
                self.uc.emu_start(pc, until_for(pc))
                if not s.retranslate or self._error is not None:
                    break
                pc = self._retranslate()
        finally:
            self.running = False
            self.last_count = s.executed - before
        if self._error is not None:
            # Stopped on a boundary the slot can continue from (a failed
            # system-register handler: the access was dropped).
            s.host_stopped = 1
            e, self._error = self._error, None
            raise e

    def _retranslate(self) -> int:
        """New code needs watches: add them, drop its translation, go on."""
        s = self.rec
        begin, end = s.new_code_pc, s.new_code_end
        s.retranslate = 0
        if self.on_new_code is not None:
            self.on_new_code(begin, end)
        self.uc.ctl_remove_cache(begin, max(end, begin + 4))
        return self.uc.reg_read(self._pc_reg)

    def _set_exact(self, on: bool) -> None:
        """The per-instruction hook exists only while exact stops are asked for;
        translations made with or without it are dropped on a switch."""
        s = self.rec
        s.exact = int(on)
        if on and self._exact_hook is None:
            self._exact_hook = self._add_c_hook(UC_HOOK_CODE, self._lib.vm_insn)
            self.uc.ctl_flush_tb()
        elif not on and self._exact_hook is not None:
            h, self._exact_hook = self._exact_hook, None
            _uclib().uc_hook_del(self.uc._uch, h)
            self._handles.remove(h)
            self.uc.ctl_flush_tb()

    def position(self) -> int:
        """Instructions this run executed before the current instruction."""
        s = self.rec
        if not self.running:
            return self.last_count
        pc = self.uc.reg_read(self._pc_reg) if s.block_end else 0
        return self._lib.vm_position(ctypes.byref(s), pc) - self._base

    def cut(self, pc: int) -> None:
        """The current block was left at `pc` (an exception, an unassigned
        access): the instructions from there on did not run."""
        self._lib.vm_cut(ctypes.byref(self.rec), pc)

    def request_stop(self) -> None:
        """A guest-visible stop at the next block boundary."""
        self.rec.stop = 1

    def request_host_stop(self) -> None:
        self.rec.host_stop = 1              # also before run() starts: it is not cleared there

    def clear_host_stop(self) -> None:
        self.rec.host_stop = 0

    @property
    def host_stopped(self) -> bool:
        return bool(self.rec.host_stopped)

    def run_uncounted(self, begin: int, end: int, count: int) -> None:
        """Register stubs outside guest RAM: neither counted nor stopped."""
        s = self.rec
        s.enabled = 0
        try:
            self.uc.emu_start(begin, end, count=0)
        finally:
            s.enabled = 1

    # ---- trapping -----------------------------------------------------------------------
    def watch(self, address: int) -> None:
        """Call on_watch(address) before the instruction there (code
        translated from now on; the caller drops older translations)."""
        if address in self._watch_hooks:
            return
        if self._lib.vm_watch_add(ctypes.byref(self.rec), address) < 0:
            raise VMError(f"more than {WATCH_SLOTS // 2} trapped SPR accesses in guest code "
                          f"(at {address:#x}): slot.c's watch table is full")
        self._watch_hooks[address] = self._add_c_hook(UC_HOOK_CODE, self._lib.vm_watch,
                                                      begin=address, end=address + 3)

    def hook_mmio(self, begin: int, end: int) -> None:
        """Record the size of each guest access to [begin, end) in
        `rec.access_size` (and have Unicorn sync PC before the device sees it)."""
        self._add_c_hook(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._lib.vm_mem, begin=begin, end=end - 1)

    def scan_new_code(self, ram_ptr: int, ram_base: int, ram_size: int, spr_traps: Any,
                      gpr0_reg: int) -> None:
        """PPC: every block Unicorn translates is checked for trapped SPR
        accesses (spr_traps: iterable of (0 = mfspr | 1 = mtspr, spr)), and
        time-base reads (SPR 268/269) are answered in C."""
        s = self.rec
        s.ram, s.ram_base, s.ram_size = ram_ptr, ram_base, ram_size
        for kind, spr in spr_traps:
            s.spr_trap[kind][spr >> 5] |= 1 << (spr & 31)
        s.tb_fast, s.gpr0_reg = 1, gpr0_reg
        self._add_c_hook(UC_HOOK_EDGE_GENERATED, self._lib.vm_edge)

    def set_tb_offset(self, offset: int) -> None:
        self.rec.tb_guest_offset = offset & 0xFFFF_FFFF_FFFF_FFFF

    def watch_delivery(self, on: bool, enable_bits: tuple[int, int] | None) -> None:
        if on and enable_bits is not None:
            self.rec.enable_mask, self.rec.enable_want = enable_bits
        self.rec.watch_blocks = int(on)

    def trap_sysregs(self, on_mrs: Any, on_msr: Any) -> None:
        """MRS/MSR hooked in C: only registers added with `emulate_sysreg`
        reach Python (ELR/SPSR/TPIDR... never do)."""
        from unicorn import arm64_const as A

        def on_sysreg(reg: int, cp_addr: int, is_write: int) -> int:
            return (on_msr if is_write else on_mrs)(reg, CpReg.from_address(cp_addr))
        # On an exception (2): the run stops at the next block boundary,
        # with PC back on the access where slot.c can (see its sysreg()).
        self._sysreg_cb = SYSREG_CB(self._guarded(on_sysreg, lambda *a: 2))
        self.rec.on_sysreg = self._sysreg_cb
        for fn, insn in ((self._lib.vm_mrs, A.UC_ARM64_INS_MRS), (self._lib.vm_msr, A.UC_ARM64_INS_MSR)):
            self._add_c_hook(UC_HOOK_INSN, fn, ctypes.c_int(insn))

    def emulate_sysreg(self, key: tuple[int, int, int, int, int], flags: int = 0) -> None:
        """(op0, op1, CRn, CRm, op2) is emulated by the board."""
        if self._lib.vm_sysreg_add(ctypes.byref(self.rec), *key, flags) != 0:
            raise RuntimeError("slot.c system-register table full")

    # ---- translated code -----------------------------------------------------------------
    def flush_translations(self, begin: int, end: int) -> None:
        """Drop code Unicorn translated from [begin, end): the host replaced
        it (images reloaded at reset, RAM of a restored snapshot)."""
        self.uc.ctl_remove_cache(begin, end)

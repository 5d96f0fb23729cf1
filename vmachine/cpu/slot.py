"""The C slot engine: slot.c's hooks, shared with Python through one struct.

`CSlotEngine.attach(...)` builds (once, cached) and loads slot.c, installs its
code and block hooks on a Unicorn instance and returns the engine, or None
when the helper cannot be built or loaded on this host; the vCPU then uses
the Python fallback (pyhooks.PythonHookEngine: same results, slower).
"""
from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from unicorn import UC_ARCH_ARM64, UC_ARCH_PPC, UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_INSN, Uc
from unicorn.arm64_const import UC_ARM64_REG_PC
from unicorn.ppc_const import UC_PPC_REG_PC

from .engine import NEVER, AddressCallback, EnableBit, Engine, SysRegCallback

ADDR_CB = ctypes.CFUNCTYPE(None, ctypes.c_uint64)
SYSREG_CB = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
WATCH_SLOTS = 1024
SYSREG_SLOTS = 256


class _Slot(ctypes.Structure):
    _fields_ = [("remaining", ctypes.c_int64), ("executed", ctypes.c_int64),
                ("stop", ctypes.c_int32), ("watch_blocks", ctypes.c_int32),
                ("enabled", ctypes.c_int32), ("nwatch", ctypes.c_int32),
                ("emu_stop", ctypes.c_void_p), ("on_block", ADDR_CB), ("on_watch", ADDR_CB),
                ("reg_read", ctypes.c_void_p), ("enable_reg", ctypes.c_int32), ("pad", ctypes.c_int32),
                ("enable_mask", ctypes.c_uint64), ("enable_want", ctypes.c_uint64),
                ("watch", ctypes.c_uint64 * WATCH_SLOTS),
                ("on_sysreg", SYSREG_CB), ("nsysreg", ctypes.c_int32), ("pad2", ctypes.c_int32),
                ("sysreg", ctypes.c_uint32 * SYSREG_SLOTS),
                ("host_stop", ctypes.c_int32), ("host_stopped", ctypes.c_int32),
                ("pc_moved", ctypes.c_int32)]


class CpReg(ctypes.Structure):
    """Unicorn's uc_arm64_cp_reg (what the C MRS/MSR hook hands over)."""
    _fields_ = [("crn", ctypes.c_uint32), ("crm", ctypes.c_uint32), ("op0", ctypes.c_uint32),
                ("op1", ctypes.c_uint32), ("op2", ctypes.c_uint32), ("val", ctypes.c_uint64)]


_lib: ctypes.CDLL | None = None
_lib_error: str | None = None


def _library() -> ctypes.CDLL | None:
    global _lib, _lib_error
    if _lib is None and _lib_error is None:
        try:
            from ..toolchain import build_host_library
            lib = ctypes.CDLL(str(build_host_library(Path(__file__).with_name("slot.c"),
                                                     "vmachine-slot")))
            lib.vm_watch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
            lib.vm_watch_add.restype = ctypes.c_int
            lib.vm_sysreg_add.argtypes = [ctypes.c_void_p] + [ctypes.c_uint32] * 5
            lib.vm_sysreg_add.restype = ctypes.c_int
            _lib = lib
        except Exception as e:      # no compiler, unsupported host: fall back
            _lib_error = str(e).splitlines()[0] if str(e) else type(e).__name__
    return _lib


def unavailable_reason() -> str | None:
    """Why the C helper is not in use (None when it is)."""
    _library()
    return _lib_error


_PC = {UC_ARCH_ARM64: UC_ARM64_REG_PC, UC_ARCH_PPC: UC_PPC_REG_PC}


def _address(engine: "CSlotEngine", address: int) -> int:
    return address


def _current_pc(engine: "CSlotEngine", *_: Any) -> int:
    return engine.uc.reg_read(_PC[engine.uc._arch])


def _uclib():
    from unicorn.unicorn_py3.unicorn import uclib
    return uclib


class CSlotEngine(Engine):
    """One C code hook counts every instruction, stops exactly at the budget
    or when asked, and calls Python only at watched addresses; one C block
    hook reads the interrupt-enable bit itself while a masked interrupt
    waits. `rec` is the struct the C hooks read and write."""

    def __init__(self, uc: Uc, lib: ctypes.CDLL, on_block: AddressCallback,
                 on_watch: AddressCallback, enable: EnableBit | None = None):
        super().__init__(uc, on_block, on_watch)
        uclib = _uclib()
        self._lib = lib
        self._error: BaseException | None = None      # raised by a callback during run()
        self._error_pc: int | None = None             # where the failed instruction is
        self._callbacks = (ADDR_CB(self._guarded(on_block, False, None, _address)),
                           ADDR_CB(self._guarded(on_watch, True, None, _address)))   # keep them alive
        self.rec = _Slot()
        self.rec.enabled = 1
        self.rec.emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        self.rec.on_block, self.rec.on_watch = self._callbacks
        if enable is not None:                       # (register id, mask, value when enabled)
            self.rec.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value
            self.rec.enable_reg, self.rec.enable_mask, self.rec.enable_want = enable
        self._handles: list[ctypes.c_size_t] = []
        for kind, fn in ((UC_HOOK_CODE, lib.vm_insn), (UC_HOOK_BLOCK, lib.vm_block)):
            self._add_c_hook(kind, fn)

    @classmethod
    def attach(cls, uc: Uc, on_block: AddressCallback, on_watch: AddressCallback,
               enable: EnableBit | None = None) -> "CSlotEngine | None":
        """The engine on `uc`, or None when slot.c is not usable here."""
        lib = _library()
        if lib is None:
            return None
        try:
            return cls(uc, lib, on_block, on_watch, enable)
        except (OSError, AttributeError):
            return None

    def _add_c_hook(self, kind: int, fn: Any, *aux: ctypes.c_int) -> None:
        """uc_hook_add with a C function and `rec` as its user data, on every address."""
        h = ctypes.c_size_t()
        err = _uclib().uc_hook_add(self.uc._uch, ctypes.byref(h), kind, ctypes.cast(fn, ctypes.c_void_p),
                                   ctypes.byref(self.rec), ctypes.c_uint64(1), ctypes.c_uint64(0), *aux)
        if err:
            raise OSError(f"uc_hook_add({kind}) failed ({err})")
        self._handles.append(h)

    def _guarded(self, fn: Any, charged: bool, on_error: Any, pc_of: Any) -> Any:
        """A Python callback for a C hook. ctypes cannot pass an exception
        through C (it prints "Exception ignored" and goes on): keep it, stop
        before the next instruction and raise it from run(), as the Unicorn
        binding does for its own hooks. `charged`: vm_insn already charged
        the instruction the callback was emulating, which did not complete
        and executes again on the next run. The run then ends as for a host
        stop (`host_stopped`) with PC back at that instruction (`pc_of`
        the callback's arguments): if the callback raised before it changed
        anything, continuing the slot is exact."""
        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except BaseException as e:          # re-raised by run()
                self._failed(e, charged, pc_of(self, *args))
                return on_error
        return call

    def _failed(self, e: BaseException, charged: bool, pc: int) -> None:
        if self._error is not None:
            return
        self._error, self._error_pc = e, pc
        s = self.rec
        s.stop = 1
        if charged and self.running:
            s.executed -= 1
            s.remaining += 1

    # ---- slots --------------------------------------------------------------------------
    def run(self, pc: int, budget: int) -> None:
        s = self.rec
        s.remaining, s.stop, s.host_stopped = budget, 0, 0
        before = s.executed
        self._error = None
        self.running = True
        try:
            self.uc.emu_start(pc, NEVER)
        finally:
            self.running = False
            self.last_count = s.executed - before
        if self._error is not None:
            # Stopped before an instruction, uncharged: the slot can go on
            # there (Unicorn skips an MRS/MSR of a register it implements
            # when the hook returns 1: come back to it).
            s.host_stopped = 1
            e, self._error = self._error, None
            self.uc.reg_write(_PC[self.uc._arch], self._error_pc)
            raise e

    def request_stop(self) -> None:
        if self.running:
            self.rec.stop = 1               # vm_insn stops before the next instruction

    def request_host_stop(self) -> None:
        self.rec.host_stop = 1              # also before run() starts: it is not cleared there

    def clear_host_stop(self) -> None:
        self.rec.host_stop = 0

    @property
    def host_stopped(self) -> bool:
        return bool(self.rec.host_stopped)

    def run_uncounted(self, begin: int, end: int, count: int) -> None:
        # The C hooks are switched off: the stub neither counts nor stops.
        self.rec.enabled = 0
        try:
            self.uc.emu_start(begin, end, count=0)
        finally:
            self.rec.enabled = 1

    # ---- trapping -----------------------------------------------------------------------
    def watch(self, address: int) -> None:
        if self._lib.vm_watch_add(ctypes.addressof(self.rec), address) != 0:
            self._hook_address(address)     # table full (or address 0): a Python hook

    def watch_delivery(self, on: bool, enable_bits: tuple[int, int] | None) -> bool:
        if on and enable_bits is not None:
            self.rec.enable_mask, self.rec.enable_want = enable_bits
        self.rec.watch_blocks = int(on)
        return False

    def trap_sysregs(self, on_mrs: SysRegCallback, on_msr: SysRegCallback) -> None:
        """MRS/MSR hooked in C: only registers added with `emulate_sysreg`
        reach Python (ELR/SPSR/TPIDR... never do)."""
        from unicorn import arm64_const as A

        def on_sysreg(reg: int, cp_addr: int, is_write: int) -> int:
            return (on_msr if is_write else on_mrs)(reg, CpReg.from_address(cp_addr))
        # On an exception: return 1 with PC unchanged, so that Unicorn comes
        # back to the MRS/MSR, where vm_insn stops before it (uncharged).
        self._sysreg_cb = SYSREG_CB(self._guarded(on_sysreg, True, 1, _current_pc))
        self.rec.on_sysreg = self._sysreg_cb
        for fn, insn in ((self._lib.vm_mrs, A.UC_ARM64_INS_MRS), (self._lib.vm_msr, A.UC_ARM64_INS_MSR)):
            self._add_c_hook(UC_HOOK_INSN, fn, ctypes.c_int(insn))

    def emulate_sysreg(self, key: tuple[int, int, int, int, int]) -> None:
        if self._lib.vm_sysreg_add(ctypes.addressof(self.rec), *key) != 0:
            raise RuntimeError("slot.c system-register table full")

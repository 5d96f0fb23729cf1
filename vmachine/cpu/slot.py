"""The per-vCPU slot counter (slot.c) seen from Python.

`SlotCounter.attach(uc, on_block, on_watch)` installs the C code and block
hooks on a Unicorn instance, or returns None when the helper cannot be built
or loaded on this host; the vCPU then falls back to emu_start(count=...) and
Python hooks (same results, slower).
"""
from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Callable

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_INSN, Uc

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
                ("sysreg", ctypes.c_uint32 * SYSREG_SLOTS)]


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


class SlotCounter:
    """The counters and flags shared with the C hooks of one vCPU."""

    def __init__(self, uc: Uc, lib: ctypes.CDLL, on_block: Callable[[int], None],
                 on_watch: Callable[[int], None], enable: tuple[int, int, int] | None = None):
        from unicorn.unicorn_py3.unicorn import uclib
        self._lib = lib
        self._callbacks = (ADDR_CB(on_block), ADDR_CB(on_watch))   # keep them alive
        self.rec = _Slot()
        self.rec.enabled = 1
        self.rec.emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        self.rec.on_block, self.rec.on_watch = self._callbacks
        if enable is not None:                       # (register id, mask, value when enabled)
            self.rec.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value
            self.rec.enable_reg, self.rec.enable_mask, self.rec.enable_want = enable
        self._handles = []
        for kind, fn in ((UC_HOOK_CODE, lib.vm_insn), (UC_HOOK_BLOCK, lib.vm_block)):
            h = ctypes.c_size_t()
            err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), kind, ctypes.cast(fn, ctypes.c_void_p),
                                    ctypes.byref(self.rec), ctypes.c_uint64(1), ctypes.c_uint64(0))
            if err:
                raise OSError(f"uc_hook_add failed ({err})")
            self._handles.append(h)

    @classmethod
    def attach(cls, uc: Uc, on_block: Callable[[int], None], on_watch: Callable[[int], None],
               enable: tuple[int, int, int] | None = None) -> "SlotCounter | None":
        lib = _library()
        if lib is None:
            return None
        try:
            return cls(uc, lib, on_block, on_watch, enable)
        except (OSError, AttributeError):
            return None

    def trap_sysregs(self, uc: Uc, on_sysreg: Callable[[int, int, int], int]) -> None:
        """AArch64: hook MRS/MSR in C; only registers added with
        `emulate_sysreg` reach `on_sysreg(reg, cp_reg_address, is_write)`."""
        from unicorn import arm64_const as A
        from unicorn.unicorn_py3.unicorn import uclib
        self._sysreg_cb = SYSREG_CB(on_sysreg)
        self.rec.on_sysreg = self._sysreg_cb
        for fn, insn in ((self._lib.vm_mrs, A.UC_ARM64_INS_MRS), (self._lib.vm_msr, A.UC_ARM64_INS_MSR)):
            h = ctypes.c_size_t()
            err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), UC_HOOK_INSN, ctypes.cast(fn, ctypes.c_void_p),
                                    ctypes.byref(self.rec), ctypes.c_uint64(1), ctypes.c_uint64(0),
                                    ctypes.c_int(insn))
            if err:
                raise OSError(f"uc_hook_add(UC_HOOK_INSN) failed ({err})")
            self._handles.append(h)

    def emulate_sysreg(self, key: tuple[int, int, int, int, int]) -> bool:
        """(op0, op1, CRn, CRm, op2) goes to Python (False if the table is full)."""
        return self._lib.vm_sysreg_add(ctypes.addressof(self.rec), *key) == 0

    def watch(self, address: int) -> bool:
        """Call on_watch before the instruction at `address` (False if full)."""
        return self._lib.vm_watch_add(ctypes.addressof(self.rec), address) == 0

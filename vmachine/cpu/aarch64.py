"""AArch64 vCPU (virt guest) on Unicorn.

Every Unicorn quirk for AArch64 system code lives here
(see ../shared/unicorn-notes.md):
  * SCR_EL3.RW and HCR_EL2.RW are set once so an EL1->EL1 ERET is legal;
  * MRS/MSR of registers the board emulates (GIC ICC_*, the generic timer)
    trap through UC_HOOK_INSN (slot.c): the handler writes Xt and returns 1;
    for a register Unicorn does not implement, Unicorn ends the block at the
    instruction with PC on it, so slot.c moves PC past it (which registers
    Unicorn implements is probed once per process: `unicorn_implements`);
    CNTVCT_EL0/CNTPCT_EL0 reads are answered in slot.c itself;
  * `hvc` at EL1 is UNDEF here (intno 1, PC at the hvc): decoded and sent to
    the board's firmware (PSCI) dispatch, then PC + 4; `smc` (13) and every
    other synchronous exception are delivered to the guest's VBAR_EL1 with the
    ESR_EL1/FAR_EL1 syndrome QEMU would give;
  * WFI ends emu_start: the vCPU halts until its interrupt line rises;
  * IRQ entry writes ELR/SPSR, masks DAIF and jumps to VBAR_EL1 + 0x280.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from unicorn import UC_ARCH_ARM64, UC_HOOK_INSN, UC_HOOK_INTR, UC_MODE_ARM, UC_PROT_ALL, Uc
from unicorn import arm64_const as A

from . import decode
from ..state import Field, StateError, Str, Struct, U64, VMStateDescription
from .base import CpuState, VCpu
from .slot import SR_COUNTER, SR_KNOWN_READ, SR_KNOWN_WRITE

_XREG = tuple(A.UC_ARM64_REG_X0 + n for n in range(29)) + (A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30)

SPSR_EL1 = (4, 0, 3, 0, 0)            # (CRn, CRm, op0, op1, op2)
SCR_EL3 = (1, 1, 3, 6, 0)
HCR_EL2 = (1, 1, 3, 4, 0)

PSTATE_I = 1 << 7
PSTATE_F = 1 << 6
PSTATE_EL1H = 0x3C5                    # EL1h with D, A, I, F masked

EC_UNKNOWN, EC_SVC64, EC_BRK = 0x00, 0x15, 0x3C
EC_IABT_SAME, EC_DABT_SAME = 0x21, 0x25
EC_IABT_LOWER, EC_DABT_LOWER = 0x20, 0x24
ESR_IL = 1 << 25
FSC_SYNC_EXTERNAL = 0x10
FSC_ADDRESS_SIZE_L0 = 0x00           # an address above the PA range (MMU off)
ISS_WNR = 1 << 6
ISS_FNV = 1 << 10                    # FAR not valid

EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT, EXCP_BKPT, EXCP_SMC = 1, 2, 3, 4, 7, 13

# The counters slot.c reads from the vCPU's time, as the generic timer
# (devices/arm_timer.py) defines them: ns // 16 (62.5 MHz), no offset.
COUNTER_REGS = frozenset({(3, 3, 14, 0, 1), (3, 3, 14, 0, 2)})     # CNTPCT_EL0, CNTVCT_EL0


def _sysreg_insn(key: tuple[int, int, int, int, int], is_write: bool) -> int:
    op0, op1, crn, crm, op2 = key
    return (0xD5300000 if not is_write else 0xD5100000) | (op0 & 1) << 19 | op1 << 16 \
        | crn << 12 | crm << 8 | op2 << 5


class _Probe:
    """One scratch Unicorn instance for every `unicorn_implements` question."""
    BASE = 0x1000

    def __init__(self) -> None:
        self.uc = uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.mem_map(self.BASE, 0x1000, UC_PROT_ALL)
        self.calls = 0
        for insn in (A.UC_ARM64_INS_MRS, A.UC_ARM64_INS_MSR):
            uc.hook_add(UC_HOOK_INSN, self._hook, None, 1, 0, insn)
        uc.hook_add(UC_HOOK_INTR, lambda uc, intno, _: uc.emu_stop())

    def _hook(self, uc: Uc, reg: int, cp: Any, _: Any) -> int:
        self.calls += 1
        return 1 if self.calls == 1 else 0

    def implements(self, key: tuple[int, int, int, int, int], is_write: bool) -> bool:
        uc, base = self.uc, self.BASE
        uc.mem_write(base, _sysreg_insn(key, is_write).to_bytes(4, "little")
                     + (0xD503201F).to_bytes(4, "little"))      # nop
        uc.ctl_remove_cache(base, base + 8)
        self.calls = 0
        try:
            uc.emu_start(base, base + 8, count=0)
        except Exception:
            return False
        return self.calls == 1 and uc.reg_read(A.UC_ARM64_REG_PC) == base + 8


@functools.lru_cache(maxsize=1)
def _probe() -> _Probe:
    return _Probe()


_known: dict[str, bool] | None = None


def _known_file() -> Any:
    import unicorn
    from ..toolchain import cache_root
    return cache_root() / f"unicorn-{unicorn.__version__}-sysregs.txt"


def unicorn_implements(key: tuple[int, int, int, int, int], is_write: bool) -> bool:
    """Whether this Unicorn build implements MRS (MSR) of the register: a
    hook that returns 1 then lets the block go on to the next instruction;
    for an unknown register Unicorn ends the block with PC still on the
    access (it would raise UNDEF there), so the access comes round again.
    Probed once per Unicorn version (a probe costs ~2 ms; the answers are
    kept next to the build cache)."""
    global _known
    name = ",".join(map(str, key)) + (",w" if is_write else ",r")
    if _known is None:
        _known = {}
        try:
            for line in _known_file().read_text().split():
                k, _, v = line.rpartition("=")
                _known[k] = v == "1"
        except (OSError, ValueError):
            pass
    if name not in _known:
        _known[name] = _probe().implements(key, is_write)
        try:
            f = _known_file()
            f.parent.mkdir(parents=True, exist_ok=True)
            with open(f, "a") as out:
                out.write(f"{name}={int(_known[name])}\n")
        except OSError:
            pass
    return _known[name]


class SysRegTable(dict):
    """The trapped system registers; tells the engine about new keys."""

    def __init__(self, on_add: Callable[[tuple], None]):
        super().__init__()
        self._on_add = on_add

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self._on_add(key)

    def update(self, *args, **kw) -> None:       # type: ignore[override]
        for k, v in dict(*args, **kw).items():
            self[k] = v


# A system register the board emulates: key (op0, op1, CRn, CRm, op2).
SysRegKey = tuple[int, int, int, int, int]
SysRegRead = Callable[["Aarch64Cpu"], int]
SysRegWrite = Callable[["Aarch64Cpu", int], None]


class Aarch64Cpu(VCpu):
    arch = "aarch64"
    big_endian = False
    interrupt_enable_bit = (A.UC_ARM64_REG_PSTATE, PSTATE_I, 0)

    def __init__(self, index: int, services: Any, mpidr: int):
        super().__init__(index, services)
        self.mpidr = mpidr
        uc = self.uc
        for reg, bit in ((SCR_EL3, 1 << 10), (HCR_EL2, 1 << 31)):
            uc.reg_write(A.UC_ARM64_REG_CP_REG, reg + (uc.reg_read(A.UC_ARM64_REG_CP_REG, reg) | bit,))
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        # MRS/MSR of the registers in this table trap to Python; the engine
        # keeps the others (ELR, SPSR, TPIDR...) away from it where it can.
        self.engine.trap_sysregs(self._on_mrs, self._on_msr)
        self.sysregs = SysRegTable(self._emulate_sysreg)

    def _emulate_sysreg(self, key: tuple[int, int, int, int, int]) -> None:
        flags = (SR_KNOWN_READ if unicorn_implements(key, False) else 0) \
            | (SR_KNOWN_WRITE if unicorn_implements(key, True) else 0) \
            | (SR_COUNTER if key in COUNTER_REGS else 0)
        self.engine.emulate_sysreg(key, flags)

    def _create_uc(self) -> Uc:
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.ctl_set_tcg_buffer_size(4 << 20)
        return uc

    @property
    def pc(self) -> int:
        return self.regs.read(A.UC_ARM64_REG_PC)

    @pc.setter
    def pc(self, value: int) -> None:
        self.regs.write(A.UC_ARM64_REG_PC, value)

    def x(self, n: int) -> int:
        return self.regs.read(_XREG[n]) if n < 31 else 0

    def set_x(self, n: int, value: int) -> None:
        if n < 31:                                   # 31 is XZR
            self.regs.write(_XREG[n], value)

    @property
    def pstate(self) -> int:
        return self.regs.read(A.UC_ARM64_REG_PSTATE)

    # ---- system registers ----------------------------------------------------------
    def _on_mrs(self, reg: int, cp: Any) -> int:
        entry = self.sysregs.get((cp.op0, cp.op1, cp.crn, cp.crm, cp.op2))
        if entry is None or entry[0] is None:
            return 0
        value = entry[0](self)
        if reg != A.UC_ARM64_REG_XZR:
            self.regs.write(reg, value)
        return 1

    def _on_msr(self, reg: int, cp: Any) -> int:
        entry = self.sysregs.get((cp.op0, cp.op1, cp.crn, cp.crm, cp.op2))
        if entry is None or entry[1] is None:
            return 0
        entry[1](self, cp.val)
        return 1

    # ---- exceptions ------------------------------------------------------------------
    # ---- IRQ and FIQ inputs (the GIC signals Group 0 as FIQ, as QEMU does) ----------
    fiq_line = False

    def set_fiq_line(self, level: bool) -> None:
        if level == self.fiq_line:
            return
        self.fiq_line = level
        if level and self.state is CpuState.HALTED:
            self.state = CpuState.RUNNING
        self.update_delivery_watch()

    def external_pending(self) -> bool:
        return self.irq_line or self.fiq_line

    def interrupts_enabled(self) -> bool:
        """Whether a pending line can be taken now (FIQ: PSTATE.F, IRQ: PSTATE.I)."""
        p = self.pstate
        return (self.fiq_line and not p & PSTATE_F) or (self.irq_line and not p & PSTATE_I)

    def watch_enable_bits(self) -> tuple[int, int] | None:
        if self.irq_line and self.fiq_line:
            return (0, 0)                      # either may unmask: ask Python every block
        return (PSTATE_F, 0) if self.fiq_line else (PSTATE_I, 0)

    def _enter(self, offset: int, ret: int, esr: int | None = None, far: int | None = None) -> None:
        """Exception entry to EL1 (AArch64 only; guests run at EL1 or EL0)."""
        uc = self.uc
        pstate = self.pstate
        el = (pstate >> 2) & 3
        if el == 0:
            base = 0x400
        elif pstate & 1:
            base = 0x200
        else:
            base = 0x000
        if esr is not None:
            uc.reg_write(A.UC_ARM64_REG_ESR_EL1, esr)
        if far is not None:
            uc.reg_write(A.UC_ARM64_REG_FAR_EL1, far)
        uc.reg_write(A.UC_ARM64_REG_ELR_EL1, ret)
        uc.reg_write(A.UC_ARM64_REG_CP_REG, SPSR_EL1 + (pstate & 0xFFFF_FFFF,))
        # Bank the stack pointer as exception entry does: SP_EL0 -> SP_EL1.
        if not pstate & 1 or el == 0:
            uc.reg_write(A.UC_ARM64_REG_SP_EL0, uc.reg_read(A.UC_ARM64_REG_SP))
            uc.reg_write(A.UC_ARM64_REG_PSTATE, PSTATE_EL1H)
            uc.reg_write(A.UC_ARM64_REG_SP, uc.reg_read(A.UC_ARM64_REG_SP_EL1))
        else:
            uc.reg_write(A.UC_ARM64_REG_PSTATE, PSTATE_EL1H)
        self.pc = uc.reg_read(A.UC_ARM64_REG_VBAR_EL1) + base + offset
        self.svc.trace.log(self.index, "exception", f"vector +{base + offset:#x}", elr=ret,
                           esr=esr if esr is not None else 0)

    def _lower(self) -> bool:
        return (self.pstate >> 2) & 3 == 0

    def deliver_external(self) -> None:
        if self.fiq_line and not self.pstate & PSTATE_F:
            self._enter(0x100, self.pc)        # FIQ first: it is the higher class
        else:
            self._enter(0x80, self.pc)

    def deliver_sync(self, ec: int, iss: int, ret: int, far: int | None = None) -> None:
        self._enter(0x00, ret, (ec << 26) | ESR_IL | iss, far)

    def deliver_fault(self, pc: int, addr: int, size: int, is_write: bool, is_fetch: bool) -> None:
        """Synchronous external abort, as QEMU raises for an access nothing decodes."""
        lower = self._lower()
        if is_fetch:
            self.deliver_sync(EC_IABT_LOWER if lower else EC_IABT_SAME, FSC_SYNC_EXTERNAL, pc, addr)
            return
        # QEMU 7.2 reports no instruction syndrome (ISV = 0) for this abort.
        iss = FSC_SYNC_EXTERNAL | (int(is_write) << 6)
        self.deliver_sync(EC_DABT_LOWER if lower else EC_DABT_SAME, iss, pc, addr)

    def _on_intr(self, uc: Uc, intno: int, _: Any) -> None:
        pc = self.pc
        # The block ends here: PC is on the instruction for UDEF, BKPT and
        # data aborts (it counts as executed), past it for SVC and SMC; a
        # prefetch abort executed nothing.
        self.engine.cut(pc if intno in (EXCP_SWI, EXCP_SMC, EXCP_PREFETCH_ABORT) else pc + 4)
        if intno == EXCP_UDEF:
            insn = self.read_insn(pc)
            if decode.a64_is_hvc(insn) and not self._lower():
                self.regs.write_pc_in_hook(A.UC_ARM64_REG_PC, pc + 4)   # HVC returns after it
                self.svc.firmware_call(self)
                return
            self.svc.trace.guest_error(self.index, "undefined instruction", pc=pc, insn=insn)
            self._sync(lambda: self.deliver_sync(EC_UNKNOWN, 0, pc))
            return
        if intno == EXCP_SWI:
            imm = (self.read_insn(pc - 4) >> 5) & 0xFFFF
            self._sync(lambda: self.deliver_sync(EC_SVC64, imm, pc))
            return
        if intno == EXCP_BKPT:
            imm = (self.read_insn(pc) >> 5) & 0xFFFF
            self._sync(lambda: self.deliver_sync(EC_BRK, imm, pc))
            return
        if intno in (EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT):
            self._abort(intno == EXCP_PREFETCH_ABORT, pc)
            return
        if intno == EXCP_SMC:
            # The PSCI conduit is hvc; with no EL3 an SMC is UNDEF (as QEMU's virt).
            self.svc.trace.guest_error(self.index, "smc without EL3", pc=pc - 4)
            self._sync(lambda: self.deliver_sync(EC_UNKNOWN, 0, pc - 4))
            return
        self.svc.trace.guest_error(self.index, "unhandled exception", intno=intno, pc=pc)
        self._sync(lambda: self.deliver_sync(EC_UNKNOWN, 0, pc))

    def _abort(self, is_fetch: bool, pc: int) -> None:
        """An abort Unicorn's MMU code raised itself (unassigned addresses
        reach _on_unmapped instead): with the MMU off, an address beyond
        the physical address range, which QEMU reports as an address size
        fault, level 0. A fetch abort executes nothing, so no instruction
        boundary would come to stop at: Unicorn is stopped here."""
        lower = self._lower()
        if is_fetch:
            ec, iss, far = EC_IABT_LOWER if lower else EC_IABT_SAME, FSC_ADDRESS_SIZE_L0, pc
            self.uc.emu_stop()
        else:
            ec = EC_DABT_LOWER if lower else EC_DABT_SAME
            acc = decode.a64_load_store_address(self.read_insn(pc), self._xreg_or_sp)
            if acc is None:
                iss, far = FSC_ADDRESS_SIZE_L0 | ISS_FNV, 0
            else:
                far, store = acc
                iss = FSC_ADDRESS_SIZE_L0 | (ISS_WNR if store else 0)
        self.svc.trace.guest_error(self.index, "address size fault", pc=pc, addr=far, fetch=is_fetch)
        self._sync(lambda: self.deliver_sync(ec, iss, pc, far))

    def _xreg_or_sp(self, n: int) -> int:
        return self.uc.reg_read(A.UC_ARM64_REG_SP) if n == 31 else self.x(n)

    def _sync(self, action: Callable[[], None]) -> None:
        self.pending_sync = action
        self.request_stop()

    def _after_run(self) -> bool:
        # WFI ends emu_start with PC after it, at the end of its block (no
        # later block started): halt until an interrupt arrives.
        if self._fault is None and self.pending_sync is None and self.state is CpuState.RUNNING:
            pc = self.pc
            if self.engine.rec.block_end == pc and self.svc.ram.contains(pc - 4, 4) \
                    and decode.a64_is_wfi(self.read_insn(pc - 4)) and not self.wants_interrupt():
                self.state = CpuState.HALTED
                self.svc.trace.log(self.index, "cpu", "wfi")
        return super()._after_run()

    def registers(self) -> dict[str, int]:
        r = {f"x{n}": self.x(n) for n in range(31)}
        r.update(pc=self.pc, sp=self.uc.reg_read(A.UC_ARM64_REG_SP), pstate=self.pstate)
        return r

    # ---- migration -------------------------------------------------------------------------
    _SYSREGS = (("elr_el1", A.UC_ARM64_REG_ELR_EL1), ("esr_el1", A.UC_ARM64_REG_ESR_EL1),
                ("far_el1", A.UC_ARM64_REG_FAR_EL1), ("vbar_el1", A.UC_ARM64_REG_VBAR_EL1),
                ("tpidr_el1", A.UC_ARM64_REG_TPIDR_EL1), ("tpidr_el0", A.UC_ARM64_REG_TPIDR_EL0),
                ("cpacr_el1", A.UC_ARM64_REG_CPACR_EL1), ("fpcr", A.UC_ARM64_REG_FPCR),
                ("fpsr", A.UC_ARM64_REG_FPSR), ("sp_el0", A.UC_ARM64_REG_SP_EL0),
                ("sp_el1", A.UC_ARM64_REG_SP_EL1))

    def save_state(self) -> dict:
        """Section "cpu<N>" as AARCH64_CPU_STATE declares it."""
        return AARCH64_CPU_STATE.save(self, f"cpu{self.index}")

    def decode_state(self, sections: dict) -> dict:
        """Validate section "cpu<N>" completely; touches nothing."""
        return AARCH64_CPU_STATE.decode(self, sections, f"cpu{self.index}")

    def apply_state(self, plan: dict) -> None:
        """Write what decode_state accepted."""
        AARCH64_CPU_STATE.apply(self, plan)

    def load_state(self, sections: dict) -> None:
        """Validate the whole section, then write the registers."""
        self.apply_state(self.decode_state(sections))

    def start(self, entry: int, x0: int) -> None:
        """PSCI CPU_ON / reset: EL1h, DAIF masked, MMU off, x0 = context."""
        uc = self.uc
        uc.reg_write(A.UC_ARM64_REG_PSTATE, PSTATE_EL1H)
        self.set_x(0, x0)
        self.pc = entry
        self.state = CpuState.RUNNING


# ---- migrated state: section "cpu<N>" v1 ------------------------------------------------------
def _get_sysregs(cpu: Aarch64Cpu) -> dict[str, int]:
    uc = cpu.uc
    sysregs = {name: uc.reg_read(reg) for name, reg in cpu._SYSREGS}
    sysregs["spsr_el1"] = uc.reg_read(A.UC_ARM64_REG_CP_REG, SPSR_EL1)
    return sysregs


def _put_sysregs(cpu: Aarch64Cpu, sysregs: dict[str, int]) -> None:
    """Before the core registers: SP is written under the restored PSTATE."""
    uc = cpu.uc
    for name, reg in cpu._SYSREGS:
        uc.reg_write(reg, sysregs[name])
    uc.reg_write(A.UC_ARM64_REG_CP_REG, SPSR_EL1 + (sysregs["spsr_el1"],))


def _put_regs(cpu: Aarch64Cpu, r: dict[str, int]) -> None:
    uc = cpu.uc
    uc.reg_write(A.UC_ARM64_REG_PSTATE, r["pstate"])
    uc.reg_write(A.UC_ARM64_REG_SP, r["sp"])
    for n in range(31):
        cpu.set_x(n, r[f"x{n}"])
    cpu.pc = r["pc"]


def _put_state(cpu: Aarch64Cpu, state: str) -> None:
    cpu.state = CpuState(state)


def _checked_only(cpu: Aarch64Cpu, value: object) -> None:
    """Saved for a reader's benefit; the machine's configuration decides it."""


# PSTATE bits a snapshot may hold: NZCV, DIT/TCO/UAO/PAN/SS/IL, SSBS/BTYPE, DAIF,
# M[3:2] (EL) and M[0] (SP select); M[4] (AArch32) and M[1] are not states of
# this CPU, nor EL2/EL3 (the guest runs at EL1/EL0).
PSTATE_SNAPSHOT_MASK = 0xF3F0_1FCD


def _check(cpu: Aarch64Cpu, values: dict) -> None:
    name = f"cpu{cpu.index}"
    pstate = values["regs"]["pstate"]
    if pstate & ~PSTATE_SNAPSHOT_MASK or (pstate >> 2) & 3 > 1:
        raise StateError(f"snapshot field {name}.regs.pstate {pstate:#x} is not an EL0/EL1 "
                         f"AArch64 state")
    if values["mpidr"] != cpu.mpidr:
        raise StateError(f"snapshot field {name}.mpidr {values['mpidr']:#x} is not this vCPU's "
                         f"({cpu.mpidr:#x})")


AARCH64_CPU_STATE = VMStateDescription("cpu", 1, (
    Field("arch", Str(("aarch64",)), put_fn=_checked_only),
    Field("sysregs", Struct(tuple(Field(name, U64) for name, _ in Aarch64Cpu._SYSREGS)
                            + (Field("spsr_el1", U64),)),
          get_fn=_get_sysregs, put_fn=_put_sysregs),
    Field("regs", Struct(tuple(Field(f"x{n}", U64) for n in range(31))
                         + (Field("pc", U64), Field("sp", U64), Field("pstate", U64))),
          get_fn=Aarch64Cpu.registers, put_fn=_put_regs),
    Field("state", Str(tuple(s.value for s in CpuState)), get_fn=lambda c: c.state.value,
          put_fn=_put_state),
    Field("mpidr", U64, put_fn=_checked_only),
), check=_check)

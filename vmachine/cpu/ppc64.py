"""64-bit PowerPC vCPU (pseries guest) on Unicorn.

Every Unicorn quirk for PPC64 system code lives here
(see ../shared/unicorn-notes.md):
  * default CPU model (POWER10); MSR[HV] set through a saved context, so real
    mode instruction fetch works;
  * `sc 1` reaches UC_HOOK_INTR (8) with NIP past the sc: the board's
    hypercall table answers in r3.. and execution resumes;
  * SRR0/SRR1/DAR/DSISR are not reachable by reg_write: short mtspr/mfspr
    stubs on a page outside guest RAM write and read them;
  * nothing is vectored: program checks (illegal instruction = HV_EMU 96 on
    this Unicorn, traps = 6), `sc 0`, DSI/ISI for unassigned addresses,
    external (0x500) and decrementer (0x900) interrupts are delivered here the
    way QEMU's powerpc_excp does for a pseries guest;
  * the timebase and decrementer are virtual: mftb/mfspr TB/DEC and mtspr DEC
    are trapped with exact-address code hooks, in the loaded images and in
    every block Unicorn translates later (code the guest copied or wrote:
    slot.c checks each new block and has it translated again with the
    hooks); a time-base read is answered in slot.c itself;
  * the guest runs with MSR[HV] set on Unicorn, but QEMU's pseries guest runs
    in supervisor state: every SPR whose mfspr/mtspr behaves differently
    there (hypervisor SPRs raise a privileged-SPR program check; PURR, SPURR,
    TBU40 read the timebase) is trapped the same way (SPR_TRAPS);
  * Unicorn never sets up the timebase state (env->tb_env is NULL) that
    QEMU's helpers for PURR, SPURR, HDEC, VTB and TBU40 dereference: a zeroed
    one is installed through the saved context, so an untrapped access
    (code the guest wrote at run time) reads 0 instead of killing the process.
"""
from __future__ import annotations

import ctypes
import struct
from typing import Any

from unicorn import (UC_ARCH_PPC, UC_HOOK_INTR, UC_MODE_BIG_ENDIAN,
                     UC_MODE_PPC64, UC_PROT_ALL, Uc)
from unicorn import ppc_const as P

from . import decode
from ..state import Array, Field, Str, Struct, U32, U64, VMStateDescription
from .base import CpuState, VCpu

MSR_SF = 1 << 63
MSR_HV = 1 << 60
MSR_EE = 1 << 15
MSR_PR = 1 << 14
MSR_ME = 1 << 12
MSR_IR = 1 << 5
MSR_DR = 1 << 4
MSR_RI = 1 << 1
MSR_LE = 1

# SRR1 bits the interrupt writes (33:36, 42:47) are cleared from the MSR copy.
SRR1_MSR_MASK = ~0x783F0000 & 0xFFFF_FFFF_FFFF_FFFF
SRR1_ILLEGAL = 0x80000
SRR1_PRIV = 0x40000
SRR1_TRAP = 0x20000
SRR1_ISI_NOPAGE = 0x40000000     # ISI: no translation / unassigned
DSISR_NOPAGE = 0x40000000
DSISR_STORE = 0x02000000

VEC_DSI, VEC_ISI, VEC_EXTERNAL, VEC_ALIGN = 0x300, 0x400, 0x500, 0x600
VEC_PROGRAM, VEC_FPU, VEC_DEC, VEC_SYSCALL = 0x700, 0x800, 0x900, 0xC00

# QEMU exception numbers seen in UC_HOOK_INTR
EXCP_DSI, EXCP_ISI, EXCP_ALIGN, EXCP_PROGRAM, EXCP_FPU, EXCP_SYSCALL = 2, 3, 5, 6, 7, 8
EXCP_VPU, EXCP_VSXU, EXCP_FU, EXCP_HV_EMU = 73, 74, 95, 96
VEC_FU = 0xF60                   # facility unavailable (FSCR[IC] set by Unicorn)

TB_FREQ = 512_000_000            # QEMU pseries timebase (cpu node timebase-frequency)

# Register-access stubs, outside guest RAM (and outside every MMIO window):
# each moves two SPRs to/from r11 and r12.
STUB_BASE = 0x0007_FF00_0000_0000
SPR_DSISR, SPR_DAR, SPR_SRR0, SPR_SRR1 = 18, 19, 26, 27
SPR_SPRG0, SPR_SPRG1, SPR_SPRG2, SPR_SPRG3 = 272, 273, 274, 275

# What mfspr/mtspr of an SPR does in a QEMU 7.2 pseries guest (supervisor
# state, MSR[HV] = 0), where Unicorn (POWER10 with MSR[HV] set) differs or
# crashes. Measured on QEMU with a guest running mfspr and mtspr of every SPR
# 0..1023 (see guests/ppc64/sprs.c and tests/test_sprs.py). SPRs not listed
# behave the same on both, or raise the same interrupt (TM SPRs 128-131:
# facility unavailable).
#   "tb"/"tbu": the virtual timebase (64 bits / upper 32 bits)
#   "raw": the timebase without the guest's TBL/TBU writes (PURR, SPURR, TBU40)
#   "wtbl"/"wtbu": mtspr TBL/TBU (284/285) set that half of the timebase; QEMU
#     lets a supervisor-state guest do it, PURR/SPURR/DEC do not move
#   "dec": the virtual decrementer
#   "priv": program check, privileged SPR (SRR1 0x40000)
#   "nop": nothing happens (an SPR this CPU does not have)
#   an int: mfspr reads that constant
_PRIV_MF = (0, 4, 5, 6, 152, 180, 186, 187, 188, 190, 286, 304, 305, 306, 307, 310,
            313, 314, 315, 316, 317, 318, 319, 336, 337, 338, 349, 464, 816, 851, 921, 1008)
_PRIV_MT = (0, 136, 176, 180, 186, 187, 188, 190, 259, 268, 269, 286, 287, 304, 305, 306,
            307, 308, 309, 310, 313, 314, 315, 316, 317, 318, 319, 336, 337, 338, 349, 446,
            464, 816, 848, 849, 851, 921, 1008, 1023)
SPR_SPURR, SPR_PURR, SPR_HDEC, SPR_VTB, SPR_TBU40 = 308, 309, 310, 351, 849
SPR_WR_TBL, SPR_WR_TBU = 284, 285
SPR_PVR, SPR_MMCR0 = 287, 795
PVR_POWER9_DD20 = 0x004E1200     # QEMU 7.2 pseries default CPU (the device tree's cpu-version)
MMCR0_FC = 0x80000000            # MMCR0 at reset on QEMU: counters frozen
SPR_TRAPS: dict[tuple[str, int], str] = {
    **{("mfspr", n): "priv" for n in _PRIV_MF},
    **{("mtspr", n): "priv" for n in _PRIV_MT},
    ("mfspr", decode.SPR_DEC): "dec", ("mtspr", decode.SPR_DEC): "dec",
    ("mfspr", decode.SPR_TBL_R): "tb", ("mfspr", decode.SPR_TBU_R): "tbu",
    ("mfspr", SPR_WR_TBL): "tb", ("mfspr", SPR_WR_TBU): "tbu",
    ("mtspr", SPR_WR_TBL): "wtbl", ("mtspr", SPR_WR_TBU): "wtbu",
    ("mfspr", SPR_PURR): "raw", ("mfspr", SPR_SPURR): "raw", ("mfspr", SPR_TBU40): "raw",
    ("mfspr", SPR_VTB): "nop", ("mtspr", SPR_VTB): "nop", ("mfspr", 855): "nop",
    ("mfspr", 176): 0, ("mfspr", SPR_PVR): PVR_POWER9_DD20,
}


# (0 = mfspr | 1 = mtspr, SPR) of every trapped access, for slot.c's scan of new blocks
_SPR_TRAP_KEYS = tuple(sorted((0 if kind == "mfspr" else 1, spr) for kind, spr in SPR_TRAPS))


def _spr_field(spr: int) -> int:
    return ((spr & 0x1F) << 5 | spr >> 5) << 11


def _mfspr(rt: int, spr: int) -> int:
    return 31 << 26 | rt << 21 | _spr_field(spr) | 339 << 1


def _mtspr(spr: int, rs: int) -> int:
    return 31 << 26 | rs << 21 | _spr_field(spr) | 467 << 1


_STUB_PAIRS = {"srr": (SPR_SRR0, SPR_SRR1), "dar": (SPR_DAR, SPR_DSISR),
               "sprg01": (SPR_SPRG0, SPR_SPRG1), "sprg23": (SPR_SPRG2, SPR_SPRG3)}
_STUBS: dict[str, tuple[int, tuple[int, int]]] = {}
for _k, (_name, (_a, _b)) in enumerate(sorted(_STUB_PAIRS.items())):
    _STUBS["get_" + _name] = (0x20 * _k, (_mfspr(11, _a), _mfspr(12, _b)))
    _STUBS["set_" + _name] = (0x20 * _k + 0x10, (_mtspr(_a, 11), _mtspr(_b, 12)))
# Reset values Unicorn does not give: MMCR0 (and its user alias UMMCR0) = FC.
_STUBS["set_mmcr0"] = (0x20 * len(_STUB_PAIRS), (_mtspr(SPR_MMCR0, 11), 0x60000000))


class Ppc64Cpu(VCpu):
    arch = "ppc64"
    big_endian = True
    interrupt_enable_bit = (P.UC_PPC_REG_MSR, MSR_EE, MSR_EE)

    def __init__(self, index: int, services: Any):
        super().__init__(index, services)
        uc = self.uc
        uc.mem_map(STUB_BASE, 0x1000, UC_PROT_ALL)
        for off, words in _STUBS.values():
            uc.mem_write(STUB_BASE + off, struct.pack(">2I", *words))
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        # Decrementer: value written and the timebase at that moment.
        self.dec_written = 0xFFFF_FFFF
        self.dec_tb = 0
        self._dec_timer = None
        # What the guest's TBL/TBU writes added to the timebase (mod 2**64).
        self.tb_offset = 0
        self.reset_msr(MSR_HV)
        self._run_stub("set_mmcr0", MMCR0_FC, 0)    # (also: Unicorn's first block, see scan_new_code)
        ram = services.ram
        self.engine.on_new_code = self._on_new_code
        self.engine.scan_new_code(ram.host_addr, ram.base, ram.size, _SPR_TRAP_KEYS, P.UC_PPC_REG_0)

    @property
    def tb_offset(self) -> int:
        return self._tb_offset

    @tb_offset.setter
    def tb_offset(self, value: int) -> None:
        self._tb_offset = value & 0xFFFF_FFFF_FFFF_FFFF
        self.engine.set_tb_offset(self._tb_offset)

    def _on_new_code(self, begin: int, end: int) -> None:
        """A block Unicorn translated holds SPR accesses without hooks."""
        ram = self.svc.ram
        if ram.base <= begin and end <= ram.end:
            o = begin - ram.base
            self.trap_spr_accesses(bytes(ram.buf[o:o + end - begin]), begin)

    # ---- Unicorn set-up -------------------------------------------------------
    def _create_uc(self) -> Uc:
        uc = Uc(UC_ARCH_PPC, UC_MODE_PPC64 | UC_MODE_BIG_ENDIAN)   # default model: POWER10
        probe = MSR_SF | 0x1002
        uc.reg_write(P.UC_PPC_REG_MSR, probe)
        ctx = uc.context_save()
        offset = bytes(ctx).index(struct.pack("<Q", probe))        # host byte order
        ctypes.memmove(ctx.context.value + offset, struct.pack("<Q", probe | MSR_HV), 8)
        uc.context_restore(ctx)
        uc.reg_write(P.UC_PPC_REG_MSR, probe | MSR_HV)              # recompute hflags
        self._install_tb_env(uc)
        return uc

    def _install_tb_env(self, uc: Uc) -> None:
        """Give Unicorn the timebase state it never allocates: QEMU's
        helpers for PURR/SPURR/HDEC/VTB/TBU40 dereference env->tb_env, NULL
        in Unicorn (SIGSEGV). A zeroed ppc_tb_t (frequency 0, no timers)
        makes them read 0 and store into offsets nobody reads. tb_env is
        the pointer after FPSCR in CPUPPCState (then dcr_env, NULL too, and
        the two cache line sizes); FPSCR is found by a distinctive value."""
        self._tb_env = None
        probe = 0xAAAA5555
        uc.reg_write(P.UC_PPC_REG_FPSCR, probe)
        ctx = uc.context_save()
        blob = bytes(ctx)
        uc.reg_write(P.UC_PPC_REG_FPSCR, 0)
        hits = [i for i in range(0, len(blob) - 32, 8)
                if blob[i:i + 8] == struct.pack("<Q", probe) and blob[i + 8:i + 24] == bytes(16)]
        if len(hits) != 1:
            return                          # another layout: only the address traps protect
        self._tb_env = ctypes.create_string_buffer(512)
        ctypes.memmove(ctx.context.value + hits[0] + 8,
                       struct.pack("<Q", ctypes.addressof(self._tb_env)), 8)
        ctypes.memmove(ctx.context.value + hits[0], bytes(8), 8)      # FPSCR back to 0
        uc.context_restore(ctx)

    def reset_msr(self, msr: int) -> None:
        """Write MSR keeping HV (our real-mode enabler, not guest-visible state)."""
        self.uc.reg_write(P.UC_PPC_REG_MSR, msr | MSR_HV)

    @property
    def pc(self) -> int:
        return self.regs.read(P.UC_PPC_REG_PC)

    @pc.setter
    def pc(self, value: int) -> None:
        self.regs.write(P.UC_PPC_REG_PC, value)

    @property
    def msr(self) -> int:
        return self.regs.read(P.UC_PPC_REG_MSR)

    def gpr(self, n: int) -> int:
        return self.regs.read(P.UC_PPC_REG_0 + n)

    def gprs(self, first: int, count: int) -> list[int]:
        return self.regs.read_many(tuple(P.UC_PPC_REG_0 + first + i for i in range(count)))

    def set_gpr(self, n: int, value: int) -> None:
        self.regs.write(P.UC_PPC_REG_0 + n, value)

    # ---- SPRs through stubs -----------------------------------------------------
    def _run_stub(self, name: str, a: int | None = None, b: int | None = None) -> tuple[int, int]:
        off, _ = _STUBS[name]
        saved = (self.gpr(11), self.gpr(12), self.pc)
        if a is not None:
            self.set_gpr(11, a)
            self.set_gpr(12, b or 0)
        self.engine.run_uncounted(STUB_BASE + off, STUB_BASE + off + 8, 2)
        out = (self.gpr(11), self.gpr(12))
        self.set_gpr(11, saved[0])
        self.set_gpr(12, saved[1])
        self.pc = saved[2]
        return out

    def get_srr(self) -> tuple[int, int]:
        return self._run_stub("get_srr")

    def set_srr(self, srr0: int, srr1: int) -> None:
        self._run_stub("set_srr", srr0, srr1)

    def get_dar(self) -> tuple[int, int]:
        return self._run_stub("get_dar")

    def get_spr_pair(self, name: str) -> tuple[int, int]:
        return self._run_stub("get_" + name)

    def set_spr_pair(self, name: str, a: int, b: int) -> None:
        self._run_stub("set_" + name, a, b)

    # ---- interrupts ---------------------------------------------------------------
    def interrupts_enabled(self) -> bool:
        return bool(self.msr & MSR_EE)

    def _vector(self, vector: int, srr0: int, srr1_bits: int = 0,
                dar: int | None = None, dsisr: int = 0) -> None:
        """Interrupt entry as QEMU's powerpc_excp for a pseries (vhyp) guest:
        SRR0/SRR1 saved, MSR := SF | ME (IR, DR, EE, PR, RI cleared), PC := vector."""
        msr = self.msr
        if dar is not None:
            self._run_stub("set_dar", dar, dsisr)
        # SRR1 keeps MSR[HV]: it is what lets rfid return to real-mode code on Unicorn.
        self.set_srr(srr0, (msr & SRR1_MSR_MASK) | srr1_bits)
        self.reset_msr(MSR_SF | (msr & MSR_ME))
        self.pc = vector
        self.svc.trace.log(self.index, "exception", f"vector {vector:#x}", srr0=srr0,
                           srr1_bits=srr1_bits)

    def deliver_external(self) -> None:
        self._vector(VEC_EXTERNAL, self.pc)

    def deliver_timer(self) -> None:
        self._vector(VEC_DEC, self.pc)

    # QEMU 7.2 pseries under TCG: data accesses to unassigned physical addresses
    # read 0 and drop stores (no DSI, no machine check); fetches raise ISI.
    unassigned_data_is_fault = False
    # Real addresses are 60 bits (EA bits 0:3 ignored); Unicorn cannot serve
    # an MMIO page at the very top (its retry fails with UC_ERR_MAP), so a
    # data access there (e.g. to EA -4) is emulated by decoding it.
    UNMAPPABLE_PAGE = 0x0FFF_FFFF_FFFF_F000

    def deliver_fault(self, pc: int, addr: int, size: int, is_write: bool, is_fetch: bool) -> None:
        if is_fetch:
            self._vector(VEC_ISI, pc, SRR1_ISI_NOPAGE)
        elif not self.unassigned_data_is_fault:
            self._unassigned_data_access(pc, addr, is_write)
        else:
            self._vector(VEC_DSI, pc, 0, dar=addr, dsisr=DSISR_NOPAGE | (DSISR_STORE if is_write else 0))

    def _unassigned_data_access(self, pc: int, addr: int, is_write: bool) -> None:
        """As QEMU: the load reads 0, the store is dropped (update forms
        still write RA); anything else cannot be emulated here."""
        insn = self.read_insn(pc)
        ls = decode.ppc_simple_load_store(insn)
        if ls is None:
            self.cannot_emulate(f"{'store to' if is_write else 'load from'} unassigned "
                                f"address {addr:#x}")
            return
        is_load, target, is_fp, update = ls           # (logged as "unassigned access")
        if update:
            ea = decode.ppc_effective_address(insn, self.gpr)
            self.set_gpr((insn >> 16) & 31, ea or 0)
        if is_load:
            if is_fp:
                self.uc.reg_write(P.UC_PPC_REG_FPR0 + target, 0)
            else:
                self.set_gpr(target, 0)
        self.pc = pc + 4

    def _on_intr(self, uc: Uc, intno: int, _: Any) -> None:
        pc = self.pc                         # Unicorn: NIP is past the faulting insn
        self.engine.cut(pc)                  # (which counts as executed)
        if intno == EXCP_SYSCALL:
            level = decode.ppc_sc_level(self.read_insn(pc - 4))
            if level == 1 and not self.msr & MSR_PR:
                self.svc.firmware_call(self)
                return
            self._sync(lambda: self._vector(VEC_SYSCALL, pc))
            return
        if intno in (EXCP_PROGRAM, EXCP_HV_EMU):
            insn = self.read_insn(pc - 4)
            if decode.ppc_is_trap(insn):
                bits = SRR1_TRAP
            elif intno == EXCP_HV_EMU and decode.ppc_spr_access(insn) is not None:
                bits = SRR1_PRIV             # QEMU 7.2 pseries: SPR 0/4/5/6 (INVAL_SPR)
            elif self.msr & MSR_PR and intno == EXCP_PROGRAM:
                bits = SRR1_PRIV
            else:
                bits = SRR1_ILLEGAL
            self.svc.trace.guest_error(self.index, "program check", pc=pc - 4, insn=insn,
                                       reason=bits)
            self._sync(lambda: self._vector(VEC_PROGRAM, pc - 4, bits))
            return
        if intno in (EXCP_FPU, EXCP_VPU, EXCP_VSXU, EXCP_FU):
            vec = {EXCP_FPU: VEC_FPU, EXCP_VPU: 0xF20, EXCP_VSXU: 0xF40, EXCP_FU: VEC_FU}[intno]
            self._sync(lambda: self._vector(vec, pc - 4))
            return
        if intno == EXCP_ALIGN:
            insn = self.read_insn(pc - 4)
            ea = decode.ppc_effective_address(insn, self.gpr) or 0
            self.svc.trace.guest_error(self.index, "alignment interrupt", pc=pc - 4, ea=ea)
            # QEMU: DAR = EA; DSISR gets the RT/RA fields of the instruction.
            dsisr = self.get_dar()[1] | ((insn & 0x03FF0000) >> 16)
            self._sync(lambda: self._vector(VEC_ALIGN, pc - 4, dar=ea, dsisr=dsisr))
            return
        self.svc.trace.guest_error(self.index, "unhandled exception", intno=intno, pc=pc)
        self._sync(lambda: self._vector(VEC_PROGRAM, pc - 4, SRR1_ILLEGAL))

    def _sync(self, action: Any) -> None:
        """Deliver a synchronous exception once Unicorn has stopped (stubs
        cannot run inside a hook)."""
        self.pending_sync = action
        self.request_stop()

    # ---- time: timebase and decrementer -------------------------------------------
    def timebase(self) -> int:
        return (self.raw_timebase() + self.tb_offset) & 0xFFFF_FFFF_FFFF_FFFF

    def raw_timebase(self) -> int:
        """The timebase as the virtual clock gives it (what PURR, SPURR and
        the decrementer follow), without the guest's TBL/TBU writes."""
        return self.svc.clock.read() * TB_FREQ // 1_000_000_000

    def write_timebase(self, value: int) -> None:
        self.tb_offset = (value - self.raw_timebase()) & 0xFFFF_FFFF_FFFF_FFFF

    def _tb_now(self) -> int:
        return self.svc.clock.peek() * TB_FREQ // 1_000_000_000

    def dec_value(self) -> int:
        return (self.dec_written - (self._tb_now() - self.dec_tb)) & 0xFFFF_FFFF

    def timer_pending(self) -> bool:
        # POWER9/10 decrementer is level: pending while DEC bit 0 (MSB) is set.
        return bool(self.dec_value() & 0x8000_0000) and self.state is not CpuState.STOPPED

    def write_dec(self, value: int) -> None:
        self.dec_written = value & 0xFFFF_FFFF
        self.dec_tb = self._tb_now()
        self._arm_dec()

    def _arm_dec(self) -> None:
        clock = self.svc.clock
        if self._dec_timer is not None:
            self._dec_timer.cancelled = True
            self._dec_timer = None
        if not self.dec_written & 0x8000_0000:
            fire_tb = self.dec_tb + self.dec_written + 1
            deadline = -(-fire_tb * 1_000_000_000 // TB_FREQ)
            self._dec_timer = clock.add_timer(deadline, self.update_delivery_watch)
        self.update_delivery_watch()

    def trap_timebase_accesses(self, code: bytes, base: int) -> None:
        """Trap the SPR accesses in `code`, loaded at `base`, that vmachine
        answers itself (SPR_TRAPS): time-base reads (mftb, mfspr TBL/TBU,
        PURR, SPURR, TBU40) and decrementer accesses come from the virtual
        clock (Unicorn's own timebase is not virtual, and its PURR/SPURR/HDEC
        helpers crash); hypervisor SPRs raise the program check a pseries
        guest gets on QEMU. The board calls this for the images it loads."""
        self.trap_spr_accesses(code, base)

    def trap_spr_accesses(self, code: bytes, base: int) -> None:
        for off in range(0, len(code) - 3, 4):
            insn = int.from_bytes(code[off:off + 4], "big")
            acc = decode.ppc_spr_access(insn)
            if acc is not None and (acc[0], acc[1]) in SPR_TRAPS:
                self.watch_address(base + off)

    def _on_watched(self, address: int) -> int:
        insn = self.read_insn(address)
        acc = decode.ppc_spr_access(insn)
        action = None if acc is None else SPR_TRAPS.get((acc[0], acc[1]))
        if action is None:
            return 0                          # the code there changed: let it run
        kind, spr, rt = acc
        if action == "priv":
            self.svc.trace.guest_error(self.index, "privileged spr", pc=address, insn=insn, spr=spr)
            self._sync(lambda: self._vector(VEC_PROGRAM, address, SRR1_PRIV))
            self.pc = address                 # the access itself never executes
            return address + 4
        if kind == "mfspr":
            if action == "dec":
                value = self.dec_value()
                value = value - (1 << 32) if value & 0x8000_0000 else value   # sign-extended
            elif action == "tbu":
                value = self.timebase() >> 32
            elif action == "tb":
                value = self.timebase()
            elif action == "raw":
                value = self.raw_timebase()
            elif isinstance(action, int):
                value = action
            else:
                value = None                  # "nop": RT unchanged
            if value is not None:
                self.set_gpr(rt, value)
        elif action == "dec":
            self.write_dec(self.gpr(rt))
        elif action == "wtbl":
            self.write_timebase(self.timebase() & ~0xFFFF_FFFF | self.gpr(rt) & 0xFFFF_FFFF)
        elif action == "wtbu":
            self.write_timebase((self.gpr(rt) & 0xFFFF_FFFF) << 32 | self.timebase() & 0xFFFF_FFFF)
        self.pc = address + 4
        return address + 4

    # ---- registers -------------------------------------------------------------------
    def registers(self) -> dict[str, int]:
        r = {f"r{n}": self.gpr(n) for n in range(32)}
        r.update(pc=self.pc, msr=self.msr & ~MSR_HV, lr=self.uc.reg_read(P.UC_PPC_REG_LR),
                 ctr=self.uc.reg_read(P.UC_PPC_REG_CTR), cr=self.uc.reg_read(P.UC_PPC_REG_CR),
                 xer=self.uc.reg_read(P.UC_PPC_REG_XER))
        return r

    # ---- migration -------------------------------------------------------------------------
    def save_state(self) -> dict:
        """Section "cpu<N>" as PPC64_CPU_STATE declares it."""
        return PPC64_CPU_STATE.save(self, f"cpu{self.index}")

    def decode_state(self, sections: dict) -> dict:
        """Validate section "cpu<N>" completely; touches nothing."""
        return PPC64_CPU_STATE.decode(self, sections, f"cpu{self.index}")

    def apply_state(self, plan: dict) -> None:
        """Write what decode_state accepted and re-arm the decrementer."""
        PPC64_CPU_STATE.apply(self, plan)

    def load_state(self, sections: dict) -> None:
        """Validate the whole section, then write the registers and re-arm the
        decrementer."""
        self.apply_state(self.decode_state(sections))

    def start(self, entry: int, r3: int, msr: int = MSR_SF | MSR_ME) -> None:
        """Start this CPU (RTAS start-cpu / reset): real mode, r3 as given."""
        self.reset_msr(msr)
        self.set_gpr(3, r3)
        self.pc = entry
        self.state = CpuState.RUNNING


# ---- migrated state: section "cpu<N>" v2 ------------------------------------------------------
_CORE_SPRS = (("lr", P.UC_PPC_REG_LR), ("ctr", P.UC_PPC_REG_CTR), ("cr", P.UC_PPC_REG_CR),
              ("xer", P.UC_PPC_REG_XER))


def _get_regs(cpu: Ppc64Cpu) -> dict[str, int]:
    """registers(), with MSR as Unicorn holds it (HV included)."""
    regs = cpu.registers()
    regs["msr"] = cpu.msr
    return regs


def _put_regs(cpu: Ppc64Cpu, r: dict[str, int]) -> None:
    """Before "spr": the SPR stubs run under the restored MSR (and keep PC)."""
    for n in range(32):
        cpu.set_gpr(n, r[f"r{n}"])
    for key, reg in _CORE_SPRS:
        cpu.uc.reg_write(reg, r[key])
    cpu.reset_msr(r["msr"])
    cpu.pc = r["pc"]


def _put_fpr(cpu: Ppc64Cpu, fpr: list[int]) -> None:
    for i, v in enumerate(fpr):
        cpu.uc.reg_write(P.UC_PPC_REG_FPR0 + i, v)


def _get_spr(cpu: Ppc64Cpu) -> dict[str, list[int]]:
    return {name: list(cpu.get_spr_pair(name)) for name in sorted(_STUB_PAIRS)}


def _put_spr(cpu: Ppc64Cpu, spr: dict[str, list[int]]) -> None:
    """Through the mtspr stubs, which need the restored MSR (privileged)."""
    for name in sorted(_STUB_PAIRS):
        a, b = spr[name]
        cpu.set_spr_pair(name, a, b)


def _put_state(cpu: Ppc64Cpu, state: str) -> None:
    cpu.state = CpuState(state)


def _post_load(cpu: Ppc64Cpu) -> None:
    """The clock's timers were dropped by the restore: arm the decrementer afresh."""
    cpu._dec_timer = None
    cpu._arm_dec()


def _checked_only(cpu: Ppc64Cpu, value: object) -> None:
    """Saved for a reader's benefit; the machine's configuration decides it."""


_REGS = Struct(tuple(Field(f"r{n}", U64) for n in range(32))
               + tuple(Field(k, U64) for k in ("pc", "msr", "lr", "ctr", "cr", "xer")))

# v2: tb_offset (the guest's timebase writes)
PPC64_CPU_STATE = VMStateDescription("cpu", 2, (
    Field("arch", Str(("ppc64",)), put_fn=_checked_only),
    Field("regs", _REGS, get_fn=_get_regs, put_fn=_put_regs),
    Field("fpr", Array(U64, count=32),
          get_fn=lambda c: [c.uc.reg_read(P.UC_PPC_REG_FPR0 + i) for i in range(32)], put_fn=_put_fpr),
    Field("fpscr", U64, get_fn=lambda c: c.uc.reg_read(P.UC_PPC_REG_FPSCR),
          put_fn=lambda c, v: c.uc.reg_write(P.UC_PPC_REG_FPSCR, v)),
    Field("spr", Struct(tuple(Field(name, Array(U64, count=2)) for name in sorted(_STUB_PAIRS))),
          get_fn=_get_spr, put_fn=_put_spr),
    Field("state", Str(tuple(s.value for s in CpuState)), get_fn=lambda c: c.state.value,
          put_fn=_put_state),
    Field("dec_written", U32), Field("dec_tb", U64),
    Field("tb_offset", U64, since=2, default=0),
), post_load=_post_load)

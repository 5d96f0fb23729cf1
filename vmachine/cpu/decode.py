"""Instruction decoding the machine needs: the width of a load/store (to
reassemble split MMIO accesses) and the few instructions the CPUs emulate.
One function per question per architecture, nothing else decodes opcodes."""
from __future__ import annotations

# --- PPC64 ------------------------------------------------------------------
# X-form (primary 31) extended opcodes of 8-byte loads/stores:
# ldx, ldux, ldarx, stdx, stdux, stdcx., ldbrx, stdbrx, lfdx, lfdux, stfdx, stfdux
_PPC_X8 = frozenset({21, 53, 84, 149, 181, 214, 532, 660, 599, 631, 727, 759})


def ppc_access_size(insn: int) -> int:
    """Element size in bytes of a PPC load/store (8 or 0 = 'not 8 bytes')."""
    op = insn >> 26
    if op in (58, 62):                       # DS-form ld/ldu/lwa, std/stdu
        return 4 if (op == 58 and insn & 3 == 2) else 8
    if op in (50, 51, 54, 55):               # lfd/lfdu/stfd/stfdu
        return 8
    if op == 31 and ((insn >> 1) & 0x3FF) in _PPC_X8:
        return 8
    return 0


def ppc_effective_address(insn: int, gpr) -> int | None:
    """EA of a D-, DS- or X-form load/store (for DAR on an alignment interrupt)."""
    op = insn >> 26
    ra, rb = (insn >> 16) & 31, (insn >> 11) & 31
    base = gpr(ra) if ra else 0
    if op == 31:
        return (base + gpr(rb)) & 0xFFFF_FFFF_FFFF_FFFF
    if op in (58, 62):
        disp = insn & 0xFFFC
    elif 32 <= op <= 55:
        disp = insn & 0xFFFF
    else:
        return None
    if disp & 0x8000:
        disp -= 0x10000
    return (base + disp) & 0xFFFF_FFFF_FFFF_FFFF


def ppc_sc_level(insn: int) -> int | None:
    """LEV of an `sc` instruction, None if `insn` is not sc."""
    if insn & 0xFC000003 == 0x44000002:
        return (insn >> 5) & 0x7F
    return None


def ppc_is_trap(insn: int) -> bool:
    """tw, td, twi, tdi."""
    op = insn >> 26
    return op in (2, 3) or (op == 31 and ((insn >> 1) & 0x3FF) in (4, 68))


# SPR numbers the machine emulates (timebase and decrementer are virtual).
SPR_DEC = 22
SPR_TBL_R = 268
SPR_TBU_R = 269


def ppc_spr_access(insn: int) -> tuple[str, int, int] | None:
    """('mfspr'|'mtspr', spr, rt) for mfspr/mtspr/mftb, else None."""
    if insn >> 26 != 31:
        return None
    xo = (insn >> 1) & 0x3FF
    rt = (insn >> 21) & 31
    spr = ((insn >> 16) & 31) | (((insn >> 11) & 31) << 5)
    if xo in (339, 371):
        return ("mfspr", spr, rt)
    if xo == 467:
        return ("mtspr", spr, rt)
    return None


# --- AArch64 ----------------------------------------------------------------

def a64_access_size(insn: int) -> int:
    """Element size of an AArch64 general-register load/store (0 if none)."""
    if (insn >> 27) & 7 == 0b111 and not (insn >> 26) & 1:      # LDR/STR (all forms)
        return 1 << (insn >> 30)
    if (insn >> 27) & 7 == 0b101 and not (insn >> 26) & 1:      # LDP/STP (+ pre/post/nt)
        return 8 if insn >> 30 == 2 else 4
    if (insn >> 24) & 0x3F == 0b001000:                          # exclusives, acquire/release
        return 1 << (insn >> 30)
    return 0


def a64_is_hvc(insn: int) -> bool:
    return insn & 0xFFE0001F == 0xD4000002


def a64_is_wfi(insn: int) -> bool:
    return insn == 0xD503207F

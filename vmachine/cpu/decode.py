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


# D-form loads/stores: primary opcode -> (is_load, is_fp, update)
_PPC_D_LS = {32: (1, 0, 0), 33: (1, 0, 1), 34: (1, 0, 0), 35: (1, 0, 1), 36: (0, 0, 0),
             37: (0, 0, 1), 38: (0, 0, 0), 39: (0, 0, 1), 40: (1, 0, 0), 41: (1, 0, 1),
             42: (1, 0, 0), 43: (1, 0, 1), 44: (0, 0, 0), 45: (0, 0, 1), 48: (1, 1, 0),
             49: (1, 1, 1), 50: (1, 1, 0), 51: (1, 1, 1), 52: (0, 1, 0), 53: (0, 1, 1),
             54: (0, 1, 0), 55: (0, 1, 1)}
# X-form (primary 31) loads/stores: extended opcode -> (is_load, is_fp, update)
_PPC_X_LS = {23: (1, 0, 0), 55: (1, 0, 1), 87: (1, 0, 0), 119: (1, 0, 1), 151: (0, 0, 0),
             183: (0, 0, 1), 215: (0, 0, 0), 247: (0, 0, 1), 279: (1, 0, 0), 311: (1, 0, 1),
             343: (1, 0, 0), 375: (1, 0, 1), 407: (0, 0, 0), 439: (0, 0, 1), 21: (1, 0, 0),
             53: (1, 0, 1), 149: (0, 0, 0), 181: (0, 0, 1), 341: (1, 0, 0), 373: (1, 0, 1),
             535: (1, 1, 0), 567: (1, 1, 1), 599: (1, 1, 0), 631: (1, 1, 1), 663: (0, 1, 0),
             695: (0, 1, 1), 727: (0, 1, 0), 759: (0, 1, 1)}


def ppc_simple_load_store(insn: int) -> tuple[bool, int, bool, bool] | None:
    """(is_load, RT/RS/FRT, is_fp, update form) for the plain integer and FP
    loads/stores (D, DS and X forms); None for anything else."""
    op = insn >> 26
    if op in _PPC_D_LS:
        load, fp, upd = _PPC_D_LS[op]
    elif op == 58 and insn & 3 in (0, 1, 2):      # ld, ldu, lwa
        load, fp, upd = 1, 0, insn & 3 == 1
    elif op == 62 and insn & 3 in (0, 1):         # std, stdu
        load, fp, upd = 0, 0, insn & 3 == 1
    elif op == 31 and ((insn >> 1) & 0x3FF) in _PPC_X_LS:
        load, fp, upd = _PPC_X_LS[(insn >> 1) & 0x3FF]
    else:
        return None
    return bool(load), (insn >> 21) & 31, bool(fp), bool(upd)


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


def a64_load_store_address(insn: int, xreg) -> tuple[int, bool] | None:
    """(address, is_store) of an AArch64 general-register load/store (the
    forms a64_access_size knows); `xreg(n)` reads Xn, n = 31 meaning SP.
    None for anything else."""
    mask = 0xFFFF_FFFF_FFFF_FFFF
    rn = (insn >> 5) & 31
    base = xreg(rn)
    if (insn >> 27) & 7 == 0b111 and not (insn >> 26) & 1:      # LDR/STR
        store = (insn >> 22) & 3 == 0
        size = insn >> 30
        if (insn >> 24) & 3 == 1:                                 # unsigned offset
            return (base + (((insn >> 10) & 0xFFF) << size)) & mask, store
        if (insn >> 24) & 3 != 0:
            return None
        if (insn >> 21) & 1:                                      # register offset
            if (insn >> 10) & 3 != 2:
                return None
            rm, option, shift = (insn >> 16) & 31, (insn >> 13) & 7, (insn >> 12) & 1
            off = xreg(rm) if rm != 31 else 0
            if option in (2, 6):                                  # UXTW / SXTW
                off &= 0xFFFF_FFFF
                if option == 6 and off & 0x8000_0000:
                    off -= 1 << 32
            return (base + (off << (size if shift else 0))) & mask, store
        imm = (insn >> 12) & 0x1FF
        imm = imm - 0x200 if imm & 0x100 else imm
        return (base if (insn >> 10) & 3 == 1 else base + imm) & mask, store   # post: Xn
    if (insn >> 27) & 7 == 0b101 and not (insn >> 26) & 1:      # LDP/STP
        store = not (insn >> 22) & 1
        imm = (insn >> 15) & 0x7F
        imm = (imm - 0x80 if imm & 0x40 else imm) * (8 if insn >> 30 == 2 else 4)
        return (base if (insn >> 23) & 3 == 1 else base + imm) & mask, store
    if (insn >> 24) & 0x3F == 0b001000:                          # exclusives
        return base & mask, not (insn >> 22) & 1
    return None

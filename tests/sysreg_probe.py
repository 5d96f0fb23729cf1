"""Run every SPR access (ppc64 mfspr/mtspr 0..1023) and every AArch64
system-register encoding (MRS/MSR, op0 2..3, all op1/CRn/CRm/op2) once on a
vCPU of a real board, and print the outcome of each as JSON.

A Unicorn helper that dereferences state Unicorn never set up kills the
whole process, so tests/test_sprs.py runs this in a subprocess and checks
that it exits normally. Each access is one instruction at its own address
(no retranslation), run with `run_insns(1)` at the board's privilege
(pseries: supervisor, real mode; virt: EL1h); the write that follows a
read writes back the value read (0 after an interrupt), so the sweep does
not reconfigure the CPU under itself.

Outcomes: "value" (the instruction completed; for reads "value=0x..." or
"unchanged" when it left Rt alone) or "vector 0x.. reason 0x.." (ppc64) /
"ec 0x.." (AArch64: the exception class of the synchronous exception taken
to VBAR_EL1 + 0x200).
"""
from __future__ import annotations

import json
import struct
import sys

from unicorn import arm64_const as A

from vmachine import create_machine
from vmachine.cpu.ppc64 import MSR_ME, MSR_SF, SPR_TRAPS, _mfspr, _mtspr

MARK = 0x5A5A_5A5A_A5A5_A5A5
PPC_BASE = 0x0100_0000                     # 16 MiB: clear of the ROM, FDT and vectors
PPC_VECTORS = {0x300, 0x400, 0x600, 0x700, 0x800, 0xF20, 0xF40, 0xF60, 0xF80, 0xE40}


def ppc64(trapped: bool) -> dict[str, str]:
    """mfspr r3,N then mtspr N,r3 for every N; `trapped`: the code is scanned
    like an image loaded at reset (else: code the guest wrote at run time)."""
    m = create_machine("pseries", ram_size=256 << 20)
    cpu = m.cpus[0]
    base = PPC_BASE if trapped else PPC_BASE + 0x10_0000
    code = b"".join(struct.pack(">2I", _mfspr(3, n), _mtspr(n, 3)) for n in range(1024))
    m.ram.write(base, code)
    if trapped:
        cpu.trap_timebase_accesses(code, base)
    out: dict[str, str] = {}
    for n in range(1024):
        for kind, addr in (("mfspr", base + 8 * n), ("mtspr", base + 8 * n + 4)):
            cpu.reset_msr(MSR_SF | MSR_ME)
            if kind == "mfspr":
                cpu.set_gpr(3, MARK)
            cpu.pc = addr
            cpu.run_insns(1)
            pc = cpu.pc
            if pc == addr + 4:
                r3 = cpu.gpr(3)
                out[f"{kind} {n}"] = "value" if kind == "mtspr" else (
                    "unchanged" if r3 == MARK else f"value={r3:#x}")
            else:
                srr0, srr1 = cpu.get_srr()
                out[f"{kind} {n}"] = f"vector {pc:#x} reason {srr1 & 0x1F0000:#x}" + (
                    "" if srr0 == addr and pc in PPC_VECTORS else f" srr0 {srr0:#x}")
                cpu.set_gpr(3, 0)
    assert cpu.state.value == "running", cpu.state
    assert m.fatal is None, m.fatal
    return out


A64_CODE = 0x4100_0000
A64_VBAR = 0x4080_0000


def a64_sysreg(is_read: bool, op0: int, op1: int, crn: int, crm: int, op2: int, rt: int = 1) -> int:
    return (0xD5100000 | (int(is_read) << 21) | ((op0 & 1) << 19) | (op1 << 16) | (crn << 12)
            | (crm << 8) | (op2 << 5) | rt)


def aarch64() -> dict[str, str]:
    m = create_machine("virt,gic-version=3", ram_size=128 << 20)
    cpu = m.cpus[0]
    uc = cpu.uc
    keys = [(op0, op1, crn, crm, op2) for op0 in (2, 3) for op1 in range(8) for crn in range(16)
            for crm in range(16) for op2 in range(8)]
    code = b"".join(struct.pack("<2I", a64_sysreg(True, *k), a64_sysreg(False, *k)) for k in keys)
    m.ram.write(A64_CODE, code)
    m.ram.write(A64_VBAR, bytes(0x800))
    cpu.start(A64_CODE, 0)                 # virt without -kernel: cpu0 is not started
    out: dict[str, str] = {}
    for i, k in enumerate(keys):
        for is_read in (True, False):
            addr = A64_CODE + 8 * i + (0 if is_read else 4)
            uc.reg_write(A.UC_ARM64_REG_VBAR_EL1, A64_VBAR)
            uc.reg_write(A.UC_ARM64_REG_PSTATE, 0x3C5)
            if is_read:
                cpu.set_x(1, MARK)
            cpu.pc = addr
            cpu.run_insns(1)
            pc = cpu.pc
            name = ("mrs " if is_read else "msr ") + "s{}_{}_c{}_c{}_{}".format(*k)
            if pc == addr + 4:
                x1 = cpu.x(1)
                out[name] = "value" if not is_read else (
                    "unchanged" if x1 == MARK else f"value={x1:#x}")
            else:
                esr = uc.reg_read(A.UC_ARM64_REG_ESR_EL1)
                elr = uc.reg_read(A.UC_ARM64_REG_ELR_EL1)
                out[name] = f"ec {esr >> 26 & 0x3F:#x}" + (
                    "" if pc == A64_VBAR + 0x200 and elr == addr else f" pc {pc:#x} elr {elr:#x}")
                cpu.set_x(1, 0)
    assert cpu.state.value == "running", cpu.state
    assert m.fatal is None, m.fatal
    return out


def main() -> int:
    which = sys.argv[1:] or ["ppc64", "ppc64-untrapped", "aarch64"]
    result = {}
    for w in which:
        result[w] = {"ppc64": lambda: ppc64(True), "ppc64-untrapped": lambda: ppc64(False),
                     "aarch64": aarch64}[w]()
    result["spr_traps"] = sorted(f"{k} {n}" for k, n in SPR_TRAPS)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

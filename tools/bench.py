#!/usr/bin/env python
"""vmachine benchmarks: guest MIPS, MMIO exactness cost, boot, cold start, SMP, interrupts, guest time.

    python tools/bench.py [--quick] [--markdown] [--only 1,2,...]

Sections (each side by side in one run; 10 is left to the memory-per-vCPU
section of another branch):
  1. Guest MIPS of a counted 10-instruction ALU loop (guests/<arch>/loop.c):
     raw Unicorn (the loop bytes alone, no hooks, one emu_start), the same
     with an empty C block hook (tools/bench_hooks.c), vmachine's engine
     alone on that raw Unicorn (vmachine.cpu.slot.SlotEngine, i.e. slot.c's
     counting block hook, in slots of DEFAULT_QUANTUM instructions, as the
     machine runs a lone vCPU), vmachine `create_machine(...).run()` (and, as
     a diagnostic, with quantum 1,000,000) and QEMU (whole process). Goal:
     vmachine >= 25 % of QEMU. Instruction counts come from the loop count
     (patched into a copy of the ELF), never from machine.insns; boot cost is
     removed by subtracting a 0-iteration run.
  2. 8-byte MMIO exactness on raw Unicorn PPC64 (HV bring-up as vmachine):
     decode-at-PC (vmachine.memory.AccessAssembler) vs a UC_HOOK_MEM_READ|WRITE
     hook on the MMIO range: slowdown of a RAM load/add/store loop and the
     cost per 8-byte MMIO access.
  3. Boot-to-power-off of `hello`: in-process create_machine()+run() vs the
     whole QEMU process; median of N.
  4. Cold start (goal: at most 2x QEMU): whole-process wall and CPU time
     (user+sys) of `python -m vmachine run ARCH/hello` (guest cached), of
     `python -m vmachine` with QEMU's own command line (tests/guestrun.py's),
     and of that QEMU command line on qemu-system-*, for both boards,
     interleaved run by run (so host load hits all alike); median of N (9,
     --quick 5) after two warm-up runs each. Python's bytecode cache is kept
     in a temporary -X pycache_prefix: filled by the warm-up ("cached", what
     a user's second run sees), and once more with vmachine's own modules
     removed from it and PYTHONDONTWRITEBYTECODE=1 ("vmachine not
     byte-compiled": every run compiles them, as in an editable checkout
     where that variable is set). `python -c pass` is the interpreter's floor.
  5. SMP: the `smp` guest at -smp 1, 4, 64, vmachine in-process vs QEMU.
  6. XICS interrupt round trips (guests/ppc64/xics_bench.c: H_IPI to self ->
     0x500 -> H_XIRR, H_IPI 0xff, H_EOI), round trips per second: vmachine
     in-process run() (N calibrated to about 1.5 s, minus a 0-iteration run)
     and QEMU (whole process for N minus for 0, same N, median); then the
     same vmachine figure with 16, 1,000, 100,000 and 1,000,000 configured
     (masked) XICS sources set from the host before run(), whose configuration
     time is measured separately and excluded.
  7. XIVE interrupt round trips (guests/ppc64/xive_bench.c: CAS to XIVE, then
     ESB trigger store -> 0x500 -> TIMA ack, queue entry, ESB EOI load, TIMA
     CPPR 0xff), round trips per second, measured as in 6 (vmachine in-process
     vs QEMU whole process at the same N, plus QEMU at a large N), and the
     ratio XIVE / XICS against this run's section 6 figures.
  8. GICv3 SGIs on virt,gic-version=3 (guests/aarch64/gic_bench.c, `bench_iters`
     and `bench_bcast` patched): (a) SGI-to-self round trips per second
     (ICC_SGI1R_EL1 -> IRQ -> ICC_IAR1_EL1, ICC_EOIR1_EL1), measured as in 6
     (vmachine in-process vs QEMU whole process at the same N, plus QEMU at a
     large N); (b) the cost of one IRM=1 SGI broadcast from the boot CPU to
     every other vCPU (each sits in WFI, takes it, IAR1 + EOIR1) at 4 to 512
     vCPUs: host time of run() (vmachine) or of the whole process (QEMU) with
     N broadcasts minus the same with 0 (bring-up of every vCPU is in both),
     divided by N.
  9. GICv3 ITS LPIs on virt,gic-version=3 (guests/aarch64/its_bench.c,
     `bench_iters`, `bench_events`, `bench_host` patched): (a) LPI round trips
     per second (GITS_TRANSLATER store of EventID 0, DeviceID 0 -> IRQ ->
     ICC_IAR1_EL1 LPI 8192 -> ICC_EOIR1_EL1), measured as in 6 (vmachine
     in-process vs QEMU whole process at the same N, plus QEMU at a large N);
     (b) flatness: the vmachine figure with 16 vs 65,536 extra events mapped
     by the guest before the timed loop; (c) host-injected MSIs through
     GsiRouting + IrqFd (translate-once vs route-every-time) on an its_bench
     machine stopped after set-up: fire() calls per second back to back, the
     pending LPIs they leave, then one fire() per round until the guest has
     acknowledged a fixed number of LPIs.
 11. Guest-visible time per interrupt round trip, for the SGI, LPI, XICS and
     XIVE benches: each guest reads its own clock (CNTVCT_EL0 / timebase)
     before and after its timed loop into `bench_clock` (never printed, so
     the transcripts stay QEMU's); (clock difference with N round trips -
     the same with 0) / N, in ns, read from guest RAM after the run: on
     vmachine in-process, on QEMU 7.2 with `-icount shift=0` (time =
     instructions, as vmachine) through `-no-shutdown` and a QMP socket (HMP
     `xp` once the guest has powered off). vmachine's instruction count per
     round trip (RunResult.insns) is shown beside it. Goal: within +-25 % of
     QEMU's.
 12. A guest waiting 1 s of its own time (guests/<arch>/timer_wait.c,
     `wait_ms` and `wait_mode` patched): spinning on its clock with the timer
     interrupt masked (both ISAs), in WFI with PSTATE.I masked (AArch64) or
     in H_CEDE until the decrementer (PPC64): host time of vmachine run()
     and of whole processes with the QEMU command line on `python -m
     vmachine`, on QEMU and on QEMU -icount shift=0. Goal: vmachine process
     < 2 s.
A closing table checks each goal of issue 10 against this run's figures
(round-trip rates against QEMU's at N = 100,000).

Host time (time.perf_counter) is used here only; vmachine itself never reads it.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import unicorn  # noqa: E402
from unicorn import (UC_ARCH_ARM64, UC_HOOK_BLOCK, UC_HOOK_MEM_READ,  # noqa: E402
                     UC_HOOK_MEM_WRITE, UC_MODE_ARM, UC_PROT_ALL, Uc)
from unicorn import arm64_const as A  # noqa: E402
from unicorn import ppc_const as P  # noqa: E402

from vmachine import create_machine  # noqa: E402
from vmachine.cpu import decode  # noqa: E402
from vmachine.cpu.ppc64 import Ppc64Cpu  # noqa: E402
from vmachine.machine import DEFAULT_QUANTUM  # noqa: E402
from vmachine.memory import AccessAssembler  # noqa: E402
from vmachine.toolchain import build_firmware, build_guest  # noqa: E402

QEMU = {"ppc64": shutil.which("qemu-system-ppc64"), "aarch64": shutil.which("qemu-system-aarch64")}
BOARD = {"ppc64": "pseries", "aarch64": "virt,gic-version=3"}
LOOP_INSNS_PER_ITER = 10
LOOP_BIG_QUANTUM = 1_000_000          # the CLI's largest --quantum


# ---------------------------------------------------------------- helpers
def now() -> float:
    return time.perf_counter()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = now()
    r = fn()
    return now() - t, r


def median_time(fn: Callable[[], object], n: int) -> tuple[float, list[float]]:
    ts = [timed(fn)[0] for _ in range(n)]
    return statistics.median(ts), ts


def qemu_cmd(arch: str, kernel: Path, smp: int = 1) -> list[str]:
    """The exact command lines of guests/NOTES.md."""
    if arch == "ppc64":
        return [QEMU["ppc64"], "-M", "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,"
                "cap-ccf-assist=off", "-m", "512M", "-smp", str(smp), "-nographic",
                "-bios", str(build_firmware()), "-kernel", str(kernel)]
    return [QEMU["aarch64"], "-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-m", "128M",
            "-smp", str(smp), "-nographic", "-kernel", str(kernel)]


def run_process(cmd: list[str], expect: str, timeout: float = 60) -> float:
    t = now()
    p = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    dt = now() - t
    if p.returncode != 0 or expect.encode() not in p.stdout:
        raise RuntimeError(f"{cmd[0]} failed (rc {p.returncode}): {p.stderr.decode()[-300:]}")
    return dt


def elf_symbols(path: Path, names: list[str]) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {n: symtab.get_symbol_by_name(n)[0]["st_value"] for n in names}


def elf_vaddr_bytes(path: Path, vaddr: int, size: int) -> tuple[int, bytes]:
    """(file offset, bytes) of `size` bytes at virtual address `vaddr`."""
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
                off = seg["p_offset"] + vaddr - seg["p_vaddr"]
                f.seek(off)
                return off, f.read(size)
    raise ValueError(f"{vaddr:#x} not in a loaded segment of {path}")


class PatchedGuest:
    """A guest ELF with a `volatile u64` count in .data, and copies of it
    with other counts (as LoopGuest, for any guest and symbol)."""

    def __init__(self, arch: str, name: str, symbol: str, tmpdir: Path):
        self.arch, self.name = arch, name
        self.elf = build_guest(arch, name)
        addr = elf_symbols(self.elf, [symbol])[symbol]
        self.off, _ = elf_vaddr_bytes(self.elf, addr, 8)
        self.order = ">" if arch == "ppc64" else "<"
        self.tmpdir = tmpdir
        self._copies: dict[int, Path] = {}

    def with_iters(self, n: int) -> Path:
        if n not in self._copies:
            data = bytearray(self.elf.read_bytes())
            data[self.off:self.off + 8] = struct.pack(self.order + "Q", n)
            p = self.tmpdir / f"{self.arch}-{self.name}-{n}.elf"
            p.write_bytes(data)
            self._copies[n] = p
        return self._copies[n]


class LoopGuest:
    """guests/<arch>/loop.c, its loop bytes, and copies with a chosen count."""

    def __init__(self, arch: str, tmpdir: Path):
        self.arch = arch
        self.elf = build_guest(arch, "loop")
        s = elf_symbols(self.elf, ["bench_loop_body", "bench_loop_end", "loop_iters"])
        self.body, self.end, self.iters_addr = s["bench_loop_body"], s["bench_loop_end"], s["loop_iters"]
        assert (self.end - self.body) == 4 * LOOP_INSNS_PER_ITER, "loop body must be 10 instructions"
        _, self.code = elf_vaddr_bytes(self.elf, self.body, self.end - self.body)
        self.iters_off, _ = elf_vaddr_bytes(self.elf, self.iters_addr, 8)
        self.order = ">" if arch == "ppc64" else "<"
        self.tmpdir = tmpdir
        self._copies: dict[int, Path] = {}

    def with_iters(self, n: int) -> Path:
        if n not in self._copies:
            data = bytearray(self.elf.read_bytes())
            data[self.iters_off:self.iters_off + 8] = struct.pack(self.order + "Q", n)
            p = self.tmpdir / f"{self.arch}-loop-{n}.elf"
            p.write_bytes(data)
            self._copies[n] = p
        return self._copies[n]


# ---------------------------------------------------------------- 1. loop MIPS
class _BareCpu:
    """What Ppc64Cpu._create_uc asks of its vCPU: the timebase env it installs
    (a buffer Unicorn points to, which must outlive the instance)."""
    _install_tb_env = Ppc64Cpu._install_tb_env


_KEEP: list[object] = []


def ppc_raw_uc() -> Uc:
    """A raw PPC64 Unicorn made as vmachine's vCPU makes it (HV bring-up,
    timebase env), without a vCPU, MSR = SF | ME | HV."""
    holder = _BareCpu()
    uc = Ppc64Cpu._create_uc(holder)         # type: ignore[arg-type]
    _KEEP.append(holder)
    uc.reg_write(P.UC_PPC_REG_MSR, (1 << 63) | (1 << 12) | (1 << 60))
    return uc


def raw_loop_uc(lg: LoopGuest) -> tuple[Uc, Callable[[int], None]]:
    """A raw Unicorn with the loop bytes at their link address, followed by
    a branch-to-self; returns (uc, set_count)."""
    if lg.arch == "ppc64":
        uc = ppc_raw_uc()
        set_count = lambda n: uc.reg_write(P.UC_PPC_REG_CTR, n)  # noqa: E731
        spin = struct.pack(">I", 0x48000000)                   # b .
    else:
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.ctl_set_tcg_buffer_size(4 << 20)
        set_count = lambda n: uc.reg_write(A.UC_ARM64_REG_X10, n)  # noqa: E731
        spin = struct.pack("<I", 0x14000000)                   # b .
    page = lg.body & ~0xFFF
    uc.mem_map(page, 0x2000, UC_PROT_ALL)
    uc.mem_write(lg.body, lg.code + spin)
    return uc, set_count


_hooks_lib = None


def c_block_hook(uc: Uc) -> None:
    """Add tools/bench_hooks.c's empty block hook (a C function) to `uc`."""
    global _hooks_lib
    import ctypes
    from unicorn.unicorn_py3.unicorn import uclib

    from vmachine.toolchain import build_host_library
    if _hooks_lib is None:
        _hooks_lib = ctypes.CDLL(str(build_host_library(REPO / "tools" / "bench_hooks.c",
                                                        "vmachine-bench-hooks")))
    h = ctypes.c_size_t()
    err = uclib.uc_hook_add(uc._uch, ctypes.byref(h), UC_HOOK_BLOCK,
                            ctypes.cast(_hooks_lib.bench_empty_block, ctypes.c_void_p), None,
                            ctypes.c_uint64(1), ctypes.c_uint64(0))
    if err:
        raise OSError(f"uc_hook_add failed ({err})")


def raw_loop_time(lg: LoopGuest, iters: int, c_hook: bool = False) -> float:
    """One emu_start over the loop (until its end) on a raw Unicorn, with
    no hook or with an empty C block hook."""
    uc, set_count = raw_loop_uc(lg)
    if c_hook:
        c_block_hook(uc)
    set_count(1000)                                   # warm-up: translate the block
    uc.emu_start(lg.body, lg.end)
    set_count(iters)
    pc_reg = P.UC_PPC_REG_PC if lg.arch == "ppc64" else A.UC_ARM64_REG_PC
    t = now()
    uc.emu_start(lg.body, lg.end)
    dt = now() - t
    pc = uc.reg_read(pc_reg)
    assert pc == lg.end, hex(pc)
    return dt


def engine_loop_time(lg: LoopGuest, iters: int) -> float:
    """vmachine's engine alone (vmachine.cpu.slot.SlotEngine: slot.c's
    counting block hook) on a raw Unicorn, run as the machine runs a lone
    vCPU: one SlotEngine.run per DEFAULT_QUANTUM instructions, no machine,
    no devices. The last slot ends in the branch-to-self after the loop
    (at most one quantum, not counted as loop instructions)."""
    from vmachine.cpu.slot import SlotEngine
    uc, set_count = raw_loop_uc(lg)
    pc_reg = P.UC_PPC_REG_PC if lg.arch == "ppc64" else A.UC_ARM64_REG_PC
    eng = SlotEngine(uc, lambda address: None, lambda address: 0, (pc_reg, 0, 0))
    clock = [0]

    def go() -> None:
        pc = lg.body
        while pc != lg.end:
            eng.run(pc, DEFAULT_QUANTUM, clock[0])
            clock[0] += eng.last_count
            pc = uc.reg_read(pc_reg)
    set_count(1000)                                   # warm-up: translate the blocks
    go()
    set_count(iters)
    t = now()
    go()
    return now() - t


def vm_loop_time(lg: LoopGuest, iters: int, quantum: int | None = None) -> float:
    """create_machine + run of the loop guest; returns run() time only."""
    m = create_machine(BOARD[lg.arch], kernel=str(lg.with_iters(iters)), quantum=quantum)
    dt, r = timed(lambda: m.run(wall_seconds=120))
    if r.reason != "poweroff" or f"ok loop iterations = {iters:#x}" not in m.console_text:
        raise RuntimeError(f"vmachine loop guest: {r.describe()}\n{m.console_text[-300:]}")
    return dt


def calibrate(fn: Callable[[int], float], target: float, start: int = 100_000,
              cap: int = 2_000_000_000) -> int:
    """Iterations so that fn(iters) takes about `target` seconds."""
    n = start
    while True:
        dt = fn(n)
        if dt >= target / 8 or n >= cap:
            return max(1, min(cap, int(n * target / max(dt, 1e-6))))
        n *= 8


def bench_loop(args, lgs: dict[str, LoopGuest]) -> list[dict]:
    rows = []
    tgt = 0.25 if args.quick else 0.6
    reps = 1 if args.quick else 3
    best = lambda f: min(f() for _ in range(reps))  # noqa: E731
    for arch, lg in lgs.items():
        res: dict[str, object] = {"arch": arch, "board": BOARD[arch]}
        n_raw = calibrate(lambda n: raw_loop_time(lg, n), tgt, 1_000_000)
        res["raw"] = n_raw * LOOP_INSNS_PER_ITER / best(lambda: raw_loop_time(lg, n_raw)) / 1e6
        n_ch = calibrate(lambda n: raw_loop_time(lg, n, True), tgt, 1_000_000)
        res["raw_chook"] = n_ch * LOOP_INSNS_PER_ITER / best(lambda: raw_loop_time(lg, n_ch, True)) / 1e6
        n_en = calibrate(lambda n: engine_loop_time(lg, n), tgt, 100_000)
        res["engine"] = n_en * LOOP_INSNS_PER_ITER / best(lambda: engine_loop_time(lg, n_en)) / 1e6
        # vmachine: subtract a 0-iteration run (boot, prints, power-off).
        t0 = min(vm_loop_time(lg, 0) for _ in range(reps))
        n_vm = calibrate(lambda n: max(vm_loop_time(lg, n) - t0, 1e-6), tgt, 10_000)
        t_vm = min(vm_loop_time(lg, n_vm) for _ in range(reps))
        res["vm"] = n_vm * LOOP_INSNS_PER_ITER / max(t_vm - t0, 1e-9) / 1e6
        res["vm_iters"] = n_vm
        res["vm_boot_s"] = t0
        # diagnostic: the same with the longest quantum the CLI accepts (a lone
        # vCPU's slots are then 50x longer: fewer emu_start calls and rounds)
        t0q = min(vm_loop_time(lg, 0, LOOP_BIG_QUANTUM) for _ in range(reps))
        t_q = min(vm_loop_time(lg, n_vm, LOOP_BIG_QUANTUM) for _ in range(reps))
        res["vm_bigq"] = n_vm * LOOP_INSNS_PER_ITER / max(t_q - t0q, 1e-9) / 1e6
        if QEMU[arch]:
            n_q = max(n_raw * 2, 50_000_000)
            cmd0, cmdn = qemu_cmd(arch, lg.with_iters(0)), qemu_cmd(arch, lg.with_iters(n_q))
            q0 = min(run_process(cmd0, "ok loop") for _ in range(reps))
            qn = min(run_process(cmdn, "ok loop") for _ in range(reps))
            res["qemu"] = n_q * LOOP_INSNS_PER_ITER / max(qn - q0, 1e-9) / 1e6
            res["qemu_iters"] = n_q
        rows.append(res)
    return rows


# ---------------------------------------------------------------- 2. MMIO exactness
def ppc(op: int, rt: int, ra: int, low: int) -> int:
    return (op << 26) | (rt << 21) | (ra << 16) | (low & 0xFFFF)


def ppc_x(rt: int, ra: int, rb: int, xo: int) -> int:
    return (31 << 26) | (rt << 21) | (ra << 16) | (rb << 11) | (xo << 1)


def bdnz(delta: int) -> int:
    return (16 << 26) | (16 << 21) | (delta & 0xFFFC)


CODE, RAMBUF, MMIO = 0x10000, 0x100000, 0x2000_0000
RAM_LOOP = [ppc_x(5, 8, 4, 21),          # ldx  r5, r8, r4
            ppc_x(5, 5, 6, 266),          # add  r5, r5, r6
            ppc_x(5, 8, 4, 149),          # stdx r5, r8, r4
            ppc(14, 4, 4, 8),             # addi r4, r4, 8
            ppc_x(4, 4, 7, 28),           # and  r4, r4, r7
            bdnz(-20)]
MMIO_LD = [ppc(58, 5, 9, 0), bdnz(-4)]   # ld  r5, 0(r9) ; bdnz
MMIO_STD = [ppc(62, 5, 9, 0), bdnz(-4)]  # std r5, 0(r9) ; bdnz


class CountingDevice:
    def __init__(self) -> None:
        self.reads: dict[int, int] = {}
        self.writes: dict[int, int] = {}

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        self.reads[size] = self.reads.get(size, 0) + 1
        return 0x1122334455667788 & ((1 << (8 * size)) - 1)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        self.writes[size] = self.writes.get(size, 0) + 1


def mmio_uc(mode: str, dev: CountingDevice) -> Uc:
    """Raw PPC64 Unicorn, RAM at 0..2 MiB, an MMIO window at MMIO.
    mode: "none" (no window), "decode" (AccessAssembler, size from the insn
    at PC, cached by PC+insn as vmachine does), "hook" (UC_HOOK_MEM_READ|WRITE
    on the window gives the whole access; the split callbacks only serve it)."""
    uc = ppc_raw_uc()
    uc.mem_map(0, 0x200000, UC_PROT_ALL)
    if mode == "none":
        return uc
    if mode == "decode":
        cache: dict[int, int] = {}

        def access_size() -> int:
            pc = uc.reg_read(P.UC_PPC_REG_PC)
            insn = int.from_bytes(uc.mem_read(pc, 4), "big")
            key = (pc << 32) | insn
            s = cache.get(key)
            if s is None:
                s = cache[key] = decode.ppc_access_size(insn)
            return s
        asm = AccessAssembler(0, access_size, True)
        uc.mmio_map(MMIO, 0x1000, lambda u, off, size, _: asm.read(dev, off, size), None,
                    lambda u, off, size, value, _: asm.write(dev, off, size, value), None)
        return uc
    # mode == "hook"
    state = {"size": 0, "value": 0, "half": 0}

    def on_mem(u, access, addr, size, value, _):
        if access == UC_MEM_WRITE:
            dev.mmio_write(0, addr - MMIO, size, value)     # whole store, once
            state["size"] = -size                          # callbacks: ignore
        else:
            state["size"], state["half"] = size, 0

    def rd(u, off, size, _):
        if state["size"] == 8:
            if state["half"] == 0:
                state["value"] = dev.mmio_read(0, off, 8)
                state["half"] = 1
                return state["value"] >> 32
            return state["value"] & 0xFFFFFFFF
        return dev.mmio_read(0, off, size)

    def wr(u, off, size, value, _):
        if state["size"] < 0:
            return
        dev.mmio_write(0, off, size, value)
    uc.mmio_map(MMIO, 0x1000, rd, None, wr, None)
    uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, on_mem, None, MMIO, MMIO + 0xFFF)
    return uc


UC_MEM_WRITE = unicorn.unicorn_const.UC_MEM_WRITE


def run_code(uc: Uc, words: list[int], ctr: int, regs: dict[int, int]) -> float:
    uc.mem_write(CODE, b"".join(struct.pack(">I", w) for w in words))
    end = CODE + 4 * len(words)
    for r, v in regs.items():
        uc.reg_write(P.UC_PPC_REG_0 + r, v)
    uc.reg_write(P.UC_PPC_REG_CTR, min(ctr, 64))      # warm-up (translation)
    uc.emu_start(CODE, end)
    for r, v in regs.items():
        uc.reg_write(P.UC_PPC_REG_0 + r, v)
    uc.reg_write(P.UC_PPC_REG_CTR, ctr)
    t = now()
    uc.emu_start(CODE, end)
    dt = now() - t
    assert uc.reg_read(P.UC_PPC_REG_PC) == end
    return dt


def bench_mmio(args) -> dict:
    reps = 1 if args.quick else 3
    ram_regs = {4: 0, 6: 3, 7: 0xFFF8, 8: RAMBUF}
    res: dict[str, object] = {}
    n_ram = calibrate(lambda n: run_code(mmio_uc("none", CountingDevice()), RAM_LOOP, n, ram_regs),
                      0.25 if args.quick else 0.5, 100_000)
    rounds = 2 if args.quick else 4
    best: dict[str, float] = {}
    k = 5_000 if args.quick else 20_000
    for _ in range(rounds):                       # interleaved rounds, best of each
        for mode in ("none", "decode", "hook"):
            dt = run_code(mmio_uc(mode, CountingDevice()), RAM_LOOP, n_ram, ram_regs)
            best[f"ram_{mode}"] = min(best.get(f"ram_{mode}", dt), dt)
        for mode in ("decode", "hook"):
            for name, code in (("ld", MMIO_LD), ("std", MMIO_STD)):
                dev = CountingDevice()
                dt = run_code(mmio_uc(mode, dev), code, k, {9: MMIO, 5: 0x0102030405060708})
                counts = dev.reads if name == "ld" else dev.writes
                assert counts == {8: k + min(k, 64)}, (mode, name, counts)   # once, 8 bytes
                best[f"{name}_{mode}"] = min(best.get(f"{name}_{mode}", dt), dt)
    for mode in ("none", "decode", "hook"):
        res[f"ram_{mode}"] = n_ram * len(RAM_LOOP) / best[f"ram_{mode}"] / 1e6
    for key, dt in best.items():
        if not key.startswith("ram_"):
            res[key + "_us"] = dt / k * 1e6
    # the RAM loop really adds: 64 KiB buffer of 8-byte words, each += 3 per pass
    uc = mmio_uc("none", CountingDevice())
    run_code(uc, RAM_LOOP, 8192, ram_regs)
    assert struct.unpack(">Q", uc.mem_read(RAMBUF, 8))[0] == 6      # warm-up pass + pass
    res["ram_iters"] = n_ram
    return res


# ---------------------------------------------------------------- 3-5. boot, cold start, SMP
def vm_boot(arch: str, guest: Path, smp: int, expect: str) -> Callable[[], float]:
    def go() -> float:
        t = now()
        m = create_machine(BOARD[arch], kernel=str(guest), smp=smp)
        r = m.run(wall_seconds=60)
        dt = now() - t
        if r.reason != "poweroff" or expect not in m.console_text or "not ok" in m.console_text:
            raise RuntimeError(f"vmachine {arch} {guest.name} smp {smp}: {r.describe()}")
        return dt
    return go


def med(fn: Callable[[], float], n: int) -> float:
    return statistics.median(fn() for _ in range(n))


def bench_boot(args) -> list[dict]:
    n = 3 if args.quick else 5
    rows = []
    for arch in ("ppc64", "aarch64"):
        hello = build_guest(arch, "hello")
        row = {"arch": arch, "board": BOARD[arch],
               "vm": med(vm_boot(arch, hello, 1, "ok hello\n"), n)}
        if QEMU[arch]:
            row["qemu"] = med(lambda: run_process(qemu_cmd(arch, hello), "ok hello\n"), n)
        rows.append(row)
    return rows


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed_process(cmd: list[str], expect: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall, user+sys CPU) of one whole process, which must exit 0 printing `expect`."""
    c, t = _children_cpu(), now()
    p = subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    wall, cpu = now() - t, _children_cpu() - c
    if p.returncode != 0 or expect.encode() not in p.stdout:
        raise RuntimeError(f"{cmd[:4]} failed (rc {p.returncode}): {p.stderr.decode()[-300:]}")
    return wall, cpu


def bench_cold_start(args) -> list[dict]:
    n = 5 if args.quick else 9
    py = sys.executable
    cached = Path(tempfile.mkdtemp(prefix="vmachine-bench-pyc-"))
    uncompiled = Path(tempfile.mkdtemp(prefix="vmachine-bench-nopyc-"))
    env_cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env_nopyc = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    pre_cached, pre_nopyc = ["-X", f"pycache_prefix={cached}"], ["-X", f"pycache_prefix={uncompiled}"]
    runs: list[tuple[str, str, list[str], dict[str, str], str]] = []      # (arch, label, cmd, env, expect)
    for arch in ("ppc64", "aarch64"):
        hello = build_guest(arch, "hello")
        qemu = qemu_cmd(arch, hello)
        runs.append((arch, f"vmachine run {arch}/hello", [py, *pre_cached, "-m", "vmachine", "run",
                                                          f"{arch}/hello"], env_cached, "ok hello\n"))
        runs.append((arch, "vmachine, QEMU's command line", [py, *pre_cached, "-m", "vmachine", *qemu[1:]],
                     env_cached, "ok hello\n"))
        runs.append((arch, f"vmachine run {arch}/hello, vmachine not byte-compiled",
                     [py, *pre_nopyc, "-m", "vmachine", "run", f"{arch}/hello"], env_nopyc, "ok hello\n"))
        if QEMU[arch]:
            runs.append((arch, f"QEMU 7.2 ({Path(qemu[0]).name})", qemu, env_cached, "ok hello\n"))
    runs.append(("", "python -c pass (interpreter floor)", [py, *pre_cached, "-c", "print('ok')"],
                 env_cached, "ok"))
    try:
        for _, _, cmd, env, expect in runs:            # warm-up: fills the cached prefix, builds, stamps
            if env is env_cached:
                for _ in range(2):
                    _timed_process(cmd, expect, env)
        # the same cache without vmachine's own modules
        shutil.copytree(cached, uncompiled, dirs_exist_ok=True)
        own = uncompiled / str(REPO.resolve()).lstrip("/") / "vmachine"
        if own.is_dir():
            shutil.rmtree(own)
        for _, _, cmd, env, expect in runs:
            if env is env_nopyc:
                for _ in range(2):
                    _timed_process(cmd, expect, env)
        load0 = os.getloadavg()[0]
        samples: list[list[tuple[float, float]]] = [[] for _ in runs]
        for _ in range(n):
            for i, (_, _, cmd, env, expect) in enumerate(runs):
                samples[i].append(_timed_process(cmd, expect, env))
        load1 = os.getloadavg()[0]
    finally:
        shutil.rmtree(cached, ignore_errors=True)
        shutil.rmtree(uncompiled, ignore_errors=True)
    rows = []
    for (arch, label, _, _, _), ts in zip(runs, samples):
        rows.append({"arch": arch, "what": label, "wall": statistics.median(t[0] for t in ts),
                     "cpu": statistics.median(t[1] for t in ts), "n": n, "load": (load0, load1)})
    for r in rows:
        q = next((x for x in rows if x["arch"] == r["arch"] and x["what"].startswith("QEMU")), None)
        r["qemu_wall"], r["qemu_cpu"] = (q["wall"], q["cpu"]) if q else (None, None)
    return rows


def bench_smp(args) -> list[dict]:
    n = 1 if args.quick else 3
    rows = []
    for arch in ("ppc64", "aarch64"):
        g = build_guest(arch, "smp")
        for smp in (1, 4, 64):
            expect = f"ok smp all {smp} cpus\n"
            row = {"arch": arch, "smp": smp, "vm": med(vm_boot(arch, g, smp, expect), n)}
            if QEMU[arch]:
                row["qemu"] = med(lambda: run_process(qemu_cmd(arch, g, smp), expect), n)
            rows.append(row)
    return rows


# ---------------------------------------------------------------- 6. XICS round trips
XICS_SOURCE_COUNTS = (16, 1_000, 100_000, 1_000_000)
XICS_FIRST = 0x2000                       # past the board's own 0x1000-0x1fff sources
XICS_WORD = 0 | 5 << 32 | 1 << 41         # server 0, priority 5, MASKED
XICS_CHUNK = 65_536                       # words per set_sources() call
QEMU_XICS_BIG = 100_000                   # a QEMU-sized run, for reference


def vm_xics_run(g: PatchedGuest, iters: int, sources: int = 0) -> tuple[float, float, int]:
    """create_machine, configure `sources` masked XICS sources from the host,
    run(). Returns (configuration s, run() s, sources_memory() bytes)."""
    m = create_machine("pseries", kernel=str(g.with_iters(iters)))
    xics = m.board.active.xics
    t = now()
    for k in range(0, sources, XICS_CHUNK):
        xics.set_sources(XICS_FIRST + k, [XICS_WORD] * min(XICS_CHUNK, sources - k))
    t_cfg = now() - t
    mem = xics.sources_memory()
    if sources:                                  # configured as asked (spot check)
        assert xics.get_sources(XICS_FIRST + sources - 1, 1) == [XICS_WORD]
    dt, r = timed(lambda: m.run(wall_seconds=120))
    expect = f"ok xics bench {iters} round trips\n"
    if r.reason != "poweroff" or expect not in m.console_text or "not ok" in m.console_text:
        raise RuntimeError(f"vmachine xics_bench {iters}: {r.describe()}\n{m.console_text[-300:]}")
    if sources:
        assert xics.get_sources(XICS_FIRST + sources - 1, 1) == [XICS_WORD]
    return t_cfg, dt, mem


def bench_xics(args, tmp: Path) -> dict:
    g = PatchedGuest("ppc64", "xics_bench", "bench_iters", tmp)
    reps = 1 if args.quick else 3
    vm_xics_run(g, 100)                                      # warm-up (imports, first machine)
    t0 = min(vm_xics_run(g, 0)[1] for _ in range(reps))
    n = calibrate(lambda k: max(vm_xics_run(g, k)[1] - t0, 1e-6),
                  0.6 if args.quick else 1.5, 200)
    tn = min(vm_xics_run(g, n)[1] for _ in range(reps))
    res: dict[str, object] = {"n": n, "vm_boot_s": t0, "vm": n / max(tn - t0, 1e-9)}
    if QEMU["ppc64"]:
        qreps = 3 if args.quick else 5
        expect = lambda k: f"ok xics bench {k} round trips\n"  # noqa: E731
        cmd = lambda k: qemu_cmd("ppc64", g.with_iters(k))  # noqa: E731
        q0 = statistics.median(run_process(cmd(0), expect(0)) for _ in range(qreps))
        qn = statistics.median(run_process(cmd(n), expect(n)) for _ in range(qreps))
        res["qemu"] = n / max(qn - q0, 1e-9)
        big = max(QEMU_XICS_BIG, n)
        qb = statistics.median(run_process(cmd(big), expect(big)) for _ in range(max(1, reps)))
        res["qemu_big"], res["qemu_big_n"] = big / max(qb - q0, 1e-9), big
    # flatness: the same N with more and more configured sources; interleaved rounds
    freps = 1 if args.quick else 3
    flat: dict[int, dict[str, list[float] | int]] = {
        c: {"cfg": [], "run": [], "run0": [], "mem": 0} for c in XICS_SOURCE_COUNTS}
    for _ in range(freps):
        for c in XICS_SOURCE_COUNTS:
            cfg, dt, mem = vm_xics_run(g, n, c)
            flat[c]["cfg"].append(cfg)
            flat[c]["run"].append(dt)
            flat[c]["mem"] = mem
    for c in XICS_SOURCE_COUNTS:                 # boot+power-off with the same sources
        flat[c]["run0"].append(vm_xics_run(g, 0, c)[1])
    res["base_mem"] = vm_xics_run(g, 0, 0)[2]
    res["flat"] = [{"sources": c, "cfg_s": statistics.median(f["cfg"]), "mem": f["mem"],
                    "boot_s": min(f["run0"]),
                    "vm": n / (min(f["run"]) - min(f["run0"])) if min(f["run"]) > min(f["run0"]) else None}
                   for c, f in flat.items()]
    return res


# ---------------------------------------------------------------- 7. XIVE round trips
QEMU_XIVE_BIG = 100_000                   # a QEMU-sized run, for reference


def vm_xive_run(g: PatchedGuest, iters: int) -> float:
    """create_machine + run() of xive_bench with `iters`; returns run() time."""
    m = create_machine("pseries", kernel=str(g.with_iters(iters)))
    dt, r = timed(lambda: m.run(wall_seconds=120))
    expect = f"ok xive bench {iters} round trips\n"
    if r.reason != "poweroff" or expect not in m.console_text or "not ok" in m.console_text:
        raise RuntimeError(f"vmachine xive_bench {iters}: {r.describe()}\n{m.console_text[-300:]}")
    return dt


def bench_xive(args, tmp: Path) -> dict:
    g = PatchedGuest("ppc64", "xive_bench", "bench_iters", tmp)
    reps = 1 if args.quick else 3
    vm_xive_run(g, 100)                                      # warm-up
    t0 = min(vm_xive_run(g, 0) for _ in range(reps))
    n = calibrate(lambda k: max(vm_xive_run(g, k) - t0, 1e-6),
                  0.6 if args.quick else 1.5, 200)
    tn = min(vm_xive_run(g, n) for _ in range(reps))
    res: dict[str, object] = {"n": n, "vm_boot_s": t0, "vm": n / max(tn - t0, 1e-9)}
    if QEMU["ppc64"]:
        qreps = 3 if args.quick else 5
        expect = lambda k: f"ok xive bench {k} round trips\n"  # noqa: E731
        cmd = lambda k: qemu_cmd("ppc64", g.with_iters(k))  # noqa: E731
        q0 = statistics.median(run_process(cmd(0), expect(0)) for _ in range(qreps))
        qn = statistics.median(run_process(cmd(n), expect(n)) for _ in range(qreps))
        res["qemu"] = n / max(qn - q0, 1e-9)
        big = max(QEMU_XIVE_BIG, n)
        qb = statistics.median(run_process(cmd(big), expect(big)) for _ in range(max(1, reps)))
        res["qemu_big"], res["qemu_big_n"] = big / max(qb - q0, 1e-9), big
    return res


# ---------------------------------------------------------------- 8. GICv3 SGIs
QEMU_GIC_BIG = 100_000                    # a QEMU-sized SGI-to-self run, for reference
GIC_BCAST_SMP = (4, 16, 64, 128, 256, 512)
GIC_BCAST_SMP_QUICK = (4, 64, 512)
QEMU_BCAST_FACTOR = 20                    # QEMU broadcasts = vmachine N x this


class GicBenchGuest:
    """guests/aarch64/gic_bench.c with bench_iters / bench_bcast patched into copies."""

    def __init__(self, tmpdir: Path):
        self.elf = build_guest("aarch64", "gic_bench")
        syms = elf_symbols(self.elf, ["bench_iters", "bench_bcast"])
        self.off = {k: elf_vaddr_bytes(self.elf, a, 8)[0] for k, a in syms.items()}
        self.tmpdir = tmpdir
        self._copies: dict[tuple[int, int], Path] = {}

    def with_counts(self, iters: int, bcast: int) -> Path:
        key = (iters, bcast)
        if key not in self._copies:
            data = bytearray(self.elf.read_bytes())
            for sym, v in (("bench_iters", iters), ("bench_bcast", bcast)):
                data[self.off[sym]:self.off[sym] + 8] = struct.pack("<Q", v)
            p = self.tmpdir / f"aarch64-gic_bench-{iters}-{bcast}.elf"
            p.write_bytes(data)
            self._copies[key] = p
        return self._copies[key]

    @staticmethod
    def expect(iters: int, bcast: int, smp: int) -> str:
        return (f"ok gic bench {iters} sgi round trips\n"
                f"ok gic bench {bcast} broadcasts to {smp - 1} cpus\n")


def vm_gic_run(g: GicBenchGuest, iters: int, bcast: int, smp: int = 1) -> float:
    """create_machine + run() of gic_bench; returns run() time only."""
    m = create_machine(BOARD["aarch64"], kernel=str(g.with_counts(iters, bcast)), smp=smp)
    dt, r = timed(lambda: m.run(wall_seconds=300))
    if r.reason != "poweroff" or g.expect(iters, bcast, smp) not in m.console_text \
            or "not ok" in m.console_text:
        raise RuntimeError(f"vmachine gic_bench {iters}/{bcast} -smp {smp}: {r.describe()}\n"
                           f"{m.console_text[-400:]}")
    return dt


def qemu_gic_run(g: GicBenchGuest, iters: int, bcast: int, smp: int = 1) -> float:
    return run_process(qemu_cmd("aarch64", g.with_counts(iters, bcast), smp),
                       g.expect(iters, bcast, smp), timeout=180)


def bcast_estimate(smp: int) -> int:
    """Broadcasts for about 1 s of vmachine run() (about 0.35 ms per target vCPU
    plus about 1.5 ms of sender slices per broadcast, measured at 4-512 vCPUs)."""
    return max(4, int(1.0 / (0.0015 + 0.00035 * (smp - 1))))


def bench_gic(args, tmp: Path) -> dict:
    g = GicBenchGuest(tmp)
    reps = 1 if args.quick else 3
    # (a) SGI to self, -smp 1
    vm_gic_run(g, 100, 0)                                    # warm-up
    t0 = min(vm_gic_run(g, 0, 0) for _ in range(reps))
    n = calibrate(lambda k: max(vm_gic_run(g, k, 0) - t0, 1e-6), 0.6 if args.quick else 1.5, 200)
    tn = min(vm_gic_run(g, n, 0) for _ in range(reps))
    res: dict[str, object] = {"n": n, "vm_boot_s": t0, "vm": n / max(tn - t0, 1e-9)}
    if QEMU["aarch64"]:
        qreps = 3 if args.quick else 5
        q0 = statistics.median(qemu_gic_run(g, 0, 0) for _ in range(qreps))
        qn = statistics.median(qemu_gic_run(g, n, 0) for _ in range(qreps))
        res["qemu"] = n / (qn - q0) if qn > q0 else None     # None: lost in process noise
        big = max(QEMU_GIC_BIG, n)
        qb = statistics.median(qemu_gic_run(g, big, 0) for _ in range(reps))
        res["qemu_big"], res["qemu_big_n"] = (big / (qb - q0) if qb > q0 else None), big
    # (b) IRM=1 broadcasts
    rows = []
    res["bcast_reps"] = "best of 1 run" if args.quick else "best of 2 runs"
    res["bcast_qreps"] = "1 run" if args.quick else "median of 3 runs; one run at 256 and above"
    for smp in (GIC_BCAST_SMP_QUICK if args.quick else GIC_BCAST_SMP):
        vreps = 1 if args.quick else 2
        nb = bcast_estimate(smp)
        b0 = min(vm_gic_run(g, 0, 0, smp) for _ in range(vreps))
        bn = min(vm_gic_run(g, 0, nb, smp) for _ in range(vreps))
        row: dict[str, object] = {"smp": smp, "n": nb, "vm_boot_s": b0,
                                  "vm_ms": max(bn - b0, 0.0) / nb * 1e3}
        row["vm_us_per_target"] = row["vm_ms"] * 1e3 / (smp - 1)
        if QEMU["aarch64"]:
            qreps = 1 if args.quick or smp >= 256 else 3
            qnb = nb * QEMU_BCAST_FACTOR
            q0 = statistics.median(qemu_gic_run(g, 0, 0, smp) for _ in range(qreps))
            qn = statistics.median(qemu_gic_run(g, 0, qnb, smp) for _ in range(qreps))
            row.update(qemu_n=qnb, qemu_boot_s=q0, qemu_ms=(qn - q0) / qnb * 1e3 if qn > q0 else None)
        rows.append(row)
    res["bcast"] = rows
    return res


# ---------------------------------------------------------------- 9. GICv3 ITS LPIs
QEMU_ITS_BIG = 100_000                    # a QEMU-sized LPI run, for reference
ITS_EVENT_COUNTS = (16, 65_536)
ITS_HOST_FIRES = 20_000                   # back-to-back fire() calls per mode (guest stopped)
ITS_HOST_ACKS = 2_000                     # host MSIs the guest must take and acknowledge
LPI0 = 8192


class ItsBenchGuest:
    """guests/aarch64/its_bench.c with bench_iters / bench_events / bench_host patched."""
    SYMS = ("bench_iters", "bench_events", "bench_host")

    def __init__(self, tmpdir: Path):
        self.elf = build_guest("aarch64", "its_bench")
        syms = elf_symbols(self.elf, list(self.SYMS))
        self.off = {k: elf_vaddr_bytes(self.elf, a, 8)[0] for k, a in syms.items()}
        self.tmpdir = tmpdir
        self._copies: dict[tuple[int, int, int], Path] = {}

    def with_counts(self, iters: int, events: int = 16, host: int = 0) -> Path:
        key = (iters, events, host)
        if key not in self._copies:
            data = bytearray(self.elf.read_bytes())
            for sym, v in zip(self.SYMS, key):
                data[self.off[sym]:self.off[sym] + 8] = struct.pack("<Q", v)
            p = self.tmpdir / f"aarch64-its_bench-{iters}-{events}-{host}.elf"
            p.write_bytes(data)
            self._copies[key] = p
        return self._copies[key]

    @staticmethod
    def expect(iters: int, events: int = 16) -> str:
        return (f"ok its bench {events} extra events mapped on device 1\n"
                f"ok its bench {iters} round trips\n")


def vm_its_run(g: ItsBenchGuest, iters: int, events: int = 16) -> float:
    """create_machine + run() of its_bench; returns run() time only."""
    m = create_machine(BOARD["aarch64"], kernel=str(g.with_counts(iters, events)))
    dt, r = timed(lambda: m.run(wall_seconds=300))
    if r.reason != "poweroff" or g.expect(iters, events) not in m.console_text \
            or "not ok" in m.console_text:
        raise RuntimeError(f"vmachine its_bench {iters}/{events}: {r.describe()}\n{m.console_text[-400:]}")
    return dt


def qemu_its_run(g: ItsBenchGuest, iters: int) -> float:
    return run_process(qemu_cmd("aarch64", g.with_counts(iters)), g.expect(iters), timeout=180)


def its_host_msis(g: ItsBenchGuest, translate_once: bool) -> dict:
    """Host-injected MSIs through GsiRouting/IrqFd on an its_bench machine
    stopped after its set-up (MSI route: GITS_TRANSLATER, data 0, DeviceID 0
    -> LPI 8192 on vCPU 0)."""
    from vmachine.intc.msi_routing import GsiRouting, MsiRoute
    m = create_machine(BOARD["aarch64"], kernel=str(g.with_counts(0, 16, ITS_HOST_ACKS)))
    r = m.run(wall_seconds=60, until=lambda mm: "waiting for host msis" in mm.console_text)
    if r.reason != "event" or "not ok" in m.console_text:
        raise RuntimeError(f"its_bench host set-up: {r.describe()}\n{m.console_text[-400:]}")
    gic, its = m.board.gic, m.board.its
    rt = GsiRouting(m)
    rt.set_routing([MsiRoute(1, its.doorbell, 0, 0)])
    fd = rt.irqfd(1, translate_once=translate_once)
    assert gic.lpi_pending(0) == []
    # (1) fire() back to back, the guest stopped: one pending latch
    k = ITS_HOST_FIRES
    dt, _ = timed(lambda: [fd.fire() for _ in range(k)])
    pending_after = gic.lpi_pending(0)
    res = {"fires": k, "fire_per_s": k / dt, "fire_us": dt / k * 1e6, "pending_after": len(pending_after),
           "pending_ok": pending_after == [LPI0]}
    # (2) one fire() per round boundary until the guest has acknowledged ITS_HOST_ACKS
    fired = [0]

    def hook():
        fd.fire()
        fired[0] += 1
    m.round_hooks.append(hook)
    dt2, r2 = timed(lambda: m.run(wall_seconds=300))
    m.round_hooks.remove(hook)
    acked_line = f"ok its bench {ITS_HOST_ACKS} host lpis acked\n"
    if r2.reason != "poweroff" or acked_line not in m.console_text or "not ok" in m.console_text:
        raise RuntimeError(f"its_bench host msis: {r2.describe()}\n{m.console_text[-400:]}")
    res.update(acked=ITS_HOST_ACKS, round_fires=fired[0], run_s=dt2, acked_per_s=ITS_HOST_ACKS / dt2,
               errors=len(fd.errors))
    rt.close()
    return res


def bench_its(args, tmp: Path) -> dict:
    g = ItsBenchGuest(tmp)
    reps = 1 if args.quick else 3
    # (a) LPI round trips, -smp 1, 16 extra events
    vm_its_run(g, 100)                                       # warm-up
    t0 = min(vm_its_run(g, 0) for _ in range(reps))
    n = calibrate(lambda k: max(vm_its_run(g, k) - t0, 1e-6), 0.6 if args.quick else 1.5, 200)
    tn = min(vm_its_run(g, n) for _ in range(reps))
    res: dict[str, object] = {"n": n, "vm_boot_s": t0, "vm": n / max(tn - t0, 1e-9)}
    if QEMU["aarch64"]:
        qreps = 3 if args.quick else 5
        q0 = statistics.median(qemu_its_run(g, 0) for _ in range(qreps))
        qn = statistics.median(qemu_its_run(g, n) for _ in range(qreps))
        res["qemu"] = n / (qn - q0) if qn > q0 else None     # None: lost in process noise
        big = max(QEMU_ITS_BIG, n)
        qb = statistics.median(qemu_its_run(g, big) for _ in range(reps))
        res["qemu_big"], res["qemu_big_n"] = (big / (qb - q0) if qb > q0 else None), big
    # (b) flatness: the same N with 16 or 65,536 extra mapped events; interleaved rounds
    flat = {c: {"run": [], "run0": []} for c in ITS_EVENT_COUNTS}
    for _ in range(reps):
        for c in ITS_EVENT_COUNTS:
            flat[c]["run0"].append(vm_its_run(g, 0, c))
            flat[c]["run"].append(vm_its_run(g, n, c))
    res["flat"] = [{"events": c, "boot_s": min(f["run0"]),          # None: lost in the noise
                    "vm": n / (min(f["run"]) - min(f["run0"])) if min(f["run"]) > min(f["run0"]) else None}
                   for c, f in flat.items()]
    # (c) host-injected MSIs: translate-once vs route-every-time IrqFd
    res["host"] = {mode: its_host_msis(g, mode == "translate-once")
                   for mode in ("route-every-time", "translate-once")}
    return res


# ---------------------------------------------------------------- 11. guest clock per round trip
CLOCK_N = 4_000                           # round trips per measuring run (--quick: 1,000)


def qemu_read_after_poweroff(cmd: list[str], expect: str, addr: int, count: int,
                             timeout: float = 300) -> list[int]:
    """Run QEMU with -no-shutdown and a QMP socket; once the guest has powered
    off (run state "shutdown": the machine is kept, paused), read `count`
    64-bit words of guest-physical memory at `addr` (HMP `xp`, in the
    guest's byte order), quit, and check that stdout holds `expect`."""
    import json
    import socket
    sock_dir = Path(tempfile.mkdtemp(prefix="vmachine-bench-qmp-"))
    sock = sock_dir / "qmp"
    p = subprocess.Popen([*cmd, "-no-shutdown", "-qmp", f"unix:{sock},server=on,wait=off"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = now() + timeout
    try:
        while not sock.exists():
            if p.poll() is not None or now() > end:
                raise RuntimeError(f"{cmd[0]}: no QMP socket (rc {p.returncode})")
            time.sleep(0.005)
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(sock))
        f = s.makefile("rw")

        def qmp(command: str, **arguments: object) -> dict:
            f.write(json.dumps({"execute": command, **({"arguments": arguments} if arguments else {})}) + "\n")
            f.flush()
            while True:                              # skip asynchronous events
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    return reply
        json.loads(f.readline())                     # greeting
        qmp("qmp_capabilities")
        while qmp("query-status")["return"]["status"] != "shutdown":
            if now() > end:
                raise RuntimeError(f"{cmd[0]}: the guest did not power off within {timeout} s")
            time.sleep(0.01)
        text = qmp("human-monitor-command", **{"command-line": f"xp /{count}gx {addr:#x}"})["return"]
        words = [int(w, 16) for line in text.splitlines() if ":" in line for w in line.split(":", 1)[1].split()]
        qmp("quit")
        s.close()
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        shutil.rmtree(sock_dir, ignore_errors=True)
    if expect.encode() not in out:
        raise RuntimeError(f"{cmd[0]}: {expect!r} not in the output: {out.decode()[-300:]} {err.decode()[-300:]}")
    if len(words) != count:
        raise RuntimeError(f"xp returned {text!r}")
    return words


class ClockCase:
    """One round-trip bench guest with its `bench_clock` (guest clock before
    and after the timed loop, and its frequency)."""

    def __init__(self, name: str, arch: str, path: Callable[[int], Path], expect: Callable[[int], str],
                 elf: Path):
        self.name, self.arch, self.path, self.expect = name, arch, path, expect
        self.addr = elf_symbols(elf, ["bench_clock"])["bench_clock"]
        self.order = ">" if arch == "ppc64" else "<"

    def vm(self, n: int) -> dict:
        m = create_machine(BOARD[self.arch], kernel=str(self.path(n)))
        r = m.run(wall_seconds=300)
        if r.reason != "poweroff" or self.expect(n) not in m.console_text or "not ok" in m.console_text:
            raise RuntimeError(f"vmachine {self.name} {n}: {r.describe()}\n{m.console_text[-300:]}")
        t0, t1, hz = (m.ram.read_int(self.addr + 8 * i, 8, "big" if self.order == ">" else "little")
                      for i in range(3))
        return {"ticks": t1 - t0, "hz": hz, "insns": r.insns, "cpu_time": m.cpus[0].time}

    def qemu(self, n: int) -> dict:
        cmd = qemu_cmd(self.arch, self.path(n)) + ["-icount", "shift=0"]
        t0, t1, hz = qemu_read_after_poweroff(cmd, self.expect(n), self.addr, 3)
        return {"ticks": t1 - t0, "hz": hz}


def clock_cases(tmp: Path) -> list[ClockCase]:
    gic, its = GicBenchGuest(tmp), ItsBenchGuest(tmp)
    xics = PatchedGuest("ppc64", "xics_bench", "bench_iters", tmp)
    xive = PatchedGuest("ppc64", "xive_bench", "bench_iters", tmp)
    return [
        ClockCase("GICv3 SGI to self", "aarch64", lambda n: gic.with_counts(n, 0),
                  lambda n: GicBenchGuest.expect(n, 0, 1), gic.elf),
        ClockCase("ITS LPI", "aarch64", lambda n: its.with_counts(n), lambda n: ItsBenchGuest.expect(n), its.elf),
        ClockCase("XICS IPI", "ppc64", xics.with_iters, lambda n: f"ok xics bench {n} round trips\n", xics.elf),
        ClockCase("XIVE IPI", "ppc64", xive.with_iters, lambda n: f"ok xive bench {n} round trips\n", xive.elf),
    ]


def bench_clock(args, tmp: Path) -> dict:
    """Guest-visible time per round trip: (clock over the timed loop with N
    round trips - the same with 0) / N, read by the guest itself
    (bench_clock), on vmachine and on QEMU -icount shift=0."""
    n = 1_000 if args.quick else CLOCK_N
    rows = []
    for c in clock_cases(tmp):
        v0, vn = c.vm(0), c.vm(n)
        ns = lambda a, b: (b["ticks"] - a["ticks"]) * 1e9 / b["hz"] / n  # noqa: E731
        row: dict[str, object] = {"name": c.name, "arch": c.arch, "n": n, "hz": vn["hz"],
                                  "vm_ns": ns(v0, vn), "vm_insns": (vn["insns"] - v0["insns"]) / n,
                                  "vm_cpu_time": (vn["cpu_time"] - v0["cpu_time"]) / n}
        if QEMU[c.arch]:
            q0, qn = c.qemu(0), c.qemu(n)
            row["qemu_ns"] = ns(q0, qn)
        rows.append(row)
    return {"rows": rows, "n": n}


# ---------------------------------------------------------------- 12. a long guest-time wait
WAIT_MS = 1_000
WAIT_MODES = {"aarch64": (("spin", 1), ("wfi", 2)), "ppc64": (("spin", 1), ("cede", 2))}


class WaitGuest:
    """guests/<arch>/timer_wait.c with wait_ms and wait_mode patched."""

    def __init__(self, arch: str, tmpdir: Path):
        self.arch, self.tmpdir = arch, tmpdir
        self.elf = build_guest(arch, "timer_wait")
        syms = elf_symbols(self.elf, ["wait_ms", "wait_mode"])
        self.off = {k: elf_vaddr_bytes(self.elf, a, 8)[0] for k, a in syms.items()}
        self.order = ">" if arch == "ppc64" else "<"

    def with_wait(self, ms: int, mode: int) -> Path:
        p = self.tmpdir / f"{self.arch}-timer_wait-{ms}-{mode}.elf"
        if not p.exists():
            data = bytearray(self.elf.read_bytes())
            for sym, v in (("wait_ms", ms), ("wait_mode", mode)):
                data[self.off[sym]:self.off[sym] + 8] = struct.pack(self.order + "Q", v)
            p.write_bytes(data)
        return p


def wait_process(cmd: list[str], expect: str, reps: int) -> float:
    """Host time of a whole process: one run when it takes over 5 s (long
    enough to time), else the median of `reps`."""
    first = run_process(cmd, expect, timeout=900)
    if first > 5 or reps <= 1:
        return first
    return statistics.median([first] + [run_process(cmd, expect, timeout=900) for _ in range(reps - 1)])


def bench_wait(args, tmp: Path) -> list[dict]:
    """Host time of a guest waiting WAIT_MS of its own time: vmachine run()
    in-process, vmachine and QEMU as whole processes with the same command
    line, and QEMU -icount shift=0 (time = instructions, as vmachine)."""
    reps = 1 if args.quick else 3
    py = sys.executable
    rows = []
    for arch, modes in WAIT_MODES.items():
        g = WaitGuest(arch, tmp)
        for what, mode in modes:
            path = g.with_wait(WAIT_MS, mode)
            expect = f"ok timer wait {what} {WAIT_MS} ms\n"
            m = create_machine(BOARD[arch], kernel=str(path))
            dt, r = timed(lambda: m.run(wall_seconds=600))
            if r.reason != "poweroff" or expect not in m.console_text or "not ok" in m.console_text:
                raise RuntimeError(f"vmachine timer_wait {arch} {what}: {r.describe()}\n{m.console_text[-300:]}")
            row: dict[str, object] = {"arch": arch, "what": what, "ms": WAIT_MS, "vm_run": dt,
                                      "guest_ns": m.clock.now, "insns": r.insns}
            qcmd = qemu_cmd(arch, path)
            row["vm_proc"] = wait_process([py, "-m", "vmachine", *qcmd[1:]], expect, reps)
            if QEMU[arch]:
                row["qemu"] = wait_process(qcmd, expect, reps)
                row["qemu_icount"] = wait_process(qcmd + ["-icount", "shift=0"], expect, reps)
            rows.append(row)
    return rows


# ---------------------------------------------------------------- output
def fmt(v: object, spec: str = ".0f") -> str:
    return "n/a" if v is None else format(v, spec)


def pct(a: object, b: object) -> str:
    return "n/a" if a is None or b is None else f"{100 * a / b:.1f} %"


def tables(r: dict) -> list[tuple[str, list[str], list[list[str]], list[str]]]:
    out = []
    if "loop" in r:
        rows = []
        for x in r["loop"]:
            rows.append([x["arch"], fmt(x["raw"]), fmt(x["raw_chook"]), pct(x["raw_chook"], x["raw"]),
                         fmt(x["engine"]), pct(x["engine"], x["raw"]),
                         fmt(x["vm"]), pct(x["vm"], x["raw"]), fmt(x["vm_bigq"]), fmt(x.get("qemu")),
                         pct(x["vm"], x.get("qemu"))])
        out.append(("1. Guest MIPS, 10-instruction ALU loop (guests/<arch>/loop.c); goal vmachine >= 25 % of QEMU",
                    ["arch", "raw Unicorn (no hooks)", "raw + empty C block hook", "% raw",
                     f"raw + slot.c engine, slots of {DEFAULT_QUANTUM}", "% raw", "vmachine run()", "% raw",
                     f"vmachine run(), quantum {LOOP_BIG_QUANTUM:,}", "QEMU 7.2", "vmachine / QEMU"],
                    rows,
                    ["raw Unicorn: the loop bytes alone, one emu_start to the loop's end (best of runs); "
                     "empty C block hook: tools/bench_hooks.c's bench_empty_block; slot.c engine: "
                     "vmachine.cpu.slot.SlotEngine (slot.c's counting block hook) run in slots of "
                     f"{DEFAULT_QUANTUM} instructions on the raw Unicorn, as the machine runs a lone vCPU, "
                     "without the machine; vmachine run(): default quantum "
                     f"({DEFAULT_QUANTUM}); the quantum {LOOP_BIG_QUANTUM:,} column is a diagnostic "
                     "(`create_machine(..., quantum=...)`, the CLI's --quantum maximum), not the default"] +
                    [f"vmachine: {x['arch']} loop of {x['vm_iters']:,} iterations; boot+power-off "
                     f"of the 0-iteration guest ({x['vm_boot_s']:.3f} s run()) subtracted; QEMU: "
                     f"{x.get('qemu_iters', 0):,} iterations, whole process minus the 0-iteration one"
                     for x in r["loop"]]))
    if "mmio" in r:
        x = r["mmio"]
        out.append(("2a. RAM loop (ldx/add/stdx/addi/and/bdnz) on raw Unicorn PPC64, MIPS",
                    ["MMIO set-up", "MIPS", "% of no MMIO"],
                    [["no MMIO window", fmt(x["ram_none"]), "100.0 %"],
                     ["window, decode-at-PC (AccessAssembler)", fmt(x["ram_decode"]),
                      pct(x["ram_decode"], x["ram_none"])],
                     ["window + UC_HOOK_MEM_READ|WRITE on its range", fmt(x["ram_hook"]),
                      pct(x["ram_hook"], x["ram_none"])]], []))
        out.append(("2b. Cost per 8-byte MMIO access (device sees exactly one 8-byte access)",
                    ["approach", "ld, µs/access", "std, µs/access"],
                    [["decode-at-PC", fmt(x["ld_decode_us"], ".2f"), fmt(x["std_decode_us"], ".2f")],
                     ["mem hook on range", fmt(x["ld_hook_us"], ".2f"), fmt(x["std_hook_us"], ".2f")]],
                    []))
    if "boot" in r:
        out.append(("3. hello boot to power-off, median (s)",
                    ["board", "vmachine create+run", "QEMU process", "vmachine / QEMU"],
                    [[x["board"], fmt(x["vm"], ".3f"), fmt(x.get("qemu"), ".3f"),
                      pct(x["vm"], x.get("qemu"))] for x in r["boot"]], []))
    if "cold" in r:
        rows = r["cold"]
        out.append(("4. Cold start: whole process, hello guest, median (s); goal vmachine <= 200 % of QEMU",
                    ["board", "command", "wall", "CPU (user+sys)", "wall / QEMU", "CPU / QEMU"],
                    [[BOARD.get(x["arch"], "-"), x["what"], fmt(x["wall"], ".3f"), fmt(x["cpu"], ".3f"),
                      "-" if x["what"].startswith(("QEMU", "python")) else pct(x["wall"], x["qemu_wall"]),
                      "-" if x["what"].startswith(("QEMU", "python")) else pct(x["cpu"], x["qemu_cpu"])]
                     for x in rows],
                    [f"median of {rows[0]['n']} runs of each command, interleaved, after 2 warm-up runs; "
                     f"load average {rows[0]['load'][0]:.2f} at the start, {rows[0]['load'][1]:.2f} at the end",
                     "commands: `python -m vmachine run ARCH/hello`; `python -m vmachine` + the QEMU command "
                     "line of the next row (tests/guestrun.py's: pseries with -bios bootrom, virt with "
                     "-cpu cortex-a57); guests and firmware cached (a cache hit is a stamp check)",
                     "bytecode: a temporary -X pycache_prefix filled by the warm-up; \"not byte-compiled\": "
                     "the same without vmachine's modules and PYTHONDONTWRITEBYTECODE=1, so each run compiles "
                     "them (an editable checkout where that variable is set)"]))
    if "smp" in r:
        out.append(("5. smp guest boot to power-off, median (s)",
                    ["board", "-smp", "vmachine create+run", "QEMU process", "vmachine / QEMU"],
                    [[BOARD[x["arch"]], str(x["smp"]), fmt(x["vm"], ".3f"), fmt(x.get("qemu"), ".3f"),
                      pct(x["vm"], x.get("qemu"))] for x in r["smp"]], []))
    if "xics" in r:
        x = r["xics"]
        out.append(("6a. XICS interrupt round trips per second (guests/ppc64/xics_bench.c)",
                    ["board", "vmachine run()", "QEMU 7.2, same N", f"QEMU 7.2, N = {x.get('qemu_big_n', QEMU_XICS_BIG):,}",
                     "vmachine / QEMU (same N)", "vmachine / QEMU (large N)"],
                    [["pseries", fmt(x["vm"]), fmt(x.get("qemu")), fmt(x.get("qemu_big")),
                      pct(x["vm"], x.get("qemu")), pct(x["vm"], x.get("qemu_big"))]],
                    [f"N = {x['n']:,} round trips (H_IPI self -> 0x500 -> H_XIRR, H_IPI 0xff, H_EOI); "
                     f"the 0-round-trip run subtracted (vmachine run() {x['vm_boot_s']:.3f} s, best of runs; "
                     "QEMU: whole processes, median of runs)"]))
        base = x["flat"][0]["vm"]
        out.append(("6b. XICS flatness: vmachine round trips per second with configured sources",
                    ["configured sources", "configuration (s, excluded)", "sources_memory()",
                     "0-round-trip run() (s)", "round trips / s", "% of 16 sources"],
                    [[f"{f['sources']:,}", fmt(f["cfg_s"], ".3f"), f"{f['mem'] / 1024:,.0f} KiB",
                      fmt(f["boot_s"], ".3f"), fmt(f["vm"]), pct(f["vm"], base)] for f in x["flat"]],
                    [f"sources from {XICS_FIRST:#x}, word {XICS_WORD:#x} (server 0, priority 5, masked), "
                     f"set with set_sources() in chunks of {XICS_CHUNK:,}; same N = {x['n']:,}; "
                     f"sources_memory() includes the board's own 0x1000-0x1fff blocks "
                     f"({x['base_mem'] / 1024:,.0f} KiB with nothing configured)"]))
    if "xive" in r:
        x = r["xive"]
        out.append(("7a. XIVE interrupt round trips per second (guests/ppc64/xive_bench.c)",
                    ["board", "vmachine run()", "QEMU 7.2, same N", f"QEMU 7.2, N = {x.get('qemu_big_n', QEMU_XIVE_BIG):,}",
                     "vmachine / QEMU (same N)", "vmachine / QEMU (large N)"],
                    [["pseries (CAS to XIVE)", fmt(x["vm"]), fmt(x.get("qemu")), fmt(x.get("qemu_big")),
                      pct(x["vm"], x.get("qemu")), pct(x["vm"], x.get("qemu_big"))]],
                    [f"N = {x['n']:,} round trips (ESB trigger store -> 0x500 -> TIMA ack, queue entry, "
                     f"ESB EOI load, TIMA CPPR 0xff store); the 0-round-trip run subtracted (vmachine run() "
                     f"{x['vm_boot_s']:.3f} s, best of runs; QEMU: whole processes, median of runs)"]))
        c = r.get("xics")
        ratio = lambda k: pct(x.get(k), c.get(k)) if c else "n/a"  # noqa: E731
        out.append(("7b. XIVE / XICS round-trip rate, this run (7a over 6a)",
                    ["", "vmachine run()", "QEMU 7.2, same N", "QEMU 7.2, large N"],
                    [["XIVE round trips / s", fmt(x["vm"]), fmt(x.get("qemu")), fmt(x.get("qemu_big"))],
                     ["XICS round trips / s", fmt(c["vm"]) if c else "n/a", fmt(c.get("qemu")) if c else "n/a",
                      fmt(c.get("qemu_big")) if c else "n/a"],
                     ["XIVE / XICS", ratio("vm"), ratio("qemu"), ratio("qemu_big")]],
                    [] if c else ["section 6 not run: no XICS figures to compare with"]))
    if "gic" in r:
        x = r["gic"]
        out.append(("8a. GICv3 SGI-to-self round trips per second (guests/aarch64/gic_bench.c)",
                    ["board", "vmachine run()", "QEMU 7.2, same N", f"QEMU 7.2, N = {x.get('qemu_big_n', QEMU_GIC_BIG):,}",
                     "vmachine / QEMU (same N)", "vmachine / QEMU (large N)"],
                    [["virt,gic-version=3", fmt(x["vm"]), fmt(x.get("qemu")), fmt(x.get("qemu_big")),
                      pct(x["vm"], x.get("qemu")), pct(x["vm"], x.get("qemu_big"))]],
                    [f"N = {x['n']:,} round trips (ICC_SGI1R_EL1 SGI 1 to self -> IRQ -> ICC_IAR1_EL1, "
                     f"ICC_EOIR1_EL1), -smp 1; the 0-round-trip run subtracted (vmachine run() "
                     f"{x['vm_boot_s']:.3f} s, best of runs; QEMU: whole processes, median of runs)"]))
        rows = []
        for b in x["bcast"]:
            ratio = (f"{b['vm_ms'] / b['qemu_ms']:.0f}x" if b.get("qemu_ms") else "n/a")
            rows.append([str(b["smp"]), f"{b['n']:,}", fmt(b["vm_boot_s"], ".2f"), fmt(b["vm_ms"], ".2f"),
                         fmt(b["vm_us_per_target"], ".0f"), f"{b['qemu_n']:,}" if "qemu_n" in b else "n/a",
                         fmt(b.get("qemu_boot_s"), ".2f"), fmt(b.get("qemu_ms"), ".3f"), ratio])
        out.append(("8b. Cost of one IRM=1 SGI broadcast to every other vCPU (guests/aarch64/gic_bench.c)",
                    ["-smp", "vmachine N", "vmachine 0-broadcast run() (s)", "vmachine ms / broadcast",
                     "vmachine µs / target vCPU", "QEMU N", "QEMU 0-broadcast process (s)",
                     "QEMU ms / broadcast", "vmachine / QEMU"],
                    rows,
                    ["each target vCPU waits in WFI with IRQs unmasked, takes SGI 2, IAR1 + EOIR1; the "
                     "sender waits for every acknowledgement before the next broadcast; (time with N "
                     f"broadcasts - time with 0) / N, host time around run() (vmachine, {x['bcast_reps']} "
                     f"each) or the whole process (QEMU, {x['bcast_qreps']}); the 0-broadcast runs "
                     "start and initialise every vCPU too"]))
    if "its" in r:
        x = r["its"]
        out.append(("9a. GICv3 ITS LPI round trips per second (guests/aarch64/its_bench.c)",
                    ["board", "vmachine run()", "QEMU 7.2, same N", f"QEMU 7.2, N = {x.get('qemu_big_n', QEMU_ITS_BIG):,}",
                     "vmachine / QEMU (same N)", "vmachine / QEMU (large N)"],
                    [["virt,gic-version=3", fmt(x["vm"]), fmt(x.get("qemu")), fmt(x.get("qemu_big")),
                      pct(x["vm"], x.get("qemu")), pct(x["vm"], x.get("qemu_big"))]],
                    [f"N = {x['n']:,} round trips (32-bit store of EventID 0 to GITS_TRANSLATER, DeviceID 0 "
                     f"-> LPI 8192 -> IRQ -> ICC_IAR1_EL1, ICC_EOIR1_EL1), -smp 1; the 0-round-trip run "
                     f"subtracted (vmachine run() {x['vm_boot_s']:.3f} s, best of runs; QEMU: whole "
                     "processes, median of runs)"]))
        base = x["flat"][0]["vm"]
        out.append(("9b. ITS flatness: vmachine LPI round trips per second with extra mapped events",
                    ["extra mapped events (ITEs)", "0-round-trip run() incl. mapping (s)", "round trips / s",
                     "% of 16 events"],
                    [[f"{f['events']:,}", fmt(f["boot_s"], ".3f"), fmt(f["vm"]), pct(f["vm"], base)]
                     for f in x["flat"]],
                    [f"same N = {x['n']:,}; the guest maps the extra events on device 1 (MAPD + MAPTI in "
                     "batches of 64 per CWRITER write, LPIs 8193.. disabled) before the timed loop; "
                     "(run with N - run with 0, same event count), best of runs"]))
        rows = []
        for mode, h in x["host"].items():
            rows.append([mode, f"{h['fires']:,}", fmt(h["fire_per_s"]), fmt(h["fire_us"], ".2f"),
                         f"{h['pending_after']} ({'LPI 8192' if h['pending_ok'] else 'unexpected'})",
                         f"{h['acked']:,}", f"{h['round_fires']:,}", fmt(h["acked_per_s"]), str(h["errors"])])
        out.append(("9c. Host-injected MSIs on vmachine: IrqFd translate-once vs route-every-time",
                    ["IrqFd mode", "fire() calls, guest stopped", "fire() / s", "µs / fire()",
                     "LPIs pending after them", "LPIs acked by the guest", "fire() calls (one per round)",
                     "acked LPIs / s (run())", "errors"],
                    rows,
                    ["its_bench with bench_host patched, stopped (run(until=...)) after its ITS set-up; "
                     "GsiRouting with one MsiRoute (GITS_TRANSLATER, data 0, DeviceID 0 -> LPI 8192, "
                     "vCPU 0); fire() back to back coalesces into one pending LPI; then a round hook "
                     "fires once per round boundary and run() lasts until the guest has acknowledged "
                     f"{ITS_HOST_ACKS:,} LPIs (IAR1 + EOIR1) and powered off"]))
    if "clock" in r:
        x = r["clock"]
        rows = []
        for c in x["rows"]:
            q = c.get("qemu_ns")
            dev = None if q is None else 100 * (c["vm_ns"] - q) / q
            rows.append([c["name"], BOARD[c["arch"]], fmt(c["vm_ns"], ".1f"), fmt(c["vm_insns"], ".1f"),
                         fmt(q, ".1f"), "n/a" if dev is None else f"{dev:+.1f} %",
                         "n/a" if dev is None else ("yes" if abs(dev) <= 25 else "no")])
        out.append(("11. Guest-visible time per interrupt round trip (ns); goal vmachine within +-25 % of "
                    "QEMU -icount shift=0",
                    ["round trip", "board", "vmachine (guest clock)", "vmachine (instructions)",
                     "QEMU 7.2 -icount shift=0 (guest clock)", "vmachine vs QEMU", "within 25 %"],
                    rows,
                    [f"each guest reads its clock (CNTVCT_EL0 at 62.5 MHz, timebase at 512 MHz) before and "
                     f"after its timed loop into `bench_clock` (never printed); (difference with N = "
                     f"{x['n']:,} round trips - difference with 0) / N. Read from guest RAM after the run: "
                     "vmachine in-process; QEMU with -no-shutdown and a QMP socket, HMP `xp` once the "
                     "guest has powered off",
                     "vmachine (instructions): RunResult.insns with N minus with 0, / N: for a lone vCPU "
                     "the guest clock is the instructions it executed (1 ns each), as QEMU's with "
                     "-icount shift=0"]))
    if "wait" in r:
        rows = []
        for w in r["wait"]:
            rows.append([BOARD[w["arch"]], w["what"], f"{w['ms']:,}", fmt(w["guest_ns"] / 1e9, ".3f"),
                         fmt(w["vm_run"], ".2f"), fmt(w["insns"] / max(w["vm_run"], 1e-9) / 1e6),
                         fmt(w["vm_proc"], ".2f"), fmt(w.get("qemu"), ".2f"), fmt(w.get("qemu_icount"), ".2f"),
                         "yes" if w["vm_proc"] < 2 else "no"])
        out.append((f"12. A guest waiting {WAIT_MS:,} ms of guest time (guests/<arch>/timer_wait.c); "
                    "goal vmachine < 2 s of host time",
                    ["board", "wait", "guest ms", "vmachine guest time at power-off (s)", "vmachine run() (s)",
                     "vmachine MIPS during run()", "vmachine process (s)", "QEMU 7.2 process (s)",
                     "QEMU -icount shift=0 process (s)", "< 2 s"],
                    rows,
                    ["spin: the timer armed 1 s ahead with its interrupt masked (AArch64 CNTV IMASK; PPC "
                     "decrementer with MSR[EE] clear), the CPU polls its clock (isb + CNTVCT_EL0; mftb) "
                     "until 1 s has passed; wfi: CNTV armed, PPI 27 enabled in the GIC, PSTATE.I masked, "
                     "WFI until 1 s has passed; cede: the decrementer armed, H_CEDE until it wakes the "
                     "CPU (its 0x900 interrupt is taken once)",
                     "processes: the QEMU command line of guests/NOTES.md, on qemu-system-* and on "
                     "`python -m vmachine` (cold start included); a process that takes over 5 s is "
                     "timed once, the others median of runs; vmachine run(): one in-process run"]))
    summary = target_rows(r)
    if summary:
        out.append(("Targets (issue 10)", ["target", "goal", "measured", "met"], summary,
                    ["round-trip rates against QEMU's at N = 100,000 (the same-N QEMU figure is the "
                     "difference of two ~0.1 s processes and too noisy to judge by)"]))
    return out


def target_rows(r: dict) -> list[list[str]]:
    rows = []

    def add(what: str, goal: str, measured: str, met: bool | None) -> None:
        rows.append([what, goal, measured, "n/a" if met is None else ("yes" if met else "no")])
    for x in r.get("loop", []):
        q = x.get("qemu")
        add(f"ALU loop MIPS, {x['arch']}", ">= 25 % of QEMU",
            f"{x['vm']:.0f} vs {fmt(q)} MIPS = {pct(x['vm'], q)}", None if q is None else x["vm"] >= 0.25 * q)
    for key, what, goal in (("xics", "XICS round trips / s", 0.10), ("xive", "XIVE round trips / s", 0.10),
                            ("gic", "GICv3 SGI round trips / s", 0.10), ("its", "ITS LPI round trips / s", 1.0)):
        x = r.get(key)
        if x:
            q = x.get("qemu_big")
            add(what, f">= {goal:.0%} of QEMU", f"{x['vm']:.0f} vs {fmt(q)} = {pct(x['vm'], q)}",
                None if q is None else x["vm"] >= goal * q)
    for c in r.get("clock", {}).get("rows", []):
        q = c.get("qemu_ns")
        dev = "" if q is None else f" ({100 * (c['vm_ns'] - q) / q:+.1f} %)"
        add(f"guest time per round trip, {c['name']}", "within +-25 % of QEMU -icount shift=0",
            f"{c['vm_ns']:.1f} vs {fmt(q, '.1f')} ns{dev}", None if q is None else abs(c["vm_ns"] - q) <= 0.25 * q)
    for w in r.get("wait", []):
        add(f"{w['ms']:,} ms guest wait, {w['arch']} {w['what']}", "< 2 s host time (process)",
            f"{w['vm_proc']:.2f} s (QEMU {fmt(w.get('qemu'), '.2f')} s)", w["vm_proc"] < 2)
    return rows


def render(r: dict, markdown: bool) -> str:
    lines = []
    for title, head, rows, notes in tables(r):
        if markdown:
            lines += [f"### {title}", "", "| " + " | ".join(head) + " |",
                      "|" + "|".join("---" for _ in head) + "|"]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
        else:
            w = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
            lines += [title, "  ".join(h.ljust(w[i]) for i, h in enumerate(head)),
                      "  ".join("-" * x for x in w)]
            lines += ["  ".join(c.ljust(w[i]) for i, c in enumerate(row)) for row in rows]
            lines += [f"  note: {n}" for n in notes] + [""]
    return "\n".join(lines)


def host_info() -> str:
    qv = "absent"
    q = QEMU["ppc64"] or QEMU["aarch64"]
    if q:
        qv = subprocess.run([q, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return (f"nproc {os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}, "
            f"unicorn {unicorn.__version__}, {qv}, DEFAULT_QUANTUM {DEFAULT_QUANTUM}, "
            f"load average at start {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs, fewer repetitions")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables (BENCHMARKS.md)")
    ap.add_argument("--only", default="1,2,3,4,5,6,7,8,9,11,12", help="sections to run, e.g. 1,3")
    args = ap.parse_args(argv)
    only = {int(s) for s in args.only.split(",") if s}
    for arch, q in QEMU.items():
        if not q:
            print(f"note: qemu-system-{arch} not found: QEMU columns are n/a", file=sys.stderr)
    host_info_text = host_info()
    t_all = now()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="vmachine-bench-") as tmp:
        lgs = {a: LoopGuest(a, Path(tmp)) for a in ("ppc64", "aarch64")} if 1 in only else {}
        build_firmware()
        for a in ("ppc64", "aarch64"):
            build_guest(a, "hello"), build_guest(a, "smp")
        build_guest("ppc64", "xics_bench"), build_guest("ppc64", "xive_bench")
        build_guest("aarch64", "gic_bench"), build_guest("aarch64", "its_bench")
        build_guest("ppc64", "timer_wait"), build_guest("aarch64", "timer_wait")
        steps = [(1, "loop", lambda: bench_loop(args, lgs)), (2, "mmio", lambda: bench_mmio(args)),
                 (3, "boot", lambda: bench_boot(args)), (4, "cold", lambda: bench_cold_start(args)),
                 (5, "smp", lambda: bench_smp(args)), (6, "xics", lambda: bench_xics(args, Path(tmp))),
                 (7, "xive", lambda: bench_xive(args, Path(tmp))),
                 (8, "gic", lambda: bench_gic(args, Path(tmp))),
                 (9, "its", lambda: bench_its(args, Path(tmp))),
                 (11, "clock", lambda: bench_clock(args, Path(tmp))),
                 (12, "wait", lambda: bench_wait(args, Path(tmp)))]
        for num, key, fn in steps:
            if num in only:
                t = now()
                results[key] = fn()
                print(f"[section {num} ({key}) took {now() - t:.1f} s]", file=sys.stderr, flush=True)
    print("Host: " + host_info_text)
    print(f"Command: python tools/bench.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"Total benchmark time: {now() - t_all:.1f} s\n")
    print(render(results, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())

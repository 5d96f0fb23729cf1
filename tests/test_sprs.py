"""No guest instruction kills the process or leaves a vCPU that never moves:
every SPR (ppc64) and system-register encoding (AArch64) gives a value or an
architected interrupt, and accesses to impossible addresses (EA -4) give what
QEMU 7.2 gives or end the run with a one-line report.

The timebase-derived SPRs against QEMU: guests/ppc64/sprs.c (test_guests.py)."""
from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from unicorn import arm64_const as A

from vmachine.cpu.aarch64 import Aarch64Cpu
from vmachine.cpu.base import CpuState
from vmachine.cpu.ppc64 import MSR_ME, MSR_SF, Ppc64Cpu
from vmachine.machine import Machine

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def probe():
    """tests/sysreg_probe.py in a subprocess: a crash there is a failed
    assertion here, not a dead pytest."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "sysreg_probe.py")], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, f"probe died with status {p.returncode}: {p.stderr.decode()[-2000:]}"
    return json.loads(p.stdout)


VALUE = re.compile(r"^(value(=0x[0-9a-f]+)?|unchanged)$")


def test_every_ppc64_spr_gives_a_value_or_a_program_check(probe):
    out = probe["ppc64"]
    assert len(out) == 2048
    allowed = re.compile(r"^(value(=0x[0-9a-f]+)?|unchanged|vector 0x700 reason 0x40000"
                         r"|vector 0xf60 reason 0x0)$")
    assert {k: v for k, v in out.items() if not allowed.match(v)} == {}
    # the timebase-derived SPRs: values; their writes and HDEC: privileged (QEMU 7.2 pseries)
    for n in (308, 309, 849, 268, 269, 284, 285):
        assert out[f"mfspr {n}"].startswith("value="), n
    assert out["mfspr 351"] == out["mtspr 351"].replace("value", "unchanged") == "unchanged"
    for k in ("mtspr 308", "mtspr 309", "mfspr 310", "mtspr 310", "mtspr 849", "mfspr 318",
              "mtspr 318", "mfspr 0", "mfspr 4", "mtspr 1023"):
        assert out[k] == "vector 0x700 reason 0x40000", k
    assert out["mfspr 287"] == "value=0x4e1200"                 # QEMU's POWER9 PVR
    assert out["mfspr 128"] == out["mtspr 131"] == "vector 0xf60 reason 0x0"   # TM: facility
    # every trapped access is one the sweep saw trapped
    assert len(probe["spr_traps"]) > 70


def test_untrapped_spr_accesses_do_not_crash(probe):
    """Code the guest writes at run time is not scanned: Unicorn runs it
    (with MSR[HV] set), and the timebase SPRs whose helpers crashed read 0."""
    out = probe["ppc64-untrapped"]
    assert len(out) == 2048
    allowed = re.compile(r"^(value(=0x[0-9a-f]+)?|unchanged|vector 0x(700|f60) reason 0x[0-9a-f]+)$")
    assert {k: v for k, v in out.items() if not allowed.match(v)} == {}
    for n in (308, 309, 310, 849):
        assert out[f"mfspr {n}"] == "value=0x0", n
        assert out[f"mtspr {n}"] == "value", n


def test_every_aarch64_sysreg_encoding_gives_a_value_or_undef(probe):
    out = probe["aarch64"]
    assert len(out) == 2 * 2 * 8 * 16 * 16 * 8
    assert {k: v for k, v in out.items() if not (VALUE.match(v) or v == "ec 0x0")} == {}
    assert out["mrs s3_0_c0_c0_0"] == "value=0x410fd083"        # MIDR_EL1: cortex-a57
    assert out["mrs s3_0_c12_c12_0"].startswith("value=")       # ICC_IAR1_EL1: the GIC model
    assert out["mrs s3_3_c14_c0_0"] == "value=0x3b9aca0"        # CNTFRQ_EL0
    assert out["mrs s3_6_c1_c1_0"] == "ec 0x0"                  # SCR_EL3 from EL1: UNDEF
    readable = sum(1 for k, v in out.items() if k.startswith("mrs") and v != "ec 0x0")
    assert 100 < readable < 400


# ---- EA -4 and other impossible addresses --------------------------------------------------------
def ppc_cpu():
    m = Machine(0, 16 << 20)
    cpu = Ppc64Cpu(0, m)
    m.cpus.append(cpu)
    return m, cpu


def test_ppc64_data_access_to_ea_minus_4_reads_zero_as_qemu():
    """Real addresses drop EA bits 0:3: -4 is 0x0fff_ffff_ffff_fffc, the one
    page Unicorn cannot map (UC_ERR_MAP). QEMU 7.2: reads 0, store dropped."""
    m, cpu = ppc_cpu()
    m.ram.write(0x1000, struct.pack(">6I", 0x3880FFFC,      # li r4,-4
                                    0x80640000,             # lwz r3,0(r4)
                                    0x90A40000,             # stw r5,0(r4)
                                    0xE8C40000,             # ld r6,0(r4)
                                    0x84E40000,             # lwzu r7,0(r4)
                                    0x60000000))
    cpu.start(0x1000, 0, msr=MSR_SF | MSR_ME)
    for r in (3, 5, 6, 7):
        cpu.set_gpr(r, 0x1111 * r)
    while cpu.pc < 0x1014 and cpu.state is CpuState.RUNNING:
        cpu.run_insns(1)
    assert cpu.pc == 0x1014 and cpu.state is CpuState.RUNNING
    assert (cpu.gpr(3), cpu.gpr(6), cpu.gpr(7), cpu.gpr(4)) == (0, 0, 0, 0xFFFF_FFFF_FFFF_FFFC)
    assert m.fatal is None
    errs = [e for e in m.trace.of_kind("guest-error") if e.what == "unassigned access"]
    assert len(errs) == 4


def test_ppc64_fetch_from_ea_minus_4_raises_isi():
    """-4 was also the engine's "never reached" stop address: the vCPU used
    to sit there executing nothing, forever."""
    m, cpu = ppc_cpu()
    cpu.start(0xFFFF_FFFF_FFFF_FFFC, 0, msr=MSR_SF | MSR_ME)
    cpu.run_insns(1)
    assert cpu.pc == 0x400
    assert cpu.get_srr()[0] == 0xFFFF_FFFF_FFFF_FFFC


def test_unemulatable_access_ends_the_run_with_one_line():
    m, cpu = ppc_cpu()
    m.ram.write(0x1000, struct.pack(">3I", 0x3880FFFC, 0x7C60262C, 0x48000000))  # li; lhbrx r3,0,r4; b .
    cpu.start(0x1000, 0, msr=MSR_SF | MSR_ME)
    r = m.run(max_insns=1_000_000)
    assert r.reason == "error" and r.exit_status == 1
    assert m.fatal == ("cpu0: cannot emulate the instruction at pc 0x1004 (instruction 0x7c60262c): "
                       "load from unassigned address 0xffffffffffffffc")
    assert cpu.state is CpuState.STOPPED


A64_RAM, A64_CODE, A64_VBAR = 0x4000_0000, 0x4000_1000, 0x4000_8000


@pytest.mark.parametrize("words,x0,esr,far,elr", [
    ([0xB9400001], -4, 0x9600_0000, -4, A64_CODE),              # ldr w1,[x0]
    ([0xB9000001], -4, 0x9600_0040, -4, A64_CODE),              # str w1,[x0]
    ([0xB9400001], 0xFFFF_FFFF_FFF0, 0x9600_0000, 0xFFFF_FFFF_FFF0, A64_CODE),
    ([0xD61F0000], -4, 0x8600_0000, -4, -4),                    # br x0
])
def test_aarch64_access_beyond_the_pa_range_is_an_address_size_fault(words, x0, esr, far, elr):
    """As QEMU 7.2 (cortex-a57, MMU off): address size fault, level 0."""
    m = Machine(A64_RAM, 16 << 20)
    cpu = Aarch64Cpu(0, m, mpidr=0x8000_0000)
    m.cpus.append(cpu)
    cpu.uc.reg_write(A.UC_ARM64_REG_VBAR_EL1, A64_VBAR)
    m.ram.write(A64_CODE, struct.pack(f"<{len(words)}I", *words))
    cpu.start(A64_CODE, x0 & 0xFFFF_FFFF_FFFF_FFFF)
    for _ in range(3):
        if cpu.pc == A64_VBAR + 0x200:
            break
        cpu.run_insns(1)
    mask = 0xFFFF_FFFF_FFFF_FFFF
    assert cpu.pc == A64_VBAR + 0x200
    assert cpu.uc.reg_read(A.UC_ARM64_REG_ESR_EL1) == esr
    assert cpu.uc.reg_read(A.UC_ARM64_REG_FAR_EL1) == far & mask
    assert cpu.uc.reg_read(A.UC_ARM64_REG_ELR_EL1) == elr & mask



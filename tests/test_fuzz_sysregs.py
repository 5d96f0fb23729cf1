"""Fuzz (issue 15 item 6): every SPR / system-register encoding a guest can
name, read by a guest instruction (PPC64 `mfspr r3,N`; AArch64 `mrs x3,<enc>`),
one instruction stepped with m.step(). The property: the process survives (no
SIGSEGV in Unicorn) and no Python exception escapes; the instruction either
reads a value or raises the architected interrupt in the guest.

Probes run in a child process (a crash must not take pytest down); each
probe prints its number first, so a crash names the register. Fresh machine
machine per probe for PPC64 (mfspr PURR crashes deterministically as a
vCPU's first instruction; after other probes the crash depends on Unicorn's
memory layout, so a sequential PPC64 sweep would be a flaky test). CI probes a deterministic subset (every 32nd SPR,
the ones known to matter, the AArch64 op0=3 op1=0/3 space in sequence, a
sample on fresh machines); HYPOTHESIS_PROFILE=long probes all of them.
Profiles: see tests/fuzz_support.py."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path


from fuzz_support import LONG

ROOT = Path(__file__).resolve().parent.parent
CHILD = r'''
import struct, sys
sys.path.insert(0, sys.argv[1])
from fuzz_support import pseries, virt
arch, fresh = sys.argv[2], sys.argv[3] == "fresh"
nums = [int(x) for x in sys.stdin.read().split()]
m = None
for n in nums:
    if m is None or fresh:
        m = pseries(smp=1, ram=16 << 20) if arch == "ppc64" else virt(smp=1, ram=4 << 20)
    c = m.cpus[0]
    print(n, flush=True)
    if arch == "ppc64":
        insn = 0x7C0002A6 | 3 << 21 | (n & 0x1F) << 16 | (n >> 5) << 11          # mfspr r3, n
        entry = 0x10_0000 + 8 * (n % 0x10000)        # a fresh address: no stale translation
        m.ram.write(entry, struct.pack(">2I", insn, 0x48000000))
    else:
        op0, op1, crn, crm, op2 = 2 + (n >> 14 & 1), n >> 11 & 7, n >> 7 & 15, n >> 3 & 15, n & 7
        insn = 0xD5300000 | (op0 & 1) << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5 | 3   # mrs x3
        entry = 0x4010_0000 + 8 * (n % 0x10000)
        m.ram.write(entry, struct.pack("<2I", insn, 0x14000000))
    c.start(entry, 0)
    m.step(0)
print("done", flush=True)
'''


def probe(arch: str, numbers: list[int], fresh: bool) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "tests"), arch, "fresh" if fresh else "same"],
                       input=" ".join(map(str, numbers)), capture_output=True, text=True, env=env,
                       timeout=3600)
    lines = p.stdout.split()
    last = lines[-1] if lines else "nothing"
    what = "SPR" if arch == "ppc64" else "system register encoding"
    assert p.returncode == 0 and last == "done", (
        f"{arch}: probing {what} {last} ({'fresh machine' if fresh else 'after the previous probes'}) "
        f"ended the process with status {p.returncode}: {p.stderr.strip().splitlines()[-1:] }")


KNOWN_SPRS = [0, 1, 8, 9, 13, 17, 18, 19, 22, 26, 27, 136, 256, 259, 268, 269, 272, 287, 307, 308, 309,
              310, 311, 317, 318, 351, 512, 769, 896, 1008, 1023]


def ppc_sprs() -> list[int]:
    return list(range(1024)) if LONG else sorted(set(range(0, 1024, 32)) | set(KNOWN_SPRS))


def test_ppc64_mfspr_every_spr_on_a_fresh_machine():
    probe("ppc64", ppc_sprs(), fresh=True)


def a64_encodings_in_sequence() -> list[int]:
    if LONG:
        return list(range(1 << 15))
    # op0 = 3 (o0 = 1), op1 = 0 and 3: the EL0/EL1 system registers guests name
    return [1 << 14 | op1 << 11 | rest for op1 in (0, 3) for rest in range(1 << 11)]


def test_aarch64_mrs_every_encoding_in_sequence():
    probe("aarch64", a64_encodings_in_sequence(), fresh=False)


def test_aarch64_mrs_sample_on_fresh_machines():
    rng = random.Random(15)
    n = 2000 if LONG else 120
    probe("aarch64", sorted(rng.sample(range(1 << 15), n)), fresh=True)

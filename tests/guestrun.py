"""The one guest runner of the tests: build a guest, boot it as the reference
command line of guests/NOTES.md, run it in-process or through the CLI, run
the same command line on QEMU, and drive host-interactive guests through
their mailbox. Fixtures live in conftest.py; GIC model rigs in gicrig.py."""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vmachine import create_machine, toolchain

QEMU = {"ppc64": "qemu-system-ppc64", "aarch64": "qemu-system-aarch64"}
PSERIES_MACHINE = "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off"

# The reference command lines of guests/NOTES.md: -m 512M (pseries), -m 128M (virt)
# (also the boards' default RAM sizes).
MACHINES = {
    "ppc64": ("pseries", 512 << 20),
    "aarch64": ("virt,gic-version=3", 128 << 20),
}

# Where hand-made aarch64 code goes in tests without a guest (virt RAM + 1 MiB,
# clear of the DTB at the RAM base).
VIRT_CODE = 0x4010_0000

# Instructions a guest may run in-process before the run stops (and the test
# fails on the stop reason). Every guest in guests/ powers off below it; the
# tests check the reason, never this number.
RUN_BUDGET = 2_000_000_000


@functools.lru_cache(maxsize=None)
def guest_elf(arch: str, name: str) -> str:
    return str(toolchain.build_guest(arch, name))


def boot(arch: str, name: str, smp: int = 1, **kw):
    """A fresh machine with guest `name` loaded, as the NOTES.md command line
    (keyword arguments go to create_machine and may override the RAM size)."""
    spec, ram = MACHINES[arch]
    return create_machine(spec, kernel=guest_elf(arch, name), smp=smp, **{"ram_size": ram, **kw})


def run_guest(arch: str, name: str, smp: int = 1, max_insns: int = RUN_BUDGET, **kw):
    """Boot and run a guest in-process; returns (machine, result)."""
    m = boot(arch, name, smp, **kw)
    return m, m.run(max_insns=max_insns)


def final_state(m):
    """What an uninterrupted run and a saved/restored one must agree on at the end."""
    return (bytes(m.console_out), m.insns, m.clock.now, [c.registers() for c in m.cpus],
            [c.state for c in m.cpus])


# ---- the same command line on QEMU and on the vmachine CLI ---------------------------------------
def machine_args(arch: str, elf: Path | str | None, smp: int = 1) -> list[str]:
    """One QEMU command line (without the binary) that both emulators accept
    (without -kernel when `elf` is None)."""
    if arch == "ppc64":
        args = ["-M", PSERIES_MACHINE, "-m", "512M", "-smp", str(smp), "-nographic",
                "-bios", str(toolchain.build_firmware())]
    else:
        args = ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-m", "128M", "-smp", str(smp),
                "-nographic"]
    return args if elf is None else [*args, "-kernel", str(elf)]


def need_qemu(arch: str) -> None:
    if shutil.which(QEMU[arch]) is None:
        pytest.skip(f"{QEMU[arch]} not installed (apt-get install qemu-system-ppc qemu-system-arm)")


def run_process(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


def run_qemu(arch: str, args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return run_process([QEMU[arch], *args], timeout)


def run_vmachine_cli(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return run_process([sys.executable, "-m", "vmachine", *args], timeout)


# ---- transcripts and symbols ---------------------------------------------------------------------
def assert_transcript_passes(text: str) -> None:
    lines = text.splitlines()
    assert any(line.startswith("ok ") for line in lines), text
    bad = [line for line in lines if line.startswith("not ok")]
    assert not bad, "\n".join(bad)


def symbol_address(elf: str, name: str) -> int:
    """A guest symbol's address (guests run at their link address)."""
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert symtab is not None, f"{elf} has no symbol table"
        syms = symtab.get_symbol_by_name(name)
        assert syms, f"{name} not in {elf}"
        return syms[0]["st_value"]


# ---- host-interactive guests ---------------------------------------------------------------------
MB_HOST = 0x484F5354            # "HOST": the host harness is driving the guest
MB_ASK, MB_DONE = 1, 2          # mailbox words (gic_host, its_host): step the guest asks for / the host did

# Guests that wait for a host harness, and the one line each prints without one
# (identical on QEMU, which has no harness).
HOST_GUESTS = {
    "gic_host": ("aarch64", "ok gic host skipped (no host harness)\n"),
    "its_host": ("aarch64", "ok its host skipped (no host harness)\n"),
    "xics_lsi": ("ppc64", "ok lsi skipped (no host harness)\n"),
}


class MailboxHarness:
    """Drives a host-interactive guest (gic_host, its_host, xics_lsi) through
    a u32 mailbox in guest RAM, in the guest's byte order: word 0 starts as
    the guest's magic and becomes "HOST" when a harness is present."""

    run_budget = 500_000_000

    def __init__(self, arch: str, guest: str, mailbox: str, guest_magic: int, smp: int):
        self.elf = guest_elf(arch, guest)
        self.order = "big" if arch == "ppc64" else "little"
        self.mb = symbol_address(self.elf, mailbox)
        self.m = boot(arch, guest, smp)
        assert self.word(0) == guest_magic, "mailbox not where the symbol says (or not loaded)"
        self.m.ram.write_int(self.mb, 4, MB_HOST, self.order)

    def word(self, i: int) -> int:
        return self.m.ram.read_int(self.mb + 4 * i, 4, self.order)

    def set_word(self, i: int, value: int) -> None:
        self.m.ram.write_int(self.mb + 4 * i, 4, value, self.order)

    def run_until(self, pred, what: str) -> None:
        r = self.m.run(until=lambda m: pred(), max_insns=self.m.insns + self.run_budget)
        assert r.reason == "event", (what, r.describe(), self.m.console_text)

    def wait_ask(self, k: int) -> None:
        self.run_until(lambda: self.word(MB_ASK) == k, f"guest asking for step {k}")

    def done(self, k: int) -> None:
        self.set_word(MB_DONE, k)

    def finish(self):
        """Run to the end (the guest powers off)."""
        return self.m.run(max_insns=self.m.insns + RUN_BUDGET)

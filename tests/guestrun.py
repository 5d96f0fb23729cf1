"""Shared helpers for tests that run guests on vmachine and on QEMU."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vmachine import create_machine, toolchain

QEMU = {"ppc64": "qemu-system-ppc64", "aarch64": "qemu-system-aarch64"}
PSERIES_MACHINE = "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off"


def machine_args(arch: str, elf: Path, smp: int = 1) -> list[str]:
    """One QEMU command line (without the binary) that both emulators accept."""
    if arch == "ppc64":
        return ["-M", PSERIES_MACHINE, "-m", "512M", "-smp", str(smp), "-nographic",
                "-bios", str(toolchain.build_firmware()), "-kernel", str(elf)]
    return ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-m", "128M", "-smp", str(smp),
            "-nographic", "-kernel", str(elf)]


def need_qemu(arch: str) -> None:
    if shutil.which(QEMU[arch]) is None:
        pytest.skip(f"{QEMU[arch]} not installed (apt-get install qemu-system-ppc qemu-system-arm)")


def run_process(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


def run_vmachine_cli(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return run_process([sys.executable, "-m", "vmachine", *args], timeout)


def run_in_process(arch: str, name: str, smp: int = 1, **kw):
    """Build and run a guest in-process; returns (machine, result)."""
    elf = toolchain.build_guest(arch, name)
    spec = "pseries" if arch == "ppc64" else "virt,gic-version=3"
    m = create_machine(spec, kernel=str(elf), smp=smp, **kw)
    return m, m.run(max_insns=2_000_000_000)


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


MB_HOST = 0x484F5354            # "HOST": the host harness is driving the guest
MB_ASK, MB_DONE = 1, 2          # mailbox words: step the guest asks for / step the host did


class MailboxHarness:
    """Drives a host-interactive aarch64 guest (gic_host, its_host) through a
    little-endian u32 mailbox in guest RAM: word 0 starts as the guest's magic
    and becomes "HOST" when a harness is present."""

    run_budget = 500_000_000

    def __init__(self, guest: str, mailbox: str, guest_magic: int, smp: int):
        self.elf = str(toolchain.build_guest("aarch64", guest))
        self.mb = symbol_address(self.elf, mailbox)
        self.m = create_machine("virt,gic-version=3", kernel=self.elf, smp=smp)
        assert self.word(0) == guest_magic, "mailbox not where the symbol says (or not loaded)"
        self.m.ram.write_int(self.mb, 4, MB_HOST, "little")

    def word(self, i: int) -> int:
        return self.m.ram.read_int(self.mb + 4 * i, 4, "little")

    def run_until(self, pred, what: str) -> None:
        r = self.m.run(until=lambda m: pred(), max_insns=self.m.insns + self.run_budget)
        assert r.reason == "event", (what, r.describe(), self.m.console_text)

    def wait_ask(self, k: int) -> None:
        self.run_until(lambda: self.word(MB_ASK) == k, f"guest asking for step {k}")

    def done(self, k: int) -> None:
        self.m.ram.write_int(self.mb + 4 * MB_DONE, 4, k, "little")

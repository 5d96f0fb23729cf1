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

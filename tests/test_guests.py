"""Every guest on vmachine, and the same command line on QEMU 7.2 (differential)."""
from __future__ import annotations

import pytest

from vmachine import toolchain

from guestrun import (HOST_GUESTS, assert_transcript_passes, machine_args, need_qemu, run_guest,
                      run_qemu, run_vmachine_cli)

GUESTS = [(a, n) for a in toolchain.ARCHES for n in toolchain.guest_names(a)
          if not n.startswith("unit_") and n != "loop"]


@pytest.mark.parametrize("smp", [1, 2, 4, 64])
@pytest.mark.parametrize("arch,name", GUESTS)
def test_guest_on_vmachine(arch, name, smp):
    m, r = run_guest(arch, name, smp)
    assert r.reason == "poweroff", r.describe()
    assert_transcript_passes(m.console_text)


@pytest.mark.parametrize("arch", toolchain.ARCHES)
def test_smp64_every_cpu_reports_in(arch):
    m, r = run_guest(arch, "smp", 64)
    assert r.reason == "poweroff", r.describe()
    assert_transcript_passes(m.console_text)
    for i in range(64):
        assert f"ok cpu {i} up\n" in m.console_text
    assert "ok smp all 64 cpus" in m.console_text


@pytest.mark.parametrize("smp", [1, 4, 64])
@pytest.mark.parametrize("arch,name", GUESTS)
def test_differential_against_qemu(arch, name, smp):
    """Same command line on QEMU and on vmachine: identical stdout and exit status."""
    need_qemu(arch)
    args = machine_args(arch, toolchain.build_guest(arch, name), smp)
    q = run_qemu(arch, args)
    v = run_vmachine_cli(args)
    assert v.stderr == b"", v.stderr.decode()
    assert v.stdout.decode() == q.stdout.decode()
    assert v.returncode == q.returncode == 0


def test_gic_sgis_across_128_vcpus_two_redistributor_regions():
    m, r = run_guest("aarch64", "gic_smp", 128)
    assert r.reason == "poweroff", r.describe()
    assert_transcript_passes(m.console_text)
    assert [base for base, _ in m.board.redist_regions()] == [0x080A_0000, 0x40_0000_0000]


def test_differential_gic_smp_128():
    need_qemu("aarch64")
    args = machine_args("aarch64", toolchain.build_guest("aarch64", "gic_smp"), 128)
    q = run_qemu("aarch64", args)
    v = run_vmachine_cli(args)
    assert v.stdout.decode() == q.stdout.decode()
    assert v.returncode == q.returncode == 0


# ---- host-driven guests without their host harness ---------------------------------------------
# (the flows with the harness: test_gic_host.py, test_its_host.py, test_xics_guests.py)
@pytest.mark.parametrize("name,smp", [("gic_host", 1), ("gic_host", 4), ("its_host", 1),
                                      ("its_host", 4), ("xics_lsi", 1)])
def test_host_guest_without_host_is_skipped(name, smp):
    arch, skip_line = HOST_GUESTS[name]
    m, r = run_guest(arch, name, smp)
    assert r.reason == "poweroff", r.describe()
    assert m.console_text == skip_line


@pytest.mark.parametrize("smp", [1, 4])
@pytest.mark.parametrize("name", ["gic_host", "its_host"])
def test_host_guest_skip_matches_qemu(name, smp):
    arch, skip_line = HOST_GUESTS[name]
    need_qemu(arch)
    args = machine_args(arch, toolchain.build_guest(arch, name), smp)
    q = run_qemu(arch, args)
    v = run_vmachine_cli(args)
    assert q.returncode == v.returncode == 0, q.stderr.decode()
    assert v.stderr == b"", v.stderr.decode()
    assert q.stdout == v.stdout == skip_line.encode()

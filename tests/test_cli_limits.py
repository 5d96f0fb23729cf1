"""Run bounds and unimplemented QEMU options on the command line: refused in
one line (exit 1, no traceback) instead of accepted and ignored."""
from __future__ import annotations

import subprocess
import sys

import pytest


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmachine", *args], capture_output=True,
                          timeout=timeout)


@pytest.mark.parametrize("args,needle", [
    (["--timeout", "nan"], "invalid --timeout: 'nan'"),
    (["--timeout", "-1"], "invalid --timeout: '-1'"),
    (["--timeout", "inf"], "invalid --timeout: 'inf'"),
    (["--quantum", "0"], "invalid --quantum: '0'"),
    (["--quantum", "10000000000"], "from 1 to 1,000,000"),
    (["--max-insns", "-1"], "invalid --max-insns: '-1'"),
    (["-S"], "-S: not supported"),
    (["-s"], "-s: not supported"),
    (["-gdb", "tcp::1234"], "-gdb: not supported"),
    (["-d", "int"], "-d: not supported"),
    (["-D", "log.txt"], "-D: not supported"),
    (["-no-shutdown"], "-no-shutdown: not supported"),
    (["-rtc", "base=utc"], "-rtc: not supported"),
])
def test_run_refuses_bad_bounds_and_unimplemented_options(args, needle):
    p = cli("run", "ppc64/hello", *args)
    err = p.stderr.decode()
    assert p.returncode == 1 and "Traceback" not in err, err
    assert err.strip().splitlines() == [err.strip()] and needle in err, err


@pytest.mark.parametrize("args,needle", [
    (["-n", "-5"], "invalid -n: '-5'"),
    (["-n", "0"], "invalid -n: '0'"),
    (["--cpu", "-1"], "invalid --cpu: '-1'"),
    (["--cpu", "99"], "invalid --cpu: 99 (the machine has 1 vCPUs)"),
])
def test_step_refuses_bad_counts_and_cpus(args, needle):
    p = cli("step", *args, "ppc64/hello")
    err = p.stderr.decode()
    assert p.returncode == 1 and "Traceback" not in err and needle in err, err
    assert p.stdout == b""


def test_step_honours_max_insns_and_timeout():
    p = cli("step", "-n", "1000", "--max-insns", "3", "ppc64/hello")
    assert p.returncode == 0 and len(p.stdout.decode().splitlines()) == 3
    p = cli("step", "-n", "100000000", "--timeout", "0.2", "ppc64/hello", timeout=60)
    assert p.returncode == 1 and "--timeout reached" in p.stderr.decode()


def test_console_keeps_a_bounded_tail_and_streams_everything():
    from vmachine import create_machine
    from vmachine.toolchain import build_guest
    seen = bytearray()
    m = create_machine("pseries", kernel=str(build_guest("ppc64", "hello")), console=seen.extend)
    m.console_limit = 8
    assert m.run(max_insns=50_000_000).reason == "poweroff"
    assert len(seen) > 8 and m.console_out == seen[-8:]
    assert m.console_dropped == len(seen) - 8


@pytest.mark.parametrize("args,needle", [
    (["run", "ppc64/nosuch"], "no guest 'ppc64/nosuch'"),
    (["run", "aarch64/nosuch"], "no guest 'aarch64/nosuch'"),
    (["build", "aarch64/nosuch"], "no guest 'aarch64/nosuch'"),
    (["build"], "expected ARCH/NAME"),
    (["build", "x/y"], "expected ARCH/NAME"),
])
def test_missing_guests_are_one_line_errors(args, needle):
    p = cli(*args)
    err = p.stderr.decode()
    assert p.returncode == 1 and "Traceback" not in err and needle in err, err
    assert len(err.strip().splitlines()) == 1

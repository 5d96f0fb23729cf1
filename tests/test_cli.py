"""The command line: QEMU spelling, demo guest, bounded runs, and bad input
reported in one line with a non-zero exit (never a traceback)."""
from __future__ import annotations

import libfdt
import pytest

from vmachine import toolchain

from guestrun import machine_args, run_vmachine_cli


def one_line_error(p, needle: str) -> None:
    err = p.stderr.decode()
    assert p.returncode != 0
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err
    assert err.startswith("vmachine: ")


def test_demo_guest_runs_with_no_arguments():
    p = run_vmachine_cli(["run"])
    assert p.returncode == 0, p.stderr.decode()
    assert "hello from ppc64" in p.stdout.decode()


def test_run_named_guest_on_virt():
    p = run_vmachine_cli(["run", "aarch64/hello"])
    assert p.returncode == 0
    assert p.stdout.decode().startswith("hello from aarch64\n")


def test_trace_goes_to_stderr():
    p = run_vmachine_cli(["run", "aarch64/hello", "--trace"])
    assert p.returncode == 0
    assert "psci" in p.stderr.decode() and "SYSTEM_OFF" in p.stderr.decode()
    assert "SYSTEM_OFF" not in p.stdout.decode()


def test_max_insns_reports_where_each_cpu_was():
    p = run_vmachine_cli(["run", "ppc64/smp", "-smp", "2", "--max-insns", "1000"])
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "max-insns" in err and "cpu0 running pc=" in err and "cpu1 stopped" in err


@pytest.mark.parametrize("args,needle", [
    (["-M", "virt", "-bogus"], "-bogus: invalid option"),
    (["-M", "nosuch", "-kernel", "x"], "unsupported machine type 'nosuch'"),
    (["-M", "virt,foo=1", "-kernel", "x"], "Property 'virt-7.2-machine.foo' not found"),
    (["-M", "virt", "-kernel", "/nonexistent/k.elf"], "could not load kernel '/nonexistent/k.elf'"),
    (["-M", "pseries", "-bios", "/nonexistent/fw.bin", "-kernel", "x"], "LPAR firmware"),
    (["-M", "virt", "-smp", "600", "-kernel", "x"], "Invalid SMP CPUs 600"),
    (["-M", "virt", "-smp", "0"], "Invalid SMP CPUs"),
    (["-M", "virt", "-m", "lots"], "invalid RAM size: lots"),
    (["-M", "virt", "-cpu", "pentium"], "unable to find CPU model 'pentium'"),
    (["-M"], "-M: requires an argument"),
    (["-M", "virt", "-serial", "tcp::4444"], "-serial tcp::4444: not supported"),
])
def test_bad_command_line(args, needle):
    one_line_error(run_vmachine_cli(args), needle)


def test_elf_for_the_wrong_architecture():
    elf = toolchain.build_guest("aarch64", "hello")
    one_line_error(run_vmachine_cli(["-M", "pseries", "-kernel", str(elf)]), "not this machine's architecture")


def test_truncated_elf(tmp_path):
    bad = tmp_path / "bad.elf"
    bad.write_bytes(toolchain.build_guest("aarch64", "hello").read_bytes()[:100])
    one_line_error(run_vmachine_cli(["-M", "virt", "-kernel", str(bad)]), "could not load kernel")


def test_elf_segments_outside_ram():
    elf = toolchain.build_guest("aarch64", "hello")          # linked at 0x40200000
    one_line_error(run_vmachine_cli(["-M", "virt", "-m", "1M", "-kernel", str(elf)]), "outside RAM")


def test_dumpdtb_writes_a_tree_like_qemus(tmp_path):
    elf = toolchain.build_guest("aarch64", "hello")
    out = tmp_path / "virt.dtb"
    args = machine_args("aarch64", elf, 2)
    args[1] += f",dumpdtb={out}"
    p = run_vmachine_cli(args)
    assert p.returncode == 0, p.stderr.decode()
    fdt = libfdt.Fdt(out.read_bytes())
    assert fdt.totalsize() == 0x100000                        # QEMU's virt blob size
    cpus = fdt.path_offset("/cpus/cpu@1")
    assert fdt.getprop(cpus, "enable-method").as_str() == "psci"
    assert fdt.getprop(fdt.path_offset("/chosen"), "stdout-path").as_str() == "/pl011@9000000"
    assert fdt.getprop(fdt.path_offset("/psci"), "method").as_str() == "hvc"


def test_pseries_dtb_has_rtas_tokens_and_vty(tmp_path):
    elf = toolchain.build_guest("ppc64", "hello")
    out = tmp_path / "p.dtb"
    args = machine_args("ppc64", elf, 2)
    args[1] += f",dumpdtb={out}"
    assert run_vmachine_cli(args).returncode == 0
    fdt = libfdt.Fdt(out.read_bytes())
    rtas = fdt.path_offset("/rtas")
    # QEMU numbers RTAS tokens from 0x2000 in its table order.
    assert fdt.getprop(rtas, "power-off").as_uint32() == 0x2003
    assert fdt.getprop(rtas, "start-cpu").as_uint32() == 0x2006
    vty = fdt.path_offset("/vdevice/vty@71000000")
    assert fdt.getprop(vty, "reg").as_uint32() == 0x71000000
    assert fdt.getprop(fdt.path_offset("/cpus/PowerPC,POWER9@1"), "reg").as_uint32() == 1
    assert fdt.getprop(fdt.path_offset("/chosen"), "qemu,boot-kernel") is not None

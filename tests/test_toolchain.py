"""Tests for vmachine.toolchain and the guest programs (run on real QEMU)."""
from __future__ import annotations

import shutil

import pytest

from guestrun import machine_args, need_qemu, run_qemu
from vmachine import toolchain
from vmachine.toolchain import BuildError

GUESTS = [(a, n) for a in toolchain.ARCHES for n in toolchain.guest_names(a)]


def test_guest_lists():
    for arch in toolchain.ARCHES:
        names = toolchain.guest_names(arch)
        for n in ("hello", "smp", "exceptions", "timer"):
            assert n in names, (arch, n)
        assert "runtime" not in names


@pytest.mark.parametrize("arch,name", GUESTS)
def test_build_guest(arch, name):
    elf = toolchain.build_guest(arch, name)
    assert elf.is_file()
    assert elf.read_bytes()[:4] == b"\x7fELF"
    # not inside the repository
    assert toolchain.REPO_ROOT not in elf.resolve().parents


def test_cache_hit_does_not_compile(tmp_path, monkeypatch):
    monkeypatch.setenv("VMACHINE_CACHE", str(tmp_path / "cache"))
    before = toolchain.compile_count
    first = toolchain.build_guest("aarch64", "hello")
    assert toolchain.compile_count == before + 1
    mtime = first.stat().st_mtime_ns
    second = toolchain.build_guest("aarch64", "hello")
    assert second == first
    assert toolchain.compile_count == before + 1
    assert second.stat().st_mtime_ns == mtime
    assert str(first).startswith(str(tmp_path / "cache"))
    # no temporary directories are left behind (beside the build, only the stamps)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([first.parent.name, "stamps"])
    assert not [p for p in (tmp_path / "cache" / "stamps").iterdir() if p.name.startswith(".")]


def _guest_tree(tmp_path, monkeypatch):
    """A copy of guests/ under tmp_path, a cache of its own, and stamps written
    even for the files just copied (the racy-write window is ours to test)."""
    monkeypatch.setenv("VMACHINE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tree"
    shutil.copytree(toolchain.REPO_ROOT / "guests", root / "guests")
    return root


def test_cache_hit_through_stamp_does_not_hash(tmp_path, monkeypatch):
    root = _guest_tree(tmp_path, monkeypatch)
    monkeypatch.setattr(toolchain, "RACY_NS", -10**18)
    first = toolchain.build_guest("aarch64", "hello", root=root)
    assert list((tmp_path / "cache" / "stamps").iterdir())

    def no_hash(*a, **k):
        raise AssertionError("hashed although nothing changed")
    monkeypatch.setattr(toolchain, "_hash_inputs", no_hash)
    assert toolchain.build_guest("aarch64", "hello", root=root) == first
    # the cached file gone: the stamp alone is not trusted
    monkeypatch.undo()
    monkeypatch.setenv("VMACHINE_CACHE", str(tmp_path / "cache"))
    shutil.rmtree(first.parent)
    assert toolchain.build_guest("aarch64", "hello", root=root) == first
    assert first.is_file()


@pytest.mark.parametrize("change", ["same size", "mtime restored", "new header", "removed source"])
def test_stamp_sees_changes(tmp_path, monkeypatch, change):
    import os
    import time
    root = _guest_tree(tmp_path, monkeypatch)
    monkeypatch.setattr(toolchain, "RACY_NS", -10**18)
    a = toolchain.build_guest("aarch64", "hello", root=root)
    time.sleep(0.05)                # past the file system's timestamp tick
    d = root / "guests" / "aarch64"
    if change in ("same size", "mtime restored"):
        src = d / "hello.c"
        st = src.stat()
        text = src.read_text()
        i = text.index("hello from")
        src.write_text(text[:i] + "HELLO" + text[i + 5:])          # same length
        if change == "mtime restored":              # as cp -p or tar would leave it
            os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert src.stat().st_size == st.st_size
    elif change == "new header":
        (d / "zz_new.h").write_text("/* a new header in an include directory */\n")
    else:
        extra = d / "runtime" / "zz_extra.c"
        extra.write_text("int zz_extra_unused;\n")
        a = toolchain.build_guest("aarch64", "hello", root=root)
        time.sleep(0.05)
        extra.unlink()
    b = toolchain.build_guest("aarch64", "hello", root=root)
    assert b != a
    assert b == toolchain.build_guest("aarch64", "hello", root=root)


def test_racy_inputs_are_not_stamped(tmp_path, monkeypatch):
    root = _guest_tree(tmp_path, monkeypatch)          # files copied just now
    toolchain.build_guest("aarch64", "hello", root=root)
    assert not (tmp_path / "cache" / "stamps").exists()


def test_cache_key_depends_on_content(tmp_path, monkeypatch):
    monkeypatch.setenv("VMACHINE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tree"
    shutil.copytree(toolchain.REPO_ROOT / "guests", root / "guests")
    a = toolchain.build_guest("aarch64", "hello", root=root)
    src = root / "guests" / "aarch64" / "hello.c"
    src.write_text(src.read_text() + "\n/* changed */\n")
    b = toolchain.build_guest("aarch64", "hello", root=root)
    assert a != b
    # a header change also invalidates
    hdr = root / "guests" / "common" / "rt_common.h"
    hdr.write_text(hdr.read_text() + "\n/* changed */\n")
    c = toolchain.build_guest("aarch64", "hello", root=root)
    assert c not in (a, b)


def test_build_error_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VMACHINE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tree"
    shutil.copytree(toolchain.REPO_ROOT / "guests", root / "guests")
    (root / "guests" / "ppc64" / "broken.c").write_text(
        '#include "rt.h"\nint main(void) { return undefined_thing; }\n')
    with pytest.raises(BuildError) as ei:
        toolchain.build_guest("ppc64", "broken", root=root)
    msg = str(ei.value)
    assert "\n" not in msg
    assert "ppc64-broken" in msg and "error" in msg
    assert "undefined_thing" in ei.value.output
    # nothing cached for the failed build
    assert not any(p.suffix == ".elf" for p in (tmp_path / "cache").rglob("*"))


def test_low_level_build_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VMACHINE_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "bad.S"
    src.write_text("    this_is_not_an_instruction x0\n")
    ld = tmp_path / "x.ld"
    ld.write_text("SECTIONS { . = 0x40200000; .text : { *(.text) } }\n")
    with pytest.raises(BuildError) as ei:
        toolchain.build("aarch64", [src], ld, "bad", root=tmp_path)
    assert str(ei.value).startswith("bad: ")
    assert "\n" not in str(ei.value)


def test_firmware_raw_binary():
    b = toolchain.build_firmware()
    data = b.read_bytes()
    assert b.suffix == ".bin"
    assert 0x100 < len(data) < 64 * 1024
    assert data[:0x100] == bytes(0x100)         # linked at 0, code at 0x100
    assert data[0x100:0x104] == bytes.fromhex("7d6000a6")  # mfmsr r11


def test_firmware_without_kernel():
    need_qemu("ppc64")
    p = run_qemu("ppc64", machine_args("ppc64", None), timeout=60)
    assert p.returncode == 0
    assert p.stdout == b"bootrom: no kernel\n"


@pytest.mark.parametrize("smp", [1, 4])
@pytest.mark.parametrize("arch,name", GUESTS)
def test_guest_on_qemu(arch, name, smp):
    need_qemu(arch)
    elf = toolchain.build_guest(arch, name)
    p = run_qemu(arch, machine_args(arch, elf, smp))
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "\r" not in out
    lines = out.splitlines()
    assert any(l.startswith("ok ") for l in lines), out
    assert not [l for l in lines if l.startswith("not ok")], out
    if name == "hello":
        assert lines[0] == f"hello from {arch}"
    if name == "smp":
        assert f"ok smp all {smp} cpus" in lines
        assert [l for l in lines if l.endswith(" up")] == \
            [f"ok cpu {i} up" for i in range(smp)]


@pytest.mark.parametrize("arch", toolchain.ARCHES)
def test_smp64_on_qemu(arch):
    need_qemu(arch)
    p = run_qemu(arch, machine_args(arch, toolchain.build_guest(arch, "smp"), 64), timeout=600)
    out = p.stdout.decode()
    assert "ok smp all 64 cpus" in out.splitlines(), out
    assert "not ok" not in out

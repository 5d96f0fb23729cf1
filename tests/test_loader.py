"""The loader's two ELF readers agree: the struct-only reader for plain ELF64
images (what a run uses) gives exactly what pyelftools gives, for the
guests as built and for damaged copies of them (the struct reader hands
anything it is not sure of to pyelftools, so errors read the same)."""
from __future__ import annotations

import random

import pytest

from vmachine import loader, toolchain
from vmachine.errors import ConfigError
from vmachine.memory import GuestRAM

# (arch, e_machine, RAM base, how the board translates load addresses)
BOARDS = {"ppc64": (loader.EM_PPC64, 0, lambda a: a & 0x0FFF_FFFF_FFFF_FFFF),
          "aarch64": (loader.EM_AARCH64, 0x4000_0000, lambda a: a)}
RAM = 4 << 20


def _load(data: bytes, arch: str, machine: int, reader: str, monkeypatch):
    """What load_elf gives (image and RAM) or what it raises (type and message:
    both readers must also fail alike where the loader does not catch it)."""
    _, base, translate = BOARDS[arch]
    ram = GuestRAM(base, RAM)
    with monkeypatch.context() as mp:
        if reader == "pyelftools":
            mp.setattr(loader, "_simple_elf64", lambda data, machine: None)
        try:
            img = loader.load_elf(ram, data, "g.elf", machine, translate)
        except ConfigError as e:
            return "error", str(e)
        except Exception as e:          # noqa: BLE001 (compared, not hidden)
            return "raised", type(e).__name__, str(e)
    return "ok", img, ram.read(base, RAM)


def _images():
    for arch in BOARDS:
        for name in ("hello", "smp"):
            yield arch, toolchain.build_guest(arch, name).read_bytes()
    yield "ppc64", toolchain.build_firmware().with_suffix(".elf").read_bytes()


@pytest.mark.parametrize("arch,data", list(_images()), ids=lambda v: v if isinstance(v, str) else "")
def test_readers_agree_on_built_images(arch, data, monkeypatch):
    own = BOARDS[arch][0]
    assert loader._simple_elf64(data, own) is not None          # a run takes the struct reader
    for machine in (loader.EM_PPC64, loader.EM_AARCH64):        # its own and the other architecture
        got = _load(data, arch, machine, "struct", monkeypatch)
        assert got == _load(data, arch, machine, "pyelftools", monkeypatch)
        if machine == own:
            assert got[0] == "ok" and got[1].is_elf
        else:
            assert got[0] == "error" and "not this machine's architecture" in got[1]


@pytest.mark.parametrize("seed", range(2))
def test_readers_agree_on_damaged_images(seed, monkeypatch):
    rng = random.Random(seed)
    for arch, data in _images():
        machine = BOARDS[arch][0]
        for _ in range(50):
            d = bytearray(data)
            for _ in range(rng.randint(1, 3)):      # headers mostly, anywhere sometimes
                pos = rng.choice([rng.randrange(64), rng.randrange(64, 64 + 56 * 8), rng.randrange(len(d))])
                d[pos] = rng.randrange(256)
            if rng.random() < 0.1:
                del d[rng.randrange(len(d)):]
            d = bytes(d)
            assert _load(d, arch, machine, "struct", monkeypatch) == \
                _load(d, arch, machine, "pyelftools", monkeypatch)

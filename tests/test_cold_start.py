"""Import discipline of a cold start (issue 10, item 6), checked without
timing: a plain `vmachine run` of a cached guest imports only what the run
needs. capstone (a dependency nothing imports), pyelftools, the build machinery (hashing,
package metadata, subprocesses) and the other board stay unimported; the
time figures are in tools/bench.py section 4 and BENCHMARKS.md, never
asserted here."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from vmachine import toolchain

# Never imported by a run of a cached guest, whichever board.
HEAVY = ("capstone", "elftools", "hypothesis", "pytest", "hashlib", "importlib.metadata",
         "email", "subprocess", "tempfile", "shutil", "platform", "json", "datetime", "csv")
# The other board's modules (and its interrupt controllers).
OTHER_BOARD = {
    "ppc64": ("vmachine.boards.virt", "vmachine.intc.gicv3", "vmachine.devices.pl011"),
    "aarch64": ("vmachine.boards.pseries", "vmachine.intc.xics", "vmachine.intc.xive",
                "vmachine.devices.spapr_vty"),
}

# Runs the CLI's main() in a fresh interpreter, then prints the modules it left loaded.
PROBE = """
import sys
import vmachine.cli
status = vmachine.cli.main(sys.argv[1:])
sys.stdout.flush()
print("\\nMODULES " + " ".join(sorted(sys.modules)))
sys.exit(status)
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    # Run from the repository root so that this tree's vmachine is imported.
    return subprocess.run([sys.executable, "-c", code, *args], cwd=toolchain.REPO_ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=300)


def _settle_stamps() -> None:
    """Inputs changed a moment ago are hashed again on every run, not stamped
    (toolchain.RACY_NS): wait that out once, so a cached build is a stamp hit."""
    newest = 0
    for top in ("guests", "firmware", "vmachine/cpu"):
        for d, _, files in os.walk(toolchain.REPO_ROOT / top):
            for f in files:
                st = os.stat(os.path.join(d, f))
                newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    wait = (newest + toolchain.RACY_NS - time.time_ns()) / 1e9
    if wait > 0:
        time.sleep(wait + 0.1)


def _startup_modules() -> set[str]:
    """What the bare interpreter imports here (site, .pth files: not vmachine's doing)."""
    p = _python("import sys; print(' '.join(sorted(sys.modules)))")
    assert p.returncode == 0, p.stderr.decode()
    return set(p.stdout.decode().split())


def _modules_after_run(arch: str) -> set[str]:
    _settle_stamps()
    warm = _python(PROBE, "run", f"{arch}/hello")      # builds/stamps whatever is missing
    assert warm.returncode == 0, warm.stderr.decode()
    p = _python(PROBE, "run", f"{arch}/hello")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    assert f"hello from {arch}" in out and "ok hello" in out
    return set(out.rsplit("MODULES ", 1)[1].split()) - _startup_modules()


def _loaded(modules: set[str], names) -> list[str]:
    """Those of `modules` that are one of `names` or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("arch", ["ppc64", "aarch64"])
def test_run_of_cached_guest_imports_only_what_it_needs(arch):
    modules = _modules_after_run(arch)
    assert "unicorn" in modules and "vmachine.machine" in modules      # the probe did run a machine
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, OTHER_BOARD[arch]) == []


def test_import_cli_loads_no_engine():
    p = _python("import sys, vmachine.cli; print(' '.join(sorted(sys.modules)))")
    assert p.returncode == 0, p.stderr.decode()
    modules = set(p.stdout.decode().split()) - _startup_modules()
    assert "vmachine.cli" in modules
    assert _loaded(modules, ("unicorn", "vmachine.machine", "vmachine.boards", "vmachine.toolchain",
                             "libfdt", "ctypes", *HEAVY)) == []


def test_package_attributes_resolve_lazily():
    """`vmachine.Machine` and `RunResult` are imported on first use, not dropped."""
    import vmachine
    assert vmachine.Machine.__name__ == "Machine"        # the lazy package attributes resolve
    from vmachine import RunResult
    assert RunResult.__name__ == "RunResult"
    with pytest.raises(AttributeError):
        vmachine.NoSuchThing  # noqa: B018

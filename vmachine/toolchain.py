"""Build freestanding guest programs and boot firmware with Zig's clang.

Guests live in ``guests/<arch>/<name>.{c,S}`` and are linked with the
per-architecture runtime in ``guests/<arch>/runtime`` plus the
architecture-independent runtime code in ``guests/common``.  Builds are cached
outside the repository, keyed by a hash of every input file, the flags and
the compiler version, so a cache hit never runs the compiler.

A cache hit does not even hash: a small stamp per target
(``<cache>/stamps/``) records the size, mtime, ctime and inode of every
input (and of the installed ziglang) next to the hash they gave. When all of
them are unchanged, and the cached file is there, the recorded hash is used;
anything else (a changed, added or removed file, another ziglang) hashes the
inputs again. Inputs changed less than ``RACY_NS`` before a build are not
stamped (a file rewritten within one timestamp tick keeps its mtime), so the
next run hashes them again. Nothing but a cache hit takes this path: the
modules needed to build (hashlib, importlib.metadata, subprocess, tempfile)
are imported only when a build or a full hash happens.

CLI: ``python -m vmachine.toolchain ARCH NAME`` (or ``firmware ppc64/bootrom``)
prints the path of the built file.
"""
from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path
from typing import Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent

ARCHES = ("ppc64", "aarch64")

COMMON_FLAGS = (
    "-nostdlib", "-ffreestanding", "-fno-builtin", "-fno-stack-protector",
    "-O2", "-Wl,--build-id=none", "-Wl,-z,max-page-size=0x1000",
    "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
    "-Wall", "-Wno-unused-function",
)

ARCH_FLAGS = {
    "ppc64": ("-target", "powerpc64-freestanding-none",
              "-mno-altivec", "-mno-vsx"),
    "aarch64": ("-target", "aarch64-freestanding-none",
                "-mcpu=generic-neon-fp_armv8", "-mstrict-align"),
}

SOURCE_SUFFIXES = (".c", ".S")

# Number of real compiler invocations in this process (tests use it to prove
# that a cache hit did not run the compiler).
compile_count = 0


class BuildError(Exception):
    """A guest or firmware failed to compile or link.

    ``str()`` is a single line: the target name and the first compiler error;
    ``.output`` holds the compiler's complete output.
    """

    def __init__(self, target: str, output: str):
        self.target = target
        self.output = output
        super().__init__(f"{target}: {_first_error_line(output)}")


def _first_error_line(output: str) -> str:
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    for l in lines:
        if "error:" in l or "error " in l.lower()[:12]:
            return l
    return lines[0] if lines else "compiler failed without output"


def _zig_version() -> str:
    import importlib.metadata
    try:
        return importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def cache_root() -> Path:
    env = os.environ.get("VMACHINE_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "vmachine" / "build"


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def _hash_inputs(files: Iterable[Path], flags: Sequence[str], root: Path,
                 out_name: str) -> str:
    import hashlib
    h = hashlib.sha256()
    h.update(b"vmachine-toolchain-v1\0")
    h.update(_zig_version().encode() + b"\0")
    h.update(out_name.encode() + b"\0")
    for f in flags:
        h.update(f.encode() + b"\0")
    for p in sorted(set(Path(x) for x in files), key=lambda q: _display(q, root)):
        data = p.read_bytes()
        h.update(_display(p, root).encode() + b"\0")
        h.update(str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


def _headers(include_dirs: Sequence[Path]) -> list[Path]:
    out = []
    for d in include_dirs:
        if d.is_dir():
            out.extend(sorted(d.glob("*.h")))
    return out


def build(arch: str, sources: Sequence[Path], linker_script: Path,
          out_name: str, include_dirs: Sequence[Path] = (),
          extra_flags: Sequence[str] = (), root: Path | None = None,
          raw_binary: bool = False) -> Path:
    """Compile and link ``sources`` into ``<cache>/<hash>/<out_name>.elf``.

    With ``raw_binary`` also writes ``<out_name>.bin`` (the PT_LOAD segments
    laid out from the lowest physical address) and returns that path.
    """
    if arch not in ARCH_FLAGS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHES}")
    root = Path(root) if root is not None else REPO_ROOT
    sources = [Path(s) for s in sources]
    if not sources:
        raise BuildError(out_name, f"error: no sources for {out_name}")
    linker_script = Path(linker_script)
    include_dirs = [Path(d) for d in include_dirs]
    flags = list(COMMON_FLAGS) + list(ARCH_FLAGS[arch]) + list(extra_flags)
    inputs = list(sources) + [linker_script] + _headers(include_dirs)
    key_flags = flags + ["raw" if raw_binary else "elf"]
    base = Path(out_name).name
    elf_name = base + ".elf"
    result_name = base + (".bin" if raw_binary else ".elf")

    def make(tmp: Path) -> None:
        elf = tmp / elf_name
        cmd = [sys.executable, "-m", "ziglang", "cc", *flags,
               *(f"-I{d}" for d in include_dirs),
               "-T", str(linker_script), "-o", str(elf),
               *(str(s) for s in sources)]
        _compile(cmd, elf, out_name, tmp)
        if raw_binary:
            (tmp / (base + ".bin")).write_bytes(elf_to_raw(elf))
    return _stamped(inputs, key_flags, root, out_name, result_name, make)


def _compile(cmd: list[str], product: Path, out_name: str, log_dir: Path) -> None:
    import subprocess
    global compile_count
    compile_count += 1
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0 or not product.is_file():
        raise BuildError(out_name, proc.stdout)
    (log_dir / "build.log").write_text(" ".join(cmd) + "\n" + proc.stdout)


def _cached(digest: str, result_name: str, make) -> Path:
    """`<cache>/<digest>/<result_name>`, built by `make(tmpdir)` if absent; the
    temporary directory is renamed into place, so concurrent builds are safe."""
    final_dir = cache_root() / digest
    result = final_dir / result_name
    if result.is_file():
        return result
    import shutil
    import tempfile
    cache_root().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_root()))
    try:
        make(tmp)
        try:
            os.rename(tmp, final_dir)
        except OSError:
            # Another process finished the same build first; use its copy.
            if not result.is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return result


HOST_LIB_FLAGS = ("-shared", "-O2", "-fPIC", "-fno-stack-protector")


def build_host_library(source: Path, out_name: str) -> Path:
    """Compile one C file into a shared library for the host (cached like guests).

    Used for the machine's own small C helper (vmachine/cpu/slot.c)."""
    source = Path(source)
    flags = list(HOST_LIB_FLAGS) + [f"host={sys.platform}-{_host_machine()}"]

    def make(tmp: Path) -> None:
        lib = tmp / f"{out_name}.so"
        _compile([sys.executable, "-m", "ziglang", "cc", *HOST_LIB_FLAGS, "-o", str(lib), str(source)],
                 lib, out_name, tmp)
    return _stamped([source], flags, REPO_ROOT, out_name, f"{out_name}.so", make)


def _host_machine() -> str:
    """platform.machine() (which is os.uname().machine where os.uname exists)."""
    if hasattr(os, "uname"):
        return os.uname().machine
    import platform                     # pragma: no cover
    return platform.machine()           # pragma: no cover


# ---- stamps: a cache hit without hashing -------------------------------------------------------
# Inputs whose mtime or ctime is this close to the time of a build are not
# stamped: a rewrite within the same timestamp tick would not show in them.
RACY_NS = 2_000_000_000


def _zig_marker() -> str:
    """Where the installed ziglang package is and its size, mtime, ctime and inode:
    reinstalling or upgrading it changes this (and then the full hash, which
    has the version, runs)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec("ziglang")
    except (ImportError, ValueError):   # pragma: no cover
        spec = None
    origin = spec.origin if spec is not None else None
    if not origin:
        return "ziglang none"
    try:
        st = os.stat(origin)
    except OSError:                     # pragma: no cover
        return f"ziglang {origin} missing"
    return f"ziglang {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {origin}"


def _stamp_text(inputs: Sequence[Path], flags: Sequence[str], root: Path,
                out_name: str, result_name: str) -> tuple[str, str, int]:
    """The stamp's key (which target) and what the stamp must say for the hash
    it records to be reused, and the newest mtime/ctime among the inputs (ns)."""
    key = "\n".join(["vmachine-stamp-v1", f"root {os.fspath(root)}",
                     f"out {out_name} {result_name}", "flags " + "\0".join(flags)]) + "\n"
    lines = [_zig_marker()]
    newest = 0
    for p in sorted({os.fspath(x) for x in inputs}):
        st = os.stat(p)                 # a missing input: FileNotFoundError, as the hash would
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
        lines.append(f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {p}")
    return key, key + "\n".join(lines) + "\n", newest


def _stamped(inputs: Sequence[Path], flags: Sequence[str], root: Path, out_name: str,
             result_name: str, make) -> Path:
    """`_cached` under the hash of `inputs`, found through the stamp when the
    inputs are unchanged since it was written."""
    import time
    key, text, newest = _stamp_text(inputs, flags, root, out_name, result_name)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in out_name)
    stamp = cache_root() / "stamps" / f"{name}-{zlib.crc32(key.encode()):08x}"
    try:
        recorded = stamp.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        recorded = ""
    if recorded.startswith(text):
        digest = recorded[len(text):].strip()
        result = cache_root() / digest / result_name
        if len(digest) == 64 and result.is_file():
            return result
    digest = _hash_inputs(inputs, flags, root, out_name)
    result = _cached(digest, result_name, make)
    if time.time_ns() - newest > RACY_NS:
        _write_stamp(stamp, text + digest + "\n")
    return result


def _write_stamp(stamp: Path, content: str) -> None:
    """Atomically; a stamp that cannot be written only costs a hash next time."""
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(content.encode("utf-8", "surrogateescape"))
        os.replace(tmp, stamp)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass


def elf_to_raw(elf_path: Path) -> bytes:
    """Flatten the PT_LOAD segments of an ELF into one blob starting at the
    lowest p_paddr (bss included as zeros)."""
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as f:
        ef = ELFFile(f)
        segs = [s for s in ef.iter_segments()
                if s["p_type"] == "PT_LOAD" and s["p_memsz"] > 0]
        if not segs:
            raise BuildError(str(elf_path), "error: ELF has no PT_LOAD segment")
        lo = min(s["p_paddr"] for s in segs)
        hi = max(s["p_paddr"] + s["p_memsz"] for s in segs)
        blob = bytearray(hi - lo)
        for s in segs:
            off = s["p_paddr"] - lo
            data = s.data()
            blob[off:off + len(data)] = data
    return bytes(blob)


def _arch_dir(arch: str, root: Path) -> Path:
    if arch not in ARCH_FLAGS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHES}")
    return root / "guests" / arch


def _sources_in(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.suffix in SOURCE_SUFFIXES)


def guest_names(arch: str, root: Path | None = None) -> list[str]:
    d = _arch_dir(arch, Path(root) if root else REPO_ROOT)
    if not d.is_dir():
        return []
    return sorted({p.stem for p in d.iterdir()
                   if p.is_file() and p.suffix in SOURCE_SUFFIXES})


def build_guest(arch: str, name: str, root: Path | None = None) -> Path:
    """Build ``guests/<arch>/<name>.{c,S}`` with the arch runtime; returns
    the ELF path."""
    root = Path(root) if root else REPO_ROOT
    d = _arch_dir(arch, root)
    rt = d / "runtime"
    common = root / "guests" / "common"
    own = [p for p in (d / f"{name}.c", d / f"{name}.S") if p.is_file()]
    if not own:
        raise FileNotFoundError(f"no guest source {d}/{name}.c or .S")
    shared = _sources_in(common) if common.is_dir() else []
    # The guest's own directory is on the include path too (guest-local
    # headers such as xive_guest.h), so its headers are part of the cache key.
    return build(arch, own + _sources_in(rt) + shared, rt / "guest.ld",
                 f"{arch}-{name}", include_dirs=[rt, common, d], root=root)


def build_firmware(name: str = "ppc64/bootrom", root: Path | None = None) -> Path:
    """Build ``firmware/<name>/*`` into a raw binary; returns the .bin path."""
    root = Path(root) if root else REPO_ROOT
    d = root / "firmware" / name
    arch = name.split("/")[0]
    scripts = sorted(d.glob("*.ld"))
    if len(scripts) != 1:
        raise FileNotFoundError(f"expected exactly one linker script in {d}")
    return build(arch, _sources_in(d), scripts[0], name.replace("/", "-"),
                 include_dirs=[d], root=root, raw_binary=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        print("usage: python -m vmachine.toolchain ARCH NAME\n"
              "       python -m vmachine.toolchain firmware ppc64/bootrom",
              file=sys.stderr)
        return 2
    try:
        if argv[0] == "firmware":
            print(build_firmware(argv[1]))
        else:
            print(build_guest(argv[0], argv[1]))
    except BuildError as e:
        print(f"BuildError: {e}", file=sys.stderr)
        print(e.output, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

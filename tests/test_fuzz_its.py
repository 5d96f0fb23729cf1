"""Fuzz (issue 15, property 3): the ITS command queue with random commands and
random table bases (inside a scratch area the test owns, or outside RAM), with
LPIs already pending in the redistributors' pending tables. Driven as a guest
drives it: tables and commands in guest RAM, then GITS_CBASER/BASER/CTLR and
GITS_CWRITER stores through the ITS window; LPI tables through the
redistributor window (PROPBASER, PENDBASER, GICR_CTLR.EnableLPIs).

Asserted: no exception; nothing written outside the scratch area; bounded
work per CWRITER store, as counts (no timed asserts): commands processed per
store (the CREADR advance) <= the queue's length, and guest-RAM accesses per
store <= WORK_PER_COMMAND per command processed (a command must cost what it
changes, not what exists). Profiles: see tests/fuzz_support.py."""
from __future__ import annotations

import time

from hypothesis import example, given
from hypothesis import strategies as st

from fuzz_support import RamWatch, VIRT_RAM, VIRT_RAM_BASE, fuzz_settings, its_host, ram_diff, virt

ITS_BASE = 0x0808_0000
GICR_BASE = 0x080A_0000
GICR_FRAME = 0x2_0000
GITS_CTLR, GITS_CBASER, GITS_CWRITER, GITS_CREADR, GITS_BASER = 0x0, 0x80, 0x88, 0x90, 0x100
GICR_CTLR, GICR_PROPBASER, GICR_PENDBASER = 0x0, 0x70, 0x78
SCRATCH = VIRT_RAM_BASE + VIRT_RAM // 2            # the test's tables live in the upper half of RAM
SCRATCH_SIZE = VIRT_RAM // 2
PROP = SCRATCH                                     # LPI property table (64 KiB)
PEND = SCRATCH + 0x1_0000                          # pending tables, 64 KiB per vCPU
IDBITS = 13                                        # LPIs 8192..16383
NLPI = (1 << (IDBITS + 1)) - 8192
RAM_END = VIRT_RAM_BASE + VIRT_RAM
SMP = 2
# Guest-RAM accesses one ITS command may need: the command, DTE (+ level 1),
# ITE (2 words, read and write), CTE (+ level 1), pending bit (read, write),
# configuration byte, for up to two redistributors (MOVI). Generous.
WORK_PER_COMMAND = 32

CMDS = {"MOVI": 1, "INT": 3, "CLEAR": 4, "SYNC": 5, "MAPD": 8, "MAPC": 9, "MAPTI": 0xA, "MAPI": 0xB,
        "INV": 0xC, "INVALL": 0xD, "MOVALL": 0xE, "DISCARD": 0xF}


def scratch_page(n_pages: int = 1, align: int = 0x1_0000):
    """A base in the scratch area (above the fixed LPI tables) or outside RAM."""
    inside = st.integers((0x4_0000) // align, (SCRATCH_SIZE - n_pages * align) // align).map(
        lambda k: SCRATCH + k * align)
    outside = st.sampled_from([0, 0x1000_0000, VIRT_RAM_BASE - align, RAM_END - align // 2 // align * align,
                               RAM_END, 1 << 40, ((1 << 48) - align)])
    return st.one_of(inside, inside, inside, inside, inside, outside)


SMALL_ID = st.one_of(st.integers(0, 7), st.integers(0, 0xFFFF_FFFF))
EVENT = st.one_of(st.integers(0, 15), st.integers(0, 0xFFFF_FFFF))
INTID = st.one_of(st.integers(8192, 8192 + 63), st.integers(8192, 8192 + NLPI + 16), st.integers(0, 0xFFFF_FFFF))
ICID = st.one_of(st.integers(0, 3), st.integers(0, 0xFFFF))
RD = st.one_of(st.integers(0, SMP), st.integers(0, 0xFFFF))


@st.composite
def command(draw) -> list[int]:
    """A command: a well-formed one of each kind (random fields) or random words."""
    kind = draw(st.sampled_from(sorted(CMDS) + ["random"]))
    if kind == "random":
        return draw(st.lists(st.integers(0, (1 << 64) - 1), min_size=4, max_size=4))
    c = CMDS[kind]
    dev, ev = draw(SMALL_ID), draw(EVENT)
    dw = [c | dev << 32, ev, 0, 0]
    if kind == "MAPD":
        itt = draw(scratch_page(1, 0x100)) & (((1 << 44) - 1) << 8)
        dw[1] = draw(st.integers(0, 0x1F))
        dw[2] = draw(st.booleans()) << 63 | itt
    elif kind == "MAPC":
        dw[2] = draw(st.booleans()) << 63 | draw(RD) << 16 | draw(ICID)
    elif kind in ("MAPTI", "MAPI"):
        dw[1] = ev | draw(INTID) << 32
        dw[2] = draw(ICID)
    elif kind == "MOVI":
        dw[2] = draw(ICID)
    elif kind == "MOVALL":
        dw[2], dw[3] = draw(RD) << 16, draw(RD) << 16
    return dw


def its_write(m, off: int, value: int, size: int = 8) -> None:
    m.mmio.find(ITS_BASE).device.mmio_write(0, off, size, value)


def its_read(m, off: int, size: int = 8) -> int:
    return m.mmio.find(ITS_BASE).device.mmio_read(0, off, size)


def gicr_write(m, cpu: int, off: int, value: int, size: int = 8) -> None:
    region = m.mmio.find(GICR_BASE)
    region.device.mmio_write(cpu, GICR_BASE - region.base + cpu * GICR_FRAME + off, size, value)


def baser(base: int, pages: int, indirect: bool) -> int:
    """Valid, 64 KiB pages (Page_Size 2), `pages` pages (Type/Entry_Size are read-only)."""
    return 1 << 63 | int(indirect) << 62 | (base & ((1 << 48) - 1) & ~0xFFFF) | 2 << 8 | (pages - 1)


def setup(m, pending: list[int], cfg: int, dt: tuple, ct: tuple, cq: tuple) -> int:
    """LPI tables (property bytes `cfg`, `pending` LPIs in every pending
    table), EnableLPIs, ITS tables and queue; returns the queue length."""
    m.ram.write(PROP, bytes([cfg]) * NLPI)
    for i in range(SMP):
        bits = bytearray(0x1_0000)
        for n in pending:
            irq = 8192 + n
            bits[irq // 8] |= 1 << (irq % 8)
        m.ram.write(PEND + i * 0x1_0000, bytes(bits))
        gicr_write(m, i, GICR_PROPBASER, PROP | IDBITS)
        gicr_write(m, i, GICR_PENDBASER, PEND + i * 0x1_0000)
        gicr_write(m, i, GICR_CTLR, 1, 4)
    its_write(m, GITS_BASER, baser(*dt))
    its_write(m, GITS_BASER + 8, baser(*ct))
    cq_base, cq_pages = cq
    its_write(m, GITS_CBASER, 1 << 63 | (cq_base & ((1 << 52) - 1) & ~0xFFF) | (cq_pages - 1))
    its_write(m, GITS_CWRITER, 0)
    its_write(m, GITS_CTLR, 1, 4)
    return cq_pages * 0x1000 // 32


def store_cwriter(m, watch: RamWatch, n_entries: int, pos: int, stats: dict) -> None:
    """One CWRITER store, with its work counted."""
    before = (its_read(m, GITS_CREADR) >> 5) & 0x7FFF
    watch.reset()
    t = time.perf_counter()
    its_write(m, GITS_CWRITER, pos << 5)
    stats["seconds"] = max(stats.get("seconds", 0.0), time.perf_counter() - t)
    after = (its_read(m, GITS_CREADR) >> 5) & 0x7FFF
    done = (after - before) % n_entries if n_entries else 0
    stalled = its_read(m, GITS_CREADR) & 1
    assert done <= n_entries
    work = watch.accesses
    assert work <= WORK_PER_COMMAND * (done + stalled + 1), (
        f"one CWRITER store: {done} commands processed, {work} guest-RAM accesses "
        f"(> {WORK_PER_COMMAND} per command)")


ITS_PROGRAM = st.fixed_dictionaries({
    "pending": st.one_of(st.just([]), st.lists(st.integers(0, NLPI - 1), max_size=40),
                         st.integers(0, 3000).map(lambda n: list(range(n))),
                         st.integers(0, 3000).map(lambda n: list(range(n)))),
    "cfg": st.one_of(st.just(0xA1), st.integers(0, 255)),
    "dt": st.tuples(scratch_page(2), st.integers(1, 2), st.booleans()),
    "ct": st.tuples(scratch_page(1), st.just(1), st.booleans()),
    "cq": st.tuples(scratch_page(1, 0x1000), st.integers(1, 2)),
    "cmds": st.lists(command(), min_size=1, max_size=16),
    "stores": st.lists(st.one_of(st.integers(1, 16), st.integers(0, 300)), min_size=1, max_size=6),
})

# The smallest queue hypothesis found that breaks the bound (issue 15 item 1):
# 33 LPIs pending on each of 2 vCPUs, one INVALL: 1 command, 2 x 33 configuration re-reads.
INVALL_EXAMPLE = {"pending": list(range(33)), "cfg": 0xA1, "dt": (SCRATCH + 0x4_0000, 1, False),
                  "ct": (SCRATCH + 0x6_0000, 1, False), "cq": (SCRATCH + 0x8_0000, 1),
                  "cmds": [[CMDS["INVALL"], 0, 0, 0]], "stores": [1]}


def run_program(p: dict) -> dict:
    m = virt(smp=SMP)
    n = setup(m, p["pending"], p["cfg"], p["dt"], p["ct"], p["cq"])
    cq_base = p["cq"][0]
    before = bytes(m.ram.buf)
    for k, dw in enumerate(p["cmds"]):
        addr = cq_base + 32 * (k % max(n, 1))
        if m.ram.contains(addr, 32):
            m.ram.write(addr, b"".join(w.to_bytes(8, "little") for w in dw))
    # what the test itself wrote into the queue is not a device write
    before = bytes(m.ram.buf)
    watch = RamWatch(m)
    stats: dict = {}
    for pos in p["stores"]:
        store_cwriter(m, watch, n, pos % max(n, 1) if pos < 256 else pos, stats)
    changed = ram_diff(m, before, skip=[(SCRATCH, SCRATCH_SIZE)])
    assert not changed, f"ITS/GIC wrote outside the scratch area: {[hex(a) for a in changed[:8]]}"
    m.run(max_insns=10_000)               # and the machine still runs (no guest: idles / spins)
    return stats


@fuzz_settings(25)
@example(p=INVALL_EXAMPLE)
@given(p=ITS_PROGRAM)
def test_its_command_queue_bounded_work(p):
    run_program(p)


@fuzz_settings(25)
@given(p=ITS_PROGRAM.map(lambda p: dict(p, pending=p["pending"][:2])))
def test_its_command_queue_no_escape_no_stray_writes(p):
    """The same programs with at most 2 LPIs pending (so the work bound holds
    today): no exception, nothing written outside the scratch area."""
    run_program(p)

"""GICv3 SPIs driven from the host while the guest runs (guests/aarch64/gic_host.c),
and the GIC benchmark guest (guests/aarch64/gic_bench.c, tools/bench.py section 8).

gic_host: only vmachine can raise an SPI line from outside, so the flow runs
in-process; without the harness the guest prints one "skipped" line, identical
on QEMU (test_guests.py checks that line, and its differential test covers every
aarch64 guest, these two included, at -smp 1, 4 and 64).

Expected values follow QEMU 7.2 (hw/intc/arm_gicv3_dist.c gicv3_dist_set_irq:
a 0 -> 1 edge of an edge-triggered SPI sets the pending latch, which is a
single bit, so two edges before the acknowledge give one delivery; for a
level-sensitive SPI "pending" is latch | line, so ICPENDR cannot clear it
while the line is high and it is taken again after an EOI with the line high).
"""
from __future__ import annotations

import struct

import pytest

from vmachine import create_machine, toolchain

from guestrun import MailboxHarness, assert_transcript_passes, run_guest

MB_GUEST = 0x47494330           # "GIC0": gic_host.c's initial value
MAILBOX = "gic_host_mailbox"
MB_N42, MB_N43, MB_LAST, MB_OTHER, MB_TOTAL = range(3, 8)
EDGE_GSI, LEVEL_GSI = 10, 11    # INTID 42 (edge), 43 (level)


# ---- gic_host with the harness ---------------------------------------------------------------
class Harness(MailboxHarness):
    def __init__(self, smp: int):
        super().__init__("aarch64", "gic_host", MAILBOX, MB_GUEST, smp)
        self.gic = self.m.board.gic
        assert self.gic is not None, "virt board without the GICv3 model"

    def pulse(self, gsi: int, times: int = 1) -> None:
        for _ in range(times):
            self.gic.irq_line(gsi, 1)
            self.gic.irq_line(gsi, 0)


# counts the host sees when the guest asks for step k: (INTID 42, INTID 43, total)
COUNTS_AT_ASK = {1: (0, 0, 0), 2: (1, 0, 1), 3: (2, 0, 2), 4: (3, 0, 3), 5: (4, 0, 4),
                 6: (4, 2, 6), 7: (4, 2, 6), 8: (4, 2, 6), 9: (4, 2, 6), 10: (4, 3, 7),
                 11: (4, 3, 7), 12: (5, 3, 8)}


@pytest.mark.parametrize("smp", [1, 4])
def test_gic_host_spi_flow(smp):
    h = Harness(smp)
    h.run_until(lambda: b"ok gic host ready" in h.m.console_out, "ok gic host ready")
    assert h.word(MB_TOTAL) == 0                    # nothing delivered before the host acts
    g = h.gic
    actions = {
        1: lambda: h.pulse(EDGE_GSI),
        2: lambda: h.pulse(EDGE_GSI, 2),            # guest has IRQs masked
        3: lambda: h.pulse(EDGE_GSI),
        4: lambda: h.pulse(EDGE_GSI, 2),            # asked from the handler: 42 is active
        5: lambda: g.irq_line(LEVEL_GSI, 1),
        6: lambda: g.irq_line(LEVEL_GSI, 0),        # asked from the second handler
        7: lambda: g.irq_line(LEVEL_GSI, 1),        # masked
        8: lambda: g.irq_line(LEVEL_GSI, 0),        # masked
        9: lambda: g.irq_line(LEVEL_GSI, 1),        # masked, then ICPENDR, unmask
        10: lambda: g.irq_line(LEVEL_GSI, 0),       # asked from the handler
        11: lambda: g.irq_line(EDGE_GSI, 1),        # held high
        12: lambda: g.irq_line(EDGE_GSI, 0),
    }
    for k in range(1, 13):
        h.wait_ask(k)
        counts = (h.word(MB_N42), h.word(MB_N43), h.word(MB_TOTAL))
        assert counts == COUNTS_AT_ASK[k], (k, counts, h.m.console_text)
        actions[k]()
        h.done(k)
    r = h.finish()
    assert r.reason == "poweroff", (r.describe(), h.m.console_text)
    assert (h.word(MB_N42), h.word(MB_N43), h.word(MB_TOTAL), h.word(MB_OTHER)) == (5, 3, 8, 0)
    assert h.word(MB_LAST) == 42

    t = h.m.console_text
    assert_transcript_passes(t)
    expected = """\
ok gic cpu init
ok icfgr 32..47 = 0x200000
ok irouter 42 = 0x0
ok irouter 43 = 0x0
ok isenabler1 = 0xc00
ok ispendr1 before the host = 0x0
ok gic host ready
ok edge pulse delivered once
ok edge first delivery pending in handler = 0x0
ok edge first delivery active in handler = 0x1
ok edge first delivery hppir1 in handler = 0x3ff
ok edge first delivery rpr in handler = 0x80
ok edge after eoi ispendr1 = 0x0
ok edge after eoi isactiver1 = 0x0
ok edge two pulses masked ispendr1 = 0x400
ok edge two pulses masked hppir1 = 0x2a
ok edge two pulses masked not taken
ok edge two pulses coalesce into one delivery
ok edge pulses while active pending = 0x1
ok edge pulses while active active = 0x1
ok edge pulses while active hppir1 = 0x3ff
ok edge two pulses while active: one more delivery
ok edge re-delivery pending in handler = 0x0
ok edge re-delivery active in handler = 0x1
ok level delivered, again after eoi with the line high, then lowered
ok level delivery 1 pending in handler = 0x1
ok level delivery 1 active in handler = 0x1
ok level delivery 1 hppir1 in handler = 0x3ff
ok level delivery 2 pending in handler = 0x1
ok level delivery 2 active in handler = 0x1
ok level delivery 2 hppir1 in handler = 0x3ff
ok level pending after the host lowered it (in handler) = 0x0
ok level active after the host lowered it (in handler) = 0x1
ok level after lowering ispendr1 = 0x0
ok level after lowering isactiver1 = 0x0
ok level high masked ispendr1 = 0x800
ok level high masked hppir1 = 0x2b
ok level high after icpendr ispendr1 = 0x800
ok level high after icpendr hppir1 = 0x2b
ok level lowered masked ispendr1 = 0x0
ok level lowered masked hppir1 = 0x3ff
ok level raised and lowered while masked: not delivered
ok level icpendr then unmask ispendr1 = 0x800
ok level still high after icpendr: delivered once
ok level delivery 3 pending in handler = 0x1
ok level pending after the host lowered it (delivery 3) = 0x0
ok edge line held high: delivered once
ok edge line held high ispendr1 = 0x0
ok edge line lowered: nothing more
ok host steps timed out
ok other or spurious iar1
ok delivery order 42 42 42 42 43 43 43 42
ok ispendr1 at end = 0x0
ok isactiver1 at end = 0x0
"""
    assert t == expected, t


def test_gic_host_host_cannot_raise_out_of_range_spi():
    from vmachine.errors import DeviceError

    h = Harness(1)
    with pytest.raises(DeviceError):
        h.gic.irq_line(256, 1)              # gsi 0..255 = INTID 32..287
    h.gic.irq_line(255, 1)
    h.gic.irq_line(255, 0)


# ---- gic_bench (tools/bench.py section 8) ----------------------------------------------------
def patched_bench(tmp_path, iters: int, bcast: int) -> str:
    """A copy of gic_bench with bench_iters / bench_bcast patched (as tools/bench.py)."""
    from elftools.elf.elffile import ELFFile

    src = toolchain.build_guest("aarch64", "gic_bench")
    data = bytearray(src.read_bytes())
    with open(src, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        for name, val in (("bench_iters", iters), ("bench_bcast", bcast)):
            addr = symtab.get_symbol_by_name(name)[0]["st_value"]
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= addr < seg["p_vaddr"] + seg["p_filesz"]:
                    off = seg["p_offset"] + addr - seg["p_vaddr"]
                    data[off:off + 8] = struct.pack("<Q", val)
                    break
            else:
                raise AssertionError(f"{name} not in a loaded segment")
    p = tmp_path / f"gic_bench-{iters}-{bcast}.elf"
    p.write_bytes(data)
    return str(p)


@pytest.mark.parametrize("smp", [1, 4])
def test_gic_bench_default_transcript(smp):
    m, r = run_guest("aarch64", "gic_bench", smp)
    assert r.reason == "poweroff", r.describe()
    t = m.console_text
    assert_transcript_passes(t)
    assert "ok gic bench 100 sgi round trips\n" in t
    assert f"ok gic bench 2 broadcasts to {smp - 1} cpus\n" in t


@pytest.mark.parametrize("smp,iters,bcast", [(1, 0, 0), (1, 357, 0), (5, 0, 7), (17, 3, 3)])
def test_gic_bench_patched_counts(tmp_path, smp, iters, bcast):
    m = create_machine("virt,gic-version=3", kernel=patched_bench(tmp_path, iters, bcast), smp=smp)
    r = m.run(max_insns=2_000_000_000)
    assert r.reason == "poweroff", r.describe()
    t = m.console_text
    assert_transcript_passes(t)
    assert f"ok gic bench {iters} sgi round trips\n" in t
    assert f"ok gic bench {bcast} broadcasts to {smp - 1} cpus\n" in t

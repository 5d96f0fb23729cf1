"""Host-side reproducer for issue 15 item 1: one CWRITER store covering many
INVALLs while many LPIs are pending (the GIC and ITS models driven directly,
no guest).

    python tools/its_queue_repro.py [--tree DIR] [--cpus 4] [--lpis 57344]
                                    [--invalls 200] [--changes 0]

`--lpis` LPIs are made pending, spread evenly over the vCPUs (INTIDs 8192 up,
PROPBASER.IDbits 16); `--changes` property bytes are rewritten before every
round, as a guest reprogramming priorities would. Reported: the commands run
by the store itself, its host time, the rounds until CREADR reaches CWRITER,
the total host time and the work count that matters, per-LPI configuration
re-reads (the GIC's own INV/INVALL work count where it keeps one, else
calls of its per-LPI config read). `--tree` runs another checkout's vmachine (e.g. an export of the
commit before the fix) for before/after figures. Host time is measured here
only; vmachine itself never reads it.

Figures (2 shared cores, Python 3.11; before = the tree at 4dcd729):
  before: 200 INVALLs, 57,344 LPIs on 4 vCPUs: the store ran 200 commands in
          22.8 s, 11,468,800 LPIs examined (57,344 per INVALL)
  after:  the store runs 64 commands in 15 ms (46 ms at load average 9); all
          200 done after 3 rounds, 19 ms (58 ms); 57,344 LPIs examined (the
          first INVALL's pass, then none); with --changes 16: 30 ms, 57,392
          examined; --invalls 32767 --changes 16: 22-33 ms per store, 511
          rounds, 2.2-2.8 s in all, 65,403 examined (2 per INVALL)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

RAM, RAM_SIZE = 0x4000_0000, 64 << 20
PROP, PEND, DT, CT, CQ = (RAM + 0x10_0000, RAM + 0x20_0000, RAM + 0x80_0000, RAM + 0x81_0000,
                          RAM + 0x100_0000)
LPI, IDBITS = 8192, 15


def build(cpus: int, lpis: int):
    """GIC + ITS on a fresh RAM; `lpis` LPIs pending over `cpus` vCPUs."""
    from vmachine.intc.gicv3 import GicV3
    from vmachine.intc.its import GicV3Its
    from vmachine.memory import GuestRAM
    ram = GuestRAM(RAM, RAM_SIZE)
    g = GicV3()
    g.set_dist_addr(0x0800_0000)
    g.add_redist_region(0x080A_0000, cpus)
    g.init([SimpleNamespace(index=i, mpidr=0x8000_0000 | i) for i in range(cpus)])
    g.attach_memory(ram)
    for i in range(cpus):
        g.connect(i, lambda level: None)
    redist = g.mmio_windows()[1][3]
    g.mmio_windows()[0][3].mmio_write(0, 0, 4, 0x2)
    ram.write(PROP, bytes(0xA3 if k % 5 else 0x63 for k in range((1 << (IDBITS + 1)) - LPI)))
    for i in range(cpus):
        redist.mmio_write(i, i * 0x2_0000 + 0x70, 8, PROP | IDBITS)
        redist.mmio_write(i, i * 0x2_0000 + 0x78, 8, PEND + i * 0x1_0000)
        redist.mmio_write(i, i * 0x2_0000, 4, 1)
    its = GicV3Its(g, ram, 0x0808_0000)
    its.mmio_write(0, 0x100, 8, (1 << 63) | DT | (2 << 8))
    its.mmio_write(0, 0x108, 8, (1 << 63) | CT | (2 << 8))
    its.mmio_write(0, 0x80, 8, (1 << 63) | CQ | 0xFF)
    its.mmio_write(0, 0x0, 4, 1)
    for k in range(lpis):
        g.lpi_process(k % cpus, LPI + k // cpus + (k % cpus) * (lpis // cpus), True)
    return g, its, ram


def work_counter(g):
    """LPIs whose config INV/INVALL examined one by one: the GIC's own count
    where it keeps one (Redistributor.inv_work), else calls of the per-LPI
    config read (the trees before the fix re-read every pending LPI)."""
    redist = getattr(g, "redist", None)
    if redist is not None and hasattr(redist, "inv_work"):
        return lambda: redist.inv_work
    owner = redist if redist is not None and hasattr(redist, "_lpi_read_cfg") else g
    box = [0]
    inner = owner._lpi_read_cfg

    def counted(cs, irq):
        box[0] += 1
        return inner(cs, irq)
    owner._lpi_read_cfg = counted
    return lambda: box[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--cpus", type=int, default=4)
    ap.add_argument("--lpis", type=int, default=57_344)
    ap.add_argument("--invalls", type=int, default=200)
    ap.add_argument("--changes", type=int, default=0)
    a = ap.parse_args()
    sys.path.insert(0, a.tree)
    import vmachine
    g, its, ram = build(a.cpus, a.lpis)
    work = work_counter(g)
    work0 = work()
    for k in range(a.invalls):
        ram.write(CQ + 32 * k, bytes([0x0D]) + bytes(31))
    t0 = time.perf_counter()
    its.mmio_write(0, 0x88, 8, a.invalls * 32)
    t_store = time.perf_counter() - t0
    in_store = (its.creadr & 0xFFFE0) // 32
    rounds = 0
    while (its.creadr & 0xFFFE0) != its.cwriter and getattr(its, "busy", False):
        for c in range(a.changes):
            off = (rounds * 7919 + c * 104_729) % a.lpis
            ram.write(PROP + off, bytes([0x03 | (rounds * 4 + c) & 0xFC]))
        its.step_queue()
        rounds += 1
    total = time.perf_counter() - t0
    examined = work() - work0
    tree = Path(vmachine.__file__).parent.parent
    print(f"vmachine {tree}: {a.cpus} vCPUs, {a.lpis} LPIs pending, "
          f"{a.invalls} INVALLs in one CWRITER store, {a.changes} property bytes changed per round")
    print(f"  store: {in_store} commands, {t_store * 1e3:.1f} ms; then {rounds} rounds; "
          f"all {a.invalls} done in {total * 1e3:.1f} ms")
    print(f"  LPIs examined one by one: {examined} ({examined / max(a.invalls, 1):.1f} per INVALL)")


if __name__ == "__main__":
    main()

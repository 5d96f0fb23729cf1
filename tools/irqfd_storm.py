#!/usr/bin/env python
"""irqfd trigger storm (issue 15, item 3): host threads call `IrqFd.trigger()`
in a loop while a virt guest runs `m.run(wall_seconds=W)`.

    python tools/irqfd_storm.py [--threads 4] [--wall 0.5] [--lead 0] [--cap 1000000] [--once]

The guest is one vCPU looping on `b .` with IRQs masked; the ITS maps
(DeviceID 1, EventID 0) to LPI 8197 on vCPU 0 and each thread has its own
irqfd on an MSI route to it (tests/gicrig.py sets the ITS up as Linux does).
The threads start --lead seconds before run() is called (the triggers of
that time meet the first round boundary together). Each thread stops after
--cap triggers (a guard for the unfixed code, whose queue grows with every
call) or when run() has returned.

Reported: the largest number of queued entries seen at a round boundary
(probed just before the drain), the peak RSS of the process and its growth
over the storm, the guest instructions executed and their rate, how long
run(wall_seconds=W) took, the trigger() calls made and, when the routing
has them, its coalescing statistics. Host time is read here only.
"""
from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gicrig import LPI, virt_with_its                       # noqa: E402
from vmachine.cpu.base import CpuState                      # noqa: E402
from vmachine.intc.msi_routing import GsiRouting, MsiRoute  # noqa: E402

B_SELF = 0x1400_0000                                        # aarch64 "b ."


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def storm(threads: int, wall: float, cap: int, once: bool, lead: float = 0.0) -> dict:
    m, r = virt_with_its(smp=1)
    r.full(dev=1, ev=0, intid=LPI + 5, cpu=0)
    cpu = m.cpus[0]
    m.ram.write(cpu.pc, B_SELF.to_bytes(4, "little"))
    cpu.state = CpuState.RUNNING
    rt = GsiRouting(m)
    rt.set_routing([MsiRoute(6, r.its.doorbell, 0, 1)])
    fds = [rt.irqfd(6, translate_once=once) for _ in range(threads)]
    m.run(max_insns=m.quantum)                                # warm up (translation, slot engine)
    probe = {"max_queued": 0, "rounds": 0}

    def before_drain():
        probe["rounds"] += 1
        probe["max_queued"] = max(probe["max_queued"], rt.pending())
    m.round_hooks.insert(0, before_drain)

    stop = threading.Event()
    calls = [0] * threads
    started = threading.Barrier(threads + 1)

    def hammer(i: int):
        fd = fds[i]
        started.wait()
        n = 0
        while n < cap and not stop.is_set():
            fd.trigger()
            n += 1
        calls[i] = n

    ts = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    rss0 = peak_rss_mib()
    insns0 = m.insns
    started.wait()
    time.sleep(lead)
    t0 = time.perf_counter()
    res = m.run(wall_seconds=wall)
    dt = time.perf_counter() - t0
    stop.set()
    for t in ts:
        t.join()
    out = {"threads": threads, "lead_s": lead, "wall_seconds": wall, "run_s": dt, "reason": res.reason,
           "insns": m.insns - insns0, "insns_per_s": (m.insns - insns0) / dt,
           "rounds": probe["rounds"], "max_queued": probe["max_queued"],
           "queued_after": rt.pending(), "trigger_calls": sum(calls),
           "peak_rss_mib": peak_rss_mib(), "rss_growth_mib": peak_rss_mib() - rss0,
           "lpi_pending": r.g.lpi_pending(0), "errors": sum(len(fd.errors) for fd in fds)}
    if hasattr(rt, "stats"):
        out["stats"] = rt.stats()
    rt.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--wall", type=float, default=0.5)
    ap.add_argument("--lead", type=float, default=0.0, help="seconds of storm before run()")
    ap.add_argument("--cap", type=int, default=1_000_000, help="trigger() calls per thread at most")
    ap.add_argument("--once", action="store_true", help="translate-once irqfds")
    a = ap.parse_args()
    res = storm(a.threads, a.wall, a.cap, a.once, a.lead)
    for k, v in res.items():
        print(f"{k:>16}: {v:.3f}" if isinstance(v, float) else f"{k:>16}: {v}")


if __name__ == "__main__":
    main()

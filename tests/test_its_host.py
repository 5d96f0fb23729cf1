"""GICv3 ITS LPIs driven from the host while the guest runs (guests/aarch64/its_host.c):
`its.signal_msi`, and irqfds (vmachine.intc.msi_routing) bound route-every-time
and translate-once, before and after the guest DISCARDs / remaps the event.

Only vmachine can raise an MSI from outside, so the flow runs in-process;
without the harness the guest prints one "skipped" line, identical on QEMU
(test_guests.py's differential test covers its_host too).
"""
from __future__ import annotations

import pytest

from vmachine import toolchain
from vmachine.errors import DeviceError
from vmachine.intc.msi_routing import GsiRouting, MsiRoute

from guestrun import (QEMU, MailboxHarness, assert_transcript_passes,
                      machine_args, need_qemu, run_in_process, run_process, run_vmachine_cli)

MB_GUEST = 0x49545330           # "ITS0": its_host.c's initial value
MAILBOX = "its_host_mailbox"
MB_N0, MB_TOTAL, MB_LAST, MB_OTHER = 3, 7, 8, 9
DEV = 5
SKIP_LINE = "ok its host skipped (no host harness)\n"


@pytest.mark.parametrize("smp", [1, 4])
def test_its_host_without_host_is_skipped(smp):
    m, r = run_in_process("aarch64", "its_host", smp)
    assert r.reason == "poweroff", r.describe()
    assert m.console_text == SKIP_LINE


@pytest.mark.parametrize("smp", [1, 4])
def test_its_host_skip_matches_qemu(smp):
    need_qemu("aarch64")
    args = machine_args("aarch64", toolchain.build_guest("aarch64", "its_host"), smp)
    q = run_process([QEMU["aarch64"], *args])
    v = run_vmachine_cli(args)
    assert q.returncode == v.returncode == 0, q.stderr.decode()
    assert v.stderr == b"", v.stderr.decode()
    assert q.stdout == v.stdout == SKIP_LINE.encode()


class Harness(MailboxHarness):
    def __init__(self, smp: int):
        super().__init__("its_host", MAILBOX, MB_GUEST, smp)
        self.its = self.m.board.its
        assert self.its is not None, "virt board without the ITS"

    def counts(self) -> tuple[int, ...]:
        return tuple(self.word(MB_N0 + i) for i in range(4))


# LPI 8192..8195 deliveries the host sees when the guest asks for step k
COUNTS_AT_ASK = {1: (0, 0, 0, 0), 2: (1, 0, 0, 0), 3: (1, 0, 1, 0), 4: (1, 0, 1, 1),
                 5: (1, 1, 1, 1), 6: (1, 1, 1, 1), 7: (1, 1, 2, 1)}

EXPECTED = """\
ok gic cpu init
ok its enabled
ok gicr enable lpis
ok mapc collection 0 -> boot cpu
ok sync
ok mapd device 5, 2 event bits
ok mapti device 5 event 0
ok mapti device 5 event 1
ok mapti device 5 event 2
ok mapti device 5 event 3
ok invall
ok gits ctlr = 0x80000001
ok gits creadr = 0x100
ok its base = 0x8080000
ok its host ready
ok signal_msi event 0: lpi 8192..8195 deliveries 1 0 0 0
ok signal_msi event 0: lpi 8192 once
ok two msis masked: pending table bit 8194 = 0x1
ok two msis masked: hppir1 = 0x2002
ok two msis masked: not taken
ok two msis masked: one delivery
ok two msis: pending table bit 8194 after delivery = 0x0
ok route-every-time irqfd event 3: lpi 8195 once
ok translate-once irqfd event 1: lpi 8193 once
ok discard device 5 event 1
ok after discard, host irqfds and msi on event 1: lpi 8192..8195 deliveries 1 1 1 1
ok after discard: lpi 8193 not delivered again
ok after discard: pending table bit 8193 = 0x0
ok mapti device 5 event 1 -> lpi 8194
ok stale translate-once then rebind: lpi 8194 once more
ok stale translate-once then rebind: lpi 8193 unchanged
ok route-every-time irqfd event 1 after remap: lpi 8194
ok host steps timed out
ok other or spurious iar1
ok at end: lpi 8192..8195 deliveries 1 1 3 1
ok delivery order 8192 8194 8195 8193 8194 8194
ok hppir1 at end = 0x3ff
"""


@pytest.mark.parametrize("smp", [1, 2])
def test_its_host_msi_and_irqfd_flow(smp):
    h = Harness(smp)
    h.run_until(lambda: b"ok its host ready" in h.m.console_out, "ok its host ready")
    assert h.word(MB_TOTAL) == 0
    its = h.its
    db = its.doorbell
    assert db == 0x8080000 + 0x10040
    routing = GsiRouting(h.m)
    try:
        # GSI 1: event 3, GSI 2: event 1 (translate-once), GSI 3: event 1 (route every time),
        # GSI 4: event 2 (nothing bound: checks translate_msi has no side effects)
        routing.set_routing([MsiRoute(1, db, 3, DEV), MsiRoute(2, db, 1, DEV),
                             MsiRoute(3, db, 1, DEV), MsiRoute(4, db, 2, DEV)])
        every3 = routing.irqfd(1)
        once1 = routing.irqfd(2, translate_once=True)
        assert once1.target == (8193, 0)
        every1 = routing.irqfd(3)
        assert its.translate_msi(db, 2, DEV) == (8194, 0)

        def step1():
            its.signal_msi(db, 0, device_id=DEV)

        def step2():
            its.signal_msi(db, 2, device_id=DEV)
            its.signal_msi(db, 2, device_id=DEV)
            assert h.m.board.gic.lpi_pending(0) == [8194]

        def step3():
            every3.fire()

        def step4():
            once1.trigger()                           # delivered at the next round boundary
            assert routing.pending() == 1

        def step5():
            # the guest DISCARDed event 1: every path to it fails visibly
            with pytest.raises(DeviceError) as e:
                once1.fire()
            assert e.value.errno_name == "ENOENT", e.value
            with pytest.raises(DeviceError) as e:
                every1.fire()
            assert e.value.errno_name == "ENOENT", e.value
            with pytest.raises(DeviceError) as e:
                its.signal_msi(db, 1, device_id=DEV)
            assert e.value.errno_name == "ENOENT"
            with pytest.raises(DeviceError) as e:
                its.translate_msi(db, 1, DEV)
            assert e.value.errno_name == "ENOENT"
            once1.trigger()
            every1.trigger()                          # queued: errors go to IrqFd.errors
            assert h.m.board.gic.lpi_pending(0) == []

        def step6():
            # the guest re-MAPTIed event 1 to LPI 8194: the cached (8193, 0) is stale
            with pytest.raises(DeviceError) as e:
                once1.fire()
            assert e.value.errno_name == "ESTALE", e.value
            assert once1.rebind() == (8194, 0)
            once1.fire()

        def step7():
            every1.fire()

        actions = {1: step1, 2: step2, 3: step3, 4: step4, 5: step5, 6: step6, 7: step7}
        for k in range(1, 8):
            h.wait_ask(k)
            assert h.counts() == COUNTS_AT_ASK[k], (k, h.counts(), h.m.console_text)
            if k == 6:
                # the step-5 triggers were drained at a round boundary and failed there
                assert routing.pending() == 0
                assert [e.errno_name for e in once1.errors] == ["ENOENT"]
                assert [e.errno_name for e in every1.errors] == ["ENOENT"]
            actions[k]()
            h.done(k)
        r = h.m.run(max_insns=h.m.insns + 2_000_000_000)
        assert r.reason == "poweroff", (r.describe(), h.m.console_text)
        assert len(once1.errors) == 1 and len(every1.errors) == 1 and every3.errors == []
    finally:
        routing.close()
    assert h.counts() == (1, 1, 3, 1)
    assert (h.word(MB_TOTAL), h.word(MB_LAST), h.word(MB_OTHER)) == (6, 8194, 0)
    t = h.m.console_text
    assert_transcript_passes(t)
    assert t == EXPECTED, t

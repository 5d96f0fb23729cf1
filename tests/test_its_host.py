"""GICv3 ITS LPIs driven from the host while the guest runs (guests/aarch64/its_host.c):
`its.signal_msi`, and irqfds (vmachine.intc.msi_routing) bound route-every-time
and translate-once, before and after the guest DISCARDs / remaps the event.

Only vmachine can raise an MSI from outside, so the flow runs in-process;
without the harness the guest prints one "skipped" line, identical on QEMU
(test_guests.py checks that line; its differential test covers its_host too).
The flow is also saved and restored mid-way, with an LPI pending on an
unmapped collection (state compared as test_migration.py does).
"""
from __future__ import annotations

import pytest

from vmachine.errors import DeviceError
from vmachine.intc.msi_routing import GsiRouting, MsiRoute
from vmachine.state import Snapshot

from guestrun import (MB_ASK, MB_DONE, MB_HOST, MailboxHarness, assert_transcript_passes, boot,
                      final_state, guest_elf, symbol_address)

MB_GUEST = 0x49545330           # "ITS0": its_host.c's initial value
MAILBOX = "its_host_mailbox"
MB_N0, MB_TOTAL, MB_LAST, MB_OTHER = 3, 7, 8, 9
DEV = 5


class Harness(MailboxHarness):
    def __init__(self, smp: int):
        super().__init__("aarch64", "its_host", MAILBOX, MB_GUEST, smp)
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
        r = h.finish()
        assert r.reason == "poweroff", (r.describe(), h.m.console_text)
        assert len(once1.errors) == 1 and len(every1.errors) == 1 and every3.errors == []
    finally:
        routing.close()
    assert h.counts() == (1, 1, 3, 1)
    assert (h.word(MB_TOTAL), h.word(MB_LAST), h.word(MB_OTHER)) == (6, 8194, 0)
    t = h.m.console_text
    assert_transcript_passes(t)
    assert t == EXPECTED, t


# ---- save / restore mid-flow (the state compared as in test_migration.py) -------------------
def _its_host_command(its, ram, dw):
    """Run one ITS command from the host: write it in the guest's queue at
    CREADR, advance CWRITER past it, then put CREADR/CWRITER back so the
    guest's own queue bookkeeping (its_cwriter) stays valid."""
    from vmachine.intc.its import CMD_SIZE, GITS_CREADR, GITS_CWRITER, QUEUE_OFFSET_MASK
    old = its.creadr & QUEUE_OFFSET_MASK
    assert its.cwriter == old, "guest queue not idle"
    slot = its.cq_base + old
    for i, v in enumerate(dw):
        ram.write_int(slot + 8 * i, 8, v, "little")
    nxt = (old + CMD_SIZE) % (its.cq_entries * CMD_SIZE)
    its.mmio_write(0, GITS_CWRITER, 8, nxt)
    assert its.creadr == nxt, "host command not processed (queue stalled?)"
    its.mmio_write(0, GITS_CREADR, 8, old)
    its.mmio_write(0, GITS_CWRITER, 8, old)
    assert (its.creadr, its.cwriter) == (old, old)


def _mapc(icid, rd, valid):
    return [0x09, 0, icid | rd << 16 | int(valid) << 63, 0]


def _int(dev, ev):
    return [0x03 | dev << 32, ev, 0, 0]


def _cte_valid(m, icid):
    its = m.board.its
    return bool(m.ram.read_int(its.ct.base + 8 * icid, 8, "little") & 1)


@pytest.mark.parametrize("smp", [1, 2])
@pytest.mark.parametrize("stop", [None, 0, 1, 2, 3, 5, 8])
def test_its_migration_with_lpi_pending_on_unmapped_collection(smp, stop):
    """its_host under the harness of test_its_host_msi_and_irqfd_flow, with MSIs from
    `its.signal_msi`. At step 2 (guest IRQs masked) the host makes LPI 8194
    pending through collection 0, then unmaps collection 0 (MAPC V=0) and
    tries an INT and an MSI through it: QEMU 7.2 drops both (no valid CTE),
    while the already pending LPI stays pending on its redistributor. The
    machine is saved there (stop = rounds after the host's step-2 actions;
    the guest unmasks and takes the LPI with the collection still unmapped),
    restored into a fresh machine, and the host finishes the flow on the
    restored one (MAPC V=1 at step 3): transcript and final state equal an
    uninterrupted run's (stop None), which prints EXPECTED."""
    elf = guest_elf("aarch64", "its_host")
    mb = symbol_address(elf, MAILBOX)

    def make():
        return boot("aarch64", "its_host", smp)

    def word(m, i):
        return m.ram.read_int(mb + 4 * i, 4, "little")

    def wait_ask(m, k):
        if word(m, MB_ASK) == k:        # a stop-point run already ended there (run() checks
            return                      # `until` only after a round)
        r = m.run(until=lambda _m: word(m, MB_ASK) == k, max_insns=m.insns + 500_000_000)
        assert r.reason == "event", (k, r.describe(), m.console_text)

    m = make()
    m.ram.write_int(mb, 4, MB_HOST, "little")
    seen = {}
    for k in range(1, 8):
        wait_ask(m, k)
        its, db = m.board.its, m.board.its.doorbell
        if k == 1:
            its.signal_msi(db, 0, device_id=5)
        elif k == 2:
            its.signal_msi(db, 2, device_id=5)
            its.signal_msi(db, 2, device_id=5)
            assert m.board.gic.lpi_pending(0) == [8194]
            _its_host_command(its, m.ram, _mapc(0, 0, False))
            assert not _cte_valid(m, 0)
            _its_host_command(its, m.ram, _int(5, 0))          # through the unmapped collection
            with pytest.raises(DeviceError) as e:
                its.signal_msi(db, 0, device_id=5)
            assert e.value.errno_name == "ENOENT" and "CTE" in str(e.value)
            assert m.board.gic.lpi_pending(0) == [8194]         # dropped; 8194 still pending
        elif k == 3:
            assert not _cte_valid(m, 0)
            seen["counts_at_3"] = tuple(word(m, MB_N0 + i) for i in range(4))
            _its_host_command(its, m.ram, _mapc(0, 0, True))
            its.signal_msi(db, 3, device_id=5)
        elif k == 4:
            its.signal_msi(db, 1, device_id=5)
        elif k == 5:
            with pytest.raises(DeviceError):
                its.signal_msi(db, 1, device_id=5)
        else:
            its.signal_msi(db, 1, device_id=5)
        m.ram.write_int(mb + 4 * MB_DONE, 4, k, "little")
        if k == 2 and stop is not None:
            if stop:                                            # never past the step-3 ask
                m.run(until=lambda _m: word(m, MB_ASK) == 3, max_insns=m.insns + stop * m.quantum * smp)
            assert not _cte_valid(m, 0)
            before = m.board.its.save_state()
            pend = [m.board.gic.lpi_pending(c.index) for c in m.cpus]
            snap = Snapshot.from_bytes(m.save().to_bytes())
            b = make()
            b.restore(snap)
            b.console_out[:] = m.console_out
            assert b.board.its.save_state() == before
            assert [b.board.gic.lpi_pending(c.index) for c in b.cpus] == pend
            assert not _cte_valid(b, 0)
            with pytest.raises(DeviceError):
                b.board.its.signal_msi(b.board.its.doorbell, 0, device_id=5)
            m = b
    assert seen["counts_at_3"] == (1, 0, 1, 0)                  # 8194 taken with collection 0 unmapped
    r = m.run(max_insns=m.insns + 2_000_000_000)
    assert r.reason == "poweroff", (r.describe(), m.console_text)
    assert m.console_text == EXPECTED, m.console_text
    key = ("its_host_unmapped", smp)
    if stop is None:
        _ITS_HOST_REF[key] = final_state(m)
    else:
        if key not in _ITS_HOST_REF:                          # run alone / out of order
            test_its_migration_with_lpi_pending_on_unmapped_collection(smp, None)
        assert final_state(m) == _ITS_HOST_REF[key]


_ITS_HOST_REF: dict = {}

"""XICS guests (guests/ppc64/xics_*.c): on vmachine in-process, against QEMU 7.2
(same command line, identical stdout), and a host-driven level-sensitive
interrupt flow that only vmachine can run (QEMU has no way to raise 0x1200)."""
from __future__ import annotations

import pytest

from vmachine import toolchain

from guestrun import (MailboxHarness, assert_transcript_passes, machine_args, need_qemu, run_guest,
                      run_qemu, run_vmachine_cli)

# (test_guests.py runs these, as every guest, at -smp 1, 2, 4 and 64)
XICS_GUESTS = ["xics_ipi", "xics_smp", "xics_rtas"]

LSI = 0x1200
MB_GUEST = 0x4C534930           # "LSI0": xics_lsi.c's initial value
MAILBOX = "xics_lsi_mailbox"


def test_xics_smp_every_cpu_reports():
    m, r = run_guest("ppc64", "xics_smp", 4)
    assert r.reason == "poweroff", r.describe()
    for i in range(4):
        assert f"ok cpu {i} got ring IPI\n" in m.console_text
        if i:
            assert f"ok cpu {i} acked IPI from boot\n" in m.console_text


def test_xics_ipi_records_qemu_values():
    """Values observed on QEMU 7.2 (guests/ppc64/xics_ipi.c)."""
    m, r = run_guest("ppc64", "xics_ipi", 1)
    assert r.reason == "poweroff", r.describe()
    t = m.console_text
    for line in ("ok idle H_XIRR xirr (reset cppr) = 0x0",
                 "ok after idle H_XIRR ipoll xirr = 0xff000000",
                 "ok ipi H_XIRR xirr = 0xff000002",
                 "ok eoi without mfrr reset: delivered twice",
                 "ok cppr 4 mfrr 4 ipoll xirr = 0x4000000",
                 "ok cppr 5 mfrr 4 ipoll xirr = 0x5000002",
                 "ok cppr 3 withdrawn ipoll xirr = 0x3000000",
                 "ok mfrr reset while presented ipoll xirr = 0xff000002",
                 "ok H_IPOLL bad server 9999",
                 "ok H_IPI bad server 9999"):
        assert line + "\n" in t, line


@pytest.mark.parametrize("smp", [1, 4])
@pytest.mark.parametrize("name", XICS_GUESTS + ["xics_lsi"])
def test_xics_differential_against_qemu(name, smp):
    """Same command line on QEMU and on vmachine: identical stdout and exit status.
    (xics_lsi without the harness only reports that it was skipped.)"""
    need_qemu("ppc64")
    args = machine_args("ppc64", toolchain.build_guest("ppc64", name), smp)
    q = run_qemu("ppc64", args)
    v = run_vmachine_cli(args)
    assert q.returncode == 0, q.stderr.decode()
    assert_transcript_passes(q.stdout.decode())
    assert v.stderr == b"", v.stderr.decode()
    assert v.stdout.decode() == q.stdout.decode()
    assert v.returncode == q.returncode == 0


# ---- host-driven LSI (without the harness: test_guests.py) -----------------------------------
def test_xics_lsi_level_flow():
    h = MailboxHarness("ppc64", "xics_lsi", MAILBOX, MB_GUEST, 1)
    m = h.m
    xics = m.board.active.xics
    word = h.word

    h.run_until(lambda: b"ok lsi ready" in m.console_out, "ok lsi ready")
    assert word(3) == 0                         # nothing delivered yet

    xics.set_irq(LSI, 1)                        # assert the line
    h.run_until(lambda: word(1) == 1, "first delivery handled")
    assert word(3) == 2                         # first EOI with the line high re-delivered

    xics.set_irq(LSI, 0)                        # lower it, then tell the guest
    h.set_word(2, 1)
    r = h.finish()
    assert r.reason == "poweroff", (r.describe(), m.console_text)
    assert word(3) == 2

    t = m.console_text
    assert_transcript_passes(t)
    for line in ("ok lsi set-xive",
                 "ok lsi ready",
                 "ok lsi delivered when the host asserted the line",
                 "ok lsi first xirr = 0xff001200",
                 "ok lsi first xisr",
                 "ok lsi re-delivered after EOI with the line high",
                 "ok lsi second xirr = 0xff001200",
                 "ok lsi host lowered the line",
                 "ok lsi ipoll in second handler = 0x5000000",
                 "ok lsi deliveries",
                 "ok lsi final ipoll xirr = 0xff000000"):
        assert line + "\n" in t, (line, t)

"""The PL011 register table and declared state (vmachine/devices/pl011.py),
and the PSCI function table (vmachine/boards/psci.py), driven directly."""
from __future__ import annotations

import json

import pytest

from vmachine.boards import psci
from vmachine.devices.pl011 import PL011_REGISTERS, Pl011
from vmachine.state import StateError


def uart():
    out, irq, errors = [], [], []
    u = Pl011(output=out.append, irq=irq.append, log_guest_error=lambda what, **k: errors.append(what))
    return u, out, irq, errors


def test_reset_column_is_the_reset_and_ids_read_as_qemus():
    u, *_ = uart()
    assert (u.cr, u.ifls, u.imsc, u.ris) == (0x300, 0x12, 0, 0)
    assert [u.mmio_read(0, 0xFE0 + 4 * i, 4) for i in range(8)] == [0x11, 0x10, 0x14, 0x00,
                                                                    0x0D, 0xF0, 0x05, 0xB1]
    assert {r.name for r in PL011_REGISTERS} >= {"UARTDR", "UARTFR", "UARTIMSC", "UARTICR"}


def test_transmit_interrupt_and_clear():
    u, out, irq, errors = uart()
    u.mmio_write(0, 0x38, 4, 1 << 5)                        # UARTIMSC.TXIM
    u.mmio_write(0, 0x00, 4, 0x141)                         # UARTDR: the low byte goes out
    assert out == [b"A"] and irq[-1] is True
    assert u.mmio_read(0, 0x3C, 4) == 1 << 5 and u.mmio_read(0, 0x40, 4) == 1 << 5
    u.mmio_write(0, 0x44, 4, 1 << 5)                        # UARTICR
    assert irq[-1] is False and u.mmio_read(0, 0x18, 4) == 0x90 and not errors


def test_receive_fifo():
    u, _, irq, _ = uart()
    u.mmio_write(0, 0x38, 4, 1 << 4)
    u.feed(b"hi")
    assert irq[-1] is True and u.regs.peek(u, 0, 0, 4) == ord("h")
    assert [u.mmio_read(0, 0, 4), u.mmio_read(0, 0, 4), u.mmio_read(0, 0, 4)] == [ord("h"), ord("i"), 0]
    assert irq[-1] is False and u.mmio_read(0, 0x18, 4) & 0x10


@pytest.mark.parametrize("offset,size", [(0x08, 4), (0x18, 8), (0x1000 - 4, 2 * 4)])
def test_bad_accesses_are_one_guest_error_each(offset, size):
    u, _, _, errors = uart()
    assert u.mmio_read(0, offset, size) == 0
    u.mmio_write(0, offset, size, 1)
    assert errors == ["pl011: invalid read", "pl011: invalid write"]


def test_state_round_trip_and_refusal():
    u, *_ = uart()
    u.feed(b"xy")
    u.mmio_write(0, 0x24, 4, 13)
    sec = json.loads(json.dumps(u.save_state()))
    v, *_ = uart()
    v.load_state({"pl011": sec})
    assert (bytes(v.rx), v.ibrd, v.ris) == (b"xy", 13, u.ris)
    sec["fields"]["ibrd"] = 1 << 16
    with pytest.raises(StateError, match="pl011.ibrd"):
        v.load_state({"pl011": sec})


def test_psci_table_names_every_advertised_function():
    assert {psci.PSCI_CALLS.get(fn).name for fn in psci.FEATURES} == {
        "PSCI_VERSION", "MIGRATE_INFO_TYPE", "AFFINITY_INFO", "SYSTEM_RESET", "SYSTEM_OFF",
        "CPU_ON", "CPU_OFF", "CPU_SUSPEND", "PSCI_FEATURES"}
    assert psci.PSCI_CALLS.get(psci.MIGRATE64).handler(None, None, 0, 0, 0) == psci.NOT_SUPPORTED

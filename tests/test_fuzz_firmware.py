"""Fuzz (issue 15, property 2): every hcall number (0..0x450 and the KVMPPC
ones) and RTAS token with random arguments, in XICS and in XIVE mode, and
random PSCI function ids, made as a guest makes them (registers, then the
board's firmware-call entry, as tests/test_firmware_calls.py). Never a Python
exception; unknown ones give the architected error (H_FUNCTION, RTAS -3, PSCI
NOT_SUPPORTED). Profiles: see tests/fuzz_support.py."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import (H_FUNCTION, H_PARAMETER, KVMPPC_H_RTAS, PSCI_NOT_SUPPORTED, PSERIES_RAM,
                          RTAS_BUF, VIRT_RAM, VIRT_RAM_BASE, cas, fuzz_settings, hcall, hcall_known,
                          psci, psci_known, pseries, ram_copy, ram_diff, rtas, rtas_tokens, virt)

HCALL_NUMBERS = list(range(0, 0x451)) + list(range(0xF000, 0xF010))
RTAS_EARLY_DEBUG = 0xA


def ppc_machine(mode: str):
    m = pseries(smp=2)
    if mode == "xive":
        assert cas(m, xive=True) == 0
    return m


def ppc_arg():
    return st.one_of(st.integers(0, 16), st.integers(0, PSERIES_RAM - 1),
                     st.integers(0, (1 << 64) - 1), st.sampled_from([0x1000, 0x1100, 0x1200, 0x71000000,
                                                                      (1 << 64) - 1, 1 << 63]))


def check_hcall(m, op: int, args: list[int], cpu: int = 0) -> None:
    known = hcall_known(m, op & ((1 << 64) - 1))
    r = hcall(m, op, *args, cpu=cpu)
    if not known:
        assert r == H_FUNCTION, f"unknown hcall {op:#x} returned {r}"


@pytest.mark.parametrize("mode", ["xics", "xive"])
@fuzz_settings(10)
@given(calls=st.lists(st.tuples(st.sampled_from(HCALL_NUMBERS) | st.integers(0, 0xFFFF),
                                st.lists(ppc_arg(), min_size=9, max_size=9), st.integers(0, 1)),
                      min_size=1, max_size=40))
def test_random_hcalls(mode, calls):
    m = ppc_machine(mode)
    for op, args, cpu in calls:
        check_hcall(m, op, args, cpu)


@pytest.mark.parametrize("mode", ["xics", "xive"])
def test_every_hcall_number(mode):
    rng = random.Random(0x15)
    m = ppc_machine(mode)
    for op in HCALL_NUMBERS:
        if m.exited:                        # a power-off / fatal CAS ends the machine: take a fresh one
            m = ppc_machine(mode)
        for _ in range(2):
            args = [rng.choice([0, 1, rng.randrange(16), rng.randrange(PSERIES_RAM), rng.getrandbits(64)])
                    for _ in range(9)]
            check_hcall(m, op, args, rng.randrange(2))


# ---- RTAS ------------------------------------------------------------------------------------------
def rtas_words():
    return st.one_of(st.integers(0, 8), st.integers(0x1000, 0x1210), st.integers(0, (1 << 32) - 1))


@pytest.mark.parametrize("mode", ["xics", "xive"])
@fuzz_settings(15)
@given(data=st.data())
def test_random_rtas_calls(mode, data):
    m = ppc_machine(mode)
    tokens = rtas_tokens(m)
    known = set(tokens.values()) | {RTAS_EARLY_DEBUG}
    token_st = st.one_of(st.sampled_from(sorted(known)), st.integers(0x2000, 0x2040),
                         st.integers(0, 0xFFFF), st.integers(0, (1 << 32) - 1))
    calls = data.draw(st.lists(st.tuples(token_st, st.lists(rtas_words(), max_size=10), st.integers(0, 10)),
                               min_size=1, max_size=20))
    before = ram_copy(m)
    for token, args, nret in calls:
        if m.exited:
            break
        h, rets = rtas(m, token, args, nret)
        if token not in known and nret:
            assert rets[0] == -3, f"unknown RTAS token {token:#x}: {h}, {rets}"
    # The buffer is the only RAM an RTAS call may write (nothing else was set up).
    changed = ram_diff(m, before, skip=[(RTAS_BUF & ~0xFFF, 0x2000)])
    assert not changed, f"RTAS calls {calls} wrote RAM pages {[hex(a) for a in changed]}"


@fuzz_settings(10)
@given(bufs=st.lists(st.one_of(st.integers(PSERIES_RAM - 64, PSERIES_RAM + 64),
                               st.integers(0, (1 << 64) - 1), st.sampled_from([(1 << 64) - 4, -1 & ((1 << 64) - 1)])),
                     min_size=1, max_size=10),
       tail=st.lists(st.integers(0, (1 << 32) - 1), min_size=3, max_size=3))
def test_rtas_buffer_anywhere(bufs, tail):
    """KVMPPC_H_RTAS with a buffer at/after/across the end of RAM."""
    m = ppc_machine("xics")
    end = PSERIES_RAM
    m.ram.write(end - 12, b"".join(w.to_bytes(4, "big") for w in tail))
    for buf in bufs:
        r = hcall(m, KVMPPC_H_RTAS, buf)
        if not (0 <= buf and buf + 12 <= end):
            assert r == H_PARAMETER


# ---- PSCI ------------------------------------------------------------------------------------------
PSCI_FN = st.one_of(st.integers(0x84000000, 0x8400001F), st.integers(0xC4000000, 0xC400001F),
                    st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 64) - 1),
                    st.sampled_from([0x84000000, 0x84000001, 0xC4000003, 0x84000004, 0x8400000A]))
PSCI_ARG = st.one_of(st.integers(0, 3), st.integers(VIRT_RAM_BASE, VIRT_RAM_BASE + VIRT_RAM - 1),
                     st.integers(0, (1 << 64) - 1), st.sampled_from([0x80000000, 0x100, 1 << 32]))


@fuzz_settings(15)
@given(calls=st.lists(st.tuples(PSCI_FN, st.lists(PSCI_ARG, min_size=3, max_size=3), st.integers(0, 1)),
                      min_size=1, max_size=40))
def test_random_psci_calls(calls):
    m = virt(smp=2)
    m.cpus[0].start(VIRT_RAM_BASE + 0x10_0000, 0)
    for fn, args, cpu in calls:
        f = fn & 0xFFFF_FFFF if fn >> 32 == 0 else fn
        r = psci(m, fn, *args, cpu=cpu)
        if not psci_known(f):
            assert r == PSCI_NOT_SUPPORTED, f"unknown PSCI function {fn:#x} returned {r}"

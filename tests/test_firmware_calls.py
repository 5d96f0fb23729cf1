"""Firmware calls and their error paths: sPAPR hcalls and RTAS (pseries),
PSCI (virt). Calls go through the board's dispatch with a real vCPU whose
registers the test sets, through the real `sc 1` / `hvc #0` trap, and through
guests whose QEMU 7.2 transcripts are known.

Expected values: /work/shared/reference/ppc64-pseries.md sections 2-3,
aarch64-virt.md section 3, guests/NOTES.md, and the PSCI specification."""
from __future__ import annotations

import struct

import libfdt
import pytest

from guestrun import VIRT_CODE, run_guest
from vmachine import create_machine
from vmachine.cpu.base import CpuState

H_SUCCESS, H_FUNCTION, H_PARAMETER = 0, -2, -4
H_GET_TERM_CHAR, H_PUT_TERM_CHAR, KVMPPC_H_RTAS = 0x54, 0x58, 0xF000
VTY = 0x71000000
RTAS_BUF = 0x80_0000           # scratch buffer in RAM (the boot ROM sits below 64 KiB)
U64 = (1 << 64) - 1


def s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def s32(v: int) -> int:
    return v - (1 << 32) if v >> 31 else v


# ---- pseries helpers (the `pseries` fixture is in conftest.py) ----------------------------------

def hcall(m, op, *args, cpu=0):
    c = m.cpus[cpu]
    c.set_gpr(3, op)
    for i in range(9):
        c.set_gpr(4 + i, args[i] if i < len(args) else 0)
    m.board.firmware_call(c)
    return s64(c.gpr(3))


def rtas_token(m, name):
    """From the board's own /rtas node (tokens are never hard-coded)."""
    fdt = libfdt.Fdt(m.board.dtb())
    return int.from_bytes(bytes(fdt.getprop(fdt.path_offset("/rtas"), name)), "big")


def rtas(m, name_or_token, args, nret, cpu=0, buf=RTAS_BUF, fill=0xDEADBEEF):
    """One KVMPPC_H_RTAS call; returns (hcall status, [rets as signed 32-bit])."""
    token = rtas_token(m, name_or_token) if isinstance(name_or_token, str) else name_or_token
    words = [token, len(args), nret, *args] + [fill] * nret
    m.ram.write(buf, struct.pack(f">{len(words)}I", *words))
    h = hcall(m, KVMPPC_H_RTAS, buf, cpu=cpu)
    rets = struct.unpack(f">{nret}I", m.ram.read(buf + 12 + 4 * len(args), 4 * nret))
    return h, [s32(r) for r in rets]


def guest_errors(m):
    return m.trace.of_kind("guest-error")


# ---- hcalls ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [0x1234, 0x1235, 0xF100, 0])
def test_unknown_hcall_is_h_function(pseries, op):
    assert hcall(pseries, op, 1, 2, 3) == H_FUNCTION
    errs = guest_errors(pseries)
    assert len(errs) == 1 and errs[0].get("opcode") == op and errs[0].cpu == 0


def test_unknown_hcall_through_sc1_resumes_after_it(pseries):
    m, cpu = pseries, pseries.cpus[0]
    m.ram.write(0x10_0000, struct.pack(">2I", 0x44000022, 0x60000000))   # sc 1; nop
    cpu.start(0x10_0000, 0x1234)                                         # r3 = opcode
    cpu.run_insns(1)
    assert s64(cpu.gpr(3)) == H_FUNCTION
    assert cpu.pc == 0x10_0004
    assert len(guest_errors(m)) == 1


def test_put_term_char(pseries):
    assert hcall(pseries, H_PUT_TERM_CHAR, VTY, 3, int.from_bytes(b"hi\n\0\0\0\0\0", "big")) == 0
    assert hcall(pseries, H_PUT_TERM_CHAR, VTY, 16, int.from_bytes(b"0123456789abcdef"[:8], "big"),
                 int.from_bytes(b"89abcdef", "big")) == 0
    assert hcall(pseries, H_PUT_TERM_CHAR, VTY, 0, 0x4142434445464748) == 0
    assert pseries.console_text == "hi\n0123456789abcdef"
    assert [e.what for e in pseries.trace.of_kind("hcall")] == ["H_PUT_TERM_CHAR"] * 3


@pytest.mark.parametrize("termno,length", [(VTY, 17), (VTY, 1 << 40), (0x12345, 1),
                                           (VTY + 1, 1)])
def test_put_term_char_errors_are_h_parameter(pseries, termno, length):
    assert hcall(pseries, H_PUT_TERM_CHAR, termno, length, 0x4142434445464748, 0x494A4B4C4D4E4F50) \
        == H_PARAMETER
    assert pseries.console_text == ""


def test_get_term_char_returns_fed_input(pseries):
    m, cpu = pseries, pseries.cpus[0]
    m.board.vty.feed(b"ab")
    assert hcall(m, H_GET_TERM_CHAR, VTY) == H_SUCCESS
    assert (cpu.gpr(4), cpu.gpr(5), cpu.gpr(6)) == (2, int.from_bytes(b"ab".ljust(8, b"\0"), "big"), 0)
    assert hcall(m, H_GET_TERM_CHAR, VTY) == H_SUCCESS
    assert cpu.gpr(4) == 0
    m.board.vty.feed(bytes(range(0x41, 0x41 + 20)))               # more than 16 per call
    assert hcall(m, H_GET_TERM_CHAR, VTY) == H_SUCCESS
    assert (cpu.gpr(4), cpu.gpr(5), cpu.gpr(6)) == (16, 0x4142434445464748, 0x494A4B4C4D4E4F50)
    assert hcall(m, H_GET_TERM_CHAR, VTY) == H_SUCCESS
    assert (cpu.gpr(4), cpu.gpr(5)) == (4, 0x5152535400000000)


def test_get_term_char_bad_termno(pseries):
    pseries.board.vty.feed(b"x")
    assert hcall(pseries, H_GET_TERM_CHAR, 0x12345) == H_PARAMETER
    assert pseries.board.vty.input == bytearray(b"x")           # nothing consumed


# ---- RTAS ----------------------------------------------------------------------------------------------

def test_rtas_unknown_token(pseries):
    h, rets = rtas(pseries, 0x1234, [], 1)
    assert (h, rets) == (H_PARAMETER, [-3])
    assert any(e.get("token") == 0x1234 for e in guest_errors(pseries))


def test_rtas_token_0xa_is_display_character(pseries):
    h, rets = rtas(pseries, 0xA, [ord("Z")], 1)
    assert (h, rets) == (H_SUCCESS, [0])
    assert pseries.console_text == "Z"


@pytest.mark.parametrize("buf", [0x10_0000_0000, (64 << 20) - 8, (1 << 64) - 4, -1 & U64])
def test_rtas_buffer_outside_ram(pseries, buf):
    assert hcall(pseries, KVMPPC_H_RTAS, buf) == H_PARAMETER        # and nothing raised
    assert guest_errors(pseries)


def test_rtas_arguments_running_past_ram(pseries):
    end = 64 << 20
    buf = end - 16
    tok = rtas_token(pseries, "get-time-of-day")
    pseries.ram.write(buf, struct.pack(">3I", tok, 0, 8))          # rets would pass the end
    assert hcall(pseries, KVMPPC_H_RTAS, buf) == H_PARAMETER
    pseries.ram.write(buf, struct.pack(">3I", tok, 0xFFFFFFFF, 0xFFFFFFFF))
    assert hcall(pseries, KVMPPC_H_RTAS, buf) == H_PARAMETER


def test_start_cpu(pseries):
    m = pseries
    c1 = m.cpus[1]
    assert c1.state is CpuState.STOPPED
    h, rets = rtas(m, "start-cpu", [1, 0x20_0000, 0xABCD], 1)
    assert (h, rets) == (H_SUCCESS, [0])
    assert c1.state is CpuState.RUNNING
    assert (c1.pc, c1.gpr(3)) == (0x20_0000, 0xABCD)
    assert c1.registers()["msr"] == (1 << 63) | (1 << 12)          # real mode, SF + ME
    # start-cpu on a running CPU: -1 (guests/NOTES.md); on the caller too
    assert rtas(m, "start-cpu", [1, 0x30_0000, 0], 1) == (H_SUCCESS, [-1])
    assert rtas(m, "start-cpu", [0, 0x30_0000, 0], 1) == (H_SUCCESS, [-1])
    assert c1.pc == 0x20_0000


@pytest.mark.parametrize("args", [[2, 0x20_0000, 0], [0x4321, 0x20_0000, 0], [1, 0x20_0000],
                                  [1, 0x20_0000, 0, 0]])
def test_start_cpu_param_errors(pseries, args):
    assert rtas(pseries, "start-cpu", args, 1) == (H_SUCCESS, [-3])
    assert pseries.cpus[1].state is CpuState.STOPPED


def test_start_cpu_wrong_nret(pseries):
    assert rtas(pseries, "start-cpu", [1, 0x20_0000, 0], 2)[1][0] == -3
    assert pseries.cpus[1].state is CpuState.STOPPED


def test_query_cpu_stopped_state_and_stop_self(pseries):
    m = pseries
    m.cpus[0].state = CpuState.RUNNING
    assert rtas(m, "query-cpu-stopped-state", [0], 2) == (H_SUCCESS, [0, 2])
    assert rtas(m, "query-cpu-stopped-state", [1], 2) == (H_SUCCESS, [0, 0])
    rtas(m, "start-cpu", [1, 0x20_0000, 0], 1)
    assert rtas(m, "query-cpu-stopped-state", [1], 2) == (H_SUCCESS, [0, 2])
    # stop-self from cpu 1: it stops, and no return word is written
    h, rets = rtas(m, "stop-self", [], 1, cpu=1, buf=RTAS_BUF + 0x100)
    assert (h, rets) == (H_SUCCESS, [s32(0xDEADBEEF)])
    assert m.cpus[1].state is CpuState.STOPPED
    assert rtas(m, "query-cpu-stopped-state", [1], 2) == (H_SUCCESS, [0, 0])
    # and it can be started again
    assert rtas(m, "start-cpu", [1, 0x20_0000, 7], 1) == (H_SUCCESS, [0])
    assert m.cpus[1].state is CpuState.RUNNING


@pytest.mark.parametrize("args,nret", [([0x4321], 2), ([0, 0], 2), ([0], 1)])
def test_query_cpu_stopped_state_param_errors(pseries, args, nret):
    assert rtas(pseries, "query-cpu-stopped-state", args, nret)[1][0] == -3


def test_power_off_direct_and_run_exit(pseries):
    m = pseries
    assert rtas(m, "power-off", [0], 1) == (H_SUCCESS, [-3])        # nargs must be 2
    assert rtas(m, "power-off", [0, 0], 2)[1][0] == -3               # nret must be 1
    assert m.exited is None
    assert rtas(m, "power-off", [0, 0], 1) == (H_SUCCESS, [0])
    assert m.exited == ("poweroff", 0)
    assert m.run(max_insns=10**6).reason == "poweroff"


def test_power_off_from_running_guest_code(pseries):
    """sc 1 with KVMPPC_H_RTAS/power-off ends the run at once."""
    m, cpu = pseries, pseries.cpus[0]
    tok = rtas_token(m, "power-off")
    m.ram.write(RTAS_BUF, struct.pack(">6I", tok, 2, 1, 0, 0, 0xDEADBEEF))
    m.ram.write(0x10_0000, struct.pack(">3I", 0x44000022, 0x48000000, 0))   # sc 1; b .
    cpu.start(0x10_0000, KVMPPC_H_RTAS)
    cpu.set_gpr(4, RTAS_BUF)
    r = m.run(max_insns=10**7)
    assert (r.reason, r.exit_status) == ("poweroff", 0)
    assert r.insns < 10**7
    assert m.ram.read_int(RTAS_BUF + 20, 4, "big") == 0


def test_get_time_of_day(pseries):
    assert rtas(pseries, "get-time-of-day", [], 7) == (H_SUCCESS, [-3] + [s32(0xDEADBEEF)] * 6)
    assert rtas(pseries, "get-time-of-day", [], 9)[1][0] == -3
    h, rets = rtas(pseries, "get-time-of-day", [], 8)
    assert h == H_SUCCESS and rets[0] == 0
    year, month, day, hour, minute, sec = rets[1:7]
    assert year >= 2000 and 1 <= month <= 12 and 1 <= day <= 31
    assert hour < 24 and minute < 60 and sec < 60
    # deterministic: a fresh machine in the same state answers the same
    other = create_machine("pseries", smp=2, ram_size=64 << 20)
    assert rtas(other, "get-time-of-day", [], 8) == (h, rets)


def test_get_time_of_day_ns_word_is_low_32_bits_of_time(pseries):
    import calendar
    _, rets = rtas(pseries, "get-time-of-day", [], 8)
    secs = calendar.timegm(tuple(rets[1:7]) + (0, 0, 0))
    ns7 = rets[7] & 0xFFFFFFFF
    # QEMU: word 7 = guest_ns mod 2**32 with guest_ns in [secs * 1e9, (secs + 1) * 1e9)
    lo = (secs * 10**9) & 0xFFFFFFFF
    assert (ns7 - lo) % (1 << 32) < 10**9


# ---- a guest that checks the corner cases on QEMU 7.2 --------------------------------------------

# QEMU 7.2 output of guests/ppc64/unit_rtas.c (-smp 1 and -smp 4 identical).
UNIT_RTAS_QEMU = """\
ok rtas token 0xa prints Z
ok rtas token 0xa hcall ret
ok rtas token 0xa status
ok termno 0
ok put_term_char termno 0 ret
ok get_term_char empty ret
ok get_term_char empty len
ok get_term_char bad termno
ok get-time-of-day nret 7 status
ok get-time-of-day nret 7 hcall ret
ok get-time-of-day status
ok get-time-of-day fields in range
ok power-off nargs 1 status
ok power-off nargs 1 did not power off
ok start-cpu nargs 2 status
ok query-cpu-stopped-state unknown id
"""


def test_unit_rtas_guest_matches_qemu_except_token_0xa():
    m, r = run_guest("ppc64", "unit_rtas")
    assert r.reason == "poweroff"
    lines = m.console_text.splitlines(keepends=True)
    want = UNIT_RTAS_QEMU.splitlines(keepends=True)
    assert lines[-13:] == want[3:]


# QEMU 7.2 transcripts from guests/NOTES.md (lines about firmware calls among them).
EXCEPTIONS_QEMU = {
    "ppc64": [
        "ok unknown hcall 0x1234", "ok unaligned hcall 0x1235", "ok out of range hcall 0xf100",
        "ok put_term_char len 17", "ok put_term_char bad termno", "ok put_term_char len 0",
        "ok rtas unknown token status", "ok rtas unknown token hcall ret = -4",
        "ok rtas start-cpu unknown id", "ok query-cpu-stopped-state self status",
        "ok query-cpu-stopped-state self state", "ok rtas token lookup misses",
        "ok unassigned load value = 0x0", "ok unassigned store ignored",
        "ok unassigned load after store = 0x0",
    ],
    "aarch64": [
        "ok unassigned 0x09100000 abort esr = 0x96000010", "ok unassigned 0x09100000 abort far",
        "ok unassigned 0x4000000000 abort esr = 0x96000010", "ok unassigned 0x4000000000 abort far",
        "ok psci version", "ok psci features cpu_on", "ok psci features system_off",
        "ok psci features unknown", "ok psci migrate_info_type", "ok psci unknown function",
        "ok cpu_on bad mpidr", "ok cpu_on self is ALREADY_ON", "ok affinity_info self",
        "ok non-psci hvc returned = -1",
    ],
}


@pytest.mark.parametrize("arch", ["ppc64", "aarch64"])
def test_exceptions_guest_firmware_lines(arch):
    m, r = run_guest(arch, "exceptions")
    assert r.reason == "poweroff"
    lines = m.console_text.splitlines()
    missing = [l for l in EXCEPTIONS_QEMU[arch] if l not in lines]
    assert not missing, m.console_text
    assert not [l for l in lines if l.startswith("not ok")]


# ---- PSCI -------------------------------------------------------------------------------------------

PSCI_VERSION, CPU_OFF, CPU_ON32, CPU_ON64 = 0x84000000, 0x84000002, 0x84000003, 0xC4000003
AFFINITY_INFO32, AFFINITY_INFO64 = 0x84000004, 0xC4000004
MIGRATE, MIGRATE_INFO_TYPE, SYSTEM_OFF = 0x84000005, 0x84000006, 0x84000008
SYSTEM_RESET, PSCI_FEATURES = 0x84000009, 0x8400000A
CPU_SUSPEND32, CPU_SUSPEND64 = 0x84000001, 0xC4000001
A64_CODE = VIRT_CODE            # where the `virt` fixture (conftest.py) runs the caller


def psci(m, fn, a1=0, a2=0, a3=0, cpu=0):
    c = m.cpus[cpu]
    for i, v in enumerate((fn, a1, a2, a3)):
        c.set_x(i, v)
    m.board.firmware_call(c)
    return s64(c.x(0))


def test_psci_version(virt):
    assert psci(virt, PSCI_VERSION) == 0x10001
    assert psci(virt, MIGRATE_INFO_TYPE) == 2


@pytest.mark.parametrize("fn", [PSCI_VERSION, CPU_SUSPEND32, CPU_SUSPEND64, CPU_OFF, CPU_ON32,
                                CPU_ON64, AFFINITY_INFO32, AFFINITY_INFO64, MIGRATE_INFO_TYPE,
                                SYSTEM_OFF, SYSTEM_RESET, PSCI_FEATURES])
def test_psci_features_known(virt, fn):
    assert psci(virt, PSCI_FEATURES, fn) == 0


@pytest.mark.parametrize("fn", [0x8400001F, 0x12345, 0xC400000A, 0])
def test_psci_features_unknown(virt, fn):
    assert psci(virt, PSCI_FEATURES, fn) == -1


@pytest.mark.parametrize("fn", [0x8400001F, 0x12345, 0xC400001F])
def test_unknown_function_is_not_supported(virt, fn):
    assert psci(virt, fn) == -1
    assert virt.exited is None


def test_cpu_on_and_affinity_info(virt):
    m = virt
    c1 = m.cpus[1]
    assert psci(m, AFFINITY_INFO64, 1, 0) == 1                     # off
    assert psci(m, AFFINITY_INFO64, 0, 0) == 0                     # the caller: on
    assert psci(m, CPU_ON64, 1, 0x4020_0000, 0x5A5A) == 0
    assert c1.state is CpuState.RUNNING
    assert (c1.pc, c1.x(0)) == (0x4020_0000, 0x5A5A)               # x0 = context
    assert c1.pstate == 0x3C5                                      # EL1h, DAIF masked
    assert psci(m, AFFINITY_INFO32, 1, 0) == 0
    assert psci(m, CPU_ON64, 1, 0x4030_0000, 0) == -4              # ALREADY_ON
    assert psci(m, CPU_ON32, 0, 0x4030_0000, 0) == -4              # the caller itself
    assert c1.pc == 0x4020_0000
    assert psci(m, CPU_ON64, 2, 0x4020_0000, 0) == 0
    assert m.cpus[2].state is CpuState.RUNNING


def test_mpidr_with_bit_31_is_not_a_cpu(virt):
    assert psci(virt, AFFINITY_INFO64, 0x8000_0000, 0) == -2
    assert psci(virt, CPU_ON64, 0x8000_0002, 0x4020_0000, 0) == -2
    assert virt.cpus[2].state is CpuState.STOPPED


@pytest.mark.parametrize("mpidr", [0xFF, 4, 0x100, 0x1_0000_0000])
def test_cpu_on_bad_mpidr(virt, mpidr):
    assert psci(virt, CPU_ON64, mpidr, 0x4020_0000, 0) == -2       # INVALID_PARAMS
    assert all(c.state is CpuState.STOPPED for c in virt.cpus[1:])


def test_affinity_info_unknown_mpidr_is_invalid_params(virt):
    assert psci(virt, AFFINITY_INFO64, 0xFF, 0) == -2
    assert psci(virt, AFFINITY_INFO64, 0xFF, 1) == 0           # levels above 0: always on


def test_migrate_is_not_supported(virt):
    assert psci(virt, 0xC4000005, 0) == -1
    assert psci(virt, PSCI_FEATURES, 0xC4000005) == -1


def test_cpu_suspend_bad_power_state(virt):
    assert psci(virt, CPU_SUSPEND64, 0x1000_0000) == -2
    assert virt.cpus[0].state is CpuState.RUNNING


# QEMU 7.2 output of guests/aarch64/unit_psci.c (-smp 1 and -smp 4 identical).
UNIT_PSCI_QEMU = """\
ok affinity_info32 self
ok affinity_info unknown mpidr
ok affinity_info level 1
ok affinity_info self with bit 31 = -2
ok cpu_on32 self is ALREADY_ON
ok migrate not supported
ok features migrate
ok cpu_suspend bad power_state
"""


def test_unit_psci_guest_matches_qemu_except_mpidr_bit_31():
    m, r = run_guest("aarch64", "unit_psci")
    assert r.reason == "poweroff"
    got = m.console_text.splitlines()
    want = UNIT_PSCI_QEMU.splitlines()
    assert got[:3] + got[4:] == want[:3] + want[4:]


@pytest.mark.parametrize("arch,name", [("ppc64", "unit_rtas"), ("aarch64", "unit_psci")])
def test_unit_guest_transcript_is_qemus(arch, name):
    m, r = run_guest(arch, name)
    assert m.console_text == {"unit_rtas": UNIT_RTAS_QEMU, "unit_psci": UNIT_PSCI_QEMU}[name]


def test_cpu_off_stops_the_caller(virt):
    m = virt
    psci(m, CPU_ON64, 1, 0x4020_0000, 0)
    m.cpus[1].set_x(0, CPU_OFF)
    m.board.firmware_call(m.cpus[1])
    assert m.cpus[1].state is CpuState.STOPPED
    assert psci(m, AFFINITY_INFO64, 1, 0) == 1
    assert m.cpus[0].state is CpuState.RUNNING
    assert m.exited is None
    assert psci(m, CPU_ON64, 1, 0x4020_0000, 3) == 0                # can come back


def test_cpu_off_through_hvc_in_a_run(virt):
    """cpu1 runs `hvc #0` with x0 = CPU_OFF; cpu0 spins; the run goes on."""
    m = virt
    m.ram.write(A64_CODE, struct.pack("<I", 0x14000000))                    # cpu0: b .
    m.ram.write(0x4020_0000, struct.pack("<2I", 0xD4000002, 0x14000000))    # hvc #0; b .
    psci(m, CPU_ON64, 1, 0x4020_0000, 0)
    m.cpus[1].set_x(0, CPU_OFF)
    r = m.run(max_insns=200_000)
    assert r.reason == "max-insns"
    assert m.cpus[1].state is CpuState.STOPPED
    assert m.cpus[1].pc == 0x4020_0004
    assert m.cpus[0].state is CpuState.RUNNING
    assert [e.what for e in m.trace.of_kind("psci")][-1] == "CPU_OFF"


def test_hvc_returns_after_the_instruction(virt):
    m, c = virt, virt.cpus[0]
    m.ram.write(A64_CODE, struct.pack("<2I", 0xD4000002, 0xD503201F))   # hvc #0; nop
    c.set_x(0, PSCI_VERSION)
    c.run_insns(1)
    assert (c.x(0), c.pc) == (0x10001, A64_CODE + 4)
    assert not m.trace.of_kind("exception")


def test_system_off_ends_the_run(virt):
    m, c = virt, virt.cpus[0]
    m.ram.write(A64_CODE, struct.pack("<2I", 0xD4000002, 0x14000000))   # hvc #0; b .
    c.set_x(0, SYSTEM_OFF)
    r = m.run(max_insns=10**7)
    assert (r.reason, r.exit_status) == ("poweroff", 0)
    assert r.insns < 10**7


def test_system_off_direct(virt):
    psci(virt, SYSTEM_OFF)
    assert virt.exited == ("poweroff", 0)
    assert virt.cpus[0].state is CpuState.STOPPED

"""The ARM generic timer's virtual and physical EL1 timers, on virtual time.

CNTFRQ is QEMU's 62.5 MHz (one tick per 16 ns); the counters are the machine
clock, never the host's. Each timer's output (ISTATUS & ENABLE & !IMASK) is a
level line, the PPI the GIC issue wires to INTID 27 (virtual) / 30 (physical).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Callable

from ..clock import Timer, VirtualClock
from ..regs import SysReg, SysRegBank
from ..state import Array, Field, U32, U64, VMStateDescription

GTIMER_SCALE_NS = 16
CNTFRQ = 1_000_000_000 // GTIMER_SCALE_NS        # 62_500_000

CTL_ENABLE, CTL_IMASK, CTL_ISTATUS = 1, 2, 4

# (op0, op1, CRn, CRm, op2)
CNTFRQ_EL0 = (3, 3, 14, 0, 0)
CNTPCT_EL0 = (3, 3, 14, 0, 1)
CNTVCT_EL0 = (3, 3, 14, 0, 2)
CNTP_TVAL_EL0, CNTP_CTL_EL0, CNTP_CVAL_EL0 = (3, 3, 14, 2, 0), (3, 3, 14, 2, 1), (3, 3, 14, 2, 2)
CNTV_TVAL_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0 = (3, 3, 14, 3, 0), (3, 3, 14, 3, 1), (3, 3, 14, 3, 2)
CNTKCTL_EL1 = (3, 0, 14, 1, 0)


@dataclass
class GenericTimerChannel:
    """One EL1 timer (virtual or physical) of one vCPU."""
    clock: VirtualClock
    output: Callable[[bool], None] = lambda level: None
    ctl: int = 0
    cval: int = 0
    level: bool = False
    _timer: Timer | None = field(default=None, repr=False)

    def count(self) -> int:
        return self.clock.peek() // GTIMER_SCALE_NS

    def istatus(self) -> bool:
        return bool(self.ctl & CTL_ENABLE) and self.count() >= self.cval

    def read_ctl(self) -> int:
        return (self.ctl & (CTL_ENABLE | CTL_IMASK)) | (CTL_ISTATUS if self.istatus() else 0)

    def write_ctl(self, value: int) -> None:
        self.ctl = value & (CTL_ENABLE | CTL_IMASK)
        self.rearm()

    def write_cval(self, value: int) -> None:
        self.cval = value & 0xFFFF_FFFF_FFFF_FFFF
        self.rearm()

    def read_tval(self) -> int:
        return (self.cval - self.count()) & 0xFFFF_FFFF

    def write_tval(self, value: int) -> None:
        tval = value & 0xFFFF_FFFF
        if tval & 0x8000_0000:
            tval -= 1 << 32
        self.write_cval(self.count() + tval)

    def rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancelled = True
            self._timer = None
        if self.ctl & CTL_ENABLE and not self.istatus():
            self._timer = self.clock.add_timer(self.cval * GTIMER_SCALE_NS, self.rearm)
        self._update()

    def _update(self) -> None:
        level = self.istatus() and not self.ctl & CTL_IMASK
        if level != self.level:
            self.level = level
            self.output(level)


@dataclass
class GenericTimer:
    """The per-vCPU timer block; `sysregs()` is its system-register table."""
    clock: VirtualClock
    virt: GenericTimerChannel = field(init=False)
    phys: GenericTimerChannel = field(init=False)
    cntkctl: int = 0

    def __post_init__(self) -> None:
        self.virt = GenericTimerChannel(self.clock)
        self.phys = GenericTimerChannel(self.clock)

    def save_state(self, name: str) -> dict:
        """Section `name` ("timer<N>", one per vCPU) as GENERIC_TIMER_STATE declares it."""
        return GENERIC_TIMER_STATE.save(self, name)

    def decode_state(self, sections: dict, name: str) -> dict:
        """Validate section `name` completely; touches nothing."""
        return GENERIC_TIMER_STATE.decode(self, sections, name)

    def apply_state(self, plan: dict) -> None:
        """Store and re-arm both channels."""
        GENERIC_TIMER_STATE.apply(self, plan)

    def load_state(self, sections: dict, name: str) -> None:
        """Validate section `name`, then store it and re-arm both channels."""
        self.apply_state(self.decode_state(sections, name))

    def _post_load(self) -> None:
        """The clock's timers were dropped by the restore: arm afresh, the
        output level recomputed from nothing."""
        for ch in (self.virt, self.phys):
            ch._timer = None
            ch.level = False
            ch.rearm()

    def sysregs(self) -> dict:
        """This vCPU's timer registers for its trap table (GENERIC_TIMER_REGS)."""
        return GENERIC_TIMER_REGS.bind(self, None)


def _channel_field(name: str) -> Field:
    """A channel saved as [CTL, CVAL] (CTL without ISTATUS, which is derived)."""
    def get(t: GenericTimer) -> list[int]:
        ch = getattr(t, name)
        return [ch.ctl, ch.cval]

    def put(t: GenericTimer, value: list[int]) -> None:
        ch = getattr(t, name)
        ch.ctl, ch.cval = value
    return Field(name, Array(U64, count=2), get_fn=get, put_fn=put)


GENERIC_TIMER_STATE = VMStateDescription("timer", 1, (
    Field("cntkctl", U32), _channel_field("virt"), _channel_field("phys"),
), post_load=GenericTimer._post_load)


# ---- the system registers ----------------------------------------------------------------------------
def _read_count(t: GenericTimer, ctx: None) -> int:
    """CNTVCT/CNTPCT: the machine clock in 62.5 MHz ticks (never host time)."""
    return t.clock.read() // GTIMER_SCALE_NS


def _write_cntkctl(t: GenericTimer, ctx: None, value: int) -> None:
    t.cntkctl = value & 0x3FF


def _channel_registers(name: str, crm: int, which: str) -> tuple[SysReg, ...]:
    """CNT<name>_TVAL/CTL/CVAL_EL0 of one channel ("virt" or "phys"),
    described once for both timers."""
    ch = attrgetter(which)
    return (
        SysReg(f"CNT{name}_TVAL_EL0", (3, 3, 14, crm, 0), lambda t, c: ch(t).read_tval(),
               lambda t, c, v: ch(t).write_tval(v)),
        SysReg(f"CNT{name}_CTL_EL0", (3, 3, 14, crm, 1), lambda t, c: ch(t).read_ctl(),
               lambda t, c, v: ch(t).write_ctl(v)),
        SysReg(f"CNT{name}_CVAL_EL0", (3, 3, 14, crm, 2), lambda t, c: ch(t).cval,
               lambda t, c, v: ch(t).write_cval(v)),
    )


GENERIC_TIMER_REGS = SysRegBank("generic timer", (
    SysReg("CNTFRQ_EL0", CNTFRQ_EL0, lambda t, c: CNTFRQ, None),
    SysReg("CNTPCT_EL0", CNTPCT_EL0, _read_count, None),
    SysReg("CNTVCT_EL0", CNTVCT_EL0, _read_count, None),
    *_channel_registers("P", 2, "phys"),
    *_channel_registers("V", 3, "virt"),
    SysReg("CNTKCTL_EL1", CNTKCTL_EL1, lambda t, c: t.cntkctl, _write_cntkctl, reset=0,
           field="cntkctl"),
))

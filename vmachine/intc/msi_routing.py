"""Host-side GSI routing and irqfd-like triggers (KVM_SET_GSI_ROUTING,
KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_IRQFD), one module for both boards.

Routing table (`GsiRouting.set_routing(entries)`), entries keyed by GSI:
  * `IrqchipRoute(gsi, pin)`: virt: `pin` is an SPI number - 32 (KVM's
    gsi -> SPI mapping: `gic.irq_line(pin, level)`, INTID pin + 32); pseries:
    `pin` is a XICS/XIVE source number (`board.set_irq(pin, level)`).
  * `MsiRoute(gsi, address, data, device_id)`: virt: every delivery goes
    through the ITS (`its.signal_msi(address, data, device_id)`, the
    KVM_MSI_VALID_DEVID form); pseries: the MSI data is the source number
    (QEMU spapr_msi_write), delivered as an edge `board.set_irq(data, 1)`;
    the address is not interpreted.
`set_routing` validates every entry first and then swaps the whole table in
one reference assignment (KVM: RCU): a delivery sees the old or the new
table, never a mix. GSIs are 0..MAX_ROUTES-1 (KVM_MAX_IRQ_ROUTES). Duplicate
GSIs: KVM (kvm_set_routing_entry) refuses a GSI mapped twice to the same
irqchip and an MSI GSI with any other entry; each board here has exactly one
irqchip, so any duplicate GSI is EINVAL.

`irq_line(gsi, level)`: an irqchip route drives its pin; an MSI route is
signalled on level 1 and ignores level 0 (KVM kvm_set_msi). `signal(gsi)`:
one MSI through an MSI route (EINVAL for an irqchip route).

`IrqFd` (from `GsiRouting.irqfd(gsi, ...)`), two binding modes:
  * route every time (default): each delivery looks the GSI up in the
    current table; an irqchip route is pulsed (1 then 0, KVM irqfd_inject),
    an MSI route is signalled through the ITS.
  * `translate_once=True` (MSI routes): `translate_msi` runs once at bind
    time and each delivery raises the cached (INTID, vCPU) LPI directly
    with `gic.lpi_process(vcpu, intid, 1)`. Before each delivery the binding
    is re-validated: the ITS has no mapping-generation counter, so the MSI is
    re-translated (side-effect free) and compared; if the mapping is gone
    (DISCARD, MAPD V=0, ITS disabled) or changed (MOVI, MAPC to another
    vCPU) the delivery raises DeviceError ("ESTALE" / the ITS's errno) and
    nothing is injected. `rebind()` re-translates. A new routing table for
    the GSI rebinds on the next delivery (KVM irqfd_update). On pseries the
    translation is the identity (data = source), nothing can go stale.
  * `resample=True` (irqchip routes only): a trigger asserts the line and
    leaves it high. The GIC/XICS models have no EOI notifier, so the KVM
    resamplefd "de-assert at guest EOI" is replaced by an explicit host
    `ack()`: it de-asserts the line and calls `on_resample()` (the device
    then re-triggers if it still needs service).

Threads: `trigger()` and `ack()` may be called from any host thread. They
never deliver: like a write to an eventfd they only mark the irqfd as
having work, under a lock, and return. Deliveries happen in `drain()`,
which a `GsiRouting(machine)` registers in `machine.round_hooks`: at a round
boundary (before the next round), never inside a vCPU slot.

Coalescing (KVM irqfd semantics: an eventfd counter of any value is one
interrupt when it is consumed): a `trigger()` on an irqfd whose trigger is
queued and not yet delivered is counted and dropped, so N triggers between
two drains are one delivery (for an edge SPI, an LPI or an sPAPR MSI that
is what the hardware's pending latch does anyway). The same holds for
`ack()` (a resamplefd is an eventfd too): at most one resample callback per
irqfd per drain. A resample irqfd keeps the order of its queued trigger and
ack, coalesced to the last two distinct ones: trigger, ack, trigger is
delivered as ack, trigger (line high, one callback) and ack, trigger, ack
as trigger, ack (line low, one callback); the intermediate levels were
never visible to the guest, which does not run during a drain. Bounded:
the queue holds each irqfd at most once, with at most two operations, so
it is O(irqfds) whatever the number of calls, and memory does not grow
with calls. Back-pressure: `trigger()`/`ack()` return True when they queued
work and False when they coalesced (or the irqfd is closed); a call that
coalesced also gives up the GIL (`time.sleep(0)`), so host threads calling
in a loop cannot starve the machine thread (without it, each of the run
loop's GIL reacquisitions after a Unicorn call waited for a 5 ms switch
interval and the guest crawled).

Order and bounded work: a drain delivers the irqfds that had work when it
started, in irqfd creation order (not in arrival order, which depends on
host thread scheduling), at most `drain_limit` irqfds per drain (default
DRAIN_LIMIT). When more have work, the next drain continues in creation
order after the last irqfd delivered (round robin, so none starves) and
the rest stay queued, still coalescing. Triggers that arrive while a drain
runs wait for the next one. So which boundary a cross-thread trigger lands
on depends on host scheduling, but given the same triggers pending at the
same drain points the deliveries, their order and their results are the
same; triggers queued before `run()` (or from the run loop's own thread,
e.g. an `until` callback) are fully deterministic. A drain costs at most
`drain_limit` deliveries, so it cannot stretch a round (nor delay
`run(wall_seconds=...)`) however many calls the host threads make.

`stats()` counts trigger()/ack() calls, how many of them coalesced into work
already queued, deliveries, drains, the irqfds left for a later drain by
`drain_limit`, and the queue's high-water mark; each IrqFd has its own
`triggers`, `coalesced` and `deliveries`. Errors of queued deliveries never
reach the run loop: they are appended to `IrqFd.errors` (the last
ERRORS_KEPT; `IrqFd.error_count` counts them all), traced ("irq", "irqfd
error") and the delivery is dropped. `fire()` delivers synchronously
(caller's thread must own the machine), raises, and neither coalesces nor
touches the queue; `irq_line`, `signal` and `signal_msi` are synchronous too.
The queue and the bindings are host state: not in snapshots.
"""
from __future__ import annotations

import threading
import time
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from ..errors import DeviceError

if TYPE_CHECKING:
    from ..machine import Machine

MAX_ROUTES = 4096                    # KVM_MAX_IRQ_ROUTES
MASK32 = 0xFFFF_FFFF
MASK64 = (1 << 64) - 1
DRAIN_LIMIT = 1024                   # irqfds delivered per round boundary at most
ERRORS_KEPT = 64                     # IrqFd.errors keeps the last ERRORS_KEPT errors


@dataclass(frozen=True)
class IrqchipRoute:
    gsi: int
    pin: int


@dataclass(frozen=True)
class MsiRoute:
    gsi: int
    address: int
    data: int
    device_id: int = 0


def _u(v, mask: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= mask:
        raise DeviceError("EINVAL", f"GSI routing: {what} {v!r} out of range")
    return v


class IrqChipHost(Protocol):
    """What a board offers the host for interrupt routing (KVM's irqchip and
    MSI ioctls); both boards implement it, GsiRouting uses nothing else.

    virt: pins are SPIs - 32 into the GICv3, MSIs go through the ITS and
    translate to (LPI INTID, vCPU), injected straight into the redistributor.
    pseries: pins and MSI data are sPAPR interrupt numbers of the active
    controller (QEMU spapr_msi_write), the translation is the identity."""

    irqchip_pins: range              # the valid irqchip route pins
    irqchip_pin_kind: str            # what a pin is, for error messages ("SPI", "source")

    def irqchip_set_pin(self, pin: int, level: int) -> None:
        """KVM_IRQ_LINE on an irqchip pin."""

    def signal_msi(self, address: int, data: int, device_id: int) -> None:
        """KVM_SIGNAL_MSI (with KVM_MSI_VALID_DEVID)."""

    def translate_msi(self, address: int, data: int, device_id: int) -> tuple[int, int]:
        """Side-effect-free MSI translation: (interrupt, vCPU or -1)."""

    def inject_translated(self, irq: int, vcpu: int) -> None:
        """Deliver a translate_msi result directly (no lookup)."""

    def msi_mapping_generation(self) -> int | None:
        """Bumped whenever a translation may change (None: always re-check)."""


class GsiRouting:
    """The GSI routing table of one machine and its irqfds, over the board's
    `IrqChipHost` interface."""

    def __init__(self, machine: "Machine", drain_limit: int = DRAIN_LIMIT):
        if isinstance(drain_limit, bool) or not isinstance(drain_limit, int) or drain_limit < 1:
            raise DeviceError("EINVAL", f"GSI routing: drain_limit {drain_limit!r} is not a positive int")
        self.machine = machine
        self.host: IrqChipHost = machine.board      # type: ignore[assignment]
        self._table: dict[int, IrqchipRoute | MsiRoute] = {}
        self.drain_limit = drain_limit
        # The cross-thread queue: irqfd creation number -> irqfd with queued
        # work (IrqFd._ops), each irqfd at most once. Guarded by _lock, as
        # are every IrqFd's _ops/_calls/triggers/coalesced and the counters.
        self._lock = threading.Lock()
        self._ready: dict[int, IrqFd] = {}
        self._next_seq = 0
        self._cursor = -1                     # last irqfd delivered by a drain cut short
        self._calls = self._coalesced = self._max_queued = 0
        self._deliveries = self._drains = self._deferred = 0   # the machine thread's
        self.machine.round_hooks.append(self.drain)
        self._hooked = True

    def close(self) -> None:
        """Stop draining at round boundaries (queued work is dropped)."""
        if self._hooked:
            self.machine.round_hooks.remove(self.drain)
            self._hooked = False
        with self._lock:
            for fd in self._ready.values():
                fd._ops, fd._calls = (), 0
            self._ready.clear()

    # ---- the table (KVM_SET_GSI_ROUTING) -----------------------------------------------------
    def set_routing(self, entries) -> None:
        table: dict[int, IrqchipRoute | MsiRoute] = {}
        for e in entries:
            if not isinstance(e, (IrqchipRoute, MsiRoute)):
                raise DeviceError("EINVAL", f"GSI routing: {e!r} is not a route entry")
            gsi = _u(e.gsi, MAX_ROUTES - 1, "GSI")
            if gsi in table:
                raise DeviceError("EINVAL", f"GSI routing: GSI {gsi} has more than one entry "
                                            f"(one irqchip per machine)")
            if isinstance(e, IrqchipRoute):
                self._check_pin(_u(e.pin, MASK32, "pin"))
            else:
                _u(e.address, MASK64, "MSI address")
                _u(e.data, MASK32, "MSI data")
                _u(e.device_id, MASK32, "MSI DeviceID")
            table[gsi] = e
        self._table = table                            # atomic swap

    def _check_pin(self, pin: int) -> None:
        pins = self.host.irqchip_pins
        if pin not in pins:
            raise DeviceError("EINVAL", f"GSI routing: {self.host.irqchip_pin_kind} pin {pin} out of "
                                        f"range ({pins.start}..{pins.stop - 1})")

    def _msi(self, r: MsiRoute) -> None:
        self.host.signal_msi(r.address, r.data, r.device_id)

    def _translate(self, r: MsiRoute) -> tuple[int, int]:
        return self.host.translate_msi(r.address, r.data, r.device_id)

    def routes(self) -> list:
        return [self._table[g] for g in sorted(self._table)]

    def route(self, gsi: int):
        r = self._table.get(gsi)
        if r is None:
            raise DeviceError("ENOENT", f"GSI routing: no route for GSI {gsi!r}")
        return r

    # ---- synchronous host calls -------------------------------------------------------------
    def irq_line(self, gsi: int, level: int) -> None:
        """KVM_IRQ_LINE through the routing table."""
        r = self.route(gsi)
        if isinstance(r, IrqchipRoute):
            self.host.irqchip_set_pin(r.pin, int(bool(level)))
        elif level:
            self._msi(r)

    def signal(self, gsi: int) -> None:
        """One MSI through the MSI route of `gsi`."""
        r = self.route(gsi)
        if not isinstance(r, MsiRoute):
            raise DeviceError("EINVAL", f"GSI routing: GSI {gsi} is an irqchip route, not an MSI")
        self._msi(r)

    def signal_msi(self, address: int, data: int, device_id: int = 0) -> None:
        """KVM_SIGNAL_MSI without a route."""
        self._msi(MsiRoute(0, _u(address, MASK64, "MSI address"), _u(data, MASK32, "MSI data"),
                                  _u(device_id, MASK32, "MSI DeviceID")))

    # ---- irqfds -------------------------------------------------------------------------------
    def irqfd(self, gsi: int, *, translate_once: bool = False, resample: bool = False,
              on_resample: Callable[[], None] | None = None) -> "IrqFd":
        """KVM_IRQFD: bind a trigger to `gsi`."""
        return IrqFd(self, gsi, translate_once, resample, on_resample)

    def _new_seq(self) -> int:
        with self._lock:
            self._next_seq += 1
            return self._next_seq

    def _post(self, fd: "IrqFd", op: str) -> bool:
        """Queue `op` ("trigger" or "ack") for `fd`; False if it coalesced
        into work already queued (or the irqfd is closed)."""
        with self._lock:
            if fd.closed:
                return False
            self._calls += 1
            fd._calls += 1
            if op == "trigger":
                fd.triggers += 1
            ops = fd._ops
            if ops and ops[-1] == op:                  # queued, not yet delivered: one delivery
                self._coalesced += 1
                fd.coalesced += 1
                return False
            if not ops:
                fd._ops = (op,)
                self._ready[fd._seq] = fd
                if len(self._ready) > self._max_queued:
                    self._max_queued = len(self._ready)
            elif len(ops) == 1:
                fd._ops = (ops[0], op)
            else:                                      # (t, a) + t -> (a, t); (a, t) + a -> (t, a)
                fd._ops = (ops[1], op)
                self._coalesced += 1
                fd.coalesced += 1
            return True

    def _unqueue(self, fd: "IrqFd") -> None:
        with self._lock:
            self._ready.pop(fd._seq, None)
            fd._ops, fd._calls = (), 0

    def pending(self) -> int:
        """How many irqfds have queued work (at most one entry per irqfd)."""
        return len(self._ready)

    def drain(self) -> int:
        """Deliver the queued work of at most `drain_limit` irqfds, in
        creation order (machine thread, round boundary); returns how many
        trigger()/ack() calls that consumed, coalesced ones included."""
        if not self._ready:                            # cheap check without the lock
            return 0
        limit = self.drain_limit
        with self._lock:
            seqs = sorted(self._ready)
            if len(seqs) > limit:                      # continue after the last one delivered
                i = bisect_right(seqs, self._cursor)
                seqs = (seqs[i:] + seqs[:i])[:limit]
                self._cursor = seqs[-1]
                self._deferred += len(self._ready) - limit
            else:
                self._cursor = -1
            work = []
            for q in seqs:
                fd = self._ready.pop(q)
                work.append((fd, fd._ops, fd._calls))
                fd._ops, fd._calls = (), 0
        self._drains += 1
        consumed = 0
        for fd, ops, calls in work:
            consumed += calls
            for op in ops:
                if fd.closed:
                    break
                fd.deliveries += 1
                self._deliveries += 1
                try:
                    fd._ack_now() if op == "ack" else fd.fire()
                except DeviceError as e:
                    fd._error(e)
                    self._trace("irqfd error", gsi=fd.gsi, op=op, error=str(e))
        return consumed

    def stats(self) -> dict[str, int]:
        """Counters since creation: `calls` (trigger() and ack() calls on open irqfds),
        `coalesced` (of those, absorbed by work already queued: no delivery
        of their own), `deliveries` (fire()s and resamples done by drains),
        `drains` (that had work), `deferred` (irqfds left queued by a drain
        at drain_limit, summed over drains), `queued` (irqfds queued now)
        and `max_queued` (its high-water mark)."""
        with self._lock:
            return {"calls": self._calls, "coalesced": self._coalesced,
                    "deliveries": self._deliveries, "drains": self._drains,
                    "deferred": self._deferred, "queued": len(self._ready),
                    "max_queued": self._max_queued}

    def _trace(self, what: str, **k) -> None:
        self.machine.trace.log(-1, "irq", what, **k)


class _LastErrors(list):
    """A list that keeps only its last ERRORS_KEPT items."""

    def append(self, e) -> None:
        if len(self) >= ERRORS_KEPT:
            del self[0]
        super().append(e)


class IrqFd:
    """An irqfd: `trigger()` (any thread, queued, coalescing), `fire()`
    (now), `ack()` (resample), `rebind()` (translate-once), `close()`."""

    def __init__(self, routing: GsiRouting, gsi: int, translate_once: bool, resample: bool,
                 on_resample: Callable[[], None] | None):
        self.routing, self.gsi = routing, _u(gsi, MAX_ROUTES - 1, "GSI")
        self.translate_once, self.resample, self.on_resample = translate_once, resample, on_resample
        self.errors: list[DeviceError] = _LastErrors()     # the last ERRORS_KEPT
        self.error_count = 0
        self.triggers = 0            # trigger() calls while open
        self.coalesced = 0           # trigger()/ack() calls absorbed by queued work
        self.deliveries = 0          # queued operations delivered by drains
        self._ops: tuple[str, ...] = ()      # queued work, oldest first (GsiRouting._lock)
        self._calls = 0                      # calls folded into _ops
        self.closed = False
        self.asserted = False
        self._route = None
        self._target: tuple[int, int] | None = None
        self._generation: int | None = None
        if translate_once and resample:
            raise DeviceError("EINVAL", "irqfd: resample needs an irqchip route, translate-once an MSI route")
        if resample or translate_once:
            r = routing.route(gsi)
            if resample and not isinstance(r, IrqchipRoute):
                raise DeviceError("EINVAL", f"irqfd: resample on GSI {gsi}, which is not an irqchip route")
            if translate_once:
                self.rebind()
        self._seq = routing._new_seq()          # creation order: the drain order

    def rebind(self) -> tuple[int, int]:
        """Translate the GSI's MSI route now and cache (INTID, vCPU)."""
        r = self.routing.route(self.gsi)
        if not isinstance(r, MsiRoute):
            raise DeviceError("EINVAL", f"irqfd: translate-once on GSI {self.gsi}, which is not an MSI route")
        self._target = self.routing._translate(r)
        self._route = r
        self._generation: int | None = self.routing.host.msi_mapping_generation()
        return self._target

    @property
    def target(self) -> tuple[int, int] | None:
        return self._target

    def trigger(self) -> bool:
        """Thread-safe: queue one trigger for the next round boundary.
        Coalesces: False if a trigger of this irqfd is already queued (it
        will be the one delivery) or the irqfd is closed."""
        return self._post("trigger")

    def ack(self) -> bool:
        """Thread-safe: queue the resample (stands for the guest's EOI);
        coalesces as trigger() does."""
        if not self.resample:
            raise DeviceError("EINVAL", "irqfd: ack() without resample")
        return self._post("ack")

    def _post(self, op: str) -> bool:
        if self.routing._post(self, op):
            return True
        # Coalesced (or closed): the call had no effect. Back-pressure on a
        # host thread calling in a loop: give the GIL up, or the machine
        # thread (whose Unicorn calls release it) waits a switch interval
        # (5 ms) per reacquisition and the guest and run() limits crawl.
        time.sleep(0)
        return False

    def close(self) -> None:
        """KVM_IRQFD_FLAG_DEASSIGN: queued work is dropped; a resample line
        still asserted is lowered."""
        if self.resample and self.asserted and not self.closed:
            self._ack_now(callback=False)
        self.closed = True
        self.routing._unqueue(self)

    def _error(self, e: DeviceError) -> None:
        self.errors.append(e)
        self.error_count += 1

    def fire(self) -> None:
        """Deliver one trigger now; raises DeviceError."""
        rt = self.routing
        if self.translate_once:
            self._fire_translated()
            return
        r = rt.route(self.gsi)
        if isinstance(r, IrqchipRoute):
            if self.resample:
                rt.host.irqchip_set_pin(r.pin, 1)
                self.asserted = True
            else:
                rt.host.irqchip_set_pin(r.pin, 1)
                rt.host.irqchip_set_pin(r.pin, 0)
        else:
            rt._msi(r)

    def _fire_translated(self) -> None:
        rt = self.routing
        r = rt.route(self.gsi)
        if r is not self._route:                        # new routing table: KVM irqfd_update
            self.rebind()
        gen = rt.host.msi_mapping_generation()
        if gen is not None and gen == self._generation:
            rt.host.inject_translated(*self._target)            # nothing remapped since: no lookup
            return
        try:
            now = rt._translate(r)
        except DeviceError as e:
            raise DeviceError(e.errno_name, f"irqfd GSI {self.gsi}: pre-translated MSI "
                                            f"{self._target} no longer mapped ({e}); rebind() to "
                                            f"re-translate") from None
        if now != self._target:
            raise DeviceError("ESTALE", f"irqfd GSI {self.gsi}: MSI was remapped from "
                                        f"(INTID, vCPU) {self._target} to {now}; rebind() to follow")
        self._generation = gen
        rt.host.inject_translated(*self._target)

    def _ack_now(self, callback: bool = True) -> None:
        r = self.routing.route(self.gsi)
        if isinstance(r, IrqchipRoute):
            self.routing.host.irqchip_set_pin(r.pin, 0)
        self.asserted = False
        if callback and self.on_resample is not None:
            self.on_resample()

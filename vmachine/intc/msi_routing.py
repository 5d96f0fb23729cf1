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

Threads: `trigger()` and `ack()` may be called from any host thread; they
only append to a queue under a lock. The queue is drained, in FIFO order, by
`drain()`, which a `GsiRouting(machine)` registers in `machine.round_hooks`:
deliveries happen at a round boundary (before the next round), never inside
a vCPU slot. Which boundary a cross-thread trigger lands on depends on host
scheduling and is not deterministic; triggers queued before `run()` (or from
the run loop's own thread, e.g. an `until` callback) are. Several triggers
queued before one boundary are all delivered there; for an edge SPI or an
LPI that is one pending latch (as an eventfd counter coalesces). Errors of
queued deliveries never reach the run loop: they are appended to
`IrqFd.errors`, traced ("irq", "irqfd error") and the delivery is dropped.
`fire()` delivers synchronously (caller's thread must own the machine) and
raises. The queue and the bindings are host state: not in snapshots.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from ..errors import DeviceError

if TYPE_CHECKING:
    from ..machine import Machine

MAX_ROUTES = 4096                    # KVM_MAX_IRQ_ROUTES
MASK32 = 0xFFFF_FFFF
MASK64 = (1 << 64) - 1


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

    def __init__(self, machine: "Machine"):
        self.machine = machine
        self.host: IrqChipHost = machine.board      # type: ignore[assignment]
        self._table: dict[int, IrqchipRoute | MsiRoute] = {}
        self._lock = threading.Lock()
        self._queue: deque = deque()
        self.machine.round_hooks.append(self.drain)
        self._hooked = True

    def close(self) -> None:
        """Stop draining at round boundaries (queued work is dropped)."""
        if self._hooked:
            self.machine.round_hooks.remove(self.drain)
            self._hooked = False
        with self._lock:
            self._queue.clear()

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

    def _post(self, fd: "IrqFd", op: str) -> None:
        with self._lock:
            self._queue.append((fd, op))

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def drain(self) -> int:
        """Deliver every queued trigger/ack (machine thread, round boundary);
        returns how many were processed."""
        if not self._queue:                            # cheap check without the lock
            return 0
        with self._lock:
            work = list(self._queue)
            self._queue.clear()
        for fd, op in work:
            if fd.closed:
                continue
            try:
                fd._ack_now() if op == "ack" else fd.fire()
            except DeviceError as e:
                fd.errors.append(e)
                self._trace("irqfd error", gsi=fd.gsi, op=op, error=str(e))
        return len(work)

    def _trace(self, what: str, **k) -> None:
        self.machine.trace.log(-1, "irq", what, **k)


class IrqFd:
    """An irqfd: `trigger()` (any thread, queued), `fire()` (now), `ack()`
    (resample), `rebind()` (translate-once), `close()`."""

    def __init__(self, routing: GsiRouting, gsi: int, translate_once: bool, resample: bool,
                 on_resample: Callable[[], None] | None):
        self.routing, self.gsi = routing, _u(gsi, MAX_ROUTES - 1, "GSI")
        self.translate_once, self.resample, self.on_resample = translate_once, resample, on_resample
        self.errors: list[DeviceError] = []
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

    def trigger(self) -> None:
        """Thread-safe: queue one trigger for the next round boundary."""
        if not self.closed:
            self.routing._post(self, "trigger")

    def ack(self) -> None:
        """Thread-safe: queue the resample (stands for the guest's EOI)."""
        if not self.resample:
            raise DeviceError("EINVAL", "irqfd: ack() without resample")
        if not self.closed:
            self.routing._post(self, "ack")

    def close(self) -> None:
        """KVM_IRQFD_FLAG_DEASSIGN: queued work is dropped; a resample line
        still asserted is lowered."""
        if self.resample and self.asserted and not self.closed:
            self._ack_now(callback=False)
        self.closed = True

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

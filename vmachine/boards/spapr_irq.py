"""The sPAPR interrupt plan and the interrupt-controller switch, as QEMU's
hw/ppc/spapr_irq.c and include/hw/ppc/spapr_irq.h.

A pseries machine has one or two interrupt controllers (XICS, XIVE; both in
ic-mode=dual) but only one is active at a time: CAS picks it, a reset goes
back to the boot mode. Every controller implements `SpaprInterruptController`
(QEMU's SpaprInterruptControllerClass); `SpaprIrq` holds them, claims the
machine's interrupt numbers in all of them (so a switch finds every source
already there), forwards device lines to the active one and swaps the active
one (spapr_irq_update_active_intc). Nothing else knows which is active.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Protocol

from ..fdt import Node

if TYPE_CHECKING:
    from ..machine import Machine
    from .spapr_hcall import Hcall
    from .spapr_rtas import RtasHandler

# spapr_irq.h: the interrupt number space.
SPAPR_IRQ_IPI = 0x0              # XIVE: one IPI source per vCPU server, 0..nr_servers-1
SPAPR_XIRQ_BASE = 0x1000         # device interrupts: 0x1000..0x1fff
SPAPR_NR_XIRQS = 0x1000
SPAPR_IRQ_EPOW = 0x1000          # environment and power warnings
SPAPR_IRQ_HOTPLUG = 0x1001
SPAPR_IRQ_VIO = 0x1100           # VIO devices (the vty)
SPAPR_IRQ_PCI_LSI = 0x1200       # the PHB's four INTx lines, level-sensitive
SPAPR_NR_PCI_LSI = 4
SPAPR_IRQ_MSI = 0x1300           # MSIs (dynamically allocated on QEMU)
PHANDLE_INTC = 0x1111            # the interrupt-controller node's phandle (both modes)

IC_MODES = ("xics", "xive", "dual")


class SpaprInterruptController(Protocol):
    """What the board needs from an interrupt controller (QEMU
    SpaprInterruptControllerClass). `name` ("xics"/"xive") is the mode's name
    in traces, snapshots and `intcs`."""

    name: str
    ipi_sources: bool        # IPIs are interrupt sources (XIVE) rather than presenter state (XICS)

    def activate(self) -> None:
        """Take the vCPU lines (and MMIO windows) over; state is kept."""

    def deactivate(self) -> None:
        """Let go of the vCPU lines and MMIO windows; state is kept."""

    def reset(self) -> None:
        """Machine reset of the controller's state."""

    def claim_irq(self, irq: int, lsi: bool) -> None:
        """Make interrupt `irq` exist, level-sensitive or message-signalled."""

    def free_irq(self, irq: int) -> None:
        """Undo claim_irq."""

    def set_irq(self, irq: int, level: int) -> None:
        """A device line: LSI level, or an MSI edge on level 1."""

    def dt(self, root: Node) -> None:
        """Add the controller's device-tree node under `root`."""

    def hcalls(self) -> Iterable["Hcall"]:
        """The hcalls the controller answers (registered once, at build)."""

    def rtas_calls(self) -> Iterable[tuple[str, "RtasHandler"]]:
        """The RTAS calls the controller answers, by name."""

    def save_state(self) -> dict:
        """The controller's snapshot section."""

    def decode_state(self, sections: dict) -> object:
        """Validate the controller's section completely; touches nothing."""

    def apply_state(self, plan: object) -> None:
        """Store what decode_state accepted; the board has already made the
        snapshot's controller active (QEMU spapr_irq_post_load)."""

    def load_state(self, sections: dict) -> None:
        """decode_state, then apply_state."""


class SpaprIrq:
    """The controllers of one machine (`intcs`, by name), the `active` one,
    the claimed interrupts and the level of every LSI line."""

    def __init__(self, machine: "Machine", intcs: list[SpaprInterruptController], ic_mode: str):
        self.machine = machine
        self.ic_mode = ic_mode
        self.intcs: dict[str, SpaprInterruptController] = {c.name: c for c in intcs}
        # active after reset: XIVE for ic-mode=xive, else XICS (dual boots on XICS)
        self.boot = self.intcs["xive" if ic_mode == "xive" else "xics"]
        self.active: SpaprInterruptController | None = None
        # Level-sensitive lines and which are high: a line stays asserted
        # across a switch of interrupt controller.
        self.lsi_lines: set[int] = set()
        self.lines_high: set[int] = set()

    # ---- the number plan (spapr_irq_init / spapr_irq_claim) ------------------------------
    def claim_ipis(self, nr_servers: int) -> None:
        """One IPI source per server in the controllers that have them."""
        for intc in self.intcs.values():
            if intc.ipi_sources:
                for server in range(nr_servers):
                    intc.claim_irq(SPAPR_IRQ_IPI + server, False)

    def claim(self, irq: int, lsi: bool) -> None:
        """A device's interrupt, claimed in every controller."""
        assert SPAPR_XIRQ_BASE <= irq < SPAPR_XIRQ_BASE + SPAPR_NR_XIRQS
        for intc in self.intcs.values():
            intc.claim_irq(irq, lsi)
        if lsi:
            self.lsi_lines.add(irq)

    def free(self, irq: int) -> None:
        for intc in self.intcs.values():
            intc.free_irq(irq)
        self.lsi_lines.discard(irq)
        self.lines_high.discard(irq)

    def claim_machine_irqs(self, vty_irq: int) -> None:
        """What QEMU's pseries claims: EPOW, hotplug, the vty, the PHB's INTx."""
        for irq in (SPAPR_IRQ_EPOW, SPAPR_IRQ_HOTPLUG, vty_irq):
            self.claim(irq, lsi=False)
        for pin in range(SPAPR_NR_PCI_LSI):
            self.claim(SPAPR_IRQ_PCI_LSI + pin, lsi=True)

    # ---- lines ---------------------------------------------------------------------------
    def set_irq(self, irq: int, level: int) -> None:
        """A device's interrupt line, into whichever controller is active."""
        if irq in self.lsi_lines:
            (self.lines_high.add if level else self.lines_high.discard)(irq)
        if self.active is not None:
            self.active.set_irq(irq, level)

    # ---- the switch (spapr_irq_update_active_intc) ----------------------------------------
    def update_active(self, want: SpaprInterruptController) -> None:
        """Make `want` the active controller: the old one lets go of the CPU
        lines and its MMIO, the new one takes them, high lines are replayed."""
        if want is self.active:
            return
        if self.active is not None:
            self.active.deactivate()
        self.active = want
        want.activate()
        for irq in sorted(self.lines_high):          # levels survive the switch
            want.set_irq(irq, 1)
        self.machine.trace.log(-1, "machine", "interrupt controller", active=want.name)

    def reset(self) -> None:
        """Back to the boot controller (spapr_irq_reset), every state reset."""
        self.active = None                    # reactivated below with the lines replayed
        for intc in self.intcs.values():
            intc.deactivate()
        for intc in self.intcs.values():
            intc.reset()
        self.update_active(self.boot)

    # ---- device tree, migration -----------------------------------------------------------
    def dt(self, root: Node, after_cas: bool) -> None:
        """The interrupt-controller node: the active controller's after CAS,
        the boot mode's before (spapr_irq_dt)."""
        (self.active if after_cas and self.active is not None else self.boot).dt(root)

    def save_states(self) -> list[dict]:
        return [intc.save_state() for intc in self.intcs.values()]

    def decode_states(self, sections: dict) -> dict[str, object]:
        """Every controller's section validated; nothing changes."""
        return {name: intc.decode_state(sections) for name, intc in self.intcs.items()}

    def apply_states(self, active: str, lines_high: Iterable[int], plans: dict[str, object]) -> None:
        """Restore (spapr_irq_post_load) what decode_states and the board's
        "spapr" section accepted: the line levels, the snapshot's active
        controller (the switch), then every controller's state."""
        self.lines_high = set(lines_high)
        self.update_active(self.intcs[active])
        for name, intc in self.intcs.items():
            intc.apply_state(plans[name])

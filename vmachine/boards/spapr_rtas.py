"""RTAS through the KVMPPC_H_RTAS hypercall, as QEMU's spapr_rtas.c does it.

The guest passes the real address of a buffer of 32-bit big-endian words:
token, nargs, nret, args[nargs], rets[nret]. Tokens are numbered from
0x2000 in QEMU's table order and published as /rtas properties; calls
registered by other devices (XICS) join the same table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..cpu.ppc64 import Ppc64Cpu

RTAS_TOKEN_BASE = 0x2000

RTAS_OUT_SUCCESS = 0
RTAS_OUT_NO_ERRORS_FOUND = 1
RTAS_OUT_HW_ERROR = -1
RTAS_OUT_BUSY = -2
RTAS_OUT_PARAM_ERROR = -3
RTAS_OUT_NOT_SUPPORTED = -3

# QEMU 7.2 token order (include/hw/ppc/spapr.h RTAS_* - RTAS_TOKEN_BASE).
RTAS_CALL_ORDER = (
    "display-character", "get-time-of-day", "set-time-of-day", "power-off",
    "system-reboot", "query-cpu-stopped-state", "start-cpu", "stop-self",
    "ibm,get-system-parameter", "ibm,set-system-parameter", "ibm,set-xive",
    "ibm,get-xive", "ibm,int-off", "ibm,int-on", "check-exception", "event-scan",
    "ibm,set-tce-bypass", "quiesce", "nvram-fetch", "nvram-store", "read-pci-config",
    "write-pci-config", "ibm,read-pci-config", "ibm,write-pci-config",
    "ibm,query-interrupt-source-number", "ibm,change-msi", "set-indicator",
    "set-power-level", "get-power-level", "get-sensor-state", "ibm,configure-connector",
    "ibm,os-term", "ibm,set-eeh-option", "ibm,get-config-addr-info2",
    "ibm,read-slot-reset-state2", "ibm,set-slot-reset", "ibm,configure-pe",
    "ibm,slot-error-detail", "ibm,query-pe-dma-window", "ibm,create-pe-dma-window",
    "ibm,remove-pe-dma-window", "ibm,reset-pe-dma-window", "ibm,suspend-me",
    "ibm,nmi-register", "ibm,nmi-interlock",
)


def rtas_token(name: str) -> int:
    return RTAS_TOKEN_BASE + RTAS_CALL_ORDER.index(name)


@dataclass
class RtasCall:
    """One RTAS call in flight: argument and return words in guest memory."""
    cpu: "Ppc64Cpu"
    nargs: int
    nret: int
    args: list[int]
    rets: list[int | None]

    def arg(self, i: int) -> int:
        return self.args[i] if i < len(self.args) else 0

    def ret(self, i: int, value: int) -> None:
        if i < self.nret:
            self.rets[i] = value & 0xFFFFFFFF


RtasHandler = Callable[[RtasCall], None]


class RtasTable:
    """Token -> handler. Devices register their calls (XICS adds four)."""

    def __init__(self) -> None:
        self.handlers: dict[int, tuple[str, RtasHandler]] = {}

    def register(self, name: str, handler: RtasHandler) -> int:
        token = rtas_token(name)
        self.handlers[token] = (name, handler)
        return token

    def unregister(self, name: str) -> None:
        self.handlers.pop(rtas_token(name), None)

    def tokens(self) -> list[tuple[str, int]]:
        """(name, token) in descending token order, as QEMU's tree lists them."""
        return sorted(((n, t) for t, (n, _) in self.handlers.items()), key=lambda x: -x[1])

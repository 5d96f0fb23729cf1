"""XIVE exploitation mode on the pseries board: the H_INT_* hcalls, the ESB and
TIMA MMIO windows, the device-tree node and run-time activation (CAS switches
between XICS and XIVE). QEMU 7.2: hw/intc/spapr_xive.c. It implements the
board's `SpaprInterruptController` (boards/spapr_irq.py), which owns the
interrupt-number plan and claims the machine's interrupts (and the IPIs)
through it. Only this module knows both the sPAPR side and the model."""
from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Callable

from ..boards.spapr_hcall import (H_FUNCTION, H_HARDWARE, H_P2, H_P3, H_P4, H_P5, H_PARAMETER,
                                  H_SUCCESS, Hcall, HcallResult)
from ..boards.spapr_irq import PHANDLE_INTC, SPAPR_NR_XIRQS, SPAPR_XIRQ_BASE
from ..boards.spapr_rtas import RtasHandler
from ..cpu.ppc64 import Ppc64Cpu
from ..state import MigratesThroughModel
from ..fdt import Node, u64s
from .xive import (EAS_END_BLOCK_MASK, EAS_END_BLOCK_SHIFT, EAS_END_DATA_MASK,
                   EAS_END_INDEX_MASK, EAS_END_INDEX_SHIFT, EAS_MASKED, EAS_VALID,
                   END_W0_ENQUEUE, END_W0_QSIZE_MASK, END_W0_QSIZE_SHIFT, END_W0_UCOND_NOTIFY,
                   END_W0_VALID, END_W1_GENERATION, END_W2_OP_DESC_HI_MASK,
                   END_W6_NVT_INDEX_MASK, END_W7_F0_PRIORITY_SHIFT, ESB_PAGE_SHIFT, ESB_SHIFT,
                   NVT_BASE, TM_SHIFT, TM_OS_PAGE, TM_USER_PAGE, Xive)

if TYPE_CHECKING:
    from ..machine import Machine
    from ..memory import MmioRegion

H_INT_GET_SOURCE_INFO = 0x3A8
H_INT_SET_SOURCE_CONFIG = 0x3AC
H_INT_GET_SOURCE_CONFIG = 0x3B0
H_INT_GET_QUEUE_INFO = 0x3B4
H_INT_SET_QUEUE_CONFIG = 0x3B8
H_INT_GET_QUEUE_CONFIG = 0x3BC
H_INT_SET_OS_REPORTING_LINE = 0x3C0
H_INT_GET_OS_REPORTING_LINE = 0x3C4
H_INT_ESB = 0x3C8
H_INT_SYNC = 0x3CC
H_INT_RESET = 0x3D0

# hcall flag bits (PPC_BIT(n) = 1 << (63 - n))
SRC_H_INT_ESB, SRC_LSI, SRC_TRIGGER, SRC_STORE_EOI = 1 << 3, 1 << 2, 1 << 1, 1
SRC_SET_EISN, SRC_MASK = 1 << 1, 1
END_ALWAYS_NOTIFY = 1
END_DEBUG = 1
QEMU_GENERATION_FLAG = 1 << 62        # QEMU's placement of the debug generation bit
ESB_STORE = 1

SPAPR_XIVE_VC_BASE = 0x0006_0100_0000_0000
SPAPR_XIVE_TM_BASE = 0x0006_0302_0318_0000
TM_WINDOW = 4 << TM_SHIFT

PLAT_RES_INT_PRIORITIES = (7, 0xF8)   # 7..0xfe reserved: usable priorities are 0..6
EQ_SIZES = (16,)                      # 64K queue pages offered

MASK64 = 0xFFFF_FFFF_FFFF_FFFF


def priority_is_reserved(prio: int) -> bool:
    """spapr_xive_priority_is_reserved: only 0..6 may be used. QEMU passes the
    64-bit argument as a uint8_t, so 0x100 is priority 0."""
    return not 0 <= (prio & 0xFF) <= 6


def _bswap64(v: int) -> int:
    return int.from_bytes((v & MASK64).to_bytes(8, "big"), "little")


class EsbWindow:
    """The source ESB window (2 x 64 KiB per LISN)."""

    def __init__(self, xive: Xive):
        self.xive = xive

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        return self.xive.esb_read(offset, size, cpu)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        self.xive.esb_write(offset, size, value, cpu)


class TimaWindow:
    """The 4-page TIMA; every vCPU sees its own thread context."""

    def __init__(self, owner: "SpaprXive"):
        self.owner = owner

    def mmio_read(self, cpu: int, offset: int, size: int) -> int:
        x = self.owner.xive
        return x.tm_read(x.tctxs[self.owner.vcpu_id(cpu)], offset, size)

    def mmio_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        x = self.owner.xive
        x.tm_write(x.tctxs[self.owner.vcpu_id(cpu)], offset, size, value)


class SpaprXive(MigratesThroughModel):
    """The XIVE device of a pseries machine, activated by CAS (dual mode) and
    deactivated again by a later CAS or reset that picks XICS. Its H_INT_*
    hcalls answer H_FUNCTION unless it is active and `exploitation()` (CAS
    negotiated XIVE exploitation mode) holds."""

    name = "xive"
    ipi_sources = True               # one IPI LISN per server (SPAPR_IRQ_IPI + server)

    def __init__(self, machine: "Machine", exploitation: Callable[[], bool]):
        self.machine = m = machine
        self.exploitation = exploitation
        self._vcpu_ids = [self._cpu_vcpu_id(cpu) for cpu in m.cpus]
        self._cpu_of_vcpu = {v: cpu for v, cpu in zip(self._vcpu_ids, m.cpus)}
        self.xive = Xive(SPAPR_XIRQ_BASE + SPAPR_NR_XIRQS, self._vcpu_ids, m.ram,
                         lambda what, **k: m.trace.guest_error(k.pop("cpu", -1), what, **k),
                         lambda what, **k: m.trace.log(-1, "irq", "xive " + what, **k))
        self.vc_base = SPAPR_XIVE_VC_BASE
        self.tm_base = SPAPR_XIVE_TM_BASE
        self.esb_size = self.xive.nr_irqs << ESB_SHIFT
        # QEMU sizes the END ESB region by nr_irqs (not nr_ends) and maps it
        # right after the source ESBs; 7.2 keeps it disabled on sPAPR (never
        # mapped here), H_INT_GET_QUEUE_INFO still reports its addresses.
        self.end_base = self.vc_base + self.esb_size
        self.active = False
        self.esb_device = EsbWindow(self.xive)
        self.tima_device = TimaWindow(self)
        self._regions: list["MmioRegion"] = []
        for v, cpu in self._cpu_of_vcpu.items():
            self.xive.set_output(v, lambda level, cpu=cpu: self._drive(cpu, level))

    @staticmethod
    def _cpu_vcpu_id(cpu) -> int:
        return getattr(cpu, "vcpu_id", cpu.index)

    def vcpu_id(self, cpu_index: int) -> int:
        return self._vcpu_ids[cpu_index]

    def _drive(self, cpu, level: bool) -> None:
        if self.active:
            cpu.set_irq_line(level)

    # ---- SpaprInterruptController ------------------------------------------------------------
    def hcalls(self) -> list[Hcall]:
        return [Hcall(nr, name, fn, self._exploited) for nr, name, fn in (
            (H_INT_GET_SOURCE_INFO, "H_INT_GET_SOURCE_INFO", self.h_int_get_source_info),
            (H_INT_SET_SOURCE_CONFIG, "H_INT_SET_SOURCE_CONFIG", self.h_int_set_source_config),
            (H_INT_GET_SOURCE_CONFIG, "H_INT_GET_SOURCE_CONFIG", self.h_int_get_source_config),
            (H_INT_GET_QUEUE_INFO, "H_INT_GET_QUEUE_INFO", self.h_int_get_queue_info),
            (H_INT_SET_QUEUE_CONFIG, "H_INT_SET_QUEUE_CONFIG", self.h_int_set_queue_config),
            (H_INT_GET_QUEUE_CONFIG, "H_INT_GET_QUEUE_CONFIG", self.h_int_get_queue_config),
            (H_INT_SET_OS_REPORTING_LINE, "H_INT_SET_OS_REPORTING_LINE",
             self.h_int_set_os_reporting_line),
            (H_INT_GET_OS_REPORTING_LINE, "H_INT_GET_OS_REPORTING_LINE",
             self.h_int_get_os_reporting_line),
            (H_INT_ESB, "H_INT_ESB", self.h_int_esb),
            (H_INT_SYNC, "H_INT_SYNC", self.h_int_sync),
            (H_INT_RESET, "H_INT_RESET", self.h_int_reset))]

    def _exploited(self) -> bool:
        """The one gate of every H_INT_* (QEMU: ov5_cas has OV5_XIVE_EXPLOIT)."""
        return self.active and self.exploitation()

    def rtas_calls(self) -> list[tuple[str, RtasHandler]]:
        return []                    # XIVE has no RTAS calls

    def activate(self) -> None:
        """Map the ESB and TIMA windows (the END ESB window stays off, as QEMU
        7.2's spapr_xive_mmio_set_enabled does) and connect the OS-ring
        outputs to the vCPUs. Idempotent."""
        if self.active:
            return
        mmio = self.machine.mmio
        self._regions = [mmio.add("xive-esb", self.vc_base, self.esb_size, self.esb_device),
                         mmio.add("xive-tima", self.tm_base, TM_WINDOW, self.tima_device)]
        self.active = True
        for v, cpu in self._cpu_of_vcpu.items():
            cpu.set_irq_line(self.xive.tctxs[v].line)

    def deactivate(self) -> None:
        """Reverse of activate; the model's state is kept."""
        if not self.active:
            return
        for r in self._regions:
            self.machine.mmio.remove(r)
        self._regions = []
        self.active = False
        for cpu in self._cpu_of_vcpu.values():
            cpu.set_irq_line(False)

    def reset(self) -> None:
        self.xive.reset()

    def claim_irq(self, irq: int, lsi: bool) -> None:
        self.xive.claim(irq, lsi=lsi)

    def free_irq(self, irq: int) -> None:
        """QEMU spapr_xive_free_irq: the EAS is no longer valid."""
        self.xive.eat[irq] &= ~EAS_VALID & MASK64
        self.xive.lsi[irq] = 0

    def set_irq(self, lisn: int, level: int) -> None:
        self.xive.set_irq(lisn, level)

    # ---- device tree (spapr_xive_dt) ---------------------------------------------------------------
    def dt(self, root: Node) -> None:
        user = self.tm_base + (TM_USER_PAGE << TM_SHIFT)
        os_page = self.tm_base + (TM_OS_PAGE << TM_SHIFT)
        n = root.child(f"interrupt-controller@{user:x}")
        n.prop("device_type", "power-ivpe")
        n.prop("reg", u64s(user, 1 << TM_SHIFT, os_page, 1 << TM_SHIFT))
        n.prop("compatible", "ibm,power-ivpe")
        n.prop("ibm,xive-eq-sizes", list(EQ_SIZES))
        n.prop("ibm,xive-lisn-ranges", [0, self.xive.nr_servers])
        n.prop("interrupt-controller")
        n.prop("#interrupt-cells", 2)
        n.prop("linux,phandle", PHANDLE_INTC).prop("phandle", PHANDLE_INTC)
        root.prop("ibm,plat-res-int-priorities", list(PLAT_RES_INT_PRIORITIES))

    def state_model(self):
        """The model holds the whole "xive" section (state.MigratesThroughModel)."""
        return self.xive

    # ---- helpers ---------------------------------------------------------------------------------------
    def _err(self, cpu: Ppc64Cpu, what: str, **data) -> None:
        self.machine.trace.guest_error(cpu.index, "XIVE: " + what, **data)

    def _lisn_ok(self, cpu: Ppc64Cpu, lisn: int) -> bool:
        if lisn >= self.xive.nr_irqs:
            self._err(cpu, "Unknown LISN", lisn=lisn)
            return False
        if not self.xive.eat[lisn] & EAS_VALID:
            self._err(cpu, "Invalid LISN", lisn=lisn)
            return False
        return True

    def _end_of(self, target: int, prio: int) -> int | None:
        """END index for (target, prio), None for an unknown target."""
        target &= 0xFFFF_FFFF                 # QEMU: uint32_t target, uint8_t priority
        if target not in self._cpu_of_vcpu:
            return None
        return self.xive.end_index(target, prio & 0xFF)

    # ---- hcalls (h_int_* as spapr_xive.c) --------------------------------------------------------------
    def h_int_get_source_info(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        flags, lisn = a[0], a[1]
        if flags:
            return H_PARAMETER, []
        if not self._lisn_ok(cpu, lisn):
            return H_P2, []
        out = SRC_STORE_EOI if self.xive.store_eoi else 0
        if self.xive.lsi[lisn]:
            out |= SRC_H_INT_ESB | SRC_LSI       # LSIs are EOId through H_INT_ESB
        if out & SRC_H_INT_ESB:
            eoi_page = trig_page = MASK64
        else:
            eoi_page = self.vc_base + (lisn << ESB_SHIFT) + (1 << ESB_PAGE_SHIFT)
            trig_page = self.vc_base + (lisn << ESB_SHIFT)
        return H_SUCCESS, [out, eoi_page, trig_page, ESB_SHIFT - 1]

    def h_int_set_source_config(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        flags, lisn, target, prio, eisn = a[0], a[1], a[2], a[3], a[4]
        if flags & ~(SRC_SET_EISN | SRC_MASK):
            return H_PARAMETER, []
        if not self._lisn_ok(cpu, lisn):
            return H_P2, []
        eas = self.xive.eat[lisn]
        if prio == 0xFF:                                  # resets the EAS
            self.xive.eat[lisn] = EAS_VALID | EAS_MASKED
            return H_SUCCESS, []
        new = eas | EAS_MASKED if flags & SRC_MASK else eas & ~EAS_MASKED & MASK64
        if priority_is_reserved(prio):
            self._err(cpu, "priority is reserved", priority=prio)
            return H_P4, []
        end_idx = self._end_of(target, prio)
        if end_idx is None:
            return H_P3, []
        new &= ~((EAS_END_BLOCK_MASK << EAS_END_BLOCK_SHIFT)
                 | (EAS_END_INDEX_MASK << EAS_END_INDEX_SHIFT)) & MASK64
        new |= (end_idx & EAS_END_INDEX_MASK) << EAS_END_INDEX_SHIFT
        if flags & SRC_SET_EISN:
            new = (new & ~EAS_END_DATA_MASK) | (eisn & EAS_END_DATA_MASK)
        self.xive.eat[lisn] = new
        return H_SUCCESS, []

    def h_int_get_source_config(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        flags, lisn = a[0], a[1]
        if flags:
            return H_PARAMETER, []
        if not self._lisn_ok(cpu, lisn):
            return H_P2, []
        eas = self.xive.eat[lisn]
        end = self.xive.get_end((eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK)
        # QEMU reads target and priority back from the END (nvt - 0x400, as a u32).
        target = (end.words[6] & END_W6_NVT_INDEX_MASK) - NVT_BASE & 0xFFFF_FFFF
        prio = 0xFF if eas & EAS_MASKED else end.priority
        return H_SUCCESS, [target, prio, eas & EAS_END_DATA_MASK]

    def _queue_args(self, cpu: Ppc64Cpu, flags: int, allowed: int, target: int,
                    prio: int) -> tuple[int, int | None]:
        if flags & ~allowed:
            return H_PARAMETER, None
        if priority_is_reserved(prio):
            self._err(cpu, "priority is reserved", priority=prio)
            return H_P3, None
        idx = self._end_of(target, prio)
        if idx is None:
            return H_P2, None
        return H_SUCCESS, idx

    def h_int_get_queue_info(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        rc, idx = self._queue_args(cpu, a[0], 0, a[1], a[2])
        if idx is None:
            return rc, []
        end = self.xive.get_end(idx)
        return H_SUCCESS, [self.end_base + (idx << (ESB_PAGE_SHIFT + 1)), end.qshift]

    def h_int_set_queue_config(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        flags, target, prio, qpage, qshift = a[0], a[1], a[2], a[3], a[4]
        rc, idx = self._queue_args(cpu, flags, END_ALWAYS_NOTIFY, target, prio)
        if idx is None:
            return rc, []
        x = self.xive
        w = list(x.endt[idx * 8:idx * 8 + 8])
        if qshift == 0:                                   # reset the END, no queue
            x._end_reset(idx)
            return H_SUCCESS, []
        if qshift not in (12, 16, 21, 24):
            self._err(cpu, "invalid EQ size", qsize=qshift)
            return H_P5, []
        if qpage % (1 << qshift):
            self._err(cpu, "EQ is not naturally aligned", qpage=qpage, qsize=qshift)
            return H_P4, []
        if not x.ram.contains(qpage, 1 << qshift):
            self._err(cpu, "failed to map EQ", qpage=qpage)
            return H_P4, []
        w[2] = (qpage >> 32) & END_W2_OP_DESC_HI_MASK
        w[3] = qpage & 0xFFFF_FFFF
        w[0] |= END_W0_ENQUEUE
        w[0] = (w[0] & ~(END_W0_QSIZE_MASK << END_W0_QSIZE_SHIFT)) | ((qshift - 12) << END_W0_QSIZE_SHIFT)
        w[6] = (NVT_BASE + (target & 0xFFFF_FFFF)) & END_W6_NVT_INDEX_MASK          # NVT block 0
        w[7] = (prio & 0xFF) << END_W7_F0_PRIORITY_SHIFT
        if flags & END_ALWAYS_NOTIFY:
            w[0] |= END_W0_UCOND_NOTIFY
        else:
            w[0] &= ~END_W0_UCOND_NOTIFY & 0xFFFF_FFFF
        w[1] = END_W1_GENERATION                          # offset 0, generation 1, ESn/ESe 00
        w[0] |= END_W0_VALID
        x.endt[idx * 8:idx * 8 + 8] = array("I", w)
        return H_SUCCESS, []

    def h_int_get_queue_config(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        flags = a[0]
        rc, idx = self._queue_args(cpu, flags, END_DEBUG, a[1], a[2])
        if idx is None:
            return rc, []
        end = self.xive.get_end(idx)
        out = END_ALWAYS_NOTIFY if end.always_notify else 0
        qaddr, qshift = (end.qaddr, end.qshift) if end.enqueue else (0, 0)
        if flags & END_DEBUG:
            out |= end.generation * QEMU_GENERATION_FLAG
            offset = end.qindex
        else:
            offset = 0
        return H_SUCCESS, [out, qaddr, qshift, offset]

    def h_int_set_os_reporting_line(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        return H_FUNCTION, []                             # not implemented by QEMU

    def h_int_get_os_reporting_line(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        return H_FUNCTION, []

    def h_int_esb(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        flags, lisn, offset, data = a[0], a[1], a[2], a[3]
        if flags & ~ESB_STORE:
            return H_PARAMETER, []
        if not self._lisn_ok(cpu, lisn):
            return H_P2, []
        if offset > (1 << ESB_SHIFT):                     # QEMU compares with the 2-page size
            return H_P3, []
        addr = (lisn << ESB_SHIFT) + (1 << ESB_PAGE_SHIFT) + offset
        if addr + 8 > self.esb_size:
            # past the source window: the END ESBs are disabled, the access fails
            self._err(cpu, "failed to access ESB", addr=self.vc_base + addr)
            return H_HARDWARE, []
        # QEMU (TCG) moves the value through a host buffer: on a little-endian
        # host the device sees, and the guest gets, the byte-swapped value.
        if flags & ESB_STORE:
            self.xive.esb_write(addr, 8, _bswap64(data), cpu.index)
            return H_SUCCESS, [MASK64]
        return H_SUCCESS, [_bswap64(self.xive.esb_read(addr, 8, cpu.index))]

    def h_int_sync(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        if a[0]:
            return H_PARAMETER, []
        if not self._lisn_ok(cpu, a[1]):
            return H_P2, []
        return H_SUCCESS, []

    def h_int_reset(self, cpu: Ppc64Cpu, a: list[int]) -> HcallResult:
        if a[0]:
            return H_PARAMETER, []
        # QEMU 7.2 (TCG) calls device_cold_reset() on the SpaprXive, which has
        # no reset handler of its own: nothing is reset.
        return H_SUCCESS, []

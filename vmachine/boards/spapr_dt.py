"""The pseries device tree, as QEMU 7.2's spapr_build_fdt lays it out for what
vmachine models. Built at reset (the boot tree) and again by CAS (the tree
with the negotiated OV5 and the chosen interrupt controller's node). Each
part of the machine adds its own node: RTAS its tokens, the vty its
/vdevice entry, CAS the /chosen OV5 properties, the interrupt controller
its node."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..fdt import Node, build, cells, u64s

if TYPE_CHECKING:
    from ..devices.spapr_vty import SpaprVty
    from ..loader import LoadedImage
    from ..machine import Machine
    from .base import BoardConfig
    from .spapr_cas import SpaprCas
    from .spapr_irq import SpaprIrq
    from .spapr_rtas import RtasTable

TIMEBASE_FREQ = 512_000_000
POWER9_PVR = 0x4E1200


@dataclass
class SpaprFdtParts:
    """What the tree is made of (the board's components)."""
    config: "BoardConfig"
    machine: "Machine"
    vty: "SpaprVty"
    rtas: "RtasTable"
    cas: "SpaprCas"
    irq: "SpaprIrq"
    kernel_addr: int
    kernel: "LoadedImage | None" = None


def build_fdt(p: SpaprFdtParts, after_cas: bool = False) -> bytes:
    root = Node("")
    root.prop("#size-cells", 2).prop("#address-cells", 2)
    root.prop("vm,uuid", "00000000-0000-0000-0000-000000000000")
    root.prop("compatible", "qemu,pseries").prop("model", "IBM pSeries (emulated by qemu)")
    root.prop("device_type", "chrp")
    _chosen(p, root.child("chosen"), after_cas)
    p.rtas.dt(root)
    _cpus(p, root.child("cpus"))
    _vdevice(p, root.child("vdevice"))
    size = p.machine.ram.size
    mem = root.child("memory@0")
    mem.prop("reg", cells(0, 0, size >> 32, size & 0xFFFFFFFF))
    mem.prop("device_type", "memory")
    p.irq.dt(root, after_cas)
    reserve = []
    if p.kernel is not None:
        reserve.append((p.kernel_addr, p.kernel.high - p.kernel.low))
    return build(root, reserve)


def _chosen(p: SpaprFdtParts, chosen: Node, after_cas: bool) -> None:
    p.cas.chosen_props(chosen, after_cas)
    if p.config.append:
        chosen.prop("bootargs", p.config.append)
    if p.kernel is not None:
        chosen.prop("qemu,boot-kernel", u64s(p.kernel_addr, p.kernel.high - p.kernel.low))
    chosen.prop("stdout-path", p.vty.path).prop("linux,stdout-path", p.vty.path)


def _cpus(p: SpaprFdtParts, cpus: Node) -> None:
    cpus.prop("#size-cells", 0).prop("#address-cells", 1)
    for cpu in p.machine.cpus:
        n = cpus.child(f"PowerPC,POWER9@{cpu.index:x}")
        n.prop("ibm,ppc-interrupt-gserver#s", [cpu.index, 0])
        n.prop("ibm,ppc-interrupt-server#s", cpu.index)
        n.prop("64-bit").prop("status", "okay")
        n.prop("clock-frequency", 1_000_000_000).prop("timebase-frequency", TIMEBASE_FREQ)
        n.prop("cpu-version", p.cas.compat_pvr or POWER9_PVR).prop("device_type", "cpu")
        n.prop("reg", cpu.index)


def _vdevice(p: SpaprFdtParts, vdev: Node) -> None:
    vdev.prop("interrupt-controller").prop("#interrupt-cells", 2)
    vdev.prop("#size-cells", 0).prop("#address-cells", 1)
    vdev.prop("compatible", "IBM,vdevice").prop("device_type", "vdevice")
    p.vty.dt(vdev)

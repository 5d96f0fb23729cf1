"""The GICv3 (+ ITS) model driven directly, without CPUs: one rig for the
GICv3, ITS and MSI-routing tests. Fake vCPUs are objects with `index` and
`mpidr`; IRQ/FIQ lines are recorded; guest errors are collected."""
from __future__ import annotations

from types import SimpleNamespace

from vmachine import create_machine
from vmachine.intc import gicv3 as G
from vmachine.intc.gicv3 import GicV3
from vmachine.intc.its import GicV3Its
from vmachine.memory import GuestRAM

# virt's GIC memory map (QEMU 7.2 hw/arm/virt.c base_memmap)
DIST = 0x0800_0000
ITS = 0x0808_0000
REDIST = 0x080A_0000
REDIST_HIGH = 0x40_0000_0000
SGI = 0x1_0000                          # SGI_base frame, after RD_base
ICC = {r.name: r.key for r in G.ICC_REGS}

# guest RAM and the tables Linux would allocate in it (ITS tests)
RAM = 0x4000_0000
RAM_SIZE = 16 << 20
PROP = RAM + 0x10_0000
PEND = RAM + 0x20_0000                  # + cpu * 64 KiB
DT = RAM + 0x40_0000
CT = RAM + 0x41_0000
CQ = RAM + 0x50_0000
ITT = RAM + 0x60_0000
OUTSIDE = 0x1_0000_0000                 # not RAM
LPI = 8192


def mpidr(i: int) -> int:
    """QEMU virt with GICv3 (hw/arm/virt.c virt_cpu_mp_affinity, 16 CPUs per
    cluster): Aff0 = index % 16, Aff1 = index / 16, bit 31 RES1."""
    return 0x8000_0000 | ((i // 16) << 8) | (i % 16)


def fake_cpus(n: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(index=i, mpidr=mpidr(i)) for i in range(n)]


class GicRig:
    """A GicV3 with a distributor at DIST and `n` redistributors in `regions`
    (default: all at REDIST), initialised and (optionally) connected."""

    def __init__(self, n: int = 4, regions=None, connect: bool = True):
        self.errors: list[tuple[str, dict]] = []
        self.n = n
        self.g = GicV3(log_guest_error=lambda what, **k: self.errors.append((what, k)))
        self.g.set_dist_addr(DIST)
        for base, count in regions or [(REDIST, n)]:
            self.g.add_redist_region(base, count)
        self.g.init(fake_cpus(n))
        self.irq = [False] * n
        self.fiq = [False] * n
        if connect:
            for i in range(n):
                self.g.connect(i, lambda lv, i=i: self.irq.__setitem__(i, lv),
                               lambda lv, i=i: self.fiq.__setitem__(i, lv))
        self._bind()

    def _bind(self) -> None:
        self.windows = self.g.mmio_windows()
        self.dist = self.windows[0][3]
        self.regions = [w[3] for w in self.windows[1:]]
        self.redist = self.regions[0]
        self.sys = [self.g.sysregs(i) for i in range(self.n)]

    # distributor and redistributor MMIO (accessed from vCPU 0)
    def dr(self, off, size=4, cpu=0):
        return self.dist.mmio_read(cpu, off, size)

    def dw(self, off, value, size=4, cpu=0):
        self.dist.mmio_write(cpu, off, size, value)

    def rr(self, frame, off, size=4, region=0):
        return self.regions[region].mmio_read(0, frame * 0x2_0000 + off, size)

    def rw(self, frame, off, value, size=4, region=0):
        self.regions[region].mmio_write(0, frame * 0x2_0000 + off, size, value)

    # redistributor MMIO accessed by the vCPU that owns the frame (first region)
    def gicr_r(self, cpu, off, size=4):
        return self.redist.mmio_read(cpu, cpu * 0x2_0000 + off, size)

    def gicr_w(self, cpu, off, v, size=4):
        self.redist.mmio_write(cpu, cpu * 0x2_0000 + off, size, v)

    # system registers
    def sr(self, cpu, name):
        return self.sys[cpu][ICC[name]][0](None)

    def sw(self, cpu, name, value):
        self.sys[cpu][ICC[name]][1](None, value)

    # a Linux-like set-up: Group 1 everywhere, enabled, PMR open
    def linux_setup(self, spis=(), ppis=(), prio=0xA0):
        self.dw(0x0000, 0x2)                               # EnableGrp1
        for w in range(1, 9):
            self.dw(0x0080 + 4 * w, 0xFFFF_FFFF)           # SPIs -> Group 1
        for i in range(len(self.irq)):
            self.rw(i, SGI + 0x0080, 0xFFFF_FFFF)          # SGIs/PPIs -> Group 1
            self.sw(i, "ICC_PMR_EL1", 0xFF)
            self.sw(i, "ICC_IGRPEN1_EL1", 1)
        for irq in spis:
            self.dw(0x0400 + irq, prio, size=1)
            self.dw(0x0100 + 4 * (irq // 32), 1 << (irq % 32))
        for cpu, irq in ppis:
            self.rw(cpu, SGI + 0x0400 + irq, prio, size=1)
            self.rw(cpu, SGI + 0x0100, 1 << irq)

    def spi_route(self, irq, cpu):
        aff = mpidr(cpu) & 0xFF_FFFF
        self.dw(0x6000 + 8 * irq, aff, size=8)


class ItsRig(GicRig):
    """A GicRig with guest RAM (LPI tables) and an ITS at ITS, with helpers to
    set both up as Linux does and to queue ITS commands."""

    def __init__(self, n: int = 2, ram=None):
        super().__init__(n)
        self.events: list[tuple[str, dict]] = []
        self.ram = ram or GuestRAM(RAM, RAM_SIZE)
        self.g.attach_memory(self.ram)
        self.its = GicV3Its(self.g, self.ram, ITS,
                            lambda what, **k: self.errors.append((what, k)),
                            lambda what, **k: self.events.append((what, k)))
        self.wptr = 0

    @classmethod
    def on_machine(cls, m) -> "ItsRig":
        """The same helpers bound to a real virt machine's GIC and ITS (guest
        errors and events then go to the machine's trace, not the rig)."""
        r = cls.__new__(cls)
        r.errors, r.events = [], []
        r.ram, r.g, r.its, r.n, r.wptr = m.ram, m.board.gic, m.board.its, len(m.cpus), 0
        r._bind()
        return r

    # ITS MMIO
    def r(self, off, size=4):
        return self.its.mmio_read(0, off, size)

    def w(self, off, v, size=4):
        self.its.mmio_write(0, off, size, v)

    # set-up as Linux does it (its_cpu_init_lpis, its_init)
    def setup_cpus(self, enable_lpis=True):
        self.dist.mmio_write(0, 0, 4, 0x2)                   # EnableGrp1NS
        for i in range(self.n):
            self.gicr_w(i, 0x70, PROP | 15, 8)               # PROPBASER, IDbits 16
            self.gicr_w(i, 0x78, PEND + i * 0x1_0000, 8)     # PENDBASER
            if enable_lpis:
                self.gicr_w(i, 0x0, 1)
            self.sw(i, "ICC_PMR_EL1", 0xFF)
            self.sw(i, "ICC_IGRPEN1_EL1", 1)

    def setup_its(self, dt_baser=None, ct_baser=None, cq=CQ):
        self.w(0x100, dt_baser if dt_baser is not None else (1 << 63) | (DT - 0) | (2 << 8) | 0, 8)
        self.w(0x108, ct_baser if ct_baser is not None else (1 << 63) | CT | (2 << 8), 8)
        self.w(0x80, (1 << 63) | cq | 0, 8)                  # one 4 KiB page: 128 commands
        self.w(0x88, 0, 8)
        self.w(0x0, 1)

    def prop(self, intid, prio=0xA0, enable=True):
        self.ram.write(PROP + intid - LPI, bytes([prio | 2 | int(enable)]))

    def pend_bit(self, cpu, intid):
        return self.ram.read(PEND + cpu * 0x1_0000 + intid // 8, 1)[0] >> (intid % 8) & 1

    def cmd(self, *dws):
        dws = list(dws) + [0] * (4 - len(dws))
        self.ram.write(CQ + self.wptr, b"".join(d.to_bytes(8, "little") for d in dws))
        self.wptr = (self.wptr + 32) % 0x1000
        self.w(0x88, self.wptr, 8)

    # command encoders (GIC spec ch. 5, Linux its_encode_*)
    def mapd(self, dev, size, itt, v=1):
        self.cmd(0x08 | dev << 32, size, itt | v << 63)

    def mapc(self, icid, rd, v=1):
        self.cmd(0x09, 0, icid | rd << 16 | v << 63)

    def mapti(self, dev, ev, intid, icid):
        self.cmd(0x0A | dev << 32, ev | intid << 32, icid)

    def mapi(self, dev, ev, icid):
        self.cmd(0x0B | dev << 32, ev, icid)

    def dev_ev(self, op, dev, ev, dw2=0):
        self.cmd(op | dev << 32, ev, dw2)

    def full(self, dev=1, ev=0, intid=LPI, cpu=0, prio=0xA0):
        """Collection cpu, device dev with 2^5 events, event ev -> intid."""
        self.prop(intid, prio)
        self.mapc(cpu, cpu)
        self.mapd(dev, 4, ITT)
        self.mapti(dev, ev, intid, cpu)

    def creadr(self):
        return self.r(0x90, 8)


def virt_with_its(smp: int = 2):
    """A real virt machine with an ItsRig bound to its GIC and ITS, both set
    up as Linux does: (machine, rig)."""
    m = create_machine("virt,gic-version=3", smp=smp)
    r = ItsRig.on_machine(m)
    r.setup_cpus()
    r.setup_its()
    return m, r

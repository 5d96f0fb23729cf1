"""Host-API argument checks of the GICv3 and the ITS (issue 15, item 4): every
public host method refuses hostile arguments with DeviceError before it
changes anything (device state, guest RAM, output lines, trace events, the
wired callbacks), and what it accepts never makes a later guest access or
ITS command raise. No guest runs: the model is driven directly (gicrig)."""
from __future__ import annotations

import json
import re

import pytest

from gicrig import DIST, ITS, ITT, LPI, OUTSIDE, PROP, REDIST, GicRig, ItsRig, fake_cpus
from types import SimpleNamespace
from vmachine.errors import ConfigError, DeviceError
from vmachine.intc.gicv3 import NUM_SPI, GicV3
from vmachine.intc.its import GicV3Its
from vmachine.memory import GuestRAM

N = 4
# Not a usable number: wrong type (bool is refused: True is not vCPU 1), or far out of range.
BAD_NUMBERS = [-1, -(1 << 70), 1 << 70, True, False, 1.0, 0.5, float("nan"), None, "1", b"\x01", [1]]
BAD_LEVELS = [2, -1, 1 << 64, 1.0, 0.0, 0.5, None, "1", [1]]
BAD_CPUS = [-1, N, 1 << 70, True, False, 1.0, None, "0"]
NOT_CALLABLE = [None, 5, "print"]


def stable_id(value) -> str:
    """A test id that is the same in every process (pytest-xdist compares
    them): no memory addresses from object() reprs."""
    text = repr(value)
    return re.sub(r" at 0x[0-9a-f]+", "", text)

# vCPU roles in the rig
CPU_OK, CPU_PEND_OUTSIDE, CPU_IDBITS13, CPU_LPIS_OFF = 0, 1, 2, 3
LIMIT13 = 1 << 14                       # PROPBASER.IDbits 13: LPIs 8192..16383


def make_rig() -> ItsRig:
    """4 vCPUs set up as Linux does, then: vCPU 1's pending table outside RAM,
    vCPU 2 with PROPBASER.IDbits 13, vCPU 3 with EnableLPIs 0. The ITS maps
    collection c -> vCPU c and device 1 event e -> LPI 8192 + e on
    collection e (e = 0..3); an SPI, a PPI and an LPI are pending, so the
    saved state is not the reset state."""
    r = ItsRig(N)
    r.g.event = lambda what, **k: r.events.append((what, k))     # GIC trace events too
    r.setup_cpus()
    r.setup_its()
    r.gicr_w(CPU_PEND_OUTSIDE, 0x78, OUTSIDE, 8)
    r.gicr_w(CPU_IDBITS13, 0x70, PROP | 13, 8)
    r.gicr_w(CPU_LPIS_OFF, 0x0, 0)
    r.mapd(1, 4, ITT)
    for c in range(N):
        r.prop(LPI + c)
        r.mapc(c, c)
        r.mapti(1, c, LPI + c, c)
    r.linux_setup(spis=(40,), ppis=((0, 27),))
    r.g.irq_line(8, 1)                                          # SPI 40
    r.g.irq_line(27, 1, cpu=0)
    r.its.signal_msi(r.its.doorbell, 0, 1)                      # LPI 8192 on vCPU 0
    assert r.g.lpi_pending(0) == [LPI]
    return r


@pytest.fixture
def rig() -> ItsRig:
    return make_rig()


def snapshot(r: ItsRig):
    """Everything a refused call must leave as it was."""
    return (json.dumps(r.g.save_state(), sort_keys=True),
            json.dumps(r.its.save_state(), sort_keys=True),
            bytes(r.ram.buf), list(r.irq), list(r.fiq), len(r.errors), len(r.events),
            r.g.ram, [(cs.irq_out, cs.fiq_out) for cs in r.g.cpus])


def refused(r: ItsRig, fn, errno: str = "EINVAL") -> DeviceError:
    before = snapshot(r)
    with pytest.raises(DeviceError) as e:
        fn()
    assert e.value.errno_name == errno, str(e.value)
    assert snapshot(r) == before, "a refused call changed the device"
    return e.value


def cases_for(name, fn, values, errno="EINVAL"):
    return [pytest.param(fn, v, errno, id=f"{name}-{stable_id(v)}") for v in values]


# ---- GicV3, initialised ---------------------------------------------------------------------------
cb = lambda level: None                                         # noqa: E731
GIC_CASES = (
    cases_for("irq_line-spi", lambda r, v: r.g.irq_line(v, 1), BAD_NUMBERS + [NUM_SPI, 1000])
    + cases_for("irq_line-spi-level", lambda r, v: r.g.irq_line(10, v), BAD_LEVELS)
    + cases_for("irq_line-ppi-cpu", lambda r, v: r.g.irq_line(27, 1, cpu=v),
                [c for c in BAD_CPUS if c is not None])            # cpu None: SPI gsi 27
    + cases_for("irq_line-ppi", lambda r, v: r.g.irq_line(v, 1, cpu=0), BAD_NUMBERS + [0, 15, 32])
    + cases_for("irq_line-ppi-level", lambda r, v: r.g.irq_line(27, v, cpu=0), BAD_LEVELS)
    + cases_for("ppi_line-cpu", lambda r, v: r.g.ppi_line(v, 27), BAD_CPUS)
    + cases_for("ppi_line-intid", lambda r, v: r.g.ppi_line(0, v), BAD_NUMBERS + [3, 32])
    + cases_for("ppi_line-callback-level", lambda r, v: r.g.ppi_line(0, 27)(v), BAD_LEVELS)
    + cases_for("connect-cpu", lambda r, v: r.g.connect(v, cb), BAD_CPUS)
    + cases_for("connect-irq", lambda r, v: r.g.connect(0, v), NOT_CALLABLE)
    + cases_for("connect-fiq", lambda r, v: r.g.connect(0, cb, v), NOT_CALLABLE[1:])
    + cases_for("sysregs", lambda r, v: r.g.sysregs(v), BAD_CPUS)
    + cases_for("irq_level", lambda r, v: r.g.irq_level(v), BAD_CPUS)
    + cases_for("fiq_level", lambda r, v: r.g.fiq_level(v), BAD_CPUS)
    + cases_for("lpi_pending", lambda r, v: r.g.lpi_pending(v), BAD_CPUS)
    + cases_for("lpi_process-cpu", lambda r, v: r.g.lpi_process(v, LPI, 1), BAD_CPUS)
    + cases_for("lpi_process-intid", lambda r, v: r.g.lpi_process(0, v, 1),
                BAD_NUMBERS + [0, 27, 1023, LPI - 1, 1 << 16, 1 << 24])
    + cases_for("lpi_process-intid-clear", lambda r, v: r.g.lpi_process(0, v, 0), [True, LPI - 1, 1 << 16])
    + cases_for("lpi_process-idbits", lambda r, v: r.g.lpi_process(CPU_IDBITS13, v, 1),
                [LIMIT13, LIMIT13 + 1, (1 << 16) - 1])
    + cases_for("lpi_process-level", lambda r, v: r.g.lpi_process(0, LPI + 1, v), BAD_LEVELS)
    + cases_for("lpi_process-level-pending", lambda r, v: r.g.lpi_process(0, LPI, v), BAD_LEVELS)
    + cases_for("lpi_process-lpis-off", lambda r, v: r.g.lpi_process(CPU_LPIS_OFF, LPI, v),
                [0, 1], "EBUSY")
    + cases_for("lpi_process-pending-table", lambda r, v: r.g.lpi_process(CPU_PEND_OUTSIDE, LPI, v),
                [0, 1], "EFAULT")
    + cases_for("lpi_inv-cpu", lambda r, v: r.g.lpi_inv(v), BAD_CPUS)
    + cases_for("lpi_inv-intid", lambda r, v: r.g.lpi_inv(0, v), BAD_NUMBERS[:-4] + [LPI - 1, 1 << 16])
    + cases_for("lpi_inv-idbits", lambda r, v: r.g.lpi_inv(CPU_IDBITS13, v), [LIMIT13])
    + cases_for("lpi_inv-lpis-off", lambda r, v: r.g.lpi_inv(CPU_LPIS_OFF, v), [None, LPI], "EBUSY")
    + cases_for("lpi_move-src", lambda r, v: r.g.lpi_move(v, 1), BAD_CPUS)
    + cases_for("lpi_move-dst", lambda r, v: r.g.lpi_move(0, v), BAD_CPUS)
    + cases_for("lpi_move-intid", lambda r, v: r.g.lpi_move(0, 2, v), BAD_NUMBERS[:-4] + [LPI - 1])
    + cases_for("lpi_move-dst-idbits", lambda r, v: r.g.lpi_move(0, CPU_IDBITS13, v), [LIMIT13])
    + cases_for("lpi_move-lpis-off", lambda r, v: r.g.lpi_move(*v), [(0, CPU_LPIS_OFF), (CPU_LPIS_OFF, 0),
                                                                      (0, CPU_LPIS_OFF, LPI)], "EBUSY")
    + cases_for("load_state", lambda r, v: r.g.load_state(v), [None, [], "gicv3", 5])
    + cases_for("attach_memory", lambda r, v: r.g.attach_memory(v), [5, "ram", object()])
    + cases_for("set_dist_addr-after-init", lambda r, v: r.g.set_dist_addr(v), [DIST, True, None], "EBUSY")
    + cases_for("add_redist_region-after-init", lambda r, v: r.g.add_redist_region(v, 1),
                [0x1000_0000, True], "EBUSY")
    + cases_for("init-twice", lambda r, v: r.g.init(v), [fake_cpus(N), None], "EBUSY")
)


@pytest.mark.parametrize("fn, value, errno", GIC_CASES)
def test_gic_host_call_refused_and_nothing_changes(rig, fn, value, errno):
    refused(rig, lambda: fn(rig, value), errno)


def test_regressions_from_the_issue(rig):
    """issue 15 item 4: lpi_process(4, ...) raised IndexError on 4 vCPUs, -1
    picked the last vCPU, and irq_line took bools as numbers."""
    assert "vCPU 4" in str(refused(rig, lambda: rig.g.lpi_process(4, 8192, 1)))
    assert "vCPU -1" in str(refused(rig, lambda: rig.g.lpi_process(-1, 8192, 1)))
    refused(rig, lambda: rig.g.irq_line(True, 1, cpu=False))
    refused(rig, lambda: rig.g.irq_line(True, 1))
    refused(rig, lambda: rig.g.irq_line(27, 1, cpu=True))
    refused(rig, lambda: rig.g.lpi_inv(-1))
    refused(rig, lambda: rig.g.lpi_move(0, -1))


def test_accepted_boundaries_then_guest_accesses_do_not_raise(rig):
    """What the host API accepts at the edges of its ranges leaves a device
    every guest access still works on."""
    g = rig.g
    for gsi in (0, NUM_SPI - 1):
        for lv in (1, True, 0, False):
            g.irq_line(gsi, lv)
    for cpu in (0, N - 1):
        for intid in (16, 31):
            g.irq_line(intid, True, cpu=cpu)
            line = g.ppi_line(cpu, intid)
            for lv in (0, 1, False, True):
                line(lv)
    for intid in (LPI + 5, LIMIT13 - 1, (1 << 16) - 1):
        rig.prop(intid)
    g.lpi_process(CPU_OK, (1 << 16) - 1, 1)
    g.lpi_process(CPU_IDBITS13, LIMIT13 - 1, True)
    g.lpi_process(CPU_IDBITS13, LPI + 5, 1)
    g.lpi_inv(CPU_OK, (1 << 16) - 1)
    g.lpi_inv(CPU_IDBITS13)
    g.lpi_move(CPU_OK, CPU_IDBITS13, LPI)                   # 8192 < 2^14: both accept it
    g.lpi_move(CPU_IDBITS13, CPU_OK)
    g.lpi_move(CPU_OK, CPU_OK, LPI)                         # same redistributor: nothing
    assert g.lpi_pending(CPU_OK) == [LPI, LPI + 5, LIMIT13 - 1, (1 << 16) - 1]
    for gsi in range(NUM_SPI):                              # every line low again
        g.irq_line(gsi, 0)
    for cpu in range(N):
        for intid in range(16, 32):
            g.irq_line(intid, 0, cpu=cpu)
    for cpu in range(N):
        rig.sw(cpu, "ICC_PMR_EL1", 0xFF)
        rig.sw(cpu, "ICC_IGRPEN0_EL1", 1)
        for _ in range(20):                                 # acknowledge everything pending
            intid = rig.sr(cpu, "ICC_IAR1_EL1")
            if intid == 1023:
                break
            rig.sw(cpu, "ICC_EOIR1_EL1", intid)
        else:
            raise AssertionError(f"vCPU {cpu} keeps taking interrupts")
        rig.sr(cpu, "ICC_HPPIR1_EL1")
        rig.sr(cpu, "ICC_IAR0_EL1")
    assert g.lpi_pending(CPU_OK) == []


# ---- GicV3 before init, and the constructor ----------------------------------------------------------
def config_of(g: GicV3):
    return (g.dist_base, list(g.regions), g.initialised, list(g.cpus), g._windows)


def gic_refused(g: GicV3, fn, errno: str = "EINVAL") -> None:
    before = config_of(g)
    with pytest.raises(DeviceError) as e:
        fn()
    assert e.value.errno_name == errno, str(e.value)
    assert config_of(g) == before


@pytest.mark.parametrize("base", BAD_NUMBERS + [0x8000, DIST + 0x1000, 1 << 48, (1 << 48) - 0x8000])
def test_set_dist_addr_refuses(base):
    g = GicV3()
    gic_refused(g, lambda: g.set_dist_addr(base))
    g.set_dist_addr(DIST)                                   # still possible afterwards


@pytest.mark.parametrize("base, count", [(b, 1) for b in BAD_NUMBERS + [0x8000, (1 << 48) - 0x1_0000]]
                         + [(REDIST, c) for c in BAD_NUMBERS + [0, 513]])
def test_add_redist_region_refuses(base, count):
    g = GicV3()
    g.set_dist_addr(DIST)
    gic_refused(g, lambda: g.add_redist_region(base, count))
    g.add_redist_region(REDIST, 1)


def _cpu(index=0, mpidr=0x8000_0000):
    return SimpleNamespace(index=index, mpidr=mpidr)


@pytest.mark.parametrize("cpus", [
    None, 5, "ab", (c for c in fake_cpus(2)), {0: _cpu()}, [], fake_cpus(513),
    [_cpu(index=True)], [_cpu(), _cpu(index=True)], [_cpu(index=0.0)], [_cpu(index=None)],
    [SimpleNamespace(index=0)], [_cpu(mpidr=None)], [_cpu(mpidr=1.5)], [_cpu(mpidr=True)],
    [_cpu(mpidr=-1)], [_cpu(mpidr=1 << 64)], [_cpu(mpidr="0")],
    [_cpu(0, 0x8000_0001), _cpu(1, 0x8000_0001)],
], ids=stable_id)
def test_init_refuses_bad_vcpus(cpus):
    g = GicV3()
    g.set_dist_addr(DIST)
    g.add_redist_region(REDIST, 2)
    gic_refused(g, lambda: g.init(cpus))
    g.init(fake_cpus(2))


@pytest.mark.parametrize("kw", [{"log_guest_error": v} for v in NOT_CALLABLE]
                         + [{"log_event": v} for v in NOT_CALLABLE])
def test_gic_constructor_refuses_non_callable_logs(kw):
    with pytest.raises(DeviceError) as e:
        GicV3(**kw)
    assert e.value.errno_name == "EINVAL"


def test_before_init_everything_else_is_enxio():
    g = GicV3()
    for fn in (lambda: g.lpi_process(0, LPI, 1), lambda: g.lpi_inv(0), lambda: g.lpi_move(0, 0),
               lambda: g.lpi_pending(0), lambda: g.irq_level(0), lambda: g.load_state({})):
        gic_refused(g, fn, "ENXIO")


# ---- the ITS -------------------------------------------------------------------------------------------
def _doorbell():
    return ITS + 0x1_0040


ITS_CASES = (
    cases_for("address", lambda r, v: r.its.signal_msi(v, 0, 1),
              BAD_NUMBERS + [float(_doorbell()), _doorbell() + 4, _doorbell() - 0x40, ITS])
    + cases_for("data", lambda r, v: r.its.signal_msi(_doorbell(), v, 1), BAD_NUMBERS[2:] + [-1, 1 << 32])
    + cases_for("device_id", lambda r, v: r.its.signal_msi(_doorbell(), 0, v), BAD_NUMBERS[2:] + [-1, 1 << 32])
    + cases_for("translate-address", lambda r, v: r.its.translate_msi(v, 0, 1), BAD_NUMBERS)
    + cases_for("translate-data", lambda r, v: r.its.translate_msi(_doorbell(), v, 1), BAD_NUMBERS)
    + cases_for("translate-device_id", lambda r, v: r.its.translate_msi(_doorbell(), 0, v), BAD_NUMBERS)
    + cases_for("unmapped", lambda r, v: r.its.signal_msi(_doorbell(), *v), [(9, 1), (0, 2), (0, 0x100)],
                "ENOENT")
    + cases_for("target-lpis-off", lambda r, v: r.its.signal_msi(_doorbell(), v, 1), [CPU_LPIS_OFF], "EBUSY")
    + cases_for("target-pending-table", lambda r, v: r.its.signal_msi(_doorbell(), v, 1), [CPU_PEND_OUTSIDE],
                "EFAULT")
    + cases_for("load_state", lambda r, v: r.its.load_state(v), [None, [], "gicv3-its"])
)


@pytest.mark.parametrize("fn, value, errno", ITS_CASES)
def test_its_host_call_refused_and_nothing_changes(rig, fn, value, errno):
    refused(rig, lambda: fn(rig, value), errno)


def write_ite(r: ItsRig, event: int, intid: int, icid: int) -> None:
    """An ITE written by the guest straight into its ITT (not by MAPTI)."""
    r.ram.write_int(ITT + event * 12, 8, 1 | 1 << 1 | intid << 2 | icid << 32, "little")
    r.ram.write_int(ITT + event * 12 + 8, 4, 1023, "little")


@pytest.mark.parametrize("intid", [5, 1023, LPI - 1, 1 << 16, (1 << 24) - 1])
def test_ite_with_a_non_lpi_intid_is_enoent_for_the_host_and_ignored_for_the_guest(rig, intid):
    write_ite(rig, 9, intid, 0)
    e = refused(rig, lambda: rig.its.translate_msi(rig.its.doorbell, 9, 1), "ENOENT")
    assert "not an LPI" in str(e)
    refused(rig, lambda: rig.its.signal_msi(rig.its.doorbell, 9, 1), "ENOENT")
    # The guest: INT, INV, MOVI, CLEAR, DISCARD on it and a GITS_TRANSLATER
    # store never raise; the queue runs on.
    rig.dev_ev(0x03, 1, 9)                                              # INT
    rig.dev_ev(0x0C, 1, 9)                                              # INV
    rig.dev_ev(0x01, 1, 9, 2)                                           # MOVI -> collection 2
    rig.dev_ev(0x04, 1, 9)                                              # CLEAR
    rig.dev_ev(0x0F, 1, 9)                                              # DISCARD
    rig.cmd(0x0D)                                                       # INVALL
    rig.cmd(0x0E, 0, 0, 2 << 16)                                        # MOVALL 0 -> 2
    assert rig.creadr() == rig.wptr
    assert rig.g.lpi_pending(0) == [] and rig.g.lpi_pending(2) == [LPI]  # 8192 moved by MOVALL


def test_guest_commands_the_redistributor_ignores_never_raise(rig):
    """INT to a vCPU with EnableLPIs 0, beyond PROPBASER.IDbits or with its
    pending table outside RAM: ignored (a guest error at most), as QEMU."""
    rig.mapti(1, 5, LIMIT13 + 1, CPU_IDBITS13)                          # MAPTI accepts it (< 2^16)
    for ev in (1, 3, 5):                                                # pend outside, EnableLPIs 0, IDbits
        rig.dev_ev(0x03, 1, ev)
        rig.dev_ev(0x04, 1, ev)
    rig.dev_ev(0x01, 1, 0, CPU_LPIS_OFF)                                # MOVI 8192 -> vCPU 3: dropped
    assert rig.creadr() == rig.wptr
    assert [rig.g.lpi_pending(c) for c in range(N)] == [[LPI], [], [], []]
    rig.its.mmio_write(0, 0x1_0040, 4, 5)                               # DeviceID 0: unmapped
    assert any("pending table" in w for w, _ in rig.errors)


def test_signal_msi_checks_the_target_before_any_event(rig):
    rig.mapti(1, 5, LIMIT13, CPU_IDBITS13)
    n = len(rig.events)
    refused(rig, lambda: rig.its.signal_msi(rig.its.doorbell, 5, 1), "EINVAL")
    assert len(rig.events) == n
    assert rig.its.translate_msi(rig.its.doorbell, 5, 1) == (LIMIT13, CPU_IDBITS13)   # the mapping is fine
    rig.its.signal_msi(rig.its.doorbell, 2, 1)
    assert rig.g.lpi_pending(CPU_IDBITS13) == [LPI + 2] and len(rig.events) > n


def its_args(**kw):
    g = GicRig(2).g
    args = {"gic": g, "ram": GuestRAM(0x4000_0000, 0x10_0000), "base": ITS,
            "log_guest_error": lambda what, **k: None, "log_event": lambda what, **k: None}
    args.update(kw)
    return args


@pytest.mark.parametrize("kw", [{"gic": v} for v in (None, 5, object())]
                         + [{"ram": v} for v in (None, 5, object(), bytearray(16))]
                         + [{"base": v} for v in BAD_NUMBERS + [ITS + 0x1000, (1 << 48) - 0x1_0000]]
                         + [{"log_guest_error": v} for v in NOT_CALLABLE]
                         + [{"log_event": v} for v in NOT_CALLABLE], ids=stable_id)
def test_its_constructor_refuses(kw):
    with pytest.raises(DeviceError) as e:
        GicV3Its(**its_args(**kw))
    assert e.value.errno_name == "EINVAL"


def test_its_constructor_accepts_the_last_frame_below_2_48():
    its = GicV3Its(**its_args(base=(1 << 48) - 0x2_0000))
    assert its.doorbell == (1 << 48) - 0x2_0000 + 0x1_0040


def test_its_bad_snapshot_content_is_still_a_state_error(rig):
    before = snapshot(rig)
    with pytest.raises(ConfigError):
        rig.its.load_state({})
    with pytest.raises(ConfigError):
        rig.g.load_state({"gicv3": None})
    assert snapshot(rig) == before

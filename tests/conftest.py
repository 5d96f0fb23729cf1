"""The tests' fixtures. Helpers are plain modules next to this one:
guestrun.py (building, booting and running guests, here and on QEMU) and
gicrig.py (the GICv3/ITS model driven without CPUs). No test module
imports another."""
from __future__ import annotations

import pytest

from gicrig import LPI, ItsRig, virt_with_its
from guestrun import VIRT_CODE
from vmachine import create_machine


@pytest.fixture
def pseries():
    """A bare pseries machine (2 vCPUs, 64 MiB) for firmware calls made by hand."""
    return create_machine("pseries", smp=2, ram_size=64 << 20)


@pytest.fixture
def virt():
    """A bare virt machine (4 vCPUs, 32 MiB) whose boot vCPU is running at
    VIRT_CODE, the caller of hand-made PSCI calls."""
    m = create_machine("virt,gic-version=3", smp=4, ram_size=32 << 20)
    m.cpus[0].start(VIRT_CODE, 0)
    return m


@pytest.fixture
def its_rig():
    """The GICv3 + ITS model on its own, 2 vCPUs, redistributors and ITS set up as Linux does."""
    r = ItsRig()
    r.setup_cpus()
    r.setup_its()
    return r


@pytest.fixture
def virt_its():
    """A real 2-vCPU virt machine with the ITS set up, (device 1, event 0) ->
    LPI 8197 on vCPU 1, and GSI routing: (machine, rig on its GIC/ITS, routing)."""
    from vmachine.intc.msi_routing import GsiRouting

    m, r = virt_with_its()
    r.full(dev=1, ev=0, intid=LPI + 5, cpu=1)
    rt = GsiRouting(m)
    yield m, r, rt
    rt.close()

"""The sPAPR interrupt-controller interface (boards/spapr_irq.py): the number
plan claimed once in every controller, free, the switch, and the module
layering it relies on (no import cycles)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vmachine import create_machine
from vmachine.boards.spapr_cas import OptionVector
from vmachine.boards.spapr_irq import (SPAPR_IRQ_EPOW, SPAPR_IRQ_HOTPLUG, SPAPR_IRQ_PCI_LSI,
                                       SPAPR_IRQ_VIO)
from vmachine.intc.xics import SRC_LEVEL_SENSITIVE

H_FUNCTION, H_SUCCESS, H_INT_SYNC = -2, 0, 0x3CC
CLAIMED = {SPAPR_IRQ_EPOW: False, SPAPR_IRQ_HOTPLUG: False, SPAPR_IRQ_VIO: False,
           **{SPAPR_IRQ_PCI_LSI + k: True for k in range(4)}}


def hcall(m, nr, *args):
    c = m.cpus[0]
    c.set_gpr(3, nr)
    for i, a in enumerate(args):
        c.set_gpr(4 + i, a)
    m.board.firmware_call(c)
    return c.gpr(3) - (1 << 64) if c.gpr(3) >> 63 else c.gpr(3)


@pytest.mark.parametrize("mode,names", [("dual", ["xics", "xive"]), ("xics", ["xics"]),
                                        ("xive", ["xive"])])
def test_the_plan_is_claimed_in_every_controller(mode, names):
    m = create_machine(f"pseries,ic-mode={mode}", smp=2)
    b = m.board
    assert list(b.intcs) == names and b.active is b.intcs[names[0] if mode != "xive" else "xive"]
    assert b.irq.lsi_lines == {n for n, lsi in CLAIMED.items() if lsi}
    if "xics" in b.intcs:
        xics = b.intcs["xics"].xics
        for nr, lsi in CLAIMED.items():
            assert bool(xics.get_sources(nr, 1)[0] & SRC_LEVEL_SENSITIVE) == lsi
    if "xive" in b.intcs:
        xive = b.intcs["xive"].xive
        for nr, lsi in {**CLAIMED, 0: False, 1: False}.items():      # + one IPI per server
            assert xive.get_source(nr).valid and xive.get_source(nr).lsi == lsi
        assert not xive.get_source(2).valid


def test_free_releases_the_number_everywhere():
    m = create_machine("pseries", smp=1)
    irq = m.board.irq
    irq.free(SPAPR_IRQ_PCI_LSI)
    assert SPAPR_IRQ_PCI_LSI not in irq.lsi_lines
    assert not m.board.intcs["xive"].xive.get_source(SPAPR_IRQ_PCI_LSI).valid
    assert not m.board.intcs["xics"].xics.get_sources(SPAPR_IRQ_PCI_LSI, 1)[0] & SRC_LEVEL_SENSITIVE
    irq.claim(SPAPR_IRQ_PCI_LSI, lsi=True)
    assert m.board.intcs["xive"].xive.get_source(SPAPR_IRQ_PCI_LSI).lsi


def test_xive_hcalls_follow_the_cas_switch():
    m = create_machine("pseries", smp=1)
    assert hcall(m, H_INT_SYNC, 0, 0) == H_FUNCTION
    m.board.cas.apply(OptionVector(bytes(22) + b"\x40"))
    assert m.board.active is m.board.intcs["xive"]
    assert hcall(m, H_INT_SYNC, 0, 0) == H_SUCCESS
    m.board.cas.apply(OptionVector(bytes(23)))
    assert m.board.active is m.board.intcs["xics"]
    assert hcall(m, H_INT_SYNC, 0, 0) == H_FUNCTION


def _imports(root: Path) -> dict[str, set[str]]:
    """Module -> vmachine modules it imports (anywhere in the file)."""
    mods = {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        deps = graph.setdefault(mod, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                target = f"{base}.{node.module}" if node.module else base
                for a in node.names:
                    deps.add(f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target)
        # importing a.b.c runs package a.b's __init__ (the root package excepted)
        for d in list(deps):
            parts = d.split(".")
            deps.update(".".join(parts[:i]) for i in range(2, len(parts)))
        deps.discard(mod)
        deps.difference_update(p for p in list(deps) if mod.startswith(p + "."))
    return {m: {d for d in ds if d in mods} for m, ds in graph.items()}


def test_no_import_cycles():
    graph = _imports(Path(__file__).resolve().parent.parent / "vmachine")
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(d):] + [m, d]))
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2
    for m in sorted(graph):
        if m not in state:
            visit(m, [])

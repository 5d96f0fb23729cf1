"""Migration: section "gicv3", declared (state.VMStateDescription) from the
records each part owns: the configuration (checked, never stored), the
distributor (distributor.DIST_FIELDS), one redistributor record per vCPU with
its pending LPIs (redistributor.REDIST_FIELDS) and one CPU interface record
per vCPU (cpuif.CPUIF_FIELDS). The layout is the one version 1 always had, so
every snapshot written since loads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...state import Array, Field, StateError, Struct, U32, U64, VMStateDescription
from .common import NUM_IRQ
from .cpuif import CPUIF_FIELDS
from .distributor import DIST_FIELDS
from .redistributor import REDIST_FIELDS, Redistributor, check_lpis

if TYPE_CHECKING:
    from .common import GicCore


@dataclass(frozen=True)
class _Record(Struct):
    """A Struct whose fields with a default may be absent (written before
    they existed, in the same section version)."""

    def decode(self, raw: Any, where: str) -> dict:
        if isinstance(raw, dict):
            absent = {f.name: f.kind.encode(f.default) for f in self.fields
                      if f.default is not None and f.name not in raw}
            if absent:
                raw = {**raw, **absent}
        return super().decode(raw, where)


def _put_fields(fields: tuple[Field, ...], owner: Any, values: dict) -> None:
    for f in fields:
        f.put(owner, values[f.name])


def _put_dist(gic: "GicCore", values: dict) -> None:
    _put_fields(DIST_FIELDS, gic.dist, values)


def _put_redist(gic: "GicCore", records: list[dict]) -> None:
    for cs, values in zip(gic.cpus, records):
        _put_fields(REDIST_FIELDS, cs, values)


def _put_cpuif(gic: "GicCore", records: list[dict]) -> None:
    for cs, values in zip(gic.cpus, records):
        _put_fields(CPUIF_FIELDS, cs, values)


def _config(name: str, kind: Any, get: Any) -> Field:
    """Configuration saved for checking: loading compares, never stores."""
    return Field(name, kind, get_fn=get, put_fn=lambda gic, v: None)


def _check(gic: "GicCore", values: dict) -> None:
    """The snapshot is of this machine's GIC; one record per vCPU."""
    if (values["num_irq"], values["ncpus"], values["dist_base"]) != \
            (NUM_IRQ, len(gic.cpus), gic.dist_base) \
            or values["regions"] != [list(r) for r in gic.regions] \
            or values["affinities"] != [cs.affinity for cs in gic.cpus]:
        raise StateError("snapshot: GICv3 configuration (lines, vCPUs, addresses, "
                         "affinities) differs from this machine's")
    if len(values["redist"]) != len(gic.cpus) or len(values["cpuif"]) != len(gic.cpus):
        raise StateError("snapshot: GICv3 per-vCPU state does not match the vCPUs")
    for i, r in enumerate(values["redist"]):
        check_lpis(r["lpis"], f"gicv3.redist[{i}].lpis", r["propbaser"])


def _post_load(gic: "GicCore") -> None:
    """Recompute what is derived (LPI and SPI caches, HPPIs) and drive every line."""
    for cs in gic.cpus:
        Redistributor.lpi_recompute(cs)
    gic.dist.retarget_all()
    gic.dist.refresh()
    for cs in gic.cpus:
        gic.compute_hppi(cs)
        cs.irq_level = cs.fiq_level = None         # force: drive both lines
        gic.cpuif.update(cs)


GICV3_STATE = VMStateDescription("gicv3", 1, (
    _config("num_irq", U32, lambda gic: NUM_IRQ),
    _config("ncpus", U32, lambda gic: len(gic.cpus)),
    _config("dist_base", U64, lambda gic: gic.dist_base),
    _config("regions", Array(Array(U64, 2)), lambda gic: [list(r) for r in gic.regions]),
    _config("affinities", Array(U32), lambda gic: [cs.affinity for cs in gic.cpus]),
    Field("dist", Struct(DIST_FIELDS), get_fn=lambda gic: gic.dist, put_fn=_put_dist),
    Field("redist", Array(_Record(REDIST_FIELDS)), get_fn=lambda gic: gic.cpus,
          put_fn=_put_redist),
    Field("cpuif", Array(Struct(CPUIF_FIELDS)), get_fn=lambda gic: gic.cpus, put_fn=_put_cpuif),
), check=_check, post_load=_post_load)

"""The register-bank and declared-state mechanisms every device is written in."""
from types import SimpleNamespace as NS

import pytest

from vmachine.regs import (CallTable, Register, RegisterBank, SysReg, SysRegBank, WIDTHS_64,
                           deposit, extract, raz, wi)
from vmachine.state import (Array, BOOL, Bitmap, Bytes, Field, SInt, StateError, Str, Struct,
                            Subsection, U8, U32, U64, VMStateDescription)


class Dev:
    def __init__(self):
        self.errors = []
        self.ctlr = 0
        self.base = 0
        self.acks = 0

    def read_ctlr(self, ctx, rel, size):
        return self.ctlr

    def write_ctlr(self, ctx, rel, size, value):
        self.ctlr = value & 0xF

    def read_base(self, ctx, rel, size):
        return extract(self.base, rel, size)

    def write_base(self, ctx, rel, size, value):
        self.base = deposit(self.base, rel, size, value)

    def read_ack(self, ctx, rel, size):
        self.acks += 1
        return 0x55


REGS = (
    Register("CTLR", 0x0, Dev.read_ctlr, Dev.write_ctlr, reset=0x3, field="ctlr"),
    Register("BASER", 0x8, Dev.read_base, Dev.write_base, WIDTHS_64, reset=0, field="base"),
    Register("ACK", 0x10, Dev.read_ack, None, side_effects=True),
    Register("RAZWI<n>", 0x20, raz, wi, length=0x10),
)


def bank(dev):
    return RegisterBank("TEST", REGS, lambda what, **kw: dev.errors.append((what, kw)))


def test_bank_dispatches_by_offset_and_width():
    d = Dev()
    b = bank(d)
    b.write(d, None, 0x0, 4, 0xFF)
    assert d.ctlr == 0xF and b.read(d, None, 0x0, 4) == 0xF
    b.write(d, None, 0x8, 8, 0x1122334455667788)
    b.write(d, None, 0xC, 4, 0xAABBCCDD)
    assert d.base == 0xAABBCCDD55667788
    assert b.read(d, None, 0xC, 4) == 0xAABBCCDD
    assert b.read(d, None, 0x2C, 4) == 0 and not d.errors


@pytest.mark.parametrize("offset,size", [(0x4, 4), (0x0, 8), (0x0, 2), (0x9, 4), (0x40, 4)])
def test_bad_offsets_and_widths_are_one_logged_guest_error(offset, size):
    d = Dev()
    b = bank(d)
    assert b.read(d, None, offset, size) == 0
    b.write(d, None, offset, size, 1)
    assert [e[0] for e in d.errors] == ["TEST: invalid read", "TEST: invalid write"]
    assert d.ctlr == 0


def test_write_only_and_read_only_directions_are_guest_errors():
    d = Dev()
    b = bank(d)
    b.write(d, None, 0x10, 4, 1)
    assert d.errors[0][0] == "TEST: invalid write"


def test_reset_column_is_the_reset_and_peek_has_no_side_effects():
    d = Dev()
    b = bank(d)
    b.reset(d)
    assert d.ctlr == 0x3
    assert b.peek(d, None, 0x0, 4) == 0x3
    with pytest.raises(ValueError):
        b.peek(d, None, 0x10, 4)
    assert d.acks == 0
    assert b["ACK"].offset == 0x10


def test_overlapping_registers_are_refused():
    with pytest.raises(ValueError):
        RegisterBank("X", (Register("A", 0, raz, wi, length=8), Register("B", 4, raz, wi)))


def test_sysreg_bank_binds_per_context():
    regs = SysRegBank("ICC", (SysReg("PMR", (3, 0, 4, 6, 0), lambda o, c: c["pmr"],
                                     lambda o, c, v: c.__setitem__("pmr", v), reset=0, field="pmr"),))
    ctx = {"pmr": 7}
    rd, wr = regs.bind(None, ctx)[(3, 0, 4, 6, 0)]      # the vCPU trap table's shape
    wr("cpu", 9 | 1 << 64)                                 # an Xt value is 64 bits
    assert rd("cpu") == 9


def test_call_table():
    t = CallTable.of("hcall", [(0x58, "H_PUT_TERM_CHAR", print)])
    assert t.get(0x58).name == "H_PUT_TERM_CHAR" and t.get(0x54) is None
    with pytest.raises(ValueError):
        t.register(0x58, "again", print)
    t.unregister(0x58)
    assert 0x58 not in t


SRC = Struct((Field("nr", U32), Field("lsi", BOOL)))
DESC = VMStateDescription(
    "dev", 2,
    (Field("ctlr", U32), Field("pend", Bitmap(64)), Field("prio", Bytes(4)),
     Field("mode", Str(("a", "b"))), Field("owner", SInt(32)),
     Field("sources", Array(SRC, max_count=8)), Field("added", U8, since=2, default=7)),
    subsections=(Subsection(VMStateDescription("dev/extra", 1, (Field("x", U64),)),
                            needed=lambda o: o.x != 0),),
    post_load=lambda o: setattr(o, "loaded", True))


def obj(**kw):
    base = dict(ctlr=5, pend=(1 << 40) | 3, prio=b"\1\2\3\4", mode="a", owner=-1,
                sources=[{"nr": 0x1000, "lsi": True}], added=9, x=0)
    base.update(kw)
    return NS(**base)


def test_declared_state_round_trip_and_subsections():
    o = obj(x=0x1234)
    sec = DESC.save(o)
    assert sec["fields"]["pend"] == [3, 1 << 8] and sec["subsections"]["dev/extra"]["fields"] == {"x": 0x1234}
    n = obj(ctlr=0, x=0)
    DESC.load(n, {"dev": sec})
    assert (n.ctlr, n.pend, n.prio, n.owner, n.x, n.loaded) == (5, o.pend, b"\1\2\3\4", -1, 0x1234, True)
    assert "subsections" not in DESC.save(obj())


def test_older_version_gets_the_default_and_unknown_versions_are_refused():
    sec = DESC.save(obj())
    sec["version"] = 1
    del sec["fields"]["added"]
    n = obj(added=0)
    DESC.load(n, {"dev": sec})
    assert n.added == 7
    sec["version"] = 3
    with pytest.raises(StateError, match="version 3"):
        DESC.decode(n, {"dev": sec})


@pytest.mark.parametrize("field,value", [("ctlr", -1), ("ctlr", 1 << 32), ("ctlr", True),
                                         ("pend", [1]), ("prio", [1, 2, 3, 256]), ("mode", "c"),
                                         ("owner", 1 << 31), ("sources", [{"nr": 1}]),
                                         ("sources", [{"nr": 1, "lsi": False}] * 9)])
def test_a_bad_field_is_refused_naming_it_and_nothing_is_changed(field, value):
    sec = DESC.save(obj())
    sec["fields"][field] = value
    n = obj(ctlr=77)
    with pytest.raises(StateError, match=f"dev.{field}"):
        DESC.load(n, {"dev": sec})
    assert n.ctlr == 77 and not hasattr(n, "loaded")

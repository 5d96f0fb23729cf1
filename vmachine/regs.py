"""Register banks and call tables: a device's guest interface as data.

A device describes its MMIO frame (or a block of trapped system registers) as
a table of `Register` entries that reads like the specification's register
table: offset (or encoding), the access widths it takes, the name the spec
gives it, the reset value, and the functions that implement a guest access.
`RegisterBank` turns the table into the lookup a window calls on every
access, and is the single place where a bad offset or width becomes a logged
guest error with RAZ/WI (Linux vgic-mmio-v3.c, QEMU's REG32/FIELD tables).

Handlers are plain functions of the owning device (written after the class,
e.g. `Distributor.read_ctlr`), called as

    read(owner, ctx, rel, size) -> int
    write(owner, ctx, rel, size, value) -> None

where `ctx` is what the window passes (a redistributor's per-vCPU state, the
accessing vCPU index, ...) and `rel` the offset inside the register (array
registers cover `length` bytes). Values are already masked to the access
width.

The same idea for numbered services, `CallTable`: hcalls, RTAS tokens, PSCI
function ids and ITS command numbers are (number, name, handler) rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import field as dc_field
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

ReadFn = Callable[[Any, Any, int, int], int]
WriteFn = Callable[[Any, Any, int, int, int], None]
GuestError = Callable[..., None]

MASK64 = (1 << 64) - 1
WIDTHS_32 = frozenset({4})
WIDTHS_64 = frozenset({4, 8})
WIDTHS_BYTE = frozenset({1, 4})


def raz(owner: Any, ctx: Any, rel: int, size: int) -> int:
    """Read-as-zero."""
    return 0


def wi(owner: Any, ctx: Any, rel: int, size: int, value: int) -> None:
    """Write-ignored."""


def deposit(old: int, rel: int, size: int, value: int) -> int:
    """`old` with the `size` bytes at byte offset `rel` replaced by `value`
    (a 4-byte access to half of a 64-bit register)."""
    shift = 8 * rel
    mask = ((1 << (8 * size)) - 1) << shift
    return (old & ~mask) | ((value << shift) & mask)


def extract(value: int, rel: int, size: int) -> int:
    """The `size` bytes at byte offset `rel` of `value`."""
    return (value >> (8 * rel)) & ((1 << (8 * size)) - 1)


@dataclass(frozen=True)
class Register:
    """One register, or an array of `length` bytes of them, at `offset`.

    `read`/`write` None mean write-only (reads are RAZ and logged) and
    read-only (writes are ignored and logged); a register whose direction is
    architecturally RAZ or WI says so with `raz`/`wi`. `reset`, when not
    None, is the value `RegisterBank.reset` stores in the owner's state
    attribute `field` (scalar registers; arrays reset themselves). `peek`
    is a side-effect-free read for debuggers and dumps; registers whose
    guest read has side effects (IAR, ack registers) must give one or set
    `side_effects` so that `RegisterBank.peek` refuses them.
    """
    name: str
    offset: int
    read: ReadFn | None
    write: WriteFn | None
    widths: frozenset[int] = WIDTHS_32
    length: int = 0                     # 0: the largest accepted width
    reset: int | None = None
    field: str | None = None
    peek: ReadFn | None = None
    side_effects: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", self.length or max(self.widths))
        object.__setattr__(self, "end", self.offset + self.size)

    size: int = dc_field(init=False, repr=False, compare=False)   # bytes covered
    end: int = dc_field(init=False, repr=False, compare=False)    # offset + size

    def covers(self, offset: int) -> bool:
        return self.offset <= offset < self.end


def stored(name: str, offset: int, field: str, mask: int, reset: int = 0,
           widths: frozenset[int] = WIDTHS_32, writable: bool = True) -> Register:
    """A register that is plain storage: reads return the owner's attribute
    `field`, writes store `value & mask` (read-only when not `writable`). The
    commonest register there is, declared in one line instead of a pair of
    handlers."""
    def read(owner: Any, ctx: Any, rel: int, size: int) -> int:
        return extract(getattr(owner, field), rel, size)

    def write(owner: Any, ctx: Any, rel: int, size: int, value: int) -> None:
        setattr(owner, field, deposit(getattr(owner, field), rel, size, value) & mask)
    return Register(name, offset, read, write if writable else None, widths, reset=reset,
                    field=field)


class RegisterBank:
    """Offset -> register lookup for one frame, and the one place where bad
    accesses are logged as guest errors and answered RAZ/WI.

    Lookup is by 4-byte word (a dict), so a frame of thousands of words costs
    one dict probe per access whatever its layout.
    """

    def __init__(self, frame: str, registers: Iterable[Register],
                 guest_error: GuestError = lambda what, **kw: None, word: int = 4):
        self.frame = frame
        self.registers: tuple[Register, ...] = tuple(sorted(registers, key=lambda r: r.offset))
        self.guest_error = guest_error
        self._word = word
        self._by_word: dict[int, Register] = {}
        for r in self.registers:
            for w in range(r.offset - r.offset % word, r.offset + r.size, word):
                if w in self._by_word:
                    raise ValueError(f"{frame}: {r.name} overlaps {self._by_word[w].name} at {w:#x}")
                self._by_word[w] = r
        self._by_name = {r.name: r for r in self.registers}

    def find(self, offset: int, size: int) -> Register | None:
        """The register an access of `size` bytes at `offset` reaches, or None
        (unknown offset, a width the register does not take, misaligned)."""
        r = self._by_word.get(offset - offset % self._word)
        if r is None or size not in r.widths or offset % size or offset < r.offset \
                or offset + size > r.end:
            return None
        return r

    def __getitem__(self, name: str) -> Register:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Register]:
        return iter(self.registers)

    # ---- guest access ---------------------------------------------------------------------------
    def read(self, owner: Any, ctx: Any, offset: int, size: int, cpu: int = -1) -> int:
        r = self.find(offset, size)
        if r is None or r.read is None:
            self.guest_error(f"{self.frame}: invalid read", cpu=cpu, offset=offset, size=size)
            return 0
        return r.read(owner, ctx, offset - r.offset, size) & ((1 << (8 * size)) - 1)

    def write(self, owner: Any, ctx: Any, offset: int, size: int, value: int, cpu: int = -1) -> None:
        r = self.find(offset, size)
        if r is None or r.write is None:
            self.guest_error(f"{self.frame}: invalid write", cpu=cpu, offset=offset, size=size,
                             value=value)
            return
        r.write(owner, ctx, offset - r.offset, size, value & ((1 << (8 * size)) - 1))

    # ---- host access (debugger, dumps, tests) ---------------------------------------------------
    def peek(self, owner: Any, ctx: Any, offset: int, size: int) -> int:
        """Read without side effects; ValueError for a register that has none
        to offer (write-only, or a side-effecting read without `peek`)."""
        r = self.find(offset, size)
        if r is None:
            raise ValueError(f"{self.frame}: no register at {offset:#x} of size {size}")
        fn = r.peek or (None if r.side_effects else r.read)
        if fn is None:
            raise ValueError(f"{self.frame}: {r.name} cannot be read without side effects")
        return fn(owner, ctx, offset - r.offset, size) & ((1 << (8 * size)) - 1)

    def reset(self, state: Any) -> None:
        """Store every scalar register's reset value in its state field: the
        table's reset column is the reset."""
        for r in self.registers:
            if r.field is not None and r.reset is not None:
                setattr(state, r.field, r.reset)


@dataclass(frozen=True)
class SysReg:
    """A trapped system register by encoding (AArch64: op0, op1, CRn, CRm,
    op2). Handlers: read(owner, ctx) -> int, write(owner, ctx, value); None
    means that direction is UNDEFINED and left to the CPU."""
    name: str
    key: tuple[int, ...]
    read: Callable[[Any, Any], int] | None
    write: Callable[[Any, Any, int], None] | None
    reset: int | None = None
    field: str | None = None
    side_effects: bool = False


class SysRegBank:
    """Encoding -> system register, bound per context into the (read, write)
    pairs a vCPU's trap table holds."""

    def __init__(self, block: str, registers: Iterable[SysReg]):
        self.block = block
        self.registers = tuple(registers)
        self._by_key = {r.key: r for r in self.registers}
        if len(self._by_key) != len(self.registers):
            raise ValueError(f"{block}: two registers share an encoding")
        self._by_name = {r.name: r for r in self.registers}

    def __getitem__(self, name: str) -> SysReg:
        return self._by_name[name]

    def __iter__(self) -> Iterator[SysReg]:
        return iter(self.registers)

    def bind(self, owner: Any, ctx: Any) -> dict[tuple[int, ...], tuple[Callable | None, Callable | None]]:
        """One context's registers as a vCPU's trap table takes them:
        {encoding: (read(cpu), write(cpu, value))}; written values are
        64-bit (an Xt register)."""
        out = {}
        for r in self.registers:
            rd = (lambda _cpu, f=r.read: f(owner, ctx)) if r.read else None
            wr = (lambda _cpu, v, f=r.write: f(owner, ctx, v & MASK64)) if r.write else None
            out[r.key] = (rd, wr)
        return out

    def reset(self, state: Any) -> None:
        for r in self.registers:
            if r.field is not None and r.reset is not None:
                setattr(state, r.field, r.reset)


H = TypeVar("H")


@dataclass(frozen=True)
class Call(Generic[H]):
    """One numbered service: hcall, RTAS token, PSCI function id, ITS command.
    `enabled` (None: always) gates it: while false the number answers as an
    unknown one does (the XIVE hcalls before CAS negotiated XIVE)."""
    number: int
    name: str
    handler: H
    enabled: Callable[[], bool] | None = None


@dataclass
class CallTable(Generic[H]):
    """number -> Call, with registration at run time (an interrupt controller
    adds its hcalls when it becomes active and removes them when it is not)."""
    what: str
    calls: dict[int, Call[H]] = field(default_factory=dict)

    @classmethod
    def of(cls, what: str, rows: Iterable[tuple[int, str, H]]) -> "CallTable[H]":
        t = cls(what)
        for number, name, handler in rows:
            t.register(number, name, handler)
        return t

    def register(self, number: int, name: str, handler: H,
                 enabled: Callable[[], bool] | None = None) -> None:
        self.add(Call(number, name, handler, enabled))

    def add(self, call: Call[H]) -> None:
        if call.number in self.calls:
            raise ValueError(f"{self.what} {call.number:#x} ({call.name}) is already "
                             f"{self.calls[call.number].name}")
        self.calls[call.number] = call

    def unregister(self, number: int) -> None:
        self.calls.pop(number, None)

    def get(self, number: int) -> Call[H] | None:
        """The call that answers `number` now (None: unknown, or gated off)."""
        c = self.calls.get(number)
        if c is None or (c.enabled is not None and not c.enabled()):
            return None
        return c

    def __contains__(self, number: int) -> bool:
        return number in self.calls

    def __iter__(self) -> Iterator[Call[H]]:
        return iter(sorted(self.calls.values(), key=lambda c: c.number))

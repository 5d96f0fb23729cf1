"""Device-tree building on libfdt's own sequential writer (pylibfdt).

Boards describe their tree as nested `Node`s (properties in insertion order,
as QEMU adds them) and `build()` serialises it with `libfdt.FdtSw`, so the
blob is whatever libfdt writes, never a hand-made encoding.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Union

import libfdt

PropValue = Union[bytes, str, int, list[int], list[str], None]


def cells(*values: int) -> bytes:
    """Big-endian 32-bit cells."""
    return b"".join(struct.pack(">I", v & 0xFFFFFFFF) for v in values)


def u64s(*values: int) -> bytes:
    return b"".join(struct.pack(">Q", v) for v in values)


def strings(*values: str) -> bytes:
    return b"".join(v.encode() + b"\0" for v in values)


@dataclass
class Node:
    name: str
    props: dict[str, bytes] = field(default_factory=dict)
    children: list["Node"] = field(default_factory=list)

    def prop(self, name: str, value: PropValue = None) -> "Node":
        if value is None:
            data = b""
        elif isinstance(value, bytes):
            data = value
        elif isinstance(value, str):
            data = value.encode() + b"\0"
        elif isinstance(value, int):
            data = cells(value)
        elif value and isinstance(value[0], str):
            data = strings(*value)                         # type: ignore[arg-type]
        else:
            data = cells(*value)                           # type: ignore[arg-type]
        self.props[name] = data
        return self

    def child(self, name: str) -> "Node":
        n = Node(name)
        self.children.append(n)
        return n

    def find(self, path: str) -> "Node | None":
        node: Node | None = self
        for part in [p for p in path.split("/") if p]:
            node = next((c for c in node.children if c.name == part), None) if node else None
        return node


def build(root: Node, reserve: list[tuple[int, int]] = (), total_size: int | None = None,
          boot_cpuid: int = 0) -> bytes:
    """Serialise `root` with libfdt; optionally pad totalsize like QEMU's virt (1 MiB)."""
    sw = libfdt.FdtSw()
    for addr, size in reserve:
        sw.add_reservemap_entry(addr, size)
    sw.finish_reservemap()

    def emit(node: Node) -> None:
        sw.begin_node(node.name)
        for k, v in node.props.items():
            sw.property(k, v)
        for c in node.children:
            emit(c)
        sw.end_node()
    emit(root)
    fdt = sw.as_fdt()
    fdt.pack()
    blob = bytearray(fdt.as_bytearray())
    struct.pack_into(">I", blob, 0x1C, boot_cpuid)          # boot_cpuid_phys
    if total_size is not None and total_size > len(blob):
        padded = libfdt.Fdt(bytes(blob))
        padded.resize(total_size)
        return bytes(padded.as_bytearray())
    return bytes(blob)

"""CONTRIBUTING.md's worked example runs as written (its Python blocks, in
order, in one namespace)."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "CONTRIBUTING.md"


def test_contributing_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 6
    module = types.ModuleType("contributing_example")     # dataclasses look their module up
    sys.modules[module.__name__] = module
    try:
        for i, code in enumerate(blocks):
            exec(compile(code, f"CONTRIBUTING.md block {i + 1}", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]

"""The import layering of DESIGN.md section 4, read from every module's imports.

Each package may import only the project packages its layer allows (function-level imports
included), and the foundation stays free of torch and Amaranth. A violation names the file,
the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("nmsparse.contract", "nmsparse.report", "nmsparse.sweep", "nmsparse", "golden.llm",
           "golden", "gen", "verif.formal", "verif")

# layer -> (project packages it may import, third-party packages it must not import)
RULES: dict[str, tuple[set[str], set[str]]] = {
    "nmsparse.contract": (set(), {"torch", "amaranth", "numpy", "cocotb", "cocotb_tools"}),
    "golden": ({"nmsparse.contract"}, {"amaranth", "cocotb", "cocotb_tools", "transformers"}),
    "golden.llm": ({"golden", "nmsparse.contract"}, {"amaranth", "cocotb", "cocotb_tools"}),
    "gen": ({"nmsparse.contract"}, {"torch", "cocotb", "cocotb_tools"}),
    "verif": ({"nmsparse.contract", "golden"}, {"amaranth"}),
    # the proofs read Verilog + sidecars only (never the generator), no simulator, no torch
    "verif.formal": ({"nmsparse.contract", "verif"}, {"torch", "amaranth", "cocotb",
                                                      "cocotb_tools"}),
    "nmsparse.report": ({"nmsparse.contract"}, {"torch", "amaranth", "cocotb"}),
    # the sweep orchestrates generation, verification and measurement: it sits on top, like
    # the CLI (gen, verif and the report are imported inside the tasks that use them)
    "nmsparse.sweep": ({"nmsparse.contract", "nmsparse.report", "gen", "verif"},
                       {"torch", "amaranth", "cocotb"}),
    # the command line dispatches to every part, by module name at run time
    "nmsparse": ({"nmsparse.contract"}, {"torch", "amaranth", "cocotb"}),
}


def _layer(module: str) -> str | None:
    return next((p for p in PROJECT if module == p or module.startswith(p + ".")), None)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import statement in ``path``."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from pkg import sub` may import a sub-package
            out += [(node.lineno, f"{name}.{a.name}") for a in node.names
                    if _layer(f"{name}.{a.name}") not in (None, _layer(name))]
    return out


def _sources() -> list[Path]:
    files = []
    for top in ("nmsparse", "golden", "gen", "verif"):
        files += sorted((ROOT / top).rglob("*.py"))
    return files


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layering(path: Path) -> None:
    mine = _layer(_module_name(path))
    assert mine in RULES, f"{path}: no layering rule for {mine}"
    allowed, banned = RULES[mine]
    bad = []
    for line, name in _imports(path):
        other = _layer(name)
        if other is not None and other != mine and other not in allowed:
            bad.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {name}")
        if name.split(".")[0] in banned:
            bad.append(f"{path.relative_to(ROOT)}:{line}: {mine} must not import {name}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_violations(tmp_path: Path) -> None:
    """The parser resolves relative and function-level imports (so the test can fail)."""
    pkg = ROOT / "gen"
    found = dict(_imports(pkg / "topk.py"))
    assert "gen.config" in found.values()
    assert any(n.startswith("nmsparse.contract") for n in dict(_imports(pkg / "emit.py")).values())
    # a lazy import inside a function is seen too
    assert "gen.topk" in dict(_imports(pkg / "emit.py")).values()

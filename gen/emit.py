"""Emission: Verilog, sidecar JSON and FuseSoC core file for each design point.

``emit(config, directory)`` writes ``<module>.v``, ``<module>.json`` (DESIGN.md section 3)
and ``<module>.core`` (FuseSoC CAPI2). The Verilog comes from Amaranth's builtin Yosys with
``emit_src=False`` and the JSON has sorted keys, so every file is byte-identical on every run
and machine. ``emit_shipped(directory)`` writes all points of :data:`gen.config.SHIPPED` and
``manifest.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from amaranth.back import verilog

from nmsparse import toolchain

from .config import (
    SHIPPED,
    VERSION,
    DenseMACConfig,
    LinearConfig,
    SparseMACConfig,
    TopKConfig,
)

__all__ = [
    "VERILATOR_LINT_FLAGS",
    "build",
    "verilog_text",
    "sidecar_text",
    "core_text",
    "emit",
    "emit_shipped",
]

#: ``verilator --lint-only`` flags every emitted file passes without a warning. The waived
#: rules flag idioms of Yosys' Verilog writer, not design issues: operands it sizes minimally
#: and IEEE 1364 extends or truncates (WIDTHEXPAND, WIDTHTRUNC), unused bits of intermediate
#: wires (UNUSEDSIGNAL), and register initial values given in the declaration (PROCASSINIT).
VERILATOR_LINT_FLAGS = (
    "-Wall",
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    "-Wno-UNUSEDSIGNAL",
    "-Wno-PROCASSINIT",
)


def build(config):
    """The Amaranth component of a design point."""
    from .linear import NMLinear
    from .mac import DenseMAC, NMSparseMAC
    from .topk import NMTopK

    if isinstance(config, TopKConfig):
        return NMTopK(n=config.n, m=config.m, fmt=config.fmt, arch=config.arch,
                      pipeline=config.pipeline, lanes=config.lanes)
    if isinstance(config, SparseMACConfig):
        return NMSparseMAC(n=config.n, m=config.m, fmt=config.fmt,
                           weight_width=config.weight_width, acc_width=config.acc_width,
                           outputs=config.outputs)
    if isinstance(config, LinearConfig):
        return NMLinear(n=config.n, m=config.m, fmt=config.fmt, arch=config.arch,
                        pipeline=config.pipeline, weight_width=config.weight_width,
                        acc_width=config.acc_width, outputs=config.outputs)
    if isinstance(config, DenseMACConfig):
        return DenseMAC(m=config.m, fmt=config.fmt, weight_width=config.weight_width,
                        acc_width=config.acc_width, outputs=config.outputs)
    raise TypeError(f"not a design point: {config!r}")


def verilog_text(config, name: str | None = None) -> str:
    """Verilog of a design point (top module ``name``, default ``config.name``)."""
    toolchain.setup(verilator=False)  # builtin Yosys: identical output everywhere
    return verilog.convert(build(config), name=name or config.name, emit_src=False)


def sidecar_text(config, name: str | None = None) -> str:
    """Sidecar JSON text: sorted keys, two-space indent, trailing newline."""
    doc = config.sidecar()
    if name:
        doc["module"] = name
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def core_text(config, name: str | None = None) -> str:
    """FuseSoC CAPI2 core file: the Verilog as one fileset, a default and a lint target."""
    name = name or config.name
    return (
        "CAPI=2:\n"
        f"name: nmsparse:nmsparse:{name}:{VERSION}\n"
        f'description: "nmsparse {config.unit} unit, latency {config.latency} clock cycles; '
        f'ports and payload fields in {name}.json"\n'
        "\n"
        "filesets:\n"
        "  rtl:\n"
        "    files:\n"
        f"      - {name}.v\n"
        "    file_type: verilogSource\n"
        "\n"
        "targets:\n"
        "  default: &default\n"
        "    filesets:\n"
        "      - rtl\n"
        f"    toplevel: {name}\n"
        "  lint:\n"
        "    <<: *default\n"
        "    default_tool: verilator\n"
        "    tools:\n"
        "      verilator:\n"
        "        mode: lint-only\n"
        "        verilator_options:\n"
        + "".join(f"          - {flag}\n" for flag in VERILATOR_LINT_FLAGS)
    )


def emit(config, directory: str | Path, *, name: str | None = None) -> list[Path]:
    """Write ``<name>.v``, ``<name>.json`` and ``<name>.core`` into ``directory``.

    Returns the three paths. ``name`` overrides the module name (default ``config.name``).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    name = name or config.name
    files = {
        out / f"{name}.v": verilog_text(config, name),
        out / f"{name}.json": sidecar_text(config, name),
        out / f"{name}.core": core_text(config, name),
    }
    for path, text in files.items():
        with open(path, "w", newline="\n") as f:
            f.write(text)
    return list(files)


def manifest_text(configs: Iterable) -> str:
    """``manifest.json`` text: ``{"modules": [...]}`` in the given order."""
    return json.dumps({"modules": [c.name for c in configs]}, indent=2) + "\n"


def emit_shipped(directory: str | Path) -> list[Path]:
    """Emit every shipped design point and ``manifest.json`` into ``directory``."""
    paths: list[Path] = []
    for config in SHIPPED:
        paths += emit(config, directory)
    manifest = Path(directory) / "manifest.json"
    with open(manifest, "w", newline="\n") as f:
        f.write(manifest_text(SHIPPED))
    return paths + [manifest]

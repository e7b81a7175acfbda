"""Emission: Verilog, sidecar JSON and FuseSoC core file for each design point.

``emit(config, directory)`` writes ``<module>.v``, ``<module>.json`` (DESIGN.md section 3)
and ``<module>.core`` (FuseSoC CAPI2). The Verilog comes from Amaranth's builtin Yosys with
``emit_src=False`` and the JSON has sorted keys, so every file is byte-identical on every run
and machine. ``emit_shipped(directory)`` writes all points of :data:`gen.config.SHIPPED` and
``manifest.json``.
"""

from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog

from nmsparse.contract import VERSION, toolchain
from nmsparse.contract.patterns import pattern_label
from nmsparse.contract.sidecar import manifest_text

from .config import (
    SHIPPED,
    DenseMACConfig,
    FlexLinearConfig,
    FlexSparseMACConfig,
    FlexTopKConfig,
    LinearConfig,
    SparseMACConfig,
    TopKConfig,
)

#: Generic Verilog of the primitive modules the units instantiate (gen/prims/), and the ECP5
#: forms that a flow reads in their place (gen/prims/ecp5/).
PRIMS = Path(__file__).parent / "prims"

__all__ = [
    "PRIMS",
    "convert",
    "with_primitives",
    "VERILATOR_LINT_FLAGS",
    "build",
    "verilog_text",
    "sidecar_text",
    "core_text",
    "emit",
    "emit_shipped",
    "emit_points",
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
    from .flex import NMTopKFlex
    from .flexmac import NMLinearFlex, NMSparseMACFlex
    from .linear import NMLinear
    from .mac import DenseMAC, NMSparseMAC
    from .topk import NMTopK

    units = {TopKConfig: NMTopK, SparseMACConfig: NMSparseMAC, LinearConfig: NMLinear,
             DenseMACConfig: DenseMAC, FlexTopKConfig: NMTopKFlex,
             FlexSparseMACConfig: NMSparseMACFlex, FlexLinearConfig: NMLinearFlex}
    if type(config) not in units:
        raise TypeError(f"not a design point: {config!r}")
    return units[type(config)](config)


def with_primitives(text: str) -> str:
    """``text`` with the generic Verilog of every primitive module it instantiates appended
    (:data:`nmsparse.contract.units.PRIMITIVES`, include-guarded), so that each emitted file
    stands alone."""
    from nmsparse.contract.units import primitives_used

    for name in primitives_used(text):
        text += "\n" + (PRIMS / f"{name}.v").read_text()
    return text


def convert(unit, name: str) -> str:
    """Verilog of an elaborated unit, with primitive instances (:class:`gen.mac.EmitPlatform`)
    and their generic modules."""
    from .mac import EmitPlatform

    toolchain.setup(verilator=False)  # builtin Yosys: identical output everywhere
    return with_primitives(verilog.convert(unit, name=name, platform=EmitPlatform(),
                                           emit_src=False))


def verilog_text(config, name: str | None = None) -> str:
    """Verilog of a design point (top module ``name``, default ``config.name``)."""
    return convert(build(config), name or config.name)


def sidecar_text(config, name: str | None = None) -> str:
    """Sidecar JSON text: sorted keys, two-space indent, trailing newline."""
    return config.sidecar(name).to_json()


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


def readme_text(configs) -> str:
    """``README.md`` of a directory of emitted points: what each module is, and that the
    files are generated."""
    lines = [
        "# hdl/: generated Verilog, do not edit",
        "",
        "Every file here is written by `make hdl` (`nmsparse generate --shipped -o hdl`), byte",
        "for byte the same on every machine; edit the generators in `gen/` instead and",
        "regenerate. Each module has its Verilog (`.v`), its sidecar (`.json`: parameters,",
        "latency, every port with its payload fields' bit offsets; DESIGN.md section 3) and a",
        "FuseSoC core (`.core`). `manifest.json` lists the modules in order.",
        "",
        "| module | unit | pattern | format | architecture | register stages | latency |",
        "|---|---|---|---|---|--:|--:|",
    ]
    for c in configs:
        p = c.params()
        pattern = (f"runtime, M <= {p['w']}" if "w" in p
                   else pattern_label(p.get("n"), p["m"]))
        lines.append(f"| `{c.name}` | {c.unit} | {pattern} | {p['fmt']} | "
                     f"{p.get('arch', '-')} | {p['pipeline']} | {c.latency} |")
    return "\n".join(lines) + "\n"


def emit_shipped(directory: str | Path) -> list[Path]:
    """Emit every shipped design point, ``manifest.json`` and ``README.md`` into
    ``directory``."""
    return emit_points(SHIPPED, directory)


def emit_points(configs, directory: str | Path) -> list[Path]:
    """Emit ``configs``, their ``manifest.json`` and ``README.md`` into ``directory``."""
    paths: list[Path] = []
    for config in configs:
        paths += emit(config, directory)
    extra = {Path(directory) / "manifest.json": manifest_text([c.name for c in configs]),
             Path(directory) / "README.md": readme_text(configs)}
    for path, text in extra.items():
        with open(path, "w", newline="\n") as f:
            f.write(text)
    return paths + list(extra)

"""``nmsparse sidecar``: draft, check and publish sidecar JSON for your own Verilog.

::

    nmsparse sidecar init TOP.sv --unit topk --pattern 4:8 --fmt int8 \\
        [--source rtl/sort.v] [-I include] [-D NM_INT_KEY=1] [--arch oets] [--latency 2]
    nmsparse sidecar check mydir/*.json       # validate (exit 2 on the first bad one)
    nmsparse sidecar schema                   # print the JSON Schema

``init`` reads the module's ports with Verilator (``verilator --json-only``: the same
preprocessor and SystemVerilog front end as the simulation; see :mod:`verif.hdl`), fills in
the parameters from the pattern and format, lays the payload fields out as DESIGN.md section
3 does (:func:`nmsparse.contract.sidecar.default_ports`) and writes ``<module>.json`` beside
the top file. It says what it could not infer: the latency (a property of the design's
pipeline, not of its ports), an architecture label, and any payload whose Verilog width
disagrees with the layout. A draft with an unknown latency does not load until it is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["add_arguments", "run", "draft"]


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """``--source``, ``-I`` and ``-D``, shared with ``nmsparse verify``."""
    p.add_argument("--source", action="append", default=[], metavar="FILE",
                   help="another Verilog/SystemVerilog file of the design (repeatable)")
    p.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                   help="an include directory (repeatable)")
    p.add_argument("-D", dest="define", action="append", default=[], metavar="NAME[=VALUE]",
                   help="a preprocessor define (repeatable)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sidecar_command", metavar="ACTION")
    init = sub.add_parser("init", help="draft a sidecar from a Verilog top's ports",
                          description="Draft <module>.json from the ports of TOP (read by "
                                      "Verilator); prints what it could not infer.")
    init.add_argument("top", metavar="TOP", help="the top Verilog/SystemVerilog file")
    init.add_argument("--unit", required=True,
                      help="topk, spmac, linear or dense_mac (DESIGN.md section 3)")
    init.add_argument("--pattern", required=True,
                      help="N:M (e.g. 4:8); for dense_mac dense:M or M")
    init.add_argument("--fmt", required=True, help="element format: int4, int8, int16, fp16, "
                                                   "bf16, fp32")
    init.add_argument("--module", help="the top module (default: the file's stem)")
    init.add_argument("--arch", help="architecture label (crosscheck --arch selects by it)")
    init.add_argument("--latency", type=int, help="cycles from an input transfer to its "
                                                  "output transfer (default: left for you)")
    init.add_argument("--outputs", type=int, help="K accumulators (MAC units; default: from "
                                                  "the o__payload width)")
    init.add_argument("--weight-width", type=int, default=8, help="MAC units (default 8)")
    init.add_argument("--acc-width", type=int, default=32, help="MAC units (default 32)")
    add_source_arguments(init)
    init.add_argument("-o", "--output", help="where to write (default: <module>.json beside "
                                             "TOP)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    check = sub.add_parser("check", help="validate sidecars against the schema",
                           description="Validate sidecar JSON files (and that their files "
                                       "exist); exit 2 on the first that does not.")
    check.add_argument("files", nargs="+", metavar="FILE")
    sub.add_parser("schema", help="print the sidecar JSON Schema",
                   description="Print the JSON Schema of the sidecar (the file "
                               "nmsparse/contract/sidecar.schema.json).")


def _pattern(unit: str, text: str) -> tuple[int | None, int]:
    from nmsparse.contract.patterns import parse_pattern
    from nmsparse.contract.units import UNITS

    if UNITS[unit].sparse:
        return parse_pattern(text)
    m_text = text.removeprefix("dense:")
    if not m_text.isdigit() or int(m_text) < 2:
        raise ValueError(f"--pattern for a {unit} unit is dense:M or M (M >= 2), not {text!r}")
    return None, int(m_text)


def draft(top: Path, *, unit: str, pattern: str, fmt: str, module: str | None = None,
          arch: str | None = None, latency: int | None = None, outputs: int | None = None,
          weight_width: int = 8, acc_width: int = 32, sources: list[Path] | None = None,
          include_dirs: list[Path] | None = None, defines: list[str] | None = None,
          out: Path | None = None) -> tuple[dict, list[str], list[str]]:
    """The draft document for ``top``, the things inferred and the things left to the user.

    Paths in the ``sources`` block are written relative to ``out``'s directory.

    Raises
    ------
    ValueError
        A bad unit, pattern or format, or a Verilog that lacks a stream port.
    verif.errors.BuildError
        Verilator cannot read the design.
    """
    from nmsparse.contract.formats import get_format
    from nmsparse.contract.sidecar import STREAM_PORTS, Port, default_ports
    from nmsparse.contract.units import unit as get_unit
    from nmsparse.contract.version import VERSION

    from .hdl import read_ports
    from .sources import BuildSources, parse_define

    spec = get_unit(unit)
    f = get_format(fmt)
    n, m = _pattern(unit, pattern)
    top = top.resolve()
    if not top.is_file():
        raise FileNotFoundError(f"top file {top} does not exist")
    name = module or top.stem
    files = [top, *[p.resolve() for p in sources or []]]
    dirs = [p.resolve() for p in include_dirs or []]
    defs = [parse_define(d) for d in defines or []]
    src = BuildSources(top=name, files=tuple(files), include_dirs=tuple(dirs),
                       defines=tuple(defs))
    src.check()
    with tempfile.TemporaryDirectory(prefix="nmsparse-ports-") as tmp:
        ports = read_ports(src, Path(tmp))
    missing = [p for p in STREAM_PORTS if p not in ports]
    if missing:
        raise ValueError(
            f"{top.name}: module {name} has no port(s) {', '.join(missing)}; DESIGN.md "
            f"streams need {', '.join(STREAM_PORTS)} (wrap the design in a module with "
            f"these ports); it has: {', '.join(ports) or 'none'}")
    inferred = [f"module {name}", "port directions and widths (read by Verilator)"]
    todo: list[str] = []
    params: dict = {"m": m, "fmt": f.name, "width": f.width}
    if n is not None:
        params["n"] = n
    if "index_width" in spec.params:
        params["index_width"] = max(1, (m - 1).bit_length())
    lanes = 1
    in_w = ports["i__payload"].width
    if unit == "topk" and in_w and in_w % (m * f.width) == 0 and in_w // (m * f.width) > 1:
        lanes = in_w // (m * f.width)
        inferred.append(f"lanes = {lanes} (i__payload is {in_w} bits = {lanes} x {m} x "
                        f"{f.width})")
    if "lanes" in spec.params or unit == "topk":
        params["lanes"] = lanes
    if unit != "topk":
        params.update(weight_width=weight_width, acc_width=acc_width)
        out_w = ports["o__payload"].width
        if outputs is None:
            if not out_w or out_w % acc_width:
                raise ValueError(f"o__payload is {out_w} bits, not a multiple of acc_width "
                                 f"{acc_width}: pass --outputs K and --acc-width")
            outputs = out_w // acc_width
            inferred.append(f"outputs K = {outputs} (o__payload {out_w} bits / acc_width "
                            f"{acc_width})")
        params["outputs"] = outputs
        todo.append(f"weight_width {weight_width} and acc_width {acc_width} are the defaults "
                    "unless you passed them: check them")
    if arch:
        params["arch"] = arch
    elif unit == "topk":
        todo.append("arch: no label given; add \"arch\": \"<name>\" to params if you want "
                    "`nmsparse crosscheck --arch <name>` to select this module")
    layout = default_ports(unit, params)
    inferred.append(f"payload fields: the DESIGN.md layout of a {unit} "
                    f"{'dense:' + str(m) if n is None else f'{n}:{m}'} {f.name} unit")
    doc_ports: dict = {}
    for pname, hp in ports.items():
        if pname in layout:
            lp = layout[pname]
            width = hp.width if hp.width is not None else lp.width
            if hp.width is None:
                todo.append(f"{pname}: Verilator's type could not be sized; the width "
                            f"{lp.width} of the layout was written")
            elif hp.width != lp.width:
                todo.append(f"{pname} is {hp.width} bits in the Verilog but the DESIGN.md "
                            f"layout needs {lp.width}: edit its fields (offset, elem_width, "
                            "count) to match your packing")
            doc_ports[pname] = Port(pname, lp.dir, width, lp.fields).to_dict()
            if hp.dir != lp.dir:
                raise ValueError(f"{top.name}: {pname} is an {hp.dir}put in the Verilog; "
                                 f"DESIGN.md streams need an {lp.dir}put")
        else:
            if hp.dir == "inout":
                raise ValueError(f"{top.name}: port {pname} is an inout; the testbench drives "
                                 "only inputs and reads outputs")
            doc_ports[pname] = {"dir": hp.dir, "width": hp.width or 1}
            todo.append(f"port {pname} is not a DESIGN.md stream port: the testbench holds "
                        "it at 0" if hp.dir == "in" else
                        f"port {pname} is not a DESIGN.md stream port: the testbench ignores "
                        "it")
    if latency is None:
        todo.insert(0, "latency: a property of the pipeline, not of the ports; set \"latency\" "
                       "to the cycles from an input transfer to its output transfer with "
                       "o__ready high (if unsure, set 0 and run `nmsparse verify`: it prints "
                       "the measured latency)")
    out_dir = (out or top.with_name(f"{name}.json")).resolve().parent
    doc: dict = {
        "generator": {"name": "nmsparse sidecar init (draft)", "version": VERSION},
        "module": name, "unit": unit, "params": params, "latency": latency,
        "ports": doc_ports,
    }
    rel = [os.path.relpath(p, out_dir) for p in files]
    block: dict = {}
    if len(files) > 1 or top.parent != out_dir or top.stem != (out.stem if out else name):
        block["files"] = rel
    if dirs:
        block["include_dirs"] = [os.path.relpath(d, out_dir) for d in dirs]
    if defs:
        block["defines"] = {k: (None if v is None else int(v) if v.lstrip("-").isdigit()
                                else v) for k, v in defs}
    if block:
        doc["sources"] = block
        inferred.append("sources: " + ", ".join(k for k in block))
    return doc, inferred, todo


def _init(args: argparse.Namespace) -> int:
    from nmsparse.contract.sidecar import SidecarError, parse_sidecar

    top = Path(args.top)
    name = args.module or top.stem
    out = Path(args.output) if args.output else top.with_name(f"{name}.json")
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    doc, inferred, todo = draft(
        top, unit=args.unit, pattern=args.pattern, fmt=args.fmt, module=args.module,
        arch=args.arch, latency=args.latency, outputs=args.outputs,
        weight_width=args.weight_width, acc_width=args.acc_width,
        sources=[Path(p) for p in args.source], include_dirs=[Path(p) for p in args.include],
        defines=args.define, out=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out} (a draft: check it against your design)")
    print("inferred: " + "; ".join(inferred))
    if todo:
        print("could not infer (complete these):")
        for t in todo:
            print(f"  - {t}")
    try:
        parse_sidecar(json.loads(out.read_text()), str(out), out.resolve())
    except SidecarError as exc:
        print(f"the draft does not load yet: {exc}")
        return 0
    print(f"next: nmsparse verify --sidecar {out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from nmsparse.contract.sidecar import load_sidecar

    for f in args.files:
        sc = load_sidecar(Path(f))
        files = ", ".join(p.name for p in sc.hdl_files)
        print(f"{f}: ok: {sc.describe()}; files {files}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.sidecar_command == "init":
        try:
            return _init(args)
        except FileExistsError as exc:
            print(f"nmsparse: error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            from .errors import SimError

            if isinstance(exc, SimError):
                print(f"nmsparse: error: {exc.one_line()}", file=sys.stderr)
                return 2
            raise
    if args.sidecar_command == "check":
        return _check(args)
    if args.sidecar_command == "schema":
        from nmsparse.contract.sidecar import schema_text

        sys.stdout.write(schema_text())
        return 0
    raise ValueError("nmsparse sidecar needs an action: init, check or schema "
                     "(nmsparse sidecar --help)")

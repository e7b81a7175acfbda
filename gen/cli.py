"""``nmsparse generate``: emit Verilog, sidecar JSON and a FuseSoC core for design points.

Examples::

    nmsparse generate --pattern 8:16 --fmt int8 --unit topk --arch rank -o build/
    nmsparse generate --pattern 16:32 --unit linear --outputs 8 --pipeline 4 -o build/
    nmsparse generate --pattern 8:16 --unit linear -k 16 --arch rank --target-mhz 90 \
        -o build/               # selector and MAC registers placed for 90 MHz
    nmsparse generate --pattern 8:16 --unit linear -k 16 --weights memory -o build/
    nmsparse generate --shipped -o hdl          # every shipped point + manifest.json
    nmsparse generate --pattern 2:4 --unit spmac --axis -o build/axis   # AXI4-Stream wrapper
    nmsparse generate --unit topk_flex --w 32 --fmt int8 -o build/   # pattern at run time
"""

from __future__ import annotations

import argparse

from nmsparse.contract.patterns import parse_pattern
from nmsparse.contract.units import SHIFT_INPUT

from .config import (
    ARCHS,
    BANK_LAYOUTS,
    FLEX_ARCHS,
    SHIPPED,
    SWEEP,
    TOPK_FORMATS,
    DenseMACConfig,
    FlexLinearConfig,
    FlexSparseMACConfig,
    FlexTopKConfig,
    LinearConfig,
    SparseMACConfig,
    TopKConfig,
)

UNITS = ("topk", "spmac", "linear", "dense_mac", "topk_flex", "spmac_flex", "linear_flex")
FLEX_UNITS = ("topk_flex", "spmac_flex", "linear_flex")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pattern", default="8:16", help="N:M pattern (default 8:16); "
                        "for dense_mac only M is used")
    parser.add_argument("--fmt", default="int8", choices=TOPK_FORMATS,
                        help="element format (MAC units: integers only; default int8)")
    parser.add_argument("--unit", default="topk", choices=UNITS, help="unit (default topk)")
    parser.add_argument("--arch", default=None, choices=sorted(set(ARCHS) | set(FLEX_ARCHS)),
                        help="top-k architecture (topk, linear: default network; flexible "
                             "units: default rank)")
    parser.add_argument("--w", type=int, default=32,
                        help="lanes per transfer of the flexible units (*_flex; default 32); "
                             "the pattern then comes with each transfer, --pattern is unused")
    parser.add_argument("--max-kept", type=int, default=None,
                        help="output slots of the flexible units (default W/2)")
    parser.add_argument("--pipeline", type=_pipeline, default=None,
                        help="selector register stages (latency), or 'auto' (as many as "
                             "--target-mhz needs, where the live data is narrowest); default: "
                             "the design point's")
    parser.add_argument("--target-mhz", type=float, default=None,
                        help="clock target of --pipeline auto (implies it; default 200) and, "
                             "for the MAC units, of their automatic MAC schedule")
    parser.add_argument("--lanes", type=int, default=1, help="groups per clock (topk only)")
    parser.add_argument("--outputs", "-k", type=int, default=4,
                        help="K outputs of the MAC units (default 4)")
    parser.add_argument("--weight-width", type=int, default=8, help="weight bits (default 8)")
    parser.add_argument("--acc-width", type=int, default=32,
                        help="accumulator bits (default 32)")
    parser.add_argument("--mac-pipeline", default=None, metavar="SPEC",
                        help="MAC units: register stages per part, e.g. "
                             "'wmux=1,pre=2,mul=1,tree=3' (wmux: inside the weight "
                             "multiplexers of a sparse unit; with pre and mul >= 1 the "
                             "operands and products sit in the DSP's registers), or 'auto' with "
                             "--target-mhz; default 'mul=1', or auto when --target-mhz is given")
    parser.add_argument("--weights", default="stream", choices=("stream", "memory"),
                        help="linear, dense_mac: K x M weights with every group (stream), or "
                             "held in M banks loaded through the input stream and read by the "
                             "kept indices (memory; DESIGN.md 3.1). Default stream")
    parser.add_argument("--depth", type=int, default=None,
                        help="--weights memory: words per bank = groups per row "
                             "(default 1024 / M)")
    parser.add_argument("--banks", default=None, choices=BANK_LAYOUTS,
                        help="--unit linear --weights memory: one bank per group position "
                             "and a weight multiplexer after them (position, the default; one "
                             "copy of the weights), or one bank per kept slot read at its "
                             "index (lane, module ..._wlane: N(M-N+1)/M copies, no "
                             "multiplexer; DESIGN.md 3.1)")
    parser.add_argument("--skid", action="store_true",
                        help="spmac, linear, dense_mac: a one-entry skid buffer at the output "
                             "(module ..._skid): every stall enable is a flip-flop and "
                             "i.ready depends on registers only, for arrays whose clock "
                             "enables cross the device (DESIGN.md section 3)")
    parser.add_argument("--shift", type=_shift, default=None, metavar="ETA",
                        help="linear, integer formats: S-PTS shift d = sat(x - eta) before "
                             "the selector. A constant (weights in the stream): one integer "
                             "per layer or M comma-separated integers (one per group "
                             "position), the bias W eta added per group. 'input': eta per "
                             "channel in the input field eta, the row's bias W eta in the "
                             "field bias with its last transfer; either weight source "
                             "(DESIGN.md section 2)")
    parser.add_argument("--name", default=None, help="module name (default from the point)")
    parser.add_argument("--shipped", action="store_true",
                        help="emit every shipped design point and manifest.json")
    parser.add_argument("--axis", action="store_true",
                        help="emit the unit inside an AXI4-Stream wrapper (axis_<module>.v and "
                             "its own sidecar axis_<module>.json; keep it in its own directory)")
    parser.add_argument("--sv-package", action="store_true",
                        help="also write <module>_pkg.sv: the sidecar's widths, offsets and "
                             "latency as SystemVerilog localparams")
    parser.add_argument("--engine-sweep", action="store_true",
                        help="emit the engine sweep (linear vs dense_mac, K = 4, 16, 32) and "
                             "its manifest.json (make engine-sweep: into hdl/engine_sweep)")
    parser.add_argument("-o", "--output", default=".", help="output directory (default .)")


def _pipeline(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--pipeline must be a number of stages or 'auto', "
                                         f"not {text!r}") from None


def _shift(text: str) -> int | tuple[int, ...] | str:
    if text == SHIFT_INPUT:
        return text
    try:
        vals = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shift must be an integer, comma-separated "
                                         f"integers or {SHIFT_INPUT!r}, not {text!r}") from None
    return vals[0] if len(vals) == 1 else vals


def config_from_args(args: argparse.Namespace):
    """The design point the command line describes (validated)."""
    n, m = parse_pattern(args.pattern)
    mac = dict(fmt=args.fmt, weight_width=args.weight_width, acc_width=args.acc_width,
               outputs=args.outputs, mac_pipeline=args.mac_pipeline, target_mhz=args.target_mhz)
    shift = getattr(args, "shift", None)
    if shift is not None and args.unit != "linear":
        raise ValueError(f"--shift applies to --unit linear only, not {args.unit!r}")
    if getattr(args, "banks", None) is not None and args.unit != "linear":
        raise ValueError(f"--banks applies to --unit linear with --weights memory, not "
                         f"{args.unit!r}")
    skid = getattr(args, "skid", False)
    if skid and args.unit not in ("spmac", "linear", "dense_mac"):
        raise ValueError(f"--skid applies to the MAC units (spmac, linear, dense_mac), not "
                         f"{args.unit!r}")
    if args.unit != "topk" and args.lanes != 1:
        raise ValueError(f"--lanes applies to --unit topk only, not {args.unit!r}")
    if args.unit in FLEX_UNITS:
        flex = dict(w=args.w, fmt=args.fmt, max_kept=args.max_kept)
        sel = dict(arch=args.arch or "rank", pipeline=args.pipeline,
                   target_mhz=args.target_mhz)
        if args.weights != "stream" or args.depth is not None or args.mac_pipeline is not None:
            raise ValueError(f"--weights, --depth and --mac-pipeline do not apply to the "
                             f"flexible units, not to {args.unit!r}")
        if args.unit == "topk_flex":
            return FlexTopKConfig(**sel, **flex)
        fmac = dict(weight_width=args.weight_width, acc_width=args.acc_width,
                    outputs=args.outputs)
        if args.unit == "spmac_flex":
            if args.target_mhz is not None or args.pipeline is not None:
                raise ValueError("--pipeline/--target-mhz do not apply to --unit spmac_flex "
                                 "(two fixed stages)")
            return FlexSparseMACConfig(**flex, **fmac)
        return FlexLinearConfig(**sel, **flex, **fmac)
    if args.max_kept is not None:
        raise ValueError(f"--max-kept applies to the flexible units ({', '.join(FLEX_UNITS)}), "
                         f"not {args.unit!r}")
    arch = args.arch or "network"
    if args.unit in ("topk", "spmac") and (args.weights != "stream" or args.depth is not None):
        raise ValueError(f"--weights memory and --depth apply to --unit linear and dense_mac, "
                         f"not {args.unit!r}")
    if args.unit == "topk":
        if args.mac_pipeline is not None:
            raise ValueError("--mac-pipeline applies to the MAC units (spmac, linear, "
                             "dense_mac), not 'topk'")
        return TopKConfig(n=n, m=m, fmt=args.fmt, arch=arch, pipeline=args.pipeline,
                          lanes=args.lanes, target_mhz=args.target_mhz)
    mac["skid"] = skid
    if args.unit == "spmac":
        return SparseMACConfig(n=n, m=m, **mac)
    mem = dict(weights=args.weights, depth=args.depth)
    banks = getattr(args, "banks", None)
    if args.unit == "linear":
        return LinearConfig(n=n, m=m, arch=arch, pipeline=args.pipeline, shift=shift, **mac,
                            **mem, banks=banks)
    return DenseMACConfig(m=m, **mac, **mem)


def _describe(config) -> str:
    extra = ""
    if isinstance(config, TopKConfig | LinearConfig):
        sel = config if isinstance(config, TopKConfig) else config.selector
        extra = f", {sel.comparators} comparators, depth {sel.network_depth}"
    if isinstance(config, FlexTopKConfig | FlexLinearConfig | FlexSparseMACConfig):
        extra = f", W = {config.w} lanes, {config.max_kept} slots, pattern per transfer"
    elif not isinstance(config, TopKConfig):
        extra += f", MAC stages {config.mac_pipeline}"
    return f"{config.name}: latency {config.latency}{extra}"


def run(args: argparse.Namespace) -> int:
    from .emit import emit, emit_points

    if args.shipped or args.engine_sweep:
        if args.shipped and args.engine_sweep:
            raise ValueError("--shipped and --engine-sweep write different directories: "
                             "give one")
        if getattr(args, "axis", False):
            raise ValueError("--axis applies to one design point, not to --shipped or "
                             "--engine-sweep")
        configs = SHIPPED if args.shipped else SWEEP
        paths = emit_points(configs, args.output)
        for config in configs:
            print(_describe(config))
        print(f"wrote {len(paths)} files to {args.output}")
        return 0
    config = config_from_args(args)
    if args.axis:
        from .axis import emit_axis

        for path in emit_axis(config, args.output, name=args.name):
            print(path)
        print(_describe(config) + " (AXI4-Stream wrapper)")
        return 0
    for path in emit(config, args.output, name=args.name):
        print(path)
    if getattr(args, "sv_package", False):
        from .svpkg import emit_sv_package

        print(emit_sv_package(config, args.output, name=args.name))
    print(_describe(config))
    return 0

"""``nmsparse crosscheck``: stream your activations through the RTL and compare with golden masks.

Every top-k selector of the requested pattern and format in the HDL directory (all
architectures and lane counts unless ``--arch`` picks one), and every runtime-flexible
selector that serves the pattern (DESIGN.md section 5; driven with that pattern on every
transfer of W lanes), is built with Verilator and driven by the cocotb testbench; each
group's ``mask``, ``values`` and ``index`` must equal the golden model's bit for bit. Prints
groups checked, mismatches (0 is the only pass) and groups per second; ``--json FILE`` keeps
one record per module. Exit code: 0 pass, 1 any mismatch or
protocol error, 2 bad input.

Example::

    nmsparse crosscheck --pattern 8:16 --fmt bf16 --activations acts.pt \\
        --json reports/crosscheck.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from nmsparse.contract.seeds import DEFAULT_SEED

__all__ = ["add_arguments", "run", "select_modules", "write_records"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pattern", required=True, help="N:M pattern, e.g. 8:16")
    parser.add_argument("--fmt", required=True,
                        help="element format of the selector: int4, int8, int16, fp16, bf16, fp32")
    parser.add_argument("--activations", required=True, metavar="FILE",
                        help="activations [..., K] as .pt (tensor or dict of tensors), .npy or "
                             ".safetensors; 'default' = the embedded SmolLM2-135M-Instruct "
                             "Linear-layer inputs. Floats are cast to a float format or "
                             "quantized per token for an integer format")
    parser.add_argument("--arch", help="only the selectors of this architecture (e.g. network)")
    parser.add_argument("--hdl-dir", help="directory of Verilog + sidecar JSON to verify "
                                          "(default: $NMSPARSE_HDL_DIR or the shipped hdl/)")
    parser.add_argument("--limit", type=int, metavar="G", help="check at most G groups")
    parser.add_argument("--json", metavar="FILE",
                        help="write/update a JSON list of records (one per module checked)")
    parser.add_argument("--seed", type=int, default=None,
                        help="simulator seed (default $NMSPARSE_SEED, else "
                             f"{DEFAULT_SEED})")
    parser.add_argument("--build-dir", help="where to build (default sim_build/)")


def _serves(sc, n: int, m: int) -> bool:
    """A flexible selector that serves ``n:m`` (M a power of two up to its W lanes)."""
    from nmsparse.contract import flex

    return m & (m - 1) == 0 and flex.serves(n, m.bit_length() - 1, sc.w, sc.max_kept)


def select_modules(hdl_dir: Path, n: int, m: int, fmt: str, arch: str | None):
    """Top-k selectors of ``hdl_dir`` for ``n:m`` and ``fmt`` (and ``arch`` if given), and the
    flexible selectors of ``fmt`` that serve ``n:m``."""
    from nmsparse.contract.sidecar import list_modules

    mods = list_modules(hdl_dir)
    chosen = [sc for sc in mods if sc.unit == "topk" and sc.n == n and sc.m == m
              and sc.fmt == fmt and (arch is None or sc.arch == arch)]
    chosen += [sc for sc in mods if sc.unit == "topk_flex" and sc.fmt == fmt
               and (arch is None or sc.arch == arch) and _serves(sc, n, m)]
    if not chosen:
        have = sorted({f"{sc.pattern} {sc.fmt} {sc.arch}" for sc in mods if sc.unit == "topk"})
        what = f"{n}:{m} {fmt}" + (f" arch {arch}" if arch else "")
        raise FileNotFoundError(
            f"no top-k selector for {what} in {hdl_dir}"
            + (f"; it has: {', '.join(have)}" if have else " (no top-k selectors at all)"))
    return chosen


def write_records(path: str | Path, records: list[dict]) -> None:
    """Merge ``records`` into the JSON list at ``path`` (same module and source replaced)."""
    p = Path(path)
    old: list = []
    if p.is_file():
        try:
            old = json.loads(p.read_text())
        except (OSError, ValueError):
            old = []
        if not isinstance(old, list):
            old = []
    keys = {(r["module"], r.get("source")) for r in records}
    merged = [r for r in old if not (isinstance(r, dict)
                                     and (r.get("module"), r.get("source")) in keys)]
    merged += records
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, p)


def run(args: argparse.Namespace) -> int:
    from nmsparse.contract import seeds, toolchain
    from nmsparse.contract.formats import get_format
    from nmsparse.contract.patterns import parse_pattern
    from nmsparse.contract.vectors import Scenario

    from . import runner, vectors

    n, m = parse_pattern(args.pattern)
    fmt = get_format(args.fmt).name
    if args.limit is not None and args.limit <= 0:
        raise ValueError(f"--limit must be a positive number of groups, not {args.limit}")
    seed = seeds.seed(args.seed)
    hdl = runner.hdl_dir(args.hdl_dir)
    if not hdl.is_dir():
        raise FileNotFoundError(f"HDL directory {hdl} does not exist")
    acts = vectors.load_activations(args.activations)
    bits, labels = vectors.activation_groups(acts, m, fmt, limit=args.limit)
    mods = select_modules(hdl, n, m, fmt, args.arch)
    flex_bits: dict[int, tuple] = {}
    source = "default" if args.activations == "default" else str(Path(args.activations))
    print(f"crosscheck: {bits.shape[0]} groups of {m} from {source} ({len(labels)} tensor(s)), "
          f"{len(mods)} module(s) in {hdl}, seed {seed}")
    records, failed = [], False
    for sc in mods:
        t0 = time.perf_counter()
        if sc.flexible:  # the same pattern on every transfer of W lanes
            from . import flexvec

            if sc.w not in flex_bits:
                limit = None if args.limit is None else -(-args.limit * m // sc.w)
                flex_bits[sc.w] = vectors.activation_groups(acts, sc.w, fmt, limit=limit)
            fb, flabels = flex_bits[sc.w]
            t = fb.shape[0]
            phase = flexvec.flex_topk_phase(sc, fb, [m.bit_length() - 1] * t, [n] * t)
            scen = [Scenario("crosscheck", [phase], check_latency=True, segments=flabels)]
        else:
            phase = vectors.topk_phase(sc, bits)
            scen = [Scenario("crosscheck", [phase], check_latency=True, segments=labels)]
        try:
            res = runner.run_vectors(sc, scen, seed=seed, build_root=args.build_dir,
                                     tag="crosscheck")
        except (runner.SimError, toolchain.ToolchainError) as exc:
            print(f"nmsparse: error: {exc}", file=sys.stderr)
            return 2
        rec = res.scenarios[0]
        bad = not rec.ok or not res.passed
        failed |= bool(bad)
        print(f"{sc.module}: {rec.groups} groups checked, {rec.mismatches} mismatches, "
              f"{rec.groups_per_second:.0f} groups/s (latency {sc.latency}, "
              f"{time.perf_counter() - t0:.1f} s with build) {'FAIL' if bad else 'PASS'}")
        if bad:
            print(res.failure_text(), file=sys.stderr)
        records.append({
            "module": sc.module, "pattern": f"{n}:{m}", "fmt": fmt, "arch": sc.arch,
            "lanes": sc.lanes, "flexible": sc.flexible, "groups": rec.groups,
            "mismatches": rec.mismatches,
            "errors": rec.errors, "groups_per_second": round(rec.groups_per_second, 1),
            "seed": seed, "source": source, "hdl_dir": str(hdl),
        })
    if args.json:
        write_records(args.json, records)
    return 1 if failed else 0

"""``nmsparse prove``: formal proofs of the emitted modules, from Verilog and sidecars only.

Per module (every one in ``manifest.json`` of the HDL directory, or those matching
``--module``):

- selectors (fixed and runtime-flexible N:M): the reference key against ``Format.key``
  (once per format); delay lines in distributed RAM proven equal to register chains
  (:mod:`verif.formal.delaylines`); datapath equivalence with the rule, directly (fixed N:M,
  SAT, M <= 8 with ``--full``, M = 4 quick) and compositionally (every M, when the
  architecture has a decomposition);
- every module: the stream contract (k-induction, unbounded).

``--quick`` (default) proves a small subset (the 2:4 / 4-element modules), the part
``make test`` runs; ``--full`` every module. ``--mutants`` runs the mutation campaign on the
selected selectors instead. Exit code: 0 all proven (or every mutant caught), 1 a proof
failed (or a mutant survived), 2 bad input.

Example::

    nmsparse prove --full --json reports/proofs.json
    nmsparse prove --module 'nm_topk_8_16_*' --full
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["add_arguments", "run", "prove_module", "select", "QUICK"]

#: The quick subset: one module of every unit and both architectures, at 2:4.
QUICK = ("nm_topk_2_4_int8_rank", "nm_topk_2_4_int8_network", "nm_spmac_2_4_int8_k4",
         "nm_linear_2_4_int8_k4", "dense_mac_4_int8_k4")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hdl-dir", help="directory of Verilog + sidecar JSON (default: "
                                          "$NMSPARSE_HDL_DIR or the shipped hdl/)")
    parser.add_argument("--module", action="append", metavar="GLOB",
                        help="only modules whose name matches (repeatable)")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="the small subset (default)")
    g.add_argument("--full", action="store_true", help="every module, deeper checks")
    parser.add_argument("--mutants", action="store_true",
                        help="mutation run on the selected selectors: every mutant must fail")
    parser.add_argument("--json", metavar="FILE", help="write/update proof records "
                        "(e.g. reports/proofs.json)")
    parser.add_argument("--work", metavar="DIR", help="keep the solver files here "
                                                      "(default: a temporary directory)")


def _hdl_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("NMSPARSE_HDL_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "hdl"


def select(hdl: Path, globs: list[str] | None, full: bool):
    """Sidecars to prove: the manifest (or all), filtered by ``globs`` or the quick set."""
    from nmsparse.contract.sidecar import list_modules

    mods = list_modules(hdl)
    if globs:
        chosen = [sc for sc in mods if any(fnmatch.fnmatch(sc.module, g) for g in globs)]
        if not chosen:
            raise FileNotFoundError(f"no module in {hdl} matches {', '.join(globs)} (it has "
                                    f"{', '.join(sc.module for sc in mods[:6])}...)")
        return chosen
    if full:
        return mods
    quick = [sc for sc in mods if sc.module in QUICK]
    return quick or mods[:3]


SELECTORS = ("topk", "topk_flex")


def prove_datapath(sc, work: Path, *, full: bool) -> tuple[list, str]:
    """The datapath steps of a selector and the methods used (``"direct + compositional"``,
    or ``"failed"`` when a delay line could not be proven a register chain).

    A module with delay lines in distributed RAM is proven on its rewritten netlist
    (:mod:`verif.formal.delaylines`), after the steps that justify the rewrite. Direct
    equivalence is tried for fixed N:M up to M = 4 (``full``: 8), or when the architecture has
    no decomposition; the compositional proof whenever it has one.
    """
    from . import compose, delaylines, equiv

    steps: list = []
    dsc = sc
    if delaylines.has_delay_lines(sc):
        dsc, steps = delaylines.rewrite(sc, work / "delay_lines")
        if not all(s.passed for s in steps):
            return steps, "failed"
    methods = []
    has_comp = compose.decomposition(dsc) is not None
    if dsc.unit == "topk" and (dsc.m <= (8 if full else 4) and dsc.lanes == 1
                               or not has_comp):
        steps += equiv.prove_direct(dsc, work / "direct")
        methods.append("direct")
    if has_comp and dsc.lanes == 1:
        steps += compose.prove_compositional(dsc, work / "compose")
        methods.append("compositional")
    return steps, " + ".join(methods)


def prove_module(sc, work: Path, *, full: bool, keys_done: set[str] | None = None):
    """All proofs of one module; returns a :class:`~verif.formal.results.ModuleProof`."""
    from . import equiv, stream
    from .results import ModuleProof

    mp = ModuleProof(sc.module, sc.unit)
    if sc.unit in SELECTORS:
        if keys_done is None or sc.fmt not in keys_done:
            mp.steps.append(equiv.prove_key(sc.fmt, work / f"key_{sc.fmt}"))
            if keys_done is not None:
                keys_done.add(sc.fmt)
        steps, mp.datapath = prove_datapath(sc, work, full=full)
        mp.steps += steps
    mp.steps += stream.prove_stream(sc, work / "stream")
    return mp


def _print_table(proofs) -> None:
    print(f"{'module':34} {'method':30} {'time':>8}  result")
    for mp in proofs:
        method = (f"datapath {mp.datapath}; " if mp.datapath else "") + "stream"
        print(f"{mp.module:34} {method:30} {mp.seconds:7.1f}s  "
              f"{'PROVEN' if mp.passed else 'FAILED'}: {mp.proven()}")


def run_mutants(mods, work: Path) -> int:
    from . import mutants, stream

    survived = 0
    for sc in mods:
        names = list(mutants.MUTANTS) if sc.unit in SELECTORS else ["stick-valid"]
        for name in names:
            d = work / "mutants" / f"{sc.module}_{name}"
            try:
                msc, mut = mutants.mutate(sc, name, d)
            except LookupError as exc:
                print(f"{sc.module} {name}: not applicable ({exc})")
                continue
            t0 = time.perf_counter()
            if mut.proofs == "datapath":
                steps, _ = prove_datapath(msc, d, full=True)
            else:
                steps = stream.prove_stream(msc, d / "stream")
            caught = [s for s in steps if not s.passed]
            status = "CAUGHT" if caught else "SURVIVED"
            survived += not caught
            print(f"== mutant {name} of {sc.module}: {status} in {time.perf_counter() - t0:.1f}"
                  f" s\n   edit: {mut.what}")
            for s in caught:
                print(f"   failed: {s.name} ({s.method})")
                print("   " + s.detail.replace("\n", "\n   "))
    return 1 if survived else 0


def run(args: argparse.Namespace) -> int:
    from .results import write_proofs

    hdl = _hdl_dir(args.hdl_dir)
    if not hdl.is_dir():
        raise FileNotFoundError(f"HDL directory {hdl} does not exist")
    mods = select(hdl, args.module, args.full)
    tmp = None
    if args.work:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="nmsparse-prove-")
        work = Path(tmp.name)
    try:
        if args.mutants:
            return run_mutants([sc for sc in mods], work)
        print(f"prove: {len(mods)} module(s) in {hdl} ({'full' if args.full else 'quick'})")
        proofs, keys_done = [], set()
        for sc in mods:
            mp = prove_module(sc, work / sc.module, full=args.full, keys_done=keys_done)
            proofs.append(mp)
            print(f"{sc.module}: {'PROVEN' if mp.passed else 'FAILED'} in {mp.seconds:.1f} s "
                  f"({mp.proven()})", flush=True)
            if args.json:  # after every module: an interrupted run keeps what it proved
                write_proofs(args.json, [mp])
            for s in mp.steps:
                if not s.passed:
                    print(f"  {s.name}: {s.claim}\n    " + s.detail.replace("\n", "\n    "),
                          file=sys.stderr)
        _print_table(proofs)
        return 0 if all(mp.passed for mp in proofs) else 1
    finally:
        if tmp is not None:
            tmp.cleanup()

"""The ``nmsparse`` command line: one entry point for every part of the flow.

Each subcommand lives next to the code it fronts and is imported only when it runs, so
``nmsparse generate`` never loads torch models and ``nmsparse mask`` never loads Amaranth.
A subcommand module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "mask": ("golden.cli", "print N:M masks of the golden model for a tensor or a small example"),
    "generate": ("gen.cli", "emit Verilog, sidecar JSON and a FuseSoC core for a design point"),
    "crosscheck": ("verif.cli", "stream activations through the RTL and compare with golden masks"),
    "verify": ("verif.verify_cli", "run the full regression on your own RTL (a directory, a "
               "sidecar or a FuseSoC core)"),
    "sidecar": ("verif.sidecar_cli", "draft (init), check or print the schema of sidecar JSON"),
    "prove": ("verif.formal.cli", "formal proofs: datapath equals the rule, streams lose nothing"),
    "report": ("nmsparse.report.cli", "synthesize, place and route, and write the reports"),
    "quality": ("golden.llm.cli", "perplexity of a real LLM under N:M activation sparsity"),
    "sweep": ("nmsparse.sweep.cli", "design-space sweep on Dask: generate, verify, synthesize, "
              "place; table and interactive Pareto page"),
    "estimate": ("nmsparse.sweep.estimate_cli", "LUT4/FF/Fmax/transistor estimates in "
                 "milliseconds from models fitted on measured points"),
}


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nmsparse", description="N:M activation sparsity: RTL generator and verification"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or only == name:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if only == name:
                    raise CliError(f"`nmsparse {name}` is not available: {exc}") from None
                continue
            mod.add_arguments(p)
            p.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(only if only in SUBCOMMANDS else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return int(args._module.run(args) or 0)
    except CliError as exc:
        print(f"nmsparse: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError) as exc:
        # Library errors name the bad value; show them as one line, not a traceback
        # (NMSPARSE_DEBUG=1 shows the traceback, for reporting a bug).
        if os.environ.get("NMSPARSE_DEBUG"):
            raise
        print(f"nmsparse: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

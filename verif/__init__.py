"""Verification of emitted N:M Verilog against the golden model (cocotb + Verilator).

- :mod:`verif.sidecar` – read a module's sidecar JSON, pack and unpack payloads;
- :mod:`verif.vectors` – stimulus and expected outputs from :mod:`golden`;
- :mod:`verif.tb` – stream driver, monitor, back-pressure, scoreboard (inside the simulator);
- :mod:`verif.cocotb_regression` – the cocotb test that replays a vector file;
- :mod:`verif.runner` – one Verilator build per design point, run and collect results;
- :mod:`verif.cli` – ``nmsparse crosscheck``.

It never imports the generator: any Verilog with a sidecar that follows DESIGN.md can be
verified (see ``verif/data/example_hdl`` for a hand-written example).
"""

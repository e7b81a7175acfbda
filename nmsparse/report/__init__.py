"""Measured resource and result reports (``nmsparse report``).

parse -> JSON -> render, as in FINN and hls4ml:

- :mod:`.synth` runs Yosys (ECP5 synthesis and an ASIC proxy) and nextpnr-ecp5 on one module;
- :mod:`.parse` turns the tool outputs into normalized keys (``LUT``, ``FF``, ``DSP``,
  ``CARRY``, ``fmax_mhz``, ``transistors``, ``logic_depth``);
- :mod:`.cache` keeps results by a hash of the Verilog, the flow and the tool versions;
- :mod:`.records` joins them with the sidecar JSON into ``reports/resources.json``;
- :mod:`.render` writes ``report.md`` and ``report.html`` (tables, summary, plots).
"""

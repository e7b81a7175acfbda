"""nmsparse: RTL generator and verification flow for N:M activation sparsity hardware.

The distribution holds four packages at the repository root:

- ``golden``  – the PyTorch golden model (the reference every other part is checked against);
- ``gen``     – Amaranth generators for the selector, the sparse MAC, the linear engine and
  the dense baseline;
- ``verif``   – cocotb testbenches that drive emitted Verilog through Verilator;
- ``nmsparse`` – the command line, the toolchain lookup and the reports.
"""

__version__ = "0.1.0"

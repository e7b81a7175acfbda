"""nmsparse: RTL generator and verification flow for N:M activation sparsity hardware.

The distribution holds these packages at the repository root (DESIGN.md section 4 says which
may import which):

- ``nmsparse.contract`` – the foundation: formats, patterns, units, sidecar and vector
  schemas, comparator networks, toolchain lookup (no torch, no Amaranth);
- ``golden``  – the PyTorch golden model (the reference every other part is checked against);
  ``golden.llm`` – the model-quality study on a real LLM;
- ``gen``     – Amaranth generators for the selector, the sparse MAC, the linear engine and
  the dense baseline;
- ``verif``   – cocotb testbenches that drive emitted Verilog through Verilator;
- ``nmsparse.report`` and ``nmsparse.cli`` – reports and the command line.
"""

from nmsparse.contract.version import VERSION as __version__

__all__ = ["__version__"]

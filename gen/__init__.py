"""Amaranth generators for N:M activation-sparsity hardware (DESIGN.md sections 1 and 3).

- :class:`NMTopK`: the N:M top-k selector; its architectures (one class each, e.g. the rank
  matrix and the selection network) are in :mod:`gen.arch`;
- :class:`NMSparseMAC`: compressed groups times K x M weights, accumulated per row;
- :class:`NMLinear`: the selector feeding the sparse MAC in one pipeline;
- :class:`DenseMAC`: the dense baseline;
- :mod:`gen.emit`: Verilog, sidecar JSON and FuseSoC core files; :mod:`gen.config`: the
  validated design points, including the shipped ones (:data:`gen.config.SHIPPED`).

Every unit takes one validated configuration: ``NMTopK(TopKConfig(n=8, m=16, arch="rank"))``.
"""

from .arch import ARCHITECTURES, Architecture
from .config import SHIPPED, DenseMACConfig, LinearConfig, SparseMACConfig, TopKConfig
from .linear import NMLinear
from .mac import DenseMAC, NMSparseMAC
from .topk import NMTopK

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "NMTopK",
    "NMSparseMAC",
    "DenseMAC",
    "NMLinear",
    "TopKConfig",
    "SparseMACConfig",
    "LinearConfig",
    "DenseMACConfig",
    "SHIPPED",
]

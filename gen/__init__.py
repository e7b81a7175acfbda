"""Amaranth generators for N:M activation-sparsity hardware (DESIGN.md sections 1 and 3).

- :class:`NMTopK` (:class:`RankTopK`, :class:`NetworkTopK`): the N:M top-k selector;
- :class:`NMSparseMAC`: compressed groups times K x M weights, accumulated per row;
- :class:`NMLinear`: the selector feeding the sparse MAC in one pipeline;
- :class:`DenseMAC`: the dense baseline;
- :mod:`gen.emit`: Verilog, sidecar JSON and FuseSoC core files; :mod:`gen.config`: the
  validated design points, including the shipped ones (:data:`gen.config.SHIPPED`).
"""

from .config import SHIPPED, DenseMACConfig, LinearConfig, SparseMACConfig, TopKConfig
from .linear import NMLinear
from .mac import DenseMAC, NMSparseMAC
from .topk import NetworkTopK, NMTopK, RankTopK

__all__ = [
    "NMTopK",
    "RankTopK",
    "NetworkTopK",
    "NMSparseMAC",
    "DenseMAC",
    "NMLinear",
    "TopKConfig",
    "SparseMACConfig",
    "LinearConfig",
    "DenseMACConfig",
    "SHIPPED",
]

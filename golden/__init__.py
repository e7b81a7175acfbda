"""The PyTorch golden model of nmsparse: the reference every other part is checked against.

It imports nothing else of the project. Core API:

- :func:`nm_mask`, :func:`nm_compress`, :func:`nm_decompress` – the N:M selection rule;
- :func:`sparse_linear` – the integer (or float) N:M activation-sparse linear layer;
- :func:`parse_pattern` – ``"8:16"`` -> ``(8, 16)``;
- :mod:`golden.formats` – number formats, keys and bit patterns.
"""

from .formats import FORMATS, Format, from_bits, get_format, keys, resolve_format, to_bits
from .quant import quantize_per_token
from .nm import (
    check_nm,
    nm_compress,
    nm_decompress,
    nm_mask,
    nm_mask_reference,
    parse_pattern,
    sparse_linear,
    wrap,
)

__all__ = [
    "FORMATS",
    "Format",
    "check_nm",
    "from_bits",
    "get_format",
    "keys",
    "nm_compress",
    "nm_decompress",
    "nm_mask",
    "nm_mask_reference",
    "parse_pattern",
    "quantize_per_token",
    "resolve_format",
    "sparse_linear",
    "to_bits",
    "wrap",
]

# Model quality: activation-sparsity hooks on nn.Linear inputs (golden.hooks), selection
# criteria, mitigations, perplexity evaluation (golden.quality). Models load lazily.
from .hooks import apply_sparsity, parse_sparsity, sparsify  # noqa: E402

__all__ += ["apply_sparsity", "parse_sparsity", "sparsify"]

"""The PyTorch golden model of nmsparse: the reference every other part is checked against.

It imports only :mod:`nmsparse.contract` (formats, patterns, networks). Core API:

- :func:`nm_mask`, :func:`nm_compress`, :func:`nm_decompress` – the N:M selection rule;
- :func:`sparse_linear` – the integer (or float) N:M activation-sparse linear layer, with the
  optional static shift (S-PTS) of :func:`shift_activations` and :func:`shift_bias`;
- :func:`quantize_per_token` – symmetric per-token integer quantization;
- :mod:`golden.formats` – tensors in and out of the number formats (keys, bit patterns).

The model-quality study on a real LLM (hooks, criteria, mitigations, perplexity, the model
and corpus loaders) is the sub-package :mod:`golden.llm`.
"""

from nmsparse.contract.patterns import check_nm, parse_pattern

from .formats import (
    FORMATS,
    Format,
    dtype_of,
    from_bits,
    get_format,
    keys,
    resolve_format,
    to_bits,
)
from .nm import (
    nm_compress,
    nm_decompress,
    nm_mask,
    nm_mask_reference,
    shift_activations,
    shift_bias,
    sparse_linear,
    wrap,
)
from .quant import quantize_per_token

__all__ = [
    "FORMATS",
    "Format",
    "check_nm",
    "dtype_of",
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
    "shift_activations",
    "shift_bias",
    "sparse_linear",
    "to_bits",
    "wrap",
]

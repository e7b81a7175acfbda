"""Per-token symmetric integer quantization, to feed float activations to integer hardware."""

from __future__ import annotations

import torch

from .formats import dtype_of, get_format

__all__ = ["quantize_per_token"]


def quantize_per_token(x: torch.Tensor, fmt: str = "int8") -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize float ``x: [..., K]`` per token (per row) to ``fmt``, symmetric.

    Returns ``(q, scale)`` with ``q`` in ``[-(2**(w-1) - 1), 2**(w-1) - 1]`` (int8 dtype for
    int4/int8, int16 for int16) and ``scale: [..., 1]`` float32 such that ``q * scale ~ x``.
    An all-zero row gets scale 1.

    Raises
    ------
    TypeError
        ``x`` is not a float tensor.
    ValueError
        ``fmt`` is not an integer format, or ``x`` holds NaN or infinity.
    """
    f = get_format(fmt)
    if not f.is_int:
        raise ValueError(f"quantize_per_token needs an integer format, not {f.name}")
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"x must be a float tensor, not {getattr(x, 'dtype', type(x).__name__)}")
    xf = x.detach().to(torch.float32)
    if not torch.isfinite(xf).all():
        raise ValueError("x holds NaN or infinity; integer quantization needs finite values")
    qmax = f.max
    amax = xf.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    q = torch.round(xf / scale).clamp(-qmax, qmax).to(dtype_of(f))
    return q, scale

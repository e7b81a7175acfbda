"""Number formats on torch tensors (the formats and the key rule are
:mod:`nmsparse.contract.formats`; this module only moves tensors in and out of them).

- :func:`resolve_format` checks that a tensor can be read as a format;
- :func:`keys` gives the selection keys (:meth:`Format.key` on the bit patterns);
- :func:`to_bits` / :func:`from_bits` convert between tensors and unsigned bit patterns;
- :func:`dtype_of` is the torch dtype that holds a format natively.
"""

from __future__ import annotations

import torch

from nmsparse.contract.formats import FORMATS, Format, get_format

__all__ = ["Format", "FORMATS", "get_format", "dtype_of", "resolve_format", "keys", "to_bits",
           "from_bits"]

_DEFAULT_FMT = {
    torch.int8: "int8",
    torch.int16: "int16",
    torch.float16: "fp16",
    torch.bfloat16: "bf16",
    torch.float32: "fp32",
}
_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64)
_BITS_DTYPE = {16: torch.int16, 32: torch.int32}


def dtype_of(fmt: str | Format) -> torch.dtype:
    """The torch dtype that holds ``fmt`` natively (``int4`` lives in ``torch.int8``)."""
    return getattr(torch, get_format(fmt).dtype_name)


def resolve_format(x: torch.Tensor, fmt: str | Format | None = None, *,
                   check_range: bool = True) -> Format:
    """Check that tensor ``x`` can be read as ``fmt`` (default: from its dtype) and return it.

    Raises
    ------
    TypeError
        ``x`` is not a tensor, its dtype has no format, or it does not match ``fmt``.
    ValueError
        Unknown ``fmt``, or integer values outside the format's range.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, not {type(x).__name__}")
    if fmt is None:
        if x.dtype not in _DEFAULT_FMT:
            raise TypeError(
                f"no default format for dtype {x.dtype}; pass fmt= (one of {', '.join(FORMATS)}) "
                f"or use one of {', '.join(str(d) for d in _DEFAULT_FMT)}"
            )
        f = FORMATS[_DEFAULT_FMT[x.dtype]]
    else:
        f = get_format(fmt)
    if f.is_int:
        if x.dtype not in _INT_DTYPES:
            raise TypeError(f"format {f.name} needs a signed integer tensor, not dtype {x.dtype}")
        # a dtype no wider than the format cannot hold an out-of-range value
        if check_range and x.numel() and x.dtype.itemsize * 8 > f.width:
            lo_t, hi_t = torch.aminmax(x)
            lo, hi = int(lo_t), int(hi_t)
            if lo < f.min or hi > f.max:
                bad = lo if lo < f.min else hi
                raise ValueError(
                    f"value {bad} is outside the {f.name} range [{f.min}, {f.max}]"
                )
    elif x.dtype != dtype_of(f):
        raise TypeError(f"format {f.name} needs dtype {dtype_of(f)}, not {x.dtype}")
    return f


def keys(x: torch.Tensor, fmt: str | Format | None = None) -> torch.Tensor:
    """Selection keys of ``x`` (same shape, int64, >= 0): :meth:`Format.key` of its bits."""
    f = resolve_format(x, fmt)
    return f.key(to_bits(x, f))


def to_bits(x: torch.Tensor, fmt: str | Format | None = None) -> torch.Tensor:
    """Unsigned bit patterns of ``x`` in ``fmt`` (int64, each in [0, 2**width))."""
    f = resolve_format(x, fmt)
    if f.is_int:
        return x.to(torch.int64) & f.all_ones
    return x.view(_BITS_DTYPE[f.width]).to(torch.int64) & f.all_ones


def from_bits(bits: torch.Tensor, fmt: str | Format) -> torch.Tensor:
    """Inverse of :func:`to_bits`: a tensor of ``fmt``'s native dtype from unsigned patterns."""
    f = get_format(fmt)
    b = torch.as_tensor(bits, dtype=torch.int64)
    if b.numel() and (int(b.min()) < 0 or int(b.max()) > f.all_ones):
        raise ValueError(f"bit patterns must lie in [0, 2**{f.width}) for {f.name}")
    signed = torch.where(b >= f.sign_bit, b - (1 << f.width), b)
    if f.is_int:
        return signed.to(dtype_of(f))
    return signed.to(_BITS_DTYPE[f.width]).view(dtype_of(f))

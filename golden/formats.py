"""Number formats of the N:M selection rule and their keys (DESIGN.md section 1).

Integers (``int4``, ``int8``, ``int16``, two's complement): key = |x| as an unsigned value,
so |-128| = 128 for int8 without overflow. Floats (``fp16``, ``bf16``, ``fp32``): key = the
bit pattern with the sign bit cleared, compared as an unsigned integer: all finite values and
infinities in order of magnitude, -0 equal to +0, every NaN above infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Format", "FORMATS", "resolve_format", "get_format", "keys", "to_bits", "from_bits"]


@dataclass(frozen=True)
class Format:
    """One number format: ``name``, bit ``width``, ``kind`` (``"int"`` or ``"float"``)."""

    name: str
    width: int
    kind: str
    dtype: torch.dtype  # the torch dtype that holds it natively

    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    @property
    def min(self) -> int:
        """Most negative value (integers only)."""
        return -(1 << (self.width - 1))

    @property
    def max(self) -> int:
        """Largest value (integers only)."""
        return (1 << (self.width - 1)) - 1

    @property
    def key_width(self) -> int:
        """Bits of the unsigned key: |x| needs ``width`` bits, a float key ``width - 1``."""
        return self.width if self.is_int else self.width - 1


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("int4", 4, "int", torch.int8),
        Format("int8", 8, "int", torch.int8),
        Format("int16", 16, "int", torch.int16),
        Format("fp16", 16, "float", torch.float16),
        Format("bf16", 16, "float", torch.bfloat16),
        Format("fp32", 32, "float", torch.float32),
    )
}

_DEFAULT_FMT = {
    torch.int8: "int8",
    torch.int16: "int16",
    torch.float16: "fp16",
    torch.bfloat16: "bf16",
    torch.float32: "fp32",
}
_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64)
_BITS_DTYPE = {16: torch.int16, 32: torch.int32}


def get_format(fmt: str | Format) -> Format:
    """The :class:`Format` called ``fmt``; ``ValueError`` naming the valid ones otherwise."""
    if isinstance(fmt, Format):
        return fmt
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    return FORMATS[fmt]


def resolve_format(x: torch.Tensor, fmt: str | Format | None = None, *, check_range: bool = True) -> Format:
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
    elif x.dtype != f.dtype:
        raise TypeError(f"format {f.name} needs dtype {f.dtype}, not {x.dtype}")
    return f


def keys(x: torch.Tensor, fmt: str | Format | None = None) -> torch.Tensor:
    """Selection keys of ``x`` (same shape, int32 for widths <= 16, int64 for fp32), >= 0."""
    f = resolve_format(x, fmt)
    if f.is_int:
        return x.to(torch.int32).abs()
    if f.width == 32:
        return x.view(torch.int32).to(torch.int64) & 0x7FFFFFFF
    return x.view(torch.int16).to(torch.int32) & 0x7FFF


def to_bits(x: torch.Tensor, fmt: str | Format | None = None) -> torch.Tensor:
    """Unsigned bit patterns of ``x`` in ``fmt`` (int64, each in [0, 2**width))."""
    f = resolve_format(x, fmt)
    if f.is_int:
        return x.to(torch.int64) & ((1 << f.width) - 1)
    return x.view(_BITS_DTYPE[f.width]).to(torch.int64) & ((1 << f.width) - 1)


def from_bits(bits: torch.Tensor, fmt: str | Format) -> torch.Tensor:
    """Inverse of :func:`to_bits`: a tensor of ``fmt``'s native dtype from unsigned patterns."""
    f = get_format(fmt)
    b = torch.as_tensor(bits, dtype=torch.int64)
    if b.numel() and (int(b.min()) < 0 or int(b.max()) >= (1 << f.width)):
        raise ValueError(f"bit patterns must lie in [0, 2**{f.width}) for {f.name}")
    signed = torch.where(b >= (1 << (f.width - 1)), b - (1 << f.width), b)
    if f.is_int:
        return signed.to(f.dtype)
    return signed.to(_BITS_DTYPE[f.width]).view(f.dtype)

"""Number formats and the selection key (DESIGN.md section 1), in one place.

A :class:`Format` knows its width, whether it is a two's-complement integer or an IEEE-style
float (exponent and mantissa bits), and the *key* the N:M rule ranks by:

- integers (``int4``, ``int8``, ``int16``): key = |x| as an unsigned value of ``width`` bits,
  so |-128| = 128 for int8 without overflow;
- floats (``fp16``, ``bf16``, ``fp32``): key = the bit pattern with the sign bit cleared
  (``width - 1`` bits), compared unsigned: finite values and infinities by magnitude,
  -0 equal to +0, every NaN above infinity.

:meth:`Format.key` computes the key from unsigned bit patterns with plain integer arithmetic,
so the same definition serves Python ints, NumPy arrays and torch tensors. The golden model,
the testbenches and the formal reference all call it; the C kernel and the generated hardware
implement :attr:`Format.key_rule` and are checked against it.

No torch, no Amaranth: every part of the project may import this module.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

__all__ = ["Format", "FORMATS", "INT_FORMATS", "FLOAT_FORMATS", "get_format", "signed"]


@dataclass(frozen=True)
class Format:
    """One number format.

    Parameters
    ----------
    name : str
        ``int4``, ``int8``, ``int16``, ``fp16``, ``bf16`` or ``fp32``.
    width : int
        Bits per element.
    kind : str
        ``"int"`` (two's complement) or ``"float"`` (sign, exponent, mantissa).
    exp_bits : int
        Exponent bits (0 for integers).
    dtype_name : str
        Name of the torch dtype that holds the format natively (``int4`` lives in int8).
    """

    name: str
    width: int
    kind: str
    exp_bits: int
    dtype_name: str

    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    @property
    def mant_bits(self) -> int:
        """Mantissa (fraction) bits of a float format; 0 for integers."""
        return 0 if self.is_int else self.width - 1 - self.exp_bits

    @property
    def key_width(self) -> int:
        """Bits of the unsigned key: |x| needs ``width`` bits, a float key ``width - 1``."""
        return self.width if self.is_int else self.width - 1

    @property
    def key_rule(self) -> str:
        """``"abs"`` (|x| of the two's-complement value) or ``"clear_sign"`` (floats)."""
        return "abs" if self.is_int else "clear_sign"

    @property
    def min(self) -> int:
        """Most negative value (integers only)."""
        return -(1 << (self.width - 1))

    @property
    def max(self) -> int:
        """Largest value (integers only)."""
        return (1 << (self.width - 1)) - 1

    @property
    def sign_bit(self) -> int:
        """Value of the sign bit in an unsigned bit pattern (``2**(width-1)``)."""
        return 1 << (self.width - 1)

    @property
    def all_ones(self) -> int:
        """``2**width - 1``: the mask of one element's bit pattern."""
        return (1 << self.width) - 1

    def key(self, bits):
        """Selection key of unsigned bit patterns ``bits`` (each in ``[0, 2**width)``).

        Works element-wise on a Python int, a NumPy integer array or an integer torch tensor
        (int64, so that 2**width fits): integers give |x|, floats the sign-cleared pattern.
        """
        if self.is_int:
            neg = bits >> (self.width - 1)  # 1 for a negative value, else 0
            return bits + neg * ((1 << self.width) - 2 * bits)  # 2**w - bits = |x| when x < 0
        return bits & (self.sign_bit - 1)

    def to_signed(self, bits: int) -> int:
        """Two's-complement value of one unsigned pattern (integers)."""
        return signed(bits, self.width)

    def describe(self, bits: int) -> str:
        """Human-readable value of one element's bit pattern (floats with the hex pattern)."""
        if self.is_int:
            return str(signed(bits, self.width))
        if self.name == "fp16":
            v = struct.unpack("<e", struct.pack("<H", bits))[0]
        elif self.name == "bf16":
            v = struct.unpack("<f", struct.pack("<I", bits << 16))[0]
        else:
            v = struct.unpack("<f", struct.pack("<I", bits))[0]
        digits = math.ceil(self.width / 4)
        if v != v:  # NaN: the payload matters
            return f"nan(0x{bits:0{digits}x})"
        return f"{v!r}(0x{bits:0{digits}x})"

    def special_patterns(self) -> list[int]:
        """Edge-case bit patterns: zeros, extremes, and for floats subnormals, infinities
        and NaN payloads of both signs."""
        if self.is_int:
            mx, mn = self.max, self.sign_bit
            return [0, 1, 2, self.all_ones, mx, mn, (-mx) & self.all_ones,
                    (-2) & self.all_ones]
        mant = self.mant_bits
        inf = ((1 << self.exp_bits) - 1) << mant
        qnan = inf | (1 << (mant - 1))
        one = ((1 << (self.exp_bits - 1)) - 1) << mant
        pos = [0, 1, 2, (1 << mant) - 1, 1 << mant, one, one + 1, inf - 1, inf, qnan,
               inf | 1, qnan | 5, self.sign_bit - 1]
        return pos + [p | self.sign_bit for p in pos]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("int4", 4, "int", 0, "int8"),
        Format("int8", 8, "int", 0, "int8"),
        Format("int16", 16, "int", 0, "int16"),
        Format("fp16", 16, "float", 5, "float16"),
        Format("bf16", 16, "float", 8, "bfloat16"),
        Format("fp32", 32, "float", 8, "float32"),
    )
}
INT_FORMATS = tuple(n for n, f in FORMATS.items() if f.is_int)
FLOAT_FORMATS = tuple(n for n, f in FORMATS.items() if not f.is_int)


def get_format(fmt: str | Format) -> Format:
    """The :class:`Format` called ``fmt``.

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    TypeError
        ``fmt`` is neither a name nor a :class:`Format`.
    """
    if isinstance(fmt, Format):
        return fmt
    if not isinstance(fmt, str):
        raise TypeError(f"a format must be a name ({', '.join(FORMATS)}), not {fmt!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    return FORMATS[fmt]


def signed(bits: int, width: int) -> int:
    """Two's-complement value of an unsigned ``width``-bit pattern."""
    return bits - (1 << width) if (bits >> (width - 1)) & 1 else bits

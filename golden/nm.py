"""The N:M selection rule, compression and the sparse linear layer (DESIGN.md sections 1-2).

Shapes: ``x: [..., K]`` with ``K = G * M``; the rule runs on each group of M consecutive
elements of the last dimension. ``values, index: [..., G, N]``.
"""

from __future__ import annotations

import torch

from nmsparse.contract.patterns import check_nm, parse_pattern

from . import _native
from .formats import Format, get_format, keys, resolve_format

__all__ = [
    "parse_pattern",
    "check_nm",
    "nm_mask",
    "nm_mask_reference",
    "nm_compress",
    "nm_decompress",
    "sparse_linear",
    "shift_activations",
    "shift_bias",
    "wrap",
]


def _grouped(x: torch.Tensor, m: int) -> torch.Tensor:
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension")
    k = x.shape[-1]
    if k % m:
        raise ValueError(f"the last dimension ({k}) is not a multiple of m = {m}")
    return x.reshape(*x.shape[:-1], k // m, m)


def nm_mask_reference(x: torch.Tensor, n: int, m: int, *, fmt: str | None = None) -> torch.Tensor:
    """Obviously-correct (slow) N:M mask: loops over groups and applies the rank formula.

    rank(j) = #{i : key_i > key_j} + #{i < j : key_i == key_j}; j is kept iff rank(j) < n.
    """
    n, m = check_nm(n, m)
    resolve_format(x, fmt)
    kk = keys(x, fmt)
    g = _grouped(kk, m).reshape(-1, m).tolist()
    out = []
    for group in g:
        for j, kj in enumerate(group):
            rank = sum(1 for i, ki in enumerate(group) if ki > kj or (ki == kj and i < j))
            out.append(rank < n)
    return torch.tensor(out, dtype=torch.bool).reshape(x.shape)


def _mask_torch(x: torch.Tensor, f: Format, n: int, m: int) -> torch.Tensor:
    """Pure-torch fast path: unique composite keys, so topk order does not matter."""
    ib = max(1, (m - 1).bit_length())
    kk = keys(x, f).to(torch.int64)
    comp = (_grouped(kk, m) << ib) | (m - 1 - torch.arange(m, dtype=torch.int64))
    thr = comp.topk(n, dim=-1, sorted=True).values[..., -1:]
    return (comp >= thr).reshape(x.shape)


def nm_mask(
    x: torch.Tensor, n: int, m: int, *, fmt: str | None = None, backend: str = "auto"
) -> torch.Tensor:
    """N:M mask of ``x`` along its last dimension (DESIGN.md section 1).

    Parameters
    ----------
    x : torch.Tensor
        ``[..., K]``, ``K`` a multiple of ``m``; integer or float.
    n, m : int
        Keep ``n`` of every ``m`` consecutive elements (``0 < n < m``).
    fmt : str, optional
        How to read ``x``: ``int4``, ``int8``, ``int16``, ``fp16``, ``bf16``, ``fp32``.
        Defaults from the dtype (``torch.int8`` -> int8, ``torch.bfloat16`` -> bf16, ...).
        Integers in a wider dtype need an explicit ``fmt`` and are range-checked.
    backend : str
        ``"auto"`` (compiled kernel when available), ``"native"``, or ``"torch"``.

    Returns
    -------
    torch.Tensor
        ``torch.bool``, the shape of ``x``; exactly ``n`` True per group. Ties: the lower
        index wins. NaN ranks above infinity; -0 equals +0.

    Raises
    ------
    ValueError
        Invalid ``n``/``m``/``fmt``, last dimension not a multiple of ``m``, integers out of
        the format's range.
    TypeError
        Not a tensor, or a dtype the format cannot read.
    """
    n, m = check_nm(n, m)
    f = resolve_format(x, fmt)
    _grouped(x, m)  # shape check
    if backend not in ("auto", "native", "torch"):
        raise ValueError(f"backend must be 'auto', 'native' or 'torch', not {backend!r}")
    if backend != "torch" and x.numel():
        out = _native.nm_mask_native(x.detach().cpu(), n, m, f)
        if out is not None:
            return out.to(x.device)
        if backend == "native":
            raise RuntimeError("the compiled fast path is not available (no C compiler?)")
    return _mask_torch(x.detach(), f, n, m)


def nm_compress(
    x: torch.Tensor, n: int, m: int, *, fmt: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compressed N:M form: ``values`` (x's dtype) and ``index`` (int64), both ``[..., G, n]``.

    Values keep their bit patterns and, like the indices, come in ascending index order.
    """
    mask = nm_mask(x, n, m, fmt=fmt)
    xg, mg = _grouped(x, m), _grouped(mask, m)
    lead = xg.shape[:-1]
    values = xg[mg].reshape(*lead, n)
    pos = torch.arange(m, dtype=torch.int64).expand(mg.shape)
    index = pos[mg].reshape(*lead, n)
    return values, index


def nm_decompress(values: torch.Tensor, index: torch.Tensor, m: int) -> torch.Tensor:
    """Inverse of :func:`nm_compress`: ``[..., G, n]`` pairs -> ``x * mask``, ``[..., G*m]``."""
    if not isinstance(values, torch.Tensor) or not isinstance(index, torch.Tensor):
        raise TypeError("values and index must be torch tensors")
    if values.shape != index.shape or values.dim() < 2:
        raise ValueError(
            f"values and index must share a shape [..., G, n]; got {tuple(values.shape)} "
            f"and {tuple(index.shape)}"
        )
    check_nm(values.shape[-1], m)
    if index.dtype.is_floating_point or index.dtype == torch.bool:
        raise TypeError(f"index must be an integer tensor, not {index.dtype}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= m):
        raise ValueError(
            f"index values must lie in [0, {m}); got {int(index.min())}..{int(index.max())}"
        )
    # Scatter bit patterns, not numbers: float ops may quiet a NaN's payload.
    raw = values
    if values.dtype.is_floating_point:
        raw = values.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[values.element_size()])
    out = torch.zeros(*values.shape[:-1], m, dtype=raw.dtype)
    out.scatter_(-1, index.to(torch.int64), raw)
    out = out.view(values.dtype) if values.dtype.is_floating_point else out
    return out.reshape(*values.shape[:-2], values.shape[-2] * m)


def wrap(y: torch.Tensor, width: int) -> torch.Tensor:
    """Two's-complement wrap of int64 ``y`` to ``width`` bits (the hardware's accumulator)."""
    if width >= 64:
        return y
    half = 1 << (width - 1)
    return ((y + half) & ((1 << width) - 1)) - half


def _shift_vector(shift: object, k: int, f: Format) -> torch.Tensor:
    """``shift`` as int64 ``[K]`` in ``f``'s range: floats rounded half to even, then checked."""
    if isinstance(shift, bool) or not isinstance(shift, (int, float, torch.Tensor)):
        raise TypeError(
            f"shift must be a number or a tensor of shape [] or [{k}], not {type(shift).__name__}"
        )
    if isinstance(shift, torch.Tensor):
        t = shift
    else:  # float64 for a Python float: float32 would round 16385.4999 to 16385.5
        t = torch.tensor(shift, dtype=torch.int64 if isinstance(shift, int) else torch.float64)
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"shift must hold real numbers, not {t.dtype}")
    if t.dim() > 1 or (t.dim() == 1 and t.shape[0] != k):
        raise ValueError(
            f"shift must be one number (per layer) or one per input channel [{k}]; "
            f"got shape {tuple(t.shape)}"
        )
    t = t.detach().cpu()
    if t.dtype.is_floating_point:
        t = t.to(torch.float64)
        if not torch.isfinite(t).all():
            bad = t[~torch.isfinite(t)].flatten()[0].item()
            raise ValueError(f"shift must be finite; got {bad}")
        t = torch.round(t)  # round half to even, as torch.round
    t = t.to(torch.int64).expand(k)
    if t.numel() and (int(t.min()) < f.min or int(t.max()) > f.max):
        bad = int(t.min()) if int(t.min()) < f.min else int(t.max())
        raise ValueError(
            f"shift {bad} (after rounding) is outside the {f.name} range [{f.min}, {f.max}]: "
            f"the hardware holds eta in the activation format"
        )
    return t


def shift_activations(
    x: torch.Tensor, shift: int | float | torch.Tensor, *, fmt: str | None = None
) -> torch.Tensor:
    """``d = sat(x - eta)``: the subtraction in front of the selector (integer formats).

    Parameters
    ----------
    x : torch.Tensor
        ``[..., K]`` integers readable as ``fmt`` (int4, int8, int16).
    shift : int, float or torch.Tensor
        ``eta``: one number for the layer or one per input channel (``[K]``). Floats are
        rounded to the nearest integer, ties to even; the result must lie in the format's
        range (the hardware stores eta in the activation format).
    fmt : str, optional
        Activation format (default from the dtype).

    Returns
    -------
    torch.Tensor
        ``x``'s dtype and shape: ``x - eta`` computed exactly (``width + 1`` bits) and
        saturated to ``[min, max]`` of the format (e.g. int8: ``-128 - 1 -> -128``,
        ``127 + 1 -> 127``).

    Raises
    ------
    ValueError
        ``fmt`` is a float format, ``eta`` is outside the format's range or not finite, or
        ``shift`` has a shape other than ``[]`` or ``[K]``.
    TypeError
        ``shift`` is not a number or a real tensor.
    """
    f = resolve_format(x, fmt)
    if not f.is_int:
        raise ValueError(f"shift_activations is for integer formats, not {f.name}")
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension")
    eta = _shift_vector(shift, x.shape[-1], f)
    d = (x.to(torch.int64) - eta).clamp(f.min, f.max)
    return d.to(x.dtype)


def shift_bias(
    w: torch.Tensor,
    shift: int | float | torch.Tensor,
    *,
    fmt: str = "int8",
    acc_width: int = 32,
    weight_fmt: str | None = None,
) -> torch.Tensor:
    """Bias constants ``b[o] = wrap(sum_k W[o, k] * eta_k)`` the hardware adds after a row.

    ``w: [O, K]`` integer weights; ``shift`` as in :func:`shift_activations` (rounded and
    range-checked against ``fmt``, the activation format). Returns int64 ``[O]`` wrapped to
    ``acc_width`` bits: a compile-time constant per output, one adder per accumulator.
    """
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        raise ValueError(f"w must be a [O, K] tensor, not {getattr(w, 'shape', type(w).__name__)}")
    f = get_format(fmt)
    if not f.is_int:
        raise ValueError(f"shift_bias is for integer formats, not {f.name}")
    resolve_format(w, weight_fmt)
    _check_acc(acc_width)
    eta = _shift_vector(shift, w.shape[1], f)
    return wrap(w.to(torch.int64) @ eta, acc_width)


def _check_acc(acc_width: object) -> None:
    if isinstance(acc_width, bool) or not isinstance(acc_width, int) or not 2 <= acc_width <= 64:
        raise ValueError(f"acc_width must be an integer in [2, 64], not {acc_width!r}")


def sparse_linear(
    x: torch.Tensor,
    w: torch.Tensor,
    n: int,
    m: int,
    *,
    acc_width: int = 32,
    fmt: str | None = None,
    weight_fmt: str | None = None,
    shift: int | float | torch.Tensor | None = None,
) -> torch.Tensor:
    """N:M activation-sparse linear layer ``y = (x * mask) @ w.T`` (DESIGN.md section 2).

    With ``shift`` (S-PTS, the static per-tensor shift): ``y = W prune(x - eta) +
    eta * rowsum(W)``, which is ``W (prune(x - eta) + eta)`` when nothing saturates. The
    hardware form, exactly what this function computes for integer formats::

        x[k] --> d = sat(x[k] - eta_k) --> N:M selector on |d| --> acc[o] += W[o,k] * d[k]
                 (width+1-bit subtract,     (unchanged)            (unchanged MAC)
                  saturate to width bits)
        end of row:  y[o] = wrap(acc[o] + b[o]),  b[o] = wrap(sum_k W[o,k] * eta_k)

    Trade-off: saturating ``d`` to the activation width keeps the selector, the multipliers
    and the operand buses unchanged (one subtractor and a clamp per lane, one adder per
    accumulator); the price is an error on the rare elements with ``|x - eta|`` beyond the
    range, where ``d + eta != x``.

    Parameters
    ----------
    x : torch.Tensor
        ``[T, K]`` activations; integers (``fmt`` int4/int8/int16) or floats.
    w : torch.Tensor
        ``[O, K]`` weights; integers (``weight_fmt``, default from dtype) with integer x.
    acc_width : int
        Integer accumulator width: results wrap modulo ``2**acc_width`` exactly as the
        hardware's two's-complement accumulators do.
    shift : int, float or torch.Tensor, optional
        ``eta``: one per layer (a number) or one per input channel (``[K]``). Integer formats:
        a float eta is rounded to the nearest integer, ties to even, and must then lie in the
        activation format's range; ``d = x - eta`` is computed exactly and saturated to the
        format's ``[min, max]`` before selection (:func:`shift_activations`); the bias
        ``b = wrap(W eta)`` (:func:`shift_bias`) is added to the wrapped accumulator, and
        the sum wraps again, so ``y = wrap(W prune(d) + W eta)`` whatever the order.
        Float formats: ``d = x - eta`` in x's dtype, ``y = prune(d) @ W.T + eta @ W.T``.

    Returns
    -------
    torch.Tensor
        ``[T, O]``: int64 values wrapped to ``acc_width`` for integers; for floats, the float
        result of ``(x * mask) @ w.T`` in x's dtype.

    Raises
    ------
    ValueError
        Shapes that do not match, an invalid ``acc_width`` or an invalid ``shift``
        (out of range, not finite, wrong shape).
    TypeError
        Float activations with integer weights, or a ``shift`` that is not a number.
    """
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a torch.Tensor, not {type(w).__name__}")
    f = resolve_format(x, fmt)
    if x.dim() != 2 or w.dim() != 2:
        raise ValueError(
            f"x must be [T, K] and w [O, K]; got {tuple(x.shape)} and {tuple(w.shape)}"
        )
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has K = {x.shape[1]} input features but w has {w.shape[1]}")
    if f.is_int:
        resolve_format(w, weight_fmt)
        _check_acc(acc_width)
        d = x if shift is None else shift_activations(x, shift, fmt=fmt)
        mask = nm_mask(d, n, m, fmt=fmt)
        xs = torch.where(mask, d.to(torch.int64), 0)
        # exact: int64 products and sums (|x|, |w| <= 2**15, K < 2**32)
        y = wrap(xs @ w.to(torch.int64).T, acc_width)
        if shift is not None:
            b = shift_bias(w, shift, fmt=f.name, acc_width=acc_width, weight_fmt=weight_fmt)
            y = wrap(y + b, acc_width)
        return y
    if not w.dtype.is_floating_point:
        raise TypeError(f"float activations need float weights, not {w.dtype}")
    wf = w.to(x.dtype)
    if shift is None:
        return (x * nm_mask(x, n, m, fmt=fmt)) @ wf.T
    if isinstance(shift, bool) or not isinstance(shift, (int, float, torch.Tensor)):
        raise TypeError(f"shift must be a number or a tensor, not {type(shift).__name__}")
    eta = torch.as_tensor(shift, dtype=x.dtype)
    if eta.dim() > 1 or (eta.dim() == 1 and eta.shape[0] != x.shape[1]):
        raise ValueError(
            f"shift must be one number or one per input channel [{x.shape[1]}]; "
            f"got shape {tuple(eta.shape)}"
        )
    d = x - eta
    return (d * nm_mask(d, n, m, fmt=fmt)) @ wf.T + eta.expand(x.shape[1]) @ wf.T

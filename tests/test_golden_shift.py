"""The static shift (S-PTS) of the golden sparse linear layer: y = W prune(sat(x - eta)) + W eta.

Every expectation is computed from Python integers (no overflow anywhere), element by element,
so the saturation, the rounding of eta and the accumulator's wrap-around are checked exactly.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import golden

settings.register_profile(
    "nmsparse", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("nmsparse")


def _round_half_even(v: float) -> int:
    return round(v)  # Python's round() is half to even


def _wrap(v: int, width: int) -> int:
    half = 1 << (width - 1)
    return (v + half) % (1 << width) - half


def _reference(x, w, n, m, eta, fmt, acc):
    """Python-int model of the hardware: per lane d = clamp(x - eta), rank rule, MAC, bias."""
    f = golden.get_format(fmt)
    k = len(x[0])
    etas = eta if isinstance(eta, list) else [eta] * k
    etas = [_round_half_even(e) if isinstance(e, float) else e for e in etas]
    out = []
    for row in x:
        d = [min(max(v - e, f.min), f.max) for v, e in zip(row, etas, strict=True)]
        kept = []
        for g in range(0, k, m):
            grp = [abs(v) for v in d[g : g + m]]
            for j, kj in enumerate(grp):
                rank = sum(1 for i, ki in enumerate(grp) if ki > kj or (ki == kj and i < j))
                kept.append(rank < n)
        out.append([
            _wrap(sum(wr[j] * d[j] for j in range(k) if kept[j])
                  + sum(wr[j] * etas[j] for j in range(k)), acc)
            for wr in w
        ])
    return out


@st.composite
def cases(draw):
    fmt = draw(st.sampled_from(["int4", "int8", "int16"]))
    f = golden.get_format(fmt)
    m = draw(st.sampled_from([2, 4, 5, 8, 12, 16]))
    n = draw(st.integers(1, m - 1))
    t, g, o = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    k = g * m
    pool = [f.min, f.min + 1, f.max, f.max - 1, 0, 1, -1] + draw(
        st.lists(st.integers(f.min, f.max), min_size=1, max_size=4))
    x = [[draw(st.sampled_from(pool)) for _ in range(k)] for _ in range(t)]
    w = [[draw(st.integers(-128, 127)) for _ in range(k)] for _ in range(o)]
    ev = st.one_of(
        st.integers(f.min, f.max),
        st.sampled_from([f.min, f.max, 0.5, 1.5, -0.5, -2.5]),
        st.floats(f.min + 0.0, f.max - 0.0).filter(lambda v: f.min <= round(v) <= f.max),
    )
    eta = draw(ev) if draw(st.booleans()) else [draw(ev) for _ in range(k)]
    acc = draw(st.sampled_from([32, 16, 10]))
    return fmt, n, m, x, w, eta, acc


@given(cases())
def test_shifted_sparse_linear_equals_python_int_model(case):
    fmt, n, m, x, w, eta, acc = case
    xt = torch.tensor(x, dtype=golden.dtype_of(fmt))
    wt = torch.tensor(w, dtype=torch.int8)
    shift = torch.tensor(eta, dtype=torch.float64) if isinstance(eta, list) else eta
    y = golden.sparse_linear(xt, wt, n, m, acc_width=acc, fmt=fmt, shift=shift)
    assert y.dtype == torch.int64
    assert y.tolist() == _reference(x, w, n, m, eta, fmt, acc)


def test_saturation_at_both_ends_and_the_most_negative_integer():
    x = torch.tensor([[-128, -127, 127, 126, 0, 5, -5, 1]], dtype=torch.int8)
    assert golden.shift_activations(x, 1).tolist() == [[-128, -128, 126, 125, -1, 4, -6, 0]]
    assert golden.shift_activations(x, -1).tolist() == [[-127, -126, 127, 127, 1, 6, -4, 2]]
    assert golden.shift_activations(x, -128).tolist() == [[0, 1, 127, 127, 127, 127, 123, 127]]
    want = [[-128, -128, 0, -1, -127, -122, -128, -126]]
    assert golden.shift_activations(x, 127).tolist() == want
    # -128 keeps the largest key (128) after the shift: it wins its group
    w = torch.eye(8, dtype=torch.int8)
    y = golden.sparse_linear(x, w, 1, 4, shift=0)
    assert y.tolist() == [[-128, 0, 0, 0, 0, 5, 0, 0]]
    # eta = 1: d = [-128, -128, 126, 125 | -1, 4, -6, 0]; ties at -128: index 0 wins
    y = golden.sparse_linear(x, w, 1, 4, shift=1)
    assert y.tolist() == [[-128 + 1, 1, 1, 1, 1, 1, -6 + 1, 1]]
    # int4 saturates at -8 and 7
    x4 = torch.tensor([[-8, 7, 3, -3]], dtype=torch.int8)
    assert golden.shift_activations(x4, 2, fmt="int4").tolist() == [[-8, 5, 1, -5]]
    assert golden.shift_activations(x4, -2, fmt="int4").tolist() == [[-6, 7, 5, -1]]


def test_accumulator_wraps_with_the_bias():
    # acc 8 bits: W prune(d) = 127 and bias 1 wrap to -128 together
    x = torch.tensor([[127, 0]], dtype=torch.int8)
    w = torch.tensor([[1, 1]], dtype=torch.int8)
    y = golden.sparse_linear(x, w, 1, 2, acc_width=8, shift=1)
    # d = [126, -1]; keep 126; + bias 1 * (1 + 1) = 128 -> wraps to -128
    assert y.tolist() == [[-128]]
    assert golden.shift_bias(w, 1, acc_width=8).tolist() == [2]
    big = torch.full((1, 16), 127, dtype=torch.int8)
    b = golden.shift_bias(big, -128, acc_width=12)
    assert b.tolist() == [_wrap(16 * 127 * -128, 12)]


def test_eta_rounding_half_to_even_and_per_channel():
    x = torch.zeros(1, 4, dtype=torch.int8)
    eta = torch.tensor([0.5, 1.5, 2.5, -0.5])
    assert golden.shift_activations(x, eta).tolist() == [[0, -2, -2, 0]]
    w = torch.tensor([[1, 2, 3, 4]], dtype=torch.int8)
    assert golden.shift_bias(w, eta).tolist() == [0 + 4 + 6 + 0]
    # a float eta equal to an integer is that integer
    assert golden.shift_activations(x, 3.0).tolist() == [[-3] * 4]


def test_shift_zero_is_the_plain_layer_and_float_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-128, 128, (4, 32), generator=g, dtype=torch.int8)
    w = torch.randint(-128, 128, (3, 32), generator=g, dtype=torch.int8)
    plain = golden.sparse_linear(x, w, 8, 16)
    assert torch.equal(golden.sparse_linear(x, w, 8, 16, shift=0), plain)
    xf = torch.randn(3, 32, generator=g)
    wf = torch.randn(5, 32, generator=g)
    d = xf - 0.25
    want = (d * golden.nm_mask(d, 8, 16)) @ wf.T + 0.25 * wf.sum(1)
    torch.testing.assert_close(golden.sparse_linear(xf, wf, 8, 16, shift=0.25), want)


@pytest.mark.parametrize(
    "shift, exc, words",
    [
        (128, ValueError, "outside the int8 range"),
        (-128.6, ValueError, "outside the int8 range"),
        (float("nan"), ValueError, "finite"),
        (torch.zeros(3), ValueError, "one per input channel"),
        ("1", TypeError, "number or a tensor"),
        (True, TypeError, "number or a tensor"),
    ],
)
def test_bad_shifts_are_named(shift, exc, words):
    x = torch.zeros(2, 8, dtype=torch.int8)
    w = torch.zeros(1, 8, dtype=torch.int8)
    with pytest.raises(exc, match=words):
        golden.sparse_linear(x, w, 2, 4, shift=shift)


def test_shift_activations_rejects_floats():
    with pytest.raises(ValueError, match="integer formats"):
        golden.shift_activations(torch.zeros(4), 1)

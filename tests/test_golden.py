"""The golden model: fast paths against the obviously-correct reference, and the contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import golden
from golden import _native

INT_FORMATS = ["int4", "int8", "int16"]
FLOAT_FORMATS = ["fp16", "bf16", "fp32"]
BACKENDS = ["native", "torch"]

# Bit patterns that matter for floats: zeros of both signs, subnormals, the largest finite
# value, infinities, NaNs with several payloads and both signs.
_SPECIAL = {
    "fp16": [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF,
             0x7C00, 0xFC00, 0x7C01, 0x7E00, 0x7FFF, 0xFFFF, 0xFE00],
    "bf16": [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x3F80, 0xBF80, 0x7F7F, 0xFF7F,
             0x7F80, 0xFF80, 0x7F81, 0x7FC0, 0x7FFF, 0xFFFF, 0xFFC0],
    "fp32": [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000,
             0x3F800000, 0xBF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000,
             0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0xFFFFFFFF],
}

settings.register_profile(
    "nmsparse", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("nmsparse")


@st.composite
def nm_pairs(draw):
    m = draw(st.sampled_from([2, 3, 4, 5, 6, 8, 12, 16, 32]))
    n = draw(st.integers(1, m - 1))
    return n, m


@st.composite
def tensors(draw, fmt: str, m: int):
    f = golden.get_format(fmt)
    rows = draw(st.integers(1, 4))
    groups = draw(st.integers(1, 3))
    count = rows * groups * m
    if f.is_int:
        # A small pool forces ties; the extremes are always candidates.
        pool = draw(st.lists(st.integers(f.min, f.max), min_size=1, max_size=4))
        pool += [f.min, f.max, 0, -1, 1]
        vals = draw(st.lists(st.sampled_from(pool), min_size=count, max_size=count))
        dtype = draw(st.sampled_from([golden.dtype_of(f), torch.int32, torch.int64]))
        return torch.tensor(vals, dtype=dtype).reshape(rows, groups * m)
    pool = list(_SPECIAL[fmt])
    pool += draw(st.lists(st.integers(0, (1 << f.width) - 1), min_size=1, max_size=6))
    bits = draw(st.lists(st.sampled_from(pool), min_size=count, max_size=count))
    return golden.from_bits(torch.tensor(bits, dtype=torch.int64), fmt).reshape(rows, groups * m)


def _fmt_arg(x: torch.Tensor, fmt: str) -> str | None:
    return fmt if fmt == "int4" or x.dtype in (torch.int32, torch.int64) else None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", INT_FORMATS + FLOAT_FORMATS)
@given(data=st.data())
def test_mask_equals_reference(fmt, backend, data):
    if backend == "native" and not _native.available():
        pytest.fail("the compiled fast path did not build on this machine")
    n, m = data.draw(nm_pairs())
    x = data.draw(tensors(fmt, m))
    fa = _fmt_arg(x, fmt)
    got = golden.nm_mask(x, n, m, fmt=fa, backend=backend)
    want = golden.nm_mask_reference(x, n, m, fmt=fa)
    assert got.dtype == torch.bool and got.shape == x.shape
    assert torch.equal(got, want), (x, got, want)
    assert (got.reshape(-1, m).sum(-1) == n).all()


@pytest.mark.parametrize("fmt", INT_FORMATS + FLOAT_FORMATS)
@given(data=st.data())
def test_compress_round_trip(fmt, data):
    n, m = data.draw(nm_pairs())
    x = data.draw(tensors(fmt, m))
    fa = _fmt_arg(x, fmt)
    values, index = golden.nm_compress(x, n, m, fmt=fa)
    g = x.shape[-1] // m
    assert values.shape == index.shape == (x.shape[0], g, n)
    assert values.dtype == x.dtype and index.dtype == torch.int64
    assert (index.diff(dim=-1) > 0).all()  # strictly ascending
    mask = golden.nm_mask_reference(x, n, m, fmt=fa)
    back = golden.nm_decompress(values, index, m)
    want = torch.where(mask, x, torch.zeros((), dtype=x.dtype))
    # bit-exact, so NaN payloads and -0.0 count
    assert torch.equal(golden.to_bits(back, fa), golden.to_bits(want, fa))


@given(data=st.data())
def test_sparse_linear_equals_dense_matmul_of_masked_input(data):
    n, m = data.draw(nm_pairs())
    x = data.draw(tensors("int8", m))
    t, k = x.shape
    o = data.draw(st.integers(1, 5))
    w = torch.tensor(
        data.draw(st.lists(st.integers(-128, 127), min_size=o * k, max_size=o * k)),
        dtype=torch.int8,
    ).reshape(o, k)
    acc = data.draw(st.sampled_from([32, 16, 12]))
    fa = _fmt_arg(x, "int8")
    y = golden.sparse_linear(x, w, n, m, acc_width=acc, fmt=fa)
    mask = golden.nm_mask_reference(x, n, m, fmt=fa).numpy()
    xs = np.where(mask, x.numpy().astype(object), 0)
    want = xs.dot(w.numpy().astype(object).T)  # Python ints: no overflow anywhere
    half = 1 << (acc - 1)
    want = (want + half) % (1 << acc) - half
    assert y.dtype == torch.int64
    assert y.tolist() == want.tolist()


def test_sparse_linear_float():
    torch.manual_seed(0)
    x = torch.randn(3, 32)
    w = torch.randn(5, 32)
    mask = golden.nm_mask(x, 8, 16)
    torch.testing.assert_close(golden.sparse_linear(x, w, 8, 16), (x * mask) @ w.T)


# ---- directed cases of the rule --------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_lower_index_wins(backend):
    x = torch.tensor([[5, 5, 5, 5, 3, -5, 5, 0]], dtype=torch.int8)
    got = golden.nm_mask(x, 2, 4, backend=backend)
    assert got.tolist() == [[True, True, False, False, False, True, True, False]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_zero_and_all_equal_groups_keep_the_first_n(backend):
    for fill in (0, 7, -8):
        x = torch.full((2, 16), fill, dtype=torch.int8)
        got = golden.nm_mask(x, 8, 16, backend=backend)
        assert got.tolist() == [[True] * 8 + [False] * 8] * 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_most_negative_integer_has_the_largest_key(backend):
    x = torch.tensor([[127, -128, 0, 1]], dtype=torch.int8)
    assert golden.nm_mask(x, 1, 4, backend=backend).tolist() == [[False, True, False, False]]
    x16 = torch.tensor([[32767, -32768, 0, 1]], dtype=torch.int16)
    assert golden.nm_mask(x16, 1, 4, backend=backend).tolist() == [[False, True, False, False]]
    x4 = torch.tensor([[7, -8, 0, 1]], dtype=torch.int8)
    assert golden.nm_mask(x4, 1, 4, fmt="int4", backend=backend).tolist() == [
        [False, True, False, False]
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", FLOAT_FORMATS)
def test_float_order_nan_above_inf_and_signed_zero(fmt, backend):
    dtype = golden.dtype_of(fmt)
    nan = torch.tensor(float("nan"), dtype=dtype)
    x = torch.stack([torch.tensor(float("inf"), dtype=dtype), -nan,
                     torch.tensor(-float("inf"), dtype=dtype), torch.tensor(1.0, dtype=dtype)])
    assert golden.nm_mask(x[None], 1, 4, backend=backend).tolist() == [[False, True, False, False]]
    assert golden.nm_mask(x[None], 3, 4, backend=backend).tolist() == [[True, True, True, False]]
    z = torch.tensor([[-0.0, 0.0, -0.0, 0.0]], dtype=dtype)
    assert golden.nm_mask(z, 2, 4, backend=backend).tolist() == [[True, True, False, False]]


def test_native_and_torch_agree_on_large_random_tensors():
    if not _native.available():
        pytest.fail("the compiled fast path did not build on this machine")
    g = torch.Generator().manual_seed(1)
    bits = torch.randint(0, 1 << 16, (64, 4096), generator=g)
    # few distinct keys: many ties
    xs = {
        "bf16": golden.from_bits(bits, "bf16"),
        "fp16": golden.from_bits(bits & 0x8007, "fp16"),
        "int8": torch.randint(-128, 128, (64, 4096), generator=g, dtype=torch.int8),
        "fp32": torch.randn(64, 4096, generator=g),
    }
    for name, x in xs.items():
        for n, m in [(2, 4), (4, 8), (8, 16), (16, 32), (3, 7), (50, 128)]:
            k = x.shape[-1] // m * m
            xx = x[:, :k].contiguous()
            a = golden.nm_mask(xx, n, m, backend="native")
            b = golden.nm_mask(xx, n, m, backend="torch")
            assert torch.equal(a, b), (name, n, m)


# ---- the byte kernel (int8 storage, M a power of two up to 32) and the rest -------------------

BYTE_M = [2, 4, 8, 16, 32]


def _rank_reference(x: torch.Tensor, n: int, m: int, fmt: str | None) -> torch.Tensor:
    """The rank formula on the contract's keys, broadcast over [groups, M, M] (fast enough
    for thousands of groups, and independent of both backends' composite keys)."""
    k = golden.keys(x, fmt).reshape(-1, m).numpy()
    ki, kj = k[:, :, None], k[:, None, :]  # [g, i, j]
    lower = np.arange(m)[:, None] < np.arange(m)[None, :]
    rank = ((ki > kj) | ((ki == kj) & lower)).sum(axis=1)
    return torch.from_numpy(rank < n).reshape(x.shape)


def _needs_native() -> None:
    if not _native.available():
        pytest.fail("the compiled fast path did not build on this machine")


def test_byte_kernel_is_taken_where_it_applies():
    _needs_native()
    for m in BYTE_M:
        assert _native.kernel(m, torch.int8) in ("byte", "generic")
    # only byte storage and power-of-two M up to 32; everything else stays generic
    for m in (3, 5, 12, 64):
        assert _native.kernel(m, torch.int8) == "generic"
    assert _native.kernel(16, torch.bfloat16) == "generic"
    assert _native.kernel(16, torch.int16) == "generic"
    if _native.kernel(16, torch.int8) != "byte":
        pytest.skip("this CPU has no AVX-512 VBMI: the byte kernel is not compiled in")


@st.composite
def byte_tensors(draw, fmt: str, m: int):
    """Many groups (past one 64-group block and its tail), values from a small pool of keys
    with both extremes, and whole groups of one value (all zeros, all -128, all equal)."""
    f = golden.get_format(fmt)
    groups = draw(st.integers(1, 200))
    pool = [f.min, f.max, 0, -1, 1, f.min + 1] + draw(
        st.lists(st.integers(f.min, f.max), min_size=0, max_size=5))
    # the values from a drawn seed: drawing thousands of list items one by one is slow
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    idx = torch.randint(0, len(pool), (groups, m), generator=g)
    x = torch.tensor(pool, dtype=torch.int8)[idx]
    for grp in draw(st.lists(st.integers(0, groups - 1), max_size=4)):
        x[grp] = draw(st.sampled_from([0, f.min, f.max, 1]))
    return x.reshape(1, groups * m)


@pytest.mark.parametrize("fmt", ["int4", "int8"])
@pytest.mark.parametrize("m", BYTE_M + [5, 12])
@given(data=st.data())
def test_byte_storage_masks_equal_reference_past_one_block(fmt, m, data):
    _needs_native()
    n = data.draw(st.integers(1, m - 1))
    x = data.draw(byte_tensors(fmt, m))
    got = golden.nm_mask(x, n, m, fmt=fmt, backend="native")
    assert torch.equal(got, _rank_reference(x, n, m, fmt)), (n, m, x)
    if x.numel() <= 16 * m:  # and the slow reference of the contract on the small ones
        assert torch.equal(got, golden.nm_mask_reference(x, n, m, fmt=fmt))


@pytest.mark.parametrize("m", BYTE_M + [5, 12])
def test_byte_kernel_every_n_large_tensors_and_the_parallel_path(m):
    _needs_native()
    g = torch.Generator().manual_seed(m)
    rows = 65  # 65 x 65 groups: > 64 blocks of 64 groups (OpenMP) and a ragged tail
    x = torch.randint(-128, 128, (rows, 64 * m + m), generator=g, dtype=torch.int8)
    x[::7] = torch.randint(-2, 3, x[::7].shape, generator=g, dtype=torch.int8)  # many ties
    x[1, : 2 * m] = -128
    x[2, : 2 * m] = 0
    x4 = torch.randint(-8, 8, x.shape, generator=g, dtype=torch.int8)
    for n in range(1, m):
        for xx, fmt in ((x, "int8"), (x4, "int4")):
            a = golden.nm_mask(xx, n, m, fmt=fmt, backend="native")
            assert torch.equal(a, _rank_reference(xx, n, m, fmt)), (n, m, fmt)
            assert (a.reshape(-1, m).sum(-1) == n).all()


@pytest.mark.parametrize("fmt", INT_FORMATS + FLOAT_FORMATS)
@pytest.mark.parametrize("n, m", [(2, 4), (8, 16), (16, 32), (5, 12), (1, 2), (31, 32)])
def test_every_format_with_specials_in_many_groups(fmt, n, m):
    """Zeros, extremes, the most negative integer, NaN/Inf of both signs: native == reference."""
    _needs_native()
    f = golden.get_format(fmt)
    g = torch.Generator().manual_seed(n * 100 + m)
    pats = torch.tensor(f.special_patterns(), dtype=torch.int64)
    idx = torch.randint(0, len(pats), (70 * m,), generator=g)
    x = golden.from_bits(pats[idx], fmt).reshape(1, -1)
    x[0, :m] = golden.from_bits(torch.zeros(m, dtype=torch.int64), fmt)  # an all-zero group
    got = golden.nm_mask(x, n, m, fmt=fmt if fmt == "int4" else None, backend="native")
    want = golden.nm_mask_reference(x, n, m, fmt=fmt if fmt == "int4" else None)
    assert torch.equal(got, want)


def test_mask_of_a_view_with_leading_dims():
    x = torch.randn(2, 3, 64).to(torch.bfloat16)
    xt = x.transpose(0, 1)  # non-contiguous
    got = golden.nm_mask(xt, 8, 16)
    assert torch.equal(got, golden.nm_mask_reference(xt.contiguous(), 8, 16))


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, m, exc, words",
    [
        (4, 4, ValueError, "n = 4"),
        (0, 4, ValueError, "n = 0"),
        (5, 4, ValueError, "n = 5"),
        (1, 1, ValueError, "m must be at least 2"),
        (2.0, 4, TypeError, "2.0"),
        (True, 4, TypeError, "True"),
    ],
)
def test_invalid_nm(n, m, exc, words):
    with pytest.raises(exc, match=words):
        golden.nm_mask(torch.zeros(1, 8, dtype=torch.int8), n, m)


@pytest.mark.parametrize(
    "x, fmt, exc, words",
    [
        (torch.zeros(1, 6, dtype=torch.int8), None, ValueError, r"last dimension \(6\)"),
        (torch.zeros(1, 8, dtype=torch.uint8), None, TypeError, "torch.uint8"),
        (torch.zeros(1, 8, dtype=torch.float64), None, TypeError, "torch.float64"),
        (torch.zeros(1, 8, dtype=torch.bool), None, TypeError, "torch.bool"),
        (torch.zeros(1, 8, dtype=torch.int32), None, TypeError, "pass fmt="),
        (torch.zeros(1, 8), "bf16", TypeError, "torch.float32"),
        (torch.zeros(1, 8), "int8", TypeError, "torch.float32"),
        (torch.zeros(1, 8, dtype=torch.int8), "int3", ValueError, "'int3'"),
        (torch.tensor([[0, 0, 0, 8]], dtype=torch.int8), "int4", ValueError, "value 8"),
        (torch.tensor([[0, 0, 0, -200]], dtype=torch.int32), "int8", ValueError, "value -200"),
        ([1, 2, 3, 4], None, TypeError, "list"),
    ],
)
def test_bad_tensors(x, fmt, exc, words):
    with pytest.raises(exc, match=words):
        golden.nm_mask(x, 2, 4, fmt=fmt)


@pytest.mark.parametrize("text", ["8-16", "8:", "a:b", "16:8", "0:4", "4:4", "8:16:32", ""])
def test_parse_pattern_rejects(text):
    with pytest.raises(ValueError, match="pattern"):
        golden.parse_pattern(text)


def test_parse_pattern():
    assert golden.parse_pattern("8:16") == (8, 16)
    assert golden.parse_pattern(" 2:4 ") == (2, 4)


def test_decompress_rejects_bad_index():
    v = torch.zeros(1, 2, 2, dtype=torch.int8)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        golden.nm_decompress(v, torch.full((1, 2, 2), 4), 4)
    with pytest.raises(ValueError, match="share a shape"):
        golden.nm_decompress(v, torch.zeros(1, 2, 3, dtype=torch.int64), 4)


def test_sparse_linear_rejects_mismatch():
    x = torch.zeros(2, 16, dtype=torch.int8)
    with pytest.raises(ValueError, match="K = 16"):
        golden.sparse_linear(x, torch.zeros(3, 8, dtype=torch.int8), 8, 16)
    with pytest.raises(ValueError, match="acc_width"):
        golden.sparse_linear(x, torch.zeros(3, 16, dtype=torch.int8), 8, 16, acc_width=0)


def test_bits_round_trip():
    for fmt in FLOAT_FORMATS:
        bits = torch.tensor(_SPECIAL[fmt], dtype=torch.int64)
        assert torch.equal(golden.to_bits(golden.from_bits(bits, fmt), fmt), bits)
    with pytest.raises(ValueError, match="2\\*\\*16"):
        golden.from_bits(torch.tensor([1 << 16]), "bf16")


def test_quantize_per_token():
    x = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    q, s = golden.quantize_per_token(x)
    assert q.dtype == torch.int8 and q[0].tolist() == [64, -127, 32, 0] and q[1].abs().sum() == 0
    with pytest.raises(ValueError, match="NaN"):
        golden.quantize_per_token(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(TypeError):
        golden.quantize_per_token(torch.zeros(2, dtype=torch.int8))

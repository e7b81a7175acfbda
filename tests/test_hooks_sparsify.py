"""golden.llm.sparsify: N:M activation sparsity hooks, criteria and mitigations on real modules."""

from __future__ import annotations

import pytest
import torch
from conftest import seed
from torch import nn

import golden
from golden.llm import criteria, hooks, mitigations
from golden.llm.hooks import Sparsity, parse_sparsity, sparsify, sparsify_tensor


class _Attn(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.q_proj = nn.Linear(d, d, bias=True)
        self.k_proj = nn.Linear(d, d // 2, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q_proj(h), self.k_proj(h), self.v_proj(h)
        return self.o_proj(torch.tanh(q) * v + k.sum(-1, keepdim=True))


class _Mlp(nn.Module):
    def __init__(self, d: int, f: int):
        super().__init__()
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.down_proj(nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))


class TinyLM(nn.Module):
    """A small Llama-shaped stack of real nn.Linear layers (inputs are embeddings)."""

    def __init__(self, d: int = 32, f: int = 64, layers: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleDict({"self_attn": _Attn(d), "mlp": _Mlp(d, f)}) for _ in range(layers)
        )
        self.lm_head = nn.Linear(d, 11, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for blk in self.layers:
            h = h + blk["self_attn"](h)
            h = h + blk["mlp"](h)
        return self.lm_head(h)


def _model() -> TinyLM:
    torch.manual_seed(seed())
    return TinyLM().eval()


def _record_inputs(model: nn.Module) -> tuple[dict[str, torch.Tensor], list]:
    """Inputs each Linear actually receives (registered after sparsify's hooks run first)."""
    seen: dict[str, torch.Tensor] = {}
    hs = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            hs.append(
                mod.register_forward_pre_hook(
                    lambda _m, a, _n=name: seen.__setitem__(_n, a[0].detach().clone())
                )
            )
    return seen, hs


def _groups_nonzero(x: torch.Tensor, m: int) -> torch.Tensor:
    return (x.reshape(-1, x.shape[-1] // m, m) != 0).sum(-1)


@pytest.mark.parametrize("pattern", ["2:4", "8:16", "16:32"])
def test_exactly_n_of_m_on_targets_rest_untouched(pattern: str) -> None:
    model = _model()
    n, m = golden.parse_pattern(pattern)
    gen = torch.Generator().manual_seed(seed())
    x = torch.randn(3, 5, 32, generator=gen)
    with torch.no_grad():
        dense_out = model(x)
        with sparsify(model, pattern) as h:
            seen, hs = _record_inputs(model)
            model(x)
            for hk in hs:
                hk.remove()
        assert torch.equal(model(x), dense_out)  # restored bit-exactly
    assert h.sites == 2 * 4  # qkv, o, gate/up, down per block
    assert len(h.layers) == 14 and not any("lm_head" in n_ for n_ in h.layers)
    for name, inp in seen.items():
        if "lm_head" in name:
            continue
        counts = _groups_nonzero(inp, m)
        assert (counts == n).all(), (name, counts.unique())
    # lm_head sees the (changed) hidden state but is itself dense: its input is not N:M
    assert (_groups_nonzero(seen["lm_head"], m) > n).any()


def test_hook_input_equals_golden_mask_and_biases_kept() -> None:
    model = _model()
    gen = torch.Generator().manual_seed(seed() + 1)
    x = torch.randn(2, 7, 32, generator=gen)
    lin = model.layers[0]["self_attn"].q_proj
    captured: dict[str, torch.Tensor] = {}
    h0 = lin.register_forward_hook(lambda _m, a, out: captured.update(inp=a[0], out=out))
    with torch.no_grad(), sparsify(model, "8:16", targets=("q_proj", "k_proj", "v_proj")):
        model(x)
    h0.remove()
    inp = captured["inp"]
    assert (_groups_nonzero(inp, 16) <= 8).all()
    # the Linear computed W x_sparse + b with the unchanged bias
    torch.testing.assert_close(captured["out"], inp @ lin.weight.T + lin.bias)


def test_sparsify_tensor_is_nm_mask_rule_with_ties() -> None:
    # ties at equal magnitude: the lower index wins (DESIGN.md section 1), signs ignored
    x = torch.tensor([[1.0, -1.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0]])
    assert sparsify_tensor(x, "2:4").tolist() == [[1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    gen = torch.Generator().manual_seed(seed())
    x = torch.randn(4, 6, 64, generator=gen).round()  # many ties
    out = sparsify_tensor(x, "4:8")
    assert torch.equal(out, x * golden.nm_mask(x, 4, 8))


def test_unstructured_top_fraction_per_token() -> None:
    x = torch.tensor([[3.0, -1.0, 2.0, 2.0, 0.5, -4.0]])
    sp = parse_sparsity("unstructured:0.5")
    assert sp == Sparsity("unstructured", fraction=0.5) and sp.keep(6) == 3
    # keeps -4, 3 and the first 2 (lower index wins the tie)
    assert sparsify_tensor(x, sp).tolist() == [[3.0, 0.0, 2.0, 0.0, 0.0, -4.0]]
    gen = torch.Generator().manual_seed(seed())
    y = torch.randn(5, 96, generator=gen)
    assert ((sparsify_tensor(y, "unstructured:0.25") != 0).sum(-1) == 72).all()


@pytest.mark.parametrize(
    "bad", ["8:8", "0:4", "8-16", "unstructured", "unstructured:1.5", "unstructured:x", ""]
)
def test_bad_patterns_are_named(bad: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        parse_sparsity(bad)


def test_bad_arguments_are_clear() -> None:
    model = _model()
    with pytest.raises(ValueError, match="criterion"):
        hooks.apply_sparsity(model, "2:4", criterion="random")
    with pytest.raises(ValueError, match="mitigation"):
        hooks.apply_sparsity(model, "2:4", mitigation="magic")
    with pytest.raises(ValueError, match="calibration"):
        hooks.apply_sparsity(model, "2:4", mitigation="spts")
    with pytest.raises(ValueError, match="no nn.Linear"):
        hooks.apply_sparsity(model, "2:4", targets=("c_attn",))
    with pytest.raises(ValueError, match="multiple of m = 64"):
        hooks.apply_sparsity(model, "32:64")
    with pytest.raises(TypeError, match="string"):
        hooks.apply_sparsity(model, "2:4", targets="q_proj")


def test_shared_input_sites_one_mask() -> None:
    model = _model()
    x = torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(seed()))
    attn = model.layers[0]["self_attn"]
    seen, hs = {}, []
    with torch.no_grad(), sparsify(model, "2:4", criterion="weight_norm_site"):
        for nm in ("q_proj", "k_proj", "v_proj"):
            hs.append(
                getattr(attn, nm).register_forward_pre_hook(
                    lambda _m, a, _n=nm: seen.__setitem__(_n, a[0])
                )
            )
        model(x)
    for hk in hs:
        hk.remove()
    assert seen["q_proj"] is seen["k_proj"] is seen["v_proj"]
    # the paper's weight_norm (Amber-Pruner) is per layer: one mask per Linear
    seen.clear()
    hs.clear()
    with torch.no_grad(), sparsify(model, "2:4", criterion="weight_norm") as h:
        for nm in ("q_proj", "k_proj", "v_proj"):
            hs.append(
                getattr(attn, nm).register_forward_pre_hook(
                    lambda _m, a, _n=nm: seen.__setitem__(_n, a[0])
                )
            )
        model(x)
    for hk in hs:
        hk.remove()
    assert h.sites == 14
    assert not torch.equal(seen["q_proj"] != 0, seen["k_proj"] != 0)


def test_weight_pruning_nm_per_row_and_restored() -> None:
    model = _model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with sparsify(model, None, weight_pattern="2:4"):
        for name, mod in model.named_modules():
            if isinstance(mod, nn.Linear):
                w = mod.weight
                if "lm_head" in name:
                    assert torch.equal(w, before[f"{name}.weight"])
                else:
                    assert (_groups_nonzero(w, 4) == 2).all()
                    assert torch.equal(w, before[f"{name}.weight"] * (w != 0))
                    assert torch.equal(w != 0, golden.nm_mask(before[f"{name}.weight"], 2, 4))
                if mod.bias is not None:
                    assert torch.equal(mod.bias, before[f"{name}.bias"])
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n


def test_permanent_variant_and_restore_after_exception() -> None:
    model = _model()
    x = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(seed()))
    with torch.no_grad():
        ref = model(x)
        h = hooks.apply_sparsity(model, "4:8", weight_pattern="2:4")
        assert not torch.equal(model(x), ref)
        assert not torch.equal(model(x), ref)  # stays applied across passes
        h.remove()
        h.remove()  # idempotent
        assert torch.equal(model(x), ref)
        with (
            pytest.raises(RuntimeError, match="boom"),
            sparsify(model, "2:4", weight_pattern="2:4"),
        ):
            raise RuntimeError("boom")
        assert torch.equal(model(x), ref)


# ---------------------------------------------------------------------------- criteria


def test_weight_norm_site_and_clact_scores() -> None:
    gen = torch.Generator().manual_seed(seed())
    x = torch.randn(6, 32, generator=gen)
    w1, w2 = torch.randn(8, 32, generator=gen), torch.randn(4, 32, generator=gen)
    f = criteria.weight_norm_factor([w1, w2])
    torch.testing.assert_close(f, torch.cat([w1, w2]).norm(dim=0))
    out = sparsify_tensor(x, "8:16", criterion="weight_norm_site", factor=f)
    assert torch.equal(out != 0, golden.nm_mask(x.abs() * f, 8, 16))
    c = criteria.clact_score(x)
    ref = x.abs() * x.norm(dim=0, keepdim=True) / (x.norm(dim=1, keepdim=True) + 1e-8)
    torch.testing.assert_close(c, ref)
    out = sparsify_tensor(x, "8:16", criterion="clact")
    assert torch.equal(out != 0, golden.nm_mask(ref, 8, 16))
    for crit in ("weight_norm", "weight_norm_site", "var_weight"):
        with pytest.raises(ValueError, match="factor"):
            criteria.score(crit, x)


# ------------------------------------------------------------------- mitigations: error


def _layer_error(x: torch.Tensor, w: torch.Tensor, xs: torch.Tensor) -> float:
    return float(((xs - x) @ w.T).square().mean())


def _imbalanced(gen: torch.Generator, t: int = 256, k: int = 64, o: int = 48):
    """Channels whose activation scale is the inverse of their weight scale: magnitude
    selection keeps the loud channels although the quiet ones matter as much for y."""
    a = torch.exp(torch.randn(k, generator=gen) * 1.5)
    x = torch.randn(t, k, generator=gen) * a
    w = torch.randn(o, k, generator=gen) / a
    return x, w


def test_dpts_and_spts_reduce_error_on_shifted_activations() -> None:
    gen = torch.Generator().manual_seed(seed())
    k = 64
    offset = 3.0 + torch.randn(200, 1, generator=gen) * 0.2  # per-token offset ~3
    x = torch.randn(200, k, generator=gen) + offset
    w = torch.randn(32, k, generator=gen)
    base = _layer_error(x, w, sparsify_tensor(x, "8:16"))
    dpts = _layer_error(x, w, sparsify_tensor(x, "8:16", mitigation="dpts"))
    # spts: eta calibrated on other data from the same distribution
    calib = torch.randn(200, k, generator=gen) + 3.0
    stats = mitigations.SiteStats()
    stats.update(calib)
    assert abs(stats.eta - 3.0) < 0.2
    spts = _layer_error(x, w, sparsify_tensor(x, "8:16", mitigation="spts", eta=stats.eta))
    assert dpts < 0.2 * base and spts < 0.3 * base, (base, dpts, spts)


def test_dpts_is_shift_prune_unshift() -> None:
    x = torch.tensor([[5.0, 6.0, 4.0, 5.0, 9.0, 5.0, 5.0, 1.0]])
    eta = mitigations.token_median(x)  # lower median: 5
    assert float(eta) == 5.0
    out = sparsify_tensor(x, "2:4", mitigation="dpts")
    # x - 5 = [0, 1, -1, 0 | 4, 0, 0, -4] -> keep [1, -1 | 4, -4], then + 5
    assert out.tolist() == [[5.0, 6.0, 4.0, 5.0, 9.0, 5.0, 5.0, 1.0]]
    x2 = torch.tensor([[5.0, 7.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]])
    assert sparsify_tensor(x2, "1:4", mitigation="dpts").tolist() == x2.tolist()


def test_scaling_and_weight_norm_reduce_error_on_imbalanced_channels() -> None:
    gen = torch.Generator().manual_seed(seed())
    x, w = _imbalanced(gen)
    calib, _ = _imbalanced(torch.Generator().manual_seed(seed()))  # same channel scales
    base = _layer_error(x, w, sparsify_tensor(x, "8:16"))
    s = mitigations.smooth_scale(calib.abs().amax(0), [w])
    # scaling: the selector ranks x / s; the layer computes (x / s)(W s)^T = x W^T on the kept
    static = _layer_error(x, w, sparsify_tensor(x, "8:16", mitigation="scaling_static", scale=s))
    batch = _layer_error(x, w, sparsify_tensor(x, "8:16", mitigation="scaling_batch",
                                               weight_absmax=w.abs().amax(0)))
    wn = _layer_error(x, w, sparsify_tensor(
        x, "8:16", criterion="weight_norm_site", factor=criteria.weight_norm_factor([w])))
    assert static < 0.8 * base and batch < 0.8 * base and wn < 0.8 * base, (
        base, static, batch, wn)


def test_var_matches_dense_variance() -> None:
    gen = torch.Generator().manual_seed(seed())
    x = torch.randn(64, 128, generator=gen) * torch.rand(64, 1, generator=gen) * 3
    w = torch.randn(256, 128, generator=gen)
    plain = sparsify_tensor(x, "4:16")
    var = sparsify_tensor(x, "4:16", mitigation="var")
    torch.testing.assert_close(var.var(-1), x.var(-1), rtol=1e-4, atol=1e-6)
    assert torch.equal(var != 0, plain != 0)
    # the output variance per token moves towards the dense one
    yd, yp, yv = x @ w.T, plain @ w.T, var @ w.T
    gap_p = (yp.var(-1) - yd.var(-1)).abs().mean()
    gap_v = (yv.var(-1) - yd.var(-1)).abs().mean()
    assert gap_v < 0.5 * gap_p, (gap_p, gap_v)


def test_calibrate_records_per_layer_stats() -> None:
    model = _model()
    gen = torch.Generator().manual_seed(seed())
    batches = [torch.randn(2, 5, 32, generator=gen) + 1.0 for _ in range(2)]
    cal = mitigations.calibrate(model, batches, source="random")
    assert set(cal.stats) == {
        n for n, m in model.named_modules() if isinstance(m, nn.Linear) and "lm_head" not in n
    }
    st = cal["layers.0.self_attn.q_proj"]
    assert st.tokens == 20 and st.absmax.shape == (32,)
    allx = torch.cat([b.reshape(-1, 32) for b in batches])
    torch.testing.assert_close(st.absmax, allx.abs().amax(0))
    with torch.no_grad(), sparsify(model, "8:16", mitigation="scaling", calibration=cal):
        model(batches[0])  # the old name of scaling_static
    with torch.no_grad(), sparsify(model, "8:16", mitigation="scaling_static", calibration=cal):
        model(batches[0])
    with pytest.raises(KeyError, match="no calibration"):
        cal["nope"]


@pytest.mark.parametrize("k", [1, 2, 7, 16, 576])
def test_token_median_fast_path_equals_torch_median(k: int) -> None:
    """The compiled radix select (golden._native.row_median) gives torch.median's value: odd
    and even K (lower median), repeated values, +-inf, and NaN rows (NaN)."""
    gen = torch.Generator().manual_seed(seed() + k)
    x = torch.randn(64, k, generator=gen)
    x[1::4] = torch.randint(-2, 3, (len(x[1::4]), k), generator=gen).float()  # many ties
    x[2, 0] = float("inf")
    x[3, -1] = -float("inf")
    x[5, k // 2] = float("nan")
    ref = x.median(dim=-1, keepdim=True).values
    got = mitigations.token_median(x)
    if golden._native.available():
        assert golden._native.row_median(x) is not None
    assert got.shape == ref.shape
    assert torch.equal(got.isnan(), ref.isnan())
    assert torch.equal(got[~got.isnan()], ref[~ref.isnan()])


def test_var_rescale_matches_the_population_variance() -> None:
    gen = torch.Generator().manual_seed(seed())
    x = torch.randn(8, 64, generator=gen) * 3 + 1
    xs = x * (torch.rand(8, 64, generator=gen) > 0.5)
    xs[0] = 0  # a token with no kept value stays unscaled
    want = (x.var(dim=-1, keepdim=True, unbiased=False)
            / xs.var(dim=-1, keepdim=True, unbiased=False)).sqrt()
    want[0] = 1.0
    torch.testing.assert_close(mitigations.var_rescale(x, xs), xs * want, rtol=1e-5, atol=1e-6)

"""Each method of arXiv 2509.22166 against a small example computed by hand from its formula.

The formulas are those of the paper and of its code (On-Point-RND/
Structured-Sparse-Activations-Inference, ``Linear_act_sp`` and ``sequential_train``); every
expected number below is worked out in the comment next to it.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import seed
from torch import nn

import golden
from golden.llm import criteria, hooks, learned, mitigations, quality
from golden.llm.hooks import sparsify, sparsify_tensor
from golden.llm.mitigations import Calibration, SiteStats


class _One(nn.Module):
    """A module with one targeted Linear, ``q_proj``, of the given weight (no bias)."""

    def __init__(self, w: torch.Tensor, bias: bool = False):
        super().__init__()
        self.q_proj = nn.Linear(w.shape[1], w.shape[0], bias=bias)
        with torch.no_grad():
            self.q_proj.weight.copy_(w)
            if bias:
                self.q_proj.bias.fill_(0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q_proj(x)


def _seen_input(model: nn.Module, x: torch.Tensor, **kw) -> torch.Tensor:
    got = {}
    with torch.no_grad(), sparsify(model, **kw):
        # registered after sparsify's hook, so it sees the sparsified input
        h = model.q_proj.register_forward_pre_hook(lambda _m, a: got.update(x=a[0]))
        try:
            model(x)
        finally:
            h.remove()
    return got["x"]


# ------------------------------------------------------------------------------- criteria


def test_amber_pruner_factor_by_hand():
    # W = [[1, 2, 3], [4, 5, 100]]: 6 entries (< 100k: no subsample). torch.quantile on the
    # sorted [1, 2, 3, 4, 5, 100] interpolates at 5 * 0.005 = 0.025 -> 1.025 and at
    # 5 * 0.995 = 4.975 -> 5 + 0.975 * 95 = 97.625: the 1 and the 100 drop out. The rest
    # [2, 3, 4, 5] has mean 3.5 and (biased) variance 1.25. Column norms of (W - 3.5):
    # col 0 (-2.5, 0.5): 6.5; col 1 (-1.5, 1.5): 4.5; col 2 (-0.5, 96.5): 9312.5 (squared,
    # all divided by 1.25), and f = norm / min norm = sqrt(sq / 4.5).
    w = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]])
    want = torch.tensor([math.sqrt(6.5 / 4.5), 1.0, math.sqrt(9312.5 / 4.5)])
    torch.testing.assert_close(criteria.amber_factor(w), want)
    # one token [3, -2.9, 0.1]: scores [3 * 1.2019, 2.9, 0.1 * 45.49] = [3.61, 2.9, 4.55]:
    # 1:3 keeps feature 2 (magnitude would keep feature 0)
    x = torch.tensor([[3.0, -2.9, 0.1]])
    got = _seen_input(_One(w), x, pattern="1:3", criterion="weight_norm")
    assert torch.equal(got, x * torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(_seen_input(_One(w), x, pattern="1:3"), x * torch.tensor([1.0, 0, 0]))


def test_amber_pruner_subsample_above_100k_entries():
    g = torch.Generator().manual_seed(seed())
    w = torch.randn(300, 400, generator=g)  # 120,000 entries: quantiles on 50,000 draws
    flat = w.reshape(-1)
    idx = torch.randint(0, flat.numel(), (50_000,), generator=torch.Generator().manual_seed(7))
    lo, hi = torch.quantile(flat[idx], torch.tensor([0.005, 0.995]))
    kept = w[(w >= lo) & (w <= hi)]
    norms = ((w - kept.mean()) / kept.std(unbiased=False)).norm(dim=0)
    torch.testing.assert_close(criteria.amber_factor(w, seed=7), norms / norms.min())
    assert torch.equal(criteria.amber_factor(w, seed=7), criteria.amber_factor(w, seed=7))


def test_var_weight_by_hand():
    # W rows (1, 0), (3, 1), (5, -1): column 0 has mean 3 and unbiased variance
    # (4 + 0 + 4) / 2 = 4; column 1 mean 0, variance (0 + 1 + 1) / 2 = 1
    w = torch.tensor([[1.0, 0.0], [3.0, 1.0], [5.0, -1.0]])
    torch.testing.assert_close(criteria.var_weight_factor(w), torch.tensor([4.0, 1.0]))
    # token [1, 3]: scores [4, 3] -> 1:2 keeps feature 0 (magnitude: feature 1)
    x = torch.tensor([[1.0, 3.0]])
    assert _seen_input(_One(w), x, pattern="1:2", criterion="var_weight").tolist() == [[1.0, 0.0]]


def test_clact_pools_the_batch_by_hand():
    # two sequences of one token: A = [1, 2, 0.5, 0.25], B = [10, 0, 1, 1]
    x = torch.tensor([[[1.0, 2.0, 0.5, 0.25]], [[10.0, 0.0, 1.0, 1.0]]])
    # column norms over both tokens: [sqrt(101), 2, sqrt(1.25), sqrt(1.0625)];
    # ||A|| = sqrt(5.3125); A's scores = |A| * col / ||A||
    col = torch.tensor([math.sqrt(101), 2.0, math.sqrt(1.25), math.sqrt(1.0625)])
    row_a = math.sqrt(5.3125)
    want_a = torch.tensor([1.0, 2.0, 0.5, 0.25]) * col / (row_a + 1e-8)
    got = criteria.clact_score(x, pool="batch")
    torch.testing.assert_close(got[0, 0], want_a)
    # 1:2 on A: pooled [4.36, 1.74 | 0.24, 0.11] keeps features 0 and 2; per sequence the
    # column norm is |A| itself: A^2 / ||A|| = [1, 4 | 0.25, 0.0625] / ||A|| keeps 1 and 2
    out = sparsify_tensor(x, "1:2", criterion="clact")
    assert out[0, 0].tolist() == [1.0, 0.0, 0.5, 0.0]
    out = sparsify_tensor(x, "1:2", criterion="clact_seq")
    assert out[0, 0].tolist() == [0.0, 2.0, 0.5, 0.0]


def test_unstructured_clact_and_amber_select_over_the_whole_tensor():
    # T = 2 tokens, K = 4, s = 0.5: int(8 * 0.5) = 4 kept over the whole tensor.
    # A = [1, 1, 1, 1], B = [1, .01, .01, .01]: col = [sqrt(2), c, c, c], c = sqrt(1.0001);
    # ||A|| = 2, ||B|| = sqrt(1.0003): A -> [0.707, c/2, c/2, c/2], B -> [1.414, ~0.01, ...].
    # The four largest: B0, A0 and two of the tied A1..A3 (the lower flat index: A1, A2).
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.01, 0.01, 0.01]])
    out = sparsify_tensor(x, "unstructured:0.5", criterion="clact")
    assert (out != 0).tolist() == [[True, True, True, False], [True, False, False, False]]
    # per token (magnitude) keeps int(4 * 0.5) = 2 of each
    out = sparsify_tensor(x, "unstructured:0.5")
    assert (out != 0).sum(-1).tolist() == [2, 2]
    # Amber-Pruner unstructured: |x| * f over the whole tensor too
    f = torch.tensor([1.0, 1.0, 1.0, 2.0])
    out = sparsify_tensor(x, "unstructured:0.5", criterion="weight_norm", factor=f)
    # scores A = [1, 1, 1, 2], B = [1, .01, .01, .02]: A3, then A0, A1, A2 (ties at 1 with
    # B0: the lower flat index wins, and A0..A2 come before B0)
    assert (out != 0).tolist() == [[True, True, True, True], [False, False, False, False]]


def test_unstructured_magnitude_keeps_int_k_times_one_minus_s():
    # K = 3, s = 0.1: int(3 * 0.9) = int(2.7) = 2 kept (K - round(s K) would keep 3)
    assert hooks.keep_count(3, 0.1) == 2 and hooks.keep_count(576, 0.5) == 288
    x = torch.tensor([[3.0, 1.0, -2.0]])
    assert sparsify_tensor(x, "unstructured:0.1").tolist() == [[3.0, 0.0, -2.0]]


# ---------------------------------------------------------------------------- mitigations


def test_scaling_batch_by_hand():
    # W = [[8, 1], [-3, 0.5]]: max_o |W| = [8, 1]; tokens x = [1.5, -2], [2, 1]: max_t |x| =
    # [2, 2]; s = sqrt([2 / 8, 2 / 1]) = [0.5, 1.4142]. x / s = [3, -1.41], [4, 0.71]: 1:2
    # keeps feature 0 of both (magnitude keeps feature 1 of the first token). The Linear sees
    # the kept x itself: (x / s) (W s)^T = x W^T.
    w = torch.tensor([[8.0, 1.0], [-3.0, 0.5]])
    x = torch.tensor([[[1.5, -2.0], [2.0, 1.0]]])
    torch.testing.assert_close(mitigations.batch_scale(x, w.abs().amax(0)),
                               torch.tensor([0.5, math.sqrt(2.0)]))
    got = _seen_input(_One(w), x, pattern="1:2", mitigation="scaling_batch")
    assert got.tolist() == [[[1.5, 0.0], [2.0, 0.0]]]
    assert _seen_input(_One(w), x, pattern="1:2").tolist() == [[[0.0, -2.0], [2.0, 0.0]]]
    # run time: the same token in another batch, with 40 in channel 0: s = [sqrt(40 / 8),
    # sqrt(2)] = [2.236, 1.414], so [1.5, -2] / s = [0.67, -1.41] keeps feature 1 now
    x2 = torch.tensor([[[1.5, -2.0], [40.0, 0.0]]])
    got = _seen_input(_One(w), x2, pattern="1:2", mitigation="scaling_batch")
    assert got.tolist() == [[[0.0, -2.0], [40.0, 0.0]]]


def test_scaling_static_by_hand():
    # calibrated max |x| = [2, 2]; sibling weights q = [[8, 1]], k = [[1, 4]]: max = [8, 4];
    # s = sqrt(2 / 8), sqrt(2 / 4) = [0.5, 0.7071]
    s = mitigations.smooth_scale(torch.tensor([2.0, 2.0]),
                                 [torch.tensor([[8.0, 1.0]]), torch.tensor([[1.0, 4.0]])])
    torch.testing.assert_close(s, torch.tensor([0.5, math.sqrt(0.5)]))
    # token [1.5, -2]: x / s = [3, -2.83] -> keeps feature 0
    out = sparsify_tensor(torch.tensor([[1.5, -2.0]]), "1:2", mitigation="scaling_static",
                          scale=s)
    assert out.tolist() == [[1.5, 0.0]]


def test_spts_project_calibration_by_hand():
    st = SiteStats()
    st.update(torch.tensor([[1.0, 2.0, 3.0], [4.0, 6.0, 5.0]]))  # medians 2 and 5
    assert st.eta == 3.5 and st.tokens == 2
    st.update(torch.tensor([[0.0, 0.0, 9.0]]))  # median 0: (2 + 5 + 0) / 3 tokens
    assert st.eta == pytest.approx(7 / 3)
    # the shift: x - eta pruned, then + eta: [5, 6, 4, 5] - 5 = [0, 1, -1, 0] -> 1:4 keeps
    # the 1 (the lower index of the tie with -1) -> [0, 1, 0, 0] + 5
    out = sparsify_tensor(torch.tensor([[5.0, 6.0, 4.0, 5.0]]), "1:4", mitigation="spts",
                          eta=5.0)
    assert out.tolist() == [[5.0, 6.0, 5.0, 5.0]]


class _Blk(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.q_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, h: torch.Tensor, **_kw) -> torch.Tensor:
        return h + self.o_proj(torch.tanh(self.q_proj(h)))


class _TinyCausal(nn.Module):
    """Embedding, decoder blocks that take (h, **kwargs), an lm_head: the shape L-PTS needs."""

    def __init__(self, vocab: int = 13, d: int = 16, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(_Blk(d) for _ in range(layers))
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        h = self.embed(ids) + 0.5  # an offset, so that shifts have something to do
        for blk in self.layers:
            h = blk(h, position_embeddings=None)
        return self.lm_head(h)


def _tiny() -> _TinyCausal:
    torch.manual_seed(seed())
    return _TinyCausal().eval()


def test_spts_paper_calibration_by_hand():
    model = _tiny()
    g = torch.Generator().manual_seed(seed())
    calls = [torch.randint(0, 13, (2, 5), generator=g) for _ in range(3)]
    cal = mitigations.calibrate_spts_paper(model, calls, "4:8", calls=2)
    # layer 0's q_proj reads the embeddings: eta = mean over the first 2 calls (the third is
    # not collected) of the call's mean per-token median
    with torch.no_grad():
        med = [float((model.embed(c) + 0.5).median(dim=-1).values.mean()) for c in calls[:2]]
    st = cal["layers.0.q_proj"]
    assert st.eta == pytest.approx(sum(med) / 2, rel=1e-6) and st.tokens == 20
    # later layers see the model sparsified with D-PTS while collecting
    seen = []
    h = model.layers[1].q_proj.register_forward_pre_hook(lambda _m, a: seen.append(a[0]))
    with torch.no_grad(), sparsify(model, "4:8", mitigation="dpts"):
        for c in calls[:2]:
            model(c)
    h.remove()
    want = sum(float(s.median(dim=-1).values.mean()) for s in seen) / 2
    assert cal["layers.1.q_proj"].eta == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="calls"):
        mitigations.calibrate_spts_paper(model, calls, "4:8", calls=0)


def test_lpts_and_out_bias_formulas_by_hand():
    # L-PTS: ((x - c)_sparse + c) with c = [1, -1]: x = [1.5, 0] -> x - c = [0.5, 1] -> 1:2
    # keeps feature 1 -> [0, 1] + c = [1, 0] (magnitude alone keeps 1.5)
    out = sparsify_tensor(torch.tensor([[1.5, 0.0]]), "1:2", mitigation="lpts",
                          eta=torch.tensor([1.0, -1.0]))
    assert out.tolist() == [[1.0, 0.0]]
    # out_bias: x_sparse W^T + b_layer + b_learned; W = I, x = [3, 1] -> [3, 0] + 0.25 + [1, 2]
    m = _One(torch.eye(2), bias=True)
    cal = Calibration({"q_proj": SiteStats(bias=torch.tensor([1.0, 2.0]))})
    with torch.no_grad(), sparsify(m, "1:2", mitigation="out_bias", calibration=cal):
        y = m(torch.tensor([[3.0, 1.0]]))
    assert y.tolist() == [[4.25, 2.25]]


def test_learned_first_adamw_step_moves_each_parameter_by_lr():
    # Adam's first step: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected m / sqrt(v) = sign(g)
    # (clipping scales g, not its sign), so every shift moves by -lr sign(g) from zero.
    # One segment, one epoch: one step per block; the schedule's factor at step 0 is 1.
    model = _tiny()
    seg = torch.randint(0, 13, (1, 6), generator=torch.Generator().manual_seed(seed()))
    lr = 1e-2
    cal = learned.train(model, seg, "2:4", kind="lpts", targets=("q_proj", "o_proj"), lr=lr)
    # the gradient at zero, by hand through block 0: MSE of the sparse block against dense
    with torch.no_grad():
        h0 = model.embed(seg) + 0.5
        target = model.layers[0](h0)
    shift = torch.zeros(16, requires_grad=True)
    part = Calibration({"q_proj": SiteStats(shift=shift),
                        "o_proj": SiteStats(shift=torch.zeros(16))})
    with hooks.sparsify(model.layers[0], "2:4", mitigation="lpts", targets=("q_proj", "o_proj"),
                        calibration=part):
        nn.functional.mse_loss(model.layers[0](h0), target).backward()
    g = shift.grad
    assert float(g.norm()) < 1.0  # below the clip norm: the step is Adam's unclipped one
    got = cal["layers.0.q_proj"].shift
    # -lr m_hat / (sqrt(v_hat) + eps) with m_hat = g, sqrt(v_hat) = |g|, eps = 1e-8
    torch.testing.assert_close(got, -lr * g / (g.abs() + 1e-8), rtol=1e-4, atol=1e-9)
    assert (g.abs() > 1e-6).sum() >= 8  # most shifts moved by ~lr
    assert set(cal.stats) == {f"layers.{i}.{p}" for i in (0, 1) for p in ("q_proj", "o_proj")}
    # out_bias: one bias per output of each Linear
    cal_b = learned.train(model, seg, "2:4", kind="out_bias", targets=("q_proj", "o_proj"))
    assert cal_b["layers.1.o_proj"].bias.shape == (16,) and cal_b["layers.1.o_proj"].shift is None
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again


def test_learned_schedule_warmup_and_linear_decay():
    # 100 steps, 3% warm-up = 3 steps: 0, 1/3, 2/3, then 1 at step 3 down to 0 at step 100
    sched = [learned._schedule(s, 100, 3) for s in (0, 1, 3, 50, 100)]
    assert sched == pytest.approx([0.0, 1 / 3, 1.0, 50 / 97, 0.0])


def test_learned_training_lowers_the_block_error():
    model = _tiny()
    segs = torch.randint(0, 13, (6, 8), generator=torch.Generator().manual_seed(seed()))
    cal = learned.train(model, segs, "2:4", kind="lpts", targets=("q_proj", "o_proj"),
                        lr=5e-2, epochs=4)
    before, after = cal.info["block_mse_first_segment"][0]
    assert after < before, (before, after)
    with pytest.raises(ValueError, match="kind"):
        learned.train(model, segs, "2:4", kind="bias")
    with pytest.raises(ValueError, match="segments"):
        learned.train(model, torch.zeros(0, 8, dtype=torch.long), "2:4")
    with pytest.raises(ValueError, match="ModuleList"):
        learned.train(nn.Sequential(_One(torch.eye(4))), segs, "2:4")


def test_every_method_is_a_setting_of_the_suite():
    labels = {(s.pattern, s.criterion, s.mitigation) for s in quality.standard_settings()}
    for c in criteria.CRITERIA:
        assert ("8:16", c, None) in labels
    for c in criteria.GLOBAL_UNSTRUCTURED:
        assert ("unstructured:0.5", c, None) in labels
    for m in mitigations.MITIGATIONS:
        assert ("8:16", "magnitude", m) in labels
    assert mitigations.check_mitigation("scaling") == "scaling_static"
    assert golden.nm_mask(torch.tensor([[1.0, 2.0]]), 1, 2).tolist() == [[False, True]]

"""golden.llm.plan: per-layer sparsity plans on real modules, and ``nmsparse quality --plan``."""

from __future__ import annotations

import pytest
import torch
from conftest import seed
from test_hooks_sparsify import TinyLM

from golden.llm import plan as P
from golden.llm.hooks import sparsify_tensor
from nmsparse import cli


def _model() -> TinyLM:
    torch.manual_seed(seed())
    return TinyLM().eval()


def test_parse_plan_and_matching() -> None:
    p = P.parse_plan(" layers.0.* = 16:32, *.down_proj=dense ,*=8:16,")
    assert p.text == "layers.0.*=16:32,*.down_proj=dense,*=8:16"
    assert p.pattern_for("layers.0.mlp.down_proj") == "16:32"  # first match wins
    assert p.pattern_for("model.layers.1.mlp.down_proj") == "dense"  # a dotted tail matches
    assert p.pattern_for("layers.1.self_attn.q_proj") == "8:16"
    assert P.parse_plan("q_proj=unstructured:0.5").pattern_for("x.q_proj") == "unstructured:0.5"
    assert P.parse_plan("q_proj=4:8").pattern_for("x.k_proj") == "dense"  # unmatched: dense


@pytest.mark.parametrize(("text", "exc", "msg"), [
    ("", ValueError, "empty plan"),
    ("*=8:16,layers.0.*", ValueError, "'layers.0.*' must be layer=pattern"),
    ("=8:16", ValueError, "must be layer=pattern"),
    ("*=9:8", ValueError, "plan entry '*=9:8'"),
    (8, TypeError, "must be a string"),
])
def test_parse_plan_errors(text, exc, msg) -> None:
    with pytest.raises(exc, match=msg.replace("*", r"\*").replace(".", r"\.")):
        P.parse_plan(text)


def test_apply_plan_matches_per_layer_sparsify() -> None:
    model = _model()
    plan = "layers.0.self_attn.*=4:8,layers.1.mlp.down_proj=16:32,*=2:4"
    seen: dict[str, torch.Tensor] = {}
    raw: dict[str, torch.Tensor] = {}
    mods = dict(model.named_modules())

    def spy(name):
        def hook(_m, args):
            seen[name] = args[0].detach().clone()
        return hook

    def pre(name):  # registered first: sees the input before the plan's hooks
        def hook(_m, args):
            raw[name] = args[0].detach().clone()
        return hook

    names = P.layer_names(model)
    hs = [mods[n].register_forward_pre_hook(pre(n)) for n in names]
    h = torch.randn(3, 5, 32)
    with P.sparsify_plan(model, plan) as handle:
        hs += [mods[n].register_forward_pre_hook(spy(n)) for n in names]
        model(h)
        assert handle.counts() == {"4:8": 4, "2:4": 9, "16:32": 1}
    for x in hs:
        x.remove()
    for n in names:
        pat = P.parse_plan(plan).pattern_for(n)
        assert torch.equal(seen[n], sparsify_tensor(raw[n], pat)), n
    # removed: dense again
    out = model(h)
    with P.sparsify_plan(model, "*=dense"):
        assert torch.equal(model(h), out)


def test_plan_density_and_errors() -> None:
    model = _model()
    with P.sparsify_plan(model, "*.mlp.*=8:32,*=16:32") as handle:
        d = handle.density(model)
    mlp = 3 * 32 * 64  # gate, up (32 -> 64) and down (64 -> 32), per block
    attn = 32 * 32 * 3 + 32 * 16
    assert d == pytest.approx((mlp * 0.25 + attn * 0.5) / (mlp + attn))
    with pytest.raises(ValueError, match="plan rule nope.\\*=8:16 matches no Linear layer"):
        P.apply_plan(model, "nope.*=8:16")
    with pytest.raises(ValueError, match="not a multiple of m = 128"):
        P.apply_plan(model, "*=64:128")


def test_quality_cli_plan_errors(capsys) -> None:
    assert cli.main(["quality", "--plan", "*=9:8"]) == 2
    assert "plan entry '*=9:8'" in capsys.readouterr().err

"""Capture the inputs of a model's ``nn.Linear`` layers: real activations for the RTL.

The cross-check of the emitted selectors streams these activations through the Verilog and
compares every mask with the golden model, so the RTL is exercised on the value
distributions it will see in an LLM (outlier channels, the attention-sink token, the heavy
tails after SwiGLU), not only on random data.

The shipped file ``verif/data/smollm2_acts.pt`` is a flat ``dict`` ``{layer name: tensor}``
saved with :func:`torch.save`; each tensor is ``torch.bfloat16`` of shape ``[T, K]`` (T tokens,
K input features of that layer). Regenerate it with::

    python -m golden.llm.capture -o verif/data/smollm2_acts.pt
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from torch import nn

__all__ = ["DEFAULT_LAYERS", "FALLBACK_TEXT", "capture_linear_inputs", "smollm2_activations"]

#: q_proj, o_proj and down_proj of the first, a middle and the last decoder layer
DEFAULT_LAYERS: tuple[str, ...] = tuple(
    f"model.layers.{i}.{p}"
    for i in (0, 15, 29)
    for p in ("self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj")
)

#: used when the Austen corpus is unavailable (opening of Pride and Prejudice, public domain)
FALLBACK_TEXT = (
    "It is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife. However little known the feelings or views of such "
    "a man may be on his first entering a neighbourhood, this truth is so well fixed in the "
    "minds of the surrounding families, that he is considered the rightful property of some "
    "one or other of their daughters."
)


@contextlib.contextmanager
def _recording(model: nn.Module, names: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    modules = dict(model.named_modules())
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        mod = modules.get(name)
        if not isinstance(mod, nn.Linear):
            linears = [k for k, v in modules.items() if isinstance(v, nn.Linear)]
            raise ValueError(
                f"{name!r} is not an nn.Linear of the model; e.g. {', '.join(linears[:4])}, ..."
            )

        def hook(_mod: nn.Module, args: tuple, _name: str = name) -> None:
            store[_name] = args[0].detach().reshape(-1, args[0].shape[-1]).clone()

        handles.append(mod.register_forward_pre_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def capture_linear_inputs(
    model: nn.Module,
    input_ids: torch.Tensor,
    layers: Iterable[str],
    *,
    positions: Iterable[int] | None = None,
    dtype: torch.dtype = torch.bfloat16,
) -> dict[str, torch.Tensor]:
    """Run ``model`` once on ``input_ids`` and return the inputs of the given Linear layers.

    Parameters
    ----------
    model : nn.Module
        A causal LM (any module whose named ``nn.Linear`` children are listed in ``layers``).
    input_ids : torch.Tensor
        ``[1, S]`` token ids.
    layers : iterable of str
        Module names as in ``model.named_modules()``.
    positions : iterable of int, optional
        Token positions to keep (default: all S).
    dtype : torch.dtype
        Dtype of the returned tensors (default bfloat16).

    Returns
    -------
    dict[str, torch.Tensor]
        ``{name: [T, K]}``, T = number of kept positions, K = in_features of the layer.
    """
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(f"input_ids must be [1, S], not {tuple(input_ids.shape)}")
    layers = list(layers)
    with _recording(model, layers) as store:
        model(input_ids)
    pos = torch.arange(input_ids.shape[1]) if positions is None else torch.tensor(list(positions))
    if pos.numel() and (int(pos.min()) < 0 or int(pos.max()) >= input_ids.shape[1]):
        raise ValueError(f"positions must lie in [0, {input_ids.shape[1]}), got {pos.tolist()}")
    return {name: store[name][pos].to(dtype).contiguous() for name in layers}


def smollm2_activations(
    *, tokens: int = 10, context: int = 64, layers: Iterable[str] = DEFAULT_LAYERS
) -> dict[str, torch.Tensor]:
    """Inputs of ``layers`` of SmolLM2-135M-Instruct on the opening of *Persuasion*.

    The model reads ``context`` tokens; ``tokens`` positions spread evenly over them (the
    first, attention-sink token included) are kept. Falls back to :data:`FALLBACK_TEXT` when
    the corpus is unavailable.
    """
    from . import corpus, models

    model, tok, _ = models.load_model("smollm2")
    try:
        text, _ = corpus.load_text(corpus.EVAL_BOOK)
        text = text[text.index("Sir Walter Elliot") :]
    except (corpus.CorpusUnavailable, ValueError):
        text = FALLBACK_TEXT
    ids = tok(text[: 8 * context], return_tensors="pt").input_ids[:, :context]
    n = ids.shape[1]
    pos = sorted({round(i * (n - 1) / max(1, tokens - 1)) for i in range(tokens)})
    return capture_linear_inputs(model, ids, layers, positions=pos)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m golden.llm.capture",
        description="capture SmolLM2 Linear-layer inputs (bf16) for the RTL cross-check",
    )
    p.add_argument("-o", "--output", default="verif/data/smollm2_acts.pt", help="output .pt file")
    p.add_argument("--tokens", type=int, default=10, help="token positions kept (default 10)")
    p.add_argument("--context", type=int, default=64, help="tokens the model reads (default 64)")
    args = p.parse_args(argv)
    acts = smollm2_activations(tokens=args.tokens, context=args.context)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(acts, out)
    groups16 = sum(t.numel() for t in acts.values()) // 16
    for name, t in acts.items():
        print(f"{name:34s} {tuple(t.shape)}  max|x| = {t.float().abs().max():.3g}")
    print(f"wrote {out} ({out.stat().st_size} bytes, {groups16} groups of 16)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

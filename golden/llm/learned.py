"""The trained mitigations of the paper: L-PTS (a learnable per-input-channel shift) and the
output-bias shift, fitted decoder block by decoder block against the dense block's output.

For block i = 0, 1, ... (inputs: the calibration segments as the already-trained sparse
blocks 0..i-1 leave them, the paper's ``sequential_parameter_training``)::

    h_i --> dense block i ------------------------------> target_i        (no grad)
    h_i --> sparse block i (+ params, zero at start) ---> out --MSE--> AdamW on the params
    h_{i+1} = sparse block i (trained params) on h_i                       (no grad)

- ``lpts``: per targeted Linear a shift ``c: [K]``, the Linear sees ``prune(x - c) + c``;
- ``out_bias``: per targeted Linear a bias ``b: [O]``, the Linear computes ``prune(x) W^T + b``.

The paper's hyper-parameters are the defaults: AdamW (lr 1e-4, betas 0.9/0.95, no weight
decay), one epoch, one 512-token segment per step in shuffled order, a linear schedule with
3% warm-up, gradient clipping at norm 1.0, MSE (mean) against the dense block output. The
paper trains on 256 random WikiText-2 segments; the segment count here is a parameter
(``segments`` of :func:`train`) whose default, 16, trains in a few minutes on 2 cores. The
trade-off is the reach of the training: with lr 1e-4 a parameter moves by at most about
``lr`` per step, so 16 steps move a shift by ~1e-3 and the table shows how much (or little)
that buys; more segments buy more at the price of minutes per segment count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from nmsparse.contract.seeds import seed as _seed

from . import mitigations as _mit
from .hooks import DEFAULT_TARGETS, apply_sparsity

__all__ = ["KINDS", "DEFAULT_SEGMENTS", "SEGMENT_TOKENS", "decoder_blocks", "train"]

KINDS: tuple[str, ...] = ("lpts", "out_bias")
DEFAULT_SEGMENTS = 16
SEGMENT_TOKENS = 512


class _Stop(Exception):
    """Raised by the capture hook to end the forward pass at the first block."""


def decoder_blocks(model: nn.Module, targets: Iterable[str] = DEFAULT_TARGETS) -> nn.ModuleList:
    """The ``nn.ModuleList`` of decoder blocks that holds every targeted Linear.

    Raises
    ------
    ValueError
        No module list holds all of the targeted Linears (the message counts them).
    """
    targets = tuple(targets)
    want = {id(m) for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in targets}
    if not want:
        raise ValueError(f"the model has no nn.Linear named like {targets}")
    for mod in model.modules():
        if isinstance(mod, nn.ModuleList) and len(mod):
            held = {id(m) for blk in mod for m in blk.modules()} & want
            if held == want:
                return mod
    raise ValueError(
        f"no nn.ModuleList of decoder blocks holds all {len(want)} targeted Linear layers; "
        f"L-PTS and out_bias train block by block"
    )


def _capture(model: nn.Module, first: nn.Module, segments: torch.Tensor
             ) -> tuple[list[torch.Tensor], dict[str, Any]]:
    """The inputs of the first block for each segment, and its keyword arguments."""
    inps: list[torch.Tensor] = []
    kw: dict[str, Any] = {}

    def grab(_m: nn.Module, args: tuple, kwargs: dict) -> None:
        inps.append(args[0].detach() if args else kwargs["hidden_states"].detach())
        if not kw:
            kw.update({k: v for k, v in kwargs.items() if k != "hidden_states"})
        raise _Stop

    h = first.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for seg in segments:
            try:
                model(seg[None], use_cache=False)
            except _Stop:
                pass
    finally:
        h.remove()
    kw.pop("cache", None)
    kw.pop("past_key_values", None)
    kw["use_cache"] = False
    return inps, kw


def _run(block: nn.Module, h: torch.Tensor, kw: dict[str, Any]) -> torch.Tensor:
    out = block(h, **kw)
    return out[0] if isinstance(out, tuple) else out


def _schedule(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then linear decay to 0 (as transformers'
    ``get_linear_schedule_with_warmup``)."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def train(
    model: nn.Module,
    segments: torch.Tensor,
    pattern: str,
    criterion: str = "magnitude",
    kind: str = "lpts",
    targets: Iterable[str] = DEFAULT_TARGETS,
    *,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.95),
    weight_decay: float = 0.0,
    epochs: int = 1,
    warmup: float = 0.03,
    clip: float = 1.0,
    seed: int | None = None,
    source: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> _mit.Calibration:
    """Train ``kind`` (``"lpts"`` or ``"out_bias"``) block by block; returns a
    :class:`~golden.llm.mitigations.Calibration` whose entries carry ``shift`` (lpts) or
    ``bias`` (out_bias) for :func:`golden.llm.hooks.apply_sparsity`.

    Parameters
    ----------
    model : nn.Module
        A causal LM with a list of decoder blocks (:func:`decoder_blocks`); its weights are
        frozen (restored afterwards), only the new parameters train.
    segments : torch.Tensor
        ``[S, L]`` token ids of the calibration text (one segment per optimizer step).
    pattern, criterion : str
        The sparsity being mitigated (as in :func:`golden.llm.hooks.apply_sparsity`).
    lr, betas, weight_decay, epochs, warmup, clip
        AdamW, epochs over the segments, warm-up fraction of the steps, gradient-norm clip.
    seed : int, optional
        Order of the segments and the criterion's seed (default: the project seed).
    progress : callable, optional
        ``progress(block, blocks)`` after each block.

    Raises
    ------
    ValueError
        Unknown ``kind``, no segments, bad hyper-parameters, or no decoder blocks.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(segments, torch.Tensor) or segments.dim() != 2 or segments.shape[0] < 1:
        raise ValueError(f"segments must be a [S, L] tensor of token ids with S >= 1, not "
                         f"{getattr(segments, 'shape', type(segments).__name__)}")
    if not (lr > 0 and 0 <= warmup < 1 and clip > 0 and isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"invalid hyper-parameters: lr={lr}, warmup={warmup}, clip={clip}, "
                         f"epochs={epochs}")
    targets = tuple(targets)
    blocks = decoder_blocks(model, targets)
    prefix = {id(b): n for n, b in model.named_modules()}
    gen = torch.Generator().manual_seed(_seed(seed))
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    stats: dict[str, _mit.SiteStats] = {}
    losses: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            inps, kw = _capture(model, blocks[0], segments)
        n = len(inps)
        total = epochs * n
        warm = int(warmup * total)
        for bi, block in enumerate(blocks):
            with torch.no_grad():
                tgts = [_run(block, h, kw) for h in inps]
            local: dict[str, _mit.SiteStats] = {}
            params: list[nn.Parameter] = []
            for name, mod in block.named_modules():
                if isinstance(mod, nn.Linear) and name.rsplit(".", 1)[-1] in targets:
                    size = mod.in_features if kind == "lpts" else mod.out_features
                    p = nn.Parameter(torch.zeros(size, dtype=mod.weight.dtype))
                    params.append(p)
                    local[name] = (_mit.SiteStats(shift=p) if kind == "lpts"
                                   else _mit.SiteStats(bias=p))
            cal = _mit.Calibration(local, "training")
            opt = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda step: _schedule(step, total, warm))
            with apply_sparsity(block, pattern, criterion, kind, targets, calibration=cal,
                                seed=seed):
                first: tuple[int, float] | None = None
                for _ in range(epochs):
                    for idx in torch.randperm(n, generator=gen).tolist():
                        loss = nn.functional.mse_loss(_run(block, inps[idx], kw), tgts[idx])
                        if first is None:  # the parameters are still zero: the untrained MSE
                            first = (idx, float(loss.detach()))
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(params, clip)
                        opt.step()
                        sched.step()
                        opt.zero_grad(set_to_none=True)
                with torch.no_grad():
                    outs = [_run(block, h, kw) for h in inps]
            # the MSE of the first step's segment, before and after training (no extra pass)
            before = first[1]
            after = float(nn.functional.mse_loss(outs[first[0]], tgts[first[0]]))
            losses.append((before, after))
            base = prefix[id(block)]
            for name, st in local.items():
                full = f"{base}.{name}" if base else name
                stats[full] = (_mit.SiteStats(shift=st.shift.detach().clone()) if kind == "lpts"
                               else _mit.SiteStats(bias=st.bias.detach().clone()))
            inps = outs
            if progress is not None:
                progress(bi + 1, len(blocks))
    finally:
        for p, req in frozen:
            p.requires_grad_(req)
    gain = [1 - a / b for b, a in losses if b > 0]
    label = (f"{kind} trained on {n} segments x {segments.shape[1]} tokens"
             + (f" of {source}" if source else "")
             + f" in {time.perf_counter() - t0:.0f} s; MSE against the dense block (first "
             f"segment) reduced by {100 * (sum(gain) / len(gain) if gain else 0.0):.2f}% on "
             f"average over the blocks (min {100 * min(gain, default=0.0):.2f}%, "
             f"max {100 * max(gain, default=0.0):.2f}%)")
    return _mit.Calibration(stats, label, {"block_mse_first_segment": losses})

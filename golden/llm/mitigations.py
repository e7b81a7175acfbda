"""Lightweight mitigations of the error that activation sparsity adds (no or little calibration).

Each mitigation acts around the selector; all of them keep the MAC array N:M sparse.

- ``var``: after selection, rescale the kept activations of each token by
  ``sqrt(Var(x) / Var(x_sparse))`` (variance over the token's K features) so the sparse vector
  has the dense one's variance. Hardware: one per-token scale, e.g. folded into the
  requantization step after the MAC.
- ``dpts`` (dynamic per-token shift): ``eta`` = the token's median; the selector prunes
  ``x - eta`` and ``eta`` is added back as an output bias ``eta * W.sum(1)``:
  ``y = W (mask * (x - eta)) + eta * W 1 + b``. Hardware: a median (or running estimate) per
  token, a subtraction before the selector and a per-token bias after the MAC.
- ``spts`` (static shift): like ``dpts`` with one ``eta`` per layer, calibrated once on a few
  calibration batches (never the evaluation text) and frozen. **In hardware this is a
  subtraction of a constant before the selector and a constant bias ``eta * W.sum(1)`` after
  the MAC**, both known at compile time: no extra run-time logic beyond one subtractor per lane.
- ``scaling`` (SmoothQuant-like): a per-channel factor ``s_j = max|X_j|^a / max|W_:,j|^(1-a)``
  (``a = 0.5``, activations' maxima from calibration) divides the activations and is folded
  into the weights, ``W' = W diag(s)``, so ``W' (x / s) = W x`` densely while the selector sees
  the rebalanced ``x / s``. Hardware: zero cost (the weights are pre-scaled, the division is
  folded into the previous layer's output scale).

The helpers here are pure functions of tensors; :mod:`golden.llm.hooks` applies them to a model and
:func:`calibrate` gathers the statistics ``spts`` and ``scaling`` need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = [
    "MITIGATIONS",
    "CALIBRATED",
    "check_mitigation",
    "var_rescale",
    "token_median",
    "smooth_scale",
    "SiteStats",
    "Calibration",
    "calibrate",
]

MITIGATIONS: tuple[str, ...] = ("var", "dpts", "spts", "scaling")
#: mitigations that need :func:`calibrate` statistics
CALIBRATED: tuple[str, ...] = ("spts", "scaling")


def check_mitigation(mitigation: object) -> str | None:
    """Return ``mitigation`` (``None``/``"none"`` -> ``None``) or raise ``ValueError``."""
    if mitigation is None or mitigation == "none":
        return None
    if not isinstance(mitigation, str) or mitigation not in MITIGATIONS:
        raise ValueError(
            f"unknown mitigation {mitigation!r}; valid: none, {', '.join(MITIGATIONS)}"
        )
    return mitigation


def var_rescale(x: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """``xs * sqrt(Var(x) / Var(xs))`` per token (variance over the last dimension).

    Parameters
    ----------
    x, xs : torch.Tensor
        ``[..., K]`` dense and sparse activations. A token whose sparse variance is 0 is left
        unscaled.
    """
    vd = x.to(torch.float32).var(dim=-1, keepdim=True, unbiased=False)
    vs = xs.to(torch.float32).var(dim=-1, keepdim=True, unbiased=False)
    scale = torch.where(vs > 0, (vd / vs.clamp_min(1e-30)).sqrt(), torch.ones_like(vs))
    return xs * scale.to(xs.dtype)


def token_median(x: torch.Tensor) -> torch.Tensor:
    """Per-token median ``eta: [..., 1]`` of ``x: [..., K]`` (the lower median for even K)."""
    return x.median(dim=-1, keepdim=True).values


def smooth_scale(
    act_absmax: torch.Tensor, weights: Sequence[torch.Tensor], *, alpha: float = 0.5
) -> torch.Tensor:
    """SmoothQuant factor ``s: [K]`` = ``act_absmax^alpha / max|W_:,j|^(1 - alpha)``.

    Parameters
    ----------
    act_absmax : torch.Tensor
        ``[K]`` per-channel max |x| from calibration.
    weights : sequence of torch.Tensor
        ``[O_i, K]`` weights of every layer that reads this input (max over all of them).
    alpha : float
        Migration strength in ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], not {alpha!r}")
    wmax = torch.stack([w.detach().abs().amax(dim=0).to(torch.float32) for w in weights]).amax(0)
    a = act_absmax.to(torch.float32).clamp_min(1e-5)
    s = a.pow(alpha) / wmax.clamp_min(1e-5).pow(1.0 - alpha)
    return s.clamp_min(1e-5)


@dataclass
class SiteStats:
    """Calibration statistics of one activation site (the input of one or more Linears).

    ``eta``: mean over calibration tokens of the per-token median (the static shift of
    ``spts``); ``absmax: [K]``: per-channel max |x| (for ``scaling``); ``tokens``: how many
    tokens were seen.
    """

    eta: float = 0.0
    absmax: torch.Tensor | None = None
    tokens: int = 0
    _eta_sum: float = field(default=0.0, repr=False)

    def update(self, x: torch.Tensor) -> None:
        x2 = x.detach().reshape(-1, x.shape[-1]).to(torch.float32)
        self._eta_sum += float(token_median(x2).sum())
        self.tokens += x2.shape[0]
        self.eta = self._eta_sum / self.tokens
        amax = x2.abs().amax(dim=0)
        self.absmax = amax if self.absmax is None else torch.maximum(self.absmax, amax)


@dataclass
class Calibration:
    """Per-layer statistics from :func:`calibrate`: ``{linear name: SiteStats}`` + provenance."""

    stats: dict[str, SiteStats]
    source: str = ""

    def __getitem__(self, name: str) -> SiteStats:
        try:
            return self.stats[name]
        except KeyError:
            raise KeyError(f"no calibration statistics for layer {name!r}") from None


@torch.no_grad()
def calibrate(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    targets: Iterable[str] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ),
    *,
    source: str = "",
) -> Calibration:
    """Run the dense ``model`` on calibration token batches and record per-layer statistics.

    Parameters
    ----------
    model : nn.Module
        The model (called as ``model(batch)``).
    batches : iterable of torch.Tensor
        ``[B, S]`` token ids (calibration text, not the evaluation text).
    targets : iterable of str
        Linear layers whose inputs are recorded: a module is recorded when the last component
        of its name is in ``targets``.
    source : str
        A label of the calibration text, kept for reports.
    """
    targets = tuple(targets)
    stats: dict[str, SiteStats] = {}
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            st = stats.setdefault(name, SiteStats())
            handles.append(mod.register_forward_pre_hook(lambda _m, a, _s=st: _s.update(a[0])))
    if not stats:
        raise ValueError(f"the model has no nn.Linear named like {targets}")
    try:
        n = 0
        for batch in batches:
            model(batch)
            n += 1
        if n == 0:
            raise ValueError("calibrate needs at least one batch")
    finally:
        for h in handles:
            h.remove()
    return Calibration(stats, source)

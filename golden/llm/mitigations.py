"""Lightweight mitigations of the error that activation sparsity adds (no or little calibration).

Each mitigation acts around the selector and keeps the MAC array N:M sparse::

    x --(/ s: scaling)--(- eta: shifts)--> selector --(* v: var)--(+ eta)--> W --(+ b: out_bias)

The paper's definitions (arXiv 2509.22166 and its code, ``Linear_act_sp``), and how they map
onto hardware:

- ``var``: after selection, rescale each token's kept activations by
  ``sqrt(Var(x) / Var(x_sparse))`` (over the token's K features). Hardware: a variance and a
  square root per token, the scale folded into the requantization after the MAC.
- ``dpts`` (D-PTS): ``eta`` = the token's median (the lower median for even K); the selector
  prunes ``x - eta`` and ``eta`` comes back as ``eta * W.sum(1)`` after the MAC. Hardware: a
  median per token, a subtractor per lane, a per-token bias.
- ``spts`` (S-PTS, the project's calibration): one static ``eta`` per layer, the mean of the
  per-token medians of the layer's input, from the **dense** model on **another text** (the
  calibration book), then frozen. **Hardware: a constant subtraction before the selector and
  a constant bias ``eta * W.sum(1)`` after the row** (``golden.sparse_linear(..., shift=)``).
- ``spts_paper`` (S-PTS, the paper's calibration): the same static eta, but collected as the
  paper's code does: over the first 100 forward calls of the **already sparsified** model on
  the **evaluated data**; while collecting, each layer uses its per-token median (D-PTS) and
  records the mean median of every call; eta is the mean over the calls. The quality table
  reports both (:func:`calibrate_spts_paper`); in the paper's code the collecting calls are
  also the scored ones, here the windows are scored again with eta frozen.
- ``scaling_batch`` (the paper): ``s_j = sqrt(max_t |x_tj| / max_o |W_oj|)`` recomputed from
  every batch at run time, per layer; the selector ranks ``x / s`` and the MAC sees
  ``(x / s) (W s)^T = x W^T``. Hardware: a per-batch max over the tile and a divider per
  lane: not a static datapath.
- ``scaling_static`` (the project's, alias ``scaling``): the same ``s = sqrt(max|x| /
  max|W|)`` (SmoothQuant with alpha 0.5) from calibrated activation maxima (dense model,
  calibration text) and the maxima over every sibling weight of the site, frozen. Hardware:
  free (W' = W diag(s) offline, 1/s folded into the previous layer's output scale).
- ``lpts`` (L-PTS, :mod:`golden.llm.learned`): a learnable per-input-channel shift per
  Linear, ``((x - shift)_sparse + shift) W^T``, trained block by block against the dense
  block's output. Hardware: as S-PTS with a per-channel eta (a ROM of K constants).
- ``out_bias`` (:mod:`golden.llm.learned`): a learnable per-output bias per Linear,
  ``x_sparse W^T + b``, trained the same way. Hardware: one constant per accumulator.

``scaling_*`` only changes what the selector ranks (``|x| / s``); the Linear then sees the
kept ``x`` itself, which equals the folded ``(x / s) (W s)^T`` up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import _native

__all__ = [
    "MITIGATIONS",
    "ALIASES",
    "CALIBRATED",
    "EVAL_CALIBRATED",
    "TRAINED",
    "PER_LAYER",
    "check_mitigation",
    "var_rescale",
    "token_median",
    "smooth_scale",
    "batch_scale",
    "SiteStats",
    "Calibration",
    "calibrate",
    "calibrate_spts_paper",
    "PaperSptsRecorder",
    "PAPER_SPTS_CALLS",
]

MITIGATIONS: tuple[str, ...] = (
    "var",
    "dpts",
    "spts",
    "spts_paper",
    "scaling_batch",
    "scaling_static",
    "lpts",
    "out_bias",
)
#: older names, still accepted
ALIASES: dict[str, str] = {"scaling": "scaling_static"}
#: mitigations that need :func:`calibrate` statistics (dense model, calibration text)
CALIBRATED: tuple[str, ...] = ("spts", "scaling_static")
#: calibrated on the evaluated data with the sparsified model (:func:`calibrate_spts_paper`)
EVAL_CALIBRATED: tuple[str, ...] = ("spts_paper",)
#: trained per decoder block on the calibration text (:mod:`golden.llm.learned`)
TRAINED: tuple[str, ...] = ("lpts", "out_bias")
#: computed from each Linear's own weights or parameters: every Linear is its own site
PER_LAYER: frozenset[str] = frozenset({"scaling_batch", "lpts", "out_bias"})
#: the paper's S-PTS collects its shift over this many forward calls
PAPER_SPTS_CALLS = 100


def check_mitigation(mitigation: object) -> str | None:
    """Return ``mitigation`` (``None``/``"none"`` -> ``None``, aliases resolved) or raise
    ``ValueError`` naming the valid ones."""
    if mitigation is None or mitigation == "none":
        return None
    if isinstance(mitigation, str) and mitigation in ALIASES:
        return ALIASES[mitigation]
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
    vd = _var(x.to(torch.float32))
    vs = _var(xs.to(torch.float32))
    scale = torch.where(vs > 0, (vd / vs.clamp_min(1e-30)).sqrt(), torch.ones_like(vs))
    return xs * scale.to(xs.dtype)


def _var(x: torch.Tensor) -> torch.Tensor:
    """Population variance over the last dimension, two-pass (mean, then mean square of the
    deviations): the value of ``x.var(unbiased=False)`` up to rounding; 1.1x torch.var's
    speed in a process that imported golden.llm, 13x in one that did not
    (bench/bench_hook_parts.py and its note)."""
    d = x - x.mean(dim=-1, keepdim=True)
    return (d * d).mean(dim=-1, keepdim=True)


def token_median(x: torch.Tensor) -> torch.Tensor:
    """Per-token median ``eta: [..., 1]`` of ``x: [..., K]`` (the lower median for even K;
    NaN for a token holding a NaN). Float32 on the CPU takes the compiled quickselect of
    ``golden._native`` (the value torch.median gives, 5-8x faster:
    bench/bench_hook_parts.py); the rest torch.median."""
    if not x.requires_grad:
        fast = _native.row_median(x)
        if fast is not None:
            return fast
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


def batch_scale(x: torch.Tensor, weight_absmax: torch.Tensor) -> torch.Tensor:
    """The paper's run-time scale ``s: [K] = sqrt(max_t |x_tj| / max(max_o |W_oj|, 1e-8))``.

    The activation maximum runs over every token of ``x: [..., K]`` (the whole forward call).
    A channel that is zero in the whole batch would get ``s = 0`` (the paper divides by it);
    it gets ``s = 1`` here, which changes nothing (``0 / s`` is 0 either way) but avoids NaN.
    """
    amax = x.detach().reshape(-1, x.shape[-1]).abs().amax(dim=0).to(torch.float32)
    s = (amax / weight_absmax.to(torch.float32).clamp_min(1e-8)).sqrt()
    return torch.where(s > 0, s, torch.ones_like(s))


@dataclass
class SiteStats:
    """Calibration statistics of one Linear's input (the site of one or more Linears).

    Members
    -------
    eta : float
        Static shift of ``spts``/``spts_paper``: the mean over calibration tokens (``spts``)
        or over forward calls (``spts_paper``) of the per-token median.
    absmax : torch.Tensor or None
        ``[K]`` per-channel max |x| (``scaling_static``).
    tokens : int
        Tokens seen.
    shift : torch.Tensor or None
        ``[K]`` learned per-input-channel shift (``lpts``).
    bias : torch.Tensor or None
        ``[O]`` learned output bias (``out_bias``).
    """

    eta: float = 0.0
    absmax: torch.Tensor | None = None
    tokens: int = 0
    shift: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    _eta_sum: float = field(default=0.0, repr=False)
    _calls: int = field(default=0, repr=False)

    def update(self, x: torch.Tensor) -> None:
        """Record one input ``x: [..., K]``: per-token medians and per-channel maxima."""
        x2 = x.detach().reshape(-1, x.shape[-1]).to(torch.float32)
        self._eta_sum += float(token_median(x2).sum())
        self.tokens += x2.shape[0]
        self.eta = self._eta_sum / self.tokens
        amax = x2.abs().amax(dim=0)
        self.absmax = amax if self.absmax is None else torch.maximum(self.absmax, amax)

    def update_call(self, x: torch.Tensor) -> None:
        """Record one forward call as the paper does: eta = mean over calls of the call's mean
        per-token median."""
        x2 = x.detach().reshape(-1, x.shape[-1]).to(torch.float32)
        self._calls += 1
        self._eta_sum += float(token_median(x2).mean())
        self.tokens += x2.shape[0]
        self.eta = self._eta_sum / self._calls


@dataclass
class Calibration:
    """Per-layer statistics: ``{linear name: SiteStats}`` + provenance.

    Members
    -------
    stats : dict[str, SiteStats]
        One entry per targeted Linear.
    source : str
        A label of the calibration data, kept for reports.
    info : dict
        Extra figures of how it was obtained (e.g. ``block_mse``: per decoder block the MSE
        against the dense block before and after training).
    """

    stats: dict[str, SiteStats]
    source: str = ""
    info: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> SiteStats:
        try:
            return self.stats[name]
        except KeyError:
            raise KeyError(f"no calibration statistics for layer {name!r}") from None

    def to_state(self) -> dict:
        """A plain dict of tensors and numbers (for :func:`torch.save`)."""
        return {"source": self.source, "info": self.info,
                "stats": {k: {"eta": v.eta, "absmax": v.absmax, "tokens": v.tokens,
                              "shift": v.shift, "bias": v.bias} for k, v in self.stats.items()}}

    @classmethod
    def from_state(cls, state: dict) -> Calibration:
        """Inverse of :meth:`to_state`."""
        return cls({k: SiteStats(eta=v["eta"], absmax=v["absmax"], tokens=v["tokens"],
                                 shift=v["shift"], bias=v["bias"])
                    for k, v in state["stats"].items()}, state.get("source", ""),
                   state.get("info", {}))


def _targets_of(model: nn.Module, targets: Iterable[str]) -> list[tuple[str, nn.Linear]]:
    targets = tuple(targets)
    found = [(n, m) for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in targets]
    if not found:
        raise ValueError(f"the model has no nn.Linear named like {targets}")
    return found


_DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@torch.no_grad()
def calibrate(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    targets: Iterable[str] = _DEFAULT_TARGETS,
    *,
    source: str = "",
) -> Calibration:
    """Run the dense ``model`` on calibration token batches and record per-layer statistics
    (``spts``: eta; ``scaling_static``: per-channel maxima).

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
    stats: dict[str, SiteStats] = {}
    handles = []
    for name, mod in _targets_of(model, targets):
        st = stats.setdefault(name, SiteStats())
        handles.append(mod.register_forward_pre_hook(lambda _m, a, _s=st: _s.update(a[0])))
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


class PaperSptsRecorder:
    """Records the paper's S-PTS statistics of every targeted Linear while the model runs.

    Its hooks must be registered *before* the sparsity hooks (enter it first), so that they
    see each layer's raw input; only the first ``calls`` forward calls count. The perplexity
    pass of a D-PTS setting is exactly the paper's collection pass, so the quality suite
    records ``spts_paper`` during it instead of running the model once more.
    """

    def __init__(self, model: nn.Module, targets: Iterable[str] = _DEFAULT_TARGETS, *,
                 calls: int = PAPER_SPTS_CALLS):
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
            raise ValueError(f"calls must be a positive integer, not {calls!r}")
        self.calls = calls
        self.stats: dict[str, SiteStats] = {}
        self._mods = _targets_of(model, targets)
        self._handles: list = []

    def _record(self, st: SiteStats, x: torch.Tensor) -> None:
        if st._calls < self.calls:
            st.update_call(x)

    def __enter__(self) -> PaperSptsRecorder:
        for name, mod in self._mods:
            st = self.stats.setdefault(name, SiteStats())
            self._handles.append(mod.register_forward_pre_hook(
                lambda _m, a, _s=st: self._record(_s, a[0])))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @property
    def recorded(self) -> int:
        """Forward calls recorded so far."""
        return max((st._calls for st in self.stats.values()), default=0)

    def calibration(self, source: str = "") -> Calibration:
        if self.recorded == 0:
            raise ValueError("the S-PTS recorder saw no forward call")
        return Calibration(self.stats, source or
                           f"evaluated data, sparsified ({self.recorded} forward calls)")


@torch.no_grad()
def calibrate_spts_paper(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    pattern: str,
    criterion: str = "magnitude",
    targets: Iterable[str] = _DEFAULT_TARGETS,
    *,
    calls: int = PAPER_SPTS_CALLS,
    source: str = "",
) -> Calibration:
    """The paper's S-PTS calibration: per layer, eta = the mean over the first ``calls``
    forward calls of the call's mean per-token median of the layer's input, with the model
    sparsified by ``pattern``/``criterion`` and D-PTS active in every layer while collecting.

    Parameters
    ----------
    batches : iterable of torch.Tensor
        ``[B, S]`` token ids of the **evaluated** data, in evaluation order (one forward call
        each); only the first ``calls`` are used.
    calls : int
        Forward calls to collect over (the paper: 100).
    """
    from .hooks import apply_sparsity  # the hooks import this module

    with PaperSptsRecorder(model, targets, calls=calls) as rec:
        with apply_sparsity(model, pattern, criterion, "dpts", targets):
            for batch in batches:
                if rec.recorded >= calls:
                    break
                model(batch)
    return rec.calibration(source)

"""Dynamic N:M activation sparsity (and N:M weight pruning) on a PyTorch model.

:func:`sparsify` is a context manager that, for every targeted ``nn.Linear``, replaces the
layer's *input* with its sparsified version, per token, along the input-feature dimension,
with the DESIGN.md section 1 rule applied to a criterion's score (:mod:`golden.llm.criteria`)::

    with golden.llm.sparsify(model, pattern="8:16"):
        logits = model(ids).logits

Biases are untouched; ``lm_head`` and the embeddings stay dense (only modules whose last name
component is in ``targets`` are touched). :func:`apply_sparsity` is the permanent variant: it
returns a :class:`SparsityHandle` whose ``remove()`` undoes everything.

Layers that read the same tensor (q/k/v of an attention block, gate/up of a SwiGLU MLP) form
one *site*: one mask per activation vector, as one selector in front of a fused projection
would compute it. The mask is computed once per site and forward pass.

Patterns: ``"N:M"`` or ``"unstructured:S"`` (per token, keep the ``K - round(S*K)`` highest
scores of all K features, S the sparsity; ties: the lower index wins, as for N:M. This is a
software-only comparison point). ``weight_pattern`` prunes each targeted weight matrix with
the same rule on ``|W|`` along its input dimension (per output row), in place; the context
manager and ``remove()`` restore the original weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nmsparse.contract.patterns import Sparsity, parse_sparsity

from ..nm import nm_mask
from . import criteria as _criteria
from . import mitigations as _mit

__all__ = [
    "DEFAULT_TARGETS",
    "SHARED_INPUTS",
    "Sparsity",
    "parse_sparsity",
    "select_mask",
    "sparsify_tensor",
    "SparsityHandle",
    "apply_sparsity",
    "sparsify",
]

DEFAULT_TARGETS: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
#: sibling layers that read the same input tensor in Llama-style blocks
SHARED_INPUTS: tuple[tuple[str, ...], ...] = (
    ("q_proj", "k_proj", "v_proj"),
    ("gate_proj", "up_proj"),
)


def _mask_input(t: torch.Tensor) -> torch.Tensor:
    if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return t
    return t.to(torch.float32)


def select_mask(score: torch.Tensor, sparsity: Sparsity) -> torch.Tensor:
    """Boolean keep-mask of ``score: [..., K]`` along the last dimension (DESIGN.md rule:
    largest magnitude first, lower index wins ties)."""
    s = _mask_input(score)
    if sparsity.kind == "nm":
        return nm_mask(s, sparsity.n, sparsity.m)
    k = s.shape[-1]
    keep = sparsity.keep(k)
    if keep >= k:
        return torch.ones(s.shape, dtype=torch.bool)
    if keep <= 0:
        return torch.zeros(s.shape, dtype=torch.bool)
    return nm_mask(s, keep, k)


def sparsify_tensor(
    x: torch.Tensor,
    sparsity: Sparsity | str,
    *,
    criterion: str = "magnitude",
    mitigation: str | None = None,
    factor: torch.Tensor | None = None,
    eta: float | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """The input a sparsified Linear sees, for dense activations ``x: [..., S, K]``.

    Pure function of tensors (the hooks call it). Steps: divide by ``scale`` (``scaling``),
    subtract the shift ``eta`` (``dpts``: per-token median; ``spts``: the given constant),
    score with ``criterion``, keep by the mask rule, rescale (``var``), add the shift back
    (the hardware adds ``eta * W.sum(1)`` after the MAC, which is the same thing).

    Parameters
    ----------
    factor : torch.Tensor, optional
        ``[K]`` channel factor for ``weight_norm``.
    eta : float, optional
        Static shift for ``spts``.
    scale : torch.Tensor, optional
        ``[K]`` SmoothQuant factor for ``scaling`` (the caller folds it into the weights).

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``. Without a shift mitigation, exactly the kept elements
        are nonzero (N of every M for an N:M pattern, unless kept values are themselves 0).
    """
    sp = parse_sparsity(sparsity) if not isinstance(sparsity, Sparsity) else sparsity
    if sp is None:
        return x
    mitigation = _mit.check_mitigation(mitigation)
    if mitigation == "scaling":
        if scale is None:
            raise ValueError("mitigation 'scaling' needs the per-channel scale (scale=)")
        x = x / scale.to(x.dtype)
    shift: torch.Tensor | float | None = None
    if mitigation == "dpts":
        shift = _mit.token_median(x)
    elif mitigation == "spts":
        if eta is None:
            raise ValueError("mitigation 'spts' needs the calibrated shift (eta=)")
        shift = float(eta)
    xc = x - shift if shift is not None else x
    mask = select_mask(_criteria.score(criterion, xc, factor=factor), sp)
    xs = xc * mask
    if mitigation == "var":
        xs = _mit.var_rescale(xc, xs)
    if shift is not None:
        xs = xs + shift
    return xs


class _Site:
    """One activation site: the Linear layers that read one input tensor."""

    def __init__(self, names: list[str], modules: list[nn.Linear]):
        self.names = names
        self.modules = modules
        self.factor: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None
        self.eta: float | None = None
        self._key: tuple[Any, int] | None = None
        self._out: torch.Tensor | None = None

    def clear(self) -> None:
        self._key = None
        self._out = None


class SparsityHandle:
    """What :func:`apply_sparsity` did to a model; ``remove()`` undoes it (idempotent).

    Attributes
    ----------
    layers : list[str]
        Names of the sparsified Linear layers.
    sites : int
        Number of distinct activation sites (one mask each per forward pass).
    """

    def __init__(self) -> None:
        self.layers: list[str] = []
        self.sites = 0
        self._hooks: list[Any] = []
        self._saved: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._site_objs: list[_Site] = []

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        with torch.no_grad():
            for param, orig in reversed(self._saved):
                param.copy_(orig)
        self._saved.clear()
        for s in self._site_objs:
            s.clear()

    def __enter__(self) -> SparsityHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _find_sites(model: nn.Module, targets: tuple[str, ...]) -> list[_Site]:
    groups: dict[tuple[str, int], _Site] = {}
    order: list[_Site] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        parent, _, leaf = name.rpartition(".")
        if leaf not in targets:
            continue
        fam = next((i for i, f in enumerate(SHARED_INPUTS) if leaf in f), None)
        key = (parent, fam) if fam is not None else (name, -1)
        site = groups.get(key)
        if site is None or site.modules[0].in_features != mod.in_features:
            site = _Site([], [])
            groups[key] = site
            order.append(site)
        site.names.append(name)
        site.modules.append(mod)
    return order


def apply_sparsity(
    model: nn.Module,
    pattern: str | None = "8:16",
    criterion: str = "magnitude",
    mitigation: str | None = None,
    targets: Iterable[str] = DEFAULT_TARGETS,
    *,
    weight_pattern: str | None = None,
    calibration: _mit.Calibration | None = None,
    standardize: bool = False,
) -> SparsityHandle:
    """Sparsify ``model`` until the returned handle's ``remove()`` is called.

    Parameters
    ----------
    model : nn.Module
        Any model with ``nn.Linear`` layers (e.g. a ``transformers`` causal LM).
    pattern : str or None
        Activation pattern ``"N:M"``, ``"unstructured:S"``, or ``None``/``"dense"`` (no
        activation sparsity, e.g. weight pruning only).
    criterion : str
        ``"magnitude"``, ``"weight_norm"`` or ``"clact"`` (:mod:`golden.llm.criteria`).
    mitigation : str or None
        ``None``, ``"var"``, ``"dpts"``, ``"spts"`` or ``"scaling"`` (:mod:`golden.llm.mitigations`).
    targets : iterable of str
        Last name components of the Linear layers to sparsify.
    weight_pattern : str or None
        N:M (or ``unstructured:S``) magnitude pruning of the targeted weights, in place
        (restored by ``remove()``).
    calibration : Calibration, optional
        From :func:`golden.llm.mitigations.calibrate`; required by ``spts`` and ``scaling``.
    standardize : bool
        ``weight_norm`` on standardized weight rows.

    Raises
    ------
    ValueError
        Invalid pattern/criterion/mitigation, no targeted layer found, a feature count not a
        multiple of M, or missing calibration.
    """
    sp = parse_sparsity(pattern)
    wsp = parse_sparsity(weight_pattern)
    _criteria.check_criterion(criterion)
    mitigation = _mit.check_mitigation(mitigation)
    if isinstance(targets, str):
        raise TypeError(f"targets must be a collection of layer names, not the string {targets!r}")
    targets = tuple(targets)
    if mitigation in _mit.CALIBRATED and sp is not None and calibration is None:
        raise ValueError(
            f"mitigation {mitigation!r} needs calibration statistics: pass "
            f"calibration=golden.llm.mitigations.calibrate(model, calibration_batches)"
        )
    sites = _find_sites(model, targets)
    if not sites:
        raise ValueError(f"no nn.Linear layer of the model is named like any of {targets}")
    for s in sites:
        k = s.modules[0].in_features
        for spx in (sp, wsp):
            if spx is not None and spx.kind == "nm" and k % spx.m:
                raise ValueError(
                    f"layer {s.names[0]} has {k} input features, not a multiple of m = {spx.m}"
                )

    handle = SparsityHandle()
    handle.layers = [n for s in sites for n in s.names]
    handle.sites = len(sites)
    try:
        with torch.no_grad():
            for s in sites:
                for mod in s.modules:
                    if wsp is not None or (sp is not None and mitigation == "scaling"):
                        handle._saved.append((mod.weight, mod.weight.detach().clone()))
                if wsp is not None:
                    for mod in s.modules:
                        w = mod.weight
                        w.mul_(select_mask(w.detach(), wsp).to(w.dtype))
                if sp is None:
                    continue
                if mitigation == "scaling":
                    stats = calibration[s.names[0]]
                    s.scale = _mit.smooth_scale(stats.absmax, [m.weight for m in s.modules])
                    for mod in s.modules:
                        mod.weight.mul_(s.scale.to(mod.weight.dtype))
                if mitigation == "spts":
                    s.eta = calibration[s.names[0]].eta
                if criterion == "weight_norm":
                    s.factor = _criteria.weight_norm_factor(
                        [m.weight for m in s.modules], standardize=standardize
                    )
        if sp is not None:
            for s in sites:
                hook = _make_hook(s, sp, criterion, mitigation)
                for mod in s.modules:
                    handle._hooks.append(mod.register_forward_pre_hook(hook))
                handle._site_objs.append(s)
    except BaseException:
        handle.remove()
        raise
    return handle


def _version(x: torch.Tensor) -> int:
    try:
        return x._version
    except RuntimeError:  # inference-mode tensors have no version counter
        return -1


def _make_hook(site: _Site, sp: Sparsity, criterion: str, mitigation: str | None):
    def hook(_mod: nn.Module, args: tuple) -> tuple:
        x = args[0]
        key = (x, _version(x))
        if site._key is not None and site._key[0] is x and site._key[1] == key[1]:
            out = site._out
        else:
            out = sparsify_tensor(
                x,
                sp,
                criterion=criterion,
                mitigation=mitigation,
                factor=site.factor,
                eta=site.eta,
                scale=site.scale,
            )
            site._key, site._out = key, out
        return (out, *args[1:])

    return hook


@contextlib.contextmanager
def sparsify(
    model: nn.Module,
    pattern: str | None = "8:16",
    criterion: str = "magnitude",
    mitigation: str | None = None,
    targets: Iterable[str] = DEFAULT_TARGETS,
    *,
    weight_pattern: str | None = None,
    calibration: _mit.Calibration | None = None,
    standardize: bool = False,
) -> Iterator[SparsityHandle]:
    """Context manager form of :func:`apply_sparsity` (same parameters); the model is
    restored (hooks removed, weights copied back) on exit, also after an exception."""
    handle = apply_sparsity(
        model,
        pattern,
        criterion,
        mitigation,
        targets,
        weight_pattern=weight_pattern,
        calibration=calibration,
        standardize=standardize,
    )
    try:
        yield handle
    finally:
        handle.remove()

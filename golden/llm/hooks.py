"""Dynamic N:M activation sparsity (and N:M weight pruning) on a PyTorch model.

:func:`sparsify` is a context manager that, for every targeted ``nn.Linear``, replaces the
layer's *input* with its sparsified version, per token, along the input-feature dimension,
with the DESIGN.md section 1 rule applied to a criterion's score (:mod:`golden.llm.criteria`)
and a mitigation around it (:mod:`golden.llm.mitigations`)::

    with golden.llm.sparsify(model, pattern="8:16"):
        logits = model(ids).logits

    input x --> [scale / shift] --> score --> keep mask --> [var / unshift] --> Linear [+ bias]

Biases are untouched; ``lm_head`` and the embeddings stay dense (only modules whose last name
component is in ``targets`` are touched). :func:`apply_sparsity` is the permanent variant: it
returns a :class:`SparsityHandle` whose ``remove()`` undoes everything.

Sites. Layers that read the same tensor (q/k/v of an attention block, gate/up of a SwiGLU
MLP) form one *site*: one mask per activation vector, as one selector in front of a fused
projection computes it, computed once per site and forward pass. A criterion or mitigation
defined per layer (the paper's ``weight_norm``/Amber-Pruner, ``var_weight``,
``scaling_batch``, ``lpts``, ``out_bias``) splits every site into its Linears: each gets its
own mask, as in the paper's code (one selector per Linear).

Patterns: ``"N:M"`` or ``"unstructured:S"``. Unstructured keeps ``int(K * (1 - S))`` of
the K features of each token, as the paper's code does (``int`` rounds down: S = 0.1 of
K = 3 keeps ``int(2.7) = 2``, where ``K - round(S * K)`` would keep 3), except for
the criteria the paper selects over the whole tensor (``clact`` and ``weight_norm``:
``int(T * K * (1 - S))`` of the T tokens of the forward call). Ties: the lower index wins, as
for N:M (flat index for the whole tensor). ``weight_pattern`` prunes each targeted weight
matrix with the same rule on ``|W|`` along its input dimension (per output row), in place; the
context manager and ``remove()`` restore the original weights.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nmsparse.contract.patterns import Sparsity, parse_sparsity
from nmsparse.contract.seeds import seed as _seed

from ..nm import nm_mask
from . import criteria as _criteria
from . import mitigations as _mit

__all__ = [
    "DEFAULT_TARGETS",
    "SHARED_INPUTS",
    "Sparsity",
    "parse_sparsity",
    "keep_count",
    "select_mask",
    "sparsify_tensor",
    "per_layer",
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


def keep_count(k: int, fraction: float) -> int:
    """Elements kept of ``k`` at sparsity ``fraction``: ``int(k * (1 - fraction))``, the
    paper's rounding (down)."""
    return int(k * (1.0 - fraction))


def _whole_tensor_mask(s: torch.Tensor, keep: int) -> torch.Tensor:
    """The ``keep`` largest scores of all of ``s`` (ties: the lower flat index wins)."""
    flat = s.detach().reshape(-1).to(torch.float32)
    if keep >= flat.numel():
        return torch.ones(s.shape, dtype=torch.bool)
    if keep <= 0:
        return torch.zeros(s.shape, dtype=torch.bool)
    thr = flat.kthvalue(flat.numel() - keep + 1).values  # the keep-th largest
    gt = flat > thr
    eq = flat == thr
    need = keep - int(gt.sum())
    take = eq & (eq.cumsum(0) <= need)
    return (gt | take).reshape(s.shape)


def select_mask(score: torch.Tensor, sparsity: Sparsity, *,
                whole_tensor: bool = False) -> torch.Tensor:
    """Boolean keep-mask of ``score: [..., K]`` (DESIGN.md rule: largest magnitude first,
    lower index wins ties): N:M along the last dimension; unstructured per token, or over
    the whole tensor with ``whole_tensor``."""
    s = _mask_input(score)
    if sparsity.kind == "nm":
        return nm_mask(s, sparsity.n, sparsity.m)
    if whole_tensor:
        return _whole_tensor_mask(s.abs(), keep_count(s.numel(), sparsity.fraction))
    k = s.shape[-1]
    keep = keep_count(k, sparsity.fraction)
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
    eta: float | torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    weight_absmax: torch.Tensor | None = None,
) -> torch.Tensor:
    """The input a sparsified Linear sees, for dense activations ``x: [..., S, K]``.

    Pure function of tensors (the hooks call it; differentiable in ``eta`` for training).
    Steps: the selector's view of x (``x / s`` for the scalings, ``x - eta`` for the shifts:
    ``dpts`` the per-token median, ``spts``/``spts_paper`` the calibrated constant, ``lpts``
    the learned per-channel shift), score it with ``criterion``, keep by the mask rule,
    rescale (``var``), add the shift back (the hardware adds ``eta * W.sum(1)`` after the
    MAC, which is the same thing). ``out_bias`` leaves the input as plain pruning (its bias
    is added to the Linear's output by the hooks).

    Parameters
    ----------
    factor : torch.Tensor, optional
        ``[K]`` channel factor for ``weight_norm``, ``weight_norm_site``, ``var_weight``.
    eta : float or torch.Tensor, optional
        Static shift for ``spts``/``spts_paper`` (a number) or ``lpts`` (``[K]``).
    scale : torch.Tensor, optional
        ``[K]`` calibrated scale for ``scaling_static``.
    weight_absmax : torch.Tensor, optional
        ``[K]`` ``max_o |W_oj|`` of the layer, for ``scaling_batch``.

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
    _criteria.check_criterion(criterion)
    view = x
    if mitigation == "scaling_static":
        if scale is None:
            raise ValueError("mitigation 'scaling_static' needs the calibrated scale (scale=)")
        view = x / scale.to(x.dtype)
    elif mitigation == "scaling_batch":
        if weight_absmax is None:
            raise ValueError(
                "mitigation 'scaling_batch' needs the layer's max |W| (weight_absmax=)")
        view = x / _mit.batch_scale(x, weight_absmax).to(x.dtype)
    shift: torch.Tensor | float | None = None
    if mitigation == "dpts":
        shift = _mit.token_median(x)
    elif mitigation in ("spts", "spts_paper", "lpts"):
        if eta is None:
            raise ValueError(f"mitigation {mitigation!r} needs the shift (eta=)")
        shift = eta if isinstance(eta, torch.Tensor) else float(eta)
        if isinstance(shift, torch.Tensor):
            shift = shift.to(x.dtype)
    xc = x - shift if shift is not None else x
    if shift is not None:
        view = xc
    whole = sp.kind != "nm" and criterion in _criteria.GLOBAL_UNSTRUCTURED
    mask = select_mask(_criteria.score(criterion, view.detach(), factor=factor), sp,
                       whole_tensor=whole)
    # times the mask as bytes: the same products as a bool mask without the bool-to-float
    # promotion (bench/bench_hook_parts.py: 1.0x in a process that imported golden.llm, 3x
    # in one that did not; why the import slows torch's elementwise ops is not known)
    xs = xc * mask.view(torch.uint8)
    if mitigation == "var":
        xs = _mit.var_rescale(xc, xs)
    if shift is not None:
        xs = xs + shift
    return xs


def per_layer(criterion: str, mitigation: str | None) -> bool:
    """True when ``criterion`` or ``mitigation`` gives every Linear its own mask."""
    return (criterion in _criteria.PER_LAYER
            or _mit.check_mitigation(mitigation) in _mit.PER_LAYER)


class _Site:
    """One activation site: the Linear layers that read one input tensor."""

    def __init__(self, names: list[str], modules: list[nn.Linear]):
        self.names = names
        self.modules = modules
        self.factor: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None
        self.weight_absmax: torch.Tensor | None = None
        self.eta: float | torch.Tensor | None = None
        self._key: tuple[Any, int] | None = None
        self._out: torch.Tensor | None = None

    def clear(self) -> None:
        self._key = None
        self._out = None


class SparsityHandle:
    """What :func:`apply_sparsity` did to a model; ``remove()`` undoes it (idempotent).

    Members
    -------
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


def _find_sites(model: nn.Module, targets: tuple[str, ...], shared: bool = True) -> list[_Site]:
    groups: dict[tuple[str, int], _Site] = {}
    order: list[_Site] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        parent, _, leaf = name.rpartition(".")
        if leaf not in targets:
            continue
        fam = next((i for i, f in enumerate(SHARED_INPUTS) if leaf in f), None) if shared else None
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
    seed: int | None = None,
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
        One of :data:`golden.llm.criteria.CRITERIA`.
    mitigation : str or None
        ``None`` or one of :data:`golden.llm.mitigations.MITIGATIONS`.
    targets : iterable of str
        Last name components of the Linear layers to sparsify.
    weight_pattern : str or None
        N:M (or ``unstructured:S``) magnitude pruning of the targeted weights, in place
        (restored by ``remove()``).
    calibration : Calibration, optional
        What the mitigation needs: :func:`golden.llm.mitigations.calibrate` (``spts``,
        ``scaling_static``), :func:`golden.llm.mitigations.calibrate_spts_paper`
        (``spts_paper``), :func:`golden.llm.learned.train` (``lpts``: ``shift``, ``out_bias``:
        ``bias``; their tensors may require grad, for training).
    standardize : bool
        ``weight_norm_site`` on standardized weight rows.
    seed : int, optional
        Seed of ``weight_norm``'s weight subsample (default: the project seed).

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
    needs = _mit.CALIBRATED + _mit.EVAL_CALIBRATED + _mit.TRAINED
    if mitigation in needs and sp is not None and calibration is None:
        how = {"spts_paper": "golden.llm.mitigations.calibrate_spts_paper(...)",
               "lpts": "golden.llm.learned.train(...)",
               "out_bias": "golden.llm.learned.train(...)"}.get(
                   mitigation, "golden.llm.mitigations.calibrate(model, calibration_batches)")
        raise ValueError(f"mitigation {mitigation!r} needs calibration statistics: pass "
                         f"calibration={how}")
    sites = _find_sites(model, targets, shared=not per_layer(criterion, mitigation))
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
                if wsp is not None:
                    for mod in s.modules:
                        handle._saved.append((mod.weight, mod.weight.detach().clone()))
                        w = mod.weight
                        w.mul_(select_mask(w.detach(), wsp).to(w.dtype))
                if sp is None:
                    continue
                _prepare_site(s, criterion, mitigation, calibration, standardize, seed)
        if sp is not None:
            for s in sites:
                hook = _make_hook(s, sp, criterion, mitigation)
                for mod in s.modules:
                    handle._hooks.append(mod.register_forward_pre_hook(hook))
                if mitigation == "out_bias":
                    for name, mod in zip(s.names, s.modules, strict=True):
                        handle._hooks.append(mod.register_forward_hook(
                            _make_bias_hook(calibration[name].bias, name)))
                handle._site_objs.append(s)
    except BaseException:
        handle.remove()
        raise
    return handle


_FACTORS: dict[tuple[int, str, int], tuple[weakref.ref, tuple[int, int], torch.Tensor]] = {}


def _factor_of(w: torch.Tensor, kind: str, seed: int | None) -> torch.Tensor:
    """A per-layer factor, computed once per weight tensor and version (the suite asks for
    Amber-Pruner's factors of the same 210 layers twice)."""
    key, stamp = (id(w), kind, _seed(seed)), (w._version, w.data_ptr())
    hit = _FACTORS.get(key)
    if hit is None or hit[0]() is not w or hit[1] != stamp:  # new, replaced or changed
        f = (_criteria.amber_factor(w, seed=seed) if kind == "weight_norm"
             else _criteria.var_weight_factor(w))
        _FACTORS[key] = hit = (weakref.ref(w, lambda _r, k=key: _FACTORS.pop(k, None)), stamp, f)
    return hit[2]


def _prepare_site(s: _Site, criterion: str, mitigation: str | None,
                  calibration: _mit.Calibration | None, standardize: bool,
                  seed: int | None) -> None:
    """The static state of one site: factors, scales, shifts (no grad)."""
    weights = [m.weight for m in s.modules]
    if criterion == "weight_norm":
        s.factor = _factor_of(weights[0], criterion, seed)
    elif criterion == "weight_norm_site":
        s.factor = _criteria.weight_norm_factor(weights, standardize=standardize)
    elif criterion == "var_weight":
        s.factor = _factor_of(weights[0], criterion, seed)
    if mitigation == "scaling_static":
        s.scale = _mit.smooth_scale(calibration[s.names[0]].absmax, weights)
    elif mitigation == "scaling_batch":
        s.weight_absmax = weights[0].detach().abs().amax(dim=0).to(torch.float32)
    elif mitigation in ("spts", "spts_paper"):
        s.eta = calibration[s.names[0]].eta
    elif mitigation == "lpts":
        shift = calibration[s.names[0]].shift
        if shift is None:
            raise ValueError(f"the calibration has no learned shift for {s.names[0]!r} (lpts)")
        s.eta = shift
    elif mitigation == "out_bias" and calibration[s.names[0]].bias is None:
        raise ValueError(f"the calibration has no learned bias for {s.names[0]!r} (out_bias)")


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
                weight_absmax=site.weight_absmax,
            )
            site._key, site._out = key, out
        return (out, *args[1:])

    return hook


def _make_bias_hook(bias: torch.Tensor, name: str):
    def hook(mod: nn.Module, _args: tuple, out: torch.Tensor) -> torch.Tensor:
        if bias.shape != out.shape[-1:]:
            raise ValueError(f"{name}: learned bias of shape {tuple(bias.shape)} for "
                             f"{out.shape[-1]} outputs")
        return out + bias.to(out.dtype)

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
    seed: int | None = None,
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
        seed=seed,
    )
    try:
        yield handle
    finally:
        handle.remove()

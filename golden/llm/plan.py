"""Per-layer sparsity plans: a different activation pattern for each Linear layer.

A runtime-flexible unit (DESIGN.md section 5) lets every layer use its own N:M. A *plan*
says which, as ``layer=pattern`` rules matched against the Linear layers' module names::

    plan = parse_plan("layers.0.*=16:32,*.down_proj=16:32,*=8:16")
    with sparsify_plan(model, plan):                 # or apply_plan(...).remove()
        logits = model(ids).logits

    model.layers.0.self_attn.q_proj   -> 16:32   (rule 1)
    model.layers.5.mlp.down_proj      -> 16:32   (rule 2)
    model.layers.5.mlp.up_proj        -> 8:16    (rule 3)

Rules are shell patterns (``fnmatch``) tried in order, the first match wins; a pattern
matches a name whole or any dot-separated tail of it (``down_proj`` matches
``model.layers.5.mlp.down_proj``). A layer no rule matches stays dense, as does a rule's
``dense``. Patterns are those of :func:`golden.llm.hooks.parse_sparsity` (``N:M``,
``unstructured:S``). Each group of layers that share an input and a pattern (q/k/v, gate/up)
keeps one mask per token, as with :func:`golden.llm.hooks.apply_sparsity`, which does the
work: a plan is one :func:`apply_sparsity` call per (parent module, pattern).

Trade-off: plans are matched on names, so they carry over to any model with the same
naming (Llama-style ``model.layers.<i>.<block>.<proj>``); a rule that matches no layer is an
error rather than a silently dense model.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .hooks import DEFAULT_TARGETS, SparsityHandle, apply_sparsity, parse_sparsity
from .quality import perplexity, windows

__all__ = [
    "PlanRule",
    "Plan",
    "parse_plan",
    "layer_names",
    "resolve_plan",
    "PlanHandle",
    "apply_plan",
    "sparsify_plan",
    "evaluate_plans",
]


@dataclass(frozen=True)
class PlanRule:
    """``glob=pattern``; ``pattern`` is a normalized label or ``"dense"``."""

    glob: str
    pattern: str

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.glob) or fnmatch.fnmatchcase(
            name, "*." + self.glob)


@dataclass(frozen=True)
class Plan:
    """An ordered list of rules (first match wins); :attr:`text` is the canonical form."""

    rules: tuple[PlanRule, ...]

    @property
    def text(self) -> str:
        return ",".join(f"{r.glob}={r.pattern}" for r in self.rules)

    def pattern_for(self, name: str) -> str:
        """The pattern of layer ``name`` (``"dense"`` when no rule matches)."""
        return next((r.pattern for r in self.rules if r.matches(name)), "dense")


def parse_plan(text: object) -> Plan:
    """``"layers.0.*=16:32,*=8:16"`` -> :class:`Plan`.

    Raises
    ------
    TypeError
        ``text`` is not a string.
    ValueError
        An empty plan, an entry without ``=``, an empty layer pattern, or an invalid
        activation pattern; the message names the entry.
    """
    if not isinstance(text, str):
        raise TypeError(f"a plan must be a string like 'layers.0.*=16:32,*=8:16', not {text!r}")
    rules = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        glob, sep, pat = entry.partition("=")
        glob, pat = glob.strip(), pat.strip()
        if not sep or not glob or not pat:
            raise ValueError(f"plan entry {entry!r} must be layer=pattern, e.g. "
                             "'layers.0.*=16:32' or '*=8:16'")
        try:
            sp = parse_sparsity(pat)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"plan entry {entry!r}: {exc}") from None
        rules.append(PlanRule(glob, "dense" if sp is None else sp.label))
    if not rules:
        raise ValueError(f"empty plan {text!r}: give layer=pattern rules, e.g. '*=8:16'")
    return Plan(tuple(rules))


def layer_names(model: nn.Module, targets: Iterable[str] = DEFAULT_TARGETS) -> list[str]:
    """Names of the Linear layers a plan can address (last name component in ``targets``)."""
    targets = tuple(targets)
    return [name for name, mod in model.named_modules()
            if isinstance(mod, nn.Linear) and name.rpartition(".")[2] in targets]


def resolve_plan(model: nn.Module, plan: Plan,
                 targets: Iterable[str] = DEFAULT_TARGETS) -> dict[str, str]:
    """``{layer name: pattern}`` for every addressable layer of ``model``.

    Raises
    ------
    ValueError
        A rule matches no layer (it names the rule and a few layer names).
    """
    names = layer_names(model, targets)
    for r in plan.rules:
        if not any(r.matches(n) for n in names):
            raise ValueError(f"plan rule {r.glob}={r.pattern} matches no Linear layer; the "
                             f"layers are named like {', '.join(names[:3])}, ...")
    return {n: plan.pattern_for(n) for n in names}


class PlanHandle:
    """What :func:`apply_plan` did; ``remove()`` undoes it (idempotent).

    Attributes
    ----------
    layers : dict[str, str]
        Pattern of every addressable layer (``"dense"`` included).
    """

    def __init__(self, layers: dict[str, str]) -> None:
        self.layers = layers
        self._handles: list[SparsityHandle] = []

    def remove(self) -> None:
        for h in reversed(self._handles):
            h.remove()
        self._handles.clear()

    def counts(self) -> dict[str, int]:
        """Layers per pattern."""
        out: dict[str, int] = {}
        for p in self.layers.values():
            out[p] = out.get(p, 0) + 1
        return out

    def density(self, model: nn.Module) -> float:
        """Kept fraction of the activations, weighted by each layer's multiply count
        (in_features x out_features): the share of the dense MACs the plan computes."""
        mods = dict(model.named_modules())
        num = den = 0.0
        for name, pat in self.layers.items():
            mod = mods[name]
            macs = float(mod.in_features * mod.out_features)
            sp = parse_sparsity(pat)
            num += macs * (1.0 if sp is None else sp.density)
            den += macs
        return num / den if den else 1.0


def apply_plan(model: nn.Module, plan: Plan | str, criterion: str = "magnitude",
               targets: Iterable[str] = DEFAULT_TARGETS) -> PlanHandle:
    """Sparsify ``model`` by ``plan`` until the returned handle's ``remove()`` is called.

    Raises
    ------
    ValueError
        An invalid plan or criterion, a rule that matches no layer, or a layer whose
        feature count is not a multiple of its pattern's M.
    """
    plan = parse_plan(plan) if isinstance(plan, str) else plan
    layers = resolve_plan(model, plan, targets)
    handle = PlanHandle(layers)
    groups: dict[tuple[str, str], list[str]] = {}
    for name, pat in layers.items():
        if pat != "dense":
            parent, _, leaf = name.rpartition(".")
            groups.setdefault((parent, pat), []).append(leaf)
    try:
        for (parent, pat), leaves in groups.items():
            sub = model.get_submodule(parent) if parent else model
            handle._handles.append(apply_sparsity(sub, pat, criterion, targets=tuple(leaves)))
    except BaseException:
        handle.remove()
        raise
    return handle


@contextlib.contextmanager
def sparsify_plan(model: nn.Module, plan: Plan | str, criterion: str = "magnitude",
                  targets: Iterable[str] = DEFAULT_TARGETS) -> Iterator[PlanHandle]:
    """Context manager form of :func:`apply_plan`; the model is restored on exit."""
    handle = apply_plan(model, plan, criterion, targets)
    try:
        yield handle
    finally:
        handle.remove()


def _tokenize(tok: Any, text: str, tokens: int) -> torch.Tensor:
    n = max(4096, 8 * tokens)  # English: ~4-5 characters per token
    while True:
        ids = tok(text[:n], return_tensors="pt", add_special_tokens=False).input_ids[0]
        if ids.numel() > tokens or n >= len(text):
            return ids
        n *= 2


def evaluate_plans(model: nn.Module, tokenizer: Any, plans: Sequence[Plan | str], text: str, *,
                   tokens: int = 8192, window: int = 512, criterion: str = "magnitude",
                   targets: Iterable[str] = DEFAULT_TARGETS, batch_size: int = 1,
                   dense: bool = True, meta: dict[str, Any] | None = None,
                   on_record: Callable[[dict[str, Any]], None] | None = None,
                   ) -> list[dict[str, Any]]:
    """Perplexity of the dense model (if ``dense``) and of each plan, over the same windows
    of ``text`` (as :func:`golden.llm.quality.evaluate`).

    Returns one record per run: ``pattern`` (``"dense"`` or ``"plan"``), ``plan`` (the
    canonical text), ``layers`` (layers per pattern), ``mac_density`` (share of the dense
    MACs computed), ``criterion``, ``ppl``, ``tokens``, ``predicted``, ``window``,
    ``seconds`` and the ``meta`` fields.
    """
    targets = tuple(targets)
    parsed = [parse_plan(p) if isinstance(p, str) else p for p in plans]
    for p in parsed:
        resolve_plan(model, p, targets)  # every rule must match before anything runs
    wins = windows(_tokenize(tokenizer, text, tokens), tokens, window)
    runs: list[Plan | None] = ([None] if dense else []) + list(parsed)
    out = []
    for p in runs:
        t0 = time.perf_counter()
        if p is None:
            ppl, predicted = perplexity(model, wins, batch_size=batch_size)
            extra: dict[str, Any] = {"pattern": "dense", "plan": None, "layers": None,
                                     "mac_density": 1.0, "criterion": None}
        else:
            with sparsify_plan(model, p, criterion, targets) as h:
                ppl, predicted = perplexity(model, wins, batch_size=batch_size)
            extra = {"pattern": "plan", "plan": p.text, "layers": h.counts(),
                     "mac_density": round(h.density(model), 4), "criterion": criterion}
        rec = {**extra, "mitigation": None, "weight_pattern": None, "ppl": ppl,
               "tokens": int(wins.numel()), "predicted": predicted, "window": window,
               "seconds": round(time.perf_counter() - t0, 2), **(meta or {})}
        if not math.isfinite(ppl):
            rec["ppl"] = float("inf")
        out.append(rec)
        if on_record is not None:
            on_record(rec)
    return out


def format_plans(records: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of :func:`evaluate_plans` records (ppl and the ratio to dense)."""
    dense = next((r["ppl"] for r in records if r["pattern"] == "dense"), None)
    head = f"{'ppl':>9s} {'x dense':>8s} {'MACs':>6s}  plan (layers per pattern)"
    lines = [head, "-" * len(head)]
    for r in records:
        ratio = f"{r['ppl'] / dense:8.3f}" if dense else f"{'':8s}"
        what = ("dense" if r["plan"] is None else
                f"{r['plan']}  ({', '.join(f'{p}: {c}' for p, c in r['layers'].items())})")
        lines.append(f"{r['ppl']:9.3f} {ratio} {r['mac_density']:6.3f}  {what}")
    return "\n".join(lines)

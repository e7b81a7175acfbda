"""Model quality under activation sparsity: perplexity of a causal LM over a text.

Perplexity is measured over non-overlapping windows of ``window`` tokens (each window starts
from an empty context; the first token of a window is not predicted):
``ppl = exp(sum of token NLLs / number of predicted tokens)``. Every setting sees exactly the
same windows, so settings compare directly; dense is the reference.

Settings that need calibration (``spts``, ``scaling``) are calibrated on a *different* text
(by default another Austen novel, :data:`golden.llm.corpus.CALIB_BOOK`) with the dense model, then
frozen.

The standard table (:func:`standard_settings`, ``nmsparse quality --suite``): dense; 2:4, 4:8,
8:16, 16:32 and unstructured:0.5 with the magnitude criterion; 8:16 with each other criterion;
8:16 with each mitigation; 2:4 magnitude weight pruning (dense activations).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from . import criteria as _criteria
from . import mitigations as _mit
from .hooks import DEFAULT_TARGETS, parse_sparsity, sparsify

__all__ = [
    "Setting",
    "standard_settings",
    "windows",
    "perplexity",
    "evaluate",
]

DEFAULT_PATTERNS: tuple[str, ...] = ("2:4", "4:8", "8:16", "16:32", "unstructured:0.5")


@dataclass(frozen=True)
class Setting:
    """One row of the quality table. ``pattern`` ``"dense"`` means no activation sparsity."""

    pattern: str = "dense"
    criterion: str | None = None
    mitigation: str | None = None
    weight_pattern: str | None = None

    def __post_init__(self) -> None:
        sp = parse_sparsity(self.pattern)
        object.__setattr__(self, "pattern", "dense" if sp is None else sp.label)
        if self.criterion is not None:
            _criteria.check_criterion(self.criterion)
        object.__setattr__(self, "mitigation", _mit.check_mitigation(self.mitigation))
        wsp = parse_sparsity(self.weight_pattern)
        object.__setattr__(self, "weight_pattern", None if wsp is None else wsp.label)
        if sp is not None and self.criterion is None:
            object.__setattr__(self, "criterion", "magnitude")
        if sp is None and self.mitigation is not None:
            raise ValueError(f"mitigation {self.mitigation!r} needs an activation pattern")

    @property
    def is_dense(self) -> bool:
        return self.pattern == "dense" and self.weight_pattern is None

    @property
    def needs_calibration(self) -> bool:
        return self.mitigation in _mit.CALIBRATED

    @property
    def label(self) -> str:
        if self.is_dense:
            return "dense"
        parts = []
        if self.pattern != "dense":
            parts.append(f"act {self.pattern} {self.criterion}")
            if self.mitigation:
                parts.append(f"+{self.mitigation}")
        if self.weight_pattern:
            parts.append(f"weight {self.weight_pattern}")
        return " ".join(parts)


def standard_settings() -> list[Setting]:
    """The table of the paper's comparison: see the module docstring."""
    out = [Setting()]
    out += [Setting(p, "magnitude") for p in DEFAULT_PATTERNS]
    out += [Setting("8:16", c) for c in _criteria.CRITERIA if c != "magnitude"]
    out += [Setting("8:16", "magnitude", m) for m in _mit.MITIGATIONS]
    out += [Setting("dense", weight_pattern="2:4")]
    return out


def windows(ids: torch.Tensor, tokens: int, window: int) -> torch.Tensor:
    """The first ``tokens`` token ids cut into ``[W, window]`` non-overlapping windows.

    Uses ``min(tokens, len(ids))`` rounded down to whole windows.

    Raises
    ------
    ValueError
        Fewer than one window of tokens, or ``window < 2``.
    """
    ids = ids.reshape(-1)
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an integer >= 2, not {window!r}")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < window:
        raise ValueError(f"tokens must be an integer >= window ({window}), not {tokens!r}")
    w = min(tokens, ids.numel()) // window
    if w < 1:
        raise ValueError(
            f"the text has only {ids.numel()} tokens, fewer than one window of {window}"
        )
    return ids[: w * window].reshape(w, window)


@torch.no_grad()
def perplexity(
    model: nn.Module,
    wins: torch.Tensor,
    *,
    batch_size: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[float, int]:
    """Perplexity of ``model`` over windows ``wins: [W, S]``; returns ``(ppl, predicted tokens)``.

    ``progress(k)`` is called after each batch with the number of windows done in it.
    """
    total, count = 0.0, 0
    for i in range(0, wins.shape[0], batch_size):
        batch = wins[i : i + batch_size]
        logits = model(batch).logits[:, :-1].float()
        target = batch[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"
        )
        total += float(nll)
        count += target.numel()
        if progress is not None:
            progress(batch.shape[0])
    return math.exp(total / count), count


def _tokenize(tok: Any, text: str, tokens: int) -> torch.Tensor:
    # tokenize a prefix generous enough for `tokens` tokens (English: ~4-5 chars/token)
    n = max(4096, 8 * tokens)
    while True:
        ids = tok(text[:n], return_tensors="pt", add_special_tokens=False).input_ids[0]
        if ids.numel() > tokens or n >= len(text):
            return ids
        n *= 2


def evaluate(
    model: nn.Module,
    tokenizer: Any,
    settings: Sequence[Setting],
    text: str,
    *,
    tokens: int = 8192,
    window: int = 512,
    calib_text: str | None = None,
    calib_tokens: int = 2048,
    targets: Iterable[str] = DEFAULT_TARGETS,
    batch_size: int = 1,
    progress: bool = True,
    meta: dict[str, Any] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Perplexity of each setting over the same windows of ``text``.

    Parameters
    ----------
    model, tokenizer
        A causal LM returning ``.logits`` and its tokenizer (:func:`golden.llm.models.load_model`).
    settings : sequence of Setting
        Rows to evaluate (e.g. :func:`standard_settings`).
    text : str
        Evaluation text.
    tokens, window : int
        Tokens evaluated (rounded down to whole windows) and the window length.
    calib_text : str, optional
        Calibration text for ``spts``/``scaling`` (must differ from ``text``).
    calib_tokens : int
        Calibration tokens (in windows of ``window``).
    progress : bool
        Show a progress bar on stderr.
    meta : dict, optional
        Extra fields copied into every record (e.g. ``model``, ``text``).
    on_record : callable, optional
        Called with each record as soon as it is ready.

    Returns
    -------
    list[dict]
        One record per setting: ``pattern``, ``criterion``, ``mitigation``, ``weight_pattern``,
        ``ppl``, ``tokens`` (evaluated tokens), ``predicted`` (tokens with a loss), ``window``,
        ``seconds`` and the ``meta`` fields.

    Raises
    ------
    ValueError
        A setting needs calibration and no (or the same) calibration text is given, or the
        text is too short.
    """
    targets = tuple(targets)
    wins = windows(_tokenize(tokenizer, text, tokens), tokens, window)
    calibration = None
    if any(s.needs_calibration for s in settings):
        if calib_text is None:
            raise ValueError("settings with spts/scaling need a calibration text (calib_text=)")
        if calib_text.strip() == text.strip():
            raise ValueError("the calibration text must differ from the evaluation text")
        cw = windows(_tokenize(tokenizer, calib_text, calib_tokens), calib_tokens, window)
        calibration = _mit.calibrate(model, list(cw.split(batch_size)), targets)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(settings) * wins.shape[0], unit="win", desc="quality", leave=True)
    records = []
    try:
        for s in settings:
            if bar is not None:
                bar.set_description(s.label)
            t0 = time.perf_counter()
            with sparsify(
                model,
                None if s.pattern == "dense" else s.pattern,
                s.criterion or "magnitude",
                s.mitigation,
                targets,
                weight_pattern=s.weight_pattern,
                calibration=calibration,
            ):
                ppl, predicted = perplexity(
                    model, wins, batch_size=batch_size, progress=bar.update if bar else None
                )
            rec = {
                **asdict(s),
                "ppl": ppl,
                "tokens": int(wins.numel()),
                "predicted": predicted,
                "window": window,
                "seconds": round(time.perf_counter() - t0, 2),
                **(meta or {}),
            }
            records.append(rec)
            if on_record is not None:
                on_record(rec)
    finally:
        if bar is not None:
            bar.close()
    return records

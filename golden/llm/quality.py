"""Model quality under activation sparsity: perplexity of a causal LM over a text.

Perplexity is measured over non-overlapping windows of ``window`` tokens (each window starts
from an empty context; the first token of a window is not predicted):
``ppl = exp(sum of token NLLs / number of predicted tokens)``. Every setting sees exactly the
same windows, in forward calls of ``batch_size`` windows, so settings compare directly; dense
is the reference. The paper evaluates 8 windows of 512 per call, which the batch-pooled
criteria (``clact``, the whole-tensor unstructured selections, ``scaling_batch``) depend on.

What a setting needs before it is evaluated, and where it comes from::

    spts, scaling_static   dense model on the calibration text (another book), once per run
    spts_paper             sparsified model on the first 100 forward calls of the evaluated
                           windows (the paper's procedure), per pattern and criterion
    lpts, out_bias         trained block by block on segments of the calibration text

Everything calibrated is cached on disk (``$NMSPARSE_CACHE/quality``), keyed by the model's
weights, the token ids used, the setting and the source of the methods, so a second run of the
suite skips the calibration and the training (``cache=False`` recomputes).

The standard table (:func:`standard_settings`, ``nmsparse quality --suite``): dense; 2:4, 4:8,
8:16, 16:32 and unstructured:0.5 with the magnitude criterion; 8:16 with each other
criterion; unstructured:0.5 with the two criteria the paper selects over the whole tensor;
8:16 magnitude with each mitigation; 2:4 magnitude weight pruning (dense activations).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nmsparse.contract.toolchain import cache_dir

from . import criteria as _criteria
from . import learned as _learned
from . import mitigations as _mit
from .hooks import DEFAULT_TARGETS, parse_sparsity, sparsify

__all__ = [
    "Setting",
    "standard_settings",
    "windows",
    "perplexity",
    "evaluate",
    "DEFAULT_BATCH",
]

DEFAULT_PATTERNS: tuple[str, ...] = ("2:4", "4:8", "8:16", "16:32", "unstructured:0.5")
#: windows per forward call: the paper's batch of 8 windows of 512 tokens
DEFAULT_BATCH = 8
_LOSS_CHUNK = 1024  # tokens per lm_head call: the logits of a whole batch would take ~0.8 GB


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
        """Needs the calibration text (``spts``, ``scaling_static``, ``lpts``, ``out_bias``)."""
        return self.mitigation in _mit.CALIBRATED + _mit.TRAINED

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
    out += [Setting("unstructured:0.5", c) for c in _criteria.CRITERIA
            if c in _criteria.GLOBAL_UNSTRUCTURED]
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


def _split_head(model: nn.Module) -> tuple[nn.Module, nn.Linear] | None:
    """(body, lm_head) of a plain causal LM whose logits are ``lm_head(body(ids))``."""
    body, head = getattr(model, "model", None), getattr(model, "lm_head", None)
    cfg = getattr(model, "config", None)
    if (isinstance(body, nn.Module) and isinstance(head, nn.Linear)
            and not getattr(cfg, "final_logit_softcapping", None)
            and type(model).__name__.endswith("ForCausalLM")):
        return body, head
    return None


def _nll(model: nn.Module, batch: torch.Tensor) -> float:
    """Sum of the next-token NLLs of ``batch: [B, S]`` (the lm_head in chunks of tokens)."""
    target = batch[:, 1:].reshape(-1)
    split = _split_head(model)
    if split is None:
        logits = model(batch).logits[:, :-1].float()
        return float(nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target, reduction="sum"))
    body, head = split
    h = body(batch, use_cache=False).last_hidden_state[:, :-1]
    h = h.reshape(-1, h.shape[-1])
    total = 0.0
    for i in range(0, h.shape[0], _LOSS_CHUNK):
        logits = head(h[i : i + _LOSS_CHUNK]).float()
        total += float(nn.functional.cross_entropy(logits, target[i : i + _LOSS_CHUNK],
                                                   reduction="sum"))
    return total


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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    total, count = 0.0, 0
    for i in range(0, wins.shape[0], batch_size):
        batch = wins[i : i + batch_size]
        total += _nll(model, batch)
        count += batch.shape[0] * (batch.shape[1] - 1)
        if progress is not None:
            progress(batch.shape[0])
    return math.exp(total / count), count


def _shared_spts_paper(s: Setting, settings: Sequence[Setting], made: dict, store: _Cache | None,
                       wins: torch.Tensor, batch_size: int, paper_calls: int
                       ) -> tuple[tuple, str] | None:
    """(key, cache key) when the D-PTS pass of ``s`` can record a later ``spts_paper``
    calibration of the same pattern and criterion (the paper's collection pass is exactly a
    D-PTS pass over the evaluated windows); None otherwise."""
    if s.mitigation != "dpts" or store is None:
        return None
    pk = ("paper", s.pattern, s.criterion)
    if pk in made or not any(o.mitigation == "spts_paper" and o.pattern == s.pattern
                             and o.criterion == s.criterion for o in settings):
        return None
    disk = store.key(pk, wins, batch_size, paper_calls)
    return None if store.get(disk) is not None else (pk, disk)


def _calls(k: int) -> str:
    return f"{k} forward call" + ("" if k == 1 else "s")


def _tokenize(tok: Any, text: str, tokens: int) -> torch.Tensor:
    # tokenize a prefix generous enough for `tokens` tokens (English: ~4-5 chars/token)
    n = max(4096, 8 * tokens)
    while True:
        ids = tok(text[:n], return_tensors="pt", add_special_tokens=False).input_ids[0]
        if ids.numel() > tokens or n >= len(text):
            return ids
        n *= 2


# ------------------------------------------------------------------------------ the cache


def _sources_digest() -> str:
    """Digest of the code that defines the calibrated methods (a change invalidates)."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in ("hooks.py", "criteria.py", "mitigations.py", "learned.py", "quality.py",
              "../nm.py"):
        h.update((here / f).read_bytes())
    return h.hexdigest()[:16]


def _model_digest(model: nn.Module) -> str:
    """Digest of the weights (names, shapes, sums and a few values of every tensor)."""
    h = hashlib.sha256(type(model).__name__.encode())
    with torch.no_grad():
        for name, t in model.state_dict().items():
            flat = t.detach().reshape(-1)
            h.update(f"{name}{tuple(t.shape)}{float(flat.double().sum()):.17g}".encode())
            h.update(flat[:16].double().numpy().tobytes())
    return h.hexdigest()[:16]


class _Cache:
    """Calibrations on disk, one ``torch.save`` file per key (None: disabled)."""

    def __init__(self, model: nn.Module, enabled: bool):
        self.root = cache_dir() / "quality" if enabled else None
        self.prefix = f"{_model_digest(model)}-{_sources_digest()}" if enabled else ""

    def key(self, *parts: Any) -> str:
        h = hashlib.sha256(self.prefix.encode())
        for p in parts:
            h.update(p.numpy().tobytes() if isinstance(p, torch.Tensor) else repr(p).encode())
        return h.hexdigest()[:24]

    def get(self, key: str) -> _mit.Calibration | None:
        if self.root is None or not (self.root / f"{key}.pt").is_file():
            return None
        try:
            return _mit.Calibration.from_state(torch.load(self.root / f"{key}.pt"))
        except Exception:  # a stale or truncated file: compute again
            return None

    def put(self, key: str, cal: _mit.Calibration) -> None:
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{key}.tmp"
        torch.save(cal.to_state(), tmp)
        tmp.replace(self.root / f"{key}.pt")


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
    calib_label: str = "",
    segments: int = _learned.DEFAULT_SEGMENTS,
    segment_tokens: int = _learned.SEGMENT_TOKENS,
    paper_calls: int = _mit.PAPER_SPTS_CALLS,
    targets: Iterable[str] = DEFAULT_TARGETS,
    batch_size: int = DEFAULT_BATCH,
    cache: bool = True,
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
        Calibration text for ``spts``/``scaling_static`` (``calib_tokens`` tokens, in windows
        of ``window``) and for training ``lpts``/``out_bias`` (``segments`` segments of 512
        tokens); it must differ from ``text``.
    segments, segment_tokens : int
        Calibration segments for ``lpts``/``out_bias`` (one training step each) and their
        length (the paper: 512 tokens).
    paper_calls : int
        Forward calls the paper's S-PTS calibration (``spts_paper``) collects over.
    batch_size : int
        Windows per forward call (the paper: 8).
    cache : bool
        Reuse (and store) calibrations in ``$NMSPARSE_CACHE/quality``.
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
        ``batch``, ``seconds`` (the perplexity pass), ``calibration`` (where its statistics
        came from, or None), ``calib_seconds`` (time to calibrate or train it, 0 when cached),
        ``calib_cached`` and the ``meta`` fields.

    Raises
    ------
    ValueError
        A setting needs calibration and no (or the same) calibration text is given, or the
        text is too short.
    """
    targets = tuple(targets)
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"segments must be a positive integer, not {segments!r}")
    wins = windows(_tokenize(tokenizer, text, tokens), tokens, window)
    calib_ids = None
    if any(s.needs_calibration for s in settings):
        if calib_text is None:
            raise ValueError("settings with spts/scaling_static/lpts/out_bias need a "
                             "calibration text (calib_text=)")
        if calib_text.strip() == text.strip():
            raise ValueError("the calibration text must differ from the evaluation text")
        need = max(calib_tokens, segments * segment_tokens)
        calib_ids = _tokenize(tokenizer, calib_text, need)
    store = _Cache(model, cache) if any(s.mitigation for s in settings) else None
    made: dict[tuple, tuple[_mit.Calibration, float, bool]] = {}

    def calibration_for(s: Setting) -> tuple[_mit.Calibration | None, float, bool]:
        """(calibration, seconds spent, cached) for setting ``s``; computed once per run."""
        m = s.mitigation
        if m in _mit.CALIBRATED:
            key: tuple = ("dense", calib_tokens, window)
        elif m in _mit.EVAL_CALIBRATED:
            key = ("paper", s.pattern, s.criterion)
        elif m in _mit.TRAINED:
            key = (m, s.pattern, s.criterion, segments, segment_tokens)
        else:
            return None, 0.0, False
        if key in made:
            return made[key][0], 0.0, made[key][2]
        t0 = time.perf_counter()
        if key[0] == "dense":
            cw = windows(calib_ids, calib_tokens, window)
            disk = store.key(key, cw, batch_size)

            def compute() -> _mit.Calibration:
                return _mit.calibrate(model, list(cw.split(batch_size)), targets,
                                      source=f"dense model, {cw.numel()} tokens of {calib_label}")
        elif key[0] == "paper":
            calls = list(wins.split(batch_size))
            disk = store.key(key, wins, batch_size, paper_calls)

            def compute() -> _mit.Calibration:
                return _mit.calibrate_spts_paper(
                    model, calls, s.pattern, s.criterion, targets, calls=paper_calls,
                    source=f"sparsified model, first {_calls(min(paper_calls, len(calls)))} "
                           f"({batch_size} windows each) of the evaluated text")
        else:
            seg = windows(calib_ids, segments * segment_tokens, segment_tokens)
            disk = store.key(key, seg)

            def compute() -> _mit.Calibration:
                return _learned.train(model, seg, s.pattern, s.criterion, m, targets,
                                      source=calib_label or "the calibration text")
        cal = store.get(disk)
        cached = cal is not None
        if cal is None:
            cal = compute()
            store.put(disk, cal)
        secs = round(time.perf_counter() - t0, 2)
        made[key] = (cal, secs, cached)
        return cal, secs, cached

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(settings) * wins.shape[0], unit="win", desc="quality", leave=True)
    records = []
    try:
        for s in settings:
            if bar is not None:
                bar.set_description(s.label)
            cal, csecs, cached = calibration_for(s)
            share = _shared_spts_paper(s, settings, made, store, wins, batch_size, paper_calls)
            t0 = time.perf_counter()
            with contextlib.ExitStack() as stack:
                # the recorder first: its hooks must see each layer's raw input
                rec = (stack.enter_context(_mit.PaperSptsRecorder(model, targets,
                                                                  calls=paper_calls))
                       if share else None)
                stack.enter_context(sparsify(
                    model,
                    None if s.pattern == "dense" else s.pattern,
                    s.criterion or "magnitude",
                    s.mitigation,
                    targets,
                    weight_pattern=s.weight_pattern,
                    calibration=cal,
                ))
                ppl, predicted = perplexity(
                    model, wins, batch_size=batch_size, progress=bar.update if bar else None
                )
            if share:
                pk, disk = share
                pcal = rec.calibration(
                    f"sparsified model, first {_calls(rec.recorded)} ({batch_size} windows "
                    f"each) of the evaluated text (recorded during the D-PTS pass)")
                store.put(disk, pcal)
                made[pk] = (pcal, 0.0, False)
            rec = {
                **asdict(s),
                "ppl": ppl,
                "tokens": int(wins.numel()),
                "predicted": predicted,
                "window": window,
                "batch": batch_size,
                "seconds": round(time.perf_counter() - t0, 2),
                "calibration": cal.source if cal is not None else None,
                "calib_seconds": csecs,
                "calib_cached": cached,
                **(meta or {}),
            }
            records.append(rec)
            if on_record is not None:
                on_record(rec)
    finally:
        if bar is not None:
            bar.close()
    return records

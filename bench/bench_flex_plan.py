"""Per-layer plan table for SmolLM2: the quality each layer gets per pattern, and its cost.

A runtime-flexible unit (DESIGN.md section 5) can give every Linear layer its own N:M. This
bench measures, in one dense forward pass over the evaluation text, what each layer would
lose under each pattern: the relative error of the layer's output,

    err(layer, P) = ||W (x - sparsify_P(x))||^2 / ||W x||^2      (summed over the tokens)

with the magnitude criterion (golden.llm.hooks.sparsify_tensor), next to the hardware cost
of each pattern: the share of the dense MACs it computes (N/M) and the LUT4 per lane of the
best fixed selector and of the flexible selector, read from reports/resources.json (measured
by ``nmsparse report``). From the table it derives plans and, with ``--ppl``, evaluates
their perplexity (``nmsparse quality --plan`` does the same for any plan):

- ``uniform P``: every layer at P;
- ``greedy@D``: start at 16:32 everywhere, then move the layers that lose least per MAC
  saved to 8:32 until the MAC share is at most D;
- ``random@D``: the same number of layers moved, chosen at random (seed 0): what the
  table's ordering is worth.

    .venv/bin/python bench/bench_flex_plan.py [--tokens 1024] [--ppl] [--out reports]

Writes ``<out>/flex_plan.json`` and ``<out>/flex_plan.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from golden.llm import corpus, models  # noqa: E402
from golden.llm.hooks import parse_sparsity, sparsify_tensor  # noqa: E402
from golden.llm.plan import evaluate_plans, format_plans, layer_names  # noqa: E402
from golden.llm.quality import windows  # noqa: E402

PATTERNS = ("2:4", "4:8", "8:16", "16:32", "4:16", "8:32")
HALF = ("2:4", "4:8", "8:16", "16:32")


def layer_errors(model: nn.Module, wins: torch.Tensor,
                 patterns: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``{layer: {pattern: relative output error}}`` from dense forward passes over ``wins``."""
    num = {n: dict.fromkeys(patterns, 0.0) for n in layer_names(model)}
    den = dict.fromkeys(num, 0.0)
    mods = dict(model.named_modules())
    hooks = []

    def make(name: str, mod: nn.Linear):
        def hook(_m, args):
            x = args[0].float()
            y = torch.nn.functional.linear(x, mod.weight.float())
            den[name] += float((y * y).sum())
            for p in patterns:
                d = torch.nn.functional.linear(x - sparsify_tensor(x, p), mod.weight.float())
                num[name][p] += float((d * d).sum())
        return hook

    for name in num:
        hooks.append(mods[name].register_forward_pre_hook(make(name, mods[name])))
    try:
        with torch.no_grad():
            for w in wins:
                model(w[None])
    finally:
        for h in hooks:
            h.remove()
    return {n: {p: num[n][p] / den[n] for p in patterns} for n in num}


def fixed_costs(resources: Path) -> dict[str, dict]:
    """LUT4 per lane of the best fixed int8 selector per pattern and of the flexible ones."""
    if not resources.is_file():
        return {}
    recs = json.loads(resources.read_text()).get("modules", [])
    out: dict[str, dict] = {}
    for r in recs:
        lut = (r.get("post_synth") or {}).get("LUT")
        if lut is None or r.get("fmt") != "int8":
            continue
        if r["unit"] == "topk" and (r.get("lanes") or 1) == 1:
            per = lut / r["m"]
            if r["pattern"] not in out or per < out[r["pattern"]]["lut_per_lane"]:
                out[r["pattern"]] = {"module": r["module"], "lut_per_lane": per}
        elif r["unit"] == "topk_flex":
            out[f"flex:{r['w']}"] = {"module": r["module"], "lut_per_lane": lut / r["w"]}
    return out


def macs(model: nn.Module) -> dict[str, float]:
    mods = dict(model.named_modules())
    return {n: float(mods[n].in_features * mods[n].out_features) for n in layer_names(model)}


def greedy_plan(err: dict[str, dict[str, float]], mac: dict[str, float], budget: float,
                base: str = "16:32", low: str = "8:32") -> list[str]:
    """Layers to move from ``base`` to ``low``: smallest error increase per MAC saved first,
    until the MAC share is at most ``budget``."""
    db, dl = parse_sparsity(base).density, parse_sparsity(low).density
    total = sum(mac.values())
    share = db
    order = sorted(err, key=lambda n: (err[n][low] - err[n][base]) / mac[n])
    moved = []
    for n in order:
        if share <= budget:
            break
        moved.append(n)
        share -= mac[n] * (db - dl) / total
    return moved


def plan_text(moved: list[str], base: str = "16:32", low: str = "8:32") -> str:
    return ",".join([f"{n}={low}" for n in moved] + [f"*={base}"])


def markdown(err, mac, costs, plans, ppl_records) -> str:
    blocks: dict[str, list[str]] = {}
    for n in err:
        blocks.setdefault(n.split(".")[2], []).append(n)
    lines = ["# SmolLM2-135M per-layer plan table", "",
             "Relative output error of each Linear layer under each pattern (magnitude "
             "criterion), MAC-weighted mean over the 7 layers of each decoder block; "
             "`bench/bench_flex_plan.py`. Lower is better.", ""]
    head = "| block | " + " | ".join(PATTERNS) + " |"
    lines += [head, "|---|" + "--:|" * len(PATTERNS)]
    for b in sorted(blocks, key=int):
        ns = blocks[b]
        tot = sum(mac[n] for n in ns)
        vals = [sum(err[n][p] * mac[n] for n in ns) / tot for p in PATTERNS]
        lines.append(f"| {b} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    kinds: dict[str, list[str]] = {}
    for n in err:
        kinds.setdefault(n.rpartition(".")[2], []).append(n)
    lines += ["", "By projection (mean over the 30 blocks):", "",
              head.replace("| block |", "| projection |"),
              "|---|" + "--:|" * len(PATTERNS)]
    for k, ns in kinds.items():
        vals = [sum(err[n][p] for n in ns) / len(ns) for p in PATTERNS]
        lines.append(f"| {k} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    lines += ["", "Hardware cost per pattern (int8; LUT4 per lane post-synthesis from "
              "reports/resources.json; MAC share = N/M):", "",
              "| pattern | MAC share | best fixed selector | LUT4 per lane |", "|---|--:|---|--:|"]
    for p in PATTERNS:
        c = costs.get(p)
        where = f"{c['module']} | {c['lut_per_lane']:.1f}" if c else "not shipped | -"
        lines.append(f"| {p} | {parse_sparsity(p).density:.3f} | {where} |")
    for k, c in costs.items():
        if k.startswith("flex:"):
            lines.append(f"| every pattern above (W = {k[5:]}) | - | {c['module']} | "
                         f"{c['lut_per_lane']:.1f} |")
    if ppl_records:
        lines += ["", "Plans (perplexity over the same windows; `nmsparse quality --plan`):", "",
                  "| plan | layers per pattern | MAC share | perplexity | x dense |",
                  "|---|---|--:|--:|--:|"]
        dense = next(r["ppl"] for r in ppl_records if r["pattern"] == "dense")
        names = {v: k for k, v in plans.items()}
        for r in ppl_records:
            label = "dense" if r["plan"] is None else names.get(r["plan"], r["plan"])
            layers = "-" if r["layers"] is None else ", ".join(
                f"{p}: {c}" for p, c in r["layers"].items())
            lines.append(f"| {label} | {layers} | {r['mac_density']:.3f} | {r['ppl']:.2f} | "
                         f"{r['ppl'] / dense:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--budget", type=float, default=0.4, help="MAC share of greedy@D")
    ap.add_argument("--ppl", action="store_true", help="also evaluate the plans' perplexity")
    ap.add_argument("--out", default="reports")
    args = ap.parse_args(argv)
    out = Path(args.out)
    model, tok, name = models.load_model(args.model)
    text, label = corpus.load_text(corpus.EVAL_BOOK)
    ids = tok(text[: 8 * args.tokens + 4096], return_tensors="pt",
              add_special_tokens=False).input_ids[0]
    wins = windows(ids, args.tokens, args.window)
    t0 = time.perf_counter()
    err = layer_errors(model, wins, PATTERNS)
    t_err = time.perf_counter() - t0
    mac = macs(model)
    moved = greedy_plan(err, mac, args.budget)
    rnd = random.Random(0).sample(sorted(err), len(moved))
    plans = {"uniform 8:16": "*=8:16", "uniform 16:32": "*=16:32",
             f"greedy@{args.budget:g}": plan_text(moved),
             f"random@{args.budget:g}": plan_text(rnd)}
    recs = []
    if args.ppl:
        recs = evaluate_plans(model, tok, list(plans.values()), text, tokens=args.tokens,
                              window=args.window, meta={"model": name, "text": label})
        print(format_plans(recs))
    costs = fixed_costs(out / "resources.json")
    doc = {"model": name, "text": label, "tokens": int(wins.numel()), "patterns": PATTERNS,
           "errors": err, "macs": mac, "costs": costs, "plans": plans,
           "moved_to_8_32": moved, "ppl": recs, "seconds_errors": round(t_err, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "flex_plan.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "flex_plan.md").write_text(markdown(err, mac, costs, plans, recs))
    print(f"wrote {out / 'flex_plan.md'} ({len(err)} layers, errors in {t_err:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

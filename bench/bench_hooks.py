"""Share of a sparse forward pass spent in the sparsify hooks, for every criterion and mitigation.

For each method (8:16 by default, every criterion with no mitigation, then magnitude with each
mitigation), runs a dense and a sparse forward pass in turns (dense, sparse, dense, sparse,
...) on the same inputs, so a machine shared with other jobs affects both alike, and reports:

- the time inside the hooks (``sparsify_tensor``: scores, masks, shifts, rescaling) as a
  share of the sparse pass (the median over repetitions): robust against other jobs, which
  slow the model and the hooks alike. Goal (issue 14): under 10% for every method;
- sparse / dense tokens per second (the best repetition of each).

Calibrated methods get their statistics from one dense (``spts``, ``scaling_static``) or
sparse (``spts_paper``) pass over random tokens; ``lpts``/``out_bias`` get zero parameters of
the right shapes (the training is not part of a forward pass). ``out_bias``'s add of the bias
to each Linear's output is inside the sparse pass but not in the hook share.

    .venv/bin/python bench/bench_hooks.py [--model smollm2] [--pattern 8:16] [--tokens 512]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from golden.llm import criteria, hooks, mitigations, models  # noqa: E402
from golden.llm.hooks import DEFAULT_TARGETS  # noqa: E402
from golden.llm.mitigations import Calibration, SiteStats  # noqa: E402

GOAL = 0.10


def _methods(selected: list[str] | None) -> list[tuple[str, str | None]]:
    out = [(c, None) for c in criteria.CRITERIA]
    out += [("magnitude", m) for m in mitigations.MITIGATIONS]
    if selected:
        out = [(c, m) for c, m in out if (m or c) in selected]
    return out


def _calibration(model, mitigation: str | None, pattern: str, ids: torch.Tensor):
    if mitigation in mitigations.CALIBRATED:
        return mitigations.calibrate(model, [ids], DEFAULT_TARGETS)
    if mitigation == "spts_paper":
        return mitigations.calibrate_spts_paper(model, [ids], pattern, "magnitude")
    if mitigation in mitigations.TRAINED:
        stats = {}
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and name.rsplit(".", 1)[-1] in DEFAULT_TARGETS:
                stats[name] = (SiteStats(shift=torch.zeros(mod.in_features))
                               if mitigation == "lpts" else SiteStats(bias=torch.zeros(
                                   mod.out_features)))
        return Calibration(stats, "zeros")
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--pattern", default="8:16")
    p.add_argument("--tokens", type=int, default=512, help="sequence length per forward pass")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--reps", type=int, default=3, help="repetitions of each (interleaved)")
    p.add_argument("--methods", default=None,
                   help="comma-separated criteria/mitigations to run (default: all)")
    p.add_argument("--json", default=None, help="also write the figures as JSON")
    args = p.parse_args(argv)

    model, _, name = models.load_model(args.model)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.tokens), generator=gen)
    ntok = ids.numel()
    inner = hooks.sparsify_tensor
    hook_time = [0.0]

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            hook_time[0] += time.perf_counter() - t0

    def dense() -> float:
        t0 = time.perf_counter()
        model(ids)
        return time.perf_counter() - t0

    print(f"model {name}; {args.batch} x {args.tokens} tokens per pass; {args.reps} reps "
          f"each; torch threads {torch.get_num_threads()}; pattern {args.pattern}")
    print(f"{'criterion':17} {'mitigation':15} {'hook share':>10} {'sparse/dense':>13} "
          f"{'dense tok/s':>12} {'sparse tok/s':>13}")
    rows = []
    with torch.no_grad():
        dense()  # warm-up (allocator, kernels, compiled mask library)
        for crit, mit in _methods(args.methods.split(",") if args.methods else None):
            cal = _calibration(model, mit, args.pattern, ids)

            def on(crit=crit, mit=mit, cal=cal):
                return hooks.apply_sparsity(model, args.pattern, crit, mit, calibration=cal)

            hooks.sparsify_tensor = timed
            try:
                h = on()
                model(ids)  # warm-up of this method (and its per-weight factors)
                h.remove()
                dts, sts, shares = [], [], []
                for _ in range(args.reps):
                    dts.append(dense())
                    h = on()  # set-up outside the timed pass
                    hook_time[0] = 0.0
                    t0 = time.perf_counter()
                    model(ids)
                    sts.append(time.perf_counter() - t0)
                    h.remove()
                    shares.append(hook_time[0] / sts[-1])
            finally:
                hooks.sparsify_tensor = inner
            share = statistics.median(shares)
            ratio = min(dts) / min(sts)
            rows.append({"criterion": crit, "mitigation": mit, "hook_share": share,
                         "ratio": ratio, "dense_tokens_per_s": ntok / min(dts),
                         "sparse_tokens_per_s": ntok / min(sts)})
            print(f"{crit:17} {mit or '-':15} {100 * share:9.1f}% {ratio:13.3f} "
                  f"{ntok / min(dts):12.1f} {ntok / min(sts):13.1f}", flush=True)
    worst = max(rows, key=lambda r: r["hook_share"])
    print(f"goal: hooks under {100 * GOAL:.0f}% of the sparse pass for every method: "
          f"{'met' if worst['hook_share'] < GOAL else 'NOT met'} (worst "
          f"{100 * worst['hook_share']:.1f}%: {worst['criterion']} {worst['mitigation'] or ''})")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": name, "pattern": args.pattern,
                                               "tokens_per_pass": ntok, "rows": rows},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

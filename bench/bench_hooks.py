"""Tokens/second of a causal LM's forward pass, dense and with N:M activation sparsity hooks.

Runs both in one process on the same inputs, interleaved (dense, sparse, dense, sparse, ...)
so that a machine shared with other jobs affects both alike, and reports the best repetition
of each (the least disturbed one) and the ratio sparse / dense. Target: >= 0.7.

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

from golden.llm import hooks, models  # noqa: E402
from golden.llm.hooks import DEFAULT_TARGETS, sparsify  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--pattern", default="8:16")
    p.add_argument("--criterion", default="magnitude")
    p.add_argument("--tokens", type=int, default=512, help="sequence length per forward pass")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--reps", type=int, default=5, help="repetitions of each (interleaved)")
    p.add_argument("--json", default=None, help="also write the figures as JSON")
    args = p.parse_args(argv)

    model, _, name = models.load_model(args.model)
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, args.tokens), generator=gen)
    ntok = ids.numel()

    def once(sparse: bool) -> float:
        with torch.no_grad():
            if sparse:
                with sparsify(model, args.pattern, args.criterion, targets=DEFAULT_TARGETS):
                    t0 = time.perf_counter()
                    model(ids)
                    return time.perf_counter() - t0
            t0 = time.perf_counter()
            model(ids)
            return time.perf_counter() - t0

    # time spent inside the hooks, measured within the same sparse passes: robust against
    # other jobs on the machine, which slow the model and the hooks alike
    inner = hooks.sparsify_tensor
    hook_time = [0.0]

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            hook_time[0] += time.perf_counter() - t0

    hooks.sparsify_tensor = timed
    once(False)  # warm-up (allocator, kernels, compiled mask library)
    once(True)
    dense, sparse, shares = [], [], []
    for _ in range(args.reps):
        dense.append(once(False))
        hook_time[0] = 0.0
        sparse.append(once(True))
        shares.append(hook_time[0] / sparse[-1])
    hooks.sparsify_tensor = inner
    share = statistics.median(shares)
    d_best, s_best = ntok / min(dense), ntok / min(sparse)
    d_med, s_med = ntok / statistics.median(dense), ntok / statistics.median(sparse)
    print(
        f"model {name}; {args.batch} x {args.tokens} tokens per pass; {args.reps} reps each; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"dense                      : {d_best:8.1f} tokens/s (best)  {d_med:8.1f} (median)")
    print(
        f"{args.pattern} {args.criterion} on 7 projections: {s_best:8.1f} tokens/s (best)  "
        f"{s_med:8.1f} (median)"
    )
    ratio = s_best / d_best
    print(
        f"sparse / dense             : {ratio:8.3f} (best)  {s_med / d_med:8.3f} (median)  "
        f"target >= 0.7: {'met' if ratio >= 0.7 else 'NOT met'}"
    )
    print(
        f"time inside the hooks       : {100 * share:7.1f} % of the sparse pass (median), so "
        f"sparse / dense ~ {1 - share:.3f} on an otherwise idle machine"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": name,
                    "pattern": args.pattern,
                    "criterion": args.criterion,
                    "tokens_per_pass": ntok,
                    "dense_tokens_per_s": d_best,
                    "sparse_tokens_per_s": s_best,
                    "ratio": ratio,
                    "hook_share": share,
                    "dense_median": d_med,
                    "sparse_median": s_med,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

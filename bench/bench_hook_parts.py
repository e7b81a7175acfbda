"""The three hook parts this project computes in its own way, against torch's own calls.

On one SmolLM2-sized activation tile ``[1, 512, K]`` (float32, K = 576 and 1536), the best of
5 batches of repeated calls, in microseconds:

- per-token median (D-PTS): ``torch.median`` against the compiled radix select
  (``golden._native.row_median``, used by ``golden.llm.mitigations.token_median``);
- per-token variance (VAR): ``torch.var`` against the two-pass mean of squared deviations
  (``golden.llm.mitigations._var``);
- the mask applied: ``x * mask`` with a bool mask against ``x * mask.view(torch.uint8)``
  (``golden.llm.hooks.sparsify_tensor``; the same products).

Measured on the 2-core machine: median 5.7-8.2x; variance and mask 0.9-1.1x. In a process
that imports only ``golden.nm`` the same two torch calls take a tenth of the time (bool mask
107 us, uint8 35 us, torch.var 839 us, two-pass 62 us at K = 576): importing ``golden.llm``
slows torch's elementwise operations about tenfold, cause not yet found; the hooks run in
such a process.

    .venv/bin/python bench/bench_hook_parts.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from golden import _native  # noqa: E402
from golden.llm import mitigations  # noqa: E402
from golden.nm import nm_mask  # noqa: E402


def _us(f, reps: int = 200) -> float:
    for _ in range(5):
        f()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps // 5):
            f()
        best = min(best, (time.perf_counter() - t0) / (reps // 5) * 1e6)
    return best


def _parts(x: torch.Tensor, mask: torch.Tensor) -> list:
    """(name, torch's call, ours) for one tile."""
    return [
        ("variance", lambda: x.var(dim=-1, keepdim=True, unbiased=False),
         lambda: mitigations._var(x)),
        ("mask", lambda: x * mask, lambda: x * mask.view(torch.uint8)),
        ("median", lambda: x.median(dim=-1, keepdim=True), lambda: _native.row_median(x)),
    ]


def main() -> int:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, compiled path: "
          f"{'yes' if _native.available() else 'no'}")
    print(f"{'K':>5} {'part':10} {'torch us':>10} {'ours us':>10} {'speed-up':>9}")
    for k in (576, 1536):
        x = torch.randn(1, 512, k)
        mask = nm_mask(x, 8, 16)
        rows = _parts(x, mask)
        for name, ref, ours in rows:
            a, b = _us(ref), _us(ours)
            print(f"{k:>5} {name:10} {a:>10.0f} {b:>10.0f} {a / b:>8.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput of the golden model's N:M mask, next to two baselines measured in the same run.

For x of shape [4096, 4096] in bf16 and int8 and each of 2:4, 8:16, 16:32, prints GB/s of
input for:
  nm_mask   golden.nm_mask (the bit-exact rule, ties to the lower index)
  clone     x.clone()                                  – the memory-bandwidth ceiling
  topk      x.view(-1, M).abs().topk(N, dim=-1)        – what a naive user writes (no defined
                                                         tie order, and it stops short of a mask)
Usage: python bench/bench_golden.py [--repeat R] [--rows R] [--cols C]
"""

from __future__ import annotations

import argparse
import time

import torch

import golden
from golden import _native


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up (and the one-time build of the compiled path)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=4096)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    xs = {
        "bf16": torch.randn(a.rows, a.cols, generator=g).to(torch.bfloat16),
        "int8": torch.randint(-128, 128, (a.rows, a.cols), generator=g, dtype=torch.int8),
    }
    print(f"x: [{a.rows}, {a.cols}], torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"compiled path: {'yes' if _native.available() else 'no (pure torch)'}")
    print(f"{'fmt':5} {'N:M':6} {'nm_mask GB/s':>13} {'clone GB/s':>11} {'topk GB/s':>10} "
          f"{'vs topk':>8} {'vs clone':>9}")
    for name, x in xs.items():
        gb = x.numel() * x.element_size() / 1e9
        t_clone = best_of(lambda x=x: x.clone(), a.repeat)
        for pat in ("2:4", "8:16", "16:32"):
            n, m = golden.parse_pattern(pat)
            t_mask = best_of(lambda x=x, n=n, m=m: golden.nm_mask(x, n, m), a.repeat)
            if x.dtype == torch.int8:  # abs(-128) overflows int8: widen, as a careful user would
                naive = lambda x=x, n=n, m=m: x.view(-1, m).to(torch.int16).abs().topk(n, dim=-1)  # noqa: E731
            else:
                naive = lambda x=x, n=n, m=m: x.view(-1, m).abs().topk(n, dim=-1)  # noqa: E731
            t_topk = best_of(naive, a.repeat)
            print(f"{name:5} {pat:6} {gb / t_mask:13.2f} {gb / t_clone:11.2f} {gb / t_topk:10.2f} "
                  f"{t_topk / t_mask:7.1f}x {t_mask / t_clone:8.1f}x")
    print("vs topk: speed-up over the topk baseline; vs clone: time relative to x.clone()")


if __name__ == "__main__":
    main()

"""``nmsparse mask``: print the golden model's N:M masks for a small example or a tensor file."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .formats import FORMATS, dtype_of, get_format, resolve_format, to_bits
from .nm import nm_compress, nm_mask, parse_pattern


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pattern", default="8:16", help="N:M pattern, e.g. 8:16 (default)")
    p.add_argument("--fmt", choices=list(FORMATS), help="number format (default: from dtype)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--example", action="store_true", help="a small built-in example (default)")
    src.add_argument("--input", type=Path, help="a .pt file holding one tensor [..., K]")
    p.add_argument("--groups", type=int, default=8, help="groups to print (default 8)")


def example(m: int, fmt: str) -> torch.Tensor:
    """Four groups that show the rule: random, a tie at the N-th place, all zeros, extremes."""
    f = get_format(fmt)
    g = torch.Generator().manual_seed(0)
    if f.is_int:
        rnd = torch.randint(f.min, f.max + 1, (m,), generator=g)
        tie = torch.tensor([(j % 3) - 1 for j in range(m)]) * 5
        ext = torch.tensor([f.min if j % 4 == 1 else (f.max if j % 4 == 2 else j % 3)
                            for j in range(m)])
        rows = [rnd, tie, torch.zeros(m, dtype=torch.int64), ext]
        return torch.stack(rows).to(dtype_of(f))
    rnd = torch.randn(m, generator=g)
    tie = torch.tensor([float((j % 3) - 1) for j in range(m)])
    specials = [float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1.0]
    ext = torch.tensor([specials[j % len(specials)] for j in range(m)])
    return torch.stack([rnd, tie, torch.zeros(m), ext]).to(dtype_of(f))


def run(args: argparse.Namespace) -> int:
    n, m = parse_pattern(args.pattern)
    if args.input is not None:
        if not args.input.is_file():
            raise FileNotFoundError(f"no such file: {args.input}")
        try:
            x = torch.load(args.input, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - report any unreadable file in one line
            raise ValueError(f"cannot read {args.input} as a torch tensor file: {exc}") from None
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{args.input} holds a {type(x).__name__}, not a tensor")
    else:
        x = example(m, args.fmt or "int8")
    f = resolve_format(x, args.fmt)
    mask = nm_mask(x, n, m, fmt=args.fmt)
    values, index = nm_compress(x, n, m, fmt=args.fmt)
    xg = x.reshape(-1, m)
    mg, vg, ig = mask.reshape(-1, m), values.reshape(-1, n), index.reshape(-1, n)
    print(f"N:M = {n}:{m}, format {f.name}; keep the {n} largest |x| of every {m}, "
          "ties to the lower index")
    for g in range(min(args.groups, xg.shape[0])):
        if f.is_int:
            vals = " ".join(f"{int(v):>6d}" for v in xg[g])
            kept = " ".join(f"{int(v)}" for v in vg[g])
        else:
            vals = " ".join(f"{float(v):>6.2g}" for v in xg[g])
            kept = " ".join(f"{float(v):.3g}" for v in vg[g])
        bits = "".join("1" if b else "0" for b in mg[g].tolist())
        print(f"group {g}: x    = [{vals}]")
        print(f"         mask = {bits}  (element 0 first)")
        print(f"         index = {ig[g].tolist()}  values = [{kept}]")
        if not f.is_int:
            print(f"         value bits = {[hex(int(b)) for b in to_bits(vg[g], f)]}")
    print(f"{xg.shape[0]} groups, {int(mask.sum())} of {mask.numel()} elements kept")
    return 0
